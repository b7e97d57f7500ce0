# SPDX-License-Identifier: MIT
"""A stderr whose reader has gone away (`fil-profile run x.py 2>&1 | head -1`,
a CI step that greps the first line) must not change the exit status: the
program ignores SIGPIPE (CPython does), so must the launcher's messages
after it, or the shell sees 141 (SIGPIPE) instead of the program's own.
"""

import os
import signal
import subprocess

PROGRAM = """
import sys

data = bytearray(20 * 1024 * 1024)  # HELD
print("one line", flush=True)
sys.exit(4)
"""


def _run_with_stderr_gone(fp, tmp_path, script, opts=()):
    """Run with stderr on a pipe that is closed once the program is running."""
    r, w = os.pipe()
    cmd = [fp.FIL, "run", "--no-browser", "-o", str(tmp_path / "fil-out"), *opts, str(script)]
    p = subprocess.Popen(cmd, cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                         stderr=w)
    os.close(w)
    os.close(r)                        # nobody reads the launcher's stderr now
    out, _ = p.communicate(timeout=120)
    return p, out


def test_exit_status_with_stderr_reader_gone(fp, tmp_path):
    script = fp.write_script(tmp_path, PROGRAM)
    direct = subprocess.run([fp.PYTHON, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=fp.base_env(), timeout=60)
    assert direct.returncode == 4
    p, out = _run_with_stderr_gone(fp, tmp_path, script)
    assert p.returncode != -signal.SIGPIPE, "the launcher died of SIGPIPE"
    assert p.returncode == 4, p.returncode
    assert out == b"one line\n"
    result = fp.latest_result(tmp_path / "fil-out")
    _, summary = fp.check_peak_report(result)
    assert summary["exit_status"] == 4
    assert "summary.json" in summary["files"]


DIES_OF_SIGPIPE = """
import signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # as many command-line tools do
data = bytearray(20 * 1024 * 1024)  # HELD
while True:
    sys.stdout.write("x" * 4096)
    sys.stdout.flush()
"""


def test_program_that_dies_of_sigpipe_still_kills_the_launcher(fp, tmp_path):
    """`fil-profile run tool.py | head -1` where the tool dies of SIGPIPE:
    the launcher writes the report and dies of SIGPIPE too."""
    script = fp.write_script(tmp_path, DIES_OF_SIGPIPE)
    r, w = os.pipe()
    cmd = [fp.FIL, "run", "--no-browser", "-o", str(tmp_path / "fil-out"), str(script)]
    p = subprocess.Popen(cmd, cwd=str(tmp_path), env=fp.base_env(), stdout=w,
                         stderr=subprocess.PIPE)
    os.close(w)
    os.read(r, 100)
    os.close(r)
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGPIPE, (p.returncode, err[-2000:])
    summary = fp.load_summary(fp.latest_result(tmp_path / "fil-out"))
    assert summary["exit_status"] == 128 + signal.SIGPIPE


def test_verbose_lines_before_python_starts_do_not_kill_the_program(fp, tmp_path):
    """--verbose: the preload library writes its limits lines before Python
    has set SIGPIPE aside; with nobody reading stderr the program must
    still run to its own end (it once died of SIGPIPE before its first line)."""
    script = fp.write_script(tmp_path, PROGRAM)
    p, out = _run_with_stderr_gone(fp, tmp_path, script, opts=("--verbose",))
    assert p.returncode == 4, p.returncode
    assert out == b"one line\n"
    result = fp.latest_result(tmp_path / "fil-out")
    _, summary = fp.check_peak_report(result)
    assert summary["exit_status"] == 4
    assert summary["peak_bytes"] >= 20 * 1024 * 1024
