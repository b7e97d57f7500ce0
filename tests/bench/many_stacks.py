# SPDX-License-Identifier: MIT
"""many_stacks.py - N distinct call stacks, each holding memory (bench row `many_stacks`).

Generates and execs a module of DEPTH levels of FANOUT functions each, FANOUT =
ceil(N ** (1/DEPTH)).  The root calls level-1 function j from its line j; a
level-d function calls level-(d+1) function j from its line j; a last-level
function allocates one SIZE-byte bytearray and keeps it live.  Every path is a
different sequence of (function, line) frames, so the program ends with N
distinct call stacks holding memory at the peak (FANOUT**DEPTH >= N paths; the
leaves stop allocating after N).  Stresses call-stack interning, the peak
snapshot, and report rendering (e.g. 100,000 stacks with the default DEPTH 3
uses 3 x 47 functions).
Usage: many_stacks.py [--stacks N] [--depth D] [--size BYTES]
"""

import argparse
import time

import benchlib

FILENAME = "<many_stacks generated>"


def fanout_for(stacks, depth):
    """Smallest FANOUT with FANOUT ** depth >= stacks."""
    f = max(1, int(round(stacks ** (1.0 / depth))))
    while f ** depth < stacks:
        f += 1
    return f


def generate(fanout, depth, size):
    """Return Python source for the root `run` and DEPTH levels of FANOUT functions."""
    out = ["def run():"]
    out += ["    f1_%d()" % j for j in range(fanout)]
    for d in range(1, depth + 1):
        for i in range(fanout):
            out.append("def f%d_%d():" % (d, i))
            if d < depth:
                out += ["    f%d_%d()" % (d + 1, j) for j in range(fanout)]
            else:
                out += ["    if BUDGET[0] > 0:",
                        "        BUDGET[0] -= 1",
                        "        KEEP.append(bytearray(%d))" % size]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", type=int, default=100_000)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--then", choices=["exit", "oom", "sleep"], default="exit",
                    help="after building the stacks: exit, ask for 1 PiB (an out-of-memory "
                         "dump), or print READY and sleep (to be killed)")
    args = ap.parse_args()
    fanout = fanout_for(args.stacks, args.depth)
    namespace = {"BUDGET": [args.stacks], "KEEP": []}
    code = compile(generate(fanout, args.depth, args.size), FILENAME, "exec")
    exec(code, namespace)
    namespace["run"]()
    kept = len(namespace["KEEP"])
    print("many_stacks: %d stacks holding %d bytes each (fanout %d, depth %d, %d functions)"
          % (kept, args.size, fanout, args.depth, 1 + fanout * args.depth))
    benchlib.report(stacks=kept)
    if args.then == "oom":
        KEEP_TOO = bytearray(1 << 50)  # noqa: F841 - fails: the dump is measured
    elif args.then == "sleep":
        print("READY", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
