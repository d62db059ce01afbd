/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef MT_TEST_HELPERS_H
#define MT_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>

#define FIXTURE(name) MT_SRCDIR "/tests/fixtures/" name
#define GOLDEN(name) MT_SRCDIR "/tests/golden/" name

static inline char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	if (fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

#endif
