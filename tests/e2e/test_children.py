# SPDX-License-Identifier: MIT
"""The whole process tree (issue 12): every Python process the program
starts is profiled with a report of its own in children/ of the parent's
result folder, listed in the parent's summary.json and index.html; other
programs run as without the profiler.

- multiprocessing with the fork, spawn and forkserver start methods: the
  worker's 40 MiB are in its own report at its line (within 2%), not in the
  parent's; its row says exit 0 and its peak;
- subprocess.run([sys.executable, child.py]) with exit status 3, and a
  Python grandchild below `sh -c` (LD_PRELOAD must reach it through sh);
- ProcessPoolExecutor (spawn): every worker listed;
- the tree's view: two workers holding 30 and 50 MiB while the parent
  holds 20 MiB; tree-peak.prof charges each worker's line with what it held
  (within 2%) under its own process frame, and summary.json's per-process
  figures add up to the tree's total;
- non-Python children (sh, env) print the same environment, the same
  output and exit status as without the profiler, and os.environ has none
  of the profiler's variables; a user's own LD_PRELOAD is kept;
- --no-children: the main process only, children run unprofiled;
- a child with 32,768 distinct call stacks: its own .prof keeps to the
  child budget (2 MiB), sums exactly to its peak, and keeps its big line.
"""

import json
import os
import re
from pathlib import Path

import pytest

MIB = 1024 * 1024

WORKER = """
import multiprocessing as mp
import sys

MIB = 1024 * 1024


def work(n):
    held = bytearray(n * MIB)  # WORK
    return len(held) // MIB


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    p = ctx.Process(target=work, args=(40,))
    p.start()
    p.join()
    print("worker exit", p.exitcode)
    keep = bytearray(10 * MIB)  # PARENT
    print("parent", len(keep) // MIB)
"""


def children_of(summary, pred=lambda c: True):
    return [c for c in summary["children"] if pred(c)]


def folder(result, row):
    return Path(result) / row["folder"]


def worker_row(fp, result, summary, line):
    """The child whose own report charges the WORK line, with its prof."""
    hits = []
    for c in summary["children"]:
        entries = fp.parse_prof(folder(result, c) / "peak-memory.prof")
        got = fp.bytes_last_frame(entries, "script.py", line)
        if got:
            hits.append((c, got, entries))
    assert len(hits) == 1, [c["folder"] for c in summary["children"]]
    return hits[0]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_start_methods(fp, tmp_path, method):
    proc, result = fp.run_fil(tmp_path, WORKER, method)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"worker exit 0\nparent 10\n"
    entries, summary = fp.check_peak_report(result)
    line = fp.line_of(WORKER, "WORK")
    # The parent's report has its own 10 MiB, not the worker's 40.
    assert fp.bytes_last_frame(entries, "script.py", line) == 0, fp.fmt_prof(entries)
    assert fp.within(fp.bytes_last_frame(entries, "script.py", fp.line_of(WORKER, "PARENT")),
                     10 * MIB, 0.02)
    row, got, child_entries = worker_row(fp, result, summary, line)
    assert fp.within(got, 40 * MIB, 0.02), fp.fmt_prof(child_entries)
    assert row["exit_status"] == 0 and row["signal"] is None, row
    assert row["kind"] == ("exec" if method == "spawn" else "fork"), row  # forkserver forks
    assert row["out_of_memory"] is False and row["running"] is False, row
    assert 40 * MIB <= row["peak_bytes"] < 60 * MIB, row
    assert re.fullmatch(r"children/%d-[A-Za-z0-9._-]+" % row["pid"], row["folder"]), row
    for name in fp.PEAK_FILES:
        assert (folder(result, row) / name).is_file(), name
    child_summary = fp.load_summary(folder(result, row))
    assert child_summary["peak_bytes"] == row["peak_bytes"]
    assert child_summary["children"] == []
    # its own peak RSS, also after the os._exit that fork workers end with
    assert 40 * MIB <= (child_summary["peak_rss_bytes"] or 0) < 100 * MIB, child_summary
    # The parent's page lists it with a link to its report.
    page = (result / "index.html").read_text()
    assert 'href="%s/index.html"' % row["folder"] in page
    # One result folder at the top: children never make their own.
    assert [p.name for p in (tmp_path / "fil-out").iterdir() if p.name != "latest"] == [result.name]


SUBPROCESS = """
import os
import subprocess
import sys

child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
r = subprocess.run([sys.executable, child, "25"])
print("child returned", r.returncode)
# A Python grandchild below a shell, with an environment of the program's own.
env = dict(os.environ, GREETING="hi")
r = subprocess.run(["sh", "-c", '"$0" "$1" 15; echo "sh saw $?"', sys.executable, child], env=env)
print("sh returned", r.returncode)
"""

