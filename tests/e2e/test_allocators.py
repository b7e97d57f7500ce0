# SPDX-License-Identifier: MIT
"""Every C allocator the profiler interposes, called from Python through
ctypes: malloc, calloc, realloc, reallocarray, posix_memalign, aligned_alloc,
memalign, valloc, pvalloc, anonymous mmap (Python's mmap module and libc's),
partial munmap and mremap (also failing ones). Each allocates a distinct size from a distinct
line; the peak report must charge each line its size.

The functions are looked up with ctypes.CDLL(None), i.e. in the process's
global symbol scope, which is what a C extension calling malloc() gets.
"""

import pytest

MIB = 1024 * 1024

ALLOC_BODY = """
MIB = 1024 * 1024

kept = []


def touch(p, n):
    assert p, "allocation failed"
    ctypes.memset(p, 1, n)
    kept.append(p)


# Freed before the peak: must not appear.
gone = libc.malloc(40 * MIB)  # L_FREED
ctypes.memset(gone, 1, 40 * MIB)
libc.free(gone)

touch(libc.malloc(10 * MIB), 10 * MIB)  # L_MALLOC
touch(libc.calloc(11, MIB), 11 * MIB)  # L_CALLOC
small = libc.malloc(MIB)  # L_REALLOC_FROM
touch(libc.realloc(small, 12 * MIB), 12 * MIB)  # L_REALLOC
touch(libc.reallocarray(None, 13, MIB), 13 * MIB)  # L_REALLOCARRAY
out = vp()
assert libc.posix_memalign(ctypes.byref(out), 4096, 14 * MIB) == 0  # L_POSIX_MEMALIGN
touch(out.value, 14 * MIB)
touch(libc.aligned_alloc(4096, 15 * MIB), 15 * MIB)  # L_ALIGNED_ALLOC
touch(libc.memalign(65536, 16 * MIB), 16 * MIB)  # L_MEMALIGN
touch(libc.valloc(17 * MIB), 17 * MIB)  # L_VALLOC
touch(libc.pvalloc(18 * MIB + 100), 18 * MIB)  # L_PVALLOC
print("kept", len(kept))
"""


def alloc_script(fp):
    """ALLOC_BODY after the ctypes prototypes of libc's allocators."""
    return fp.LIBC_ALLOCATORS + ALLOC_BODY


# marker -> bytes expected at the peak
ALLOC_EXPECTED = {
    "L_MALLOC": 10 * MIB,
    "L_CALLOC": 11 * MIB,
    "L_REALLOC": 12 * MIB,
    "L_REALLOCARRAY": 13 * MIB,
    "L_POSIX_MEMALIGN": 14 * MIB,
    "L_ALIGNED_ALLOC": 15 * MIB,
    "L_MEMALIGN": 16 * MIB,
    "L_VALLOC": 17 * MIB,
    "L_PVALLOC": 18 * MIB + 4096,  # rounded up to the page
}


@pytest.fixture(scope="module")
def alloc_report(tmp_path_factory, fp):
    tmp = tmp_path_factory.mktemp("allocators")
    proc, result = fp.run_fil(tmp, alloc_script(fp))
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"kept 9\n"
    entries, summary = fp.check_peak_report(result)
    return entries, summary


@pytest.mark.parametrize("marker", sorted(ALLOC_EXPECTED))
def test_allocator_line(alloc_report, fp, marker):
    entries, _ = alloc_report
    line = fp.line_of(alloc_script(fp), marker)
    got = fp.bytes_last_frame(entries, "script.py", line)
    expected = ALLOC_EXPECTED[marker]
    # The size requested, give or take a page (pvalloc) and a few small
    # Python objects created on the same line (ctypes results, ints).
    assert abs(got - expected) <= 8192, \
        "%s (line %d): %d bytes, expected %d\n%s" % (marker, line, got, expected, fp.fmt_prof(entries))


