/* SPDX-License-Identifier: MIT */
/*
 * reverse.c - the reversed call tree ("who allocated directly"), built
 * biggest first in caller scratch and exposed as another fil_tree_t.
 *
 * Every node with self bytes is a "stack": read leaf first, its leaf frame
 * is a top-level reversed frame, its caller that frame's child, and so on
 * up to the original top-level frame. Reversed frames are merged by
 * (reversed parent, original key).
 *
 * The budget goes to the biggest reversed frames first, so that the
 * import-time stacks of numpy (tens of thousands of them, each tiny) cannot
 * use it up before the lines that hold the memory: a reversed frame is a
 * *candidate* until it is *made*. A candidate owns a contiguous segment of
 * perm[] (the stacks through it) and knows, for each of them, the original
 * node at its level (cur[]). Candidates wait in a max-heap by bytes (ties:
 * creation order, so the output is reproducible). Making the biggest one
 * steps each of its stacks one frame up: stacks that end there are its self
 * bytes; the others are heapsorted by the key of their next frame (skipped
 * when already in order, as in a recursion) and each run of one key becomes
 * a child candidate. Made frames are numbered in the order they are made, so
 * parents come before children. When max_nodes frames are made, or the
 * biggest left holds less than min_bytes (it would not be drawn), or a frame
 * sits at level max_depth, what is left is summed into one remainder frame
 * per made parent (plus one at the top level), appended after; totals stay
 * exact. A candidate's segment is disjoint from every other waiting one, so
 * at most (stacks) candidates wait at once and (max_nodes + stacks) are
 * ever created.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: memset.
 */
#include <string.h>

#include "report_internal.h"

#define RING 4 /* remainder labels valid at once */

/* Lives at the start of the scratch; out->ctx points here. */
typedef struct rev_state {
    fil_tree_t in;      /* the input tree (its ctx must outlive out) */
    uint32_t count;     /* output frames made, remainders included */
    uint32_t made;      /* output frames made from candidates */
    uint32_t max_made;  /* max_nodes */
    uint32_t max_depth; /* 0: any */
    uint32_t top_rem;   /* the top-level remainder, FIL_NONE until made */
    /* output, [max_out] */
    uint32_t *opar, *oorig, *ostk, *orem;
    uint64_t *okey, *oself;
    uint8_t *oflags;
    /* input, [in.count] */
    uint32_t *par;
    uint64_t *key;
    /* stacks, [nst] */
    uint32_t nst, *perm, *cur;
    uint64_t *sbytes, *skey;
    /* candidates, [max_nodes + nst] */
    uint32_t ncand, *cpar, *clo, *chi, *cdepth, *corig;
    uint64_t *ckey, *cbytes;
    uint32_t *heap, nheap; /* [nst] waiting candidates */
    char ring[RING][FIL_REMAINDER_LABEL];
    unsigned next;
} rev_state_t;

/* Output frames at most: made ones, a remainder each, and a top one.
 * SIGNAL CONTEXT: caller memory only. */
uint32_t fil_reverse_max_out(uint32_t max_nodes)
{
    uint64_t m = 2 * (uint64_t)max_nodes + 1;
    return m > FIL_NONE - 2 ? FIL_NONE - 2 : (uint32_t)m;
}

/* The array sizes, shared by the size function and the carving. */
static void rev_sizes(uint32_t count, uint32_t max_nodes, uint64_t z[22])
{
    uint64_t n = count, m = fil_reverse_max_out(max_nodes), c = (uint64_t)max_nodes + n;
    uint64_t s[22] = {sizeof(rev_state_t),
                      m * 4,
                      m * 4,
                      m * 4,
                      m * 4,
                      m * 8,
                      m * 8,
                      m, /* output */
                      n * 4,
                      n * 8, /* input */
                      n * 4,
                      n * 4,
                      n * 8,
                      n * 8, /* stacks */
                      c * 4,
                      c * 4,
                      c * 4,
                      c * 4,
                      c * 4,
                      c * 8,
                      c * 8,  /* candidates */
                      n * 4}; /* heap */
    for (int i = 0; i < 22; i++)
        z[i] = s[i];
}

