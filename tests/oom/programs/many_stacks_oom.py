# SPDX-License-Identifier: MIT
"""Make argv[1] distinct call stacks, each holding a small block, so that
the out-of-memory dump has a lot to write (a few hundred milliseconds),
then run out of memory under the caller's RLIMIT_AS."""
import sys

n = int(sys.argv[1])
ns = {}
for start in range(0, n, 1000):
    src = "".join("def f%d(keep):\n    keep.append(bytearray(%d))\n" % (i, 64 + i % 512)
                  for i in range(start, min(n, start + 1000)))
    exec(compile(src, "generated.py", "exec"), ns)
keep = []
for i in range(n):
    ns["f%d" % i](keep)
print("ready", flush=True)
grow = []
while True:
    grow.append(bytearray(16 * 1024 * 1024))  # @grow
