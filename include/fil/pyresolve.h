/* SPDX-License-Identifier: MIT */
/*
 * fil/pyresolve.h - from a thread's real Python frames to a call-stack node.
 *
 * The logic is written once, here, and compiled into the Python extension
 * (src/python/resolver.c, once per CPython version, where the frame layout
 * is known and every access inlines) and into the unit tests (with fake
 * frames). The includer defines a frame source first: the type fil_src_t
 * and the static inline functions listed below; it gets fil_resolve(),
 * the resolver the preload library calls on every allocation
 * (fil_resolver_fn), and fil_resolve_enter/exit for event mode.
 *
 * Why the real chain: a shadow stack built from call/return hooks is only
 * right while the hook sees every call and return, and it dereferences
 * frames it borrowed. cProfile or sys.setprofile(None) take the hook away,
 * greenlets switch whole chains without a return, and on 3.11 a profile
 * hook makes CPython create a frame object per call. Reading the chain at
 * allocation time (as tracemalloc does) cannot be fooled by any of that.
 *
 * Two ways to keep that cheap:
 *
 *  Walk mode (every version): each allocation compares the live chain,
 *  frame by frame from the innermost, with the resolved one by content (a
 *  few loads and two comparisons per frame, no store; a second pass when
 *  the depth changed). Equal (code, instruction) pairs under an equal
 *  prefix mean an equal node, whatever the frames' identities, so the
 *  comparison is sound. Only the frames from the first difference inwards
 *  are collected and resolved again, through the entry's ways and the
 *  per-thread call cache before any line lookup. Without events this is
 *  O(depth) per allocation: a recursion thousands deep that allocates at
 *  every level pays it at every level.
 *
 *  Its common cases have a shortcut (quick()): the chain below the
 *  innermost frame is the resolved one, frame for frame, and the innermost
 *  runs the resolved top's code at an instruction its ways know (a loop);
 *  or (near()) every level from the lowest one that differs upwards has
 *  its node in its entry's ways (while its parent is unchanged) or in the
 *  call cache, which also names a fresh entry: a sibling call, a call, a
 *  return, a caller that moved, several levels at once. The frame source
 *  checks the chain in a pass or two of a few loads per frame (no
 *  visibility test where a frame is its key's, see fil_src_quick and
 *  fil_src_near), and the resolved chain becomes the live one: ~40
 *  instructions at depth 3 for a loop, ~150-300 for the others, instead of
 *  ~600 for a walk that makes new entries.
 *
 *  Event mode (3.12+, sys.monitoring with our own tool id, from the first
 *  stack deeper than FIL_PY_DEEP_ON on: events cost every call, and the
 *  shortcuts make shallow stacks cheap without them): the extension
 *  reports each frame start and exit with the frame's identity, and the
 *  resolved chain mirrors the live one. Each report is checked against the
 *  mirror (a start must sit on the mirrored top, an exit must be the
 *  mirrored top); an allocation checks that the real innermost frame is the
 *  mirrored top. Any mismatch (a greenlet switch, events missed) drops the
 *  mirror, and the next allocation rebuilds it with a walk. So the cost of
 *  an allocation no longer grows with the depth of the stack.
 *
 * The frames of runpy and the import system that Python runs a `-m`
 * module (or a zipapp, or a directory) through are not shown while they are
 * outermost (FIL_PYROLE_HIDDEN: their node is their parent's), so stacks
 * start at the program's own code, as for a script: the module's body, or a
 * package __init__ Python imports on the way. What other code allocates
 * while Python looks the module up, or imports runpy itself, is charged to
 * the thread's base with all its callees (FIL_PYROLE_SWALLOWED), as what
 * happens before a script starts is. Below a shown frame, the import
 * system (FIL_PYROLE_IMPORT) has its caller's node too, and what it runs
 * is shown under that node: a module body right under the import
 * statement that ran it, as in a traceback.
 *
 * A code object's address is only trusted while the object lives: the
 * extension bumps *epoch when a code object it named dies, which empties
 * the call cache (and, in walk mode, the resolved chain). Code objects the
 * extension could not mark (an allocation without the GIL) are resolved but
 * never remembered.
 *
 * Context: every function runs in the thread the record belongs to, with
 * its guard set; interning takes the lock.
 *
 * The frame source (all static inline, defined before including this):
 *   int fil_src_open(fil_src_t *s, fil_pythread_t *t)
 *                                      the calling thread's frames (t is
 *                                      its record): 0, or -1 if it runs no
 *                                      Python code
 *   int fil_src_compare(fil_src_t *s, const fil_pythread_t *t,
 *                       uint32_t assume, uint32_t *lowest, fil_pyraw_t *top)
 *       compare the live frames with t->key as if there were `assume` of
 *       them (innermost frame j is level assume - 1 - j; t->cap >= assume);
 *       returns how many there are and, when that is `assume`, the lowest
 *       level whose (code, instruction) differs (levels >= t->resolved are
 *       resolved again whatever it says), else anything; and the innermost
 *       frame into *top (untouched if there is none)
 *   int fil_src_quick(fil_src_t *s, const fil_pythread_t *t, fil_pyraw_t *top)
 *       1 if the live chain has t->depth (>= 1) frames, the frames below
 *       the innermost have the keys t->key[0 .. depth-2] (code and
 *       instruction, compared as the walk does) and the innermost is a
 *       visible frame of t->key[depth-1].code, which goes into *top
 *       (code, instruction, frame); else 0. A frame a walk would skip
 *       may count as a mismatch (0): the walk then decides
 *   int fil_src_near(fil_src_t *s, fil_pythread_t *t, fil_pyraw_t *top,
 *                    uint32_t *low)
 *       the level L of the innermost frame (L < t->cap), when it is
 *       visible (it goes into *top); into *low the lowest level whose
 *       frame is not its key's (code and instruction; a level >= t->depth
 *       has no key), L if none, where every frame from *low up is one the
 *       walk would keep; and the L - *low frames below the innermost down
 *       to level *low, innermost first, into t->scratch[0 .. L-*low-1]
 *       (code, instruction, frame: level i at t->scratch[L-1-i]); else -1. A
 *       frame a walk would skip may count as a mismatch (-1): the walk
 *       then decides
 *   int fil_src_fill(fil_src_t *s, fil_pythread_t *t, uint32_t count)
 *       the innermost `count` frames, innermost first, into t->scratch
 *   int fil_src_top(fil_src_t *s, fil_pyraw_t *top, fil_pyraw_t *below)
 *       the innermost frame and the one below it (frame NULL if none): 1,
 *       2 if the innermost has not run its first instruction yet, 0 if
 *       there is none
 *   uint32_t fil_src_func_of(const void *code, unsigned *flags)
 *   uint32_t fil_src_line_of(const void *code, const void *instr)
 *   uint32_t fil_src_intern(uint32_t parent, uint32_t func, uint32_t line)
 *   int fil_src_reserve(fil_pythread_t *t, uint32_t n)
 *   int fil_src_map_cache(fil_pythread_t *t)
 *   uint32_t fil_src_epoch(void)       bumped when a marked code object dies
 *   int fil_src_events(void)           nonzero in event mode: the same
 *                                      value until events stop, another
 *                                      each time they begin again
 *   int fil_src_hook(fil_src_t *s, int on)
 *       deep mode: put our profile hook on the calling thread (1 if it is
 *       on now) or take it off (0); 0 where there is no deep mode
 *   int fil_src_hooked(fil_src_t *s)   1 if our hook is still the thread's
 *   int fil_src_blind(fil_src_t *s)    1 if no frame start or exit of the
 *                                      thread is reported now: it runs inside
 *                                      a trace, profile or monitoring
 *                                      callback (or, 3.12+, in an interpreter
 *                                      our events are not set in)
 */
