/* SPDX-License-Identifier: MIT */
/*
 * resolver.c - fil/pyresolve.h compiled over this interpreter's frames.
 *
 * The frame source the resolver wants (see fil/pyresolve.h), written with
 * frames.h's accessors, so that every frame access inlines into the
 * resolver: one indirect call per allocation (from the preload library's
 * fil_stacks_current, inline in the wrappers) and one thread-state
 * lookup. The frames shown are those a traceback shows.
 *
 * Context: the allocating thread, guard set, GIL held or not; its own
 * frames cannot change while it is in here.
 */
#include "native_internal.h"

int fil_native_events; /* 0, or the generation of the events on now (monitor.c) */

/* One resolution's view of the calling thread. */
typedef struct fil_src {
    PyThreadState *ts;
} fil_src_t;

/* The calling thread's innermost visible frame, or NULL. */
static inline fil_frame_t *innermost(PyThreadState *ts) {
    fil_frame_t *f = fil_py_top(ts);
    while (f && fil_py_hidden(f))
        f = fil_py_below(f);
    return f;
}

/* The next visible frame below f (skipping what a traceback skips: shims,
 * and 3.13's frames that clean up after __init__, which sit below it
 * before their first traceable instruction). */
static inline fil_frame_t *next_below(fil_frame_t *f) {
    f = fil_py_below(f);
    while (f && fil_py_hidden(f))
        f = fil_py_below(f);
    return f;
}

static inline fil_pyraw_t raw_of(fil_frame_t *f) {
    return (fil_pyraw_t){fil_py_code(f), fil_py_instr(f), f};
}

static inline int fil_src_open(fil_src_t *s, fil_pythread_t *t) {
    s->ts = fil_py_thread_state(&t->self);
    return s->ts ? 0 : -1;
}

/* Cost: ~6 instructions per frame, no store. Keys above t->depth hold
 * older chains, and may match: that is harmless, because the resolver
 * keeps no more than t->resolved <= t->depth levels anyway. */
static inline int fil_src_compare(fil_src_t *s, const fil_pythread_t *t, uint32_t assume,
                                  uint32_t *lowest, fil_pyraw_t *top) {
    const fil_pykey_t *k = t->key + assume; /* one above the innermost level */
    uint32_t j = 0, low = assume;
    fil_frame_t *f = innermost(s->ts);
    if (f)
        *top = raw_of(f);
    for (; f && j < assume; f = next_below(f), j++) {
        k--;
        if (k->code != fil_py_code(f) || k->instr != fil_py_instr(f))
            low = assume - 1 - j;
    }
    for (; f; f = next_below(f))
        j++;
    *lowest = low;
    return (int)j;
}

/* The frames a walk skips that quick() can skip for one load: the shims
 * 3.12+ puts where C code calls Python (owned by the C stack). Anything
 * else a walk would skip (a frame still setting up) is a mismatch there,
 * because no key holds its position: keys are of visible frames. */
static inline fil_frame_t *skip_shims(fil_frame_t *f) {
#if PY_VERSION_HEX >= 0x030C0000
    while (f && f->owner == FRAME_OWNED_BY_CSTACK)
        f = fil_py_below(f);
#endif
    return f;
}

/*
 * 1 if frame f is at key k's code and instruction. Since 3.11 an
 * instruction position is the address of a code unit inside its code
 * object (co_code_adaptive), so two live code objects never share one:
 * the instruction alone says both, for a key whose code is alive. The
 * callers compare keys only while the code epoch is the keys' (no code
 * object the keys name has died), and a key of code that could not be
 * marked (which may die unnoticed) has neither code nor instruction
 * (resolve_entry), so it never matches. One load and compare per frame
 * fewer, over import chains 50 frames deep. Before 3.11 the position is
 * an offset, and the code is compared too.
 */
static inline int same_key(fil_frame_t *f, const fil_pykey_t *k) {
#if PY_VERSION_HEX >= 0x030B0000
    return fil_py_instr(f) == k->instr;
#else
    return fil_py_code(f) == k->code && fil_py_instr(f) == k->instr;
#endif
}

/*
 * fil_src_quick (fil/pyresolve.h). Cost: ~8 instructions for the top (its
 * visibility test included), ~5 per frame below (instruction and link,
 * see same_key: no store, no visibility test). Why a frame below the top
 * needs no test: equal code and instruction to a key make it visible,
 * because whether a frame shows depends only on them (and, on 3.12+, on
 * the owner: a shim's code is the interpreter's trampoline, never a key's).
 */
