# SPDX-License-Identifier: MIT
"""Reports on demand: `kill -USR2` the program (or fil-profile itself) and a
report of the memory held at that moment and of the peak so far is written
into a new result folder (DIR/latest follows), stderr says so, and the
program carries on: same stdout, same exit status. It works repeatedly. A
program with its own SIGUSR2 handler keeps it: nothing is taken from it,
whoever the signal was sent to. --no-usr2 leaves SIGUSR2 alone (the default
action kills the program, as without the profiler).
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

MIB = 1024 * 1024

# The program waits for the test at each step: files in its folder.
STEPPED = """
import os
import sys
import time

def wait_for(name):
    while not os.path.exists(name):
        time.sleep(0.01)

print("start", flush=True)
first = bytearray(30 * 1024 * 1024)  # FIRST
open("step1", "w").close()
wait_for("go1")
second = bytearray(50 * 1024 * 1024)  # SECOND
del first
open("step2", "w").close()
wait_for("go2")
print("end", len(second), flush=True)
sys.exit(7)
"""


def wait_file(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "%s never appeared" % path
        time.sleep(0.01)


def on_demand_folders(out):
    """Result folders of reports on demand, oldest first, once complete."""
    found = []
    for d in sorted(Path(out).iterdir()):
        s = d / "summary.json"
        if d.is_dir() and not d.is_symlink() and s.exists():
            if '"report": "on-demand"' in s.read_text():
                found.append(d)
    return found


def wait_reports(out, n, timeout=60):
    deadline = time.monotonic() + timeout
    while len(on_demand_folders(out)) < n:
        assert time.monotonic() < deadline, "no report on demand %d" % n
        time.sleep(0.02)
    return on_demand_folders(out)


def wait_latest(out, folder, timeout=10):
    """DIR/latest comes to point at folder. The launcher moves it once the
    folder is complete, i.e. just after it wrote summary.json, which is what
    wait_reports waits for."""
    deadline = time.monotonic() + timeout
    while (out / "latest").resolve() != folder.resolve():
        assert time.monotonic() < deadline, "latest is %s, not %s" % (
            (out / "latest").resolve(), folder)
        time.sleep(0.01)


def start(fp, tmp_path, script, opts=()):
    out = tmp_path / "out"
    proc = subprocess.Popen([fp.FIL, "run", "--no-browser", "-o", str(out), *opts, str(script)],
                            cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    return proc, out


def program_pid(launcher_pid, timeout=30):
    """The pid of the launcher's child (the program)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = Path("/proc/%d/task/%d/children" % (launcher_pid, launcher_pid))
        kids = path.read_text().split() if path.exists() else []
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("no child of the launcher")


def stop(proc):
    """Kill the launcher if it is still there, and its program first: a
    failed test must not leave the program waiting for a step for ever."""
    if proc.poll() is not None:
        return
    kids = Path("/proc/%d/task/%d/children" % (proc.pid, proc.pid))
    for pid in (kids.read_text().split() if kids.exists() else []):
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.kill()
    proc.wait()


def usr2_then_wait(proc, moment):
    """Once moment() returns, SIGUSR2 to the launcher; then its output (the
    launcher is killed if it outlives the test)."""
    try:
        moment()
        os.kill(proc.pid, signal.SIGUSR2)
        return proc.communicate(timeout=120)
    finally:
        stop(proc)


def check_now(fp, folder, script_text, marker, size, gone=None):
    """The report on demand in folder holds `size` at `marker` now."""
    for name in ("current-memory.prof", "current-memory.svg", "current-memory-reversed.svg",
                 "peak-memory.prof", "peak-memory.svg", "peak-memory-reversed.svg",
                 "index.html", "summary.json"):
        assert (folder / name).is_file(), "%s missing in %s" % (name, folder)
    fp.check_svg(folder / "current-memory.svg")
    now = fp.parse_prof(folder / "current-memory.prof")
    got = fp.bytes_last_frame(now, "script.py", fp.line_of(script_text, marker))
    assert fp.within(got, size, 0.02), (marker, got, fp.fmt_prof(now))
    if gone:
        freed = fp.bytes_last_frame(now, "script.py", fp.line_of(script_text, gone))
        assert freed < MIB, (gone, freed)
    s = fp.load_summary(folder)
    assert s["report"] == "on-demand" and s["exit_status"] is None, s["report"]
    assert s["on_demand"]["held_bytes"] == fp.prof_total(now), s["on_demand"]
    peak = fp.parse_prof(folder / "peak-memory.prof")
    assert s["peak_bytes"] == fp.prof_total(peak)
    return s, peak


