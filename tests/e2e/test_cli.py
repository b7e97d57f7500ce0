# SPDX-License-Identifier: MIT
"""The command line contract: options before and after `run`, script
arguments that look like options, usage errors (exit 2, one prefixed line),
--help/--version, the result folder layout (DIR/<timestamp>/, DIR/latest,
the default `fil-result`, no overwriting), the `python` command, and
`python3 -m filprofiler` doing the same as the launcher.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

MIB = 1024 * 1024
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}_\d{3}$")

ARGV_SCRIPT = """
import json
import sys

held = bytearray(8 * 1024 * 1024)  # HELD
print(json.dumps(sys.argv[1:]))
"""


def _fil(fp, tmp_path, *argv, env=None, cwd=None, python_m=False):
    if python_m:
        cmd = [fp.PYTHON, "-m", "filprofiler", *argv]
        env = dict(env or {}, PYTHONPATH=str(fp.PKG_PYTHONPATH))
        env["FIL_PROFILE_BIN"] = fp.FIL
    else:
        cmd = [fp.FIL, *argv]
    return subprocess.run([str(c) for c in cmd], cwd=str(cwd or tmp_path), env=fp.base_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=fp.DEFAULT_TIMEOUT)


def _check_held(fp, result, size=8 * MIB):
    entries, summary = fp.check_peak_report(result)
    line = fp.line_of(ARGV_SCRIPT, "HELD")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, size, 0.02), "line %d: %d\n%s" % (line, got, fp.fmt_prof(entries))
    return summary


@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_options_before_and_after_run(tmp_path, fp, where):
    script = fp.write_script(tmp_path, ARGV_SCRIPT)
    out = tmp_path / "out"
    opts = ["-o", str(out), "--no-browser"]
    argv = {
        "before": opts + ["run", script],
        "after": ["run"] + opts + [script],
        "both": ["--no-browser", "run", "--output", str(out), script],
    }[where]
    proc = _fil(fp, tmp_path, *argv)
    assert proc.returncode == 0, fp.describe(proc)
    assert json.loads(proc.stdout) == []
    _check_held(fp, fp.latest_result(out))


def test_script_arguments_that_look_like_options(tmp_path, fp):
    script = fp.write_script(tmp_path, ARGV_SCRIPT)
    args = ["-o", "foo", "--help", "--version", "--no-browser", "run", "-m", "x", "--", "-"]
    proc, result = fp.run_fil(tmp_path, script, *args)
    assert proc.returncode == 0, fp.describe(proc)
    assert json.loads(proc.stdout) == args
    assert not (tmp_path / "foo").exists(), "the script's -o was taken by the profiler"
    _check_held(fp, result)


def test_missing_script(tmp_path, fp):
    proc = _fil(fp, tmp_path, "run", "--no-browser", "does-not-exist.py")
    assert proc.returncode == 2, fp.describe(proc)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("=fil-profile= error: ") and "does-not-exist.py" in lines[0], lines
    assert not (tmp_path / "fil-result").exists() or not any((tmp_path / "fil-result").iterdir())


def test_directory_as_script(tmp_path, fp):
    (tmp_path / "pkgdir").mkdir()
    proc = _fil(fp, tmp_path, "run", "--no-browser", "pkgdir")
    assert proc.returncode == 2, fp.describe(proc)
    lines = proc.stderr.decode().splitlines()
    assert lines == ["=fil-profile= error: cannot run 'pkgdir': it is a directory without "
                     "__main__.py"], lines
    assert not (tmp_path / "fil-result").exists()


def test_script_from_a_named_pipe(tmp_path, fp):
    # As `python3 fifo`: the program is what the writer sends, read once.
    fifo = tmp_path / "prog.py"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    proc = subprocess.Popen([fp.FIL, "--no-browser", "-o", str(out), "run", str(fifo)],
                            cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        with open(fifo, "w") as w:
            w.write("held = bytearray(8 * 1024 * 1024)\nprint('from the pipe')\n")
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert stdout == b"from the pipe\n"
    fp.check_peak_report(fp.latest_result(out))


@pytest.mark.parametrize("argv", [
    ["run", "--no-browser"],
    ["--no-such-option", "run", "x.py"],
    ["run", "--no-browser", "-o"],
    ["frobnicate", "x.py"],
], ids=["no-script", "unknown-option", "missing-value", "unknown-command"])
def test_usage_errors(tmp_path, fp, argv):
    (tmp_path / "x.py").write_text("print('should not run')\n")
    proc = _fil(fp, tmp_path, *argv)
    assert proc.returncode == 2, fp.describe(proc)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert lines and lines[0].startswith("=fil-profile= error: "), lines
    assert all(l.startswith(fp.PREFIX) for l in lines), lines


def test_help_and_version(tmp_path, fp):
    for flag in ("--help", "-h"):
        proc = _fil(fp, tmp_path, flag)
        assert proc.returncode == 0, fp.describe(proc)
        text = proc.stdout.decode()
        assert "Usage:" in text and "run" in text and "-o" in text, text
    proc = _fil(fp, tmp_path, "--version")
    assert proc.returncode == 0, fp.describe(proc)
    assert re.fullmatch(r"fil-profile \d+\.\d+\.\d+\S*\n", proc.stdout.decode()), proc.stdout
    _, result = fp.run_fil(tmp_path, "print(1)\n")
    summary_version = fp.load_summary(result)["fil_profile_version"]
    assert proc.stdout.decode().split()[1] == summary_version


def test_python_form_passes_v_to_the_interpreter(tmp_path, fp):
    """`fil-profile python -V` answers as `python3 -V` does (which
    interpreter FIL_PYTHON picks), and runs and writes nothing; so do
    --version (a wrapper script standing in for python is asked that by
    tools), -Vc and twice --version."""
    for flags in (["-V"], ["-VV"], ["--version"], ["-Vc", "1/0"], ["--version", "--version"]):
        want = subprocess.run([fp.PYTHON, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc = _fil(fp, tmp_path, "-o", "out", "python", *flags)
        assert proc.returncode == want.returncode == 0, fp.describe(proc)
        assert proc.stdout == want.stdout and proc.stdout.startswith(b"Python 3."), proc.stdout
        assert not (tmp_path / "out").exists()


def test_result_folders_latest_and_no_overwrite(tmp_path, fp):
    script = fp.write_script(tmp_path, ARGV_SCRIPT)
    out = tmp_path / "out"
    proc1, first = fp.run_fil(tmp_path, script, "first", out=out)
    assert proc1.returncode == 0, fp.describe(proc1)
    assert TIMESTAMP_RE.match(first.name), first.name
    assert first.parent == out.resolve()
    first_files = {p.name: p.read_bytes() for p in first.iterdir()}
    time.sleep(0.01)

    proc2, second = fp.run_fil(tmp_path, script, "second", out=out)
    assert proc2.returncode == 0, fp.describe(proc2)
    assert second != first and TIMESTAMP_RE.match(second.name)
    # latest points to the newest run, the first one is untouched.
    assert (out / "latest").is_symlink()
    assert (out / "latest").resolve() == second
    assert {p.name: p.read_bytes() for p in first.iterdir()} == first_files
    assert fp.load_summary(first)["command"][-1] == "first"
    assert fp.load_summary(second)["command"][-1] == "second"
    assert sorted(p.name for p in out.iterdir()) == sorted([first.name, second.name, "latest"])


def test_default_output_folder(tmp_path, fp):
    script = fp.write_script(tmp_path, ARGV_SCRIPT)
    proc = _fil(fp, tmp_path, "run", "--no-browser", script.name)
    assert proc.returncode == 0, fp.describe(proc)
    result = fp.latest_result(tmp_path / "fil-result")
    assert result is not None and TIMESTAMP_RE.match(result.name)
    _check_held(fp, result)


def test_python_command(tmp_path, fp):
    script = fp.write_script(tmp_path, ARGV_SCRIPT)
    out = tmp_path / "out"
    proc = _fil(fp, tmp_path, "-o", out, "--no-browser", "python", "-u", script, "-x", "y")
    assert proc.returncode == 0, fp.describe(proc)
    assert json.loads(proc.stdout) == ["-x", "y"]
    _check_held(fp, fp.latest_result(out))


@pytest.mark.parametrize("flags", [["-c"], ["-uc"]], ids=["c", "cluster"])
def test_python_empty_code_runs_as_with_python(tmp_path, fp, flags):
    # `python3 -c '' a` runs no code and exits 0; so does the profiled one.
    out = tmp_path / "out"
    proc = _fil(fp, tmp_path, "-o", out, "--no-browser", "python", *flags, "", "a")
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b""
    summary = fp.load_summary(fp.latest_result(out))
    assert summary["command"][-3:] == ["-c", "", "a"], summary["command"]


def test_python_dash_m_filprofiler(tmp_path, fp):
    script = fp.write_script(tmp_path, ARGV_SCRIPT + "raise SystemExit(7)\n")
    out = tmp_path / "out"
    proc = _fil(fp, tmp_path, "run", "-o", out, "--no-browser", script, "--help", "z",
                python_m=True)
    assert proc.returncode == 7, fp.describe(proc)
    assert json.loads(proc.stdout) == ["--help", "z"]
    for line in proc.stderr.decode().splitlines():
        assert line.startswith(fp.PREFIX), line
    summary = _check_held(fp, fp.latest_result(out))
    assert summary["exit_status"] == 7
    assert summary["python"] == fp.PYTHON or os.path.realpath(summary["python"]) == \
        os.path.realpath(fp.PYTHON)


def test_python_dash_m_filprofiler_finds_launcher_next_to_package(tmp_path, fp):
    """Without FIL_PROFILE_BIN, the package finds build/bin/fil-profile."""
    default = fp.PKG_PYTHONPATH.parents[2] / "bin" / "fil-profile"
    if not default.exists():
        pytest.skip("no launcher installed next to %s" % fp.PKG_PYTHONPATH)
    script = fp.write_script(tmp_path, ARGV_SCRIPT)
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(fp.PKG_PYTHONPATH)}
    proc = subprocess.run([fp.PYTHON, "-m", "filprofiler", "-o", str(out), "--no-browser",
                           "run", str(script)], cwd=str(tmp_path), env=fp.base_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, fp.describe(proc)
    assert json.loads(proc.stdout) == []
    _check_held(fp, fp.latest_result(out))


def test_an_interpreter_without_its_extension_is_refused_in_one_line(tmp_path, fp):
    """A copy of the install without FIL_PYTHON's extension (as an install
    built for other versions): one =fil-profile= line naming the versions
    it has, in order, and how to add one; exit 127; no traceback, no report,
    the program never runs."""
    import shutil
    from pathlib import Path
    fil = Path(fp.FIL).resolve()
    inst = tmp_path / "inst"
    shutil.copytree(fil.parent.parent / "lib" / "fil-profile", inst / "lib" / "fil-profile")
    (inst / "bin").mkdir()
    shutil.copy2(fil, inst / "bin" / "fil-profile")
    pkg = inst / "lib" / "fil-profile" / "python" / "filprofiler"
    version = subprocess.run([fp.PYTHON, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                             stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    mine = [p for p in pkg.iterdir() if p.name.startswith("_native.cpython-%s" % version)]
    assert mine, sorted(p.name for p in pkg.iterdir())
    for p in mine:
        p.unlink()
    left = sorted({(3, int(p.name.split("-")[1][1:].rstrip("dt"))) for p in pkg.iterdir()
                   if p.name.startswith("_native.cpython-3")})
    script = fp.write_script(tmp_path, "print('ran')\n")
    proc = subprocess.run([str(inst / "bin" / "fil-profile"), "run", "--no-browser", "-o",
                           str(tmp_path / "out"), str(script)], cwd=str(tmp_path),
                          env=fp.base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 127, fp.describe(proc)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(fp.PREFIX + "error: "), lines
    have = ", ".join("%d.%d" % v for v in left) if left else "(none built)"
    assert "supports Python %s " % have in lines[0], (lines[0], have)
    assert "make PYTHONS=" in lines[0], lines[0]
    assert not (tmp_path / "out").exists(), "the run's -o folder is left behind"


def test_a_run_that_never_started_leaves_only_what_was_there(tmp_path, fp):
    """A FIL_PYTHON named like Python that starts no interpreter: exit 127,
    and of -o keep/a/b only keep, which was there before, is left (empty
    as it was)."""
    keep = tmp_path / "keep"
    keep.mkdir()
    fake = tmp_path / "python-stand-in"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    script = fp.write_script(tmp_path, "print('ran')\n")
    proc = subprocess.run([fp.FIL, "run", "--no-browser", "-o", str(keep / "a" / "b"),
                           str(script)], cwd=str(tmp_path),
                          env=fp.base_env({"FIL_PYTHON": str(fake)}),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 127, fp.describe(proc)
    assert "did not start a Python interpreter" in proc.stderr.decode()
    assert keep.is_dir() and list(keep.iterdir()) == []


@pytest.mark.parametrize("other", ["/usr/bin/perl", "/bin/sh", "/bin/true"])
def test_an_interpreter_that_is_not_python_never_runs_the_script(tmp_path, fp, other):
    """FIL_PYTHON naming another language's interpreter: it is asked for its
    version, and the script (valid Perl and shell too) never runs under it:
    one line naming it, exit 127, no output, no result folder. Before, perl
    printed the script's "hi" and only then came the error."""
    if not os.path.exists(other):
        pytest.skip("%s is not on this machine" % other)
    script = fp.write_script(tmp_path, "print('hi')\n")
    proc = subprocess.run([fp.FIL, "run", "--no-browser", "-o", str(tmp_path / "out"),
                           str(script)], cwd=str(tmp_path),
                          env=fp.base_env({"FIL_PYTHON": other}),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 127, fp.describe(proc)
    assert proc.stdout == b"", fp.describe(proc)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        fp.PREFIX + "error: %s is not a Python interpreter" % other), lines
    assert not (tmp_path / "out").exists()


def test_a_signal_before_the_program_started_is_its_death(tmp_path, fp):
    """A Ctrl-C in the interpreter's first milliseconds, before the
    profiler is set up in it, kills it as it kills plain Python: the
    launcher dies of the same signal (a shell loop stops), says so in one
    line, and leaves no result folder. Before: "did not start a Python
    interpreter (exit status 130)" and exit 127. The interpreter here is a
    stand-in that is killed by SIGINT before it runs anything."""
    fake = tmp_path / "python-stand-in"
    fake.write_text("#!/bin/sh\nkill -INT $$\nsleep 5\necho survived\n")
    fake.chmod(0o755)
    script = fp.write_script(tmp_path, "print('ran')\n")
    proc = subprocess.run([fp.FIL, "run", "--no-browser", "-o", str(tmp_path / "out"),
                           str(script)], cwd=str(tmp_path),
                          env=fp.base_env({"FIL_PYTHON": str(fake)}),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == -signal.SIGINT, fp.describe(proc)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert lines == [fp.PREFIX + "Stopped by SIGINT before the program started; no report"], lines
    assert not (tmp_path / "out").exists()
