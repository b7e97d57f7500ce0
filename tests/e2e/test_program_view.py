# SPDX-License-Identifier: MIT
"""The program's view of itself is plain Python's (invariant 5, issue 8).

Each test runs the same program with plain `$FIL_PYTHON` and under
fil-profile, from the same folder with the same arguments, and compares
what the program prints about itself:

- `__main__`: `__builtins__` is the module, `__loader__`, `__spec__`,
  `__file__` (absolute on 3.9+), `__name__`; `sys.argv`, `sys.orig_argv`
  (3.10+), `sys.path[0]`, `sys.flags`; `inspect.stack()` at module level
  has one frame; `warnings.warn(stacklevel=2)` at module level is
  attributed to `sys:1` (3.13: `<sys>:0`); `signal.getsignal()` of the crash signals is
  SIG_DFL; a file next to `__file__` opens after `os.chdir()`;
- re-executing itself with `os.execv(sys.executable, sys.orig_argv)`;
- a SyntaxError's caret block and an uncaught exception's traceback are
  Python's own, with no frame of ours;
- `python -I` and `-P` (3.11+) keep `sys.path` as Python makes it;
- a zipapp (`app.pyz`) and a directory with `__main__.py` run.
Only the profiler's own lines (`=fil-profile= ...`) differ on stderr.
"""

import subprocess
import sys

import pytest

PREFIX = "=fil-profile= "

VIEW = """
import inspect
import os
import signal
import sys
import warnings

def show(*a):
    print(*a, flush=True)

show("builtins", type(__builtins__).__name__)
show("loader", type(__loader__).__name__, __spec__ is None)
show("file", __file__, os.path.isabs(__file__))
show("name", __name__)
show("argv", sys.argv)
show("orig_argv", getattr(sys, "orig_argv", None))
show("path0", sys.path[0])
show("flags", sys.flags.isolated, sys.flags.ignore_environment, sys.flags.optimize)
show("stack", len(inspect.stack()))
warnings.showwarning = lambda m, c, f, l, *rest: show("warn", c.__name__, f, l, m)
warnings.warn("careful", UserWarning, stacklevel=2)
for s in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGUSR2"):
    show("signal", s, signal.getsignal(getattr(signal, s)) == signal.SIG_DFL)
here = os.path.dirname(__file__)
os.chdir("/")
with open(os.path.join(here, "data.txt")) as f:
    show("data", f.read().strip())
"""


def plain(fp, cwd, argv):
    return subprocess.run([fp.PYTHON, *argv], cwd=str(cwd), env=fp.base_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)


def profiled(fp, tmp_path, cwd, argv, command="run"):
    """fil-profile run ARGV (or `python ARGV` with command="python")."""
    return subprocess.run([fp.FIL, command, "--no-browser", "-o", str(tmp_path / "fil-out"),
                           *argv], cwd=str(cwd), env=fp.base_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)


def program_stderr(proc):
    """stderr without the profiler's own lines."""
    return "\n".join(l for l in proc.stderr.decode(errors="replace").splitlines()
                     if not l.startswith(PREFIX))


def same(fp, a, b):
    assert a.returncode == b.returncode, (fp.describe(a), fp.describe(b))
    assert a.stdout == b.stdout, "\nplain:\n%s\nprofiled:\n%s" % (a.stdout.decode(),
                                                                  b.stdout.decode())
    assert program_stderr(a) == program_stderr(b), (fp.describe(a), fp.describe(b))


def test_main_module_argv_path_and_frames(tmp_path, fp):
    work = tmp_path / "work"
    work.mkdir()
    fp.write_script(work, VIEW, "view.py")
    (work / "data.txt").write_text("next to the script\n")
    # As typed: a relative path, and arguments that look like options.
    argv = ["view.py", "-o", "x", "--help"]
    a, b = plain(fp, work, argv), profiled(fp, tmp_path, work, argv)
    same(fp, a, b)
    out = b.stdout.decode()
    assert "builtins module" in out and "stack 1" in out, out
    # Outside any file (3.13 says "<sys>" line 0), as plain Python says.
    assert "warn UserWarning sys 1 careful" in out or "warn UserWarning <sys> 0" in out, out
    assert "data next to the script" in out, out
    assert "signal SIGSEGV True" in out and "signal SIGUSR2 True" in out, out
    # Through `fil-profile python` with interpreter options too.
    argv = ["-O", "-W", "ignore::DeprecationWarning", "view.py", "a b"]
    same(fp, plain(fp, work, argv), profiled(fp, tmp_path, work, argv, command="python"))


REEXEC = """
import os
import sys
print("run", len(sys.argv), sys.argv[1:], flush=True)
if len(sys.argv) < 3:
    os.execv(sys.executable, getattr(sys, "orig_argv", [sys.executable] + sys.argv) + ["again"])
x = bytearray(5 * 1024 * 1024)
"""


