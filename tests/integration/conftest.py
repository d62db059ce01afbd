# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Helpers for the integration tests: they run the real build/memtrace,
with real BPF, against the programs in tests/progs. Nothing here skips: a
machine where BPF cannot be loaded fails every test, loudly."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MEMTRACE = os.path.join(ROOT, "build", "memtrace")
PROGS = os.path.join(ROOT, "build", "tests", "progs")
# names of our BPF programs as bpftool shows them (15 chars at most)
OUR_PROGS = {"alloc_enter", "alloc_session", "alloc_return", "preload_site"}


def prog(name):
    return os.path.join(PROGS, name)


def src_line(name, text):
    """The line (1-based) of tests/progs/NAME holding TEXT, which must be
    on one line only: tests name a line by its code, not its number."""
    with open(os.path.join(ROOT, "tests", "progs", name)) as f:
        found = [i for i, line in enumerate(f, 1) if text in line]
    assert len(found) == 1, (name, text, found)
    return found[0]


# MT_SOAK_MODE=batch (or preload): every `-- COMMAND` run that takes no
# option those modes refuse runs with --batch (--preload) instead of the
# default probes, so that every assertion of the suite checks that mode
# too (README, Development). Not part of `make test`: some assertions are
# about the default probes themselves.
SOAK = os.environ.get("MT_SOAK_MODE", "")
_SOAK_REFUSED = {"-p", "--pid", "-a", "--all", "--mmap", "--alloc-fn", "--free-fn", "--unwind",
                 "--preload", "--batch", "--sample-bytes", "--probe-floor"}


def soaked(args):
    args = list(args)
    if not SOAK or "--" not in args:
        return args
    i = args.index("--")
    for a in args[:i]:
        if a.split("=")[0] in _SOAK_REFUSED or (a[:2] in ("-p", "-a") and not a.startswith("--")):
            return args
    return [*args[:i], "--" + SOAK, *args[i:]]


def memtrace(*args, timeout=60, **kw):
    """Run memtrace to completion; returns CompletedProcess (text)."""
    return subprocess.run([MEMTRACE, *soaked(args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def reports(stdout):
    """All JSON reports printed (one per line)."""
    return [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]


def trace_cmd(name, *args, opts=("-n", "0")):
    """Trace a test program with `--`; returns (final report, result)."""
    r = memtrace("--json", *opts, "--", prog(name), *args)
    assert r.returncode == 0, r.stderr
    reps = reports(r.stdout)
    assert reps, "no JSON report in output:\n" + r.stdout + r.stderr
    assert reps[-1]["final"] is True
    return reps[-1], r


def by_function(entries, name):
    """Sum the entries whose allocating function (frames[0]) is name.
    A function with several call sites has one stack per site."""
    out = {"outstanding_bytes": 0, "outstanding_count": 0, "alloc_bytes": 0,
           "alloc_count": 0, "free_count": 0, "stacks": 0}
    for e in entries:
        if e["frames"] and (e["frames"][0]["symbol"] or "").split("(")[0] == name:
            for k in out:
                if k != "stacks":
                    out[k] += e[k]
            out["stacks"] += 1
    return out


def assert_forker(opts=("-n", "0")):
    """tests/progs/forker now: the parent's 1700 bytes in parent_alloc stay
    the parent's, the child's 5 x 300 in child_alloc are the child's (its
    free of an inherited block does not touch the parent's numbers).
    Returns the report and the stacks of the child."""
    rep, r = trace_cmd("forker", "now", opts=opts)
    step1 = [l for l in r.stdout.splitlines() if l.startswith("step1")][0].split()
    child = int(step1[1])
    assert step1[2] == "0", f"the child's wait status: {step1[2]}"
    parent = [p["pid"] for p in rep["processes"] if p["pid"] != child][0]
    mine = lambda pid: [e for e in rep["stacks"] if e["pid"] == pid]
    got = by_function(mine(parent), "parent_alloc")
    assert (got["alloc_bytes"], got["outstanding_bytes"], got["free_count"]) == (1700, 1700, 0)
    got = by_function(mine(child), "child_alloc")
    assert (got["alloc_bytes"], got["alloc_count"], got["outstanding_bytes"]) == (1500, 5, 1500)
    return rep, mine(child)


def assert_realloc_chain(rep):
    """tests/progs/realloc_chain: grow reallocs 64 B up to 32 KiB (10
    blocks, 9 moved on), shrink 4 KiB down to 512 B (4 blocks, 3 moved)."""
    grow = by_function(rep["stacks"], "grow")
    assert grow == {"outstanding_bytes": 32768, "outstanding_count": 1,
                    "alloc_bytes": sum(64 << i for i in range(10)),
                    "alloc_count": 10, "free_count": 9, "stacks": 1}
    shrink = by_function(rep["stacks"], "shrink")
    assert (shrink["alloc_count"], shrink["free_count"]) == (4, 3)
    assert shrink["alloc_bytes"] == 4096 + 2048 + 1024 + 512
    return shrink


def our_links():
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                                      text=True, check=True).stdout or "[]")
    ids = {p["id"] for p in progs if p.get("name") in OUR_PROGS}
    links = json.loads(subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True,
                                      text=True, check=True).stdout or "[]")
    return ids, [l for l in links if l.get("prog_id") in ids]


