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


RELOADED = """
import gc
import importlib
import pathlib
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, ".")
keep = []
SOURCE = '''
def f():
    for _ in range(4):
        keep.append(bytearray(SIZE))
'''
pathlib.Path("mod.py").write_text(SOURCE.replace("SIZE", "100 * 1024"))
import mod
mod.keep = keep
mod.f()
mod.f()
# The same function, its allocation at the same offset four lines lower:
# the new code object (perhaps at the dead one's address) has its own lines.
pathlib.Path("mod.py").write_text("\\n\\n\\n\\n" + SOURCE.replace("SIZE", "300 * 1024"))
del mod.f
gc.collect()
mod = importlib.reload(mod)
mod.keep = keep
mod.f()
mod.f()
"""


def test_a_reloaded_module_gets_its_new_lines(fp, tmp_path):
    """Lookups are answered from the last answers of a code object: a
    module reloaded with its lines moved is attributed to its new lines."""
    proc, result = fp.run_fil(tmp_path, RELOADED, cwd=tmp_path)
    assert proc.returncode == 0, fp.describe(proc)
    entries, _ = fp.check_peak_report(result)
    assert fp.within(fp.bytes_last_frame(entries, "mod.py", 4), 8 * 100 * KIB, 0.01), entries
    assert fp.within(fp.bytes_last_frame(entries, "mod.py", 8), 8 * 300 * KIB, 0.01), entries
