# SPDX-License-Identifier: MIT
"""Hold 300 MiB, print our pid, then sleep until killed."""
import os
import sys
import time

MIB = 1024 * 1024
block = bytearray(300 * MIB)  # @hold
print(os.getpid(), flush=True)
sys.stdout.flush()
# Short sleeps: a SIGINT that lands after the interpreter last checked for
# signals but before sleep's syscall starts would wait out a long sleep.
while True:
    time.sleep(0.05)  # @sleep
