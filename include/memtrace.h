/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The contract between the BPF programs and userspace: map keys and
 * values, counter indices, allocator kinds. Fixed-width types only, so
 * both sides see the same layout; sizes are checked at compile time.
 */
#ifndef MEMTRACE_H
#define MEMTRACE_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Frames kept per stack; bpf_get_stack() never returns more than
 * kernel.perf_event_max_stack (127 by default). */
#define MT_MAX_DEPTH 127
#define MT_DEFAULT_DEPTH 127	/* deep stacks (interpreters) stay complete */

/* Default map sizes; all can be changed from the command line. */
#define MT_DEFAULT_MAX_ALLOCS (1u << 20)
#define MT_DEFAULT_MAX_STACKS (1u << 16)

/* Which allocator entry point a call came through: the attach cookie. */
enum mt_fn {
	MT_FN_MALLOC,		/* (size) */
	MT_FN_CALLOC,		/* (n, size) */
	MT_FN_REALLOC,		/* (ptr, size) */
	MT_FN_REALLOCARRAY,	/* (ptr, n, size) */
	MT_FN_POSIX_MEMALIGN,	/* (memptr, align, size) */
	MT_FN_MEMALIGN,		/* (align, size): aligned_alloc, memalign */
	MT_FN_VALLOC,		/* (size): valloc, pvalloc */
	MT_FN_NEW,		/* (size): operator new and new[] variants */
	MT_FN_FREE,		/* (ptr): free, cfree */
	MT_FN_ALLOC_ARG2,	/* --alloc-fn NAME:2: size in the 2nd argument */
	MT_FN_ALLOC_ARG3,	/* --alloc-fn NAME:3 */
	MT_FN_FREE_ARG2,	/* --free-fn NAME:2: pointer in the 2nd argument */
	MT_FN_MMAP,		/* --mmap: (addr, len, prot, flags, fd, off), anonymous */
	MT_FN_MUNMAP,		/* (addr, len) */
	MT_FN_MREMAP,		/* (old, oldlen, newlen, flags, ...) */
	MT_FN_SBRK,		/* (increment) */
	/* --preload's return site (after realloc): (ret, pc, sp, bp) */
	MT_FN_PRELOAD_RETURN,
	/* --preload --batch: the library hands over its events (events, n) */
	MT_FN_PRELOAD_BATCH,
	MT_FN__COUNT,
	/* attach cookie flag: the function calls no other traced function (a
	 * leaf), so a call with nothing to record needs no state and no return */
	MT_FN_LEAF = 1u << 16,
	/* attach cookie flag: a link for every process (-- with a process
	 * tree): the program keeps the calls of processes in `targets` */
	MT_FN_TREE = 1u << 17,
	/* enter_as: the caller decided whether the call is sampled (the
	 * preload library's realloc site) */
	MT_FN_PRESAMPLED = 1u << 18,
};

/*
 * Counters, per CPU. The first group are events, the second failures:
 * every way an allocation or free can escape the accounting has one,
 * and the report shows them all.
 */
enum mt_counter {
	/* (allocation and free totals are the sums of the per-stack stats:
	 * no per-event counter for them) */
	MT_CNT_ALLOC_FAILED,	/* allocator returned NULL: not recorded */
	MT_CNT_NESTED,		/* allocator calls made inside another: skipped */
	MT_CNT_SIZE_FILTERED,	/* outside --min-size/--max-size */
	MT_CNT_WALK_REUSED,	/* user stacks taken from a remembered walk (walk_memo) */
	MT_CNT_UNWIND_REQUEST,	/* tables asked for (a file seen for the first time) */
	MT_CNT_TABLE_FULL,	/* user blocks whose set of the block table was full
				 * of blocks too young to move: into allocs */
	MT_CNT_TABLE_MOVED,	/* blocks moved out of the table to make room */
	MT_CNT__EVENTS,
	MT_CNT_LOST_ALLOCS_FULL = MT_CNT__EVENTS, /* allocs map full */
	MT_CNT_LOST_STATS_FULL,	/* per-stack stats map full */
	MT_CNT_LOST_STACKS_FULL, /* stack store full */
	MT_CNT_LOST_STACK_FAILED, /* no frame could be read */
	MT_CNT_LOST_THREADS_FULL, /* per-thread call state map full */
	MT_CNT_LOST_FREE_UNTRACKED, /* free of a block not seen allocated */
	MT_CNT_LOST_STALE,	/* address allocated twice without a free seen */
	MT_CNT_LOST_TRUNCATED,	/* recorded with a stack that ends early */
	MT_CNT_LOST_STACK_COLLISION, /* stack hash taken by other stacks: not stored */
	MT_CNT_LOST_UNWIND_REQUEST, /* table request dropped (ring buffer full) */
	MT_CNT_LOST_PROC_EVENT,	/* exec not told to userspace (ring buffer full) */
	MT_CNT_LOST_PROCESS_LIMIT, /* over --max-allocs-per-process: not recorded */
	MT_CNT_LOST_BATCH_UNREAD, /* --batch: events that could not be read */
	MT_CNT__COUNT,
};

