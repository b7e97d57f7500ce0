# SPDX-License-Identifier: MIT
"""``python3 -m filprofiler ARGS...``: the same as ``fil-profile ARGS...``.

``python3 -m filprofiler install-kernel [--user | --prefix DIR]`` installs a
Jupyter kernel, "Python 3 with fil-profile", that runs ipykernel under the
profiler with this interpreter (for the ``%%filprofile`` magic), with
--on-oom=continue so that a cell that runs out of memory gets a MemoryError
and the kernel goes on; --user (the default) installs it in
~/.local/share/jupyter/kernels. When this interpreter does not find this
package by itself (a build tree used through PYTHONPATH, not installed with
``make install``), the kernel gets PYTHONPATH set to this package's folder.

Replaces this interpreter with the ``fil-profile`` launcher, which then runs
the program with this same interpreter (FIL_PYTHON=sys.executable). The
launcher is $FIL_PROFILE_BIN if set, else the one installed next to this
package: the package lives in <prefix>/lib/fil-profile/python/filprofiler,
the launcher in <prefix>/bin/fil-profile.
"""

import json
import os
import subprocess
import sys


def _launcher():
    explicit = os.environ.get("FIL_PROFILE_BIN")
    if explicit:
        return explicit
    package_dir = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(
        os.path.join(package_dir, "..", "..", "..", "..", "bin", "fil-profile")
    )


def _package_root():
    """The folder this package is imported from (its parent)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _found_by_itself(python):
    """Whether `python`, with no PYTHON* variable, imports this very package."""
    code = "import filprofiler, os; print(os.path.realpath(filprofiler.__file__))"
    try:
        out = subprocess.run([python, "-E", "-c", code], capture_output=True, text=True,
                             cwd="/", timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    mine = os.path.realpath(os.path.join(_package_root(), "filprofiler", "__init__.py"))
    return out.returncode == 0 and out.stdout.strip() == mine


def install_kernel(args):
    """Write kernels/fil-profile/kernel.json; return its path."""
    if args[:1] == ["--prefix"] and len(args) == 2:
        base = os.path.join(args[1], "share", "jupyter")
    elif args in ([], ["--user"]):
        base = os.path.join(os.environ.get("XDG_DATA_HOME")
                            or os.path.expanduser("~/.local/share"), "jupyter")
    else:
        sys.stderr.write("=fil-profile= error: usage: python3 -m filprofiler install-kernel "
                         "[--user | --prefix DIR]\n")
        sys.exit(2)
    spec = {
        "argv": [_launcher(), "--no-browser", "--on-oom=continue", "python", "-m",
                 "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 with fil-profile",
        "language": "python",
        "env": {"FIL_PYTHON": sys.executable},
    }
    if not _found_by_itself(sys.executable):
        spec["env"]["PYTHONPATH"] = _package_root()
        sys.stderr.write("=fil-profile= %s does not find this filprofiler package by itself "
                         "(make install puts a .pth file in its site-packages): the kernel "
                         "gets PYTHONPATH=%s\n" % (sys.executable, _package_root()))
    folder = os.path.join(base, "kernels", "fil-profile")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "kernel.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    sys.stderr.write("=fil-profile= Installed the Jupyter kernel in %s\n" % folder)
    return path


def main():
    if sys.argv[1:2] == ["install-kernel"]:
        install_kernel(sys.argv[2:])
        return
    launcher = _launcher()
    if sys.executable:
        os.environ["FIL_PYTHON"] = sys.executable  # putenv: inherited by execv
    try:
        os.execv(launcher, [launcher] + sys.argv[1:])
    except OSError as e:
        sys.stderr.write(
            "=fil-profile= error: cannot run %s: %s (set FIL_PROFILE_BIN to the "
            "fil-profile launcher)\n" % (launcher, e.strerror)
        )
        sys.exit(127)


if __name__ == "__main__":
    main()
