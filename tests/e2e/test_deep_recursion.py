# SPDX-License-Identifier: MIT
"""Reports of a deep recursion stay small, quick and exact.

A recursion 50,000 deep (and 8,000) where every level holds a small list and
the deepest one a 10 MiB bytearray: the result folder must stay under 64 MiB
and the run (program and reports) under 30 s; the .prof must sum exactly to
summary.json's peak_bytes; the 10 MiB line must be in the .prof with its
bytes, on a line that keeps its first and last 64 frames around
"[N frames elided]" with N the number of frames left out; both SVGs must
parse and the reversed one must show the allocating line at the top level.
"""

import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

MIB = 1024 * 1024

SCRIPT = """
import sys
sys.setrecursionlimit(200000)
DEPTH = int(sys.argv[1])

def down(n):
    held = [n] * 20  # @held
    if n == 0:
        big = bytearray(10 * 1024 * 1024)  # @big
        return len(big) + len(held)
    return down(n - 1) + len(held)  # @call

print(down(DEPTH))  # @top
"""

ELIDED_RE = re.compile(r"^\[(\d+) frames elided\]$")


def folder_bytes(path):
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


@pytest.mark.parametrize("depth", [8000, 50000])
def test_deep_recursion_report(tmp_path, fp, depth):
    script = fp.write_script(tmp_path, SCRIPT.replace("# @", "# "))
    big_line = fp.line_of(SCRIPT.replace("# @", "# "), "big")
    # Before 3.11 each Python call also recursed in C: 50,000 deep overflows
    # the C stack without the profiler too.
    plain = subprocess.run([fp.PYTHON, str(script), str(depth)], capture_output=True, timeout=60)
    if plain.returncode != 0:
        pytest.skip("%s cannot recurse %d deep without the profiler either (exit %d)"
                    % (fp.PYTHON, depth, plain.returncode))
    start = time.monotonic()
    proc, result = fp.run_fil(tmp_path, script, depth, timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, fp.describe(proc)
    assert elapsed < 30, "took %.1f s" % elapsed
    entries, summary = fp.check_peak_report(result)  # .prof total == peak_bytes
    size = folder_bytes(result)
    assert size < 64 * MIB, "result folder is %.1f MiB" % (size / MIB)

    # The 10 MiB bytearray: one line ending at the @big line, deeper than
    # 129 frames, so written as 64 + "[N frames elided]" + 64 frames.
    raw = [l for l in (result / "peak-memory.prof").read_text().splitlines()
           if l.rpartition(" ")[0].endswith(":%d (down)" % big_line)]
    assert len(raw) == 1, raw[:3]
    stack, _, count = raw[0].rpartition(" ")
    assert int(count) >= 10 * MIB
    frames = stack.split(";")
    assert len(frames) == 129, len(frames)
    m = ELIDED_RE.match(frames[64])
    assert m, frames[63:66]
    # <module> + down() called DEPTH + 1 times.
    assert int(m.group(1)) == depth + 2 - 128
    assert fp.frame_is(frames[0], script.name, fp.line_of(SCRIPT.replace("# @", "# "), "top"))

    # Remainder lines say what they hold, and are not Python frames.
    for frames, n in entries:
        for f in frames:
            if f.startswith("["):
                assert f == fp.NO_PYTHON_STACK or ELIDED_RE.match(f) or \
                    re.match(r"^\[\d+ smaller call stacks?\]$", f), f

    # The reversed graph: the allocating line is a top-level box (level 1)
    # holding the 10 MiB (at depth 50,000 the call line's own allocations,
    # ints and frames, add up to about as much, so it need not be first).
    root = ET.parse(str(result / "peak-memory-reversed.svg")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    tops = []
    for g in root.iter(ns + "g"):
        if g.get("class") == "frame" and g.get("data-l") == "1":
            title = g.find(ns + "title").text
            tops.append((int(g.get("data-b")), title.split("\n")[0]))
    big = [b for b, label in tops if label.endswith(":%d (down)" % big_line)]
    assert len(big) == 1 and big[0] >= 10 * MIB, sorted(tops, reverse=True)[:4]


FRAMES = """
import sys, threading
sys.setrecursionlimit(1_000_000)

def down(n):
    if n == 0:
        return 0
    return down(n - 1) + 1  # @recurse

threading.stack_size(1 << 30)  # room for 3.9/3.10, whose frames recurse in C
done = []
t = threading.Thread(target=lambda: done.append(down(int(sys.argv[1]))))
t.start()
t.join()
print(done[0])
"""


def test_the_frames_of_a_deep_recursion_are_counted(tmp_path, fp):
    """The frames themselves hold memory: heap objects up to 3.10, chunks of
    the interpreter's own frame stack (taken from the arena allocator) from
    3.11 on, which were counted nowhere. A recursion 100,000 deep that
    allocates nothing else puts at least 100 bytes a frame on its line."""
    depth = 100_000
    script = fp.write_script(tmp_path, FRAMES)
    proc, result = fp.run_fil(tmp_path, script, str(depth))
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"%d\n" % depth
    entries, summary = fp.check_peak_report(result)
    line = fp.line_of(FRAMES, "@recurse")
    held = fp.bytes_at_line(entries, "script.py", line)
    assert held >= 100 * depth, (held, fp.fmt_prof(entries))
    assert held <= summary["peak_bytes"]
