// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Calls an allocator with je_-prefixed names (libmt_prefixed.so), as
 * programs linked against a prefixed jemalloc do. Expected, like
 * other_allocs.c: keep_malloc 4 x 1000 kept; keep_calloc 2 x (10 x 100)
 * kept; grow_realloc 100 then 5000 (kept), 2 allocations, 1 free;
 * churn_freed 3 x 700 freed.
 */
#include <stddef.h>
#include "testprog.h"

void *je_malloc(size_t n);
void *je_calloc(size_t n, size_t size);
void *je_realloc(void *p, size_t n);
void je_free(void *p);

NOINLINE void keep_malloc(void)
{
	for (int i = 0; i < 4; i++)
		hold(je_malloc(1000));
}

NOINLINE void keep_calloc(void)
{
	for (int i = 0; i < 2; i++)
		hold(je_calloc(10, 100));
}

NOINLINE void grow_realloc(void)
{
	void *p = je_realloc(NULL, 100);

	hold(je_realloc(p, 5000));
}

NOINLINE void churn_freed(void)
{
	void *p[3];

	for (int i = 0; i < 3; i++)
		p[i] = hold(je_malloc(700));
	for (int i = 0; i < 3; i++)
		je_free(p[i]);
}

int main(void)
{
	keep_malloc();
	keep_calloc();
	grow_realloc();
	churn_freed();
	return 0;
}
