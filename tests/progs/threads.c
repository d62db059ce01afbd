// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Cross-thread frees: 4 producer threads each allocate 250 blocks of
 * 512 bytes in produce(); the main thread frees the even-numbered ones.
 *   produce: alloc_count 1000, outstanding 500 x 512 = 256000 bytes.
 */
#include <pthread.h>
#include <stdlib.h>
#include "testprog.h"

#define THREADS 4
#define PER_THREAD 250

static void *blocks[THREADS][PER_THREAD];

NOINLINE void produce(void **out)
{
	for (int i = 0; i < PER_THREAD; i++)
		out[i] = malloc(512);
}

static void *worker(void *arg)
{
	produce(arg);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, blocks[i]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < PER_THREAD; j += 2)
			free(blocks[i][j]);
	return 0;
}
