// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * C++ without frame pointers, allocating through libstdc++ (itself built
 * without them): fill_vector grows a std::vector<int> by push_back to
 * 1000 elements (capacities 1, 2, 4, ..., 1024: 11 allocations, the last
 * 4096 bytes outstanding); make_string builds a 100-character
 * std::string (one 101-byte allocation), kept.
 */
#include <string>
#include <vector>
#include "testprog.h"

static std::vector<int> *kept_vector;
static std::string *kept_string;

NOINLINE void fill_vector()
{
	auto *v = new std::vector<int>();	/* 24 bytes, from main's call */

	for (int i = 0; i < 1000; i++)
		v->push_back(i);
	kept_vector = v;
}

NOINLINE void make_string()
{
	kept_string = new std::string(100, 'x');
}

int main()
{
	fill_vector();
	make_string();
	hold(kept_vector);
	hold(kept_string);
	return 0;
}
