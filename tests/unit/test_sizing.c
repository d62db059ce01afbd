// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include "memtrace.h"

/* walk_memo stays within MT_MEMO_MAX_BYTES on machines with many CPUs */
Test(sizing, memo_entries)
{
	cr_assert_eq(mt_memo_entries(1, 192), 1024);
	cr_assert_eq(mt_memo_entries(2, 192), 1024);
	cr_assert_eq(mt_memo_entries(85, 192), 1024); /* 15.9 MiB */
	cr_assert_eq(mt_memo_entries(86, 192), 512);
	cr_assert_eq(mt_memo_entries(256, 192), 256); /* 12 MiB */
	cr_assert_eq(mt_memo_entries(8192, 192), 64); /* never below the minimum */
	for (__u64 ncpu = 1; ncpu <= 1365; ncpu++) {
		__u32 n = mt_memo_entries(ncpu, 192);

		cr_assert(n >= MT_MEMO_MIN && (n & (n - 1)) == 0, "ncpu %llu: %u", ncpu, n);
		cr_assert_leq(ncpu * n * 192, MT_MEMO_MAX_BYTES, "ncpu %llu", ncpu);
	}
}

/* The block table: a power of two no larger than --max-allocs, at least
 * one set, at most MT_DEFAULT_SLOTS */
Test(sizing, slot_count)
{
	cr_assert_eq(mt_slot_count(MT_DEFAULT_MAX_ALLOCS), MT_DEFAULT_SLOTS);
	cr_assert_eq(mt_slot_count(MT_DEFAULT_SLOTS), MT_DEFAULT_SLOTS);
	cr_assert_eq(mt_slot_count(MT_DEFAULT_SLOTS - 1), MT_DEFAULT_SLOTS / 2);
	cr_assert_eq(mt_slot_count(30), 16);
	cr_assert_eq(mt_slot_count(4), MT_SLOT_WAYS);
	cr_assert_eq(mt_slot_count(1), MT_SLOT_WAYS);
	cr_assert_eq(mt_slot_count(0), MT_SLOT_WAYS);
}
