/* SPDX-License-Identifier: MIT */
/*
 * test_stacks.c - unit tests of call-stack interning and of resolving a
 * thread's frames into nodes (src/stacks/intern.c, resolve.c, pythread.c).
 *
 * Design: one private state (fil_state_open(-1)) per process. Interning is
 * checked against what the reports show: a function's file and name read
 * back from the state's strings (uint32 length, then the bytes) equal the
 * input, equal keys give one index and any difference a new one, a name
 * longer than FIL_STRING_MAX is cut; nodes dedupe on (parent, func, line),
 * have depth = parent's + 1 and parent < child, and 100,000 distinct nodes
 * keep their index when interned again (a shadow hash table in the test says
 * which key is new).
 *
 * The resolver is driven with a fake frame reader: fake code objects with
 * a line per instruction, a fake interpreter stack per thread the test
 * pushes and pops (and, in event mode, reports as the extension would).
 * Every fil_stacks_current() is compared with the node interned for the
 * expected (parent chain, function, line), and the node count shows the
 * resolver made no node the test did not expect; lookups are counted to
 * show what is remembered. Thread roots are checked in a pthread. Tests
 * may use libc freely.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fil/lock.h"
#include "fil/stacks.h"
#include "fil/state.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"

/* ---- reading the state back ---------------------------------------------- */

static const fil_node_t *node_at(uint32_t i)
{
    return fil_state_at(FIL_SEG_NODES, i);
}
static const fil_func_t *func_at(uint32_t i)
{
    return fil_state_at(FIL_SEG_FUNCS, i);
}

/* 1 if the string at index idx is exactly (s, n). */
static int string_is(uint64_t idx, const char *s, size_t n)
{
    if (idx + 4 > fil_state->strings.count)
        return 0;
    const char *p = fil_state_at(FIL_SEG_STRINGS, idx);
    uint32_t len;
    memcpy(&len, p, 4);
    return len == n && idx + 4 + len <= fil_state->strings.count && memcmp(p + 4, s, n) == 0;
}

static uint32_t func(const char *file, const char *name, uint32_t first_line)
{
    return fil_stacks_intern_func(file, strlen(file), name, strlen(name), first_line);
}

static uint32_t node(uint32_t parent, uint32_t f, uint32_t line)
{
    fil_lock();
    uint32_t n = fil_stacks_intern_node_locked(parent, f, line);
    fil_unlock();
    return n;
}

/* ---- functions ------------------------------------------------------------ */

static void test_funcs(void)
{
    CHECK_U64(fil_state->funcs.count, 0);
    uint32_t a = func("/srv/app/main.py", "main", 10);
    CHECK_U64(a, 0);
    CHECK_U64(fil_state->funcs.count, 1);
    CHECK_U64(func("/srv/app/main.py", "main", 10), a);
    CHECK_U64(fil_state->funcs.count, 1);

    /* Any difference is a new function. */
    uint32_t diff[] = {
        func("/srv/app/main.py", "main", 11),
        func("/srv/app/main.py", "Main", 10),
        func("/srv/app/main.pyc", "main", 10),
        func("/srv/app/main.py", "mai", 10),
        func("/srv/app/main.p", "ymain", 10),
        func("/srv/app/main.pym", "ain", 10),
        func("", "main", 10),
        func("/srv/app/main.py", "", 10),
        func("", "", 0),
    };
    uint32_t nd = sizeof diff / sizeof diff[0];
    for (uint32_t i = 0; i < nd; i++)
        CHECK_U64(diff[i], 1 + i);
    CHECK_U64(fil_state->funcs.count, 1 + nd);
    /* And each is found again. */
    CHECK_U64(func("/srv/app/main.p", "ymain", 10), diff[4]);
    CHECK_U64(func("", "", 0), diff[8]);
    CHECK_U64(func("/srv/app/main.py", "main", 10), a);

    /* Embedded NUL bytes count. */
    uint32_t z1 = fil_stacks_intern_func("a\0b", 3, "f", 1, 1);
    uint32_t z2 = fil_stacks_intern_func("a\0c", 3, "f", 1, 1);
    CHECK(z1 != z2 && z1 != FIL_NONE && z2 != FIL_NONE);
    CHECK(string_is(func_at(z2)->file, "a\0c", 3));

    /* The strings read back are the inputs. */
    const fil_func_t *f = func_at(a);
    CHECK(string_is(f->file, "/srv/app/main.py", 16));
    CHECK(string_is(f->name, "main", 4));
    CHECK_U64(f->first_line, 10);
    f = func_at(diff[4]);
    CHECK(string_is(f->file, "/srv/app/main.p", 15));
    CHECK(string_is(f->name, "ymain", 5));
    f = func_at(diff[8]);
    CHECK(string_is(f->file, "", 0));
    CHECK(string_is(f->name, "", 0));

    /* A 10,000-byte name is cut at FIL_STRING_MAX; a name differing only past
     * the cut is the same function once cut. */
    char *big = malloc(10000);
    for (int i = 0; i < 10000; i++)
        big[i] = (char)('A' + i % 23);
    uint32_t b1 = fil_stacks_intern_func("big.py", 6, big, 10000, 3);
    CHECK(b1 != FIL_NONE);
    f = func_at(b1);
    CHECK(string_is(f->name, big, FIL_STRING_MAX));
    CHECK(string_is(f->file, "big.py", 6));
    CHECK_U64(fil_stacks_intern_func("big.py", 6, big, 10000, 3), b1);
    CHECK_U64(fil_stacks_intern_func("big.py", 6, big, FIL_STRING_MAX, 3), b1);
    big[5000] = '#';
    CHECK_U64(fil_stacks_intern_func("big.py", 6, big, 10000, 3), b1);
    big[100] = '#';
    uint32_t b2 = fil_stacks_intern_func("big.py", 6, big, 10000, 3);
    CHECK(b2 != b1 && b2 != FIL_NONE);
    CHECK(string_is(func_at(b2)->name, big, FIL_STRING_MAX));
    /* A long file name too. */
    uint32_t b3 = fil_stacks_intern_func(big, 10000, "f", 1, 3);
    CHECK(string_is(func_at(b3)->file, big, FIL_STRING_MAX));
    free(big);

    /* Many functions (the table doubles several times): each distinct, each
     * found again, each reading back its own names. */
    uint32_t base = (uint32_t)fil_state->funcs.count;
    enum { NF = 5000 };
    uint32_t *ids = malloc(NF * sizeof *ids);
    int fresh = 1, again = 1, names = 1;
    for (uint32_t i = 0; i < NF; i++) {
        char file[64], name[64];
        snprintf(file, sizeof file, "/lib/mod%u.py", i % 97);
        snprintf(name, sizeof name, "fn_%u", i);
        ids[i] = func(file, name, i % 13);
        if (ids[i] != base + i)
            fresh = 0;
    }
    for (uint32_t i = 0; i < NF; i++) {
        char file[64], name[64];
        int fl = snprintf(file, sizeof file, "/lib/mod%u.py", i % 97);
        int nl = snprintf(name, sizeof name, "fn_%u", i);
        if (func(file, name, i % 13) != ids[i])
            again = 0;
        f = func_at(ids[i]);
        if (!string_is(f->file, file, (size_t)fl) || !string_is(f->name, name, (size_t)nl) ||
            f->first_line != i % 13)
            names = 0;
    }
    CHECK(fresh);
    CHECK(again);
    CHECK(names);
    CHECK_U64(fil_state->funcs.count, base + NF);
    free(ids);
}

