# SPDX-License-Identifier: MIT
"""Re-arming the out-of-memory dump (what a notebook kernel does per cell).

Covers: a program under --on-oom=continue that re-arms the dump before each
out of memory (filprofiler._native.oom_rearm) gets a complete report of each
in the folder it named, with that episode's request at its line, and a
MemoryError each time; an episode not re-armed makes no dump; 8 threads
running out of memory at once after one re-arm make exactly one dump and
all get their MemoryError; the program exits 0 with its own stdout.
"""

import os


def test_rearmed_dumps_each_into_its_folder(oom, tmp_path):
    script = oom.program("rearm.py")
    first, second = tmp_path / "cells" / "one", tmp_path / "cells" / "two"
    pkg = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(oom.FIL))),
                       "lib", "fil-profile", "python")
    run = oom.run_fil(tmp_path, script, first, second,
                      opts=["--memory-limit", "2G", "--on-oom=continue"],
                      env={"PYTHONPATH": pkg})
    assert run.returncode == 0, run.describe()
    assert run.stdout.splitlines() == ["armed True", "MemoryError 1", "armed True",
                                       "MemoryError 2", "MemoryError 2", "threads 8 3"], \
        run.describe()
    request = oom.marker_line(script, "request")
    for folder, size in ((first, 2**50), (second, 2**51)):
        stacks = oom.parse_prof(folder / "out-of-memory.prof")
        (frames, count), = oom.failed_requests(stacks)
        assert size <= count <= size + 64, count
        assert oom.is_frame_at(oom.last_python_frame(frames), script, request), frames
        oom.assert_close(oom.bytes_at(stacks, script, oom.marker_line(script, "kept")),
                         30 * oom.MIB, 0.02, "kept line in %s" % folder)
        s = oom.load_summary(folder / "summary.json")
        assert s["out_of_memory"]["requested_bytes"] == count, s["out_of_memory"]
        oom.parse_svg(folder / "out-of-memory.svg")
    (frames, count), = oom.failed_requests(
        oom.parse_prof(first / "threads" / "out-of-memory.prof"))
    assert count >= 2**50, count
    heads = [l for l in oom.stderr_lines(run) if l.startswith(oom.PREFIX + "Out of memory: ")]
    assert len(heads) == 3, run.describe()
