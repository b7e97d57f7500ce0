# SPDX-License-Identifier: MIT
"""Helpers for the out-of-memory and post-mortem tests of fil-profile.

The tests run the real launcher on the programs in tests/oom/programs/ and
check what a user sees after memory ran out, the program crashed or it was
killed: the exit status, the headline on stderr, the bytes the
out-of-memory ``.prof`` charges to a given source line, and summary.json.

Lines of interest in a program carry a marker comment ``# @name``; tests
find their numbers with :func:`marker_line`, so editing a program does not
silently break the line numbers a test expects.

Environment:
  FIL_PROFILE  the launcher to test (default: <repo>/build/bin/fil-profile)
  FIL_PYTHON   the interpreter (default /usr/bin/python3, which has numpy)

These helpers are self-contained (tests/e2e has its own); test modules get
them through the ``oom`` fixture rather than importing this file.
"""

import functools
import json
import os
import re
import resource
import signal
import subprocess
import time
import types
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "numpy: the test needs numpy in FIL_PYTHON")


@functools.lru_cache(maxsize=None)
def has_numpy():
    """Whether the interpreter under test can import numpy."""
    return subprocess.run([PYTHON, "-c", "import numpy"], capture_output=True).returncode == 0


@pytest.fixture(autouse=True)
def _skip_without_numpy(request):
    """Tests marked `numpy` skip, saying why, where FIL_PYTHON has none."""
    if request.node.get_closest_marker("numpy") and not has_numpy():
        pytest.skip("numpy is not installed for %s" % PYTHON)

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
FIL = os.environ.get("FIL_PROFILE") or str(REPO / "build" / "bin" / "fil-profile")
PYTHON = os.environ.get("FIL_PYTHON") or "/usr/bin/python3"

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
PIB = 2 ** 50
EXIT_OOM = 53
PREFIX = "=fil-profile= "
OOM_FILES = ("out-of-memory.prof", "out-of-memory.svg", "out-of-memory-reversed.svg")
PEAK_FILES = ("peak-memory.prof", "peak-memory.svg", "peak-memory-reversed.svg", "index.html")
PROF_LINE_RE = re.compile(r"^.+ \d+$")
FAILED_REQUEST = "[failed request] "
NATIVE = "[native] "
TIMEOUT = 120


class Run(types.SimpleNamespace):
    """One launcher run: returncode, stdout/stderr (text), dir (result folder)."""

    def describe(self):
        return "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.returncode, self.stdout[-3000:], self.stderr[-3000:])

    def file(self, name):
        assert self.dir is not None, "no result folder\n" + self.describe()
        return self.dir / name

    def summary(self):
        return load_summary(self.file("summary.json"))

    def oom_prof(self):
        return parse_prof(self.file("out-of-memory.prof"))

    def peak_prof(self):
        return parse_prof(self.file("peak-memory.prof"))


def program(name):
    """Path of tests/oom/programs/<name>."""
    p = PROGRAMS / name
    assert p.is_file(), p
    return p


def marker_line(path, name):
    """Line number (1-based) of the only line of `path` with comment `# @name`."""
    hits = [i for i, text in enumerate(Path(path).read_text().splitlines(), 1)
            if re.search(r"#\s*@%s\b" % re.escape(name), text)]
    assert len(hits) == 1, "marker @%s in %s: %r" % (name, path, hits)
    return hits[0]


def base_env(env=None):
    e = dict(os.environ)
    e["FIL_PYTHON"] = PYTHON
    for name in ("PYTHONMALLOC", "PYTHONPATH", "PYTHONSTARTUP", "FIL_TEST_FAIL_AFTER",
                 "FIL_TEST_MALLOC_IN_DUMP", "FIL_TEST_CGROUP_LOOK_MS", "OPENBLAS_NUM_THREADS"):
        e.pop(name, None)
    # One BLAS thread: keeps numpy's address-space baseline small and stable.
    e["OPENBLAS_NUM_THREADS"] = "1"
    if env:
        e.update(env)
    return e


def fil_command(out, script, args=(), opts=()):
    return [FIL, "run", "--no-browser", "-o", str(out), *opts, str(script), *map(str, args)]


def result_dir(out):
    latest = Path(out) / "latest"
    return latest.resolve() if latest.exists() else None


def rlimit_as(limit):
    """A preexec_fn setting the soft RLIMIT_AS (as `ulimit -Sv` does)."""
    def set_limit():
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return set_limit


