# SPDX-License-Identifier: MIT
"""Deaths are named for what they were, not "Out of memory".

The program holds 300 MiB (hold_and_sleep.py prints its pid) and is sent
SIGTERM, SIGINT or SIGKILL; a crash (os.abort()) dumps in-process. Each
time: the launcher dies of that signal too (a shell sees 128+N); stderr says what happened in words
("terminated (SIGTERM)", "interrupted (SIGINT)", "killed (SIGKILL)",
"crashed"/"Crash:") and never "Out of memory"; the file names stay those of
the output contract (out-of-memory.*), but the SVG title, index.html's
headline and summary.json's reason and kind say the same words; the report
still holds the 300 MiB at its line, even after SIGINT, which Python turns
into KeyboardInterrupt and unwinds (freeing it) before dying of the signal.
A program with its own SIGTERM handler that frees 200 MiB before dying of
SIGTERM is reported with the 200 MiB it held when the signal came. Every
signal that can kill has its name (SIGXCPU, SIGSYS...).
"""

import html
import os
import re
import select
import signal
import subprocess
import xml.etree.ElementTree as ET

import pytest


def read_line(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode() if ready else None


def svg_title(path):
    root = ET.parse(str(path)).getroot()
    for el in root.iter("{http://www.w3.org/2000/svg}text"):
        if el.get("class") == "title":
            return el.text
    return None


def h1(path):
    m = re.search(r"<h1>(.*?)</h1>", path.read_text(), re.S)
    return html.unescape(m.group(1)) if m else None


def signalled(oom, tmp_path, script, sig):
    """Run script (which prints its pid) under fil-profile, send it sig, and
    return the Run once the launcher has ended."""
    out = tmp_path / "out"
    proc = subprocess.Popen(oom.fil_command(out, script), cwd=str(tmp_path), env=oom.base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        line = read_line(proc, 60)
        assert line and line.strip().isdigit(), "no pid printed: %r" % line
        os.kill(int(line), sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return oom.Run(returncode=proc.returncode, stdout="", stderr=stderr.decode(errors="replace"),
                   dir=oom.result_dir(out), cmd=None)


CASES = [
    (signal.SIGTERM, "terminated", "was terminated (SIGTERM)", "Terminated (SIGTERM) with "),
    (signal.SIGINT, "interrupted", "was interrupted (SIGINT)", "Interrupted (SIGINT) with "),
    (signal.SIGKILL, "killed", "was killed (SIGKILL)", "Killed (SIGKILL) with "),
]


@pytest.mark.parametrize("sig, kind, words, headline", CASES, ids=[c[1] for c in CASES])
def test_signal_death_named(oom, tmp_path, sig, kind, words, headline):
    script = oom.program("hold_and_sleep.py")
    run = signalled(oom, tmp_path, script, sig)
    assert run.returncode == -sig, run.describe()  # the launcher dies of it too
    lines = oom.stderr_lines(run)
    assert not any("Out of memory" in l or "out-of-memory report" in l for l in lines), lines
    assert oom.PREFIX + "The program " + words in lines, lines
    assert any(l.startswith(oom.PREFIX + "Wrote the report of the memory held when the program "
                            + words + " to ") and l.endswith("/out-of-memory.svg")
               for l in lines), lines
    oom.assert_oom_files(run)
    assert svg_title(run.file("out-of-memory.svg")).startswith(headline)
    assert svg_title(run.file("out-of-memory-reversed.svg")).startswith(headline)
    assert h1(run.file("index.html")).startswith(headline), h1(run.file("index.html"))
    assert "Out of memory" not in run.file("index.html").read_text()
    o = run.summary()["out_of_memory"]
    assert o["kind"] == kind, o
    assert o["reason"].startswith(words[len("was "):] + " with "), o
    assert o["signal"] == sig.name, o
    # Python catches SIGINT (KeyboardInterrupt): the figures are of its arrival;
    # SIGTERM and SIGKILL kill at once: of the death.
    assert o["held_at"] == ("signal" if sig == signal.SIGINT else "death"), o
    oom.assert_close(oom.bytes_at(run.oom_prof(), script, oom.marker_line(script, "hold")),
                     300 * oom.MIB, 0.05, "held line")


@pytest.mark.parametrize("sig, words", [
    (signal.SIGXCPU, "was killed by SIGXCPU"),
    (signal.SIGVTALRM, "was killed by SIGVTALRM"),
    (signal.SIGSYS, "crashed (SIGSYS)"),
], ids=lambda c: c.name if isinstance(c, signal.Signals) else None)
def test_every_deadly_signal_has_its_name(oom, tmp_path, sig, words):
    """A death by a signal above SIGTERM (the CPU time limit's SIGXCPU, a
    seccomp filter's SIGSYS) is named by its name, not "killed by signal
    24"."""
    script = oom.program("hold_and_sleep.py")
    run = signalled(oom, tmp_path, script, sig)
    assert run.returncode == -sig, run.describe()
    assert oom.PREFIX + "The program " + words in oom.stderr_lines(run), run.describe()
    o = run.summary()["out_of_memory"]
    assert o["signal"] == sig.name, o


def test_crash_named(oom, tmp_path):
    script = oom.program("crash.py")
    run = oom.run_fil(tmp_path, script, "abort")
    assert run.returncode == -signal.SIGABRT, run.describe()
    lines = oom.stderr_lines(run)
    assert not any("Out of memory" in l or "out-of-memory report" in l for l in lines), lines
    assert any(l.startswith(oom.PREFIX + "Crash: SIGABRT with ") for l in lines), lines
    assert any(l.startswith(oom.PREFIX + "Wrote crash report to ") for l in lines), lines
    assert oom.PREFIX + "The program crashed (SIGABRT)" in lines, lines
    assert svg_title(run.file("out-of-memory.svg")).startswith("Crash: SIGABRT")
    assert h1(run.file("index.html")).startswith("Crash: SIGABRT")
    page = run.file("index.html").read_text()
    assert "Where it crashed" in page and "Native stack (innermost last)" in page
    assert run.summary()["out_of_memory"]["kind"] == "signal"
    assert run.summary()["out_of_memory"]["held_at"] == "dump"


def test_memory_held_when_the_signal_came(oom, tmp_path):
    script = oom.program("graceful_shutdown.py")
    run = signalled(oom, tmp_path, script, signal.SIGTERM)
    assert run.returncode == -signal.SIGTERM, run.describe()
    held = oom.bytes_at(run.oom_prof(), script, oom.marker_line(script, "hold"))
    oom.assert_close(held, 200 * oom.MIB, 0.02, "held line when SIGTERM came")
    o = run.summary()["out_of_memory"]
    assert o["kind"] == "terminated", o
    assert o["held_at"] == "signal", o
    oom.assert_close(o["tracked_bytes"], 200 * oom.MIB, 0.05, "tracked at the signal")
    assert svg_title(run.file("out-of-memory.svg")).startswith("Terminated (SIGTERM) with 20"), \
        svg_title(run.file("out-of-memory.svg"))
