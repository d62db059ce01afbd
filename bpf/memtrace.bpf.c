// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * memtrace BPF side: uprobes on the allocator's entry points keep the
 * live allocations and per-stack aggregates in maps, so userspace reads
 * aggregates and never a stream of events.
 *
 * Accounting rules (the ones peers get wrong):
 *  - an allocator call made inside another (realloc -> malloc,
 *    reallocarray -> realloc, realloc(p, 0) -> free) is counted once,
 *    by the outermost call;
 *  - realloc takes the old block out of the live set on entry and puts
 *    it back if realloc fails, so a failed realloc loses nothing and a
 *    block another thread gets at the old address is never confused
 *    with the old one;
 *  - NULL results are counted as failures, never recorded;
 *  - live allocations are keyed by (tgid, address).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memtrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Knobs, set by userspace between open and load. */
const volatile __u64 min_size = 0;
const volatile __u64 max_size = ~0ULL;
const volatile __u32 stack_depth = MT_DEFAULT_DEPTH;
/* --sample-bytes: 0 records every allocation */
const volatile __u64 sample_bytes = 0;
const volatile __u64 sample_gap[MT_SAMPLE_TABLE] = {};
const volatile __u32 sample_weight[MT_SAMPLE_TABLE] = {};
/* --kernel: [__irqentry_text_start, __irqentry_text_end) from kallsyms */
const volatile __u64 irqentry_lo = 0, irqentry_hi = 0;
/* user stacks: 1 walks them with the files' CFI, 0 with frame pointers */
const volatile __u32 unwind_cfi = 1;
/* tests only (MEMTRACE_TEST_STACK_HASH_BITS): a weak hash, to make
 * different stacks collide */
const volatile __u64 stack_hash_mask = ~0ULL;

/* The traced processes (not with -a): for --kernel, and for the links of
 * a process tree (MT_FN_TREE) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/*
 * Set by userspace while a `--` command's process tree moves from links per
 * process to links per file for all (MT_FN_TREE), for about a second: both
 * see each call then. Two entries of one call at one stack pointer make one
 * state (the second replaces the first) and its second return finds none,
 * so nothing counts twice; only a free's second sighting finds no block,
 * which is not a loss then.
 */
__u32 tree_overlap = 0;

/*
 * -a: the probes have no PID filter; processes are selected here. With
 * --comm/--cgroup (any mode), only matching processes are traced.
 */
const volatile __u32 self_tgid = 0;	/* memtrace itself: never traced */
const volatile __u32 trace_all = 0;
const volatile __u32 filter_comm = 0;
const volatile __u32 filter_cgroup = 0;

struct comm_key {
	char c[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct comm_key);
	__type(value, __u8);
} comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* Does the current process pass --comm and --cgroup (and is it not us)? */
static __always_inline bool selected(__u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (filter_comm) {
		struct task_struct *t = bpf_get_current_task_btf();
		struct comm_key k = {};

		/* the process's name: a thread may have named itself */
		BPF_CORE_READ_INTO(&k.c, t, group_leader, comm);
		if (!bpf_map_lookup_elem(&comms, &k))
			return false;
	}
	if (filter_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	return true;
}

/* Process events for userspace: a traced process exec'd. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} proc_events SEC(".maps");

/* --max-allocs-per-process: live blocks per process (0: no limit) */
const volatile __u64 max_allocs_per_proc = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __s64);
} proc_live SEC(".maps");

/*
 * Outstanding bytes of all traced processes, and their high-water mark.
 * Each CPU keeps its own change and adds it to the shared total only once
 * it reaches MT_PEAK_BATCH either way: a shared counter updated on every
 * call bounces its cache line between CPUs (~130 ns a malloc/free pair
 * with 2 threads, measured). The peak, taken at those moments, is then
 * exact to within MT_PEAK_BATCH bytes per CPU; userspace raises it to the
 * exact outstanding total of each report.
 */
#define MT_PEAK_BATCH 4096
__s64 outstanding_bytes = 0;	/* below 0 a moment, when frees flush first */
__s64 peak_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} outstanding_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MT_DEFAULT_MAX_ALLOCS);
	__type(key, struct mt_alloc_key);
	__type(value, struct mt_alloc);
} allocs SEC(".maps");

/* The block table in front of allocs (struct mt_slot): slot_mask + 1
 * slots, a power of two userspace sets; mapped by userspace to read. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MT_DEFAULT_SLOTS);
	__type(key, __u32);
	__type(value, struct mt_slot);
} slots SEC(".maps");

const volatile __u32 slot_mask = MT_DEFAULT_SLOTS - 1;

/*
 * Per-stack totals, per CPU: threads allocating from one stack on several
 * CPUs would otherwise bounce its cache line on every call (measured: 150
 * ns a malloc/free pair with 2 threads). Userspace sums the CPUs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MT_DEFAULT_MAX_STACKS);
	__type(key, struct mt_stats_key);
	__type(value, struct mt_stats);
} stats SEC(".maps");

/* Content-addressed stack store: key is the hash of the frames. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MT_DEFAULT_MAX_STACKS);
	__type(key, __u64);
	__type(value, struct mt_stack);
} stacks SEC(".maps");

/* Per-thread call state, in the task itself: no hashing, no locking. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mt_call);
} calls SEC(".maps");

static __always_inline struct mt_call *thread_call(bool create)
{
	return bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Bytes left until the next sample, per CPU (--sample-bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} sample_left SEC(".maps");

/*
 * Scratch space for one stack: too large for the BPF stack. Slot 0 is the
 * user walk's, slot 1 the kernel's: a kernel allocation in an interrupt
 * may come in the middle of a user walk on the same CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct mt_stack);
} stack_buf SEC(".maps");

/* A slot in use on this CPU (a preempted walk): another walk must not
 * write over it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} stack_busy SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

/*
 * Poisson sampling by bytes, as tcmalloc and jemalloc do: sample points
 * fall every Exp(N) bytes; an allocation is sampled when one falls in it,
 * with probability 1 - exp(-size/N). Zero-sized allocations never are.
 */
static __always_inline bool sample(__u64 size)
{
	__u32 zero = 0;
	__s64 *left = bpf_map_lookup_elem(&sample_left, &zero);

	if (!left)
		return true;
	if (*left == 0) /* first use on this CPU */
		*left = sample_gap[bpf_get_prandom_u32() & (MT_SAMPLE_TABLE - 1)];
	*left -= size;
	if (*left > 0)
		return false;
	*left = sample_gap[bpf_get_prandom_u32() & (MT_SAMPLE_TABLE - 1)];
	return true;
}

/* 1 / P(sampled), 16.16 fixed point. */
static __always_inline __u64 sample_weight_fp(__u64 size)
{
	__u64 b;

	if (!size)
		return 1 << 16;
	/* x = size/N < 1: 1/(1-e^-x) = 1/x + 1/2 + x/12 - x^3/720 ..., where
	 * the weight changes too fast for a table */
	if (size < sample_bytes)
		return (sample_bytes << 16) / size + (1 << 15) + (size << 16) / (12 * sample_bytes);
	b = size * MT_WEIGHT_BUCKETS_PER_N / sample_bytes;
	if (b >= MT_SAMPLE_TABLE)
		return 1 << 16;
	return sample_weight[b];
}

static __always_inline __u64 mix(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* Stack ids are never 0: 0 means "no stack". */
static __always_inline __u64 hash_stack(const struct mt_stack *s)
{
	__u64 h = 0x9e3779b97f4a7c15ULL ^ s->depth ^ ((__u64)s->flags << 32);

	for (__u32 i = 0; i < MT_MAX_DEPTH; i++) {
		if (i >= s->depth)
			break;
		h = mix(h ^ s->ips[i]) * 0x9e3779b97f4a7c15ULL;
	}
	h = mix(h);
	return h ? h : 1;
}

/* A stack id that means: interrupt context, not the task's allocation. */
#define MT_STACK_IRQ (~0ULL)

/*
 * An interrupt's allocation (including the refill of memtrace's own map
 * memory from irq_work) is not the interrupted task's: hard interrupts
 * enter through the irqentry stubs, which the kernel stack then shows.
 * (preempt_count would say it directly, but needs CONFIG_KALLSYMS_ALL;
 * the address of our own frame fails with the JIT's private stacks.)
 */
static __always_inline bool from_interrupt(const struct mt_stack *s)
{
	if (!irqentry_hi)
		return false;
	for (__u32 i = 0; i < MT_MAX_DEPTH; i++) {
		if (i >= s->depth)
			break;
		if (s->ips[i] >= irqentry_lo && s->ips[i] < irqentry_hi)
			return true;
	}
	return false;
}

/* ---- user stacks: unwinding with the files' CFI ---------------------- */

/* A file's pages and rows (struct mt_cfi_page, struct mt_cfi_row: both 8
 * bytes), sized per file by userspace. */
struct cfi_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, MT_MAX_CFI_TABLES);
	__type(key, struct mt_cfi_key);
	__array(values, struct cfi_array);
} cfi_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_MAX_CFI_TABLES);
	__type(key, struct mt_cfi_key);
	__type(value, struct mt_cfi_table);
} cfi_tables SEC(".maps");

/* Files asked for once: a table (or its absence) is on its way. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_MAX_CFI_TABLES);
	__type(key, struct mt_cfi_key);
	__type(value, __u8);
} cfi_asked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} cfi_misses SEC(".maps");

/*
 * Rules already found, per CPU, by (process, address): a stack's frames
 * repeat from one allocation to the next, and a hit skips the mapping
 * and table lookups. An entry is valid for one epoch: the epoch moves on
 * when a traced process execs or exits (here) and when userspace sees code
 * unmapped or drops a table.
 */
__u64 cfi_epoch = 1;

struct cfi_cached {
	__u64 pc;
	__u64 epoch;
	__u64 base;		/* the mapping's start - its file offset */
	__u32 tgid;
	__u32 id;		/* file id, or 0 */
	struct mt_cfi_row row;
};

#define CFI_CACHE_SIZE 4096

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CFI_CACHE_SIZE);
	__type(key, __u32);
	__type(value, struct cfi_cached);
} cfi_cache SEC(".maps");

/* Registers of the frame being unwound, and the mapping its pc is in. */
struct unwind {
	__u64 pc, sp, bp;
	__u64 vm_start, vm_end, vm_pgoff; /* vm_end 0: none */
	struct mt_cfi_key key;
	struct mt_cfi_table tab;	/* npages 0: no table */
	__u64 epoch;		/* cfi_epoch when the walk began */
	__u32 tgid;
	__u32 n;
	__u8 bp_ok;		/* bp holds the frame's rbp */
	__u8 exact;		/* pc is not a return address (after a signal) */
	__u8 done;		/* reached the outermost frame */
	__u8 fp;		/* some frame came from frame pointers */
	__u64 win;		/* the stack window's address (win_len 0: none) */
	__u32 win_len;
	__u32 end;		/* the recorded words lie below sp0 + end */
	/* what the walk read, recorded into walk_memo[memo] (walk_memo) */
	__u64 sp0;		/* sp when the walk began */
	__u32 memo;
	__u8 nreads;
	__u8 memo_ok;		/* every read recorded, every frame had a rule */
	__u8 bp_init;		/* bp still holds its value at the start */
	__u8 bp_used;		/* ... and the walk used it */
	__u8 bp_pending;	/* bp was read at bp_from, not yet recorded */
	__u64 bp_from;
	__u64 hash;		/* memo_hash of the words recorded so far */
};