def test_freed_and_reallocated_blocks_absent(alloc_report, fp):
    entries, summary = alloc_report
    for marker in ("L_FREED", "L_REALLOC_FROM"):
        line = fp.line_of(alloc_script(fp), marker)
        got = fp.bytes_with_frame(entries, "script.py", line)
        assert got < 64 * 1024, "%s (line %d): %d bytes\n%s" % (marker, line, got, fp.fmt_prof(entries))
    held = sum(ALLOC_EXPECTED.values())
    assert held <= summary["peak_bytes"] <= held + 30 * MIB, summary["peak_bytes"]


MMAP_SCRIPT = """
import ctypes
import mmap

MIB = 1024 * 1024
PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
MREMAP_MAYMOVE = 1
MAP_FIXED = 0x10
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
MAP_FAILED = ctypes.c_void_p(-1).value


# The page after p[:n] becomes a mapping of its own: p cannot grow in place.
def blocked_after(p, n):
    assert libc.mprotect(p + n, 4096, mmap.PROT_READ) == 0

# Unmapped before the peak: must not appear.
gone = mmap.mmap(-1, 48 * MIB)  # M_GONE
gone.write(b"x" * 4096)
gone.close()

py_map = mmap.mmap(-1, 64 * MIB)  # M_PYMMAP
py_map[::4096] = b"y" * (64 * MIB // 4096)

half = libc.mmap(None, 32 * MIB, PROT_RW, FLAGS, -1, 0)  # M_HALF
assert half not in (None, MAP_FAILED)
ctypes.memset(half, 1, 32 * MIB)
assert libc.munmap(half + 16 * MIB, 16 * MIB) == 0  # M_MUNMAP

grow = libc.mmap(None, 8 * MIB, PROT_RW, FLAGS, -1, 0)  # M_GROW_FROM
assert grow not in (None, MAP_FAILED)
grown = libc.mremap(grow, 8 * MIB, 24 * MIB, MREMAP_MAYMOVE)  # M_MREMAP
assert grown not in (None, MAP_FAILED)
ctypes.memset(grown, 1, 24 * MIB)

# mremap failing (the next page is taken, no MREMAP_MAYMOVE) leaves the
# mapping where it was, and charged where it was.
stay = libc.mmap(None, 12 * MIB + 4096, PROT_RW, FLAGS, -1, 0)  # M_STAY
assert stay not in (None, MAP_FAILED)
blocked_after(stay, 12 * MIB)
assert libc.mremap(stay, 12 * MIB, 20 * MIB, 0) == MAP_FAILED  # M_STAY_FAILS
# The same over one mapping made by two lines.
two = libc.mmap(None, 16 * MIB + 4096, PROT_RW, FLAGS, -1, 0)  # M_TWO_FIRST
assert two not in (None, MAP_FAILED)
blocked_after(two, 16 * MIB)
assert libc.mmap(two + 8 * MIB, 8 * MIB, PROT_RW, FLAGS | MAP_FIXED, -1, 0) == two + 8 * MIB  # M_TWO_SECOND
assert libc.mremap(two, 16 * MIB, 32 * MIB, 0) == MAP_FAILED  # M_TWO_FAILS
# munmap refusing an address off a page boundary unmaps nothing.
kept = libc.mmap(None, 6 * MIB, PROT_RW, FLAGS, -1, 0)  # M_KEPT
assert kept not in (None, MAP_FAILED)
assert libc.munmap(kept + 100, MIB) == -1 and ctypes.get_errno() == 22  # M_KEPT_FAILS
# The peak is now, after the failures.
assert libc.mmap(None, 8 * MIB, PROT_RW, FLAGS, -1, 0) not in (None, MAP_FAILED)
print("mapped")
"""


@pytest.fixture(scope="module")
def mmap_report(tmp_path_factory, fp):
    tmp = tmp_path_factory.mktemp("mmap")
    proc, result = fp.run_fil(tmp, MMAP_SCRIPT)
    assert proc.returncode == 0, fp.describe(proc)
    assert proc.stdout == b"mapped\n"
    return fp.check_peak_report(result)


def _line_bytes(fp, entries, marker):
    line = fp.line_of(MMAP_SCRIPT, marker)
    return line, fp.bytes_last_frame(entries, "script.py", line)


