# SPDX-License-Identifier: MIT
"""Allocate 100 MiB, then crash: argv[1] is segv (a real fault), kill-segv
(SIGSEGV sent to itself), abort (os.abort) or overflow (C stack overflow
through unbounded recursion across a C function); segv-thread and
overflow-thread do the same in a thread the program started."""
import ctypes
import os
import signal
import sys
import threading

MIB = 1024 * 1024
block = bytearray(100 * MIB)  # @block
how = sys.argv[1]
sys.stdout.flush()


def crash(how):
    if how == "segv":
        ctypes.string_at(0)  # @crash
    elif how == "kill-segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif how == "abort":
        os.abort()
    elif how == "overflow":
        sys.setrecursionlimit(10 ** 8)

        def deeper(n):
            return sorted([0], key=lambda _: deeper(n + 1))

        deeper(0)


if how.endswith("-thread"):
    t = threading.Thread(target=crash, args=(how[:-len("-thread")],))
    t.start()
    t.join()
else:
    crash(how)  # @call
print("unreachable: still alive after", how)