/*
 * A window of the user stack, read at once: a frame's caller lies just
 * above it, and every bpf_probe_read_user costs far more than the bytes it
 * copies (the usercopy checks: a quarter of all CPU time on deep sqlite3
 * stacks, by perf). Per CPU, used only by the user walk (stack_busy).
 * A walk reads MT_WIN at a time (4 KiB made sqlite3's runs with every
 * stack walked take about 1.2x the BPF time, bench/bpf_ab.py). A
 * remembered walk's check knows where its words end and reads up to
 * MT_MEMO_WIN at a time: on sqlite3's stacks 1.6 reads a check instead of
 * 2.8, and about 10% less BPF time an allocation.
 */
#define MT_WIN 1024
#define MT_MEMO_WIN 4096
#define MT_WIN_BELOW 64		/* saved registers sit just below a CFA */

struct stack_window {
	__u64 w[MT_MEMO_WIN / 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_window);
} stack_win SEC(".maps");

struct words {
	__u64 w[2];
};

/*
 * Walks remembered, per CPU, by where they began. A walk is a function of
 * its start (pc, sp, and rbp if it used it), of the stack words it used,
 * and of the rules, which stay the same within a cfi_epoch. When the same
 * start comes again and every word it used reads the same, the stack is
 * the same: its id is reused without a rule lookup or a stack hash (a
 * loop allocating from one place: most allocations). sqlite3's 16-frame
 * stacks: ~1,320 -> ~1,060 ns of BPF time an allocation (bench/bpf_ab.py).
 * Walks through a frame outside any table are not kept: the file's table
 * may still be on its way. A saved rbp counts only once the walk uses its
 * value: code without frame pointers keeps data there, new on every call.
 * A walk that used more than MT_MEMO_READS words is not kept.
 * memo_size entries per CPU, CPU after CPU, as a plain array (its
 * lookup is arithmetic); used only by the user walk, one at a time per
 * CPU (stack_busy). An entry keeps a 16-bit tag of each word (a check
 * stops at the first word that differs) and a 64-bit hash of them all in
 * order, not the words: 192 bytes instead of 440, so 4 times as many
 * walks fit in less than twice the memory (sqlite3 alone filled 64 sets:
 * with some stack layouts 10-17% of its allocations found their walk
 * evicted). A check passes only if every tag and the hash match.
 */
#define MT_MEMO_READS 32	/* words: a return address a frame, and some rbp */
#define MT_MEMO_WAYS 4

struct walk_memo {
	__u64 pc, sp, bp;
	__u64 epoch;		/* cfi_epoch of the walk */
	__u64 stack_id;		/* with its kind bits */
	__u32 tgid;		/* 0: empty */
	__u8 nreads;
	__u8 bp_used;
	__u8 truncated;
	__u8 pad;
	__u32 end;		/* the words lie below sp + end */
	__u32 pad2;
	__u64 hash;		/* memo_hash of the words' values, in order */
	__u16 off[MT_MEMO_READS];	/* the words' addresses - sp, in words */
	__u16 tag[MT_MEMO_READS];	/* memo_tag of each word's value */
};

#define MT_MEMO_SEED 0x9e3779b97f4a7c15ULL

const volatile __u32 memo_tags = 1;	/* 0: tests, the hash alone decides */

/* A polynomial in the values, mod 2^64, with an odd multiplier (odd
 * numbers are invertible mod 2^64): a word that differs alone always
 * changes the hash. One multiply a word. */
static __always_inline __u64 memo_hash(__u64 h, __u64 v)
{
	return h * 0xff51afd7ed558ccdULL + v;
}

static __always_inline __u16 memo_tag(__u64 v)
{
	return memo_tags ? v ^ (v >> 16) ^ (v >> 32) ^ (v >> 48) : 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MT_MEMO_SIZE);
	__type(key, __u32);
	__type(value, struct walk_memo);
} walk_memo SEC(".maps");

const volatile __u32 use_memo = 1;	/* 0: tests, every stack walked */
const volatile __u32 memo_size = MT_MEMO_SIZE;	/* entries a CPU (userspace) */

/* The walk used the word at addr: v. Kept only if the start and the word
 * are aligned (stack slots are; offsets are kept in words) and the word
 * lies less than 512 KiB above it: memo_same reads them through the
 * window. */
static __always_inline void memo_record(struct unwind *u, __u64 addr, __u64 v)
{
	__u64 off = addr - u->sp0;
	__u32 i = u->nreads;
	struct walk_memo *m;

	if (!u->memo_ok)
		return;
	m = bpf_map_lookup_elem(&walk_memo, &u->memo);
	if (!m || i >= MT_MEMO_READS || addr < u->sp0 || off / 8 > 0xffff ||
	    ((addr | u->sp0) & 7)) {
		u->memo_ok = 0;
		return;
	}
	m->off[i] = off / 8;
	m->tag[i] = memo_tag(v);
	u->hash = memo_hash(u->hash, v);
	u->nreads = i + 1;
	if (off + 8 > u->end)
		u->end = off + 8;
}

/* Read size (8 or 16) bytes directly. */
static __always_inline int read_direct(struct words *out, __u32 size, __u64 addr)
{
	return size > 8 ? bpf_probe_read_user(out, 16, (void *)addr) :
			  bpf_probe_read_user(out, 8, (void *)addr);
}

/*
 * Read 8 or 16 bytes of the stack at addr into out, through the window.
 * Whole words: a byte-wise copy (what memcpy from a byte array compiles
 * to in BPF) stalls the word loads that follow it (store forwarding), a
 * tenth of the walk's time on sqlite3 (perf). Stack slots are 8-aligned;
 * the window's start is too, as it is always set from one.
 */
static __always_inline int window_read(struct unwind *u, struct words *out, __u32 size,
				       __u64 addr)
{
	__u32 zero = 0;
	struct stack_window *w = bpf_map_lookup_elem(&stack_win, &zero);
	__u64 off;

	if (!w || (addr & 7))
		return read_direct(out, size, addr);
	off = addr - u->win;
	if (addr < u->win || off + size > u->win_len) {
		/* move the window here; near the stack's top it may not fit */
		u->win = addr - MT_WIN_BELOW;
		u->win_len = MT_WIN;
		if (bpf_probe_read_user(w->w, MT_WIN, (void *)u->win)) {
			u->win_len = 0;
			return read_direct(out, size, addr);
		}
		off = MT_WIN_BELOW;
	}
	if (off > MT_MEMO_WIN - 16) /* a check's window may be longer */
		return read_direct(out, size, addr);
	off /= 8;
	out->w[0] = w->w[off];
	out->w[1] = w->w[off + 1]; /* within the window either way */
	return 0;
}

/*
 * A word of the stack the walk uses, read and recorded for walk_memo.
 * bp_first: the first word read is a saved rbp. Code built without frame
 * pointers keeps data there, different on every call; it is recorded only
 * if the walk uses it (bp_use), or no walk from a loop would be reused.
 * A global function, verified once: inlined in the unwinding loop's
 * callback it made the verifier give up.
 */
__noinline int stack_read(struct unwind *u, struct words *out, __u32 size, __u64 addr,
			  __u32 bp_first)
{
	if (!u || !out)
		return -1;
	if (window_read(u, out, size, addr)) {
		u->memo_ok = 0;
		return -1;
	}
	if (bp_first) {
		u->bp_pending = 1;
		u->bp_from = addr;
	} else {
		memo_record(u, addr, out->w[0]);
	}
	if (size > 8)
		memo_record(u, addr + 8, out->w[1]);
	return 0;
}

/* The walk uses bp's value: it must read the same next time. */
static __always_inline void bp_use(struct unwind *u)
{
	if (u->bp_init) {
		u->bp_used = 1;
	} else if (u->bp_pending) {
		memo_record(u, u->bp_from, u->bp);
		u->bp_pending = 0;
	}
}

struct vma_info {
	__u64 start, end, pgoff;
	struct mt_cfi_key key;
	__u32 igen;
};

static long vma_found(struct task_struct *task, struct vm_area_struct *vma, struct vma_info *v)
{
	struct file *f = vma->vm_file;

	v->start = vma->vm_start;
	v->end = vma->vm_end;
	v->pgoff = vma->vm_pgoff;
	if (f) {
		struct inode *ino = f->f_inode;

		v->key.dev = ino->i_sb->s_dev;
		v->key.ino = ino->i_ino;
		v->igen = ino->i_generation;
	} else {
		v->key.dev = v->key.ino = v->igen = 0;
	}
	return 0;
}

/*
 * Records of the rare kinds (a table asked for, an exec, a fork) always
 * wake userspace. The default (adaptive) wakeup skips it when the reader
 * has not caught up; but a reader that has just stored its position and
 * then reads the producer's (a store, then a load: x86 may reorder them)
 * can miss a record committed at that moment, which then waits for the
 * next one. The likely cause of a rare test failure: an exec right after
 * another, then nothing; no tables for the new image within 10 s.
 */
#define MT_RB_WAKEUP BPF_RB_FORCE_WAKEUP

/* Ask userspace for the table of a file (v: a mapping of it), once. */
static __always_inline void ask_table(const struct vma_info *v)
{
	struct mt_cfi_miss *m;
	__u8 one = 1;

	long err = bpf_map_update_elem(&cfi_asked, &v->key, &one, BPF_NOEXIST);

	if (err) {
		if (err != -17 /* EEXIST: asked already */)
			count(MT_CNT_LOST_UNWIND_REQUEST, 1); /* too many files */
		return;
	}
	m = bpf_ringbuf_reserve(&cfi_misses, sizeof(*m), 0);
	if (!m) {
		bpf_map_delete_elem(&cfi_asked, &v->key); /* ask again later */
		count(MT_CNT_LOST_UNWIND_REQUEST, 1);
		return;
	}
	m->tgid = bpf_get_current_pid_tgid() >> 32;
	m->igen = v->igen;
	m->key = v->key;
	m->vm_start = v->start;
	m->vm_end = v->end;
	bpf_ringbuf_submit(m, MT_RB_WAKEUP);
	count(MT_CNT_UNWIND_REQUEST, 1);
}

/* The mapping of pc (v, zeroed by the caller; v->end 0: none) and its
 * file's table: NULL when anonymous, or not built yet (asked for). */
static __always_inline struct mt_cfi_table *table_at(__u64 pc, struct vma_info *v)
{
	struct mt_cfi_table *t;

	if (bpf_find_vma(bpf_get_current_task_btf(), pc, vma_found, v, 0) || !v->end) {
		v->end = 0;
		return NULL;
	}
	if (!v->key.ino)
		return NULL; /* anonymous: JIT code, vdso */
	t = bpf_map_lookup_elem(&cfi_tables, &v->key);
	if (!t)
		ask_table(v);
	return t;
}

/* Find the mapping of pc and its file's table. */
static __always_inline void set_vma(struct unwind *u, __u64 pc)
{
	struct vma_info v = {};
	struct mt_cfi_table *t = table_at(pc, &v);

	u->vm_end = 0;
	u->tab.npages = 0;
	u->tab.id = 0;
	if (!v.end)
		return;
	u->vm_start = v.start;
	u->vm_end = v.end;
	u->vm_pgoff = v.pgoff;
	u->key = v.key;
	if (t)
		u->tab = *t;
}

/*
 * The rule for pc: 1, or 0 when no table covers it. A global function,
 * verified once on its own: inlined in the unwinding loop, its binary
 * search multiplies the states the verifier has to explore.
 */
