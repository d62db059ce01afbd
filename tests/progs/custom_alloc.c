// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A custom allocator that never calls malloc, for --alloc-fn/--free-fn:
 *   use_custom  5 x my_alloc(100), 2 of them my_free'd: 300 / 3 outstanding
 *   use_pool    3 x pool_get(pool, 48), the size in the 2nd argument; it
 *               calls my_alloc itself: a nested call, counted once: 144 / 3
 */
#include <stddef.h>
#include "testprog.h"

#define NOIPA __attribute__((noipa))

static char arena[1 << 20];
static size_t used;

struct pool {
	int id;
};

NOIPA void *my_alloc(size_t n)
{
	void *p = arena + used;

	used += (n + 15) & ~(size_t)15;
	return p;
}

NOIPA void my_free(void *p)
{
	(void)p;
}

NOIPA void *pool_get(struct pool *pl, size_t n)
{
	(void)pl;
	return my_alloc(n);
}

NOINLINE void use_custom(void)
{
	void *p[5];

	for (int i = 0; i < 5; i++)
		p[i] = hold(my_alloc(100));
	my_free(p[0]);
	my_free(p[1]);
}

NOINLINE void use_pool(void)
{
	struct pool pl = { 1 };

	for (int i = 0; i < 3; i++)
		hold(pool_get(&pl, 48));
}

int main(void)
{
	use_custom();
	use_pool();
	return 0;
}
