/* SPDX-License-Identifier: MIT */
/*
 * interpose.c - the exported allocator functions of libfilpreload.so.
 *
 * Each wrapper calls the next definition of the same function in the
 * program's chain (dlsym(RTLD_NEXT, ...): an LD_PRELOADed jemalloc or
 * tcmalloc after us, else the C library), so the allocator the program
 * chose keeps serving it, malloc_usable_size and friends included, and
 * argument checks (alignments, overflowing products) are that allocator's
 * own. dlsym may allocate while the chain is resolved: those few requests
 * are served from a small static buffer whose blocks are never freed. A
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
#include <malloc.h>
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

/* The next allocator in the chain; written once by resolve_next (the
 * constructor, or the first allocation before it). */
static struct next {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
} next;

/* Requests made while dlsym resolves the chain (glibc's dlsym may calloc a
 * small buffer): bump-allocated here, never freed. */
static char boot[4096] __attribute__((aligned(16)));
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t n) {
    size_t at = (boot_used + 15) & ~(size_t)15;
    if (n > sizeof boot - at)
        return NULL;
    boot_used = at + n;
    return boot + at;
}

static int is_boot(const void *p) {
    return (const char *)p >= boot && (const char *)p < boot + sizeof boot;
}

#define NEXT(name, fallback)                                                                       \
    do {                                                                                           \
        void *f = dlsym(RTLD_NEXT, #name);                                                         \
        next.name = f && f != (void *)name ? (__typeof__(next.name))f : (fallback);                \
    } while (0)

/* Resolve the next definitions (or glibc's internal entry points if there
 * is none). Context: the constructor or the first allocation; the
 * allocations dlsym makes meanwhile come from boot. */
static __attribute__((noinline)) void resolve_next(void) {
    resolving = 1;
    NEXT(malloc, __libc_malloc);
    NEXT(calloc, __libc_calloc);
    NEXT(realloc, __libc_realloc);
    NEXT(free, __libc_free);
    NEXT(posix_memalign, NULL);
    NEXT(aligned_alloc, __libc_memalign);
    NEXT(memalign, __libc_memalign);
    NEXT(valloc, __libc_valloc);
    NEXT(pvalloc, __libc_pvalloc);
    resolving = 0;
}

/* Make sure the chain is resolved. 0 if a call must be served from boot
 * (dlsym is resolving it right now on this thread). */
static inline int ready(void) {
    if (FIL_LIKELY(next.free != NULL))
        return 1;
    if (resolving)
        return 0;
    resolve_next();
    return 1;
}

/* Context: the preload constructor (via fil_interpose_resolve). */
void fil_interpose_resolve_alloc(void) {
    if (!next.free && !resolving)
        resolve_next();
}

static inline int enter(void) { return fil_enter(1); }

/* A request for more than PTRDIFF_MAX bytes (a negative size cast to
 * size_t) is refused by the C library on its arguments alone (NULL/ENOMEM)
 * without looking for memory, as an overflowing calloc is: not an
 * out-of-memory condition, and nothing to track. */
static inline int impossible(size_t size) { return FIL_UNLIKELY(size > (size_t)PTRDIFF_MAX); }

static inline void leave(void) { fil_guard = 0; }

FIL_API void *malloc(size_t size) {
    if (FIL_UNLIKELY(!ready()))
        return boot_alloc(size);
    if (impossible(size) || !enter())
        return next.malloc(size);
    void *p = fil_oom_precheck("malloc", size) ? NULL : next.malloc(size);
    if (p)
        fil_tracker_add(p, size, fil_stacks_current());
    else
        fil_oom_failed("malloc", size);
    leave();
    return p;
}

/* n * m overflowing, or beyond PTRDIFF_MAX, is the allocator's own failure
 * (NULL/ENOMEM), not an out-of-memory condition: passed straight through,
 * before any check. */
FIL_API void *calloc(size_t n, size_t m) {
    size_t size;
    if (FIL_UNLIKELY(!ready())) {
        if (__builtin_mul_overflow(n, m, &size))
            return NULL;
        return boot_alloc(size); /* static storage: already zero */
    }
    if (__builtin_mul_overflow(n, m, &size) || impossible(size) || !enter())
        return next.calloc(n, m);
    void *p = fil_oom_precheck("calloc", size) ? NULL : next.calloc(n, m);
    if (p)
        fil_tracker_add(p, size, fil_stacks_current());
    else
        fil_oom_failed("calloc", size);
    leave();
    return p;
}

FIL_API void free(void *p) {
    if (!p || FIL_UNLIKELY(is_boot(p)))
        return;
    if (enter()) {
        fil_tracker_remove(p);
        leave();
    }
    if (FIL_UNLIKELY(!next.free))
        ready();
    next.free(p);
}

/* realloc and reallocarray. realloc(p, 0) frees p and returning NULL then is
 * not an out-of-memory condition. */
static void *do_realloc(const char *fn, void *old, size_t size) {
    if (FIL_UNLIKELY(!ready()) || FIL_UNLIKELY(old && is_boot(old))) {
        void *p = ready() ? malloc(size) : boot_alloc(size);
        if (p && old) /* a boot block: copy what it can hold */
            memcpy(p, old, size < (size_t)(boot + sizeof boot - (char *)old)
                               ? size : (size_t)(boot + sizeof boot - (char *)old));
        return p;
    }
    if (impossible(size) || !enter()) /* old is left as it was */
        return next.realloc(old, size);
    if (old && size == 0) { /* a free */
        fil_tracker_remove(old);
        leave();
        return next.realloc(old, 0);
    }
    fil_realloc_t t;
    fil_tracker_realloc_begin(old, &t, 0);
    void *p = fil_oom_precheck(fn, size) ? NULL : next.realloc(old, size);
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

/* The aligned allocators: the next allocator's own function with the
 * program's arguments (its rules for odd alignments apply: glibc 2.36's
 * aligned_alloc(3, n) returns memory), tracked at `charged` bytes. A NULL
 * with EINVAL is the allocator refusing the arguments, not memory running
 * out. */
static inline void *aligned_done(const char *fn, void *p, size_t size, size_t charged, int err) {
    if (p)
        fil_tracker_add(p, charged, fil_stacks_current());
    else if (err != EINVAL)
        fil_oom_failed(fn, size);
    leave();
    return p;
}

FIL_API int posix_memalign(void **out, size_t align, size_t size) {
    ready();
    int (*pm)(void **, size_t, size_t) = next.posix_memalign;
    if (!pm) { /* no next posix_memalign: glibc's rules */
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        void *p = memalign(align, size);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    if (impossible(size) || !enter())
        return pm(out, align, size);
    int r = fil_oom_precheck("posix_memalign", size) ? ENOMEM : pm(out, align, size);
    aligned_done("posix_memalign", r == 0 ? *out : NULL, size, size, r);
    return r;
}

FIL_API void *aligned_alloc(size_t align, size_t size) {
    ready();
    if (impossible(size) || !enter())
        return next.aligned_alloc(align, size);
    void *p = fil_oom_precheck("aligned_alloc", size) ? NULL : next.aligned_alloc(align, size);
    return aligned_done("aligned_alloc", p, size, size, p ? 0 : errno);
}

FIL_API void *memalign(size_t align, size_t size) {
    ready();
    if (impossible(size) || !enter())
        return next.memalign(align, size);
    void *p = fil_oom_precheck("memalign", size) ? NULL : next.memalign(align, size);
    return aligned_done("memalign", p, size, size, p ? 0 : errno);
}

FIL_API void *valloc(size_t size) {
    ready();
    if (impossible(size) || !enter())
        return next.valloc(size);
    void *p = fil_oom_precheck("valloc", size) ? NULL : next.valloc(size);
    return aligned_done("valloc", p, size, size, p ? 0 : errno);
}

FIL_API void *pvalloc(size_t size) {
    ready();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;
    if (impossible(size) || !enter())
        return next.pvalloc(size);
    void *p = fil_oom_precheck("pvalloc", rounded) ? NULL : next.pvalloc(size);
    return aligned_done("pvalloc", p, rounded, rounded, p ? 0 : errno);
}
