// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Aggregation, leak selection and ranking, on a synthetic snapshot:
 *   pid 100 (live):   stack A  3 blocks of 1000 at t=1s, 2s, 9s
 *                     stack B  allocated and freed
 *                     stack D  2 blocks of 1500 at t=9.5s
 *   pid 200 (exited): stack C  1 block of 512 at t=8s
 * now = 10 s, min-age 5 s.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "helpers.h"
#include "render.h"
#include "report.h"

#define S 1000000000ULL

static struct mt_proc procs[2] = {
	{ .pid = 100, .comm = "app", .exe = "/usr/bin/app", .cgroup = "/system.slice/app.service" },
	{ .pid = 200, .comm = "done", .exe = "/usr/bin/done", .exited = true },
};

/* what was allocated; the rest follows from the live blocks */
static struct mt_stat_entry stats[] = {
	{ { 100, 0, 0xA }, { 5000, 5 } },
	{ { 100, 0, 0xB }, { 100, 1 } },
	{ { 200, 0, 0xC }, { 512, 1 } },
	{ { 100, 0, 0xD }, { 3000, 2 } },
};

static struct mt_alloc_entry allocs[] = {
	{ { 100, 0, 0x1000 }, { 1000, 1 * S, 0xA, 1, 100, 0, 0 } },
	{ { 100, 0, 0x2000 }, { 1000, 2 * S, 0xA, 1, 100, 0, 0 } },
	{ { 100, 0, 0x3000 }, { 1000, 9 * S, 0xA, 1, 100, 0, 0 } },
	{ { 200, 0, 0x1000 }, { 512, 8 * S, 0xC, 1, 200, 0, 0 } },
	{ { 100, 0, 0x4000 }, { 1500, 9 * S + S / 2, 0xD, 1, 100, 0, 0 } },
	{ { 100, 0, 0x5000 }, { 1500, 9 * S + S / 2, 0xD, 1, 100, 0, 0 } },
};

static struct mt_snapshot snap(void)
{
	struct mt_snapshot s = {
		.stats = stats, .nstats = 4, .allocs = allocs, .nallocs = 6,
		.peak_bytes = 9000, .now_ns = 10 * S,
	};

	s.counters[MT_CNT_ALLOC_FAILED] = 1;
	s.counters[MT_CNT_LOST_FREE_UNTRACKED] = 2;
	s.counters[MT_CNT_LOST_STACKS_FULL] = 1;
	return s;
}

static struct mt_report build(uint64_t top)
{
	struct mt_snapshot s = snap();
	struct mt_report_opts o = { .top = top, .min_age_ns = 5 * S, .duration_s = 12.5,
				    .final = true };
	struct mt_report r;

	cr_assert_eq(mt_report__build(&s, procs, 2, &o, &r), 0);
	r.self = (struct mt_self){ .cpu_s = 0.25, .max_rss_kib = 12345 };
	return r;
}

#define TOP(r, i) (&(r).entries[(r).top[i]])
#define LEAK(r, i) (&(r).entries[(r).leaks[i]])

Test(report, totals_and_lost)
{
	struct mt_report r = build(0);

	/* totals are the sums over the stacks */
	cr_assert_eq(r.totals.alloc_count, 9);
	cr_assert_eq(r.totals.alloc_bytes, 8612);
	cr_assert_eq(r.totals.free_count, 3);
	cr_assert_eq(r.totals.free_bytes, 2100);
	cr_assert_eq(r.totals.outstanding_count, 6);
	cr_assert_eq(r.totals.outstanding_bytes, 6512);
	cr_assert_eq(r.totals.peak_outstanding_bytes, 9000);
	cr_assert_eq(r.totals.alloc_failed, 1);
	cr_assert_eq(r.lost[MT_CNT_LOST_FREE_UNTRACKED - MT_CNT__EVENTS], 2);
	cr_assert_eq(r.lost_total, 3);
	mt_report__clear(&r);
}

Test(report, ranked_by_outstanding_then_allocated)
{
	struct mt_report r = build(0);

	cr_assert_eq(r.ntop, 4);
	cr_assert_eq(TOP(r, 0)->stack_id, 0xA); /* 3000, allocated 5000 */
	cr_assert_eq(TOP(r, 1)->stack_id, 0xD); /* 3000, allocated 3000 */
	cr_assert_eq(TOP(r, 2)->stack_id, 0xC);
	cr_assert_eq(TOP(r, 3)->stack_id, 0xB);
	cr_assert_eq(TOP(r, 0)->proc, &procs[0]);
	cr_assert_eq(TOP(r, 2)->proc, &procs[1]);
	mt_report__clear(&r);
}

