# SPDX-License-Identifier: MIT
"""Children in a pid namespace of their own (`unshare --pid --fork`, a
sandbox): a process there knows itself and its parent by the namespace's
numbers (its first process is 1, whose parent is 0), but summary.json
numbers every process as the launcher sees it. A fork child's parent_pid
is the pid of the row that forked it, and the exec'd Python's is the
`unshare` that started it (before: 1 and 0, the namespace's own numbers,
which name no process of the tree).
"""

import json
import shutil
import subprocess

import pytest

SCRIPT = """
import subprocess
import sys

code = ("import os, sys\\n"
        "pid = os.fork()\\n"
        "if pid == 0:\\n"
        "    b = bytearray(5 << 20)\\n"
        "    os._exit(4)\\n"
        "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\\n")
p = subprocess.Popen(["unshare", "--pid", "--fork", sys.executable, "-c", code])
print("unshare", p.pid, "exit", p.wait())
"""


def test_parent_pids_in_a_pid_namespace(fp, tmp_path):
    if not shutil.which("unshare") or subprocess.run(
            ["unshare", "--pid", "--fork", "true"], stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("cannot make a pid namespace here")
    proc, result = fp.run_fil(tmp_path, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    words = proc.stdout.split()
    assert words[0] == b"unshare" and words[-1] == b"4", proc.stdout
    unshare_pid = int(words[1])
    rows = json.loads((result / "summary.json").read_text())["children"]
    execs = [r for r in rows if r["kind"] == "exec"]
    forks = [r for r in rows if r["kind"] == "fork"]
    assert len(execs) == 1 and len(forks) == 1, rows
    assert forks[0]["exit_status"] == 4, forks[0]
    assert forks[0]["parent_pid"] == execs[0]["pid"], rows
    assert execs[0]["parent_pid"] == unshare_pid, rows
