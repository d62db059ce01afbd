# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""The block table: user blocks live in a set-associative table in front of
the allocs hash (struct mt_slot), and go to the hash only when their set is
full. Reports must not depend on where a block lives: each test runs with
the default table, where every block of these programs finds room, and
with MEMTRACE_TEST_SLOTS=4 (one set of 4 slots), where most go to the hash
and frees, reallocs and exits find blocks in both.
"""
import re

import pytest

from conftest import assert_realloc_chain, by_function, memtrace, prog, reports

TABLES = [None, "4"]


def run(monkeypatch, slots, name, *opts, moved=False):
    """The final report, and how many blocks found their set full (and,
    moved=True, how many were moved from the table to the hash)."""
    if slots:
        monkeypatch.setenv("MEMTRACE_TEST_SLOTS", slots)
    else:
        monkeypatch.delenv("MEMTRACE_TEST_SLOTS", raising=False)
    r = memtrace("--json", "-n", "0", "-v", *opts, "--", prog(name))
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) blocks found their set of the block table full \(kept in the "
                  r"hash\), (\d+) older ones moved there", r.stderr)
    assert m, r.stderr
    if moved:
        return reports(r.stdout)[-1], int(m.group(1)), int(m.group(2))
    return reports(r.stdout)[-1], int(m.group(1))


def assert_room(slots, full):
    """The default table had room for every block; one set did not."""
    if slots:
        assert full > 0
    else:
        assert full == 0


@pytest.mark.parametrize("slots", TABLES)
def test_entry_points_exact(monkeypatch, slots):
    rep, full = run(monkeypatch, slots, "allocs")
    assert_room(slots, full)
    # allocs's 13 live blocks, and its frees and reallocs (test_accounting)
    expect = {"use_malloc": (3000, 3, 3), "use_calloc": (2000, 2, 2),
              "use_realloc_null": (1100, 1, 1), "use_reallocarray": (1200, 1, 1),
              "use_free": (0, 0, 5), "use_realloc_zero": (0, 0, 1),
              "use_realloc_fail": (2000, 1, 1), "use_pvalloc": (1700, 1, 1)}
    for fn, (ob, oc, ac) in expect.items():
        g = by_function(rep["stacks"], fn)
        assert (g["outstanding_bytes"], g["outstanding_count"], g["alloc_count"]) == \
            (ob, oc, ac), fn
    assert rep["totals"]["outstanding_count"] == 13
    assert rep["lost"]["total"] == 0


@pytest.mark.parametrize("slots", TABLES)
def test_frees_on_other_threads(monkeypatch, slots):
    """threads: 1000 blocks from 4 threads, half freed by the main thread
    on another CPU; a full set sends the rest to the hash."""
    rep, full = run(monkeypatch, slots, "threads")
    assert_room(slots, full)
    g = by_function(rep["stacks"], "produce")
    assert (g["alloc_count"], g["outstanding_count"], g["outstanding_bytes"]) == \
        (1000, 500, 256000)
    # one exiting worker's tcache each, as in test_accounting: no loss
    assert rep["lost"]["free_untracked"] == 4
    assert rep["lost"]["total"] == 4


@pytest.mark.parametrize("slots", TABLES)
def test_realloc_chain(monkeypatch, slots):
    rep, _ = run(monkeypatch, slots, "realloc_chain")
    shrink = assert_realloc_chain(rep)
    assert (shrink["outstanding_bytes"], shrink["outstanding_count"]) == (512, 1)
    assert rep["lost"]["total"] == 0


@pytest.mark.parametrize("slots", TABLES)
def test_unseen_free_retires_the_old_block(monkeypatch, slots):
    """stale: a block's address handed out again without a free memtrace
    saw. The old block must be retired and counted (lost.free_missed), wherever
    it was: in the new block's set (default), or in the hash while its set
    had room again (4 slots: without looking in the hash first, both blocks
    stayed outstanding)."""
    rep, full = run(monkeypatch, slots, "stale", "--alloc-fn", "st_alloc",
                    "--free-fn", "st_free")
    assert_room(slots, full)
    g = by_function(rep["stacks"], "use_stale")
    assert (g["alloc_count"], g["outstanding_count"], g["outstanding_bytes"]) == (2, 1, 300)
    g = by_function(rep["stacks"], "fill")
    assert (g["alloc_count"], g["outstanding_count"], g["outstanding_bytes"]) == (4, 3, 300)
    assert rep["lost"]["free_missed"] == 1
    assert rep["lost"]["total"] == 1


@pytest.mark.parametrize("slots", TABLES)
def test_old_blocks_make_room(monkeypatch, slots):
    """aging: blocks older than 10 ms are moved from a full set to the
    hash to make room for new ones (4 slots: the first 4 young blocks move
    old ones, the last 2 find only young ones and go to the hash); frees
    find each block where it is, and a moved block is counted once."""
    rep, full, moved = run(monkeypatch, slots, "aging", moved=True)
    if slots:
        assert moved >= 4 and full >= 4, (full, moved)
    else:
        assert (full, moved) == (0, 0)
    g = by_function(rep["stacks"], "old_blocks")
    assert (g["alloc_count"], g["outstanding_count"], g["outstanding_bytes"]) == (6, 4, 400)
    g = by_function(rep["stacks"], "young_blocks")
    assert (g["alloc_count"], g["outstanding_count"], g["outstanding_bytes"]) == (6, 4, 800)
    assert rep["lost"]["total"] == 0
