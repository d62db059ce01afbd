# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""-p attach, targets exiting, signals, intervals, exit status passthrough,
and that nothing is left attached afterwards."""
import os
import signal
import subprocess
import time

import pytest

from conftest import (MEMTRACE, Tracer, Waiter, assert_forker, assert_no_probes_left,
                      by_function, memtrace, prog, reports, trace_cmd)


@pytest.fixture
def waiter():
    w = Waiter("stay")
    yield w
    w.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_attach_pid_and_signal_gives_final_report(waiter, sig, tmp_path):
    t = Tracer("-p", str(waiter.pid), out=str(tmp_path / "r.json"))
    assert t.attach_s < 1.0, f"attach took {t.attach_s:.3f} s"
    waiter.step("step1")
    rc, reps, err = t.finish(sig)
    assert rc == 0, err
    rep = reps[-1]
    assert rep["final"] is True
    assert rep["processes"][0]["pid"] == waiter.pid
    assert rep["processes"][0]["comm"] == "waiter"
    assert rep["processes"][0]["exited"] is False
    got = by_function(rep["stacks"], "after_attach")
    assert (got["outstanding_bytes"], got["outstanding_count"]) == (21000, 7)
    # allocated before attach: not seen; their frees are counted, not errors
    assert by_function(rep["stacks"], "before_attach")["stacks"] == 0
    assert rep["lost"]["free_untracked"] == 2
    assert waiter.p.poll() is None, "the target must survive memtrace"
    assert_no_probes_left()


def test_target_exit_ends_tracing_and_keeps_symbols():
    w = Waiter()
    try:
        t = Tracer("-p", str(w.pid), "--min-age", "1000")
        w.step("step1")
        os.kill(w.pid, signal.SIGUSR1)
        rc, reps, err = t.finish()
        assert rc == 0, err
        assert w.p.wait() == 3
    finally:
        w.close()
    rep = reps[-1]
    assert rep["final"] is True and rep["processes"][0]["exited"] is True
    # everything an exited process never freed is a leak, whatever its age
    leak = by_function(rep["leaks"], "after_attach")
    assert (leak["outstanding_bytes"], leak["outstanding_count"]) == (21000, 7)
    l = [l for l in rep["leaks"] if l["frames"][0]["symbol"] == "after_attach"][0]
    assert l["reason"] == "not_freed_at_exit"
    assert l["frames"][1]["symbol"] == "main"
    assert_no_probes_left()


def test_min_age_leaks(waiter):
    t = Tracer("-p", str(waiter.pid), "--min-age", "0.5")
    waiter.step("step1")
    time.sleep(1.0)
    rc, reps, _ = t.finish(signal.SIGINT)
    leak = [l for l in reps[-1]["leaks"] if l["frames"][0]["symbol"] == "after_attach"]
    assert len(leak) == 1
    assert leak[0]["reason"] == "older_than_min_age"
    assert leak[0]["outstanding_bytes"] == 21000
    assert 0.9 <= leak[0]["oldest_age_s"] < 30


def test_young_allocations_are_not_leaks(waiter):
    t = Tracer("-p", str(waiter.pid), "--min-age", "1000")
    waiter.step("step1")
    rc, reps, _ = t.finish(signal.SIGINT)
    assert by_function(reps[-1]["leaks"], "after_attach")["stacks"] == 0
    assert by_function(reps[-1]["stacks"], "after_attach")["outstanding_bytes"] == 21000


def test_interval_and_duration(waiter):
    t = Tracer("-p", str(waiter.pid), "-i", "0.3", "-d", "1.45")
    waiter.step("step1")
    rc, reps, err = t.finish()
    assert rc == 0, err
    assert len(reps) == 5, [r["final"] for r in reps]
    assert [r["final"] for r in reps] == [False] * 4 + [True]
    assert 1.4 <= reps[-1]["duration_s"] < 3
    assert by_function(reps[-1]["stacks"], "after_attach")["outstanding_bytes"] == 21000
    assert_no_probes_left()


def test_multiple_pids():
    a, b = Waiter("stay"), Waiter("stay")
    try:
        t = Tracer("-p", f"{a.pid},{b.pid}")
        a.step("step1")
        b.step("step1")
        rc, reps, _ = t.finish(signal.SIGINT)
    finally:
        a.close()
        b.close()
    rep = reps[-1]
    assert {p["pid"] for p in rep["processes"]} == {a.pid, b.pid}
    for pid in (a.pid, b.pid):
        mine = [s for s in rep["stacks"] if s["pid"] == pid]
        assert by_function(mine, "after_attach")["outstanding_bytes"] == 21000


def test_thread_id_traces_its_process():
    w = Waiter("stay", "thread")
    try:
        assert w.tid and w.tid[0] != w.pid
        t = Tracer("-p", str(w.tid[0]))
        w.step("step1")
        rc, reps, _ = t.finish(signal.SIGINT)
    finally:
        w.close()
    rep = reps[-1]
    assert [p["pid"] for p in rep["processes"]] == [w.pid]
    # after_attach runs on the main thread, not the one named
    assert by_function(rep["stacks"], "after_attach")["outstanding_bytes"] == 21000


def test_command_exit_status_and_stdio_pass_through(tmp_path):
    r = memtrace("-o", str(tmp_path / "r.txt"), "--", "/bin/sh", "-c", "exit 7")
    assert r.returncode == 7
    r = memtrace("-o", str(tmp_path / "r.txt"), "--", "/bin/cat", input="hello\n")
    assert r.returncode == 0 and r.stdout == "hello\n"
    r = memtrace("-o", str(tmp_path / "r.txt"), "--", "/bin/sh", "-c", "echo oops >&2; kill -9 $$")
    assert r.returncode == 128 + 9
    assert "oops" in r.stderr
    assert "Top" in (tmp_path / "r.txt").read_text()
    assert_no_probes_left()


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def stays_stopped(pid):
    time.sleep(0.5)
    return state(pid) in ("t", "T")


def next_line(f, timeout=10):
    """A line the command prints within timeout, or None. (Nothing is
    left in f's buffer here: the command prints a line only when told.)"""
    import select
    r, _, _ = select.select([f], [], [], timeout)
    return f.readline().strip() if r else None


def test_stopped_command_continues(tmp_path):
    """The command stopped by SIGSTOP stays stopped under memtrace, as
    without it, and so does a signal sent meanwhile; SIGCONT lets it run on
    and take that signal. (It once stayed stopped for ever after SIGCONT.)"""
    out = tmp_path / "r.json"
    p = subprocess.Popen([MEMTRACE, "--json", "-n", "0", "-o", str(out), "--", prog("waiter")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = None
    try:
        assert p.stdout.readline().startswith("thread none")
        pid = int(p.stdout.readline().split()[1])
        os.kill(pid, signal.SIGSTOP)
        assert stays_stopped(pid)
        os.kill(pid, signal.SIGUSR1)  # waits until continued
        assert stays_stopped(pid)
        os.kill(pid, signal.SIGCONT)
        assert next_line(p.stdout) == "step1"
        assert state(pid) not in ("t", "T")
        os.kill(pid, signal.SIGSTOP)  # again: now a signal that ends it
        assert stays_stopped(pid)
        os.kill(pid, signal.SIGTERM)
        assert stays_stopped(pid)
        os.kill(pid, signal.SIGCONT)
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            if pid:
                os.kill(pid, signal.SIGKILL)  # it holds our pipes too
            p.kill()
        err = p.communicate()[1]
    assert rc == 128 + signal.SIGTERM, err
    rep = reports(out.read_text())[-1]
    assert rep["final"] is True
    assert by_function(rep["stacks"], "after_attach")["outstanding_bytes"] == 7 * 3000
    assert_no_probes_left()


def test_command_gets_default_sigpipe(tmp_path):
    # memtrace ignores SIGPIPE itself; the command must not inherit that
    # (yes dies of SIGPIPE: status 141; with SIGPIPE ignored it would
    # print "Broken pipe" and exit 1)
    r = memtrace("-o", str(tmp_path / "r.txt"), "--", "/bin/sh", "-c",
                 "(yes; echo status=$? >&2) | head -1 >/dev/null", timeout=30)
    assert r.returncode == 0
    assert "status=141" in r.stderr, r.stderr


def test_text_report(tmp_path):
    r = memtrace("--min-age", "0", "--", "build/tests/progs/demo".replace(
        "build", MEMTRACE.rsplit("/", 1)[0]))
    assert r.returncode == 0
    assert "Top " in r.stdout and "Leak candidates" in r.stdout
    assert "cache_session+0x" in r.stdout
    assert "25.0 KiB in 100 blocks" in r.stdout


import os  # noqa: E402  (used by the exit test)


def test_command_children_and_execs_are_followed(tmp_path):
    """-- COMMAND follows the processes the command starts: a shell script
    runs two programs; each is hooked before it runs (fork and exec stops),
    so both have exact numbers and complete stacks."""
    script = tmp_path / "run.sh"
    script.write_text(f"#!/bin/sh\n{prog('nofp')} >/dev/null\n{prog('allocs')} >/dev/null\n")
    script.chmod(0o755)
    rep, r = trace_cmd(str(script), opts=("-n", "0"))
    procs = {p["comm"]: p for p in rep["processes"]}
    assert {"run.sh", "nofp", "allocs"} <= set(procs), procs
    assert all(p["exited"] for p in rep["processes"])
    nofp = [e for e in rep["stacks"] if e["pid"] == procs["nofp"]["pid"]]
    assert by_function(nofp, "level3")["alloc_bytes"] == 3333
    assert by_function(nofp, "cmp_alloc")["alloc_bytes"] == 77
    for e in nofp:
        if e["frames"] and e["frames"][0]["symbol"] == "level3":
            assert e["truncated"] is False
    allocs = [e for e in rep["stacks"] if e["pid"] == procs["allocs"]["pid"]]
    assert by_function(allocs, "use_malloc")["alloc_count"] == 3


def test_command_fork_child_traced():
    """-- COMMAND that forks (no exec): the child is traced from its first
    allocation, apart from its parent; its free of an inherited block does
    not touch the parent's numbers."""
    assert_forker()


def test_command_tree_one_link_per_file(tmp_path, waiter):
    """-- COMMAND with many processes: from the 4th on, one set of links per
    file serves the whole tree (the BPF program keeps the tree's processes),
    so a process costs no new links; a second later the per-process links
    close. Every process keeps exact numbers, during that second (both
    kinds of links see its calls) and after; a process outside the tree
    that maps the same libc is not traced."""
    script = tmp_path / "tree.sh"
    script.write_text("#!/bin/sh\n"
                      f"for i in 1 2 3 4 5 6; do {prog('threads')}; done\n"
                      f"{prog('allocs')} >/dev/null\n"  # both kinds of links on
                      f"kill -USR1 {waiter.pid}\n"  # the waiter allocates now
                      "sleep 2\n"
                      f"{prog('allocs')} >/dev/null\n")  # the tree's links alone
    script.chmod(0o755)
    r = memtrace("--json", "-n", "0", "-v", "--", str(script))
    assert r.returncode == 0, r.stderr
    assert "one set of probe links for all of them now" in r.stderr
    assert "the command's processes: hooked" in r.stderr
    closed = [l for l in r.stderr.splitlines() if "per-process probe links closed" in l]
    assert len(closed) == 1 and int(closed[0].split()[1]) > 0, r.stderr
    assert waiter.p.stdout.readline().strip() == "step1"
    rep = reports(r.stdout)[-1]
    runs = [p for p in rep["processes"] if p["comm"] == "threads"]
    assert len(runs) == 6
    for p in runs:
        got = by_function([e for e in rep["stacks"] if e["pid"] == p["pid"]], "produce")
        assert (got["alloc_count"], got["free_count"]) == (1000, 500)
        assert got["outstanding_bytes"] == 500 * 512
    # each allocs run: the same numbers, function by function, as alone
    alone, _ = trace_cmd("allocs")
    allocs = [p["pid"] for p in rep["processes"] if p["comm"] == "allocs"]
    assert len(allocs) == 2
    for pid in allocs:
        assert per_function([e for e in rep["stacks"] if e["pid"] == pid]) == \
            per_function(alone["stacks"])
    # the waiter allocated while the tree's links were on: nothing of it
    assert not [e for e in rep["stacks"] if e["pid"] == waiter.pid]
    assert_no_probes_left()


def per_function(stacks):
    out = {}
    for e in stacks:
        if e["frames"] and (e["frames"][0].get("symbol") or "").startswith("use_"):
            k = e["frames"][0]["symbol"]
            v = out.setdefault(k, [0, 0, 0, 0])
            for i, f in enumerate(("alloc_bytes", "alloc_count", "free_count",
                                   "outstanding_bytes")):
                v[i] += e[f]
    assert out
    return out


@pytest.mark.parametrize("room", [("--max-stacks", "20"), ("--max-allocs", "30")])
def test_exited_processes_leave_the_maps(room):
    """A long process tree, one process at a time: 10 children with 6
    stacks each, each leaving its 6 blocks, and room in the stats map for
    20 (process, stack) pairs, or in allocs for 30 blocks. The totals and
    the blocks of children that exited move out of the maps (memtrace keeps
    them, the blocks as a sum per stack), so none is lost and every child's
    numbers are exact. Kept in allocs, the blocks of the children after
    the fifth were lost (allocs_map_full 30)."""
    n = 10
    rep, _ = trace_cmd("children", str(n), "250", opts=("-n", "0", *room))
    assert rep["lost"]["total"] == 0, rep["lost"]
    pids = set()
    for i in range(1, 7):
        mine = [s for s in rep["stacks"] if s["frames"] and s["frames"][0]["symbol"] == f"alloc_{i}"]
        assert len(mine) == n, (i, mine)
        for s in mine:
            assert (s["outstanding_bytes"], s["outstanding_count"], s["alloc_bytes"],
                    s["alloc_count"], s["free_count"]) == (i * 100, 1, i * 100, 1, 0), s
        pids |= {s["pid"] for s in mine}
    assert len(pids) == n
    leaks = [l for l in rep["leaks"] if l["frames"][0]["symbol"].startswith("alloc_")]
    assert len(leaks) == 6 * n
    assert {l["reason"] for l in leaks} == {"not_freed_at_exit"}
