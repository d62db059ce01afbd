// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Fork: on SIGUSR1 the parent allocates 10 x 100 bytes and one 700-byte
 * block in parent_alloc (1700 bytes, 11 blocks, kept), then forks. The
 * child allocates 5 x 300 bytes in child_alloc (kept), frees the
 * 700-byte block it inherited (not one it allocated) and exits; the
 * parent waits for it, prints "step1 CHILD STATUS" (the wait status: 0
 * when the child exited well), waits for SIGUSR1 and exits.
 * With "now": no waiting for signals.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testprog.h"

static void *inherited;

NOINLINE void parent_alloc(void)
{
	for (int i = 0; i < 10; i++)
		hold(malloc(100));
	inherited = malloc(700);
}

NOINLINE void child_alloc(void)
{
	for (int i = 0; i < 5; i++)
		hold(malloc(300));
}

int main(int argc, char **argv)
{
	int now = argc > 1 && !strcmp(argv[1], "now");
	int status = -1;
	pid_t child;

	block_usr1();
	printf("thread none\nready\n");
	fflush(stdout);
	if (!now)
		wait_usr1();
	parent_alloc();
	child = fork();
	if (child == 0) {
		child_alloc();
		free(inherited);
		_exit(0);
	}
	waitpid(child, &status, 0);
	printf("step1 %d %d\n", child, status);
	fflush(stdout);
	if (!now)
		wait_usr1();
	return 0;
}
