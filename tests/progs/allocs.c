// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Every glibc allocation entry point, each from its own function, with
 * known sizes. Expected per function (outstanding bytes/count, allocs):
 *   use_malloc          3000 / 3   (3 x 1000)
 *   use_calloc          2000 / 2   (2 x 10*100)
 *   use_realloc_null    1100 / 1   realloc(NULL, n) is an allocation
 *   use_reallocarray    1200 / 1   (12 * 100)
 *   use_posix_memalign  1300 / 1
 *   use_aligned_alloc   1408 / 1
 *   use_memalign        1500 / 1
 *   use_valloc          1600 / 1
 *   use_pvalloc         1700 / 1   the size asked for, not the page
 *   use_free               0 / 0   5 allocated, 5 freed
 *   use_realloc_zero       0 / 0   1 allocated, freed by realloc(p, 0)
 *   use_realloc_fail    2000 / 1   the failed realloc keeps the block
 *   use_failed             no entry: NULL results are not recorded
 */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include "testprog.h"

static volatile size_t huge = SIZE_MAX / 2;

NOINLINE void use_malloc(void)
{
	for (int i = 0; i < 3; i++)
		hold(malloc(1000));
}

NOINLINE void use_calloc(void)
{
	for (int i = 0; i < 2; i++)
		hold(calloc(10, 100));
}

NOINLINE void use_realloc_null(void)
{
	hold(realloc(NULL, 1100));
}

NOINLINE void use_reallocarray(void)
{
	hold(reallocarray(NULL, 12, 100));
}

NOINLINE void use_posix_memalign(void)
{
	void *p;

	if (!posix_memalign(&p, 64, 1300))
		hold(p);
}

NOINLINE void use_aligned_alloc(void)
{
	hold(aligned_alloc(64, 1408));
}

NOINLINE void use_memalign(void)
{
	hold(memalign(64, 1500));
}

NOINLINE void use_valloc(void)
{
	hold(valloc(1600));
}

NOINLINE void use_pvalloc(void)
{
	hold(pvalloc(1700));
}

NOINLINE void use_free(void)
{
	void *p[5];

	for (int i = 0; i < 5; i++)
		p[i] = hold(malloc(1800));
	for (int i = 0; i < 5; i++)
		free(p[i]);
}

NOINLINE void use_realloc_zero(void)
{
	void *p = hold(malloc(1900));

	hold(realloc(p, 0));
}

NOINLINE void use_realloc_fail(void)
{
	void *p = hold(malloc(2000));

	if (realloc(p, huge))
		abort();
}

NOINLINE void use_failed(void)
{
	void *p;

	hold(malloc(huge));
	hold(calloc(huge, 4));
	if (!posix_memalign(&p, 3, 100))	/* bad alignment: EINVAL */
		abort();
}

int main(void)
{
	use_malloc();
	use_calloc();
	use_realloc_null();
	use_reallocarray();
	use_posix_memalign();
	use_aligned_alloc();
	use_memalign();
	use_valloc();
	use_pvalloc();
	use_free();
	use_realloc_zero();
	use_realloc_fail();
	use_failed();
	return 0;
}
