# SPDX-License-Identifier: MIT
"""The program's output is its own: stdout (text and binary) is
byte-identical to running the script with plain Python, the profiler writes
nothing on stdout, and every line it writes on stderr starts with
`=fil-profile= ` (also with --verbose).
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = """
import sys

print("hello from the program")
print("ünïcødé ✓", "tab\\there")
sys.stdout.flush()
sys.stdout.buffer.write(bytes(range(256)) + b"\\r\\n\\x00no newline")
sys.stdout.buffer.flush()
print()
print("args:", sys.argv[1:])
data = bytearray(10 * 1024 * 1024)  # HELD
for i in range(1000):
    print(i, end=" ")
print("done")
"""


@pytest.mark.parametrize("opts", [(), ("--verbose",)], ids=["quiet", "verbose"])
def test_stdout_identical_to_plain_python(tmp_path, fp, opts):
    script = fp.write_script(tmp_path, SCRIPT)
    args = ("one", "--two", "three four")
    direct = subprocess.run([fp.PYTHON, str(script), *args], cwd=str(tmp_path),
                            env=fp.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60)
    assert direct.returncode == 0, direct.stderr
    assert direct.stderr == b""

    proc, result = fp.run_fil(tmp_path, script, *args, extra_opts=opts)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == direct.stdout

    err_lines = proc.stderr.decode().splitlines()
    assert err_lines, "the profiler should at least say where the report is"
    for line in err_lines:
        assert line.startswith(fp.PREFIX), "stderr line without the prefix: %r" % line
    assert any("Wrote peak-memory report to" in l and "index.html" in l for l in err_lines), err_lines
    if opts:
        assert len(err_lines) > 1, "--verbose said nothing more: %s" % err_lines

    entries, _ = fp.check_peak_report(result)
    line = fp.line_of(SCRIPT, "HELD")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, 10 * 1024 * 1024, 0.02), "line %d: %d" % (line, got)


def test_report_path_on_stderr_is_the_result_folder(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, "print('x')\n")
    assert proc.returncode == 0, fp.describe(proc)
    wrote = [l for l in proc.stderr.decode().splitlines() if "Wrote peak-memory report to" in l]
    assert len(wrote) == 1, proc.stderr
    path = wrote[0].split("Wrote peak-memory report to ", 1)[1]
    assert path.endswith("/index.html")
    assert Path(path).resolve() == result / "index.html"


CLOSES_STDOUT = """
import os, time
print("first", flush=True)
os.close(1)
time.sleep(%s)
"""


def test_reader_sees_eof_when_the_program_closes_stdout(tmp_path, fp):
    # `fil-profile run prog.py | consumer`: the consumer's EOF comes when the
    # program closes its stdout, as with plain Python, not when the launcher
    # ends (after the program and its reports).
    script = fp.write_script(tmp_path, CLOSES_STDOUT % 20)
    proc = subprocess.Popen([fp.FIL, "--no-browser", "-o", str(tmp_path / "out"), "run",
                             str(script)], cwd=str(tmp_path), env=fp.base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        t0 = time.monotonic()
        out = proc.stdout.read()  # returns at EOF
        waited = time.monotonic() - t0
        assert out == b"first\n"
        assert waited < 15, "stdout stayed open %.1f s after the program closed it" % waited
        assert proc.poll() is None, "the program should still be sleeping"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the sleeping program
        proc.wait()


CLOSES_STDIN = """
import os, sys, time
sys.stdin.buffer.readline()
os.close(0)
time.sleep(%s)
"""


def test_writer_sees_a_broken_pipe_when_the_program_closes_stdin(tmp_path, fp):
    # `producer | fil-profile run prog.py`: once the program closed its stdin
    # the producer's writes fail (EPIPE), as with plain Python.
    script = fp.write_script(tmp_path, CLOSES_STDIN % 20)
    proc = subprocess.Popen([fp.FIL, "--no-browser", "-o", str(tmp_path / "out"), "run",
                             str(script)], cwd=str(tmp_path), env=fp.base_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.stdin.write(b"line\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 15
        broken = False
        while time.monotonic() < deadline and not broken:
            try:
                proc.stdin.write(b"x" * 4096)
                proc.stdin.flush()
                time.sleep(0.05)
            except BrokenPipeError:
                broken = True
        assert broken, "the launcher still holds the program's stdin open"
        assert proc.poll() is None, "the program should still be sleeping"
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


CHILD_AND_FDS = """
import os, subprocess, sys
subprocess.run([sys.executable, "-c", "x = bytearray(4 * 1024 * 1024)"], check=True)
os.write(2, repr([os.path.exists("/proc/self/fd/%d" % fd) for fd in (0, 1)]).encode())
"""


@pytest.mark.parametrize("closed", ["<&-", ">&-", "<&- >&-"])
def test_closed_stdin_or_stdout_at_launch(tmp_path, fp, closed):
    # Descriptors the launcher itself opens where stdin or stdout were closed
    # stay its own: the program still sees them closed, its children are
    # still profiled.
    script = fp.write_script(tmp_path, CHILD_AND_FDS)
    out = tmp_path / "out"
    proc = subprocess.run(["sh", "-c", 'exec "$@" %s' % closed, "sh", fp.FIL, "--no-browser",
                           "--quiet", "-o", str(out), "run", str(script)], cwd=str(tmp_path),
                          env=fp.base_env(), stderr=subprocess.PIPE, timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode() == repr(["<&-" not in closed, ">&-" not in closed])
    summary = fp.load_summary(fp.latest_result(out))
    assert len(summary["children"]) == 1, summary["children"]


CLOSES_PASSED_FD = """
import os, sys, time
fd = int(sys.argv[1])
os.write(fd, b"ready\\n")
os.close(fd)
time.sleep(20)
"""


def test_reader_of_an_inherited_pipe_sees_eof_when_the_program_closes_it(tmp_path, fp):
    # A parent that hands the program a pipe (a readiness pipe, pass_fds)
    # sees EOF when the program closes it, not when the launcher ends.
    script = fp.write_script(tmp_path, CLOSES_PASSED_FD)
    r, w = os.pipe()
    proc = subprocess.Popen([fp.FIL, "--no-browser", "-o", str(tmp_path / "out"), "run",
                             str(script), str(w)], cwd=str(tmp_path), env=fp.base_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            pass_fds=(w,), start_new_session=True)
    os.close(w)
    try:
        t0 = time.monotonic()
        with os.fdopen(r, "rb") as f:
            got = f.read()  # returns at EOF
        waited = time.monotonic() - t0
        assert got == b"ready\n"
        assert waited < 15, "the pipe stayed open %.1f s after the program closed it" % waited
        assert proc.poll() is None, "the program should still be sleeping"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


CHILD_VERBOSE = """
import subprocess
import sys

subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


def test_verbose_lines_of_a_child_name_its_pid(tmp_path, fp):
    """With several processes writing to one stderr, each --verbose line of
    a child says whose it is: the program's own lines have no [pid N], the
    child's limits and safety margin lines all carry the same one."""
    proc, result = fp.run_fil(tmp_path, CHILD_VERBOSE, extra_opts=("--verbose",))
    assert proc.returncode == 0, fp.describe(proc)
    rows = fp.load_summary(result)["children"]
    assert len(rows) == 1, rows
    lines = proc.stderr.decode().splitlines()
    child = fp.PREFIX + "[pid %d] " % rows[0]["pid"]
    for what in ("limits: ", "safety margin "):
        said = [l for l in lines if what in l]
        mine = [l for l in said if l.startswith(fp.PREFIX + what)]
        childs = [l for l in said if l.startswith(child + what)]
        assert len(said) == 2 and len(mine) == 1 and len(childs) == 1, lines
