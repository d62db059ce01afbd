# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Exact accounting per allocator entry point and per allocating function."""
import subprocess

from conftest import (MEMTRACE, assert_realloc_chain, by_function, memtrace, prog, reports,
                      trace_cmd)


def test_each_entry_point_exact():
    rep, _ = trace_cmd("allocs")
    expect = {
        # function: (outstanding bytes, outstanding count, alloc count, frees)
        "use_malloc": (3000, 3, 3, 0),
        "use_calloc": (2000, 2, 2, 0),
        "use_realloc_null": (1100, 1, 1, 0),
        "use_reallocarray": (1200, 1, 1, 0),
        "use_posix_memalign": (1300, 1, 1, 0),
        "use_aligned_alloc": (1408, 1, 1, 0),
        "use_memalign": (1500, 1, 1, 0),
        "use_valloc": (1600, 1, 1, 0),
        "use_pvalloc": (1700, 1, 1, 0),
        "use_free": (0, 0, 5, 5),
        "use_realloc_zero": (0, 0, 1, 1),
        "use_realloc_fail": (2000, 1, 1, 0),
    }
    for fn, (ob, oc, ac, fc) in expect.items():
        got = by_function(rep["stacks"], fn)
        assert (got["outstanding_bytes"], got["outstanding_count"],
                got["alloc_count"], got["free_count"]) == (ob, oc, ac, fc), fn
    assert by_function(rep["stacks"], "use_free")["alloc_bytes"] == 5 * 1800
    # NULL results are counted, never recorded
    assert by_function(rep["stacks"], "use_failed")["stacks"] == 0
    assert rep["totals"]["failed_count"] == 4
    assert rep["lost"]["total"] == 0


def test_nested_calls_counted_once():
    rep, _ = trace_cmd("allocs")
    # reallocarray calls realloc inside glibc: one allocation, not two
    assert by_function(rep["stacks"], "use_reallocarray")["alloc_count"] == 1
    assert rep["totals"]["nested_count"] >= 1
    # every allocation of the program is in exactly one stack
    total = sum(s["alloc_count"] for s in rep["stacks"])
    assert total == rep["totals"]["alloc_count"]


def test_totals_match_stacks():
    rep, _ = trace_cmd("allocs")
    t = rep["totals"]
    assert t["outstanding_bytes"] == sum(s["outstanding_bytes"] for s in rep["stacks"])
    assert t["outstanding_count"] == sum(s["outstanding_count"] for s in rep["stacks"])
    assert t["alloc_bytes"] - t["free_bytes"] == t["outstanding_bytes"]
    assert t["peak_outstanding_bytes"] >= t["outstanding_bytes"]


def test_realloc_chain():
    rep, _ = trace_cmd("realloc_chain")
    shrink = assert_realloc_chain(rep)
    assert (shrink["outstanding_bytes"], shrink["outstanding_count"]) == (512, 1)


def test_cross_thread_frees():
    rep, _ = trace_cmd("threads")
    got = by_function(rep["stacks"], "produce")
    assert got["alloc_count"] == 1000
    assert got["alloc_bytes"] == 1000 * 512
    assert got["free_count"] == 500
    assert (got["outstanding_bytes"], got["outstanding_count"]) == (500 * 512, 500)
    # glibc frees each exiting thread's tcache, which it allocated inside
    # malloc without a call we see: one untracked free per worker, no loss
    assert rep["lost"]["free_untracked"] == 4
    assert rep["lost"]["total"] == 4
    # the workers' stack goes through the thread start routine
    s = [s for s in rep["stacks"] if s["frames"] and s["frames"][0]["symbol"] == "produce"]
    assert s[0]["frames"][1]["symbol"] == "worker"


def test_cross_thread_frees_shared_totals():
    # per-CPU stack totals need ncpu x 16 bytes a stack: past 64 MiB for a
    # full map they are shared by all CPUs; the numbers are the same
    r = memtrace("--json", "-n", "0", "-v", "--max-stacks", "3000000", "--", prog("threads"))
    assert r.returncode == 0, r.stderr
    assert "stack totals shared by all CPUs" in r.stderr
    got = by_function(reports(r.stdout)[-1]["stacks"], "produce")
    assert (got["alloc_count"], got["free_count"]) == (1000, 500)
    assert (got["outstanding_bytes"], got["outstanding_count"]) == (500 * 512, 500)
    r = memtrace("--json", "-n", "0", "-v", "--", prog("threads"))
    assert r.returncode == 0, r.stderr
    n = possible_cpus()  # the rule: per CPU while a full default map <= 64 MiB
    if 1 < n and n * 65536 * 16 <= 64 << 20:
        assert f"stack totals kept per CPU ({n} CPUs)" in r.stderr
    else:
        assert "stack totals shared by all CPUs" in r.stderr


