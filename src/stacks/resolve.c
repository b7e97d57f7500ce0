/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - from a thread's real Python frames to a call-stack node.
 *
 * The Python extension, built for the running interpreter, tells this file
 * what the interpreter's frames are (fil_pyframes_t): it collects the
 * calling thread's frame chain as (code, instruction) pairs, names a code
 * object (its interned function) and a line. Everything else — comparing
 * the chain with what was resolved last time, remembering nodes — is here,
 * once for every version, and unit-tested with fake frames.
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
 *  Walk mode (every version): each allocation collects the whole chain
 *  (a few loads per frame, no line lookup) and compares it with the
 *  resolved chain from the outermost frame inwards. Equal (code,
 *  instruction) pairs under an equal prefix mean an equal node, whatever
 *  the frames' identities, so the comparison is sound by content. Only the
 *  frames from the first difference inwards are resolved again, through the
 *  entry's ways and the per-thread call cache before any line lookup.
 *
 *  Event mode (3.12+, sys.monitoring with our own tool id): the extension
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
 * happens before a script starts is.
 *
 * A code object's address is only trusted while the object lives: the
 * extension bumps *epoch when a code object it named dies, which empties
 * the call cache (and, in walk mode, the resolved chain). Code objects the
 * extension could not mark (an allocation without the GIL) are resolved but
 * never remembered.
 *
 * Context: every function runs in the thread the record belongs to, with
 * its guard set; interning takes the lock.
 */
#include "fil/lock.h"
#include "fil/stacks.h"

/* A fresh entry for a frame: no node, no ways. */
static void entry_init(fil_pyentry_t *e, const fil_pyraw_t *r) {
    e->code = r->code;
    e->instr = r->instr;
    e->frame = r->frame;
    e->func = FIL_NONE;
    e->node = 0;
    e->next_way = 0;
    e->trusted = 0;
    e->flags = 0;
    e->role = FIL_PYROLE_UNSET;
    for (int w = 0; w < FIL_PY_WAYS; w++)
        e->way_instr[w] = NULL;
}

/* The call-cache slot of (code, instr, parent); NULL without a cache. */
static fil_pycache_t *cache_slot(fil_pythread_t *t, const void *code, const void *instr,
                                 uint32_t parent) {
    if (FIL_UNLIKELY(!t->cache) && fil_stacks_map_cache(t) != 0)
        return NULL;
    uint64_t h = ((uint64_t)(uintptr_t)code ^ ((uint64_t)(uintptr_t)instr << 7) ^
                  ((uint64_t)parent << 40)) *
                 UINT64_C(0x9e3779b97f4a7c15);
    return &t->cache[h >> (64 - FIL_PY_CACHE_BITS)];
}

/* The role of an entry whose caller's role is `below` (FIL_PYROLE_ROOT for
 * the outermost frame), from its code's flags. */
static uint8_t role_of(uint8_t below, uint8_t flags) {
    if (below == FIL_PYROLE_SWALLOWED)
        return FIL_PYROLE_SWALLOWED;
    if ((below == FIL_PYROLE_ROOT || below == FIL_PYROLE_HIDDEN) && (flags & FIL_PYFUNC_LAUNCHER))
        return flags & FIL_PYFUNC_MODULE ? FIL_PYROLE_SWALLOWED /* runpy's own import */
                                         : FIL_PYROLE_HIDDEN;
    if (below == FIL_PYROLE_HIDDEN && !(flags & FIL_PYFUNC_MODULE))
        return FIL_PYROLE_SWALLOWED;
    return FIL_PYROLE_SHOWN;
}

/*
 * The node of entry e under parent at e->instr (below: its caller's role):
 * its ways, then the call cache, then the line lookup and interning. Fills
 * e->func and e->role on first use; an untrusted code object (*trusted 0)
 * is neither cached nor kept in ways.
 */
