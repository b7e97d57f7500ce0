# SPDX-License-Identifier: MIT
"""Line numbers in long code objects.

The line of an allocation is looked up from where the previous lookup in
the same code object left off (src/python/native.c), forward or back. A
function of 4,000 lines allocates at its top, its bottom and its middle in
a loop, and a 3,000-statement module allocates at every statement (as
numpy's _add_newdocs does while being imported): every allocation is at
its own line, with its exact bytes.
"""

KIB = 1024


def long_function():
    body = ["keep = []", "", "", "def f():", "    for r in range(3):",
            "        keep.append(bytearray(100 * 1024))  # TOP"]
    body += ["        x = %d" % i for i in range(2000)]
    body += ["        keep.append(bytearray(300 * 1024))  # MIDDLE"]
    body += ["        x = %d" % i for i in range(2000)]
    body += ["        keep.append(bytearray(200 * 1024))  # BOTTOM", "", "", "f()"]
    return "\n".join(body) + "\n"


def test_lines_of_a_long_function_in_a_loop(fp, tmp_path):
    text = long_function()
    proc, result = fp.run_fil(tmp_path, text)
    assert proc.returncode == 0, fp.describe(proc)
    entries, _ = fp.check_peak_report(result)
    for marker, size in (("TOP", 100), ("MIDDLE", 300), ("BOTTOM", 200)):
        got = fp.bytes_last_frame(entries, "script.py", fp.line_of(text, marker))
        assert fp.within(got, 3 * size * KIB, 0.01), (marker, got)


def test_lines_of_a_long_module(fp, tmp_path):
    lines = ["keep = []"]
    lines += ["keep.append(bytearray(%d))" % (4096 + 64 * i) for i in range(3000)]
    text = "\n".join(lines) + "\n"
    proc, result = fp.run_fil(tmp_path, text)
    assert proc.returncode == 0, fp.describe(proc)
    entries, _ = fp.check_peak_report(result)
    wrong = []
    for i in range(0, 3000, 97):
        got = fp.bytes_last_frame(entries, "script.py", i + 2)
        if not fp.within(got, 4096 + 64 * i, 0.02):
            wrong.append((i + 2, got))
    assert not wrong, wrong[:5]
