/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Shared by the test programs: known flags come from the Makefile. */
#ifndef TESTPROG_H
#define TESTPROG_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

/* Stores pointers where the compiler cannot prove them dead, so it can
 * neither drop a malloc/free pair nor move an allocation. */
static void *volatile keep[4096];
static volatile size_t nkeep;

static inline void *hold(void *p)
{
	keep[nkeep++ % 4096] = p;
	return p;
}

/* Block until SIGUSR1: the test drives the program step by step. */
static inline void wait_usr1(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigwait(&set, &sig);
}

static inline void block_usr1(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

#endif
