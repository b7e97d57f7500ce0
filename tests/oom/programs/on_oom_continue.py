# SPDX-License-Identifier: MIT
"""Catch the MemoryError of a 1 PiB request and carry on."""
MIB = 1024 * 1024
kept = bytearray(50 * MIB)  # @kept
try:
    huge = bytearray(2 ** 50)  # @request
except MemoryError:
    print("recovered")
else:
    print("1 PiB granted?")
small = bytearray(MIB)
print("done", len(kept) + len(small))
