# SPDX-License-Identifier: MIT
"""`make install`: the filprofiler package is found with no PYTHONPATH.

make install writes a fil-profile.pth into each interpreter's own
site-packages. Two tests, each honest about what it proves:

- a venv of FIL_PYTHON (an interpreter with site-packages of its own, as a
  pyenv version has) and a temporary PREFIX: before the install the venv's
  python cannot import filprofiler; after it, `python -m filprofiler
  --version` runs the installed launcher, `install-kernel` writes a spec
  naming that launcher and that interpreter (and no PYTHONPATH), and a
  program profiled through it gets its report;
- Debian's own layout, `make install DESTDIR=STAGE PREFIX=/usr/local`: the
  .pth lands in STAGE/usr/local/lib/python3.X/dist-packages, a folder
  Debian's /usr/bin/python3 searches; then, in a private mount namespace
  where STAGE/usr/local is mounted over /usr/local (what installing for
  real would put there, nothing else changed), /usr/bin/python3 -m
  filprofiler --version works. Skipped, saying why, without unshare(1)
  rights or where FIL_PYTHON is not Debian's python3.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def clean_env():
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "FIL_PROFILE_BIN", "PYTHONSTARTUP"):
        env.pop(name, None)
    return env


def make_install(fp, *args):
    """make install from this tree, for the build the launcher under test is of."""
    if Path(fp.FIL).resolve().parent.parent.parent != REPO:
        pytest.skip("the launcher under test (%s) is not this tree's build" % fp.FIL)
    debug = ["DEBUG=1"] if Path(fp.FIL).resolve().parent.parent.name == "build-debug" else []
    proc = subprocess.run(["make", "-s", "-C", str(REPO), "install", *debug, *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_install_into_a_prefix_for_an_interpreter_with_its_own_site(fp, tmp_path):
    venv = tmp_path / "venv"
    made = subprocess.run([fp.PYTHON, "-m", "venv", "--without-pip", str(venv)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip("%s cannot make a venv: %s" % (fp.PYTHON, made.stderr.strip()))
    python = str(venv / "bin" / "python")
    before = subprocess.run([python, "-c", "import filprofiler"], env=clean_env(),
                            capture_output=True, text=True, cwd=str(tmp_path))
    assert before.returncode != 0  # nothing makes it importable yet
    prefix = tmp_path / "prefix"
    make_install(fp, "PREFIX=%s" % prefix, "PYTHONS=%s" % python)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert (Path(site) / "fil-profile.pth").read_text().strip() == \
        str(prefix / "lib/fil-profile/python")

    version = subprocess.run([python, "-m", "filprofiler", "--version"], env=clean_env(),
                             capture_output=True, text=True, cwd=str(tmp_path))
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("fil-profile "), version.stdout

    kernel = subprocess.run([python, "-m", "filprofiler", "install-kernel", "--prefix",
                             str(tmp_path / "jup")], env=clean_env(), capture_output=True,
                            text=True, cwd=str(tmp_path))
    assert kernel.returncode == 0, kernel.stderr
    spec = json.loads((tmp_path / "jup/share/jupyter/kernels/fil-profile/kernel.json").read_text())
    assert spec["argv"][0] == str(prefix / "bin" / "fil-profile")
    assert spec["env"] == {"FIL_PYTHON": python}  # found by itself: no PYTHONPATH
    assert "PYTHONPATH" not in kernel.stderr

    script = tmp_path / "alloc.py"
    script.write_text("import sys\nx = bytearray(30 * 2**20)\nprint(sys.executable)\n")
    run = subprocess.run([python, "-m", "filprofiler", "run", "--no-browser", "-o",
                          str(tmp_path / "out"), str(script)], env=clean_env(),
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout == python + "\n"  # the program ran with the venv's interpreter
    entries = fp.parse_prof(fp.latest_result(tmp_path / "out") / "peak-memory.prof")
    assert fp.within(fp.bytes_at_line(entries, str(script), 2), 30 * 2**20, 0.02)


def test_debian_usr_local_install_is_found_by_debian_python(fp, tmp_path):
    if os.path.realpath(fp.PYTHON) != os.path.realpath("/usr/bin/python3") or \
            not os.path.exists("/usr/lib/python3/dist-packages"):
        pytest.skip("%s is not Debian's /usr/bin/python3" % fp.PYTHON)
    stage = tmp_path / "stage"
    make_install(fp, "DESTDIR=%s" % stage, "PREFIX=/usr/local", "PYTHONS=/usr/bin/python3")
    ver = "%d.%d" % fp.python_version()
    pth = stage / ("usr/local/lib/python%s/dist-packages/fil-profile.pth" % ver)
    assert pth.read_text().strip() == "/usr/local/lib/fil-profile/python"
    path = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('\\n'.join(sys.path))"],
                          env=clean_env(), capture_output=True, text=True, check=True).stdout
    assert "/usr/local/lib/python%s/dist-packages" % ver in path.split("\n")

    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True) if unshare else None
    if not probe or probe.returncode != 0:
        pytest.skip("no unshare -m here: cannot mount the staged /usr/local over the real one")
    inner = ("mount --bind %s /usr/local && cd / && /usr/bin/python3 -m filprofiler --version && "
             "/usr/bin/python3 -c 'import filprofiler; print(filprofiler.__file__)'"
             % (stage / "usr/local"))
    run = subprocess.run([unshare, "-m", "sh", "-c", inner], env=clean_env(),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("fil-profile ") and \
        lines[1] == "/usr/local/lib/fil-profile/python/filprofiler/__init__.py", run.stdout
