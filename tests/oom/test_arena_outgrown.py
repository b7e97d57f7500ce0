# SPDX-License-Identifier: MIT
"""An out-of-memory dump whose emergency arena could not grow.

The arena grows with the number of call stacks while memory is
plentiful; under RLIMIT_AS, close to the limit, it cannot (its growth
needs address space too), and the program goes on making call stacks
until an allocation fails. The dump then draws only the oldest call
stacks that fit. What the user must see: out-of-memory.prof still adds up
to the memory the headline says was tracked (before: the newest stacks
were left out with their bytes, 15 MiB of 837), and those bytes are on
the line that made them, the nearest caller drawn.
"""


def test_outgrown_arena_keeps_the_totals(oom, tmp_path):
    script = oom.program("new_stacks_near_limit.py")
    run = oom.run_fil(tmp_path, script, 60000, command=oom.ulimit_sv(1000000))
    assert run.returncode == oom.EXIT_OOM, run.describe()
    oom.assert_oom_files(run)
    stacks = run.oom_prof()
    tracked = run.summary()["out_of_memory"]["tracked_bytes"]
    total = oom.total_bytes(stacks)
    assert abs(total - tracked) <= oom.MIB, (
        "out-of-memory.prof holds %d bytes, the dump tracked %d" % (total, tracked))
    many = oom.bytes_at(stacks, script, oom.marker_line(script, "many"))
    assert many >= 20 * oom.MIB, "the new call stacks' line holds %d bytes" % many
