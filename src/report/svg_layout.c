/* SPDX-License-Identifier: MIT */
/*
 * svg_layout.c - geometry of the flamegraph: inclusive bytes, child order,
 * horizontal position and drawn depth of every node.
 *
 * Three passes over caller scratch, no recursion: (1) read parents and self
 * bytes, then add each node's inclusive bytes to its parent walking indexes
 * downwards (parents have smaller indexes, so a node is complete before it
 * is added); (2) heapsort node indexes by (parent, inclusive bytes
 * descending, index) so siblings are contiguous, largest first, and parents'
 * groups come before their children's (FIL_NONE + 1 wraps to 0, so
 * top-level frames sort first); (3) walk that order assigning each node the
 * byte offset of its left edge (parent's offset + earlier siblings) and a
 * level, or level 0 if its box (or an ancestor's) is narrower than 0.1 px.
 * Pixel positions are derived from byte offsets with integer arithmetic, so
 * boxes tile exactly and the output is reproducible byte for byte.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none.
 */
#include "report_internal.h"

/* round(part * range / total) for part <= total and range < 2^27, without
 * overflow: totals of 2^36 bytes and more are shifted down first (the lost
 * precision is far below 0.01 px). SIGNAL CONTEXT: caller memory only. */
uint64_t fil_report_scale(uint64_t part, uint64_t total, uint64_t range)
{
    if (total == 0)
        return 0;
    while (total >= (UINT64_C(1) << 36)) {
        part >>= 1;
        total >>= 1;
    }
    return (part * range + total / 2) / total;
}

/* Left edge in centi-px of a box `off` bytes from the left. SIGNAL CONTEXT. */
uint64_t fil_report_svg_x(const fil_report_svg_layout_t *L, uint64_t off)
{
    return 100 * FIL_SVG_SIDE + fil_report_scale(off, L->total, L->range);
}

/* Scratch for fil_report_svg_layout on `count` nodes. SIGNAL CONTEXT. */
size_t fil_report_svg_layout_size(uint32_t count)
{
    uint64_t n = count;
    uint64_t bytes[5] = {n * 8, n * 8, n * 4, n * 4, n * 4};
    return fil_report_scratch_total(bytes, 5);
}

/* Pass 1: parents, inclusive bytes, total (saturating at UINT64_MAX so
 * corrupt counts cannot wrap). -1 if a parent is out of order.
 * SIGNAL CONTEXT: caller memory only. */
static int load_tree(fil_report_svg_layout_t *L)
{
    const fil_tree_t *t = L->t;
    L->total = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        L->par[i] = t->parent(t->ctx, i);
        if (L->par[i] != FIL_NONE && L->par[i] >= i)
            return -1;
        L->incl[i] = t->self_bytes(t->ctx, i);
        L->order[i] = i;
    }
    for (uint32_t i = t->count; i-- > 0;) {
        uint64_t *sum = L->par[i] != FIL_NONE ? &L->incl[L->par[i]] : &L->total;
        *sum = *sum + L->incl[i] < *sum ? UINT64_MAX : *sum + L->incl[i]; /* saturate */
    }
    return 0;
}

/* Order for pass 2: (parent + 1, inclusive bytes descending, index).
 * SIGNAL CONTEXT: caller memory only. */
static int order_less(void *ctx, uint32_t x, uint32_t y)
{
    const fil_report_svg_layout_t *L = ctx;
    uint32_t px = L->par[x] + 1, py = L->par[y] + 1;
    if (px != py)
        return px < py;
    if (L->incl[x] != L->incl[y])
        return L->incl[x] > L->incl[y];
    return x < y;
}

/* Pass 3: offsets and drawn levels, in `order`. SIGNAL CONTEXT. */
static void place(fil_report_svg_layout_t *L)
{
    uint64_t run = 0;
    L->max_level = 0;
    for (uint32_t k = 0; k < L->t->count; k++) {
        uint32_t i = L->order[k], p = L->par[i], lvl;
        if (k == 0 || p != L->par[L->order[k - 1]])
            run = p == FIL_NONE ? 0 : L->xoff[p];
        L->xoff[i] = run;
        run += L->incl[i];
        lvl = p == FIL_NONE ? 1 : L->level[p] ? L->level[p] + 1 : 0;
        if (lvl && fil_report_svg_x(L, run) - fil_report_svg_x(L, L->xoff[i]) < FIL_SVG_MIN_BOX)
            lvl = 0;
        L->level[i] = lvl;
        if (lvl > L->max_level)
            L->max_level = lvl;
    }
}

/*
 * Lay out t for a drawable width of `range` centi-px using scratch.
 * 0, or -1 if scratch is too small or a parent index is out of order.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_report_svg_layout(fil_report_svg_layout_t *L, const fil_tree_t *t, uint64_t range,
                          void *scratch, size_t cap)
{
    fil_report_arena_t a;
    uint64_t n = t->count;
    L->t = t;
    L->range = range;
    L->total = 0;
    L->max_level = 0;
    if (n == 0)
        return 0;
    fil_report_arena_init(&a, scratch, cap);
    L->incl = fil_report_carve(&a, n * 8);
    L->xoff = fil_report_carve(&a, n * 8);
    L->par = fil_report_carve(&a, n * 4);
    L->order = fil_report_carve(&a, n * 4);
    L->level = fil_report_carve(&a, n * 4);
    if (!L->incl || !L->xoff || !L->par || !L->order || !L->level)
        return -1;
    if (load_tree(L) < 0)
        return -1;
    fil_report_heapsort(L->order, t->count, order_less, L);
    place(L);
    return 0;
}
