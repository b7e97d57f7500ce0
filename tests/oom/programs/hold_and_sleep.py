# SPDX-License-Identifier: MIT
"""Hold 300 MiB, print our pid, then sleep until killed."""
import os
import sys
import time

MIB = 1024 * 1024
block = bytearray(300 * MIB)  # @hold
print(os.getpid(), flush=True)
sys.stdout.flush()
time.sleep(600)  # @sleep
