# SPDX-License-Identifier: MIT
"""A Python the profiler has no extension for (another version: a tool
run on python2.7 or a newer 3.x than the build) runs unprofiled, as
documented, but the Python processes it starts are the program's too:
they are profiled, as they are below a shell. Before, such an interpreter
dropped the launcher's variables and carried none of them, so everything
below it ran unprofiled and unlisted (the grandchild holding 30 MiB was
missing from summary.json).
"""

import glob
import json
import os
import re
import subprocess

import pytest

MIB = 1024 * 1024


def unbuilt_python(fp):
    """An interpreter on this machine with no extension in the build, or None."""
    libdir = os.path.join(os.path.dirname(os.path.dirname(fp.FIL)), "lib", "fil-profile",
                          "python", "filprofiler")
    built = {m.group(1) for f in os.listdir(libdir)
             for m in [re.match(r"_native\.cpython-(\d+)", f)] if m}
    candidates = sorted(glob.glob("/usr/bin/python[23].*") +
                        glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python[23]")))
    for exe in candidates:
        if not os.access(exe, os.X_OK) or not re.search(r"python\d(\.\d+)?$", exe):
            continue
        try:
            tag = subprocess.run([exe, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 timeout=20).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if tag and tag not in built:
            return exe
    return None


SCRIPT = """
import subprocess
import sys

middle = sys.argv[1]
code = ("import subprocess, sys; "
        "sys.exit(subprocess.call([%r, '-c', 'import sys; b = bytearray(30 << 20); sys.exit(5)']))"
        % sys.executable)
print("middle", subprocess.call([middle, "-c", code]))
"""


def test_python_below_an_unprofiled_interpreter(fp, tmp_path):
    middle = unbuilt_python(fp)
    if middle is None:
        pytest.skip("no interpreter without an extension in this build")
    proc, result = fp.run_fil(tmp_path, SCRIPT, middle)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"middle 5\n", fp.describe(proc)
    summary = json.loads((result / "summary.json").read_text())
    rows = summary["children"]
    assert len(rows) == 1, rows  # the grandchild; the middle one is not profiled
    assert rows[0]["command"][0] == fp.PYTHON and rows[0]["exit_status"] == 5, rows
    assert rows[0]["peak_bytes"] >= 30 * MIB, rows  # with its start-up's few MiB
    entries = fp.parse_prof(fp.prof_file(result / rows[0]["folder"]))
    held = fp.bytes_at_line(entries, "<string>", 1)
    assert fp.within(held, 30 * MIB, 0.01), fp.fmt_prof(entries)