/*
 * Live allocation, keyed by process and address. A process is its tgid
 * and its start (gen: the boot-time clock in 1.024 µs units, modulo 2^32,
 * never 0), so two processes that had the same PID never mix.
 */
struct mt_alloc_key {
	__u32 tgid;
	__u32 gen;		/* 0 for kernel blocks */
	__u64 addr;
};

struct mt_alloc {
	__u64 size;		/* bytes; with sampling, the estimate it stands for */
	__u64 ts;		/* when: jiffies (ns if the kernel's HZ is unknown);
				 * in a snapshot, CLOCK_MONOTONIC ns */
	__u64 stack_id;		/* content hash of the stack */
	__u32 count;		/* 1; with sampling, the allocations it stands for */
	__u32 owner;		/* tgid whose stats the block counts in */
	__u32 owner_gen;	/* and its start time */
	__u32 exec_id;		/* the owner's image (task self_exec_id): exec bumps it */
};

/*
 * The block table: a set-associative table of user blocks (MT_SLOT_WAYS
 * slots a set, chosen by the key's hash) in front of the allocs hash. A
 * slot is claimed and freed with a compare-and-swap on addr (0: empty,
 * MT_SLOT_BUSY: being filled), no lock and no memory allocation: a block
 * that comes and goes costs far less than a hash insert and delete. A
 * full set moves its oldest block to the hash if it is older than
 * MT_SLOT_OLD_MS, else the new block goes there (bpf: slot_evict).
 * Userspace maps it (read only).
 */
struct mt_slot {
	__u64 addr;		/* 0 empty, MT_SLOT_BUSY, else the block's */
	__u32 tgid;
	__u32 gen;
	struct mt_alloc a;
	__u64 pad;		/* one cache line a slot */
};

#define MT_SLOT_BUSY 1
#define MT_SLOT_WAYS 4
#define MT_DEFAULT_SLOTS (1u << 17)	/* 8 MiB */
#define MT_SLOT_OLD_MS 10	/* a block this old makes room for a new one */

#ifndef __bpf__
/* The block table's slots for --max-allocs n: the largest power of two
 * not above n, within [MT_SLOT_WAYS, MT_DEFAULT_SLOTS]. */
static inline __u32 mt_slot_count(__u64 n)
{
	__u32 c = MT_DEFAULT_SLOTS;

	while (c > MT_SLOT_WAYS && c > n)
		c /= 2;
	return c;
}
#endif

/* Kernel allocations are keyed by this tgid and their address: they are
 * freed from any context. Their stack ids have the top bit set. */
#define MT_KERNEL_TGID 0xffffffffu
#define MT_STACK_KERNEL (1ULL << 63)
/* --mmap: blocks from anonymous mmap/mremap and from sbrk */
#define MT_STACK_MMAP (1ULL << 62)
#define MT_STACK_BRK (1ULL << 61)
#define MT_STACK_KIND_MASK (MT_STACK_KERNEL | MT_STACK_MMAP | MT_STACK_BRK)

/* Sampling tables (--sample-bytes): quantiles of an exponential, and the
 * weight 1/(1 - exp(-s/N)) by size bucket of N/64, in 16.16 fixed point
 * (used from s = N up; below, the weight comes from its series). */
