# SPDX-License-Identifier: MIT
"""Out of memory in a worker thread while the main thread holds memory.

Covers: the main thread keeps a 200 MiB bytearray and waits in join(); a
worker thread asks for 1 PiB under `--memory-limit 2G`. The process must
exit 53 with one dump whose .prof still charges the main thread's 200 MiB
to its line (within 2%) and hangs the failed 1 PiB request under the
worker's own line (the innermost Python frame of that stack).
"""


def test_oom_in_worker_thread(oom, tmp_path):
    script = oom.program("thread_oom.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "2G"])
    assert run.returncode == oom.EXIT_OOM, run.describe()
    assert "unreachable" not in run.stdout, run.describe()
    oom.assert_oom_files(run)
    heads = [l for l in oom.stderr_lines(run) if l.startswith(oom.PREFIX + "Out of memory: ")]
    assert len(heads) == 1, run.describe()  # one dump per process

    stacks = run.oom_prof()
    oom.assert_close(oom.bytes_at(stacks, script, oom.marker_line(script, "main")),
                     200 * oom.MIB, 0.02, "main thread's line")
    reqs = oom.failed_requests(stacks)
    assert len(reqs) == 1, reqs
    frames, count = reqs[0]
    # bytearray(2**50) asks for 2**50 bytes plus its terminating NUL.
    assert 2 ** 50 <= count <= 2 ** 50 + 64, reqs[0]
    assert oom.is_frame_at(oom.last_python_frame(frames), script,
                           oom.marker_line(script, "worker")), frames
    o = run.summary()["out_of_memory"]
    assert o["source"] == "in-process" and o["requested_bytes"] == count, o
    assert o["limit"] == "RLIMIT_AS", o
    # Tracked at the failure: at least the main thread's 200 MiB.
    assert o["tracked_bytes"] >= 200 * oom.MIB, o
