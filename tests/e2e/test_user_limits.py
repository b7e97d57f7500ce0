# SPDX-License-Identifier: MIT
"""Limits given by the user: refused when the program cannot run under them.

Covers:
  - `--memory-limit 1500000` (bytes: 1.4 MiB, surely meant as `ulimit -v`
    kilobytes): one `=fil-profile= ` line naming the limit with the
    1500000K hint, exit 2, nothing created, the program not run; the
    suggested 1500000K then runs the program as plain Python does.
  - `--memory-limit 10M` (has a unit, still too small): one line naming it
    with a larger size suggested, no unprefixed dynamic-loader error; the
    suggested size then works.
  - an inherited `ulimit -Sv 8000` the interpreter cannot load under (plain
    Python fails too): one line saying that RLIMIT_AS is why, and no "no
    profile data" noise.
  - a syntax error under a roomy `--memory-limit 2G` is not blamed on it.
  - `--safety-margin` of 100 times MemTotal: one line naming it, exit 2,
    nothing created; a 64M margin is accepted.
Before the fix, the first ran and segfaulted (exit 139, "no profile data"),
the second printed the loader's own error, and the huge margin called the
first allocation out of memory.
"""

import re
import subprocess

import pytest

HELLO = """
data = bytearray(1024 * 1024)
print("hello", len(data))
"""


def fil_lines(proc):
    return [l for l in proc.stderr.decode(errors="replace").splitlines()]


def check_refused(fp, tmp_path, proc, option, value):
    assert proc.returncode == 2, fp.describe(proc)
    assert proc.stdout == b"", proc.stdout
    lines = fil_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(fp.PREFIX + "error: "), fp.describe(proc)
    assert "%s %s " % (option, value) in lines[0], lines[0]
    assert not (tmp_path / "fil-out").exists(), "a refused run created its result folder"
    return lines[0]


