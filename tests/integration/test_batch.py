# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""--batch: the preload library walks each stack itself (libunwind) and
hands memtrace its events a batch at a time; a block freed within its batch
reaches memtrace as a pair (its stack's totals only). The reports must be
--preload's (which test_preload.py checks against the probes on the
allocators), whatever the batch size: 1 (every event alone, no pairs), a
size that splits the program's events at odd places, and the default."""
import os

import pytest

from conftest import (assert_forker, assert_realloc_chain, by_function, memtrace, prog, reports,
                      src_line, trace_cmd)
from test_preload import table


def run(name, *args, opts=()):
    rep, r = trace_cmd(name, *args, opts=("-n", "0", *opts))
    assert "memtrace_site_batch" in r.stderr or "--batch" not in opts, r.stderr
    return rep


def comparable(rep):
    """What must not change: the stacks' numbers, the totals but the
    peak (taken per batch of changes, and a pair never raises it), the
    lost counters."""
    totals = dict(rep["totals"])
    totals.pop("peak_outstanding_bytes")
    return table(rep), totals, rep["lost"]


@pytest.mark.parametrize("batch", ["--batch=1", "--batch=7", "--batch"])
@pytest.mark.parametrize("name", ["allocs", "cxx", "realloc_chain", "nofp", "nofp_cxx",
                                  "uselib", "memo", "other_allocs_jemalloc",
                                  "other_allocs_mimalloc", "children 8"])
def test_same_report_as_preload(name, batch):
    pre = run(*name.split(), opts=("--preload",))
    got = run(*name.split(), opts=(batch,))
    want, have = comparable(pre), comparable(got)
    if name == "nofp":
        # the plugin nofp dlopens: memtrace's unwinder asks for its table
        # at its first allocation and truncates the stacks until it comes;
        # the library's libunwind reads the file's CFI at once
        plugin = lambda t: {k: v for k, v in t.items() if k[0][0][0] == "plugin_level2"}
        p_want, p_have = plugin(want[0]), plugin(have[0])
        assert [v for k, v in p_want.items() if k[1]] == [[2, 1110, 0, 2, 1110]]
        assert list(p_have.values()) == [[2, 1110, 0, 2, 1110]]
        frames = [f[0] for f in list(p_have)[0][0]]
        assert frames[:4] == ["plugin_level2", "plugin_level1", "plugin_alloc", "main"]
        assert not list(p_have)[0][1]  # not truncated
        for t, p in ((want[0], p_want), (have[0], p_have)):
            for k in p:
                del t[k]
        assert want[2].pop("stack_truncated") == 2 and have[2].pop("stack_truncated") == 0
        want[2].pop("total"), have[2].pop("total")
    assert have == want


def test_exact_on_its_own():
    rep = run("realloc_chain", opts=("--batch",))
    assert_realloc_chain(rep)
    g = [e for e in rep["stacks"] if e["frames"][0]["symbol"] == "grow"][0]
    assert [f["symbol"] for f in g["frames"][:2]] == ["grow", "main"]
    assert not any("libmemtrace-preload" in (f.get("module") or "") for f in g["frames"])
    # nothing of libunwind's, which the library loads and walks with
    assert not any("libunwind" in (f.get("module") or "")
                   for e in rep["stacks"] for f in e["frames"])


def test_threads():
    """Two threads' events in one queue: the frees of blocks another
    thread allocated come after their allocations."""
    pre, got = run("threads", opts=("--preload",)), run("threads", opts=("--batch",))
    want, have = by_function(pre["stacks"], "produce"), by_function(got["stacks"], "produce")
    assert have == want
    assert (have["alloc_count"], have["free_count"], have["outstanding_bytes"]) == \
        (1000, 500, 500 * 512)
    assert got["lost"]["total"] == 0, got["lost"]


