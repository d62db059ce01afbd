// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A block whose free memtrace never sees, and its address handed out
 * again, for --alloc-fn st_alloc --free-fn st_free. st_forget gives a
 * block back without telling (it is not a --free-fn).
 *   fill:      4 x st_alloc(100), the first st_free'd: 300 / 3 outstanding
 *   use_stale: p = st_alloc(200), forgotten; q = st_alloc(300) gets p's
 *              address: p's block is retired (lost.free_missed 1), q counts:
 *              alloc 2, outstanding 300 / 1
 * The four blocks of fill fill one set of memtrace's block table (4
 * slots with MEMTRACE_TEST_SLOTS=4, one set): p goes to the hash, and
 * the room fill's free leaves is where q would go.
 */
#include <stddef.h>
#include "testprog.h"

#define NOIPA __attribute__((noipa))

static char arena[1 << 16];
static size_t used;
static void *given_back[8];
static int ngiven;

NOIPA void *st_alloc(size_t n)
{
	void *p;

	if (ngiven)
		return given_back[--ngiven];
	p = arena + used;
	used += (n + 15) & ~(size_t)15;
	return p;
}

NOIPA void st_forget(void *p)
{
	given_back[ngiven++] = p;
}

NOIPA void st_free(void *p)
{
	(void)p; /* fill's block: never handed out again */
}

NOINLINE void **fill(void)
{
	static void *p[4];

	for (int i = 0; i < 4; i++)
		p[i] = hold(st_alloc(100));
	return p;
}

NOINLINE void *use_stale(void **filled)
{
	void *p = hold(st_alloc(200)), *q;

	st_free(filled[0]);
	st_forget(p);
	q = hold(st_alloc(300));
	return q == p ? q : NULL;
}

int main(void)
{
	return use_stale(fill()) ? 0 : 1;
}
