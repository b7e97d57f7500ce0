# SPDX-License-Identifier: MIT
"""Programs that leak until `--memory-limit 1G` runs out.

Covers: small Python strings appended to a list, anonymous mmap regions
(mmap.mmap(-1, 64 MiB)) until mmap fails with ENOMEM, and ctypes calls of
libc's malloc (100 MiB blocks) until it returns NULL. Each must exit 53
with the out-of-memory report charging most of the tracked memory (more
than 50% of the .prof total) to the leaking line, and summary.json naming
the allocator that failed.
"""

import pytest


def check_leak(oom, run, script, marker, share=0.5):
    assert run.returncode == oom.EXIT_OOM, run.describe()
    oom.assert_oom_files(run)
    assert any(l.startswith(oom.PREFIX + "Out of memory: ") for l in oom.stderr_lines(run)), \
        run.describe()
    stacks = run.oom_prof()
    line = oom.marker_line(script, marker)
    held = oom.bytes_at(stacks, script, line)
    total = oom.total_bytes(stacks)
    assert held > share * total, "leaking line holds %d of %d tracked bytes" % (held, total)
    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "in-process", o
    assert o["limit"] == "RLIMIT_AS" and o["limit_bytes"] == oom.GIB, o
    # The failed request hangs under the leaking line.
    reqs = oom.failed_requests(stacks)
    assert len(reqs) == 1, reqs
    assert reqs[0][1] == o["requested_bytes"], (reqs, o)
    return held, o


def test_string_leak(oom, tmp_path):
    script = oom.program("string_leak.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "1G"])
    held, o = check_leak(oom, run, script, "leak")
    # Tolerance: the leak must have reached at least a third of the limit
    # before failing (the profiler's own tables share the address space).
    assert held > oom.GIB // 3, held
    assert o["kind"] in ("allocation-failed", "predicted"), o
    # Python objects come through CPython's allocator API (pymalloc is kept and
    # hooked), C code through malloc: either family names the failing call.
    assert o["function"] in ("malloc", "realloc", "calloc", "PyMem_Malloc", "PyMem_Realloc",
                             "PyMem_Calloc", "PyObject_Malloc", "PyObject_Realloc",
                             "PyObject_Calloc"), o
    stacks = run.oom_prof()
    (frames, _), = oom.failed_requests(stacks)
    assert oom.is_frame_at(oom.last_python_frame(frames), script, oom.marker_line(script, "leak"))


def test_mmap_leak(oom, tmp_path):
    script = oom.program("mmap_leak.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "1G"])
    held, o = check_leak(oom, run, script, "mmap")
    assert o["function"] == "mmap", o
    assert o["requested_bytes"] == 64 * oom.MIB, o
    # Whole 64 MiB regions plus the small mmap objects and list of that
    # line: k * 64 MiB <= held < k * 64 MiB + 1 MiB, with k >= 8.
    regions = held // (64 * oom.MIB)
    assert regions >= 8 and held - regions * 64 * oom.MIB < oom.MIB, held
    stacks = run.oom_prof()
    (frames, _), = oom.failed_requests(stacks)
    assert oom.is_frame_at(oom.last_python_frame(frames), script, oom.marker_line(script, "mmap"))


@pytest.mark.parametrize("lookup", ["libc", "global"])
def test_ctypes_malloc(oom, tmp_path, lookup):
    script = oom.program("ctypes_malloc.py")
    run = oom.run_fil(tmp_path, script, lookup, opts=["--memory-limit", "1G"])
    assert "without a dump" not in run.stdout, (
        "libc malloc called through ctypes (%s) bypassed the profiler\n%s"
        % (lookup, run.describe()))
    held, o = check_leak(oom, run, script, "malloc")
    assert o["function"] == "malloc", o
    assert o["requested_bytes"] == 100 * oom.MIB, o
    # Whole 100 MiB blocks (malloc may add nothing visible): within 1%.
    blocks = round(held / (100 * oom.MIB))
    assert blocks >= 5, held
    oom.assert_close(held, blocks * 100 * oom.MIB, 0.01, "malloc line")
