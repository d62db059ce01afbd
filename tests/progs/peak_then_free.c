// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A peak below one CPU's 4 KiB batch, seen only by a report: 3 x 1000
 * bytes held for 1.5 s, then freed, then 1.5 s more. With -i 1 the first
 * report shows 3,000 outstanding; the final one 0, with peak 3,000.
 */
#include <unistd.h>
#include "testprog.h"

NOINLINE void hold_three(void **p)
{
	for (int i = 0; i < 3; i++)
		p[i] = hold(malloc(1000));
}

int main(void)
{
	void *p[3];

	hold_three(p);
	usleep(1500000);
	for (int i = 0; i < 3; i++)
		free(p[i]);
	usleep(1500000);
	return 0;
}
