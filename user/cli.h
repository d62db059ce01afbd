/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Command-line parsing and validation: pure, prints nothing. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MT_MAX_PIDS 64
#define MT_MAX_CUSTOM_FNS 8
#define MT_MAX_COMMS 16

/* --alloc-fn / --free-fn: a function of the target's and which argument
 * holds the size (alloc) or the pointer (free). */
struct mt_custom_fn {
	char name[128];
	int arg;		/* 1..3 (alloc), 1..2 (free) */
	bool is_free;
};

/* Exit codes: documented in README.md and `memtrace --help`. */
enum mt_exit {
	MT_EXIT_OK = 0,
	MT_EXIT_RUNTIME = 1,
	MT_EXIT_USAGE = 2,
};

enum mt_format { MT_FMT_TEXT, MT_FMT_JSON };

struct mt_opts {
	pid_t pids[MT_MAX_PIDS];
	int npids;
	char **cmd;		/* argv of the command to run, or NULL */
	bool all;		/* -a: every process, present and future */
	char comms[MT_MAX_COMMS][16]; /* --comm: only these process names */
	int ncomms;
	const char *cgroup;	/* --cgroup: only processes in this cgroup (v2) */
	double interval_s;	/* 0: report only at the end */
	double duration_s;	/* 0: until the targets exit or a signal */
	uint64_t top;		/* 0: all */
	double min_age_s;
	uint64_t min_size;
	uint64_t max_size;
	enum mt_format format;
	const char *output;	/* NULL: stdout */
	int verbose;
	uint32_t max_depth;
	uint64_t max_allocs;
	uint64_t max_stacks;
	uint64_t max_allocs_per_proc; /* 0: no limit */
	bool probe_floor;
	bool bpf_stats;		/* --bpf-stats */
	uint64_t sample_bytes;	/* 0: record every allocation */
	bool kernel;		/* --kernel */
	bool mmap;		/* --mmap */
	bool preload;		/* --preload: -- COMMAND with libmemtrace-preload.so */
	uint64_t batch;		/* --batch: events a batch (0: no batches) */
	bool unwind_fp;		/* --unwind fp: frame pointers only */
	struct mt_custom_fn custom[MT_MAX_CUSTOM_FNS];
	int ncustom;
};

enum mt_cli_action {
	MT_CLI_RUN,
	MT_CLI_HELP,
	MT_CLI_VERSION,
	MT_CLI_ERROR,		/* err holds one line; exit MT_EXIT_USAGE */
};

void mt_cli__defaults(struct mt_opts *o);
/* Parse argv into o. On MT_CLI_ERROR, err holds the message. */
enum mt_cli_action mt_cli__parse(int argc, char **argv, struct mt_opts *o,
				 char *err, size_t errlen);
/* PIDs: "123" or "1,2,3". 0 or -EINVAL/-E2BIG, with the bad token in err. */
int mt_cli__parse_pids(const char *s, struct mt_opts *o, char *err, size_t errlen);
const char *mt_cli__usage(void);
const char *mt_cli__help(void);

#endif
