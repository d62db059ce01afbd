#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""memtrace -a's own cost: time to attach (start to its "tracing" line),
its CPU time and peak RSS (its JSON report's "self"), idle and while
bench/churn makes 3 million allocations; then the idle steady state from
a 5 s and a 30 s run; then new processes: a shell loop starting
/bin/true, timed without memtrace and under memtrace -a in each
repetition (the ratio), with memtrace's CPU per process started and how
long it took to exit after SIGINT (what it had left to catch up on); and
the same loop as `memtrace -- COMMAND`, where every process is stopped
at its fork and exec until memtrace has hooked it (the loop times
itself, so memtrace's start-up is not in it).
Needs root and a built tree (make).

    sudo bench/system_cost.py [--reps N] [--procs N] [--procs-only]
"""
import argparse
import json
import os
import signal
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MEMTRACE = os.path.join(ROOT, "build", "memtrace")
CHURN = os.path.join(ROOT, "build", "bench", "churn")


def start(out, top):
    """memtrace -a, once it says it is tracing."""
    p = subprocess.Popen([MEMTRACE, "-a", "--json", "-n", str(top), "-o", out],
                         stderr=subprocess.PIPE, text=True)
    while True:
        line = p.stderr.readline()
        if "tracing" in line or not line:
            return p


def stop(p, out):
    """SIGINT; its final report."""
    p.send_signal(signal.SIGINT)
    p.wait()
    with open(out) as f:
        return [json.loads(l) for l in f if l.startswith("{")][-1]


def run(load, secs, out):
    t0 = time.monotonic()
    p = start(out, 5)
    attach = time.monotonic() - t0
    lp = subprocess.Popen([CHURN, "3000000", "1"], stdout=subprocess.DEVNULL) if load else None
    time.sleep(secs)
    if lp:
        lp.wait()
    return attach, stop(p, out)


def spawn_loop(n):
    """Seconds a shell takes to start /bin/true n times."""
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"],
                   check=True)
    return time.monotonic() - t0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def procs_cost(n, out):
    """(loop s without memtrace, with memtrace -a, memtrace CPU s during the
    loop and 1 s after, s from SIGINT to its exit, events dropped, its
    peak RSS MiB)"""
    base = spawn_loop(n)
    p = start(out, 0)
    time.sleep(1)
    c0 = cpu_s(p.pid)
    traced = spawn_loop(n)
    time.sleep(1)
    c1 = cpu_s(p.pid)
    t0 = time.monotonic()
    r = stop(p, out)
    exit_s = time.monotonic() - t0
    return base, traced, c1 - c0, exit_s, r["lost"]["exec_event_dropped"], \
        r["self"]["max_rss_kib"] / 1024


def tree_cost(n, out):
    """(loop s without memtrace, the loop as memtrace -- COMMAND,
    memtrace's CPU s in all, its peak RSS MiB)"""
    script = (f"t0=$(date +%s%N); i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done; "
              "echo loop_ns $(( $(date +%s%N) - t0 ))")
    base = spawn_loop(n)
    r = subprocess.run([MEMTRACE, "--json", "-n", "0", "-o", out, "--", "sh", "-c", script],
                       capture_output=True, text=True, check=True)
    traced = int(r.stdout.split("loop_ns")[1].split()[0]) / 1e9
    with open(out) as f:
        rep = [json.loads(l) for l in f if l.startswith("{")][-1]
    return base, traced, rep["self"]["cpu_s"], rep["self"]["max_rss_kib"] / 1024


def main():
    global MEMTRACE
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--procs", type=int, default=1000,
                    help="processes the shell loop starts (default 1000)")
    ap.add_argument("--procs-only", action="store_true", help="only the new processes' cost")
    ap.add_argument("--memtrace", default=MEMTRACE, help="the binary (default build/memtrace)")
    args = ap.parse_args()
    MEMTRACE = args.memtrace
    out = os.path.join(tempfile.mkdtemp(), "r.json")
    for load in () if args.procs_only else (False, True):
        for _ in range(args.reps):
            a, r = run(load, 10, out)
            print(f"{'churn load' if load else 'idle':10} attach {a * 1000:4.0f} ms, "
                  f"memtrace CPU {r['self']['cpu_s']:.3f} s in {r['duration_s']:.1f} s, "
                  f"peak RSS {r['self']['max_rss_kib'] / 1024:.1f} MiB, "
                  f"allocations seen {r['totals']['alloc_count']}, lost {r['lost']['total']}")
    cpu = {}
    for secs in () if args.procs_only else (5, 30):
        _, r = run(False, secs, out)
        cpu[secs] = r["self"]["cpu_s"]
    if cpu:
        print(f"idle steady state: {(cpu[30] - cpu[5]) / 25 * 1000:.2f} ms of CPU per second "
              f"({(cpu[30] - cpu[5]) / 25 * 100:.3f}% of one core)")
    for _ in range(args.reps):
        base, traced, c, exit_s, dropped, rss = procs_cost(args.procs, out)
        print(f"{args.procs} x /bin/true: {base:.2f} s alone, {traced:.2f} s under memtrace -a "
              f"({traced / base:.2f}x); memtrace CPU {c * 1000 / args.procs:.2f} ms a process "
              f"(over the loop and 1 s after), exit {exit_s:.2f} s after SIGINT, "
              f"exec events dropped {dropped}, peak RSS {rss:.1f} MiB")
    for _ in range(args.reps):
        base, traced, c, rss = tree_cost(args.procs, out)
        print(f"{args.procs} x /bin/true: {base:.2f} s alone, {traced:.2f} s as memtrace -- "
              f"COMMAND ({traced / base:.2f}x, {(traced - base) * 1000 / args.procs:.1f} ms "
              f"more a process); memtrace CPU {c * 1000 / args.procs:.2f} ms a process "
              f"(start-up included), peak RSS {rss:.1f} MiB")


if __name__ == "__main__":
    main()
