# SPDX-License-Identifier: MIT
"""`--on-oom=continue`: dump once, then let Python see the MemoryError.

Covers: under `--memory-limit 2G` a program catches the MemoryError of a
1 PiB request, prints "recovered" and exits 0. The exit status stays 0,
stdout is the program's, and the out-of-memory report was written with the
request at its line. A fork child of a program that dumped and went on
dumps in its turn, into its own folder.
"""


def test_on_oom_continue(oom, tmp_path):
    script = oom.program("on_oom_continue.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "2G", "--on-oom=continue"])
    assert run.returncode == 0, run.describe()
    assert run.stdout.splitlines() == ["recovered", "done %d" % (51 * oom.MIB)], run.describe()
    oom.assert_oom_files(run)
    heads = [l for l in oom.stderr_lines(run) if l.startswith(oom.PREFIX + "Out of memory: ")]
    assert len(heads) == 1, run.describe()
    stacks = run.oom_prof()
    oom.assert_close(oom.bytes_at(stacks, script, oom.marker_line(script, "kept")),
                     50 * oom.MIB, 0.02, "kept line")
    (frames, count), = oom.failed_requests(stacks)
    assert 2 ** 50 <= count <= 2 ** 50 + 64, count
    assert oom.is_frame_at(oom.last_python_frame(frames), script,
                           oom.marker_line(script, "request")), frames
    s = run.summary()
    assert s["exit_status"] == 0, s
    assert s["out_of_memory"]["source"] == "in-process", s["out_of_memory"]
    assert s["out_of_memory"]["requested_bytes"] == count, s["out_of_memory"]
    for name in oom.PEAK_FILES:
        assert run.file(name).is_file(), name


def test_fork_child_after_a_dump_dumps_its_own(oom, tmp_path):
    """A fork child of a program that has dumped (and went on) has its own
    dump: one per process, into its own folder. It inherited the parent's
    claim on the dump and never dumped."""
    script = oom.program("fork_after_oom.py")
    run = oom.run_fil(tmp_path, script, opts=["--on-oom=continue"])
    assert run.returncode == 0, run.describe()
    assert run.stdout.splitlines() == ["parent recovered", "child recovered", "child exit 0"], \
        run.describe()
    oom.assert_oom_files(run)
    (frames, _), = oom.failed_requests(run.oom_prof())
    assert oom.is_frame_at(oom.last_python_frame(frames), script,
                           oom.marker_line(script, "parent")), frames
    rows = run.summary()["children"]
    assert len(rows) == 1 and rows[0]["kind"] == "fork" and rows[0]["out_of_memory"], rows
    child = run.dir / rows[0]["folder"]
    for name in oom.OOM_FILES:
        assert (child / name).is_file(), "%s of the fork child\n%s" % (name, run.describe())
    (frames, _), = oom.failed_requests(oom.parse_prof(child / "out-of-memory.prof"))
    assert oom.is_frame_at(oom.last_python_frame(frames), script,
                           oom.marker_line(script, "child")), frames
    heads = [l for l in oom.stderr_lines(run) if "Out of memory: " in l]
    assert len(heads) == 2, run.describe()
