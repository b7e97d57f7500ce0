#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench.py - fil-profile's overhead, measured against plain Python.

For each workload in WORKLOADS (scripts in tests/bench/) the script is run with
plain `$FIL_PYTHON workload.py ARGS` and with `$FIL_PROFILE run --no-browser -o
TMP workload.py ARGS`, alternating (plain first on even repetitions, fil first
on odd ones, so drift and cache warmth hit both sides alike), --reps times each,
after one untimed plain warm-up run.  A row reports medians:

  - wall time of the whole command (interpreter start-up, and for fil-profile
    the launcher and report writing too: what the user waits for);
  - peak RSS of the *Python* process, which each workload prints itself as
    `BENCH_MAXRSS_KB=` on stderr (tests/bench/benchlib.py).  The fil-profile
    launcher is the parent of Python, so wait4() on it would not isolate the
    Python process; the marker measures both sides the same way.  wait4()'s
    ru_maxrss is kept as a fallback;
  - the `peak_bytes`, `call_stacks` and `state_bytes` of fil-profile's own
    summary.json.

Targets are checked and printed as PASS/MISS; the script exits 0 whatever the
figures are (it reports, it does not gate).  Exit 2 only on a usage error.

To add a row: append a Workload to WORKLOADS.  Its args may use the {cloop_so}
placeholder (path of tests/bench/cloop.c built into a temp dir) and {bench_dir}.

Usage: FIL_PROFILE=build/bin/fil-profile FIL_PYTHON=/usr/bin/python3 \
       /usr/bin/python3 scripts/bench.py [--reps N] [--only NAME,...] [--json FILE]
Standard library only.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "tests", "bench")
MIB = 1 << 20
# Both sides run with this environment; no .pyc lands in tests/bench/.
CHILD_ENV = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")


# --------------------------------------------------------------------------
# Targets: each check looks at one row's medians and says PASS or MISS.
# --------------------------------------------------------------------------

@dataclass
class MaxTimeRatio:
    """fil wall time / plain wall time must be <= limit."""
    limit: float

    def label(self):
        return "time<=%.1fx" % self.limit

    def passed(self, row):
        return row["time_ratio"] is not None and row["time_ratio"] <= self.limit


@dataclass
class MaxRSSRatio:
    """fil peak RSS / plain peak RSS must be <= limit."""
    limit: float

    def label(self):
        return "RSS<=%.2fx" % self.limit

    def passed(self, row):
        return row["rss_ratio"] is not None and row["rss_ratio"] <= self.limit


@dataclass
class MaxTimeOver:
    """fil wall time - plain wall time must be <= seconds."""
    seconds: float

    def label(self):
        return "time<=+%.1fs" % self.seconds

    def passed(self, row):
        return (row["fil_s"] is not None and row["plain_s"] is not None
                and row["fil_s"] - row["plain_s"] <= self.seconds)


@dataclass
class MinMarkerRatio:
    """fil's BENCH_<KEY> marker / plain's must be >= minimum (e.g. reach)."""
    key: str
    minimum: float

    def label(self):
        return "%s>=%.2f" % (self.key, self.minimum)

    def passed(self, row):
        r = ratio(row.get("fil_" + self.key), row.get("plain_" + self.key))
        return r is not None and r >= self.minimum


@dataclass
class MinCallStacks:
    """summary.json's call_stacks must be >= minimum."""
    minimum: int

    def label(self):
        return "stacks>=%d" % self.minimum

    def passed(self, row):
        return (row["call_stacks"] or 0) >= self.minimum


@dataclass
class Workload:
    """One bench row: a script in tests/bench/, its arguments and its targets.

    args may contain {cloop_so}, {bench_dir} and {csv}; extras names
    BENCH_<KEY> markers (lower case) to show beside the row, e.g.
    "ns_per_pair".  limit_as: RLIMIT_AS soft limit (bytes) both sides run
    under; fil_opts: options for `fil-profile run`.
    """
    name: str
    script: str
    args: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    extras: list = field(default_factory=list)
    about: str = ""
    limit_as: int = 0
    fil_opts: list = field(default_factory=list)


PURE = [MaxTimeRatio(1.3), MaxRSSRatio(1.1)]

