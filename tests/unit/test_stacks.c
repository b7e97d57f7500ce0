/* SPDX-License-Identifier: MIT */
/*
 * test_stacks.c - unit tests of call-stack interning and the shadow stack
 * (src/stacks/intern.c, src/stacks/shadow.c).
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
 * The shadow stack is driven with fake frames: the "frame" pointers are
 * structs of this file holding a line and an instruction offset (lasti) the
 * test changes, read back through fil_stacks_set_frame_readers. Every
 * fil_stacks_current() is compared with the node interned for the expected
 * (parent chain, function, line), and the node count shows the shadow stack
 * made no node the test did not expect. Thread roots are checked in a
 * pthread. Tests may use libc freely.
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

/* A stand-in code object per function: real code objects map an
 * instruction offset to one line, and so do these fake frames' tests. */
static void *code_of(uint32_t func) { return (void *)(uintptr_t)(0x1000 + (uintptr_t)func * 16); }

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

/* ---- the shadow stack ------------------------------------------------------ */

/* A fake Python frame: what the readers report for it. */
typedef struct frame {
    int line;
    int lasti;
} frame_t;

static int line_reads; /* calls of the line reader */

static int read_line(void *f)
{
    line_reads++;
    return ((frame_t *)f)->line;
}
static int read_lasti(void *f)
{
    return ((frame_t *)f)->lasti;
}

/* Move a frame to a line (lasti follows the line, as in a real frame). */
static void at(frame_t *f, int line)
{
    f->line = line;
    f->lasti = line * 2;
}

/* The node of the stack (frames[i] running funcs[i]) under root, interned by
 * the test; FIL_NONE root means a main-thread stack. */
static uint32_t expect(uint32_t root, int n, frame_t **frames, const uint32_t *funcs)
{
    uint32_t p = root;
    for (int i = 0; i < n; i++)
        p = node(p, funcs[i], frames[i]->line > 0 ? (uint32_t)frames[i]->line : 0);
    return p;
}

/* fil_stacks_current() equals the expected node and made no node the test
 * did not ask for (interning the expectation found it). */
#define CHECK_CURRENT(root, n, frames, funcs)                                                      \
    do {                                                                                           \
        uint32_t got__ = fil_stacks_current();                                                     \
        uint32_t before__ = fil_stacks_node_count();                                               \
        uint32_t want__ = expect(root, n, frames, funcs);                                          \
        CHECK_U64(got__, want__);                                                                  \
        CHECK_U64(fil_stacks_node_count(), before__);                                              \
    } while (0)

