# SPDX-License-Identifier: MIT
"""A program killed while its out-of-memory dump is being written.

The dump writes each file under a temporary name (".<name>.tmp-<pid>")
and renames it when complete. A SIGTERM (sent to the launcher, which
passes it on to a program that does not catch it) or a SIGKILL arriving
in the middle kills the program with its temporary still there. What the
user must see: the launcher dies of that signal, the post-mortem report
is complete (out-of-memory files that parse, summary.json naming the
death), and the result folder holds no half-written hidden file.
"""

import glob
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

STACKS = 200000  # a dump of a few hundred milliseconds


@pytest.mark.parametrize("sig, to", [
    (signal.SIGTERM, "launcher"),
    (signal.SIGKILL, "program"),
])
def test_killed_during_the_dump_leaves_no_temporary(oom, tmp_path, sig, to):
    script = oom.program("many_stacks_oom.py")
    out = tmp_path / "out"
    cmd = oom.ulimit_sv(1000000)(oom.fil_command(out, script, [STACKS]))
    proc = subprocess.Popen(cmd, cwd=str(tmp_path), env=oom.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        seen = []
        deadline = time.monotonic() + oom.TIMEOUT
        while not seen and proc.poll() is None and time.monotonic() < deadline:
            seen = glob.glob(str(out / "*" / ".out-of-memory*.tmp-*"))
        if seen:
            if to == "launcher":
                os.kill(proc.pid, sig)
            else:
                os.kill(int(seen[0].rsplit("-", 1)[1]), sig)
        stdout, stderr = proc.communicate(timeout=oom.TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail("fil-profile hung\n" + stderr.decode(errors="replace")[-3000:])
    run = oom.Run(returncode=proc.returncode, stdout=stdout.decode(errors="replace"),
                  stderr=stderr.decode(errors="replace"), dir=oom.result_dir(out), cmd=cmd)
    if not seen:
        pytest.skip("the dump was complete before its temporary could be seen\n"
                    + run.describe())
    assert run.returncode == -sig, run.describe()
    left = sorted(p.name for p in Path(run.dir).iterdir() if p.name.startswith("."))
    assert left == [], "temporaries left in the result folder: %r\n%s" % (left, run.describe())
    oom.assert_oom_files(run)
    stacks = run.oom_prof()
    assert oom.total_bytes(stacks) > 100 * oom.MIB, run.describe()
    s = run.summary()
    assert s["exit_status"] == 128 + sig, s
    assert s["out_of_memory"]["signal"] == sig.name, s["out_of_memory"]
