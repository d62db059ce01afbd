// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "elfsyms.h"
#include "memtrace.skel.h"
#include "pairmap.h"
#include "strutil.h"
#include "tracer.h"
#include "unwind.h"

struct probe_def {
	const char *name;
	enum mt_fn fn;		/* the attach cookie */
};

#define MAX_PROBES 24
/* enum bpf_attach_type: newer than libbpf 1.4's headers (Linux 6.13) */
#define MT_TRACE_UPROBE_SESSION 57

struct mt_tracer {
	struct memtrace_bpf *skel;
	struct mt_unwind *unwind;
	struct ring_buffer *events;
	mt_exec_cb exec_cb;
	void *exec_ctx;
	struct bpf_program *enter_prog, *session_prog, *return_prog, *preload_prog, *batch_prog;
	bool preload;		/* --preload: the wrapped functions are probed there */
	bool batch;		/* --batch: the library's batches too */
	uint64_t site_offs[5];	/* --preload: the library's sites (file offsets) */
	size_t nsites;
	bool session;		/* uprobe session links (Linux 6.13+) */
	bool mmap;		/* --mmap: mmap and sbrk are traced */
	const char *missing[MT_KERNEL_TPS + 1];
	struct probe_def custom[MAX_PROBES];
	size_t ncustom;
	struct bpf_link **links;
	pid_t *link_pid;	/* the process a uprobe link is for; 0: all, or a tracepoint */
	int nlinks;
	int *session_fds;	/* session links, which libbpf 1.4 cannot make */
	pid_t *session_pid;
	int nsessions;
	bool tree;		/* new pid-less links are a process tree's */
	int nprobes;
	int stats_fd;		/* --bpf-stats: run time counted while open */
	int stats_err;		/* --bpf-stats: why it could not be enabled */
	int stats_ncpu;		/* per-CPU stack totals: the CPUs; else 1 */
	uint64_t peak;		/* highest outstanding total reported */
	const struct mt_slot *slots;	/* the block table, mapped (or NULL) */
	size_t nslots;
	/* purges asked for, run together (mt_tracer__purge_run) */
	struct mt_pairmap *purge_idx;	/* (tgid, gen) -> index in purges */
	struct purge {
		struct mt_purge_key k;
		struct mt_purge_req r;
	} *purges;
	size_t npurges, cap_purges;
};

/* Every allocation entry point and how the entry program reads it. */
static const struct probe_def libc_probes[] = {
	{ "malloc", MT_FN_MALLOC },
	{ "free", MT_FN_FREE },
	{ "calloc", MT_FN_CALLOC },
	{ "realloc", MT_FN_REALLOC },
	{ "reallocarray", MT_FN_REALLOCARRAY },
	{ "posix_memalign", MT_FN_POSIX_MEMALIGN },
	{ "aligned_alloc", MT_FN_MEMALIGN },
	{ "memalign", MT_FN_MEMALIGN },
	{ "valloc", MT_FN_VALLOC },
	{ "pvalloc", MT_FN_VALLOC },
	{ "cfree", MT_FN_FREE },
	/* jemalloc built with a prefix; mimalloc's own names */
	{ "je_malloc", MT_FN_MALLOC },
	{ "je_free", MT_FN_FREE },
	{ "je_calloc", MT_FN_CALLOC },
	{ "je_realloc", MT_FN_REALLOC },
	{ "je_posix_memalign", MT_FN_POSIX_MEMALIGN },
	{ "je_aligned_alloc", MT_FN_MEMALIGN },
	{ "mi_malloc", MT_FN_MALLOC },
	{ "mi_free", MT_FN_FREE },
	{ "mi_calloc", MT_FN_CALLOC },
	{ "mi_realloc", MT_FN_REALLOC },
};

/*
 * libstdc++ is built without frame pointers: seen only from malloc, a
 * `new` would lose the function that called it. Probed as allocators
 * themselves, their malloc is a nested call and the stack is taken at
 * their return, in the caller. delete needs no probe: it calls free.
 */
static const struct probe_def cxx_probes[] = {
	{ "_Znwm", MT_FN_NEW },
	{ "_Znam", MT_FN_NEW },
	{ "_ZnwmRKSt9nothrow_t", MT_FN_NEW },
	{ "_ZnamRKSt9nothrow_t", MT_FN_NEW },
	{ "_ZnwmSt11align_val_t", MT_FN_NEW },
	{ "_ZnamSt11align_val_t", MT_FN_NEW },
	{ "_ZnwmSt11align_val_tRKSt9nothrow_t", MT_FN_NEW },
	{ "_ZnamSt11align_val_tRKSt9nothrow_t", MT_FN_NEW },
};

/* --mmap: memory that bypasses malloc (glibc's and musl's wrappers; the
 * allocators' own calls to them are nested calls, not counted) */
static const struct probe_def mmap_probes[] = {
	{ "mmap", MT_FN_MMAP },
	{ "mmap64", MT_FN_MMAP },
	{ "munmap", MT_FN_MUNMAP },
	{ "mremap", MT_FN_MREMAP },
	{ "sbrk", MT_FN_SBRK },
};

/* --preload: the probe sites of libmemtrace-preload.so (user/preload.c) */
static const struct probe_def preload_probes[] = {
	{ "memtrace_site_alloc", MT_FN_MALLOC },
	{ "memtrace_site_free", MT_FN_FREE },
	{ "memtrace_site_realloc", MT_FN_REALLOC },
	{ "memtrace_site_return", MT_FN_PRELOAD_RETURN },
	{ "memtrace_site_batch", MT_FN_PRELOAD_BATCH },	/* last: --batch only */
};

/*
 * What the preload library wraps: in a shared library (which it comes
 * before in the lookup), calls of these reach the library through the
 * wrapper, whose sites see them. A program's own definitions come before
 * the wrapper's and keep their probes.
 */