static void test_shadow(void)
{
    uint32_t fa = func("s.py", "a", 1), fb = func("s.py", "b", 20), fc = func("s.py", "c", 40),
             fd = func("s.py", "d", 60);
    frame_t A = {0, 0}, B = {0, 0}, C = {0, 0}, D = {0, 0}, A2 = {0, 0};
    frame_t *fr[4];
    uint32_t fn[4];

    /* Before the readers are set: no Python stack. */
    CHECK_U64(fil_stacks_current(), 0);
    fil_stacks_set_frame_readers(read_line, read_lasti);
    CHECK_U64(fil_stacks_current(), 0);

    at(&A, 10);
    fil_stacks_push(&A, code_of(fa), fa);
    fr[0] = &A, fn[0] = fa;
    CHECK_CURRENT(FIL_NONE, 1, fr, fn);
    uint32_t a10 = fil_stacks_current();
    CHECK_U64(node_at(a10)->line, 10);
    CHECK_U64(node_at(a10)->depth, 1);

    /* The top frame moves: a new node; back: the old one. */
    at(&A, 12);
    CHECK_CURRENT(FIL_NONE, 1, fr, fn);
    CHECK(fil_stacks_current() != a10);
    at(&A, 10);
    CHECK_U64(fil_stacks_current(), a10);
    /* Same instruction again: no line read needed. */
    line_reads = 0;
    CHECK_U64(fil_stacks_current(), a10);
    CHECK_U64(line_reads, 0);

    /* A callee. */
    at(&B, 21);
    fil_stacks_push(&B, code_of(fb), fb);
    fr[1] = &B, fn[1] = fb;
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    CHECK_U64(node_at(fil_stacks_current())->parent, a10);
    CHECK_U64(node_at(fil_stacks_current())->depth, 2);
    at(&B, 22);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);

    /* Popping a frame that is not the top is ignored. */
    fil_stacks_pop(&A);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    fil_stacks_pop(&C);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);

    /* Return to A, A moves on, calls C: C hangs under A's new line. */
    fil_stacks_pop(&B);
    CHECK_CURRENT(FIL_NONE, 1, fr, fn);
    at(&A, 11);
    at(&C, 41);
    fil_stacks_push(&C, code_of(fc), fc);
    fr[1] = &C, fn[1] = fc;
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    CHECK_U64(node_at(node_at(fil_stacks_current())->parent)->line, 11);

    /* The same, with no resolution between the return and the next call. */
    fil_stacks_pop(&C);
    at(&A, 13);
    fil_stacks_push(&B, code_of(fb), fb);
    fr[1] = &B, fn[1] = fb;
    at(&B, 25);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    CHECK_U64(node_at(node_at(fil_stacks_current())->parent)->line, 13);

    /* Three deep; the middle frame moves between a return and a call. */
    at(&C, 42);
    fil_stacks_push(&C, code_of(fc), fc);
    fr[2] = &C, fn[2] = fc;
    CHECK_CURRENT(FIL_NONE, 3, fr, fn);
    fil_stacks_pop(&C);
    at(&B, 26);
    at(&D, 61);
    fil_stacks_push(&D, code_of(fd), fd);
    fr[2] = &D, fn[2] = fd;
    CHECK_CURRENT(FIL_NONE, 3, fr, fn);
    CHECK_U64(node_at(node_at(fil_stacks_current())->parent)->line, 26);
    CHECK_U64(node_at(fil_stacks_current())->depth, 3);

    /* Two returns, the bottom frame moves, two calls, with and without a
     * resolution in between. */
    fil_stacks_pop(&D);
    fil_stacks_pop(&B);
    at(&A, 14);
    fil_stacks_push(&B, code_of(fb), fb);
    at(&B, 27);
    fil_stacks_push(&C, code_of(fc), fc);
    at(&C, 43);
    fr[1] = &B, fn[1] = fb, fr[2] = &C, fn[2] = fc;
    CHECK_CURRENT(FIL_NONE, 3, fr, fn);
    fil_stacks_pop(&C);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    fil_stacks_pop(&B);
    CHECK_CURRENT(FIL_NONE, 1, fr, fn);
    at(&A, 15);
    fil_stacks_push(&B, code_of(fb), fb);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    fil_stacks_push(&C, code_of(fc), fc);
    at(&C, 44);
    CHECK_CURRENT(FIL_NONE, 3, fr, fn);

    /* Recursion: the same function twice, each frame its own line. */
    fil_stacks_pop(&C);
    fil_stacks_pop(&B);
    at(&A, 16);
    at(&A2, 17);
    fil_stacks_push(&A2, code_of(fa), fa);
    fr[1] = &A2, fn[1] = fa;
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    CHECK(fil_stacks_current() != expect(FIL_NONE, 1, fr + 1, fn + 1));

    /* The top frame cycles through more instructions than it remembers. */
    int cycle_ok = 1;
    for (int round = 0; round < 3; round++)
        for (int l = 100; l < 107; l++) {
            at(&A2, l);
            uint32_t got = fil_stacks_current();
            if (got != expect(FIL_NONE, 2, fr, fn))
                cycle_ok = 0;
        }
    CHECK(cycle_ok);
    /* Four instructions in turn are remembered: a second pass reads no line. */
    for (int l = 110; l < 114; l++) {
        at(&A2, l);
        fil_stacks_current();
    }
    line_reads = 0;
    cycle_ok = 1;
    for (int round = 0; round < 3; round++)
        for (int l = 110; l < 114; l++) {
            at(&A2, l);
            if (fil_stacks_current() != expect(FIL_NONE, 2, fr, fn))
                cycle_ok = 0;
        }
    CHECK(cycle_ok);
    CHECK_U64(line_reads, 0);
    /* Two instructions of one line, and a line reader saying "unknown". */
    A2.line = 120, A2.lasti = 500;
    uint32_t l120 = fil_stacks_current();
    A2.lasti = 502;
    CHECK_U64(fil_stacks_current(), l120);
    A2.line = -1, A2.lasti = 504;
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    CHECK_U64(node_at(fil_stacks_current())->line, 0);

    /* A deep stack (grows the shadow array): every level checked. */
    enum { DEEP = 700 };
    frame_t *deep = calloc(DEEP, sizeof *deep);
    frame_t **dfr = malloc((DEEP + 2) * sizeof *dfr);
    uint32_t *dfn = malloc((DEEP + 2) * sizeof *dfn);
    dfr[0] = &A, dfn[0] = fa, dfr[1] = &A2, dfn[1] = fa;
    int deep_ok = 1;
    for (int i = 0; i < DEEP; i++) {
        at(&deep[i], 1000 + i % 9);
        fil_stacks_push(&deep[i], code_of(i % 2 ? fb : fc), i % 2 ? fb : fc);
        dfr[2 + i] = &deep[i], dfn[2 + i] = i % 2 ? fb : fc;
        if (i % 50 == 0 && fil_stacks_current() != expect(FIL_NONE, 3 + i, dfr, dfn))
            deep_ok = 0;
    }
    if (fil_stacks_current() != expect(FIL_NONE, 2 + DEEP, dfr, dfn))
        deep_ok = 0;
    CHECK_U64(node_at(fil_stacks_current())->depth, 2 + DEEP);
    for (int i = DEEP - 1; i >= 0; i--) {
        fil_stacks_pop(&deep[i]);
        if (i % 3 == 0)
            at(&deep[i > 0 ? i - 1 : 0], 2000 + i);
        if (i % 25 == 0 && fil_stacks_current() != expect(FIL_NONE, 2 + i, dfr, dfn))
            deep_ok = 0;
    }
    CHECK(deep_ok);
    CHECK_CURRENT(FIL_NONE, 2, fr, fn);
    free(deep);
    free(dfr);
    free(dfn);

    fil_stacks_pop(&A2);
    fil_stacks_pop(&A);
    CHECK_U64(fil_stacks_current(), 0);
    fil_stacks_pop(&A); /* nothing to pop */
    CHECK_U64(fil_stacks_current(), 0);
    CHECK_U64(fil_state->dropped, 0);
}

