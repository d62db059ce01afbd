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

void memtrace_site_alloc(size_t size, void *p, void *pc, void *sp, void *bp);
void memtrace_site_free(void *p);
void memtrace_site_realloc(void *old, size_t size);
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
static void *(*next_new)(size_t);
static void *(*next_new_array)(size_t);
static void *(*next_new_nt)(size_t, const void *);
static void *(*next_new_array_nt)(size_t, const void *);
/* mimalloc's own names: the same code as its malloc..., which are not
 * probed any more; called directly, they must come here too */
static void *(*next_mi_malloc)(size_t);
static void *(*next_mi_calloc)(size_t, size_t);
static void *(*next_mi_realloc)(void *, size_t);
static void (*next_mi_free)(void *);

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

static void resolve(void)
{
	if (resolving)
		return;
	resolving = 1;
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	next_new = (void *(*)(size_t))dlsym(RTLD_NEXT, "_Znwm");
	next_new_array = (void *(*)(size_t))dlsym(RTLD_NEXT, "_Znam");
	next_new_nt = (void *(*)(size_t, const void *))dlsym(RTLD_NEXT, "_ZnwmRKSt9nothrow_t");
	next_new_array_nt =
		(void *(*)(size_t, const void *))dlsym(RTLD_NEXT, "_ZnamRKSt9nothrow_t");
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

__attribute__((constructor)) static void init(void)
{
	ready();
}

EXPORT void *malloc(size_t n)
{
	void *p;

	if (!ready())
		return boot_alloc(n);
	p = next_malloc(n);
	memtrace_site_alloc(n, p, CALLER);
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
	memtrace_site_alloc(total, p, CALLER);
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
	void *p;

	if (in_boot(old))
		return from_boot(old, n);
	if (!ready())
		return boot_alloc(n);
	/* before: the old block leaves the books while it is still the
	 * caller's, as at realloc's entry */
	memtrace_site_realloc(old, n);
	p = next_realloc(old, n);
	memtrace_site_return(p, CALLER);
	return p;
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

/* free and its kin: f frees (NULL: nothing to call) */
static void release(void *p, void (*f)(void *))
{
	if (!p || in_boot(p))
		return;
	/* before the block is free: another thread's malloc may get its
	 * address at once */
	memtrace_site_free(p);
	if (f)
		f(p);
}

EXPORT void *mi_malloc(size_t n)
{
	void *(*f)(size_t) = next(&next_mi_malloc, "mi_malloc");
	void *p = f ? f(n) : NULL;

	memtrace_site_alloc(n, p, CALLER);
	return p;
}

EXPORT void *mi_calloc(size_t n, size_t size)
{
	void *(*f)(size_t, size_t) = next(&next_mi_calloc, "mi_calloc");
	void *p = f ? f(n, size) : NULL;

	memtrace_site_alloc(calloc_size(n, size), p, CALLER);
	return p;
}

EXPORT void *mi_realloc(void *old, size_t n)
{
	void *(*f)(void *, size_t) = next(&next_mi_realloc, "mi_realloc");
	void *p;

	memtrace_site_realloc(old, n);
	p = f ? f(old, n) : NULL;
	memtrace_site_return(p, CALLER);
	return p;
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
 * operator new: malloc, and the real operator new only when malloc
 * fails (it runs the new-handler and throws; its own malloc calls come
 * through malloc above). new(0) asks malloc for 1 byte, as libstdc++'s.
 * A library loaded later may bring the real one: looked up again then.
 */
static inline __attribute__((always_inline)) void *new_block(size_t n)
{
	return ready() ? next_malloc(n ? n : 1) : NULL;
}

EXPORT void *_Znwm(size_t n)
{
	void *p = new_block(n);

	if (!p) {
		void *(*f)(size_t) = next(&next_new, "_Znwm");

		return f ? f(n) : NULL;
	}
	memtrace_site_alloc(n, p, CALLER);
	return p;
}

EXPORT void *_Znam(size_t n)
{
	void *p = new_block(n);

	if (!p) {
		void *(*f)(size_t) = next(&next_new_array, "_Znam");

		return f ? f(n) : NULL;
	}
	memtrace_site_alloc(n, p, CALLER);
	return p;
}

EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{
	void *p = new_block(n);

	if (!p) {
		void *(*f)(size_t, const void *) = next(&next_new_nt, "_ZnwmRKSt9nothrow_t");

		return f ? f(n, nt) : NULL;
	}
	memtrace_site_alloc(n, p, CALLER);
	return p;
}

EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt)
{
	void *p = new_block(n);

	if (!p) {
		void *(*f)(size_t, const void *) = next(&next_new_array_nt, "_ZnamRKSt9nothrow_t");

		return f ? f(n, nt) : NULL;
	}
	memtrace_site_alloc(n, p, CALLER);
	return p;
}

EXPORT void _ZdlPv(void *p)
{
	release_free(p);
}

EXPORT void _ZdaPv(void *p)
{
	release_free(p);
}

EXPORT void _ZdlPvm(void *p, size_t n)
{
	release_free(p);
}

EXPORT void _ZdaPvm(void *p, size_t n)
{
	release_free(p);
}

EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
	release_free(p);
}

EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt)
{
	release_free(p);
}
