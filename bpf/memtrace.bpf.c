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

/* --kernel: processes whose kernel allocations are traced */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* Global outstanding bytes and its high-water mark. */
__u64 outstanding_bytes = 0;
__u64 peak_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MT_DEFAULT_MAX_ALLOCS);
	__type(key, struct mt_alloc_key);
	__type(value, struct mt_alloc);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

/* Scratch space for one stack: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mt_stack);
} stack_buf SEC(".maps");

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
	__u64 h = 0x9e3779b97f4a7c15ULL ^ s->depth;

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

/*
 * Capture the user stack at the allocator's return: there regs->ip is
 * the return address into the allocating function, so frame 0 is never
 * missing. Frame-pointer walk by the kernel; another unwinder plugs in
 * here. Returns the stack id, or 0 when nothing could be captured.
 */
static __always_inline __u64 capture_stack(void *ctx, __u64 kind)
{
	bool kernel = kind == MT_STACK_KERNEL;
	__u32 zero = 0, size = stack_depth * sizeof(__u64);
	struct mt_stack *s = bpf_map_lookup_elem(&stack_buf, &zero);
	long n;
	__u64 id;

	if (!s)
		return 0;
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
	id = (hash_stack(s) & ~MT_STACK_KIND_MASK) | kind;
	/* a lockless lookup first: the stack is almost always known */
	if (bpf_map_lookup_elem(&stacks, &id))
		return id;
	n = bpf_map_update_elem(&stacks, &id, s, BPF_NOEXIST);
	if (n && n != -17 /* EEXIST */) {
		count(MT_CNT_LOST_STACKS_FULL, 1);
		return 0;
	}
	return id;
}

static __always_inline void stats_add(__u32 tgid, __u64 stack_id, __u64 size, __u32 n)
{
	struct mt_stats_key k = { .tgid = tgid, .stack_id = stack_id };
	struct mt_stats *st = bpf_map_lookup_elem(&stats, &k);

	if (!st) {
		struct mt_stats zero = {};
		long err = bpf_map_update_elem(&stats, &k, &zero, BPF_NOEXIST);

		if (err && err != -17) {
			count(MT_CNT_LOST_STATS_FULL, 1);
			return;
		}
		st = bpf_map_lookup_elem(&stats, &k);
		if (!st)
			return;
	}
	__sync_fetch_and_add(&st->outstanding_bytes, size);
	__sync_fetch_and_add(&st->outstanding_count, n);
	__sync_fetch_and_add(&st->alloc_bytes, size);
	__sync_fetch_and_add(&st->alloc_count, n);
}

static __always_inline void outstanding_add(__u64 size)
{
	__u64 now = __sync_fetch_and_add(&outstanding_bytes, size) + size;
	__u64 peak = peak_bytes;

	/* atomic max; a few tries are plenty with little contention */
	for (int i = 0; i < 4 && now > peak; i++) {
		__u64 seen = __sync_val_compare_and_swap(&peak_bytes, peak, now);

		if (seen == peak)
			break;
		peak = seen;
	}
}

/* A tracked block went away: take it out of its stack's numbers. */
static __always_inline void account_free(const struct mt_alloc *a)
{
	struct mt_stats_key k = { .tgid = a->owner, .stack_id = a->stack_id };
	struct mt_stats *st = bpf_map_lookup_elem(&stats, &k);

	if (st) {
		__sync_fetch_and_add(&st->outstanding_bytes, -a->size);
		__sync_fetch_and_add(&st->outstanding_count, -(__u64)a->count);
		__sync_fetch_and_add(&st->free_bytes, a->size);
		__sync_fetch_and_add(&st->free_count, a->count);
	}
	__sync_fetch_and_add(&outstanding_bytes, -a->size);
}

