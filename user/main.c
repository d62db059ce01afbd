// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * memtrace: the command. Parses the command line, checks what can be
 * checked before touching BPF, attaches, runs the event loop and prints
 * reports. The only module that writes to the user.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "cli.h"
#include "elfsyms.h"
#include "ksyms.h"
#include "pairmap.h"
#include "render.h"
#include "report.h"
#include "strutil.h"
#include "symbolizer.h"
#include "target.h"
#include "tracer.h"
#include "unwind.h"

#define REFRESH_MS 1000	/* re-read the targets' mappings this often */
#define MAX_INLINE_PER_ADDR 16

struct target {
	struct mt_proc info;
	bool dropped;		/* -a: exited, reported, forgotten */
	bool retired;		/* exited: its stack totals moved to app.retired */
	int pidfd;		/* -p targets: readable on exit; else -1 */
};

struct app {
	struct mt_opts o;
	struct mt_tracer *tracer;
	struct mt_unwind *unwind;	/* NULL with --unwind fp */
	struct mt_symbolizer *sym;
	struct mt_ksyms *ksyms;	/* --kernel */
	bool custom_found[MT_MAX_CUSTOM_FNS];
	struct target *targets;	/* grows with -a */
	struct mt_proc *procs;
	int ntargets;
	size_t cap;
	struct mt_pairmap *by_pid;	/* (pid, 0) -> index in targets */
	struct mt_pairmap *hooked;	/* (owner << 32 | dev, ino): files hooked */
	struct mt_pairmap *born;	/* --: new processes: 1 hooked, 2 stopped, 3 running */
	int cgroup_fd;
	struct mt_child child;
	bool have_child;
	bool tree;		/* --: one link per file for the whole process tree */
	double tree_close_at;	/* when to close the per-process links; 0: done */
	struct mt_paths pid_hooked;	/* --: files hooked per process, for the switch */
	struct stat preload_st;	/* --preload: the library, known by dev and inode */
	char preload_path[4096];
	FILE *out;
	int sigfd;
	double start_s;
	int stop_signal;	/* signal that ended tracing, 0 if none */
	/* exited processes' stack totals, out of the BPF map (retire_exited) */
	struct mt_stat_entry *retired;
	size_t nretired;
	struct mt_alloc_entry *retired_blocks;	/* their live blocks: a sum per stack */
	size_t nretired_blocks;
	bool retire_pending;
	double next_retire;
	double next_purge;	/* queued exec purges run then (run_purges) */
};

static void error(const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && verbose < 1)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Root, or the capabilities BPF tracing of other processes needs. */
static bool privileged(void)
{
	static const int need[] = { CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE };
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (geteuid() == 0)
		return true;
	if (syscall(SYS_capget, &h, d))
		return false;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!(d[need[i] / 32].effective & (1u << (need[i] % 32))))
			return false;
	return true;
}

static int check_environment(void)
{
	const char *btf = getenv("MEMTRACE_SYSFS_BTF");

	if (!privileged()) {
		error("memtrace needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE "
		      "(try: sudo memtrace ...)");
		return MT_EXIT_RUNTIME;
	}
	if (!btf)
		btf = "/sys/kernel/btf/vmlinux";
	if (access(btf, R_OK)) {
		error("kernel has no BTF (%s missing): memtrace needs a kernel built "
		      "with CONFIG_DEBUG_INFO_BTF=y", btf);
		return MT_EXIT_RUNTIME;
	}
	return 0;
}

static void dedup_pids(struct mt_opts *o)
{
	int n = 0;

	for (int i = 0; i < o->npids; i++) {
		bool seen = false;

		for (int j = 0; j < n; j++)
			seen |= o->pids[j] == o->pids[i];
		if (!seen)
			o->pids[n++] = o->pids[i];
	}
	o->npids = n;
}

static int check_targets(struct app *a, char *cmd_path, size_t len)
{
	for (int i = 0; i < a->o.npids; i++) {
		int err = mt_target__check_pid(a->o.pids[i]);

		if (err == -ESRCH) {
			error("no process with PID %d", a->o.pids[i]);
			return MT_EXIT_USAGE;
		}
		if (err) {
			error("cannot read /proc/%d/maps: %s", a->o.pids[i], strerror(-err));
			return MT_EXIT_RUNTIME;
		}
		/* a thread ID means its whole process */
		err = mt_target__tgid(a->o.pids[i]);
		if (err > 0 && err != a->o.pids[i]) {
			if (verbose)
				fprintf(stderr, "memtrace: %d is a thread of process %d: tracing %d\n",
					a->o.pids[i], err, err);
			a->o.pids[i] = err;
		}
	}
	dedup_pids(&a->o);
	if (a->o.cmd) {
		int err = mt_target__resolve_cmd(a->o.cmd[0], cmd_path, len);

		if (err == -ENOENT) {
			error("command not found: %s", a->o.cmd[0]);
			return MT_EXIT_USAGE;
		}
		if (err) {
			error("cannot execute %s: %s", a->o.cmd[0], strerror(-err));
			return MT_EXIT_USAGE;
		}
	}
	return 0;
}

/* One line per hooked object, always; the offsets and sites with -v. */
static void print_probes(pid_t pid, bool tree, const char *lib, const struct mt_probe_info *info,
			 int n)
{
	char shown[4096];
	ssize_t len;

	/* /proc/PID/map_files/...: say which file that is */
	if (strstr(lib, "/map_files/") && (len = readlink(lib, shown, sizeof(shown) - 1)) > 0) {
		shown[len] = 0;
		lib = shown;
	}
	if (tree)
		fprintf(stderr, "memtrace: the command's processes: hooked");
	else if (pid < 0)
		fprintf(stderr, "memtrace: all processes: hooked");
	else
		fprintf(stderr, "memtrace: PID %d: hooked", pid);
	for (int i = 0; i < n; i++)
		if (!info[i].alias_of)
			fprintf(stderr, "%s %s", i ? "," : "", info[i].name);
	fprintf(stderr, " in %s\n", lib);
	for (int i = 0; verbose && i < n; i++) {
		fprintf(stderr, "memtrace:   %-15s +0x%llx", info[i].name,
			(unsigned long long)info[i].offset);
		if (info[i].alias_of)
			fprintf(stderr, " (alias of %s, probed once)", info[i].alias_of);
		else
			fprintf(stderr, " probe at +%llu, %s: %s",
				(unsigned long long)info[i].site.delta,
				mt_site_why__str(info[i].site.why), info[i].site.first_insn);
		fputc('\n', stderr);
	}
}

/*
 * Hook whatever allocator functions a file defines: malloc and friends
 * (glibc, jemalloc, tcmalloc, mimalloc, a static program's own), operator
 * new (libstdc++, tcmalloc, jemalloc). Returns how many kinds were hooked
 * (0: none here), or -exit code.
 */
