// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * On SIGUSR1 allocates 5000 bytes in before_exec (kept), prints "step1";
 * on the next, execs nofp (same directory) with "wait": the old image's
 * block is gone with it, the new image allocates its own
 * (tests/integration/test_system.py). With "now": no waiting, the
 * allocation, the exec and the new image's allocations microseconds apart.
 * "raw": as "now", with syscall(SYS_execve), which no exec wrapper sees.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "testprog.h"

extern char **environ;

NOINLINE void before_exec(void)
{
	hold(malloc(5000));
}

int main(int argc, char **argv)
{
	char path[4096];
	const char *slash = strrchr(argv[0], '/');
	bool raw = argc > 1 && !strcmp(argv[1], "raw");
	bool now = raw || (argc > 1 && !strcmp(argv[1], "now"));

	if (!now) {
		block_usr1();
		printf("thread none\nready\n");
		fflush(stdout);
		wait_usr1();
	}
	before_exec();
	if (!now) {
		printf("step1\n");
		fflush(stdout);
		wait_usr1();
	}
	snprintf(path, sizeof(path), "%.*s/nofp", slash ? (int)(slash - argv[0]) : 1,
		 slash ? argv[0] : ".");
	if (raw) {
		char *args[] = { path, "now", NULL };

		syscall(SYS_execve, path, args, environ);
	} else {
		execl(path, path, now ? "now" : "wait", (char *)NULL);
	}
	return 1;
}