#ifndef FIL_PYRESOLVE_H
#define FIL_PYRESOLVE_H

#include <stdint.h>

#include "fil/common.h"
#include "fil/pyapi.h"

/* A fresh entry i for a frame: no node, no ways. */
static inline void fil_resolve_init_entry(fil_pythread_t *t, uint32_t i, const fil_pyraw_t *r) {
    fil_pyentry_t *e = &t->e[i];
    t->key[i] = (fil_pykey_t){r->code, r->instr};
    e->frame = r->frame;
    e->code = r->code;
    e->func = FIL_NONE;
    e->node = 0;
    e->next_way = 0;
    e->trusted = 0;
    e->flags = 0;
    e->role = FIL_PYROLE_UNSET;
    for (int w = 0; w < FIL_PY_WAYS; w++)
        e->way_instr[w] = NULL;
}

/* The pair of call-cache slots where (code, instr, parent) may live: the
 * cache is two-way, most recently stored first, so that two keys of a
 * loop that hash alike do not evict each other at every turn. */
static inline uint32_t cache_index(const void *code, const void *instr, uint32_t parent) {
    uint64_t h = ((uint64_t)(uintptr_t)code ^ ((uint64_t)(uintptr_t)instr << 7) ^
                  ((uint64_t)parent << 40)) *
                 UINT64_C(0x9e3779b97f4a7c15);
    return (uint32_t)(h >> (64 - FIL_PY_CACHE_BITS)) & ~1u;
}

