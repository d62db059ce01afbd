// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include <errno.h>
#include "helpers.h"
#include "procmaps.h"

static struct mt_maps m;

static void load(void)
{
	char *text = slurp(FIXTURE("maps.txt"));

	cr_assert_not_null(text);
	cr_assert_eq(mt_procmaps__parse(text, &m), 0);
	free(text);
}

static void fini(void)
{
	mt_procmaps__clear(&m);
}

TestSuite(procmaps, .init = load, .fini = fini);

Test(procmaps, parses_every_line)
{
	cr_assert_eq(m.n, 11);
}

Test(procmaps, fields_of_a_file_mapping)
{
	const struct mt_map *x = &m.v[5];

	cr_assert_eq(x->start, 0x7f3e1a228000ULL);
	cr_assert_eq(x->end, 0x7f3e1a39d000ULL);
	cr_assert_eq(x->pgoff, 0x28000);
	cr_assert_eq(x->dev_major, 0xfe);
	cr_assert_eq(x->dev_minor, 0x01);
	cr_assert_eq(x->inode, 1054023);
	cr_assert(x->r && !x->w && x->x && !x->shared);
	cr_assert_str_eq(x->path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	cr_assert(mt_map__is_file(x));
}

Test(procmaps, path_with_spaces)
{
	cr_assert_str_eq(m.v[1].path, "/usr/bin/my prog");
}

Test(procmaps, deleted_suffix_stripped)
{
	cr_assert_str_eq(m.v[6].path, "/tmp/libplugin.so");
	cr_assert(m.v[6].deleted);
	cr_assert(!m.v[5].deleted);
	cr_assert(m.v[7].shared);
}

Test(procmaps, anonymous_and_special)
{
	cr_assert_str_eq(m.v[3].path, "");
	cr_assert(!mt_map__is_file(&m.v[3]));
	cr_assert_str_eq(m.v[2].path, "[heap]");
	cr_assert_str_eq(m.v[9].path, "[vdso]");
	cr_assert(!mt_map__is_file(&m.v[9]));
	cr_assert_eq(m.v[10].start, 0xffffffffff600000ULL);
}

Test(procmaps, find_by_address)
{
	cr_assert_eq(mt_procmaps__find(&m, 0x7f3e1a228000ULL), &m.v[5]);
	cr_assert_eq(mt_procmaps__find(&m, 0x7f3e1a39cfffULL), &m.v[5]);
	cr_assert_null(mt_procmaps__find(&m, 0x7f3e1a39d000ULL)); /* gap */
	cr_assert_eq(mt_procmaps__find(&m, 0x55d4a9c00000ULL), &m.v[0]);
	cr_assert_null(mt_procmaps__find(&m, 0x1000));
	cr_assert_eq(mt_procmaps__find(&m, 0xffffffffff600fffULL), &m.v[10]);
}

Test(procmaps_bad, malformed_line_rejected)
{
	struct mt_maps b;

	cr_assert_eq(mt_procmaps__parse("00400000-00401000 r-xp 0 fe:01\n", &b), -EINVAL);
	cr_assert_eq(mt_procmaps__parse("zzz\n", &b), -EINVAL);
	cr_assert_eq(b.n, 0);
}

Test(procmaps_bad, empty_and_no_trailing_newline)
{
	struct mt_maps b;

	cr_assert_eq(mt_procmaps__parse("", &b), 0);
	cr_assert_eq(b.n, 0);
	cr_assert_eq(mt_procmaps__parse("1000-2000 r-xp 00000000 08:01 5 /bin/x", &b), 0);
	cr_assert_eq(b.n, 1);
	cr_assert_str_eq(b.v[0].path, "/bin/x");
	mt_procmaps__clear(&b);
}

/* After an exec (or a dlclose): which of the old mappings are gone. */
Test(procmaps, gone_mappings)
{
	struct mt_maps old, now;
	size_t idx[4];

	cr_assert_eq(mt_procmaps__parse("1000-2000 r-xp 00000000 08:01 5 /bin/a\n"
					"3000-4000 r-xp 00001000 08:01 6 /lib/b.so\n"
					"5000-6000 r-xp 00000000 08:01 7 /lib/c.so\n"
					"7000-8000 rw-p 00000000 00:00 0\n",
					&old),
		     0);
	/* a stays; b's range now holds another offset; c is unmapped; the
	 * anonymous one grew at the same start */
	cr_assert_eq(mt_procmaps__parse("1000-2000 r-xp 00000000 08:01 5 /bin/a\n"
					"3000-4000 r-xp 00002000 08:01 6 /lib/b.so\n"
					"7000-9000 rw-p 00000000 00:00 0\n",
					&now),
		     0);
	cr_assert_eq(mt_procmaps__gone(&old, &now, idx), 3);
	cr_assert_eq(idx[0], 1);
	cr_assert_eq(idx[1], 2);
	cr_assert_eq(idx[2], 3);
	/* nothing gone from a process against itself */
	cr_assert_eq(mt_procmaps__gone(&now, &now, idx), 0);
	mt_procmaps__clear(&old);
	mt_procmaps__clear(&now);
}
