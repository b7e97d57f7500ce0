/* SPDX-License-Identifier: MIT */
/*
 * shadow.c - the per-thread shadow stack of Python frames.
 *
 * The Python extension's profile hook pushes a frame on "call" and pops it on
 * "return"; that costs a few stores, no lock and no line lookup. The node an
 * allocation is charged to is resolved lazily in fil_stacks_current():
 * frames below the top cannot move while a callee runs, so each keeps the
 * node it had, and only the frames pushed since the last resolution, plus the
 * top, are looked at again. A frame whose last instruction offset (lasti) is
 * unchanged keeps its node without reading its line.
 *
 * Thread-local state uses the initial-exec TLS model: this library is
 * preloaded, so its TLS is static and reading it never calls malloc.
 */
#include <pthread.h>

#include "fil/lock.h"
#include "fil/stacks.h"
#include "fil/sys.h"

/* Instruction offsets remembered per frame: a loop body allocates from a
 * few instructions in turn (a tuple, a str, a list append...), and each of
 * them keeps its node without a line lookup or a hash probe. */
#define WAYS 4

typedef struct entry {
    void *pyframe;       /* borrowed frame object, valid between call and return */
    void *code;          /* its code object (identity only, for the call cache) */
    uint32_t func;       /* interned function */
    uint32_t parent;     /* caller's node the cache below was filled under */
    uint32_t node;       /* node at the last resolution */
    uint32_t next;       /* cache slot to replace next */
    int32_t lasti[WAYS]; /* instruction offsets seen (-2: empty) */
    uint32_t nodes[WAYS];/* their nodes */
} entry_t;

/* Per-thread direct-mapped cache (code, caller's node, instruction offset)
 * -> node: every call makes a new frame whose own offsets cache is empty,
 * and a function called in a loop would otherwise read its line and probe
 * the intern hash on each call. Nodes never die, so an entry stays right;
 * the code object is part of the key because one interned function (same
 * file, name, first line) may have several code objects. */
#define CALL_CACHE_BITS 10

typedef struct call_cache {
    void *code;
    uint32_t parent;
    int32_t lasti;
    uint32_t node;
    uint32_t pad;
} call_cache_t;

typedef struct shadow {
    entry_t *e;    /* private pages, cap entries */
    call_cache_t *cache; /* private pages, 1 << CALL_CACHE_BITS entries, or NULL */
    uint32_t cap;
    uint32_t depth;
    uint32_t stable; /* entries [0, stable) keep their resolved nodes */
    uint32_t base1;  /* 1 + node of the line that started this thread; 0: none */
} shadow_t;

static __thread shadow_t me __attribute__((tls_model("initial-exec")));
static int (*read_line)(void *);
static int (*read_lasti)(void *);
static pthread_key_t exit_key;
static int have_exit_key;

static void on_thread_exit(void *unused) {
    (void)unused;
    fil_stacks_thread_exit();
}

void fil_stacks_set_frame_readers(int (*line)(void *), int (*lasti)(void *)) {
    if (!have_exit_key && pthread_key_create(&exit_key, on_thread_exit) == 0)
        have_exit_key = 1;
    read_lasti = lasti;
    __atomic_store_n(&read_line, line, __ATOMIC_RELEASE);
}

/* Double the entry array. 0, or -1 with the stack unchanged. */
static int grow(void) {
    uint32_t cap = me.cap ? me.cap * 2 : 256;
    entry_t *n = fil_sys_pages(cap * sizeof(entry_t));
    if (!n)
        return -1;
    for (uint32_t i = 0; i < me.depth; i++)
        n[i] = me.e[i];
    fil_sys_unmap(me.e, me.cap * sizeof(entry_t));
    if (!me.e && have_exit_key)
        pthread_setspecific(exit_key, n);
    me.e = n;
    me.cap = cap;
    return 0;
}

/* Context: the thread itself, GIL held. A push that cannot grow the stack is
 * dropped; the matching pop then finds a different top and is ignored. */
