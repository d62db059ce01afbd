// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* dlopen'd by nofp, built without frame pointers: 2 x 555 bytes from
 * plugin_alloc -> plugin_level1 -> plugin_level2. */
#include <stdlib.h>
#include "testprog.h"

static volatile long sink;

NOINLINE void *plugin_level2(size_t n)
{
	void *p = malloc(n);

	sink += (long)n;
	return hold(p);
}

NOINLINE void *plugin_level1(size_t n)
{
	void *p = plugin_level2(n);

	sink -= (long)n;
	return p;
}

void plugin_alloc(void)
{
	for (int i = 0; i < 2; i++)
		plugin_level1(555);
}
