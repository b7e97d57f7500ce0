/* SPDX-License-Identifier: MIT */
/*
 * fil/pyapi.h - the interface between the preload library and the Python
 * extension (filprofiler._native), in both directions.
 *
 * The preload library does not build against Python: it works for every
 * interpreter. The extension is built once per CPython version and knows
 * that version's frame layout. They meet here:
 *
 *  - the preload library exports one table, fil_host_api, of the functions
 *    the extension may call (interning, the guard, the tracker, rendering).
 *    The extension finds it with dlsym(RTLD_DEFAULT, "fil_host_api"), so it
 *    can be imported into an interpreter that runs without the profiler
 *    (it then reports that memory is not tracked) instead of failing on an
 *    undefined symbol;
 *  - the extension exports fil_native_start(), which the preload library
 *    calls once, from its audit hook, just before the program's own code
 *    runs (GIL held);
 *  - the extension registers a resolver (fil/pyresolve.h, compiled for
 *    its version): the preload library calls it on every allocation with
 *    the calling thread's fil_pythread_t, guard set, for the call-stack
 *    node of the Python frames the thread is executing.
 *
 * Both sides include this header, so a signature change fails to compile
 * on both; FIL_PYAPI_VERSION is checked at run time as well (an extension
 * from another build refuses to start).
 */
#ifndef FIL_PYAPI_H
#define FIL_PYAPI_H

#include <stddef.h>
#include <stdint.h>

#define FIL_PYAPI_VERSION 3u

/* Deep mode (3.9-3.11, which have no sys.monitoring): a thread whose
 * stack is deeper than FIL_PY_DEEP_ON frames gets frame start/exit events
 * from a profile hook of ours, so that an allocation no longer walks the
 * whole stack; below FIL_PY_DEEP_OFF the hook goes. See pyresolve.h. */
#define FIL_PY_DEEP_ON 400
#define FIL_PY_DEEP_OFF 100

/* Instruction offsets remembered per frame: a loop body allocates from a
 * few instructions in turn (a tuple, a str, a list append...), and each of
 * them keeps its node without a line lookup or a hash probe. */
#define FIL_PY_WAYS 4

/* What a frame of a thread's resolved chain is, by content: its code and
 * instruction position. Kept apart from the rest of the entry so that
 * comparing a deep chain reads 16 bytes per frame. The pointers are
 * identities only: nobody dereferences them. */
typedef struct fil_pykey {
    const void *code;  /* code object; NULL: not trusted, never matches */
    const void *instr; /* instruction position at the last resolution */
} fil_pykey_t;

/* The rest of a frame of the resolved chain. */
typedef struct fil_pyentry {
    const void *frame; /* the interpreter frame (identity only) */
    const void *code;  /* its code object, even when the key's is cleared */
    uint32_t func;     /* interned function */
    uint32_t node;     /* node at the last resolution */
    uint8_t next_way;  /* way to replace next */
    uint8_t trusted;   /* 1: code is marked, so its address may be remembered */
    uint8_t flags;     /* FIL_PYFUNC_* of its code */
    uint8_t role;      /* FIL_PYROLE_*: how it shows (resolve.c) */
    const void *way_instr[FIL_PY_WAYS]; /* instruction positions seen... */
    uint32_t way_node[FIL_PY_WAYS];     /* ...and their nodes */
} fil_pyentry_t;

/* fil_pyentry_t.role: how a frame shows in the reports (pyresolve.h). */
#define FIL_PYROLE_UNSET 0     /* not resolved yet */
#define FIL_PYROLE_SHOWN 1     /* a frame of its own */
#define FIL_PYROLE_HIDDEN 2    /* launcher frame at the root: its node is its caller's */
#define FIL_PYROLE_SWALLOWED 3 /* under a hidden launcher: charged to the thread's base */
#define FIL_PYROLE_ROOT 4      /* (only as the "caller" of the outermost frame) */
#define FIL_PYROLE_CELL 5      /* a notebook cell's body: a root of its own, at the thread's base */
#define FIL_PYROLE_KERNEL 6    /* a notebook kernel's entry: shown, what it runs is swallowed */
#define FIL_PYROLE_IMPORT 7    /* the import system under a shown frame: its node is its caller's */

/* A frame as the walker collects it, innermost first. */
typedef struct fil_pyraw {
    const void *code;
    const void *instr;
    const void *frame;
} fil_pyraw_t;

/* Per-thread two-way cache (code, instruction, caller's node) ->
 * node: every call makes a new frame whose ways are empty, and a function
 * called in a loop would otherwise look up its line and probe the intern
 * hash on each call. It also keeps how the code was named (function,
 * flags, role), so that an entry made for a frame of cached code needs no
 * naming either. Only trusted code is cached. */
#define FIL_PY_CACHE_BITS 10
typedef struct fil_pycache {
    const void *code;
    const void *instr;
    uint32_t parent;
    uint32_t node;
    uint32_t func;  /* the entry's function, flags and role when it was stored, */
    uint8_t flags;
    uint8_t role;
    uint8_t below;  /* under a caller of this role (the role is a function of both) */
} fil_pycache_t;

/* What the preload library keeps per thread for the extension. Memory from
 * raw mmap (invariant 1); touched only by the thread itself. */