/* Scratch for fil_tree_reverse. SIGNAL CONTEXT: caller memory only. */
size_t fil_reverse_scratch_size(uint32_t count, uint32_t max_nodes)
{
    uint64_t z[22];
    if (max_nodes > FIL_NONE / 2 - 2)
        max_nodes = FIL_NONE / 2 - 2;
    rev_sizes(count, max_nodes, z);
    return fil_report_scratch_total(z, 22);
}

/* Carve the state and its arrays; NULL if scratch is too small.
 * SIGNAL CONTEXT: caller memory only. */
static rev_state_t *carve_state(uint32_t count, uint32_t max_nodes, void *scratch, size_t cap)
{
    fil_report_arena_t a;
    uint64_t z[22];
    void *p[22];
    rev_state_t *S;
    rev_sizes(count, max_nodes, z);
    fil_report_arena_init(&a, scratch, cap);
    for (int i = 0; i < 22; i++) {
        p[i] = fil_report_carve(&a, z[i]);
        if (!p[i])
            return NULL;
    }
    S = p[0];
    S->opar = p[1], S->oorig = p[2], S->ostk = p[3], S->orem = p[4];
    S->okey = p[5], S->oself = p[6], S->oflags = p[7];
    S->par = p[8], S->key = p[9];
    S->perm = p[10], S->cur = p[11], S->sbytes = p[12], S->skey = p[13];
    S->cpar = p[14], S->clo = p[15], S->chi = p[16], S->cdepth = p[17], S->corig = p[18];
    S->ckey = p[19], S->cbytes = p[20];
    S->heap = p[21];
    return S;
}

/* Heap order: bigger bytes first, then older candidates. SIGNAL CONTEXT. */
static int heap_above(const rev_state_t *S, uint32_t x, uint32_t y)
{
    if (S->cbytes[x] != S->cbytes[y])
        return S->cbytes[x] > S->cbytes[y];
    return x < y;
}