static inline int cache_is(const fil_pycache_t *c, const void *code, const void *instr,
                           uint32_t parent) {
    return c->code == code && c->instr == instr && c->parent == parent;
}

/* The call-cache entry of (code, instr) under parent in t's cache
 * (mapped), or NULL. */
static inline const fil_pycache_t *cache_get(const fil_pythread_t *t, const void *code,
                                             const void *instr, uint32_t parent) {
    const fil_pycache_t *c = t->cache + cache_index(code, instr, parent);
    if (!code)
        return NULL;
    if (cache_is(c, code, instr, parent))
        return c;
    return cache_is(c + 1, code, instr, parent) ? c + 1 : NULL;
}

/* Remember entry e's node for (its code, instr, parent) in front of its
 * pair. e is trusted and named. */
static inline void cache_store(fil_pythread_t *t, const fil_pyentry_t *e, const void *instr,
                               uint32_t parent, uint8_t below) {
    fil_pycache_t *c = t->cache + cache_index(e->code, instr, parent);
    if (!cache_is(c, e->code, instr, parent))
        c[1] = c[0];
    *c = (fil_pycache_t){e->code, instr, parent, e->node, e->func, e->flags, e->role, below};
}

/* Notebooks: the body of a cell (code IPython compiled from a cell's text)
 * is a root of its own, at the thread's base, wherever it runs: under the
 * kernel's machinery, or under a cell magic that runs it (%%filprofile),
 * so a cell's stacks start at the cell's own lines. A function a cell
 * defined is shown where it is called from, as any function. The module a
 * kernel is started with is shown and what it runs is swallowed into it:
 * the kernel's own memory (ipykernel, IPython, tornado, asyncio, zmq) is
 * one frame, the kernel's first line. */
static uint8_t notebook_role(uint8_t below, uint8_t flags) {
    if ((flags & (FIL_PYFUNC_CELL | FIL_PYFUNC_MODULE)) == (FIL_PYFUNC_CELL | FIL_PYFUNC_MODULE))
        return FIL_PYROLE_CELL;
    if (below == FIL_PYROLE_KERNEL)
        return FIL_PYROLE_SWALLOWED;
    if ((flags & FIL_PYFUNC_KERNEL) && (below == FIL_PYROLE_ROOT || below == FIL_PYROLE_HIDDEN))
        return FIL_PYROLE_KERNEL;
    return FIL_PYROLE_UNSET;
}

/* The role of an entry whose caller's role is `below` (FIL_PYROLE_ROOT for
 * the outermost frame), from its code's flags. */
static uint8_t role_of(uint8_t below, uint8_t flags) {
    uint8_t nb = notebook_role(below, flags);
    if (nb != FIL_PYROLE_UNSET)
        return nb;
    if (below == FIL_PYROLE_SWALLOWED)
        return FIL_PYROLE_SWALLOWED;
    if ((below == FIL_PYROLE_ROOT || below == FIL_PYROLE_HIDDEN) && (flags & FIL_PYFUNC_LAUNCHER))
        return flags & FIL_PYFUNC_MODULE ? FIL_PYROLE_SWALLOWED /* runpy's own import */
                                         : FIL_PYROLE_HIDDEN;
    if (below == FIL_PYROLE_HIDDEN && !(flags & FIL_PYFUNC_MODULE))
        return FIL_PYROLE_SWALLOWED;
    return flags & FIL_PYFUNC_IMPORT ? FIL_PYROLE_IMPORT : FIL_PYROLE_SHOWN;
}

/* Name entry i's code once: its function, trust, flags and role. */
static void name_entry(fil_pythread_t *t, uint32_t i) {
    fil_pyentry_t *e = &t->e[i];
    unsigned flags = t->in_pymem ? FIL_PYFUNC_MAY_MARK : 0;
    e->func = fil_src_func_of(e->code, &flags);
    e->trusted = (flags & FIL_PYFUNC_TRUSTED) != 0;
    e->flags = (uint8_t)flags;
    uint8_t below = i ? t->e[i - 1].role : FIL_PYROLE_ROOT;
    e->role = e->func == FIL_NONE ? FIL_PYROLE_HIDDEN : role_of(below, e->flags);
}

