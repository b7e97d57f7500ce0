/* SPDX-License-Identifier: MIT */
/*
 * interpose.c - the exported allocator functions of libfilpreload.so.
 *
 * Each wrapper calls the real function and tells the tracker. The real
 * allocators are glibc's __libc_* entry points and the raw mmap family
 * system calls, so no dlsym is needed before the first malloc. A
 * thread-local guard makes the profiler's own work (and anything it calls
 * that allocates) pass straight through untracked: invariant 1.
 *
 * Ordering matters for threads: a block is forgotten before the real free or
 * realloc runs and recorded after the real allocation returns, so the same
 * address handed to another thread in between is never confused with it.
 *
 * Tracking is off until the constructor has mapped the state, and off for
 * good in a fork() child (the state is the parent's).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"
#include "interpose_internal.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static inline int enter(void) { return fil_enter(1); }

static inline void leave(void) { fil_guard = 0; }

FIL_API void *malloc(size_t size) {
    if (!enter())
        return __libc_malloc(size);
    void *p = fil_oom_precheck("malloc", size) ? NULL : __libc_malloc(size);
    if (p)
        fil_tracker_add(p, size, fil_stacks_current());
    else
        fil_oom_failed("malloc", size);
    leave();
    return p;
}

FIL_API void *calloc(size_t n, size_t m) {
    size_t size;
    if (__builtin_mul_overflow(n, m, &size))
        size = SIZE_MAX;
    if (!enter())
        return __libc_calloc(n, m);
    void *p = fil_oom_precheck("calloc", size) ? NULL : __libc_calloc(n, m);
    if (p)
        fil_tracker_add(p, size, fil_stacks_current());
    else if (size != SIZE_MAX)
        fil_oom_failed("calloc", size);
    leave();
    return p;
}

FIL_API void free(void *p) {
    if (!p)
        return;
    if (enter()) {
        fil_tracker_remove(p);
        leave();
    }
    __libc_free(p);
}

/* realloc and reallocarray. realloc(p, 0) frees p and returning NULL then is
 * not an out-of-memory condition. */
static void *do_realloc(const char *fn, void *old, size_t size) {
    if (!enter())
        return __libc_realloc(old, size);
    if (old && size == 0) { /* a free */
        fil_tracker_remove(old);
        leave();
        return __libc_realloc(old, 0);
    }
    fil_realloc_t t;
    fil_tracker_realloc_begin(old, &t, 0);
    void *p = fil_oom_precheck(fn, size) ? NULL : __libc_realloc(old, size);
    fil_tracker_realloc_end(&t, old, p, size, p ? fil_stacks_current() : 0, 0);
    if (!p)
        fil_oom_failed(fn, size);
    leave();
    return p;
}

FIL_API void *realloc(void *old, size_t size) {
    return do_realloc("realloc", old, size);
}

FIL_API void *reallocarray(void *old, size_t n, size_t m) {
    size_t size;
    if (__builtin_mul_overflow(n, m, &size)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc("reallocarray", old, size);
}

/* Shared tail of the aligned allocators. */
static void *aligned(const char *fn, size_t align, size_t size, size_t charged) {
    if (!enter())
        return __libc_memalign(align, size);
    void *p = fil_oom_precheck(fn, size) ? NULL : __libc_memalign(align, size);
    if (p)
        fil_tracker_add(p, charged, fil_stacks_current());
    else
        fil_oom_failed(fn, size);
    leave();
    return p;
}

FIL_API int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    int saved = errno;
    void *p = aligned("posix_memalign", align, size, size);
    if (!p)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

FIL_API void *aligned_alloc(size_t align, size_t size) {
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return aligned("aligned_alloc", align, size, size);
}

FIL_API void *memalign(size_t align, size_t size) { return aligned("memalign", align, size, size); }

FIL_API void *valloc(size_t size) {
    return aligned("valloc", (size_t)sysconf(_SC_PAGESIZE), size, size);
}

FIL_API void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;
    return aligned("pvalloc", page, rounded, rounded);
}