static const char *const preload_wrapped[] = {
	"malloc", "calloc", "realloc", "free", "cfree", "reallocarray",
	"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
	"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
	"_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
	"_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
	"mi_malloc", "mi_calloc", "mi_realloc", "mi_free",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(ARRAY_SIZE(libc_probes) <= MAX_PROBES, "MAX_PROBES");
_Static_assert(ARRAY_SIZE(cxx_probes) <= MAX_PROBES, "MAX_PROBES");

/*
 * Gaps between sample points: quantiles of Exp(N), scaled so their mean
 * is exactly N. Weights 1/(1 - exp(-s/N)) at the middle of each size
 * bucket of N/64 bytes (bucket 0 is computed in BPF).
 */
static void sampling_tables(struct memtrace_bpf *skel, uint64_t n)
{
	double q[MT_SAMPLE_TABLE], mean = 0;

	skel->rodata->sample_bytes = n;
	if (!n)
		return;
	for (int i = 0; i < MT_SAMPLE_TABLE; i++) {
		q[i] = -log(1.0 - (i + 0.5) / MT_SAMPLE_TABLE);
		mean += q[i] / MT_SAMPLE_TABLE;
	}
	for (int i = 0; i < MT_SAMPLE_TABLE; i++) {
		double x = (i + 0.5) / MT_WEIGHT_BUCKETS_PER_N;
		double gap = llround(n * q[i] / mean);

		skel->rodata->sample_gap[i] = gap < 1 ? 1 : gap;
		skel->rodata->sample_weight[i] = (uint32_t)llround(65536.0 / (1.0 - exp(-x)));
	}
}

/* The kernel programs, by tracepoint. */
static struct bpf_program *kernel_prog(struct memtrace_bpf *s, int i, const char **tp)
{
	static const char *const tps[MT_KERNEL_TPS] = {
		"kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc",
		"mm_page_free", "mm_page_free_batched", "percpu_alloc_percpu",
		"percpu_free_percpu",
	};
	struct bpf_program *p[MT_KERNEL_TPS] = {
		s->progs.k_kmalloc, s->progs.k_kfree, s->progs.k_cache_alloc,
		s->progs.k_cache_free, s->progs.k_page_alloc, s->progs.k_page_free,
		s->progs.k_page_free_batched, s->progs.k_percpu_alloc, s->progs.k_percpu_free,
	};

	*tp = tps[i];
	return p[i];
}

/* Does the kernel (its BTF, vmlinux) have tracepoint tp? */
static bool have_tp(const struct btf *vmlinux, const char *tp)
{
	char name[64];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return vmlinux && btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) > 0;
}

/* Load the kernel programs only if asked, and only those this kernel has. */
static void select_kernel_progs(struct mt_tracer *t, const struct btf *vmlinux, bool kernel)
{
	int nmissing = 0;

	for (int i = 0; i < MT_KERNEL_TPS; i++) {
		const char *tp;
		struct bpf_program *p = kernel_prog(t->skel, i, &tp);
		bool have = kernel && have_tp(vmlinux, tp);

		bpf_program__set_autoload(p, have);
		if (kernel && !have)
			t->missing[nmissing++] = tp;
	}
	t->missing[nmissing] = NULL;
}

const char *const *mt_tracer__missing_tps(const struct mt_tracer *t)
{
	return t->missing;
}

/* Attach a tracepoint program; its link is destroyed with the tracer. */
static int grow_links(struct mt_tracer *t)
{
	struct bpf_link **nl = realloc(t->links, (t->nlinks + 1) * sizeof(*nl));
	pid_t *np;

	if (nl)
		t->links = nl;
	np = realloc(t->link_pid, (t->nlinks + 1) * sizeof(*np));
	if (np)
		t->link_pid = np;
	return nl && np ? 0 : -ENOMEM;
}

static int attach_tp(struct mt_tracer *t, struct bpf_program *p)
{
	struct bpf_link *l;

	if (grow_links(t))
		return -ENOMEM;
	l = bpf_program__attach(p);
	if (!l)
		return -errno;
	t->link_pid[t->nlinks] = 0;
	t->links[t->nlinks++] = l;
	return 0;
}

int mt_tracer__attach_kernel(struct mt_tracer *t)
{
	for (int i = 0; i < MT_KERNEL_TPS; i++) {
		const char *tp;
		struct bpf_program *p = kernel_prog(t->skel, i, &tp);
		int err;

		if (bpf_program__autoload(p) && (err = attach_tp(t, p)))
			return err;
	}
	return 0;
}

int mt_tracer__hz(const struct mt_tracer *t)
{
	return (int)t->skel->kconfig->CONFIG_HZ;
}

int mt_tracer__stats_ncpu(const struct mt_tracer *t)
{
	return t->stats_ncpu;
}

int mt_tracer__bpf_measuring(const struct mt_tracer *t)
{
	return t->stats_fd >= 0 ? 0 : t->stats_err ? t->stats_err : -ENOENT;
}

/* Only the allocator probes' programs: the ones the traced threads run. */
void mt_tracer__bpf_time(struct mt_tracer *t, uint64_t *runs, uint64_t *ns)
{
	struct bpf_program *progs[] = { t->enter_prog, t->session_prog, t->return_prog,
					t->preload_prog };

	*runs = *ns = 0;
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(progs[i]);
		bool seen = false;

		for (size_t j = 0; j < i; j++)
			seen |= progs[j] == progs[i]; /* --probe-floor: floor_enter twice */
		if (!seen && fd >= 0 && !bpf_prog_get_info_by_fd(fd, &info, &len)) {
			*runs += info.run_cnt;
			*ns += info.run_time_ns;
		}
	}
}

uint64_t mt_tracer__kernel_recursion(struct mt_tracer *t)
{
	uint64_t sum = 0;

	for (int i = 0; i < MT_KERNEL_TPS; i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		const char *tp;
		struct bpf_program *p = kernel_prog(t->skel, i, &tp);

		if (bpf_program__fd(p) >= 0 &&
		    !bpf_prog_get_info_by_fd(bpf_program__fd(p), &info, &len))
			sum += info.recursion_misses;
	}
	return sum;
}

bool mt_tracer__can_tree(const struct mt_tracer *t)
{
	return t->session;
}

void mt_tracer__tree_begin(struct mt_tracer *t)
{
	t->tree = true;
	t->skel->bss->tree_overlap = 1;
}

int mt_tracer__tree_end(struct mt_tracer *t)
{
	int n = 0, keep = 0;

	for (int i = 0; i < t->nsessions; i++) {
		if (t->session_pid[i]) {
			close(t->session_fds[i]);
			n++;
			continue;
		}
		t->session_pid[keep] = 0;
		t->session_fds[keep++] = t->session_fds[i];
	}
	t->nsessions = keep;
	keep = 0;
	for (int i = 0; i < t->nlinks; i++) {
		if (t->link_pid[i]) {
			bpf_link__destroy(t->links[i]);
			n++;
			continue;
		}
		t->link_pid[keep] = 0;
		t->links[keep++] = t->links[i];
	}
	t->nlinks = keep;
	t->skel->bss->tree_overlap = 0;
	return n;
}

int mt_tracer__remove_target(struct mt_tracer *t, pid_t tgid)
{
	__u32 k = tgid;

	return bpf_map_delete_elem(bpf_map__fd(t->skel->maps.targets), &k) ? -errno : 0;
}

