// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* A shared library that allocates: lib_make_buffer keeps 4 x 640 bytes. */
#include <stdlib.h>

static void *volatile keep[8];

__attribute__((noinline)) void *lib_make_buffer(int i)
{
	return keep[i] = malloc(640);
}