/* The role of entry i's caller (FIL_PYROLE_ROOT for the outermost). */
static inline uint8_t below_role(const fil_pythread_t *t, uint32_t i) {
    return i ? t->e[i - 1].role : FIL_PYROLE_ROOT;
}

/* Name entry i (unnamed, trusted code) as the cache entry c of its code
 * says, when its caller's role is the one c was stored under (a code's
 * role is a function of its flags and its caller's role): 1, else 0 with
 * i unchanged. */
static inline int name_from_cache(fil_pythread_t *t, uint32_t i, const fil_pycache_t *c) {
    fil_pyentry_t *e = &t->e[i];
    if (below_role(t, i) != c->below)
        return 0;
    e->func = c->func;
    e->trusted = 1;
    e->flags = c->flags;
    e->role = c->role;
    return 1;
}

/*
 * The node of entry i under parent at its instruction: its ways, then the
 * call cache, then the line lookup and interning. Names the entry on first
 * use; an untrusted code object's entry has its key's code cleared, so it
 * never matches and is resolved again next time (it cannot be remembered).
 */
static uint32_t resolve_entry(fil_pythread_t *t, uint32_t i, uint32_t parent, int events) {
    fil_pyentry_t *e = &t->e[i];
    fil_pykey_t *k = &t->key[i];
    for (int w = 0; w < FIL_PY_WAYS; w++)
        if (e->way_instr[w] == k->instr && k->instr)
            return e->node = e->way_node[w]; /* only trusted entries fill ways */
    if (FIL_UNLIKELY(!t->cache))
        (void)fil_src_map_cache(t);
    const fil_pycache_t *c = t->cache ? cache_get(t, e->code, k->instr, parent) : NULL;
    if (e->role == FIL_PYROLE_UNSET && !(c && name_from_cache(t, i, c)))
        name_entry(t, i);
    if (c && (!e->trusted || c->role != e->role || c->below != below_role(t, i)))
        c = NULL; /* named otherwise: found otherwise */
    int cached = e->trusted && t->cache;
    if (c) {
        e->node = c->node;
    } else {
        uint32_t under = e->role == FIL_PYROLE_CELL ? t->base : parent;
        e->node = e->role == FIL_PYROLE_HIDDEN || e->role == FIL_PYROLE_SWALLOWED ||
                          e->role == FIL_PYROLE_IMPORT
                      ? parent
                      : fil_src_intern(under, e->func, fil_src_line_of(e->code, k->instr));
        if (cached && e->node)
            cache_store(t, e, k->instr, parent, below_role(t, i));
    }
    if (e->trusted) {
        uint32_t w = e->next_way++ % FIL_PY_WAYS;
        e->way_instr[w] = k->instr;
        e->way_node[w] = e->node;
    } else {
        k->code = NULL; /* never matches: its code may die unnoticed */
        k->instr = NULL;
    }
    (void)events;
    return e->node;
}

/* The code-object epoch moved: addresses remembered may now name other
 * code (mirrored frames are alive, and so are their code objects). */
static void check_epoch(fil_pythread_t *t, int mirror) {
    uint32_t now = fil_src_epoch();
    if (FIL_LIKELY(t->epoch == now))
        return;
    t->epoch = now;
    if (t->cache)
        for (uint32_t i = 0; i < (1u << FIL_PY_CACHE_BITS); i++)
            t->cache[i].code = NULL;
    if (!mirror || !t->mirrored) {
        t->depth = t->resolved = 0;
    } else {
        for (uint32_t i = 0; i < t->depth; i++)
            for (int w = 0; w < FIL_PY_WAYS; w++)
                t->e[i].way_instr[w] = NULL;
    }
}

/*
 * The lowest level where the live chain differs from the resolved one, the
 * innermost frame, and the number of frames (-1: no Python). The first
 * pass compares as if the depth moved as it did last time (unchanged in a
 * loop, one deeper at each level of a recursion going down, one shallower
 * coming back), so that it is usually the only one; a second, aligned pass
 * when that guess was wrong.
 */