def test_python_mmap_module(mmap_report, fp):
    entries, _ = mmap_report
    line, got = _line_bytes(fp, entries, "M_PYMMAP")
    assert abs(got - 64 * MIB) <= fp.PAGE + 4096, "line %d: %d\n%s" % (line, got, fp.fmt_prof(entries))
    line, got = _line_bytes(fp, entries, "M_GONE")
    assert got < 64 * 1024, "closed mmap, line %d: %d\n%s" % (line, got, fp.fmt_prof(entries))


def test_partial_munmap_leaves_the_remaining_half(mmap_report, fp):
    entries, _ = mmap_report
    line, got = _line_bytes(fp, entries, "M_HALF")
    assert abs(got - 16 * MIB) <= fp.PAGE, "line %d: %d\n%s" % (line, got, fp.fmt_prof(entries))
    # munmap itself allocates nothing.
    line, got = _line_bytes(fp, entries, "M_MUNMAP")
    assert got < 4096, "line %d: %d" % (line, got)


def test_mremap_grows_the_mapping(mmap_report, fp):
    entries, summary = mmap_report
    # Like realloc: the whole grown mapping belongs to the line that grew it.
    from_line, from_bytes = _line_bytes(fp, entries, "M_GROW_FROM")
    line, got = _line_bytes(fp, entries, "M_MREMAP")
    msg = "mmap line %d: %d, mremap line %d: %d\n%s" % (
        from_line, from_bytes, line, got, fp.fmt_prof(entries))
    assert abs((from_bytes + got) - 24 * MIB) <= fp.PAGE, msg
    assert abs(got - 24 * MIB) <= fp.PAGE, msg
    held = (64 + 16 + 24 + 12 + 16 + 6 + 8) * MIB
    assert held <= summary["peak_bytes"] <= held + 30 * MIB, summary["peak_bytes"]


@pytest.mark.parametrize("marker, expected", [
    ("M_STAY", 12 * MIB + 4096), ("M_STAY_FAILS", 0),
    ("M_TWO_FIRST", 8 * MIB + 4096), ("M_TWO_SECOND", 8 * MIB), ("M_TWO_FAILS", 0),
    ("M_KEPT", 6 * MIB), ("M_KEPT_FAILS", 0)])
def test_failed_mremap_or_munmap_leaves_the_charge_where_it_was(mmap_report, fp, marker, expected):
    entries, _ = mmap_report
    line, got = _line_bytes(fp, entries, marker)
    assert abs(got - expected) <= 4096, "%s line %d: %d, expected %d\n%s" % (
        marker, line, got, expected, fp.fmt_prof(entries))


FILE_MAPS = """
import mmap

MIB = 1024 * 1024
with open("data.bin", "wb") as f:
    f.truncate(40 * MIB)
f = open("data.bin", "r+b")
copy = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # F_COPY
for off in range(0, len(copy), mmap.PAGESIZE):
    copy[off] = 1  # every page a private copy now
read = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # F_READ
shared = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE)  # F_SHARED
shared[0] = 2
print(sum(read[k] for k in range(0, len(read), MIB)), copy[0], flush=True)
"""


def test_private_writable_file_mapping_is_the_programs_memory(tmp_path, fp):
    """A private writable mapping of a file (mmap ACCESS_COPY, numpy.memmap
    mode "c") makes private copies of the pages written, anonymous memory
    the kernel and a cgroup count: its 40 MiB are charged to its line (they
    were not). Read-only and shared mappings stay the page cache's."""
    proc, result = fp.run_fil(tmp_path, FILE_MAPS)
    assert proc.returncode == 0 and proc.stdout == b"2 1\n", fp.describe(proc)
    entries, _ = fp.check_peak_report(result)
    at = {m: fp.bytes_last_frame(entries, "script.py", fp.line_of(FILE_MAPS, m))
          for m in ("F_COPY", "F_READ", "F_SHARED")}
    assert abs(at["F_COPY"] - 40 * MIB) <= fp.PAGE, (at, fp.fmt_prof(entries))
    assert at["F_READ"] < MIB and at["F_SHARED"] < MIB, (at, fp.fmt_prof(entries))