__noinline int find_row(struct unwind *u, __u64 pc, struct mt_cfi_row *out)
{
	struct mt_cfi_page *pg;
	struct mt_cfi_row *r;
	__u32 page, lo, cnt, idx;
	__u64 vaddr;
	void *arr;

	if (!u || !out)
		return 0;
	if (pc < u->vm_start || pc >= u->vm_end)
		set_vma(u, pc);
	if (!u->tab.npages || pc < u->vm_start || pc >= u->vm_end)
		return 0;
	vaddr = pc - u->vm_start + (u->vm_pgoff << 12) + u->tab.seg_delta;
	page = (vaddr >> MT_CFI_PAGE_SHIFT) - u->tab.first_page;
	if ((vaddr >> MT_CFI_PAGE_SHIFT) < u->tab.first_page || page >= u->tab.npages)
		return 0;
	arr = bpf_map_lookup_elem(&cfi_rows, &u->key);
	if (!arr)
		return 0;
	pg = bpf_map_lookup_elem(arr, &page);
	if (!pg)
		return 0;
	lo = pg->first_row;
	cnt = pg->nrows;
	/* the last row with row.pc <= vaddr, in [lo, lo + cnt) */
	for (int i = 0; i < 16 && cnt > 1; i++) {
		__u32 half = cnt / 2;

		idx = lo + half;
		r = bpf_map_lookup_elem(arr, &idx);
		if (!r)
			return 0;
		if (r->pc <= vaddr) {
			lo = idx;
			cnt -= half;
		} else {
			cnt = half;
		}
	}
	r = bpf_map_lookup_elem(arr, &lo);
	if (!r || r->pc > vaddr)
		return 0;
	*out = *r;
	return 1;
}

/* The caller's rbp, read from the stack: no longer the walk's start's. */
static __always_inline void set_bp(struct unwind *u, __u64 v)
{
	u->bp = v;
	u->bp_ok = 1;
	u->bp_init = 0;
}

/* No CFI for this frame: follow rbp, if it is a frame pointer. */
static __always_inline long fp_step(struct unwind *u)
{
	struct words fr;

	if (u->bp_ok)
		bp_use(u);
	if (u->bp_ok && !u->bp) {
		u->done = 1; /* the ABI's mark of the outermost frame: rbp 0 */
		return 1;
	}
	if (!u->bp_ok || u->bp < u->sp)
		return 1; /* not a frame pointer: truncated */
	/* the saved rbp is used at once (is it 0?): recorded, not pending */
	if (stack_read(u, &fr, 16, u->bp, 0))
		return 1;
	u->sp = u->bp + 16;
	set_bp(u, fr.w[0]);
	u->pc = fr.w[1];
	u->exact = 0;
	u->fp = 1;
	if (!u->pc || !u->bp)
		u->done = 1; /* the outermost frame zeroes rbp */
	return u->done ? 1 : 0;
}

/* The x86-64 rt_sigframe the kernel pushed: sp points at its ucontext. */
#define UC_RBP 120
#define UC_RSP 160
#define UC_RIP 168

static __always_inline long signal_step(struct unwind *u)
{
	struct words bp, sp, pc;

	if (stack_read(u, &bp, 8, u->sp + UC_RBP, 1) || stack_read(u, &sp, 8, u->sp + UC_RSP, 0) ||
	    stack_read(u, &pc, 8, u->sp + UC_RIP, 0))
		return 1;
	set_bp(u, bp.w[0]);
	u->sp = sp.w[0];
	u->pc = pc.w[0];
	u->exact = 1; /* the interrupted instruction, not a return address */
	return 0;
}

/* One frame: record pc, then compute the caller's registers. 1 stops. */
static long unwind_step(__u64 i, struct unwind *u)
{
	__u32 zero = 0, n = u->n, slot, id = 0;
	struct mt_stack *s = bpf_map_lookup_elem(&stack_buf, &zero);
	struct mt_cfi_row row;
	struct cfi_cached *c;
	__u64 cfa, ra, lpc, pc = u->pc, base = 0;
	struct words fr;
	int have;

	if (!s || n >= MT_MAX_DEPTH)
		return 1;
	lpc = u->exact ? pc : pc - 1; /* inside the call, not after it */
	slot = (__u32)((lpc * 0x9e3779b97f4a7c15ULL) >> 52) & (CFI_CACHE_SIZE - 1);
	c = bpf_map_lookup_elem(&cfi_cache, &slot);
	if (c && c->pc == lpc && c->tgid == u->tgid && c->epoch == u->epoch) {
		row = c->row;
		id = c->id;
		base = c->base;
		have = 1;
	} else {
		have = find_row(u, lpc, &row);
		if (lpc >= u->vm_start && lpc < u->vm_end) {
			id = u->tab.id;
			base = u->vm_start - (u->vm_pgoff << 12);
		}
		if (have && c) {
			c->pc = lpc;
			c->tgid = u->tgid;
			c->epoch = u->epoch;
			c->row = row;
			c->id = id;
			c->base = base;
		}
	}
	/* a frame in a known file: (file id, offset), which symbolizes
	 * without the process's mappings */
	if (id && pc - base <= MT_FRAME_OFF_MASK)
		s->ips[n] = MT_FRAME_FILE | (__u64)(id & MT_FRAME_ID_MASK) << MT_FRAME_ID_SHIFT |
			    (pc - base);
	else
		s->ips[n] = pc;
	u->n = n + 1;
	if (!have)
		u->memo_ok = 0; /* its file's table may be on its way */
	if (!have || row.kind == MT_CFA_NONE)
		return fp_step(u);
	switch (row.kind) {
	case MT_CFA_END:
		u->done = 1;
		return 1;
	case MT_CFA_SIGNAL:
		return signal_step(u);
	case MT_CFA_RSP:
		cfa = u->sp + row.cfa_off;
		break;
	case MT_CFA_RBP:
		if (!u->bp_ok)
			return 1;
		bp_use(u);
		cfa = u->bp + row.cfa_off;
		break;
	case MT_CFA_PLT:
		cfa = u->sp + 8 + ((u->pc & 15) >= row.cfa_off ? 8 : 0);
		break;
	default:
		return 1;
	}
	if (cfa <= u->sp)
		return 1;
	if (row.rbp_off == -2) {
		/* the usual push rbp frame: rbp and the return address, one read */
		if (stack_read(u, &fr, 16, cfa - 16, 1))
			return 1;
		set_bp(u, fr.w[0]);
		ra = fr.w[1];
	} else if (stack_read(u, &fr, 8, cfa - 8, 0)) {
		return 1;
	} else {
		ra = fr.w[0];
	}
	if (row.rbp_off == MT_RBP_UNDEF) {
		u->bp_ok = 0;
	} else if (row.rbp_off && row.rbp_off != -2) {
		if (stack_read(u, &fr, 8, cfa + (__s64)row.rbp_off * 8, 1)) {
			u->bp_ok = 0;
		} else {
			set_bp(u, fr.w[0]);
		}
	}
	u->sp = cfa;
	u->pc = ra;
	u->exact = 0;
	if (!ra) {
		u->done = 1;
		return 1;
	}
	return 0;
}

static __always_inline bool same_stack(const struct mt_stack *a, const struct mt_stack *b)
{
	if (a->depth != b->depth || a->flags != b->flags)
		return false;
	for (__u32 i = 0; i < MT_MAX_DEPTH; i++) {
		if (i >= a->depth)
			break;
		if (a->ips[i] != b->ips[i])
			return false;
	}
	return true;
}

/* Slots a stack may take: its hash, then the next ones if those hold
 * other stacks. Two stacks never share an id. */
#define MT_STACK_PROBES 4

/* Store s; its id, or 0 when it could not be stored (counted, and the
 * counter's index in *lost if given). A global function, verified once:
 * inlined at each recording site, its loops over up to 127 frames took a
 * third of memtrace's start-up in the verifier. */
__noinline __u64 store_stack(struct mt_stack *s, __u64 kind, __u32 *lost)
{
	__u64 h;

	if (!s)
		return 0;
	h = hash_stack(s) & stack_hash_mask;

	for (__u32 p = 0; p < MT_STACK_PROBES; p++) {
		__u64 id = ((h + p) & ~MT_STACK_KIND_MASK) | kind;
		struct mt_stack *old;
		long err;

		if (!id || id == MT_STACK_IRQ)
			continue;
		/* a lockless lookup first: the stack is almost always known */
		old = bpf_map_lookup_elem(&stacks, &id);
		if (old) {
			if (same_stack(s, old))
				return id;
			continue;
		}
		err = bpf_map_update_elem(&stacks, &id, s, BPF_NOEXIST);
		if (!err)
			return id;
		if (err != -17 /* EEXIST: another CPU stored one just now */) {
			count(MT_CNT_LOST_STACKS_FULL, 1);
			if (lost)
				*lost = MT_CNT_LOST_STACKS_FULL;
			return 0;
		}
		old = bpf_map_lookup_elem(&stacks, &id);
		if (old && same_stack(s, old))
			return id;
	}
	count(MT_CNT_LOST_STACK_COLLISION, 1);
	if (lost)
		*lost = MT_CNT_LOST_STACK_COLLISION;
	return 0;
}

/* The first memo entry of the set that walks from (pc, sp) may take. */
static __always_inline __u32 memo_set(__u32 tgid, __u64 pc, __u64 sp)
{
	__u64 h = mix(pc ^ (sp * 0x9e3779b97f4a7c15ULL) ^ tgid);

	return bpf_get_smp_processor_id() * memo_size +
	       ((__u32)h & (memo_size - 1) & ~(MT_MEMO_WAYS - 1));
}

/* Where memo_same reads the stack: the walk's window, in a struct of its
 * own (a pointer into the walk's state would make the verifier forget
 * all of it at the call, and go through more of the walk that follows). */
struct memo_win {
	__u64 sp0;
	__u64 win;
	__u32 win_len;
	__u32 pad;
};

/*
 * Move the window to the word at addr, reading no further than end (the
 * last word a remembered walk used), from a little below it: a saved rbp,
 * recorded once used, comes after the return address above it. Whole
 * words, as window_read. 0, or -1 if the stack could not be read.
 */
__noinline int memo_window(struct memo_win *mw, __u64 addr, __u64 end)
{
	__u32 zero = 0;
	struct stack_window *w = bpf_map_lookup_elem(&stack_win, &zero);
	__u64 from;
	__u32 len;

	if (!mw || !w || addr < mw->sp0 || end < addr + 8)
		return -1;
	from = addr - mw->sp0 > MT_WIN_BELOW ? addr - MT_WIN_BELOW : mw->sp0 & ~7ULL;
	len = end - from < MT_MEMO_WIN ? end - from : MT_MEMO_WIN;
	mw->win = from;
	mw->win_len = 0;
	if (bpf_probe_read_user(w->w, len, (void *)from)) {
		/* the stretch crosses into memory that is not there (the words
		 * lie on two stacks: a signal's, the thread's): up to the end
		 * of the word's page only */
		from = addr;
		len = end - addr < 4096 - (addr & 4095) ? end - addr : 4096 - (addr & 4095);
		barrier_var(len); /* clang drops the test, the verifier needs it */
		if (len > MT_MEMO_WIN)
			len = MT_MEMO_WIN;
		mw->win = from;
		if (bpf_probe_read_user(w->w, len, (void *)from))
			return -1;
	}
	mw->win_len = len;
	return 0;
}

/*
 * Does every word the remembered walk m used still read the same? A plain
 * loop: a callback and a window check per word cost more than comparing.
 * A shallow stack's check is one short read (memo_window). The window
 * stays for the walk if it must be done after all. Global functions: the
 * verifier goes through the loop once, not once per way.
 */
