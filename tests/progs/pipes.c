// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Kernel allocations: on SIGUSR1, open 200 pipes and keep them open. The
 * kernel allocates, per pipe, a struct pipe_inode_info and an array of
 * 16 struct pipe_buffer in alloc_pipe_info(), plus files and an inode.
 */
#include <unistd.h>
#include "testprog.h"

#define NPIPES 200

static int fds[NPIPES][2];

NOINLINE void open_pipes(void)
{
	for (int i = 0; i < NPIPES; i++)
		if (pipe(fds[i]))
			abort();
}

int main(int argc, char **argv)
{
	if (argc > 1) { /* "exit": open them and exit at once */
		open_pipes();
		return 0;
	}
	block_usr1();
	printf("thread none\nready %d\n", getpid());
	fflush(stdout);
	wait_usr1();
	open_pipes();
	printf("step1\n");
	fflush(stdout);
	for (;;)
		pause();
}
