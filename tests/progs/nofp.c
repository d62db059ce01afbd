// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Built with -fomit-frame-pointer (PIE as nofp, non-PIE as nofp_nopie):
 * stacks only the CFI unwinder can walk. Each step on SIGUSR1:
 *   1. main -> level1 -> level2 -> level3 -> malloc(1111), 3 times;
 *      qsort's callback cmp_alloc allocates 77 bytes once, called from
 *      sort_with_callback; signal_alloc raises SIGUSR2, whose handler
 *      on_usr2 allocates 33 bytes (a stack through a signal frame);
 *      prints "step1".
 *   2. dlopen(libnofp_plugin.so) (no frame pointers either); "step2".
 *   3. plugin_alloc -> plugin_level1 -> plugin_level2 -> malloc(555),
 *      twice; "step3"; exit.
 * Without "wait" it runs the steps at once.
 */
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include "testprog.h"

static int waiting;

static void step(const char *name)
{
	if (name) {
		printf("%s\n", name);
		fflush(stdout);
	}
	if (waiting)
		wait_usr1();
}

/* Use rbp as a general register, so a frame-pointer walk goes astray. */
static volatile long sink;

NOINLINE void *level3(size_t n)
{
	void *p = malloc(n);

	sink += (long)n * 3;
	return hold(p);
}

NOINLINE void *level2(size_t n)
{
	void *p = level3(n);

	sink += (long)n;
	return p;
}

NOINLINE void *level1(size_t n)
{
	void *p = level2(n);

	sink -= (long)n;
	return p;
}

static int cmp_calls;

NOINLINE int cmp_alloc(const void *a, const void *b)
{
	if (!cmp_calls++)
		hold(malloc(77));
	return *(const int *)a - *(const int *)b;
}

NOINLINE void sort_with_callback(void)
{
	int v[8] = { 5, 3, 8, 1, 9, 2, 7, 4 };

	qsort(v, 8, sizeof(v[0]), cmp_alloc);
	sink += v[0];
}

NOINLINE void on_usr2(int sig)
{
	hold(malloc(33));
	sink += sig;
}

NOINLINE void signal_alloc(void)
{
	struct sigaction sa = { .sa_handler = on_usr2 };

	sigaction(SIGUSR2, &sa, NULL);
	raise(SIGUSR2);
	sink++;
}

int main(int argc, char **argv)
{
	void *lib;
	void (*plugin_alloc)(void);
	char path[4096];
	const char *slash = strrchr(argv[0], '/');

	waiting = argc > 1 && !strcmp(argv[1], "wait");
	if (waiting) {
		block_usr1();
		printf("thread none\nready\n");
		fflush(stdout);
		wait_usr1();
	}
	for (int i = 0; i < 3; i++)
		level1(1111);
	sort_with_callback();
	signal_alloc();
	step("step1");
	snprintf(path, sizeof(path), "%.*s/libnofp_plugin.so",
		 slash ? (int)(slash - argv[0]) : 1, slash ? argv[0] : ".");
	lib = dlopen(path, RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	plugin_alloc = (void (*)(void))dlsym(lib, "plugin_alloc");
	step("step2");
	plugin_alloc();
	printf("step3\n");
	return 0;
}
