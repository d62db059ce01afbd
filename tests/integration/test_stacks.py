# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Frames: allocating function first, file:line, C++ demangling."""
import os

from conftest import by_function, prog, trace_cmd


def frames_of(rep, fn):
    for s in rep["stacks"]:
        if s["frames"] and (s["frames"][0]["symbol"] or "").startswith(fn):
            return s["frames"]
    raise AssertionError(f"no stack starts with {fn}")


def test_first_frame_is_allocating_function():
    rep, _ = trace_cmd("allocs")
    f = frames_of(rep, "use_malloc")
    assert f[0]["symbol"] == "use_malloc"
    assert f[1]["symbol"] == "main"
    assert f[0]["module"] == prog("allocs")
    assert os.path.basename(f[0]["file"]) == "allocs.c"
    assert f[0]["inlined"] is False
    # the line of the malloc call inside use_malloc
    src = open(os.path.join(os.path.dirname(__file__), "..", "progs", "allocs.c")).read()
    lines = src.splitlines()
    assert "malloc(1000)" in lines[f[0]["line"] - 1]


def test_frame_fields():
    rep, _ = trace_cmd("allocs")
    for s in rep["stacks"]:
        assert s["kind"] == "user"
        for fr in s["frames"]:
            assert set(fr) == {"addr", "symbol", "offset", "module", "file", "line", "inlined"}
            assert fr["addr"].startswith("0x")
            int(fr["addr"], 16)


def test_cxx_names_demangled_and_new_skipped():
    rep, _ = trace_cmd("cxx")
    fill = frames_of(rep, "app::Cache::fill(int)")
    assert fill[1]["symbol"] == "main"
    got = by_function(rep["stacks"], "app::Cache::fill")
    assert (got["outstanding_bytes"], got["outstanding_count"]) == (480, 10)
    table = by_function(rep["stacks"], "app::Cache::table")
    assert (table["outstanding_bytes"], table["outstanding_count"]) == (960, 1)
    buf = frames_of(rep, "int* app::make_buffer<int>(unsigned long)")
    s = [s for s in rep["stacks"] if s["frames"] and s["frames"][0] is not None
         and s["frames"][0]["symbol"] == buf[0]["symbol"]][0]
    assert (s["alloc_bytes"], s["free_count"], s["outstanding_bytes"]) == (1024, 1, 0)
    # operator new is the allocator: never a frame of its own
    for s in rep["stacks"]:
        assert not any((f["symbol"] or "").startswith("operator new") for f in s["frames"])
    # new -> malloc is one allocation
    assert rep["totals"]["nested_count"] >= 12
