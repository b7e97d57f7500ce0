/* SPDX-License-Identifier: MIT */
/*
 * toplines.c - the lines that allocated the most, for the table at the top
 * of index.html.
 *
 * A "line" is a frame key (file, line, function): all nodes with that key
 * are one line, whatever called them. Its self bytes are the bytes of the
 * stacks whose leaf is that line (allocated directly there); its total is
 * what it held with everything it called, each byte counted once even in a
 * recursion: the inclusive bytes of the nodes with that key that have no
 * ancestor with the same key. Self bytes are summed in an open-addressing
 * table keyed by the frame key (power-of-two capacity >= 2 * count, linear
 * probing); the rows are the `max` biggest, kept sorted by insertion (max is
 * small). The rows' totals take one forward pass in node order (parents
 * come first), with the set of rows on each node's path. A library's row
 * names the program's lines that called it: each of its nodes' self bytes
 * go to the nearest of the program's own frames above the node (found once
 * per node, memoised), summed per line in a few slots per row.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: fil_path_is_library, the writers.
 */
#include "report_internal.h"

/* One call. */
typedef struct caller_slot {
    uint64_t key, bytes;
    uint32_t node;
} caller_slot_t;

typedef struct top_ctx {
    const fil_tree_t *t;
    uint32_t *par, *depth, *rep;
    uint64_t *incl, *self, *key, *tkey, *tself;
    caller_slot_t *slots; /* FIL_TOP_CALLERS per row */
    uint64_t mask;        /* table capacity - 1 */
} top_ctx_t;

#define NARRAYS 9

/* Table capacity for count nodes. SIGNAL CONTEXT: caller memory only. */
static uint64_t capacity(uint32_t count)
{
    uint64_t want = 2 * (uint64_t)count + 2, cap = 16;
    while (cap < want)
        cap <<= 1;
    return cap;
}

/* Array sizes, shared by the size function and the carving. */
static void sizes(uint32_t count, uint64_t z[NARRAYS])
{
    uint64_t n = count, c = capacity(count);
    uint64_t s[NARRAYS] = {n * 4, n * 4, n * 8, n * 8, n * 8, c * 8, c * 8, c * 4,
                           (uint64_t)FIL_TOP_LINES_MAX * FIL_TOP_CALLERS * sizeof(caller_slot_t)};
    for (int i = 0; i < NARRAYS; i++)
        z[i] = s[i];
}

/* Scratch for fil_top_lines. SIGNAL CONTEXT: caller memory only. */
size_t fil_top_lines_scratch_size(uint32_t count)
{
    uint64_t z[NARRAYS];
    sizes(count, z);
    return fil_report_scratch_total(z, NARRAYS);
}

/* Carve the arrays; -1 if the scratch is too small. SIGNAL CONTEXT. */
static int carve(top_ctx_t *C, void *scratch, size_t cap)
{
    fil_report_arena_t a;
    uint64_t z[NARRAYS];
    void *p[NARRAYS];
    sizes(C->t->count, z);
    fil_report_arena_init(&a, scratch, cap);
    for (int i = 0; i < NARRAYS; i++) {
        if (!(p[i] = fil_report_carve(&a, z[i])))
            return -1;
    }
    C->par = p[0], C->depth = p[1], C->incl = p[2], C->self = p[3], C->key = p[4];
    C->tkey = p[5], C->tself = p[6], C->rep = p[7], C->slots = p[8];
    C->mask = capacity(C->t->count) - 1;
    return 0;
}

/* The table slot of key k (found or free). SIGNAL CONTEXT. */
static uint64_t slot_of(const top_ctx_t *C, uint64_t k)
{
    uint64_t h = k * UINT64_C(0x9E3779B97F4A7C15);
    h ^= h >> 29;
    for (uint64_t i = h & C->mask;; i = (i + 1) & C->mask) {
        if (C->rep[i] == FIL_NONE || C->tkey[i] == k)
            return i;
    }
}

/* Sum self bytes per key; rep is the node holding the most. SIGNAL CONTEXT. */
static void sum_lines(top_ctx_t *C)
{
    for (uint64_t i = 0; i <= C->mask; i++)
        C->rep[i] = FIL_NONE;
    for (uint32_t i = 0; i < C->t->count; i++) {
        uint64_t s;
        C->key[i] = C->t->key(C->t->ctx, i);
        if (C->self[i] == 0)
            continue;
        s = slot_of(C, C->key[i]);
        if (C->rep[s] == FIL_NONE) {
            C->tkey[s] = C->key[i];
            C->tself[s] = 0;
            C->rep[s] = i;
        } else if (C->self[i] > C->self[C->rep[s]]) {
            C->rep[s] = i;
        }
        C->tself[s] =
            C->tself[s] + C->self[i] < C->tself[s] ? UINT64_MAX : C->tself[s] + C->self[i];
    }
}