CHILD = """
import os
import sys

held = bytearray(int(sys.argv[1]) * 1024 * 1024)  # CHILD
print("child", sys.argv[1], os.environ.get("GREETING"), flush=True)
sys.exit(3)
"""


def test_subprocess_and_grandchild_below_sh(fp, tmp_path):
    fp.write_script(tmp_path, CHILD, name="child.py")
    proc, result = fp.run_fil(tmp_path, SUBPROCESS)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == (b"child 25 None\nchild returned 3\nchild 15 hi\nsh saw 3\n"
                           b"sh returned 0\n"), proc.stdout
    _, summary = fp.check_peak_report(result)
    line = fp.line_of(CHILD, "CHILD")
    rows = summary["children"]
    assert len(rows) == 2, rows  # the two interpreters; the shell is not listed
    sizes = []
    for row in rows:
        assert row["exit_status"] == 3, row
        assert row["kind"] == "exec", row
        assert row["command"][1:] in (["%s" % (tmp_path / "child.py"), "25"],
                                      ["%s" % (tmp_path / "child.py"), "15"]), row
        entries = fp.parse_prof(folder(result, row) / "peak-memory.prof")
        sizes.append(fp.bytes_last_frame(entries, "child.py", line))
    assert fp.within(sorted(sizes)[0], 15 * MIB, 0.02), sizes
    assert fp.within(sorted(sizes)[1], 25 * MIB, 0.02), sizes
    # The grandchild's parent is the shell, not the program.
    assert rows[0]["parent_pid"] != rows[1]["parent_pid"], rows


POOL = """
import concurrent.futures as cf
import multiprocessing as mp


def square(x):
    return x * x


if __name__ == "__main__":
    with cf.ProcessPoolExecutor(3, mp_context=mp.get_context("spawn")) as ex:
        print(sorted(ex.map(square, range(12))))
"""


def test_process_pool_executor(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, POOL)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"[0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121]\n"
    _, summary = fp.check_peak_report(result)
    workers = children_of(summary, lambda c: "spawn_main" in " ".join(c["command"]))
    assert 1 <= len(workers) <= 3, summary["children"]
    for w in workers:
        assert w["exit_status"] is not None and not w["out_of_memory"], w
        assert (folder(result, w) / "summary.json").is_file()


TREE = """
import multiprocessing as mp
import sys

MIB = 1024 * 1024


def hold(n, ready, release):
    held = bytearray(n * MIB)  # HOLD
    ready.release()
    release.wait()
    return len(held)


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    ready, release = ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=hold, args=(n, ready, release)) for n in (30, 50)]
    for p in procs:
        p.start()
    mine = bytearray(20 * MIB)  # MINE
    ready.acquire()
    ready.acquire()
    import time
    time.sleep(0.3)  # several samples of the launcher while all three hold
    release.set()
    for p in procs:
        p.join()
    del mine
    print("done", [p.exitcode for p in procs])
"""


def test_tree_view_per_process(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, TREE)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"done [0, 0]\n"
    _, summary = fp.check_peak_report(result)
    tree = summary["process_tree"]
    assert tree is not None and tree["sample_interval_seconds"] == 0.01, tree
    peak = tree["peak"]
    held = {p["pid"]: p["held_bytes"] for p in peak["processes"]}
    assert sum(held.values()) == peak["tracked_bytes"], peak
    assert peak["graph"] == "tree-peak.svg"
    fp.check_svg(result / "tree-peak.svg")
    # The tree's graph: each process's first frame names it; the lines.
    entries = fp.parse_prof(result / "tree-peak.prof")
    roots = {frames[0] for frames, _ in entries}
    hold_line, mine_line = fp.line_of(TREE, "HOLD"), fp.line_of(TREE, "MINE")
    by_root = {}
    for frames, n in entries:
        f = fp.parse_frame(frames[-1])
        if f and fp.same_file(f[0], "script.py") and f[1] in (hold_line, mine_line):
            by_root.setdefault(frames[0], 0)
            by_root[frames[0]] += n
    got = sorted(by_root.values())
    assert len(got) == 3, (by_root, peak["seconds"], held)
    for want, n in zip((20 * MIB, 30 * MIB, 50 * MIB), got):
        assert fp.within(n, want, 0.02), (got, by_root)
    assert all(fp.is_bracket_frame(r) and r.startswith("[pid ") for r in roots), roots
    main_root = [r for r in roots if r.endswith("(the program)]")]
    assert len(main_root) == 1 and main_root[0].startswith("[pid %d:" % peak["processes"][0]["pid"])
    assert fp.within(by_root[main_root[0]], 20 * MIB, 0.02), by_root
    # Each process's held figure covers its line's bytes, plus its interpreter's own.
    for root, n in by_root.items():
        pid = int(re.match(r"\[pid (\d+):", root).group(1))
        assert n <= held[pid] < n + 12 * MIB, (root, n, held[pid])
    page = (result / "index.html").read_text()
    assert 'data="tree-peak.svg"' in page
    assert "sampled every 10 ms" in page


