# SPDX-License-Identifier: MIT
"""Leak small Python strings (about 430 bytes each) into a list until
memory runs out."""
held = []
i = 0
while True:
    held.append("leak-%d-%s" % (i, "x" * 400))  # @leak
    i += 1
