// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Known totals for --sample-bytes through operator new, which calls
 * malloc: each allocation must get one chance to be sampled, not two.
 *   new_arrays  200,000 x new char[256]  kept  (51,200,000 B)
 */
#include "testprog.h"

static char *kept[200000];

NOINLINE void new_arrays(void)
{
	for (int i = 0; i < 200000; i++)
		kept[i] = new char[256];
}

int main()
{
	new_arrays();
	return kept[199999] == nullptr;
}