/* ---- nodes ---------------------------------------------------------------- */

/* The test's own (parent, func, line) -> index table. */
typedef struct key {
    uint32_t parent, func, line, index;
} nkey_t;
static nkey_t *keys;
static uint64_t keys_cap;

static nkey_t *key_slot(uint32_t parent, uint32_t f, uint32_t line)
{
    uint64_t h = ((uint64_t)parent * 0x9e3779b97f4a7c15u) ^ ((uint64_t)f * 0xc2b2ae3d27d4eb4fu) ^
                 ((uint64_t)line * 0x165667b19e3779f9u);
    h ^= h >> 29;
    for (uint64_t j = h & (keys_cap - 1);; j = (j + 1) & (keys_cap - 1)) {
        nkey_t *k = &keys[j];
        if (k->index == 0 || (k->parent == parent && k->func == f && k->line == line))
            return k;
    }
}

static uint64_t rng = 0x243f6a8885a308d3u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_nodes(void)
{
    /* Node 0 is "[No Python stack]". */
    CHECK(fil_state->nodes.count >= 1);
    CHECK_U64(node_at(0)->parent, FIL_NONE);
    CHECK_U64(node_at(0)->func, FIL_NONE);
    CHECK_U64(node_at(0)->depth, 0);

    uint32_t f1 = func("n.py", "f1", 1), f2 = func("n.py", "f2", 5);
    uint32_t count0 = fil_stacks_node_count();
    uint32_t a = node(FIL_NONE, f1, 3);
    CHECK_U64(a, count0);
    CHECK_U64(fil_stacks_node_count(), count0 + 1);
    CHECK_U64(node(FIL_NONE, f1, 3), a);
    CHECK_U64(fil_stacks_node_count(), count0 + 1);
    CHECK_U64(node_at(a)->parent, FIL_NONE);
    CHECK_U64(node_at(a)->func, f1);
    CHECK_U64(node_at(a)->line, 3);
    CHECK_U64(node_at(a)->depth, 1);
    uint32_t b = node(a, f2, 7);
    CHECK_U64(b, a + 1);
    CHECK_U64(node_at(b)->depth, 2);
    CHECK_U64(node_at(b)->parent, a);
    /* Each field makes a difference. */
    uint32_t v[] = {node(a, f2, 8), node(a, f1, 7), node(FIL_NONE, f2, 7), node(0, f2, 7),
                    node(b, f2, 7)};
    for (int i = 0; i < 5; i++)
        CHECK_U64(v[i], b + 1 + (uint32_t)i);
    CHECK_U64(node_at(v[3])->depth, 1); /* under node 0, depth 0 */
    CHECK_U64(node_at(v[4])->depth, 3);
    CHECK_U64(node(b, f2, 7), v[4]);
    CHECK_U64(node(a, f2, 7), b);

    /* 100,000 distinct nodes in a random tree; keys may repeat while being
     * drawn, and the shadow table says which index each must get. */
    enum { N = 100000, NFUNC = 40 };
    uint32_t fs[NFUNC];
    for (int i = 0; i < NFUNC; i++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", i);
        fs[i] = func("tree.py", name, (uint32_t)i);
    }
    keys_cap = 1 << 19;
    keys = calloc(keys_cap, sizeof *keys);
    uint32_t *made = malloc(N * sizeof *made);
    uint32_t nmade = 0, draws = 0, expect_count = fil_stacks_node_count();
    int right = 1, depth_ok = 1, order_ok = 1;
    while (nmade < N) {
        uint64_t r = next_rand();
        uint32_t parent = (nmade == 0 || r % 8 == 0) ? FIL_NONE : made[(r >> 3) % nmade];
        uint32_t f = fs[(r >> 24) % NFUNC];
        uint32_t line = (uint32_t)((r >> 32) % 50);
        nkey_t *k = key_slot(parent, f, line);
        uint32_t got = node(parent, f, line);
        draws++;
        if (k->index) {
            if (got != k->index)
                right = 0;
            continue;
        }
        if (got != expect_count)
            right = 0;
        expect_count++;
        *k = (nkey_t){parent, f, line, got};
        made[nmade++] = got;
        const fil_node_t *n = node_at(got);
        uint32_t pd = parent == FIL_NONE ? 0 : node_at(parent)->depth;
        if (n->depth != pd + 1)
            depth_ok = 0;
        if (parent != FIL_NONE && parent >= got)
            order_ok = 0;
        if (n->parent != parent || n->func != f || n->line != line)
            right = 0;
    }
    CHECK(right);
    CHECK(depth_ok);
    CHECK(order_ok);
    CHECK(draws > N); /* some keys were drawn twice */
    CHECK_U64(fil_stacks_node_count(), expect_count);
    CHECK_U64(fil_state->dropped, 0);
    /* Interned again: same index, nothing new. */
    int stable = 1;
    for (uint32_t i = 0; i < N; i++) {
        const fil_node_t *n = node_at(made[i]);
        if (node(n->parent, n->func, n->line) != made[i])
            stable = 0;
    }
    CHECK(stable);
    CHECK_U64(fil_stacks_node_count(), expect_count);
    free(made);
    free(keys);
}

