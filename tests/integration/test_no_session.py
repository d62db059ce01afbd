# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Kernels before 6.13 have no uprobe session links: memtrace then attaches
an entry link and a return link, as it did before. The same exact numbers
must come out; MEMTRACE_TEST_NO_SESSION forces that path here."""
import pytest

import test_accounting
import test_sampling
from conftest import trace_cmd

SAME = [
    test_accounting.test_each_entry_point_exact,
    test_accounting.test_nested_calls_counted_once,
    test_accounting.test_realloc_chain,
    test_accounting.test_cross_thread_frees,
    test_sampling.sampled_estimates_within_10_percent,
    test_sampling.sampled_new_counts_once,
]


@pytest.mark.parametrize("test", SAME, ids=lambda t: t.__name__)
def test_without_sessions(monkeypatch, test):
    monkeypatch.setenv("MEMTRACE_TEST_NO_SESSION", "1")
    test()


def test_without_sessions_every_return_runs(monkeypatch):
    # the knob takes effect: unsampled calls' returns now run (and do nothing)
    monkeypatch.setenv("MEMTRACE_TEST_NO_SESSION", "1")
    calls, frees = 750000 + 100 + 4, 100000
    rep, _ = trace_cmd("sampled", opts=("-n", "0", "--bpf-stats", "--sample-bytes", "4096"))
    assert rep["self"]["bpf_runs"] >= 2 * calls + frees
