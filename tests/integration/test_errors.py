# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Bad input: one clear line on stderr, the documented exit code, nothing
left attached."""
import os
import subprocess

import pytest

from conftest import MEMTRACE, assert_no_probes_left, memtrace


def free_pid():
    pid = 4000000
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("Error: ")]


@pytest.mark.parametrize("args,code,message", [
    (["-p", str(4194304)], 2, "no process with PID 4194304"),
    (["-p", "abc"], 2, "invalid PID 'abc'"),
    (["-p", "12,x"], 2, "invalid PID 'x'"),
    (["--bogus"], 2, "unknown option '--bogus'"),
    (["-x", "-p", "1"], 2, "unknown option '-x'"),
    (["-i", "-1", "-p", "1"], 2, "invalid interval '-1'"),
    (["-i", "0", "-p", "1"], 2, "invalid interval '0'"),
    (["-d", "soon", "-p", "1"], 2, "invalid duration 'soon'"),
    (["--format", "xml", "-p", "1"], 2, "invalid format 'xml'"),
    (["-n", "-3", "-p", "1"], 2, "invalid top '-3'"),
    (["--max-depth", "500", "-p", "1"], 2, "invalid max-depth '500'"),
    ([], 2, "nothing to trace"),
    (["-p", "1", "--", "/bin/true"], 2, "give one of -p PID, -a or -- COMMAND"),
    (["-a", "-p", "1"], 2, "give one of -p PID, -a or -- COMMAND"),
    (["-a", "--cgroup", "/sys/fs/cgroup/no-such-group"], 2,
     "cannot open cgroup /sys/fs/cgroup/no-such-group"),
    (["-a", "--comm", "0123456789abcdefg"], 2, "invalid comm"),
    (["--", "/nonexistent/cmd"], 2, "command not found: /nonexistent/cmd"),
    (["--", "no-such-command-xyz"], 2, "command not found: no-such-command-xyz"),
    (["--", "/etc/passwd"], 2, "cannot execute /etc/passwd"),
    (["--", "/tmp"], 2, "cannot execute /tmp"),
])
def test_bad_input(args, code, message):
    r = memtrace(*args)
    assert r.returncode == code, r.stderr
    errs = error_lines(r.stderr)
    assert len(errs) == 1, r.stderr
    assert message in errs[0], errs[0]
    assert "Traceback" not in r.stderr and "Segmentation" not in r.stderr


def test_usage_printed_for_unknown_flag():
    r = memtrace("--bogus")
    assert "Usage: memtrace" in r.stderr


def test_no_privileges():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        MEMTRACE, "--", "/bin/true"], capture_output=True, text=True)
    assert r.returncode == 1
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and "needs root" in errs[0] and "CAP_BPF" in errs[0]


def test_no_btf():
    r = memtrace("--", "/bin/true", env={**os.environ, "MEMTRACE_SYSFS_BTF": "/nonexistent"})
    assert r.returncode == 1
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and "kernel has no BTF" in errs[0]


def test_help_and_version():
    r = memtrace("--help")
    assert r.returncode == 0 and "Exit status" in r.stdout and "--min-age" in r.stdout
    r = memtrace("-V")
    assert r.returncode == 0 and r.stdout.startswith("memtrace ")


def test_program_without_allocator_symbols_is_refused(tmp_path):
    # a stripped static program: no malloc symbol to hook anywhere
    src = tmp_path / "s.c"
    src.write_text("#include <unistd.h>\n#include <stdlib.h>\n"
                   "int main(){free(malloc(5));pause();}\n")
    exe = tmp_path / "s"
    subprocess.run(["gcc", "-static", "-s", "-o", str(exe), str(src)], check=True)
    p = subprocess.Popen([str(exe)])
    try:
        r = memtrace("-p", str(p.pid))
    finally:
        p.kill()
        p.wait()
    assert r.returncode == 1
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and "no allocator found" in errs[0], r.stderr
    assert_no_probes_left()
