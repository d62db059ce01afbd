# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Without the kernel's config (a container without the host's /boot),
memtrace cannot learn CONFIG_HZ: blocks then carry nanoseconds instead of
jiffies. It must still load, and ages and exec purges must come out the
same; MEMTRACE_TEST_NO_KCONFIG forces that path here."""
import test_lifecycle
from test_lifecycle import waiter  # noqa: F401  (the fixture)
import test_system
from conftest import memtrace, prog


def test_loads_and_says_so(monkeypatch):
    monkeypatch.setenv("MEMTRACE_TEST_NO_KCONFIG", "1")
    r = memtrace("-v", "--json", "--", prog("allocs"))
    assert r.returncode == 0, r.stderr
    assert "block times in ns (the kernel's HZ is unknown)" in r.stderr


def test_min_age_leaks(monkeypatch, waiter):
    monkeypatch.setenv("MEMTRACE_TEST_NO_KCONFIG", "1")
    test_lifecycle.test_min_age_leaks(waiter)


def test_exec_right_after_allocating(monkeypatch):
    monkeypatch.setenv("MEMTRACE_TEST_NO_KCONFIG", "1")
    test_system.test_exec_right_after_allocating()
