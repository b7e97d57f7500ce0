# SPDX-License-Identifier: MIT
"""Run out of memory three times; re-arm the dump before the first two.

argv: FOLDER1 FOLDER2. Each episode prints what the program saw: the
MemoryError and how many dumps the profiler has completed. The third
episode, not re-armed, makes no dump. Then 8 threads run out of memory at
once after a re-arm into FOLDER1/threads: one dump for all of them.
"""
import sys
import threading

from filprofiler import _native

kept = bytearray(30 * 2**20)  # @kept


def episode(folder, size):
    if folder:
        print("armed", _native.oom_rearm(folder))
    try:
        bytearray(size)  # @request
    except MemoryError:
        print("MemoryError", _native.oom_dumps())


episode(sys.argv[1], 2**50)
episode(sys.argv[2], 2**51)
episode(None, 2**52)

_native.oom_rearm(sys.argv[1] + "/threads")
errors = []
start = threading.Barrier(8)


def fail():
    start.wait()
    try:
        bytearray(2**50)
    except MemoryError:
        errors.append(1)


threads = [threading.Thread(target=fail) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", len(errors), _native.oom_dumps())
