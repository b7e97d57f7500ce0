# SPDX-License-Identifier: MIT
"""The program's output is its own: stdout (text and binary) is
byte-identical to running the script with plain Python, the profiler writes
nothing on stdout, and every line it writes on stderr starts with
`=fil-profile= ` (also with --verbose).
"""

import subprocess
from pathlib import Path

import pytest

SCRIPT = """
import sys

print("hello from the program")
print("ünïcødé ✓", "tab\\there")
sys.stdout.flush()
sys.stdout.buffer.write(bytes(range(256)) + b"\\r\\n\\x00no newline")
sys.stdout.buffer.flush()
print()
print("args:", sys.argv[1:])
data = bytearray(10 * 1024 * 1024)  # HELD
for i in range(1000):
    print(i, end=" ")
print("done")
"""


@pytest.mark.parametrize("opts", [(), ("--verbose",)], ids=["quiet", "verbose"])
def test_stdout_identical_to_plain_python(tmp_path, fp, opts):
    script = fp.write_script(tmp_path, SCRIPT)
    args = ("one", "--two", "three four")
    direct = subprocess.run([fp.PYTHON, str(script), *args], cwd=str(tmp_path),
                            env=fp.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60)
    assert direct.returncode == 0, direct.stderr
    assert direct.stderr == b""

    proc, result = fp.run_fil(tmp_path, script, *args, extra_opts=opts)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == direct.stdout

    err_lines = proc.stderr.decode().splitlines()
    assert err_lines, "the profiler should at least say where the report is"
    for line in err_lines:
        assert line.startswith(fp.PREFIX), "stderr line without the prefix: %r" % line
    assert any("Wrote peak-memory report to" in l and "index.html" in l for l in err_lines), err_lines
    if opts:
        assert len(err_lines) > 1, "--verbose said nothing more: %s" % err_lines

    entries, _ = fp.check_peak_report(result)
    line = fp.line_of(SCRIPT, "HELD")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, 10 * 1024 * 1024, 0.02), "line %d: %d" % (line, got)


def test_report_path_on_stderr_is_the_result_folder(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, "print('x')\n")
    assert proc.returncode == 0, fp.describe(proc)
    wrote = [l for l in proc.stderr.decode().splitlines() if "Wrote peak-memory report to" in l]
    assert len(wrote) == 1, proc.stderr
    path = wrote[0].split("Wrote peak-memory report to ", 1)[1]
    assert path.endswith("/index.html")
    assert Path(path).resolve() == result / "index.html"