/* ---- resolving real frames (resolve.c) ------------------------------------ */

/* A fake code object: its interned function, FIL_PYFUNC_* flags, and one
 * line per instruction (instruction i of a fake frame runs line lines[i]). */
typedef struct fcode {
    uint32_t func;
    unsigned flags;
    int marked; /* co_extra set: reported TRUSTED */
    uint32_t lines[8];
} fcode_t;

/* A fake frame: its code and current instruction. */
typedef struct fframe {
    fcode_t *code;
    int instr; /* index into code->lines; the "instruction position" is &lines[instr] */
    int starting; /* at its first instruction, before its start event */
} fframe_t;

/* The fake interpreter stack of the calling thread, outermost first. */
typedef struct fstack {
    fframe_t *f[1024];
    int n;
} fstack_t;

static __thread fstack_t *cur;    /* this thread's fake stack */
static uint32_t epoch;            /* the extension's code epoch */
static int line_lookups, func_lookups;

static const void *instr_of(const fframe_t *f) { return &f->code->lines[f->instr]; }

static int events_on; /* the fake source's mode */

/* The frame source of fil/pyresolve.h, over the fake stacks. */
typedef struct fil_src {
    fstack_t *st;
} fil_src_t;

static inline int fil_src_open(fil_src_t *s, fil_pythread_t *t)
{
    (void)t;
    s->st = cur;
    return cur ? 0 : -1;
}

static int compares; /* walks, counted */

static inline int fil_src_compare(fil_src_t *s, const fil_pythread_t *t, uint32_t assume,
                                  uint32_t *lowest, fil_pyraw_t *top)
{
    uint32_t low = assume;
    compares++;
    if (s->st->n) {
        const fframe_t *f = s->st->f[s->st->n - 1];
        *top = (fil_pyraw_t){f->code, instr_of(f), f};
    }
    for (uint32_t j = 0; j < (uint32_t)s->st->n && j < assume; j++) {
        const fframe_t *f = s->st->f[s->st->n - 1 - j];
        uint32_t level = assume - 1 - j;
        if (level >= t->depth || t->key[level].code != f->code || t->key[level].instr != instr_of(f))
            low = level;
    }
    *lowest = low;
    return s->st->n;
}

static int quicks; /* quick() shortcuts taken, counted */

static inline int fil_src_quick(fil_src_t *s, const fil_pythread_t *t, fil_pyraw_t *top_raw)
{
    uint32_t n = t->depth;
    if ((uint32_t)s->st->n != n)
        return 0;
    for (uint32_t j = 0; j + 1 < n; j++) {
        const fframe_t *f = s->st->f[j];
        if (t->key[j].code != f->code || t->key[j].instr != instr_of(f))
            return 0;
    }
    const fframe_t *top = s->st->f[n - 1];
    if (t->key[n - 1].code != top->code)
        return 0;
    *top_raw = (fil_pyraw_t){top->code, instr_of(top), top};
    quicks++;
    return 1;
}

static int nears;       /* quick()'s other cases that found their frames, counted... */
static int moved_nears; /* ...and those where a frame below the top's caller moved */

static inline int fil_src_near(fil_src_t *s, fil_pythread_t *t, fil_pyraw_t *top,
                               uint32_t *low)
{
    uint32_t m = (uint32_t)s->st->n;
    if (!m || m > t->cap)
        return -1;
    uint32_t level = m - 1, lo = level;
    for (uint32_t j = 0; j < level; j++) {
        const fframe_t *f = s->st->f[j];
        if (lo == level && (j >= t->depth || t->key[j].code != f->code ||
                            t->key[j].instr != instr_of(f)))
            lo = j;
        t->scratch[level - 1 - j] = (fil_pyraw_t){f->code, instr_of(f), f};
    }
    const fframe_t *f = s->st->f[level];
    *top = (fil_pyraw_t){f->code, instr_of(f), f};
    *low = lo;
    nears++;
    moved_nears += lo + 1 < level;
    return (int)level;
}

static inline int fil_src_fill(fil_src_t *s, fil_pythread_t *t, uint32_t count)
{
    uint32_t n = 0;
    for (; n < count && n < (uint32_t)s->st->n; n++) {
        const fframe_t *f = s->st->f[s->st->n - 1 - n];
        t->scratch[n] = (fil_pyraw_t){f->code, instr_of(f), f};
    }
    return (int)n;
}

static inline int fil_src_top(fil_src_t *s, fil_pyraw_t *top, fil_pyraw_t *below)
{
    if (!s->st->n)
        return 0;
    const fframe_t *f = s->st->f[s->st->n - 1], *b = s->st->n > 1 ? s->st->f[s->st->n - 2] : NULL;
    *top = (fil_pyraw_t){f->code, instr_of(f), f};
    *below = b ? (fil_pyraw_t){b->code, instr_of(b), b} : (fil_pyraw_t){NULL, NULL, NULL};
    return f->starting ? 2 : 1;
}

static inline uint32_t fil_src_func_of(const void *code, unsigned *flags)
{
    const fcode_t *c = code;
    func_lookups++;
    *flags = c->flags | (c->marked ? FIL_PYFUNC_TRUSTED : 0);
    return c->func;
}

