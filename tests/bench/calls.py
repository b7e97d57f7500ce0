# SPDX-License-Identifier: MIT
"""calls.py - call-heavy pure Python that allocates little (bench row `calls`).

A recursive function, a small method called in a loop and a generator
consumed by sum(): millions of Python calls and returns, few allocations.
What the profiler costs per call (not per allocation) shows here: a
profile hook or monitoring callback on every call would dominate.
Usage: calls.py [N]
"""

import sys

import benchlib


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm1(self):
        return abs(self.x) + abs(self.y)


def squares(n):
    for i in range(n):
        yield i * i


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    total = fib(25)
    p = Point(3, -4)
    for _ in range(n):
        total += p.norm1()
    total += sum(squares(n)) % 7
    benchlib.report(calls=n * 2 + 250_000)
    print(total)


if __name__ == "__main__":
    main()