static int differs(fil_src_t *s, fil_pythread_t *t, uint32_t *lowest, fil_pyraw_t *top) {
    int64_t guess = (int64_t)t->depth + t->last_delta;
    uint32_t assume = guess < 0 ? 0 : (uint32_t)guess;
    if (assume > t->cap && fil_src_reserve(t, assume) != 0)
        assume = t->depth;
    int got = fil_src_compare(s, t, assume, lowest, top);
    if (got >= 0 && (uint32_t)got != assume) {
        uint32_t n = (uint32_t)got;
        if (n > t->cap && fil_src_reserve(t, n) != 0)
            return -1;
        got = fil_src_compare(s, t, n, lowest, top);
        if (got != (int)n)
            return -1; /* our own frames cannot have moved */
    }
    if (got >= 0)
        t->last_delta = (int32_t)((int64_t)got - t->depth);
    return got;
}

/*
 * Walk mode: compare the live chain with the resolved one, keep the longest
 * equal prefix of resolved entries, resolve the rest. Leaves the chain
 * resolved and mirrored (every entry's frame is live now). Cost: O(depth)
 * loads and comparisons (no store), plus collecting and resolving the
 * frames from the first difference inwards; in a loop that allocates, only
 * the innermost frame, through its ways.
 */
static uint32_t walk(fil_src_t *s, fil_pythread_t *t, int events) {
    uint32_t lowest;
    fil_pyraw_t top = {NULL, NULL, NULL};
    int got = differs(s, t, &lowest, &top);
    if (got < 0)
        return t->base;
    if (got == 0) { /* no Python frame (yet, or any more) */
        t->depth = t->resolved = 0;
        t->mirrored = 1;
        return t->base;
    }
    uint32_t n = (uint32_t)got, k = lowest < t->resolved ? lowest : t->resolved;
    if (k == n)
        return t->e[n - 1].node;
    if (k == n - 1 && n == t->depth && t->key[k].code == top.code && t->e[k].role) {
        /* A loop: only the innermost frame moved; its ways, mostly. */
        fil_pyentry_t *e = &t->e[k];
        t->key[k].instr = top.instr;
        e->frame = top.frame;
        for (int w = 0; w < FIL_PY_WAYS; w++)
            if (e->way_instr[w] == top.instr)
                return e->node = e->way_node[w];
        return resolve_entry(t, k, k ? t->e[k - 1].node : t->base, events);
    }
    if (fil_src_fill(s, t, n - k) != (int)(n - k))
        return t->base;
    uint32_t parent = k ? t->e[k - 1].node : t->base;
    for (uint32_t i = k; i < n; i++) {
        const fil_pyraw_t *r = &t->scratch[n - 1 - i];
        if (i < t->depth && i == k && t->key[i].code == r->code && t->e[i].role != FIL_PYROLE_UNSET) {
            t->key[i].instr = r->instr; /* the same code, moved on: its ways still hold */
            t->e[i].frame = r->frame;
            t->e[i].code = r->code;
        } else {
            fil_resolve_init_entry(t, i, r);
        }
        parent = resolve_entry(t, i, parent, events);
    }
    t->depth = t->resolved = n;
    t->mirrored = 1;
    return parent;
}

/* Entry i's instruction is now instr: it must be resolved again if moved. */
static void moved(fil_pythread_t *t, uint32_t i, const void *instr) {
    if (t->key[i].instr == instr)
        return;
    t->key[i].instr = instr;
    if (t->resolved > i)
        t->resolved = i;
}

/* Event mode: the mirror is right; resolve what moved. */
static uint32_t from_mirror(fil_pythread_t *t, const fil_pyraw_t *top) {
    moved(t, t->depth - 1, top->instr);
    uint32_t parent = t->resolved ? t->e[t->resolved - 1].node : t->base;
    for (uint32_t i = t->resolved; i < t->depth; i++)
        parent = resolve_entry(t, i, parent, 1);
    t->resolved = t->depth;
    return parent;
}

/*
 * fil_resolve_enter - event mode: frame f starts or resumes on top of
 * caller (caller->frame NULL: f is the outermost frame). Keeps the mirror
 * if f sits on the mirrored top, else drops it. Context: the thread itself.
 */
static inline void fil_resolve_enter(fil_pythread_t *t, const fil_pyraw_t *f,
                                     const fil_pyraw_t *caller) {
    if (!t->mirrored)
        return;
    const void *top = t->depth ? t->e[t->depth - 1].frame : NULL;
    if (top == f->frame && (t->depth > 1 ? t->e[t->depth - 2].frame : NULL) == caller->frame)
        return; /* a walk got here first (the report came after an allocation) */
    if (top != caller->frame || (t->depth == t->cap && fil_src_reserve(t, t->depth + 1) != 0)) {
        t->mirrored = 0;
        return;
    }
    if (t->depth)
        moved(t, t->depth - 1, caller->instr); /* where it called from */
    fil_resolve_init_entry(t, t->depth++, f);
}