def possible_cpus():
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def test_constructor_allocation():
    rep, _ = trace_cmd("ctor")
    got = by_function(rep["stacks"], "early_init")
    assert (got["outstanding_bytes"], got["outstanding_count"]) == (777, 1)
    leak = by_function(rep["leaks"], "early_init")
    assert leak["outstanding_bytes"] == 777


def test_size_filters():
    rep, _ = trace_cmd("allocs", opts=("-n", "0", "--min-size", "1500", "--max-size", "1700"))
    seen = {s["frames"][0]["symbol"] for s in rep["stacks"] if s["frames"]}
    assert seen == {"use_memalign", "use_valloc", "use_pvalloc"}
    assert rep["totals"]["alloc_count"] == 3
    assert rep["totals"]["size_filtered_count"] > 0


def test_top_n_ranks_by_outstanding():
    rep, _ = trace_cmd("allocs", opts=("-n", "3"))
    assert len(rep["stacks"]) == 3
    assert [s["frames"][0]["symbol"] for s in rep["stacks"]] == [
        "use_malloc", "use_realloc_fail", "use_pvalloc"]
    b = [s["outstanding_bytes"] for s in rep["stacks"]]
    assert b == sorted(b, reverse=True)


def test_demo_report():
    rep, r = trace_cmd("demo", opts=("-n", "0", "--min-age", "0"))
    assert "demo: handled 100 requests" in r.stdout
    leak = by_function(rep["leaks"], "cache_session")
    assert (leak["outstanding_bytes"], leak["outstanding_count"]) == (25600, 100)
    log = by_function(rep["stacks"], "append_log")
    assert (log["outstanding_bytes"], log["alloc_count"], log["free_count"]) == (8192, 4, 3)
    req = by_function(rep["stacks"], "handle_request")
    assert (req["outstanding_bytes"], req["alloc_count"], req["free_count"]) == (0, 100, 100)
    assert req["alloc_bytes"] == 100 * 4096


def test_free_probed_past_its_null_check():
    # glibc's free begins with `test rdi,rdi; je ret`: single-stepping that
    # costs ~6 us per call on a VM; the probe must sit on the push after it,
    # and the frees counted there must stay exact (test_each_entry_point)
    r = memtrace("-v", "-o", "/dev/null", "--", prog("allocs"))
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stderr.splitlines() if l.split()[1:2] == ["free"]][0]
    assert "after the NULL check: push" in line, line
    assert free_count_of_allocs() == 5 + 1


def free_count_of_allocs():
    rep, _ = trace_cmd("allocs")
    return rep["totals"]["free_count"]


def test_bpf_stats():
    # the programs' own runs and time: at least one entry and one return
    # run per malloc in produce() and one run per free
    rep, r = trace_cmd("threads", opts=("-n", "0", "--bpf-stats"))
    assert rep["self"]["bpf_runs"] >= 2 * 1000 + 500
    assert rep["self"]["bpf_run_ns"] > 0
    plain, _ = trace_cmd("threads")
    assert "bpf_runs" not in plain["self"]
    txt = memtrace("-n", "0", "--bpf-stats", "--", prog("threads"))
    assert txt.returncode == 0, txt.stderr
    assert "BPF programs on the allocator probes (run by the traced threads):" in txt.stdout


def test_bpf_stats_without_cap_sys_admin():
    # the kernel's statistics need CAP_SYS_ADMIN: memtrace says so once and
    # traces anyway, unmeasured
    r = subprocess.run(["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin",
                        MEMTRACE, "--json", "-n", "0", "--bpf-stats", "--", prog("allocs")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    warn = [l for l in r.stderr.splitlines() if "--bpf-stats" in l]
    assert len(warn) == 1 and "CAP_SYS_ADMIN is needed" in warn[0]
    rep = reports(r.stdout)[-1]
    assert "bpf_runs" not in rep["self"]
    assert rep["totals"]["alloc_count"] > 0


def test_peak_kept_across_reports():
    # a peak only a report saw (below the BPF batch) stays the peak after
    # the blocks are freed
    r = memtrace("--json", "-n", "0", "-i", "1", "--", prog("peak_then_free"))
    assert r.returncode == 0, r.stderr
    reps = reports(r.stdout)
    assert reps[0]["totals"]["outstanding_bytes"] == 3000
    final = reps[-1]["totals"]
    assert final["outstanding_bytes"] == 0
    assert final["peak_outstanding_bytes"] == 3000