def test_usr2_twice_writes_two_reports_and_the_program_goes_on(tmp_path, fp):
    script = fp.write_script(tmp_path, STEPPED)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "go1").touch()
    (plain / "go2").touch()
    direct = subprocess.run([fp.PYTHON, str(script)], cwd=str(plain), env=fp.base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    proc, out = start(fp, tmp_path, script)
    try:
        wait_file(tmp_path / "step1")
        os.kill(program_pid(proc.pid), signal.SIGUSR2)  # to the program
        first = wait_reports(out, 1)[0]
        wait_latest(out, first)
        (tmp_path / "go1").touch()
        wait_file(tmp_path / "step2")
        os.kill(proc.pid, signal.SIGUSR2)  # to fil-profile
        second = wait_reports(out, 2)[1]
        (tmp_path / "go2").touch()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == direct.returncode == 7, stderr.decode()
    assert stdout == direct.stdout == b"start\nend 52428800\n", stdout
    s1, _ = check_now(fp, first, STEPPED, "FIRST", 30 * MIB)
    s2, peak2 = check_now(fp, second, STEPPED, "SECOND", 50 * MIB, gone="FIRST")
    assert s1["on_demand"]["sequence"] == 1 and s2["on_demand"]["sequence"] == 2
    assert 0 < s1["on_demand"]["seconds"] < s2["on_demand"]["seconds"]
    # The peak so far of the second: both arrays were held at once.
    both = fp.bytes_last_frame(peak2, "script.py", fp.line_of(STEPPED, "FIRST")) + \
        fp.bytes_last_frame(peak2, "script.py", fp.line_of(STEPPED, "SECOND"))
    assert fp.within(both, 80 * MIB, 0.02), fp.fmt_prof(peak2)
    # Its timeline so far.
    assert s2["timeline"] and s2["timeline"][-1][0] <= s2["on_demand"]["seconds"] + 0.1
    # Said on stderr, each time.
    said = [l for l in stderr.decode().splitlines() if "Report on demand" in l]
    assert len(said) == 2, stderr.decode()
    assert all(l.startswith(fp.PREFIX) for l in stderr.decode().splitlines())
    for line, folder, s in ((said[0], first, s1), (said[1], second, s2)):
        m = re.search(r"Report on demand at ([\d.]+) s: ([\d.]+) MiB held now, peak so far "
                      r"([\d.]+) MiB; wrote (.*)/index\.html$", line)
        assert m, line
        assert Path(tmp_path, m.group(4)).resolve() == folder.resolve(), line
        assert abs(float(m.group(2)) * MIB - s["on_demand"]["held_bytes"]) <= 0.06 * MIB, line
        assert abs(float(m.group(3)) * MIB - s["peak_bytes"]) <= 0.06 * MIB, line
    # The exit report comes last, and latest points at it.
    final = fp.latest_result(out)
    assert final not in (first.resolve(), second.resolve())
    summary = fp.load_summary(final)
    assert summary["report"] == "exit" and summary["exit_status"] == 7


WAITS = """
import os
import time

held = bytearray(20 * 1024 * 1024)  # HELD
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.01)
print("done", flush=True)
"""


def test_usr2_to_the_process_group_writes_one_report_each(tmp_path, fp):
    """`kill -USR2 -PGID` reaches the launcher and the program at once: the
    program's handler asks the launcher for a report while the group's copy
    is still pending there, and a standard signal does not queue, so the
    request merged into that copy (about half of them were lost). Five
    group signals, each after the last one's report: five reports, each
    holding the 20 MiB line, and the program goes on."""
    script = fp.write_script(tmp_path, WAITS)
    out = tmp_path / "out"
    proc = subprocess.Popen([fp.FIL, "run", "--no-browser", "-o", str(out), str(script)],
                            cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_file(tmp_path / "ready")
        for k in range(1, 6):
            os.killpg(proc.pid, signal.SIGUSR2)
            wait_reports(out, k, timeout=20)
        time.sleep(0.3)  # a sixth, late, would show here
        (tmp_path / "go").touch()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0 and stdout == b"done\n", stderr.decode()
    folders = on_demand_folders(out)
    assert len(folders) == 5, folders
    said = [l for l in stderr.decode().splitlines() if "Report on demand" in l]
    assert len(said) == 5, stderr.decode()
    for folder in folders:
        now = fp.parse_prof(folder / "current-memory.prof")
        got = fp.bytes_last_frame(now, "script.py", fp.line_of(WAITS, "HELD"))
        assert fp.within(got, 20 * MIB, 0.02), fp.fmt_prof(now)


OWN_HANDLER = """
import os
import signal
import sys
import time

print(signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL, flush=True)
got = []
signal.signal(signal.SIGUSR2, lambda sig, frame: got.append(sig))
os.kill(os.getpid(), signal.SIGUSR2)
deadline = time.monotonic() + 60
while len(got) < 3 and time.monotonic() < deadline:
    with open("count.tmp", "w") as f:
        f.write(str(len(got)))
    os.replace("count.tmp", "count")
    time.sleep(0.01)
print("handled", len(got), flush=True)
"""


def wait_count(path, n, timeout=60):
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text() == str(n)):
        assert time.monotonic() < deadline, "count never reached %d" % n
        time.sleep(0.01)


def test_program_with_its_own_usr2_handler_keeps_it(tmp_path, fp):
    script = fp.write_script(tmp_path, OWN_HANDLER)
    proc, out = start(fp, tmp_path, script)
    try:
        wait_count(tmp_path / "count", 1)
        os.kill(program_pid(proc.pid), signal.SIGUSR2)
        wait_count(tmp_path / "count", 2)
        os.kill(proc.pid, signal.SIGUSR2)  # fil-profile forwards it
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, stderr.decode()
    assert stdout == b"True\nhandled 3\n", (stdout, stderr.decode())
    assert not on_demand_folders(out), "a report was taken from the program's own SIGUSR2"
    assert "Report on demand" not in stderr.decode()


SLEEPER = """
import os
import time

open("ready", "w").close()
time.sleep(60)
print("not reached")
"""


def test_no_usr2_leaves_the_signal_to_the_program(tmp_path, fp):
    script = fp.write_script(tmp_path, SLEEPER)
    proc, out = start(fp, tmp_path, script, opts=["--no-usr2"])
    stdout, stderr = usr2_then_wait(proc, lambda: wait_file(tmp_path / "ready"))
    # SIGUSR2's default action, as without the profiler: the launcher dies of it too.
    assert proc.returncode == -signal.SIGUSR2, stderr.decode()
    assert stdout == b""
    assert not on_demand_folders(out)
    summary = fp.load_summary(fp.latest_result(out))
    assert summary["options"]["usr2_reports"] is False


QUICK = """
import time
held = bytearray(25 * 1024 * 1024)  # HELD
time.sleep(1.0)
print("done", flush=True)
"""


@pytest.mark.parametrize("when", ["at-fork", "10ms"])
def test_usr2_to_the_launcher_at_once_waits_for_the_program(tmp_path, fp, when):
    """`fil-profile run x.py & kill -USR2 $!` (the README's example), sent
    before the interpreter has started: the signal waits until the program
    can take it, then a report on demand is written and the program goes on.
    at-fork: as soon as the program's process exists (its interpreter is
    starting); 10ms: most likely before the launcher watches signals.
    (Before the launcher's own main() runs, it dies as any program would.)"""
    script = fp.write_script(tmp_path, QUICK)
    proc, out = start(fp, tmp_path, script)
    moment = (lambda: program_pid(proc.pid)) if when == "at-fork" else (lambda: time.sleep(0.01))
    stdout, stderr = usr2_then_wait(proc, moment)
    assert proc.returncode == 0, stderr.decode()
    assert stdout == b"done\n"
    assert len(on_demand_folders(out)) == 1, stderr.decode()
    assert b"Report on demand at " in stderr, stderr.decode()


# A new call stack for every block it keeps: nodes are made while the
# launcher copies the counters of a report on demand.
NEW_STACKS = """
import os
import time

open("started", "w").close()
keep = []
t0 = time.monotonic()
i = 0
while time.monotonic() - t0 < 1.5:
    ns = {}
    exec("def f%d():\\n    return bytearray(2000)\\n" % i, ns)
    keep.append(ns["f%d" % i]())
    i += 1
print("made", len(keep) == i)
"""


def test_reports_on_demand_while_call_stacks_are_made_sum_to_their_peak(tmp_path, fp):
    """A report on demand copies the counters of the nodes there were when
    it began; the peak it claimed (the header's, which also counted the
    nodes made since) was more than its peak-memory.prof held. (A report
    whose copy of the peak never held still through its tries says so in
    peak_snapshot_incomplete.)"""
    script = tmp_path / "script.py"
    script.write_text(NEW_STACKS)
    proc, out = start(fp, tmp_path, script)
    try:
        wait_file(tmp_path / "started")
        pid = program_pid(proc.pid)
        time.sleep(0.2)
        for _ in range(40):
            try:
                os.kill(pid, signal.SIGUSR2)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, stderr.decode()
    assert stdout == b"made True\n"
    folders = on_demand_folders(out)
    assert len(folders) >= 10, stderr.decode()
    wrong, checked = [], 0
    for folder in folders:
        summary = fp.load_summary(folder)
        if summary["peak_snapshot_incomplete"]:
            continue  # the peak moved through every one of the copy's tries: said so
        checked += 1
        total = fp.prof_total(fp.parse_prof(folder / "peak-memory.prof"))
        if total != summary["peak_bytes"]:
            wrong.append((folder.name, total, summary["peak_bytes"]))
    assert checked >= 5 and not wrong, (checked, wrong)
