// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Built against other allocators (Makefile): jemalloc, tcmalloc, mimalloc,
 * musl (static), glibc (static), and a je_-prefixed one (-DJE_PREFIX).
 * Expected per function:
 *   keep_malloc   4 x 1000 kept              4000 / 4
 *   keep_calloc   2 x (10 x 100) kept        2000 / 2
 *   grow_realloc  realloc(NULL, 100) then realloc to 5000, kept:
 *                 5000 / 1 outstanding, 2 allocations, 1 free
 *   churn_freed   3 x 700 freed              0 / 0, 3 allocations
 */
#include <stdlib.h>
#include "testprog.h"

#ifdef JE_PREFIX
/* built as `prefixed`: against an allocator that exports only jemalloc's
 * je_-prefixed names (libmt_prefixed.so), as a prefixed jemalloc does */
void *je_malloc(size_t n);
void *je_calloc(size_t n, size_t size);
void *je_realloc(void *p, size_t n);
void je_free(void *p);
#define malloc je_malloc
#define calloc je_calloc
#define realloc je_realloc
#define free je_free
#endif

NOINLINE void keep_malloc(void)
{
	for (int i = 0; i < 4; i++)
		hold(malloc(1000));
}

NOINLINE void keep_calloc(void)
{
	for (int i = 0; i < 2; i++)
		hold(calloc(10, 100));
}

NOINLINE void grow_realloc(void)
{
	void *p = realloc(NULL, 100);

	hold(realloc(p, 5000));
}

NOINLINE void churn_freed(void)
{
	void *p[3];

	for (int i = 0; i < 3; i++)
		p[i] = hold(malloc(700));
	for (int i = 0; i < 3; i++)
		free(p[i]);
}

int main(void)
{
	keep_malloc();
	keep_calloc();
	grow_realloc();
	churn_freed();
	return 0;
}
