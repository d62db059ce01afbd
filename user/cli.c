// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "memtrace.h"
#include "strutil.h"

enum {
	OPT_MIN_AGE = 256,
	OPT_MIN_SIZE,
	OPT_MAX_SIZE,
	OPT_FORMAT,
	OPT_MAX_DEPTH,
	OPT_MAX_ALLOCS,
	OPT_MAX_STACKS,
	OPT_PROBE_FLOOR,
	OPT_BPF_STATS,
	OPT_SAMPLE_BYTES,
	OPT_KERNEL,
	OPT_ALLOC_FN,
	OPT_FREE_FN,
	OPT_MMAP,
	OPT_UNWIND,
	OPT_COMM,
	OPT_MAX_PER_PROC,
	OPT_CGROUP,
	OPT_PRELOAD,
	OPT_BATCH,
};

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "all", no_argument, NULL, 'a' },
	{ "comm", required_argument, NULL, OPT_COMM },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "interval", required_argument, NULL, 'i' },
	{ "duration", required_argument, NULL, 'd' },
	{ "top", required_argument, NULL, 'n' },
	{ "min-age", required_argument, NULL, OPT_MIN_AGE },
	{ "min-size", required_argument, NULL, OPT_MIN_SIZE },
	{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "json", no_argument, NULL, 'j' },
	{ "output", required_argument, NULL, 'o' },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "max-allocs", required_argument, NULL, OPT_MAX_ALLOCS },
	{ "max-stacks", required_argument, NULL, OPT_MAX_STACKS },
	{ "max-allocs-per-process", required_argument, NULL, OPT_MAX_PER_PROC },
	{ "probe-floor", no_argument, NULL, OPT_PROBE_FLOOR },
	{ "bpf-stats", no_argument, NULL, OPT_BPF_STATS },
	{ "sample-bytes", required_argument, NULL, OPT_SAMPLE_BYTES },
	{ "kernel", no_argument, NULL, OPT_KERNEL },
	{ "alloc-fn", required_argument, NULL, OPT_ALLOC_FN },
	{ "free-fn", required_argument, NULL, OPT_FREE_FN },
	{ "mmap", no_argument, NULL, OPT_MMAP },
	{ "preload", no_argument, NULL, OPT_PRELOAD },
	{ "batch", optional_argument, NULL, OPT_BATCH },
	{ "unwind", required_argument, NULL, OPT_UNWIND },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

const char *mt_cli__usage(void)
{
	return "Usage: memtrace [OPTIONS] -p PID[,PID...]\n"
	       "       memtrace [OPTIONS] -a\n"
	       "       memtrace [OPTIONS] -- COMMAND [ARGS...]\n"
	       "Try 'memtrace --help' for more information.\n";
}

