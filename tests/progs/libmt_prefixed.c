// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * An allocator with jemalloc's prefixed names (a jemalloc built with
 * --with-jemalloc-prefix=je_ exports only these): a bump allocator over
 * a static arena, nothing from libc's malloc. For other_allocs.c built
 * with -DJE_PREFIX (build/tests/progs/prefixed).
 */
#include <stddef.h>
#include <string.h>

static _Alignas(16) char arena[1 << 20];
static size_t used;

void *je_malloc(size_t n)
{
	size_t *h;

	if (used + 16 + ((n + 15) & ~(size_t)15) > sizeof(arena))
		return NULL;
	h = (size_t *)(arena + used);
	*h = n;
	used += 16 + ((n + 15) & ~(size_t)15);
	return (char *)h + 16;
}

void je_free(void *p)
{
	(void)p; /* a bump allocator keeps everything */
}

void *je_calloc(size_t n, size_t size)
{
	void *p = je_malloc(n * size);

	if (p)
		memset(p, 0, n * size);
	return p;
}

void *je_realloc(void *old, size_t n)
{
	void *p = je_malloc(n);

	if (p && old) {
		size_t had = *(size_t *)((char *)old - 16);

		memcpy(p, old, had < n ? had : n);
		je_free(old);
	}
	return p;
}