def plain(fp, tmp_path, script, shell_prefix=""):
    return subprocess.run(["bash", "-c", shell_prefix + 'exec "$@"', "bash", fp.PYTHON,
                           str(script)], cwd=str(tmp_path), env=fp.base_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def fil_under(fp, tmp_path, limit, script):
    """fil-profile run SCRIPT from a bash that first ran `limit` (ulimit ...)."""
    return subprocess.run(["bash", "-c", limit + 'exec "$@"', "bash", fp.FIL, "run",
                           "--no-browser", "-o", str(tmp_path / "fil-out"), str(script)],
                          cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def test_bare_number_memory_limit_refused(fp, tmp_path):
    script = fp.write_script(tmp_path, HELLO)
    proc, _ = fp.run_fil(tmp_path, script, extra_opts=["--memory-limit", "1500000"])
    line = check_refused(fp, tmp_path, proc, "--memory-limit", "1500000")
    assert "1500000K" in line and "ulimit -v" in line, line
    # The hint is right: as kilobytes the program runs as without the profiler.
    proc, result = fp.run_fil(tmp_path, script, extra_opts=["--memory-limit", "1500000K"])
    direct = plain(fp, tmp_path, script)
    assert proc.returncode == direct.returncode == 0, fp.describe(proc)
    assert proc.stdout == direct.stdout == b"hello 1048576\n"
    fp.check_peak_report(result)


def test_small_memory_limit_refused(fp, tmp_path):
    script = fp.write_script(tmp_path, HELLO)
    proc, _ = fp.run_fil(tmp_path, script, extra_opts=["--memory-limit", "10M"])
    line = check_refused(fp, tmp_path, proc, "--memory-limit", "10M")
    assert b"error while loading shared libraries" not in proc.stderr
    m = re.search(r"e\.g\. --memory-limit (\d+[MG])$", line)
    assert m, line
    proc, result = fp.run_fil(tmp_path, script, extra_opts=["--memory-limit", m.group(1)])
    assert proc.returncode == 0 and proc.stdout == b"hello 1048576\n", fp.describe(proc)


def test_interpreter_cannot_start_under_ulimit(fp, tmp_path):
    script = fp.write_script(tmp_path, HELLO)
    limit = 'ulimit -Sv 8000 && '
    direct = plain(fp, tmp_path, script, limit)
    assert direct.returncode != 0, "plain Python started under ulimit -v 8000"
    proc = fil_under(fp, tmp_path, limit, script)
    assert proc.returncode != 0 and proc.stdout == b"", fp.describe(proc)
    ours = [l for l in fil_lines(proc) if l.startswith(fp.PREFIX)]
    why = [l for l in ours if "before the program started" in l]
    assert len(why) == 1 and "RLIMIT_AS (ulimit -v)" in why[0], fp.describe(proc)
    assert not any("no profile data" in l or "killed by" in l for l in ours), fp.describe(proc)


def mem_total():
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def test_safety_margin_beyond_memory_refused(fp, tmp_path):
    script = fp.write_script(tmp_path, HELLO)
    margin = str(100 * mem_total())
    proc, _ = fp.run_fil(tmp_path, script, extra_opts=["--safety-margin", margin])
    line = check_refused(fp, tmp_path, proc, "--safety-margin", margin)
    assert "more than the memory there is" in line, line
    proc, result = fp.run_fil(tmp_path, script, extra_opts=["--safety-margin", "64M"])
    assert proc.returncode == 0 and proc.stdout == b"hello 1048576\n", fp.describe(proc)
    assert fp.load_summary(result)["out_of_memory"] is None


def test_syntax_error_under_a_roomy_limit_is_not_blamed_on_it(fp, tmp_path):
    """A program that fails before it starts for its own reasons under a
    limit with room to spare gets Python's message, not ours about the
    limit."""
    script = fp.write_script(tmp_path, "x = (\n")
    assert plain(fp, tmp_path, script).returncode == 1
    proc, _ = fp.run_fil(tmp_path, script, extra_opts=["--memory-limit", "2G"])
    assert proc.returncode == 1, fp.describe(proc)
    assert b"before the program started" not in proc.stderr, fp.describe(proc)


LIMITS = """
import os
import resource

soft, hard = resource.getrlimit(resource.RLIMIT_AS)
print("program", soft // 1024, hard == resource.RLIM_INFINITY)
with open("/proc/%d/limits" % os.getppid()) as f:
    line = [l for l in f if l.startswith("Max address space")][0]
print("launcher", line.split()[3])
held = []
while True:
    held.append(bytearray(16 * 1024 * 1024))  # GROW
"""


def test_inherited_soft_ulimit_is_the_programs_not_the_launchers(fp, tmp_path):
    """The program runs under the user's soft RLIMIT_AS and runs out of
    memory there (exit 53, its line); the launcher raised its own to the
    hard limit, so the exit report is whole (under a tight `ulimit -Sv` it
    could not map its working memory and printed a peak of 0 B)."""
    script = fp.write_script(tmp_path, LIMITS)
    proc = fil_under(fp, tmp_path, "ulimit -Sv 400000 && ", script)
    assert proc.returncode == 53, fp.describe(proc)
    assert proc.stdout == b"program 400000 True\nlauncher unlimited\n", fp.describe(proc)
    result = fp.latest_result(tmp_path / "fil-out")
    summary = fp.load_summary(result)
    assert summary["report"] == "exit" and summary["limits"]["rlimit_as"] == 400000 * 1024, summary
    assert (result / "index.html").is_file() and (result / "peak-memory.prof").is_file()
    assert summary["out_of_memory"]["python_stack"][-1]["line"] == fp.line_of(LIMITS, "GROW")
    assert b"Peak tracked memory: 0 B" not in proc.stderr, fp.describe(proc)


def test_hard_ulimit_too_tight_for_the_report_says_so(fp, tmp_path):
    """Under a hard `ulimit -v` too small for the launcher's working memory:
    one error line saying why, no made-up peak."""
    script = fp.write_script(tmp_path, LIMITS)
    proc = fil_under(fp, tmp_path, "ulimit -v 20000 && ", script)
    ours = [l for l in fil_lines(proc) if l.startswith(fp.PREFIX)]
    if any("before the program started" in l for l in ours):
        pytest.skip("this interpreter does not start under ulimit -v 20000 with the profiler")
    assert proc.returncode == 53, fp.describe(proc)
    assert not any("Peak tracked memory: 0 B" in l for l in ours), fp.describe(proc)
    said = [l for l in ours if "cannot write the reports: no memory" in l]
    assert len(said) == 1 and "ulimit -Hv" in said[0], fp.describe(proc)
