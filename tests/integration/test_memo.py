# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Remembered walks (walk_memo in the BPF program): a user stack whose
start and every stack word its walk used read the same as an earlier
walk's is that walk's stack, and is not walked again.

tests/progs/memo.c (no frame pointers, rbp data that changes every round)
reaches malloc from one place by seven stacks that differ only above that
place, six of them at one stack depth. Each must come out exact; the whole report
must be the same as with every stack walked (MEMTRACE_TEST_NO_MEMO), also
when the per-word tags are all the same (MEMTRACE_TEST_MEMO_NO_TAGS: the
hash alone must tell the stacks apart); and a loop allocating from one
stack must reuse its walk. memo_far is the same with a 6,000-byte frame
above wrapper's caller: the words that tell the stacks apart lie beyond the
first stretch of stack a check reads (MT_MEMO_WIN, 4 KiB).

tests/progs/memo_many.c allocates from 256 places in turn, on one CPU: the
table must hold them all (it held 256 walks a CPU, in 64 sets of 4, before
it kept hashes instead of words: 70-79% of such allocations reused a walk).
"""
import itertools
import re

import pytest

from conftest import memtrace, prog, reports
from test_unwind import assert_complete, names

ROUNDS, LOOP = 200, 2000  # as in tests/progs/memo.c


MANY_ROUNDS = 40  # as in tests/progs/memo_many.c


def run(monkeypatch, memo=True, name="memo", tags=True):
    if memo:
        monkeypatch.delenv("MEMTRACE_TEST_NO_MEMO", raising=False)
    else:
        monkeypatch.setenv("MEMTRACE_TEST_NO_MEMO", "1")
    if tags:
        monkeypatch.delenv("MEMTRACE_TEST_MEMO_NO_TAGS", raising=False)
    else:  # every word's tag reads the same: the hash alone must tell
        monkeypatch.setenv("MEMTRACE_TEST_MEMO_NO_TAGS", "1")
    r = memtrace("-v", "--json", "-n", "0", "--", prog(name))
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) user stacks were a remembered walk's", r.stderr)
    assert m, r.stderr
    return reports(r.stdout)[-1], int(m.group(1))


def frames(e):
    return tuple((f["symbol"], f["file"], f["line"]) for f in e["frames"])


@pytest.mark.parametrize("name", ["memo", "memo_far"])
def test_one_place_seven_stacks(monkeypatch, name):
    rep, reused = run(monkeypatch, name=name)
    got = {}
    for e in rep["stacks"]:
        if names(e)[:1] != ["wrapper"]:
            continue
        size = e["alloc_bytes"] // e["alloc_count"]
        assert e["alloc_bytes"] == size * e["alloc_count"], e
        caller, grand = names(e)[1:3]
        got[(size, caller, grand)] = got.get((size, caller, grand), 0) + e["alloc_count"]
        assert e["free_count"] == e["alloc_count"] and e["outstanding_bytes"] == 0, e
        assert_complete(e, "wrapper", caller, grand, "main")
    want = {(s, "parent", g): ROUNDS for s in (101, 202, 303) for g in ("grand_a", "grand_b")}
    want[(404, "loop_parent", "grand_a")] = LOOP
    assert got == want
    # each of the seven is its own stack: the call sites' lines differ
    lines = {e["frames"][1]["line"] for e in rep["stacks"] if names(e)[:2] == ["wrapper", "parent"]}
    assert len(lines) == 3, lines
    assert rep["lost"]["total"] == 0, rep["lost"]
    # the loop's walks are reused (a miss per CPU it runs on, or so)
    assert reused >= LOOP * 9 // 10, reused


@pytest.mark.parametrize("name", ["memo", "memo_far"])
@pytest.mark.parametrize("tags", [True, False], ids=["tags", "hash_alone"])
def test_same_report_as_walking_every_stack(monkeypatch, tags, name):
    with_memo, reused = run(monkeypatch, tags=tags, name=name)
    without, none = run(monkeypatch, memo=False, name=name)
    assert none == 0 and reused > 0

    def table(rep):
        t = {}
        for e in rep["stacks"]:
            k = (frames(e), e["truncated"])
            a = t.setdefault(k, [0, 0, 0])
            a[0] += e["alloc_count"]
            a[1] += e["alloc_bytes"]
            a[2] += e["free_count"]
        return t

    assert table(with_memo) == table(without)
    assert with_memo["totals"]["alloc_count"] == without["totals"]["alloc_count"]
    assert with_memo["lost"] == without["lost"]


def test_many_places_fit(monkeypatch):
    rep, reused = run(monkeypatch, name="memo_many")
    sites = {"site_1" + "".join(d): int("1" + "".join(d)) - 9999
             for d in itertools.product("0123", repeat=4)}
    got = {}
    for e in rep["stacks"]:
        name = names(e)[0] if names(e) else None
        if name in sites:
            assert_complete(e, name, "main")
            got[name] = (got.get(name, (0, 0))[0] + e["alloc_count"],
                         got.get(name, (0, 0))[1] + e["alloc_bytes"])
    assert got == {n: (MANY_ROUNDS, MANY_ROUNDS * size) for n, size in sites.items()}
    assert rep["lost"]["total"] == 0, rep["lost"]
    # every walk is reused after the first round or two (the epoch moves on
    # once early in the run: memtrace's look at the mappings after exec),
    # but for a few starts in a set with more than four; other processes
    # starting and exiting meanwhile do not move the epoch on
    total = rep["totals"]["alloc_count"]
    assert reused >= total * 9 // 10, (reused, total)
