# SPDX-License-Identifier: MIT
"""Child processes at the edges of what the launcher is told:

- a fork child whose parent exits at once (a daemon's double fork): its
  parent_pid is the process that forked it, not the one it was handed to
  (init, a subreaper) by the time it registered;
- a result folder whose path leaves no room to tell a child its own (over
  2 KiB): the children run unprofiled, are not listed (no rows with a peak
  of 0 and reports nobody wrote), and stderr says why once.
"""

import json
import os
from pathlib import Path

MIB = 1024 * 1024

DOUBLE_FORK = """
import json
import os
import sys
import time

out = sys.argv[1]
kids = []
for i in range(6):
    pid = os.fork()
    if pid == 0:
        mid = os.getpid()
        if os.fork() > 0:
            os._exit(0)  # the grandchild's parent is gone at once
        held = bytearray(2 * 1024 * 1024)
        with open(os.path.join(out, "%d.json" % os.getpid()), "w") as f:
            json.dump({"mid": mid}, f)
        time.sleep(0.2)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
time.sleep(0.6)  # the grandchildren end before the program
"""


def test_double_fork_parent_pid(fp, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    proc, result = fp.run_fil(tmp_path, DOUBLE_FORK, str(marks))
    assert proc.returncode == 0, fp.describe(proc)
    rows = {c["pid"]: c for c in fp.load_summary(result)["children"]}
    grand = {int(p.stem): json.loads(p.read_text())["mid"] for p in marks.glob("*.json")}
    assert len(grand) == 6, grand
    for pid, mid in grand.items():
        assert pid in rows, (pid, sorted(rows))
        assert rows[pid]["parent_pid"] == mid, (rows[pid], mid)
        assert rows[mid]["kind"] == "fork" and rows[pid]["kind"] == "fork", rows
        assert fp.within(rows[pid]["peak_bytes"], 2 * MIB, 0.02), rows[pid]


POOL = """
import multiprocessing as mp

def work(n):
    return len(bytearray(n * 1024 * 1024))

if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as p:
        print(sum(p.map(work, [5, 6])))
"""


def test_result_path_too_long_for_children(fp, tmp_path):
    deep = Path(tmp_path, *["d" * 200] * 10)
    deep.mkdir(parents=True)
    proc, result = fp.run_fil(tmp_path, POOL, out=deep)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout.split() == [b"11534336"], fp.describe(proc)
    err = proc.stderr.decode()
    assert err.count("child processes are not profiled") == 1, err
    summary = fp.load_summary(result)
    assert summary["children"] == [], summary["children"]
    assert summary["process_tree"] is None, summary["process_tree"]
    assert not list(Path(result).glob("children/*")), list(Path(result).glob("children/*"))
    assert "Profiled" not in err, err
