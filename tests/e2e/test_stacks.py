# SPDX-License-Identifier: MIT
"""Call stacks that cannot be fooled: whatever the program does with
profilers, hooks, threads, greenlets and code objects, memory is charged
to the line that allocated it, with the bytes it allocated, and the program
runs as it does without the profiler (same output, same exit status).

Every program here runs on every interpreter the suite is run with (no
numpy); the greenlet test needs the greenlet module and skips, saying so,
where the interpreter has none.
"""

import subprocess

import pytest

MIB = 1024 * 1024


def _run(fp, tmp_path, text, *args, env=None, extra_opts=(), python_form=False):
    """Profile `text` and run it plainly; both must print the same and exit
    the same. Returns the .prof entries."""
    script = fp.write_script(tmp_path, text)
    if python_form:
        cmd = [fp.FIL, "--no-browser", "-o", str(tmp_path / "fil-out"), "python", *extra_opts,
               str(script), *args]
        proc = subprocess.run(cmd, cwd=str(tmp_path), env=fp.base_env(env), capture_output=True,
                              timeout=fp.DEFAULT_TIMEOUT)
        result = fp.latest_result(tmp_path / "fil-out")
    else:
        proc, result = fp.run_fil(tmp_path, script, *args, env=env, extra_opts=extra_opts)
    plain = subprocess.run([fp.PYTHON, *(extra_opts if python_form else ()), str(script), *args],
                           cwd=str(tmp_path), env=fp.base_env(env), capture_output=True,
                           timeout=fp.DEFAULT_TIMEOUT)
    assert proc.returncode == plain.returncode == 0, fp.describe(proc)
    assert proc.stdout == plain.stdout
    entries, _ = fp.check_peak_report(result)
    return entries


def _held(fp, entries, text, marker):
    """Bytes charged to stacks whose last frame is the marked line."""
    return fp.bytes_last_frame(entries, "script.py", fp.line_of(text, marker))


CPROFILE = """
import cProfile
import sys


def work():
    return [bytes(1000) for _ in range(1000)]


def main():
    return work()


cProfile.run("main()", "/dev/null")
big = bytearray(300 * 1024 * 1024)  # AFTER_CPROFILE


def inside():
    return bytearray(50 * 1024 * 1024)  # INSIDE_CPROFILE


prof = cProfile.Profile()
prof.enable()
held = inside()
prof.disable()


def drop_profiler():
    sys.setprofile(None)
    return bytearray(40 * 1024 * 1024)  # AFTER_SETPROFILE_NONE


x = drop_profiler()
print("ok", len(big) + len(held) + len(x))
"""


def test_cprofile_and_setprofile(tmp_path, fp):
    """cProfile before and around profiled code, sys.setprofile(None) in a
    function: every array at its own line, exact within 1%."""
    entries = _run(fp, tmp_path, CPROFILE)
    for marker, size in (("AFTER_CPROFILE", 300), ("INSIDE_CPROFILE", 50),
                         ("AFTER_SETPROFILE_NONE", 40)):
        got = _held(fp, entries, CPROFILE, marker)
        assert fp.within(got, size * MIB, 0.01), (marker, got, fp.fmt_prof(entries))


THREADS = """
import _thread
import threading

MIB = 1024 * 1024
held = []


class Worker(threading.Thread):
    def run(self):
        held.append(bytearray(30 * MIB))  # IN_RUN


t = Worker()
t.start()
t.join()

done = threading.Event()


def raw():
    held.append(bytearray(20 * MIB))  # RAW_THREAD
    done.set()


_thread.start_new_thread(raw, ())
done.wait()

threading.setprofile(None)


def after():
    held.append(bytearray(10 * MIB))  # AFTER_THREADING_SETPROFILE


u = threading.Thread(target=after)
u.start()
u.join()
print("ok", len(held))
"""


def test_threads_show_their_own_lines(tmp_path, fp):
    """A Thread subclass's run(), a _thread.start_new_thread function and a
    thread started after threading.setprofile(None): each array at its line."""
    entries = _run(fp, tmp_path, THREADS)
    for marker, size in (("IN_RUN", 30), ("RAW_THREAD", 20), ("AFTER_THREADING_SETPROFILE", 10)):
        got = _held(fp, entries, THREADS, marker)
        assert fp.within(got, size * MIB, 0.01), (marker, got, fp.fmt_prof(entries))


