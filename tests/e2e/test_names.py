# SPDX-License-Identifier: MIT
"""Hostile file and function names: a script called `a<b>&"c".py`, one with
spaces and a `;`, and functions whose names need escaping. The run succeeds,
both SVGs are well-formed XML showing the real names, and the .prof keeps one
frame per `;`-separated field (flamegraph.pl compatible).
"""

import os
import re

import pytest

MIB = 1024 * 1024

SCRIPT = """
def fn():
    return bytearray(24 * 1024 * 1024)  # HELD


held = fn()
print("named ok")
"""

HOSTILE = ['a<b>&"c".py', "with space;semi.py", "quote's & <tag> ]]>.py"]


@pytest.mark.parametrize("name", HOSTILE, ids=["xml-chars", "space-semicolon", "cdata-end"])
def test_hostile_script_name(tmp_path, fp, name):
    script = fp.write_script(tmp_path, SCRIPT, name=name)
    proc, result = fp.run_fil(tmp_path, script)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"named ok\n"

    for svg in ("peak-memory.svg", "peak-memory-reversed.svg"):
        root = fp.check_svg(result / svg)
        text = "\n".join(fp.svg_texts(root))
        assert name in text, "%s does not show the file name %r" % (svg, name)

    summary = fp.load_summary(result)
    raw = (result / "peak-memory.prof").read_text().splitlines()
    # A name's ';' cannot be kept as is (it separates frames): the .prof may
    # replace it, but every field must still be a whole frame.
    name_re = re.escape(name).replace(";", ".")
    line = fp.line_of(SCRIPT, "HELD")
    total, held = 0, 0
    for entry in raw:
        stack, _, count = entry.rpartition(" ")
        total += int(count)
        if stack == fp.NO_PYTHON_STACK:
            continue
        frames = stack.split(";")
        for frame in frames:
            assert fp.parse_frame(frame), "not a frame: %r in %r" % (frame, entry)
        assert re.fullmatch(r"(.*/)?%s:\d+ \(<module>\)" % name_re, frames[0]), entry
        last = fp.parse_frame(frames[-1])
        if re.fullmatch(r"(.*/)?%s" % name_re, last[0]) and last[1] == line and last[2] == "fn":
            held += int(count)
    assert fp.within(held, 24 * MIB, 0.02), "\n".join(raw)
    assert summary["peak_bytes"] == total


# A generator expression has a frame of its own on every version (3.12
# inlines list comprehensions: PEP 709).
FUNC_SCRIPT = """
class K:
    def __call__(self):
        return list(bytearray(12 * 1024 * 1024) for _ in range(1))  # IN_GENEXPR


def outer():
    inner = lambda: K()()  # LAMBDA
    return inner()


held = outer()
"""


def test_function_names_needing_escapes(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, FUNC_SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    entries, _ = fp.check_peak_report(result)
    line = fp.line_of(FUNC_SCRIPT, "IN_GENEXPR")
    stacks = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], "script.py", line)]
    assert fp.within(sum(n for _, n in stacks), 12 * MIB, 0.02), fp.fmt_prof(entries)
    funcs = [fp.parse_frame(f)[2] for f in max(stacks, key=lambda s: s[1])[0]]
    if fp.python_version() >= (3, 11):  # qualified names (co_qualname)
        want = ["<module>", "outer", "outer.<locals>.<lambda>", "K.__call__",
                "K.__call__.<locals>.<genexpr>"]
    else:
        want = ["<module>", "outer", "<lambda>", "__call__", "<genexpr>"]
    assert funcs == want, funcs
    for svg in ("peak-memory.svg", "peak-memory-reversed.svg"):
        text = "\n".join(fp.svg_texts(fp.check_svg(result / svg)))
        assert "<lambda>" in text and "<genexpr>" in text, svg


NUL_SCRIPT = """
def alloc(n):
    return bytearray(n)  # ALLOC


code = alloc.__code__.replace(co_name="nul\\x00byte;x")
if hasattr(code, "co_qualname"):
    code = code.replace(co_qualname="nul\\x00byte;x")
held = type(alloc)(code, globals())(9 * 1024 * 1024)
"""


def test_function_name_with_a_nul_byte(tmp_path, fp):
    """A NUL in a function name (a code object renamed with replace()) is
    written as '?' in the .prof, as ';' is, so that tools reading it as C
    strings or line by line see the whole line, and summary.json's label
    of the top line keeps the rest of the name (its "function" keeps the
    name as it is)."""
    proc, result = fp.run_fil(tmp_path, NUL_SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    raw = fp.prof_file(result).read_bytes()
    assert b"\x00" not in raw and b"nul?byte?x" in raw, raw[:2000]
    entries, _ = fp.check_peak_report(result)
    line = fp.line_of(NUL_SCRIPT, "ALLOC")
    assert fp.within(fp.bytes_last_frame(entries, "script.py", line), 9 * 1024 * 1024, 0.01)
    top = fp.load_summary(result)["top_lines"][0]
    assert top["function"] == "nul\x00byte;x", top
    assert top["label"].endswith("(nul?byte;x)"), top


def test_script_name_that_is_not_utf8(tmp_path, fp):
    """A script whose name holds bytes that are not UTF-8: the .prof records
    the path as it is on disk (so a tool can open it), the source line is
    found, and the SVGs and summary.json stay valid (one U+FFFD per byte)."""
    raw_name = b"bad\xff\xfe name.py"
    script = fp.write_script(tmp_path, SCRIPT, name=os.fsdecode(raw_name))
    proc, result = fp.run_fil(tmp_path, script)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"named ok\n"
    for svg in ("peak-memory.svg", "peak-memory-reversed.svg"):
        fp.check_svg(result / svg)
    prof = (result / "peak-memory.prof").read_bytes()
    line = fp.line_of(SCRIPT, "HELD")
    want = os.fsencode(str(script)) + b":%d (fn)" % line
    assert want in prof, prof[:2000]
    summary = fp.load_summary(result)
    top = summary["top_lines"][0]
    assert top["line"] == line and top["function"] == "fn", top
    assert top["source"] == "return bytearray(24 * 1024 * 1024)  # HELD", top
    assert top["file"].count("\ufffd") == 2, top["file"]
