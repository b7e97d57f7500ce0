/* SPDX-License-Identifier: MIT */
/*
 * fold.c - a tree cut down to what can be read, with its totals kept.
 *
 * A program that imports numpy has ~46,000 call stacks, most of them a few
 * hundred bytes deep inside the import machinery; a recursion can be 50,000
 * frames deep. Drawing or writing every one of them makes reports that are
 * too big to open and graphs whose own lines sit below a thousand pixels of
 * import frames. fil_tree_fold keeps the frames that matter and sums the
 * rest into labelled remainder frames:
 *
 *   1. per-node figures (fil_report_stats): parent, inclusive bytes, depth,
 *      call stacks below;
 *   2. nodes heapsorted by (inclusive bytes descending, index ascending).
 *      A parent holds at least its child's bytes and has a smaller index,
 *      so every prefix of that order is closed under "parent of": keeping
 *      nodes in that order, and only those whose parent is kept, keeps the
 *      biggest subtrees whole;
 *   3. kept nodes are renumbered in input order (parents stay before
 *      children); each node that is not kept but whose parent is adds its
 *      subtree to the parent's one remainder frame, appended after the kept
 *      nodes (a top-level remainder gathers unkept top-level frames).
 *
 * The output is another fil_tree_t over the scratch; kept nodes delegate
 * frame() and key() to the input. A remainder's label is formatted into a
 * small ring of buffers on each frame() call, so a caller may hold the
 * labels of four frames at once.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: memset, memcpy.
 */
#include <string.h>

#include "report_internal.h"

#define RING 4                   /* remainder labels valid at once */
#define KEPT_MARK (FIL_NONE - 1) /* map[] value while choosing */

/* Lives at the start of the scratch; out->ctx points here. */
typedef struct fold_state {
    fil_tree_t in;                        /* the input tree (its ctx must outlive out) */
    uint32_t count;                       /* output nodes */
    uint32_t kept;                        /* output nodes 0..kept-1 are input nodes */
    uint32_t *orig;                       /* [kept] input node of each kept output node */
    uint32_t *opar;                       /* [count] output parent, FIL_NONE for top level */
    uint64_t *oself;                      /* [count] self bytes */
    uint32_t *ostk;                       /* [count] call stacks a remainder holds */
    uint8_t *oflags;                      /* [count] FIL_FOLDED_* of a remainder */
    char ring[RING][FIL_REMAINDER_LABEL]; /* remainder labels */
    unsigned next;                        /* next ring slot */
} fold_state_t;

/* The input-side arrays, only needed while folding. */
typedef struct fold_work {
    uint32_t *par, *depth, *nstk, *order, *map, *rem;
    uint64_t *incl;
} fold_work_t;

/*
 * Per-node figures of t (see report_internal.h). Parents have smaller
 * indexes, so one backward pass sums subtrees and one forward pass gives
 * depths. SIGNAL CONTEXT: caller memory only.
 */
int fil_report_stats(const fil_tree_t *t, uint32_t *par, uint64_t *incl, uint64_t *self,
                     uint32_t *depth, uint32_t *nstk, uint64_t *total)
{
    const fil_tree_stats_t *s = t->stats;
    if (s) { /* found once by the tree's owner */
        size_t n = t->count;
        memcpy(par, s->par, n * 4);
        memcpy(incl, s->incl, n * 8);
        memcpy(depth, s->depth, n * 4);
        if (self)
            memcpy(self, s->self, n * 8);
        if (nstk)
            memcpy(nstk, s->nstk, n * 4);
        *total = s->total;
        return 0;
    }
    *total = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        uint64_t b = t->self_bytes(t->ctx, i);
        par[i] = t->parent(t->ctx, i);
        if (par[i] != FIL_NONE && par[i] >= i)
            return -1;
        incl[i] = b;
        if (self)
            self[i] = b;
        if (nstk)
            nstk[i] = b > 0;
        depth[i] = par[i] == FIL_NONE ? 1 : depth[par[i]] + 1;
    }
    for (uint32_t i = t->count; i-- > 0;) {
        uint64_t *sum = par[i] != FIL_NONE ? &incl[par[i]] : total;
        *sum = *sum + incl[i] < *sum ? UINT64_MAX : *sum + incl[i];
        if (nstk && par[i] != FIL_NONE)
            nstk[par[i]] = nstk[par[i]] + nstk[i] < nstk[i] ? UINT32_MAX : nstk[par[i]] + nstk[i];
    }
    return 0;
}

/* (bytes descending, index ascending) over ctx = uint64_t bytes[].
 * SIGNAL CONTEXT: caller memory only. */
int fil_report_bigger_first(void *ctx, uint32_t x, uint32_t y)
{
    const uint64_t *b = ctx;
    if (b[x] != b[y])
        return b[x] > b[y];
    return x < y;
}

/* Append s to buf at *n. SIGNAL CONTEXT: caller memory only. */
static void put(char *buf, size_t *n, const char *s)
{
    size_t k = strlen(s);
    memcpy(buf + *n, s, k);
    *n += k;
}