GREENLETS = """
import greenlet

MIB = 1024 * 1024


def worker():
    for i in range(3):
        main.switch(i)
    return "done"


main = greenlet.getcurrent()
g = greenlet.greenlet(worker)
for _ in range(3):
    g.switch()
held = bytearray(200 * MIB)  # MAIN_AFTER_SWITCHES


def other():
    x = bytearray(30 * MIB)  # IN_GREENLET
    main.switch(x)


y = greenlet.greenlet(other).switch()
print("ok", len(held) + len(y))
"""


def test_greenlet_switches(tmp_path, fp):
    """Switching greenlets back and forth leaves no bogus stack: the main
    greenlet's array at its line, a greenlet's at the greenlet's line."""
    has = subprocess.run([fp.PYTHON, "-c", "import greenlet"], capture_output=True)
    if has.returncode != 0:
        pytest.skip("greenlet is not installed for %s (Debian: python3-greenlet)" % fp.PYTHON)
    entries = _run(fp, tmp_path, GREENLETS)
    line = fp.line_of(GREENLETS, "MAIN_AFTER_SWITCHES")
    main = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], "script.py", line)]
    assert fp.within(sum(n for _, n in main), 200 * MIB, 0.01), fp.fmt_prof(entries)
    assert all(len(f) == 1 for f, _ in main), main  # no worker frames under it
    got = _held(fp, entries, GREENLETS, "IN_GREENLET")
    assert fp.within(got, 30 * MIB, 0.01), fp.fmt_prof(entries)


CODE_REPLACE = """
import gc

MIB = 1024 * 1024


def make():
    def f():
        return bytearray(MIB)  # IN_F
    return f


held = []
for i in range(300):
    f = make()
    name = "fn_%d" % i
    code = f.__code__.replace(co_name=name)
    if hasattr(code, "co_qualname"):
        code = code.replace(co_qualname=name)
    g = type(f)(code, {"bytearray": bytearray, "MIB": MIB})
    if i % 50 == 0:
        held.append(g())  # CALL
    del f, g, code
    gc.collect()
print("ok", len(held))
"""


def test_recycled_code_objects_keep_their_names(tmp_path, fp):
    """Functions made with code.replace and dropped, their code objects'
    memory reused: each array is charged to the function that made it."""
    entries = _run(fp, tmp_path, CODE_REPLACE)
    line = fp.line_of(CODE_REPLACE, "IN_F")
    names = {}
    for frames, n in entries:
        if frames and fp.frame_is(frames[-1], "script.py", line):
            func = fp.parse_frame(frames[-1])[2]
            names[func] = names.get(func, 0) + n
    assert sorted(names) == sorted("fn_%d" % i for i in range(0, 300, 50)), names
    assert all(fp.within(n, MIB, 0.01) for n in names.values()), names


TRACEMALLOC = """
import tracemalloc

x = bytearray(30 * 1024 * 1024)  # UNDER_TRACEMALLOC
print("tracing", tracemalloc.is_tracing())
"""


@pytest.mark.parametrize("how", ["-X", "env"])
def test_tracemalloc(tmp_path, fp, how):
    """-X tracemalloc and PYTHONTRACEMALLOC=1: the program runs (no hang),
    tracemalloc traces, and the array is at its line."""
    if how == "-X":
        entries = _run(fp, tmp_path, TRACEMALLOC, extra_opts=["-X", "tracemalloc"],
                       python_form=True)
    else:
        entries = _run(fp, tmp_path, TRACEMALLOC, env={"PYTHONTRACEMALLOC": "1"})
    got = _held(fp, entries, TRACEMALLOC, "UNDER_TRACEMALLOC")
    assert fp.within(got, 30 * MIB, 0.01), fp.fmt_prof(entries)


ASYNC = """
import asyncio

MIB = 1024 * 1024


def gen():
    for _ in range(3):
        yield bytearray(4 * MIB)  # IN_GENERATOR


async def fetch(n):
    await asyncio.sleep(0)
    data = bytearray(n * MIB)  # IN_COROUTINE
    await asyncio.sleep(0)
    return data


async def main():
    return await asyncio.gather(fetch(5), fetch(5), fetch(5))


items = list(gen())
results = asyncio.run(main())
print("ok", len(items), len(results))
"""


def test_generators_coroutines_asyncio(tmp_path, fp):
    """Generators and coroutines suspended and resumed by asyncio: their
    arrays at their own lines."""
    entries = _run(fp, tmp_path, ASYNC)
    assert fp.within(_held(fp, entries, ASYNC, "IN_GENERATOR"), 12 * MIB, 0.01), \
        fp.fmt_prof(entries)
    assert fp.within(_held(fp, entries, ASYNC, "IN_COROUTINE"), 15 * MIB, 0.01), \
        fp.fmt_prof(entries)


