# SPDX-License-Identifier: MIT
"""What a script or a CI log reads without opening a report.

stderr at exit: "Peak tracked memory: X (peak RSS Y)", then the top lines
with MiB and percent, biggest first, then where the report is; a library's
line also names the program's line that called it (so a numpy program's
first line names its biggest line). --quiet keeps only errors, before or
after `run`. `fil-profile` alone prints the usage text on stderr, exit 2.
Memory over time: a program that grows in steps and frees has a timeline
whose maximum is the reported peak and whose shape rises and falls where
the program did, at most 2,000 points, drawn in index.html.
"""

import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

MIB = 1024 * 1024
TOP_RE = re.compile(r"^=fil-profile=\s+(\d+)\.\s+([\d.]+) MiB\s+([\d.]+)%\s+(.*)$")
PEAK_RE = re.compile(r"^=fil-profile= Peak tracked memory: ([\d.]+) (B|KiB|MiB|GiB)"
                     r"(?: \(peak RSS ([\d.]+) (B|KiB|MiB|GiB)\))?$")
UNITS = {"B": 1, "KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}


def top_lines(stderr):
    """[(rank, MiB, percent, text)] of the top lines printed at exit."""
    out = []
    for line in stderr.decode().splitlines():
        m = TOP_RE.match(line)
        if m:
            out.append((int(m.group(1)), float(m.group(2)), float(m.group(3)), m.group(4)))
    return out


def peak_line(stderr):
    """(peak bytes, peak RSS bytes or None) from the 'Peak tracked memory' line."""
    hits = [PEAK_RE.match(l) for l in stderr.decode().splitlines()]
    hits = [m for m in hits if m]
    assert len(hits) == 1, stderr.decode()
    m = hits[0]
    rss = float(m.group(3)) * UNITS[m.group(4)] if m.group(3) else None
    return float(m.group(1)) * UNITS[m.group(2)], rss


THREE_LINES = """
small = bytearray(5 * 1024 * 1024)  # SMALL
big = bytearray(40 * 1024 * 1024)  # BIG
mid = [bytearray(1024 * 1024) for _ in range(15)]  # MID
print("ok")
"""


def test_stderr_peak_and_top_lines(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, THREE_LINES)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"ok\n"
    _, summary = fp.check_peak_report(result)
    lines = proc.stderr.decode().splitlines()
    assert all(l.startswith(fp.PREFIX) for l in lines), lines
    peak, rss = peak_line(proc.stderr)
    assert fp.within(peak, summary["peak_bytes"], 0.001), (peak, summary["peak_bytes"])
    assert rss is not None and rss >= 0.9 * peak, lines
    assert fp.within(rss, summary["peak_rss_bytes"], 0.001), (rss, summary["peak_rss_bytes"])
    rows = top_lines(proc.stderr)
    assert 3 <= len(rows) <= 5, lines
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    want = [("BIG", 40), ("MID", 15), ("SMALL", 5)]
    for (rank, mib, pct, text), (marker, size) in zip(rows, want):
        line = fp.line_of(THREE_LINES, marker)
        assert re.match(r"^script\.py:%d \(" % line, text), (marker, text, lines)
        assert abs(mib - size) <= 0.05 * size, (marker, mib)
        assert abs(pct - 100.0 * size * MIB / summary["peak_bytes"]) <= 0.5, (marker, pct)
    # Then where the report is, last.
    assert lines[-1].startswith(fp.PREFIX + "Wrote peak-memory report to "), lines
    assert max(i for i, l in enumerate(lines) if TOP_RE.match(l)) < len(lines) - 1


NUMPY_LINES = """
import numpy as np

def load():
    return np.ones((30, 1024, 1024 // 8))  # LOAD

small = np.zeros(2 * 1024 * 1024 // 8) + 1  # SMALL
table = load()  # CALL
print(int(table.sum()) > 0, int(small.sum()) > 0)
"""


@pytest.mark.numpy
def test_stderr_top_lines_of_numpy_program_name_its_biggest_line_first(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, NUMPY_LINES)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"True True\n"
    rows = top_lines(proc.stderr)
    assert rows, proc.stderr.decode()
    rank, mib, pct, text = rows[0]
    # np.ones allocates inside numpy's own Python code: the line is numpy's,
    # and it names the program's line that called it.
    load = fp.line_of(NUMPY_LINES, "LOAD")
    assert "script.py:%d (load)" % load in text, rows
    assert abs(mib - 30) <= 1.5, rows[0]
    fp.check_peak_report(result)
    assert pct > 50, rows[0]


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_keeps_only_errors(tmp_path, fp, where):
    script = fp.write_script(tmp_path, THREE_LINES)
    out = tmp_path / "out"
    opts = ["--quiet", "-o", str(out), "--no-browser"]
    argv = opts + ["run", str(script)] if where == "before" else ["run"] + opts + [str(script)]
    proc = subprocess.run([fp.FIL, *argv], cwd=str(tmp_path), env=fp.base_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"ok\n"
    assert proc.stderr == b"", proc.stderr.decode()
    _, summary = fp.check_peak_report(fp.latest_result(out))
    assert summary["options"]["quiet"] is True
    # An error is still said.
    proc = subprocess.run([fp.FIL, "--quiet", "run", "--no-browser", "missing.py"],
                          cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith(fp.PREFIX + "error: cannot open script"), proc.stderr


def test_quiet_out_of_memory_says_nothing_but_exits_53(tmp_path, fp):
    script = fp.write_script(tmp_path, """
        keep = bytearray(20 * 1024 * 1024)
        huge = bytearray(2 ** 50)  # REQUEST
        """)
    proc, result = fp.run_fil(tmp_path, script, extra_opts=["--quiet", "--memory-limit", "3G"])
    assert proc.returncode == 53, fp.describe(proc)
    assert proc.stderr == b"", proc.stderr.decode()
    oom = fp.load_summary(result)["out_of_memory"]
    assert oom["kind"] == "allocation-failed", oom


def test_no_arguments_prints_usage_on_stderr(tmp_path, fp):
    proc = subprocess.run([fp.FIL], cwd=str(tmp_path), env=fp.base_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2, fp.describe(proc)
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.startswith("Usage: fil-profile "), err
    helped = subprocess.run([fp.FIL, "--help"], stdout=subprocess.PIPE, timeout=60)
    assert err == helped.stdout.decode(), "the usage text is --help's"
    for option in ("run", "--quiet", "--no-usr2", "-o, --output DIR"):
        assert option in err, option
    assert not any(tmp_path.iterdir()), "nothing may be created"


STEPS = """
import time

held = []
for i in range(4):
    held.append(bytearray(25 * 1024 * 1024))  # STEP
    time.sleep(0.4)
del held[:]  # FREE
time.sleep(0.6)
print("done")
"""


def level_reached(timeline, level):
    """Seconds of the first point holding at least `level` tracked bytes."""
    for t, tracked, _ in timeline:
        if tracked >= level:
            return t
    return None


def test_timeline_rises_in_steps_and_falls(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, STEPS)
    assert proc.returncode == 0, fp.describe(proc)
    entries, summary = fp.check_peak_report(result)
    tl = summary["timeline"]
    assert 20 <= len(tl) <= 2000, len(tl)
    times = [p[0] for p in tl]
    assert times == sorted(times) and len(set(times)) == len(times), "times not increasing"
    assert summary["timeline_interval_seconds"] >= 0.01
    # Its maximum is the reported peak.
    top = max(p[1] for p in tl)
    assert fp.within(top, summary["peak_bytes"], 0.05), (top, summary["peak_bytes"])
    # It rises in four steps of 25 MiB, about 0.4 s apart, to the peak. The
    # levels are counted down from the peak, not up from the first point:
    # that point may fall while start-up still holds a few MiB it frees
    # (bytecode being compiled), which put the fourth level out of reach
    # once on a loaded machine...
    base = summary["peak_bytes"] - 4 * 25 * MIB
    steps = [level_reached(tl, base + k * 25 * MIB - MIB // 2) for k in range(1, 5)]
    assert None not in steps, steps
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert all(0.25 <= g <= 2.0 for g in gaps), (steps, gaps)
    # ... holds the peak until the free, then falls below a fifth of it and
    # stays there until the end.
    peak_at = summary["peak_seconds"]
    assert steps[-1] <= peak_at + summary["timeline_interval_seconds"], (steps, peak_at)
    after = [p for p in tl if p[0] > peak_at]
    fall = next(i for i, p in enumerate(after) if p[1] < 0.2 * top)
    assert after[fall][0] - steps[-1] >= 0.25, (after[fall], steps)
    assert all(p[1] < 0.2 * top for p in after[fall:]), after[fall:]
    # RSS is sampled too, and follows the bytes the program touched.
    rss = [p[2] for p in tl]
    assert max(rss) >= 0.9 * top, (max(rss), top)
    # index.html draws it: tracked and RSS polylines, the peak marked.
    text = (result / "index.html").read_text()
    i = text.index('<svg class="timeline"')
    svg = ET.fromstring(text[i:text.index("</svg>", i) + len("</svg>")])
    ns = "{http://www.w3.org/2000/svg}"
    lines = {p.get("class"): p.get("points").split() for p in svg.iter(ns + "polyline")}
    assert set(lines) == {"tracked", "rss"}, lines.keys()
    assert len(lines["tracked"]) == len(tl)
    labels = ["".join(t.itertext()) for t in svg.iter(ns + "text")]
    assert any(l.startswith("peak ") and "MiB" in l for l in labels), labels


FORK_CHILD_BIG = """
import os
pid = os.fork()
if pid == 0:
    held = bytearray(300 * 1024 * 1024)  # the child's, touched
    os._exit(0)
os.waitpid(pid, 0)
mine = bytearray(20 * 1024 * 1024)
print("ok")
"""


def test_peak_rss_is_the_programs_own(tmp_path, fp):
    """A fork child's 300 MiB is not the program's peak RSS (getrusage's
    RUSAGE_CHILDREN would report it); the program's own 20 MiB is in it."""
    proc, result = fp.run_fil(tmp_path, FORK_CHILD_BIG)
    assert proc.returncode == 0, fp.describe(proc)
    _, summary = fp.check_peak_report(result)
    rss = summary["peak_rss_bytes"]
    assert rss is not None and 20 * MIB <= rss < 200 * MIB, (rss, fp.describe(proc))
    _, shown = peak_line(proc.stderr)
    assert abs(shown - rss) <= 0.051 * MIB, (shown, rss)  # stderr shows tenths of a MiB


CONTROL_NAMES = r'''
src = "held = bytearray(12 * 1024 * 1024)\n"
exec(compile(src, "\x07bell\ttab\nnewline.py", "exec"))
def tiny():
    return [0]
keep = [tiny() for _ in range(3)]
print("ok")
'''


def test_stderr_lines_keep_their_prefix(tmp_path, fp):
    """A file name holding a newline, a tab and a BEL does not break the
    stderr answer: each line starts with the prefix, control characters
    show as '?'; rows that would read "0.0 MiB 0.0%" are left out."""
    proc, result = fp.run_fil(tmp_path, CONTROL_NAMES)
    assert proc.returncode == 0, fp.describe(proc)
    text = proc.stderr.decode()
    lines = text.splitlines()
    assert all(l.startswith(fp.PREFIX) for l in lines), lines
    assert "\x07" not in text and "\t" not in text, text
    rows = top_lines(proc.stderr)
    assert rows and rows[0][3].startswith("?bell?tab?newline.py:1 "), rows
    assert abs(rows[0][1] - 12) <= 0.6, rows
    assert all(mib >= 0.05 or pct >= 0.05 for _, mib, pct, _ in rows[1:]), rows


CALLERS_LIB = """
def make(n):
    return bytearray(n)  # MAKE
"""

CALLERS = """
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib",
                                "site-packages"))
import mylib

MIB = 1024 * 1024
a = mylib.make(10 * MIB)  # TEN
b = mylib.make(30 * MIB)  # THIRTY
c = mylib.make(20 * MIB)  # TWENTY
print(len(a) + len(b) + len(c))
"""


def test_library_line_names_its_biggest_caller_and_how_many_others(tmp_path, fp):
    """A library's line called from three of the program's lines names the
    one with the most of its bytes, with those bytes, and says two more
    called it: on stderr, in summary.json and on the index page."""
    lib = tmp_path / "lib" / "site-packages"
    lib.mkdir(parents=True)
    fp.write_script(lib, CALLERS_LIB, name="mylib.py")
    proc, result = fp.run_fil(tmp_path, CALLERS)
    assert proc.returncode == 0, fp.describe(proc)
    thirty = fp.line_of(CALLERS, "THIRTY")
    rank, mib, pct, text = top_lines(proc.stderr)[0]
    assert abs(mib - 60) <= 1, text
    assert text.endswith(", called from script.py:%d (<module>) and 2 other lines" % thirty), text
    row = fp.load_summary(result)["top_lines"][0]
    assert row["line"] == fp.line_of(CALLERS_LIB, "MAKE") and row["own"] is False, row
    c = row["called_from"]
    assert c["line"] == thirty and c["other_lines"] == 2, row
    assert fp.within(c["bytes"], 30 * 1024 * 1024, 0.01), row
    page = (result / "index.html").read_text()
    assert "(30.0 MiB) and 2 other lines" in page
