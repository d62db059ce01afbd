// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <criterion/criterion.h>
#include <string.h>
#include "cli.h"
#include "memtrace.h"

static struct mt_opts o;
static char err[256];

#define PARSE(...)                                                              \
	({                                                                      \
		char *argv[] = { "memtrace", __VA_ARGS__, NULL };               \
		mt_cli__parse(sizeof(argv) / sizeof(argv[0]) - 1, argv, &o, err, \
			      sizeof(err));                                     \
	})

Test(cli, defaults)
{
	cr_assert_eq(PARSE("-p", "42"), MT_CLI_RUN);
	cr_assert_eq(o.npids, 1);
	cr_assert_eq(o.pids[0], 42);
	cr_assert_eq(o.top, 10);
	cr_assert_float_eq(o.min_age_s, 5.0, 1e-9);
	cr_assert_eq(o.interval_s, 0);
	cr_assert_eq(o.format, MT_FMT_TEXT);
	cr_assert_eq(o.max_depth, 127);
	cr_assert_null(o.cmd);
	cr_assert_not(o.bpf_stats, "measuring the programs costs: off by default");
}

Test(cli, pid_list)
{
	cr_assert_eq(PARSE("-p", "1,2,3", "--pid", "4"), MT_CLI_RUN);
	cr_assert_eq(o.npids, 4);
	cr_assert_eq(o.pids[3], 4);
}

Test(cli, duplicate_pids_traced_once)
{
	cr_assert_eq(PARSE("-p", "5,6,5", "-p", "6"), MT_CLI_RUN);
	cr_assert_eq(o.npids, 2);
	cr_assert_eq(o.pids[0], 5);
	cr_assert_eq(o.pids[1], 6);
}

