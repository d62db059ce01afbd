#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""memtrace benchmark harness: how much each tracer slows real workloads.

Every repetition runs every (workload, tracer) pair once, tracers in a
rotating order, and always a baseline ("none") in the same repetition; each
traced run is compared with that repetition's baseline. Reported: medians
with min-max over the repetitions.

    bench/run.py                    full size (several minutes)
    bench/run.py --small --reps 1   seconds: what CI runs (make bench-smoke)

See docs/benchmarks.md.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, "build")
MEMTRACE = os.path.join(BUILD, "memtrace")
BENCH_BIN = os.path.join(BUILD, "bench")

SIZES = {  # workload: (full, small)
    "churn1": (300000, 5000),
    "churn2": (300000, 5000),
    "churn1-held": (300000, 5000),
    "sqlite": (50000, 300),
    "cxx": (5000, 20),
}
TRACERS = ["none", "floor", "memtrace-fp", "memtrace", "sampled", "floor-preload", "preload",
           "preload-sampled", "floor-batch", "batch",
           "bpftrace", "heaptrack", "massif", "before"]
# whose empty probes a tracer's "x floor" is counted in
FLOOR_OF = {"preload": "floor-preload", "preload-sampled": "floor-preload", "batch": "floor-batch"}
HELD = 500000  # churn1-held: more live blocks than memtrace's block table has slots
BEFORE = None  # --before: another memtrace binary, default mode (A/B in one run)


def libc_path():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libc.so.6" in line and "x86-64" in line:
            return line.split("=>")[1].strip()
    return "/lib/x86_64-linux-gnu/libc.so.6"


def sql_script(rows, path):
    with open(path, "w") as f:
        if not rows:
            return
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);\nBEGIN;\n")
        for i in range(rows):
            f.write(f"INSERT INTO t(name, v) VALUES('name-{i}-{'x' * (i % 40)}', {i * 0.5});\n")
        f.write("COMMIT;\nCREATE INDEX ti ON t(name);\n")
        f.write("SELECT count(*), sum(v) FROM t WHERE name LIKE 'name-1%';\n")
        f.write("UPDATE t SET name = name || '-u' WHERE id % 3 = 0;\n")
        f.write("SELECT name FROM t ORDER BY name DESC LIMIT 5;\n")