size_t mt_tracer__preload_sites(const struct mt_tracer *t, const uint64_t **offs)
{
	*offs = t->site_offs;
	return t->nsites;
}

int mt_tracer__add_target(struct mt_tracer *t, pid_t tgid)
{
	__u32 k = tgid;
	__u8 v = 1;

	return bpf_map_update_elem(bpf_map__fd(t->skel->maps.targets), &k, &v, BPF_ANY) ?
		       -errno : 0;
}

static int on_event(void *ctx, void *data, size_t len);


/*
 * Stack totals are per CPU (no cache line shared between CPUs allocating
 * from one stack) while a full map stays under 64 MiB, in the kernel and
 * in each snapshot; on larger machines they are shared. Returns the
 * number of CPUs per entry, 1 for shared.
 */
#define MT_STATS_PERCPU_MAX (64ULL << 20)

static int stats_ncpu(uint64_t max_stacks)
{
	int ncpu = libbpf_num_possible_cpus();

	if (ncpu <= 1 || (uint64_t)ncpu * max_stacks * sizeof(struct mt_stats) >
				 MT_STATS_PERCPU_MAX)
		return 1;
	return ncpu;
}

/* Does the kernel know uprobe session links? Its own BTF says. */
static bool kernel_has_uprobe_session(const struct btf *btf)
{
	const struct btf_type *e;
	bool found = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "bpf_attach_type", BTF_KIND_ENUM);
	if (id > 0 && (e = btf__type_by_id(btf, id))) {
		const struct btf_enum *v = btf_enum(e);

		for (int i = 0; i < btf_vlen(e) && !found; i++)
			found = !strcmp(btf__name_by_offset(btf, v[i].name_off),
					"BPF_TRACE_UPROBE_SESSION");
	}
	return found;
}

/*
 * Is the kernel's config where libbpf reads CONFIG_HZ (bpf: alloc_time)?
 * Without it (a container without the host's /boot) libbpf would fail the
 * load, __weak or not: memtrace then says HZ is 0 and blocks carry ns.
 */
static bool have_kconfig(void)
{
	struct utsname u;
	char path[PATH_MAX];

	if (!uname(&u)) {
		snprintf(path, sizeof(path), "/boot/config-%s", u.release);
		if (!access(path, R_OK))
			return true;
	}
	return !access("/proc/config.gz", R_OK);
}

/* The block table's mapping: whole pages, as the kernel maps it. */
static size_t slots_bytes(const struct mt_tracer *t)
{
	long page = sysconf(_SC_PAGESIZE);

	return (t->nslots * sizeof(struct mt_slot) + page - 1) / page * page;
}

