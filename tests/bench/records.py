# SPDX-License-Identifier: MIT
"""records.py - 3M (int, str, {dict}) records, pure Python (bench row `records`).

Builds one list of RECORDS tuples, each holding an int, a fresh str and a
one-key dict, the shape of a typical record-building loop, and keeps it to
the end: the live set is millions of small Python objects, so this row shows
what the profiler costs in time and resident memory per live object.
Usage: records.py [RECORDS]
"""

import sys

import benchlib


def build(n):
    """Return n (int, str, dict) records."""
    return [(i, "name-%d" % i, {"id": i}) for i in range(n)]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
    records = build(n)
    print("records: %d" % len(records))
    benchlib.report()


if __name__ == "__main__":
    main()