Test(report, freed_is_allocated_minus_live)
{
	struct mt_report r = build(0);

	/* A: 5 allocated, 3 live */
	cr_assert_eq(TOP(r, 0)->st.outstanding_bytes, 3000);
	cr_assert_eq(TOP(r, 0)->st.outstanding_count, 3);
	cr_assert_eq(TOP(r, 0)->st.free_bytes, 2000);
	cr_assert_eq(TOP(r, 0)->st.free_count, 2);
	/* B: nothing live */
	cr_assert_eq(TOP(r, 3)->st.outstanding_bytes, 0);
	cr_assert_eq(TOP(r, 3)->st.free_bytes, 100);
	cr_assert_eq(TOP(r, 3)->st.free_count, 1);
	mt_report__clear(&r);
}

Test(report, live_block_ahead_of_its_totals)
{
	/* read between BPF's insert into allocs and its stack's totals */
	struct mt_stat_entry st[] = { { { 100, 0, 0xA }, { 1000, 1 } } };
	struct mt_alloc_entry al[] = {
		{ { 100, 0, 0x1000 }, { 1000, 1 * S, 0xA, 1, 100, 0, 0 } },
		{ { 100, 0, 0x2000 }, { 24, 2 * S, 0xA, 1, 100, 0, 0 } },
	};
	struct mt_snapshot s = { .stats = st, .nstats = 1, .allocs = al, .nallocs = 2,
				 .now_ns = 3 * S };
	struct mt_report_opts o = { 0 };
	struct mt_report r;

	cr_assert_eq(mt_report__build(&s, procs, 2, &o, &r), 0);
	cr_assert_eq(r.entries[0].st.alloc_bytes, 1024);
	cr_assert_eq(r.entries[0].st.alloc_count, 2);
	cr_assert_eq(r.entries[0].st.free_bytes, 0);
	cr_assert_eq(r.entries[0].st.free_count, 0);
	cr_assert_eq(r.totals.alloc_bytes, 1024);
	cr_assert_eq(r.totals.free_bytes, 0);
	mt_report__clear(&r);
}

Test(report, top_limits_both_lists)
{
	struct mt_report r = build(1);

	cr_assert_eq(r.ntop, 1);
	cr_assert_eq(r.nleaks, 1);
	cr_assert_eq(TOP(r, 0)->stack_id, 0xA);
	mt_report__clear(&r);
}

Test(report, leaks_by_age_and_exit)
{
	struct mt_report r = build(0);

	cr_assert_eq(r.nleaks, 2);
	/* A: the blocks from t=1s and t=2s are older than 5 s; t=9s is not */
	cr_assert_eq(LEAK(r, 0)->stack_id, 0xA);
	cr_assert_eq(LEAK(r, 0)->leak_bytes, 2000);
	cr_assert_eq(LEAK(r, 0)->leak_count, 2);
	cr_assert_eq(LEAK(r, 0)->oldest_ts_ns, 1 * S);
	/* C: only 2 s old, but its process exited without freeing it */
	cr_assert_eq(LEAK(r, 1)->stack_id, 0xC);
	cr_assert_eq(LEAK(r, 1)->leak_bytes, 512);
	cr_assert(LEAK(r, 1)->exited);
	mt_report__clear(&r);
}

Test(report, empty_snapshot)
{
	struct mt_snapshot s = { .now_ns = S };
	struct mt_report_opts o = { .top = 10 };
	struct mt_report r;

	cr_assert_eq(mt_report__build(&s, NULL, 0, &o, &r), 0);
	cr_assert_eq(r.ntop, 0);
	cr_assert_eq(r.nleaks, 0);
	mt_report__clear(&r);
}

Test(report, stack_kinds)
{
	cr_assert_str_eq(mt_stack_kind(0x1234), "user");
	cr_assert_str_eq(mt_stack_kind(MT_STACK_KERNEL | 5), "kernel");
	cr_assert_str_eq(mt_stack_kind(MT_STACK_MMAP | 5), "mmap");
	cr_assert_str_eq(mt_stack_kind(MT_STACK_BRK | 5), "brk");
}

Test(report, allocator_frames_skipped)
{
	struct mt_frame f[] = {
		{ .raw_symbol = "_Znwm" },
		{ .raw_symbol = "_ZnwmSt11align_val_t" },
		{ .raw_symbol = "_ZN3app5Cache4fillEi" },
		{ .raw_symbol = "main" },
	};

	cr_assert_eq(mt_frames__skip_allocator(f, 4), 2);
	cr_assert_eq(mt_frames__skip_allocator(f + 2, 2), 0);
	cr_assert_eq(mt_frames__skip_allocator(f, 2), 1); /* keeps one */
	cr_assert_eq(mt_frames__skip_allocator(f, 0), 0);
}

