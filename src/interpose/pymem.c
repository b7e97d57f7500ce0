/* SPDX-License-Identifier: MIT */
/*
 * pymem.c - track Python objects through CPython's allocator hooks.
 *
 * Python objects mostly come from pymalloc, which carves small blocks out
 * of 1 MiB arenas. Tracking the arenas (as anonymous mmaps) would charge a
 * whole arena to whichever line happened to open it; running the program
 * with PYTHONMALLOC=malloc would see every object but costs 1.9x on
 * allocation-heavy code (glibc is much slower than pymalloc for small
 * objects). So pymalloc stays, and the PYMEM_DOMAIN_MEM and
 * PYMEM_DOMAIN_OBJ allocators are wrapped (PyMem_SetAllocator): each block
 * is tracked with its requested size, like a malloc. The arena allocator is
 * replaced by raw, untracked mmap/munmap so no byte is counted twice, and
 * its arenas carry the per-pool records where a block's size and call
 * stack cost half a byte (src/tracker/pools.h) instead of a table entry.
 *
 * The hooks are installed by the constructor, before the interpreter
 * initialises (the API allows it, and Python only resets these allocators
 * when PYTHONMALLOC or -X dev asks for another one); the extension calls
 * fil_pymem_install() again at start-up, which re-wraps whatever allocator
 * is then in place if ours was replaced. The CPython structures are
 * declared here (they are stable, documented API), so this library does not
 * build against Python's headers; the functions are found with dlsym in the
 * running executable, and nothing happens when the program is not Python.
 *
 * Context: the MEM and OBJ domains are called with the GIL held; the hooks
 * still go through the tracker's lock like every other allocation.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/tracker.h"
#include "interpose_internal.h"

/* CPython's PyMemAllocatorEx and PyObjectArenaAllocator (Include/cpython/pymem.h,
 * Include/cpython/objimpl.h), and the domain numbers. */
typedef struct pymem_alloc {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} pymem_alloc_t;

typedef struct arena_alloc {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
} arena_alloc_t;

enum { DOMAIN_MEM = 1, DOMAIN_OBJ = 2 };

typedef void (*get_fn)(int, pymem_alloc_t *);
typedef void (*set_fn)(int, pymem_alloc_t *);
typedef void (*arena_fn)(arena_alloc_t *);

/* The allocators wrapped, per domain: one slot per installation, never
 * reused, because an earlier hook may still be in the chain under the one
 * in front of it (tracemalloc wraps ours at start-up; wrapping tracemalloc
 * again must not redirect the inner hook to it, or they call each other
 * forever). Written at installation, which happens before other threads
 * exist or with the GIL held. */
#define WRAPS 4
static pymem_alloc_t orig[3][WRAPS];
static int nwraps[3];

/* Names for reports: the API a failing request came through. */
static const char *const names[3][3] = {
    {"", "", ""},
    {"PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc"},
    {"PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc"},
};
#define NAME(o, i) names[((pymem_alloc_t *)(o) - &orig[0][0]) / WRAPS][i]

/* The out-of-memory check's two ends, out of line: the name is only worked
 * out when the allowance runs out or a request fails. */
static __attribute__((noinline)) int refill(const pymem_alloc_t *o, int i, size_t size) {
    return fil_oom_refill(NAME(o, i), size);
}

static __attribute__((noinline)) void failed(const pymem_alloc_t *o, int i, size_t size) {
    fil_oom_failed(NAME(o, i), size);
}

static inline int enter(void) { return fil_enter(1); }

static void *h_malloc(void *ctx, size_t size) {
    pymem_alloc_t *o = ctx;
    if (!enter())
        return o->malloc(o->ctx, size);
    void *p = fil_oom_fits(size) || refill(o, 0, size) == 0 ? o->malloc(o->ctx, size) : NULL;
    if (FIL_LIKELY(p != NULL))
        fil_tracker_py_add(p, size, fil_stacks_current_pymem());
    else
        failed(o, 0, size);
    fil_guard = 0;
    return p;
}

static void *h_calloc(void *ctx, size_t n, size_t m) {
    pymem_alloc_t *o = ctx;
    size_t size;
    if (__builtin_mul_overflow(n, m, &size) || !enter())
        return o->calloc(o->ctx, n, m);
    void *p = fil_oom_fits(size) || refill(o, 1, size) == 0 ? o->calloc(o->ctx, n, m) : NULL;
    if (FIL_LIKELY(p != NULL))
        fil_tracker_py_add(p, size, fil_stacks_current_pymem());
    else
        failed(o, 1, size);
    fil_guard = 0;
    return p;
}

/* Python's realloc never frees on size 0 (it returns a 1-byte block), so
 * NULL here is always a failure and the old block is still live. */
static void *h_realloc(void *ctx, void *old, size_t size) {
    pymem_alloc_t *o = ctx;
    if (!enter())
        return o->realloc(o->ctx, old, size);
    fil_realloc_t t;
    fil_tracker_realloc_begin(old, &t, 1);
    void *p = fil_oom_fits(size) || refill(o, 2, size) == 0 ? o->realloc(o->ctx, old, size) : NULL;
    fil_tracker_realloc_end(&t, old, p, size, p ? fil_stacks_current_pymem() : 0, 1);
    if (FIL_UNLIKELY(p == NULL))
        failed(o, 2, size);
    fil_guard = 0;
    return p;
}

static void h_free(void *ctx, void *p) {
    pymem_alloc_t *o = ctx;
    if (p && enter()) {
        fil_tracker_py_remove(p);
        fil_guard = 0;
    }
    o->free(o->ctx, p);
}

/* pymalloc's arenas: raw mappings (not tracked as mmaps), S-aligned with the
 * pool records the tracker keeps its objects' sizes and stacks in. */
static void *arena_new(void *ctx, size_t size) {
    (void)ctx;
    return fil_tracker_arena_new(size);
}

static void arena_del(void *ctx, void *p, size_t size) {
    (void)ctx;
    fil_tracker_arena_del(p, size);
}

/*
 * fil_pymem_install - wrap the MEM and OBJ domain allocators of the running
 * Python (if this is Python and they are not wrapped yet) and give pymalloc
 * untracked arenas. 1 if the hooks are in place, 0 if not Python.
 * Context: constructor, or the extension's start with the GIL held.
 */
int fil_pymem_install(void) {
    get_fn get = (get_fn)dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
    set_fn set = (set_fn)dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
    arena_fn arena = (arena_fn)dlsym(RTLD_DEFAULT, "PyObject_SetArenaAllocator");
    if (!get || !set || !arena)
        return 0;
    static arena_alloc_t raw = {NULL, arena_new, arena_del};
    arena(&raw);
    for (int d = DOMAIN_MEM; d <= DOMAIN_OBJ; d++) {
        pymem_alloc_t cur;
        get(d, &cur);
        if (cur.malloc == h_malloc || nwraps[d] == WRAPS)
            continue; /* ours is in front (inner layers pass through: guard) */
        pymem_alloc_t *slot = &orig[d][nwraps[d]++];
        *slot = cur;
        pymem_alloc_t hook = {slot, h_malloc, h_calloc, h_realloc, h_free};
        set(d, &hook);
    }
    return 1;
}
