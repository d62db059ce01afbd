// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A slow allocator: slow_alloc keeps 6 x 700 bytes, one every 200 ms,
 * then the process idles for 2.5 s and exits. With --batch, a queued
 * event older than the queue's age limit is handed over with the next
 * call: the reports in between show all but the last block
 * (tests/integration/test_batch.py).
 */
#include <time.h>
#include "testprog.h"

NOINLINE void slow_alloc(void)
{
	hold(malloc(700));
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

int main(void)
{
	for (int i = 0; i < 6; i++) {
		slow_alloc();
		nap(200);
	}
	nap(2500);
	return 0;
}