/* Frames for the golden rendering: an inlined frame, an unknown one. */
static struct mt_frame fa[] = {
	{ 0x401136, "grow_inline", "grow_inline", 0, "/usr/bin/app", "/src/app.c", 12, true },
	{ 0x401136, "leaky_fn", "leaky_fn", 0x16, "/usr/bin/app", "/src/app.c", 30, false },
	{ 0x4011a0, "main", "main", 0x40, "/usr/bin/app", "/src/app.c", 41, false },
};
static struct mt_frame fc[] = {
	{ 0x7f0000001000, NULL, NULL, 0, NULL, NULL, 0, false },
};

static void golden(const char *name, const char *got)
{
	char path[512], *want;

	snprintf(path, sizeof(path), GOLDEN("%s"), name);
	if (getenv("MT_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");

		fputs(got, f);
		fclose(f);
	}
	want = slurp(path);
	cr_assert_not_null(want, "missing %s", path);
	cr_assert_str_eq(got, want, "%s differs:\n%s", name, got);
	free(want);
}

static void render(bool json, const char *name)
{
	struct mt_report r = build(0);
	struct mt_render_opts ro = { .min_age_s = 5 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < r.nentries; i++) {
		if (r.entries[i].stack_id == 0xA) {
			r.entries[i].frames = malloc(sizeof(fa));
			memcpy(r.entries[i].frames, fa, sizeof(fa));
			r.entries[i].nframes = 3;
		} else if (r.entries[i].stack_id == 0xC) {
			r.entries[i].frames = malloc(sizeof(fc));
			memcpy(r.entries[i].frames, fc, sizeof(fc));
			r.entries[i].nframes = 1;
			r.entries[i].truncated = true; /* a walk that stopped early */
		}
	}
	if (json)
		mt_render__json(&r, &ro, f);
	else
		mt_render__text(&r, &ro, f);
	fclose(f);
	golden(name, buf);
	free(buf);
	mt_report__clear(&r);
}

Test(render, json_golden)
{
	render(true, "report.json");
}

Test(render, text_golden)
{
	render(false, "report.txt");
}

Test(report, peak_never_below_outstanding)
{
	/* the BPF peak is taken per batch of changes; a report's exact
	 * outstanding total raises it */
	struct mt_snapshot s = snap();
	struct mt_report_opts o = { .min_age_ns = 5 * S, .final = true };
	struct mt_report r;

	s.peak_bytes = 100;
	cr_assert_eq(mt_report__build(&s, procs, 2, &o, &r), 0);
	cr_assert_eq(r.totals.peak_outstanding_bytes, 6512);
	mt_report__clear(&r);
}

Test(report, block_times_from_jiffies)
{
	struct mt_clock c = { .jiffies = 100000, .mono_ns = 500 * S, .hz = 250 };
	struct mt_clock ns = { .jiffies = 100000, .mono_ns = 500 * S };
	struct mt_clock hz300 = { .jiffies = 1000, .mono_ns = 500 * S, .hz = 300 };
	struct mt_clock years = { .jiffies = 1ULL << 40, .mono_ns = 1ULL << 62, .hz = 1000 };

	cr_assert_eq(mt_block_time_ns(&c, 100000), 500 * S);
	cr_assert_eq(mt_block_time_ns(&c, 100000 - 250), 499 * S);
	cr_assert_eq(mt_block_time_ns(&c, 100000 - 1), 500 * S - 4000000);
	/* a jiffy that is not a whole number of ns */
	cr_assert_eq(mt_block_time_ns(&hz300, 999), 500 * S - 3333333);
	cr_assert_eq(mt_block_time_ns(&hz300, 1000 - 3 * 300 - 1), 497 * S - 3333333);
	/* read after the clocks (another CPU): now, not the future */
	cr_assert_eq(mt_block_time_ns(&c, 100001), 500 * S);
	cr_assert_eq(mt_block_time_ns(&c, 0), 100 * S);
	/* older than CLOCK_MONOTONIC's start (jiffies start below 0): 0, not
	 * a wrap */
	c.mono_ns = 1 * S;
	cr_assert_eq(mt_block_time_ns(&c, 0), 0);
	cr_assert_eq(mt_block_time_ns(&hz300, 0), 500 * S - 3333333333ULL);
	/* 2^40 ticks: no overflow in the product */
	cr_assert_eq(mt_block_time_ns(&years, 0), (1ULL << 62) - (1ULL << 40) * 1000000);
	/* HZ unknown: BPF stored ns */
	cr_assert_eq(mt_block_time_ns(&ns, 123 * S), 123 * S);
}

