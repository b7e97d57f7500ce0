# SPDX-License-Identifier: MIT
"""Fill the address space to within 60 MiB of the soft RLIMIT_AS, then
allocate 2,000 bytes from each of argv[1] new call stacks until memory
runs out: the call stacks are made where the emergency arena can no longer
grow for them."""
import resource
import sys

n = int(sys.argv[1])
src = "".join("def f%d(keep):\n    keep.append(bytearray(2000))\n" % i for i in range(n))
ns = {}
exec(compile(src, "generated.py", "exec"), ns)
soft = resource.getrlimit(resource.RLIMIT_AS)[0]


def mapped():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


big = []
while mapped() < soft - 60 * 1024 * 1024:
    big.append(bytearray(4 * 1024 * 1024))  # @big
keep = []
for i in range(n):
    ns["f%d" % i](keep)  # @many
print("no out of memory")