Test(cli, bad_pids)
{
	cr_assert_eq(PARSE("-p", "abc"), MT_CLI_ERROR);
	cr_assert(strstr(err, "invalid PID 'abc'"), "%s", err);
	cr_assert_eq(PARSE("-p", "0"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-p", "-5"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-p", "1,"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-p", "99999999999"), MT_CLI_ERROR);
}

Test(cli, command_keeps_its_flags)
{
	cr_assert_eq(PARSE("-n", "3", "--", "./prog", "-p", "--x"), MT_CLI_RUN);
	cr_assert_str_eq(o.cmd[0], "./prog");
	cr_assert_str_eq(o.cmd[1], "-p");
	cr_assert_str_eq(o.cmd[2], "--x");
	cr_assert_null(o.cmd[3]);
	cr_assert_eq(o.npids, 0);
}

Test(cli, all_options)
{
	cr_assert_eq(PARSE("-i", "2.5", "-d", "60", "-n", "0", "--min-age", "0.5",
			   "--min-size", "4K", "--max-size", "1M", "--format", "json",
			   "-o", "out.json", "-v", "-v", "--max-depth", "100",
			   "--max-allocs", "1000", "--max-stacks", "50", "--bpf-stats", "-p", "7"),
		     MT_CLI_RUN);
	cr_assert(o.bpf_stats);
	cr_assert_float_eq(o.interval_s, 2.5, 1e-9);
	cr_assert_float_eq(o.duration_s, 60, 1e-9);
	cr_assert_eq(o.top, 0);
	cr_assert_float_eq(o.min_age_s, 0.5, 1e-9);
	cr_assert_eq(o.min_size, 4096);
	cr_assert_eq(o.max_size, 1 << 20);
	cr_assert_eq(o.format, MT_FMT_JSON);
	cr_assert_str_eq(o.output, "out.json");
	cr_assert_eq(o.verbose, 2);
	cr_assert_eq(o.max_depth, 100);
	cr_assert_eq(o.max_allocs, 1000);
	cr_assert_eq(o.max_stacks, 50);
}

Test(cli, bad_values)
{
	cr_assert_eq(PARSE("-i", "-1", "-p", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "invalid interval '-1'"), "%s", err);
	cr_assert_eq(PARSE("-i", "0", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-i", "nan", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-d", "1x", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-n", "-1", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--min-size", "4Q", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--min-size", "2K", "--max-size", "1K", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--max-depth", "0", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--max-depth", "128", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--format", "yaml", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-o", "", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--unwind", "dwarf", "-p", "1"), MT_CLI_ERROR);
}

Test(cli, unwind)
{
	struct mt_opts o;
	char err[256];
	char *fp[] = { "memtrace", "--unwind", "fp", "-p", "1", NULL };
	char *cfi[] = { "memtrace", "--unwind", "cfi", "-p", "1", NULL };
	char *dflt[] = { "memtrace", "-p", "1", NULL };

	cr_assert_eq(mt_cli__parse(5, fp, &o, err, sizeof(err)), MT_CLI_RUN);
	cr_expect(o.unwind_fp);
	cr_assert_eq(mt_cli__parse(5, cfi, &o, err, sizeof(err)), MT_CLI_RUN);
	cr_expect_not(o.unwind_fp);
	cr_assert_eq(mt_cli__parse(3, dflt, &o, err, sizeof(err)), MT_CLI_RUN);
	cr_expect_not(o.unwind_fp, "CFI unwinding is the default");
}

Test(cli, unknown_and_missing)
{
	cr_assert_eq(PARSE("--frobnicate"), MT_CLI_ERROR);
	cr_assert(strstr(err, "unknown option '--frobnicate'"), "%s", err);
	cr_assert_eq(PARSE("-z"), MT_CLI_ERROR);
	cr_assert(strstr(err, "unknown option '-z'"), "%s", err);
	cr_assert_eq(PARSE("-p"), MT_CLI_ERROR);
	cr_assert(strstr(err, "needs a value"), "%s", err);
}

Test(cli, target_required_and_exclusive)
{
	cr_assert_eq(PARSE("-n", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "nothing to trace"), "%s", err);
	cr_assert_eq(PARSE("-p", "1", "--", "ls"), MT_CLI_ERROR);
	cr_assert(strstr(err, "give one of"), "%s", err);
	cr_assert_eq(PARSE("-a", "-p", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "give one of"), "%s", err);
	cr_assert_eq(PARSE("-a", "--", "ls"), MT_CLI_ERROR);
}

Test(cli, all_and_filters)
{
	cr_assert_eq(PARSE("-a"), MT_CLI_RUN);
	cr_assert(o.all);
	cr_assert_eq(o.ncomms, 0);
	cr_assert_null(o.cgroup);
	cr_assert_eq(PARSE("--all", "--comm", "nginx", "--comm", "redis-server", "--cgroup",
			   "/sys/fs/cgroup/x"), MT_CLI_RUN);
	cr_assert_eq(o.ncomms, 2);
	cr_assert_str_eq(o.comms[1], "redis-server");
	cr_assert_str_eq(o.cgroup, "/sys/fs/cgroup/x");
	cr_assert_eq(PARSE("-a", "--comm", "a-name-longer-than-15"), MT_CLI_ERROR);
	cr_assert(strstr(err, "15 characters"), "%s", err);
	cr_assert_eq(PARSE("-a", "--comm", ""), MT_CLI_ERROR);
	cr_assert_eq(PARSE("-a", "--cgroup", ""), MT_CLI_ERROR);
}

Test(cli, preload)
{
	cr_assert_eq(PARSE("--", "ls"), MT_CLI_RUN);
	cr_expect_not(o.preload, "off by default");
	cr_assert_eq(PARSE("--preload", "--sample-bytes", "1M", "--", "ls", "--preload"),
		     MT_CLI_RUN);
	cr_expect(o.preload);
	cr_expect_str_eq(o.cmd[1], "--preload", "the command's own flag stays its own");
	cr_assert_eq(PARSE("--preload", "-p", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "--preload needs -- COMMAND"), "%s", err);
	cr_assert_eq(PARSE("--preload", "-a"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--preload", "--mmap", "--", "ls"), MT_CLI_ERROR);
	cr_assert(strstr(err, "does not go with --mmap"), "%s", err);
	cr_assert_eq(PARSE("--free-fn", "xfree", "--preload", "--", "ls"), MT_CLI_ERROR);
	cr_assert(strstr(err, "does not go with --alloc-fn/--free-fn"), "%s", err);
	cr_assert_eq(PARSE("--preload", "--unwind", "fp", "--", "ls"), MT_CLI_ERROR);
	cr_assert(strstr(err, "does not go with --unwind fp"), "%s", err);
}

Test(cli, batch)
{
	cr_assert_eq(PARSE("--", "ls"), MT_CLI_RUN);
	cr_expect_eq(o.batch, 0, "off by default");
	cr_assert_eq(PARSE("--batch", "--", "ls"), MT_CLI_RUN);
	cr_expect(o.preload, "--batch is --preload's");
	cr_expect_eq(o.batch, MT_BATCH_DEFAULT);
	cr_assert_eq(PARSE("--batch=1", "--", "ls"), MT_CLI_RUN);
	cr_expect_eq(o.batch, 1);
	cr_assert_eq(PARSE("--batch=4096", "--", "ls"), MT_CLI_RUN);
	cr_expect_eq(o.batch, MT_BATCH_MAX);
	cr_assert_eq(PARSE("--batch=4097", "--", "ls"), MT_CLI_ERROR);
	cr_assert(strstr(err, "invalid batch '4097'"), "%s", err);
	cr_assert_eq(PARSE("--batch=0", "--", "ls"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--batch", "-p", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "needs -- COMMAND"), "%s", err);
	cr_assert_eq(PARSE("--batch", "--sample-bytes", "1M", "--", "ls"), MT_CLI_ERROR);
	cr_assert(strstr(err, "--batch does not go with --sample-bytes"), "%s", err);
}

Test(cli, sample_bytes)
{
	cr_assert_eq(PARSE("--sample-bytes", "512K", "-p", "1"), MT_CLI_RUN);
	cr_assert_eq(o.sample_bytes, 512 * 1024);
	cr_assert_eq(PARSE("-p", "1"), MT_CLI_RUN);
	cr_assert_eq(o.sample_bytes, 0);
	cr_assert_eq(PARSE("--sample-bytes", "0", "-p", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "invalid sample-bytes '0'"), "%s", err);
	cr_assert_eq(PARSE("--sample-bytes", "2T", "-p", "1"), MT_CLI_ERROR);
}

Test(cli, custom_functions)
{
	cr_assert_eq(PARSE("--alloc-fn", "my_alloc", "--alloc-fn", "pool_get:2", "--free-fn",
			   "my_free:1", "-p", "1"), MT_CLI_RUN);
	cr_assert_eq(o.ncustom, 3);
	cr_assert_str_eq(o.custom[1].name, "pool_get");
	cr_assert_eq(o.custom[1].arg, 2);
	cr_assert(!o.custom[1].is_free);
	cr_assert(o.custom[2].is_free);
	cr_assert_eq(PARSE("--alloc-fn", "f:4", "-p", "1"), MT_CLI_ERROR);
	cr_assert(strstr(err, "the argument must be 1 to 3"), "%s", err);
	cr_assert_eq(PARSE("--free-fn", "f:3", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--alloc-fn", "bad name", "-p", "1"), MT_CLI_ERROR);
	cr_assert_eq(PARSE("--alloc-fn", "", "-p", "1"), MT_CLI_ERROR);
}

Test(cli, help_and_version)
{
	cr_assert_eq(PARSE("-h"), MT_CLI_HELP);
	cr_assert_eq(PARSE("--version"), MT_CLI_VERSION);
	cr_assert(strstr(mt_cli__help(), "Exit status"));
}
