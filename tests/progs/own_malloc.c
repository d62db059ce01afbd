// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A dynamically linked program with its own malloc family (forwarding to
 * glibc's): --preload refuses it, as its definitions come before any
 * wrapper. Allocates 3 x 100 bytes from alloc_three, frees one.
 */
#include <stddef.h>
#include "testprog.h"

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

void *malloc(size_t n)
{
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}

NOINLINE void alloc_three(void *out[3])
{
	for (int i = 0; i < 3; i++)
		out[i] = hold(malloc(100));
}

int main(void)
{
	void *p[3];

	alloc_three(p);
	free(p[0]);
	return 0;
}
