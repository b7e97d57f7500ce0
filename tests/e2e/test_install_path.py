# SPDX-License-Identifier: MIT
"""An installation under a folder whose name has a space or a colon
("/home/Jane Doe/.local"): the loader splits LD_PRELOAD there, so the
launcher must name its library some other way. The program is profiled
(a report charging its line), children too, and the program's own
LD_PRELOAD view is as without the profiler.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = """
import os, subprocess, sys
held = bytearray(16 * 1024 * 1024)  # HELD
subprocess.run([sys.executable, "-c", "x = bytearray(4 * 1024 * 1024)"], check=True)
print("LD_PRELOAD" in os.environ)
"""


def _install_copy(fp, where):
    """The launcher and its library folder, as `make install` lays them out."""
    build = Path(fp.FIL).resolve().parents[1]
    (where / "bin").mkdir(parents=True)
    shutil.copy2(build / "bin" / "fil-profile", where / "bin" / "fil-profile")
    shutil.copytree(build / "lib" / "fil-profile", where / "lib" / "fil-profile", symlinks=True)
    return where / "bin" / "fil-profile"


@pytest.mark.parametrize("name", ["Jane Doe", "a:b"], ids=["space", "colon"])
def test_installed_under_a_folder_with_a_separator(tmp_path, fp, name):
    launcher = _install_copy(fp, tmp_path / name / "prefix")
    script = fp.write_script(tmp_path, SCRIPT)
    out = tmp_path / "out"
    env = dict(fp.base_env())
    env.pop("LD_PRELOAD", None)
    env["TMPDIR"] = str(tmp_path / "tmp")  # where the link goes: not the shared /tmp
    (tmp_path / "tmp").mkdir()
    env.pop("XDG_RUNTIME_DIR", None)
    proc = subprocess.run([str(launcher), "--no-browser", "-o", str(out), "run", str(script)],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"False\n"
    assert b"ld.so" not in proc.stderr, proc.stderr
    result = fp.latest_result(out)
    entries, _ = fp.check_peak_report(result)
    got = fp.bytes_last_frame(entries, "script.py", fp.line_of(SCRIPT, "HELD"))
    assert fp.within(got, 16 * 1024 * 1024, 0.02), fp.fmt_prof(entries)
    children = list((result / "children").iterdir())
    assert len(children) == 1 and (children[0] / "summary.json").exists(), children
    # A second run reuses the link; the folders holding it are the user's own.
    proc = subprocess.run([str(launcher), "--no-browser", "-o", str(out), "run", str(script)],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == 0, fp.describe(proc)
    links = list((tmp_path / "tmp").glob("fil-profile-*/*/libfilpreload.so"))
    assert len(links) == 1 and links[0].is_symlink(), links
    assert os.stat(links[0].parent).st_mode & 0o077 == 0


def test_link_folder_of_another_user_is_never_used(tmp_path, fp):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder owned by another user")
    launcher = _install_copy(fp, tmp_path / "Jane Doe")
    script = fp.write_script(tmp_path, "print('ran')\n")
    tmp, runtime = tmp_path / "tmp", tmp_path / "runtime"
    tmp.mkdir()
    runtime.mkdir()
    planted = runtime / ("fil-profile-%d" % os.geteuid())
    planted.mkdir(mode=0o777)
    os.chown(planted, 65534, 65534)
    # XDG_RUNTIME_DIR holds another user's folder: TMPDIR is used instead.
    env = dict(fp.base_env(), XDG_RUNTIME_DIR=str(runtime), TMPDIR=str(tmp))
    proc = subprocess.run([str(launcher), "--no-browser", "-o", str(tmp_path / "out"), "run",
                           str(script)], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"ran\n"
    assert list(planted.iterdir()) == []
    assert len(list(tmp.glob("fil-profile-*/*/libfilpreload.so"))) == 1
    fp.check_peak_report(fp.latest_result(tmp_path / "out"))
