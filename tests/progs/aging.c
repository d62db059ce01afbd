// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Blocks that outlive their neighbours, for memtrace's block table:
 *   old_blocks:   6 x malloc(100); 50 ms later
 *   young_blocks: 6 x malloc(200)
 * then free(old[0]), free(old[5]), free(young[0]), free(young[5]):
 *   old_blocks 400 / 4 outstanding, young_blocks 800 / 4.
 * With one set of 4 slots (MEMTRACE_TEST_SLOTS=4) the young blocks move
 * the old ones (older than 10 ms) from the table to the hash, and the
 * frees find blocks in both.
 */
#include <time.h>
#include "testprog.h"

NOINLINE void old_blocks(void **p)
{
	for (int i = 0; i < 6; i++)
		p[i] = hold(malloc(100));
}

NOINLINE void young_blocks(void **p)
{
	for (int i = 0; i < 6; i++)
		p[i] = hold(malloc(200));
}

int main(void)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	void *old[6], *young[6];

	old_blocks(old);
	nanosleep(&pause, NULL);
	young_blocks(young);
	free(old[0]);
	free(old[5]);
	free(young[0]);
	free(young[5]);
	return 0;
}
