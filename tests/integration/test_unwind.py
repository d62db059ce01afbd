# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Complete stacks without frame pointers: the CFI unwinder against
programs built -fomit-frame-pointer (tests/progs/nofp*.c, nofp_cxx.cpp),
and the same programs with --unwind fp to show they need it."""
import os
import time

import pytest

from conftest import (PROGS, Tracer, Waiter, by_function, memtrace, prog, reports, trace_cmd,
                      wait_stderr)


def names(entry):
    """Function names of a stack, outermost last; inline frames dropped."""
    return [(f["symbol"] or "?").split("(")[0] for f in entry["frames"] if not f["inlined"]]


def stacks_with(report, first):
    return [e for e in report["stacks"] if names(e) and names(e)[0] == first]


def assert_complete(entry, *chain):
    """The stack starts with chain, in order, and ends at _start."""
    got = names(entry)
    assert got[:len(chain)] == list(chain), got
    assert got[-1] == "_start", got
    assert entry["truncated"] is False, got


@pytest.mark.parametrize("name", ["nofp", "nofp_nopie"])
def test_chain_without_frame_pointers(name):
    rep, _ = trace_cmd(name)
    total = by_function(rep["stacks"], "level3")
    assert total["alloc_bytes"] == 3 * 1111 and total["alloc_count"] == 3
    assert total["outstanding_bytes"] == 3 * 1111
    for e in stacks_with(rep, "level3"):
        assert_complete(e, "level3", "level2", "level1", "main")


@pytest.mark.parametrize("name", ["nofp", "nofp_nopie"])
def test_callback_called_by_libc(name):
    """qsort (libc, no frame pointers) calls cmp_alloc, which allocates:
    the stack goes through qsort back to the function that called it."""
    rep, _ = trace_cmd(name)
    [e] = stacks_with(rep, "cmp_alloc")
    assert (e["alloc_bytes"], e["alloc_count"]) == (77, 1)
    got = names(e)
    assert_complete(e, "cmp_alloc")
    assert any(n.startswith("qsort") or n.startswith("msort") for n in got), got
    assert got[-5:-3] == ["sort_with_callback", "main"], got


@pytest.mark.parametrize("name", ["nofp", "nofp_nopie"])
def test_through_a_signal_frame(name):
    """A signal handler's allocation: the walk crosses the kernel's signal
    frame (__restore_rt) into the interrupted code and on to main."""
    rep, _ = trace_cmd(name)
    [e] = stacks_with(rep, "on_usr2")
    assert (e["alloc_bytes"], e["alloc_count"]) == (33, 1)
    got = names(e)
    assert_complete(e, "on_usr2")
    # frame 1: libc's signal trampoline (__restore_rt, a local symbol);
    # then the code the signal interrupted, inside raise()
    assert e["frames"][1]["module"].endswith("/libc.so.6"), e["frames"][1]
    assert "raise" in got[2:-5], got
    assert got[-5:-3] == ["signal_alloc", "main"], got


def test_stack_ids_never_shared():
    """With the stack hash cut to 2 bits (a test knob), different stacks
    meet in the same slots: each stored stack keeps its own frames and
    exact numbers, and what found no slot is counted, not merged."""
    env = dict(os.environ, MEMTRACE_TEST_STACK_HASH_BITS="2")
    r = memtrace("--json", "-n", "0", "--", prog("nofp"), env=env)
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    assert rep["lost"]["stack_collision"] > 0, rep["lost"]
    want = {"level3": 1111, "cmp_alloc": 77, "on_usr2": 33, "plugin_level2": 555}
    seen = 0
    for e in rep["stacks"]:
        if e["frames"] and names(e)[0] in want:
            assert e["alloc_bytes"] == want[names(e)[0]] * e["alloc_count"], names(e)
            seen += 1
    stored = [e for e in rep["stacks"] if e["frames"]]
    assert len({e["stack_id"] for e in stored}) == len(stored)
    assert len(stored) <= 7  # ids h..h+3 for h in 0..3, 0 never used
    # nothing lost from the totals: unstored stacks still count their bytes
    assert rep["totals"]["alloc_bytes"] == sum(e["alloc_bytes"] for e in rep["stacks"])


def test_frame_pointers_alone_lose_callers():
    """The programs really need CFI: frame pointers alone lose level2,
    level1 and main (so the tests above cannot pass by accident)."""
    rep, _ = trace_cmd("nofp", opts=("-n", "0", "--unwind", "fp"))
    e = stacks_with(rep, "level3")
    assert e and all("level1" not in names(x) for x in e), [names(x) for x in e]


def test_dlopen_after_attach():
    """A library without frame pointers dlopen'ed after memtrace attached
    (-p) gets a table before its allocations: complete stacks."""
    w = Waiter("wait", name="nofp")
    try:
        t = Tracer("-v", "-p", str(w.pid))
        w.step("step1")
        w.step("step2")  # dlopen done
        wait_stderr(t, "unwind table for " + os.path.join(PROGS, "libnofp_plugin.so"))
        os.kill(w.pid, __import__("signal").SIGUSR1)
        assert w.p.stdout.readline().strip() == "step3"
        w.p.wait(timeout=10)
        rc, reps, err = t.finish()
        assert rc == 0, err
    finally:
        w.close()
    rep = reps[-1]
    total = by_function(rep["stacks"], "plugin_level2")
    assert (total["alloc_bytes"], total["alloc_count"]) == (2 * 555, 2)
    for e in stacks_with(rep, "plugin_level2"):
        assert_complete(e, "plugin_level2", "plugin_level1", "plugin_alloc", "main")
    # the steps before: traced from attach on, complete too
    for e in stacks_with(rep, "level3"):
        assert_complete(e, "level3", "level2", "level1", "main")


def test_cxx_through_libstdcxx():
    """C++ without frame pointers; std::string's allocation is made inside
    libstdc++ (no frame pointers either); vector growth through new."""
    rep, _ = trace_cmd("nofp_cxx")
    grow = [e for e in rep["stacks"] if "fill_vector" in names(e) and
            any("_M_realloc_insert" in n for n in names(e))]
    assert sum(e["alloc_count"] for e in grow) == 11
    assert sum(e["alloc_bytes"] for e in grow) == 4 * (2048 - 1)
    assert sum(e["outstanding_bytes"] for e in grow) == 4096
    for e in grow:
        got = names(e)
        assert got[got.index("fill_vector"):] == ["fill_vector", "main",
                                                  "__libc_start_call_main",
                                                  "__libc_start_main@@GLIBC_2.34", "_start"], got
        assert e["truncated"] is False
    [s] = [e for e in rep["stacks"] if e["alloc_bytes"] == 101]
    got = names(s)
    assert "libstdc++" in s["frames"][0]["module"], s["frames"][0]
    assert got[got.index("make_string"):][:2] == ["make_string", "main"], got
    assert s["truncated"] is False and got[-1] == "_start"
    assert rep["lost"]["stack_truncated"] == 0


def test_tables_shared_between_processes():
    """Two traced processes mapping the same libc share one table: it is
    built once (memtrace -v says so once per file)."""
    a, b = Waiter("wait", name="nofp"), Waiter("wait", name="nofp")
    try:
        t = Tracer("-v", "-p", f"{a.pid},{b.pid}")
        a.close()
        b.close()
        rc, _, err = t.finish()
        assert rc == 0, err
    finally:
        a.close()
        b.close()
    lines = "".join(t.startup).splitlines() + err.splitlines()
    libc = [l for l in lines if "unwind table for" in l and "/libc.so.6" in l]
    assert len(libc) == 1, lines


def test_idle_table_used_again_unless_the_file_changed(tmp_path):
    """A file's table outlives its last process for a while (idle, out of
    BPF's sight): the next process running the same file gets it back
    without building it again. A file written in place since (cp: the same
    inode, other contents) gets a new one: allocs's table must not unwind
    nofp's code."""
    exe = tmp_path / "prog"
    plugin = "libnofp_plugin.so"
    os.symlink(os.path.join(PROGS, plugin), tmp_path / plugin)
    with open(prog("allocs"), "rb") as src, open(exe, "wb") as dst:
        dst.write(src.read())
    os.chmod(exe, 0o755)
    ino = os.stat(exe).st_ino
    r = memtrace("--json", "-v", "-n", "0", "--", "sh", "-c",
                 f"{exe}; {exe}; cp {prog('nofp')} {exe}; {exe}")
    assert r.returncode == 0, r.stderr
    assert os.stat(exe).st_ino == ino
    rep = reports(r.stdout)[-1]
    runs = [p["pid"] for p in rep["processes"] if p["exe"] == str(exe)]
    assert len(runs) == 3, rep["processes"]
    # built when memtrace hooks a process (/proc/PID/exe), or when the BPF
    # unwinder asks for it (the file's path): a process of a tree's shared
    # links (the 5th here) may be met either way first
    built = [pid for pid in runs
             if f"PID {pid}: unwind table for /proc/{pid}/exe:" in r.stderr
             or f"PID {pid}: unwind table for {exe}:" in r.stderr]
    # allocs's table once for its two runs, then nofp's
    assert built == [runs[0], runs[2]], (runs, r.stderr)
    # (allocs's own frames do not resolve: its file holds nofp now)
    chain = [e for e in stacks_with(rep, "level3") if e["alloc_bytes"] == 1111]
    assert len(chain) == 3, rep["stacks"]
    for e in chain:
        assert_complete(e, "level3", "level2", "level1", "main")
