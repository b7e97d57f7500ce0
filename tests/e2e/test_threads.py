# SPDX-License-Identifier: MIT
"""Threads: memory allocated by Python threads is charged to the thread's
line, under the line of the main script that started the thread; memory
malloc'ed by a native (pthread) thread started from C is charged to the
Python line that called into C (tests/data/cthread.c).
"""

MIB = 1024 * 1024

THREAD_SCRIPT = """
import threading

MIB = 1024 * 1024
held = []
both_allocated = threading.Barrier(2)


def worker_a():
    held.append(bytearray(30 * MIB))  # T_A
    both_allocated.wait()


def worker_b():
    held.append(bytearray(45 * MIB))  # T_B
    both_allocated.wait()


def main():
    ta = threading.Thread(target=worker_a)
    tb = threading.Thread(target=worker_b)
    ta.start()  # START_A
    tb.start()  # START_B
    ta.join()
    tb.join()
    print("threads", sorted(len(b) // MIB for b in held))


main()
"""


def test_python_threads(tmp_path, fp):
    proc, result = fp.run_fil(tmp_path, THREAD_SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"threads [30, 45]\n"
    entries, summary = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)
    for marker, start_marker, size in (("T_A", "START_A", 30 * MIB), ("T_B", "START_B", 45 * MIB)):
        line = fp.line_of(THREAD_SCRIPT, marker)
        start_line = fp.line_of(THREAD_SCRIPT, start_marker)
        got = fp.bytes_last_frame(entries, "script.py", line)
        assert fp.within(got, size, 0.02), "%s line %d: %d\n%s" % (marker, line, got, msg)
        # Every stack of the thread's line descends from the t.start() line.
        stacks = [(f, n) for f, n in entries if f and fp.frame_is(f[-1], "script.py", line)]
        for frames, _ in stacks:
            assert any(fp.frame_is(f, "script.py", start_line) for f in frames[:-1]), \
                "%s: the thread's stack lacks its start line %d: %s" % (marker, start_line, frames)
            assert fp.frame_is(frames[0], "script.py"), frames
    held = 75 * MIB
    assert held <= summary["peak_bytes"] <= held + 30 * MIB, summary["peak_bytes"]


CTHREAD_SCRIPT = """
import ctypes
import sys

MIB = 1024 * 1024
lib = ctypes.CDLL(sys.argv[1])
lib.start_c_thread.argtypes = [ctypes.c_size_t]
lib.start_c_thread.restype = ctypes.c_int
lib.cloop.argtypes = [ctypes.c_long, ctypes.c_size_t]
lib.cloop.restype = ctypes.c_long


def native_work():
    return lib.start_c_thread(50 * MIB)  # C_THREAD


assert native_work() == 0
assert lib.cloop(20, MIB) == 20  # C_LOOP
print("native done")
"""


def test_c_thread_charged_to_calling_line(tmp_path, fp, cthread_lib):
    proc, result = fp.run_fil(tmp_path, CTHREAD_SCRIPT, cthread_lib)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"native done\n"
    entries, summary = fp.check_peak_report(result)
    msg = fp.fmt_prof(entries)

    line = fp.line_of(CTHREAD_SCRIPT, "C_THREAD")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, 50 * MIB, 0.02), "C thread, line %d: %d\n%s" % (line, got, msg)

    line = fp.line_of(CTHREAD_SCRIPT, "C_LOOP")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert fp.within(got, 20 * MIB, 0.02), "C loop, line %d: %d\n%s" % (line, got, msg)

    no_stack = sum(n for frames, n in entries if frames == [fp.NO_PYTHON_STACK])
    assert no_stack < 10 * MIB, "native thread memory lost its Python caller\n%s" % msg
