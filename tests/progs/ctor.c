// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* A constructor's allocation, made before main: early_init keeps 777 bytes. */
#include <stdlib.h>
#include "testprog.h"

__attribute__((constructor)) NOINLINE void early_init(void)
{
	hold(malloc(777));
}

int main(void)
{
	return 0;
}