def workload_cmd(name, n, tmp):
    if name == "churn1":
        return [os.path.join(BENCH_BIN, "churn"), str(n), "1"], None
    if name == "churn2":
        return [os.path.join(BENCH_BIN, "churn"), str(n // 2), "2"], None
    if name == "churn1-held":  # 500,000 live blocks (1,000 small) held throughout
        return [os.path.join(BENCH_BIN, "churn"), str(n), "1", str(HELD if n > 5000 else 1000)], None
    if name == "cxx":
        return [os.path.join(BENCH_BIN, "cxx_work"), str(n)], None
    if name == "sqlite":
        script = os.path.join(tmp, f"sqlite-{n}.sql")
        if not os.path.exists(script):
            sql_script(n, script)
        return [shutil.which("sqlite3") or "sqlite3", ":memory:"], script
    raise ValueError(name)


def tracer_cmd(tracer, cmd, tmp):
    """Command line running cmd under tracer, and a file memtrace reports to."""
    out = os.path.join(tmp, "report.json")
    if tracer == "none":
        return cmd, None
    if tracer == "floor":
        return [MEMTRACE, "--probe-floor", "--json", "-o", out, "--", *cmd], out
    if tracer == "memtrace":  # full stacks: the CFI unwinder
        return [MEMTRACE, "--json", "-o", out, "--", *cmd], out
    if tracer == "preload":  # the same, at libmemtrace-preload.so's nop sites
        return [MEMTRACE, "--preload", "--json", "-o", out, "--", *cmd], out
    if tracer == "floor-preload":
        return [MEMTRACE, "--preload", "--probe-floor", "--json", "-o", out, "--", *cmd], out
    if tracer == "before":
        return [BEFORE, "--json", "-o", out, "--", *cmd], out
    if tracer == "memtrace-fp":  # frame-pointer stacks: what the unwinder adds
        return [MEMTRACE, "--unwind", "fp", "--json", "-o", out, "--", *cmd], out
    if tracer == "sampled":
        return [MEMTRACE, "--sample-bytes", "512K", "--json", "-o", out, "--", *cmd], out
    if tracer == "batch":  # the library walks stacks and hands over batches
        return [MEMTRACE, "--batch", "--json", "-o", out, "--", *cmd], out
    if tracer == "floor-batch":
        return [MEMTRACE, "--batch", "--probe-floor", "--json", "-o", out, "--", *cmd], out
    if tracer == "preload-sampled":  # the library samples: only sampled blocks trap
        return [MEMTRACE, "--preload", "--sample-bytes", "512K", "--json", "-o", out, "--",
                *cmd], out
    if tracer == "bpftrace":
        script = os.path.join(tmp, "memleak.bt")
        with open(os.path.join(ROOT, "bench", "memleak.bt")) as f:
            text = f.read().replace("LIBC", libc_path())
        with open(script, "w") as f:
            f.write(text)
        return ["bpftrace", "-q", "-c", " ".join(cmd), script], None
    if tracer == "heaptrack":
        return ["heaptrack", "-o", os.path.join(tmp, "heaptrack.out"), *cmd], None
    if tracer == "massif":
        return ["valgrind", "--tool=massif", "--massif-out-file=/dev/null", *cmd], None
    raise ValueError(tracer)


def available(tracer):
    tool = {"none": None, "floor": MEMTRACE, "memtrace": MEMTRACE, "memtrace-fp": MEMTRACE,
            "sampled": MEMTRACE, "preload": MEMTRACE, "floor-preload": MEMTRACE,
            "preload-sampled": MEMTRACE, "floor-batch": MEMTRACE, "batch": MEMTRACE,
            "before": BEFORE or "/nonexistent",
            "bpftrace": "bpftrace",
            "heaptrack": "heaptrack", "massif": "valgrind"}[tracer]
    return tool is None or shutil.which(tool) or os.access(tool, os.X_OK)


def own_time(workload, stdout):
    """The workload's own measurement: ns/pair (churn), seconds (others)."""
    # the workload's last numeric line; some tracers print around it
    for line in reversed(stdout.splitlines()):
        try:
            return float(line.strip())
        except ValueError:
            continue
    return None


def run_one(workload, tracer, n, tmp, timeout):
    res = run_cmd(workload, tracer, n, tmp, timeout)
    if workload == "sqlite" and "error" not in res:
        # sqlite3 times nothing itself: subtract the same tracer running
        # sqlite3 on an empty script (start-up, teardown) in the same rep
        empty = run_cmd(workload, tracer, 0, tmp, timeout)
        if "error" not in empty:
            res["own_s"] = max(res["wall_s"] - empty["wall_s"], 1e-6)
    return res


def run_cmd(workload, tracer, n, tmp, timeout):
    cmd, stdin_path = workload_cmd(workload, n, tmp)
    full, report = tracer_cmd(tracer, cmd, tmp)
    stdin = open(stdin_path) if stdin_path else subprocess.DEVNULL
    t0 = time.monotonic()
    try:
        p = subprocess.run(full, stdin=stdin, capture_output=True, text=True, timeout=timeout)
    finally:
        if stdin_path:
            stdin.close()
    wall = time.monotonic() - t0
    res = {"wall_s": wall, "rc": p.returncode}
    if p.returncode != 0:
        res["error"] = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["exit %d" % p.returncode]
        return res
    own = own_time(workload, p.stdout) if workload != "sqlite" else None
    if own is not None:
        res["own_s"] = own
    if workload.startswith("churn"):
        res["ns_per_pair"] = own
    if report and os.path.exists(report):
        with open(report) as f:
            rep = [json.loads(l) for l in f if l.startswith("{")][-1]
        res["self_cpu_s"] = rep["self"]["cpu_s"]
        res["self_rss_kib"] = rep["self"]["max_rss_kib"]
        res["lost"] = rep["lost"]["total"]
        res["allocs"] = rep["totals"]["alloc_count"]
        os.unlink(report)
    return res


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs)


def summarize(runs, workloads, tracers):
    """Per (workload, tracer): ratio to the same repetition's baseline."""
    rows = []
    for w in workloads:
        base = runs[w]["none"]
        for t in tracers:
            rs = runs[w][t]
            ok = [(r, b) for r, b in zip(rs, base) if "error" not in r and "error" not in b]
            row = {"workload": w, "tracer": t, "runs": len(rs), "ok": len(ok)}
            if not ok:
                row["error"] = next((r.get("error") for r in rs if "error" in r), None)
                rows.append(row)
                continue
            if w.startswith("churn") and all("ns_per_pair" in r for r, _ in ok):
                ratios = [r["ns_per_pair"] / b["ns_per_pair"] for r, b in ok]
                row["added_ns"] = med([r["ns_per_pair"] - b["ns_per_pair"] for r, b in ok])
                row["ns_per_pair"] = med([r["ns_per_pair"] for r, _ in ok])
            elif all("own_s" in r for r, _ in ok) and all("own_s" in b for _, b in ok):
                ratios = [r["own_s"] / b["own_s"] for r, b in ok]
            else:
                ratios = [r["wall_s"] / b["wall_s"] for r, b in ok]
            row["ratio"] = med(ratios)
            row["wall_s"] = med([r["wall_s"] for r, _ in ok])
            row["x_floor"] = vs_floor(runs[w], t, w)
            for k in ("self_cpu_s", "self_rss_kib", "lost"):
                if any(k in r for r, _ in ok):
                    row[k] = med([r.get(k) for r, _ in ok])
            rows.append(row)
    return rows


def vs_floor(runs, tracer, workload):
    """What a tracer adds over the baseline, in units of what the empty
    probes add, paired within each repetition (the VM's speed drifts
    between repetitions far more than within one)."""
    floor = FLOOR_OF.get(tracer, "floor")
    if floor not in runs or tracer in ("none", "floor", "floor-preload", "floor-batch"):
        return None
    key = "ns_per_pair" if workload.startswith("churn") else "own_s"
    xs = []
    for r, f, b in zip(runs[tracer], runs[floor], runs["none"]):
        if key in r and key in f and key in b:
            if key == "own_s":  # slowdowns: added time in baseline units
                added, floor = r[key] / b[key] - 1, f[key] / b[key] - 1
            else:
                added, floor = r[key] - b[key], f[key] - b[key]
            if floor > 0:
                xs.append(added / floor)
    return med(xs)


def fmt(m, spec="{:.2f}"):
    if m is None:
        return "-"
    v, lo, hi = m
    if lo == hi:
        return spec.format(v)
    return f"{spec.format(v)} ({spec.format(lo)}-{spec.format(hi)})"


def table(rows):
    head = ["workload", "tracer", "slowdown x", "added ns/pair", "x floor", "memtrace CPU s",
            "memtrace RSS MiB", "lost"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            cells = [r["workload"], r["tracer"], "failed: " + " ".join(r["error"] or [])[:60],
                     "", "", "", "", ""]
        else:
            rss = r.get("self_rss_kib")
            cells = [r["workload"], r["tracer"], fmt(r["ratio"]),
                     fmt(r.get("added_ns"), "{:.0f}"), fmt(r.get("x_floor")),
                     fmt(r.get("self_cpu_s"), "{:.3f}"),
                     fmt(rss and tuple(x / 1024 for x in rss), "{:.1f}"),
                     fmt(r.get("lost"), "{:.0f}")]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def svg_chart(rows, path):
    """Grouped horizontal bars, log scale of the median slowdown."""
    rows = [r for r in rows if "ratio" in r and r["tracer"] != "none"]
    if not rows:
        return
    colors = {"floor": "#9e9e9e", "memtrace": "#1f77b4", "memtrace-fp": "#aec7e8", "sampled": "#17becf",
              "floor-preload": "#c7c7c7", "preload": "#ff7f0e", "preload-sampled": "#ffbb78",
              "floor-batch": "#dddddd", "batch": "#8c564b", "bpftrace": "#d62728",
              "heaptrack": "#2ca02c", "massif": "#9467bd"}
    top = max(r["ratio"][0] for r in rows)
    decades = max(1, math.ceil(math.log10(max(top, 1.01))))
    left, width, bar, gap = 170, 520, 14, 10
    height = 40 + len(rows) * (bar + 2) + gap * len({r["workload"] for r in rows}) + 30
    x = lambda v: left + width * math.log10(max(v, 1)) / decades
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" '
           f'height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13">Slowdown against no tracer '
           f'(median, log scale; lower is better)</text>']
    for d in range(decades + 1):
        xx = x(10 ** d)
        out.append(f'<line x1="{xx:.1f}" y1="24" x2="{xx:.1f}" y2="{height - 20}" '
                   f'stroke="#ddd"/><text x="{xx:.1f}" y="{height - 6}" '
                   f'text-anchor="middle">{10 ** d}x</text>')
    y, last = 30, None
    for r in rows:
        if r["workload"] != last:
            y += gap if last else 0
            last = r["workload"]
        label = f'{r["workload"]} {r["tracer"]}'
        out.append(f'<text x="{left - 6}" y="{y + bar - 3}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(x(r["ratio"][0]) - left, 1):.1f}" '
                   f'height="{bar}" fill="{colors.get(r["tracer"], "#555")}"/>')
        out.append(f'<text x="{x(r["ratio"][0]) + 4:.1f}" y="{y + bar - 3}">'
                   f'{r["ratio"][0]:.2f}x</text>')
        y += bar + 2
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--small", action="store_true", help="tiny sizes: checks the harness runs")
    ap.add_argument("--workloads", default=",".join(SIZES), help="comma-separated")
    ap.add_argument("--tracers", default=",".join(t for t in TRACERS if t != "before"),
                    help="comma-separated")
    ap.add_argument("--out", default=os.path.join(BUILD, "bench-results"),
                    help="directory for results.json, results.md, chart.svg")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run")
    ap.add_argument("--from", dest="src", metavar="RESULTS_JSON",
                    help="run nothing: summarize an earlier run's results.json again")
    ap.add_argument("--before", metavar="MEMTRACE",
                    help="another memtrace binary, run as tracer 'before' (default mode): "
                         "an A/B against build/memtrace in the same run")
    a = ap.parse_args()
    global BEFORE
    if a.before:
        BEFORE = os.path.abspath(a.before)
        if "before" not in a.tracers.split(","):
            a.tracers += ",before"
    if a.src:
        with open(a.src) as f:
            old = json.load(f)
        runs = old["runs"]
        workloads = list(runs)
        tracers = list(runs[workloads[0]])
        rows = summarize(runs, workloads, tracers)
        print(table(rows))
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "results.md"), "w") as f:
            f.write(table(rows) + "\n")
        svg_chart(rows, os.path.join(a.out, "chart.svg"))
        return
    workloads = a.workloads.split(",")
    tracers = a.tracers.split(",")
    if "none" not in tracers:
        tracers.insert(0, "none")
    bad = [w for w in workloads if w not in SIZES] + [t for t in tracers if t not in TRACERS]
    if bad:
        sys.exit(f"bench: Error: unknown workload or tracer: {', '.join(bad)}")
    if os.geteuid() != 0:
        sys.exit("bench: Error: needs root (memtrace and bpftrace load BPF)")
    missing = [t for t in tracers if not available(t)]
    for t in missing:
        print(f"bench: {t} is not installed: reported as failed", file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    runs = {w: {t: [] for t in tracers} for w in workloads}
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp:
        for rep in range(a.reps):
            for w in workloads:
                n = SIZES[w][1 if a.small else 0]
                order = tracers[rep % len(tracers):] + tracers[:rep % len(tracers)]
                for t in order:
                    if t in missing:
                        r = {"error": ["not installed"]}
                    else:
                        r = run_one(w, t, n, tmp, a.timeout)
                    runs[w][t].append(r)
                    print(f"bench: rep {rep + 1}/{a.reps} {w:7s} {t:9s} "
                          f"{r.get('wall_s', 0):7.3f} s"
                          + (f"  {r['ns_per_pair']:.0f} ns/pair" if "ns_per_pair" in r else "")
                          + (f"  FAILED {r['error']}" if "error" in r else ""),
                          file=sys.stderr, flush=True)
    rows = summarize(runs, workloads, tracers)
    md = table(rows)
    print(md)
    meta = {"kernel": os.uname().release, "reps": a.reps, "small": a.small,
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs, "summary": rows}, f, indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md + "\n")
    svg_chart(rows, os.path.join(a.out, "chart.svg"))
    failed = [r for r in rows if "error" in r and r["tracer"] in ("none", "floor", "memtrace",
                                                                   "memtrace-fp", "sampled", "preload",
                                                                   "floor-preload", "preload-sampled",
                                                                   "floor-batch", "batch")]
    if failed:
        sys.exit("bench: Error: memtrace or the baseline failed: "
                 + "; ".join(f'{r["workload"]}/{r["tracer"]}: {r["error"]}' for r in failed))


if __name__ == "__main__":
    main()
