// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A C++ allocation mix through libstdc++: strings, vector growth, map
 * nodes. Usage: cxx_work ROUNDS. Prints a checksum (so nothing is elided),
 * then the seconds the loop took, timed inside (no tracer start-up).
 */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? std::atol(argv[1]) : 2000;
	unsigned long sum = 0;
	auto t0 = std::chrono::steady_clock::now();

	for (long r = 0; r < rounds; r++) {
		std::map<int, std::string> m;
		std::vector<std::string> v;

		for (int i = 0; i < 50; i++) {
			m[i] = std::string("value-with-a-long-enough-body-") + std::to_string(i);
			v.push_back(m[i]);
		}
		for (auto &s : v)
			sum += s.size();
	}
	std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
	std::printf("%lu\n%.6f\n", sum, dt.count());
	return 0;
}
