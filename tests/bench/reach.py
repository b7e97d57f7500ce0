# SPDX-License-Identifier: MIT
"""reach.py - how far a program gets before MemoryError (bench row `reach`).

Run under a virtual-memory limit (scripts/bench.py sets RLIMIT_AS; fil-profile
with --on-oom=continue): appends 2-tuples of a fresh int to one list until
MemoryError, then reports how many it held (BENCH_REACH).  Everything the
profiler maps counts against the same limit, so the ratio of the two counts
is how much of the user's memory the profiler takes.  A 16 MiB reserve,
freed first in the handler, leaves room to count and report.
Usage: reach.py
"""

import benchlib


def grow():
    """Append (i, i) until MemoryError; return the length reached."""
    reserve = bytearray(16 << 20)
    held = []
    i = 0
    try:
        while True:
            held.append((i, i))
            i += 1
    except MemoryError:
        del reserve
        n = len(held)
        del held
        return n


def main():
    n = grow()
    print("reach: %d" % n)
    benchlib.report(reach=n)


if __name__ == "__main__":
    main()