static inline uint32_t fil_src_line_of(const void *code, const void *instr)
{
    (void)code;
    line_lookups++;
    return *(const uint32_t *)instr;
}

static inline uint32_t fil_src_intern(uint32_t parent, uint32_t func, uint32_t line)
{
    return fil_stacks_intern_node(parent, func, line);
}

static inline int fil_src_reserve(fil_pythread_t *t, uint32_t n) { return fil_stacks_reserve(t, n); }
static inline int fil_src_map_cache(fil_pythread_t *t) { return fil_stacks_map_cache(t); }
static inline uint32_t fil_src_epoch(void) { return epoch; }
static inline int fil_src_events(void) { return events_on; }

static int hook_on; /* the fake interpreter's profile hook is ours */
static inline int fil_src_hook(fil_src_t *s, int on)
{
    (void)s;
    return hook_on = on;
}
static inline int fil_src_hooked(fil_src_t *s)
{
    (void)s;
    return hook_on;
}
static int blind_on; /* the fake thread runs inside a tracing callback */
static inline int fil_src_blind(fil_src_t *s)
{
    (void)s;
    return blind_on;
}

#include "fil/pyresolve.h"

/* The node of cur's frames under root, interned by the test itself:
 * frames[i] at its line, FIL_NONE root for a main-thread stack. */
static uint32_t expect(uint32_t root, const fstack_t *st, int from)
{
    uint32_t p = root;
    for (int i = from; i < st->n; i++)
        p = node(p, st->f[i]->code->func, st->f[i]->code->lines[st->f[i]->instr]);
    return p == FIL_NONE ? 0 : p;
}

/* fil_stacks_current() equals the expected node and made no node the test
 * did not ask for (interning the expectation found it). */
#define CHECK_CURRENT(root, st, from)                                                              \
    do {                                                                                           \
        uint32_t got__ = fil_stacks_current();                                                     \
        uint32_t before__ = fil_stacks_node_count();                                               \
        CHECK_U64(got__, expect(root, st, from));                                                  \
        CHECK_U64(fil_stacks_node_count(), before__);                                              \
    } while (0)

/* Event mode: what the extension reports when the top frame starts/exits. */
static void start_top(fil_pythread_t *t, const fstack_t *st)
{
    const fframe_t *f = st->f[st->n - 1], *c = st->n > 1 ? st->f[st->n - 2] : NULL;
    fil_pyraw_t rf = {f->code, instr_of(f), f};
    fil_pyraw_t rc = c ? (fil_pyraw_t){c->code, instr_of(c), c} : (fil_pyraw_t){0, 0, 0};
    fil_resolve_enter(t, &rf, &rc);
}

static void push(fstack_t *st, fframe_t *f)
{
    st->f[st->n++] = f;
    if (events_on || (hook_on && fil_stacks_thread()->hooked))
        start_top(fil_stacks_thread(), st);
}

static void pop(fstack_t *st)
{
    if (events_on || (hook_on && fil_stacks_thread()->hooked))
        fil_resolve_exit(fil_stacks_thread(), st->f[st->n - 1]);
    st->n--;
}

/* The same scenarios in walk mode and in event mode. */
static void scenarios(int events)
{
    static fcode_t a = {0, 0, 1, {10, 11, 12, 13}}, b = {0, 0, 1, {20, 21, 22, 23}},
                   c = {0, 0, 1, {30, 31, 32, 33}};
    a.func = func("s.py", "a", 10), b.func = func("s.py", "b", 20), c.func = func("s.py", "c", 30);
    fstack_t st = {.n = 0};
    fframe_t A = {&a, 0, 0}, B = {&b, 0, 0}, C = {&c, 0, 0}, B2 = {&b, 1, 0};
    events_on = events;
    fil_stacks_thread()->depth = fil_stacks_thread()->resolved = 0;
    fil_stacks_thread()->mirrored = 0;
    cur = &st;
    CHECK_U64(fil_stacks_current(), 0); /* no frame: no Python stack */

    push(&st, &A);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    uint32_t a10 = fil_stacks_current();
    CHECK_U64(node_at(a10)->line, 10);
    CHECK_U64(node_at(a10)->depth, 1);
    /* The top frame moves: a new node; back: the old one, with no lookup. */
    A.instr = 2;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(fil_stacks_current() != a10);
    A.instr = 0;
    line_lookups = 0;
    CHECK_U64(fil_stacks_current(), a10);
    CHECK_INT(line_lookups, 0);

    /* Calls: each frame under its caller's line. */
    A.instr = 1;
    push(&st, &B);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    push(&st, &C);
    C.instr = 3;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    uint32_t deep = fil_stacks_current();
    CHECK_U64(node_at(deep)->depth, 3);
    pop(&st);
    B.instr = 2; /* B went on after C returned */
    CHECK_CURRENT(FIL_NONE, &st, 0);
    pop(&st);

    /* The same function called again from the same line keeps its nodes
     * without a line lookup (call cache), from another line gets others. */
    push(&st, &B2);
    fil_stacks_current();
    pop(&st);
    line_lookups = 0;
    push(&st, &B2);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK_INT(line_lookups, 0);
    pop(&st);
    A.instr = 3;
    push(&st, &B2);
    CHECK_CURRENT(FIL_NONE, &st, 0);

    /* A chain replaced behind the events' back (a greenlet switch, a hook
     * taken away): attribution follows the real frames. */
    fstack_t other = {.n = 0};
    fframe_t G1 = {&c, 1, 0}, G2 = {&a, 2, 0};
    other.f[other.n++] = &G1;
    other.f[other.n++] = &G2;
    cur = &other;
    CHECK_CURRENT(FIL_NONE, &other, 0);
    cur = &st;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    pop(&st);

    /* A code object that cannot be marked (no GIL) is named every time in
     * walk mode (its address must not be remembered); in event mode the
     * mirror holds its frame, which keeps it alive. */
    static fcode_t u = {0, 0, 0, {50, 51}};
    u.func = func("s.py", "unmarked", 50);
    fframe_t U = {&u, 1, 0};
    push(&st, &U);
    func_lookups = 0;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK_INT(func_lookups, events ? 1 : 2);
    pop(&st);

    /* A code object died: nothing remembered by code address is reused
     * (event mode keeps the names of the mirrored frames: they are alive). */
    push(&st, &B);
    fil_stacks_current();
    epoch++;
    func_lookups = line_lookups = 0;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(events || (line_lookups >= 2 && func_lookups >= 2));
    pop(&st);

    /* A frame set up but not started (event mode: its code is being
     * instrumented for our events) allocates for the profiler. */
    fframe_t S = {&c, 0, 1};
    st.f[st.n++] = &S; /* no start event yet */
    if (events)
        CHECK_U64(fil_stacks_current(), FIL_NODE_UNTRACKED);
    S.starting = 0;
    if (events)
        start_top(fil_stacks_thread(), &st);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    pop(&st);
    pop(&st);
    CHECK_U64(fil_stacks_current(), 0);
    cur = NULL;
}