__noinline int memo_same(struct memo_win *mw, const struct walk_memo *m)
{
	__u32 zero = 0;
	struct stack_window *w = bpf_map_lookup_elem(&stack_win, &zero);
	__u64 h = MT_MEMO_SEED;

	if (!mw || !m || !w)
		return 0;
	for (__u32 i = 0; i < MT_MEMO_READS && i < m->nreads; i++) {
		__u64 addr = mw->sp0 + m->off[i] * 8, o, v;

		if ((addr < mw->win || addr + 8 > mw->win + mw->win_len) &&
		    memo_window(mw, addr, mw->sp0 + m->end))
			return 0;
		o = (addr - mw->win) / 8;
		if (o >= MT_MEMO_WIN / 8)
			return 0;
		v = w->w[o];
		if (memo_tag(v) != m->tag[i])
			return 0;
		h = memo_hash(h, v);
	}
	return h == m->hash;
}

/*
 * Walk the user stack from the registers at the allocator's return with
 * the files' CFI, and store it; its id, or 0. A remembered walk from the
 * same place that still reads the same is taken instead. The set has
 * several: one function allocating at several call sites does so from
 * the same place below them (an allocation wrapper).
 * A global function, verified once: inlined at each recording site it
 * doubled memtrace's start-up (0.15 -> 0.33 s of CPU, the verifier).
 */
__noinline __u64 walk_user(__u64 pc, __u64 sp, __u64 bp, __u64 kind, struct mt_stack *s)
{
	__u64 id;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, set = memo_set(tgid, pc, sp);
	__u32 victim = 0;
	struct unwind u = {
		.pc = pc,
		.sp = sp,
		.bp = bp,
		.bp_ok = 1,
		.bp_init = 1,
		.epoch = cfi_epoch,
		.tgid = tgid,
		.sp0 = sp,
		.hash = MT_MEMO_SEED,
	};
	struct memo_win mw = { .sp0 = sp };
	struct walk_memo *m;
	bool empty = false;

	if (!s)
		return 0;
	for (__u32 i = 0; use_memo && i < MT_MEMO_WAYS; i++) {
		__u32 slot = set + i;

		m = bpf_map_lookup_elem(&walk_memo, &slot);
		if (!m)
			continue;
		if (!m->tgid && !empty) {
			victim = slot;
			empty = true;
		}
		if (m->tgid != tgid || m->pc != pc || m->sp != sp || m->epoch != u.epoch ||
		    (m->stack_id & MT_STACK_KIND_MASK) != kind || (m->bp_used && m->bp != bp))
			continue;
		if (memo_same(&mw, m)) {
			count(MT_CNT_WALK_REUSED, 1);
			if (m->truncated)
				count(MT_CNT_LOST_TRUNCATED, 1);
			return m->stack_id;
		}
	}
	/* walk, recording into an empty way or a random one (chosen only
	 * now: a reused walk needs no random number), on from the window the
	 * checks read */
	if (!empty)
		victim = set + (bpf_get_prandom_u32() & (MT_MEMO_WAYS - 1));
	u.win = mw.win;
	u.win_len = mw.win_len;
	m = bpf_map_lookup_elem(&walk_memo, &victim);
	if (m)
		m->tgid = 0;
	u.memo = victim;
	u.memo_ok = use_memo && m;
	bpf_loop(stack_depth, unwind_step, &u, 0);
	s->depth = u.n;
	s->flags = (u.done ? 0 : MT_STACK_F_TRUNCATED) | (u.fp ? MT_STACK_F_FP : 0);
	if (!s->depth) {
		count(MT_CNT_LOST_STACK_FAILED, 1);
		return 0;
	}
	if (!u.done)
		count(MT_CNT_LOST_TRUNCATED, 1);
	id = store_stack(s, kind, NULL);
	if (id && u.memo_ok && m) {
		m->pc = pc;
		m->sp = sp;
		m->bp = bp;
		m->epoch = u.epoch;
		m->stack_id = id;
		m->nreads = u.nreads;
		m->hash = u.hash;
		m->end = u.end;
		m->bp_used = u.bp_used;
		m->truncated = !u.done;
		m->tgid = tgid;
	}
	return id;
}

/*
 * Where a user stack's walk starts: the registers just after the allocator
 * returned (a return probe's), or what --preload's wrapper passes for its
 * caller, which are the same.
 */
struct mt_frame {
	__u64 pc, sp, bp;
};

static __always_inline struct mt_frame regs_frame(struct pt_regs *regs)
{
	return (struct mt_frame){ PT_REGS_IP(regs), PT_REGS_SP(regs), PT_REGS_FP(regs) };
}

/*
 * Capture the stack at the allocator's return: there regs->ip is the
 * return address into the allocating function, so frame 0 is never
 * missing. User stacks are walked with the files' CFI (frame pointers
 * where a file has none), kernel stacks by the kernel. Returns the stack
 * id, or 0 when nothing could be captured.
 */
static __always_inline __u64 walk_and_store(void *ctx, __u64 kind, struct mt_stack *s,
					    const struct mt_frame *f)
{
	bool kernel = kind == MT_STACK_KERNEL;
	__u32 size = stack_depth * sizeof(__u64);
	long n;

	if (!kernel && unwind_cfi) {
		if (!f) {
			count(MT_CNT_LOST_STACK_FAILED, 1);
			return 0;
		}
		return walk_user(f->pc, f->sp, f->bp, kind, s);
	}
	if (size > sizeof(s->ips))
		size = sizeof(s->ips);
	n = bpf_get_stack(ctx, s->ips, size, kernel ? 0 : BPF_F_USER_STACK);
	if (n <= 0) {
		count(MT_CNT_LOST_STACK_FAILED, 1);
		return 0;
	}
	s->depth = n / sizeof(__u64);
	s->flags = 0;
	if (kernel && from_interrupt(s))
		return MT_STACK_IRQ;
	return store_stack(s, kind, NULL);
}

static __always_inline __u64 capture_stack(void *ctx, __u64 kind, const struct mt_frame *f)
{
	__u32 slot = kind == MT_STACK_KERNEL ? 1 : 0;
	struct mt_stack *s = bpf_map_lookup_elem(&stack_buf, &slot);
	__u32 *busy = bpf_map_lookup_elem(&stack_busy, &slot);
	__u64 id;

	if (!s || !busy)
		return 0;
	/* atomic: a task preempted between a test and a set would walk at
	 * the same time as another, and mix their words into one walk_memo
	 * entry */
	if (__sync_lock_test_and_set(busy, 1)) {
		/* kernel: memtrace's own map memory, allocated inside one of its
		 * programs: not the process's (as an interrupt's is not) */
		if (slot)
			return MT_STACK_IRQ;
		count(MT_CNT_LOST_STACK_FAILED, 1); /* a user walk preempted here */
		return 0;
	}
	id = walk_and_store(ctx, kind, s, f);
	*busy = 0;
	return id;
}

/*
 * The current process's start (boot-time clock, 1.024 µs units, modulo
 * 2^32): with the tgid, it names one process, so a reused PID starts clean.
 * A global function, verified once: each BTF pointer load makes the
 * verifier search the kernel's BTF by name, and inlined at every caller
 * that cost 15% of memtrace's start-up (perf).
 */
__noinline __u32 proc_gen(void)
{
	/* direct loads (BTF pointers): no helper calls on the hot path */
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 g = (__u32)(t->group_leader->start_boottime >> 10);

	return g ? g : 1; /* 0 means "unknown" to userspace */
}

extern unsigned int CONFIG_HZ __kconfig __weak;

/*
 * A block's time, for its age: jiffies, which the JIT inlines to a load,
 * where bpf_ktime_get_ns is a call that reads the clocksource (about 60 ns
 * a malloc, measured on churn); an age needs no better than a tick.
 * Userspace converts (clock_now). Without the kernel's HZ, ns.
 */
static __always_inline __u64 alloc_time(void)
{
	return CONFIG_HZ ? bpf_jiffies64() : bpf_ktime_get_ns();
}

/* The current image: exec bumps the task's self_exec_id, and threads
 * created after copy it. */
static __always_inline __u32 exec_id(void)
{
	return (__u32)bpf_get_current_task_btf()->self_exec_id;
}

/*
 * The value at key in a hash map, created as init when there is none
 * (another CPU creating it at the same moment is no failure). NULL: the
 * map is full.
 */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

static __always_inline void stats_add(__u32 tgid, __u32 gen, __u64 stack_id, __u64 size,
				      __u32 n)
{
	struct mt_stats_key k = { .tgid = tgid, .gen = gen, .stack_id = stack_id };
	struct mt_stats zero = {};
	struct mt_stats *st = lookup_or_init(&stats, &k, &zero);

	if (!st) {
		count(MT_CNT_LOST_STATS_FULL, 1);
		return;
	}
	__sync_fetch_and_add(&st->alloc_bytes, size);
	__sync_fetch_and_add(&st->alloc_count, n);
}

static __always_inline void outstanding_add(__s64 d)
{
	__u32 zero = 0;
	__s64 *mine = bpf_map_lookup_elem(&outstanding_cpu, &zero), v, now, peak;

	if (!mine)
		return;
	/* atomic: another task may run this on the same CPU (preemption) */
	v = __sync_add_and_fetch(mine, d);
	if (v < MT_PEAK_BATCH && v > -MT_PEAK_BATCH)
		return;
	v = __sync_lock_test_and_set(mine, 0);
	now = __sync_fetch_and_add(&outstanding_bytes, v) + v;
	if (v <= 0)
		return;
	peak = peak_bytes;

	/* atomic max; a few tries are plenty with little contention */
	for (int i = 0; i < 4 && now > peak; i++) {
		__s64 seen = __sync_val_compare_and_swap(&peak_bytes, peak, now);

		if (seen == peak)
			break;
		peak = seen;
	}
}

/* Can tgid have one more live block (--max-allocs-per-process)? */
static __always_inline bool proc_room(__u32 tgid)
{
	__s64 zero = 0, *n;

	if (!max_allocs_per_proc)
		return true;
	n = lookup_or_init(&proc_live, &tgid, &zero);
	return !n || *n < (__s64)max_allocs_per_proc; /* map full: the global limit holds */
}

static __always_inline void proc_live_add(__u32 tgid, __s64 d)
{
	__s64 *n;

	if (max_allocs_per_proc && (n = bpf_map_lookup_elem(&proc_live, &tgid)))
		__sync_fetch_and_add(n, d);
}

/*
 * A tracked block went away (it is out of allocs): its stack's numbers
 * follow from allocs in userspace, only the running totals change here.
 */
static __always_inline void account_free(const struct mt_alloc *a)
{
	outstanding_add(-(__s64)a->size);
	proc_live_add(a->owner, -1);
}

enum { MT_TAKE_NONE, MT_TAKE_OK, MT_TAKE_RACE };

/* A block of the mmap kinds (--mmap): munmap's to take, not malloc's. */
static __always_inline bool mapped_block(const struct mt_alloc *a)
{
	return a->stack_id & (MT_STACK_MMAP | MT_STACK_BRK);
}

/* The first slot of k's set. */
static __always_inline __u32 slot_set(const struct mt_alloc_key *k)
{
	return (__u32)mix(k->addr ^ ((__u64)k->tgid << 32 | k->gen)) & slot_mask &
	       ~(MT_SLOT_WAYS - 1);
}

/* Fill a slot claimed (MT_SLOT_BUSY) and make it visible: addr last. */
static __always_inline void slot_fill(struct mt_slot *s, const struct mt_alloc_key *k,
				      const struct mt_alloc *a)
{
	s->tgid = k->tgid;
	s->gen = k->gen;
	s->a = *a;
	asm volatile("" ::: "memory");
	__sync_lock_test_and_set(&s->addr, k->addr);
}

