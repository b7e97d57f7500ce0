# SPDX-License-Identifier: MIT
"""Hold 100 MiB, then eight threads read address 0 at the same moment.

libc's memcpy is called through ctypes with the GIL released, so the eight
SIGSEGVs arrive together while the first one is being dumped.
"""
import ctypes
import threading

THREADS = 8
MIB = 1024 * 1024
block = bytearray(100 * MIB)  # @block
libc = ctypes.CDLL(None)
libc.memcpy.restype = ctypes.c_void_p
libc.memcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
start = threading.Barrier(THREADS)
dest = ctypes.create_string_buffer(64)


def worker():
    start.wait()
    libc.memcpy(dest, None, 64)  # @crash


threads = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("unreachable: eight NULL reads survived")