/* Walk mode's shortcut: a loop allocating from instructions the innermost
 * frame's ways know costs no walk, and anything else that moved (a frame
 * below, a call, a return, a recursion one level deeper at the same
 * instruction) still gets the node of the real chain. */
static void test_quick(void)
{
    static fcode_t a = {0, 0, 1, {60, 61, 62}}, b = {0, 0, 1, {70, 71, 72, 73}};
    a.func = func("q.py", "outer", 60), b.func = func("q.py", "inner", 70);
    fframe_t A = {&a, 1, 0}, B = {&b, 0, 0}, B2 = {&b, 0, 0};
    fstack_t st = {.n = 0};
    events_on = 0;
    fil_stacks_thread_exit();
    cur = &st;
    st.f[st.n++] = &A;
    st.f[st.n++] = &B;
    for (int i = 0; i < 4; i++) { /* every instruction seen once */
        B.instr = i;
        CHECK_CURRENT(FIL_NONE, &st, 0);
    }
    compares = quicks = 0;
    int right = 1;
    for (int i = 0; i < 100; i++) {
        B.instr = (i * 7) % 4;
        if (fil_stacks_current() != expect(FIL_NONE, &st, 0))
            right = 0;
    }
    CHECK(right);
    CHECK_INT(compares, 0);
    CHECK_INT(quicks, 100);
    /* The caller moved on: the same inner instruction is another node,
     * resolved afresh (by near(), from the frames it collected, or a walk). */
    A.instr = 2;
    line_lookups = 0;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(line_lookups > 0);
    /* Recursion at the same instruction, then back. */
    st.f[st.n++] = &B2;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    st.n--;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    /* A frame below replaced by another code's. */
    static fcode_t c = {0, 0, 1, {80, 81, 82}};
    c.func = func("q.py", "other", 80);
    fframe_t C = {&c, 2, 0};
    st.f[0] = &C;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    st.f[0] = &A;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    /* An instruction the ways do not hold: walked, and right. */
    B.instr = 3;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    cur = NULL;
}

/* A module body (or a function run once) under an unchanged chain: the
 * innermost frame allocates at more instructions than its ways hold. Each
 * new one is looked up once; when the body runs again (a second import of
 * the same code, a loop over a long body) every node comes from the call
 * cache, without a walk or a line lookup, and each is the real chain's. */
static void test_body(void)
{
    static fcode_t imp = {0, 0, 1, {5, 6}}, body = {0, 0, 1, {1, 2, 3, 4, 5, 6, 7, 8}};
    imp.func = func("<frozen importlib._bootstrap>", "_call_with_frames_removed", 5);
    body.func = func("mod.py", "<module>", 1);
    fframe_t F[6], B = {&body, 0, 0};
    fstack_t st = {.n = 0};
    events_on = 0;
    fil_stacks_thread_exit();
    cur = &st;
    for (int i = 0; i < 6; i++) {
        F[i] = (fframe_t){&imp, i % 2, 0};
        st.f[st.n++] = &F[i];
    }
    st.f[st.n++] = &B;
    int right = 1;
    line_lookups = 0;
    for (int i = 0; i < 8; i++) {
        B.instr = i;
        if (fil_stacks_current() != expect(FIL_NONE, &st, 0))
            right = 0;
    }
    CHECK(right);
    CHECK(line_lookups >= 8);
    compares = line_lookups = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 8; i++) {
            B.instr = round ? 7 - i : i;
            if (fil_stacks_current() != expect(FIL_NONE, &st, 0))
                right = 0;
        }
    }
    CHECK(right);
    CHECK_INT(compares, 0);
    CHECK_INT(line_lookups, 0);
    cur = NULL;
}

/* quick()'s other cases: functions called in turn from several places of
 * one caller, one of them calling one more, allocating in any order. Once
 * each chain was walked, the rest needs no walk (the caller of the
 * innermost may move: only the frames below it must be as resolved), and
 * every node is the one of the real chain; untrusted code (not marked) is walked every time. */
