// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Allocations in a shared library (lib_make_buffer: 4 x 640 = 2560 bytes)
 * and through an always-inline helper (inline_alloc inlined into
 * use_inline: 3 x 96 = 288 bytes).
 */
#include <stdlib.h>
#include "testprog.h"

void *lib_make_buffer(int i);

static inline __attribute__((always_inline)) void *inline_alloc(size_t n)
{
	return hold(malloc(n));
}

NOINLINE void use_library(void)
{
	for (int i = 0; i < 4; i++)
		lib_make_buffer(i);
}

NOINLINE void use_inline(void)
{
	for (int i = 0; i < 3; i++)
		inline_alloc(96);
}

int main(void)
{
	use_library();
	use_inline();
	return 0;
}