def test_reexec_with_orig_argv(tmp_path, fp):
    fp.write_script(tmp_path, REEXEC, "reexec.py")
    argv = ["reexec.py", "first"]
    a, b = plain(fp, tmp_path, argv), profiled(fp, tmp_path, tmp_path, argv)
    same(fp, a, b)
    assert b.stdout.decode().splitlines() == ["run 2 ['first']", "run 3 ['first', 'again']"]


SYNTAX = """
x = 1
def broken(:
    pass
"""

RAISES = """
def inner():
    raise ValueError("from the program")

def outer():
    inner()

outer()
"""


@pytest.mark.parametrize("text", [SYNTAX, RAISES], ids=["syntax-error", "exception"])
def test_errors_are_pythons_own(tmp_path, fp, text):
    fp.write_script(tmp_path, text, "bad.py")
    a, b = plain(fp, tmp_path, ["bad.py"]), profiled(fp, tmp_path, tmp_path, ["bad.py"])
    same(fp, a, b)
    err = program_stderr(b)
    assert "filprofiler" not in err and "fil-profile" not in err, err
    if text is SYNTAX:
        assert "^" in err and "SyntaxError" in err, err


PATHS = """
import sys
print(sys.flags.isolated, sys.flags.safe_path if hasattr(sys.flags, "safe_path") else None)
for p in sys.path:
    print(p)
"""


@pytest.mark.parametrize("flag", ["-I", "-P", "-s", "-E"])
def test_isolated_and_safe_path_keep_sys_path(tmp_path, fp, flag):
    if flag == "-P" and fp.python_version() < (3, 11):
        pytest.skip("-P is new in Python 3.11")
    sub = tmp_path / "sub"
    sub.mkdir()
    fp.write_script(sub, PATHS, "paths.py")
    argv = [flag, "sub/paths.py"]
    a, b = plain(fp, tmp_path, argv), profiled(fp, tmp_path, tmp_path, argv, command="python")
    same(fp, a, b)
    if flag in ("-I", "-P"):
        assert str(sub) not in b.stdout.decode().splitlines()[1:], b.stdout.decode()


APP = """
import sys
print("app main", __name__, sys.argv[1:], sys.path[0].endswith(("app", "app.pyz")))
held = bytearray(8 * 1024 * 1024)  # HELD
"""


@pytest.mark.parametrize("kind", ["zipapp", "directory"])
def test_zipapp_and_directory_run(tmp_path, fp, kind):
    app = tmp_path / "app"
    app.mkdir()
    fp.write_script(app, APP, "__main__.py")
    target = "app"
    if kind == "zipapp":
        subprocess.run([fp.PYTHON, "-m", "zipapp", "app", "-o", "app.pyz"], cwd=str(tmp_path),
                       check=True, env=fp.base_env())
        target = "app.pyz"
    argv = [target, "arg"]
    a, b = plain(fp, tmp_path, argv), profiled(fp, tmp_path, tmp_path, argv)
    same(fp, a, b)
    assert b.stdout.decode().strip() == "app main __main__ ['arg'] True", b.stdout
    result = fp.latest_result(tmp_path / "fil-out")
    entries = fp.parse_prof(result / "peak-memory.prof")
    want = "__main__.py:%d " % fp.line_of(APP, "HELD")
    held = sum(n for frames, n in entries if frames and want in frames[-1])
    assert fp.within(held, 8 * 1024 * 1024, 0.02), fp.fmt_prof(entries)


# The program's own profile function, set right after a recursion deep
# enough for the profiler's own hook (3.9-3.11) returned, sees the events
# it sees without the profiler: on 3.9 and 3.10 it used to get a c_return
# for the very sys.setprofile call that installed it. (Set while the stack
# is still deeper than 100 frames, it does get that one event: the man
# page says so.)
PROFILE_EVENTS = """
import sys
sys.setrecursionlimit(10000)

def rec(n):
    x = [n] * 10
    if n == 0:
        return
    rec(n - 1)

events = []

def pf(frame, event, arg):
    events.append((event, getattr(arg, "__name__", None) or frame.f_code.co_name))

def leaf():
    return 1

for depth in (800, 150, 2000):
    rec(depth)
    sys.setprofile(pf)
    leaf()
    sys.setprofile(None)
    print(depth, events)
    events.clear()
"""


def test_programs_profile_function_sees_its_own_events(tmp_path, fp):
    script = fp.write_script(tmp_path, PROFILE_EVENTS, name="events.py")
    same(fp, plain(fp, tmp_path, [str(script)]), profiled(fp, tmp_path, tmp_path, [str(script)]))