static uint32_t resolve_entry(const fil_pyframes_t *fr, fil_pythread_t *t, fil_pyentry_t *e,
                              uint32_t parent, uint8_t below, int *trusted) {
    for (int w = 0; w < FIL_PY_WAYS; w++)
        if (e->way_instr[w] == e->instr && e->instr) {
            *trusted = 1; /* only trusted entries fill their ways */
            return e->node = e->way_node[w];
        }
    if (e->func == FIL_NONE) {
        unsigned flags = t->in_pymem ? FIL_PYFUNC_MAY_MARK : 0;
        e->func = fr->func_of(e->code, &flags);
        e->trusted = (flags & FIL_PYFUNC_TRUSTED) != 0;
        e->flags = (uint8_t)flags;
    }
    if (e->role == FIL_PYROLE_UNSET)
        e->role = e->func == FIL_NONE ? FIL_PYROLE_HIDDEN : role_of(below, e->flags);
    *trusted = e->trusted;
    fil_pycache_t *c = *trusted ? cache_slot(t, e->code, e->instr, parent) : NULL;
    if (c && c->code == e->code && c->instr == e->instr && c->parent == parent) {
        e->node = c->node;
    } else {
        e->node = e->role != FIL_PYROLE_SHOWN
                      ? parent
                      : fil_stacks_intern_node(parent, e->func, fr->line_of(e->code, e->instr));
        if (c && e->node)
            *c = (fil_pycache_t){e->code, e->instr, parent, e->node};
    }
    if (*trusted) {
        uint32_t w = e->next_way++ % FIL_PY_WAYS;
        e->way_instr[w] = e->instr;
        e->way_node[w] = e->node;
    }
    return e->node;
}

/* The code-object epoch moved: addresses remembered may now name other code. */
static void check_epoch(const fil_pyframes_t *fr, fil_pythread_t *t, int walk) {
    uint32_t now = __atomic_load_n(fr->epoch, __ATOMIC_ACQUIRE);
    if (FIL_LIKELY(t->epoch == now))
        return;
    t->epoch = now;
    if (t->cache)
        for (uint32_t i = 0; i < (1u << FIL_PY_CACHE_BITS); i++)
            t->cache[i].code = NULL;
    if (walk) {
        t->depth = t->resolved = 0;
    } else {
        for (uint32_t i = 0; i < t->depth; i++)
            for (int w = 0; w < FIL_PY_WAYS; w++)
                t->e[i].way_instr[w] = NULL;
    }
}

/*
 * Walk mode: collect the chain, keep the longest prefix of entries that are
 * resolved and equal, resolve the rest. Leaves the chain resolved and
 * mirrored (every entry's frame is live now). Cost: O(depth) loads and
 * comparisons, plus the resolution of the frames that differ.
 */
static uint32_t walk(const fil_pyframes_t *fr, fil_pythread_t *t) {
    if (!fr->events && t->depth && t->resolved == t->depth) {
        const void *instr;
        int same = fr->same(t, &instr);
        if (same < 0)
            return t->base;
        if (same) { /* only the innermost frame moved: its ways, mostly */
            fil_pyentry_t *e = &t->e[t->depth - 1];
            e->instr = instr;
            for (int w = 0; w < FIL_PY_WAYS; w++)
                if (e->way_instr[w] == instr)
                    return e->node = e->way_node[w];
            int trusted;
            uint32_t parent = t->depth > 1 ? t->e[t->depth - 2].node : t->base;
            uint8_t below = t->depth > 1 ? t->e[t->depth - 2].role : FIL_PYROLE_ROOT;
            uint32_t node = resolve_entry(fr, t, e, parent, below, &trusted);
            if (!trusted)
                e->code = NULL;
            return node;
        }
    }
    int got = fr->collect(t);
    if (got < 0)
        return t->base;
    uint32_t n = (uint32_t)got, k = 0, lim = n < t->resolved ? n : t->resolved;
    const fil_pyraw_t *s = t->scratch; /* innermost first */
    while (k < lim && t->e[k].code == s[n - 1 - k].code && t->e[k].instr == s[n - 1 - k].instr) {
        t->e[k].frame = s[n - 1 - k].frame;
        k++;
    }
    uint32_t parent = k ? t->e[k - 1].node : t->base;
    for (uint32_t i = k; i < n; i++) {
        const fil_pyraw_t *r = &s[n - 1 - i];
        fil_pyentry_t *e = &t->e[i];
        if (i < t->depth && i == k && e->code == r->code && e->role != FIL_PYROLE_UNSET) {
            e->instr = r->instr; /* the same frame, moved on: its ways still hold */
            e->frame = r->frame;
        } else {
            entry_init(e, r);
        }
        int trusted;
        parent = resolve_entry(fr, t, e, parent, i ? t->e[i - 1].role : FIL_PYROLE_ROOT, &trusted);
        if (!trusted)
            e->code = NULL; /* never matches: resolved again next time */
    }
    t->depth = t->resolved = n;
    t->mirrored = 1;
    return parent;
}

