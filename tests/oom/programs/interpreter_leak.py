# SPDX-License-Identifier: MIT
"""Objects the interpreter allocates itself, 50 MiB at a time, kept until
memory runs out: argv[1] picks which of CPython's allocator calls fails.

  bytearray  bytearray(n) grows its buffer: PyObject_Realloc (3.13: PyMem_Realloc)
  bytes      bytes(n) is zeroed: PyObject_Calloc
  list       [None] * n allocates its items: PyMem_Malloc
"""
import sys

MIB = 1024 * 1024
make = {
    "bytearray": lambda: bytearray(50 * MIB),
    "bytes": lambda: bytes(50 * MIB),
    "list": lambda: [None] * (50 * MIB // 8),
}[sys.argv[1]]
held = []
while True:
    held.append(make())  # @leak