static void test_near(void)
{
    static fcode_t m = {0, 0, 1, {10, 11, 12, 13}}, x = {0, 0, 1, {20, 21}},
                   y = {0, 0, 1, {30, 31}}, z = {0, 0, 1, {40, 41}}, u = {0, 0, 0, {50}};
    m.func = func("n.py", "main", 10), x.func = func("n.py", "x", 20);
    y.func = func("n.py", "y", 30), z.func = func("n.py", "z", 40), u.func = func("n.py", "u", 50);
    fframe_t M = {&m, 0, 0}, X = {&x, 0, 0}, Y = {&y, 0, 0}, Z = {&z, 0, 0}, U = {&u, 0, 0};
    fstack_t st = {.n = 0};
    fframe_t *tops[3] = {&X, &Y, &Y};
    events_on = 0;
    fil_stacks_thread_exit();
    cur = &st;
    int right = 1, walked_late = 0;
    for (int round = 0; round < 2; round++) {
        compares = nears = 0;
        for (int i = 0; i < 120; i++) {
            int k = (i * 5 + i / 7) % 3;
            st.n = 0;
            st.f[st.n++] = &M;
            M.instr = k; /* each called from its own place */
            st.f[st.n++] = tops[k];
            tops[k]->instr = i % 2;
            if (k == 2) /* y calls z one deeper */
                st.f[st.n++] = &Z, Z.instr = (i / 3) % 2;
            if (fil_stacks_current() != expect(FIL_NONE, &st, 0))
                right = 0;
        }
        if (round == 1)
            walked_late = compares;
    }
    CHECK(right);
    CHECK_INT(walked_late, 0);
    CHECK(nears > 0);
    /* Untrusted code: never remembered, so resolved afresh each time (its
     * line looked up again), and still right. */
    st.n = 0;
    st.f[st.n++] = &M;
    st.f[st.n++] = &U;
    line_lookups = 0;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    st.f[1] = &X;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    st.f[1] = &U;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(line_lookups >= 2);
    cur = NULL;
}

/* The near case with frames below the innermost's caller that moved: a
 * loop body (g) calls r from two places, r calls b from two places, and
 * other functions are called from g in between, so the chain as resolved
 * is rarely the one of the next allocation but for its top. Every node is
 * right, and the second round walks less than the first, which saw each
 * chain for the first time (not none: two keys the call cache happens to
 * hash alike with a third, where the addresses fall, walk). */
static void test_near_moved(void)
{
    static fcode_t m = {0, 0, 1, {10, 11}}, g = {0, 0, 1, {20, 21, 22, 23}},
                   r = {0, 0, 1, {30, 31, 32}}, b = {0, 0, 1, {40, 41}}, l = {0, 0, 1, {50}},
                   l2 = {0, 0, 1, {60}};
    m.func = func("p.py", "main", 10), g.func = func("p.py", "grow", 20);
    r.func = func("p.py", "randrange", 30), b.func = func("p.py", "below", 40);
    l.func = func("p.py", "<lambda>", 50), l2.func = func("p.py", "<lambda>", 60);
    fframe_t M = {&m, 0, 0}, G = {&g, 0, 0}, R = {&r, 0, 0}, B = {&b, 0, 0}, L = {&l, 0, 0},
             L2 = {&l2, 0, 0};
    fstack_t st = {.n = 0};
    events_on = 0;
    fil_stacks_thread_exit();
    cur = &st;
    int right = 1, walked_late = 0, walked_first = 0;
    for (int round = 0; round < 2; round++) {
        compares = moved_nears = 0;
        for (int i = 0; i < 200; i++) {
            int step = i % 5, call = (i / 5) % 2;
            st.n = 0;
            st.f[st.n++] = &M;
            M.instr = (i / 10) % 2;
            st.f[st.n++] = &G;
            if (step < 3) { /* in r (and maybe b), called from place `call` */
                G.instr = call;
                st.f[st.n++] = &R;
                R.instr = step == 2 ? 2 : call;
                if (step < 2)
                    st.f[st.n++] = &B, B.instr = step;
            } else if (step == 3) {
                G.instr = 2;
                st.f[st.n++] = call ? &L : &L2;
            } else {
                G.instr = 3; /* g itself */
            }
            if (fil_stacks_current() != expect(FIL_NONE, &st, 0))
                right = 0;
        }
        if (round == 0)
            walked_first = compares;
        else
            walked_late = compares;
    }
    CHECK(right);
    CHECK(walked_late < walked_first);
    CHECK(moved_nears > 0);
    cur = NULL;
}

/* Python's launcher frames (runpy, the import system) at the root are not
 * shown; what else they run before the module's code is charged to the
 * base; module bodies under them are roots. */
static void test_launcher(void)
{
    static fcode_t run = {0, FIL_PYFUNC_LAUNCHER, 1, {196}}, code = {0, FIL_PYFUNC_LAUNCHER, 1, {86}},
                   mod = {0, FIL_PYFUNC_MODULE, 1, {3}}, find = {0, 0, 1, {95}},
                   imp = {0, FIL_PYFUNC_LAUNCHER, 1, {1178}}, pkg = {0, FIL_PYFUNC_MODULE, 1, {1}},
                   f = {0, 0, 1, {7}};
    run.func = func("<frozen runpy>", "_run_module_as_main", 173);
    code.func = func("<frozen runpy>", "_run_code", 64);
    mod.func = func("m.py", "<module>", 1);
    find.func = func("hack.py", "find_spec", 90);
    imp.func = func("<frozen importlib._bootstrap>", "_find_and_load", 1165);
    pkg.func = func("pkg/__init__.py", "<module>", 1);
    f.func = func("m.py", "work", 5);
    fframe_t R = {&run, 0, 0}, C = {&code, 0, 0}, M = {&mod, 0, 0}, F = {&f, 0, 0},
             I = {&imp, 0, 0}, H = {&find, 0, 0}, P = {&pkg, 0, 0};
    fstack_t st = {.n = 0};
    events_on = 0;
    cur = &st;
    st.f[0] = &R, st.f[1] = &C, st.f[2] = &M, st.f[3] = &F, st.n = 4;
    CHECK_CURRENT(FIL_NONE, &st, 2); /* m.py <module>, work */
    st.f[1] = &I, st.f[2] = &H, st.n = 3;
    CHECK_U64(fil_stacks_current(), 0); /* a finder looking the module up */
    st.f[2] = &P, st.n = 3;
    CHECK_CURRENT(FIL_NONE, &st, 2); /* a package __init__ on the way */
    /* Not at the root: shown as any other frame. */
    st.f[0] = &M, st.f[1] = &I, st.f[2] = &P, st.n = 3;
    CHECK_CURRENT(FIL_NONE, &st, 0);
    cur = NULL;
}