ENV_PROBE = """
import os
import subprocess
import sys

launcher = ("FIL_STATE_FD", "FIL_LIBDIR", "FIL_CHILDREN", "FIL_RESULT_DIR", "FIL_OOM_MODE")
print("python sees", [k for k in launcher if k in os.environ], os.environ.get("LD_PRELOAD"))
r = subprocess.run(["sh", "-c", 'echo "sh sees [$LD_PRELOAD]"; env | sort; exit 7'])
print("sh exit", r.returncode)
r = subprocess.run(["env"], stdout=subprocess.PIPE, env={"ONLY": "this"})
print("empty env child sees", r.stdout.decode().split())
"""


def run_plain(fp, tmp_path, text, env=None):
    import subprocess
    script = fp.write_script(tmp_path, text, name="plain.py")
    return subprocess.run([fp.PYTHON, str(script)], cwd=str(tmp_path), env=fp.base_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@pytest.mark.parametrize("preload", ["none", "user's own"])
def test_non_python_children_unaffected(fp, tmp_path, preload):
    env = None
    if preload != "none":
        lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
        if not os.path.exists(lib):
            pytest.skip("no %s to preload" % lib)
        env = {"LD_PRELOAD": lib}
    plain = run_plain(fp, tmp_path, ENV_PROBE, env)
    proc, result = fp.run_fil(tmp_path, ENV_PROBE, env=env)
    assert proc.returncode == plain.returncode == 0, fp.describe(proc)
    assert proc.stdout == plain.stdout, (proc.stdout.decode(), plain.stdout.decode())
    assert proc.stdout.startswith(b"python sees [] ")
    assert b"libfilpreload" not in proc.stdout
    assert b"sh exit 7\n" in proc.stdout
    assert b"empty env child sees ['ONLY=this']" in proc.stdout
    _, summary = fp.check_peak_report(result)
    assert summary["children"] == [], summary["children"]  # no Python child here


PRELOAD_PROBE = """
import os
import subprocess
import sys

print("python sees", repr(os.environ.get("LD_PRELOAD")), "LD_PRELOAD" in os.environ)
subprocess.run(["sh", "-c", 'echo "sh sees [${LD_PRELOAD-unset}]"'])
subprocess.run([sys.executable, "-c", "import os; print('child sees', repr(os.environ.get('LD_PRELOAD')))"])
"""


@pytest.mark.parametrize("value", ["", "libm.so.6 libdl.so.2", " libm.so.6:"],
                         ids=["empty", "space-separated", "odd-separators"])
def test_users_ld_preload_is_seen_as_it_was(fp, tmp_path, value):
    # The program, a shell and a Python child see the user's value byte for
    # byte, as without the profiler: set even when empty, separators kept.
    env = {"LD_PRELOAD": value}
    plain = run_plain(fp, tmp_path, PRELOAD_PROBE, env)
    proc, result = fp.run_fil(tmp_path, PRELOAD_PROBE, env=env)
    assert proc.returncode == plain.returncode == 0, fp.describe(proc)
    assert proc.stdout == plain.stdout, (proc.stdout.decode(), plain.stdout.decode())
    _, summary = fp.check_peak_report(result)
    assert len(summary["children"]) == 1, summary["children"]  # the Python child is profiled


def test_no_children(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, WORKER, "spawn", extra_opts=["--no-children"])
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"worker exit 0\nparent 10\n"
    _, summary = fp.check_peak_report(result)
    assert summary["children"] == [] and summary["process_tree"] is None
    assert summary["options"]["children"] is False
    assert not (result / "children").exists()
    plain = run_plain(fp, tmp_path, ENV_PROBE)
    proc, _ = fp.run_fil(tmp_path, ENV_PROBE, extra_opts=["--no-children"])
    assert proc.stdout == plain.stdout, (proc.stdout.decode(), plain.stdout.decode())


MANY_STACKS = '''
import subprocess
import sys

CHILD = """
keep = []


def branch(depth, bits):
    if depth == 0:
        keep.append(bytearray(64))
    elif bits & 1:
        branch(depth - 1, bits >> 1)  # LEFT
    else:
        branch(depth - 1, bits >> 1)  # RIGHT


for bits in range(1 << 15):
    branch(15, bits)
big = bytearray(30 * 1024 * 1024)  # BIG
"""

subprocess.run([sys.executable, "-c", CHILD], check=True)
'''


def test_child_prof_keeps_to_its_budget(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, MANY_STACKS)
    assert proc.returncode == 0, fp.describe(proc)
    _, summary = fp.check_peak_report(result)
    (row,) = summary["children"]
    prof = folder(result, row) / "peak-memory.prof"
    assert prof.stat().st_size <= 2 * MIB, prof.stat().st_size
    entries = fp.parse_prof(prof)
    assert sum(n for _, n in entries) == row["peak_bytes"]
    assert any("smaller call stacks" in frames[-1] for frames, _ in entries if frames)
    assert fp.within(fp.bytes_last_frame(entries, "<string>", 16), 30 * MIB, 0.02)


MANY_CHILDREN = """
import os

for i in range(40):
    pid = os.fork()
    if pid == 0:
        keep = bytearray(100000)  # CHILD
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 3, status
print("forked", i + 1)
"""


def test_more_children_than_the_registry_first_holds(fp, tmp_path):
    """The registry starts with room for 16 children and grows: the 17th
    fork child crashed the launcher (SIGSEGV, no report) when the grown
    array's new slots were read as spare entries."""
    proc, result = fp.run_fil(tmp_path, MANY_CHILDREN)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"forked 40\n"
    _, summary = fp.check_peak_report(result)
    rows = summary["children"]
    assert len(rows) == 40, [c["folder"] for c in rows]
    assert len({c["pid"] for c in rows}) == 40
    assert all(c["exit_status"] == 3 for c in rows), [c["exit_status"] for c in rows]


TERMINATED = """
import os
import signal
import subprocess
import sys

r = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
print("child", r.returncode)
"""


def test_child_death_names_its_signal(fp, tmp_path):
    proc, result = fp.run_fil(tmp_path, TERMINATED)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"child -15\n"
    rows = fp.load_summary(result)["children"]
    assert len(rows) == 1 and rows[0]["signal"] == "SIGTERM", rows
    said = "=fil-profile= Child process %d died of SIGTERM: " % rows[0]["pid"]
    assert said in proc.stderr.decode(), fp.describe(proc)


TERMINATED_MANY = """
import subprocess
import sys

procs = [subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                          stdout=subprocess.PIPE) for _ in range(5)]
for p in procs:
    p.stdout.readline()
for p in procs:
    p.terminate()
print([p.wait() for p in procs])
"""


def test_children_stopped_alike_share_one_line(fp, tmp_path):
    """A pool stops its workers with SIGTERM: five such deaths are one
    line naming them all, not five."""
    proc, result = fp.run_fil(tmp_path, TERMINATED_MANY)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"[-15, -15, -15, -15, -15]\n"
    rows = fp.load_summary(result)["children"]
    assert len(rows) == 5 and all(r["signal"] == "SIGTERM" for r in rows), rows
    err = proc.stderr.decode()
    lines = [l for l in err.splitlines() if "died of SIGTERM" in l]
    assert len(lines) == 1, fp.describe(proc)
    head, _, pids = lines[0].partition("=fil-profile= 5 child processes died of SIGTERM: ")
    assert head == "" and pids, fp.describe(proc)
    assert sorted(int(p) for p in pids.split(", ")) == sorted(r["pid"] for r in rows), lines


BIG_PARENT = """
import subprocess
import sys

big = bytearray(300 * 1024 * 1024)
for i in range(0, len(big), 4096):
    big[i] = 1
subprocess.run([sys.executable, "-c", "held = bytearray(20 * 1024 * 1024)"], check=True)
"""


def test_child_peak_rss_is_its_own_not_its_parents(fp, tmp_path):
    """A small child of a big parent: its summary's peak RSS is its own
    image's (VmHWM), not the 300 MiB getrusage carries across exec."""
    proc, result = fp.run_fil(tmp_path, BIG_PARENT)
    assert proc.returncode == 0, fp.describe(proc)
    rows = fp.load_summary(result)["children"]
    assert len(rows) == 1, rows
    child = fp.load_summary(result / rows[0]["folder"])
    assert 20 * MIB <= (child["peak_rss_bytes"] or 0) < 150 * MIB, child["peak_rss_bytes"]