static int attach_object(struct app *a, pid_t pid, const char *path)
{
	static const enum mt_lib kinds[] = { MT_LIB_C, MT_LIB_CXX, MT_LIB_CUSTOM, MT_LIB_MMAP,
					     MT_LIB_PRELOAD };
	int hooked = 0;
	struct stat st;
	uint64_t owner;
	bool preload;
	long seen;

	if (stat(path, &st))
		return 0; /* gone meanwhile */
	/* the preload library: only its sites (its malloc is a wrapper) */
	preload = a->o.preload && st.st_dev == a->preload_st.st_dev &&
		  st.st_ino == a->preload_st.st_ino;
	/* each file once per process (once for all, with -a or a process
	 * tree): probes twice on one function would count every call twice.
	 * The preload library's sites record at once, with no entry state
	 * that would merge two links' sightings of one call (as when the
	 * tree's links take over): one set of links for the tree from the
	 * start (only the command's processes preload it). */
	if (a->tree || preload)
		pid = -1;
	owner = (uint64_t)(uint32_t)(pid < 0 ? 0 : pid) << 32 | (uint32_t)st.st_dev;
	seen = mt_pairmap__get(a->hooked, owner, st.st_ino);
	if (seen >= 0)
		return (int)seen;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct mt_probe_info info[MT_MAX_LIB_PROBES];
		int n, err;

		if ((kinds[k] == MT_LIB_CUSTOM && !a->o.ncustom) ||
		    (kinds[k] == MT_LIB_MMAP && !a->o.mmap) ||
		    (kinds[k] == MT_LIB_PRELOAD) != preload)
			continue;
		err = mt_tracer__attach(a->tracer, pid, path, kinds[k], info, &n);

		if (err == -ENOENT && preload) {
			error("--preload: %s has no probe sites (from another memtrace version?)",
			      path);
			mt_pairmap__put(a->hooked, owner, st.st_ino, 0);
			return -MT_EXIT_RUNTIME;
		}
		if (err == -ENOENT || err == -ENOEXEC)
			continue; /* not an allocator, or not ELF */
		if (err) {
			if (a->tree)
				error("attaching uprobes to %s for the command's processes "
				      "failed: %s", path, strerror(-err));
			else
				error("attaching uprobes to %s for PID %d failed: %s", path, pid,
				      strerror(-err));
			mt_pairmap__put(a->hooked, owner, st.st_ino, 0); /* said once */
			return -MT_EXIT_RUNTIME;
		}
		if (!n)
			continue; /* --preload: all of it wrapped */
		print_probes(pid, a->tree || preload, path, info, n);
		hooked++;
		for (int i = 0; kinds[k] == MT_LIB_CUSTOM && i < n; i++)
			for (int c = 0; c < a->o.ncustom; c++)
				if (!strcmp(info[i].name, a->o.custom[c].name))
					a->custom_found[c] = true;
	}
	if (mt_pairmap__put(a->hooked, owner, st.st_ino, hooked))
		return -MT_EXIT_RUNTIME;
	if (hooked && pid >= 0 && a->have_child)
		mt_paths__add(&a->pid_hooked, path); /* for maybe_tree */
	return hooked;
}

/* Hook every allocator among files; an error if there is none. */
static int attach_files(struct app *a, pid_t pid, const struct mt_paths *files,
			const char *what)
{
	int found = 0;

	for (size_t i = 0; i < files->n; i++) {
		int r = attach_object(a, pid, files->v[i]);

		if (r < 0)
			return -r;
		found += r;
	}
	if (!found) {
		error("no allocator found in %s or its libraries (no malloc/free symbols: "
		      "a stripped static program?)", what);
		return MT_EXIT_RUNTIME;
	}
	for (int c = 0; c < a->o.ncustom; c++) {
		if (!a->custom_found[c]) {
			error("--%s %s: no function of that name in %s or its libraries",
			      a->o.custom[c].is_free ? "free-fn" : "alloc-fn", a->o.custom[c].name,
			      what);
			return MT_EXIT_USAGE;
		}
	}
	return 0;
}

static struct target *find_target(struct app *a, pid_t pid)
{
	long i = mt_pairmap__get(a->by_pid, (uint64_t)pid, 0);

	return i < 0 ? NULL : &a->targets[i];
}

static struct target *add_target(struct app *a, pid_t pid)
{
	struct target *t;

	if (mt_grow((void **)&a->targets, &a->cap, a->ntargets + 1, sizeof(*a->targets)) ||
	    mt_pairmap__put(a->by_pid, (uint64_t)pid, 0, a->ntargets)) {
		error("out of memory");
		exit(MT_EXIT_RUNTIME);
	}
	t = &a->targets[a->ntargets++];
	memset(t, 0, sizeof(*t));
	t->info.pid = pid;
	t->pidfd = -1;
	if (!a->o.all)
		mt_tracer__add_target(a->tracer, pid); /* -a: chosen in BPF */
	return t;
}

/* Re-read what a live target maps, so its stacks resolve after it exits. */
static void refresh(struct app *a, struct target *t)
{
	if (t->info.exited)
		return;
	mt_symbolizer__add_process(a->sym, t->info.pid);
	mt_target__proc_info(t->info.pid, &t->info);
	if (a->unwind)
		mt_unwind__add_process(a->unwind, t->info.pid); /* dlopen, exec */
}

static int attach_pids(struct app *a)
{
	for (int i = 0; i < a->o.npids; i++) {
		pid_t pid = a->o.pids[i];
		struct target *t = add_target(a, pid);
		struct mt_paths files;
		char what[64];
		int err = mt_target__mapped_files(pid, &files);

		if (err) {
			error("cannot read the mappings of PID %d: %s", pid, strerror(-err));
			return MT_EXIT_RUNTIME;
		}
		snprintf(what, sizeof(what), "PID %d", pid);
		err = attach_files(a, pid, &files, what);
		mt_paths__clear(&files);
		if (err)
			return err;
		if (a->unwind && (err = mt_unwind__add_process(a->unwind, pid)) && err != -ENOENT &&
		    err != -ESRCH) {
			error("cannot load the unwind tables of PID %d: %s", pid, strerror(-err));
			return MT_EXIT_RUNTIME;
		}
		t->pidfd = mt_target__pidfd(pid);
		refresh(a, t);
		if (t->pidfd == -ESRCH)
			t->info.exited = true; /* gone already */
		else if (t->pidfd < 0) {
			error("pidfd_open(%d) failed: %s", pid, strerror(-t->pidfd));
			return MT_EXIT_RUNTIME;
		}
	}
	return 0;
}

/* Does a process pass --comm (userspace side of the BPF filter)? */
static bool comm_selected(struct app *a, const struct mt_proc *p)
{
	if (!a->o.ncomms)
		return true;
	for (int i = 0; i < a->o.ncomms; i++)
		if (!strcmp(p->comm, a->o.comms[i]))
			return true;
	return false;
}

/*
 * -a: every process now running (memtrace excepted): hook the allocator
 * files they map (once each, for all processes: files mapped by later
 * processes are hooked already), build their unwind tables, and note them
 * as targets. Run again at every refresh for processes started since, and
 * to notice the ones gone.
 */
static int scan_all(struct app *a, bool first)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		struct mt_paths files;
		struct target *t;

		if (*end || pid <= 0 || pid == getpid())
			continue;
		t = find_target(a, (pid_t)pid);
		if (t && !t->info.exited)
			continue;
		if (mt_target__mapped_files((pid_t)pid, &files))
			continue; /* a kernel thread (no maps), or gone */
		if (!files.n) {
			mt_paths__clear(&files);
			continue;
		}
		for (size_t i = 0; i < files.n; i++) {
			int r = attach_object(a, -1, files.v[i]);

			if (r > 0)
				found += r; /* a failure was said, and is not retried */
		}
		mt_paths__clear(&files);
		if (!t || t->info.exited) {
			/* a reused PID starts a new target; the old one keeps its
			 * numbers under its index */
			if (t)
				mt_pairmap__put(a->by_pid, (uint64_t)pid, 0, -1);
			t = add_target(a, (pid_t)pid);
			mt_target__proc_info(t->info.pid, &t->info);
			if (!comm_selected(a, &t->info))
				continue;
			mt_symbolizer__add_process(a->sym, t->info.pid);
			if (a->unwind)
				mt_unwind__add_process(a->unwind, t->info.pid);
		}
	}
	closedir(d);
	(void)first;
	return found;
}

static int attach_all(struct app *a)
{
	int r = scan_all(a, true);

	if (r < 0)
		return -r;
	if (!r) {
		error("no allocator found in any process");
		return MT_EXIT_RUNTIME;
	}
	return 0;
}