static inline int fil_src_quick(fil_src_t *s, const fil_pythread_t *t, fil_pyraw_t *top) {
    const fil_pykey_t *k = t->key + t->depth - 1;
    fil_frame_t *f = fil_py_top(s->ts);
    if (!f || fil_py_code(f) != k->code || fil_py_hidden(f))
        return 0;
    *top = raw_of(f);
    while (k != t->key) {
        k--;
        f = skip_shims(fil_py_below(f));
        if (!f || !same_key(f, k))
            return 0;
    }
    return skip_shims(fil_py_below(f)) == NULL;
}

/*
 * fil_src_near (fil/pyresolve.h): one pass counts the frames below the
 * innermost (shims skipped), a second compares each with the key of its
 * level, a third collects those from the lowest that differs up into
 * t->scratch (a new call stack: a few). Cost: ~4 instructions per frame,
 * then ~8, then ~6 per frame collected; no visibility test where the
 * frame is its key's (an
 * equal code and instruction to a key's make a frame visible: whether a
 * frame shows depends only on them and, on 3.12+, on its owner, and a
 * shim's code is never a key's); any other frame is tested.
 */
static inline int fil_src_near(fil_src_t *s, fil_pythread_t *t, fil_pyraw_t *top,
                               uint32_t *low) {
    fil_frame_t *f = fil_py_top(s->ts);
    if (!f || fil_py_hidden(f))
        return -1;
    *top = raw_of(f);
    fil_frame_t *b = skip_shims(fil_py_below(f));
    uint32_t m = 0, cap = t->cap;
    for (f = b; f; f = skip_shims(fil_py_below(f)))
        if (++m >= cap)
            return -1; /* no room for the top's entry */
    uint32_t lo = m, depth = t->depth, j = 0;
    for (f = b; f; f = skip_shims(fil_py_below(f)), j++) { /* innermost first */
        uint32_t level = m - 1 - j;
        if (level < depth && same_key(f, &t->key[level]))
            continue;
        if (fil_py_hidden(f))
            return -1;
        lo = level;
    }
    for (j = 0, f = b; j < m - lo; f = skip_shims(fil_py_below(f)), j++)
        t->scratch[j] = raw_of(f); /* only the levels from lo up are read */
    *low = lo;
    return (int)m;
}

static inline int fil_src_fill(fil_src_t *s, fil_pythread_t *t, uint32_t count) {
    uint32_t n = 0;
    for (fil_frame_t *f = innermost(s->ts); f && n < count; f = next_below(f))
        t->scratch[n++] = raw_of(f);
    return (int)n;
}

static inline int fil_src_top(fil_src_t *s, fil_pyraw_t *top, fil_pyraw_t *below) {
    fil_frame_t *f = innermost(s->ts);
    if (!f)
        return 0;
    fil_frame_t *b = next_below(f);
    *top = raw_of(f);
    *below = b ? raw_of(b) : (fil_pyraw_t){NULL, NULL, NULL};
    return fil_py_starting(f) ? 2 : 1;
}

static inline uint32_t fil_src_func_of(const void *code, unsigned *flags) {
    return fil_native_func_of(code, flags);
}

static inline uint32_t fil_src_line_of(const void *code, const void *instr) {
    return fil_native_line_of(code, instr);
}

static inline uint32_t fil_src_intern(uint32_t parent, uint32_t func, uint32_t line) {
    return fil_native_host->intern_node(parent, func, line);
}

static inline int fil_src_reserve(fil_pythread_t *t, uint32_t n) {
    return fil_native_host->reserve(t, n);
}

static inline int fil_src_map_cache(fil_pythread_t *t) { return fil_native_host->map_cache(t); }

static inline uint32_t fil_src_epoch(void) {
    return __atomic_load_n(&fil_native_code_epoch, __ATOMIC_ACQUIRE);
}

static inline int fil_src_events(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return __atomic_load_n(&fil_native_events, __ATOMIC_ACQUIRE);
#else
    return 0; /* no sys.monitoring: deep mode's hook instead */
#endif
}

#if PY_VERSION_HEX < 0x030C0000
/* Deep mode (fil/pyapi.h): our profile hook, set and removed directly in
 * the thread state, as sys.setprofile would but without its audit event
 * (we are inside an allocation) and with no object, so sys.getprofile()
 * still says None. Anyone's sys.setprofile or cProfile replaces it, and the
 * resolver notices (fil_src_hooked) and walks again. */
static int deep_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);

static inline void update_tracing(PyThreadState *ts) {
#if PY_VERSION_HEX >= 0x030A0000
    int on = ts->tracing == 0 && (ts->c_tracefunc || ts->c_profilefunc);
#if PY_VERSION_HEX >= 0x030B0000
    ts->cframe->use_tracing = on ? 255 : 0;
#else
    ts->cframe->use_tracing = on;
#endif
#else
    ts->use_tracing = ts->c_tracefunc || ts->c_profilefunc;
#endif
}