/*
 * Make room in a full set: move its oldest block (at slot oldest, when
 * slot_put looked), if it is older than MT_SLOT_OLD_MS, to allocs, and
 * claim its slot (MT_SLOT_BUSY). A program
 * that holds many blocks for long would otherwise fill the table with them
 * and leave its short-lived ones to the hash; moved, each such block goes
 * through the hash once. The block is in allocs before it leaves its
 * slot, so a free on another CPU finds it in one or the other (userspace
 * reads the table first and counts a block it finds in both once). Not
 * covered: the block freed and its address given to a new block in the
 * same slot between the copy and the claim, a few instructions here (the
 * claim then moves the new block, and allocs keeps the old copy).
 */
static __always_inline struct mt_slot *slot_evict(__u32 oldest, __u64 oldest_ts, __u64 now)
{
	/* MT_SLOT_OLD_MS in alloc_time's units, at least a tick */
	__u64 age = CONFIG_HZ ? (CONFIG_HZ * MT_SLOT_OLD_MS + 999) / 1000 :
				MT_SLOT_OLD_MS * 1000000ULL;
	struct mt_alloc_key vk;
	struct mt_alloc v;
	struct mt_slot *s;

	if (oldest == ~0u || now < age || oldest_ts > now - age)
		return NULL; /* all young (or being filled): the new block to allocs */
	s = bpf_map_lookup_elem(&slots, &oldest);
	if (!s)
		return NULL;
	vk = (struct mt_alloc_key){ .tgid = s->tgid, .gen = s->gen, .addr = s->addr };
	v = s->a;
	/* (the slot may hold another block by now) */
	if (vk.addr <= MT_SLOT_BUSY || v.ts > now - age ||
	    bpf_map_update_elem(&allocs, &vk, &v, BPF_NOEXIST))
		return NULL;
	if (__sync_val_compare_and_swap(&s->addr, vk.addr, MT_SLOT_BUSY) != vk.addr) {
		/* freed from its slot this moment: the copy must go */
		struct mt_alloc *c = bpf_map_lookup_elem(&allocs, &vk);

		if (c && c->ts == v.ts && c->stack_id == v.stack_id)
			bpf_map_delete_elem(&allocs, &vk);
		return NULL;
	}
	count(MT_CNT_TABLE_MOVED, 1);
	return s;
}

/*
 * A new block into its set; false if the set is full (it goes to allocs).
 * A block of the same key there is one whose free was never seen: it is
 * retired first, as record_block does with the hash's.
 */
static __always_inline bool slot_put(const struct mt_alloc_key *k, const struct mt_alloc *a)
{
	__u32 set = slot_set(k), empty = ~0u, oldest = ~0u;
	__u64 oldest_ts = ~0ULL;
	struct mt_slot *s;

	for (__u32 i = 0; i < MT_SLOT_WAYS; i++) {
		__u32 idx = set + i;
		struct mt_alloc old;
		__u64 addr;

		s = bpf_map_lookup_elem(&slots, &idx);
		if (!s)
			continue;
		addr = s->addr;
		if (!addr) {
			if (empty == ~0u)
				empty = idx;
			continue;
		}
		if (addr != k->addr || s->tgid != k->tgid || s->gen != k->gen) {
			if (addr > MT_SLOT_BUSY && s->a.ts < oldest_ts) {
				oldest = idx;
				oldest_ts = s->a.ts;
			}
			continue;
		}
		old = s->a;
		if (__sync_val_compare_and_swap(&s->addr, addr, MT_SLOT_BUSY) != addr)
			continue; /* freed this moment */
		account_free(&old);
		if (old.exec_id == a->exec_id)
			count(MT_CNT_LOST_STALE, 1);
		slot_fill(s, k, a);
		return true;
	}
	if (empty == ~0u) {
		s = slot_evict(oldest, oldest_ts, a->ts);
		if (!s)
			return false;
		slot_fill(s, k, a);
		return true;
	}
	s = bpf_map_lookup_elem(&slots, &empty);
	/* another CPU may have claimed it since: then the hash */
	if (!s || __sync_val_compare_and_swap(&s->addr, 0, MT_SLOT_BUSY))
		return false;
	slot_fill(s, k, a);
	return true;
}

/* Take k's block out of the table into *out: as take_block. */
static __always_inline int slot_take(const struct mt_alloc_key *k, struct mt_alloc *out,
				     bool mapped)
{
	__u32 set = slot_set(k);

	for (__u32 i = 0; i < MT_SLOT_WAYS; i++) {
		__u32 idx = set + i;
		struct mt_slot *s = bpf_map_lookup_elem(&slots, &idx);

		if (!s || s->addr != k->addr || s->tgid != k->tgid || s->gen != k->gen)
			continue;
		*out = s->a;
		if (mapped && !mapped_block(out))
			return MT_TAKE_NONE;
		if (__sync_val_compare_and_swap(&s->addr, k->addr, 0) == k->addr)
			return MT_TAKE_OK;
		return MT_TAKE_RACE;
	}
	return MT_TAKE_NONE;
}

/*
 * Take a tracked block out of the books (the table, else allocs) into
 * *out, without accounting it: MT_TAKE_OK; MT_TAKE_NONE if it was not
 * tracked; MT_TAKE_RACE if a concurrent free of the same block (a double
 * free) took it first. mapped: only a block of the mmap kinds (munmap
 * must leave malloc's blocks alone).
 */
static __always_inline int take_block(const struct mt_alloc_key *k, struct mt_alloc *out,
				      bool mapped)
{
	struct mt_alloc *a;

	if (k->tgid != MT_KERNEL_TGID) {
		int r = slot_take(k, out, mapped);

		if (r != MT_TAKE_NONE)
			return r;
	}
	a = bpf_map_lookup_elem(&allocs, k);
	if (!a || (mapped && !mapped_block(a)))
		return MT_TAKE_NONE;
	*out = *a;
	return bpf_map_delete_elem(&allocs, k) ? MT_TAKE_RACE : MT_TAKE_OK;
}

static __always_inline void record_block(struct mt_alloc_key *k, struct mt_alloc *ap,
					 bool kernel);

/* kind: 0 (malloc and friends), MT_STACK_KERNEL, MT_STACK_MMAP, MT_STACK_BRK;
 * f: where the user stack's walk starts (NULL for the kernel's) */
static __always_inline void record_alloc(void *ctx, __u32 tgid, __u64 addr, __u64 size,
					 __u64 kind, const struct mt_frame *f)
{
	bool kernel = kind == MT_STACK_KERNEL;
	__u32 gen = proc_gen();
	struct mt_alloc_key k = { .tgid = kernel ? MT_KERNEL_TGID : tgid, .gen = kernel ? 0 : gen,
				  .addr = addr };
	struct mt_alloc a = { .size = size, .count = 1, .owner = tgid, .owner_gen = gen };

	if (size < min_size || size > max_size) {
		count(MT_CNT_SIZE_FILTERED, 1);
		return;
	}
	if (sample_bytes && !kernel) {
		/* what this sample stands for; the count rounded at random so
		 * that it stays unbiased (kernel blocks are never sampled) */
		__u64 w = sample_weight_fp(size);

		a.size = (size * w + (1 << 15)) >> 16;
		a.count = (w + (bpf_get_prandom_u32() & 0xffff)) >> 16;
	}
	a.stack_id = capture_stack(ctx, kind, f);
	if (a.stack_id == MT_STACK_IRQ)
		return;
	record_block(&k, &a, kernel);
}

/* A block with its stack: into allocs and its stack's totals. */
static __always_inline void record_block(struct mt_alloc_key *k, struct mt_alloc *ap, bool kernel)
{
	struct mt_alloc a = *ap;
	__u32 tgid = a.owner, gen = a.owner_gen;
	long err;

	if (!proc_room(tgid)) {
		count(MT_CNT_LOST_PROCESS_LIMIT, 1);
		return;
	}
	a.ts = alloc_time();
	a.exec_id = exec_id();
	/* the table, unless the hash has the key: a block whose free was
	 * never seen, which the hash's insert retires below */
	if (kernel || bpf_map_lookup_elem(&allocs, k)) {
		err = bpf_map_update_elem(&allocs, k, &a, BPF_NOEXIST);
	} else if (slot_put(k, &a)) {
		err = 0;
	} else {
		count(MT_CNT_TABLE_FULL, 1);
		err = bpf_map_update_elem(&allocs, k, &a, BPF_NOEXIST);
	}
	if (err == -17) {
		/* the old block's free was never seen: retire it first (an old
		 * image's, whose exec userspace has not purged yet, is no loss) */
		struct mt_alloc *old = bpf_map_lookup_elem(&allocs, k);
		struct mt_alloc copy = {};

		if (old) {
			copy = *old;
			account_free(&copy);
		}
		if (!old || kernel || copy.exec_id == a.exec_id)
			count(MT_CNT_LOST_STALE, 1);
		err = bpf_map_update_elem(&allocs, k, &a, BPF_ANY);
	}
	if (err) {
		count(MT_CNT_LOST_ALLOCS_FULL, 1);
		return;
	}
	stats_add(tgid, gen, a.stack_id, a.size, a.count);
	outstanding_add(a.size);
	proc_live_add(tgid, 1);
}

/*
 * Allocator-internal nesting is shallow: an inner call sits within a few
 * KiB below the outer one. A state left behind (a longjmp or exception
 * out of an allocator) is then rarely taken for an outer call.
 */
#define MT_NEST_MAX_SP 16384

/* Is a call at sp nested inside the thread's call in flight c? */
static __always_inline bool nested_in(const struct mt_call *c, __u64 sp)
{
	return c && c->depth && sp < c->sp && c->sp - sp < MT_NEST_MAX_SP;
}

/* Entry programs return this to skip the call's return probe (session). */
#define MT_NO_RETURN 1

/*
 * Every call of a function with a return probe comes through here,
 * recorded or not (record = false). Returns 0 when its return must run:
 * it pops the thread's nesting state, which the call's inner calls (to
 * other traced functions) see. A leaf function's call with nothing to
 * record has no inner calls to hide and nothing to do at its return:
 * MT_NO_RETURN, no state, and with sessions no return trap.
 */
static __always_inline int enter_as(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 arg,
				    bool record)
{
	bool leaf = fn & MT_FN_LEAF, presampled = fn & MT_FN_PRESAMPLED;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 sp = PT_REGS_SP(ctx);
	struct mt_call *c = thread_call(true);

	if (!c) {
		count(MT_CNT_LOST_THREADS_FULL, 1);
		return MT_NO_RETURN;
	}
	if (nested_in(c, sp)) {
		c->depth++;
		count(MT_CNT_NESTED, 1);
		return 0;
	}
	if (c->depth && c->old_found) {
		/* a stale state is replaced: give back the realloc block it held */
		struct mt_alloc_key k = { .tgid = tgid, .gen = proc_gen(), .addr = c->arg };

		bpf_map_update_elem(&allocs, &k, &c->old, BPF_NOEXIST);
	}
	fn &= ~(MT_FN_LEAF | MT_FN_PRESAMPLED);
	record = record && (presampled || !sample_bytes || sample(size));
	if (!record && leaf && fn != MT_FN_REALLOC && fn != MT_FN_REALLOCARRAY &&
	    fn != MT_FN_MREMAP) {
		/* realloc and mremap always move an old block */
		c->depth = 0;
		return MT_NO_RETURN;
	}
	c->size = size;
	c->arg = arg;
	c->sp = sp;
	c->fn = fn;
	c->depth = 1;
	c->old_found = 0;
	c->sampled = record;
	if ((fn == MT_FN_REALLOC || fn == MT_FN_REALLOCARRAY) && arg) {
		struct mt_alloc_key k = { .tgid = tgid, .gen = proc_gen(), .addr = arg };

		c->old_found = take_block(&k, &c->old, false) == MT_TAKE_OK;
	}
	return 0;
}

static __always_inline int enter(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 arg)
{
	return enter_as(ctx, fn, size, arg, true);
}

