# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Allocators other than glibc's: the same program (tests/progs/other_allocs.c)
linked with jemalloc, tcmalloc, statically with musl and with glibc. memtrace
finds who defines malloc, hooks it there, and the numbers stay exact, also
where the probe sites were moved off single-stepped entry instructions."""
import re

import pytest

from conftest import by_function, memtrace, prog, reports

EXPECT = {  # function: (outstanding bytes, outstanding count, allocations, frees)
    "keep_malloc": (4000, 4, 4, 0),
    "keep_calloc": (2000, 2, 2, 0),
    "grow_realloc": (5000, 1, 2, 1),
    "churn_freed": (0, 0, 3, 3),
}


@pytest.mark.parametrize("variant,provider", [
    ("jemalloc", r"libjemalloc\.so"),
    ("tcmalloc", r"libtcmalloc_minimal\.so"),
    ("mimalloc", r"libmimalloc\.so"),
    ("musl_static", r"other_allocs_musl_static$"),
    ("glibc_static", r"other_allocs_glibc_static$"),
    ("prefixed", r"libmt_prefixed\.so"),  # je_malloc, je_free, ...: -DJE_PREFIX
])
def test_other_allocator_exact(variant, provider):
    name = "prefixed" if variant == "prefixed" else "other_allocs_" + variant
    r = memtrace("-v", "--json", "-n", "0", "--", prog(name))
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    for fn, (ob, oc, ac, fc) in EXPECT.items():
        g = by_function(rep["stacks"], fn)
        assert (g["outstanding_bytes"], g["outstanding_count"], g["alloc_count"],
                g["free_count"]) == (ob, oc, ac, fc), (variant, fn)
    lost = rep["lost"]
    assert lost["total"] == lost["stack_truncated"], lost
    # Debian's static musl has neither unwind tables nor frame pointers:
    # stacks stop in its libc_start_main_stage2, and say so; the others
    # reach _start
    for fn in EXPECT:
        for e in rep["stacks"]:
            if e["frames"] and e["frames"][0]["symbol"] == fn:
                outer = [f["symbol"] for f in e["frames"]][-1]
                if variant == "musl_static":
                    assert e["truncated"] and outer == "libc_start_main_stage2", outer
                else:
                    assert not e["truncated"] and outer == "_start", (fn, outer)
    # said at startup: which functions were hooked where
    hooked = [l for l in r.stderr.splitlines() if " hooked " in l and "malloc" in l]
    assert any(re.search(provider, l.split(" in ", 1)[1]) for l in hooked), hooked


@pytest.mark.parametrize("variant,fn", [("jemalloc", "malloc"), ("tcmalloc", "malloc"),
                                        ("tcmalloc", "free")])
def test_probe_moved_off_entry_on_other_allocators(variant, fn):
    # with exact numbers above, this shows the placement is right there too
    r = memtrace("-v", "-o", "/dev/null", "--", prog("other_allocs_" + variant))
    line = [l for l in r.stderr.splitlines()
            if re.match(rf"memtrace:\s+{fn}\s", l) and "libc.so" not in l]
    assert line and "probe at +0," not in line[0], line


def test_custom_allocator_functions():
    r = memtrace("--json", "-n", "0", "--alloc-fn", "my_alloc", "--alloc-fn", "pool_get:2",
                 "--free-fn", "my_free", "--", prog("custom_alloc"))
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    g = by_function(rep["stacks"], "use_custom")
    assert (g["outstanding_bytes"], g["outstanding_count"], g["alloc_count"],
            g["free_count"]) == (300, 3, 5, 2)
    g = by_function(rep["stacks"], "use_pool")
    # pool_get calls my_alloc: one allocation each, with pool_get's size
    assert (g["outstanding_bytes"], g["outstanding_count"], g["alloc_count"]) == (144, 3, 3)
    assert rep["totals"]["nested_count"] == 3
    assert any("hooked my_alloc, pool_get, my_free in" in l for l in r.stderr.splitlines())


def test_unknown_custom_function_is_an_error():
    r = memtrace("--alloc-fn", "no_such_fn", "--", prog("custom_alloc"))
    assert r.returncode == 2
    errs = [l for l in r.stderr.splitlines() if l.startswith("Error: ")]
    assert errs == [f"Error: --alloc-fn no_such_fn: no function of that name in "
                    f"{prog('custom_alloc')} or its libraries"]


def kind_totals(rep, kind, fn):
    g = by_function([s for s in rep["stacks"] if s["kind"] == kind], fn)
    return g["outstanding_bytes"], g["outstanding_count"], g["alloc_count"], g["free_count"]


def test_mmap_and_brk_outside_malloc():
    r = memtrace("--mmap", "--json", "-n", "0", "--", prog("mmaps"))
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    assert kind_totals(rep, "mmap", "map_anon") == (3 * 65536, 3, 3, 0)
    assert kind_totals(rep, "mmap", "map_and_unmap") == (0, 0, 2, 2)
    # mmap 4096, mremap to 16384: the old block freed, the new one kept
    assert kind_totals(rep, "mmap", "map_grow") == (16384, 1, 2, 1)
    assert kind_totals(rep, "brk", "grow_brk") == (8192, 1, 1, 0)
    # a file mapping is not an allocation
    assert by_function(rep["stacks"], "map_file")["stacks"] == 0
    # malloc's own mmap is malloc's: one user block, no mmap block
    assert kind_totals(rep, "user", "big_malloc") == (1 << 20, 1, 1, 0)
    assert not [s for s in rep["stacks"] if s["kind"] == "mmap" and s["frames"]
                and "malloc" in (s["frames"][0]["symbol"] or "")]
    assert rep["lost"]["total"] == 0


def test_mmap_not_traced_by_default():
    r = memtrace("--json", "-n", "0", "--", prog("mmaps"))
    rep = reports(r.stdout)[-1]
    assert {s["kind"] for s in rep["stacks"]} == {"user"}
    assert kind_totals(rep, "user", "big_malloc") == (1 << 20, 1, 1, 0)