/*
 * --preload: libmemtrace-preload.so beside memtrace (the build tree), or
 * in ../lib/memtrace (make install). 0, or an exit code.
 */
static int find_preload(struct app *a, char *path, size_t len)
{
	static const char *const rel[] = { "libmemtrace-preload.so",
					   "../lib/memtrace/libmemtrace-preload.so" };
	char self[4096], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0 || !(slash = memrchr(self, '/', n))) {
		error("--preload: cannot tell where memtrace is: %s", strerror(errno));
		return MT_EXIT_RUNTIME;
	}
	*slash = 0;
	if (strpbrk(self, ": ")) {
		/* LD_PRELOAD splits at both */
		error("--preload: memtrace's directory %s has a ':' or a space in it: the "
		      "library cannot be preloaded from there", self);
		return MT_EXIT_RUNTIME;
	}
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if (snprintf(path, len, "%.3000s/%s", self, rel[i]) >= (int)len)
			continue;
		if (!stat(path, &a->preload_st))
			return 0;
	}
	error("--preload: no libmemtrace-preload.so in %s or %s/../lib/memtrace", self, self);
	return MT_EXIT_RUNTIME;
}

/* --batch: what the library is told (MEMTRACE_BATCH, MEMTRACE_BATCH_DEPTH).
 * 0, or an exit code. */
static int setup_batch(struct app *a, const char *cmd_path)
{
	char v[32];
	void *h;

	if (!a->o.batch) {
		unsetenv("MEMTRACE_BATCH");
		return 0;
	}
	/* its own free would see the blocks of its own operator new, whose
	 * probes record at once, while the library's events come later */
	if (mt_elf__defines(cmd_path, "free")) {
		error("--batch: %s defines free itself (run with --preload alone)", cmd_path);
		return MT_EXIT_USAGE;
	}
	/* the library walks stacks with it: say now if it is missing */
	h = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_LOCAL);
	if (!h) {
		error("--batch needs libunwind.so.8 (Debian: libunwind8), which does not load: "
		      "%s", dlerror());
		return MT_EXIT_RUNTIME;
	}
	dlclose(h);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)a->o.batch);
	if (setenv("MEMTRACE_BATCH", v, 1))
		goto oom;
	snprintf(v, sizeof(v), "%u", a->o.max_depth);
	if (setenv("MEMTRACE_BATCH_DEPTH", v, 1))
		goto oom;
	return 0;
oom:
	error("out of memory");
	return MT_EXIT_RUNTIME;
}