void fil_stacks_push(void *pyframe, void *code, uint32_t func) {
    if (me.depth == me.cap && grow() != 0)
        return;
    entry_t *t = &me.e[me.depth];
    t->pyframe = pyframe;
    t->code = code;
    t->func = func;
    t->parent = FIL_NONE - 1; /* no cached node matches until resolved */
    if (me.depth && me.stable > me.depth - 1)
        me.stable = me.depth - 1;
    me.depth++;
}

void fil_stacks_pop(void *pyframe) {
    if (!me.depth || me.e[me.depth - 1].pyframe != pyframe)
        return;
    me.depth--;
    uint32_t top = me.depth ? me.depth - 1 : 0;
    if (me.stable > top)
        me.stable = top;
}

/* This thread's call-cache slot for the key, mapping the cache on first
 * use; NULL if it cannot be mapped (the cache is then skipped). */
static call_cache_t *call_slot(void *code, uint32_t parent, int lasti) {
    if (FIL_UNLIKELY(!me.cache)) {
        me.cache = fil_sys_pages(sizeof(call_cache_t) << CALL_CACHE_BITS);
        if (!me.cache)
            return NULL;
    }
    uint64_t h = ((uint64_t)(uintptr_t)code ^ ((uint64_t)parent << 32) ^ (uint32_t)lasti) *
                 UINT64_C(0x9e3779b97f4a7c15);
    return &me.cache[h >> (64 - CALL_CACHE_BITS)];
}

/* The node of frame t under `parent` at its current instruction. */
static uint32_t resolve(entry_t *t, uint32_t parent) {
    int lasti = read_lasti ? read_lasti(t->pyframe) : -1;
    if (t->parent != parent) { /* first time, or the caller moved: forget */
        t->parent = parent;
        for (int w = 0; w < WAYS; w++)
            t->lasti[w] = -2;
    }
    for (int w = 0; w < WAYS && lasti >= 0; w++)
        if (t->lasti[w] == lasti)
            return t->node = t->nodes[w];
    call_cache_t *c = call_slot(t->code, parent, lasti);
    if (c && c->code == t->code && c->parent == parent && c->lasti == lasti) {
        t->node = c->node;
    } else {
        int line = read_line(t->pyframe);
        fil_lock();
        t->node = fil_stacks_intern_node_locked(parent, t->func, line > 0 ? (uint32_t)line : 0);
        fil_unlock();
        if (c && lasti >= 0 && t->node)
            *c = (call_cache_t){t->code, parent, lasti, t->node, 0};
    }
    uint32_t w = t->next++ % WAYS;
    t->lasti[w] = lasti;
    t->nodes[w] = t->node;
    return t->node;
}

/*
 * fil_stacks_current - the node this thread's allocations are charged to.
 * Context: the thread itself, any time (GIL not required: it only reads the
 * thread's own suspended frames); takes the lock when a node must be interned.
 */
uint32_t fil_stacks_current(void) {
    uint32_t base = me.base1 ? me.base1 - 1 : FIL_NONE;
    if (!me.depth || !read_line)
        return base == FIL_NONE ? 0 : base;
    uint32_t parent = me.stable ? me.e[me.stable - 1].node : base;
    for (uint32_t i = me.stable; i < me.depth; i++)
        parent = resolve(&me.e[i], parent);
    me.stable = me.depth - 1;
    return parent;
}

void fil_stacks_thread_base(uint32_t node) { me.base1 = node == FIL_NONE ? 0 : node + 1; }

void fil_stacks_thread_exit(void) {
    entry_t *e = me.e;
    uint32_t cap = me.cap;
    call_cache_t *c = me.cache;
    me.e = NULL;
    me.cache = NULL;
    me.cap = me.depth = me.stable = 0;
    fil_sys_unmap(e, cap * sizeof(entry_t));
    fil_sys_unmap(c, sizeof(call_cache_t) << CALL_CACHE_BITS);
}
