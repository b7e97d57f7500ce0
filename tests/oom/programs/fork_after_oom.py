# SPDX-License-Identifier: MIT
"""Under --on-oom=continue: the program runs out of memory (its dump is
written, it catches the MemoryError), then forks a child that runs out of
memory in its turn and exits; the parent waits for it."""
import os

try:
    bytearray(2 ** 50)  # @parent
except MemoryError:
    print("parent recovered", flush=True)
pid = os.fork()
if pid == 0:
    try:
        bytearray(2 ** 50)  # @child
    except MemoryError:
        print("child recovered", flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