const char *mt_cli__help(void)
{
	return
"memtrace - who holds memory in a running process, from its call stacks\n"
"\n"
"Usage: memtrace [OPTIONS] -p PID[,PID...]       attach to running processes\n"
"       memtrace [OPTIONS] -a                      every process, also new ones\n"
"       memtrace [OPTIONS] -- COMMAND [ARGS...]  run COMMAND and trace it from\n"
"                                                its first allocation\n"
"\n"
"Traces malloc, calloc, realloc, reallocarray, free, posix_memalign,\n"
"aligned_alloc, memalign, valloc, pvalloc and operator new with uprobes in\n"
"whatever provides them (glibc, musl, jemalloc, tcmalloc, mimalloc, a static\n"
"program), without recompiling or restarting the target. Reports the call stacks holding the\n"
"most memory and the allocations that look like leaks. Needs root (or\n"
"CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_SYS_RESOURCE).\n"
"\n"
"Targets:\n"
"  -p, --pid PID[,PID...]   trace these processes (all their threads)\n"
"  -a, --all                every process on the machine, including ones started\n"
"                           later (not memtrace itself), reported per process\n"
"      --comm NAME          only processes named NAME (as in ps -o comm;\n"
"                           repeatable)\n"
"      --cgroup PATH        only processes in this cgroup v2 directory or below\n"
"                           (e.g. /sys/fs/cgroup/system.slice/nginx.service)\n"
"  -- COMMAND [ARGS...]     run COMMAND with its stdin/stdout/stderr; memtrace\n"
"                           exits with COMMAND's exit status\n"
"\n"
"When to report (a report is always printed at the end: on Ctrl-C/SIGTERM,\n"
"when --duration ends, or when every target has exited):\n"
"  -i, --interval SEC       also print a report every SEC seconds\n"
"  -d, --duration SEC       stop tracing after SEC seconds\n"
"\n"
"What to trace:\n"
"      --kernel             also the kernel's allocations made while a target\n"
"                           runs (kmalloc, kmem_cache, pages, percpu), with\n"
"                           kernel stacks (\"kind\": \"kernel\")\n"
"\n"
"      --mmap               also anonymous mmap/mremap/munmap and sbrk made\n"
"                           outside the allocator (\"kind\": \"mmap\", \"brk\")\n"
"      --alloc-fn NAME[:N]  also trace NAME, a custom allocator of the target:\n"
"                           its N-th argument (default 1) is the size, it\n"
"                           returns the block (repeatable)\n"
"      --free-fn NAME[:N]   also trace NAME as a free: its N-th argument\n"
"                           (default 1) is the block\n"
"\n"
"Cost (-- COMMAND only):\n"
"      --preload            run COMMAND with libmemtrace-preload.so in its\n"
"                           LD_PRELOAD: its wrappers of malloc, free and the\n"
"                           other allocator functions call probe sites the\n"
"                           kernel runs without a trap, about 0.4 of the cost of\n"
"                           probing the allocator (docs/benchmarks.md); reports\n"
"                           are the same. With --sample-bytes the library\n"
"                           samples: unsampled calls reach no probe at all.\n"
"                           COMMAND: dynamically linked, glibc,\n"
"                           without a malloc of its own; a process of its tree\n"
"                           that drops LD_PRELOAD is named and not traced. Not\n"
"                           with --mmap, --alloc-fn, --free-fn or --unwind fp\n"
"      --batch[=N]          --preload, and the library walks each stack itself\n"
"                           (libunwind) and hands memtrace its events N at a\n"
"                           time (default 1024, at most 4096): one probe hit a\n"
"                           batch instead of one a call; a block freed within\n"
"                           its batch costs only its stack's totals. A process\n"
"                           hands over what it holds at exit, exec or fork;\n"
"                           until then a report misses up to N of its events.\n"
"                           Not with --sample-bytes\n"
"\n"
"What to report:\n"
"  -n, --top N              show the N stacks holding the most (0 = all;\n"
"                           default 10)\n"
"      --min-age SEC        allocations older than SEC are leak candidates\n"
"                           (default 5); all that an exited process never\n"
"                           freed is always a leak candidate\n"
"      --min-size BYTES     only trace allocations of at least BYTES\n"
"      --max-size BYTES     only trace allocations of at most BYTES\n"
"                           (sizes take K, M, G suffixes)\n"
"      --sample-bytes N     always-on mode: record about one allocation per N\n"
"                           bytes allocated (Poisson sampling by bytes, as\n"
"                           tcmalloc does); bytes and counts are unbiased\n"
"                           estimates; e.g. 512K\n"
"      --format text|json   output format (default text); JSON is one object\n"
"                           per report and line, see docs/json-format.md\n"
"  -j, --json               same as --format json\n"
"  -o, --output FILE        write reports to FILE instead of stdout\n"
"\n"
"Stacks:\n"
"      --unwind cfi|fp      how user stacks are walked: cfi (default) reads the\n"
"                           binaries' own unwind tables (.eh_frame,\n"
"                           .debug_frame), so code built without frame\n"
"                           pointers shows every caller, frame pointers\n"
"                           where a file has none; fp: frame pointers only\n"
"      --max-depth N        frames kept per stack (default and at most 127);\n"
"                           a stack cut short is marked truncated\n"
"\n"
"Limits (every event that does not fit is counted under 'lost'):\n"
"      --max-allocs N       live allocations tracked (default 1048576), and up\n"
"                           to min(N, 131072) more in a fast block table\n"
"      --max-stacks N       distinct stacks tracked (default 65536)\n"
"      --max-allocs-per-process N\n"
"                           live allocations tracked per process (default: only\n"
"                           the global --max-allocs); more: 'process_limit'\n"
"      --probe-floor        benchmarks only: attach empty programs at the same\n"
"                           sites and record nothing (bench/, the probe floor)\n"
"      --bpf-stats          measure memtrace's BPF programs (run count and time,\n"
"                           which the traced processes pay); costs ~30 ns a run\n"
"\n"
"  -v, --verbose            also each hooked function's offset and probe site\n"
"                           (stderr); twice: libbpf's messages too\n"
"  -V, --version            print the version and exit\n"
"  -h, --help               print this help and exit\n"
"\n"
"Exit status: 0 success; 1 runtime failure (no privileges, BPF unavailable,\n"
"attach failed, no allocator found); 2 bad usage (unknown option, bad value,\n"
"no such process, command not found, unknown --alloc-fn/--free-fn name).\n"
"With -- COMMAND: COMMAND's status (128+N if killed by signal N) once it ran.\n"
"\n"
"Examples:\n"
"  sudo memtrace -p 1234 -i 10           report every 10 s until Ctrl-C\n"
"  sudo memtrace --json -o out.json -- ./server --port 8080\n"
"  sudo memtrace -p 1234 -d 60 --min-age 30 -n 0\n";
}

