// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libmemtrace-preload.so: what `memtrace --preload -- CMD` puts in CMD's
 * LD_PRELOAD. It wraps malloc, calloc, realloc, free and operator new and
 * delete, and calls the real ones (the next definition: the C library's,
 * or jemalloc's, tcmalloc's...). Around each call it calls a probe site,
 * a function that is a 5-byte nop and a ret: memtrace's uprobes sit on
 * those nops, which the kernel runs as a call into a trampoline (an
 * optimized uprobe) instead of a breakpoint trap and an emulated or
 * single-stepped instruction, the cost of probing the allocator itself.
 * With no probes attached the sites are a nop and a ret.
 *
 * The sites get the caller's frame as it is just after the wrapper
 * returns (return address, stack pointer, frame pointer), which is what a
 * return probe on the allocator sees: memtrace walks the stack from there,
 * so the wrapper is never a frame of the reports.
 *
 * With `memtrace --preload --sample-bytes N`, MEMTRACE_SAMPLE_BYTES=N in
 * the environment: the library samples (Poisson by bytes, as memtrace's
 * BPF does) and keeps the set of sampled blocks, so that an allocation not
 * sampled, and the free of a block not sampled, reach no site: no probe
 * runs for them at all.
 *
 * Built without the C library (-nostdlib): no dependency to load, only
 * dlsym, resolved from whichever C library the process has.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "memtrace.h"

#define EXPORT __attribute__((visibility("default")))

/* The probe sites (bpf/memtrace.bpf.c, preload_site): protected, so the
 * calls below are direct, yet in the dynamic symbol table for memtrace. */
#define SITE(name)                                                        \
	__asm__(".text\n"                                                 \
		".globl " #name "\n"                                      \
		".protected " #name "\n"                                  \
		".type " #name ",@function\n"                             \
		".p2align 4\n" #name ":\n"                                \
		".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n" /* nopl 0(%rax,%rax) */ \
		"ret\n"                                                   \
		".size " #name ", .-" #name "\n")

SITE(memtrace_site_alloc);
SITE(memtrace_site_free);
SITE(memtrace_site_realloc);
SITE(memtrace_site_return);
SITE(memtrace_site_batch);

/* rate: the library's --sample-bytes (0: every call comes to its site);
 * sampled: whether realloc's new block is one (64 bits: BPF reads the
 * whole register) */
void memtrace_site_alloc(size_t size, void *p, void *pc, void *sp, void *bp, uint64_t rate);
void memtrace_site_free(void *p);
void memtrace_site_realloc(void *old, size_t size, uint64_t rate, uint64_t sampled);
void memtrace_site_return(void *p, void *pc, void *sp, void *bp);
/* batch: the queue's number batch; n 0: where the queue is (at start) */
void memtrace_site_batch(const struct mt_batch_queue *q, uint64_t n, uint64_t batch);

/* The caller's registers once this function has returned: return address,
 * stack pointer above it, the frame pointer this function saved. */
#define CALLER_PC (((void **)__builtin_frame_address(0))[1])
#define CALLER CALLER_PC, \
	((void **)__builtin_frame_address(0) + 2),          \
	(((void **)__builtin_frame_address(0))[0])

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static void (*next_mi_free)(void *);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_reallocarray)(void *, size_t, size_t);

/* the run's --sample-bytes (MEMTRACE_SAMPLE_BYTES); 0: not sampling */
static uint64_t rate;

/* the table of sampled blocks (below): its size, and how full it may get
 * (tests: MEMTRACE_TEST_SET_LIMIT, to make it give up sooner) */
#define SET_BITS 20
#define SET_SIZE (1u << SET_BITS)
static uint32_t set_limit = SET_SIZE / 4 * 3;

/*
 * Allocations made while dlsym looks the functions up (it may allocate)
 * come from here; they are never freed.
 */
static char boot[8192] __attribute__((aligned(16)));
static size_t boot_used;
static int resolving;

static int in_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

static void *boot_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(boot) - boot_used)
		return NULL;
	p = boot + boot_used;
	boot_used += n;
	return p;
}

/* a decimal number, 0 if it is not one */
static uint64_t decimal(const char *s)
{
	uint64_t v = 0;

	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

static void resolve(void)
{
	char *(*env)(const char *);
	const char *limit;

	if (resolving)
		return;
	resolving = 1;
	env = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
	rate = env ? decimal(env("MEMTRACE_SAMPLE_BYTES")) : 0;
	limit = env ? env("MEMTRACE_TEST_SET_LIMIT") : NULL;
	if (limit && decimal(limit) < set_limit)
		set_limit = (uint32_t)decimal(limit);
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	/* last: the others are known once this one is */
	__atomic_store_n(&next_malloc, (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc"),
			 __ATOMIC_RELEASE);
	resolving = 0;
}

static int ready(void)
{
	if (__builtin_expect(__atomic_load_n(&next_malloc, __ATOMIC_ACQUIRE) != NULL, 1))
		return 1;
	resolve();
	return next_malloc != NULL;
}

/* A function of the next library, looked up when first needed (it may be
 * loaded after the wrapper: dlopen); NULL if there is none. */
static void *next(void *slot, const char *name)
{
	void *f = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);

	if (!f && ready()) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n((void **)slot, f, __ATOMIC_RELEASE);
	}
	return f;
}

