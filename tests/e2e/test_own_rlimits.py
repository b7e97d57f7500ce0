# SPDX-License-Identifier: MIT
"""Address-space limits the program sets itself, after it started.

A program may lower its own soft RLIMIT_AS or RLIMIT_DATA with setrlimit
(resource.setrlimit), or raise it up to the hard limit, as servers often
do. The out-of-memory path must judge a failure by the limits in force
then, not by those of the start-up:
  - the program lowers RLIMIT_AS to 800 MiB and grows a list until an
    allocation fails: exit 53, and the report names RLIMIT_AS and its
    800 MiB (it named MemAvailable, the limit read at start-up);
  - started under `ulimit -Sv 1000000`, the program raises its soft limit
    to the hard one (unlimited), maps 1.2 GiB, then makes mappings until
    vm.max_map_count refuses one (ENOMEM): that is no lack of memory, and
    the program catches it and ends as under plain Python (it was called
    out of memory under the old RLIMIT_AS, exit 53);
  - started under `ulimit -f 100` (a 100 KiB file size limit, too small for
    the profiler's state file), the program prints and exits as under
    plain Python and stderr says it was not profiled (before: the state's
    first growth drew a SIGXFSZ, which the interpreter does not ignore yet
    in the preload constructor, and the program died of it at once).
"""

import json
import subprocess

import pytest

LOWERS = """
import resource

resource.setrlimit(resource.RLIMIT_AS, (800 * 1024 * 1024, resource.RLIM_INFINITY))
held = []
while True:
    held.append(bytearray(1024 * 1024))  # GROW
"""

RAISES = """
import mmap
import resource

soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
big = mmap.mmap(-1, 1200 * 1024 * 1024)
maps = []
try:
    for i in range(1_000_000):
        prot = mmap.PROT_READ if i % 2 else mmap.PROT_READ | mmap.PROT_WRITE
        maps.append(mmap.mmap(-1, 4096, prot=prot))
except OSError as e:
    print("refused:", e.errno)
"""


def test_lowered_limit_is_the_one_named(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, LOWERS)
    assert proc.returncode == 53, fp.describe(proc)
    oom = json.loads((result / "summary.json").read_text())["out_of_memory"]
    assert oom["limit"] == "RLIMIT_AS", oom
    assert oom["limit_bytes"] == 800 * 1024 * 1024, oom
    assert "limit RLIMIT_AS 800.0 MiB" in proc.stderr.decode(), fp.describe(proc)
    line = fp.line_of(LOWERS, "GROW")
    assert oom["python_stack"][-1]["line"] == line, oom["python_stack"]


def both_under(fp, tmp_path, ulimit, text):
    """Run the script `text` under the shell command `ulimit` (a bash
    `ulimit ...`), profiled and plain: (profiled, plain, result parent)."""
    script = fp.write_script(tmp_path, text)
    shell = ["bash", "-c", ulimit + ' && exec "$@"', "bash"]
    out = tmp_path / "fil-out"
    runs = [subprocess.run(shell + cmd, cwd=str(tmp_path), env=fp.base_env(),
                           capture_output=True, timeout=fp.DEFAULT_TIMEOUT)
            for cmd in ([fp.FIL, "run", "--no-browser", "-o", str(out), str(script)],
                        [fp.PYTHON, str(script)])]
    return runs[0], runs[1], out


def test_raised_limit_is_not_out_of_memory(fp, tmp_path):
    with open("/proc/sys/vm/max_map_count") as f:
        if int(f.read()) > 300_000:
            pytest.skip("vm.max_map_count is too large to reach here")
    proc, plain, out = both_under(fp, tmp_path, "ulimit -Sv 1000000", RAISES)
    if plain.returncode != 0 or b"refused: 12" not in plain.stdout:
        pytest.skip("plain Python is not refused by vm.max_map_count here: %r" % plain.stdout)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == plain.stdout
    summary = json.loads((fp.latest_result(out) / "summary.json").read_text())
    assert summary["out_of_memory"] is None, summary["out_of_memory"]


FSIZE = """
import sys
block = bytearray(30 * 1024 * 1024)
print("hello", len(block))
sys.exit(2)
"""


def test_file_size_limit_does_not_kill_the_program(fp, tmp_path):
    proc, plain, _ = both_under(fp, tmp_path, "ulimit -f 100", FSIZE)
    assert plain.returncode == 2, plain
    assert proc.returncode == plain.returncode, fp.describe(proc)
    assert proc.stdout == plain.stdout, fp.describe(proc)
    assert b"the program runs unprofiled" in proc.stderr, fp.describe(proc)
