# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""--kernel: the kernel's allocations made for a process, with kernel stacks,
exact against the kernel's own struct sizes (from BTF)."""
import re
import signal
import subprocess

from conftest import Tracer, Waiter, assert_no_probes_left, prog, reports, memtrace

NPIPES = 200
PIPE_DEF_BUFFERS = 16


def struct_size(name):
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                         capture_output=True, text=True, check=True).stdout
    return int(re.search(rf"STRUCT '{name}' size=(\d+)", out).group(1))


def kernel_stacks(rep, pid, first):
    return [s for s in rep["stacks"] if s["kind"] == "kernel" and s["pid"] == pid
            and s["frames"] and s["frames"][0]["symbol"] == first]


import pytest


@pytest.mark.parametrize("mode", ["-p", "-a"])
def test_pipes_held_open(mode):
    """-p: the kernel allocations made for the target; -a: for every
    process, each attributed to the one that was running."""
    w = Waiter(name="pipes")
    try:
        t = Tracer(*(["-p", str(w.pid)] if mode == "-p" else ["-a"]), "--kernel")
        w.step("step1")
        rc, reps, err = t.finish(signal.SIGINT)
    finally:
        w.close()
    assert rc == 0, err
    assert "warning" not in err, err
    rep = reps[-1]
    info, buf = struct_size("pipe_inode_info"), struct_size("pipe_buffer")
    # alloc_pipe_info(): kzalloc(struct pipe_inode_info) and
    # kcalloc(PIPE_DEF_BUFFERS, struct pipe_buffer), once per pipe
    got = sorted((s["outstanding_bytes"], s["outstanding_count"], s["alloc_count"])
                 for s in kernel_stacks(rep, w.pid, "alloc_pipe_info"))
    want = sorted([(NPIPES * info, NPIPES, NPIPES),
                   (NPIPES * PIPE_DEF_BUFFERS * buf, NPIPES, NPIPES)])
    assert got == want
    s = kernel_stacks(rep, w.pid, "alloc_pipe_info")[0]
    names = [f["symbol"] for f in s["frames"]]
    assert "create_pipe_files" in names and any("pipe2" in n for n in names), names
    assert all(f["module"] == "[kernel]" for f in s["frames"][:3])
    # the user-space side is still there, as "user"
    assert all(x["kind"] in ("user", "kernel") for x in rep["stacks"])
    assert_no_probes_left()


def test_kernel_frees_are_matched():
    # the pipes are freed by the kernel when the process exits
    r = memtrace("--json", "-n", "0", "--kernel", "--", prog("pipes"), "exit")
    assert r.returncode == 0, r.stderr
    rep = reports(r.stdout)[-1]
    stacks = kernel_stacks(rep, rep["processes"][0]["pid"], "alloc_pipe_info")
    assert len(stacks) == 2
    for s in stacks:
        assert (s["alloc_count"], s["free_count"], s["outstanding_bytes"]) == (NPIPES, NPIPES, 0)
    assert_no_probes_left()
