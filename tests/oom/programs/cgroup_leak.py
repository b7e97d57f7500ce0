# SPDX-License-Identifier: MIT
"""Append 1 MiB bytearrays (zeroed, so touched) to a list forever."""
held = []
while True:
    held.append(bytearray(1024 * 1024))  # @leak
