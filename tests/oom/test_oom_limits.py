# SPDX-License-Identifier: MIT
"""Out of memory under an address-space limit, and a run that stays under it.

Covers: a 1 PiB numpy request under `ulimit -Sv` (RLIMIT_AS set by the shell),
under `--memory-limit 3G`, and under `ulimit -Sv` with
`--disable-oom-detection` (a NULL from the allocator is still dumped): exit
53, the headline on stderr, out-of-memory.prof with the 100 MiB the program
kept (within 2%), not the 200 MiB it freed, and the failed 1 PiB request at
its own line; summary.json's limit and requested bytes. Then a program that
peaks at about 60% of `--memory-limit` must not be reported out of memory.
"""

import re

import pytest

REQUEST = 2 ** 50


def check_pib_report(oom, run, script):
    """What a user sees after numpy_pib.py ran out of memory under RLIMIT_AS."""
    assert run.returncode == oom.EXIT_OOM, run.describe()
    assert "unreachable" not in run.stdout, run.describe()
    # Headline: "Out of memory: malloc(N) failed with X tracked; limit RLIMIT_AS Y".
    lines = oom.stderr_lines(run)
    head = [l for l in lines if l.startswith(oom.PREFIX + "Out of memory: ")]
    assert len(head) == 1, run.describe()
    m = re.match(r"^=fil-profile= Out of memory: (\w+)\((\d+)\) failed with [\d.]+ \w*B tracked; "
                 r"limit RLIMIT_AS [\d.]+ \w*B$", head[0])
    assert m, head[0]
    assert int(m.group(2)) == REQUEST, head[0]
    wrote = [l for l in lines if l.startswith(oom.PREFIX + "Wrote out-of-memory report to ")]
    assert len(wrote) == 1, run.describe()
    svg = wrote[0][len(oom.PREFIX + "Wrote out-of-memory report to "):]
    assert (run.dir.parent.parent / svg).resolve() == run.file("out-of-memory.svg"), wrote[0]
    oom.assert_oom_files(run)

    stacks = run.oom_prof()
    keep = oom.marker_line(script, "keep")
    freed = oom.marker_line(script, "freed")
    request = oom.marker_line(script, "request")
    # Tolerance: 2% around the 100 MiB array (numpy adds a small header).
    oom.assert_close(oom.bytes_at(stacks, script, keep), 100 * oom.MIB, 0.02, "kept line")
    # The 200 MiB array was freed: at most some bytes of bookkeeping (the
    # global name binding) may stay charged to its line.
    assert oom.bytes_at(stacks, script, freed) < 64 * oom.KIB, "freed line still charged"
    reqs = oom.failed_requests(stacks)
    assert len(reqs) == 1, reqs
    frames, count = reqs[0]
    assert count == REQUEST, reqs[0]
    assert str(REQUEST) in frames[-1], frames[-1]
    assert oom.is_frame_at(oom.last_python_frame(frames), script, request), frames
    # Between the Python line and the request only native frames may appear.
    i = max(k for k, f in enumerate(frames) if oom.is_frame_at(f, script, request))
    assert all(f.startswith(oom.NATIVE) for f in frames[i + 1:-1]), frames

    s = run.summary()
    o = s["out_of_memory"]
    assert o["source"] == "in-process", o
    assert o["kind"] == "allocation-failed", o
    assert o["limit"] == "RLIMIT_AS", o
    assert o["requested_bytes"] == REQUEST, o
    assert o["function"] in ("malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
                             "mmap"), o
    # Tracked bytes at the failure: the 100 MiB plus the interpreter's own.
    assert 100 * oom.MIB <= o["tracked_bytes"] < 200 * oom.MIB, o
    assert s["exit_status"] == oom.EXIT_OOM, s
    # The supervisor also wrote the peak report: the peak held both arrays.
    for name in oom.PEAK_FILES:
        assert run.file(name).is_file(), name
    peak = run.peak_prof()
    oom.assert_close(oom.bytes_at(peak, script, freed), 200 * oom.MIB, 0.02, "peak: freed line")
    return s