CALLS = """
import sys


def pair(i):
    return (i, i)


N = 200_000
if sys.argv[1] == "calls":
    keep = [pair(i) for i in range(N)]
else:
    keep = [(i, i) for i in range(N)]
print(len(keep))
"""


def test_calls_make_no_allocations(tmp_path, fp):
    """The profiler makes the program allocate nothing: 200,000 calls of a
    function building a tuple make as many tracked allocations as the same
    tuples built inline (a frame object per call would add 200,000)."""
    counts = {}
    for mode in ("calls", "inline"):
        sub = tmp_path / mode
        sub.mkdir()
        _run(fp, sub, CALLS, mode)
        counts[mode] = fp.load_summary(fp.latest_result(sub / "fil-out"))["tracked_allocations"]
    assert abs(counts["calls"] - counts["inline"]) < 1000, counts


RECURSION = """
import sys

sys.setrecursionlimit(20_000)
MIB = 1024 * 1024
held = []


def down(n):
    if n == 0:
        held.append(bytearray(8 * MIB))  # AT_BOTTOM
        return 0
    held.append(bytes(64))  # EVERY_LEVEL
    return down(n - 1) + 1


print(down(3000))
"""


def test_deep_recursion(tmp_path, fp):
    """A recursion 3,000 deep allocating at every level: the bottom's array
    at the bottom, under 3,001 frames of the recursion (the .prof keeps the
    outer and inner 64 and counts those between)."""
    entries = _run(fp, tmp_path, RECURSION)
    line = fp.line_of(RECURSION, "AT_BOTTOM")
    stacks = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], "script.py", line)]
    assert fp.within(sum(n for _, n in stacks), 8 * MIB, 0.01), fp.fmt_prof(entries)
    frames = max(stacks, key=lambda s: s[1])[0]
    assert fp.parse_frame(frames[0])[2] == "<module>", frames[:3]
    assert frames[64] == "[%d frames elided]" % (3002 - 128), frames[62:66]


TRACER = """
import sys

sys.setrecursionlimit(5000)
MIB = 1024 * 1024
held = []


def tracer(frame, event, arg):
    if event == "line" and frame.f_code is traced.__code__:
        held.append(bytearray(frame.f_lineno * MIB))  # IN_TRACER
    return tracer


def traced():
    a = 1  # LINE_A
    b = 2  # LINE_B
    c = 3  # LINE_C
    return a + b + c  # LINE_D


def down(n):
    if n == 0:
        held.append(bytes(64))  # deep: events (3.12+) or the deep hook (3.9-3.11)
        sys.settrace(tracer)
        traced()
        sys.settrace(None)
        return 0
    return down(n - 1) + 1


print(down(600))
"""


def test_python_tracer_over_a_deep_stack(tmp_path, fp):
    """A Python trace function allocating at each line event of a function,
    600 frames deep (where the profiler follows calls by events, which the
    interpreter does not report while a tracer runs): each array is under
    the line of the traced function that was running, with its bytes."""
    entries = _run(fp, tmp_path, TRACER)
    in_tracer = fp.line_of(TRACER, "IN_TRACER")
    for marker in ("LINE_A", "LINE_B", "LINE_C", "LINE_D"):
        line = fp.line_of(TRACER, marker)
        got = sum(n for frames, n in entries
                  if len(frames) > 1 and fp.frame_is(frames[-1], "script.py", in_tracer)
                  and fp.frame_is(frames[-2], "script.py", line))
        assert fp.within(got, line * MIB, 0.01), (marker, got, fp.fmt_prof(entries))


TOOL_IDS = """
import sys

sys.setrecursionlimit(5000)
MIB = 1024 * 1024
mon = sys.monitoring
mon.use_tool_id(4, "the program's own tool")
mon.use_tool_id(3, "and another")
held = []


def down(n):
    if n == 0:
        held.append(bytearray(20 * MIB))  # AT_BOTTOM
        return 0
    return down(n - 1) + 1


print(down(600))
print(mon.get_tool(3), mon.get_tool(4))
mon.free_tool_id(4)
mon.use_tool_id(4, "again")
print(mon.get_tool(4))
"""


