# SPDX-License-Identifier: MIT
"""A multiprocessing worker (start method argv[1]) that runs out of memory;
the parent carries on and reports the worker's exit code.

argv[2] == "cgroup": the worker first moves itself into the memory cgroup
folder argv[3] (so the kernel's OOM killer acts there, on it alone) and
leaks 1 MiB at a time (an empty cgroup folder argv[4], if given, it first
removes); "leak": it leaks 1 MiB at a time where it is;
otherwise it asks for 1 PiB after holding 50 MiB.
"""
import multiprocessing as mp
import os
import sys

MIB = 1024 * 1024


def worker(how, where, remove):
    if how in ("cgroup", "leak"):
        if remove:
            os.rmdir(remove)
        if how == "cgroup":
            with open(where + "/cgroup.procs", "w") as f:
                f.write("0")  # this process
        held = []
        while True:
            held.append(bytearray(MIB))  # @leak
    keep = bytearray(50 * MIB)  # @keep
    huge = bytearray(2 ** 50)  # @huge
    print("unreachable", len(keep), len(huge))


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    p = ctx.Process(target=worker, args=(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "",
                                         sys.argv[4] if len(sys.argv) > 4 else ""))
    p.start()
    p.join()
    mine = bytearray(20 * MIB)  # @parent
    print("worker exit", p.exitcode, "parent holds", len(mine) // MIB, flush=True)