/* --preload: COMMAND's LD_PRELOAD gets the library first. 0, or an exit code. */
static int setup_preload(struct app *a, const char *cmd_path)
{
	const char *old = getenv("LD_PRELOAD");
	char *lib = a->preload_path, interp[512], *v;
	int dyn = mt_elf__interp(cmd_path, interp, sizeof(interp)), rc;

	if (dyn == 0) {
		error("--preload: %s is statically linked: no library can be preloaded into it "
		      "(run without --preload)", cmd_path);
		return MT_EXIT_USAGE;
	}
	if (dyn > 0 && strstr(interp, "musl")) {
		/* musl's aligned_alloc and posix_memalign fail once any other
		 * library defines malloc */
		error("--preload: %s runs on musl, whose allocator cannot be wrapped (run "
		      "without --preload)", cmd_path);
		return MT_EXIT_USAGE;
	}
	if (mt_elf__defines(cmd_path, "malloc")) {
		error("--preload: %s defines malloc itself, which comes before any wrapper "
		      "(run without --preload)", cmd_path);
		return MT_EXIT_USAGE;
	}
	if ((rc = find_preload(a, lib, sizeof(a->preload_path))))
		return rc;
	if (asprintf(&v, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0 ||
	    setenv("LD_PRELOAD", v, 1)) {
		error("out of memory");
		return MT_EXIT_RUNTIME;
	}
	free(v);
	if ((rc = setup_batch(a, cmd_path)))
		return rc;
	/* --sample-bytes: the library samples, at the same rate */
	if (a->o.sample_bytes) {
		char rate[32];

		snprintf(rate, sizeof(rate), "%llu", (unsigned long long)a->o.sample_bytes);
		if (setenv("MEMTRACE_SAMPLE_BYTES", rate, 1)) {
			error("out of memory");
			return MT_EXIT_RUNTIME;
		}
	} else {
		unsetenv("MEMTRACE_SAMPLE_BYTES");
	}
	return 0;
}

static int start_command(struct app *a, const char *path)
{
	struct mt_paths files;
	struct target *t;
	int err;

	if (a->o.preload && (err = setup_preload(a, path)))
		return err;

	/* what the command will map, found as the dynamic loader will */
	err = mt_target__dependencies(path, &files);
	if (err) {
		error("cannot read %s: %s", path, strerror(-err));
		return MT_EXIT_RUNTIME;
	}
	err = mt_target__spawn(a->o.cmd, path, &a->child);
	if (err) {
		mt_paths__clear(&files);
		error("cannot start %s: %s", a->o.cmd[0], strerror(-err));
		return MT_EXIT_RUNTIME;
	}
	a->have_child = true;
	t = add_target(a, a->child.pid);
	snprintf(t->info.exe, sizeof(t->info.exe), "%s", path);
	snprintf(t->info.comm, sizeof(t->info.comm), "%.15s",
		 strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	err = attach_files(a, a->child.pid, &files, path);
	/* tables now: the command's first allocation comes before any refresh */
	for (size_t i = 0; !err && a->unwind && i < files.n; i++) {
		int e = mt_unwind__add_file(a->unwind, a->child.pid, files.v[i]);

		if (e) {
			error("cannot load the unwind table of %s: %s", files.v[i], strerror(-e));
			err = MT_EXIT_RUNTIME;
		}
	}
	if (!err && a->unwind && (err = mt_unwind__flush(a->unwind))) {
		error("cannot load the unwind tables: %s", strerror(-err));
		err = MT_EXIT_RUNTIME;
	}
	mt_paths__clear(&files);
	if (err) {
		kill(a->child.pid, SIGKILL);
		mt_target__reap(&a->child);
		a->have_child = false;
		return err;
	}
	err = mt_target__release(&a->child);
	if (err) {
		error("cannot execute %s: %s", a->o.cmd[0], strerror(-err));
		a->have_child = false;
		return MT_EXIT_USAGE;
	}
	return 0;
}

/* Kernel frames from kallsyms, the allocator's own frames dropped. */
static void symbolize_kernel(struct app *a, struct mt_entry *e, const struct mt_stack *st)
{
	size_t n = 0;
	__u32 first = 0, depth = st->depth < MT_MAX_DEPTH ? st->depth : MT_MAX_DEPTH;
	bool lead = true;

	e->frames = calloc(depth + 1, sizeof(*e->frames));
	if (!e->frames)
		return;
	/* the stack starts in memtrace's program: skip to the tracepoint */
	for (__u32 i = 0; a->ksyms && i < depth; i++) {
		const struct mt_ksym *k = mt_ksyms__find(a->ksyms, st->ips[i]);

		if (k && !strncmp(k->name, "bpf_trace_run", 13))
			first = i + 1;
	}
	for (__u32 i = first; i < depth; i++) {
		const struct mt_ksym *k = a->ksyms ? mt_ksyms__find(a->ksyms, st->ips[i]) : NULL;
		struct mt_frame *f = &e->frames[n];

		if (lead && k && mt_ksym__is_allocator(k->name) && i + 1 < depth)
			continue;
		lead = false;
		*f = (struct mt_frame){ .addr = st->ips[i] };
		if (k) {
			f->symbol = f->raw_symbol = k->name;
			f->offset = st->ips[i] - k->addr;
			f->module = k->module;
		}
		n++;
	}
	e->nframes = n;
}

static void symbolize_entry(struct app *a, struct mt_entry *e)
{
	struct mt_frame buf[MAX_INLINE_PER_ADDR];
	struct mt_stack *st;
	size_t n = 0, cap = 0, skip;

	if (e->frames || !e->stack_id)
		return;
	st = malloc(sizeof(*st));
	if (!st || mt_tracer__stack(a->tracer, e->stack_id, st)) {
		free(st);
		return;
	}
	e->truncated = st->flags & MT_STACK_F_TRUNCATED;
	if (e->kernel) {
		symbolize_kernel(a, e, st);
		free(st);
		return;
	}
	for (__u32 i = 0; i < st->depth && i < MT_MAX_DEPTH; i++) {
		uint64_t ip = st->ips[i], ino;
		uint32_t dev;
		size_t k;

		if ((ip & MT_FRAME_FILE) && a->unwind &&
		    !mt_unwind__file(a->unwind, (ip >> MT_FRAME_ID_SHIFT) & MT_FRAME_ID_MASK, &dev,
				     &ino))
			k = mt_symbolizer__lookup_file(a->sym, dev, ino, ip & MT_FRAME_OFF_MASK, buf,
						       MAX_INLINE_PER_ADDR);
		else
			k = mt_symbolizer__lookup(a->sym, e->pid, ip, buf, MAX_INLINE_PER_ADDR);

		if (n + k > cap) {
			struct mt_frame *nf;

			cap = (n + k) * 2;
			nf = realloc(e->frames, cap * sizeof(*nf));
			if (!nf)
				break;
			e->frames = nf;
		}
		memcpy(e->frames + n, buf, k * sizeof(*buf));
		n += k;
	}
	free(st);
	skip = mt_frames__skip_allocator(e->frames, n);
	memmove(e->frames, e->frames + skip, (n - skip) * sizeof(*e->frames));
	e->nframes = n - skip;
}

static void self_usage(struct mt_self *s)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return;
	s->cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	s->max_rss_kib = ru.ru_maxrss;
}

/* The processes a report lists: the targets; with -a, those with numbers. */
static size_t report_procs(struct app *a, const struct mt_snapshot *snap)
{
	struct mt_pairmap *seen = a->o.all ? mt_pairmap__new(64) : NULL;
	size_t n = 0;

	free(a->procs);
	a->procs = calloc(a->ntargets + 1, sizeof(*a->procs));
	if (!a->procs)
		return 0;
	for (size_t i = 0; seen && i < snap->nstats; i++) {
		/* (tgid, 0) -> its one start, or -2 if it has had several */
		long g = mt_pairmap__get(seen, snap->stats[i].k.tgid, 0);

		mt_pairmap__put(seen, snap->stats[i].k.tgid, 0,
				g < 0 || g == (long)snap->stats[i].k.gen ? (long)snap->stats[i].k.gen : -2);
	}
	for (int i = 0; seen && i < a->ntargets; i++) {
		struct target *t = &a->targets[i];
		long g = mt_pairmap__get(seen, (uint64_t)t->info.pid, 0);

		/* a process found by a scan: its start, from its numbers */
		if (!t->info.gen && g > 0 && mt_pairmap__get(a->by_pid, (uint64_t)t->info.pid, 0) == i)
			t->info.gen = (uint32_t)g;
	}
	for (int i = 0; i < a->ntargets; i++) {
		if (seen && mt_pairmap__get(seen, (uint64_t)a->targets[i].info.pid, 0) == -1)
			continue;
		if (seen && mt_pairmap__get(a->by_pid, (uint64_t)a->targets[i].info.pid, 0) != i)
			continue; /* an earlier process with a reused PID */
		a->procs[n++] = a->targets[i].info;
	}
	mt_pairmap__free(seen);
	return n;
}

static void on_purged(void *ctx, pid_t tgid, uint32_t gen, uint32_t how, uint64_t purged)
{
	(void)ctx;
	(void)gen;
	if (verbose && !how)
		fprintf(stderr, "memtrace: PID %d exec'd: %llu blocks of its old image "
			"released\n", tgid, (unsigned long long)purged);
}

/*
 * The exec purges queued: each is a pass over every bucket of the blocks'
 * map, however few it holds (2-5 ms at the default size), which one per
 * exec made memtrace fall behind from about 200 execs a second (-a on a
 * busy machine, or a command that runs many others). At most every
 * PURGE_MS, and at most 1/PURGE_SHARE of the time (a pass of 5 ms: every
 * 250 ms): a block of an old image waits that long (a new image's block
 * at its address retires it meanwhile). Always before a report (now).
 */
#define PURGE_MS 100
#define PURGE_SHARE 50

static int run_purges(struct app *a, bool now)
{
	double t0 = now_s();
	int err;

	if (!mt_tracer__purge_pending(a->tracer) || (!now && t0 < a->next_purge))
		return 0;
	err = mt_tracer__purge_run(a->tracer, on_purged, a);
	if (err)
		fprintf(stderr, "memtrace: warning: releasing the blocks of exec'd processes' "
			"old images failed: %s\n", strerror(-err));
	t0 = (now_s() - t0) * PURGE_SHARE;
	a->next_purge = now_s() + (t0 > PURGE_MS / 1000.0 ? t0 : PURGE_MS / 1000.0);
	return err;
}

static int report(struct app *a, bool final)
{
	struct mt_render_opts ro = { .min_age_s = a->o.min_age_s };
	struct mt_report_opts o = {
		.sample_bytes = a->o.sample_bytes,
		.top = a->o.top,
		.min_age_ns = (uint64_t)(a->o.min_age_s * 1e9),
		.duration_s = now_s() - a->start_s,
		.final = final,
	};
	struct mt_snapshot snap;
	struct mt_report r;
	uint64_t reused, table_full, table_moved;
	size_t nprocs;
	int err;

	run_purges(a, true); /* no old image's block counts as outstanding */
	err = mt_tracer__snapshot(a->tracer, &snap);
	if (!err && ((err = mt_snapshot__add_stats(&snap, a->retired, a->nretired)) ||
		     (err = mt_snapshot__add_allocs(&snap, a->retired_blocks, a->nretired_blocks))))
		mt_snapshot__clear(&snap);
	if (err) {
		error("reading the BPF maps failed: %s", strerror(-err));
		return err;
	}
	nprocs = report_procs(a, &snap);
	reused = snap.counters[MT_CNT_WALK_REUSED];
	table_full = snap.counters[MT_CNT_TABLE_FULL];
	table_moved = snap.counters[MT_CNT_TABLE_MOVED];
	err = mt_report__build(&snap, a->procs, nprocs, &o, &r);
	mt_snapshot__clear(&snap);
	if (err) {
		error("building the report failed: %s", strerror(-err));
		return err;
	}
	self_usage(&r.self);
	if (a->o.bpf_stats && !mt_tracer__bpf_measuring(a->tracer)) {
		r.self.bpf_measured = true;
		mt_tracer__bpf_time(a->tracer, &r.self.bpf_runs, &r.self.bpf_ns);
	}
	if (a->o.kernel)
		r.totals.kernel_recursion = mt_tracer__kernel_recursion(a->tracer);
	for (size_t i = 0; i < r.ntop; i++)
		symbolize_entry(a, &r.entries[r.top[i]]);
	for (size_t i = 0; i < r.nleaks; i++)
		symbolize_entry(a, &r.entries[r.leaks[i]]);
	if (a->o.format == MT_FMT_JSON)
		mt_render__json(&r, &ro, a->out);
	else
		mt_render__text(&r, &ro, a->out);
	fflush(a->out);
	if (final && verbose && a->unwind)
		fprintf(stderr, "memtrace: %llu user stacks were a remembered walk's, "
				"checked word by word\n", (unsigned long long)reused);
	if (final && verbose)
		fprintf(stderr, "memtrace: %llu blocks found their set of the block table full "
				"(kept in the hash), %llu older ones moved there to make room\n",
			(unsigned long long)table_full, (unsigned long long)table_moved);
	mt_report__clear(&r);
	return 0;
}

static bool all_exited(struct app *a)
{
	if (a->o.all)
		return false; /* -a: until a signal or --duration */
	if (a->have_child)
		return a->child.exited; /* --: the command, whatever it left running */
	for (int i = 0; i < a->ntargets; i++)
		if (!a->targets[i].info.exited)
			return false;
	return true;
}

/* A target is gone: its final numbers stay, its unwind tables may go. */
static bool last_target(const struct app *a, const struct target *t)
{
	for (int i = 0; i < a->ntargets; i++)
		if (!a->targets[i].info.exited && &a->targets[i] != t)
			return false;
	return true;
}

static void target_gone(struct app *a, struct target *t)
{
	/* -a keeps every table: the next short-lived run of the same
	 * program finds it ready; the last target's go with memtrace (-a
	 * asks nothing of the others: thousands of processes come and go) */
	if (!t->info.exited && a->unwind && !a->o.all && !last_target(a, t))
		mt_unwind__drop_process(a->unwind, t->info.pid);
	t->info.exited = true;
	/* -a -i forgets it after the report that shows its exit instead */
	a->retire_pending |= !(a->o.all && a->o.interval_s);
}

/*
 * Move exited processes' stack totals out of the BPF map, which
 * a long process tree (a test suite) would otherwise fill with the
 * totals of processes long gone. At most every 100 ms: each move reads
 * the whole map.
 */
#define RETIRE_MS 100

static void retire_exited(struct app *a)
{
	struct mt_pid_gen *ids;
	size_t n = 0;
	int err;

	if (!a->retire_pending || now_s() < a->next_retire)
		return;
	ids = calloc(a->ntargets + 1, sizeof(*ids));
	if (!ids)
		return;
	for (int i = 0; i < a->ntargets; i++) {
		struct target *t = &a->targets[i];
		struct target *now = find_target(a, t->info.pid);

		if (!t->info.exited || t->retired)
			continue;
		/* start unknown: the PID names it only while no live process
		 * has it again (its totals then stay in the map) */
		if (!t->info.gen && now && now != t && !now->info.exited)
			continue;
		ids[n++] = (struct mt_pid_gen){ t->info.pid, t->info.gen };
	}
	/* an exec's old image's blocks are its frees, not the exit's leaks */
	run_purges(a, true);
	/* none to move (a reused PID's): no need to read the map */
	err = n ? mt_tracer__retire(a->tracer, ids, n, &a->retired, &a->nretired,
				    &a->retired_blocks, &a->nretired_blocks) :
		  0;
	if (err)
		fprintf(stderr, "memtrace: warning: moving exited processes' totals out of BPF "
			"failed: %s\n", strerror(-err));
	for (int i = 0; !err && i < a->ntargets; i++)
		a->targets[i].retired |= a->targets[i].info.exited;
	a->retire_pending = err != 0;
	a->next_retire = now_s() + RETIRE_MS / 1000.0;
	free(ids);
}

/* Hook files for pid, quiet when there is nothing; with tables, also
 * their unwind tables (files not mapped yet: after an exec). */
static void hook_files(struct app *a, pid_t pid, const struct mt_paths *files, bool tables)
{
	for (size_t i = 0; i < files->n; i++)
		attach_object(a, pid, files->v[i]);
	if (a->unwind && tables) {
		for (size_t i = 0; i < files->n; i++)
			mt_unwind__add_file(a->unwind, pid, files->v[i]);
		mt_unwind__flush(a->unwind);
	}
}

/*
 * --: once the command has started MT_TREE_AFTER processes, its tree gets
 * one set of links per file for all of them, the BPF program keeping the
 * tree's processes: links per process would make every call in every
 * process run one handler per link (measured: 300 short-lived children
 * took a malloc/free pair from 2.0 to 13.2 µs), and each new process pay
 * for new links. The cost moves to other processes that map the same
 * files: their calls trap and return at once.
 */
#define MT_TREE_AFTER 4

static void maybe_tree(struct app *a)
{
	bool failed = false;

	if (a->tree || a->o.all || !a->have_child || a->ntargets < MT_TREE_AFTER ||
	    !mt_tracer__can_tree(a->tracer))
		return;
	mt_tracer__tree_begin(a->tracer);
	a->tree = true;
	/* every file hooked for some process so far: what the live ones map,
	 * and the paths files were hooked by (an exec'd program's libraries
	 * may not be mapped yet); attach_object takes each file once */
	for (int i = 0; i < a->ntargets; i++) {
		struct mt_paths files;

		if (a->targets[i].info.exited ||
		    mt_target__mapped_files(a->targets[i].info.pid, &files))
			continue;
		for (size_t j = 0; j < files.n; j++)
			failed |= attach_object(a, -1, files.v[j]) < 0;
		mt_paths__clear(&files);
	}
	for (size_t j = 0; j < a->pid_hooked.n; j++)
		failed |= attach_object(a, -1, a->pid_hooked.v[j]) < 0;
	if (failed) {
		/* both kinds of links stay: they see each call once together */
		fprintf(stderr, "memtrace: warning: keeping the per-process probe links\n");
		return;
	}
	a->tree_close_at = now_s() + 1.0;
	if (verbose)
		fprintf(stderr, "memtrace: %d processes: one set of probe links for all of them "
				"now\n",
			a->ntargets);
}

/* The tree's links took over a second ago: calls that entered by the
 * per-process links have returned. */
static void tree_close(struct app *a)
{
	int closed;

	if (!a->tree_close_at || now_s() < a->tree_close_at)
		return;
	a->tree_close_at = 0;
	closed = mt_tracer__tree_end(a->tracer);
	if (verbose)
		fprintf(stderr, "memtrace: %d per-process probe links closed\n", closed);
}

/* --preload: the child's copies of the sites its parent hit would call a
 * page it does not have (mt_target__rearm_sites) */
static void rearm_sites(struct app *a, pid_t child)
{
	const uint64_t *offs;
	size_t n = mt_tracer__preload_sites(a->tracer, &offs);
	int r = n ? mt_target__rearm_sites(child, a->preload_path, offs, n) : 0;

	if (r < 0 && r != -ENOENT && r != -ESRCH)
		fprintf(stderr, "memtrace: warning: PID %d: restoring its copies of the "
			"preload library's probe sites failed (%s): it may crash at its next "
			"allocation\n", child, strerror(-r));
	else if (r > 0 && verbose)
		fprintf(stderr, "memtrace: PID %d: %d of its copies of the probe sites "
			"re-armed after fork\n", child, r);
}

/* --: the command forked: hook the child (it maps what its parent does)
 * before it runs; it stays stopped until then. */
static void follow_fork(struct app *a, pid_t parent, pid_t child)
{
	struct target *t = find_target(a, child), *p;
	struct mt_paths files;
	long born = mt_pairmap__get(a->born, (uint64_t)child, 0);

	if (a->o.preload)
		rearm_sites(a, child);

	if (t && t->info.exited) {
		/* a PID of the tree used again: another process */
		mt_pairmap__put(a->by_pid, (uint64_t)child, 0, -1);
		t = NULL;
	}
	if (!t) {
		t = add_target(a, child);
		p = find_target(a, parent);
		if (p)
			t->info = p->info;
		t->info.pid = child;
		t->info.gen = 0; /* its own start: unknown here, matched by pid */
		t->info.exited = false;
		t->pidfd = -1;
	}
	maybe_tree(a);
	if (!mt_target__mapped_files(child, &files)) {
		hook_files(a, child, &files, false);
		mt_paths__clear(&files);
	}
	refresh(a, t); /* names, symbols, unwind tables of what it maps */
	if (born == 2)
		mt_target__cont(child); /* its first stop came first */
	mt_pairmap__put(a->born, (uint64_t)child, 0, born == 2 ? 3 : 1);
}

/*
 * A new process's first stop, or a stop of a running one: a group stop
 * (stopsig SIGSTOP, SIGTSTP, ...), or, once listening in one, the news of
 * a signal: the group stop's signal while it holds, SIGTRAP once SIGCONT
 * ended it.
 */
static void on_newborn(struct app *a, pid_t pid, int stopsig)
{
	long born = mt_pairmap__get(a->born, (uint64_t)pid, 0);

	if (born == 1) {
		mt_pairmap__put(a->born, (uint64_t)pid, 0, 3); /* hooked: run */
		mt_target__cont(pid);
	} else if (born < 0 && pid != a->child.pid) {
		mt_pairmap__put(a->born, (uint64_t)pid, 0, 2); /* before its fork event */
	} else if (stopsig == SIGTRAP) {
		mt_target__cont(pid); /* continued: run on (and take its signals) */
	} else {
		mt_target__listen(pid); /* a group stop: stay stopped, as without us */
	}
}

/* --preload: does pid's environment (as exec gave it) preload the library? */
static bool preloaded(struct app *a, pid_t pid)
{
	char path[64], buf[65536];
	size_t len = strlen(a->preload_path), got = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* cannot tell: say nothing */
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	for (char *e = buf; e < buf + got; e += strlen(e) + 1) {
		if (strncmp(e, "LD_PRELOAD=", 11))
			continue;
		/* split as the loader does (mt_target__dependencies too) */
		for (const char *p = e + 11; *p;) {
			size_t n = strcspn(p, ": ");

			if (n == len && !strncmp(p, a->preload_path, len))
				return true;
			p += n + (p[n] != 0);
		}
	}
	return false;
}

/* --: a traced process exec'd: hook its new program and libraries (found
 * as the dynamic loader will) before it runs. */
static void follow_exec(struct app *a, pid_t pid)
{
	char exe[64];
	struct mt_paths files;
	struct target *t = find_target(a, pid);

	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	if (a->o.preload && mt_elf__is_dynamic(exe) == 1 && !preloaded(a, pid)) {
		char prog[4096];
		ssize_t n = readlink(exe, prog, sizeof(prog) - 1);

		prog[n > 0 ? n : 0] = 0;
		fprintf(stderr, "memtrace: warning: PID %d (%s) runs without "
			"libmemtrace-preload.so (its LD_PRELOAD was changed): its malloc, calloc, "
			"realloc, free and operator new are not seen\n", pid, prog);
	}
	if (!mt_target__dependencies(exe, &files)) {
		hook_files(a, pid, &files, true);
		mt_paths__clear(&files);
	}
	if (t)
		refresh(a, t);
}

static void on_child(struct app *a)
{
	struct mt_child_ev ev;

	while (a->have_child && mt_target__poll(&a->child, &ev)) {
		struct target *t = find_target(a, ev.pid);

		switch (ev.type) {
		case MT_CHILD_EXITING:
			if (t)
				refresh(a, t); /* last chance to read its mappings */
			mt_target__cont(ev.pid);
			break;
		case MT_CHILD_EXITED:
			/* reaped: its PID may be another process's soon */
			mt_tracer__remove_target(a->tracer, ev.pid);
			mt_pairmap__put(a->born, (uint64_t)ev.pid, 0, -1);
			if (t)
				target_gone(a, t);
			break;
		case MT_CHILD_FORKED:
			follow_fork(a, ev.pid, ev.newpid);
			mt_target__cont(ev.pid);
			break;
		case MT_CHILD_NEWBORN:
			on_newborn(a, ev.pid, ev.stopsig);
			break;
		case MT_CHILD_EXECED:
			follow_exec(a, ev.pid);
			mt_target__cont(ev.pid);
			break;
		default:
			break;
		}
	}
}

/* A signal to memtrace. Returns true when tracing should stop now. */
static bool on_signal(struct app *a, const struct signalfd_siginfo *si)
{
	if (si->ssi_signo == SIGCHLD) {
		on_child(a);
		return false;
	}
	/* with a command: pass a kill(1)'d signal on and wait for it to
	 * exit (a terminal's Ctrl-C reached it already); a second one stops */
	if (a->have_child && !a->child.exited && !a->stop_signal) {
		a->stop_signal = si->ssi_signo;
		if ((int)si->ssi_code == SI_USER || (int)si->ssi_code == SI_QUEUE)
			kill(a->child.pid, si->ssi_signo);
		return false;
	}
	a->stop_signal = si->ssi_signo;
	return true;
}

static int setup_signals(struct app *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	a->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return a->sigfd < 0 ? -errno : 0;
}

static int poll_timeout(struct app *a, double next_report, double end)
{
	double t = now_s(), until = t + REFRESH_MS / 1000.0;

	if (next_report && next_report < until)
		until = next_report;
	if (a->retire_pending && a->next_retire < until)
		until = a->next_retire;
	if (mt_tracer__purge_pending(a->tracer) && a->next_purge < until)
		until = a->next_purge;
	if (end && end < until)
		until = end;
	return until <= t ? 0 : (int)((until - t) * 1000) + 1;
}

/* -a: processes gone since the last scan, then new ones. */
static void refresh_all(struct app *a)
{
	for (int i = 0; i < a->ntargets; i++) {
		struct target *t = &a->targets[i];

		if (t->info.exited)
			continue;
		if (kill(t->info.pid, 0) && errno == ESRCH) {
			target_gone(a, t);
		} else if (comm_selected(a, &t->info)) {
			struct mt_paths files;

			/* libraries mapped since (after exec: all of them) */
			if (!mt_target__mapped_files(t->info.pid, &files)) {
				for (size_t k = 0; k < files.n; k++)
					attach_object(a, -1, files.v[k]);
				mt_paths__clear(&files);
			}
			refresh(a, t);
		}
	}
	if (scan_all(a, false) < 0)
		fprintf(stderr, "memtrace: warning: cannot scan /proc for new processes\n");
}

/* -a: a new process; it has its parent's name, program and mappings. */
static void on_fork(struct app *a, pid_t tgid, uint32_t gen, pid_t parent, const char *comm)
{
	struct target *t = find_target(a, tgid), *p;

	if (t && !t->info.exited) {
		if (!t->info.gen || t->info.gen == gen) {
			t->info.gen = gen; /* seen already (by a scan of /proc) */
			return;
		}
		target_gone(a, t); /* its PID is another process's now */
	}
	if (t)
		mt_pairmap__put(a->by_pid, (uint64_t)tgid, 0, -1);
	t = add_target(a, tgid);
	p = find_target(a, parent); /* after add_target: it may move the array */
	if (p)
		t->info = p->info;
	t->info.pid = tgid;
	t->info.gen = gen;
	t->info.exited = false;
	snprintf(t->info.comm, sizeof(t->info.comm), "%s", comm);
	mt_target__proc_info(tgid, &t->info);
	mt_symbolizer__add_process(a->sym, tgid);
}

/* A traced process exec'd: its old image's blocks are released (as
 * frees, run_purges), and what it maps now is read again. */
static void on_exec(void *ctx, pid_t tgid, uint32_t gen, uint32_t exec_id, const char *comm,
		    pid_t parent)
{
	struct app *a = ctx;
	struct target *t = find_target(a, tgid);
	int err;

	if (parent > 0) {
		on_fork(a, tgid, gen, parent, comm);
		return;
	}
	err = mt_tracer__purge_add(a->tracer, tgid, gen, exec_id, 0);
	if (err)
		fprintf(stderr, "memtrace: warning: PID %d exec'd; releasing its old blocks "
			"failed: %s\n", tgid, strerror(-err));

	if (a->o.all && (!t || t->info.exited)) {
		/* -a: a process seen first here, maybe short-lived: its name now,
		 * its files and mappings if it is still there */
		if (t)
			mt_pairmap__put(a->by_pid, (uint64_t)tgid, 0, -1);
		t = add_target(a, tgid);
	}
	if (t && !t->info.exited) {
		snprintf(t->info.comm, sizeof(t->info.comm), "%s", comm);
		t->info.gen = gen;
	}
	if (!t || t->info.exited)
		return;
	if (!a->have_child) {
		struct mt_paths files;

		/* the new image may map other allocators (-a: hooked for all) */
		if (!mt_target__mapped_files(tgid, &files)) {
			for (size_t i = 0; i < files.n; i++)
				attach_object(a, a->o.all ? -1 : tgid, files.v[i]);
			mt_paths__clear(&files);
		}
	}
	refresh(a, t);
}

/* -a: forget the targets dropped (memory stays bounded however many
 * short-lived processes come and go). */
static void compact_targets(struct app *a)
{
	struct mt_pairmap *by = mt_pairmap__new(a->ntargets + 1);
	int n = 0;

	if (!by)
		return;
	for (int i = 0; i < a->ntargets; i++) {
		struct target *t = &a->targets[i];

		if (t->dropped) {
			if (mt_pairmap__get(a->by_pid, (uint64_t)t->info.pid, 0) == i)
				mt_symbolizer__drop_process(a->sym, t->info.pid);
			continue;
		}
		a->targets[n] = *t;
		if (mt_pairmap__get(a->by_pid, (uint64_t)t->info.pid, 0) == i)
			mt_pairmap__put(by, (uint64_t)t->info.pid, 0, n);
		n++;
	}
	mt_pairmap__free(a->by_pid);
	a->by_pid = by;
	a->ntargets = n;
}

/* -a: a process that exited has had its final numbers in the report just
 * printed; its state goes, so memory stays bounded and a reused PID
 * starts clean. */
static void drop_reported(struct app *a)
{
	struct mt_pid_gen *ids = calloc(a->ntargets + 1, sizeof(*ids));
	size_t n = 0;
	int err;

	if (!ids)
		return;
	run_purges(a, true); /* the execs' first, said with -v */
	for (int i = 0; i < a->ntargets; i++) {
		struct target *t = &a->targets[i];

		if (!t->info.exited || t->dropped)
			continue;
		if (!t->info.gen)
			continue; /* which process it was is not known: keep it */
		ids[n++] = (struct mt_pid_gen){ t->info.pid, t->info.gen };
		t->dropped = true;
	}
	err = n ? mt_tracer__drop_processes(a->tracer, ids, n) : 0;
	if (err)
		fprintf(stderr, "memtrace: warning: forgetting %zu exited processes failed: %s\n",
			n, strerror(-err));
	free(ids);
	compact_targets(a);
}

static void serve_unwind(struct app *a)
{
	int err = mt_unwind__poll(a->unwind);

	if (err < 0)
		fprintf(stderr, "memtrace: warning: building an unwind table failed: %s; stacks "
			"through that file use frame pointers\n", strerror(-err));
}

/* Each file the unwinder meets, at attach or later (dlopen, exec): its
 * frames symbolize from this descriptor, whatever becomes of the process. */
static void on_unwind_table(void *ctx, pid_t pid, const struct mt_unwind_file *f, uint64_t rows,
			    int err)
{
	struct app *a = ctx;
	const char *file = f->path;

	mt_symbolizer__add_file(a->sym, f->dev, f->ino, file, fcntl(f->fd, F_DUPFD_CLOEXEC, 0));
	if (!verbose)
		return;
	if (err)
		fprintf(stderr, "memtrace: PID %d: no unwind table for %s: %s\n", pid, file,
			strerror(-err));
	else
		fprintf(stderr, "memtrace: PID %d: unwind table for %s: %llu rows%s\n", pid, file,
			(unsigned long long)rows, rows ? "" : " (no CFI: frame pointers)");
}

static int run(struct app *a)
{
	double next_report = a->o.interval_s ? a->start_s + a->o.interval_s : 0;
	double end = a->o.duration_s ? a->start_s + a->o.duration_s : 0;
	double next_refresh = now_s() + REFRESH_MS / 1000.0;

	on_child(a); /* the command may be gone already */
	while (!all_exited(a)) {
		struct pollfd *pfd = calloc(a->ntargets + 3, sizeof(*pfd));
		int n = 0;

		if (!pfd)
			return -ENOMEM;
		pfd[n++] = (struct pollfd){ .fd = a->sigfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = a->unwind ? mt_unwind__fd(a->unwind) : -1,
					    .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = mt_tracer__events_fd(a->tracer), .events = POLLIN };
		for (int i = 0; i < a->ntargets; i++)
			pfd[n++] = (struct pollfd){ .fd = a->targets[i].info.exited ? -1 :
							a->targets[i].pidfd, .events = POLLIN };
		if (poll(pfd, n, poll_timeout(a, next_report, end)) < 0 && errno != EINTR) {
			free(pfd);
			return -errno;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			bool stop = false;

			while (read(a->sigfd, &si, sizeof(si)) == sizeof(si))
				stop |= on_signal(a, &si);
			if (stop) {
				free(pfd);
				break;
			}
		}
		if (pfd[1].revents & POLLIN)
			serve_unwind(a);
		if (pfd[2].revents & POLLIN)
			mt_tracer__poll_events(a->tracer, on_exec, a);
		run_purges(a, false);
		for (int i = 3; i < n; i++)
			if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP)))
				target_gone(a, &a->targets[i - 3]);
		free(pfd);
		tree_close(a);
		retire_exited(a);
		if (now_s() >= next_refresh) {
			if (a->o.all)
				refresh_all(a);
			else
				for (int i = 0; i < a->ntargets; i++)
					refresh(a, &a->targets[i]);
			next_refresh = now_s() + REFRESH_MS / 1000.0;
		}
		if (end && now_s() >= end)
			break;
		if (next_report && now_s() >= next_report) {
			report(a, false);
			if (a->o.all)
				drop_reported(a);
			next_report += a->o.interval_s;
		}
	}
	if (verbose && a->nretired)
		fprintf(stderr, "memtrace: %zu stack totals of exited processes kept outside BPF\n",
			a->nretired);
	return report(a, true);
}

