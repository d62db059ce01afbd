#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""memtrace -a's own cost: time to attach (start to its "tracing" line),
its CPU time and peak RSS (its JSON report's "self"), idle and while
bench/churn makes 3 million allocations; then the idle steady state from
a 5 s and a 30 s run. Needs root and a built tree (make).

    sudo bench/system_cost.py [--reps N]
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


def run(load, secs, out):
    t0 = time.monotonic()
    p = subprocess.Popen([MEMTRACE, "-a", "--json", "-n", "5", "-o", out],
                         stderr=subprocess.PIPE, text=True)
    while True:
        line = p.stderr.readline()
        if "tracing" in line or not line:
            break
    attach = time.monotonic() - t0
    lp = subprocess.Popen([CHURN, "3000000", "1"], stdout=subprocess.DEVNULL) if load else None
    time.sleep(secs)
    if lp:
        lp.wait()
    p.send_signal(signal.SIGINT)
    p.wait()
    with open(out) as f:
        r = [json.loads(l) for l in f if l.startswith("{")][-1]
    return attach, r


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    out = os.path.join(tempfile.mkdtemp(), "r.json")
    for load in (False, True):
        for _ in range(args.reps):
            a, r = run(load, 10, out)
            print(f"{'churn load' if load else 'idle':10} attach {a * 1000:4.0f} ms, "
                  f"memtrace CPU {r['self']['cpu_s']:.3f} s in {r['duration_s']:.1f} s, "
                  f"peak RSS {r['self']['max_rss_kib'] / 1024:.1f} MiB, "
                  f"allocations seen {r['totals']['alloc_count']}, lost {r['lost']['total']}")
    cpu = {}
    for secs in (5, 30):
        _, r = run(False, secs, out)
        cpu[secs] = r["self"]["cpu_s"]
    print(f"idle steady state: {(cpu[30] - cpu[5]) / 25 * 1000:.2f} ms of CPU per second "
          f"({(cpu[30] - cpu[5]) / 25 * 100:.3f}% of one core)")


if __name__ == "__main__":
    main()