/* The import system between an import statement and the module body it
 * runs is left out at any depth: its own allocations are the import
 * line's, and the module body (or a finder it calls) is shown right under
 * that line. At the root, under a `-m` run, it stays hidden and what it
 * runs before a module is swallowed (test_launcher). */
static void test_import_system(void)
{
    static fcode_t mod = {0, FIL_PYFUNC_MODULE, 1, {3, 4}},
                   find = {0, FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT, 1, {1178}},
                   load = {0, FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT, 1, {241}},
                   sub = {0, FIL_PYFUNC_MODULE, 1, {1, 2}}, hook = {0, 0, 1, {95}},
                   f = {0, 0, 1, {7}};
    mod.func = func("main.py", "<module>", 1);
    find.func = func("<frozen importlib._bootstrap>", "_find_and_load", 1165);
    load.func = func("<frozen importlib._bootstrap>", "_call_with_frames_removed", 233);
    sub.func = func("sub.py", "<module>", 1);
    hook.func = func("hack.py", "find_spec", 90);
    f.func = func("sub.py", "work", 5);
    fframe_t M = {&mod, 0, 0}, I = {&find, 0, 0}, L = {&load, 0, 0}, S = {&sub, 0, 0},
             H = {&hook, 0, 0}, F = {&f, 0, 0}, I2 = {&find, 0, 0}, L2 = {&load, 0, 0},
             S2 = {&sub, 1, 0};
    fstack_t st = {.n = 0};
    events_on = 0;
    fil_stacks_thread_exit();
    cur = &st;
    uint32_t line3 = node(FIL_NONE, mod.func, 3);
    if (line3 == FIL_NONE)
        line3 = 0;
    st.f[0] = &M, st.f[1] = &I, st.n = 2;
    CHECK_U64(fil_stacks_current(), line3); /* the import system's own: the import line's */
    st.f[2] = &H, st.n = 3;
    CHECK_U64(fil_stacks_current(), node(line3, hook.func, 95)); /* a finder, under the line */
    st.f[2] = &L, st.f[3] = &S, st.n = 4;
    uint32_t body = node(line3, sub.func, 1);
    CHECK_U64(fil_stacks_current(), body); /* main.py:3;sub.py:1 */
    st.f[4] = &F, st.n = 5;
    CHECK_U64(fil_stacks_current(), node(body, f.func, 7));
    /* Nested: sub.py:2 imports again; two more levels of the import system. */
    st.f[3] = &S2, st.f[4] = &I2, st.f[5] = &L2, st.f[6] = &F, st.n = 7;
    CHECK_U64(fil_stacks_current(), node(node(line3, sub.func, 2), f.func, 7));
    /* The same chain again: the same node, from the caches. */
    st.n = 4;
    (void)fil_stacks_current();
    st.n = 7;
    CHECK_U64(fil_stacks_current(), node(node(line3, sub.func, 2), f.func, 7));
    cur = NULL;
}

/* Notebooks: the kernel's entry module is shown and what it runs is
 * swallowed into it; a cell's body is a root of its own wherever it runs
 * (under the kernel, under a magic that runs a cell); a function a cell
 * defined is shown where it is called. */
static void test_notebook(void)
{
    static fcode_t run = {0, FIL_PYFUNC_LAUNCHER, 1, {196}},
                   kernel = {0, FIL_PYFUNC_KERNEL | FIL_PYFUNC_MODULE, 1, {17}},
                   loop = {0, 0, 1, {603}}, shell = {0, 0, 1, {3006}},
                   cell = {0, FIL_PYFUNC_CELL | FIL_PYFUNC_MODULE, 1, {2}},
                   magic = {0, 0, 1, {44}}, inner = {0, FIL_PYFUNC_CELL | FIL_PYFUNC_MODULE, 1, {3}},
                   def = {0, FIL_PYFUNC_CELL, 1, {5}};
    run.func = func("<frozen runpy>", "_run_module_as_main", 173);
    kernel.func = func("/usr/lib/python3/dist-packages/ipykernel_launcher.py", "<module>", 1);
    loop.func = func("asyncio/base_events.py", "run_forever", 590);
    shell.func = func("IPython/core/interactiveshell.py", "run_cell", 2940);
    cell.func = func("/tmp/ipykernel_7/123.py", "<module>", 1);
    magic.func = func("filprofiler/ipython.py", "filprofile", 40);
    inner.func = func("/tmp/ipykernel_7/456.py", "<module>", 1);
    def.func = func("/tmp/ipykernel_7/789.py", "make", 4);
    fframe_t R = {&run, 0, 0}, K = {&kernel, 0, 0}, L = {&loop, 0, 0}, S = {&shell, 0, 0},
             X = {&cell, 0, 0}, M = {&magic, 0, 0}, Y = {&inner, 0, 0}, D = {&def, 0, 0};
    fstack_t st = {.n = 0};
    events_on = 0;
    cur = &st;
    st.f[0] = &R, st.f[1] = &K, st.f[2] = &L, st.f[3] = &S, st.n = 4;
    /* The kernel's own memory: its entry's line only. */
    CHECK_U64(fil_stacks_current(), node(FIL_NONE, kernel.func, 17));
    st.f[4] = &X, st.n = 5;
    CHECK_CURRENT(FIL_NONE, &st, 4); /* a cell: its line is a root */
    st.f[5] = &D, st.n = 6;
    CHECK_CURRENT(FIL_NONE, &st, 4); /* a function of another cell, called from this one */
    st.f[5] = &M, st.f[6] = &S, st.f[7] = &Y, st.f[8] = &D, st.n = 9;
    CHECK_CURRENT(FIL_NONE, &st, 7); /* a cell run by a magic: a root again */
    CHECK_U64(node_at(fil_stacks_current())->depth, 2);
    /* A thread started from a cell's line: a cell it runs hangs from that line. */
    st.f[0] = &X, st.f[1] = &Y, st.n = 2;
    fil_stacks_thread_exit();
    uint32_t base = expect(FIL_NONE, &st, 0);
    fil_stacks_thread_base(base);
    st.f[0] = &L, st.f[1] = &Y, st.n = 2;
    CHECK_CURRENT(base, &st, 1);
    fil_stacks_thread_base(0);
    fil_stacks_thread_exit();
    cur = NULL;
}

