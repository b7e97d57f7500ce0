# SPDX-License-Identifier: MIT
"""numpy arrays: memory held at the peak is charged to the user's lines, and
an array freed before the peak is not in the peak report.

The program first allocates and frees 120 MiB (line B), then holds 100 MiB
(line A, np.ones: malloc) and 50 MiB (line C, np.zeros: calloc), so the true
peak, 150 MiB plus the interpreter, comes after B was freed.
"""

import pytest

pytestmark = pytest.mark.numpy

MIB = 1024 * 1024

SCRIPT = """
import numpy as np

MIB = 1024 * 1024


def scratch():
    tmp = np.ones(120 * MIB, dtype=np.uint8)  # LINE_B
    return int(tmp[::4096].sum())


def load():
    return np.ones(100 * MIB, dtype=np.uint8)  # LINE_A


def main():
    total = scratch()
    a = load()
    c = np.zeros(50 * MIB, dtype=np.uint8)  # LINE_C
    c[::4096] = 1
    print("held", (a.nbytes + c.nbytes) // MIB, total)


main()
"""


def test_numpy_peak_lines(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"held 150 30720\n"
    entries, summary = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)

    line_a = fp.line_of(SCRIPT, "LINE_A")
    line_b = fp.line_of(SCRIPT, "LINE_B")
    line_c = fp.line_of(SCRIPT, "LINE_C")
    got_a = fp.bytes_at_line(entries, "script.py", line_a)
    got_b = fp.bytes_at_line(entries, "script.py", line_b)
    got_c = fp.bytes_at_line(entries, "script.py", line_c)

    # Held arrays: their size within 2%.
    assert fp.within(got_a, 100 * MIB, 0.02), "line %d: %d bytes\n%s" % (line_a, got_a, msg)
    assert fp.within(got_c, 50 * MIB, 0.02), "line %d: %d bytes\n%s" % (line_c, got_c, msg)
    # Freed before the peak: not part of it.
    assert got_b < MIB, "freed line %d still shows %d bytes\n%s" % (line_b, got_b, msg)

    # The 100 MiB is reached through main() -> load().
    stacks = fp.stacks_at_line(entries, "script.py", line_a)
    big = [frames for frames, n in stacks if n >= 99 * MIB]
    assert big, msg
    funcs = [fp.parse_frame(f)[2] for f in big[0] if fp.frame_is(f, "script.py")]
    assert funcs[-2:] == ["main", "load"], big[0]

    # The peak: the held arrays plus the interpreter and numpy (well under 60 MiB).
    held = 150 * MIB
    assert held <= summary["peak_bytes"] <= held + 60 * MIB, summary["peak_bytes"]
    assert summary["exit_status"] == 0
