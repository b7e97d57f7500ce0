# SPDX-License-Identifier: MIT
"""pure_python.py - allocation-heavy pure Python (bench row `pure_python`).

Builds a list of ROWS small objects (a tuple holding a str and a small dict),
drops it, and repeats ROUNDS times: millions of small malloc/free calls from a
handful of Python lines, the common case fil-profile must keep cheap.
Usage: pure_python.py [ROUNDS] [ROWS]
"""

import sys

import benchlib


def build(rows):
    """Return `rows` small tuples, each with a fresh str and a fresh dict."""
    out = []
    for i in range(rows):
        s = "item-%d" % i
        out.append((i, s, {"k": s, "n": i}))
    return out


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 250_000
    total = 0
    for _ in range(rounds):
        data = build(rows)
        total += len(data)
        del data
    print("pure_python: %d rows of 3 objects" % total)
    benchlib.report()


if __name__ == "__main__":
    main()
