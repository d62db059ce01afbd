#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""BPF time per malloc/free pair of several memtrace binaries, interleaved.

Each repetition runs every binary once (order reversed every other
repetition) on a workload with --bpf-stats, and reads the BPF programs'
run time from the JSON report (self.bpf_run_ns): bench/churn (shallow
stacks), or with --sqlite sqlite3 running bench/run.py's SQL script (deep
stacks, per allocation the report counts). Printed per binary: minimum,
first quartile and median over the repetitions, in ns per pair, and the
median of its ratio to the first binary's run in the same repetition.
The minimum and first quartile are the steadier figures on a VM whose
speed drifts; wall-clock comparisons are bench/run.py's job.
The figures include the statistics' own cost: the kernel reads the clock
before and after every program run (an empty program measures about 40
ns a run on the 2-core VM; a churn pair is three runs).

    bench/bpf_ab.py --reps 12 build/memtrace /tmp/memtrace-before
    bench/bpf_ab.py --sqlite 20000 build/memtrace /tmp/memtrace-before
    bench/bpf_ab.py --held 500000 --pairs 1000000 build/memtrace /tmp/memtrace-before
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHURN = os.path.join(HERE, "..", "build", "bench", "churn")


def one(binary, cmd, stdin, out):
    with open(stdin or os.devnull) as inp:
        subprocess.run([binary, "--bpf-stats", "-j", "-o", out, "--", *cmd], stdin=inp,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    with open(out) as f:
        rep = [json.loads(l) for l in f if l.startswith("{")][-1]
    return rep["self"]["bpf_run_ns"] / rep["totals"]["alloc_count"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="memtrace binaries to compare")
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=200000)
    ap.add_argument("--held", type=int, default=0, metavar="N",
                    help="churn holds N blocks throughout (bench/churn.c); they count "
                         "as allocations in the figure")
    ap.add_argument("--sqlite", type=int, metavar="ROWS",
                    help="run sqlite3 on bench/run.py's script of ROWS rows instead of churn")
    a = ap.parse_args()
    res = {b: [] for b in a.binaries}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        stdin = None
        if a.sqlite:
            sys.path.insert(0, HERE)
            import run  # bench/run.py: the same script as the harness
            stdin = os.path.join(tmp, "script.sql")
            run.sql_script(a.sqlite, stdin)
            cmd, what = [shutil.which("sqlite3") or "sqlite3", ":memory:"], "sqlite3"
        else:
            n = a.pairs // a.threads
            cmd, what = [CHURN, str(n), str(a.threads), str(a.held)], \
                f"churn, {a.threads} thread(s), {a.held} blocks held"
        for r in range(a.reps):
            for b in (a.binaries if r % 2 == 0 else a.binaries[::-1]):
                res[b].append(one(b, cmd, stdin, out))
    first = a.binaries[0]
    for b, v in res.items():
        # each repetition's ratio to the first binary's run in it: the
        # VM's drift between repetitions cancels out
        ratios = sorted(x / y for x, y in zip(v, res[first]))
        v = sorted(v)
        print(f"{b}: BPF ns/pair min {v[0]:.0f}  q1 {v[len(v) // 4]:.0f}  "
              f"median {statistics.median(v):.0f}  ({a.reps} runs, {what})"
              + (f"; x {first}: median {statistics.median(ratios):.3f} "
                 f"({ratios[0]:.3f}-{ratios[-1]:.3f})" if b != first else ""))


if __name__ == "__main__":
    main()