int mt_tracer__new(const struct mt_tracer_opts *o, struct mt_tracer **out)
{
	struct mt_tracer *t = calloc(1, sizeof(*t));
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct btf *vmlinux = NULL;
	int err;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	/* what this kernel has; NULL (none of it) if its BTF cannot be read */
	vmlinux = btf__load_vmlinux_btf();
	t->stats_fd = -1;
	if (o->no_kconfig || !have_kconfig())
		oo.kconfig = "CONFIG_HZ=0\n";
	t->skel = memtrace_bpf__open_opts(&oo);
	if (!t->skel) {
		err = -errno;
		goto cleanup;
	}
	t->skel->rodata->min_size = o->min_size;
	t->skel->rodata->max_size = o->max_size;
	t->skel->rodata->stack_depth = o->max_depth;
	sampling_tables(t->skel, o->sample_bytes);
	select_kernel_progs(t, vmlinux, o->kernel);
	t->skel->rodata->irqentry_lo = o->irqentry_lo;
	t->skel->rodata->irqentry_hi = o->irqentry_hi;
	t->skel->rodata->unwind_cfi = !o->unwind_fp && !o->probe_floor;
	if (o->stack_hash_mask)
		t->skel->rodata->stack_hash_mask = o->stack_hash_mask;
	t->skel->rodata->self_tgid = o->self;
	bpf_program__set_autoload(t->skel->progs.proc_fork, o->all);
	t->skel->rodata->trace_all = o->all;
	t->skel->rodata->filter_comm = o->ncomms > 0;
	t->skel->rodata->filter_cgroup = o->cgroup_fd >= 0;
	bpf_program__set_autoload(t->skel->progs.cfi_exit, t->skel->rodata->unwind_cfi);
	/* remembered walks: MT_MEMO_SIZE per CPU, for the CFI walk only;
	 * fewer on machines with many CPUs, so that the table stays within
	 * MT_MEMO_MAX_BYTES (it is allocated whole, for every possible CPU) */
	t->skel->rodata->use_memo = t->skel->rodata->unwind_cfi && !o->no_memo;
	t->skel->rodata->memo_tags = !o->memo_no_tags;
	if (t->skel->rodata->use_memo) {
		int ncpu = libbpf_num_possible_cpus();
		__u32 n;

		if (ncpu < 0) {
			err = ncpu;
			goto cleanup;
		}
		n = mt_memo_entries(ncpu, bpf_map__value_size(t->skel->maps.walk_memo));
		t->skel->rodata->memo_size = n;
		bpf_map__set_max_entries(t->skel->maps.walk_memo, ncpu * n);
	} else {
		bpf_map__set_max_entries(t->skel->maps.walk_memo, 1);
	}
	bpf_map__set_max_entries(t->skel->maps.allocs, o->max_allocs);
	t->nslots = o->slots ? mt_slot_count(o->slots) : mt_slot_count(o->max_allocs);
	bpf_map__set_max_entries(t->skel->maps.slots, t->nslots);
	t->skel->rodata->slot_mask = t->nslots - 1;
	bpf_map__set_max_entries(t->skel->maps.stats, o->max_stacks);
	t->stats_ncpu = stats_ncpu(o->max_stacks);
	if (t->stats_ncpu == 1)
		bpf_map__set_type(t->skel->maps.stats, BPF_MAP_TYPE_HASH);
	bpf_map__set_max_entries(t->skel->maps.stacks, o->max_stacks);
	t->skel->rodata->max_allocs_per_proc = o->max_allocs_per_proc;
	t->enter_prog = o->probe_floor ? t->skel->progs.floor_enter : t->skel->progs.alloc_enter;
	t->session_prog = o->probe_floor ? t->skel->progs.floor_session :
					   t->skel->progs.alloc_session;
	t->return_prog = o->probe_floor ? t->skel->progs.floor_return : t->skel->progs.alloc_return;
	t->preload = o->preload;
	t->preload_prog = o->probe_floor ? t->skel->progs.floor_enter : t->skel->progs.preload_site;
	bpf_program__set_autoload(t->skel->progs.preload_site, o->preload && !o->probe_floor);
	t->batch = o->preload && o->batch;
	t->batch_prog = o->probe_floor ? t->skel->progs.floor_enter : t->skel->progs.preload_batch;
	bpf_program__set_autoload(t->skel->progs.preload_batch, t->batch && !o->probe_floor);
	bpf_program__set_autoload(t->skel->progs.batch_exit, t->batch && !o->probe_floor);
	/* Linux 6.10+ (as memtrace needs): where a kernel lacks it, an exec the
	 * library does not see loses what is queued */
	bpf_program__set_autoload(t->skel->progs.batch_exec, t->batch && !o->probe_floor &&
				  have_tp(vmlinux, "sched_prepare_exec"));
	/* --batch's maps: all but empty without it (an LRU map is allocated
	 * whole: one entry a CPU) */
	/* a stack's key in each process, kept also when the stack was not
	 * (allocated as used) */
	bpf_map__set_max_entries(t->skel->maps.batch_stacks,
				 !t->batch	      ? 1 :
				 o->batch_keys	      ? o->batch_keys :
				 o->max_stacks < 16384 ? 65536 :
							 4 * o->max_stacks);
	bpf_map__set_max_entries(t->skel->maps.batch_queues, t->batch ? 65536 : 1);
	if (!t->batch) {
		int ncpu = libbpf_num_possible_cpus();

		bpf_map__set_max_entries(t->skel->maps.batch_held, ncpu > 0 ? ncpu : 64);
	}
	t->session = !o->no_session && kernel_has_uprobe_session(vmlinux);
	t->mmap = o->mmap;
	t->skel->rodata->use_session = t->session;
	if (t->session) {
		bpf_program__set_expected_attach_type(t->skel->progs.alloc_session,
						      MT_TRACE_UPROBE_SESSION);
		bpf_program__set_expected_attach_type(t->skel->progs.floor_session,
						      MT_TRACE_UPROBE_SESSION);
	}
	bpf_program__set_autoload(t->skel->progs.alloc_return, !t->session);
	bpf_program__set_autoload(t->skel->progs.floor_return, !t->session);
	err = memtrace_bpf__load(t->skel);
	if (err)
		goto cleanup;
	t->slots = mmap(NULL, slots_bytes(t), PROT_READ, MAP_SHARED,
			bpf_map__fd(t->skel->maps.slots), 0);
	if (t->slots == MAP_FAILED) {
		t->slots = NULL;
		err = -errno;
		goto cleanup;
	}
	/* needs CAP_SYS_ADMIN: without it, trace and say it was not measured */
	if (o->bpf_stats && (t->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME)) < 0)
		t->stats_err = -errno;
	for (int i = 0; i < o->ncomms; i++) {
		char key[16] = {};
		__u8 one = 1;

		memcpy(key, o->comms[i], strnlen(o->comms[i], 15));
		if (bpf_map__update_elem(t->skel->maps.comms, key, sizeof(key), &one, 1, 0)) {
			err = -errno;
			goto cleanup;
		}
	}
	if (o->cgroup_fd >= 0) {
		__u32 zero = 0, fd = o->cgroup_fd;

		if (bpf_map__update_elem(t->skel->maps.cgroup_filter, &zero, 4, &fd, 4, 0)) {
			err = -errno;
			goto cleanup;
		}
	}
	t->events = ring_buffer__new(bpf_map__fd(t->skel->maps.proc_events), on_event, t, NULL);
	if (!t->events || (err = attach_tp(t, t->skel->progs.proc_exec)) ||
	    (o->all && (err = attach_tp(t, t->skel->progs.proc_fork)))) {
		err = err ? err : -errno;
		goto cleanup;
	}
	if (t->skel->rodata->unwind_cfi) {
		err = mt_unwind__new(bpf_map__fd(t->skel->maps.cfi_rows),
				     bpf_map__fd(t->skel->maps.cfi_tables),
				     bpf_map__fd(t->skel->maps.cfi_asked),
				     bpf_map__fd(t->skel->maps.cfi_misses), &t->skel->data->cfi_epoch,
				     &t->unwind);
		if (err || (err = attach_tp(t, t->skel->progs.cfi_exit)))
			goto cleanup;
	}
	if (bpf_program__autoload(t->skel->progs.batch_exit) &&
	    (err = attach_tp(t, t->skel->progs.batch_exit)))
		goto cleanup;
	if (bpf_program__autoload(t->skel->progs.batch_exec) &&
	    (err = attach_tp(t, t->skel->progs.batch_exec)))
		goto cleanup;
	btf__free(vmlinux);
	*out = t;
	return 0;
cleanup:
	btf__free(vmlinux);
	mt_tracer__free(t);
	return err;
}

void mt_tracer__free(struct mt_tracer *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	free(t->link_pid);
	for (int i = 0; i < t->nsessions; i++)
		close(t->session_fds[i]);
	free(t->session_fds);
	free(t->session_pid);
	if (t->stats_fd >= 0)
		close(t->stats_fd);
	ring_buffer__free(t->events);
	mt_unwind__free(t->unwind);
	mt_pairmap__free(t->purge_idx);
	free(t->purges);
	if (t->slots)
		munmap((void *)t->slots, slots_bytes(t));
	memtrace_bpf__destroy(t->skel);
	free(t);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct mt_tracer *t = ctx;
	const struct mt_proc_event *e = data;

	if (len >= sizeof(*e) && t->exec_cb) {
		char comm[17] = {};

		memcpy(comm, e->comm, sizeof(e->comm));
		t->exec_cb(t->exec_ctx, (pid_t)e->tgid, e->gen, e->exec_id, comm,
			   e->type == MT_PROC_FORK ? (pid_t)e->parent : 0);
	}
	return 0;
}

int mt_tracer__events_fd(struct mt_tracer *t)
{
	return ring_buffer__epoll_fd(t->events);
}

int mt_tracer__poll_events(struct mt_tracer *t, mt_exec_cb cb, void *ctx)
{
	t->exec_cb = cb;
	t->exec_ctx = ctx;
	return ring_buffer__consume(t->events);
}