#define MT_SAMPLE_TABLE 1024
#define MT_WEIGHT_BUCKETS_PER_N 64

/*
 * Per (process, stack) totals. Only what was allocated: what is still
 * outstanding is in the allocs map, and freed = allocated - outstanding
 * (userspace). A free then touches no per-stack entry.
 */
struct mt_stats_key {
	__u32 tgid;
	__u32 gen;		/* the process's start time (see mt_alloc_key) */
	__u64 stack_id;
};

struct mt_stats {
	__u64 alloc_bytes;
	__u64 alloc_count;
};

/* A stack; ips[0] is the return address into the allocating function. */
struct mt_stack {
	__u32 depth;
	__u32 flags;
	__u64 ips[MT_MAX_DEPTH];
};

/* State of one thread between an allocator's entry and its return. */
struct mt_call {
	__u64 size;
	__u64 arg;		/* realloc: old pointer; posix_memalign: memptr */
	__u64 sp;		/* stack pointer at entry: detects stale state */
	struct mt_alloc old;	/* realloc: the old block, held until return */
	__u32 fn;
	__u32 depth;		/* > 1: nested allocator calls in flight */
	__u32 old_found;
	__u32 sampled;		/* this call is recorded (always, unless sampling) */
};

/*
 * Unwinding with the binaries' CFI (.eh_frame, .debug_frame): userspace
 * turns each file's CFI into rows, one per address range with one rule,
 * sorted by address. A row says how to find the caller: CFA = rsp or rbp
 * plus cfa_off; the return address is at CFA - 8 (always, on x86-64);
 * rbp was saved at CFA + 8 * rbp_off, or is unchanged (0).
 */
enum mt_cfa_kind {
	MT_CFA_NONE,		/* no CFI here: fall back to frame pointers */
	MT_CFA_RSP,		/* CFA = rsp + cfa_off */
	MT_CFA_RBP,		/* CFA = rbp + cfa_off */
	MT_CFA_PLT,		/* .plt: CFA = rsp + 8, + 8 if (pc & 15) >= cfa_off */
	MT_CFA_END,		/* return address undefined: the outermost frame */
	MT_CFA_SIGNAL,		/* the kernel's rt_sigframe: registers in ucontext */
	MT_CFA__COUNT,
};
#define MT_RBP_SAME 0		/* rbp_off: rbp unchanged in the caller */
#define MT_RBP_UNDEF (-128)	/* rbp_off: the caller's rbp is unknown */

/* Walks remembered per CPU (walk_memo; a power of 2), fewer (down to
 * MT_MEMO_MIN) where the whole table would take more than
 * MT_MEMO_MAX_BYTES: 1,024 up to 85 possible CPUs (192-byte entries). */
#define MT_MEMO_SIZE 1024
#define MT_MEMO_MIN 64
#define MT_MEMO_MAX_BYTES (16ULL << 20)

#ifndef __bpf__
/* walk_memo's entries a CPU, for ncpu possible CPUs and entries of
 * entry bytes */
static inline __u32 mt_memo_entries(__u64 ncpu, __u64 entry)
{
	__u32 n = MT_MEMO_SIZE;

	while (n > MT_MEMO_MIN && ncpu * n * entry > MT_MEMO_MAX_BYTES)
		n /= 2;
	return n;
}
#endif

struct mt_cfi_row {
	__u32 pc;		/* first address (ELF virtual address) */
	__u16 cfa_off;
	__u8 kind;		/* enum mt_cfa_kind */
	__s8 rbp_off;
};

/* Rows are found through pages: the rows of ELF page p of a table are
 * rows[first_row .. first_row + nrows), first_row covering the page's
 * first byte. Page and row arrays are shared by all tables. */
#define MT_CFI_PAGE_SHIFT 12
struct mt_cfi_page {
	__u32 first_row;
	__u32 nrows;
};

/* A file's table is keyed by the file's (device, inode) as the kernel sees
 * them: one table for every process that maps the file. */
struct mt_cfi_key {
	__u32 dev;		/* kernel dev_t: major << 20 | minor */
	__u32 pad;
	__u64 ino;
};

/* The table's header; its pages and rows are in one array of 8-byte
 * elements, pages first (rows[] indices count from the array's start). */
