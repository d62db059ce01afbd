// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Many places that allocate, over and over: the capacity of memtrace's
 * remembered walks (walk_memo). 256 functions site_1DDDD (DDDD: the four
 * base-4 digits of 0..255) each malloc(1DDDD - 9999) and free it at once;
 * main calls all of them, in turn, ROUNDS times, pinned to one CPU (the
 * walks are remembered per CPU). 256 starts (one pc each, one sp) with
 * one stack each: all of them fit only if the table holds clearly more
 * than 256 walks a CPU. Prints "done".
 */
#define _GNU_SOURCE
#include <sched.h>

#include "testprog.h"

#define ROUNDS 40

static void *volatile sink;

#define SITE(n)                                                                                    \
	NOINLINE void site_##n(void)                                                               \
	{                                                                                          \
		void *p = malloc(n - 9999);                                                        \
                                                                                                   \
		sink = p;                                                                          \
		free(p);                                                                           \
	}
#define D4(p)	SITE(p##0) SITE(p##1) SITE(p##2) SITE(p##3)
#define D16(p)	D4(p##0) D4(p##1) D4(p##2) D4(p##3)
#define D64(p)	D16(p##0) D16(p##1) D16(p##2) D16(p##3)
#define D256(p) D64(p##0) D64(p##1) D64(p##2) D64(p##3)

D256(1)

#undef SITE
#define SITE(n) site_##n,

static void (*const sites[])(void) = { D256(1) };

int main(void)
{
	int cpu = sched_getcpu();
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return 1;
	for (int r = 0; r < ROUNDS; r++)
		for (unsigned int i = 0; i < sizeof(sites) / sizeof(sites[0]); i++)
			sites[i]();
	puts("done");
	return 0;
}
