# SPDX-License-Identifier: MIT
"""many_peaks.py - a program that reaches a new peak many times (bench row `many_peaks`).

The live set grows in rounds: each round allocates GROW bytearrays of random
sizes from 16 allocation lines reached through 4 caller functions (64 call
stacks), then frees a random slice of DROP of them.  Memory therefore goes down
once per round and climbs past the previous high-water mark again, so the
profiler must take ~ROUNDS peak snapshots and see ~ROUNDS*(GROW-DROP)
allocations that each set a new peak.  Seeded, so every run does the same work.
Usage: many_peaks.py [ROUNDS] [GROW] [DROP]
"""

import random
import sys

import benchlib

# One allocation site per line: 16 distinct (function, line) leaves.
ALLOCATORS = [
    lambda n: bytearray(n),
    lambda n: bytearray(n + 1),
    lambda n: bytearray(n + 2),
    lambda n: bytearray(n + 3),
    lambda n: bytearray(n + 4),
    lambda n: bytearray(n + 5),
    lambda n: bytearray(n + 6),
    lambda n: bytearray(n + 7),
    lambda n: bytearray(n + 8),
    lambda n: bytearray(n + 9),
    lambda n: bytearray(n + 10),
    lambda n: bytearray(n + 11),
    lambda n: bytearray(n + 12),
    lambda n: bytearray(n + 13),
    lambda n: bytearray(n + 14),
    lambda n: bytearray(n + 15),
]


def grow_a(live, rng, count):
    """Append `count` random-size buffers from random allocation sites."""
    for _ in range(count):
        live.append(ALLOCATORS[rng.randrange(16)](rng.randrange(16, 600)))


def grow_b(live, rng, count):
    """Same as grow_a, from another call stack."""
    for _ in range(count):
        live.append(ALLOCATORS[rng.randrange(16)](rng.randrange(16, 600)))


def grow_c(live, rng, count):
    """Same as grow_a, from another call stack."""
    for _ in range(count):
        live.append(ALLOCATORS[rng.randrange(16)](rng.randrange(16, 600)))


def grow_d(live, rng, count):
    """Same as grow_a, from another call stack."""
    for _ in range(count):
        live.append(ALLOCATORS[rng.randrange(16)](rng.randrange(16, 600)))


GROWERS = [grow_a, grow_b, grow_c, grow_d]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    grow = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    drop = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    rng = random.Random(20261121)
    live = []
    for r in range(rounds):
        GROWERS[r % 4](live, rng, grow)
        start = rng.randrange(len(live) - drop)
        del live[start:start + drop]
    total = sum(len(b) for b in live)
    print("many_peaks: %d rounds, %d buffers, %d bytes live" % (rounds, len(live), total))
    benchlib.report(rounds=rounds)


if __name__ == "__main__":
    main()