@pytest.mark.parametrize("batch", ["--batch", "--batch=1"])
def test_fork_child_starts_empty(batch):
    """The child inherits the parent's queue and drops it (the parent
    hands it over): the parent's blocks are counted once, the child's own
    under the child. With batches of 1 the parent has called the batch
    site before it forks: the child's copy of the site must still work
    (Linux 6.18 leaves it calling a page the child does not have, which
    memtrace fixes while the new child is stopped)."""
    _, child = assert_forker(opts=("-n", "0", batch))
    assert not by_function(child, "parent_alloc")["alloc_count"]


@pytest.mark.parametrize("batch", ["--batch=3", "--batch"])
def test_lost_stacks_counted_per_allocation(batch):
    """Room for one stack: memo's allocations from the stacks that did not
    fit are each counted lost, as --preload counts them (not once a
    stack: the library sends a stack's frames once)."""
    pre = run("memo", opts=("--preload", "--max-stacks", "1"))
    got = run("memo", opts=(batch, "--max-stacks", "1"))
    assert got["lost"] == pre["lost"]
    assert got["lost"]["stack_map_full"] > 10 * len(got["stacks"]), got["lost"]
    assert comparable(got)[1] == comparable(pre)[1]


@pytest.mark.parametrize("how", ["signal", "exit_group", "child"])
def test_queue_taken_at_exit(how):
    """A process that ends without its exit handlers (SIGKILL, a raw
    exit_group; a forked child killed) hands nothing over itself: its last
    thread's exit takes what its queue holds. The report is --preload's."""
    got = {}
    for opt in ("--preload", "--batch"):
        r = memtrace("--json", "-n", "0", opt, "--", prog("killed"), how)
        assert r.returncode == (137 if how == "signal" else 0), r.stderr
        got[opt] = reports(r.stdout)[-1]
    pre, rep = got["--preload"], got["--batch"]
    for name, want in (("kept_alloc", (6, 1500, 0, 1500)), ("freed_alloc", (4, 480, 4, 0))):
        have = by_function(rep["stacks"], name)
        assert (have["alloc_count"], have["alloc_bytes"], have["free_count"],
                have["outstanding_bytes"]) == want, (name, have)
        assert have == by_function(pre["stacks"], name)
    assert [l["frames"][0]["symbol"] for l in rep["leaks"]] == ["kept_alloc"]
    assert rep["lost"]["total"] == 0, rep["lost"]


@pytest.mark.parametrize("how", ["now", "raw"])
def test_exec_hands_over_first(how):
    """execer's 5000-byte block, queued when it execs nofp: handed over
    before the image goes, and gone with it, as without --batch. "now"
    execs with execl, whose wrapper hands the queue over; "raw" with
    syscall(SYS_execve), which no wrapper sees: memtrace takes the queue
    at the exec (tracepoint sched_prepare_exec). Its frames in execer
    itself resolve in the mappings memtrace read at execer's own exec
    stop, kept when nofp replaced them; its libc frames do not (execer's
    libc was mapped and gone between two reads of its maps: README,
    --batch)."""
    pre, got = (run("execer", how, opts=(o,)) for o in ("--preload", "--batch"))
    assert comparable(got)[1] == comparable(pre)[1]
    # nofp's plugin stacks: complete here (test_same_report_as_preload)
    assert got["lost"]["total"] == 0, got["lost"]
    old = [e for e in got["stacks"] if e["alloc_bytes"] == 5000]
    assert [(e["alloc_count"], e["free_count"], e["outstanding_bytes"]) for e in old] == \
        [(1, 1, 0)]
    fr = [(f["symbol"], f.get("line")) for f in old[0]["frames"]]
    assert fr[:2] == [("before_exec", src_line("execer.c", "hold(malloc(5000))")),
                      ("main", src_line("execer.c", "\tbefore_exec();"))], fr
    assert fr[-1][0] == "_start", fr