@pytest.mark.numpy
def test_numpy_pib_under_ulimit(oom, tmp_path):
    script = oom.program("numpy_pib.py")
    run = oom.run_fil(tmp_path, script, command=oom.ulimit_sv(3000000))
    s = check_pib_report(oom, run, script)
    assert s["out_of_memory"]["limit_bytes"] == 3000000 * 1024, s["out_of_memory"]


@pytest.mark.numpy
def test_numpy_pib_under_memory_limit(oom, tmp_path):
    script = oom.program("numpy_pib.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "3G"])
    s = check_pib_report(oom, run, script)
    assert s["out_of_memory"]["limit_bytes"] == 3 * oom.GIB, s["out_of_memory"]


@pytest.mark.numpy
def test_numpy_pib_preexec_rlimit(oom, tmp_path):
    """The same limit set with setrlimit in the parent (no shell)."""
    script = oom.program("numpy_pib.py")
    run = oom.run_fil(tmp_path, script, preexec_fn=oom.rlimit_as(3 * oom.GIB))
    s = check_pib_report(oom, run, script)
    assert s["out_of_memory"]["limit_bytes"] == 3 * oom.GIB, s["out_of_memory"]


@pytest.mark.numpy
def test_disable_oom_detection_still_dumps_null(oom, tmp_path):
    script = oom.program("numpy_pib.py")
    run = oom.run_fil(tmp_path, script, opts=["--disable-oom-detection"],
                      command=oom.ulimit_sv(3000000))
    s = check_pib_report(oom, run, script)
    assert s["oom_detection"] is False, s


@pytest.mark.numpy
def test_peak_at_60_percent_is_not_oom(oom, tmp_path):
    """--memory-limit 1500M, numpy arrays up to ~60% of it (VmPeak measured
    by the program itself, which must land within 50-65% of the limit)."""
    script = oom.program("peak60.py")
    limit = 1500 * oom.MIB
    run = oom.run_fil(tmp_path, script, "0.6", opts=["--memory-limit", "1500M"])
    assert run.returncode == 0, run.describe()
    m = re.search(r"^vmpeak_fraction ([\d.]+)$", run.stdout, re.M)
    assert m, run.describe()
    assert 0.50 <= float(m.group(1)) <= 0.65, "calibration: VmPeak at %s of the limit" % m.group(1)
    allocated = int(re.search(r"^allocated (\d+)$", run.stdout, re.M).group(1))
    assert allocated >= 0.4 * limit, allocated
    oom.assert_no_oom_files(run)
    assert not any("Out of memory" in l for l in oom.stderr_lines(run)), run.describe()
    s = run.summary()
    assert s["out_of_memory"] is None, s["out_of_memory"]
    assert s["exit_status"] == 0
    # The peak report charges the arrays to the filling line (within 2%).
    peak = run.peak_prof()
    oom.assert_close(oom.bytes_at(peak, script, oom.marker_line(script, "fill")), allocated,
                     0.02, "peak: fill line")


def test_headline_reaches_the_launchers_stderr_when_the_program_moved_fd_2(oom, tmp_path):
    """A program that points fd 2 at its own log (a daemon, pytest's capture)
    and then runs out of memory: the headline and "Wrote ..." line still
    reach the stderr fil-profile was started with, and the log gets none."""
    script = tmp_path / "redirect.py"
    script.write_text(
        "import os\n"
        "log = os.open('program.log', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
        "os.dup2(log, 2)\n"
        "keep = bytearray(50 * 1024 * 1024)\n"
        "huge = bytearray(2 ** 50)  # @request\n"
        "print('unreachable')\n")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "3G"])
    assert run.returncode == oom.EXIT_OOM, run.describe()
    lines = oom.stderr_lines(run)
    assert [l for l in lines if l.startswith(oom.PREFIX + "Out of memory: ")], run.describe()
    assert [l for l in lines if l.startswith(oom.PREFIX + "Wrote out-of-memory report to ")], \
        run.describe()
    assert "=fil-profile=" not in (tmp_path / "program.log").read_text()