WORKLOADS = [
    Workload("pure_python", "pure_python.py", targets=PURE,
             about="4 x 250k rows of (int, str, dict): millions of small objects"),
    Workload("records", "records.py", targets=PURE,
             about="3M (int, str, {dict}) records kept live"),
    Workload("rows", "rows.py", targets=PURE,
             about="600k dict/tuple rows x 3 rounds, grouped, dropped"),
    Workload("calls", "calls.py", extras=["calls"],
             about="3M Python calls (recursion, methods, a generator), little allocation"),
    Workload("numpy", "numpy_arrays.py", targets=[MaxTimeOver(0.1)],
             about="50-200 MiB float64 arrays, sin/cos/exp/sqrt, freed each round"),
    Workload("pandas", "pandas_csv.py", args=["{csv}"], targets=[MaxTimeRatio(1.3)],
             about="read_csv of a ~100 MB CSV, three groupbys"),
    Workload("c_loop", "c_loop.py", args=["{cloop_so}"], extras=["ns_per_pair"],
             about="10M malloc/free pairs in C, one ctypes call"),
    Workload("many_peaks", "many_peaks.py", targets=[MaxTimeRatio(2.0)],
             about="1000 rounds: +1000 random-size buffers, -300; a new peak each round"),
    Workload("many_stacks", "many_stacks.py", args=["--stacks", "100000"],
             targets=[MinCallStacks(100_000)], extras=["stacks"],
             about="100,000 distinct call stacks, each holding a 64-byte bytearray"),
    Workload("reach", "reach.py", targets=[MinMarkerRatio("reach", 0.95)], extras=["reach"],
             limit_as=1 << 30, fil_opts=["--on-oom=continue"],
             about="ulimit -Sv 1 GiB: 2-tuples appended until MemoryError; how far it gets"),
    Workload("spawn_pool", "spawn_pool.py", targets=[MaxTimeRatio(1.5)],
             about="Pool of 8 spawn workers, 64 tiny tasks: each child profiled on its own"),
    Workload("child_start", "child_start.py",
             extras=["child_faults", "fork_faults", "child_ms"],
             about="8 exec'd, then 8 forked children: the faults each takes to start"),
]


def make_csv(tmp, rows=2_000_000):
    """Write the pandas row's input (~100 MB) into tmp; return its path."""
    path = os.path.join(tmp, "bench.csv")
    cats = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    with open(path, "w") as f:
        f.write("key,cat,x,y,text\n")
        for i in range(rows):
            k = (i * 7919) % 50_000
            f.write("%d,%s,%.6f,%.3f,item number %d of the file\n"
                    % (k, cats[i % 8], (i % 1000) / 7.0, (i % 313) * 1.5, i))
    return path


# --------------------------------------------------------------------------
# Running one command
# --------------------------------------------------------------------------

