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
    out = tmp_path / "fil-out"
    proc = subprocess.run(["bash", "-c", limit + 'exec "$@"', "bash", fp.FIL, "run",
                           "--no-browser", "-o", str(out), str(script)], cwd=str(tmp_path),
                          env=fp.base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)
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
