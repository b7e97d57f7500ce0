# SPDX-License-Identifier: MIT
"""`-o DIR` that cannot be used: one error line that names the real problem,
exit 2, the program not run and nothing the user had touched; and a
DIR/latest the user made (a file or a folder of their own) kept as it was.
"""

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

SCRIPT = "print('ran')\n"


def _fil(fp, cwd, *argv, preexec=None, env=None):
    return subprocess.run([fp.FIL, "--no-browser", *[str(a) for a in argv]], cwd=str(cwd),
                          env=fp.base_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=fp.DEFAULT_TIMEOUT, preexec_fn=preexec)


def _one_error(fp, proc):
    assert proc.returncode == 2, fp.describe(proc)
    assert proc.stdout == b"", "the program ran: %r" % proc.stdout
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(fp.PREFIX + "error: "), lines
    return lines[0]


def test_output_is_a_file(tmp_path, fp):
    script = fp.write_script(tmp_path, SCRIPT)
    (tmp_path / "out").write_text("mine\n")
    line = _one_error(fp, _fil(fp, tmp_path, "-o", "out", "run", script))
    assert "'out' exists and is not a directory" in line, line
    assert (tmp_path / "out").read_text() == "mine\n"


def test_output_is_a_dangling_symlink(tmp_path, fp):
    script = fp.write_script(tmp_path, SCRIPT)
    os.symlink(tmp_path / "gone" / "away", tmp_path / "out")
    line = _one_error(fp, _fil(fp, tmp_path, "-o", "out", "run", script))
    # Not "No such file or directory" about a name that is there.
    assert "'out' is a symbolic link to a missing folder" in line, line
    assert os.readlink(tmp_path / "out") == str(tmp_path / "gone" / "away")
    assert not (tmp_path / "gone").exists()


def test_output_is_a_symlink_loop(tmp_path, fp):
    script = fp.write_script(tmp_path, SCRIPT)
    os.symlink("out", tmp_path / "out")
    line = _one_error(fp, _fil(fp, tmp_path, "-o", "out", "run", script))
    assert "cannot follow the symbolic link 'out': Too many levels of symbolic links" in line, line


def _as_nobody():
    """A preexec_fn that runs the launcher as user nobody (we are root),
    or None when we are not root (permissions apply to us already)."""
    if os.geteuid() != 0:
        return None

    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return drop


@pytest.mark.parametrize("output", ["ro/sub/deeper", "ro/sub", None],
                         ids=["new-parents", "new-folder", "default-in-read-only-cwd"])