Test(report, kept_totals_merge_into_a_snapshot)
{
	/* the map's entries, and those of exited processes kept outside it */
	struct mt_stat_entry *mine = malloc(2 * sizeof(*mine));
	struct mt_stat_entry kept[] = {
		{ { 300, 7, 0xE }, { 400, 4 } },
		{ { 100, 0, 0xA }, { 50, 1 } }, /* the same key: summed */
	};
	struct mt_snapshot s = { .stats = mine, .nstats = 2 };

	mine[0] = (struct mt_stat_entry){ { 100, 0, 0xA }, { 1000, 2 } };
	mine[1] = (struct mt_stat_entry){ { 100, 0, 0xB }, { 10, 1 } };
	cr_assert_eq(mt_snapshot__add_stats(&s, kept, 2), 0);
	cr_assert_eq(s.nstats, 3);
	cr_assert_eq(s.stats[0].v.alloc_bytes, 1050);
	cr_assert_eq(s.stats[0].v.alloc_count, 3);
	cr_assert_eq(s.stats[1].v.alloc_bytes, 10);
	cr_assert_eq(s.stats[2].k.tgid, 300);
	cr_assert_eq(s.stats[2].k.gen, 7);
	cr_assert_eq(s.stats[2].k.stack_id, 0xE);
	cr_assert_eq(s.stats[2].v.alloc_bytes, 400);
	/* nothing to add: unchanged */
	cr_assert_eq(mt_snapshot__add_stats(&s, NULL, 0), 0);
	cr_assert_eq(s.nstats, 3);
	free(s.stats);
}

/* An exited process's blocks kept outside the map as one sum a stack
 * (mt_tracer__retire) report as the blocks themselves did. */
Test(report, kept_blocks_report_as_the_blocks)
{
	struct mt_stat_entry st[] = { { { 200, 5, 0xC }, { 2048, 4 } } };
	struct mt_alloc_entry blocks[] = {
		{ { 200, 5, 0x1000 }, { 512, 3 * S, 0xC, 1, 200, 5, 0 } },
		{ { 200, 5, 0x2000 }, { 512, 8 * S, 0xC, 1, 200, 5, 0 } },
		{ { 200, 5, 0x3000 }, { 512, 5 * S, 0xC, 1, 200, 5, 0 } },
	};
	struct mt_alloc_entry sum = { { 200, 5, 0 }, { 1536, 3 * S, 0xC, 3, 200, 5, 0 } };
	struct mt_proc gone = { .pid = 200, .gen = 5, .comm = "done", .exited = true };
	struct mt_report_opts o = { .min_age_ns = 100 * S, .final = true };
	struct mt_snapshot a = { .stats = st, .nstats = 1, .allocs = blocks, .nallocs = 3,
				 .now_ns = 10 * S };
	struct mt_snapshot b = { .stats = st, .nstats = 1, .now_ns = 10 * S };
	struct mt_report ra, rb;
	const struct mt_entry *x, *y;

	cr_assert_eq(mt_snapshot__add_allocs(&b, &sum, 1), 0);
	cr_assert_eq(b.nallocs, 1);
	cr_assert_eq(mt_report__build(&a, &gone, 1, &o, &ra), 0);
	cr_assert_eq(mt_report__build(&b, &gone, 1, &o, &rb), 0);
	cr_assert_eq(ra.nentries, 1);
	cr_assert_eq(rb.nentries, 1);
	x = &ra.entries[0];
	y = &rb.entries[0];
	cr_assert_eq(y->st.outstanding_bytes, 1536);
	cr_assert_eq(y->st.outstanding_count, 3);
	cr_assert_eq(y->st.free_count, 1);
	cr_assert_eq(y->oldest_ts_ns, 3 * S);
	/* exited: all its blocks are leaks, whatever their age */
	cr_assert_eq(y->leak_bytes, 1536);
	cr_assert_eq(y->leak_count, 3);
	cr_assert_eq(memcmp(&x->st, &y->st, sizeof(x->st)), 0);
	cr_assert_eq(x->oldest_ts_ns, y->oldest_ts_ns);
	cr_assert_eq(x->leak_bytes, y->leak_bytes);
	cr_assert_eq(x->leak_count, y->leak_count);
	cr_assert_eq(memcmp(&ra.totals, &rb.totals, sizeof(ra.totals)), 0);
	mt_report__clear(&ra);
	mt_report__clear(&rb);
	free(b.allocs);
}

