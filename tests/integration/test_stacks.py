# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Frames: allocating function first, file:line, C++ demangling."""
import os
import shutil
import subprocess

from conftest import by_function, memtrace, prog, reports, trace_cmd


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


def test_shared_library_frames():
    rep, _ = trace_cmd("uselib")
    got = by_function(rep["stacks"], "lib_make_buffer")
    assert (got["outstanding_bytes"], got["outstanding_count"]) == (2560, 4)
    f = frames_of(rep, "lib_make_buffer")
    assert f[0]["module"] == prog("libmt_testlib.so")
    assert os.path.basename(f[0]["file"]) == "libmt_testlib.c"
    assert [x["symbol"] for x in f[1:3]] == ["use_library", "main"]
    assert f[1]["module"] == prog("uselib")


def test_inline_frames_marked():
    rep, _ = trace_cmd("uselib")
    f = frames_of(rep, "inline_alloc")
    assert f[0]["inlined"] is True and f[1]["inlined"] is False
    assert f[1]["symbol"] == "use_inline"
    assert f[0]["addr"] == f[1]["addr"]  # one return address, two frames
    src = open(os.path.join(os.path.dirname(__file__), "..", "progs", "uselib.c")).read()
    lines = src.splitlines()
    assert "malloc(n)" in lines[f[0]["line"] - 1]      # inside the inlined helper
    assert "inline_alloc(96)" in lines[f[1]["line"] - 1]  # its call site
    s = [s for s in rep["stacks"] if s["frames"] and s["frames"][0]["symbol"] == "inline_alloc"]
    assert sum(x["outstanding_bytes"] for x in s) == 288


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True,
                         check=True).stdout
    return out.split("Build ID:")[1].split()[0]


def stripped_copy(tmp_path, name):
    """allocs without symbols or debug info, and its debug info apart."""
    exe, dbg = tmp_path / name, tmp_path / (name + ".debug")
    subprocess.run(["objcopy", "--only-keep-debug", prog("allocs"), str(dbg)], check=True)
    subprocess.run(["strip", "--strip-all", "-o", str(exe), prog("allocs")], check=True)
    syms = subprocess.run(["nm", str(exe)], capture_output=True, text=True).stdout
    assert "use_malloc" not in syms
    return exe, dbg


def assert_resolved(exe):
    r = memtrace("--json", "-n", "0", "--", str(exe))
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    f = frames_of(rep, "use_malloc")
    assert f[0]["symbol"] == "use_malloc" and f[1]["symbol"] == "main"
    assert os.path.basename(f[0]["file"]) == "allocs.c" and f[0]["line"]
    assert by_function(rep["stacks"], "use_malloc")["outstanding_bytes"] == 3000


def test_stripped_binary_via_gnu_debuglink(tmp_path):
    exe, dbg = stripped_copy(tmp_path, "allocs_dl")
    subprocess.run(["objcopy", f"--add-gnu-debuglink={dbg}", str(exe)], check=True,
                   cwd=tmp_path)
    assert_resolved(exe)


def test_stripped_binary_via_build_id(tmp_path):
    exe, dbg = stripped_copy(tmp_path, "allocs_bid")
    bid = build_id(str(exe))
    d = f"/usr/lib/debug/.build-id/{bid[:2]}"
    os.makedirs(d, exist_ok=True)
    target = f"{d}/{bid[2:]}.debug"
    shutil.copy(dbg, target)
    try:
        assert_resolved(exe)
    finally:
        os.unlink(target)