def test_output_in_a_read_only_folder(fp, output):
    # Under /tmp, not tmp_path: user nobody must reach the folder.
    top = tempfile.mkdtemp(prefix="fil-ro-")
    try:
        os.chmod(top, 0o755)
        ro = os.path.join(top, "ro")
        os.mkdir(ro)
        script = os.path.join(top, "script.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        os.chmod(script, 0o644)
        os.chmod(ro, 0o555)
        argv = ["run", script] if output is None else ["-o", output, "run", script]
        proc = _fil(fp, ro if output is None else top, *argv, preexec=_as_nobody())
        if b"cannot find the fil-profile library" in proc.stderr or proc.returncode == 127:
            pytest.skip("the build or the interpreter is out of user nobody's reach")
        line = _one_error(fp, proc)
        want = {"ro/sub/deeper": "ro/sub", "ro/sub": "ro/sub", None: "fil-result"}[output]
        assert line == "%serror: cannot create folder '%s': Permission denied" % (fp.PREFIX,
                                                                                want), line
        assert os.listdir(ro) == []
    finally:
        os.chmod(os.path.join(top, "ro"), 0o755)
        shutil.rmtree(top)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_latest_made_by_the_user_is_kept(tmp_path, fp, kind):
    script = fp.write_script(tmp_path, SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    if kind == "file":
        (out / "latest").write_text("mine\n")
    else:
        (out / "latest").mkdir()
        (out / "latest" / "notes.txt").write_text("mine\n")
    proc = _fil(fp, tmp_path, "-o", out, "run", script)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"ran\n"
    warnings = [l for l in proc.stderr.decode().splitlines() if "warning" in l]
    assert warnings == ["%swarning: '%s/latest' exists and is not a symbolic link; not updating "
                        "it" % (fp.PREFIX, out)], warnings
    if kind == "file":
        assert (out / "latest").read_text() == "mine\n"
    else:
        assert [p.name for p in (out / "latest").iterdir()] == ["notes.txt"]
        assert (out / "latest" / "notes.txt").read_text() == "mine\n"
    runs = [p for p in out.iterdir() if p.name != "latest"]
    assert len(runs) == 1 and (runs[0] / "summary.json").exists(), runs
    assert stat.S_ISDIR(os.lstat(runs[0]).st_mode)


def test_output_longer_than_a_path_creates_nothing(tmp_path, fp):
    script = fp.write_script(tmp_path, SCRIPT)
    deep = "/".join(["d"] * 2100)  # 4199 bytes: more than PATH_MAX
    line = _one_error(fp, _fil(fp, tmp_path, "-o", deep, "run", script))
    assert "output folder path too long" in line, line
    assert not (tmp_path / "d").exists(), "folders were made for a cut-down path"


def test_output_with_no_room_for_the_report_names_is_refused_before_the_run(tmp_path, fp):
    """A folder path that fits but leaves no room for its timestamped folder
    and report files (a path is at most 4095 bytes) is refused before the
    program runs, not found out when the reports cannot be written."""
    script = fp.write_script(tmp_path, SCRIPT)
    room = 4095 - len(str(tmp_path)) - 1 - 24 - 20  # the timestamp fits; the names do not
    deep = tmp_path / "/".join(["d" * 200] * (room // 201) + ["e" * (room % 201 or 1)])
    line = _one_error(fp, _fil(fp, tmp_path, "-o", deep, "run", script))
    assert "output folder path too long" in line, line
    assert not deep.exists() or list(deep.iterdir()) == [], list(deep.iterdir())


def test_interpreter_that_cannot_be_executed_leaves_no_empty_result_folder(tmp_path, fp):
    script = fp.write_script(tmp_path, SCRIPT)
    bad = tmp_path / "python3"
    bad.write_bytes(b"\x00\x01not a program")
    bad.chmod(0o755)
    out = tmp_path / "out"
    proc = _fil(fp, tmp_path, "-o", out, "run", script, env={"FIL_PYTHON": str(bad)})
    assert proc.returncode == 127, fp.describe(proc)
    lines = proc.stderr.decode().splitlines()
    assert lines == ["%serror: cannot run %s: Exec format error" % (fp.PREFIX, bad)], lines
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())


OOM = """
held = []
while True:
    held.append(bytearray(10 * 1024 * 1024))
"""


@pytest.mark.parametrize("where", ["main", "child"])
def test_out_of_memory_lines_keep_the_prefix_with_a_newline_in_the_folder(tmp_path, fp, where):
    # The out-of-memory dump names the result folder on stderr: a newline in
    # -o must not start a line of its own.
    fp.write_script(tmp_path, OOM, name="oom.py")
    text = ("import subprocess, sys\n"
            "sys.exit(subprocess.run([sys.executable, 'oom.py']).returncode)\n"
            if where == "child" else OOM)
    script = fp.write_script(tmp_path, text, name="main.py")
    out = tmp_path / "new\nline"
    proc = _fil(fp, tmp_path, "--memory-limit", "300M", "-o", out, "run", script)
    assert proc.returncode == 53, fp.describe(proc)
    lines = proc.stderr.decode().splitlines()
    assert any("Wrote out-of-memory report to" in l for l in lines), lines
    assert all(l.startswith(fp.PREFIX) for l in lines), lines