def parse_markers(text):
    """Return {key: value} for every `BENCH_KEY=value` line of text (keys lower case)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("BENCH_") and "=" in line:
            key, _, value = line[len("BENCH_"):].partition("=")
            out[key.strip().lower()] = value.strip()
    return out


def kill_group(pgid):
    """SIGKILL process group pgid if it still exists (run_once's timeout)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_once(cmd, cwd, timeout, limit_as=0):
    """Run cmd with stdout discarded; return wall seconds, exit code, stderr, and
    wait4's maxrss and user+system CPU seconds.

    The CPU time covers the launcher and the Python it waited for, so it
    compares like with like and is less disturbed than wall time when other
    jobs share the CPUs.  The child gets its own process group so a timeout
    kills the launcher and the Python it started together.
    """
    def limit():
        if limit_as:
            import resource
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, hard))

    with tempfile.TemporaryFile(mode="w+b") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=CHILD_ENV, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, preexec_fn=limit)
        timer = threading.Timer(timeout, kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return {"wall": wall, "rc": proc.returncode, "wait4_maxrss_kb": usage.ru_maxrss,
            "cpu": usage.ru_utime + usage.ru_stime, "stderr": stderr}


def read_summary(outdir):
    """Return fil-profile's summary.json under outdir/latest as a dict, or {}."""
    try:
        with open(os.path.join(outdir, "latest", "summary.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def measure(kind, wl, ctx, rep, args):
    """Run workload wl once as `plain` or `fil`; return one sample dict."""
    script = os.path.join(BENCH_DIR, wl.script)
    wl_args = [a.format(**ctx) for a in wl.args]
    outdir = None
    if kind == "plain":
        cmd = [args.python, script] + wl_args
    else:
        outdir = os.path.join(ctx["tmp"], "fil-%s-%d" % (wl.name, rep))
        cmd = [args.fil, "run", "--no-browser", "-o", outdir] + wl.fil_opts + [script] + wl_args
    r = run_once(cmd, ctx["tmp"], args.timeout, wl.limit_as)
    r["kind"] = kind
    r["markers"] = parse_markers(r["stderr"])
    r["summary"] = read_summary(outdir) if outdir else {}
    if outdir and not args.keep:
        shutil.rmtree(outdir, ignore_errors=True)
    r["maxrss_kb"] = int(r["markers"].get("maxrss_kb", r["wait4_maxrss_kb"]))
    r["ok"] = (r["rc"] == 0 and "maxrss_kb" in r["markers"]
               and (kind == "plain" or bool(r["summary"])))
    return r


# --------------------------------------------------------------------------
# Aggregation and printing
# --------------------------------------------------------------------------

def median_of(samples, get):
    """Median of get(sample) over samples whose value is not None, or None."""
    vals = [v for v in (get(s) for s in samples) if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    """a / b, or None when either is missing or b is 0."""
    return a / b if a is not None and b else None


def marker_float(key):
    """Getter of a sample's BENCH_<KEY> marker as a float (None if absent)."""
    def get(s):
        try:
            return float(s["markers"][key])
        except (KeyError, ValueError):
            return None
    return get


def summarize(wl, plain, fil):
    """Fold the samples of one workload into one row of medians and verdicts."""
    row = {"name": wl.name, "about": wl.about,
           "ok": all(s["ok"] for s in plain + fil)}
    row["failures"] = ["%s run: exit status %d%s; end of stderr:\n%s"
                       % (s["kind"], s["rc"], " (killed: timeout?)" if s["rc"] == -9 else "",
                          s["stderr"][-600:]) for s in plain + fil if not s["ok"]]
    plain = [s for s in plain if s["ok"]]  # figures come from complete runs only
    fil = [s for s in fil if s["ok"]]
    for kind, samples in (("plain", plain), ("fil", fil)):
        row[kind + "_s"] = median_of(samples, lambda s: s["wall"])
        row[kind + "_cpu_s"] = median_of(samples, lambda s: s["cpu"])
        row[kind + "_work_s"] = median_of(samples, marker_float("work_seconds"))
        row[kind + "_rss_kb"] = median_of(samples, lambda s: s["maxrss_kb"])
        for key in wl.extras:
            row["%s_%s" % (kind, key)] = median_of(samples, marker_float(key))
    for key in ("peak_bytes", "call_stacks", "state_bytes", "duration_seconds",
                "tracked_allocations", "emergency_arena_bytes"):
        row[key] = median_of(fil, lambda s, k=key: s["summary"].get(k))
    row["time_ratio"] = ratio(row["fil_s"], row["plain_s"])
    row["cpu_ratio"] = ratio(row["fil_cpu_s"], row["plain_cpu_s"])
    row["work_ratio"] = ratio(row["fil_work_s"], row["plain_work_s"])
    row["rss_ratio"] = ratio(row["fil_rss_kb"], row["plain_rss_kb"])
    row["targets"] = [t.label() for t in wl.targets]
    if not row["ok"]:
        row["verdict"] = "FAIL"
    elif wl.targets:
        row["verdict"] = "PASS" if all(t.passed(row) for t in wl.targets) else "MISS"
    else:
        row["verdict"] = "-"
    return row


def fmt(v, spec, suffix=""):
    """format(v, spec) + suffix, or n/a when there is no value."""
    return "n/a" if v is None else format(v, spec) + suffix


def mib(kb_or_bytes, div):
    return None if kb_or_bytes is None else kb_or_bytes / div


def print_rows(head, widths, rows):
    """Print a table: first column left-aligned, the others right-aligned."""
    def line(cells):
        return "  ".join("%-*s" % (w, c) if i == 0 else "%*s" % (w, c)
                         for i, (w, c) in enumerate(zip(widths, cells)))
    print(line(head))
    print("-" * len(line(head)))
    for cells in rows:
        print(line(cells))


def print_table(rows):
    """Print the main table, then the fil runs' summary.json figures and CPU times."""
    print_rows(("workload", "plain s", "fil s", "ratio", "plain RSS", "fil RSS", "RSS x",
                "fil peak", "target", "result"),
               (12, 8, 8, 6, 10, 10, 6, 10, 22, 6),
               [(r["name"], fmt(r["plain_s"], ".2f"), fmt(r["fil_s"], ".2f"),
                 fmt(r["time_ratio"], ".2f"),
                 fmt(mib(r["plain_rss_kb"], 1024), ".1f", "M"),
                 fmt(mib(r["fil_rss_kb"], 1024), ".1f", "M"),
                 fmt(r["rss_ratio"], ".2f"),
                 fmt(mib(r["peak_bytes"], MIB), ".1f", "M"),
                 ",".join(r["targets"]) or "-", r["verdict"]) for r in rows])
    print()
    print("fil runs' summary.json (medians); CPU = user+sys of the whole command;")
    print("work = in-script time, without start-up and report writing:")
    table = []
    for r in rows:
        extra = ""
        if "plain_ns_per_pair" in r:
            extra = "ns/pair %s -> %s" % (fmt(r["plain_ns_per_pair"], ".1f"),
                                          fmt(r["fil_ns_per_pair"], ".1f"))
        if "plain_reach" in r:
            extra = "reach %s -> %s (%s)" % (fmt(r["plain_reach"], ".0f"), fmt(r["fil_reach"], ".0f"),
                                             fmt(ratio(r["fil_reach"], r["plain_reach"]), ".3f"))
        if "plain_child_faults" in r:
            extra = "faults: exec'd %s -> %s, forked %s -> %s; first line %s -> %s ms" % (
                fmt(r["plain_child_faults"], ".0f"), fmt(r["fil_child_faults"], ".0f"),
                fmt(r["plain_fork_faults"], ".0f"), fmt(r["fil_fork_faults"], ".0f"),
                fmt(r["plain_child_ms"], ".1f"), fmt(r["fil_child_ms"], ".1f"))
        table.append((r["name"], fmt(r["call_stacks"], ".0f"), fmt(r["state_bytes"], ".0f"),
                      fmt(r["tracked_allocations"], ".0f"),
                      fmt(mib(r["emergency_arena_bytes"], MIB), ".1f", "M"),
                      "%s->%s" % (fmt(r["plain_cpu_s"], ".2f"), fmt(r["fil_cpu_s"], ".2f")),
                      fmt(r["cpu_ratio"], ".2f"),
                      "%s->%s" % (fmt(r["plain_work_s"], ".2f"), fmt(r["fil_work_s"], ".2f")),
                      fmt(r["work_ratio"], ".2f"), extra))
    print_rows(("workload", "call_stacks", "state_bytes", "allocations", "arena",
                "CPU s", "CPU x", "work s", "work x", ""),
               (12, 11, 11, 11, 8, 11, 6, 11, 6, 1), table)
    for r in rows:
        for tail in r["failures"][:2]:
            print("\n%s: %s" % (r["name"], tail))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def build_cloop(tmp):
    """Compile tests/bench/cloop.c into tmp; return the .so path."""
    so = os.path.join(tmp, "libfilbenchcloop.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", so,
                    os.path.join(BENCH_DIR, "cloop.c")], check=True)
    return so


def parse_args():
    ap = argparse.ArgumentParser(description="fil-profile overhead benchmark")
    ap.add_argument("--reps", type=int, default=3, help="runs per side (default 3)")
    ap.add_argument("--only", default="", help="comma-separated workload names (\"oom\": the out-of-memory figures)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--keep", action="store_true", help="keep fil-profile's reports")
    ap.add_argument("--no-warmup", action="store_true", help="skip the plain warm-up run")
    args = ap.parse_args()
    args.fil = os.environ.get("FIL_PROFILE", os.path.join(ROOT, "build/bin/fil-profile"))
    args.python = os.environ.get("FIL_PYTHON", "/usr/bin/python3")
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - {w.name for w in WORKLOADS} - {"oom"}
    if unknown or args.reps < 1 or not os.access(args.fil, os.X_OK):
        ap.error("unknown workload %s" % ",".join(sorted(unknown)) if unknown else
                 "--reps must be >= 1" if args.reps < 1 else
                 "FIL_PROFILE=%s is not executable (run make)" % args.fil)
    args.workloads = [w for w in WORKLOADS if not names or w.name in names]
    return args


# --------------------------------------------------------------------------
# Out-of-memory figures: the in-process dump and the post-mortem report for a
# program holding 100,000 distinct call stacks.
# --------------------------------------------------------------------------

def _latest_summary(out):
    with open(os.path.join(out, "latest", "summary.json")) as f:
        return json.load(f)


def bench_dump(stacks, tmp):
    """Run many_stacks then a 1 PiB request: the dump's own duration and size."""
    out = os.path.join(tmp, "dump")
    cmd = [os.environ["FIL_PROFILE"], "run", "--no-browser", "-o", out,
           os.path.join(BENCH_DIR, "many_stacks.py"), "--stacks", str(stacks), "--then", "oom"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=CHILD_ENV, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    s = _latest_summary(out)
    oom = s.get("out_of_memory") or {}
    return {"exit": p.returncode, "wall": wall, "dump_ms": oom.get("dump_ms"),
            "call_stacks": s.get("call_stacks"), "arena": s.get("emergency_arena_bytes"),
            "state": s.get("state_bytes")}


def _python_child(pid):
    """The pid of the interpreter the launcher pid started."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        kids = f.read().split()
    return int(kids[0]) if kids else None


def bench_postmortem(stacks, tmp):
    """SIGKILL the program once its stacks are built; time until the report is on disk."""
    out = os.path.join(tmp, "postmortem")
    cmd = [os.environ["FIL_PROFILE"], "run", "--no-browser", "-o", out,
           os.path.join(BENCH_DIR, "many_stacks.py"), "--stacks", str(stacks), "--then", "sleep"]
    p = subprocess.Popen(cmd, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    for line in p.stdout:
        if line.startswith("READY"):
            break
    child = _python_child(p.pid)
    t0 = time.perf_counter()
    os.kill(child, signal.SIGKILL)
    p.wait(timeout=600)
    elapsed = time.perf_counter() - t0
    s = _latest_summary(out)
    return {"exit": p.returncode, "report_s": elapsed, "state": s.get("state_bytes"),
            "call_stacks": s.get("call_stacks"),
            "source": (s.get("out_of_memory") or {}).get("source")}


def print_oom_figures(stacks):
    tmp = tempfile.mkdtemp(prefix="fil-bench-oom-")
    try:
        d = bench_dump(stacks, tmp)
        k = bench_postmortem(stacks, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mib = lambda b: "%.1f MiB" % ((b or 0) / MIB)
    print()
    print("out-of-memory figures for a program holding %d call stacks:" % stacks)
    ok = d["dump_ms"] is not None and d["dump_ms"] < 1000 and d["exit"] == 53
    print("  in-process dump: exit %s, %s ms to write (target < 1000 ms: %s), 0 bytes "
          "allocated (any malloc from the dump aborts the process; exit 53 proves none), "
          "arena %s, %s call stacks"
          % (d["exit"], d["dump_ms"], "PASS" if ok else "MISS", mib(d["arena"]), d["call_stacks"]))
    ok = k["report_s"] < 2.0 and k["exit"] == -9 and k["source"] == "post-mortem"  # the launcher dies of it too
    print("  post-mortem: exit %s, %.2f s from SIGKILL to the report on disk (target < 2 s: %s), "
          "state file %s for %s call stacks"
          % (k["exit"], k["report_s"], "PASS" if ok else "MISS", mib(k["state"]),
             k["call_stacks"]))


def main():
    args = parse_args()
    load0 = os.getloadavg()[0]
    version = subprocess.run([args.python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip() or "?"
    print("fil-profile bench: %s, python %s (%s), %d reps, %d CPUs, load average %.2f"
          % (args.fil, args.python, version, args.reps, os.cpu_count() or 0, load0))
    if load0 > 1:
        print("NOTE: load average %.2f > 1 at start: the machine is busy, "
              "ratios may be noisy" % load0)
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="fil-bench-")
    rows = []
    try:
        ctx = {"tmp": tmp, "bench_dir": BENCH_DIR}
        if any("{cloop_so}" in a for w in args.workloads for a in w.args):
            ctx["cloop_so"] = build_cloop(tmp)
        if any("{csv}" in a for w in args.workloads for a in w.args):
            ctx["csv"] = make_csv(tmp)
        for wl in args.workloads:
            print("  %-12s %s" % (wl.name, wl.about), flush=True)
            if not args.no_warmup:
                measure("plain", wl, ctx, -1, args)
            samples = {"plain": [], "fil": []}
            for rep in range(args.reps):
                order = ("plain", "fil") if rep % 2 == 0 else ("fil", "plain")
                for kind in order:
                    samples[kind].append(measure(kind, wl, ctx, rep, args))
            rows.append(summarize(wl, samples["plain"], samples["fil"]))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table(rows)
    if not args.only or "oom" in args.only.split(","):
        print_oom_figures(100_000)
    load1 = os.getloadavg()[0]
    print("\n%.0f s total; load average %.2f at start, %.2f at end%s"
          % (time.perf_counter() - started, load0, load1,
             " (busy machine: ratios may be noisy)" if max(load0, load1) > 1 else ""))
    if args.keep:
        print("reports kept in %s" % tmp)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
