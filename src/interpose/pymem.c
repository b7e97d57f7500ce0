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
 * Blocks Python's raw allocator gave out before it initialised must be
 * freed by the allocator that made them. Our audit hook's entry is one
 * (PySys_AddAuditHook in the constructor: PyMem_RawMalloc, i.e. malloc,
 * then), and Python frees it with PyMem_RawFree while it finalises. When
 * PYTHONMALLOC=debug, -X dev and the like had Python put its debug hooks
 * on the RAW domain in between, that free checks the API byte the debug
 * malloc writes before each block and aborts the program ("bad ID"). So
 * the constructor notes the blocks made while it adds the hook
 * (fil_pymem_raw_note), and when Python is about to free them (the
 * cpython._PySys_ClearAuditHooks event) fil_pymem_raw_release() puts a
 * pass-through hook in front of the RAW domain, only if its allocator
 * changed, that gives those blocks back to the allocator of then.
 *
 * Context: the MEM and OBJ domains are called with the GIL held; the hooks
 * still go through the tracker's lock like every other allocation. The RAW
 * domain may be called without the GIL.
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

enum { DOMAIN_RAW = 0, DOMAIN_MEM = 1, DOMAIN_OBJ = 2 };

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
 * pool records the tracker keeps its objects' sizes and stacks in. What
 * else is asked of the arena allocator is CPython 3.11+'s stack of frames:
 * it is charged as a mapping to the call that needed the room (the frames
 * of a recursion 200,000 deep, ~45 MiB, were counted nowhere), and
 * forgotten before it is given back. */
static void *arena_new(void *ctx, size_t size) {
    (void)ctx;
    void *p = fil_tracker_arena_new(size);
    if (p && fil_tracker_arena_foreign(size) && enter()) {
        fil_tracker_map(p, size, fil_stacks_current());
        fil_guard = 0;
    }
    return p;
}

static void arena_del(void *ctx, void *p, size_t size) {
    (void)ctx;
    if (p && fil_tracker_arena_foreign(size) && enter()) {
        fil_tracker_unmap(p, size);
        fil_guard = 0;
    }
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

/* The RAW domain's allocator when the constructor ran, and the blocks it
 * gave out while fil_pymem_raw_note's function ran (cleared, atomically,
 * when given back). Written in the constructor, single-threaded. */
#define EARLY 4
static pymem_alloc_t raw_early;
static void *early[EARLY];
static int nearly;
static pymem_alloc_t raw_then; /* the RAW allocator release wrapped */

static void *early_malloc(void *ctx, size_t size) {
    (void)ctx;
    void *p = raw_early.malloc(raw_early.ctx, size);
    if (p && nearly < EARLY)
        early[nearly++] = p;
    return p;
}

static void *early_calloc(void *ctx, size_t n, size_t m) {
    (void)ctx;
    void *p = raw_early.calloc(raw_early.ctx, n, m);
    if (p && nearly < EARLY)
        early[nearly++] = p;
    return p;
}

/* A noted block is never reallocated by Python (an audit hook entry), so
 * only free needs to tell them apart. */
static void *early_realloc(void *ctx, void *p, size_t size) {
    (void)ctx;
    return raw_early.realloc(raw_early.ctx, p, size);
}

static void early_free(void *ctx, void *p) {
    (void)ctx;
    raw_early.free(raw_early.ctx, p);
}

/* Is p a noted block? Then it is forgotten (each is freed once). */
static int take_early(void *p) {
    for (int i = 0; p && i < nearly; i++) {
        void *want = p;
        if (__atomic_compare_exchange_n(&early[i], &want, NULL, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return 1;
    }
    return 0;
}

/* The RAW domain after fil_pymem_raw_release: all to the allocator of
 * then, except a noted block's free. ~5 instructions more per call. */
static void *late_malloc(void *ctx, size_t size) {
    (void)ctx;
    return raw_then.malloc(raw_then.ctx, size);
}

static void *late_calloc(void *ctx, size_t n, size_t m) {
    (void)ctx;
    return raw_then.calloc(raw_then.ctx, n, m);
}

static void *late_realloc(void *ctx, void *p, size_t size) {
    (void)ctx;
    return raw_then.realloc(raw_then.ctx, p, size);
}

static void late_free(void *ctx, void *p) {
    (void)ctx;
    if (take_early(p))
        raw_early.free(raw_early.ctx, p);
    else
        raw_then.free(raw_then.ctx, p);
}

/*
 * fil_pymem_raw_note - call fn() with the RAW domain's allocator noting the
 * blocks it gives out (up to 4), for fil_pymem_raw_release. Runs fn()
 * plainly if this is not Python.
 * Context: constructor, single-threaded, before Python initialises.
 */
void fil_pymem_raw_note(void (*fn)(void *), void *arg) {
    get_fn get = (get_fn)dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
    set_fn set = (set_fn)dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
    if (!get || !set) {
        fn(arg);
        return;
    }
    get(DOMAIN_RAW, &raw_early);
    pymem_alloc_t noting = {NULL, early_malloc, early_calloc, early_realloc, early_free};
    set(DOMAIN_RAW, &noting);
    fn(arg);
    set(DOMAIN_RAW, &raw_early);
}

static int same_alloc(const pymem_alloc_t *a, const pymem_alloc_t *b) {
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

/*
 * fil_pymem_raw_release - Python is about to free the noted blocks: if the
 * RAW domain's allocator is no longer the one that made them (PYTHONMALLOC,
 * -X dev), put the hook in front of it that gives them back to their own.
 * Once only; nothing when no block was noted.
 * Context: the cpython._PySys_ClearAuditHooks audit event, GIL held.
 */
void fil_pymem_raw_release(void) {
    get_fn get = (get_fn)dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
    set_fn set = (set_fn)dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
    static int done;
    if (!get || !set || !nearly || done)
        return;
    done = 1;
    pymem_alloc_t cur;
    get(DOMAIN_RAW, &cur);
    if (same_alloc(&cur, &raw_early))
        return;
    raw_then = cur;
    pymem_alloc_t late = {NULL, late_malloc, late_calloc, late_realloc, late_free};
    set(DOMAIN_RAW, &late);
}