/* fil_resolve_exit - event mode: frame f returns, yields or unwinds.
 * Context: the thread itself. */
static inline void fil_resolve_exit(fil_pythread_t *t, const void *frame) {
    if (!t->mirrored)
        return;
    if (!t->depth || t->e[t->depth - 1].frame != frame) {
        t->mirrored = 0;
        return;
    }
    t->depth--;
    if (t->resolved > t->depth)
        t->resolved = t->depth;
}

/* Event mode (sys.monitoring, or deep mode's hook): the mirror, checked
 * against the innermost frame; a walk when it does not hold. */
static uint32_t from_events(fil_src_t *s, fil_pythread_t *t) {
    fil_pyraw_t top = {NULL, NULL, NULL}, below = {NULL, NULL, NULL};
    int r = fil_src_top(s, &top, &below);
    if (t->mirrored && r == 0 && t->depth == 0)
        return t->base;
    if (r == 2)
        return FIL_NODE_UNTRACKED; /* instrumentation for our events: ours */
    if (t->mirrored && r > 0 && (!t->depth || t->e[t->depth - 1].frame != top.frame))
        fil_resolve_enter(t, &top, &below); /* pushed, its start not reported yet */
    int on_top = t->mirrored && r > 0 && t->depth && t->e[t->depth - 1].frame == top.frame &&
                 t->e[t->depth - 1].code == top.code;
    return on_top ? from_mirror(t, &top) : walk(s, t, 1);
}

/* The resolved chain equals the live one by content (a walk said so) but
 * may name other, equal frames: take the live frames' identities, so that
 * events can be checked against them. */
static void remirror(fil_src_t *s, fil_pythread_t *t) {
    uint32_t n = t->depth;
    if (fil_src_fill(s, t, n) != (int)n)
        return;
    for (uint32_t i = 0; i < n; i++) {
        const fil_pyraw_t *r = &t->scratch[n - 1 - i];
        if (t->e[i].code != r->code)
            return; /* it moved after all: the next walk sees it */
        t->e[i].frame = r->frame;
    }
    t->mirrored = 1;
}

/* Deep mode's hook goes on over a deep stack and off over a shallow one,
 * only where the C API may be called (an allocation of Python's object
 * allocator, GIL held). The hook's reports need the mirror to name the
 * live frames, which a walk that kept an equal prefix (or quick(), which
 * compares contents only) does not promise: it is taken again first. */
static void deep_mode(fil_src_t *s, fil_pythread_t *t) {
    if (!t->in_pymem)
        return;
    if (!t->hooked && t->depth > FIL_PY_DEEP_ON) {
        t->mirrored = 0;
        remirror(s, t);
        if (t->mirrored)
            t->hooked = (uint32_t)fil_src_hook(s, 1);
    } else if (t->hooked && t->depth < FIL_PY_DEEP_OFF) {
        t->hooked = (uint32_t)fil_src_hook(s, 0);
    }
}

/* Entry i's instruction is now instr, of node node, under the node its
 * entry was resolved under (moved_below 0: its ways still hold, and get
 * this one) or another (1: its ways are of that other parent). */
static inline void near_keep(fil_pythread_t *t, uint32_t i, const fil_pyraw_t *r, uint32_t node,
                             int moved_below) {
    fil_pyentry_t *e = &t->e[i];
    if (moved_below) {
        for (int w = 0; w < FIL_PY_WAYS; w++)
            e->way_instr[w] = NULL;
    } else if (t->key[i].instr != r->instr) {
        uint32_t w = e->next_way++ % FIL_PY_WAYS;
        e->way_instr[w] = r->instr;
        e->way_node[w] = node;
    }
    t->key[i].instr = r->instr;
    e->frame = r->frame;
    e->node = node;
}

/* The node of entry i at r's instruction from the entry alone: its own if
 * the instruction is its key's, else its ways; only while its parent is
 * unchanged (moved_below 0). FIL_NONE otherwise. */
static inline uint32_t near_way(const fil_pythread_t *t, uint32_t i, int moved_below,
                                const fil_pyraw_t *r) {
    const fil_pyentry_t *e = &t->e[i];
    if (moved_below)
        return FIL_NONE;
    if (r->instr == t->key[i].instr)
        return e->node;
    for (int w = 0; w < FIL_PY_WAYS; w++)
        if (e->way_instr[w] == r->instr)
            return e->way_node[w];
    return FIL_NONE;
}