int mt_tracer__purge_add(struct mt_tracer *t, pid_t tgid, uint32_t gen, uint32_t exec_id,
			 uint32_t how)
{
	long i;
	struct purge *p;

	if (!gen)
		return -EINVAL;
	if (!t->purge_idx && !(t->purge_idx = mt_pairmap__new(64)))
		return -ENOMEM;
	i = mt_pairmap__get(t->purge_idx, (uint32_t)tgid, gen);
	if (i >= 0) {
		/* a later exec of the same process covers the earlier one */
		p = &t->purges[i];
		/* all as frees over their sums; either over an exec's */
		p->r.all = p->r.all == MT_PURGE_ALL || how == MT_PURGE_ALL ? MT_PURGE_ALL :
									     p->r.all | how;
		if ((int32_t)(exec_id - p->r.exec_id) > 0)
			p->r.exec_id = exec_id;
		return 0;
	}
	if (mt_grow((void **)&t->purges, &t->cap_purges, t->npurges + 1, sizeof(*t->purges)) ||
	    mt_pairmap__put(t->purge_idx, (uint32_t)tgid, gen, (long)t->npurges))
		return -ENOMEM;
	t->purges[t->npurges++] = (struct purge){
		.k = { .tgid = (__u32)tgid, .gen = gen },
		.r = { .exec_id = exec_id, .all = how },
	};
	return 0;
}

size_t mt_tracer__purge_pending(const struct mt_tracer *t)
{
	return t->npurges;
}

/* One pass for up to MT_PURGE_MAX requests (what purge_reqs holds); they
 * leave the map whatever happened. */
static int purge_pass(struct mt_tracer *t, const struct purge *v, size_t n, mt_purge_cb cb,
		      void *ctx)
{
	int fd = bpf_map__fd(t->skel->maps.purge_reqs), err = 0;
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	for (size_t i = 0; !err && i < n; i++)
		if (bpf_map_update_elem(fd, &v[i].k, &v[i].r, BPF_ANY))
			err = -errno;
	if (!err && bpf_prog_test_run_opts(bpf_program__fd(t->skel->progs.purge_process), &opts))
		err = -errno;
	for (size_t i = 0; !err && cb && i < n; i++) {
		struct mt_purge_req r = {};

		bpf_map_lookup_elem(fd, &v[i].k, &r);
		cb(ctx, (pid_t)v[i].k.tgid, v[i].k.gen, v[i].r.all, r.purged);
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &v[i].k);
	return err;
}

int mt_tracer__purge_run(struct mt_tracer *t, mt_purge_cb cb, void *ctx)
{
	int err = 0;

	for (size_t i = 0; i < t->npurges; i += MT_PURGE_MAX) {
		size_t n = t->npurges - i < MT_PURGE_MAX ? t->npurges - i : MT_PURGE_MAX;

		err = purge_pass(t, t->purges + i, n, cb, ctx) ?: err;
	}
	t->npurges = 0;
	mt_pairmap__free(t->purge_idx); /* a new one for the next batch */
	t->purge_idx = NULL;
	return err;
}

int mt_tracer__drop_processes(struct mt_tracer *t, const struct mt_pid_gen *procs, size_t n)
{
	struct mt_stat_entry *gone = NULL;
	size_t ngone = 0;
	int err = 0;

	for (size_t i = 0; !err && i < n; i++)
		err = mt_tracer__purge_add(t, procs[i].pid, procs[i].gen, 0, MT_PURGE_ALL);
	err = mt_tracer__purge_run(t, NULL, NULL) ?: err;
	/* their stacks' totals: out of the map as when retired, then dropped */
	if (!err)
		err = mt_tracer__retire(t, procs, n, &gone, &ngone, NULL, NULL);
	free(gone);
	for (size_t i = 0; i < n; i++) {
		__u32 key = (__u32)procs[i].pid;

		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.proc_live), &key);
	}
	return err;
}

struct mt_unwind *mt_tracer__unwind(struct mt_tracer *t)
{
	return t->unwind;
}

int mt_tracer__add_custom(struct mt_tracer *t, const char *name, int arg, bool is_free)
{
	static const enum mt_fn alloc_fns[] = { MT_FN_MALLOC, MT_FN_ALLOC_ARG2, MT_FN_ALLOC_ARG3 };
	static const enum mt_fn free_fns[] = { MT_FN_FREE, MT_FN_FREE_ARG2 };

	if (t->ncustom == MAX_PROBES || arg < 1 || arg > (is_free ? 2 : 3))
		return -EINVAL;
	t->custom[t->ncustom++] = (struct probe_def){
		name, is_free ? free_fns[arg - 1] : alloc_fns[arg - 1] };
	return 0;
}

/*
 * Does the function call no other traced function? An allocator's malloc
 * calls none (glibc, musl, jemalloc, tcmalloc, mimalloc), unless --mmap
 * traces the mmap and sbrk it calls, or --alloc-fn/--free-fn name
 * functions it may call; mmap calls none (gperftools' sbrk calls libc's).
 * Others may: operator new calls malloc, musl's calloc malloc and its
 * memalign aligned_alloc, realloc(p, 0) free.
 */
static bool leaf(const struct mt_tracer *t, enum mt_lib kind, enum mt_fn fn)
{
	return (kind == MT_LIB_C && fn == MT_FN_MALLOC && !t->mmap && !t->ncustom) ||
	       (kind == MT_LIB_MMAP && fn == MT_FN_MMAP);
}

/* No return probe: the free-like functions. */
static bool frees(enum mt_fn fn)
{
	return fn == MT_FN_FREE || fn == MT_FN_FREE_ARG2 || fn == MT_FN_MUNMAP;
}

int mt_tracer__nprobes(const struct mt_tracer *t)
{
	return t->nprobes;
}

static int add_link(struct mt_tracer *t, struct bpf_program *prog, pid_t pid,
		    const char *lib, const uint64_t *offs, const uint64_t *cookies, size_t n,
		    bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, uo, .offsets = (const unsigned long *)offs,
		    .cookies = (const __u64 *)cookies, .cnt = n, .retprobe = ret);
	struct bpf_link *l;

	if (!n)
		return 0;
	if (grow_links(t))
		return -ENOMEM;
	l = bpf_program__attach_uprobe_multi(prog, pid, lib, NULL, &uo);
	if (!l)
		return -errno;
	t->link_pid[t->nlinks] = pid < 0 ? 0 : pid;
	t->links[t->nlinks++] = l;
	return 0;
}

/*
 * A uprobe session link (Linux 6.13+): one program at entry and return, the
 * return skipped when the entry returns nonzero. libbpf 1.4 knows neither
 * the attach type nor how to pass its offsets: the link is made here.
 */
