# SPDX-License-Identifier: MIT
"""A profiled process that replaces itself with exec (os.fork then
os.execv of another Python, a python -c that execs a script) is listed
once per image under one pid: the earlier rows did not end, they became
the next one. Their rows say so: "execed": true in summary.json, and
index.html says the process replaced itself with exec, rather than
"ended (how is not known)" as for a process nobody reaped. The last image's
row carries the exit status (6) and a peak of at least its own 40 MiB,
which its report charges to its line (within 1%; the peak also holds what
the interpreter's start-up allocated, 4-7 MiB depending on the build).
"""

import json
import sys

MIB = 1024 * 1024

SCRIPT = """
import os
import sys

py = sys.executable
pid = os.fork()
if pid == 0:
    os.execv(py, [py, "-c", "import os, sys; os.execv(sys.executable, "
                            "[sys.executable, 'child.py'])"])
print("exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""

CHILD = """
import sys
held = bytearray(40 * 1024 * 1024)  # hold
sys.exit(6)
"""


def test_rows_of_a_process_that_execed(fp, tmp_path):
    fp.write_script(tmp_path, CHILD, name="child.py")
    proc, result = fp.run_fil(tmp_path, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"exit 6\n"
    summary = json.loads((result / "summary.json").read_text())
    rows = summary["children"]
    pids = {r["pid"] for r in rows}
    assert len(pids) == 1, rows
    last = [r for r in rows if r["command"][1:] == ["child.py"]]
    assert len(last) == 1, rows
    assert last[0]["execed"] is False and last[0]["exit_status"] == 6, last[0]
    assert last[0]["peak_bytes"] >= 40 * MIB, last[0]
    entries = fp.parse_prof(fp.prof_file(result / last[0]["folder"]))
    held = fp.bytes_at_line(entries, "child.py", fp.line_of(CHILD, "hold"))
    assert fp.within(held, 40 * MIB, 0.01), fp.fmt_prof(entries)
    earlier = [r for r in rows if r is not last[0]]
    assert earlier, rows  # the python -c image, at least (it imported os, sys)
    for r in earlier:
        assert r["execed"] is True and r["exit_status"] is None, r
    html = (result / "index.html").read_text()
    assert "ended (how is not known)" not in html
    assert html.count("replaced itself with exec") == len(earlier), html


BECOMES_ANOTHER = """
import os
import sys

def fork_exec(argv, then=None):
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        except OSError:
            held = then()  # after a failed exec
            os._exit(4)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), pid

print("true", *fork_exec(["/bin/true"]))
print("false", *fork_exec(["/bin/false"]))
print("killed", *fork_exec(["/bin/sh", "-c", "kill -TERM $$"]))
print("failed", *fork_exec(["/nonexistent/program"], lambda: bytearray(8 * 1024 * 1024)))
"""


def test_fork_child_that_became_another_program_is_not_listed(fp, tmp_path):
    """A fork child that only prepared an exec of another program (pty.fork,
    pexpect, a daemon's fork and exec) is that program from then on: it is
    not a row of summary.json and has no folder, whatever its exit status.
    One killed by a signal keeps its row (the user may look for what died),
    as does one whose exec failed and that went on as Python (8 MiB)."""
    proc, result = fp.run_fil(tmp_path, BECOMES_ANOTHER)
    assert proc.returncode == 0, fp.describe(proc)
    out = dict((w[0], (int(w[1]), int(w[2]))) for w in
               (line.split() for line in proc.stdout.decode().splitlines()))
    assert [out[k][0] for k in ("true", "false", "killed", "failed")] == [0, 1, -15, 4], out
    rows = {r["pid"]: r for r in json.loads((result / "summary.json").read_text())["children"]}
    assert set(rows) == {out["killed"][1], out["failed"][1]}, rows
    assert rows[out["killed"][1]]["signal"] == "SIGTERM", rows
    failed = rows[out["failed"][1]]
    assert failed["exit_status"] == 4 and failed["peak_bytes"] >= 8 * MIB, failed
    folders = sorted(p.name for p in (result / "children").iterdir())
    assert folders == sorted(r["folder"].split("/")[1] for r in rows.values()), folders
