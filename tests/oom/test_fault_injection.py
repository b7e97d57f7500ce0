# SPDX-License-Identifier: MIT
"""Fault injection, SQLite style, and the dump's no-allocation guard.

Covers: FIL_TEST_FAIL_AFTER=N (the Nth tracked allocation returns NULL)
swept over about 25 values of N on a small json/dict/list program. Every
run must end within 30 s (a hang fails) with exit 53 and a parseable
out-of-memory report (every .prof line `<stack> <bytes>`, summary.json
loads with kind "allocation-failed"), or, when N is beyond the program's
allocations, exit 0 with the peak report and no out-of-memory files.
Then FIL_TEST_MALLOC_IN_DUMP=1 with a 1 PiB request: the dump calls
malloc, which the guard must turn into an abort (exit 134); without it the
same run exits 53, so the dump normally allocates nothing.
"""

import random

import pytest

FIXED = [1, 2, 3, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000]
SWEEP_TIMEOUT = 30


@pytest.fixture(scope="module")
def allocations(oom, tmp_path_factory):
    """Tracked allocations of an uninjected run of small_json.py."""
    script = oom.program("small_json.py")
    run = oom.run_fil(tmp_path_factory.mktemp("clean"), script, timeout=SWEEP_TIMEOUT)
    assert run.returncode == 0, run.describe()
    n = run.summary()["tracked_allocations"]
    assert n > 20000, "small_json.py makes only %d allocations: enlarge it" % n
    return n


def sweep_values(total):
    rng = random.Random(20261121)
    values = FIXED + sorted(rng.randrange(1, total // 2) for _ in range(10))
    return values + [total * 4, total * 100]


def check_injected(oom, run, n, total):
    if n <= total // 2:
        assert run.returncode == oom.EXIT_OOM, "N=%d\n%s" % (n, run.describe())
    elif n >= 2 * total:
        assert run.returncode == 0, "N=%d\n%s" % (n, run.describe())
    else:  # near the end of the program: either outcome, consistent files
        assert run.returncode in (0, oom.EXIT_OOM), "N=%d\n%s" % (n, run.describe())
    s = run.summary()  # json.load must succeed in every case
    if run.returncode == oom.EXIT_OOM:
        oom.assert_oom_files(run)
        stacks = run.oom_prof()  # every line must match `^.+ \d+$`
        assert stacks, "N=%d: empty out-of-memory.prof" % n
        reqs = oom.failed_requests(stacks)
        assert len(reqs) == 1, (n, reqs)
        o = s["out_of_memory"]
        assert o["source"] == "in-process" and o["kind"] == "allocation-failed", (n, o)
        assert reqs[0][1] == o["requested_bytes"] > 0, (n, reqs, o)
        assert any(l.startswith(oom.PREFIX + "Out of memory: ") for l in oom.stderr_lines(run))
    else:
        assert run.stdout.startswith("ok "), run.describe()
        oom.assert_no_oom_files(run)
        assert s["out_of_memory"] is None, (n, s["out_of_memory"])
    for name in oom.PEAK_FILES:
        assert run.file(name).is_file(), (n, name)
    oom.parse_prof(run.file("peak-memory.prof"))


def test_fail_after_sweep(oom, tmp_path, allocations):
    script = oom.program("small_json.py")
    values = sweep_values(allocations)
    assert len(values) >= 25
    failures = []
    for n in values:
        run = oom.run_fil(tmp_path / ("n%d" % n), script, env={"FIL_TEST_FAIL_AFTER": str(n)},
                          timeout=SWEEP_TIMEOUT)
        try:
            check_injected(oom, run, n, allocations)
        except AssertionError as e:
            failures.append("N=%d: %s" % (n, str(e)[:2000]))
    assert not failures, "\n\n".join(failures)


def test_malloc_in_dump_aborts(oom, tmp_path):
    script = oom.program("bytes_pib.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "3G"],
                      env={"FIL_TEST_MALLOC_IN_DUMP": "1"})
    # Dies of SIGABRT, as the supervisor now does too (a shell sees 134).
    assert run.returncode == -6, run.describe()
    assert "unreachable" not in run.stdout


def test_dump_without_malloc_hook_exits_53(oom, tmp_path):
    script = oom.program("bytes_pib.py")
    run = oom.run_fil(tmp_path, script, opts=["--memory-limit", "3G"])
    assert run.returncode == oom.EXIT_OOM, run.describe()
    oom.assert_oom_files(run)
    # bytearray(n) asks for n + 1 bytes (room for a trailing NUL).
    assert run.summary()["out_of_memory"]["requested_bytes"] == 2 ** 50 + 1