/* ---- threads ----------------------------------------------------------------- */

typedef struct thread_arg {
    uint32_t root; /* FIL_NONE: no base */
    uint32_t fn;
    uint32_t got_empty, got_one, got_two, want_one, want_two;
} thread_arg_t;

static void *thread_main(void *p)
{
    thread_arg_t *t = p;
    if (t->root != FIL_NONE)
        fil_stacks_thread_base(t->root);
    frame_t T = {0, 0}, U = {0, 0};
    t->got_empty = fil_stacks_current();
    at(&T, 70);
    fil_stacks_push(&T, code_of(t->fn), t->fn);
    t->got_one = fil_stacks_current();
    at(&U, 80);
    fil_stacks_push(&U, code_of(t->fn), t->fn);
    t->got_two = fil_stacks_current();
    frame_t *fr[2] = {&T, &U};
    uint32_t fn[2] = {t->fn, t->fn};
    t->want_one = expect(t->root, 1, fr, fn);
    t->want_two = expect(t->root, 2, fr, fn);
    fil_stacks_pop(&U);
    fil_stacks_pop(&T);
    return NULL;
}

static void test_threads(void)
{
    uint32_t fm = func("t.py", "main", 1), ft = func("t.py", "worker", 30);
    frame_t M = {0, 0};
    at(&M, 5);
    fil_stacks_push(&M, code_of(fm), fm);
    uint32_t spawn = fil_stacks_current(); /* the line that starts the thread */

    thread_arg_t t1 = {.root = spawn, .fn = ft}, t2 = {.root = FIL_NONE, .fn = ft};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, &t1) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_U64(t1.got_empty, spawn);
    CHECK_U64(t1.got_one, t1.want_one);
    CHECK_U64(t1.got_two, t1.want_two);
    CHECK_U64(node_at(t1.got_one)->parent, spawn);
    CHECK_U64(node_at(t1.got_one)->depth, 2);
    CHECK_U64(node_at(t1.got_two)->depth, 3);

    CHECK(pthread_create(&th, NULL, thread_main, &t2) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_U64(t2.got_empty, 0);
    CHECK_U64(t2.got_one, t2.want_one);
    CHECK_U64(t2.got_two, t2.want_two);
    CHECK_U64(node_at(t2.got_one)->parent, FIL_NONE);
    CHECK_U64(node_at(t2.got_one)->depth, 1);

    /* The main thread's stack is untouched. */
    CHECK_U64(fil_stacks_current(), spawn);
    fil_stacks_pop(&M);
    CHECK_U64(fil_stacks_current(), 0);

    /* Root 0 ("[No Python stack]") is a root like any other. */
    thread_arg_t t3 = {.root = 0, .fn = ft};
    CHECK(pthread_create(&th, NULL, thread_main, &t3) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_U64(t3.got_empty, 0);
    CHECK_U64(t3.got_one, t3.want_one);
    CHECK_U64(node_at(t3.got_one)->parent, 0);
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
    test_shadow();
    test_threads();
    return check_summary("test_stacks");
}
