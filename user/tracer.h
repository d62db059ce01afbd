/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The BPF side's lifecycle: load, attach to processes, read the maps. */
#ifndef MT_TRACER_H
#define MT_TRACER_H

#include <stdint.h>
#include <sys/types.h>
#include "memtrace.h"
#include "report.h"

struct mt_tracer;

struct mt_tracer_opts {
	uint64_t min_size, max_size;
	uint32_t max_depth;
	uint64_t max_allocs, max_stacks;
	uint64_t max_allocs_per_proc;	/* 0: none */
	bool probe_floor;	/* empty programs at the same sites (bench) */
	bool bpf_stats;		/* measure the programs' run time */
	bool no_session;	/* tests: entry and return links, as before Linux 6.13 */
	bool no_kconfig;	/* tests: as without the kernel's config (CONFIG_HZ) */
	bool no_memo;		/* tests: walk every user stack (no walk_memo) */
	bool memo_no_tags;	/* tests: walk_memo checks by its hash alone */
	bool mmap;		/* --mmap: mmap, munmap, mremap, sbrk are traced */
	bool preload;		/* --preload: malloc, free... at the preload library's sites */
	bool batch;		/* --batch: and the library's batches at its batch site */
	uint64_t sample_bytes;	/* 0: every allocation */
	bool kernel;		/* also the kernel's allocations (--kernel) */
	bool unwind_fp;		/* --unwind fp: no CFI unwinding */
	uint64_t stack_hash_mask; /* tests: weaken the stack hash (0: full) */
	uint32_t batch_keys;	/* tests: batch_stacks's size (0: by max_stacks) */
	uint32_t slots;		/* tests: the block table's slots (0: by max_allocs) */
	bool all;		/* -a: probes without PID filter, processes chosen in BPF */
	pid_t self;		/* memtrace's own PID: never traced */
	const char (*comms)[16]; /* --comm names */
	int ncomms;
	int cgroup_fd;		/* --cgroup: an open cgroup v2 directory, or -1 */
	uint64_t irqentry_lo, irqentry_hi; /* from kallsyms; 0: unknown */
};

/* Kernel allocation tracepoints; missing ones are disabled, not fatal. */
#define MT_KERNEL_TPS 9

#include "probesite.h"

/* One attached allocator function, for -v. */
struct mt_probe_info {
	const char *name;
	uint64_t offset;	/* of the function, in the file */
	const char *alias_of;	/* same address as an earlier name: not probed twice */
	struct mt_site site;	/* where the probe went, from the entry */
};

enum mt_lib {
	MT_LIB_C,		/* glibc: malloc, free, ... */
	MT_LIB_CXX,		/* libstdc++: operator new variants */
	MT_LIB_CUSTOM,		/* --alloc-fn / --free-fn */
	MT_LIB_MMAP,		/* --mmap: mmap, munmap, mremap, sbrk */
	MT_LIB_PRELOAD,		/* --preload: libmemtrace-preload.so's probe sites */
};

/* Most probes one library gets. */
#define MT_MAX_LIB_PROBES 24

/* --preload: the library's probe sites (file offsets), once attached; 0. */
size_t mt_tracer__preload_sites(const struct mt_tracer *t, const uint64_t **offs);

int mt_tracer__new(const struct mt_tracer_opts *o, struct mt_tracer **out);
/* --alloc-fn/--free-fn: name, the argument (1-3), whether it frees. */
int mt_tracer__add_custom(struct mt_tracer *t, const char *name, int arg, bool is_free);
/* With --kernel: names of tracepoints this kernel lacks (NULL-terminated). */
const char *const *mt_tracer__missing_tps(const struct mt_tracer *t);
/* With --kernel: attach the kernel programs. 0 or -errno. */
int mt_tracer__attach_kernel(struct mt_tracer *t);
/* With --kernel: trace the kernel allocations made while tgid runs. */
int mt_tracer__add_target(struct mt_tracer *t, pid_t tgid);
void mt_tracer__free(struct mt_tracer *t);
/* A traced process exec'd, its new image exec_id, now named comm; or
 * (parent > 0, -a only) it is a new process forked by parent. */
typedef void (*mt_exec_cb)(void *ctx, pid_t tgid, uint32_t gen, uint32_t exec_id,
			   const char *comm, pid_t parent);
/* Readable when process events are pending; serve them with poll. */
int mt_tracer__events_fd(struct mt_tracer *t);
int mt_tracer__poll_events(struct mt_tracer *t, mt_exec_cb cb, void *ctx);
/*
 * Release, as frees, the user blocks of process (tgid, gen): those its
 * images before exec_id allocated (it exec'd; how 0), or all of them
 * (MT_PURGE_ALL); MT_PURGE_FOLD: it exited, its image's blocks go into
 * sums (mt_tracer__retire). Queued: mt_tracer__purge_run releases every
 * queued process's in one pass over the blocks (one per MT_PURGE_MAX
 * processes). 0 or -errno.
 */