def assert_no_probes_left(wait_s=3.0):
    """memtrace has exited: none of its programs or links may remain. The
    kernel frees a released program after an RCU grace period, so allow
    that long (bounded) before judging."""
    deadline = time.monotonic() + wait_s
    while True:
        progs, links = our_links()
        if not progs and not links:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"BPF programs {progs} / links {links} left attached")
        time.sleep(0.05)


def wait_stderr(t, needle, timeout=10, anywhere=False):
    """Wait for a line of Tracer t's stderr containing needle."""
    return t.wait_stderr(needle, timeout, anywhere)


class Waiter:
    """tests/progs/waiter (or another program of the same protocol),
    driven step by step with SIGUSR1."""

    def __init__(self, *args, name="waiter"):
        self.p = subprocess.Popen([prog(name), *args], stdout=subprocess.PIPE,
                                  text=True)
        lines = [self.p.stdout.readline(), self.p.stdout.readline()]
        self.tid = [int(l.split()[1]) for l in lines if l.startswith("thread ") and
                    l.split()[1] != "none"]
        line = [l for l in lines if l.startswith("ready")][0]
        assert line.startswith("ready"), line
        self.pid = self.p.pid

    def step(self, expect):
        os.kill(self.pid, signal.SIGUSR1)
        line = self.p.stdout.readline()
        assert line.strip() == expect, line

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


_tracers = []


class Tracer:
    """A memtrace running in the background; started() waits for attach."""

    def __init__(self, *args, out=None):
        self.out = out
        cmd = [MEMTRACE, "--json", "-n", "0", *soaked(args)]
        if out:
            cmd += ["-o", out]
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        _tracers.append(self.p)
        seen = []
        while True:  # past the "hooked ..." lines
            line = self.p.stderr.readline()
            seen.append(line)
            if "memtrace: tracing" in line or not line or not line.startswith("memtrace: "):
                break
        self.attach_s = time.monotonic() - self.t0
        self.startup = seen  # stderr up to the "tracing" line
        assert "memtrace: tracing" in line, "".join(seen) + self.p.stderr.read()
        # The rest of stderr is read by a thread, line by line, never with
        # select() on the pipe: a line already in the file object's buffer
        # makes no fd readable, and a waiter would miss it.
        self.lines, self.next = [], 0
        self.eof = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, args=(self.p.stderr,), daemon=True)
        self.p.stderr = None  # communicate() leaves it to the reader
        self.reader.start()

    def _read(self, f):
        for line in f:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_stderr(self, needle, timeout=10, anywhere=False):
        """The next stderr line containing needle (after the last one
        found; anywhere: also before it), within timeout seconds."""
        deadline = time.monotonic() + timeout
        first = self.next
        with self.cond:
            for line in self.lines[:first] if anywhere else ():
                if needle in line:
                    return line
            while True:
                while self.next < len(self.lines):
                    line = self.lines[self.next]
                    self.next += 1
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"no '{needle}' from memtrace; it said (after the "
                                         "startup lines; '>>' since this wait):\n" +
                                         "".join(self.lines[:first]) + ">>\n" +
                                         "".join(self.lines[first:]) + self.state())
                self.cond.wait(left)

    def state(self):
        """What memtrace is doing now (running, or blocked where), for a
        failed wait."""
        out = ""
        for name in ("stat", "wchan", "syscall", "stack"):
            try:
                with open(f"/proc/{self.p.pid}/{name}") as f:
                    out += f"memtrace's /proc/{self.p.pid}/{name}:\n{f.read()}\n"
            except OSError as e:
                out += f"memtrace's /proc/{self.p.pid}/{name}: {e}\n"
        return out

    def finish(self, sig=None, timeout=30):
        """Signal (optional), wait for the exit; (exit code, reports,
        stderr after the startup lines)."""
        if sig:
            self.p.send_signal(sig)
        out, _ = self.p.communicate(timeout=timeout)
        self.reader.join(timeout)
        if self.out:
            with open(self.out) as f:
                out = f.read()
        with self.cond:
            err = "".join(self.lines)
        return self.p.returncode, reports(out), err


@pytest.fixture(autouse=True)
def no_tracer_left():
    """A test that failed before finishing its memtrace (-a above all)
    must not leave it running into the next tests."""
    yield
    while _tracers:
        p = _tracers.pop()
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


@pytest.fixture(scope="session", autouse=True)
def bpf_works():
    """Fail (never skip) when this machine cannot run memtrace's BPF."""
    assert os.geteuid() == 0, "integration tests need root (BPF, uprobes)"
    assert os.access(MEMTRACE, os.X_OK), f"{MEMTRACE} not built"
    r = memtrace("--json", "--", "/bin/true")
    assert r.returncode == 0, "memtrace cannot load its BPF programs here:\n" + r.stderr