/* Level i from the call cache under parent: the entry (same: of the
 * key's code and named) or a fresh entry named from the cache. The
 * cache's node, or FIL_NONE (entry i may then be fresh: the caller cuts
 * the chain below it). */
static inline uint32_t near_cache(fil_pythread_t *t, uint32_t i, int same, const fil_pyraw_t *r,
                                  uint32_t parent) {
    const fil_pycache_t *c = cache_get(t, r->code, r->instr, parent);
    if (!c)
        return FIL_NONE;
    if (same)
        return c->role == t->e[i].role && c->below == below_role(t, i) ? c->node : FIL_NONE;
    fil_resolve_init_entry(t, i, r);
    if (!name_from_cache(t, i, c))
        return FIL_NONE;
    fil_pyentry_t *e = &t->e[i];
    e->node = c->node;
    e->next_way = 1;
    e->way_instr[0] = r->instr;
    e->way_node[0] = c->node;
    return c->node;
}

/*
 * The rest of near()'s chain from level i (its first miss) up to the top
 * at level n, as the walk resolves it: near() has collected the frames
 * (t->scratch, and top) and the levels below i are found, so the walk's
 * own passes over the chain would only find them again. Entry i is kept
 * when the walk would keep it (the lowest level that moved, same code:
 * keep), the others are fresh; each is resolved through its ways, the
 * call cache, then its line and interning. Only for a chain too shallow
 * for deep mode (the walk's caller would then turn nothing on or off).
 */
static uint32_t near_rest(fil_pythread_t *t, uint32_t i, uint32_t n, int keep,
                          const fil_pyraw_t *top, uint32_t parent) {
    for (; i <= n; i++) {
        const fil_pyraw_t *r = i < n ? &t->scratch[n - 1 - i] : top;
        if (keep) { /* the same code, moved on: its ways still hold */
            t->key[i].instr = r->instr;
            t->e[i].frame = r->frame;
            t->e[i].code = r->code;
            keep = 0;
        } else {
            fil_resolve_init_entry(t, i, r);
        }
        parent = resolve_entry(t, i, parent, 0);
    }
    t->depth = t->resolved = n + 1;
    return parent;
}

/*
 * The walk without its line lookups, for every case the call cache
 * covers: a sibling call, a call, a return, a loop that called from
 * another place on its way. The frames below the innermost are collected;
 * from the lowest level that is not its key's upwards, each node is a
 * function of (code, instruction, the node below), which the walk would
 * find the same way: the entry's own node or ways while its parent is
 * unchanged, else the call cache, which also names a fresh entry (ways
 * hold only trusted entries' instructions, and the call cache only
 * trusted code's nodes, each with the roles of its entry and its caller,
 * which must be the chain's). The levels found become the resolved chain, so the next
 * allocation there is quick()'s; on a miss (a new call stack) the rest is
 * resolved from the frames collected (near_rest), as the walk would, or,
 * over a stack deep enough for deep mode, the chain is cut where the miss
 * is, and FIL_NONE: the walk decides then. Out of line: the loop
 * case's caller saves no registers for it. Cost: ~10 instructions per
 * frame, a probe per level moved, and ~20 stores per fresh entry.
 */
static __attribute__((noinline)) uint32_t near(fil_src_t *s, fil_pythread_t *t) {
    fil_pyraw_t top;
    uint32_t low;
    int level = fil_src_near(s, t, &top, &low);
    if (level < 0 || !t->cache || (uint32_t)level >= t->cap)
        return FIL_NONE;
    uint32_t n = (uint32_t)level, parent = low ? t->e[low - 1].node : t->base;
    int fresh = 0;
    for (uint32_t i = low; i <= n; i++) {
        const fil_pyraw_t *r = i < n ? &t->scratch[n - 1 - i] : &top;
        fresh |= i >= t->depth || t->key[i].code != r->code;
        uint32_t node = fresh ? FIL_NONE : near_way(t, i, i > low, r);
        if (node == FIL_NONE)
            node = near_cache(t, i, !fresh, r, parent);
        if (node == FIL_NONE) {
            if (n < FIL_PY_DEEP_ON) /* a new call stack: resolve it from here */
                return near_rest(t, i, n, i == low && !fresh &&
                                              t->e[i].role != FIL_PYROLE_UNSET,
                                 &top, parent);
            t->depth = t->resolved = i;
            return FIL_NONE;
        }
        if (!fresh)
            near_keep(t, i, r, node, i > low);
        parent = node;
    }
    t->depth = t->resolved = n + 1;
    return parent;
}