/* A stack deeper than the arrays start with grows them while collecting. */
static void test_deep(void)
{
    static fcode_t r = {0, 0, 1, {100, 101}};
    r.func = func("s.py", "recurse", 100);
    static fframe_t frames[60];
    fstack_t st = {.n = 0};
    events_on = 0;
    cur = &st;
    for (int i = 0; i < 60; i++) {
        frames[i] = (fframe_t){&r, i % 2, 0};
        st.f[st.n++] = &frames[i];
    }
    fil_pythread_t *t = fil_stacks_thread();
    fil_stacks_thread_exit(); /* start from empty arrays */
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK_U64(node_at(fil_stacks_current())->depth, 60);
    CHECK(t->cap >= 60);
    cur = NULL;
}

/* Deep mode: over FIL_PY_DEEP_ON frames, at an allocation through Python's
 * allocator, our hook goes on and its reports replace the walk, nodes
 * still exact; an allocation made before a frame's start report (3.11's
 * frame object for the hook) needs no walk either; someone else's hook
 * replacing ours sends it back to walking; under FIL_PY_DEEP_OFF frames
 * the hook goes off. */
static void test_deep_mode(void)
{
    static fcode_t r = {0, 0, 1, {100, 101}};
    r.func = func("s.py", "deep", 100);
    static fframe_t frames[FIL_PY_DEEP_ON + 64];
    static fstack_t st;
    fil_pythread_t *t = fil_stacks_thread();
    st.n = 0;
    events_on = hook_on = 0;
    cur = &st;
    fil_stacks_thread_exit();
    t->in_pymem = 1;
    for (int i = 0; i < FIL_PY_DEEP_ON + 64; i++)
        frames[i] = (fframe_t){&r, 1, 0};
    for (int i = 0; i < FIL_PY_DEEP_ON + 10; i++)
        push(&st, &frames[i]);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(hook_on && t->hooked);
    compares = 0;
    for (int i = FIL_PY_DEEP_ON + 10; i < FIL_PY_DEEP_ON + 30; i++) {
        push(&st, &frames[i]);
        frames[i].instr = 0;
        CHECK_CURRENT(FIL_NONE, &st, 0);
    }
    CHECK_INT(compares, 0);
    st.f[st.n++] = &frames[FIL_PY_DEEP_ON + 30]; /* pushed, start not reported yet */
    CHECK_CURRENT(FIL_NONE, &st, 0);
    start_top(t, &st); /* the late report changes nothing */
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK_INT(compares, 0);
    for (int i = 0; i < 5; i++)
        pop(&st);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK_INT(compares, 0);
    hook_on = 0; /* the program's sys.setprofile(None) took ours away */
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(compares > 0);      /* walked... */
    CHECK(t->hooked && hook_on); /* ...and, still deep, put it back */
    while (st.n > FIL_PY_DEEP_OFF - 1)
        pop(&st);
    CHECK_CURRENT(FIL_NONE, &st, 0);
    CHECK(!t->hooked && !hook_on);
    t->in_pymem = 0;
    cur = NULL;
}

typedef struct thread_arg {
    uint32_t root;
    uint32_t got_empty, got_one, want_one;
} thread_arg_t;

static void *thread_main(void *p)
{
    thread_arg_t *t = p;
    static fcode_t w = {0, 0, 1, {30}};
    w.func = func("t.py", "worker", 30);
    if (t->root != FIL_NONE)
        fil_stacks_thread_base(t->root);
    fstack_t st = {.n = 0};
    fframe_t T = {&w, 0, 0};
    cur = &st;
    t->got_empty = fil_stacks_current();
    st.f[st.n++] = &T;
    t->got_one = fil_stacks_current();
    t->want_one = expect(t->root, &st, 0);
    fil_stacks_thread_exit();
    return NULL;
}

/* A thread's frames hang below the line that started it. */
static void test_threads(void)
{
    uint32_t spawn = node(FIL_NONE, func("t.py", "main", 1), 5);
    thread_arg_t t1 = {.root = spawn}, t2 = {.root = FIL_NONE};
    pthread_t th;
    events_on = 0;
    CHECK(pthread_create(&th, NULL, thread_main, &t1) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_U64(t1.got_empty, spawn);
    CHECK_U64(t1.got_one, t1.want_one);
    CHECK_U64(node_at(t1.got_one)->parent, spawn);
    CHECK_U64(node_at(t1.got_one)->depth, 2);
    CHECK(pthread_create(&th, NULL, thread_main, &t2) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_U64(t2.got_empty, 0);
    CHECK_U64(t2.got_one, t2.want_one);
    CHECK_U64(node_at(t2.got_one)->parent, FIL_NONE);
}

static void test_resolve(void)
{
    CHECK_U64(fil_stacks_current(), 0); /* before any frame reader */
    fil_stacks_set_resolver(fil_resolve);
    scenarios(0);
    scenarios(1);
    test_quick();
    test_body();
    test_near();
    test_near_moved();
    test_launcher();
    test_import_system();
    test_notebook();
    test_deep();
    test_deep_mode();
    test_threads();
    fil_stacks_set_resolver(NULL);
}

int main(void)
{
    CHECK(fil_state_open(-1) == 0);
    CHECK(fil_stacks_init() == 0);
    CHECK(fil_tracker_init() == 0);
    if (failures) {
        return check_summary("test_stacks");
    }
    test_funcs();
    test_nodes();
    test_resolve();
    return check_summary("test_stacks");
}