def test_processes_share_stacks():
    """The same program run 6 times: its stacks are one set for all, as
    in the default mode, where with each process's own addresses (ASLR)
    each process had its own and the stack store filled after a few
    dozen processes. The first run's may differ: its files' tables are
    asked for at its first batch and come after it (frames stay
    addresses until then)."""
    allocs = prog("allocs")
    r = memtrace("--json", "-n", "0", "--batch", "--", "sh", "-c",
                 f"for i in 1 2 3 4 5 6; do {allocs}; done")
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    assert rep["lost"]["total"] == 0, rep["lost"]
    # allocs's own: its child may allocate in sh's code before its exec
    mine = [e for e in rep["stacks"] if e["comm"] == "allocs" and
            any((f.get("file") or "").endswith("allocs.c") for f in e["frames"])]
    pids = sorted({e["pid"] for e in mine}, key=lambda p: min(
        x["start"] for x in rep["processes"] if x["pid"] == p))
    assert len(pids) == 6, pids
    ids = [{e["stack_id"] for e in mine if e["pid"] == p} for p in pids]
    assert all(i == ids[-1] for i in ids[1:]), ids
    for p in pids:
        got = by_function([e for e in mine if e["pid"] == p], "use_malloc")
        assert (got["outstanding_bytes"], got["alloc_count"], got["stacks"]) == (3000, 3, 1)


def test_exited_processes_keys_dropped():
    """What each process's stack keys stand for (batch_stacks) goes when
    the process has exited: with room for 64 keys (a test knob), 10 runs
    of allocs one after the other (about 15 keys each, and sh's) lose no
    stack. Kept for the whole run, they lost 1,843 allocations' stacks."""
    allocs = prog("allocs")
    r = memtrace("--json", "-n", "0", "--batch", "--", "sh", "-c",
                 f"for i in 1 2 3 4 5 6 7 8 9 10; do {allocs}; sleep 0.2; done",
                 env={**os.environ, "MEMTRACE_TEST_BATCH_KEYS": "64"})
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    assert rep["lost"]["total"] == 0, rep["lost"]
    runs = {e["pid"] for e in rep["stacks"] if e["comm"] == "allocs"}
    assert len(runs) == 10, runs
    got = by_function(rep["stacks"], "use_malloc")
    assert (got["outstanding_bytes"], got["alloc_count"]) == (10 * 3000, 10 * 3)


def test_slow_allocator_reported_while_it_runs():
    """slow allocates a block every 200 ms: each call hands over the
    previous one, older than the queue's age limit (0.1 s), so the reports
    taken while it idles have all but its last block; without the limit
    they would have none until it exits (a batch holds 1024 events). The
    last comes with the library's destructor at exit: a report taken
    between that and memtrace seeing the exit may have it too."""
    r = memtrace("--json", "-n", "0", "-i", "1", "--batch", "--", prog("slow"))
    assert r.returncode == 0, r.stderr
    reps = reports(r.stdout)
    seen = [by_function(rep["stacks"], "slow_alloc")["alloc_count"] for rep in reps]
    assert len(seen) >= 3 and reps[-1]["final"], seen
    idle = [n for n in seen[:-1] if n >= 5]
    assert idle and idle[0] == 5 and max(seen[:-1]) <= 6 and seen == sorted(seen), seen
    assert by_function(reps[-1]["stacks"], "slow_alloc")["outstanding_bytes"] == 6 * 700


@pytest.mark.parametrize("args,msg", [
    (("--batch", "-p", "1"), "--preload needs -- COMMAND"),
    (("--batch", "--sample-bytes", "4K", "--", "/bin/true"),
     "--batch does not go with --sample-bytes"),
    (("--batch=0", "--", "/bin/true"), "invalid batch '0'"),
    (("--batch=4097", "--", "/bin/true"), "invalid batch '4097'"),
    (("--batch=x", "--", "/bin/true"), "invalid batch 'x'"),
])
def test_bad_combinations(args, msg):
    r = memtrace(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("Error: ") and msg in r.stderr.splitlines()[0], r.stderr


def test_own_free_refused():
    """A program with its own free (and malloc): --preload refuses it
    already; the message names the first reason."""
    r = memtrace("--batch", "--", prog("own_malloc"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("Error: --preload: ") or r.stderr.startswith("Error: --batch: "), \
        r.stderr
    assert not reports(r.stdout)