typedef struct fil_pythread {
    fil_pykey_t *key;       /* resolved chain, outermost frame first... */
    fil_pyentry_t *e;       /* ...and the rest of each of its entries */
    fil_pyraw_t *scratch;   /* the walker's collection area */
    fil_pycache_t *cache;   /* 1 << FIL_PY_CACHE_BITS entries, or NULL */
    uint32_t cap;           /* entries in key, e and scratch */
    uint32_t depth;         /* valid entries in key and e */
    uint32_t base;          /* node of the line that started this thread, or
                             * FIL_NONE: the parent of its outermost frame */
    uint32_t epoch;         /* code-object epoch the entries were made in */
    uint32_t resolved;      /* entries [0, resolved) have the nodes of their
                             * (code, instr) under their callers' nodes */
    uint32_t mirrored;      /* event mode: 1 while e mirrors the live chain */
    int32_t last_delta;     /* how the depth moved at the last walk (the next
                             * walk compares as if it moved so again first) */
    uint32_t hooked;        /* deep mode (3.9-3.11): our profile hook reports
                             * this thread's frame starts and exits */
    uint32_t in_pymem;      /* 1 while resolving for CPython's object allocator */
    uint32_t events_seen;   /* the events' generation (fil_src_events) this
                             * thread last resolved in, 0 if none (they may
                             * begin mid-run, 3.12+, and stop and begin again:
                             * the walk's chain before names frames by
                             * content only) */
    unsigned long self;     /* pthread_self() of the thread, once asked (0: not yet) */
} fil_pythread_t;

/* Flags a code object is named with (the frame source's func_of). TRUSTED: the code object is marked, so its
 * death bumps *epoch and its address may be remembered. LAUNCHER: code of
 * the machinery Python runs `-m module`, zipapps and directories with
 * (runpy, and the import system it calls). MODULE: a module body. CELL:
 * code IPython compiled from a cell. KERNEL: the module a Jupyter kernel
 * is started with (ipykernel_launcher). IMPORT: the import system
 * (importlib's bootstrap, zipimport), between an import statement and the
 * module body it runs. */
#define FIL_PYFUNC_TRUSTED 1u
#define FIL_PYFUNC_LAUNCHER 2u
#define FIL_PYFUNC_MODULE 4u
#define FIL_PYFUNC_CELL 16u
#define FIL_PYFUNC_KERNEL 32u
#define FIL_PYFUNC_IMPORT 64u
/* In *flags on the way in: the allocation came through CPython's own
 * object allocator (GIL held, the interpreter expects PyMem calls from its
 * hooks), so the code object may be read and marked. Any other allocation
 * (raw malloc, mmap) may come from inside a section of the interpreter
 * that holds a lock of its own (tracemalloc's, for one): no C API call
 * that can allocate is made then. */
#define FIL_PYFUNC_MAY_MARK 8u

/* The extension's resolver (fil/pyresolve.h compiled for the running
 * interpreter): the node the calling thread's allocations are charged to,
 * t->base when it runs no Python code, or FIL_NODE_UNTRACKED. Context: the
 * thread itself, guard set, no lock held; may intern (takes the lock). */
typedef uint32_t (*fil_resolver_fn)(fil_pythread_t *t);

/* The functions of the preload library the extension uses. */
typedef struct fil_host_api {
    uint32_t version; /* FIL_PYAPI_VERSION */
    /* Interning (src/stacks/intern.c); both take the lock. */
    uint32_t (*intern_func)(const char *file, size_t flen, const char *name, size_t nlen,
                            uint32_t first_line);
    uint32_t (*intern_node)(uint32_t parent, uint32_t func, uint32_t line);
    /* Install (or, with NULL, remove) the resolver. */
    void (*set_resolver)(fil_resolver_fn fn);
    /* The calling thread's record (for the monitoring callbacks). */
    fil_pythread_t *(*thread)(void);
    /* Make t's arrays hold at least n entries (keeping what they hold); map
     * its call cache. 0, or -1. */
    int (*reserve)(fil_pythread_t *t, uint32_t n);
    int (*map_cache)(fil_pythread_t *t);
    /* 1 if allocations are tracked in this process. */
    int (*active)(void);
    /* Set the calling thread's guard to v; returns the old value. */
    int (*guard_swap)(int v);
    /* Record the interpreter's version in the state header. */
    void (*set_python_version)(const char *v);
    /* (Re)wrap CPython's allocators if PYTHONMALLOC or -X dev replaced ours. */
    int (*pymem_install)(void);
    /* Forget a Python object's block as if it was never tracked (a frame
     * object the interpreter made only because our profile hook is on). */
    void (*forget)(void *p);
    /* Start a new peak from now (a notebook cell). */
    void (*reset_peak)(void);
    /* Write the peak report of this process's live state into dir. */
    int (*render_live_peak)(const char *dir, const char *title, char *err, size_t errlen);
    /* A notebook kernel: out of memory lets the allocation fail, and the
     * next one is dumped into dir (fil_oom_rearm). 0, or -1. */
    int (*oom_rearm)(const char *dir);
    /* Out-of-memory dumps completed in this process. */
    uint32_t (*oom_dumps)(void);
} fil_host_api_t;

/* The extension's entry point, called by the preload library's audit hook
 * with the GIL held, just before the program's code runs. 0, or -1 (the
 * program then runs with every allocation charged to "[No Python stack]"
 * and a warning is printed). */
typedef int (*fil_native_start_fn)(const fil_host_api_t *api);
#define FIL_NATIVE_START "fil_native_start"

#endif
