# SPDX-License-Identifier: MIT
"""Map anonymous 64 MiB regions and keep them until mmap fails."""
import mmap

MIB = 1024 * 1024
held = []
while True:
    m = mmap.mmap(-1, 64 * MIB)  # @mmap
    m[0:1] = b"x"  # touch one page
    held.append(m)
