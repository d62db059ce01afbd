// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Known totals for --sample-bytes: estimates must land near them.
 *   small_blocks   500,000 x 64 B   kept      (32,000,000 B)
 *   medium_blocks   50,000 x 1000 B kept      (50,000,000 B)
 *   large_blocks       100 x 1 MiB  kept      (always sampled: exact)
 *   half_freed     200,000 x 128 B, every other one freed
 *                  (25,600,000 B allocated, 12,800,000 B outstanding)
 */
#include <stdlib.h>
#include "testprog.h"

static void **small, **medium, **large, **half;

NOINLINE void small_blocks(void)
{
	for (int i = 0; i < 500000; i++)
		small[i] = malloc(64);
}

NOINLINE void medium_blocks(void)
{
	for (int i = 0; i < 50000; i++)
		medium[i] = malloc(1000);
}

NOINLINE void large_blocks(void)
{
	for (int i = 0; i < 100; i++)
		large[i] = malloc(1 << 20);
}

NOINLINE void half_freed(void)
{
	for (int i = 0; i < 200000; i++)
		half[i] = malloc(128);
	for (int i = 0; i < 200000; i += 2)
		free(half[i]);
}

int main(void)
{
	/* the pointer arrays come from mmap-sized callocs: one call each */
	small = calloc(500000, sizeof(void *));
	medium = calloc(50000, sizeof(void *));
	large = calloc(100, sizeof(void *));
	half = calloc(200000, sizeof(void *));
	small_blocks();
	medium_blocks();
	large_blocks();
	half_freed();
	hold(small);
	hold(medium);
	hold(large);
	hold(half);
	return 0;
}
