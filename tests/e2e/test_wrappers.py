# SPDX-License-Identifier: MIT
"""The allocator wrappers behave as the C library (or the program's own
allocator) does, compared with plain Python on the same program (issue 8):

- calloc(2**62, 16), whose n*m overflows: NULL/ENOMEM as glibc says, no
  out-of-memory dump, exit 0;
- every allocator asked for more than PTRDIFF_MAX bytes (a negative size
  cast to size_t): NULL/ENOMEM, which glibc returns without trying, the
  program goes on, no out-of-memory dump;
- aligned_alloc(0, n) and aligned_alloc(3, n): what this C library returns
  (glibc 2.36: memory), not our own EINVAL;
- an LD_PRELOADed jemalloc: malloc_usable_size() on blocks our malloc
  returned works (they come from jemalloc), and they are still tracked;
- a user's own LD_PRELOAD shim that finds malloc with dlsym(RTLD_NEXT):
  it must find the next malloc, not itself (it would recurse for ever).

Each runs the same script under plain python3 and under fil-profile and
compares stdout and the exit status; the healthy runs leave the ordinary
peak report and nothing else.
"""

import os
import shutil
import subprocess
import textwrap

import pytest

MIB = 1024 * 1024
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def run_plain(fp, tmp_path, text, env=None):
    script = fp.write_script(tmp_path, text, name="plain.py")
    return subprocess.run([fp.PYTHON, str(script)], cwd=str(tmp_path), env=fp.base_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def same_as_plain(fp, tmp_path, text, env=None):
    """Run text plain and profiled; assert same stdout and status; return the profiled run."""
    plain = run_plain(fp, tmp_path, text, env)
    proc, result = fp.run_fil(tmp_path, text, env=env)
    assert proc.returncode == plain.returncode == 0, fp.describe(proc) + "\nplain: %r" % (plain,)
    assert proc.stdout == plain.stdout, (proc.stdout, plain.stdout)
    assert result is not None and (result / "peak-memory.prof").exists(), fp.describe(proc)
    assert not (result / "out-of-memory.prof").exists(), fp.describe(proc)
    return proc, result


CALLOC = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.calloc.restype = ctypes.c_void_p
libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
p = libc.calloc(2**62, 16)
print("calloc", p, ctypes.get_errno() == 12)
"""


def test_calloc_overflow_is_enomem_not_oom(fp, tmp_path):
    proc, _ = same_as_plain(fp, tmp_path, CALLOC)
    assert proc.stdout == b"calloc None True\n"


BEYOND_PTRDIFF = """
out = vp()
old = libc.malloc(100)
for n in (2**63, 2**64 - 4096, 2**64 - 1):
    for name, call in [("malloc", lambda: libc.malloc(n)),
                       ("calloc", lambda: libc.calloc(1, n)),
                       ("realloc", lambda: libc.realloc(old, n)),
                       ("reallocarray", lambda: libc.reallocarray(old, 1, n)),
                       ("aligned_alloc", lambda: libc.aligned_alloc(4096, n)),
                       ("memalign", lambda: libc.memalign(4096, n)),
                       ("valloc", lambda: libc.valloc(n)),
                       ("pvalloc", lambda: libc.pvalloc(n)),
                       ("posix_memalign", lambda: None if libc.posix_memalign(
                           ctypes.byref(out), 4096, n) == 12 else "not ENOMEM")]:
        ctypes.set_errno(0)
        print(name, hex(n), call(), ctypes.get_errno())
libc.free(old)
print("still running")
"""


def test_requests_beyond_ptrdiff_max_fail_as_libc_says(fp, tmp_path):
    proc, _ = same_as_plain(fp, tmp_path, fp.LIBC_ALLOCATORS + BEYOND_PTRDIFF)
    lines = proc.stdout.decode().splitlines()
    assert lines[-1] == "still running" and len(lines) == 28, proc.stdout
    assert all(l.endswith(" None 12") for l in lines[:-1]), proc.stdout


ALIGNED = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.aligned_alloc.restype = ctypes.c_void_p
libc.aligned_alloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
for align in (0, 3, 16, 4096):
    p = libc.aligned_alloc(align, 2 * 1024 * 1024)
    print(align, p is not None, ctypes.get_errno())
    libc.free(p)
"""


def test_aligned_alloc_odd_alignments_as_libc(fp, tmp_path):
    same_as_plain(fp, tmp_path, ALIGNED)


JEMALLOC_SCRIPT = """
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.malloc_usable_size.restype = ctypes.c_size_t
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
keep = []
for n in (24, 1000, 10 * 1024 * 1024):
    p = libc.malloc(n)  # J_MALLOC
    ctypes.memset(p, 1, n)
    keep.append(p)
    print(n, libc.malloc_usable_size(p) >= n)
"""


@pytest.mark.skipif(not os.path.exists(JEMALLOC), reason="libjemalloc2 is not installed")
def test_preloaded_jemalloc_keeps_serving(fp, tmp_path):
    proc, result = same_as_plain(fp, tmp_path, JEMALLOC_SCRIPT, env={"LD_PRELOAD": JEMALLOC})
    entries = fp.parse_prof(result / "peak-memory.prof")
    line = fp.line_of(JEMALLOC_SCRIPT, "J_MALLOC")
    got = fp.bytes_last_frame(entries, "script.py", line)
    assert abs(got - (10 * MIB + 1024)) <= 64 * 1024, (got, fp.fmt_prof(entries))


SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
static void *(*next_malloc)(size_t);
static unsigned long calls;
void *malloc(size_t n) {
    if (!next_malloc)
        next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    calls++;
    return next_malloc(n);
}
unsigned long shim_calls(void) { return calls; }
"""

SHIM_SCRIPT = """
import ctypes
shim = ctypes.CDLL(None)
data = [bytes(100) + str(i).encode() for i in range(10000)]  # S_DATA
print("shim saw mallocs:", shim.shim_calls() > 0, len(data))
"""


def test_user_shim_with_rtld_next(fp, tmp_path):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "shim.c"
    src.write_text(textwrap.dedent(SHIM_C))
    so = tmp_path / "libshim.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"], check=True)
    proc, result = same_as_plain(fp, tmp_path, SHIM_SCRIPT, env={"LD_PRELOAD": str(so)})
    assert proc.stdout == b"shim saw mallocs: True 10000\n"
    entries = fp.parse_prof(result / "peak-memory.prof")
    got = fp.bytes_last_frame(entries, "script.py", fp.line_of(SHIM_SCRIPT, "S_DATA"))
    assert got >= 10000 * 100, (got, fp.fmt_prof(entries))
