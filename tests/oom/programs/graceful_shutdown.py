# SPDX-License-Identifier: MIT
"""Hold 200 MiB; on SIGTERM free it (a graceful shutdown), then die of the
signal. Prints our pid, then sleeps until signalled."""
import os
import signal
import time

MIB = 1024 * 1024
held = []


def shutdown(sig, frame):
    held.clear()  # everything freed before the process dies
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


signal.signal(signal.SIGTERM, shutdown)
held.append(bytearray(200 * MIB))  # @hold
print(os.getpid(), flush=True)
# Short sleeps: a SIGTERM that lands after the interpreter last checked for
# signals but before sleep's syscall starts would wait out a long sleep.
while True:
    time.sleep(0.05)