/* Whether row x ranks above row y: more self bytes, then lower node. */
static int above(const fil_top_line_t *x, const fil_top_line_t *y)
{
    return x->self != y->self ? x->self > y->self : x->node < y->node;
}

/* Keep the max biggest lines in rows[0..*n), sorted. SIGNAL CONTEXT. */
static void pick(const top_ctx_t *C, fil_top_line_t *rows, uint32_t max, uint32_t *n)
{
    *n = 0;
    for (uint64_t i = 0; i <= C->mask && max > 0; i++) {
        fil_top_line_t r = {C->rep[i], C->tself[i], 0, FIL_NONE, 0, 0};
        uint32_t k;
        if (r.node == FIL_NONE || (*n == max && !above(&r, &rows[max - 1])))
            continue;
        k = *n < max ? (*n)++ : max - 1;
        while (k > 0 && above(&r, &rows[k - 1])) {
            rows[k] = rows[k - 1];
            k--;
        }
        rows[k] = r;
    }
}

/* 1 if node i is a frame of the program's own (not a library's, not a
 * bracketed one). SIGNAL CONTEXT. */
static int own_frame(const top_ctx_t *C, uint32_t i)
{
    fil_frame_t f = {0};
    C->t->frame(C->t->ctx, i, &f);
    return !f.raw && !fil_path_is_library(f.file, f.file_len);
}

#define OWN_UNKNOWN (FIL_NONE - 1)

/* The nearest of the program's own frames at or above node j, FIL_NONE if
 * none; memo[] (OWN_UNKNOWN: not found yet) keeps every answer, so all the
 * calls of one render walk each node once. SIGNAL CONTEXT. */
static uint32_t own_at_or_above(const top_ctx_t *C, uint32_t *memo, uint32_t j)
{
    uint32_t k = j, found = FIL_NONE;
    for (uint32_t steps = 0; k != FIL_NONE && k < C->t->count && steps <= C->t->count; steps++) {
        if (memo[k] != OWN_UNKNOWN) {
            found = memo[k];
            break;
        }
        if (own_frame(C, k)) {
            found = k;
            break;
        }
        k = C->par[k];
    }
    for (uint32_t x = j, steps = 0; x != k && x < C->t->count && steps <= C->t->count; steps++) {
        memo[x] = found;
        x = C->par[x];
    }
    if (k != FIL_NONE && k < C->t->count)
        memo[k] = found;
    return found;
}

/* For node i holding self bytes of a library row (row_of: its slot's row
 * + 1, 0 for none): that row into *r and the nearest of the program's own
 * frames above i; FIL_NONE if i is of no such row or has none above it.
 * SIGNAL CONTEXT. */
static uint32_t row_caller(const top_ctx_t *C, const uint64_t *row_of, uint32_t *memo, uint32_t i,
                           uint32_t *r)
{
    uint64_t s;
    if (C->self[i] == 0 || C->par[i] == FIL_NONE)
        return FIL_NONE;
    s = slot_of(C, C->key[i]);
    if (C->rep[s] == FIL_NONE || row_of[s] == 0)
        return FIL_NONE;
    *r = (uint32_t)row_of[s] - 1;
    return own_at_or_above(C, memo, C->par[i]);
}

/*
 * Which of the program's lines called each library row (see the file
 * comment): before line_totals, while self[] and the table still hold the
 * lines' bytes. A row's slots keep its callers' keys and bytes; a caller
 * that finds them full takes the smallest slot (other_callers saturates),
 * and the named caller's bytes are then summed exactly.
 * SIGNAL CONTEXT: caller memory only.
 */