void mt_cli__defaults(struct mt_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->top = 10;
	o->min_age_s = 5;
	o->max_size = ~0ULL;
	o->format = MT_FMT_TEXT;
	o->max_depth = MT_DEFAULT_DEPTH;
	o->max_allocs = MT_DEFAULT_MAX_ALLOCS;
	o->max_stacks = MT_DEFAULT_MAX_STACKS;
}

int mt_cli__parse_pids(const char *s, struct mt_opts *o, char *err, size_t errlen)
{
	char buf[1024], *tok, *save = NULL;

	if (strlen(s) >= sizeof(buf) || !*s) {
		snprintf(err, errlen, "invalid PID list '%s'", s);
		return -EINVAL;
	}
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (mt_parse_u64(tok, &v) || v == 0 || v > 0x3fffffff) {
			snprintf(err, errlen, "invalid PID '%s': expected a positive number", tok);
			return -EINVAL;
		}
		for (int i = 0; i < o->npids; i++)
			if (o->pids[i] == (pid_t)v)
				goto next; /* given twice: trace it once */
		if (o->npids == MT_MAX_PIDS) {
			snprintf(err, errlen, "too many PIDs (at most %d)", MT_MAX_PIDS);
			return -E2BIG;
		}
		o->pids[o->npids++] = (pid_t)v;
next:;
	}
	if (s[strlen(s) - 1] == ',' || s[0] == ',') {
		snprintf(err, errlen, "invalid PID list '%s'", s);
		return -EINVAL;
	}
	return 0;
}

static int seconds_opt(const char *name, const char *arg, double *out, char *err,
		       size_t errlen)
{
	if (mt_parse_seconds(arg, out)) {
		snprintf(err, errlen, "invalid %s '%s': expected a non-negative number of seconds",
			 name, arg);
		return -EINVAL;
	}
	return 0;
}

