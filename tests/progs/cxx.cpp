// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * C++ through libstdc++'s operator new, with names to demangle:
 *   app::Cache::fill(int)        new Item x 10, 48 bytes each = 480, kept
 *   app::Cache::table(unsigned long)  new Item[n]: 20 * 48 = 960, kept
 *   app::make_buffer<int>(unsigned long) new int[256] = 1024, deleted
 */
#include <cstddef>
#include <cstdio>
#include <new>

#define NOINLINE __attribute__((noinline))

namespace app {

struct Item {
	long v[6];
};

static Item *volatile sink;

class Cache {
public:
	NOINLINE void fill(int n)
	{
		for (int i = 0; i < n; i++)
			sink = new Item();
	}
	NOINLINE Item *table(std::size_t n)
	{
		return new Item[n];
	}
};

template <typename T> NOINLINE T *make_buffer(std::size_t n)
{
	return new T[n];
}

} // namespace app

int main()
{
	app::Cache c;

	c.fill(10);
	app::sink = c.table(20);
	int *b = app::make_buffer<int>(256);
	b[0] = 1;
	delete[] b;
	return 0;
}
