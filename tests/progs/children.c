// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A long process tree, one process at a time: forks N children (argv[1]),
 * GAP_MS apart (argv[2]). Each child allocates from 6 functions, kept:
 * alloc_1 100 bytes ... alloc_6 600 bytes, 1 block each (2100 bytes),
 * and exits without freeing them. The parent allocates nothing.
 * (tests/integration/test_lifecycle.py: exited processes' totals must
 * not fill the stats map.)
 */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testprog.h"

#define ALLOC_FN(n) \
	NOINLINE void alloc_##n(void) \
	{ \
		hold(malloc(n * 100)); \
	}

ALLOC_FN(1)
ALLOC_FN(2)
ALLOC_FN(3)
ALLOC_FN(4)
ALLOC_FN(5)
ALLOC_FN(6)

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1, gap_ms = argc > 2 ? atoi(argv[2]) : 0;
	struct timespec gap = { gap_ms / 1000, (long)(gap_ms % 1000) * 1000000 };

	for (int i = 0; i < n; i++) {
		pid_t child = fork();

		if (child == 0) {
			alloc_1();
			alloc_2();
			alloc_3();
			alloc_4();
			alloc_5();
			alloc_6();
			_exit(0);
		}
		if (child < 0)
			return 1;
		waitpid(child, NULL, 0);
		nanosleep(&gap, NULL);
	}
	return 0;
}
