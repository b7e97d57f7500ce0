# SPDX-License-Identifier: MIT
"""numpy_arrays.py - a numpy workload of a few big arrays (bench row `numpy`).

Allocates, computes on and frees 50-200 MiB float64 arrays (ROUNDS x 5) with
elementwise math: few, large allocations (numpy's data buffers go through
malloc and, at this size, mmap), where the time is spent in numpy's loops and
the page faults, so fil-profile's per-allocation cost must be invisible.
Usage: numpy_arrays.py [ROUNDS]
"""

import sys

import numpy as np

import benchlib

MIB = 1 << 20


def one_round(seed):
    """Allocate 50..200 MiB arrays, compute on them, free them; return a checksum.

    Five fresh arrays per round (100, 100, 200, 100 and 50 MiB: about 550 MiB
    mapped, faulted in and unmapped), with most of the math done in place so
    the time goes to numpy's loops more than to the kernel zeroing new pages
    (page-fault cost varies a lot on a shared VM and would drown the ratio).
    """
    n = 100 * MIB // 8
    a = np.linspace(0.0, 1.0 + seed, n)
    b = np.sin(a)
    np.cos(a, out=a)
    b *= a
    np.exp(b, out=b)
    np.sqrt(b, out=b)
    np.sin(b, out=b)
    big = np.concatenate((a, b))
    del a, b
    pairs = big.reshape(2, n).sum(axis=0)
    np.exp(pairs, out=pairs)
    half = big[: n // 2] * 0.5
    total = float(big.sum() + half.sum() + pairs.max())
    del big, pairs, half
    return total


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    checksum = 0.0
    for i in range(rounds):
        checksum += one_round(i)
    print("numpy: %d rounds, checksum %.6g" % (rounds, checksum))
    benchlib.report()


if __name__ == "__main__":
    main()