struct mt_cfi_table {
	__u64 seg_delta;	/* ELF vaddr = file offset + seg_delta */
	__u32 npages;		/* 0: the file has no usable CFI */
	__u32 first_page;	/* vaddr >> MT_CFI_PAGE_SHIFT of page 0 */
	__u32 id;		/* the file's id in stack frames (never 0) */
	__u32 pad;
};

/*
 * A user stack frame in a file the unwinder knows is stored as the file's
 * id and the offset in the file, not as an address: it symbolizes without
 * the process's mappings (a process that has exited, a library unloaded).
 * Other frames are plain addresses (below 2^47).
 */
#define MT_FRAME_FILE (1ULL << 63)
#define MT_FRAME_ID_SHIFT 40
#define MT_FRAME_OFF_MASK ((1ULL << MT_FRAME_ID_SHIFT) - 1)
#define MT_FRAME_ID_MASK ((1U << 23) - 1)

/* Ring buffer message: a traced process ran code in a file with no table. */
struct mt_cfi_miss {
	__u32 tgid;
	__u32 igen;		/* the inode's generation: opens it by handle */
	struct mt_cfi_key key;
	__u64 vm_start, vm_end;	/* the mapping, for /proc/PID/map_files */
};

#define MT_MAX_CFI_TABLES 4096

/* Ring buffer message: something happened to a traced process. */
enum mt_proc_event_type {
	MT_PROC_EXEC = 1,
	MT_PROC_FORK,		/* -a: a new process (not a thread) */
};

struct mt_proc_event {
	__u32 tgid;
	__u32 type;
	__u32 exec_id;		/* exec: the new image's (mt_alloc.exec_id) */
	__u32 pad;
	char comm[16];		/* exec: the new name; fork: the parent's */
	__u32 parent;		/* fork: the parent's tgid */
	__u32 gen;		/* the process's start time (see mt_alloc_key) */
};

/*
 * purge_process (a BPF_PROG_RUN program) releases, as frees, the user
 * blocks of the processes in purge_reqs, in one pass over the blocks: a
 * pass reads every bucket of the map however few blocks it holds (about
 * 5 ms at the default 1M), so execs and exits are purged in batches.
 */
#define MT_PURGE_MAX 1024	/* requests in one pass */

struct mt_purge_key {
	__u32 tgid;
	__u32 gen;		/* the process's start time (mt_alloc_key) */
};

struct mt_purge_req {
	__u32 exec_id;		/* blocks of the images before this one go */
	__u32 all;		/* MT_PURGE_*: every block goes (the process is gone) */
	__u64 purged;		/* out: how many went */
};

#define MT_PURGE_ALL 1		/* as frees (the process is forgotten) */
#define MT_PURGE_FOLD 2		/* into folded, still outstanding (it exited) */

/*
 * An exited process's blocks are still outstanding (they are its leaks),
 * but no free can come for them: memtrace keeps them as one sum per
 * (process, stack), out of allocs, which a long process tree (a test
 * suite) would otherwise fill. purge_process sums them here; userspace
 * takes the sums and empties the map.
 */
struct mt_fold {
	__u64 size;
	__u64 count;
	__u64 oldest;		/* the oldest block's time (mt_alloc.ts) */
};

/* clock_now (a BPF_PROG_RUN program): both clocks at one moment, to turn
 * the blocks' jiffies into CLOCK_MONOTONIC. */
struct mt_clock {
	__u64 jiffies;
	__u64 mono_ns;
	__u32 hz;		/* 0: unknown, the blocks' times are ns */
	__u32 pad;
};

/*
 * --preload --batch: the events the preload library queues, in the order
 * they happened in the process, handed to BPF a batch at a time (one probe
 * hit for up to MT_BATCH_MAX of them). Stacks are walked in the process
 * and named by the library's own key; a key's first use comes after an
 * MT_BEV_STACK event that carries its frames.
 */
#define MT_BATCH_MAX 4096	/* events in one batch, at most */
#define MT_BATCH_DEFAULT 1024

