# SPDX-License-Identifier: MIT
"""One dump per process when many threads run out of memory (or crash) at once.

Covers: eight threads call libc's malloc(2**50) together with the GIL
released (many_threads_oom.py), 20 runs in a row. Every run must exit 53
after one complete dump: one headline and one "Wrote" line on stderr, the
out-of-memory files present and parsing, summary.json with the 1 PiB
request at the worker's line. Before the fix, the threads that lost the race
for the dump called _exit(53) while the winner was still writing (no files,
"out_of_memory": null in 6 runs of 6). With --on-oom=continue (5 runs), the
losers wait for the dump and then fail their own request: all eight get
NULL, the program finishes with status 0, and there is still one dump.
Eight threads that fault at once (many_threads_crash.py, 5 runs) die of
SIGSEGV after one complete crash dump.
"""

import pytest

RUNS = 20
CONTINUE_RUNS = 5
REQUEST = 2 ** 50


def check_one_dump(oom, run, script):
    heads = [l for l in oom.stderr_lines(run) if l.startswith(oom.PREFIX + "Out of memory: ")]
    assert len(heads) == 1, run.describe()
    wrote = [l for l in oom.stderr_lines(run)
             if l.startswith(oom.PREFIX + "Wrote out-of-memory report to ")]
    assert len(wrote) == 1, run.describe()
    oom.assert_oom_files(run)
    (frames, count), = oom.failed_requests(run.oom_prof())
    assert count == REQUEST, frames
    assert oom.is_frame_at(oom.last_python_frame(frames), script,
                           oom.marker_line(script, "request")), frames
    o = run.summary()["out_of_memory"]
    assert o is not None, run.describe()
    assert o["source"] == "in-process", o
    assert o["requested_bytes"] == REQUEST and o["function"] == "malloc", o
    return o


@pytest.mark.parametrize("attempt", range(RUNS))
def test_many_threads_one_dump(oom, tmp_path, attempt):
    script = oom.program("many_threads_oom.py")
    run = oom.run_fil(tmp_path, script)
    assert run.returncode == oom.EXIT_OOM, run.describe()
    assert "nulls" not in run.stdout, run.describe()
    check_one_dump(oom, run, script)
    assert run.summary()["exit_status"] == oom.EXIT_OOM


@pytest.mark.parametrize("attempt", range(CONTINUE_RUNS))
def test_many_threads_continue(oom, tmp_path, attempt):
    script = oom.program("many_threads_oom.py")
    run = oom.run_fil(tmp_path, script, opts=["--on-oom=continue"])
    assert run.returncode == 0, run.describe()
    assert run.stdout.splitlines() == ["nulls 8"], run.describe()
    check_one_dump(oom, run, script)
    assert run.summary()["exit_status"] == 0


@pytest.mark.parametrize("attempt", range(CONTINUE_RUNS))
def test_many_threads_crash_one_dump(oom, tmp_path, attempt):
    """Eight threads fault at once: the process dies of SIGSEGV only after
    the one crash dump is complete (the crash handlers of the losing threads
    wait for it instead of dying at once)."""
    script = oom.program("many_threads_crash.py")
    run = oom.run_fil(tmp_path, script)
    assert run.returncode == -11, run.describe()  # died of SIGSEGV, as plain Python
    assert "unreachable" not in run.stdout, run.describe()
    heads = [l for l in oom.stderr_lines(run) if l.startswith(oom.PREFIX + "Crash: ")]
    assert len(heads) == 1, run.describe()
    oom.assert_oom_files(run)
    oom.assert_close(oom.bytes_at(run.oom_prof(), script, oom.marker_line(script, "block")),
                     100 * oom.MIB, 0.02, "100 MiB line")
    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "in-process" and o["kind"] == "signal", o
    assert o["signal"] == "SIGSEGV", o
    assert s["exit_status"] == 139, s