def test_program_takes_the_free_tool_ids(tmp_path, fp):
    """3.12+: a program that takes the tool ids PEP 669 leaves free (3 and
    4) before its stack gets deep gets them, as without the profiler, and
    its deep stack is still charged right (by walks, with no id left)."""
    if fp.python_version() < (3, 12):
        pytest.skip("sys.monitoring is 3.12+")
    entries = _run(fp, tmp_path, TOOL_IDS)
    got = _held(fp, entries, TOOL_IDS, "AT_BOTTOM")
    assert fp.within(got, 20 * MIB, 0.01), fp.fmt_prof(entries)


TOOL_IDS_LATER = """
import sys

sys.setrecursionlimit(5000)
MIB = 1024 * 1024
mon = sys.monitoring
held = []


def down(n, marker):
    if n == 0:
        held.append(bytearray((10 + marker) * MIB))  # AT_BOTTOM
        return 0
    return down(n - 1, marker) + 1


down(600, 0)  # deep: the profiler may take a free id from here on
print(mon.get_tool(4), mon.get_tool(3))
mon.use_tool_id(4, "the program's own tool")
print(mon.get_tool(4))
down(600, 1)  # deep again
print(mon.get_tool(3))
mon.use_tool_id(3, "and another")
mon.free_tool_id(3)
mon.use_tool_id(3, "once more")
print(mon.get_tool(3), mon.get_tool(4))
down(600, 2)
mon.free_tool_id(4)
print(mon.get_tool(4))
"""


def test_program_takes_a_tool_id_after_its_stack_got_deep(tmp_path, fp):
    """3.12+: the tool id the profiler took once the stack got deep stays
    the program's to take: it looks free (get_tool says None, as without
    the profiler), use_tool_id of it succeeds (the profiler gives it back
    and takes the other free one at the next deep stack, and gives that
    back too), and every deep stack is charged right: 10, 11 and 12 MiB at
    the bottom line. _run checks the output equals a plain run's."""
    if fp.python_version() < (3, 12):
        pytest.skip("sys.monitoring is 3.12+")
    entries = _run(fp, tmp_path, TOOL_IDS_LATER)
    got = _held(fp, entries, TOOL_IDS_LATER, "AT_BOTTOM")
    assert fp.within(got, 33 * MIB, 0.01), fp.fmt_prof(entries)


SUBINTERPRETER = """
import sys

try:
    import _xxsubinterpreters as interpreters
except ImportError:
    import _interpreters as interpreters

sys.setrecursionlimit(5000)


def down(n):
    return down(n - 1) if n else bytearray(64)


down(600)  # deep: events from here on (3.12+), in the main interpreter
interp = interpreters.create()
interpreters.run_string(interp, '''
MIB = 1024 * 1024
held = []


def helper(n):
    held.append(bytearray(n * MIB))  # IN_HELPER


def body():
    helper(11)  # CALL_11
    helper(12)  # CALL_12
    helper(13)  # CALL_13
    try:
        raise ValueError("raised and caught in the subinterpreter")
    except ValueError:
        helper(14)  # CALL_14


body()
''')
interpreters.destroy(interp)
print("ok")
"""


def test_subinterpreter(tmp_path, fp):
    """Code run in a subinterpreter (which has its own co_extra slots and
    sys.monitoring, neither of them ours) runs as without the profiler (it
    crashed with SIGSEGV: naming a code object there failed and cleared the
    exception being raised), and each array is under the line that called
    the function, also once the main interpreter's stack went deep."""
    probe = subprocess.run([fp.PYTHON, "-c", "import _xxsubinterpreters"], capture_output=True)
    if probe.returncode != 0 and subprocess.run([fp.PYTHON, "-c", "import _interpreters"],
                                                capture_output=True).returncode != 0:
        pytest.skip("no subinterpreter module in %s" % fp.PYTHON)
    entries = _run(fp, tmp_path, SUBINTERPRETER)
    inner = SUBINTERPRETER.split("'''")[1].split("\n")  # its line 1 is empty

    def line_in(marker):
        return 1 + next(i for i, l in enumerate(inner) if l.endswith("# " + marker))

    in_helper = line_in("IN_HELPER")
    for n in (11, 12, 13, 14):
        line = line_in("CALL_%d" % n)
        got = sum(b for frames, b in entries
                  if len(frames) > 1 and frames[-1] == "<string>:%d (helper)" % in_helper
                  and fp.parse_frame(frames[-2])[:2] == ("<string>", line))
        assert fp.within(got, n * MIB, 0.01), (n, got, fp.fmt_prof(entries))
