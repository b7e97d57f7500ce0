# SPDX-License-Identifier: MIT
"""Call libc malloc through ctypes, 100 MiB at a time, keeping every block.

argv[1] says how malloc is found: "libc" loads libc by name
(ctypes.CDLL("libc.so.6"), the usual idiom), "global" looks it up in the
process's global scope (ctypes.CDLL(None)).
"""
import ctypes
import ctypes.util
import sys

if sys.argv[1] == "libc":
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
else:
    libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
held = []
while True:
    p = libc.malloc(100 * 1024 * 1024)  # @malloc
    if not p:
        print("malloc returned NULL without a dump after %d blocks" % len(held))
        break
    held.append(p)
