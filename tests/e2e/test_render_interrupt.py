# SPDX-License-Identifier: MIT
"""Rendering the reports stops promptly on SIGTERM and SIGINT, a child's
reports too.

A program with 400,000 call stacks takes the supervisor a few seconds to
render. The test waits for the program (the supervisor's child, whose pid
it prints) to end, then signals the supervisor: it must die of that signal
within 2 s (as any command stopped by Ctrl-C does, so a shell loop stops),
say on stderr that it stopped, leave no temporary file in the result folder,
and still write summary.json, which says "reports_interrupted": true and
lists only files that exist.
"""

import json
import os
import signal
import subprocess
import time

import pytest

SCRIPT = """
import os, sys
sys.path.insert(0, {bench!r})
print(os.getpid(), flush=True)
sys.argv = ["many_stacks.py", "--stacks", "400000"]
exec(open({bench!r} + "/many_stacks.py").read())
"""


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped while being read: ESRCH
        return True


def signal_once_ended(fp, tmp_path, text, sig):
    """Run `text` (which prints its pid first) under fil-profile, send sig to
    the launcher once the program has ended and the render has begun.
    Returns (launcher's exit status, its stderr, seconds it took to stop,
    the result folder)."""
    script = fp.write_script(tmp_path, text.format(bench=str(fp.REPO / "tests" / "bench")))
    out = tmp_path / "out"
    proc = subprocess.Popen([fp.FIL, "run", "--no-browser", "-o", str(out), str(script)],
                            cwd=str(tmp_path), env=fp.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        pid = int(proc.stdout.readline())
        deadline = time.monotonic() + 120
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert gone(pid), "the program did not end"
        time.sleep(0.05)  # the supervisor reaps it and starts rendering
        assert proc.poll() is None, "the reports were already written: the test needs more stacks"
        sent = time.monotonic()
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr.decode(errors="replace"), took, fp.latest_result(out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_render_interrupted(tmp_path, fp, sig):
    returncode, stderr, took, result = signal_once_ended(fp, tmp_path, SCRIPT, sig)
    assert took < 2.0, "stopping took %.2f s" % took
    assert returncode == -sig, stderr
    assert "Stopped by %s while writing the reports" % sig.name in stderr, stderr
    names = sorted(p.name for p in result.iterdir())
    assert not [n for n in names if ".tmp-" in n], names
    summary = json.loads((result / "summary.json").read_text())
    assert summary["reports_interrupted"] is True
    assert "index.html" not in names
    for name in summary["files"]:
        assert (result / name).is_file(), (name, names)


PARENT = """
import os, subprocess, sys
print(os.getpid(), flush=True)
child = ("import sys; sys.path.insert(0, {bench!r}); "
         "sys.argv = ['many_stacks.py', '--stacks', '400000']; "
         "exec(open({bench!r} + '/many_stacks.py').read())")
subprocess.run([sys.executable, "-c", child], check=True, stdout=subprocess.DEVNULL)
"""


def test_render_of_a_child_interrupted(tmp_path, fp):
    """The program ends as soon as its child (400,000 call stacks) has: the
    child's reports are still being drawn beside the program's own when
    SIGTERM comes, and both stop."""
    returncode, stderr, took, result = signal_once_ended(fp, tmp_path, PARENT, signal.SIGTERM)
    assert took < 2.0, "stopping took %.2f s" % took
    assert returncode == -signal.SIGTERM, stderr
    left = [str(p) for p in result.rglob("*") if ".tmp-" in p.name]
    assert not left, left
    (child,) = list((result / "children").iterdir())
    if (child / "summary.json").exists():  # written before the signal came
        summary = json.loads((child / "summary.json").read_text())
        for name in summary["files"]:
            assert (child / name).is_file(), name