/* Push candidate c. SIGNAL CONTEXT: caller memory only. */
static void heap_push(rev_state_t *S, uint32_t c)
{
    uint32_t k = S->nheap++;
    while (k > 0 && heap_above(S, c, S->heap[(k - 1) / 2])) {
        S->heap[k] = S->heap[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    S->heap[k] = c;
}

/* Pop the biggest candidate. SIGNAL CONTEXT: caller memory only. */
static uint32_t heap_pop(rev_state_t *S)
{
    uint32_t top = S->heap[0], last = S->heap[--S->nheap], k = 0;
    for (;;) {
        uint32_t ch = 2 * k + 1;
        if (ch >= S->nheap)
            break;
        if (ch + 1 < S->nheap && heap_above(S, S->heap[ch + 1], S->heap[ch]))
            ch++;
        if (!heap_above(S, S->heap[ch], last))
            break;
        S->heap[k] = S->heap[ch];
        k = ch;
    }
    if (S->nheap > 0)
        S->heap[k] = last;
    return top;
}

/* Partition order: stacks that ended (cur FIL_NONE) first, then by the key
 * of their current frame, then by stack. SIGNAL CONTEXT. */
static int stack_less(void *ctx, uint32_t x, uint32_t y)
{
    const rev_state_t *S = ctx;
    int ex = S->cur[x] == FIL_NONE, ey = S->cur[y] == FIL_NONE;
    if (ex != ey)
        return ex;
    if (S->skey[x] != S->skey[y])
        return S->skey[x] < S->skey[y];
    return x < y;
}

/* Sort perm[lo..hi) unless it is already in order. SIGNAL CONTEXT. */
static void sort_segment(rev_state_t *S, uint32_t lo, uint32_t hi)
{
    for (uint32_t k = lo + 1; k < hi; k++) {
        if (stack_less(S, S->perm[k], S->perm[k - 1])) {
            fil_report_heapsort(S->perm + lo, hi - lo, stack_less, S);
            return;
        }
    }
}

/* Saturating a += b. SIGNAL CONTEXT: caller memory only. */
static void add_sat(uint64_t *a, uint64_t b)
{
    *a = *a + b < *a ? UINT64_MAX : *a + b;
}

/* Make one run of continuing stacks perm[lo..hi) (one key) a candidate
 * under output frame parent. SIGNAL CONTEXT: caller memory only. */
static void new_candidate(rev_state_t *S, uint32_t parent, uint32_t depth, uint32_t lo, uint32_t hi)
{
    uint32_t c = S->ncand++;
    S->cpar[c] = parent;
    S->clo[c] = lo;
    S->chi[c] = hi;
    S->cdepth[c] = depth;
    S->corig[c] = S->cur[S->perm[lo]];
    S->ckey[c] = S->skey[S->perm[lo]];
    S->cbytes[c] = 0;
    for (uint32_t k = lo; k < hi; k++)
        add_sat(&S->cbytes[c], S->sbytes[S->perm[k]]);
    heap_push(S, c);
}

/* Group perm[lo..hi) (cur and skey set) into candidates under parent; the
 * stacks that ended add to *ended. SIGNAL CONTEXT: caller memory only. */
static void group(rev_state_t *S, uint32_t parent, uint32_t depth, uint32_t lo, uint32_t hi,
                  uint64_t *ended)
{
    uint32_t k = lo;
    sort_segment(S, lo, hi);
    for (; k < hi && S->cur[S->perm[k]] == FIL_NONE; k++)
        add_sat(ended, S->sbytes[S->perm[k]]);
    while (k < hi) {
        uint32_t run = k + 1;
        while (run < hi && S->skey[S->perm[run]] == S->skey[S->perm[k]])
            run++;
        new_candidate(S, parent, depth, k, run);
        k = run;
    }
}

/* The remainder frame of output frame `anchor` (FIL_NONE: top level),
 * made on first use. SIGNAL CONTEXT: caller memory only. */
static uint32_t remainder_of(rev_state_t *S, uint32_t anchor)
{
    uint32_t *slot = anchor == FIL_NONE ? &S->top_rem : &S->orem[anchor], r = *slot;
    if (r != FIL_NONE)
        return r;
    r = *slot = S->count++;
    S->opar[r] = anchor;
    S->oorig[r] = FIL_NONE;
    S->okey[r] = FIL_FOLD_KEY;
    S->oself[r] = 0;
    S->ostk[r] = 0;
    S->oflags[r] = 0;
    return r;
}

/* Sum stacks perm[lo..hi) into the remainder of anchor. SIGNAL CONTEXT. */
static void to_remainder(rev_state_t *S, uint32_t anchor, uint32_t lo, uint32_t hi, unsigned flag)
{
    uint32_t r = remainder_of(S, anchor);
    for (uint32_t k = lo; k < hi; k++)
        add_sat(&S->oself[r], S->sbytes[S->perm[k]]);
    S->ostk[r] = S->ostk[r] + (hi - lo) < S->ostk[r] ? UINT32_MAX : S->ostk[r] + (hi - lo);
    S->oflags[r] |= (uint8_t)flag;
}

/* Make candidate c an output frame and queue its callers. SIGNAL CONTEXT. */
static void make(rev_state_t *S, uint32_t c)
{
    uint32_t k = S->count++, lo = S->clo[c], hi = S->chi[c];
    S->made++;
    S->opar[k] = S->cpar[c];
    S->oorig[k] = S->corig[c];
    S->okey[k] = S->ckey[c];
    S->oself[k] = 0;
    S->ostk[k] = 0;
    S->oflags[k] = 0;
    S->orem[k] = FIL_NONE;
    for (uint32_t j = lo; j < hi; j++) { /* one frame up */
        uint32_t s = S->perm[j], up = S->par[S->cur[s]];
        S->cur[s] = up;
        if (up != FIL_NONE)
            S->skey[s] = S->key[up];
    }
    if (S->max_depth && S->cdepth[c] >= S->max_depth) {
        sort_segment(S, lo, hi);
        for (; lo < hi && S->cur[S->perm[lo]] == FIL_NONE; lo++)
            add_sat(&S->oself[k], S->sbytes[S->perm[lo]]);
        if (lo < hi)
            to_remainder(S, k, lo, hi, FIL_FOLDED_DEEP);
        return;
    }
    group(S, k, S->cdepth[c] + 1, lo, hi, &S->oself[k]);
}

/* Load the input and its stacks; -1 if a parent is out of order.
 * SIGNAL CONTEXT: caller memory only. */
static int load(rev_state_t *S)
{
    const fil_tree_t *in = &S->in;
    S->nst = 0;
    for (uint32_t i = 0; i < in->count; i++) {
        uint64_t b = in->self_bytes(in->ctx, i);
        S->par[i] = in->parent(in->ctx, i);
        if (S->par[i] != FIL_NONE && S->par[i] >= i)
            return -1;
        S->key[i] = in->key(in->ctx, i);
        if (b == 0)
            continue;
        S->perm[S->nst] = S->nst;
        S->cur[S->nst] = i;
        S->skey[S->nst] = S->key[i];
        S->sbytes[S->nst++] = b;
    }
    return 0;
}

/* parent() of the reversed tree. SIGNAL CONTEXT: caller memory only. */
static uint32_t rev_parent(void *ctx, uint32_t node)
{
    return ((const rev_state_t *)ctx)->opar[node];
}

/* self_bytes() of the reversed tree. SIGNAL CONTEXT: caller memory only. */
static uint64_t rev_self(void *ctx, uint32_t node)
{
    return ((const rev_state_t *)ctx)->oself[node];
}

/* key() of the reversed tree: the original key, FIL_FOLD_KEY for a
 * remainder. SIGNAL CONTEXT: caller memory only. */
static uint64_t rev_key(void *ctx, uint32_t node)
{
    return ((const rev_state_t *)ctx)->okey[node];
}

/* frame() of the reversed tree: the frame of one original node it came
 * from, or a remainder label. SIGNAL CONTEXT: caller memory only. */
static void rev_frame(void *ctx, uint32_t node, fil_frame_t *out)
{
    rev_state_t *S = ctx;
    char *buf;
    if (S->oorig[node] != FIL_NONE) {
        S->in.frame(S->in.ctx, S->oorig[node], out);
        return;
    }
    buf = S->ring[S->next++ % RING];
    memset(out, 0, sizeof(*out));
    out->raw = buf;
    out->raw_len = fil_report_remainder_label(buf, S->ostk[node], S->oflags[node]);
}

/*
 * Build the reversed tree of in into scratch and describe it in *out (see
 * fil/report.h). 0, or -1 if scratch is too small or in is malformed (out is
 * then left empty). SIGNAL CONTEXT: caller memory only.
 */
int fil_tree_reverse(const fil_tree_t *in, fil_tree_t *out, uint32_t max_nodes, uint32_t max_depth,
                     uint64_t min_bytes, void *scratch, size_t cap)
{
    rev_state_t *S;
    uint64_t top_ended = 0;
    if (max_nodes > FIL_NONE / 2 - 2)
        max_nodes = FIL_NONE / 2 - 2;
    S = carve_state(in->count, max_nodes, scratch, cap);
    memset(out, 0, sizeof(*out));
    if (!S)
        return -1;
    S->in = *in;
    S->count = S->made = S->ncand = S->nheap = 0;
    S->max_made = max_nodes;
    S->max_depth = max_depth;
    S->next = 0;
    S->top_rem = FIL_NONE;
    if (load(S) < 0)
        return -1;
    group(S, FIL_NONE, 1, 0, S->nst, &top_ended); /* nothing ends at the top */
    /* The heap gives the biggest first, and a frame's callers hold no more
     * than it does: once the top is under min_bytes, so is all that is left. */
    while (S->nheap > 0 && S->made < S->max_made && S->cbytes[S->heap[0]] >= min_bytes)
        make(S, heap_pop(S));
    while (S->nheap > 0) {
        uint32_t c = heap_pop(S);
        to_remainder(S, S->cpar[c], S->clo[c], S->chi[c], FIL_FOLDED_SMALL);
    }
    out->count = S->count;
    out->ctx = S;
    out->parent = rev_parent;
    out->self_bytes = rev_self;
    out->key = rev_key;
    out->frame = rev_frame;
    out->stats = NULL;
    return 0;
}
