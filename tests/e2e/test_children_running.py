# SPDX-License-Identifier: MIT
"""A child still running a second after the program ended is reported as it
is then: its own folder holds a report of that moment (current-memory.*),
whose summary.json must not claim the child exited 0 nor that the moment
was 0.0 s after its start."""

import json
import time

PROGRAM = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c",
                  "import sys, time; x = bytearray(6_000_000); time.sleep(3); sys.exit(7)"])
print("parent done", flush=True)
"""


def test_running_child_report_is_of_that_moment(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, PROGRAM)
    assert proc.returncode == 0, fp.describe(proc)
    summary = fp.load_summary(result)
    rows = summary["children"]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["running"] is True and row["exit_status"] is None, row
    child = json.loads((result / row["folder"] / "summary.json").read_text())
    assert (result / row["folder"] / "current-memory.prof").is_file()
    # Not an exit report: the child had not exited (it exits 7 later).
    assert child["exit_status"] is None, child["exit_status"]
    assert child["report"] == "on-demand", child["report"]
    od = child["on_demand"]
    assert od is not None and od["sequence"] >= 1, od
    assert od["seconds"] >= 0.5, od          # about a second after its start
    assert od["held_bytes"] >= 6_000_000, od
    html = (result / row["folder"] / "index.html").read_text()
    assert "Report on demand at 0.0 s" not in html
    time.sleep(2.5)                          # let the child go before tmp_path does


UNREAPED = """
import os, signal, time
pid = os.fork()
if pid == 0:
    x = bytearray(8_000_000)
    time.sleep(10)
    os._exit(0)
time.sleep(0.5)
os.kill(pid, signal.SIGTERM)        # and exit without reaping it
"""


def test_child_whose_end_is_not_known_does_not_claim_exit_0(fp, tmp_path):
    """A fork child killed by a signal that no process of the tree reaps:
    its exit status is not known, in the parent's row (null) and in the
    child's own summary.json alike."""
    proc, result = fp.run_fil(tmp_path, UNREAPED)
    assert proc.returncode == 0, fp.describe(proc)
    rows = fp.load_summary(result)["children"]
    assert len(rows) == 1 and rows[0]["running"] is False, rows
    if rows[0]["exit_status"] is not None:
        return                            # known after all (reaped): nothing to check
    child = json.loads((result / rows[0]["folder"] / "summary.json").read_text())
    assert child["exit_status"] is None, child["exit_status"]