static inline int fil_src_hook(fil_src_t *s, int on) {
    PyThreadState *ts = s->ts;
    if (on) {
        if (ts->c_profilefunc)
            return 0; /* the program's profiler: leave it alone */
        ts->c_profileobj = NULL;
        ts->c_profilefunc = deep_hook;
        update_tracing(ts);
        return 1;
    }
    if (ts->c_profilefunc == deep_hook) {
        ts->c_profilefunc = NULL;
        update_tracing(ts);
    }
    return 0;
}

static inline int fil_src_hooked(fil_src_t *s) { return s->ts->c_profilefunc == deep_hook; }
#else
/* 3.12+: a deep stack asks for sys.monitoring's events (for every thread,
 * from the next safe point on: monitor.c); no hook of a thread's own. */
static inline int fil_src_hook(fil_src_t *s, int on) {
    (void)s;
    if (on)
        fil_native_monitor_request();
    return 0;
}

static inline int fil_src_hooked(fil_src_t *s) {
    (void)s;
    return 0;
}
#endif

/* While a trace, profile or sys.monitoring callback runs (sys.settrace's
 * function, a tool's callback, all they call), the interpreter reports no
 * frame start or exit to any hook or tool, ours included: its tracing
 * count is up. On 3.12+ our events are set in the main interpreter only:
 * a subinterpreter's frames are never reported. */
static inline int fil_src_blind(fil_src_t *s) {
#if PY_VERSION_HEX >= 0x030C0000
    if (s->ts->interp != fil_native_interp)
        return 1;
#endif
    return s->ts->tracing != 0;
}

#include "fil/pyresolve.h"

uint32_t fil_native_resolve(fil_pythread_t *t) { return fil_resolve(t); }

/* The frame that started or is exiting, checked against the callback's
 * code object: NULL if it is not there (the mirror is then dropped). */
static fil_frame_t *reported(fil_pythread_t *t, const void *code) {
    PyThreadState *ts = fil_py_thread_state(&t->self);
    fil_frame_t *f = ts ? innermost(ts) : NULL;
    if (!f || fil_py_code(f) != code) {
        t->mirrored = 0;
        return NULL;
    }
    return f;
}

/* Frame f starts or resumes: report it with its caller. */
static void start(fil_pythread_t *t, fil_frame_t *f) {
    fil_frame_t *b = next_below(f);
    fil_pyraw_t top = raw_of(f), below = b ? raw_of(b) : (fil_pyraw_t){NULL, NULL, NULL};
    fil_resolve_enter(t, &top, &below);
}

#if PY_VERSION_HEX < 0x030C0000
/*
 * The deep-mode profile hook: frame starts (PyTrace_CALL, generator
 * resumptions included) and exits (PyTrace_RETURN: returns, yields,
 * exceptions). On 3.11 the interpreter made a frame object for the call
 * only because a hook is on: that object is the profiler's, so it is
 * forgotten (invariant 1). The hook takes itself off as soon as the stack
 * is back under FIL_PY_DEEP_OFF frames, or the mirror is lost, rather than
 * at the next allocation: while any profile function is set, CPython
 * reports C calls too, and a sys.setprofile(pf) the program makes right
 * after a deep recursion returned gave pf the c_return of that very call
 * (it gets none without a profile function set). Taking the hook off here
 * is what sys.setprofile(None) does from inside a profile function.
 * Context: GIL held, the thread itself.
 */
static void deep_unhook(fil_pythread_t *t) {
    fil_src_t s = {PyThreadState_Get()};
    t->hooked = (uint32_t)fil_src_hook(&s, 0);
}

static int deep_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    (void)arg;
    if (what != PyTrace_CALL && what != PyTrace_RETURN)
        return 0;
    fil_pythread_t *t = fil_native_host->thread();
    if (!t->mirrored) {
        deep_unhook(t); /* no use until a walk mirrors the chain again */
        return 0;
    }
#if PY_VERSION_HEX >= 0x030B0000
    fil_frame_t *f = frame->f_frame;
    if (what == PyTrace_CALL && f->owner != FRAME_OWNED_BY_GENERATOR)
        fil_native_host->forget(frame);
#else
    fil_frame_t *f = frame;
#endif
    if (what == PyTrace_CALL) {
        start(t, f);
    } else {
        fil_resolve_exit(t, f);
        if (!t->mirrored || t->depth < FIL_PY_DEEP_OFF)
            deep_unhook(t);
    }
    return 0;
}
#endif

void fil_native_started(const void *code) {
    fil_pythread_t *t = fil_native_host->thread();
    fil_frame_t *f;
    if (t->mirrored && (f = reported(t, code)))
        start(t, f);
}

void fil_native_exiting(const void *code) {
    fil_pythread_t *t = fil_native_host->thread();
    fil_frame_t *f;
    if (t->mirrored && (f = reported(t, code)))
        fil_resolve_exit(t, f);
}