int mt_tracer__purge_add(struct mt_tracer *t, pid_t tgid, uint32_t gen, uint32_t exec_id,
			 uint32_t how);
size_t mt_tracer__purge_pending(const struct mt_tracer *t);
/* How many blocks a queued process lost. */
typedef void (*mt_purge_cb)(void *ctx, pid_t tgid, uint32_t gen, uint32_t how,
			    uint64_t purged);
/* Run the queued purges (cb may be NULL); the queue is empty after,
 * also on failure. 0 or -errno. */
int mt_tracer__purge_run(struct mt_tracer *t, mt_purge_cb cb, void *ctx);
/* A process, as BPF names it (gen 0: whichever start). */
struct mt_pid_gen {
	pid_t pid;
	uint32_t gen;
};

/*
 * Move the per-stack totals of exited processes out of the BPF map, which
 * they would otherwise fill for the rest of the run, appending them to
 * *kept (*nkept entries; the caller frees it), and with --batch their
 * stack keys out of batch_stacks. With blocks, their live blocks too,
 * out of allocs: one sum per (process, stack) appended to *blocks
 * (*nblocks; times in CLOCK_MONOTONIC ns, as a snapshot's). 0 or -errno.
 */
int mt_tracer__retire(struct mt_tracer *t, const struct mt_pid_gen *procs, size_t n,
		      struct mt_stat_entry **kept, size_t *nkept, struct mt_alloc_entry **blocks,
		      size_t *nblocks);
/* Forget exited processes whose final numbers were reported: their user
 * blocks and per-stack totals, in one pass over each map. 0 or -errno. */
int mt_tracer__drop_processes(struct mt_tracer *t, const struct mt_pid_gen *procs, size_t n);
/* The CFI unwinder's tables (NULL with --unwind fp). */
struct mt_unwind *mt_tracer__unwind(struct mt_tracer *t);
/*
 * Attach the allocator probes of a library (a path the kernel can open)
 * to pid. info[] (MT_MAX_LIB_PROBES entries) says what was attached.
 * 0 or -errno; -ENOENT when lib lacks the functions that kind requires.
 */
int mt_tracer__attach(struct mt_tracer *t, pid_t pid, const char *lib, enum mt_lib kind,
		      struct mt_probe_info *info, int *ninfo);
/* Number of probes (entry and return) attached so far. */
int mt_tracer__nprobes(const struct mt_tracer *t);
int mt_tracer__snapshot(struct mt_tracer *t, struct mt_snapshot *s);
/* --kernel: kernel allocations skipped because memtrace's own programs
 * were running (their map memory): recursion misses of the programs. */
uint64_t mt_tracer__kernel_recursion(struct mt_tracer *t);
/*
 * A `--` command's process tree: from one set of links per process to one
 * per file for all, the program keeping the processes in `targets`.
 * can_tree: the kernel has uprobe sessions (a call seen by both kinds of
 * link must count once: see tree_overlap in the BPF program).
 * tree_begin: links made for pid -1 from now on are the tree's, and both
 * kinds see calls; attach them. tree_end, a moment later (calls in flight
 * return through the links they entered by): the per-process links are
 * closed (returns how many). remove_target: a process left the tree.
 */
bool mt_tracer__can_tree(const struct mt_tracer *t);
void mt_tracer__tree_begin(struct mt_tracer *t);
int mt_tracer__tree_end(struct mt_tracer *t);
int mt_tracer__remove_target(struct mt_tracer *t, pid_t tgid);
/* CPUs per stack totals entry (per-CPU totals), or 1 (shared). */
int mt_tracer__stats_ncpu(const struct mt_tracer *t);
/* The kernel's HZ the blocks' times count in; 0: they are ns. */
int mt_tracer__hz(const struct mt_tracer *t);
/* --bpf-stats: 0 if the programs are measured, else why not (-EPERM:
 * it needs CAP_SYS_ADMIN; -ENOENT: not asked for). */
int mt_tracer__bpf_measuring(const struct mt_tracer *t);
/* --bpf-stats: runs and run time of the allocator probes' programs. */
void mt_tracer__bpf_time(struct mt_tracer *t, uint64_t *runs, uint64_t *ns);
void mt_snapshot__clear(struct mt_snapshot *s);
/* The frames of a stack id. 0 or -ENOENT. */
int mt_tracer__stack(struct mt_tracer *t, uint64_t id, struct mt_stack *out);

#endif
