// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * --sample-bytes where nearly everything is freed: a sampled block whose
 * free is not seen stays outstanding, so the outstanding totals are exact.
 *   churn: 4 threads x 100,000 rounds of malloc, calloc, realloc (twice),
 *          posix_memalign, aligned_alloc; every block freed, a quarter of
 *          them by the main thread (another thread, often another CPU).
 *          outstanding 0 bytes, 0 blocks.
 *   kept:  1,000 x 4096 bytes, never freed (4,096,000 bytes).
 * Meanwhile the main thread forks 20 children that allocate and free:
 * a child must not inherit a lock another thread held at the fork.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testprog.h"

#define THREADS 4
#define ROUNDS 100000
#define HANDOFF (ROUNDS / 4)

static void *handoff[THREADS][HANDOFF];
static __thread void *volatile sink;

/* a block the compiler cannot see only freed (it would drop the pair) */
static inline void *opaque(void *p)
{
	sink = p;
	return sink;
}

NOINLINE void churn(void **out)
{
	for (int i = 0; i < ROUNDS; i++) {
		size_t n = 16 + (size_t)(i % 61) * 24;
		char *a = malloc(n), *b = opaque(calloc(3, n)), *c;
		void *d = NULL;

		c = realloc(a, 2 * n);
		c = realloc(c, 3 * n + 4000);
		if (posix_memalign(&d, 64, n))
			abort();
		free(b);
		free(d);
		d = opaque(aligned_alloc(256, 512));
		if (i % 4 == 0) {
			out[i / 4] = c;
		} else {
			free(c);
		}
		free(d);
	}
}

static void *worker(void *arg)
{
	churn(arg);
	return NULL;
}

NOINLINE void kept(void)
{
	for (int i = 0; i < 1000; i++)
		hold(malloc(4096));
}

static void children(void)
{
	for (int k = 0; k < 20; k++) {
		pid_t pid = fork();

		if (pid == 0) {
			for (int i = 0; i < 1000; i++)
				free(opaque(malloc(100 + i)));
			_exit(0);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
}

int main(void)
{
	pthread_t th[THREADS];

	for (int t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, worker, handoff[t]))
			return 1;
	children();
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < HANDOFF; i++)
			free(handoff[t][i]);
	kept();
	return 0;
}