/*
 * Sampling: Poisson by bytes, as memtrace's BPF does (sample() in
 * bpf/memtrace.bpf.c), with a countdown per thread instead of per CPU.
 */
struct sampler {
	int64_t left;	/* bytes to the next sample point; 0: not drawn yet */
	uint64_t rng;
};

static __thread struct sampler sampler __attribute__((tls_model("initial-exec")));

static uint64_t random64(struct sampler *s)
{
	if (!s->rng)
		s->rng = ((__builtin_ia32_rdtsc() ^ (uintptr_t)s) * 0x9e3779b97f4a7c15ULL) | 1;
	s->rng ^= s->rng >> 12; /* xorshift64* */
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dULL;
}

/* ln x for 0 < x <= 1 without libm: x = m 2^e, ln m from its atanh
 * series (|z| < 0.172: the terms left out are below 1e-9) */
static double ln(double x)
{
	union {
		double d;
		uint64_t u;
	} v = { .d = x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	double m, z, z2;

	v.u = (v.u & ((1ULL << 52) - 1)) | (1023ULL << 52);
	m = v.d;
	if (m > 1.4142135623730951) {
		m /= 2;
		e++;
	}
	z = (m - 1) / (m + 1);
	z2 = z * z;
	return e * 0.6931471805599453 +
	       z * (2 + z2 * (2.0 / 3 + z2 * (2.0 / 5 + z2 * (2.0 / 7 + z2 * (2.0 / 9)))));
}

/* bytes to the next sample point: Exp(rate) */
static int64_t gap(struct sampler *s)
{
	double u = (double)((random64(s) >> 11) + 1) * 0x1p-53; /* (0, 1] */
	double g = -ln(u) * (double)rate;

	return g < 1 ? 1 : g > 0x1p62 ? (int64_t)1 << 62 : (int64_t)g;
}

/* Is an allocation of n bytes sampled? (A sample point falls in it.) */
static int sample(size_t n)
{
	struct sampler *s = &sampler;

	if (!s->left)
		s->left = gap(s);
	s->left -= n > (size_t)1 << 62 ? (int64_t)1 << 62 : (int64_t)n;
	if (s->left > 0)
		return 0;
	s->left = gap(s);
	return 1;
}

/*
 * The sampled blocks, so that free knows which ones memtrace must see: a
 * table (linear probing) under a spin lock, which only sampled blocks
 * take, and in front of it a count of the table's blocks by hash bucket,
 * read without the lock: the free of a block not sampled nearly always
 * finds 0 there. Filled to 3/4 the table gives up (set_full): from then
 * on every free goes to its site and memtrace's books decide, correct
 * but slower. 8 MiB and 1 MiB of zero pages, touched as used.
 */
#define COUNT_BITS 18

static uintptr_t set_table[SET_SIZE];
static uint32_t set_count[1u << COUNT_BITS];
static uint32_t set_used;
static int set_full;
static int set_lock;

enum { UNSAMPLED, UNKNOWN /* the table gave up */, SAMPLED };

static uint64_t set_hash(uintptr_t p)
{
	return p * 0x9e3779b97f4a7c15ULL;
}

static size_t set_home(uintptr_t p)
{
	return set_hash(p) >> (64 - SET_BITS);
}

static uint32_t *set_counter(uintptr_t p)
{
	return &set_count[set_hash(p) >> (64 - COUNT_BITS)];
}

static void yield(void)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(24 /* sched_yield */) : "rcx", "r11", "memory");
}

/* A spin lock: the holder may be preempted, so let it run at times. */
static void lock_take(int *lock)
{
	unsigned spins = 0;

	while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(lock, __ATOMIC_RELAXED)) {
			if (++spins % 128 == 0)
				yield();
			else
				__builtin_ia32_pause();
		}
}

