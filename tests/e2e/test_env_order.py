# SPDX-License-Identifier: MIT
"""The environment keeps its order: a user's LD_PRELOAD stays where the user
put it, in the program's own environment and in every child's (a shell's
`env`, a Python child's os.environ), as without the profiler. Before, the
launcher and the exec wrappers appended our LD_PRELOAD entry after all the
others and handed the user's value back in that place: `env` printed
LD_PRELOAD last, and so did list(os.environ).
"""

import os
import subprocess

PROBE = """
import os
import subprocess
import sys

print("program", [k for k in os.environ])
env = {"A": "1", "LD_PRELOAD": "", "B": "2"}
print("env", subprocess.run(["env"], env=env, stdout=subprocess.PIPE).stdout)
code = "import os; print('python child', [k for k in os.environ])"
subprocess.run([sys.executable, "-c", code], env=env)
subprocess.run(["sh", "-c", "env | grep -n -e '^A=' -e '^LD_PRELOAD=' -e '^B='"],
               env={"A": "1", "LD_PRELOAD": "libm.so.6", "B": "2", "PATH": os.environ["PATH"]})
"""


def test_ld_preload_keeps_its_place(fp, tmp_path):
    script = fp.write_script(tmp_path, PROBE)
    # The program's own environment, in this order.
    env = {"A": "1", "LD_PRELOAD": "", "B": "2", "PATH": os.environ["PATH"],
           "FIL_PYTHON": fp.PYTHON}
    plain = subprocess.run([fp.PYTHON, str(script)], cwd=str(tmp_path), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert b"env b'A=1\\nLD_PRELOAD=\\nB=2\\n'" in plain.stdout, plain.stdout
    out = tmp_path / "fil-out"
    proc = subprocess.run([fp.FIL, "run", "--no-browser", "-o", str(out), str(script)],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == plain.stdout, (proc.stdout.decode(), plain.stdout.decode())
    _, summary = fp.check_peak_report(fp.latest_result(out))
    assert len(summary["children"]) == 1, summary["children"]  # the Python child is profiled
