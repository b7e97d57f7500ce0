# SPDX-License-Identifier: MIT
"""Keep 100 MiB, free 200 MiB, then ask numpy for 1 PiB."""
import numpy as np

MIB = 1024 * 1024
keep = np.ones(100 * MIB // 8)  # @keep
tmp = np.ones(200 * MIB // 8)  # @freed
del tmp
huge = np.empty(2 ** 50 // 8)  # @request
print("unreachable: 1 PiB was granted")
