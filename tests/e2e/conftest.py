# SPDX-License-Identifier: MIT
"""Shared fixtures and helpers for the end-to-end tests of fil-profile.

The tests run the real launcher on small Python programs and check what a
user would see: the exit status, the bytes the ``.prof`` charges to a given
line, the files of the result folder and whether they parse.

Environment:
  FIL_PROFILE  the launcher to test (default: <repo>/build/bin/fil-profile)
  FIL_PYTHON   the interpreter the programs run with (default /usr/bin/python3;
               it must have numpy for the numpy tests)
"""

import functools
import json
import os
import re
import shutil
import subprocess
import textwrap
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "numpy: the test needs numpy in FIL_PYTHON")


@functools.lru_cache(maxsize=None)
def has_numpy():
    """Whether the interpreter under test can import numpy."""
    return subprocess.run([PYTHON, "-c", "import numpy"], capture_output=True).returncode == 0


@functools.lru_cache(maxsize=None)
def python_version():
    """(major, minor) of the interpreter under test."""
    out = subprocess.run([PYTHON, "-c", "import sys; print(*sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout
    return tuple(int(x) for x in out.split())


@pytest.fixture(autouse=True)
def _skip_without_numpy(request):
    """Tests marked `numpy` skip, saying why, where FIL_PYTHON has none."""
    if request.node.get_closest_marker("numpy") and not has_numpy():
        pytest.skip("numpy is not installed for %s" % PYTHON)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
FIL = os.environ.get("FIL_PROFILE") or str(REPO / "build" / "bin" / "fil-profile")
PYTHON = os.environ.get("FIL_PYTHON") or "/usr/bin/python3"
# The package installed beside the launcher under test (<bin>/../lib/...).
PKG_PYTHONPATH = Path(FIL).resolve().parents[1] / "lib" / "fil-profile" / "python"

MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGESIZE")
PREFIX = "=fil-profile= "
NO_PYTHON_STACK = "[No Python stack]"
PEAK_FILES = (
    "peak-memory.prof",
    "peak-memory.svg",
    "peak-memory-reversed.svg",
    "index.html",
    "summary.json",
)
DEFAULT_TIMEOUT = 120

# `path:line (function)`; the function may itself contain parentheses or
# spaces (e.g. `<lambda>`, `build_cache.<locals>.<listcomp>`).
FRAME_RE = re.compile(r"^(?P<path>.*):(?P<line>\d+) \((?P<func>.*)\)$")


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def fil():
    """Absolute path of the launcher under test."""
    if not os.access(FIL, os.X_OK):
        pytest.fail("launcher %s not found: run `make` first" % FIL)
    return FIL


@pytest.fixture(scope="session")
def fp(fil):
    """The helpers of this file as one namespace (`fp.run_fil(...)`).

    Test modules use this fixture instead of `import conftest`, which is
    ambiguous when tests/oom has a conftest.py of its own.
    """
    return types.SimpleNamespace(**{k: v for k, v in _HELPERS.items() if not k.startswith("_")})


@pytest.fixture(scope="session")
def cthread_lib(tmp_path_factory):
    """Build tests/data/cthread.c into a shared library; return its path."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: cannot build tests/data/cthread.c")
    out = tmp_path_factory.mktemp("cthread") / "libcthread.so"
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-pthread", "-o", str(out), str(DATA / "cthread.c")],
        check=True,
    )
    return out


# --------------------------------------------------------------------------
# running the profiler


def base_env(env=None):
    """The environment for a launcher run: ours, FIL_PYTHON set, plus `env`."""
    e = dict(os.environ)
    e["FIL_PYTHON"] = PYTHON
    for name in ("PYTHONMALLOC", "PYTHONPATH", "PYTHONSTARTUP", "DISPLAY", "WAYLAND_DISPLAY"):
        e.pop(name, None)
    if env:
        e.update(env)
    return e


def write_script(tmp_path, text, name="script.py"):
    """Write dedented `text` to tmp_path/name; return its Path."""
    path = Path(tmp_path) / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def latest_result(out_dir):
    """The folder OUT/latest points to, or None."""
    latest = Path(out_dir) / "latest"
    if not latest.exists():
        return None
    return latest.resolve()


def run_fil(tmp_path, script, *args, extra_opts=(), env=None, cwd=None,
            out=None, timeout=DEFAULT_TIMEOUT, module=None):
    """Profile a program: `fil-profile run --no-browser -o OUT [extra_opts] script args`.

    `script` is a pathlib.Path of an existing script, or the text of one
    (written to tmp_path/script.py). With `module="pkg"`, runs `-m pkg`
    instead and `script` must be None. OUT defaults to tmp_path/fil-out.
    Returns (CompletedProcess with bytes stdout/stderr, result folder Path or
    None when OUT/latest does not exist).
    """
    tmp_path = Path(tmp_path)
    out = Path(out) if out is not None else tmp_path / "fil-out"
    cmd = [FIL, "run", "--no-browser", "-o", str(out), *extra_opts]
    if module is not None:
        assert script is None
        cmd += ["-m", module]
    else:
        if not isinstance(script, Path):
            script = write_script(tmp_path, script)
        cmd.append(str(script))
    cmd += [str(a) for a in args]
    proc = subprocess.run(cmd, cwd=str(cwd or tmp_path), env=base_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)
    return proc, latest_result(out)


def describe(proc):
    """Text for assertion messages: exit status and stderr of a run."""
    return "exit %s, stderr:\n%s" % (proc.returncode, proc.stderr.decode(errors="replace"))


def line_of(text, marker):
    """1-based number of the only line of `text` (as written by write_script)
    that ends with the comment `# marker`."""
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    hits = [i + 1 for i, l in enumerate(lines) if l.rstrip().endswith("# " + marker)]
    assert len(hits) == 1, "marker %r found on lines %s" % (marker, hits)
    return hits[0]



# The start of a test program calling libc's allocators through ctypes:
# `libc` with the prototypes of malloc, calloc, realloc, reallocarray,
# aligned_alloc, memalign, valloc, pvalloc, posix_memalign and free
# (`vp`, `sz`: void * and size_t).
LIBC_ALLOCATORS = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
vp, sz = ctypes.c_void_p, ctypes.c_size_t
for name, args in [("malloc", [sz]), ("calloc", [sz, sz]), ("realloc", [vp, sz]),
                   ("reallocarray", [vp, sz, sz]), ("aligned_alloc", [sz, sz]),
                   ("memalign", [sz, sz]), ("valloc", [sz]), ("pvalloc", [sz])]:
    getattr(libc, name).restype = vp
    getattr(libc, name).argtypes = args
libc.free.argtypes = [vp]
libc.posix_memalign.argtypes = [ctypes.POINTER(vp), sz, sz]
libc.posix_memalign.restype = ctypes.c_int
"""

# --------------------------------------------------------------------------
# reading reports


@functools.lru_cache(maxsize=None)
def parse_frame(frame):
    """(path, line, function) of one `path:line (function)` frame, or None."""
    m = FRAME_RE.match(frame)
    if m is None:
        return None
    return m.group("path"), int(m.group("line")), m.group("func")


def is_bracket_frame(frame):
    """Whether a frame is one of the profiler's own `[...]` frames:
    `[No Python stack]`, `[N frames elided]`, `[N smaller call stacks]`."""
    return frame.startswith("[") and frame.endswith("]")


def split_frames(stack):
    """Split `a;b;c` into frames. A ';' inside a frame (a file named `x;y.py`)
    is kept when what precedes it is not yet a complete frame."""
    frames, cur = [], None
    for piece in stack.split(";"):
        cur = piece if cur is None else cur + ";" + piece
        if FRAME_RE.match(cur) or is_bracket_frame(cur) or cur.startswith("[native] "):
            frames.append(cur)
            cur = None
    if cur is not None:
        frames.append(cur)
    return frames


def parse_prof(path):
    """A .prof file as a list of (frames list, bytes)."""
    entries = []
    for raw in Path(path).read_text().splitlines():
        if not raw:
            continue
        stack, _, count = raw.rpartition(" ")
        assert stack and count.isdigit(), "malformed .prof line %r" % raw
        entries.append((split_frames(stack), int(count)))
    return entries


@functools.lru_cache(maxsize=None)
def same_file(frame_path, file):
    """Whether a frame's path names `file` (a path or a bare file name)."""
    return (frame_path == file or frame_path.endswith("/" + file)
            or os.path.basename(frame_path) == os.path.basename(file) == file)


def frame_is(frame, file, line=None):
    """Whether `frame` is in `file` (and at `line`, if given)."""
    parsed = parse_frame(frame)
    if parsed is None or not same_file(parsed[0], str(file)):
        return False
    return line is None or parsed[1] == line


def bytes_last_frame(entries, file, line):
    """Sum of the bytes of the stacks whose LAST frame is file:line."""
    return sum(n for frames, n in entries if frames and frame_is(frames[-1], file, line))


def deepest_line_in(frames, file):
    """Line number of the deepest frame of `frames` in `file`, or None."""
    for f in reversed(frames):
        if frame_is(f, file):
            return parse_frame(f)[1]
    return None


def bytes_at_line(entries, file, line):
    """Sum of the bytes of the stacks whose deepest frame in `file` is `line`.

    This is what a user means by "memory allocated by line N of my script"
    even when library code (numpy, threading) is called from it.
    """
    return sum(n for _, n in stacks_at_line(entries, file, line))


def bytes_with_frame(entries, file, line):
    """Sum of the bytes of the stacks that contain the frame file:line."""
    return sum(n for frames, n in entries if any(frame_is(f, file, line) for f in frames))


def stacks_at_line(entries, file, line):
    """The (frames, bytes) whose deepest frame in `file` is `line`."""
    return [(frames, n) for frames, n in entries if deepest_line_in(frames, file) == line]


def prof_total(entries):
    return sum(n for _, n in entries)


def check_svg(path):
    """Parse an SVG with xml.etree; return the root element."""
    root = ET.parse(str(path)).getroot()
    assert root.tag.endswith("svg"), "%s: root element is %s" % (path, root.tag)
    return root


def svg_texts(root):
    """All the text an SVG contains (element text and title tooltips)."""
    return ["".join(el.itertext()) for el in root.iter()]


def load_summary(result_dir):
    with open(Path(result_dir) / "summary.json") as f:
        return json.load(f)


def check_peak_report(result_dir):
    """Check a peak-memory result folder: every file present, SVGs parse,
    summary.json parses and its peak_bytes equals the .prof total.
    Returns (prof entries, summary dict)."""
    assert result_dir is not None, "no result folder (OUT/latest missing)"
    result_dir = Path(result_dir)
    for name in PEAK_FILES:
        assert (result_dir / name).is_file(), "%s missing from %s" % (name, result_dir)
    check_svg(result_dir / "peak-memory.svg")
    check_svg(result_dir / "peak-memory-reversed.svg")
    entries = parse_prof(result_dir / "peak-memory.prof")
    summary = load_summary(result_dir)
    assert summary["peak_bytes"] == prof_total(entries), \
        "summary peak_bytes %d != .prof total %d" % (summary["peak_bytes"], prof_total(entries))
    return entries, summary


def prof_file(result_dir):
    """The .prof of a result folder, whichever kind of report it holds."""
    for name in ("peak-memory.prof", "out-of-memory.prof"):
        if (Path(result_dir) / name).is_file():
            return Path(result_dir) / name
    return None


def within(value, expected, rel):
    """|value - expected| <= rel * expected."""
    return abs(value - expected) <= rel * expected


def fmt_prof(entries, limit=40):
    """The biggest .prof lines, for assertion messages."""
    biggest = sorted(entries, key=lambda e: -e[1])[:limit]
    return "\n".join("%12d %s" % (n, ";".join(frames)) for frames, n in biggest)


_HELPERS = dict(globals())
