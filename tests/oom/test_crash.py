# SPDX-License-Identifier: MIT
"""Crash reports: a program that dies of SIGSEGV or SIGABRT after allocating.

Covers: 100 MiB held, then a real NULL-pointer read (ctypes.string_at(0)),
a SIGSEGV sent to itself, os.abort(), and a C stack overflow (caught on
libsigsegv's alternate stack; RLIMIT_STACK 1 MiB keeps it small; the recursion makes
a new call stack at each level, so the dump must find its arena grown for them, or it
leaves out the newest, the 100 MiB line among them), and the fault and the overflow
in a thread the program started (the handler runs on an alternate stack, which each
thread needs of its own: without one the overflowing thread got no dump at all, only
the post-mortem). The launcher must die of the
program's own signal (a shell sees 139 or 134); the in-process dump must have written
out-of-memory.{prof,svg,-reversed.svg} that parse, summary.json with kind
"signal" and the signal's name, and the 100 MiB line (within 2%).
"""

import resource
import signal

import pytest

MIB = 1024 * 1024


def small_stack():
    resource.setrlimit(resource.RLIMIT_STACK, (MIB, resource.getrlimit(resource.RLIMIT_STACK)[1]))


@pytest.mark.parametrize("how, sig", [
    ("segv", signal.SIGSEGV),
    ("kill-segv", signal.SIGSEGV),
    ("abort", signal.SIGABRT),
    ("overflow", signal.SIGSEGV),
    ("segv-thread", signal.SIGSEGV),
    ("overflow-thread", signal.SIGSEGV),
])
def test_crash_dump(oom, tmp_path, how, sig):
    script = oom.program("crash.py")
    run = oom.run_fil(tmp_path, script, how,
                      preexec_fn=small_stack if how.startswith("overflow") else None)
    # The launcher dies of the program's signal (a shell sees 128+N).
    assert run.returncode == -sig, run.describe()
    assert "unreachable" not in run.stdout, run.describe()
    oom.assert_oom_files(run)
    stacks = run.oom_prof()
    oom.assert_close(oom.bytes_at(stacks, script, oom.marker_line(script, "block")),
                     100 * oom.MIB, 0.02, "100 MiB line")
    assert not oom.failed_requests(stacks), "a crash has no failed request"
    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "in-process", o
    assert o["kind"] == "signal", o
    assert o["signal"] == sig.name, o
    assert o["tracked_bytes"] >= 100 * oom.MIB, o
    assert s["exit_status"] == 128 + sig, s
    if how.startswith("segv"):
        assert o["fault_address"] == "0x0", o
    for name in oom.PEAK_FILES:
        assert run.file(name).is_file(), name


@pytest.mark.parametrize("how", ["kill-segv", "abort"])
def test_no_fault_address_for_sent_signals(oom, tmp_path, how):
    """A signal sent with kill()/raise() has no faulting address: si_addr
    then holds the sender's pid, which must not be shown as an address
    (DESIGN invariant 6: every figure a report shows is honest)."""
    script = oom.program("crash.py")
    run = oom.run_fil(tmp_path, script, how)
    o = run.summary()["out_of_memory"]
    assert o["kind"] == "signal", o
    assert o["fault_address"] is None, o


@pytest.mark.parametrize("how, sig, says", [
    ("segv", signal.SIGSEGV, "Fatal Python error: Segmentation fault"),
    ("abort", signal.SIGABRT, "Fatal Python error: Aborted"),
])
def test_faulthandler_still_speaks_after_the_dump(oom, tmp_path, how, sig, says):
    """With PYTHONFAULTHANDLER (or -X faulthandler) Python prints the
    traceback of a crash: the dump comes first, then the signal goes on to
    faulthandler's handler, as it would have without the profiler, and
    the launcher still dies of the signal."""
    script = oom.program("crash.py")
    run = oom.run_fil(tmp_path, script, how, env={"PYTHONFAULTHANDLER": "1"})
    assert run.returncode == -sig, run.describe()
    assert says in run.stderr, run.describe()
    assert "crash.py" in run.stderr.split(says, 1)[1], run.describe()
    oom.assert_oom_files(run)
    assert run.summary()["out_of_memory"]["signal"] == sig.name
