# SPDX-License-Identifier: MIT
"""The main thread holds 200 MiB and waits; a worker thread asks for 1 PiB."""
import threading

MIB = 1024 * 1024


def worker():
    return bytearray(2 ** 50)  # @worker


main_block = bytearray(200 * MIB)  # @main
t = threading.Thread(target=worker)
t.start()
t.join()  # @join
print("unreachable: the worker got 1 PiB")