def run_fil(tmp_path, script, *args, opts=(), env=None, timeout=TIMEOUT, preexec_fn=None,
            command=None):
    """Run `fil-profile run --no-browser -o TMP/out [opts] script args`.

    `command` (a function of the plain command list) may wrap it, e.g. in
    `bash -c 'ulimit ...; exec "$@"'`. A run that outlives `timeout` seconds
    is killed with its whole process group and fails the test (a hang is a
    bug). Returns a Run.
    """
    Path(tmp_path).mkdir(parents=True, exist_ok=True)
    out = Path(tmp_path) / "out"
    cmd = fil_command(out, script, args, opts)
    if command is not None:
        cmd = command(cmd)
    proc = subprocess.Popen(cmd, cwd=str(tmp_path), env=base_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=preexec_fn,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail("fil-profile hung for %ss on %s\n--- stderr ---\n%s"
                    % (timeout, " ".join(cmd), stderr.decode(errors="replace")[-3000:]))
    return Run(returncode=proc.returncode, stdout=stdout.decode(errors="replace"),
               stderr=stderr.decode(errors="replace"), dir=result_dir(out), cmd=cmd)


def run_plain(tmp_path, script, *args, env=None, timeout=TIMEOUT, command=None):
    """Run the same program with plain PYTHON (no profiler), in the same way
    as run_fil (same cwd, environment, `command` wrapper). Returns a Run
    whose dir is None."""
    cmd = [PYTHON, str(script), *map(str, args)]
    if command is not None:
        cmd = command(cmd)
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=base_env(env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, start_new_session=True)
    return Run(returncode=proc.returncode, stdout=proc.stdout.decode(errors="replace"),
               stderr=proc.stderr.decode(errors="replace"), dir=None, cmd=cmd)


def assert_healthy_as_plain(fil_run, plain_run):
    """What a user sees of a healthy program is the same under the profiler:
    stdout and exit status as with plain Python, only the ordinary peak
    report written (no out-of-memory files, "out_of_memory": null)."""
    assert fil_run.returncode == plain_run.returncode, (
        "exit %s under fil-profile, %s under plain Python\n%s"
        % (fil_run.returncode, plain_run.returncode, fil_run.describe()))
    assert fil_run.stdout == plain_run.stdout, fil_run.describe()
    assert not any("Out of memory" in l for l in stderr_lines(fil_run)), fil_run.describe()
    assert_no_oom_files(fil_run)
    for name in PEAK_FILES:
        assert fil_run.file(name).is_file(), name
    assert load_summary(fil_run.file("summary.json"))["out_of_memory"] is None


def ulimit_sv(kib):
    """A `command` wrapper for run_fil: `bash -c 'ulimit -Sv KIB; exec ...'`."""
    def wrap(cmd):
        return ["bash", "-c", 'ulimit -Sv %d && exec "$@"' % kib, "bash", *cmd]
    return wrap


# --------------------------------------------------------------------------
# reading the results


def parse_prof(path):
    """[(frames, bytes)] of a .prof file; every line must be `<stack> <bytes>`."""
    text = Path(path).read_text(errors="strict")
    stacks = []
    for n, line in enumerate(text.splitlines(), 1):
        assert PROF_LINE_RE.match(line), "%s:%d: not a .prof line: %r" % (path, n, line[:300])
        stack, count = line.rsplit(" ", 1)
        stacks.append((stack.split(";"), int(count)))
    return stacks


def load_summary(path):
    with open(path) as f:
        return json.load(f)


def is_frame_at(frame, script, line):
    """True if frame is script:line, whatever path form the report used."""
    m = re.match(r"^(?P<path>.*):(?P<line>\d+) \(.*\)$", frame)
    if not m or int(m.group("line")) != line:
        return False
    path = m.group("path")
    return path == str(script) or path.endswith("/" + Path(script).name) or path == Path(script).name


def bytes_at(stacks, script, line, include_requests=False):
    """Bytes of every stack passing through script:line (each stack counted
    once). The failed request's own line is left out unless include_requests."""
    total = 0
    needle = "%s:%d (" % (Path(script).name, line)
    for frames, count in stacks:
        if not include_requests and frames[-1].startswith(FAILED_REQUEST):
            continue
        if any(needle in f and is_frame_at(f, script, line) for f in frames):
            total += count
    return total


def total_bytes(stacks, include_requests=False):
    return sum(c for fr, c in stacks if include_requests or not fr[-1].startswith(FAILED_REQUEST))


def failed_requests(stacks):
    """[(frames, bytes)] of the failed-request stacks."""
    return [(fr, c) for fr, c in stacks if fr[-1].startswith(FAILED_REQUEST)]


def last_python_frame(frames):
    """The innermost frame that is a Python `path:line (func)` frame."""
    for f in reversed(frames):
        if not f.startswith("[") and re.match(r"^.*:\d+ \(.*\)$", f):
            return f
    return None


def assert_close(got, want, rel, what):
    assert abs(got - want) <= rel * want, "%s: %d bytes, want %d \u00b1 %.0f%%" % (
        what, got, want, rel * 100)


def assert_oom_files(run):
    for name in OOM_FILES + ("summary.json",):
        p = run.file(name)
        assert p.is_file() and p.stat().st_size > 0, "%s missing\n%s" % (name, run.describe())
    parse_svg(run.file("out-of-memory.svg"))
    parse_svg(run.file("out-of-memory-reversed.svg"))


def assert_no_oom_files(run):
    for name in OOM_FILES:
        assert not run.file(name).exists(), "%s written\n%s" % (name, run.describe())


def parse_svg(path):
    import xml.etree.ElementTree as ET
    root = ET.parse(str(path)).getroot()
    assert root.tag.endswith("svg"), path
    return root


def stderr_lines(run):
    return [l for l in run.stderr.splitlines() if l.startswith(PREFIX)]


# --------------------------------------------------------------------------
# a child memory cgroup, for the kernel OOM killer and cgroup predictions

CG_LIMIT = 400 * MIB


def own_memory_cgroup():
    """(version, directory) of this process's memory cgroup, or (None, reason)."""
    v2 = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                d = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
                if d.is_dir():
                    return 1, d
            if hid == "0" and controllers == "":
                v2 = Path("/sys/fs/cgroup") / path.lstrip("/")
    if v2 is not None and (v2 / "memory.max").exists():
        return 2, v2
    if v2 is not None and (v2 / "cgroup.subtree_control").exists():
        return 2, v2
    return None, "no memory cgroup found in /proc/self/cgroup"


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def rmdir_retry(path, tries=50):
    for _ in range(tries):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    path.rmdir()


@pytest.fixture
def memcg():
    """A fresh child memory cgroup limited to CG_LIMIT without swap: (version, dir).
    Skips with the reason when no memory cgroup is writable here."""
    version, parent = own_memory_cgroup()
    if version is None:
        pytest.skip(parent)
    cg = parent / ("fil-test-%d" % os.getpid())
    if cg.exists():
        rmdir_retry(cg)
    try:
        cg.mkdir()
    except OSError as e:
        pytest.skip("cannot create a memory cgroup under %s: %s" % (parent, e))
    try:
        try:
            if version == 1:
                write(cg / "memory.limit_in_bytes", CG_LIMIT)
                try:
                    write(cg / "memory.memsw.limit_in_bytes", CG_LIMIT)
                except OSError:
                    pass  # no swap accounting: fine, the limit above still holds
            else:
                write(cg / "memory.max", CG_LIMIT)
                try:
                    write(cg / "memory.swap.max", 0)
                except OSError:
                    pass
        except OSError as e:
            pytest.skip("cannot set a memory limit on %s: %s" % (cg, e))
        # Can a process join it (cgroup v2 forbids it under a parent with
        # processes and controllers)? Try with a throwaway shell.
        probe = subprocess.run(["sh", "-c", 'echo $$ > "$1/cgroup.procs" && echo joined',
                                "sh", str(cg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if probe.returncode != 0 or b"joined" not in probe.stdout:
            pytest.skip("cannot move a process into %s: %s" % (cg, probe.stderr.decode().strip()))
        yield version, cg
    finally:
        rmdir_retry(cg)


def in_cgroup(cg):
    """A `command` wrapper for run_fil: run the launcher inside cgroup dir cg."""
    def wrap(cmd):
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cg), *cmd]
    return wrap


@pytest.fixture(scope="session")
def oom():
    """The helpers of this file as one namespace (`oom.run_fil(...)`)."""
    if not os.access(FIL, os.X_OK):
        pytest.fail("launcher %s not found: run `make` first" % FIL)
    names = {k: v for k, v in globals().items() if not k.startswith("_")}
    return types.SimpleNamespace(**names)
