# SPDX-License-Identifier: MIT
"""A Python process started through libc's shell calls, os.system() and
popen() (through ctypes, as a C extension would call it), is profiled with
its own report, charged to its own line within 2%; what the calls return
and what the shell sees are as without the profiler: the wait status,
SIGINT and SIGQUIT ignored by the caller while the command runs, no
LD_PRELOAD in the shell's environment, popen's pipe in both directions,
and pclose's status.
"""

import os
import subprocess
import sys

MIB = 1024 * 1024

CHILD = """
import sys
held = bytearray(int(sys.argv[1]) * 1024 * 1024)  # HELD
data = sys.stdin.read() if len(sys.argv) > 2 else ""
print("child", sys.argv[1], len(data), flush=True)
sys.exit(int(sys.argv[1]) % 7)
"""

SCRIPT = """
import ctypes
import os
import signal
import sys

here = os.path.dirname(os.path.abspath(__file__))
py, child = sys.executable, os.path.join(here, "child.py")
libc = ctypes.CDLL(None)
libc.popen.restype = ctypes.c_void_p
libc.popen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.pclose.argtypes = [ctypes.c_void_p]
libc.fread.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
libc.fwrite.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]

print("system", os.system(f"{py} {child} 12"), flush=True)
print("exit 7", os.system("exit 7"), flush=True)
print("killed", os.system("kill -TERM $$"), flush=True)
print("missing", os.system("/nonexistent/program 2>/dev/null"), flush=True)
print("preload", os.system('test -z "$LD_PRELOAD" && ! env | grep -q "^FIL_STATE_FD=\\|^FIL_CHILDREN="'), flush=True)
# The caller ignores SIGINT while the command runs: a kill of the caller
# from inside the command interrupts nothing.
print("int ignored", os.system("kill -INT $PPID; sleep 0.1; echo shell went on"), flush=True)

f = libc.popen(f"{py} {child} 20".encode(), b"r")
buf = ctypes.create_string_buffer(100)
n = libc.fread(buf, 1, 100, f)
print("popen r", repr(buf.raw[:n]), libc.pclose(f), flush=True)
f = libc.popen(f"{py} {child} 30 stdin".encode(), b"we")
libc.fwrite(b"x" * 1000, 1, 1000, f)
print("popen w", libc.pclose(f), flush=True)
print("bad mode", libc.popen(b"true", b"rw"), flush=True)
"""


def test_system_and_popen_children(fp, tmp_path):
    fp.write_script(tmp_path, CHILD, name="child.py")
    fp.write_script(tmp_path, SCRIPT)
    plain = subprocess.run([fp.PYTHON, str(tmp_path / "script.py")], cwd=str(tmp_path),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert plain.returncode == 0, plain.stderr
    proc, result = fp.run_fil(tmp_path, tmp_path / "script.py")
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == plain.stdout, (proc.stdout, plain.stdout)
    out = proc.stdout.decode()
    assert "system 1280\n" in out and "exit 7 1792\n" in out, out
    assert "killed 15\n" in out and "missing 32512\n" in out, out
    assert "preload 0\n" in out and "shell went on\nint ignored 0\n" in out, out
    assert "popen r b'child 20 0\\n' 1536\n" in out and "popen w 512\n" in out, out
    rows = fp.load_summary(result)["children"]
    held = {}
    for r in rows:
        if r["command"][1:2] == [str(tmp_path / "child.py")]:
            entries = fp.parse_prof(result / r["folder"] / "peak-memory.prof")
            held[int(r["command"][2])] = (
                fp.bytes_at_line(entries, "child.py", fp.line_of(CHILD, "HELD")), r)
    assert sorted(held) == [12, 20, 30], rows
    for n, (got, r) in held.items():
        assert fp.within(got, n * MIB, 0.02), (n, got)
        assert r["exit_status"] == n % 7, r


FORKS = """
import ctypes
import os
import threading

libc = ctypes.CDLL(None)
libc.popen.restype = ctypes.c_void_p
libc.popen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.pclose.argtypes = [ctypes.c_void_p]
stop = False


def loop():
    while not stop:
        libc.pclose(libc.popen(b"exit 0", b"r"))
        libc.system(b"exit 0")


threading.Thread(target=loop, daemon=True).start()
codes = []
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        ok = libc.pclose(libc.popen(b"exit 3", b"r")) == 768 and libc.system(b"exit 4") == 1024
        os._exit(0 if ok else 1)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
stop = True
print("children", codes.count(0), "of", len(codes))
"""


def test_fork_while_another_thread_runs_popen(fp, tmp_path):
    """A thread that runs popen, pclose and system in a loop while the main
    thread forks: neither the program nor a fork child hangs (a fork taken
    while popen held its table's lock across an allocation deadlocked the
    program with the tracker's lock), and every child's own popen and
    system work."""
    proc, result = fp.run_fil(tmp_path, FORKS, timeout=120)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"children 20 of 20\n", fp.describe(proc)