/* kind: 0 (malloc and friends), MT_STACK_KERNEL, MT_STACK_MMAP, MT_STACK_BRK */
static __always_inline void record_alloc(void *ctx, __u32 tgid, __u64 addr, __u64 size,
					 __u64 kind)
{
	bool kernel = kind == MT_STACK_KERNEL;
	struct mt_alloc_key k = { .tgid = kernel ? MT_KERNEL_TGID : tgid, .addr = addr };
	struct mt_alloc a = { .size = size, .count = 1, .owner = tgid };
	long err;

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
	a.stack_id = capture_stack(ctx, kind);
	if (a.stack_id == MT_STACK_IRQ)
		return;
	a.ts_ns = bpf_ktime_get_ns();
	err = bpf_map_update_elem(&allocs, &k, &a, BPF_NOEXIST);
	if (err == -17) {
		/* the old block's free was never seen: retire it first */
		struct mt_alloc *old = bpf_map_lookup_elem(&allocs, &k);

		if (old) {
			struct mt_alloc copy = *old;

			account_free(&copy);
		}
		count(MT_CNT_LOST_STALE, 1);
		err = bpf_map_update_elem(&allocs, &k, &a, BPF_ANY);
	}
	if (err) {
		count(MT_CNT_LOST_ALLOCS_FULL, 1);
		return;
	}
	stats_add(tgid, a.stack_id, a.size, a.count);
	outstanding_add(a.size);
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

/*
 * Every call that has a return probe must come through here, recorded or
 * not (record = false): its return pops the thread's nesting state, and a
 * call left out would pop its caller's.
 */
static __always_inline int enter_as(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 arg,
				    bool record)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 sp = PT_REGS_SP(ctx);
	struct mt_call *c = thread_call(true);

	if (!c) {
		count(MT_CNT_LOST_THREADS_FULL, 1);
		return 0;
	}
	if (nested_in(c, sp)) {
		c->depth++;
		count(MT_CNT_NESTED, 1);
		return 0;
	}
	if (c->depth && c->old_found) {
		/* a stale state is replaced: give back the realloc block it held */
		struct mt_alloc_key k = { .tgid = tgid, .addr = c->arg };

		bpf_map_update_elem(&allocs, &k, &c->old, BPF_NOEXIST);
	}
	c->size = size;
	c->arg = arg;
	c->sp = sp;
	c->fn = fn;
	c->depth = 1;
	c->old_found = 0;
	/* unsampled calls stop here: the return does nothing else */
	c->sampled = record && (!sample_bytes || sample(size));
	if ((fn == MT_FN_REALLOC || fn == MT_FN_REALLOCARRAY) && arg) {
		struct mt_alloc_key k = { .tgid = tgid, .addr = arg };
		struct mt_alloc *old = bpf_map_lookup_elem(&allocs, &k);

		if (old) {
			c->old = *old;
			c->old_found = !bpf_map_delete_elem(&allocs, &k);
		}
	}
	return 0;
}

static __always_inline int enter(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 arg)
{
	return enter_as(ctx, fn, size, arg, true);
}

static __always_inline void leave_realloc(struct pt_regs *ctx, __u32 tgid,
					  const struct mt_call *c, __u64 ret)
{
	struct mt_alloc_key k = { .tgid = tgid, .addr = c->arg };

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
		record_alloc(ctx, tgid, ret, c->size, 0);
}

/* Take out a block of the mmap kinds at addr (munmap, mremap's old). */
static __always_inline bool unmap_block(__u32 tgid, __u64 addr)
{
	struct mt_alloc_key k = { .tgid = tgid, .addr = addr };
	struct mt_alloc *a = bpf_map_lookup_elem(&allocs, &k), copy;

	/* only what mmap gave: a malloc'd block at that address is malloc's */
	if (!a || !(a->stack_id & (MT_STACK_MMAP | MT_STACK_BRK)))
		return false;
	copy = *a;
	if (bpf_map_delete_elem(&allocs, &k))
		return false;
	account_free(&copy);
	return true;
}

/* mmap, mremap, sbrk return (void *)-1 on failure */
static __always_inline void leave_map(void *ctx, __u32 tgid, const struct mt_call *c,
				      __u64 ret)
{
	if (c->fn == MT_FN_MREMAP) {
		/* a block of ours that moved or grew; realloc's are nested */
		if (ret != ~0ULL && unmap_block(tgid, c->arg) && c->sampled)
			record_alloc(ctx, tgid, ret, c->size, MT_STACK_MMAP);
		return;
	}
	if (!c->sampled)
		return; /* a file mapping, sbrk(0), or not sampled */
	if (ret == ~0ULL)
		count(MT_CNT_ALLOC_FAILED, 1);
	else
		record_alloc(ctx, tgid, ret, c->size,
			     c->fn == MT_FN_SBRK ? MT_STACK_BRK : MT_STACK_MMAP);
}

