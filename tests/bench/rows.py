# SPDX-License-Identifier: MIT
"""rows.py - 600k dict/tuple rows x 3 rounds, pure Python (bench row `rows`).

Each round builds ROWS rows (a dict of an int, a str and a 2-tuple), groups
them into a dict of lists by key, sums a column, and drops everything:
allocation and deallocation of small objects, dicts growing, a new peak
each round.
Usage: rows.py [ROUNDS] [ROWS]
"""

import sys

import benchlib


def one_round(rows):
    """Build, group and drop `rows` rows; return a checksum."""
    table = [{"id": i, "name": "row-%d" % i, "pos": (i % 97, i % 89)} for i in range(rows)]
    groups = {}
    for row in table:
        groups.setdefault(row["pos"][0], []).append(row)
    return sum(len(g) for g in groups.values()) + sum(r["id"] for r in table[::1000])


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 600_000
    total = 0
    for _ in range(rounds):
        total += one_round(rows)
    print("rows: %d rounds, checksum %d" % (rounds, total))
    benchlib.report()


if __name__ == "__main__":
    main()
