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

/* rate: the library's --sample-bytes (0: every call comes to its site);
 * sampled: whether realloc's new block is one (64 bits: BPF reads the
 * whole register) */
void memtrace_site_alloc(size_t size, void *p, void *pc, void *sp, void *bp, uint64_t rate);
void memtrace_site_free(void *p);
void memtrace_site_realloc(void *old, size_t size, uint64_t rate, uint64_t sampled);
void memtrace_site_return(void *p, void *pc, void *sp, void *bp);

/* The caller's registers once this function has returned: return address,
 * stack pointer above it, the frame pointer this function saved. */
#define CALLER (((void **)__builtin_frame_address(0))[1]), \
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

static void set_take(void)
{
	unsigned spins = 0;

	while (__atomic_exchange_n(&set_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&set_lock, __ATOMIC_RELAXED)) {
			/* the holder may be preempted: let it run */
			if (++spins % 128 == 0)
				yield();
			else
				__builtin_ia32_pause();
		}
}

static void set_give(void)
{
	__atomic_store_n(&set_lock, 0, __ATOMIC_RELEASE);
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

__attribute__((constructor)) static void init(void)
{
	int (*atfork)(void (*)(void), void (*)(void), void (*)(void), void *);

	if (!ready() || !rate)
		return;
	atfork = (int (*)(void (*)(void), void (*)(void), void (*)(void), void *))dlsym(
		RTLD_NEXT, "__register_atfork");
	if (atfork)
		atfork(NULL, NULL, set_fork_child, NULL);
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

/* An allocation by the wrapper's caller, to its site if memtrace sees it. */
#define ALLOCATED(n, p)                                                   \
	do {                                                              \
		size_t n_ = (n);                                          \
		void *p_ = (p);                                           \
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
	int was = !old ? UNSAMPLED : rate ? untrack(old) : SAMPLED;
	int s = rate ? sample(n) : 1, site = was != UNSAMPLED || s;
	void *p;

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
	if (!rate || untrack(p) != UNSAMPLED)
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