static __always_inline int leave(struct pt_regs *ctx, __u64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mt_call *p = thread_call(false);
	struct mt_call c;
	__u64 ptr = 0;

	if (!p || !p->depth)
		return 0; /* entered before we attached */
	if (p->depth > 1) {
		p->depth--;
		return 0;
	}
	c = *p;
	p->depth = 0;

	switch (c.fn) {
	case MT_FN_REALLOC:
	case MT_FN_REALLOCARRAY:
		leave_realloc(ctx, id >> 32, &c, ret);
		return 0;
	case MT_FN_MMAP:
	case MT_FN_MREMAP:
	case MT_FN_SBRK:
		leave_map(ctx, id >> 32, &c, ret);
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
		record_alloc(ctx, id >> 32, ptr, c.size, 0);
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

static __always_inline int free_enter(struct pt_regs *ctx, __u64 ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mt_alloc_key k = { .tgid = id >> 32, .addr = ptr };
	struct mt_alloc *a, copy;

	if (!ptr)
		return 0;
	if (nested_in(thread_call(false), PT_REGS_SP(ctx))) {
		/* realloc(p, 0) frees through free(): realloc accounts it */
		count(MT_CNT_NESTED, 1);
		return 0;
	}
	a = bpf_map_lookup_elem(&allocs, &k);
	if (!a) {
		/* when sampling, most blocks are not tracked: nothing lost */
		if (!sample_bytes)
			count(MT_CNT_LOST_FREE_UNTRACKED, 1);
		return 0;
	}
	copy = *a;
	/* a concurrent free of the same block (a double free) lost the race */
	if (bpf_map_delete_elem(&allocs, &k))
		return 0;
	account_free(&copy);
	return 0;
}

/*
 * One entry program for every allocator function; the attach cookie
 * says which one. One uprobe_multi link per library then covers them all
 * (detaching a link costs an RCU grace period, ~0.1 s here, per link).
 */
SEC("uprobe.multi")
int alloc_enter(struct pt_regs *ctx)
{
	__u64 fn = bpf_get_attach_cookie(ctx);
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);

	switch (fn) {
	case MT_FN_MMAP:	/* anonymous only: file mappings are not allocations */
		return enter_as(ctx, fn, a2, 0, PT_REGS_PARM4(ctx) & 0x20 /* MAP_ANONYMOUS */);
	case MT_FN_MUNMAP:
		if (!nested_in(thread_call(false), PT_REGS_SP(ctx)))
			unmap_block(bpf_get_current_pid_tgid() >> 32, a1);
		return 0;
	case MT_FN_MREMAP:
		return enter(ctx, fn, a3, a1);
	case MT_FN_SBRK:	/* growth only; sbrk(0) and shrinking are not */
		return enter_as(ctx, fn, a1, 0, (long)a1 > 0);
	case MT_FN_FREE:
		return free_enter(ctx, a1);
	case MT_FN_FREE_ARG2:
		return free_enter(ctx, a2);
	case MT_FN_ALLOC_ARG2:
		return enter(ctx, MT_FN_MALLOC, a2, 0);
	case MT_FN_ALLOC_ARG3:
		return enter(ctx, MT_FN_MALLOC, a3, 0);
	case MT_FN_CALLOC:
		return enter(ctx, fn, mul_sat(a1, a2), 0);
	case MT_FN_REALLOC:
		return enter(ctx, fn, a2, a1);
	case MT_FN_REALLOCARRAY:
		return enter(ctx, fn, mul_sat(a2, a3), a1);
	case MT_FN_POSIX_MEMALIGN:	/* (memptr, align, size) */
		return enter(ctx, fn, a3, a1);
	case MT_FN_MEMALIGN:		/* aligned_alloc, memalign: (align, size) */
		return enter(ctx, fn, a2, 0);
	default:			/* malloc, valloc, pvalloc, operator new */
		return enter(ctx, fn, a1, 0);
	}
}

SEC("uretprobe.multi")
int alloc_return(struct pt_regs *ctx)
{
	return leave(ctx, PT_REGS_RC(ctx));
}

/* --probe-floor: the same sites with nothing to do, to measure the cost
 * of the probes themselves (bench/). */
SEC("uprobe.multi")
int floor_enter(struct pt_regs *ctx)
{
	return 0;
}

SEC("uretprobe.multi")
int floor_return(struct pt_regs *ctx)
{
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
	return bpf_map_lookup_elem(&targets, tgid) != NULL;
}

static __always_inline void kalloc(void *ctx, const void *ptr, __u64 size)
{
	__u32 tgid;

	if (!ptr || !traced_task(&tgid))
		return;
	record_alloc(ctx, tgid, (__u64)ptr, size, MT_STACK_KERNEL);
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
