# SPDX-License-Identifier: MIT
"""Healthy programs that reserve or probe memory they do not use.

argv[1] picks one:
  hugetlb    try a 2 MiB MAP_HUGETLB mapping, fall back to a plain one when
             the huge-page pool is empty (what many allocators do)
  noreserve  reserve 64 GiB with MAP_NORESERVE, write 10 MiB of it
  big        map MemTotal bytes privately (the heuristic overcommit grants one
             mapping up to RAM + swap), write 10 MiB of it
  bigshared  the same with the mmap module (MAP_SHARED | MAP_ANONYMOUS)
  cgroup     map 1 GiB (more than the cgroup's room), write 10 MiB of it
  mremap     grow a mapping in place with mremap(2) without MREMAP_MAYMOVE
             while the next page is taken: ENOMEM, and the program carries on
Each prints what happened; plain Python and the profiler must agree.
"""
import ctypes
import errno
import mmap
import sys

MIB = 1024 * 1024
PAGE = mmap.PAGESIZE
MAP_HUGETLB = 0x40000
MAP_NORESERVE = 0x4000
MAP_FIXED_NOREPLACE = 0x100000
FAILED = ctypes.c_void_p(-1).value
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
RW = mmap.PROT_READ | mmap.PROT_WRITE
PRIVATE = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


def anon(size, extra=0, addr=None):
    p = libc.mmap(addr, size, RW, PRIVATE | extra, -1, 0)
    return None if p in (None, FAILED) else p


def write_some(p, n=10 * MIB):
    ctypes.memset(p, 1, n)
    print("wrote", n)


def mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no MemTotal")


how = sys.argv[1]
if how == "hugetlb":
    p = anon(2 * MIB, MAP_HUGETLB)  # @probe
    print("huge pages" if p else "no huge pages: " + errno.errorcode[ctypes.get_errno()])
    write_some(p or anon(2 * MIB), 2 * MIB)
elif how == "noreserve":
    p = anon(64 << 30, MAP_NORESERVE)  # @reserve
    print("reserved 64 GiB" if p else "refused")
    write_some(p)
elif how == "big":
    p = anon(mem_total())  # @big
    print("mapped MemTotal" if p else "refused")
    write_some(p)
elif how == "bigshared":
    m = mmap.mmap(-1, mem_total())  # @bigshared
    m[0:10 * MIB] = b"\1" * (10 * MIB)
    print("mapped MemTotal, wrote", 10 * MIB)
elif how == "cgroup":
    p = anon(1 << 30)  # @cgroup
    print("mapped 1 GiB" if p else "refused")
    write_some(p)
elif how == "mremap":
    p = anon(4 * PAGE)
    libc.munmap(ctypes.c_void_p(p + 2 * PAGE), 2 * PAGE)
    blocker = anon(PAGE, MAP_FIXED_NOREPLACE, p + 2 * PAGE)
    print("next page taken:", blocker == p + 2 * PAGE)
    q = libc.mremap(p, 2 * PAGE, 4 * PAGE, 0)  # @mremap
    print("grew in place" if q not in (None, FAILED) else
          "cannot grow in place: " + errno.errorcode[ctypes.get_errno()])
print("done")