static __always_inline void leave_realloc(struct pt_regs *ctx, __u32 tgid,
					  const struct mt_call *c, __u64 ret,
					  const struct mt_frame *f)
{
	struct mt_alloc_key k = { .tgid = tgid, .gen = proc_gen(), .addr = c->arg };

	if (!ret && c->size) {
		/* failed: the old block is still live, put it back */
		count(MT_CNT_ALLOC_FAILED, 1);
		if (c->old_found)
			bpf_map_update_elem(&allocs, &k, &c->old, BPF_NOEXIST);
		return;
	}
	/* the old block is gone: moved, or freed by realloc(p, 0) */
	if (c->old_found)
		account_free(&c->old);
	else if (c->arg && !sample_bytes)
		count(MT_CNT_LOST_FREE_UNTRACKED, 1);
	if (ret && c->sampled)
		record_alloc(ctx, tgid, ret, c->size, 0, f);
}

/* Take out a block of the mmap kinds at addr (munmap, mremap's old). */
static __always_inline bool unmap_block(__u32 tgid, __u64 addr)
{
	struct mt_alloc_key k = { .tgid = tgid, .gen = proc_gen(), .addr = addr };
	struct mt_alloc copy;

	/* only what mmap gave: a malloc'd block at that address is malloc's */
	if (take_block(&k, &copy, true) != MT_TAKE_OK)
		return false;
	account_free(&copy);
	return true;
}

/* mmap, mremap, sbrk return (void *)-1 on failure */
static __always_inline void leave_map(void *ctx, __u32 tgid, const struct mt_call *c,
				      __u64 ret, const struct mt_frame *f)
{
	if (c->fn == MT_FN_MREMAP) {
		/* a block of ours that moved or grew; realloc's are nested */
		if (ret != ~0ULL && unmap_block(tgid, c->arg) && c->sampled)
			record_alloc(ctx, tgid, ret, c->size, MT_STACK_MMAP, f);
		return;
	}
	if (!c->sampled)
		return; /* a file mapping, sbrk(0), or not sampled */
	if (ret == ~0ULL)
		count(MT_CNT_ALLOC_FAILED, 1);
	else
		record_alloc(ctx, tgid, ret, c->size,
			     c->fn == MT_FN_SBRK ? MT_STACK_BRK : MT_STACK_MMAP, f);
}

static __always_inline int leave(struct pt_regs *ctx, __u64 ret, const struct mt_frame *f)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mt_call *p = thread_call(false);
	struct mt_call c;
	__u64 ptr = 0;

	if (!p || !p->depth)
		return 0; /* entered before we attached, or nothing to do */
	if (p->depth > 1) {
		p->depth--;
		return 0;
	}
	c = *p;
	p->depth = 0;

	switch (c.fn) {
	case MT_FN_REALLOC:
	case MT_FN_REALLOCARRAY:
		leave_realloc(ctx, id >> 32, &c, ret, f);
		return 0;
	case MT_FN_MMAP:
	case MT_FN_MREMAP:
	case MT_FN_SBRK:
		leave_map(ctx, id >> 32, &c, ret, f);
		return 0;
	case MT_FN_POSIX_MEMALIGN:
		/* returns 0 (an int) on success, the block in *memptr */
		if ((int)ret || bpf_probe_read_user(&ptr, sizeof(ptr), (void *)c.arg))
			ptr = 0;
		break;
	default:
		ptr = ret;
	}
	if (!ptr)
		count(MT_CNT_ALLOC_FAILED, 1);
	else if (c.sampled)
		record_alloc(ctx, id >> 32, ptr, c.size, 0, f);
	return 0;
}

/* n * size, saturated: an overflowing request must not look like 0. */
static __always_inline __u64 mul_sat(__u64 n, __u64 size)
{
	/* 32-bit halves, so clang does not emit a 128-bit multiply */
	__u64 nh = n >> 32, nl = n & 0xffffffffULL;
	__u64 sh = size >> 32, sl = size & 0xffffffffULL;
	__u64 mid;

	if (nh && sh)
		return ~0ULL;
	mid = nh * sl + nl * sh + ((nl * sl) >> 32);
	if (mid >> 32)
		return ~0ULL;
	return n * size;
}

/* Take a tracked block out of the books; false if it was not tracked. */
static __always_inline bool free_block(struct mt_alloc_key *k)
{
	struct mt_alloc copy;
	int r = take_block(k, &copy, false);

	if (r == MT_TAKE_OK)
		account_free(&copy);
	return r != MT_TAKE_NONE;
}

static __always_inline int free_enter(struct pt_regs *ctx, __u64 ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mt_alloc_key k = { .tgid = id >> 32, .gen = proc_gen(), .addr = ptr };

	if (!ptr)
		return 0;
	if (free_block(&k))
		return 0;
	/* realloc(p, 0) frees p through free(), but realloc took p out of
	 * allocs at its entry and accounts it: not a lost free. The thread's
	 * state is read only here, not on every free. */
	if (nested_in(thread_call(false), PT_REGS_SP(ctx)))
		count(MT_CNT_NESTED, 1);
	/* when sampling, most blocks are not tracked: nothing lost */
	else if (!sample_bytes && !tree_overlap)
		count(MT_CNT_LOST_FREE_UNTRACKED, 1);
	return 0;
}

/* Is this probe hit one of a traced process? (cookie: the attach cookie) */
static __always_inline bool traced_hit(__u64 cookie, __u32 tgid)
{
	if ((cookie & MT_FN_TREE) && !bpf_map_lookup_elem(&targets, &tgid))
		return false;
	return !(trace_all || filter_comm || filter_cgroup) || selected(tgid);
}

/*
 * The entry of every allocator function; the attach cookie says which
 * one. 0 or MT_NO_RETURN (enter_as).
 */
static __always_inline int on_entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 leaf = cookie & MT_FN_LEAF, fn = cookie & ~(MT_FN_LEAF | MT_FN_TREE);
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!traced_hit(cookie, tgid))
		return MT_NO_RETURN;
	switch (fn) {
	case MT_FN_MMAP:	/* anonymous only: file mappings are not allocations */
		return enter_as(ctx, fn | leaf, a2, 0, PT_REGS_PARM4(ctx) & 0x20 /* MAP_ANONYMOUS */);
	case MT_FN_MUNMAP:
		if (!nested_in(thread_call(false), PT_REGS_SP(ctx)))
			unmap_block(tgid, a1);
		return MT_NO_RETURN;
	case MT_FN_MREMAP:
		return enter(ctx, fn | leaf, a3, a1);
	case MT_FN_SBRK:	/* growth only; sbrk(0) and shrinking are not */
		return enter_as(ctx, fn | leaf, a1, 0, (long)a1 > 0);
	case MT_FN_FREE:
		free_enter(ctx, a1);
		return MT_NO_RETURN;
	case MT_FN_FREE_ARG2:
		free_enter(ctx, a2);
		return MT_NO_RETURN;
	case MT_FN_ALLOC_ARG2:
		return enter(ctx, MT_FN_MALLOC | leaf, a2, 0);
	case MT_FN_ALLOC_ARG3:
		return enter(ctx, MT_FN_MALLOC | leaf, a3, 0);
	case MT_FN_CALLOC:
		return enter(ctx, fn | leaf, mul_sat(a1, a2), 0);
	case MT_FN_REALLOC:
		return enter(ctx, fn | leaf, a2, a1);
	case MT_FN_REALLOCARRAY:
		return enter(ctx, fn | leaf, mul_sat(a2, a3), a1);
	case MT_FN_POSIX_MEMALIGN:	/* (memptr, align, size) */
		return enter(ctx, fn | leaf, a3, a1);
	case MT_FN_MEMALIGN:		/* aligned_alloc, memalign: (align, size) */
		return enter(ctx, fn | leaf, a2, 0);
	default:			/* malloc, valloc, pvalloc, operator new */
		return enter(ctx, fn | leaf, a1, 0);
	}
}

extern bool bpf_session_is_return(void) __ksym __weak;

/* Linux 6.13+: alloc_session is a session program; before, it is a plain
 * entry program and alloc_return the return's (tracer.c). */
const volatile __u32 use_session = 1;

/*
 * Functions without a return to watch (free, munmap): one uprobe_multi
 * link per library covers them all (detaching a link costs an RCU grace
 * period, ~0.1 s here, per link).
 */
SEC("uprobe.multi")
int alloc_enter(struct pt_regs *ctx)
{
	on_entry(ctx);
	return 0;
}

/*
 * Functions with a return (malloc, realloc, ...): one session link per
 * library; the program runs at entry and, unless the entry returned
 * MT_NO_RETURN, at the return. Userspace loads it as a uprobe session
 * (libbpf 1.4 has no section name for that).
 */
SEC("uprobe.multi")
int alloc_session(struct pt_regs *ctx)
{
	int ret;

	if (use_session && bpf_session_is_return()) {
		struct mt_frame f = regs_frame(ctx);

		return leave(ctx, PT_REGS_RC(ctx), &f);
	}
	ret = on_entry(ctx);
	/* without sessions every return runs; one with nothing to do finds
	 * no state in flight (leaf calls leave none) */
	return use_session ? ret : 0;
}

/* Before Linux 6.13 only: the return, on its own link. */
SEC("uretprobe.multi")
int alloc_return(struct pt_regs *ctx)
{
	struct mt_frame f = regs_frame(ctx);

	return leave(ctx, PT_REGS_RC(ctx), &f);
}

/* --probe-floor: the same sites with nothing to do, to measure the cost
 * of the probes themselves (bench/); returns always run, as in the
 * default mode. */
SEC("uprobe.multi")
int floor_enter(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe.multi")
int floor_session(struct pt_regs *ctx)
{
	return 0;
}

SEC("uretprobe.multi")
int floor_return(struct pt_regs *ctx)
{
	return 0;
}

/*
 * --preload: the probe sites of libmemtrace-preload.so (user/preload.c),
 * 5-byte nops, which the kernel turns into a call (an optimized uprobe: no
 * trap). Its wrappers of the allocator's functions call them around the
 * real function, with the caller's frame:
 *   after an allocation (size, block, pc, sp, bp, rate): recorded at once;
 *   before a free (block), and before realloc (old, size, rate, sampled):
 *   as at the entries above; after realloc (block, pc, sp, bp): as at its
 *   return.
 * rate: with --preload --sample-bytes N the library samples (rate N) and
 * calls the sites only for the blocks it sampled.
 */
SEC("uprobe.multi")
int preload_site(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mt_frame f;

	if (!traced_hit(cookie, tgid))
		return 0;
	switch (cookie & ~MT_FN_TREE) {
	case MT_FN_FREE:
		free_enter(ctx, a1);
		return 0;
	case MT_FN_REALLOC:	/* (old, size, rate, sampled) */
		if (sample_bytes && PT_REGS_PARM3(ctx) == sample_bytes)
			enter_as(ctx, MT_FN_REALLOC | MT_FN_PRESAMPLED, a2, a1, PT_REGS_PARM4(ctx));
		else
			enter(ctx, MT_FN_REALLOC, a2, a1);
		return 0;
	case MT_FN_PRELOAD_RETURN:
		f = (struct mt_frame){ a2, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx) };
		return leave(ctx, a1, &f);
	default:
		break;
	}
	/* inside a function still probed (a program's own operator new, musl's
	 * calloc): the outer call records it */
	if (nested_in(thread_call(false), PT_REGS_SP(ctx))) {
		count(MT_CNT_NESTED, 1);
		return 0;
	}
	if (!a2) {
		count(MT_CNT_ALLOC_FAILED, 1);
		return 0;
	}
	/* (size, block, pc, sp, bp, rate): the library sampled already when
	 * its rate is ours (MEMTRACE_SAMPLE_BYTES) */
	if (sample_bytes && PT_REGS_PARM6(ctx) != sample_bytes && !sample(a1))
		return 0;
	f = (struct mt_frame){ PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx) };
	record_alloc(ctx, tgid, a2, a1, 0, &f);
	return 0;
}