/*
 * near() for the case quick() has checked already: every level below the
 * innermost is its key's and the innermost runs its key's code at an
 * instruction its ways do not know (a module body or a function run once,
 * a new line at every allocation: what importing is). The lowest level
 * that moved is the top, so near()'s passes over the chain would only find
 * that again; the top is resolved from the call cache or, as near_rest
 * does, from its line. Out of line, as near() is.
 */
static __attribute__((noinline)) uint32_t near_top(fil_pythread_t *t, const fil_pyraw_t *top) {
    uint32_t n = t->depth - 1, parent = n ? t->e[n - 1].node : t->base;
    if (!t->cache)
        return FIL_NONE;
    uint32_t node = near_cache(t, n, 1, top, parent);
    if (node == FIL_NONE)
        return near_rest(t, n, n, t->e[n].role != FIL_PYROLE_UNSET, top, parent);
    near_keep(t, n, top, node, 0);
    return node;
}

/*
 * The walk's loop case without the walk: the chain is the resolved one but
 * for the innermost frame's instruction, which one of its ways knows (ways
 * hold only trusted entries' instructions, seen at a resolution where the
 * frame was visible); when the ways do not know the instruction,
 * near_top(), and when it is not the loop case, near(). FIL_NONE
 * otherwise; the walk decides then. Walk mode only (events and deep mode
 * keep their own mirror), and not over stacks deep enough for deep mode,
 * which only a walk turns on.
 */
static inline uint32_t quick(fil_src_t *s, fil_pythread_t *t) {
    uint32_t n = t->depth;
    if (n - 1 >= FIL_PY_DEEP_ON || t->resolved != n || t->epoch != fil_src_epoch())
        return FIL_NONE;
    fil_pyraw_t top;
    if (!fil_src_quick(s, t, &top))
        return near(s, t);
    fil_pyentry_t *e = &t->e[n - 1];
    for (int w = 0; w < FIL_PY_WAYS; w++) {
        if (e->way_instr[w] == top.instr) {
            t->key[n - 1].instr = top.instr;
            return e->node = e->way_node[w];
        }
    }
    return near_top(t, &top); /* the cache may know it, else its line */
}

/* Everything but quick(): events, deep mode, the walk. Out of line, so
 * that the shortcut's caller saves no registers for it. */
static __attribute__((noinline)) uint32_t resolve_slow(fil_pythread_t *t, fil_src_t s) {
    if (t->hooked && !fil_src_hooked(&s)) { /* someone else's hook replaced ours */
        t->hooked = 0;
        t->mirrored = 0;
    }
    uint32_t generation = (uint32_t)fil_src_events();
    int events = generation || t->hooked;
    if (FIL_UNLIKELY(generation && t->events_seen != generation)) {
        /* Events began since this thread last resolved: its chain, kept by
         * walks that compare contents, may name other frames than the live
         * ones, which the events are checked against. Walk it afresh. */
        t->events_seen = generation;
        t->mirrored = 0;
        t->depth = t->resolved = 0;
    }
    check_epoch(t, events);
    /* Inside a trace, profile or monitoring callback (a Python tracer, and
     * what it calls) no start or exit is reported: the mirror would keep
     * the callers' instructions of the last report, and the frames the
     * callback runs, popped and pushed again at the same addresses, would
     * look like its top. A walk then, and no mirror left behind. */
    int blind = events && fil_src_blind(&s);
    uint32_t node = events && !blind ? from_events(&s, t) : walk(&s, t, 0);
    if (!fil_src_events())
        deep_mode(&s, t);
    if (blind)
        t->mirrored = 0;
    return node;
}

/*
 * fil_resolve - the node of the calling thread's Python frames (t->base if
 * it runs none, FIL_NODE_UNTRACKED for an allocation the interpreter makes
 * to instrument code for our events). Context: the thread itself, guard
 * set, no lock held.
 */
static inline uint32_t fil_resolve(fil_pythread_t *t) {
    fil_src_t s;
    if (fil_src_open(&s, t) != 0)
        return t->base;
    if (FIL_LIKELY(!t->hooked) && !fil_src_events()) {
        uint32_t node = quick(&s, t);
        if (FIL_LIKELY(node != FIL_NONE))
            return node;
    }
    return resolve_slow(t, s);
}

#endif
