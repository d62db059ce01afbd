// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include <errno.h>
#include "pairmap.h"
#include "strutil.h"

Test(strutil, sizes)
{
	uint64_t v;

	cr_assert_eq(mt_parse_size("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(mt_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(mt_parse_size("4k", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(mt_parse_size("3M", &v), 0);
	cr_assert_eq(v, 3u << 20);
	cr_assert_eq(mt_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ULL << 30);
	cr_assert_eq(mt_parse_size("1KB", &v), 0);
	cr_assert_eq(v, 1024);
	cr_assert_eq(mt_parse_size("", &v), -EINVAL);
	cr_assert_eq(mt_parse_size("-1", &v), -EINVAL);
	cr_assert_eq(mt_parse_size("1X", &v), -EINVAL);
	cr_assert_eq(mt_parse_size("1KX", &v), -EINVAL);
	cr_assert_eq(mt_parse_size("99999999999999999999", &v), -ERANGE);
	cr_assert_eq(mt_parse_size("17179869184T", &v), -ERANGE);
}

Test(strutil, seconds)
{
	double d;

	cr_assert_eq(mt_parse_seconds("0.25", &d), 0);
	cr_assert_float_eq(d, 0.25, 1e-12);
	cr_assert_eq(mt_parse_seconds(".5", &d), 0);
	cr_assert_eq(mt_parse_seconds("-1", &d), -EINVAL);
	cr_assert_eq(mt_parse_seconds("inf", &d), -EINVAL);
	cr_assert_eq(mt_parse_seconds("1e999", &d), -ERANGE);
	cr_assert_eq(mt_parse_seconds("2s", &d), -EINVAL);
}

Test(strutil, bytes_formatting)
{
	char b[32];

	cr_assert_str_eq(mt_fmt_bytes(0, b, sizeof(b)), "0 B");
	cr_assert_str_eq(mt_fmt_bytes(1023, b, sizeof(b)), "1023 B");
	cr_assert_str_eq(mt_fmt_bytes(1536, b, sizeof(b)), "1.5 KiB");
	cr_assert_str_eq(mt_fmt_bytes(25600, b, sizeof(b)), "25.0 KiB");
	cr_assert_str_eq(mt_fmt_bytes(3ULL << 30, b, sizeof(b)), "3.0 GiB");
}

Test(pairmap, put_get_grow)
{
	struct mt_pairmap *m = mt_pairmap__new(1);

	cr_assert_eq(mt_pairmap__get(m, 0, 0), -1);
	/* key (0, 0) is a key like any other: never skipped */
	cr_assert_eq(mt_pairmap__put(m, 0, 0, 7), 0);
	for (uint64_t i = 1; i <= 10000; i++)
		cr_assert_eq(mt_pairmap__put(m, i, i * 31, (long)i), 0);
	cr_assert_eq(mt_pairmap__size(m), 10001);
	cr_assert_eq(mt_pairmap__get(m, 0, 0), 7);
	for (uint64_t i = 1; i <= 10000; i++)
		cr_assert_eq(mt_pairmap__get(m, i, i * 31), (long)i);
	cr_assert_eq(mt_pairmap__get(m, 5, 6), -1);
	cr_assert_eq(mt_pairmap__put(m, 5, 155, 99), 0);
	cr_assert_eq(mt_pairmap__get(m, 5, 155), 99);
	cr_assert_eq(mt_pairmap__size(m), 10001);
	mt_pairmap__free(m);
	mt_pairmap__free(NULL);
}

Test(strutil, grow)
{
	int *v = NULL;
	size_t cap = 0;

	for (size_t n = 0; n < 1000; n++) {
		cr_assert_eq(mt_grow((void **)&v, &cap, n + 1, sizeof(*v)), 0);
		cr_assert_geq(cap, n + 1);
		v[n] = (int)n;
	}
	for (size_t n = 0; n < 1000; n++)
		cr_assert_eq(v[n], (int)n, "kept across growth");
	cr_assert_lt(cap, 2048, "capacity doubles, no more");
	cr_assert_eq(mt_grow((void **)&v, &cap, SIZE_MAX / 2, sizeof(*v)), -ENOMEM);
	cr_assert_eq(mt_grow((void **)&v, &cap, SIZE_MAX, 1), -ENOMEM, "no endless doubling");
	cr_assert_eq(v[999], 999, "unchanged on failure");
	free(v);
}