static void lock_give(int *lock)
{
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

static void set_take(void)
{
	lock_take(&set_lock);
}

static void set_give(void)
{
	lock_give(&set_lock);
}

static void track(void *block)
{
	uintptr_t p = (uintptr_t)block;
	uint32_t *c = set_counter(p);
	size_t i = set_home(p);

	set_take();
	if (set_used >= set_limit) {
		__atomic_store_n(&set_full, 1, __ATOMIC_RELAXED);
	} else {
		while (set_table[i])
			i = (i + 1) & (SET_SIZE - 1);
		set_table[i] = p;
		set_used++;
		__atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
	}
	set_give();
}

/* Under the lock: takes p out of the table, the entries after it moved
 * back so that no lookup meets a hole before its entry. */
static int set_remove(uintptr_t p)
{
	size_t i = set_home(p), j, k;

	for (; set_table[i] != p; i = (i + 1) & (SET_SIZE - 1))
		if (!set_table[i])
			return 0;
	for (j = i;;) {
		j = (j + 1) & (SET_SIZE - 1);
		if (!set_table[j])
			break;
		k = set_home(set_table[j]);
		/* it stays if its home is (cyclically) in (i, j] */
		if (i <= j ? i < k && k <= j : i < k || k <= j)
			continue;
		set_table[i] = set_table[j];
		i = j;
	}
	set_table[i] = 0;
	set_used--;
	return 1;
}

/* A block leaves: was it sampled? */
static int untrack(void *block)
{
	uintptr_t p = (uintptr_t)block;
	uint32_t *c = set_counter(p);
	int found;

	if (__atomic_load_n(c, __ATOMIC_RELAXED)) {
		set_take();
		found = set_remove(p);
		if (found)
			__atomic_store_n(c, *c - 1, __ATOMIC_RELAXED);
		set_give();
		if (found)
			return SAMPLED;
	}
	return __atomic_load_n(&set_full, __ATOMIC_RELAXED) ? UNKNOWN : UNSAMPLED;
}

/*
 * fork's child, its only thread the one that forked. Another thread may
 * have held the lock, in the middle of a change to the table: the lock is
 * freed and the table no longer trusted (every free to its site, still
 * exact). The lock is not taken around fork instead: other fork handlers
 * (glibc's among them) allocate, and take locks of their own. A new
 * random sequence, so that a parent and its children do not sample alike.
 */
static void set_fork_child(void)
{
	if (__atomic_load_n(&set_lock, __ATOMIC_RELAXED)) {
		__atomic_store_n(&set_full, 1, __ATOMIC_RELAXED);
		set_give();
	}
	sampler.rng = 0;
	sampler.left = 0;
}

/*
 * --batch (MEMTRACE_BATCH=N): the events go into one queue, in the order
 * they happen in the process, and memtrace gets them N at a time at
 * memtrace_site_batch: one optimized probe hit a batch. The stack of each
 * allocation is walked here, with libunwind, where reading the stack
 * costs nothing (from BPF every read of user memory is a copy with fault
 * handling); a stack's frames go to memtrace once, named by their hash.
 * A block freed while its allocation is still queued turns into a PAIR
 * event: only its stack's totals change, the books of live blocks never
 * see it. The queue is handed over when it is full, at exit (after which
 * every call goes to its site, as without --batch: late destructors'
 * frees are seen), before exec and _exit; fork's child starts empty.
 */
static uint32_t batch_max;	/* 0: no batches */
static uint32_t batch_depth = MT_MAX_DEPTH;
static int (*unwind)(void **, int);

static struct mt_batch_queue q = { .batch = 1 };
static int q_lock;
static int q_closed;		/* handed over at exit: sites from now on */
static int q_pid;		/* whose queue it is (a vfork child is not) */

/* the frames of the stacks defined in this batch */
#define Q_DEFS 64
static struct mt_stack q_defs[Q_DEFS];
static uint32_t q_ndefs;

/* the stack keys memtrace was given; full at 3/4: defined again each time */
#define KEY_BITS 16
static uint64_t keys[1u << KEY_BITS];
static uint32_t nkeys;

/* the queued allocations by address, for their frees; stale once their
 * batch is gone (q.batch moves on) */
#define PEND_BITS 13
#define PEND_GONE 1	/* freed in the batch: no block has that address */
struct pend {
	uintptr_t addr;
	uint32_t idx;
	uint32_t batch;
};
static struct pend pend[1u << PEND_BITS];

_Static_assert((1u << PEND_BITS) >= 2 * MT_BATCH_MAX, "pend: half empty at most");

static int getpid_(void)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(39 /* getpid */) : "rcx", "r11", "memory");
	return (int)ret;
}

static int batching(void)
{
	return __atomic_load_n(&batch_max, __ATOMIC_ACQUIRE) != 0;
}

/* Under q_lock. The queue is the process's: a vfork child (whose memory
 * is its parent's) leaves it alone. 0, or -1 if it is not this one's. */