enum mt_batch_kind {
	MT_BEV_ALLOC = 1,	/* addr, size, stack */
	MT_BEV_FREE,		/* addr */
	MT_BEV_PAIR,		/* size, stack: allocated and freed in the batch */
	MT_BEV_STACK,		/* stack: the key; addr: its struct mt_stack in
				 * the process; size: its bytes */
	MT_BEV_FAILED,		/* an allocation that returned NULL */
	MT_BEV_HOLD,		/* addr: realloc's old block leaves the books, held */
	MT_BEV_RELEASE,		/* addr: the held block is gone (realloc worked) */
	MT_BEV_REVIVE,		/* addr: the held block is back (realloc failed) */
	MT_BEV_NESTED,		/* a call inside realloc (mimalloc's realloc frees
				 * through mi_free): counted, not recorded */
};

struct mt_batch_ev {
	__u64 addr;
	__u64 size;
	__u64 stack;		/* the library's key; 0: none */
	__u32 kind;
	__u32 pad;
};

/*
 * The library's queue as memtrace reads it: at each batch, whose site gets
 * its address, and at the process's exit, when the last thread's exit
 * finds events there that no batch took (the process was killed by a
 * signal, or left by a raw exit_group). The library writes an event,
 * then raises n; a batch taken at the site and not yet emptied (a signal
 * right after the site) still has its number, which BPF remembers.
 */
struct mt_batch_queue {
	__u32 n;		/* ev[0..n) written */
	__u32 batch;		/* this batch's number: 1, 2, ... */
	struct mt_batch_ev ev[MT_BATCH_MAX];
};

/* batch_stacks: a process's stack keys and the stacks they stand for */
struct mt_batch_key {
	__u32 tgid;
	__u32 gen;
	__u64 key;
};

struct mt_batch_stack {
	__u64 stack_id;		/* in `stacks`; 0: could not be stored */
	__u32 lost;		/* then: the lost counter each allocation counts */
	__u16 truncated;
	__u16 first;		/* the first one's is counted already */
};

/* mt_stack flags */
#define MT_STACK_F_TRUNCATED 1	/* the walk stopped before the outermost frame */
#define MT_STACK_F_FP 2		/* some frames came from frame pointers */

_Static_assert(sizeof(struct mt_alloc_key) == 16, "mt_alloc_key layout");
_Static_assert(sizeof(struct mt_alloc) == 40, "mt_alloc layout");
_Static_assert(sizeof(struct mt_slot) == 64, "mt_slot layout");
_Static_assert(sizeof(struct mt_stats_key) == 16, "mt_stats_key layout");
_Static_assert(sizeof(struct mt_stats) == 2 * 8, "mt_stats: __u64 counters only (summed per CPU)");
_Static_assert(sizeof(struct mt_stack) == 8 + 8 * MT_MAX_DEPTH, "mt_stack layout");
_Static_assert(sizeof(struct mt_call) == 80, "mt_call layout");
_Static_assert(sizeof(struct mt_cfi_row) == 8, "mt_cfi_row layout");
_Static_assert(sizeof(struct mt_cfi_page) == 8, "mt_cfi_page layout");
_Static_assert(sizeof(struct mt_cfi_key) == 16, "mt_cfi_key layout");
_Static_assert(sizeof(struct mt_cfi_table) == 24, "mt_cfi_table layout");
_Static_assert(sizeof(struct mt_cfi_miss) == 40, "mt_cfi_miss layout");
_Static_assert(sizeof(struct mt_proc_event) == 40, "mt_proc_event layout");
_Static_assert(sizeof(struct mt_purge_key) == 8, "mt_purge_key layout");
_Static_assert(sizeof(struct mt_purge_req) == 16, "mt_purge_req layout");
_Static_assert(sizeof(struct mt_fold) == 24, "mt_fold layout");
_Static_assert(sizeof(struct mt_clock) == 24, "mt_clock layout");
_Static_assert(sizeof(struct mt_batch_ev) == 32, "mt_batch_ev layout");
_Static_assert(__builtin_offsetof(struct mt_batch_queue, ev) == 8, "mt_batch_queue layout");
_Static_assert(sizeof(struct mt_batch_key) == 16, "mt_batch_key layout");
_Static_assert(sizeof(struct mt_batch_stack) == 16, "mt_batch_stack layout");

#endif /* MEMTRACE_H */
