# SPDX-License-Identifier: MIT
"""Eight threads ask libc's malloc for 1 PiB at the same moment.

ctypes releases the GIL around the call, so the eight requests fail
together in C while the first failure is being dumped. Each thread records
whether it got NULL; with --on-oom=continue the program prints how many did.
"""
import ctypes
import threading

THREADS = 8
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
start = threading.Barrier(THREADS)
nulls = []


def worker():
    start.wait()
    p = libc.malloc(2 ** 50)  # @request
    nulls.append(not p)


threads = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("nulls", sum(nulls))