static int count_opt(const char *name, const char *arg, uint64_t lo, uint64_t hi,
		     uint64_t *out, char *err, size_t errlen)
{
	if (mt_parse_u64(arg, out) || *out < lo || *out > hi) {
		snprintf(err, errlen, "invalid %s '%s': expected a whole number from %llu to %llu",
			 name, arg, (unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	return 0;
}

static int size_opt(const char *name, const char *arg, uint64_t *out, char *err,
		    size_t errlen)
{
	if (mt_parse_size(arg, out)) {
		snprintf(err, errlen, "invalid %s '%s': expected bytes, e.g. 4096 or 4K", name, arg);
		return -EINVAL;
	}
	return 0;
}

/* NAME or NAME:ARG */
static int custom_fn(const char *spec, bool is_free, struct mt_opts *o, char *err,
		     size_t errlen)
{
	const char *colon = strchr(spec, ':');
	int max = is_free ? 2 : 3, n = 1;
	const char *opt = is_free ? "free-fn" : "alloc-fn";
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	char name[128];

	if (colon) {
		if (!colon[1] || colon[2] || colon[1] < '1' || colon[1] > '0' + max) {
			snprintf(err, errlen, "invalid %s '%s': the argument must be 1 to %d",
				 opt, spec, max);
			return -EINVAL;
		}
		n = colon[1] - '0';
	}
	if (!len || len >= sizeof(name) ||
	    strspn(spec, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_.$@") != len) {
		snprintf(err, errlen, "invalid %s '%s': expected a symbol name", opt, spec);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%.*s", (int)len, spec);
	if (o->ncustom == MT_MAX_CUSTOM_FNS) {
		snprintf(err, errlen, "too many --alloc-fn/--free-fn (at most %d)",
			 MT_MAX_CUSTOM_FNS);
		return -E2BIG;
	}
	o->custom[o->ncustom] = (struct mt_custom_fn){ .arg = n, .is_free = is_free };
	memcpy(o->custom[o->ncustom++].name, name, sizeof(name));
	return 0;
}

static int parse_one(int c, const char *arg, struct mt_opts *o, char *err, size_t errlen)
{
	uint64_t v;

	switch (c) {
	case 'p':
		return mt_cli__parse_pids(arg, o, err, errlen);
	case 'i':
		if (seconds_opt("interval", arg, &o->interval_s, err, errlen))
			return -EINVAL;
		if (o->interval_s == 0) {
			snprintf(err, errlen, "invalid interval '%s': must be greater than 0", arg);
			return -EINVAL;
		}
		return 0;
	case 'd':
		if (seconds_opt("duration", arg, &o->duration_s, err, errlen))
			return -EINVAL;
		if (o->duration_s == 0) {
			snprintf(err, errlen, "invalid duration '%s': must be greater than 0", arg);
			return -EINVAL;
		}
		return 0;
	case 'n':
		return count_opt("top", arg, 0, UINT32_MAX, &o->top, err, errlen);
	case OPT_MIN_AGE:
		return seconds_opt("min-age", arg, &o->min_age_s, err, errlen);
	case OPT_MIN_SIZE:
		return size_opt("min-size", arg, &o->min_size, err, errlen);
	case OPT_MAX_SIZE:
		return size_opt("max-size", arg, &o->max_size, err, errlen);
	case OPT_FORMAT:
		if (!strcmp(arg, "text"))
			o->format = MT_FMT_TEXT;
		else if (!strcmp(arg, "json"))
			o->format = MT_FMT_JSON;
		else {
			snprintf(err, errlen, "invalid format '%s': expected text or json", arg);
			return -EINVAL;
		}
		return 0;
	case 'j':
		o->format = MT_FMT_JSON;
		return 0;
	case 'o':
		if (!*arg) {
			snprintf(err, errlen, "invalid output: empty file name");
			return -EINVAL;
		}
		o->output = arg;
		return 0;
	case OPT_MAX_DEPTH:
		if (count_opt("max-depth", arg, 1, MT_MAX_DEPTH, &v, err, errlen))
			return -EINVAL;
		o->max_depth = v;
		return 0;
	case OPT_MAX_ALLOCS:
		return count_opt("max-allocs", arg, 1, 1u << 28, &o->max_allocs, err, errlen);
	case OPT_MAX_PER_PROC:
		return count_opt("max-allocs-per-process", arg, 1, 1u << 28, &o->max_allocs_per_proc,
				 err, errlen);
	case OPT_MAX_STACKS:
		return count_opt("max-stacks", arg, 1, 1u << 24, &o->max_stacks, err, errlen);
	case 'v':
		o->verbose++;
		return 0;
	case OPT_PROBE_FLOOR:
		o->probe_floor = true;
		return 0;
	case OPT_BPF_STATS:
		o->bpf_stats = true;
		return 0;
	case OPT_KERNEL:
		o->kernel = true;
		return 0;
	case OPT_MMAP:
		o->mmap = true;
		return 0;
	case OPT_PRELOAD:
		o->preload = true;
		return 0;
	case OPT_BATCH:
		o->preload = true;
		o->batch = MT_BATCH_DEFAULT;
		if (arg && count_opt("batch", arg, 1, MT_BATCH_MAX, &o->batch, err, errlen))
			return -EINVAL;
		return 0;
	case 'a':
		o->all = true;
		return 0;
	case OPT_COMM:
		if (!*arg || strlen(arg) > 15) {
			snprintf(err, errlen, "invalid comm '%s': 1 to 15 characters, as the kernel "
				 "keeps them", arg);
			return -EINVAL;
		}
		if (o->ncomms == MT_MAX_COMMS) {
			snprintf(err, errlen, "too many --comm (at most %d)", MT_MAX_COMMS);
			return -E2BIG;
		}
		snprintf(o->comms[o->ncomms++], sizeof(o->comms[0]), "%s", arg);
		return 0;
	case OPT_CGROUP:
		if (!*arg) {
			snprintf(err, errlen, "invalid cgroup: empty path");
			return -EINVAL;
		}
		o->cgroup = arg;
		return 0;
	case OPT_UNWIND:
		if (!strcmp(arg, "cfi") || !strcmp(arg, "fp")) {
			o->unwind_fp = arg[0] == 'f';
			return 0;
		}
		snprintf(err, errlen, "invalid unwind '%s': expected cfi or fp", arg);
		return -EINVAL;
	case OPT_ALLOC_FN:
	case OPT_FREE_FN:
		return custom_fn(arg, c == OPT_FREE_FN, o, err, errlen);
	case OPT_SAMPLE_BYTES:
		if (size_opt("sample-bytes", arg, &o->sample_bytes, err, errlen))
			return -EINVAL;
		if (!o->sample_bytes || o->sample_bytes > (1ULL << 40)) {
			snprintf(err, errlen, "invalid sample-bytes '%s': expected 1 to 1T", arg);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

enum mt_cli_action mt_cli__parse(int argc, char **argv, struct mt_opts *o,
				 char *err, size_t errlen)
{
	int c;

	mt_cli__defaults(o);
	err[0] = 0;
	optind = 0; /* full reset: parse may run more than once (tests) */
	opterr = 0;
	/* '+': stop at the first non-option, so COMMAND keeps its flags */
	while ((c = getopt_long(argc, argv, "+:p:ai:d:n:o:jvVh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return MT_CLI_HELP;
		case 'V':
			return MT_CLI_VERSION;
		case '?':
			if (optopt)
				snprintf(err, errlen, "unknown option '-%c'", optopt);
			else
				snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return MT_CLI_ERROR;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
			return MT_CLI_ERROR;
		default:
			if (parse_one(c, optarg, o, err, errlen))
				return MT_CLI_ERROR;
		}
	}
	if (optind < argc)
		o->cmd = &argv[optind];
	if ((o->npids != 0) + (o->cmd != NULL) + o->all > 1) {
		snprintf(err, errlen, "give one of -p PID, -a or -- COMMAND");
		return MT_CLI_ERROR;
	}
	if (!o->npids && !o->cmd && !o->all) {
		snprintf(err, errlen, "nothing to trace: give -p PID, -a or -- COMMAND");
		return MT_CLI_ERROR;
	}
	if (o->preload && !o->cmd) {
		snprintf(err, errlen, "--preload needs -- COMMAND (a running process cannot "
			 "preload a library)");
		return MT_CLI_ERROR;
	}
	if (o->preload && (o->mmap || o->ncustom || o->unwind_fp)) {
		snprintf(err, errlen, "--preload does not go with %s",
			 o->mmap ? "--mmap" : o->ncustom ? "--alloc-fn/--free-fn" : "--unwind fp");
		return MT_CLI_ERROR;
	}
	if (o->batch && o->sample_bytes) {
		snprintf(err, errlen, "--batch does not go with --sample-bytes (with --preload "
			 "the library samples: unsampled calls reach no probe already)");
		return MT_CLI_ERROR;
	}
	if (o->min_size > o->max_size) {
		snprintf(err, errlen, "--min-size is larger than --max-size");
		return MT_CLI_ERROR;
	}
	return MT_CLI_RUN;
}