static void line_callers(top_ctx_t *C, fil_top_line_t *rows, uint32_t n)
{
    uint64_t *row_of = C->tself;
    uint32_t *memo = C->depth, used[FIL_TOP_LINES_MAX];
    int more[FIL_TOP_LINES_MAX];
    for (uint32_t i = 0; i < C->t->count; i++)
        memo[i] = OWN_UNKNOWN;
    for (uint64_t s = 0; s <= C->mask; s++)
        row_of[s] = 0;
    for (uint32_t r = 0; r < n; r++) {
        rows[r].caller = FIL_NONE;
        rows[r].other_callers = 0;
        rows[r].caller_bytes = 0;
        used[r] = 0;
        more[r] = 0;
        if (!own_frame(C, rows[r].node))
            row_of[slot_of(C, C->key[rows[r].node])] = r + 1;
    }
    for (uint32_t i = 0; i < C->t->count; i++) {
        uint32_t r, oc = row_caller(C, row_of, memo, i, &r);
        if (oc == FIL_NONE)
            continue;
        caller_slot_t *sl = C->slots + (size_t)r * FIL_TOP_CALLERS;
        uint32_t k = 0;
        while (k < used[r] && sl[k].key != C->key[oc])
            k++;
        if (k == used[r] && used[r] == FIL_TOP_CALLERS) {
            /* Full: the smallest slot goes to the new line, which takes
             * over its count (a line with more than 1/16 of the row's
             * bytes is so never lost; its bytes are summed exactly below). */
            k = 0;
            for (uint32_t m = 1; m < FIL_TOP_CALLERS; m++)
                if (sl[m].bytes < sl[k].bytes)
                    k = m;
            sl[k].key = C->key[oc];
            sl[k].node = oc;
            more[r] = 1;
        } else if (k == used[r]) {
            sl[k] = (caller_slot_t){C->key[oc], 0, oc};
            used[r]++;
        }
        sl[k].bytes = sl[k].bytes + C->self[i] < sl[k].bytes ? UINT64_MAX : sl[k].bytes + C->self[i];
    }
    for (uint32_t r = 0; r < n; r++) {
        const caller_slot_t *sl = C->slots + (size_t)r * FIL_TOP_CALLERS;
        uint32_t best = 0;
        if (!used[r])
            continue;
        for (uint32_t k = 1; k < used[r]; k++)
            if (sl[k].bytes > sl[best].bytes)
                best = k;
        rows[r].caller = sl[best].node;
        rows[r].caller_bytes = sl[best].bytes;
        rows[r].other_callers = more[r] ? FIL_TOP_CALLERS_MORE : used[r] - 1;
    }
    /* A row whose slots overflowed counted its named caller approximately:
     * its exact bytes, in one more pass (the memo answers at once now). */
    for (uint32_t r = 0; r < n; r++)
        if (more[r])
            rows[r].caller_bytes = 0;
    for (uint32_t i = 0; i < C->t->count; i++) {
        uint64_t *b;
        uint32_t r, oc = row_caller(C, row_of, memo, i, &r);
        if (oc == FIL_NONE || !more[r] || C->key[oc] != C->key[rows[r].caller])
            continue;
        b = &rows[r].caller_bytes;
        *b = *b + C->self[i] < *b ? UINT64_MAX : *b + C->self[i];
    }
}

/*
 * The totals of rows[0..n) (see the file comment), in one pass in node
 * order: once the rows are picked, tself[] of a row's slot becomes its
 * number + 1 (0 for other slots) and self[i] the set of rows whose key is
 * on i's path (bit r for row r; n <= 64), so a node adds its inclusive
 * bytes to its row when the row's bit is not set on its parent. SIGNAL
 * CONTEXT: caller memory only.
 */
static void line_totals(top_ctx_t *C, fil_top_line_t *rows, uint32_t n)
{
    uint64_t *row_of = C->tself, *on_path = C->self;
    for (uint64_t s = 0; s <= C->mask; s++)
        row_of[s] = 0;
    for (uint32_t r = 0; r < n; r++) {
        row_of[slot_of(C, C->key[rows[r].node])] = r + 1;
        rows[r].total = 0;
    }
    for (uint32_t i = 0; i < C->t->count; i++) {
        uint32_t p = C->par[i];
        uint64_t above = p == FIL_NONE ? 0 : on_path[p], bit = 0;
        uint64_t s = slot_of(C, C->key[i]);
        if (C->rep[s] != FIL_NONE && row_of[s] > 0) {
            uint64_t *t = &rows[row_of[s] - 1].total;
            bit = UINT64_C(1) << (row_of[s] - 1);
            if (!(above & bit))
                *t = *t + C->incl[i] < *t ? UINT64_MAX : *t + C->incl[i];
        }
        on_path[i] = above | bit;
    }
}

/* " and 2 other lines" (" and at least 16 ...") for a row others called
 * too; nothing otherwise. SIGNAL CONTEXT: caller memory only. */
void fil_write_other_callers(fil_writer_t *w, const fil_top_line_t *r)
{
    if (!r->other_callers)
        return;
    fil_write_str(w, r->other_callers >= FIL_TOP_CALLERS_MORE ? " and at least " : " and ");
    fil_write_u64(w, r->other_callers);
    fil_write_str(w, r->other_callers == 1 ? " other line" : " other lines");
}

/*
 * Fill rows[0..) with at most max lines of t, most self bytes first (see
 * fil/report.h). Returns the number of rows, or -1 if the scratch is too
 * small or t is malformed. SIGNAL CONTEXT: caller memory only.
 */
int fil_top_lines(const fil_tree_t *t, fil_top_line_t *rows, uint32_t max, void *scratch,
                  size_t cap)
{
    top_ctx_t C = {.t = t};
    uint64_t total;
    uint32_t n;
    if (max > FIL_TOP_LINES_MAX)
        max = FIL_TOP_LINES_MAX;
    if (carve(&C, scratch, cap) < 0)
        return -1;
    if (fil_report_stats(t, C.par, C.incl, C.self, C.depth, NULL, &total) < 0)
        return -1;
    sum_lines(&C);
    pick(&C, rows, max, &n);
    line_callers(&C, rows, n);
    line_totals(&C, rows, n);
    return (int)n;
}
