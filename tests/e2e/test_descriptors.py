# SPDX-License-Identifier: MIT
"""The program's descriptors are the ones it would have without the profiler.

Covers, each compared with plain PYTHON started the same way:
  - stdout closed (`>&-`): before the fix libunwind's warm-up pipe took
    descriptor 1 and the first print failed with EBADF (exit 1); now the
    exit status and the program's own stderr are plain Python's;
  - stdin closed (`<&-`): the program's first open() gets descriptor 0, as
    without the profiler;
  - all three closed: same exit status;
  - the open descriptors the program sees below 900, and the number its
    first os.open() returns, are plain Python's (the profiler's own
    descriptors live high, close-on-exec).
"""

import subprocess

FDS = """
import os, sys
low = sorted(int(n) for n in os.listdir("/proc/self/fd") if int(n) < 900)
fd = os.open(os.devnull, os.O_RDONLY)
low.remove(max(low))            # the descriptor listdir used, gone again
print("stdout is", "closed" if sys.stdout is None else "open", file=sys.stderr)
print("descriptors", low, "first open", fd, file=sys.stderr)
print("printed")
"""


def run_both(fp, tmp_path, redirect):
    script = fp.write_script(tmp_path, FDS)
    out = tmp_path / "fil-out"

    def run(cmd):
        return subprocess.run(["bash", "-c", 'exec "$@" ' + redirect, "bash", *cmd],
                              cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)

    plain = run([fp.PYTHON, str(script)])
    fil = run([fp.FIL, "run", "--no-browser", "-o", str(out), str(script)])
    return plain, fil


def program_stderr(proc):
    return [l for l in proc.stderr.decode().splitlines() if not l.startswith("=fil-profile= ")]


def test_stdout_closed(fp, tmp_path):
    plain, fil = run_both(fp, tmp_path, ">&-")
    assert plain.returncode == 0, plain.stderr
    assert fil.returncode == plain.returncode, fil.stderr.decode()
    assert program_stderr(fil) == program_stderr(plain), fil.stderr.decode()
    assert "stdout is closed" in plain.stderr.decode()


def test_stdin_closed(fp, tmp_path):
    plain, fil = run_both(fp, tmp_path, "<&-")
    assert plain.returncode == fil.returncode == 0, fil.stderr.decode()
    assert fil.stdout == plain.stdout == b"printed\n"
    assert program_stderr(fil) == program_stderr(plain), fil.stderr.decode()
    assert "first open 0" in plain.stderr.decode(), plain.stderr


def test_all_standard_descriptors_closed(fp, tmp_path):
    plain, fil = run_both(fp, tmp_path, "<&- >&- 2>&-")
    assert fil.returncode == plain.returncode == 0


def test_same_descriptors(fp, tmp_path):
    plain, fil = run_both(fp, tmp_path, "")
    assert plain.returncode == fil.returncode == 0, fil.stderr.decode()
    assert fil.stdout == plain.stdout
    assert program_stderr(fil) == program_stderr(plain), fil.stderr.decode()
