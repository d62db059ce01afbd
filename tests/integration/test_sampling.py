# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""--sample-bytes: estimates of bytes and counts within 10% of the truth on
a workload with known totals (tests/progs/sampled.c); exact without it."""
import os

from conftest import by_function, trace_cmd

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


def test_sampled_estimates_within_10_percent():
    # ~4,000 to 12,000 samples a function: 10% is over 5 standard deviations
    rep, _ = trace_cmd("sampled", opts=("-n", "0", "--sample-bytes", "4096"))
    assert rep["sample_bytes"] == 4096
    for fn, want in TRUTH.items():
        got = totals(rep, fn)
        for g, w, what in zip(got, want, ("alloc_bytes", "alloc_count", "outstanding")):
            assert abs(g - w) <= 0.10 * w, f"{fn} {what}: {g} vs {w}"
    # allocations far larger than the gap are always sampled, with weight 1
    assert totals(rep, "large_blocks") == TRUTH["large_blocks"]
    # frees of unsampled blocks are expected, not losses
    assert rep["lost"]["total"] == 0


def test_sampled_new_counts_once():
    # operator new calls malloc: an unsampled new must not give its malloc
    # a second chance (the estimate would double)
    rep, _ = trace_cmd("sampled_cxx", opts=("-n", "0", "--sample-bytes", "4096"))
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


def test_peak_exact_to_a_batch_per_cpu():
    # sampled.c frees only after all its allocations: its peak is the final
    # outstanding plus everything freed. Each CPU adds its changes to the
    # shared total in batches of 4 KiB: the peak may be off by less than
    # that per CPU, never more
    rep, _ = trace_cmd("sampled")
    t = rep["totals"]
    truth = t["outstanding_bytes"] + t["free_bytes"]
    assert abs(t["peak_outstanding_bytes"] - truth) < 4096 * os.cpu_count()
