# SPDX-License-Identifier: MIT
"""c_loop.py - 10 million malloc/free pairs in C (bench row `c_loop`).

Loads the shared library built from cloop.c (path in argv[1]) and calls
fil_bench_cloop(N) once through ctypes: the measured cost is malloc/free with
fil-profile's interposition and tracking, not ctypes.  Reports the time of the
call alone as BENCH_NS_PER_PAIR.
Usage: c_loop.py LIBCLOOP.so [PAIRS]
"""

import ctypes
import sys
import time

import benchlib


def main():
    lib = ctypes.CDLL(sys.argv[1])
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
    lib.fil_bench_cloop.argtypes = [ctypes.c_long]
    lib.fil_bench_cloop.restype = ctypes.c_long
    t0 = time.perf_counter()
    failed = lib.fil_bench_cloop(pairs)
    elapsed = time.perf_counter() - t0
    if failed:
        sys.exit("c_loop: %d mallocs failed" % failed)
    print("c_loop: %d malloc/free pairs" % pairs)
    benchlib.report(ns_per_pair="%.1f" % (elapsed * 1e9 / pairs))


if __name__ == "__main__":
    main()
