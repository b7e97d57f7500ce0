/* SPDX-License-Identifier: MIT */
/*
 * mmap.c - the exported mmap, mmap64, munmap and mremap.
 *
 * Only mappings that can hold memory of the program's own are tracked:
 * anonymous ones, and private writable mappings of a file (mmap's
 * ACCESS_COPY, numpy.memmap mode "c", /dev/zero), whose written pages are
 * private copies counted as anonymous memory, charged at their whole
 * length as anonymous mappings are (PROT_NONE reservations hold none until
 * mprotect, which we do not follow). Other file mappings are the page
 * cache's, not the program's heap, but one placed with MAP_FIXED over a
 * tracked range ends that range. The real calls are raw system calls, so
 * glibc's own internal mappings (large malloc blocks, thread stacks), which
 * never come through these symbols, are not counted twice.
 *
 * Out of memory (invariant 7): a request goes through the predictive check
 * (which looks at real usage, not at the request's size), except MAP_HUGETLB,
 * whose pages come from the reserved huge-page pool rather than from the
 * memory the check watches. A failure is an out-of-memory condition only
 * when it is ENOMEM and a memory limit explains it
 * (fil_oom_mapping_exhausted): an empty huge-page pool, vm.max_map_count or
 * an mremap that cannot grow in place hand the failure to the program as
 * they would without the profiler.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/tracker.h"
#include "interpose_internal.h"

static inline int enter(void) { return fil_enter(0); }

static void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

FIL_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!enter())
        return raw_mmap(addr, len, prot, flags, fd, off);
    int own = (flags & MAP_ANONYMOUS) || ((flags & MAP_TYPE) == MAP_PRIVATE && (prot & PROT_WRITE));
    int anon = own && prot != PROT_NONE;
    if (anon && !(flags & MAP_HUGETLB) && fil_oom_precheck("mmap", len)) {
        fil_guard = 0; /* predicted out of memory, --on-oom=continue: errno is ENOMEM */
        return MAP_FAILED;
    }
    void *p = raw_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED) {
        FIL_ASSERT(len > 0); /* the tracker never gets an empty range */
        if (anon)
            fil_tracker_map(p, len, fil_stacks_current());
        else if (flags & MAP_FIXED)
            fil_tracker_unmap(p, len);
    } else if (anon && errno == ENOMEM && fil_oom_mapping_exhausted(len, flags, prot)) {
        fil_oom_failed("mmap", len);
        errno = ENOMEM;
    }
    fil_guard = 0;
    return p;
}

FIL_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}

/* A munmap that fails (an address not on a page boundary, a split past
 * vm.max_map_count) unmapped nothing: what was forgotten goes back. */
FIL_API int munmap(void *addr, size_t len) {
    if (!enter())
        return (int)syscall(SYS_munmap, addr, len);
    fil_unmapped_t was; /* forget first: after the call the range may be reused */
    uint64_t had = fil_tracker_unmap_keep(addr, len, &was);
    fil_guard = 0;
    int r = (int)syscall(SYS_munmap, addr, len);
    if (r != 0 && had && enter()) {
        int e = errno;
        fil_tracker_unmap_undo(&was);
        fil_guard = 0;
        errno = e;
    }
    return r;
}

FIL_API void *mremap(void *old, size_t old_len, size_t len, int flags, ...) {
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    if (!enter())
        return (void *)syscall(SYS_mremap, old, old_len, len, flags, want);
    uint32_t node = fil_stacks_current();
    fil_unmapped_t was;
    if (!fil_tracker_unmap_keep(old, old_len, &was)) { /* not an anonymous mapping we track */
        fil_guard = 0;
        return (void *)syscall(SYS_mremap, old, old_len, len, flags, want);
    }
    void *p = (len > old_len && fil_oom_precheck("mremap", len - old_len))
                  ? MAP_FAILED
                  : (void *)syscall(SYS_mremap, old, old_len, len, flags, want);
    if (p != MAP_FAILED) {
        fil_tracker_map(p, len, node);
    } else {
        int e = errno;
        fil_tracker_unmap_undo(&was); /* still where it was, charged where it was */
        if (e == ENOMEM && len > old_len &&
            fil_oom_mapping_exhausted(len - old_len, MAP_PRIVATE, PROT_WRITE))
            fil_oom_failed("mremap", len);
        errno = e;
    }
    fil_guard = 0;
    return p;
}