/*
 * --preload --batch: the library queues its events in order and hands
 * them over a batch at a time at memtrace_site_batch(events, n), one
 * optimized probe hit for up to MT_BATCH_MAX events. Stacks were walked in
 * the process (where reading its stack costs nothing); a stack's frames
 * come once, in an MT_BEV_STACK event, and batch_stacks keeps what the
 * library's key for it stands for. A block allocated and freed within one
 * batch comes as one MT_BEV_PAIR: only its stack's totals change.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MT_DEFAULT_MAX_STACKS);
	__type(key, struct mt_batch_key);
	__type(value, struct mt_batch_stack);
} batch_stacks SEC(".maps");

/* realloc's old blocks between MT_BEV_HOLD and RELEASE or REVIVE; LRU:
 * a process that ends inside realloc leaves one behind */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MT_BATCH_MAX);
	__type(key, struct mt_alloc_key);
	__type(value, struct mt_alloc);
} batch_held SEC(".maps");

/* Events read from the process a chunk at a time: one read per 4 KiB. */
#define MT_BATCH_CHUNK 128

struct batch_scratch {
	struct mt_batch_ev ev[MT_BATCH_CHUNK];
	struct mt_stack stack;
};

/* Two per CPU: a batch preempted mid-way, and another task's on the same
 * CPU (batch_level says how many run there). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct batch_scratch);
} batch_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} batch_level SEC(".maps");

struct batch {
	__u64 events;	/* in the process */
	__u32 n, tgid, gen, slot;
};

/*
 * Where each process's queue is (the site's first call, at its start and
 * in a fork's child), for its exit: the last thread's exit reads what no
 * batch took (a process killed by a signal, or gone by a raw exit_group;
 * at a normal exit the library has handed all over). done: the number of
 * the last batch taken, still in the queue if the process died right
 * after the site.
 */
struct batch_queue {
	__u64 queue;	/* struct mt_batch_queue, in the process */
	__u32 exec_id;	/* its image's: an image without the library has none */
	__u32 gen;
	__u32 done;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct batch_queue);
} batch_queues SEC(".maps");

/*
 * --batch: the library's frames are addresses in its process. Those in a
 * file the unwinder knows become (file id, offset), as the walks record
 * them, so that processes running the same files share their stacks: with
 * each process's own addresses (ASLR) the stack store filled after a few
 * dozen processes (a shell script's). A file seen for the first time is
 * asked for; its frames stay addresses until its table is there.
 */
struct batch_files {
	struct mt_stack *s;
	__u64 start, end, base;	/* the last frame's mapping (end 0: none) */
	__u32 id;		/* its file's (0: none known) */
};

static long batch_file(__u64 i, struct batch_files *bf)
{
	struct mt_stack *s = bf->s;
	__u64 pc, lpc;

	if (i >= MT_MAX_DEPTH)
		return 1;
	pc = s->ips[i];
	lpc = pc - 1; /* a return address: inside the call, not after it */
	if (lpc < bf->start || lpc >= bf->end) {
		struct vma_info v = {};
		struct mt_cfi_table *t = table_at(lpc, &v);

		bf->start = v.start;
		bf->end = v.end;
		bf->base = v.start - (v.pgoff << 12);
		bf->id = t ? t->id : 0;
	}
	if (bf->id && pc - bf->base <= MT_FRAME_OFF_MASK)
		s->ips[i] = MT_FRAME_FILE | (__u64)(bf->id & MT_FRAME_ID_MASK) << MT_FRAME_ID_SHIFT |
			    (pc - bf->base);
	return 0;
}

/* An MT_BEV_STACK: store the frames, remember what the key stands for. */
static __always_inline void batch_stack(struct batch *b, struct batch_scratch *sc,
					const struct mt_batch_ev *e)
{
	struct mt_batch_key k = { .tgid = b->tgid, .gen = b->gen, .key = e->stack };
	struct mt_batch_stack v = {};
	struct mt_stack *s = &sc->stack;
	__u64 size = e->size;

	if (size < 8 + 8 || size > sizeof(*s) ||
	    bpf_probe_read_user(s, size & (sizeof(*s) * 2 - 1), (void *)e->addr) ||
	    s->depth > MT_MAX_DEPTH || 8 + 8 * (__u64)s->depth != size) {
		count(MT_CNT_LOST_STACK_FAILED, 1);
		return;
	}
	if (unwind_cfi) {
		struct batch_files bf = { .s = s };

		bpf_loop(s->depth, batch_file, &bf, 0);
	}
	v.truncated = s->flags & MT_STACK_F_TRUNCATED;
	v.stack_id = store_stack(s, 0, &v.lost);
	/* counted for the allocation that follows its definition */
	v.first = !v.stack_id;
	/* full: its allocations count themselves (no stack) */
	bpf_map_update_elem(&batch_stacks, &k, &v, BPF_ANY);
}

static __always_inline void batch_alloc(struct batch *b, const struct mt_batch_ev *e)
{
	struct mt_batch_key bk = { .tgid = b->tgid, .gen = b->gen, .key = e->stack };
	struct mt_alloc_key k = { .tgid = b->tgid, .gen = b->gen, .addr = e->addr };
	struct mt_alloc a = { .size = e->size, .count = 1, .owner = b->tgid, .owner_gen = b->gen };
	struct mt_batch_stack *st = e->stack ? bpf_map_lookup_elem(&batch_stacks, &bk) : NULL;

	if (e->size < min_size || e->size > max_size) {
		count(MT_CNT_SIZE_FILTERED, 1);
		return;
	}
	if (!st) {
		count(MT_CNT_LOST_STACK_FAILED, 1); /* its MT_BEV_STACK failed */
	} else if (!st->stack_id) {
		/* counted as the default mode does: once an allocation (the
		 * first when its definition failed to store) */
		if (st->first)
			st->first = 0;
		else if (st->lost)
			count(st->lost, 1);
	} else {
		a.stack_id = st->stack_id;
		if (st->truncated)
			count(MT_CNT_LOST_TRUNCATED, 1);
	}
	if (e->kind == MT_BEV_ALLOC) {
		record_block(&k, &a, false);
		return;
	}
	stats_add(b->tgid, b->gen, a.stack_id, a.size, 1);
}

/* A free, or a realloc's old block: held while the call runs, then gone
 * (it worked) or back (it failed: the block is still the caller's). */
static __always_inline void batch_free(struct batch *b, const struct mt_batch_ev *e)
{
	struct mt_alloc_key k = { .tgid = b->tgid, .gen = b->gen, .addr = e->addr };
	struct mt_alloc *a, copy;
	int r;

	switch (e->kind) {
	case MT_BEV_RELEASE:
		bpf_map_delete_elem(&batch_held, &k);
		return;
	case MT_BEV_REVIVE:
		a = bpf_map_lookup_elem(&batch_held, &k);
		if (a && !bpf_map_update_elem(&allocs, &k, a, BPF_NOEXIST)) {
			outstanding_add(a->size);
			proc_live_add(b->tgid, 1);
		}
		bpf_map_delete_elem(&batch_held, &k);
		return;
	}
	r = take_block(&k, &copy, false);
	if (r == MT_TAKE_OK) {
		if (e->kind == MT_BEV_HOLD)
			bpf_map_update_elem(&batch_held, &k, &copy, BPF_ANY);
		account_free(&copy);
	} else if (r == MT_TAKE_NONE && !tree_overlap) {
		count(MT_CNT_LOST_FREE_UNTRACKED, 1);
	}
}

static long batch_one(__u64 i, struct batch *b)
{
	struct batch_scratch *sc = bpf_map_lookup_elem(&batch_buf, &b->slot);
	__u32 j = i % MT_BATCH_CHUNK;
	struct mt_batch_ev *e;

	if (!sc)
		return 1;
	if (!j) {
		__u64 left = b->n - i;

		if (left > MT_BATCH_CHUNK)
			left = MT_BATCH_CHUNK;
		if (bpf_probe_read_user(sc->ev, left * sizeof(*e) & (sizeof(sc->ev) * 2 - 1),
					(void *)(b->events + i * sizeof(*e)))) {
			count(MT_CNT_LOST_BATCH_UNREAD, b->n - i);
			return 1;
		}
	}
	e = &sc->ev[j & (MT_BATCH_CHUNK - 1)];
	switch (e->kind) {
	case MT_BEV_ALLOC:
	case MT_BEV_PAIR:
		batch_alloc(b, e);
		break;
	case MT_BEV_FREE:
	case MT_BEV_HOLD:
	case MT_BEV_RELEASE:
	case MT_BEV_REVIVE:
		batch_free(b, e);
		break;
	case MT_BEV_STACK:
		batch_stack(b, sc, e);
		break;
	case MT_BEV_FAILED:
		count(MT_CNT_ALLOC_FAILED, 1);
		break;
	case MT_BEV_NESTED:
		count(MT_CNT_NESTED, 1);
		break;
	default:
		count(MT_CNT_LOST_BATCH_UNREAD, 1);
		break;
	}
	return 0;
}

/* The events of b (all but tgid and gen set), on one of this CPU's two
 * buffers. */
static __always_inline void batch_run(struct batch *b)
{
	__u32 zero = 0, *level = bpf_map_lookup_elem(&batch_level, &zero);

	if (!level)
		return;
	b->slot = __sync_fetch_and_add(level, 1);
	if (b->slot < 2)
		bpf_loop(b->n, batch_one, b, 0);
	else
		count(MT_CNT_LOST_BATCH_UNREAD, b->n);
	__sync_fetch_and_add(level, -1);
}

/* memtrace_site_batch(queue, n, batch): batch number `batch`, n events;
 * n 0: where the queue is (the process starts) */
SEC("uprobe.multi")
int preload_batch(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), n = PT_REGS_PARM2(ctx);
	struct batch_queue *r, reg = {
		.queue = PT_REGS_PARM1(ctx),
		.exec_id = exec_id(),
		.done = PT_REGS_PARM3(ctx),
	};
	struct batch b = {
		.events = reg.queue + offsetof(struct mt_batch_queue, ev),
		.n = n > MT_BATCH_MAX ? MT_BATCH_MAX : n,
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};

	if (!traced_hit(cookie, b.tgid))
		return 0;
	b.gen = reg.gen = proc_gen();
	r = bpf_map_lookup_elem(&batch_queues, &b.tgid);
	if (r && r->queue == reg.queue && r->exec_id == reg.exec_id && r->gen == reg.gen) {
		/* before the events: a batch is taken once (batch_exec may
		 * have taken it, as another thread execs) */
		if (__sync_lock_test_and_set(&r->done, reg.done) == reg.done && n)
			return 0;
	} else if (bpf_map_update_elem(&batch_queues, &b.tgid, &reg, BPF_ANY))
		count(MT_CNT_LOST_BATCH_UNREAD, 1); /* its exit's events would be */
	if (n > MT_BATCH_MAX)
		count(MT_CNT_LOST_BATCH_UNREAD, n - MT_BATCH_MAX);
	batch_run(&b);
	return 0;
}

/*
 * What a process's queue holds that no batch took (r: where it is).
 * Taken once: a batch's number goes into r->done before its events are
 * read, here and at the site (preload_batch).
 */
