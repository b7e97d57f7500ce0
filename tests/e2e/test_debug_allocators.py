# SPDX-License-Identifier: MIT
"""Python's debug allocator (-X dev, PYTHONDEVMODE, PYTHONMALLOC=debug and
friends) under the profiler: the program runs as it does without it (same
output, same exit status: the debug hooks used to abort it at exit, "bad
ID" on the audit hook's entry) and the report charges the same lines the
same bytes as a run with Python's default allocator.
"""

import subprocess

import pytest

MIB = 1024 * 1024

SCRIPT = """
import sys

MIB = 1024 * 1024


def big():
    return bytearray(30 * MIB)  # L_BIG


def small():
    return [str(i) * 3 for i in range(200_000)]  # L_SMALL


held = [big(), small()]
print("held", len(held[0]), len(held[1]))
sys.stdout.flush()
sys.exit(3)
"""

# How each mode is asked for: (environment, interpreter options).
MODES = {
    "X dev": ({}, ["-X", "dev"]),
    "PYTHONDEVMODE=1": ({"PYTHONDEVMODE": "1"}, []),
    "PYTHONMALLOC=debug": ({"PYTHONMALLOC": "debug"}, []),
    "PYTHONMALLOC=pymalloc_debug": ({"PYTHONMALLOC": "pymalloc_debug"}, []),
    "PYTHONMALLOC=malloc_debug": ({"PYTHONMALLOC": "malloc_debug"}, []),
    "X dev, X tracemalloc": ({}, ["-X", "dev", "-X", "tracemalloc"]),
}


def _profile(fp, tmp_path, script, env, opts):
    out = tmp_path / "fil-out"
    cmd = [fp.FIL, "-o", str(out), "--no-browser", "python", *opts, str(script)]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=fp.base_env(env),
                          capture_output=True, timeout=fp.DEFAULT_TIMEOUT)
    return proc, fp.latest_result(out)


def _program_stderr(stderr):
    return [l for l in stderr.decode(errors="replace").splitlines()
            if not l.startswith("=fil-profile= ")]


@pytest.fixture(scope="module")
def default_run(fp, tmp_path_factory):
    """The .prof of the script with Python's default allocator."""
    tmp = tmp_path_factory.mktemp("default")
    script = fp.write_script(tmp, SCRIPT)
    proc, result = _profile(fp, tmp, script, {}, [])
    assert proc.returncode == 3, fp.describe(proc)
    return fp.parse_prof(result / "peak-memory.prof")


@pytest.mark.parametrize("mode", list(MODES))
def test_debug_allocator_runs_as_without_profiler(fp, tmp_path, default_run, mode):
    env, opts = MODES[mode]
    script = fp.write_script(tmp_path, SCRIPT)
    plain = subprocess.run([fp.PYTHON, *opts, str(script)], cwd=str(tmp_path),
                           env=fp.base_env(env), capture_output=True,
                           timeout=fp.DEFAULT_TIMEOUT)
    assert plain.returncode == 3, plain.stderr.decode(errors="replace")
    proc, result = _profile(fp, tmp_path, script, env, opts)
    assert proc.returncode == plain.returncode, fp.describe(proc)
    assert proc.stdout == plain.stdout
    assert _program_stderr(proc.stderr) == _program_stderr(plain.stderr), fp.describe(proc)
    assert result is not None, fp.describe(proc)
    fp.check_peak_report(result)
    entries = fp.parse_prof(result / "peak-memory.prof")
    for marker in ("L_BIG", "L_SMALL"):
        line = fp.line_of(SCRIPT, marker)
        got = fp.bytes_at_line(entries, "script.py", line)
        want = fp.bytes_at_line(default_run, "script.py", line)
        assert want > 0 and fp.within(got, want, 0.05), (
            "%s: %d bytes at line %d, %d with the default allocator\n%s"
            % (marker, got, line, want, fp.fmt_prof(entries)))
    big = fp.bytes_at_line(entries, "script.py", fp.line_of(SCRIPT, "L_BIG"))
    assert fp.within(big, 30 * MIB, 0.01)


def test_dev_mode_command(fp, tmp_path):
    """`fil-profile python -X dev -c pass` exits 0 and writes its report."""
    out = tmp_path / "fil-out"
    proc = subprocess.run([fp.FIL, "-o", str(out), "--no-browser", "python", "-X", "dev",
                           "-c", "pass"], cwd=str(tmp_path), env=fp.base_env(),
                          capture_output=True, timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == 0, fp.describe(proc)
    assert b"Fatal Python error" not in proc.stderr
    fp.check_peak_report(fp.latest_result(out))
