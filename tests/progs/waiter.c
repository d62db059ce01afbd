// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * For -p: allocates before memtrace attaches, then on each SIGUSR1 does
 * the next step and prints a line, so the test knows where it is.
 *   before_attach: 5 x 2000, not seen (allocated before attach)
 *   step 1, after_attach: 7 x 3000 kept; 2 of the early blocks freed
 *           (2 frees of untracked blocks)
 *   step 2: exit (or, with "stay", keep waiting for signals)
 * With "thread" it also starts an idle thread, and prints its ID too.
 */
#define _GNU_SOURCE /* gettid */
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "testprog.h"

static void *early[5];

NOINLINE void before_attach(void)
{
	for (int i = 0; i < 5; i++)
		early[i] = hold(malloc(2000));
}

NOINLINE void after_attach(void)
{
	for (int i = 0; i < 7; i++)
		hold(malloc(3000));
	free(early[0]);
	free(early[1]);
}

static void *idle(void *arg)
{
	printf("thread %d\n", gettid());
	fflush(stdout);
	for (;;)
		pause();
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t;

	block_usr1();
	before_attach();
	if (argc > 2 && !strcmp(argv[2], "thread"))
		pthread_create(&t, NULL, idle, NULL);
	else
		printf("thread none\n");
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_usr1();
	after_attach();
	printf("step1\n");
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "stay"))
		for (;;)
			pause();
	wait_usr1();
	return 3;
}
