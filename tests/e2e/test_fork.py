# SPDX-License-Identifier: MIT
"""fork(): a child's allocations are not charged to the parent's report.
The child allocates 200 MiB and exits (normally, running atexit, and with
os._exit); the parent waits, then holds 30 MiB. The parent's report must
show the 30 MiB, not the child's 200 MiB, and parse.
"""

import pytest

MIB = 1024 * 1024

SCRIPT = """
import os
import sys

MIB = 1024 * 1024
how = sys.argv[1]
pid = os.fork()
if pid == 0:
    big = bytearray(200 * MIB)  # CHILD
    big[::4096] = b"z" * (200 * MIB // 4096)
    print("child", len(big) // MIB, flush=True)
    if how == "exit":
        sys.exit(0)
    os._exit(0)
_, status = os.waitpid(pid, 0)
held = bytearray(30 * MIB)  # PARENT
print("parent", os.waitstatus_to_exitcode(status), len(held) // MIB)
"""


@pytest.mark.parametrize("how", ["exit", "_exit"])
def test_fork_child_not_in_parent_report(tmp_path, fp, how):
    proc, result = fp.run_fil(tmp_path, SCRIPT, how)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"child 200\nparent 0 30\n"
    entries, summary = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)
    parent = fp.bytes_last_frame(entries, "script.py", fp.line_of(SCRIPT, "PARENT"))
    child = fp.bytes_last_frame(entries, "script.py", fp.line_of(SCRIPT, "CHILD"))
    assert fp.within(parent, 30 * MIB, 0.02), msg
    assert child < MIB, msg
    assert summary["peak_bytes"] < 150 * MIB, summary["peak_bytes"]
    assert summary["exit_status"] == 0
    # One result folder: the child did not make one of its own.
    assert [p.name for p in (tmp_path / "fil-out").iterdir() if p.name != "latest"] == [result.name]
