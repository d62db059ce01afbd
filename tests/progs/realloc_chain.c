// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * grow: one buffer realloc'ed 10 times, 64 -> 32768 bytes, kept.
 *   alloc_count 10, alloc_bytes 64+128+...+32768 = 65472,
 *   outstanding 32768 in 1 block, free_count 9.
 * shrink: 4096 from malloc, then realloc to 2048, 1024, 512; kept.
 *   shrink's own stack: 4 allocations, 1 outstanding block of 512.
 */
#include <stdlib.h>
#include "testprog.h"

NOINLINE void *grow(void)
{
	void *p = NULL;

	for (size_t sz = 64; sz <= 32768; sz *= 2)
		p = realloc(p, sz);
	return hold(p);
}

NOINLINE void *shrink(void)
{
	void *p = malloc(4096);

	for (size_t sz = 2048; sz >= 512; sz /= 2)
		p = realloc(p, sz);
	return hold(p);
}

int main(void)
{
	grow();
	shrink();
	return 0;
}
