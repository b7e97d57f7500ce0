# SPDX-License-Identifier: MIT
"""spawn_pool.py - a Pool of 8 spawn workers doing little (bench row `spawn_pool`).

What each child process of the tree costs: 8 interpreters started with the
spawn method (each one an exec'd Python that registers a state of its own
under fil-profile), 64 tiny tasks, the pool closed and joined. The time is
start-up and shut-down, not work.
Usage: spawn_pool.py [WORKERS] [TASKS]
"""

import multiprocessing as mp
import sys

import benchlib


def square(x):
    return x * x


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    with mp.get_context("spawn").Pool(workers) as pool:
        total = sum(pool.map(square, range(tasks)))
    print(total)
    benchlib.report()


if __name__ == "__main__":
    main()
