/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The report model: built from a snapshot of the BPF maps, ranked, then
 * rendered. Pure: no BPF, no /proc, so it is unit-tested without root.
 */
#ifndef MT_REPORT_H
#define MT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "memtrace.h"

/* One symbolized frame; strings are owned by whoever filled them in. */
struct mt_frame {
	uint64_t addr;
	const char *symbol;	/* demangled; NULL if unknown */
	const char *raw_symbol;	/* as in the ELF symbol table */
	uint64_t offset;	/* addr - symbol start */
	const char *module;	/* path of the mapped file, or NULL */
	const char *file;	/* source file, or NULL */
	int line;		/* 0 if unknown */
	bool inlined;
};

struct mt_stat_entry {
	struct mt_stats_key k;
	struct mt_stats v;
};

struct mt_alloc_entry {
	struct mt_alloc_key k;
	struct mt_alloc v;
};

/* What the tracer read from the maps at one moment. */
struct mt_snapshot {
	struct mt_stat_entry *stats;
	size_t nstats;
	struct mt_alloc_entry *allocs;
	size_t nallocs;
	uint64_t counters[MT_CNT__COUNT];
	uint64_t peak_bytes;
	uint64_t now_ns;	/* CLOCK_MONOTONIC, same clock as ts_ns */
};

struct mt_proc {
	pid_t pid;
	uint32_t gen;		/* its start, as BPF names it (mt_alloc_key); 0: not seen */
	char comm[32];
	char exe[4096];
	char cgroup[512];	/* cgroup v2 path ("0::" line), "" if unknown */
	bool exited;
};

/* One stack's numbers: allocated from the stats map, outstanding from
 * the live blocks, freed the difference. */
struct mt_stack_totals {
	uint64_t outstanding_bytes, outstanding_count;
	uint64_t alloc_bytes, alloc_count;
	uint64_t free_bytes, free_count;
};

struct mt_entry {
	pid_t pid;
	uint32_t gen;		/* the process's start time (mt_proc.gen) */
	uint64_t stack_id;
	struct mt_stack_totals st;
	uint64_t leak_bytes;	/* outstanding and older than min-age, or exited */
	uint64_t leak_count;
	uint64_t oldest_ts_ns;	/* oldest outstanding allocation; 0: none */
	bool exited;		/* the process has exited */
	bool kernel;		/* a kernel stack (--kernel) */
	bool truncated;		/* the stack ends before its outermost frame */
	const char *kind;	/* "user", "kernel", "mmap", "brk" */
	const struct mt_proc *proc;
	struct mt_frame *frames;
	size_t nframes;
};

struct mt_totals {
	uint64_t alloc_count, alloc_bytes, free_count, free_bytes;
	uint64_t outstanding_count, outstanding_bytes, peak_outstanding_bytes;
	uint64_t alloc_failed, nested, size_filtered;
	uint64_t kernel_recursion; /* memtrace's own kernel allocations skipped */
};

/* memtrace's own cost, userspace only (BPF runs in the target's time). */
struct mt_self {
	double cpu_s;
	uint64_t max_rss_kib;
	bool bpf_measured;	/* --bpf-stats: the programs' runs and time */
	uint64_t bpf_runs, bpf_ns;
};

struct mt_report {
	int version;
	uint64_t sample_bytes;
	struct mt_self self;
	bool final;
	double duration_s;
	uint64_t now_ns;
	const struct mt_proc *procs;
	size_t nprocs;
	struct mt_entry *entries; /* one per (pid, stack) */
	size_t nentries;
	size_t *top;		/* indices into entries, ranked */
	size_t ntop;
	size_t *leaks;
	size_t nleaks;
	struct mt_totals totals;
	uint64_t lost[MT_CNT__COUNT - MT_CNT__EVENTS];
	uint64_t lost_total;
};

struct mt_report_opts {
	uint64_t sample_bytes;	/* numbers are estimates when not 0 */
	uint64_t top;		/* 0: all */
	uint64_t min_age_ns;
	double duration_s;
	bool final;
};

/* Add per-stack totals kept outside the BPF map (exited processes') to a
 * snapshot's; a key in both is summed. 0 or -ENOMEM. */
int mt_snapshot__add_stats(struct mt_snapshot *s, const struct mt_stat_entry *more, size_t n);

/* Add blocks kept outside the BPF map (exited processes', one sum per
 * stack) to a snapshot's. 0 or -ENOMEM. */
int mt_snapshot__add_allocs(struct mt_snapshot *s, const struct mt_alloc_entry *more, size_t n);

/* Add the live blocks of BPF's block table (n slots, mapped: it changes
 * while read; a slot being filled or emptied is skipped) to a snapshot's.
 * 0 or -ENOMEM. */
int mt_snapshot__add_slots(struct mt_snapshot *s, const struct mt_slot *slots, size_t n);

/* Add the blocks read from BPF's allocs map after its block table: a key
 * the snapshot has already is a block BPF moved from the table to allocs
 * while memtrace read them, and is counted once. 0 or -ENOMEM. */
int mt_snapshot__add_unique(struct mt_snapshot *s, const struct mt_alloc_entry *more, size_t n);

/* A block's time (mt_alloc.ts) as CLOCK_MONOTONIC ns, given both clocks
 * read at one moment (c->hz 0: it is ns already). */
uint64_t mt_block_time_ns(const struct mt_clock *c, uint64_t ts);

/* "user", "kernel", "mmap" or "brk", from the kind bits of a stack id. */
const char *mt_stack_kind(uint64_t stack_id);

/* Names of the lost counters, in enum order (JSON keys). */
extern const char *const mt_lost_names[MT_CNT__COUNT - MT_CNT__EVENTS];

int mt_report__build(const struct mt_snapshot *snap, const struct mt_proc *procs,
		     size_t nprocs, const struct mt_report_opts *o, struct mt_report *r);
void mt_report__clear(struct mt_report *r);
/* Drop leading frames of the allocator itself (operator new and friends). */
size_t mt_frames__skip_allocator(const struct mt_frame *f, size_t n);

#endif
