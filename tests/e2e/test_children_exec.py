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
