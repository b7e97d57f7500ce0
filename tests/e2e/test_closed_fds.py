# SPDX-License-Identifier: MIT
"""A program that closes every descriptor it inherited (as daemons do) and
opens files of its own: the profiler's state memfd is gone, and a user file
may get its number. That file must never be touched (the state only grows
through a descriptor whose inode is still the memfd's); the run ends
normally, and profiling goes on: the state is opened again through the
supervisor, which still holds it (/proc/<supervisor>/fd/<n>), so the
memory allocated afterwards is charged to its line and nothing is dropped.
When that re-opening is impossible (FIL_TEST_NO_REOPEN=1 simulates it),
the call stacks that could not be recorded are counted in summary.json and
one warning line says so at exit, rather than being silently lost.
"""

import json

SCRIPT = """
import os
os.closerange(3, 4096)
with open("victim.txt", "w") as f:
    f.write("user data\\n")
f = open("victim.txt", "a")          # holds a low descriptor number from now on
keep = []
for i in range(20000):               # new functions: the state must grow
    exec(compile("keep.append(bytearray(64))", "<gen%d>" % i, "exec"))  # LOOP
f.close()
print(open("victim.txt").read(), end="")
"""

WARNING = "could not be recorded (the state file could not grow"


def run_closing(fp, tmp_path, env=None):
    proc, result = fp.run_fil(tmp_path, SCRIPT, env=env)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"user data\n"
    assert (tmp_path / "victim.txt").read_bytes() == b"user data\n"
    summary = json.loads((result / "summary.json").read_text())
    entries, _ = fp.check_peak_report(result)
    assert fp.prof_total(entries) == summary["peak_bytes"]
    return proc, summary, entries


def test_user_file_untouched_after_closing_the_state_fd(tmp_path, fp):
    proc, summary, entries = run_closing(fp, tmp_path)
    assert summary["dropped_call_stacks"] == 0, summary["dropped_call_stacks"]
    # The 20,000 bytearrays made after closerange are charged to the loop's
    # line: at least their 65-byte buffers each (64 bytes and the NUL).
    held = fp.bytes_with_frame(entries, "script.py", fp.line_of(SCRIPT, "LOOP"))
    assert held >= 20000 * 65, "%d\n%s" % (held, fp.fmt_prof(entries))
    assert WARNING not in proc.stderr.decode(), fp.describe(proc)


def test_closed_state_fd_without_reopen_is_reported(tmp_path, fp):
    proc, summary, _ = run_closing(fp, tmp_path, env={"FIL_TEST_NO_REOPEN": "1"})
    # 20,000 new functions do not fit in the state's first chunks: the ones
    # that could not be recorded are reported, their memory charged to the
    # nearest recorded caller (the bytes total stays exact).
    assert summary["dropped_call_stacks"] > 0
    warnings = [l for l in proc.stderr.decode().splitlines() if WARNING in l]
    assert len(warnings) == 1 and warnings[0].startswith(fp.PREFIX), fp.describe(proc)
    assert str(summary["dropped_call_stacks"]) + " call stacks" in warnings[0], warnings[0]
