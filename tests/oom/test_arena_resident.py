# SPDX-License-Identifier: MIT
"""The emergency arena is faulted in before memory is short, and only then.

Covers: in a memory cgroup limited to 400 MiB (margin 20 MiB, so the arena
is made resident once less than 4 x 20 + 256 = 336 MiB is left), a program
that starts with more room than that reserves the arena without faulting
it in (`--verbose` says "reserved"); cgroup_leak.py then makes it resident
with one line saying how much was left under the cgroup, more than the
margin and less than 336 MiB, before the prediction's line; the dump that
follows is complete (exit 53, every out-of-memory file, the leaking line
charged). Under `ulimit -Sv` (RLIMIT_AS), where the address space taken at
startup is what counts, an arena that stayed reserved gives a complete dump
too (skipped where memory is short from the start).
"""

import re

RESIDENT_ROOM = 4 * 20 + 256  # MiB, for CG_LIMIT = 400 MiB


def arena_lines(oom, run):
    return [l for l in oom.stderr_lines(run) if "emergency arena" in l]


def test_made_resident_before_the_margin(oom, tmp_path, memcg):
    version, cg = memcg
    script = oom.program("cgroup_leak.py")
    run = oom.run_fil(tmp_path, script, opts=["--verbose"], command=oom.in_cgroup(cg))
    assert run.returncode == oom.EXIT_OOM, run.describe()
    lines = oom.stderr_lines(run)
    start = [l for l in lines if ", emergency arena " in l]
    assert len(start) == 1 and "(reserved, made resident when memory runs short)" in start[0], \
        run.describe()
    made = [i for i, l in enumerate(lines) if "emergency arena made resident" in l]
    assert len(made) == 1, run.describe()
    m = re.match(r"^=fil-profile= emergency arena made resident \([\d.]+ MiB\): "
                 r"([\d.]+) MiB left under cgroup$", lines[made[0]])
    assert m, lines[made[0]]
    left = float(m.group(1))
    assert 20 < left < RESIDENT_ROOM, lines[made[0]]
    predicted = [i for i, l in enumerate(lines) if l.startswith(oom.PREFIX + "Predicted: ")]
    assert len(predicted) == 1 and made[0] < predicted[0], run.describe()
    oom.assert_oom_files(run)
    held = oom.bytes_at(run.oom_prof(), script, oom.marker_line(script, "leak"))
    assert held > 0.6 * (oom.CG_LIMIT - 20 * oom.MIB), held


def test_reserved_arena_dumps_under_rlimit_as(oom, tmp_path):
    script = oom.program("string_leak.py")
    run = oom.run_fil(tmp_path, script, opts=["--verbose"], command=oom.ulimit_sv(1000000))
    start = [l for l in arena_lines(oom, run) if ", emergency arena " in l]
    assert len(start) == 1, run.describe()
    if "(resident)" in start[0]:
        import pytest
        pytest.skip("memory is short here: the arena is resident from the start")
    assert run.returncode == oom.EXIT_OOM, run.describe()
    assert not [l for l in arena_lines(oom, run) if "arena made resident" in l], run.describe()
    oom.assert_oom_files(run)
    s = run.summary()
    assert s["out_of_memory"]["limit"] == "RLIMIT_AS", s["out_of_memory"]
    held = oom.bytes_at(run.oom_prof(), script, oom.marker_line(script, "leak"))
    assert held > 250 * oom.MIB, held
