# SPDX-License-Identifier: MIT
"""Exit status and reports when the program ends badly: sys.exit(3) gives 3,
an uncaught exception gives 1 with a traceback that shows the user's code and
none of the profiler's, death by SIGTERM kills the launcher with SIGTERM too
(a shell sees 143, 128+15). A report holding
the program's memory is written in every case.
"""

import subprocess

MIB = 1024 * 1024


def _assert_report_holds(fp, result, script_text, marker, size):
    """The result folder has a report whose .prof charges `size` to `marker`."""
    assert result is not None, "no result folder"
    summary = fp.load_summary(result)
    prof = fp.prof_file(result)
    assert prof is not None, "no .prof in %s" % sorted(p.name for p in result.iterdir())
    entries = fp.parse_prof(prof)
    line = fp.line_of(script_text, marker)
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, size, 0.02), "line %d: %d\n%s" % (line, got, fp.fmt_prof(entries))
    for svg in sorted(result.glob("*.svg")):
        fp.check_svg(svg)
    return summary


EXIT3 = """
import sys

data = bytearray(30 * 1024 * 1024)  # HELD
print("exiting")
sys.exit(3)
"""


def test_sys_exit_status(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, EXIT3)
    assert proc.returncode == 3, fp.describe(proc)
    assert proc.stdout == b"exiting\n"
    fp.check_peak_report(result)
    summary = _assert_report_holds(fp, result, EXIT3, "HELD", 30 * MIB)
    assert summary["exit_status"] == 3


RAISES = """
data = bytearray(30 * 1024 * 1024)  # HELD


def fail():
    raise ValueError("boom from the user")  # RAISE


fail()  # CALL
"""


def test_uncaught_exception(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, RAISES)
    assert proc.returncode == 1, fp.describe(proc)
    summary = _assert_report_holds(fp, result, RAISES, "HELD", 30 * MIB)
    assert summary["exit_status"] == 1

    err = proc.stderr.decode()
    script = str(tmp_path / "script.py")
    raise_line = fp.line_of(RAISES, "RAISE")
    call_line = fp.line_of(RAISES, "CALL")
    assert "Traceback (most recent call last):" in err, err
    assert 'File "%s", line %d, in <module>' % (script, call_line) in err, err
    assert 'File "%s", line %d, in fail' % (script, raise_line) in err, err
    assert "ValueError: boom from the user" in err, err
    # The traceback is the one `python3 script.py` prints: no profiler frames.
    tb = err[err.index("Traceback"):err.index("ValueError: boom")]
    assert "_run.py" not in tb and "filprofiler" not in tb, \
        "profiler frames in the user's traceback:\n" + tb
    frames = [l for l in tb.splitlines() if l.startswith('  File "')]
    assert len(frames) == 2, "traceback should show exactly the user's 2 frames:\n" + tb
    # Everything but the profiler's own lines is what plain Python prints.
    direct = subprocess.run([fp.PYTHON, script], cwd=str(tmp_path), env=fp.base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert direct.returncode == 1
    program_err = [l for l in err.splitlines() if not l.startswith(fp.PREFIX)]
    assert program_err == direct.stderr.decode().splitlines()


SIGTERM = """
import os
import signal

data = bytearray(30 * 1024 * 1024)  # HELD
print("about to die", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
print("not reached")
"""


def test_killed_by_sigterm(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, SIGTERM)
    # Died of SIGTERM, as `python3 script.py` does (a shell sees 143).
    assert proc.returncode == -15, fp.describe(proc)
    assert proc.stdout == b"about to die\n"
    summary = _assert_report_holds(fp, result, SIGTERM, "HELD", 30 * MIB)
    assert summary["exit_status"] == 143
    # The output contract: killed -> the out-of-memory.* files, holding the
    # memory live when the program died.
    for name in ("out-of-memory.prof", "out-of-memory.svg", "out-of-memory-reversed.svg"):
        assert (result / name).is_file(), "%s missing: %s" % (name, sorted(p.name for p in result.iterdir()))
    entries = fp.parse_prof(result / "out-of-memory.prof")
    got = fp.bytes_last_frame(entries, "script.py", fp.line_of(SIGTERM, "HELD"))
    assert fp.within(got, 30 * MIB, 0.02), fp.fmt_prof(entries)
    for line in proc.stderr.decode().splitlines():
        assert line.startswith(fp.PREFIX), line
