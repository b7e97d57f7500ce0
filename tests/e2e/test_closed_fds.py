# SPDX-License-Identifier: MIT
"""A program that closes every descriptor it inherited (as daemons do) and
opens files of its own: the profiler's state memfd is gone, and a user file
may get its number. That file must never be touched (the state only grows
through a descriptor whose inode is still the memfd's); the run still ends
normally, and the call stacks that could not be recorded are counted in
summary.json rather than silently lost.
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
    exec(compile("keep.append(bytearray(64))", "<gen%d>" % i, "exec"))
f.close()
print(open("victim.txt").read(), end="")
"""


def test_user_file_untouched_after_closing_the_state_fd(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"user data\n"
    assert (tmp_path / "victim.txt").read_bytes() == b"user data\n"
    summary = json.loads((result / "summary.json").read_text())
    # 20,000 new functions do not fit in the state's first chunks: the ones
    # that could not be recorded are reported, their memory charged to the
    # nearest recorded caller (the bytes total stays exact).
    assert summary["dropped_call_stacks"] > 0
    entries, _ = fp.check_peak_report(result)
    assert fp.prof_total(entries) == summary["peak_bytes"]
