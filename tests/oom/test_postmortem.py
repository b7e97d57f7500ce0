# SPDX-License-Identifier: MIT
"""Post-mortem reports: the program was SIGKILLed and could not dump.

Covers: `kill -9` of the Python process (the launcher's child, which
prints its pid) while it holds 300 MiB: the launcher dies of SIGKILL too,
out-of-memory.prof written by the supervisor from the shared state with
the 300 MiB (within
5%) at its line, summary.json source "post-mortem", kind "killed", and the
peak report. Then the real kernel OOM killer in a child memory cgroup
limited to 400 MiB (v1 or v2, skipped when the cgroup is not writable):
with `--disable-oom-detection` the kernel kills the program (SIGKILL, the
leaking line holds more than 60% of 400 MiB, oom_kill_confirmed true);
with detection on the profiler predicts it first (exit 53, in-process,
kind "predicted", limit "cgroup").
"""

import os
import select
import signal
import subprocess

def read_line(proc, timeout):
    """One line of proc.stdout within timeout seconds, or None."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode() if ready else None


def test_kill_9_postmortem(oom, tmp_path):
    script = oom.program("hold_and_sleep.py")
    out = tmp_path / "out"
    proc = subprocess.Popen(oom.fil_command(out, script), cwd=str(tmp_path),
                            env=oom.base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        line = read_line(proc, 60)
        assert line and line.strip().isdigit(), "no pid printed: %r" % line
        pid = int(line)
        # It must be the launcher's child (the Python process), not the launcher.
        with open("/proc/%d/stat" % pid) as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        assert ppid == proc.pid, (pid, ppid, proc.pid)
        os.kill(pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    run = oom.Run(returncode=proc.returncode, stdout="", stderr=stderr.decode(errors="replace"),
                  dir=oom.result_dir(out), cmd=None)
    assert run.returncode == -signal.SIGKILL, run.describe()  # died of it, as plain Python
    oom.assert_oom_files(run)
    stacks = run.oom_prof()
    oom.assert_close(oom.bytes_at(stacks, script, oom.marker_line(script, "hold")),
                     300 * oom.MIB, 0.05, "held line")
    assert not oom.failed_requests(stacks)
    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "post-mortem", o
    assert o["kind"] == "killed", o
    assert o["signal"] == "SIGKILL", o
    assert o["oom_kill_confirmed"] is not True, o  # a kill -9 is not the OOM killer
    assert s["exit_status"] == 137, s
    for name in oom.PEAK_FILES:
        assert run.file(name).is_file(), name
    oom.assert_close(oom.bytes_at(run.peak_prof(), script, oom.marker_line(script, "hold")),
                     300 * oom.MIB, 0.05, "peak: held line")


# --------------------------------------------------------------------------
# the kernel OOM killer in a child memory cgroup (the memcg fixture: conftest.py)


def run_in_cgroup(oom, tmp_path, cg, opts):
    script = oom.program("cgroup_leak.py")
    return script, oom.run_fil(tmp_path, script, opts=opts, command=oom.in_cgroup(cg),
                               timeout=120)


def test_kernel_oom_kill_postmortem(oom, tmp_path, memcg):
    version, cg = memcg
    script, run = run_in_cgroup(oom, tmp_path, cg, ["--disable-oom-detection"])
    assert run.returncode == -signal.SIGKILL, run.describe()  # died of it, as plain Python
    oom.assert_oom_files(run)
    stacks = run.oom_prof()
    held = oom.bytes_at(stacks, script, oom.marker_line(script, "leak"))
    assert held > 0.6 * oom.CG_LIMIT, "leaking line holds %d bytes, want > 60%% of %d" % (
        held, oom.CG_LIMIT)
    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "post-mortem", o
    assert o["kind"] == "killed", o
    assert o["oom_kill_confirmed"] is True, o
    # the limit it hit, nothing left under it, and its RSS as last sampled
    assert o["limit"] == "cgroup" and o["limit_bytes"] == oom.CG_LIMIT, o
    assert o["headroom_bytes"] == 0, o
    assert 0.6 * oom.CG_LIMIT < o["rss_bytes"] <= 1.05 * oom.CG_LIMIT, o
    assert s["exit_status"] == 137, s
    for name in oom.PEAK_FILES:
        assert run.file(name).is_file(), name
    # Named for what it was, everywhere a person reads it.
    words = "killed by the kernel's OOM killer (SIGKILL)"
    assert o["reason"].startswith(words + " with "), o
    lines = oom.stderr_lines(run)
    assert oom.PREFIX + "The program was " + words in lines, lines
    assert "Killed by the kernel&#39;s OOM killer (SIGKILL) with " in \
        run.file("out-of-memory.svg").read_text()
    assert "<h1>Killed by the kernel&#39;s OOM killer (SIGKILL) with " in \
        run.file("index.html").read_text()


def test_cgroup_limit_predicted(oom, tmp_path, memcg):
    version, cg = memcg
    script, run = run_in_cgroup(oom, tmp_path, cg, [])
    assert run.returncode == oom.EXIT_OOM, run.describe()
    oom.assert_oom_files(run)
    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "in-process", o
    assert o["kind"] == "predicted", o
    assert o["limit"] == "cgroup", o
    assert o["limit_bytes"] == oom.CG_LIMIT, o
    assert o["oom_kill_confirmed"] is not True, o
    stacks = run.oom_prof()
    held = oom.bytes_at(stacks, script, oom.marker_line(script, "leak"))
    assert held > 0.6 * oom.CG_LIMIT, "leaking line holds %d bytes" % held
    (frames, count), = oom.failed_requests(stacks)
    assert count == o["requested_bytes"] > 0, (count, o)
    assert oom.is_frame_at(oom.last_python_frame(frames), script,
                           oom.marker_line(script, "leak")), frames
