# SPDX-License-Identifier: MIT
"""child_start.py - what one child process pays to start (bench row `child_start`).

Starts CHILDREN exec'd interpreters (`sys.executable -c ...`, as spawn and
subprocess do) and CHILDREN fork() children, one at a time, each given a
pause afterwards so the launcher's report of the last one is not in the
next one's way. Each child says how many minor page faults it took until its
first line of Python (exec'd) or right after fork returned in it (forked):
repeatable counts, where a shared VM's wall times are not. Reported as
medians: BENCH_CHILD_FAULTS, BENCH_FORK_FAULTS and BENCH_CHILD_MS (start of
the exec'd child to its first line, milliseconds).
Usage: child_start.py [CHILDREN]
"""

import os
import resource
import statistics
import subprocess
import sys
import time

import benchlib

FIRST_LINE = ("import time; t = time.time()\n"
              "import resource\n"
              "print(t, resource.getrusage(resource.RUSAGE_SELF).ru_minflt)\n")


def exec_child():
    """(milliseconds to the first line, minor faults by then) of one exec'd child."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", FIRST_LINE], capture_output=True, text=True,
                         check=True).stdout.split()
    return (float(out[0]) - t0) * 1000, int(out[1])


def fork_child():
    """Minor faults of one fork child, right after fork returned in it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"%d" % resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        os._exit(0)
    os.close(w)
    faults = int(os.read(r, 64))
    os.close(r)
    os.waitpid(pid, 0)
    return faults


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    ms, faults, forked = [], [], []
    for _ in range(n):
        t, f = exec_child()
        ms.append(t)
        faults.append(f)
        time.sleep(0.1)
    for _ in range(n):
        forked.append(fork_child())
        time.sleep(0.05)
    print(n)
    benchlib.report(child_faults=statistics.median(faults), fork_faults=statistics.median(forked),
                    child_ms="%.2f" % statistics.median(ms))


if __name__ == "__main__":
    main()