static int add_session(struct mt_tracer *t, pid_t pid, const char *lib, const uint64_t *offs,
		       const uint64_t *cookies, size_t n)
{
	union bpf_attr attr;
	int *nf, fd;
	pid_t *np;

	if (!n)
		return 0;
	nf = realloc(t->session_fds, (t->nsessions + 1) * sizeof(*nf));
	if (nf)
		t->session_fds = nf;
	np = realloc(t->session_pid, (t->nsessions + 1) * sizeof(*np));
	if (np)
		t->session_pid = np;
	if (!nf || !np)
		return -ENOMEM;
	memset(&attr, 0, sizeof(attr));
	attr.link_create.prog_fd = bpf_program__fd(t->session_prog);
	attr.link_create.attach_type = MT_TRACE_UPROBE_SESSION;
	attr.link_create.uprobe_multi.path = (__u64)(uintptr_t)lib;
	attr.link_create.uprobe_multi.offsets = (__u64)(uintptr_t)offs;
	attr.link_create.uprobe_multi.cookies = (__u64)(uintptr_t)cookies;
	attr.link_create.uprobe_multi.cnt = n;
	attr.link_create.uprobe_multi.pid = pid < 0 ? 0 : pid; /* 0: every process */
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (fd < 0)
		return -errno;
	t->session_pid[t->nsessions] = pid < 0 ? 0 : pid;
	t->session_fds[t->nsessions++] = fd;
	return 0;
}

/* Probe site of the function at file offset off (entry if unreadable). */
static void choose_site(int fd, uint64_t off, bool free_like, struct mt_site *site)
{
	uint8_t code[4096];
	ssize_t n = pread(fd, code, sizeof(code), off);

	memset(site, 0, sizeof(*site));
	if (n <= 0 || mt_probesite__choose(code, n, free_like, site))
		site->delta = 0;
}

static bool defines(const char *const *names, const uint64_t *offs, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], want))
			return offs[i];
	return false;
}

static bool wrapped(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(preload_wrapped); i++)
		if (!strcmp(name, preload_wrapped[i]))
			return true;
	return false;
}

/* --preload: the library's probe sites, all at their first byte (a nop5). */
static int attach_preload(struct mt_tracer *t, pid_t pid, const char *lib,
			  struct mt_probe_info *info, int *ninfo)
{
	size_t n = ARRAY_SIZE(preload_probes) - !t->batch;
	const char *names[ARRAY_SIZE(preload_probes)];
	uint64_t offs[ARRAY_SIZE(preload_probes)], cookies[ARRAY_SIZE(preload_probes)];
	__u64 tree = MT_FN_TREE; /* always for the tree: main.c, attach_object */
	int err, fd;

	for (size_t i = 0; i < n; i++)
		names[i] = preload_probes[i].name;
	err = mt_elf__func_offsets(lib, names, n, offs);
	if (err)
		return err;
	fd = open(lib, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
		uint8_t code[5];

		/* a site that is not the nop would trap: a wrong library */
		if (!offs[i] || pread(fd, code, 5, offs[i]) != 5 || memcmp(code, nop5, 5)) {
			close(fd);
			return -ENOENT;
		}
		cookies[i] = preload_probes[i].fn | tree;
		info[i] = (struct mt_probe_info){ .name = names[i], .offset = offs[i] };
		info[i].site.why = MT_SITE_NOP5;
		snprintf(info[i].site.first_insn, sizeof(info[i].site.first_insn),
			 "nopl 0x0(%%rax,%%rax,1)");
	}
	close(fd);
	*ninfo = (int)n;
	_Static_assert(ARRAY_SIZE(t->site_offs) == ARRAY_SIZE(preload_probes), "site_offs");
	memcpy(t->site_offs, offs, n * sizeof(*offs));
	t->nsites = n;
	/* the batch site (last) has a program of its own */
	err = add_link(t, t->preload_prog, pid, lib, offs, cookies, ARRAY_SIZE(preload_probes) - 1,
		       false);
	if (!err && t->batch)
		err = add_link(t, t->batch_prog, pid, lib, offs + n - 1, cookies + n - 1, 1, false);
	if (!err)
		t->nprobes += (int)n;
	return err;
}

int mt_tracer__attach(struct mt_tracer *t, pid_t pid, const char *lib, enum mt_lib kind,
		      struct mt_probe_info *info, int *ninfo)
{
#define HAS(name) defines(names, offs, n, name)
	const struct probe_def *defs = kind == MT_LIB_CXX ? cxx_probes :
				       kind == MT_LIB_CUSTOM ? t->custom :
				       kind == MT_LIB_MMAP ? mmap_probes : libc_probes;
	size_t n = kind == MT_LIB_CXX ? ARRAY_SIZE(cxx_probes) :
		   kind == MT_LIB_CUSTOM ? t->ncustom :
		   kind == MT_LIB_MMAP ? ARRAY_SIZE(mmap_probes) : ARRAY_SIZE(libc_probes);
	uint64_t offs[MAX_PROBES], eo[MAX_PROBES], ec[MAX_PROBES], ro[MAX_PROBES], rc[MAX_PROBES];
	size_t ne = 0, nr = 0;
	const char *names[MAX_PROBES] = { 0 };
	bool skip_wrapped;
	int err, fd;

