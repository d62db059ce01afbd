#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""How complete memtrace's stacks are: the share of allocations (and of
distinct stacks) whose stack reaches the outermost frame (_start or a
thread's start: "truncated": false), from a JSON report.

    sudo build/memtrace -j -n 0 -o r.json -- /usr/bin/python3 script.py
    bench/stack_coverage.py r.json
"""
import json
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        rep = [json.loads(l) for l in f if l.startswith("{")][-1]
    st = [e for e in rep["stacks"] if e["kind"] == "user"]
    allocs = sum(e["alloc_count"] for e in st)
    if not allocs:
        sys.exit("stack_coverage: Error: no user allocations in the report")
    whole = sum(e["alloc_count"] for e in st if not e["truncated"])
    print(f"allocations: {allocs}, complete stacks: {whole} ({100 * whole / allocs:.2f}%)")
    print(f"distinct stacks: {len(st)}, complete: "
          f"{100 * sum(1 for e in st if not e['truncated']) / len(st):.2f}%")
    cut = sorted((e for e in st if e["truncated"]), key=lambda e: -e["alloc_count"])
    for e in cut[:5]:
        names = " > ".join((f["symbol"] or "?") for f in e["frames"] if not f["inlined"])
        print(f"  truncated, {e['alloc_count']} allocations: {names[:300]}")


if __name__ == "__main__":
    main()
