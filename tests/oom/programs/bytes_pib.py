# SPDX-License-Identifier: MIT
"""Keep 100 MiB, free 200 MiB, then ask for a 1 PiB bytearray (no numpy
needed: runs on every interpreter)."""
MIB = 1024 * 1024
keep = bytearray(100 * MIB)  # @keep
tmp = bytearray(200 * MIB)  # @freed
del tmp
huge = bytearray(2 ** 50)  # @request
print("unreachable: 1 PiB was granted")