static void cleanup(struct app *a)
{
	for (int i = 0; i < a->ntargets; i++)
		if (a->targets[i].pidfd >= 0)
			close(a->targets[i].pidfd);
	mt_tracer__free(a->tracer);
	mt_symbolizer__free(a->sym);
	free(a->targets);
	free(a->procs);
	free(a->retired);
	free(a->retired_blocks);
	mt_pairmap__free(a->by_pid);
	mt_pairmap__free(a->hooked);
	mt_paths__clear(&a->pid_hooked);
	mt_pairmap__free(a->born);
	if (a->cgroup_fd >= 0)
		close(a->cgroup_fd);
	mt_ksyms__free(a->ksyms);
	if (a->out && a->out != stdout)
		fclose(a->out);
	if (a->sigfd > 0)
		close(a->sigfd);
}

static int exit_code(struct app *a, int rc)
{
	if (rc)
		return rc;
	if (a->have_child && a->child.exited)
		return mt_target__exit_code(&a->child);
	return MT_EXIT_OK;
}

/* --kernel: symbols, and the tracepoints; a missing one is a warning. */
static int setup_kernel(struct app *a)
{
	const char *const *missing = mt_tracer__missing_tps(a->tracer);
	int err;

	if (!a->ksyms)
		fprintf(stderr, "memtrace: warning: cannot read /proc/kallsyms: kernel frames "
			"will have no names, interrupts' allocations are not told apart\n");
	for (; *missing; missing++)
		fprintf(stderr, "memtrace: warning: this kernel has no %s tracepoint: those "
			"kernel allocations are not traced\n", *missing);
	err = mt_tracer__attach_kernel(a->tracer);
	if (err)
		error("attaching the kernel tracepoints failed: %s", strerror(-err));
	return err;
}

