// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A process that never gets to its exit handlers: kept_alloc allocates
 * 6 x 250 bytes (kept, 1500 bytes), freed_alloc 4 x 120 (freed at once),
 * then the process ends as argv[1] says:
 *   signal      raise(SIGKILL)
 *   exit_group  the raw system call (no atexit, no destructors, no _exit)
 *   child       forks; the child does all of the above and raise(SIGKILL);
 *               the parent waits for it and returns from main
 */
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testprog.h"

NOINLINE void kept_alloc(void)
{
	for (int i = 0; i < 6; i++)
		hold(malloc(250));
}

NOINLINE void freed_alloc(void)
{
	for (int i = 0; i < 4; i++)
		free(hold(malloc(120)));
}

static void work_and_die(const char *how)
{
	kept_alloc();
	freed_alloc();
	if (!strcmp(how, "exit_group"))
		syscall(SYS_exit_group, 0);
	raise(SIGKILL);
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "signal";
	pid_t child;

	if (strcmp(how, "child")) {
		work_and_die(how);
		return 1;
	}
	child = fork();
	if (child < 0)
		return 1;
	if (!child)
		work_and_die("signal");
	waitpid(child, NULL, 0);
	return 0;
}