/*
 * "[N smaller call stacks]", "[N deeper call stacks]" or "[N smaller or
 * deeper call stacks]" ("stack" for one) into buf; returns the length.
 * SIGNAL CONTEXT: caller memory only.
 */
size_t fil_report_remainder_label(char *buf, uint64_t stacks, unsigned flags)
{
    size_t n = 0;
    buf[n++] = '[';
    n += fil_fmt_u64(buf + n, stacks);
    if (flags == FIL_FOLDED_DEEP)
        put(buf, &n, " deeper");
    else if (flags == (FIL_FOLDED_DEEP | FIL_FOLDED_SMALL))
        put(buf, &n, " smaller or deeper");
    else
        put(buf, &n, " smaller");
    put(buf, &n, stacks == 1 ? " call stack]" : " call stacks]");
    buf[n] = '\0';
    return n;
}

/* Scratch layout sizes, shared by the size function and the carving. */
static void fold_sizes(uint32_t count, uint32_t max_nodes, uint64_t sizes[12])
{
    uint64_t n = count, m = fil_fold_max_out(count, max_nodes);
    uint64_t k = m / 2 + 1;
    uint64_t s[12] = {sizeof(fold_state_t), k * 4, m * 4, m * 8, m * 4, m, n * 4, n * 4, n * 4,
                      (n + 1) * 4,          n * 4, n * 8};
    memcpy(sizes, s, sizeof(s));
}

/* Output nodes at most: kept + a remainder each + a top-level one.
 * SIGNAL CONTEXT: caller memory only. */
uint32_t fil_fold_max_out(uint32_t count, uint32_t max_nodes)
{
    uint64_t k = max_nodes < count ? max_nodes : count;
    uint64_t m = 2 * k + 1;
    return m > FIL_NONE - 2 ? FIL_NONE - 2 : (uint32_t)m;
}

/* Scratch for fil_tree_fold. SIGNAL CONTEXT: caller memory only. */
size_t fil_fold_scratch_size(uint32_t count, uint32_t max_nodes)
{
    uint64_t sizes[12];
    fold_sizes(count, max_nodes, sizes);
    return fil_report_scratch_total(sizes, 12);
}

/* Carve the state and work arrays; NULL if the scratch is too small.
 * SIGNAL CONTEXT: caller memory only. */
static fold_state_t *carve(uint32_t count, uint32_t max_nodes, void *scratch, size_t cap,
                           fold_work_t *W)
{
    fil_report_arena_t a;
    uint64_t z[12];
    fold_state_t *S;
    fold_sizes(count, max_nodes, z);
    fil_report_arena_init(&a, scratch, cap);
    S = fil_report_carve(&a, z[0]);
    if (!S)
        return NULL;
    S->orig = fil_report_carve(&a, z[1]);
    S->opar = fil_report_carve(&a, z[2]);
    S->oself = fil_report_carve(&a, z[3]);
    S->ostk = fil_report_carve(&a, z[4]);
    S->oflags = fil_report_carve(&a, z[5]);
    W->par = fil_report_carve(&a, z[6]);
    W->depth = fil_report_carve(&a, z[7]);
    W->nstk = fil_report_carve(&a, z[8]);
    W->order = fil_report_carve(&a, z[9]);
    W->map = fil_report_carve(&a, z[10]);
    W->incl = fil_report_carve(&a, z[11]);
    W->rem = NULL;
    if (!S->orig || !S->opar || !S->oself || !S->ostk || !S->oflags || !W->par || !W->depth ||
        !W->nstk || !W->order || !W->map || !W->incl)
        return NULL;
    return S;
}

/* The threshold in bytes for total (see fil/report.h). SIGNAL CONTEXT. */
uint64_t fil_fold_threshold(const fil_fold_opts_t *o, uint64_t total)
{
    uint64_t rel = 0;
    if (o->min_whole > 0) {
        uint64_t q = total / o->min_whole, r = total % o->min_whole;
        rel = q * o->min_part + (r * o->min_part + o->min_whole - 1) / o->min_whole;
    }
    return rel > o->min_bytes ? rel : o->min_bytes;
}

/* Steps 2 and 3a: choose the kept nodes (map[i] = KEPT_MARK), then number
 * them in input order. SIGNAL CONTEXT: caller memory only. */
