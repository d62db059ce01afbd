# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""--sample-bytes: estimates of bytes and counts within 10% of the truth on
a workload with known totals (tests/progs/sampled.c); exact without it.
Each test runs with the probes sampling (BPF) and with --preload, where
the library samples and only sampled blocks reach a probe."""
import os

import pytest

from conftest import by_function, memtrace, prog, reports, trace_cmd

MODES = pytest.mark.parametrize("mode", [(), ("--preload",)], ids=["probes", "preload"])

TRUTH = {  # function: (alloc_bytes, alloc_count, outstanding_bytes)
    "small_blocks": (500000 * 64, 500000, 500000 * 64),
    "medium_blocks": (50000 * 1000, 50000, 50000 * 1000),
    "large_blocks": (100 << 20, 100, 100 << 20),
    "half_freed": (200000 * 128, 200000, 100000 * 128),
}


def totals(rep, fn):
    g = by_function(rep["stacks"], fn)
    return g["alloc_bytes"], g["alloc_count"], g["outstanding_bytes"]


def test_unsampled_is_exact():
    rep, _ = trace_cmd("sampled")
    assert rep["sample_bytes"] == 0
    for fn, want in TRUTH.items():
        assert totals(rep, fn) == want, fn


@MODES
def test_sampled_estimates_within_10_percent(mode):
    sampled_estimates_within_10_percent(mode)


def sampled_estimates_within_10_percent(mode=()):
    # ~4,000 to 12,000 samples a function: 10% is over 5 standard deviations
    rep, _ = trace_cmd("sampled", opts=("-n", "0", "--sample-bytes", "4096") + mode)
    assert rep["sample_bytes"] == 4096
    for fn, want in TRUTH.items():
        got = totals(rep, fn)
        for g, w, what in zip(got, want, ("alloc_bytes", "alloc_count", "outstanding")):
            assert abs(g - w) <= 0.10 * w, f"{fn} {what}: {g} vs {w}"
    # allocations far larger than the gap are always sampled, with weight 1
    assert totals(rep, "large_blocks") == TRUTH["large_blocks"]
    # frees of unsampled blocks are expected, not losses
    assert rep["lost"]["total"] == 0


@MODES
def test_sampled_new_counts_once(mode):
    sampled_new_counts_once(mode)


def sampled_new_counts_once(mode=()):
    # operator new calls malloc: an unsampled new must not give its malloc
    # a second chance (the estimate would double)
    rep, _ = trace_cmd("sampled_cxx", opts=("-n", "0", "--sample-bytes", "4096") + mode)
    got = by_function(rep["stacks"], "new_arrays")
    for g, w, what in ((got["alloc_bytes"], 200000 * 256, "alloc_bytes"),
                       (got["alloc_count"], 200000, "alloc_count")):
        assert abs(g - w) <= 0.10 * w, f"{what}: {g} vs {w}"


def test_unsampled_calls_skip_the_return_probe():
    # the programs' runs: every allocation call enters, every free enters;
    # only sampled calls (and realloc) come back at the return
    calls = 750000 + 100 + 4  # mallocs and callocs of sampled.c
    frees = 100000
    full, _ = trace_cmd("sampled", opts=("-n", "0", "--bpf-stats"))
    assert full["self"]["bpf_runs"] >= 2 * calls + frees
    rep, _ = trace_cmd("sampled", opts=("-n", "0", "--bpf-stats", "--sample-bytes", "4096"))
    assert rep["self"]["bpf_runs"] < calls + frees + 0.1 * calls


def test_the_preload_library_samples_before_any_probe():
    # the same run as above with --preload: only sampled allocations (about
    # 25,000 here) and their frees reach a site, against every call above
    calls = 750000 + 100 + 4
    rep, _ = trace_cmd("sampled", opts=("-n", "0", "--bpf-stats", "--sample-bytes", "4096",
                                        "--preload"))
    assert 0 < rep["self"]["bpf_runs"] < 0.1 * calls


# sampled_frees.c: per thread and round, malloc(n), calloc(3, n), realloc to
# 2n then 3n + 4000, posix_memalign(n), aligned_alloc(512)
CHURN_BYTES = 4 * sum(10 * (16 + (i % 61) * 24) + 4512 for i in range(100000))
CHURN_COUNT = 4 * 100000 * 6


def assert_every_sampled_free_seen(rep):
    """sampled_frees.c sampled: nothing of churn's outstanding, estimates
    within 10%, nothing lost. Returns churn's totals."""
    churn = by_function(rep["stacks"], "churn")
    assert (churn["outstanding_bytes"], churn["outstanding_count"]) == (0, 0), churn
    assert abs(churn["alloc_bytes"] - CHURN_BYTES) <= 0.10 * CHURN_BYTES, churn
    kept = by_function(rep["stacks"], "kept")
    assert abs(kept["outstanding_bytes"] - 4096000) <= 0.10 * 4096000, kept
    assert rep["lost"]["total"] == 0, rep["lost"]
    return churn


@MODES
def test_every_free_of_a_sampled_block_is_seen(mode):
    # nearly everything is freed, across threads, while the process forks:
    # one sampled block whose free went unseen would stay outstanding
    rep, _ = trace_cmd("sampled_frees", opts=("-n", "0", "--sample-bytes", "4096") + mode)
    churn = assert_every_sampled_free_seen(rep)
    assert churn["free_count"] == churn["alloc_count"]
    assert abs(churn["alloc_count"] - CHURN_COUNT) <= 0.10 * CHURN_COUNT, churn


def test_a_full_table_of_sampled_blocks_stays_exact():
    # the library's table of sampled blocks gives up after 100 (instead of
    # 786,432): every free then goes to its site, and memtrace's own books
    # must still find exactly the sampled blocks among them
    r = memtrace("--json", "-n", "0", "--sample-bytes", "4096", "--preload", "--",
                 prog("sampled_frees"), env=dict(os.environ, MEMTRACE_TEST_SET_LIMIT="100"))
    assert r.returncode == 0, r.stderr
    assert_every_sampled_free_seen(reports(r.stdout)[-1])


@MODES
def test_sampled_frees_unsampled_is_exact(mode):
    rep, _ = trace_cmd("sampled_frees", opts=("-n", "0") + mode)
    churn = by_function(rep["stacks"], "churn")
    assert (churn["alloc_bytes"], churn["alloc_count"]) == (CHURN_BYTES, CHURN_COUNT)
    assert (churn["outstanding_bytes"], churn["free_count"]) == (0, CHURN_COUNT)
    assert by_function(rep["stacks"], "kept")["outstanding_bytes"] == 4096000


def test_peak_exact_to_a_batch_per_cpu():
    # sampled.c frees only after all its allocations: its peak is the final
    # outstanding plus everything freed. Each CPU adds its changes to the
    # shared total in batches of 4 KiB: the peak may be off by less than
    # that per CPU, never more
    rep, _ = trace_cmd("sampled")
    t = rep["totals"]
    truth = t["outstanding_bytes"] + t["free_bytes"]
    assert abs(t["peak_outstanding_bytes"] - truth) < 4096 * os.cpu_count()