/* The block table's live slots join the blocks read from the hash: empty
 * slots and one being filled (MT_SLOT_BUSY) are not blocks. */
Test(report, table_slots_join_the_blocks)
{
	struct mt_slot slots[8] = {
		[1] = { 0x1000, 200, 5, { 512, 3 * S, 0xC, 1, 200, 5, 0 } },
		[2] = { MT_SLOT_BUSY, 200, 5, { 64, 4 * S, 0xC, 1, 200, 5, 0 } },
		[6] = { 0x3000, 201, 7, { 100, 5 * S, 0xD, 1, 201, 7, 0 } },
	};
	struct mt_alloc_entry *hash = malloc(sizeof(*hash));
	struct mt_snapshot s = { .allocs = hash, .nallocs = 1 };

	cr_assert_not_null(hash);
	hash[0] = (struct mt_alloc_entry){ { 200, 5, 0x2000 }, { 256, S, 0xC, 1, 200, 5, 0 } };
	cr_assert_eq(mt_snapshot__add_slots(&s, slots, 8), 0);
	cr_assert_eq(s.nallocs, 3);
	cr_assert_eq(s.allocs[0].k.addr, 0x2000);
	cr_assert_eq(s.allocs[1].k.addr, 0x1000);
	cr_assert_eq(s.allocs[1].k.tgid, 200);
	cr_assert_eq(s.allocs[1].k.gen, 5);
	cr_assert_eq(s.allocs[1].v.size, 512);
	cr_assert_eq(s.allocs[2].k.addr, 0x3000);
	cr_assert_eq(s.allocs[2].k.tgid, 201);
	cr_assert_eq(s.allocs[2].v.stack_id, 0xD);
	/* more than one growth step */
	{
		struct mt_slot *many = calloc(1000, sizeof(*many));

		cr_assert_not_null(many);
		for (int i = 0; i < 1000; i += 2)
			many[i] = (struct mt_slot){ 0x10000 + i * 16, 9, 1, { i, 0, 0xE, 1, 9, 1, 0 }, 0 };
		cr_assert_eq(mt_snapshot__add_slots(&s, many, 1000), 0);
		cr_assert_eq(s.nallocs, 503);
		cr_assert_eq(s.allocs[502].k.addr, 0x10000 + 998 * 16);
		cr_assert_eq(s.allocs[502].v.size, 998);
		free(many);
	}
	free(s.allocs);
}

/* A block BPF moved from the table to allocs while memtrace read them is
 * in both reads: counted once. Other blocks of allocs are all added, also
 * the same address of another process. */
Test(report, moved_block_counted_once)
{
	struct mt_alloc_entry *table = malloc(2 * sizeof(*table));
	struct mt_alloc_entry hash[] = {
		{ { 200, 5, 0x2000 }, { 64, S, 0xC, 1, 200, 5, 0 } },	/* moved */
		{ { 200, 5, 0x3000 }, { 32, S, 0xC, 1, 200, 5, 0 } },
		{ { 201, 5, 0x2000 }, { 16, S, 0xD, 1, 201, 5, 0 } },	/* another process */
		{ { 200, 6, 0x1000 }, { 8, S, 0xD, 1, 200, 6, 0 } },	/* a later one, same PID */
	};
	struct mt_snapshot s = { .allocs = table, .nallocs = 2 };
	struct mt_snapshot e = { 0 };

	cr_assert_not_null(table);
	table[0] = (struct mt_alloc_entry){ { 200, 5, 0x1000 }, { 128, S, 0xC, 1, 200, 5, 0 } };
	table[1] = (struct mt_alloc_entry){ { 200, 5, 0x2000 }, { 64, S, 0xC, 1, 200, 5, 0 } };
	cr_assert_eq(mt_snapshot__add_unique(&s, hash, 4), 0);
	cr_assert_eq(s.nallocs, 5);
	cr_assert_eq(s.allocs[2].k.addr, 0x3000);
	cr_assert_eq(s.allocs[3].k.tgid, 201);
	cr_assert_eq(s.allocs[4].k.gen, 6);
	free(s.allocs);
	/* nothing from the table: all of allocs */
	cr_assert_eq(mt_snapshot__add_unique(&e, hash, 4), 0);
	cr_assert_eq(e.nallocs, 4);
	free(e.allocs);
}