static void raise_nofile_limit(void)
{
	struct rlimit r;

	/* one descriptor per mapped file of every target, plus probes */
	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

int main(int argc, char **argv)
{
	static struct app app = { .sigfd = -1, .cgroup_fd = -1 };
	struct mt_tracer_opts to;
	char err[512], cmd_path[4096];
	struct app *a = &app;
	int rc, e;

	switch (mt_cli__parse(argc, argv, &a->o, err, sizeof(err))) {
	case MT_CLI_HELP:
		fputs(mt_cli__help(), stdout);
		return MT_EXIT_OK;
	case MT_CLI_VERSION:
		printf("memtrace %s\n", MT_VERSION);
		return MT_EXIT_OK;
	case MT_CLI_ERROR:
		error("%s", err);
		fputs(mt_cli__usage(), stderr);
		return MT_EXIT_USAGE;
	case MT_CLI_RUN:
		break;
	}
	verbose = a->o.verbose;
	if ((rc = check_environment()) || (rc = check_targets(a, cmd_path, sizeof(cmd_path))))
		return rc;
	a->out = stdout;
	if (a->o.output && !(a->out = fopen(a->o.output, "we"))) {
		error("cannot open %s for writing: %s", a->o.output, strerror(errno));
		return MT_EXIT_RUNTIME;
	}
	raise_nofile_limit();
	a->by_pid = mt_pairmap__new(64);
	a->hooked = mt_pairmap__new(64);
	a->born = mt_pairmap__new(16);
	if (!a->by_pid || !a->hooked || !a->born) {
		error("out of memory");
		return MT_EXIT_RUNTIME;
	}
	if (a->o.cgroup) {
		a->cgroup_fd = open(a->o.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (a->cgroup_fd < 0) {
			error("cannot open cgroup %s: %s", a->o.cgroup, strerror(errno));
			return MT_EXIT_USAGE;
		}
	}
	libbpf_set_print(libbpf_print);
	to = (struct mt_tracer_opts){
		.min_size = a->o.min_size, .max_size = a->o.max_size,
		.max_depth = a->o.max_depth, .max_allocs = a->o.max_allocs,
		.max_stacks = a->o.max_stacks, .probe_floor = a->o.probe_floor,
		.bpf_stats = a->o.bpf_stats, .mmap = a->o.mmap,
		.max_allocs_per_proc = a->o.max_allocs_per_proc,
		.sample_bytes = a->o.sample_bytes, .kernel = a->o.kernel,
		.unwind_fp = a->o.unwind_fp, .preload = a->o.preload, .batch = a->o.batch != 0,
		.all = a->o.all, .self = getpid(),
		.comms = (const char (*)[16])a->o.comms, .ncomms = a->o.ncomms,
		.cgroup_fd = a->cgroup_fd,
	};
	/* tests only: force stack hash collisions (tests/integration) */
	/* tests: the attach path of kernels without uprobe sessions */
	to.no_session = getenv("MEMTRACE_TEST_NO_SESSION") != NULL;
	to.no_kconfig = getenv("MEMTRACE_TEST_NO_KCONFIG") != NULL;
	to.no_memo = getenv("MEMTRACE_TEST_NO_MEMO") != NULL;
	to.memo_no_tags = getenv("MEMTRACE_TEST_MEMO_NO_TAGS") != NULL;
	if (getenv("MEMTRACE_TEST_BATCH_KEYS"))
		to.batch_keys = strtoul(getenv("MEMTRACE_TEST_BATCH_KEYS"), NULL, 10);
	if (getenv("MEMTRACE_TEST_SLOTS"))
		to.slots = strtoul(getenv("MEMTRACE_TEST_SLOTS"), NULL, 10);
	if (getenv("MEMTRACE_TEST_STACK_HASH_BITS"))
		to.stack_hash_mask = (1ULL << (atoi(getenv("MEMTRACE_TEST_STACK_HASH_BITS")) & 63)) - 1;
	rc = MT_EXIT_RUNTIME;
	if ((e = setup_signals(a))) {
		error("cannot set up signal handling: %s", strerror(-e));
		goto cleanup;
	}
	if (a->o.kernel) {
		char *text = mt_read_file("/proc/kallsyms");

		a->ksyms = text ? mt_ksyms__parse(text) : NULL;
		free(text);
		if (a->ksyms) {
			to.irqentry_lo = mt_ksyms__addr(a->ksyms, "__irqentry_text_start");
			to.irqentry_hi = mt_ksyms__addr(a->ksyms, "__irqentry_text_end");
		}
	}
	if ((e = mt_tracer__new(&to, &a->tracer))) {
		error("loading the BPF programs failed: %s", strerror(-e));
		goto cleanup;
	}
	if (verbose) {
		int n = mt_tracer__stats_ncpu(a->tracer);

		if (n > 1)
			fprintf(stderr, "memtrace: stack totals kept per CPU (%d CPUs)\n", n);
		else
			fprintf(stderr, "memtrace: stack totals shared by all CPUs\n");
		n = mt_tracer__hz(a->tracer);
		if (n)
			fprintf(stderr, "memtrace: block times in jiffies (HZ %d)\n", n);
		else
			fprintf(stderr, "memtrace: block times in ns (the kernel's HZ is unknown)\n");
	}
	if (a->o.bpf_stats && (e = mt_tracer__bpf_measuring(a->tracer)))
		fprintf(stderr, "memtrace: warning: --bpf-stats: cannot enable the kernel's BPF "
				"statistics (%s; CAP_SYS_ADMIN is needed): not measured\n",
			strerror(-e));
	for (int i = 0; i < a->o.ncustom; i++)
		mt_tracer__add_custom(a->tracer, a->o.custom[i].name, a->o.custom[i].arg,
				      a->o.custom[i].is_free);
	a->unwind = mt_tracer__unwind(a->tracer);
	if (a->unwind)
		mt_unwind__set_cb(a->unwind, on_unwind_table, a);
	if (!(a->sym = mt_symbolizer__new())) {
		error("out of memory");
		goto cleanup;
	}
	if (a->o.kernel && (e = setup_kernel(a)))
		goto cleanup;
	a->start_s = now_s();
	rc = a->o.cmd ? start_command(a, cmd_path) : a->o.all ? attach_all(a) : attach_pids(a);
	if (rc)
		goto cleanup;
	if (a->unwind && verbose) {
		struct mt_unwind_stats us;
		char b[32];

		mt_unwind__stats(a->unwind, &us);
		fprintf(stderr, "memtrace: unwind tables: %llu files (%llu without CFI), %llu rows, "
			"%s of BPF maps, built in %.0f ms\n", (unsigned long long)us.tables,
			(unsigned long long)us.no_cfi, (unsigned long long)us.rows,
			mt_fmt_bytes(us.map_bytes, b, sizeof(b)), us.build_s * 1000);
	}
	if (a->o.all)
		fprintf(stderr, "memtrace: tracing all processes (%d now) with %d probes; Ctrl-C "
			"to stop\n", a->ntargets, mt_tracer__nprobes(a->tracer));
	else
		fprintf(stderr, "memtrace: tracing %d process%s with %d probes; Ctrl-C to stop\n",
			a->ntargets, a->ntargets == 1 ? "" : "es", mt_tracer__nprobes(a->tracer));
	rc = run(a) ? MT_EXIT_RUNTIME : 0;
	rc = exit_code(a, rc);
cleanup:
	cleanup(a);
	return rc;
}
