# SPDX-License-Identifier: MIT
"""Fill numpy arrays up to a fraction of RLIMIT_AS (argv[1], e.g. 0.6) and stop.

Arrays of 25 MiB are added while the address space (VmSize) plus the next
array stays within the target, so the program peaks just under the target
fraction of its limit. Prints the bytes allocated and VmPeak/limit.
"""
import resource
import sys

import numpy as np

MIB = 1024 * 1024
CHUNK = 25 * MIB


def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])


limit = resource.getrlimit(resource.RLIMIT_AS)[0]
target = float(sys.argv[1]) * limit
arrays = []
while status_kib("VmSize") * 1024 + CHUNK <= target:
    arrays.append(np.ones(CHUNK // 8))  # @fill
print("allocated", len(arrays) * CHUNK)
print("vmpeak_fraction %.4f" % (status_kib("VmPeak") * 1024 / limit))