/* Entry i's instruction is now instr: it must be resolved again if moved. */
static void moved(fil_pythread_t *t, uint32_t i, const void *instr) {
    if (t->e[i].instr == instr)
        return;
    t->e[i].instr = instr;
    if (t->resolved > i)
        t->resolved = i;
}

/* Event mode: the mirror is right; resolve what moved. */
static uint32_t from_mirror(const fil_pyframes_t *fr, fil_pythread_t *t, const fil_pyraw_t *top) {
    moved(t, t->depth - 1, top->instr);
    uint32_t parent = t->resolved ? t->e[t->resolved - 1].node : t->base;
    for (uint32_t i = t->resolved; i < t->depth; i++) {
        int trusted;
        parent = resolve_entry(fr, t, &t->e[i], parent, i ? t->e[i - 1].role : FIL_PYROLE_ROOT,
                               &trusted);
    }
    t->resolved = t->depth;
    return parent;
}

/*
 * fil_stacks_resolve - the node of the calling thread's Python frames.
 * Context: the thread itself, guard set, no lock held.
 */
uint32_t fil_stacks_resolve(const fil_pyframes_t *fr, fil_pythread_t *t) {
    if (!fr->events) {
        check_epoch(fr, t, 1);
        return walk(fr, t);
    }
    check_epoch(fr, t, 0);
    fil_pyraw_t top;
    int r = fr->top(&top);
    if (r < 0)
        return t->base;
    if (t->mirrored && r == 0 && t->depth == 0)
        return t->base;
    int on_top = t->mirrored && t->depth && t->e[t->depth - 1].frame == top.frame &&
                 t->e[t->depth - 1].code == top.code;
    if (on_top)
        return from_mirror(fr, t, &top);
    if (r == 2)
        return FIL_NODE_UNTRACKED; /* instrumentation for our events: ours */
    return walk(fr, t);
}

/*
 * fil_stacks_py_enter - event mode: frame f starts or resumes on top of
 * caller (caller->frame NULL: f is the outermost frame). Keeps the mirror
 * if f sits on the mirrored top, else drops it.
 */
void fil_stacks_py_enter(fil_pythread_t *t, const fil_pyraw_t *f, const fil_pyraw_t *caller) {
    if (!t->mirrored)
        return;
    const void *top = t->depth ? t->e[t->depth - 1].frame : NULL;
    if (top != caller->frame || (t->depth == t->cap && fil_stacks_reserve(t, t->depth + 1) != 0)) {
        t->mirrored = 0;
        return;
    }
    if (t->depth)
        moved(t, t->depth - 1, caller->instr); /* where it called from */
    entry_init(&t->e[t->depth++], f);
}

/* fil_stacks_py_exit - event mode: frame f returns, yields or unwinds. */
void fil_stacks_py_exit(fil_pythread_t *t, const void *frame) {
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