static int q_flush(void)
{
	if (q_pid != getpid_())
		return -1;
	if (q.n)
		memtrace_site_batch(&q, q.n, q.batch);
	/* emptied before the number moves on: a process killed in between
	 * leaves either no events or a batch BPF knows it took */
	__atomic_store_n(&q.n, 0, __ATOMIC_RELEASE);
	q_ndefs = 0;
	__atomic_store_n(&q.batch, q.batch + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Under q_lock: the event first, then n that makes it part of the queue
 * (BPF reads the queue of a process killed at any moment). */
static void q_push(struct mt_batch_ev ev)
{
	q.ev[q.n] = ev;
	__atomic_store_n(&q.n, q.n + 1, __ATOMIC_RELEASE);
}

/* Hand over what is queued (exec, _exit); closed: and batch no more. */
static void q_drain(int closed)
{
	if (!batching())
		return;
	lock_take(&q_lock);
	if (!q_flush() && closed)
		q_closed = 1;
	lock_give(&q_lock);
}

/*
 * A queued event waits at most this long for more: the next call hands
 * it over. A process allocating a few times a second would otherwise
 * keep its events from the reports for minutes. (One that stops
 * allocating keeps its last ones until it exits.)
 */
#define Q_MAX_AGE_NS 100000000ULL
static uint64_t q_since;	/* when the first queued event came */
static int (*clock_)(clockid_t, struct timespec *); /* libc's: the vDSO's */

/* A coarse clock (a tick: 1-10 ms), which the vDSO reads without a
 * fence; 0 without libc's clock_gettime (no age limit then). */
static uint64_t coarse_ns(void)
{
	struct timespec ts;

	if (!clock_ || clock_(CLOCK_MONOTONIC_COARSE, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Under q_lock: has the queue's first event waited too long? The clock
 * is read at each of a batch's first 64 events, then at every 64th: a
 * process that calls less than 640 times a second has it read every
 * time, a faster one queues 64 events within the limit anyway. (Read at
 * every call, it cost a churn pair about 16 ns, 5%.)
 */
static int q_too_old(void)
{
	uint64_t now;

	if (q.n >= 64 && (q.n & 63))
		return 0;
	now = coarse_ns();
	if (!q.n) {
		q_since = now;
		return 0;
	}
	return now - q_since > Q_MAX_AGE_NS;
}

/* Under q_lock: can n more events and one more definition be queued? A
 * closed queue, or no room in another process's: no (the calls then go
 * to their sites). */
static int q_room(uint32_t n)
{
	if (q_closed)
		return 0;
	if (q.n + n <= batch_max && q_ndefs < Q_DEFS && !q_too_old())
		return 1;
	if (q_flush())
		return 0;
	q_since = coarse_ns();
	return 1;
}

/* Take q_lock with room for n events: 1, or 0 and the lock not held. */
static int q_open(uint32_t n)
{
	lock_take(&q_lock);
	if (q_room(n))
		return 1;
	lock_give(&q_lock);
	return 0;
}

static size_t pend_home(uintptr_t p)
{
	return (p * 0x9e3779b97f4a7c15ULL) >> (64 - PEND_BITS);
}

static int pend_live(const struct pend *e)
{
	return e->batch == q.batch && e->addr;
}

static struct pend *pend_find(uintptr_t p)
{
	for (size_t i = pend_home(p);; i = (i + 1) & ((1u << PEND_BITS) - 1)) {
		struct pend *e = &pend[i];

		if (!pend_live(e))
			return NULL;
		if (e->addr == p)
			return e;
	}
}

/* Into the first free or freed slot: a block allocated again and again
 * (churn) keeps its chain short. */
static void pend_add(uintptr_t p, uint32_t idx)
{
	size_t i = pend_home(p);

	while (pend_live(&pend[i]) && pend[i].addr != PEND_GONE)
		i = (i + 1) & ((1u << PEND_BITS) - 1);
	pend[i] = (struct pend){ .addr = p, .idx = idx, .batch = q.batch };
}

/* Under q_lock: was the key given to memtrace? Remembers it if not. */
static int key_known(uint64_t key)
{
	size_t i = (key * 0x9e3779b97f4a7c15ULL) >> (64 - KEY_BITS);

	for (; keys[i]; i = (i + 1) & ((1u << KEY_BITS) - 1))
		if (keys[i] == key)
			return 1;
	if (nkeys < (1u << KEY_BITS) / 4 * 3) {
		keys[i] = key;
		nkeys++;
	}
	return 0;
}

/* The stack from pc, the wrapper's caller, outwards. */
struct walk {
	uint64_t key;	/* 0: none */
	struct mt_stack s;
};

/* loading libunwind, walking with it: its allocations are memtrace's and
 * reach no site */
static __thread int quiet __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) void walk(struct walk *w, void *pc)
{
	void *ips[MT_MAX_DEPTH + 8];
	int cap = (int)batch_depth + 8, n, i;
	uint64_t h = 0x9e3779b97f4a7c15ULL;

	w->key = 0;
	/* libunwind's own allocations (its first use) are memtrace's */
	quiet = 1;
	n = unwind(ips, cap);
	quiet = 0;
	/* the library's own frames first */
	for (i = 0; i < n && ips[i] != pc; i++)
		;
	if (i == n)
		return;
	w->s.depth = (uint32_t)(n - i) > batch_depth ? batch_depth : (uint32_t)(n - i);
	w->s.flags = n == cap || (uint32_t)(n - i) > batch_depth ? MT_STACK_F_TRUNCATED : 0;
	for (uint32_t d = 0; d < w->s.depth; d++) {
		w->s.ips[d] = (uint64_t)(uintptr_t)ips[i + d];
		h = (h ^ w->s.ips[d]) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	h ^= (uint64_t)w->s.depth << 32 | w->s.flags;
	h *= 0x9e3779b97f4a7c15ULL;
	w->key = h ? h : 1;
}

/* inside the real realloc: the calls it makes through the wrappers are
 * its own (as memtrace's realloc probes see them) */
static __thread int in_realloc __attribute__((tls_model("initial-exec")));

/* Queue an allocation (p NULL: failed); 0 if the queue is closed. */
static int batch_alloc(size_t n, void *p, void *pc)
{
	struct walk w;

	if (p && !in_realloc)
		walk(&w, pc);
	if (!q_open(2))
		return 0;
	if (in_realloc) {
		q_push((struct mt_batch_ev){ .kind = MT_BEV_NESTED });
	} else if (!p) {
		q_push((struct mt_batch_ev){ .kind = MT_BEV_FAILED, .size = n });
	} else {
		if (w.key && !key_known(w.key)) {
			struct mt_stack *d = &q_defs[q_ndefs++];

			d->depth = w.s.depth;
			d->flags = w.s.flags;
			for (uint32_t i = 0; i < w.s.depth; i++)
				d->ips[i] = w.s.ips[i];
			q_push((struct mt_batch_ev){ .kind = MT_BEV_STACK,
							   .addr = (uintptr_t)d,
							   .size = 8 + 8 * (uint64_t)d->depth,
							   .stack = w.key });
		}
		pend_add((uintptr_t)p, q.n);
		q_push((struct mt_batch_ev){ .kind = MT_BEV_ALLOC, .addr = (uintptr_t)p,
						   .size = n, .stack = w.key });
	}
	lock_give(&q_lock);
	return 1;
}

/* Queue a free, before the block is freed; 0 if the queue is closed. */
static int batch_free(void *p)
{
	struct pend *e;

	if (!q_open(1))
		return 0;
	e = in_realloc ? NULL : pend_find((uintptr_t)p);
	if (in_realloc) {
		q_push((struct mt_batch_ev){ .kind = MT_BEV_NESTED });
	} else if (e) {
		/* kind first: a PAIR's address is never read */
		q.ev[e->idx].kind = MT_BEV_PAIR;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		q.ev[e->idx].addr = 0;
		e->addr = PEND_GONE;
	} else {
		q_push((struct mt_batch_ev){ .kind = MT_BEV_FREE, .addr = (uintptr_t)p });
	}
	lock_give(&q_lock);
	return 1;
}

/* Queue realloc's old block (HOLD before the call, RELEASE or REVIVE
 * after it), never turned into a PAIR; 0 if the queue is closed. */
static int batch_old(void *p, uint32_t kind)
{
	struct pend *e;

	if (!q_open(1))
		return 0;
	/* queued still: its address may be another block's soon */
	if (kind == MT_BEV_HOLD && (e = pend_find((uintptr_t)p)))
		e->addr = PEND_GONE;
	q_push((struct mt_batch_ev){ .kind = kind, .addr = (uintptr_t)p });
	lock_give(&q_lock);
	return 1;
}

/* fork's child: the queue is the parent's, which hands it over itself. */
static void batch_fork_child(void)
{
	q_lock = 0;
	q.n = 0;
	q_ndefs = 0;
	q.batch++;
	q_pid = getpid_();
	memtrace_site_batch(&q, 0, 0); /* the child's own queue */
	if (nkeys) {
		/* memtrace knows the stacks by process */
		for (size_t i = 0; i < (1u << KEY_BITS); i++)
			keys[i] = 0;
		nkeys = 0;
	}
}

/* MEMTRACE_BATCH: libunwind, or no batches (every call to its site). */
static void batch_init(char *(*env)(const char *))
{
	void *(*open_)(const char *, int) = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	uint64_t n = decimal(env("MEMTRACE_BATCH")), d = decimal(env("MEMTRACE_BATCH_DEPTH"));
	int (*policy)(void *, int);
	void *h, **space;

	if (!n || !open_)
		return;
	if (d && d < batch_depth)
		batch_depth = (uint32_t)d;
	/* memtrace's own: not the program's allocations (never freed) */
	quiet = 1;
	h = open_("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	quiet = 0;
	if (!h)
		return;
	unwind = (int (*)(void **, int))dlsym(h, "unw_backtrace");
	clock_ = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	policy = (int (*)(void *, int))dlsym(h, "_ULx86_64_set_caching_policy");
	space = (void **)dlsym(h, "_ULx86_64_local_addr_space");
	if (!unwind)
		return;
	/* the global cache: a per-thread one is dynamic TLS, which the
	 * loader allocates at its first use in each thread, from malloc */
	if (policy && space)
		policy(*space, 1 /* UNW_CACHE_GLOBAL */);
	q_pid = getpid_();
	/* where the queue is, for the process's exit */
	memtrace_site_batch(&q, 0, 0);
	__atomic_store_n(&batch_max, n > MT_BATCH_MAX ? MT_BATCH_MAX : (uint32_t)n,
			 __ATOMIC_RELEASE);
}

__attribute__((destructor)) static void batch_fini(void)
{
	q_drain(1);
}

__attribute__((constructor)) static void init(void)
{
	int (*atfork)(void (*)(void), void (*)(void), void (*)(void), void *);
	char *(*env)(const char *);

	if (!ready())
		return;
	env = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
	if (env && !rate)
		batch_init(env);
	if (!rate && !batching())
		return;
	atfork = (int (*)(void (*)(void), void (*)(void), void (*)(void), void *))dlsym(
		RTLD_NEXT, "__register_atfork");
	if (atfork)
		atfork(NULL, NULL, rate ? set_fork_child : batch_fork_child, NULL);
}

/* Does memtrace see an allocation of n bytes at p (NULL: failed)? */
static inline __attribute__((always_inline)) int chosen(size_t n, void *p)
{
	if (!rate || !p)
		return 1; /* every one; failures are counted */
	if (!sample(n))
		return 0;
	track(p);
	return 1;
}

/* An allocation by the wrapper's caller: queued (--batch), or to its site
 * if memtrace sees it. */
#define ALLOCATED(n, p)                                                   \
	do {                                                              \
		size_t n_ = (n);                                          \
		void *p_ = (p);                                           \
		if (quiet || (batching() && batch_alloc(n_, p_, CALLER_PC))) \
			break;                                            \
		if (chosen(n_, p_))                                       \
			memtrace_site_alloc(n_, p_, CALLER, rate);        \
	} while (0)

EXPORT void *malloc(size_t n)
{
	void *p;

	if (!ready())
		return boot_alloc(n);
	p = next_malloc(n);
	ALLOCATED(n, p);
	return p;
}

/* calloc's bytes, saturated as memtrace's calloc probe does */
static size_t calloc_size(size_t n, size_t size)
{
	size_t total;

	return __builtin_mul_overflow(n, size, &total) ? SIZE_MAX : total;
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total = calloc_size(n, size);
	void *p;

	if (!ready())
		return total == SIZE_MAX ? NULL : boot_alloc(total);
	p = next_calloc(n, size);
	ALLOCATED(total, p);
	return p;
}

/*
 * realloc and its kind: f reallocates (NULL: it fails). pc, sp, bp: the
 * wrapper's caller. The old block leaves the books before the call, while
 * it is still the caller's, as at realloc's entry, and comes back if the
 * call fails.
 */
static void *resize(void *(*f)(void *, size_t), void *old, size_t n, void *pc, void *sp,
		    void *bp)
{
	int was, s, site;
	void *p;

	if (quiet)
		return f ? f(old, n) : NULL;

	/* queued: the old block leaves before the call (another thread may
	 * get its address at once), held until the call says whether it is
	 * gone */
	if (batching() && (!old || batch_old(old, MT_BEV_HOLD))) {
		in_realloc++;
		p = f ? f(old, n) : NULL;
		in_realloc--;
		if (old)
			batch_old(old, p || !n ? MT_BEV_RELEASE : MT_BEV_REVIVE);
		if ((p || n) && !batch_alloc(n, p, pc))
			memtrace_site_alloc(n, p, pc, sp, bp, rate);
		return p;
	}
	was = !old ? UNSAMPLED : rate ? untrack(old) : SAMPLED;
	s = rate ? sample(n) : 1;
	site = was != UNSAMPLED || s;
	if (site)
		memtrace_site_realloc(old, n, rate, s);
	p = f ? f(old, n) : NULL;
	if (rate && !p && n && was == SAMPLED)
		track(old); /* failed: the old block is still there */
	else if (rate && p && s)
		track(p);
	if (site)
		memtrace_site_return(p, pc, sp, bp);
	else if (!p && n)
		memtrace_site_alloc(n, NULL, pc, sp, bp, rate); /* counted as failed */
	return p;
}

static void *from_boot(void *old, size_t n)
{
	char *p = malloc(n);
	size_t left = (size_t)(boot + sizeof(boot) - (char *)old);

	for (size_t i = 0; p && i < n && i < left; i++)
		p[i] = ((char *)old)[i];
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	if (in_boot(old))
		return from_boot(old, n);
	if (!ready())
		return boot_alloc(n);
	return resize(next_realloc, old, n, CALLER);
}

EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	size_t total;
	void *(*f)(void *, size_t, size_t);
	void *p;

	if (!__builtin_mul_overflow(n, size, &total) && ready())
		return resize(next_realloc, old, total, CALLER);
	/* the real one fails it (ENOMEM) */
	f = next(&next_reallocarray, "reallocarray");
	p = f ? f(old, n, size) : NULL;
	ALLOCATED(SIZE_MAX, p);
	return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	int (*f)(void **, size_t, size_t) = next(&next_posix_memalign, "posix_memalign");
	int err = f ? f(out, align, n) : 12 /* ENOMEM */;

	ALLOCATED(n, err ? NULL : *out);
	return err;
}

/* An allocator returning its block, n its size in bytes. */
#define WRAP_ALLOC(name, params, args, n)                                 \
	static void *(*next_##name) params;                               \
	EXPORT void *name params                                          \
	{                                                                 \
		void *(*f) params = next(&next_##name, #name);            \
		void *p = f ? f args : NULL;                              \
									  \
		ALLOCATED(n, p);                                          \
		return p;                                                 \
	}

WRAP_ALLOC(aligned_alloc, (size_t align, size_t n), (align, n), n)
WRAP_ALLOC(memalign, (size_t align, size_t n), (align, n), n)
WRAP_ALLOC(valloc, (size_t n), (n), n)
WRAP_ALLOC(pvalloc, (size_t n), (n), n)
/* mimalloc's own names: the same code as its malloc..., which are not
 * probed any more; called directly, they must come here too */
WRAP_ALLOC(mi_malloc, (size_t n), (n), n)
WRAP_ALLOC(mi_calloc, (size_t n, size_t size), (n, size), calloc_size(n, size))

static void *(*next_mi_realloc)(void *, size_t);

EXPORT void *mi_realloc(void *old, size_t n)
{
	return resize(next(&next_mi_realloc, "mi_realloc"), old, n, CALLER);
}

/* free and its kin: f frees (NULL: nothing to call) */
static void release(void *p, void (*f)(void *))
{
	if (!p || in_boot(p))
		return;
	/* before the block is free: another thread's malloc may get its
	 * address at once */
	if (quiet || (batching() && batch_free(p)))
		;
	else if (!rate || untrack(p) != UNSAMPLED)
		memtrace_site_free(p);
	if (f)
		f(p);
}

EXPORT void mi_free(void *p)
{
	release(p, next(&next_mi_free, "mi_free"));
}

/* free, and operator delete (libstdc++'s calls free; jemalloc's and
 * tcmalloc's do not, and their new is malloc here) */
static void release_free(void *p)
{
	release(p, ready() ? next_free : NULL);
}

EXPORT void free(void *p)
{
	release_free(p);
}

/*
 * operator new: malloc (or posix_memalign), and the real operator new
 * only when that fails (it runs the new-handler and throws; its own
 * malloc calls come through malloc above). new(0) asks for 1 byte, as
 * libstdc++'s. A library loaded later may bring the real one: looked up
 * again then.
 */
static inline __attribute__((always_inline)) void *new_block(size_t n)
{
	return ready() ? next_malloc(n ? n : 1) : NULL;
}

static inline __attribute__((always_inline)) void *new_aligned(size_t n, size_t align)
{
	int (*f)(void **, size_t, size_t) = next(&next_posix_memalign, "posix_memalign");
	void *p;

	if (align < sizeof(void *))
		align = sizeof(void *);
	return f && !f(&p, align, n ? n : 1) ? p : NULL;
}

#define WRAP_NEW(name, params, block, args)                               \
	static void *(*next_##name) params;                               \
	EXPORT void *name params                                          \
	{                                                                 \
		void *p = block;                                          \
									  \
		if (!p) {                                                 \
			void *(*f) params = next(&next_##name, #name);    \
									  \
			return f ? f args : NULL;                         \
		}                                                         \
		ALLOCATED(n, p);                                          \
		return p;                                                 \
	}

WRAP_NEW(_Znwm, (size_t n), new_block(n), (n))
WRAP_NEW(_Znam, (size_t n), new_block(n), (n))
WRAP_NEW(_ZnwmRKSt9nothrow_t, (size_t n, const void *nt), new_block(n), (n, nt))
WRAP_NEW(_ZnamRKSt9nothrow_t, (size_t n, const void *nt), new_block(n), (n, nt))
WRAP_NEW(_ZnwmSt11align_val_t, (size_t n, size_t al), new_aligned(n, al), (n, al))
WRAP_NEW(_ZnamSt11align_val_t, (size_t n, size_t al), new_aligned(n, al), (n, al))
WRAP_NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const void *nt),
	 new_aligned(n, al), (n, al, nt))
WRAP_NEW(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const void *nt),
	 new_aligned(n, al), (n, al, nt))

/* operator delete, all of them: free */
#define WRAP_DELETE(name, params)                                         \
	EXPORT void name params                                           \
	{                                                                 \
		release_free(p);                                          \
	}

WRAP_DELETE(_ZdlPv, (void *p))
WRAP_DELETE(_ZdaPv, (void *p))
WRAP_DELETE(_ZdlPvm, (void *p, size_t n))
WRAP_DELETE(_ZdaPvm, (void *p, size_t n))
WRAP_DELETE(_ZdlPvRKSt9nothrow_t, (void *p, const void *nt))
WRAP_DELETE(_ZdaPvRKSt9nothrow_t, (void *p, const void *nt))
WRAP_DELETE(_ZdlPvSt11align_val_t, (void *p, size_t al))
WRAP_DELETE(_ZdaPvSt11align_val_t, (void *p, size_t al))
WRAP_DELETE(_ZdlPvmSt11align_val_t, (void *p, size_t n, size_t al))
WRAP_DELETE(_ZdaPvmSt11align_val_t, (void *p, size_t n, size_t al))
WRAP_DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t al, const void *nt))
WRAP_DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t al, const void *nt))

/*
 * --batch: what is queued is handed over before the process's image goes
 * (exec) or it ends without exit's destructors (_exit). What an exec
 * made with syscall() directly, or a process killed by a signal, leaves
 * queued memtrace takes itself (bpf: batch_exec, batch_exit).
 */
#define WRAP_EXEC(name, params, args)                                     \
	static int (*next_##name) params;                                 \
	EXPORT int name params                                            \
	{                                                                 \
		int (*f) params = next(&next_##name, #name);              \
									  \
		q_drain(0);                                               \
		return f ? f args : -1;                                   \
	}

WRAP_EXEC(execve, (const char *path, char *const argv[], char *const envp[]),
	  (path, argv, envp))
WRAP_EXEC(execv, (const char *path, char *const argv[]), (path, argv))
WRAP_EXEC(execvp, (const char *file, char *const argv[]), (file, argv))
WRAP_EXEC(execvpe, (const char *file, char *const argv[], char *const envp[]),
	  (file, argv, envp))
WRAP_EXEC(fexecve, (int fd, char *const argv[], char *const envp[]), (fd, argv, envp))

/* the list forms: their arguments into an array, then the array form
 * above (which hands over) */
#define LIST_ARGS(argv, arg)                                              \
	size_t n_ = 1;                                                    \
	__builtin_va_list ap_;                                            \
	__builtin_va_start(ap_, arg);                                     \
	while (__builtin_va_arg(ap_, char *))                             \
		n_++;                                                     \
	__builtin_va_end(ap_);                                            \
	char *argv[n_ + 1];                                               \
	__builtin_va_start(ap_, arg);                                     \
	argv[0] = (char *)arg;                                            \
	for (size_t i_ = 1; i_ <= n_; i_++)                               \
		argv[i_] = __builtin_va_arg(ap_, char *);                 \
	char *const *envp_ = __builtin_va_arg(ap_, char *const *);        \
	__builtin_va_end(ap_);                                            \
	(void)envp_

EXPORT int execl(const char *path, const char *arg, ...)
{
	LIST_ARGS(argv, arg);
	return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	LIST_ARGS(argv, arg);
	return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	LIST_ARGS(argv, arg);
	return execve(path, argv, envp_);
}

#define WRAP_EXIT(name)                                                   \
	static void (*next_##name)(int);                                  \
	EXPORT __attribute__((noreturn)) void name(int status)            \
	{                                                                 \
		void (*f)(int) = next(&next_##name, #name);               \
									  \
		q_drain(1);                                               \
		if (f)                                                    \
			f(status);                                        \
		for (;;)                                                  \
			__asm__ volatile("syscall" : : "a"(231 /* exit_group */), \
					 "D"(status) : "rcx", "r11", "memory"); \
	}

WRAP_EXIT(_exit)
WRAP_EXIT(_Exit)
