# SPDX-License-Identifier: MIT
"""A small program to try fil-profile on: `make demo`.

At its peak it holds about 100 MiB, allocated by three functions with
clearly different shares:

    load_records    60 MiB  (one bytearray)
    build_cache     25 MiB  (25 bytearrays of 1 MiB, in a list)
    build_index    ~19 MiB  (a list of 500,000 ints)

scratch_space allocates 20 MiB too, but frees it before the peak, so it
must not show up in the peak-memory report. Runs in well under a second.
"""

MIB = 1024 * 1024


def scratch_space():
    """Temporary buffer, released before the peak."""
    tmp = bytearray(20 * MIB)
    tmp[0] = 1
    return sum(tmp[:4096])


def load_records():
    """The big one: held until the end."""
    return bytearray(60 * MIB)


def build_cache():
    return [bytearray(MIB) for _ in range(25)]


def build_index(n):
    return list(range(1000, 1000 + n))


def main():
    checksum = scratch_space()
    records = load_records()
    cache = build_cache()
    index = build_index(500_000)
    checksum += len(records) // MIB + len(cache) + index[-1] % 1000
    print("demo: done, checksum %d" % checksum)


if __name__ == "__main__":
    main()
