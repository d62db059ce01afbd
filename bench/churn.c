// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * malloc/free churn: each of T threads does N pairs of malloc(64)/free.
 * Prints the mean ns per pair (per thread), timed inside the program so
 * a tracer's start-up is not counted. HELD blocks of 48 bytes are
 * allocated first and stay live (a program holding much memory: memtrace's
 * block table full of them), untimed.  Usage: churn N [T [HELD]]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *volatile sink;
static long pairs;

__attribute__((noinline)) static void churn_work(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = malloc(64);

		sink = p;
		free(p);
	}
}

__attribute__((noinline)) static void hold_blocks(long n)
{
	for (long i = 0; i < n; i++)
		sink = malloc(48);
}

static void *worker(void *arg)
{
	churn_work(pairs);
	return arg;
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	pthread_t t[64];
	double t0;

	pairs = argc > 1 ? atol(argv[1]) : 500000;
	if (threads < 1 || threads > 64 || pairs < 1)
		return 2;
	hold_blocks(argc > 3 ? atol(argv[3]) : 0);
	t0 = now_ns();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("%.1f\n", (now_ns() - t0) / pairs);
	return 0;
}
