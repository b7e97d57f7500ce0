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

#include <stddef.h>
#include <sys/mman.h>
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

static inline void fil_sys_unmap(void *p, size_t len) {
    if (p)
        syscall(SYS_munmap, p, len);
}

/* Round n up to a multiple of the 4 KiB page. */
static inline size_t fil_page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

#endif