	*ninfo = 0;
	if (kind == MT_LIB_PRELOAD)
		return attach_preload(t, pid, lib, info, ninfo);
	for (size_t i = 0; i < n; i++)
		names[i] = defs[i].name;
	err = mt_elf__func_offsets(lib, names, n, offs);
	if (err)
		return err;
	/* --preload: a library's wrapped functions are seen at the wrapper. A
	 * program's own (operator new) keep their probes, but not when the
	 * library samples or batches (its events reach BPF later than a
	 * probe's) and the program has no free of its own: their
	 * blocks are freed through the wrapper, which calls no site for a
	 * block it did not sample, so the blocks memtrace records must be
	 * the library's choice. The malloc they call is the wrapper's, and
	 * the stack starts in them. With a free of its own (a static
	 * program), all its allocator is its own: its probes stay. */
	skip_wrapped = t->preload && (kind == MT_LIB_C || kind == MT_LIB_CXX) &&
		       (mt_elf__is_program(lib) == 0 ||
			((t->skel->rodata->sample_bytes || t->batch) &&
			 !mt_elf__defines(lib, "free")));
	/* an allocator has malloc and free (plain, je_ or mi_); a C++
	 * runtime or allocator at least operator new */
	if (kind == MT_LIB_CUSTOM || kind == MT_LIB_MMAP) {
		size_t any = 0;

		for (size_t i = 0; i < n; i++)
			any |= offs[i];
		if (!any)
			return -ENOENT;
	} else if (kind == MT_LIB_CXX ? !offs[0] :
	    !((HAS("malloc") && HAS("free")) ||
	      (HAS("je_malloc") && HAS("je_free")) ||
	      (HAS("mi_malloc") && HAS("mi_free"))))
		return -ENOENT;
	fd = open(lib, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		const char *alias = NULL;

		if (!offs[i] || (skip_wrapped && wrapped(names[i])))
			continue;
		/* aliases (aligned_alloc = memalign, cfree = free) share code:
		 * probing both would count every call twice */
		for (size_t j = 0; j < i; j++)
			if (offs[j] == offs[i])
				alias = names[j];
		info[*ninfo] = (struct mt_probe_info){ .name = names[i], .offset = offs[i], .alias_of = alias };
		choose_site(fd, offs[i], frees(defs[i].fn), &info[*ninfo].site);
		if (!alias) {
			/* off the single-stepped entry where that is provably
			 * safe: user/probesite.h */
			uint64_t at = offs[i] + info[*ninfo].site.delta;

			__u64 tree = pid < 0 && t->tree ? MT_FN_TREE : 0;

			if (frees(defs[i].fn)) {
				eo[ne] = at;
				ec[ne++] = defs[i].fn | tree;
			} else {
				ro[nr] = at;
				rc[nr++] = defs[i].fn | tree |
					   (leaf(t, kind, defs[i].fn) ? MT_FN_LEAF : 0);
			}
		}
		(*ninfo)++;
	}
	close(fd);
#undef HAS
	/* frees first: a block allocated while the links go on is then never
	 * left outstanding after its free (a free of a block not seen is
	 * free_untracked, as for blocks allocated before attach) */
	err = add_link(t, t->enter_prog, pid, lib, eo, ec, ne, false);
	if (!err && t->session) {
		err = add_session(t, pid, lib, ro, rc, nr);
	} else if (!err) {
		/* return probes first: a call entered in between is then
		 * ignored rather than left half-recorded */
		err = add_link(t, t->return_prog, pid, lib, ro, NULL, nr, true);
		if (!err)
			err = add_link(t, t->session_prog, pid, lib, ro, rc, nr, false);
	}
	t->nprobes += ne + 2 * nr;
	return err;
}

/* Read a whole hash map with batch lookups: O(n / batch) syscalls. */
static int read_hash(int fd, size_t ksz, size_t vsz, void **keys_out, void **vals_out,
		     size_t *n_out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t cap = 1024, len = 0;
	char *keys = malloc(cap * ksz), *vals = malloc(cap * vsz);
	__u64 token = 0;
	bool first = true;
	__u32 chunk = 256;
	int err = 0;

	for (;;) {
		__u32 cnt;

		while (cap - len < chunk) {
			char *nk = realloc(keys, cap * 2 * ksz), *nv;

			if (nk)
				keys = nk;
			nv = realloc(vals, cap * 2 * vsz);
			if (nv)
				vals = nv;
			if (!nk || !nv) {
				err = -ENOMEM;
				goto out;
			}
			cap *= 2;
		}
		if (!keys || !vals) {
			err = -ENOMEM;
			goto out;
		}
		cnt = chunk;
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys + len * ksz,
					   vals + len * vsz, &cnt, &opts);
		len += cnt;
		first = false;
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		if (err == -ENOSPC && cnt == 0) {
			/* a bucket holds more than chunk entries */
			chunk *= 2;
			err = 0;
			continue;
		}
		if (err)
			goto out;
	}
out:
	if (err) {
		free(keys);
		free(vals);
		return err;
	}
	*keys_out = keys;
	*vals_out = vals;
	*n_out = len;
	return 0;
}

static int read_counters(struct mt_tracer *t, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(t->skel->maps.counters);
	__u64 *v;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < MT_CNT__COUNT; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += v[c];
	}
	free(v);
	return 0;
}

/*
 * Entries of a struct-of-arrays read, reshaped to the report's structs.
 * A per-CPU map (ncpu > 1) holds ncpu values per key, structs of __u64
 * counters: they are summed (wrapping, as a free on another CPU than its
 * allocation leaves a negative share).
 */
static int read_pairs(int fd, size_t ksz, size_t vsz, int ncpu, size_t esz, void **out,
		      size_t *n)
{
	void *k, *v;
	char *e;
	int err = read_hash(fd, ksz, vsz * ncpu, &k, &v, n);

	if (err)
		return err;
	e = malloc((*n + 1) * esz);
	if (e) {
		for (size_t i = 0; i < *n; i++) {
			const __u64 *cpu = (const __u64 *)((char *)v + i * vsz * ncpu);
			__u64 *sum = (__u64 *)(e + i * esz + ksz);

			memcpy(e + i * esz, (char *)k + i * ksz, ksz);
			memcpy(sum, cpu, vsz);
			for (int c = 1; c < ncpu; c++)
				for (size_t f = 0; f < vsz / 8; f++)
					sum[f] += cpu[c * vsz / 8 + f];
		}
	}
	free(k);
	free(v);
	*out = e;
	return e ? 0 : -ENOMEM;
}

/* BPF's clocks at one moment (clock_now), for mt_block_time_ns. */
static int read_clock(struct mt_tracer *t, struct mt_clock *c)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = c, .ctx_size_in = sizeof(*c));

	memset(c, 0, sizeof(*c));
	return bpf_prog_test_run_opts(bpf_program__fd(t->skel->progs.clock_now), &opts) ? -errno :
											   0;
}

/* The blocks' times, jiffies in BPF (alloc_time), as CLOCK_MONOTONIC ns. */
static int block_times(struct mt_tracer *t, struct mt_snapshot *s)
{
	struct mt_clock c;
	int err = read_clock(t, &c);

	for (size_t i = 0; !err && i < s->nallocs; i++)
		s->allocs[i].v.ts = mt_block_time_ns(&c, s->allocs[i].v.ts);
	return err;
}

