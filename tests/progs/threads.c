// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Cross-thread frees: 4 producer threads each allocate 250 blocks of
 * 512 bytes in produce(); the main thread frees the even-numbered ones.
 *   produce: alloc_count 1000, outstanding 500 x 512 = 256000 bytes.
 * Workers run on CPUs 0, 1, ... and the main thread frees on the last
 * CPU: blocks are freed on another CPU than the one that allocated them
 * (memtrace keeps per-CPU totals).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include "testprog.h"

#define THREADS 4
#define PER_THREAD 250

static void *blocks[THREADS][PER_THREAD];

NOINLINE void produce(void **out)
{
	for (int i = 0; i < PER_THREAD; i++)
		out[i] = malloc(512);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

static void *worker(void *arg)
{
	void **out = arg;

	pin((int)((out - (void **)blocks) / PER_THREAD) % sysconf(_SC_NPROCESSORS_ONLN));
	produce(out);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, blocks[i]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pin(sysconf(_SC_NPROCESSORS_ONLN) - 1);
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < PER_THREAD; j += 2)
			free(blocks[i][j]);
	return 0;
}