static void choose(fold_state_t *S, fold_work_t *W, const fil_fold_opts_t *o, uint64_t min)
{
    uint32_t n = S->in.count, kept = 0, m = 0;
    /* Only the nodes that can be kept are sorted: the order stops at the
     * first one under the threshold anyway. */
    for (uint32_t i = 0; i < n; i++) {
        if (W->incl[i] > 0 && W->incl[i] >= min)
            W->order[m++] = i;
        W->map[i] = FIL_NONE;
    }
    fil_report_heapsort(W->order, m, fil_report_bigger_first, W->incl);
    for (uint32_t k = 0; k < m && kept < o->max_nodes; k++) {
        uint32_t i = W->order[k], p = W->par[i];
        if ((p != FIL_NONE && W->map[p] == FIL_NONE) ||
            (o->max_depth && W->depth[i] > o->max_depth))
            continue;
        W->map[i] = KEPT_MARK;
        kept++;
    }
    S->kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (W->map[i] != KEPT_MARK)
            continue;
        W->map[i] = S->kept;
        S->orig[S->kept] = i;
        S->opar[S->kept] = W->par[i] == FIL_NONE ? FIL_NONE : W->map[W->par[i]];
        S->oself[S->kept] = S->in.self_bytes(S->in.ctx, i);
        S->ostk[S->kept] = 0;
        S->oflags[S->kept] = 0;
        S->kept++;
    }
    S->count = S->kept;
}

/* Step 3b: fold input node i (not kept, parent kept or none) into its
 * parent's remainder. rem[] (reusing order[]) maps a kept output node, or
 * `kept` for the top level, to its remainder. SIGNAL CONTEXT. */
static void fold_node(fold_state_t *S, fold_work_t *W, const fil_fold_opts_t *o, uint32_t i)
{
    uint32_t p = W->par[i], anchor = p == FIL_NONE ? S->kept : W->map[p], r = W->rem[anchor];
    uint64_t sum;
    if (r == FIL_NONE) {
        r = W->rem[anchor] = S->count++;
        S->opar[r] = p == FIL_NONE ? FIL_NONE : W->map[p];
        S->oself[r] = 0;
        S->ostk[r] = 0;
        S->oflags[r] = 0;
    }
    sum = S->oself[r] + W->incl[i];
    S->oself[r] = sum < S->oself[r] ? UINT64_MAX : sum;
    S->ostk[r] = S->ostk[r] + W->nstk[i] < S->ostk[r] ? UINT32_MAX : S->ostk[r] + W->nstk[i];
    S->oflags[r] |= o->max_depth && W->depth[i] > o->max_depth ? FIL_FOLDED_DEEP : FIL_FOLDED_SMALL;
}

/* parent() of the folded tree. SIGNAL CONTEXT: caller memory only. */
static uint32_t fold_parent(void *ctx, uint32_t node)
{
    return ((const fold_state_t *)ctx)->opar[node];
}

/* self_bytes() of the folded tree. SIGNAL CONTEXT: caller memory only. */
static uint64_t fold_self(void *ctx, uint32_t node)
{
    return ((const fold_state_t *)ctx)->oself[node];
}

/* key() of the folded tree. SIGNAL CONTEXT: caller memory only. */
static uint64_t fold_key(void *ctx, uint32_t node)
{
    const fold_state_t *S = ctx;
    return node < S->kept ? S->in.key(S->in.ctx, S->orig[node]) : FIL_FOLD_KEY;
}

/* frame() of the folded tree. SIGNAL CONTEXT: caller memory only. */
static void fold_frame(void *ctx, uint32_t node, fil_frame_t *out)
{
    fold_state_t *S = ctx;
    char *buf;
    if (node < S->kept) {
        S->in.frame(S->in.ctx, S->orig[node], out);
        return;
    }
    buf = S->ring[S->next++ % RING];
    memset(out, 0, sizeof(*out));
    out->raw = buf;
    out->raw_len = fil_report_remainder_label(buf, S->ostk[node], S->oflags[node]);
}

/*
 * Fold in into *out (see fil/report.h). 0, or -1 if the scratch is too
 * small or in is malformed (out is then empty). SIGNAL CONTEXT: caller
 * memory only.
 */
int fil_tree_fold(const fil_tree_t *in, const fil_fold_opts_t *o, fil_tree_t *out, void *scratch,
                  size_t cap)
{
    fold_work_t W;
    uint64_t total;
    fold_state_t *S = carve(in->count, o->max_nodes, scratch, cap, &W);
    memset(out, 0, sizeof(*out));
    if (!S)
        return -1;
    S->in = *in;
    S->next = 0;
    if (fil_report_stats(in, W.par, W.incl, NULL, W.depth, W.nstk, &total) < 0)
        return -1;
    choose(S, &W, o, fil_fold_threshold(o, total));
    W.rem = W.order; /* order is no longer needed: one slot per kept node + top */
    for (uint32_t k = 0; k <= S->kept; k++)
        W.rem[k] = FIL_NONE;
    for (uint32_t i = 0; i < in->count; i++) {
        uint32_t p = W.par[i];
        if (W.map[i] == FIL_NONE && W.incl[i] > 0 && (p == FIL_NONE || W.map[p] != FIL_NONE))
            fold_node(S, &W, o, i);
    }
    out->count = S->count;
    out->ctx = S;
    out->parent = fold_parent;
    out->self_bytes = fold_self;
    out->key = fold_key;
    out->frame = fold_frame;
    out->stats = NULL;
    return 0;
}