static __always_inline void take_queue(__u32 tgid, struct batch_queue *r)
{
	struct { __u32 n, batch; } head;
	struct batch b = { .tgid = tgid, .gen = r->gen };

	if (bpf_probe_read_user(&head, sizeof(head), (void *)r->queue)) {
		count(MT_CNT_LOST_BATCH_UNREAD, 1); /* how many: unknown */
		return;
	}
	if (!head.n || __sync_lock_test_and_set(&r->done, head.batch) == head.batch)
		return;
	b.events = r->queue + offsetof(struct mt_batch_queue, ev);
	b.n = head.n > MT_BATCH_MAX ? MT_BATCH_MAX : head.n;
	if (head.n > MT_BATCH_MAX)
		count(MT_CNT_LOST_BATCH_UNREAD, head.n - MT_BATCH_MAX);
	batch_run(&b);
}

/*
 * --batch: a process's last thread exits (current: the mm is still
 * there). What its queue holds came after the last batch: take it.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(batch_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = p->tgid;
	struct batch_queue *r = group_dead ? bpf_map_lookup_elem(&batch_queues, &tgid) : NULL;

	if (!r)
		return 0;
	/* an image without the library: its queue is gone */
	if (r->exec_id == (__u32)p->self_exec_id)
		take_queue(tgid, r);
	bpf_map_delete_elem(&batch_queues, &tgid);
	return 0;
}

/*
 * --batch: the process execs (Linux 6.10+: the old image is still there,
 * and from here a failure is fatal). The library's exec wrappers have
 * handed the queue over; an exec it did not see (syscall(SYS_execve),
 * execveat) has not: take what is left. The new image registers its own
 * queue at its start.
 */
SEC("tp_btf/sched_prepare_exec")
int BPF_PROG(batch_exec, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	struct batch_queue *r = bpf_map_lookup_elem(&batch_queues, &tgid);

	if (r && r->exec_id == (__u32)p->self_exec_id && r->gen == proc_gen())
		take_queue(tgid, r);
	return 0;
}

/*
 * --kernel: the kernel's allocations made while a traced process runs,
 * on BTF tracepoints (no tracefs). Frees come from any context, so they
 * are matched by address alone. Userspace disables, before load, the
 * programs whose tracepoint this kernel lacks.
 */
static __always_inline bool traced_task(__u32 *tgid)
{
	*tgid = bpf_get_current_pid_tgid() >> 32;
	if (trace_all)
		return *tgid && selected(*tgid); /* not the idle task, not us */
	return bpf_map_lookup_elem(&targets, tgid) != NULL &&
	       (!(filter_comm || filter_cgroup) || selected(*tgid));
}

static __always_inline void kalloc(void *ctx, const void *ptr, __u64 size)
{
	__u32 tgid;

	if (!ptr || !traced_task(&tgid))
		return;
	record_alloc(ctx, tgid, (__u64)ptr, size, MT_STACK_KERNEL, NULL);
}

static __always_inline void kfree_addr(const void *ptr)
{
	struct mt_alloc_key k = { .tgid = MT_KERNEL_TGID, .addr = (__u64)ptr };
	struct mt_alloc *a, copy;

	if (!ptr)
		return;
	a = bpf_map_lookup_elem(&allocs, &k);
	if (!a)
		return; /* almost every kernel free: not a block of ours */
	copy = *a;
	if (!bpf_map_delete_elem(&allocs, &k))
		account_free(&copy);
}

/*
 * Rules and walks are cached by PID (cfi_cache, walk_memo): only a process
 * memtrace traces can have some, and they are dropped when it execs or
 * exits (its PID may be reused). Other processes coming and going leave
 * them be. With -a every process may be traced (its name decides, and
 * may change).
 */
static __always_inline bool may_have_cached(__u32 tgid)
{
	return trace_all || bpf_map_lookup_elem(&targets, &tgid);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	bool traced = trace_all ? selected(tgid) : !!bpf_map_lookup_elem(&targets, &tgid);
	struct mt_proc_event *e;

	if (traced || trace_all) /* may_have_cached, without a second lookup */
		__sync_fetch_and_add(&cfi_epoch, 1);
	/* a traced process's old image is gone: userspace releases its blocks */
	if (!traced)
		return 0;
	e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
	if (!e) {
		count(MT_CNT_LOST_PROC_EVENT, 1);
		return 0;
	}
	e->tgid = tgid;
	e->type = MT_PROC_EXEC;
	e->exec_id = exec_id();
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->parent = 0;
	e->gen = proc_gen();
	bpf_ringbuf_submit(e, MT_RB_WAKEUP);
	return 0;
}

/* -a: a new process, told so that one too short-lived for a scan of
 * /proc still gets its name in the report */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child)
{
	struct mt_proc_event *e;

	if (child->pid != child->tgid || !selected(parent->tgid))
		return 0; /* a thread, or a process not traced */
	e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
	if (!e) {
		count(MT_CNT_LOST_PROC_EVENT, 1);
		return 0;
	}
	e->tgid = child->tgid;
	e->type = MT_PROC_FORK;
	e->exec_id = (__u32)child->self_exec_id;
	e->pad = 0;
	BPF_CORE_READ_INTO(&e->comm, parent, group_leader, comm);
	e->parent = parent->tgid;
	e->gen = (__u32)(child->start_boottime >> 10) ?: 1;
	bpf_ringbuf_submit(e, MT_RB_WAKEUP);
	return 0;
}

/* What userspace asked purge_process to release (MT_PURGE_MAX a pass). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MT_PURGE_MAX);
	__type(key, struct mt_purge_key);
	__type(value, struct mt_purge_req);
} purge_reqs SEC(".maps");

/* Sized as the stats map: sums of one pass, which userspace then takes */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MT_DEFAULT_MAX_STACKS);
	__type(key, struct mt_stats_key);
	__type(value, struct mt_fold);
} folded SEC(".maps");

/* An exited process's block into its stack's sum; false if there is no
 * room (it stays in allocs, as it was). */
static __always_inline bool fold_block(const struct mt_alloc_key *k, const struct mt_alloc *v)
{
	struct mt_stats_key fk = { .tgid = k->tgid, .gen = k->gen, .stack_id = v->stack_id };
	struct mt_fold first = { .oldest = v->ts };
	struct mt_fold *f = lookup_or_init(&folded, &fk, &first);

	if (!f)
		return false;
	f->size += v->size;
	f->count += v->count;
	if (v->ts < f->oldest)
		f->oldest = v->ts;
	return true;
}

enum { PURGE_KEEP, PURGE_AS_FREE, PURGE_FOLDED };

/* What a purge does with a block: release it if its process is asked
 * for: all its blocks, or those of its images before exec_id, as frees;
 * or, for a process that exited (MT_PURGE_FOLD), its image's into folded
 * (done here), still outstanding. *rp: the request. */
static __always_inline int purge_what(const struct mt_alloc_key *k, const struct mt_alloc *v,
				      struct mt_purge_req **rp)
{
	struct mt_purge_key pk = { .tgid = k->tgid, .gen = k->gen };
	struct mt_purge_req *r;

	if (k->tgid == MT_KERNEL_TGID)
		return PURGE_KEEP;
	r = bpf_map_lookup_elem(&purge_reqs, &pk);
	if (!r)
		return PURGE_KEEP;
	*rp = r;
	/* an image after the exec's (its event not handled yet) keeps its own */
	if (r->all != MT_PURGE_ALL && (__s32)(v->exec_id - r->exec_id) >= 0)
		/* one pass: a single purge_process runs at a time */
		return r->all == MT_PURGE_FOLD && fold_block(k, v) ? PURGE_FOLDED :
								     PURGE_KEEP;
	return PURGE_AS_FREE;
}

/* The block is out of the books (removed): account for it. */
static __always_inline void purge_done(int what, const struct mt_alloc *v,
				       struct mt_purge_req *r)
{
	if (what == PURGE_AS_FREE)
		account_free(v);
	r->purged++;
}

static long purge_one(struct bpf_map *map, struct mt_alloc_key *k, struct mt_alloc *v, void *ctx)
{
	struct mt_purge_req *r = NULL;
	struct mt_alloc copy = *v;
	int what = purge_what(k, &copy, &r);

	if (what != PURGE_KEEP && r && !bpf_map_delete_elem(map, k))
		purge_done(what, &copy, r);
	return 0;
}

static long purge_slot(struct bpf_map *map, __u32 *idx, struct mt_slot *s, void *ctx)
{
	struct mt_alloc_key k = { .tgid = s->tgid, .gen = s->gen, .addr = s->addr };
	struct mt_purge_req *r = NULL;
	struct mt_alloc copy = s->a;
	int what;

	if (k.addr <= MT_SLOT_BUSY)
		return 0;
	what = purge_what(&k, &copy, &r);
	if (what != PURGE_KEEP && r &&
	    __sync_val_compare_and_swap(&s->addr, k.addr, 0) == k.addr)
		purge_done(what, &copy, r);
	return 0;
}

SEC("syscall")
int purge_process(void *ctx)
{
	bpf_for_each_map_elem(&slots, purge_slot, NULL, 0);
	bpf_for_each_map_elem(&allocs, purge_one, NULL, 0);
	return 0;
}

SEC("syscall")
int clock_now(struct mt_clock *c)
{
	c->jiffies = bpf_jiffies64();
	c->mono_ns = bpf_ktime_get_ns();
	c->hz = CONFIG_HZ;
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cfi_exit, struct task_struct *p)
{
	/* the process, not one of its threads */
	if (p->pid == p->tgid && may_have_cached(p->tgid))
		__sync_fetch_and_add(&cfi_epoch, 1);
	return 0;
}

SEC("tp_btf/kmalloc")
int BPF_PROG(k_kmalloc, unsigned long call_site, const void *ptr, size_t bytes_req,
	     size_t bytes_alloc, gfp_t gfp_flags, int node)
{
	kalloc(ctx, ptr, bytes_req);
	return 0;
}

SEC("tp_btf/kfree")
int BPF_PROG(k_kfree, unsigned long call_site, const void *ptr)
{
	kfree_addr(ptr);
	return 0;
}

SEC("tp_btf/kmem_cache_alloc")
int BPF_PROG(k_cache_alloc, unsigned long call_site, const void *ptr, struct kmem_cache *s,
	     gfp_t gfp_flags, int node)
{
	kalloc(ctx, ptr, BPF_CORE_READ(s, object_size));
	return 0;
}

SEC("tp_btf/kmem_cache_free")
int BPF_PROG(k_cache_free, unsigned long call_site, const void *ptr, const struct kmem_cache *s)
{
	kfree_addr(ptr);
	return 0;
}

SEC("tp_btf/mm_page_alloc")
int BPF_PROG(k_page_alloc, struct page *page, unsigned int order, gfp_t gfp_flags,
	     int migratetype)
{
	kalloc(ctx, page, 4096ULL << (order & 31));
	return 0;
}

SEC("tp_btf/mm_page_free")
int BPF_PROG(k_page_free, struct page *page, unsigned int order)
{
	kfree_addr(page);
	return 0;
}

SEC("tp_btf/mm_page_free_batched")
int BPF_PROG(k_page_free_batched, struct page *page)
{
	kfree_addr(page);
	return 0;
}

SEC("tp_btf/percpu_alloc_percpu")
int BPF_PROG(k_percpu_alloc, unsigned long call_site, bool reserved, bool is_atomic,
	     size_t size, size_t align, void *base_addr, int off, void *ptr, size_t bytes_alloc,
	     gfp_t gfp_flags)
{
	kalloc(ctx, ptr, size);
	return 0;
}

SEC("tp_btf/percpu_free_percpu")
int BPF_PROG(k_percpu_free, void *base_addr, int off, void *ptr)
{
	kfree_addr(ptr);
	return 0;
}
