# SPDX-License-Identifier: MIT
"""Two fork workers in the memory cgroup the launcher runs in: one leaks
until the kernel's OOM killer kills it, the other only sleeps holding
15 MiB and is then killed with SIGKILL by the parent; then the parent
kills itself with SIGKILL. Only the leaking worker was OOM-killed.
"""
import multiprocessing as mp
import os
import signal
import time

MIB = 1024 * 1024


def sleeper():
    held = bytearray(15 * MIB)  # @sleeper
    time.sleep(60)


def leaker():
    held = []
    while True:
        held.append(bytearray(MIB))  # @leak


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    s = ctx.Process(target=sleeper)
    s.start()
    p = ctx.Process(target=leaker)
    p.start()
    p.join()
    time.sleep(0.5)  # the launcher looks at the cgroup every 100 ms
    s.kill()
    s.join()
    print("leaker", p.exitcode, "sleeper", s.exitcode, flush=True)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