int mt_tracer__snapshot(struct mt_tracer *t, struct mt_snapshot *s)
{
	struct timespec ts;
	uint64_t now = 0;
	int err;

	memset(s, 0, sizeof(*s));
	/* the live blocks first: BPF adds a block to the table or allocs
	 * before its stack's totals, so every block read has its totals
	 * (report.c). The table before allocs: a block BPF moves out of the
	 * table is in allocs first, so it is read in one or both. */
	err = read_counters(t, s->counters);
	if (!err && t->slots)
		err = mt_snapshot__add_slots(s, t->slots, t->nslots);
	if (!err) {
		struct mt_alloc_entry *hash = NULL;
		size_t nhash = 0;

		err = read_pairs(bpf_map__fd(t->skel->maps.allocs), sizeof(struct mt_alloc_key),
				 sizeof(struct mt_alloc), 1, sizeof(struct mt_alloc_entry),
				 (void **)&hash, &nhash);
		if (!err)
			err = mt_snapshot__add_unique(s, hash, nhash);
		free(hash);
	}
	if (!err)
		err = read_pairs(bpf_map__fd(t->skel->maps.stats), sizeof(struct mt_stats_key),
				 sizeof(struct mt_stats), t->stats_ncpu, sizeof(struct mt_stat_entry),
				 (void **)&s->stats, &s->nstats);
	if (!err)
		err = block_times(t, s);
	if (err) {
		mt_snapshot__clear(s);
		return err;
	}
	/* the BPF peak moves in batches: never below what a report showed */
	for (size_t i = 0; i < s->nallocs; i++)
		now += s->allocs[i].v.size;
	if (t->skel->bss->peak_bytes > 0 && (uint64_t)t->skel->bss->peak_bytes > t->peak)
		t->peak = t->skel->bss->peak_bytes;
	if (now > t->peak)
		t->peak = now;
	s->peak_bytes = t->peak;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->now_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return 0;
}

/* Is (tgid, gen) one of the exited processes (gen 0: its start unknown)? */
static bool is_gone(const struct mt_pairmap *gone, __u32 tgid, __u32 gen)
{
	return mt_pairmap__get(gone, tgid, gen) >= 0 || mt_pairmap__get(gone, tgid, 0) >= 0;
}

/*
 * --batch: drop the exited processes' stack keys (batch_stacks), which a
 * process tree would otherwise fill for the rest of the run: its later
 * processes' stacks would then be lost (stack_unavailable). No event of
 * theirs can come any more: their exit took what their queues held.
 */
static int retire_batch_keys(struct mt_tracer *t, const struct mt_pairmap *gone)
{
	int fd = bpf_map__fd(t->skel->maps.batch_stacks);
	struct mt_batch_key *k = NULL;
	void *v = NULL;
	size_t n = 0, ndel = 0;
	int err;

	if (!t->batch)
		return 0;
	err = read_hash(fd, sizeof(*k), sizeof(struct mt_batch_stack), (void **)&k, &v, &n);
	for (size_t i = 0; !err && i < n; i++)
		if (is_gone(gone, k[i].tgid, k[i].gen))
			k[ndel++] = k[i]; /* in place: ndel <= i */
	if (!err && ndel) {
		__u32 cnt = ndel;

		if (bpf_map_delete_batch(fd, k, &cnt, NULL))
			err = -errno;
	}
	free(k);
	free(v);
	return err;
}

/*
 * The blocks of the exited processes whose totals were just retired (the
 * processes as the stats map names them: also those whose start memtrace
 * did not know) into sums, out of allocs (purge_process, MT_PURGE_FOLD),
 * appended to *kept as blocks of one sum each. A sum that does not fit
 * the folded map leaves its blocks in allocs, where the reports find them
 * as before.
 */
static int fold_blocks(struct mt_tracer *t, const struct mt_stat_entry *procs, size_t n,
		       struct mt_alloc_entry **kept, size_t *nkept)
{
	struct fold_entry {
		struct mt_stats_key k;
		struct mt_fold v;
	} *sums = NULL;
	int fd = bpf_map__fd(t->skel->maps.folded), err = 0;
	struct mt_alloc_entry *out;
	size_t nsums = 0;
	struct mt_clock c;

	/* one request a process: purge_add merges them */
	for (size_t i = 0; !err && i < n; i++)
		err = mt_tracer__purge_add(t, procs[i].k.tgid, procs[i].k.gen, 0, MT_PURGE_FOLD);
	err = mt_tracer__purge_run(t, NULL, NULL) ?: err;
	if (!err)
		err = read_pairs(fd, sizeof(sums->k), sizeof(sums->v), 1, sizeof(*sums),
				 (void **)&sums, &nsums);
	if (!err)
		err = read_clock(t, &c);
	out = err ? NULL : realloc(*kept, (*nkept + nsums + 1) * sizeof(*out));
	if (!err && !out)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < nsums; i++) {
		const struct fold_entry *f = &sums[i];

		bpf_map_delete_elem(fd, &f->k);
		out[(*nkept)++] = (struct mt_alloc_entry){
			.k = { .tgid = f->k.tgid, .gen = f->k.gen },
			.v = { .size = f->v.size, .count = f->v.count, .stack_id = f->k.stack_id,
			       .ts = mt_block_time_ns(&c, f->v.oldest), .owner = f->k.tgid,
			       .owner_gen = f->k.gen },
		};
	}
	if (out)
		*kept = out;
	free(sums);
	return err;
}

int mt_tracer__retire(struct mt_tracer *t, const struct mt_pid_gen *procs, size_t n,
		      struct mt_stat_entry **kept, size_t *nkept, struct mt_alloc_entry **blocks,
		      size_t *nblocks)
{
	int fd = bpf_map__fd(t->skel->maps.stats);
	struct mt_pairmap *gone = mt_pairmap__new(n);
	struct mt_stat_entry *all = NULL, *out;
	size_t nall = 0, nout = 0;
	int err = gone ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < n; i++)
		err = mt_pairmap__put(gone, (uint64_t)procs[i].pid, procs[i].gen, 0);
	if (!err)
		err = read_pairs(fd, sizeof(struct mt_stats_key), sizeof(struct mt_stats),
				 t->stats_ncpu, sizeof(struct mt_stat_entry), (void **)&all, &nall);
	out = err ? NULL : realloc(*kept, (*nkept + nall + 1) * sizeof(*out));
	if (!err && !out)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < nall; i++) {
		const struct mt_stats_key *k = &all[i].k;

		if (!is_gone(gone, k->tgid, k->gen))
			continue;
		/* kept only once out of the map: a failed delete stays there */
		if (!bpf_map_delete_elem(fd, k))
			out[*nkept + nout++] = all[i];
	}
	if (out) {
		*kept = out;
		*nkept += nout;
	}
	if (!err)
		err = retire_batch_keys(t, gone);
	if (!err && blocks)
		err = fold_blocks(t, *kept + *nkept - nout, nout, blocks, nblocks);
	free(all);
	mt_pairmap__free(gone);
	return err;
}

void mt_snapshot__clear(struct mt_snapshot *s)
{
	free(s->stats);
	free(s->allocs);
	memset(s, 0, sizeof(*s));
}

int mt_tracer__stack(struct mt_tracer *t, uint64_t id, struct mt_stack *out)
{
	if (!id)
		return -ENOENT;
	return bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stacks), &id, out) ? -ENOENT : 0;
}
