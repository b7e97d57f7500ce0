/* SPDX-License-Identifier: MIT */
/*
 * fil/sys.h - raw system calls for the profiler's own memory.
 *
 * The preload library exports mmap/munmap/mremap itself, so the profiler must
 * never call those names for its own pages: it would be tracked and charged
 * to the program (invariant 1). These inline wrappers go straight to the
 * kernel. They are async-signal-safe.
 */
#ifndef FIL_SYS_H
#define FIL_SYS_H

#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Anonymous private zeroed pages; NULL on failure. Any context. */
static inline void *fil_sys_pages(size_t len) {
    long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                     0);
    return (r < 0 && r > -4096) ? NULL : (void *)r;
}

/* Map len bytes of fd at off, shared, read-write; NULL on failure. */
static inline void *fil_sys_map_shared(int fd, size_t len, off_t off) {
    long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
    return (r < 0 && r > -4096) ? NULL : (void *)r;
}

/* Like fil_sys_pages, for large tables probed at random: asks for
 * transparent huge pages, which spares a TLB miss and a page fault per 4 KiB. */
static inline void *fil_sys_pages_huge(size_t len) {
    void *p = fil_sys_pages(len);
    if (p && len >= (2u << 20))
        syscall(SYS_madvise, p, len, MADV_HUGEPAGE);
    return p;
}

/* Like fil_sys_pages, for a table that may stay small: asks for no
 * transparent huge pages, which THP "always" would give a 2 MiB mapping
 * whose first byte is touched. */
static inline void *fil_sys_pages_small(size_t len) {
    void *p = fil_sys_pages(len);
    if (p && len >= (2u << 20))
        syscall(SYS_madvise, p, len, MADV_NOHUGEPAGE);
    return p;
}

static inline void fil_sys_unmap(void *p, size_t len) {
    if (p)
        syscall(SYS_munmap, p, len);
}

/*
 * The profiler's own long-lived descriptors (the state memfd, libunwind's
 * validation pipe) live high, from 32 below min(soft RLIMIT_NOFILE, 1024)
 * up: never on 0-2, which the program owns even when it closed them, and
 * out of the way of the program's own open(), which gets the numbers it
 * would get without the profiler. Below 1024 so that they never push the
 * descriptor table past FD_SETSIZE. Any context (raw prlimit64).
 */
static inline int fil_sys_fd_base(void) {
    struct rlimit rl;
    long lim = 1024;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur < 1024)
        lim = (long)rl.rlim_cur;
    return lim > 64 ? (int)lim - 32 : 3;
}

/* Move fd up to fil_sys_fd_base() or above (else to 3 or above), close-on-
 * exec, and close the original. Returns the new descriptor, or fd itself if
 * no higher one is free. Any context (fcntl, close). */
static inline int fil_sys_fd_high(int fd) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, fil_sys_fd_base());
    if (moved < 0)
        moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
        return fd;
    close(fd);
    return moved;
}

/*
 * Fault in the pages of [p + from, p + to) for writing without changing a
 * byte: each page gets an atomic add of 0, so memory another thread is
 * writing meanwhile keeps what it wrote (a plain store of a marker would
 * overwrite it). A page written this way is the process's own, never the
 * shared zero page nor a fork's shared copy. Any context.
 */
static inline void fil_sys_touch_pages(char *p, size_t from, size_t to) {
    for (size_t i = from; i < to; i += 4096)
        __atomic_fetch_add((volatile unsigned char *)p + i, 0, __ATOMIC_RELAXED);
}

/* Round n up to a multiple of the 4 KiB page. */
static inline size_t fil_page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

#endif
