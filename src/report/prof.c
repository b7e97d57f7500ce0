/* SPDX-License-Identifier: MIT */
/*
 * prof.c - the collapsed-stacks file (.prof), flamegraph.pl compatible, of
 * bounded size with exact totals.
 *
 * One line per node with self bytes: the frames from the top-level one down
 * to the node, joined by ';', then a space and the node's self bytes.
 * Separators that would break the format (';', '\n', '\r', and NUL, which
 * ends a line for C-string tools) inside names become '?'; everything else is copied as is (paths as recorded), since the
 * file is a byte-exact record. A parent index that is not smaller than its
 * child's makes the whole call fail rather than write a wrong stack.
 *
 * Two rules keep the file small whatever the program did (a recursion
 * 50,000 deep would otherwise write tens of gigabytes):
 *   - a stack deeper than 2E+1 frames (E = edge_frames) is written as its
 *     first E frames, "[N frames elided]" and its last E frames, so the
 *     line stays parseable and its bytes exact;
 *   - lines are chosen within a byte budget. First the "anchors": the
 *     biggest subtrees by inclusive bytes (a prefix of that order, so
 *     closed under "parent of"), whose own lines are always written, within
 *     a quarter of the budget. Then the other stacks by self bytes, biggest
 *     first, until the budget or the line limit is reached. Each stack left
 *     out adds its bytes to the remainder line of its nearest anchor,
 *     "<anchor path>;[N smaller call stacks] <bytes>", written after the
 *     anchor's own line (or to one top-level "[N smaller call stacks]").
 * Costs are computed exactly from label lengths: plen[i] is the length of
 * node i's whole path, and the E-frame prefix of a deep stack is the path of
 * its ancestor at depth E (topE[i]), so a deep line costs O(E) to measure
 * and to write. A program whose stacks fit is written whole, in node order.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none beyond the writer.
 */
#include "report_internal.h"

#define COUNT_COST 22 /* " " + up to 20 digits + "\n" */
#define ELIDE_COST 40 /* "[N frames elided];" */
#define REM_COST 64   /* ";[N smaller call stacks]" */
#define F_ANCHOR 1u   /* node is an anchor */
#define F_WRITTEN 2u  /* node's stack has its own line */
#define PREFIX_CAP 16384u /* bytes of line text kept for the next line */
#define NARRAYS 13

/* One fil_write_prof call. */
typedef struct prof_ctx {
    const fil_tree_t *t;
    fil_writer_t *w;
    uint32_t edge; /* E */
    uint32_t *par, *depth, *topE, *order, *near;
    uint64_t *incl, *self, *plen;
    uint8_t *flag;
    uint32_t *path; /* [2E + 1] */
    int started;    /* the current line has a frame already */
    /* The frames of the last line written whole, as text: pre_node[d] is
     * its frame at depth d + 1 and pre_end[d] where that frame's text ends
     * in pre_buf, for d < pre_n. Nodes in order share long prefixes, so a
     * line re-formats only the frames below the one it shares. */
    char *pre_buf;      /* [PREFIX_CAP] */
    uint32_t *pre_node; /* [2E + 1] */
    uint32_t *pre_end;  /* [2E + 1] */
    uint32_t pre_n;
} prof_ctx_t;

/* The array sizes, shared by the size function and the carving. */
static void prof_sizes(uint32_t count, uint64_t z[NARRAYS])
{
    uint64_t n = count, e = 2 * FIL_PROF_EDGE_MAX + 1;
    uint64_t s[NARRAYS] = {n * 4, n * 4, n * 4, n * 4,      n * 4, n * 8, n * 8,
                           n * 8, n,     e * 4, PREFIX_CAP, e * 4, e * 4};
    for (int i = 0; i < NARRAYS; i++)
        z[i] = s[i];
}

/* Scratch for a tree of `count` nodes. SIGNAL CONTEXT: caller memory only. */
size_t fil_prof_scratch_size(uint32_t count)
{
    uint64_t z[NARRAYS];
    prof_sizes(count, z);
    return fil_report_scratch_total(z, NARRAYS);
}

/* Carve the arrays; -1 if scratch is too small. SIGNAL CONTEXT. */
static int carve(prof_ctx_t *P, void *scratch, size_t cap)
{
    fil_report_arena_t a;
    uint64_t z[NARRAYS];
    prof_sizes(P->t->count, z);
    fil_report_arena_init(&a, scratch, cap);
    P->par = fil_report_carve(&a, z[0]);
    P->depth = fil_report_carve(&a, z[1]);
    P->topE = fil_report_carve(&a, z[2]);
    P->order = fil_report_carve(&a, z[3]);
    P->near = fil_report_carve(&a, z[4]);
    P->incl = fil_report_carve(&a, z[5]);
    P->self = fil_report_carve(&a, z[6]);
    P->plen = fil_report_carve(&a, z[7]);
    P->flag = fil_report_carve(&a, z[8]);
    P->path = fil_report_carve(&a, z[9]);
    P->pre_buf = fil_report_carve(&a, z[10]);
    P->pre_node = fil_report_carve(&a, z[11]);
    P->pre_end = fil_report_carve(&a, z[12]);
    P->pre_n = 0;
    return P->par && P->depth && P->topE && P->order && P->near && P->incl && P->self && P->plen &&
                   P->flag && P->path && P->pre_buf && P->pre_node && P->pre_end
               ? 0
               : -1;
}

/* Write s[0..n) with ';', '\n', '\r' and NUL replaced by '?'. SIGNAL CONTEXT. */
static void write_sanitized(fil_writer_t *w, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ';' || s[i] == '\n' || s[i] == '\r' || s[i] == '\0') {
            fil_write_mem(w, s + run, i - run);
            fil_write_char(w, '?');
            run = i + 1;
        }
    }
    fil_write_mem(w, s + run, n - run);
}

/* Write the label of `node`. SIGNAL CONTEXT: caller memory only. */
static void write_frame(const fil_tree_t *t, uint32_t node, fil_writer_t *w)
{
    fil_frame_t f = {0};
    fil_report_label_t l;
    t->frame(t->ctx, node, &f);
    fil_report_label(&f, &l);
    for (int i = 0; i < l.n; i++)
        write_sanitized(w, l.part[i], l.len[i]);
}

/* What turns each byte into the one the file holds: ';', '\n', '\r' and
 * NUL into '?', every other byte into itself (x ^ 0). */
static const unsigned char sanitize_xor[256] = {
    ['\0'] = '?', ['\n'] = '\n' ^ '?', ['\r'] = '\r' ^ '?', [';'] = ';' ^ '?'};

/* Append the label of `node` to the kept line text at `at`, as
 * write_frame writes it; its end, or 0 if it does not fit. SIGNAL
 * CONTEXT: caller memory only. */
static uint32_t keep_frame(prof_ctx_t *P, uint32_t node, uint32_t at)
{
    fil_frame_t f = {0};
    fil_report_label_t l;
    char *b = P->pre_buf;
    P->t->frame(P->t->ctx, node, &f);
    fil_report_label(&f, &l);
    if (at > 0) {
        if (at >= PREFIX_CAP)
            return 0;
        b[at++] = ';';
    }
    for (int i = 0; i < l.n; i++) {
        const unsigned char *u = (const unsigned char *)l.part[i];
        if (l.len[i] > PREFIX_CAP - at)
            return 0;
        for (size_t k = 0; k < l.len[i]; k++) /* a table's load per byte, no branch */
            b[at + k] = (char)(u[k] ^ sanitize_xor[u[k]]);
        at += (uint32_t)l.len[i];
    }
    return at;
}

/* Bytes of the label of `node`. SIGNAL CONTEXT: caller memory only. */
static uint64_t label_len(const fil_tree_t *t, uint32_t node)
{
    fil_frame_t f = {0};
    fil_report_label_t l;
    t->frame(t->ctx, node, &f);
    fil_report_label(&f, &l);
    return fil_report_label_len(&l);
}

/* plen and topE of every node, in node order. SIGNAL CONTEXT. */
static void measure(prof_ctx_t *P)
{
    for (uint32_t i = 0; i < P->t->count; i++) {
        uint32_t p = P->par[i];
        uint64_t base = p == FIL_NONE ? 0 : P->plen[p];
        uint64_t len = base + label_len(P->t, i) + 1;
        P->plen[i] = len < base ? UINT64_MAX : len;
        P->topE[i] = P->depth[i] == P->edge ? i : P->depth[i] > P->edge ? P->topE[p] : FIL_NONE;
    }
}

/* The ancestor `steps` levels above i (i itself for 0). SIGNAL CONTEXT. */
static uint32_t up(const prof_ctx_t *P, uint32_t i, uint32_t steps)
{
    while (steps-- > 0 && i != FIL_NONE)
        i = P->par[i];
    return i;
}

/* Bytes of node i's line without the count: whole, or elided. SIGNAL CONTEXT. */
static uint64_t path_cost(const prof_ctx_t *P, uint32_t i)
{
    uint32_t d = P->depth[i], a;
    if (d <= 2 * P->edge + 1)
        return P->plen[i];
    a = up(P, i, P->edge);
    return P->plen[P->topE[i]] + ELIDE_COST + (P->plen[i] - P->plen[a]);
}

/* Choose the anchors within a quarter of the budget. SIGNAL CONTEXT. */
static uint64_t choose_anchors(prof_ctx_t *P, uint64_t budget)
{
    uint32_t n = P->t->count, m = 0;
    uint64_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (P->incl[i] > 0) /* an empty subtree is never an anchor */
            P->order[m++] = i;
        P->flag[i] = 0;
    }
    size_t left = m;
    fil_report_heap_first(P->order, m, fil_report_bigger_first, P->incl);
    while (left > 0) { /* biggest first, until the budget: no need to sort the rest */
        uint32_t i = fil_report_heap_next(P->order, &left, fil_report_bigger_first, P->incl);
        uint64_t c = path_cost(P, i) + REM_COST + COUNT_COST;
        if (P->self[i] > 0)
            c += path_cost(P, i) + COUNT_COST;
        if (used + c > budget / 4)
            break;
        used += c;
        P->flag[i] = F_ANCHOR | (P->self[i] > 0 ? F_WRITTEN : 0);
    }
    return used;
}

/* Choose the other written stacks, biggest first, within what is left.
 * SIGNAL CONTEXT: caller memory only. */
static void choose_lines(prof_ctx_t *P, uint64_t used, uint64_t budget, uint32_t max_lines)
{
    uint32_t n = P->t->count, m = 0, lines = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (P->self[i] > 0 && !(P->flag[i] & F_ANCHOR))
            P->order[m++] = i;
        lines += (P->flag[i] & F_WRITTEN) != 0;
    }
    size_t left = m;
    fil_report_heap_first(P->order, m, fil_report_bigger_first, P->self);
    while (left > 0 && lines < max_lines) {
        uint32_t i = fil_report_heap_next(P->order, &left, fil_report_bigger_first, P->self);
        uint64_t c = path_cost(P, i) + COUNT_COST;
        if (used + c > budget)
            break; /* so every stack left out is no bigger than those written */
        used += c;
        P->flag[i] |= F_WRITTEN;
        lines++;
    }
}

/* Write ';' before every frame but a line's first. SIGNAL CONTEXT. */
static void sep(prof_ctx_t *P)
{
    if (P->started)
        fil_write_char(P->w, ';');
    P->started = 1;
}

/* Write the frames of path[0..n) (leaf first) root first. SIGNAL CONTEXT. */
static void write_run(prof_ctx_t *P, uint32_t n)
{
    for (uint32_t d = n; d-- > 0;) {
        sep(P);
        write_frame(P->t, P->path[d], P->w);
    }
}

/* Collect up to n frames from i upwards (leaf first); returns how many.
 * SIGNAL CONTEXT: caller memory only. */
static uint32_t collect(prof_ctx_t *P, uint32_t i, uint32_t n)
{
    uint32_t k = 0;
    while (i != FIL_NONE && k < n) {
        P->path[k++] = i;
        i = P->par[i];
    }
    return k;
}

/*
 * The frames of path[0..d) (leaf first, d <= 2E + 1) root first, through
 * the kept text of the last such line: the frames it shares are copied,
 * the others formatted once and kept. SIGNAL CONTEXT: caller memory only.
 */
static void write_kept(prof_ctx_t *P, uint32_t d)
{
    uint32_t j = 0, end = 0;
    while (j < d && j < P->pre_n && P->pre_node[j] == P->path[d - 1 - j])
        j++;
    end = j ? P->pre_end[j - 1] : 0;
    for (; j < d; j++) {
        uint32_t e = keep_frame(P, P->path[d - 1 - j], end);
        if (e == 0)
            break;
        P->pre_node[j] = P->path[d - 1 - j];
        P->pre_end[j] = end = e;
    }
    P->pre_n = j;
    fil_write_mem(P->w, P->pre_buf, end);
    P->started = end > 0;
    if (j < d)
        write_run(P, d - j); /* too long to keep: the rest as it comes */
}

/*
 * One line: node i's path (elided if deep; none for i == FIL_NONE), then
 * the remainder label if any, then " bytes\n". SIGNAL CONTEXT: caller
 * memory only.
 */
static void write_line(prof_ctx_t *P, uint32_t i, const char *label, size_t len, uint64_t bytes)
{
    uint32_t d = i == FIL_NONE ? 0 : P->depth[i];
    P->started = 0;
    if (d > 2 * P->edge + 1) {
        write_run(P, collect(P, P->topE[i], P->edge));
        sep(P);
        fil_write_char(P->w, '[');
        fil_write_u64(P->w, d - 2 * P->edge);
        fil_write_str(P->w, " frames elided]");
        write_run(P, collect(P, i, P->edge));
    } else if (d > 0) {
        write_kept(P, collect(P, i, d));
    }
    if (label) {
        sep(P);
        fil_write_mem(P->w, label, len);
    }
    fil_write_char(P->w, ' ');
    fil_write_u64(P->w, bytes);
    fil_write_char(P->w, '\n');
}

/* Sum the stacks left out into their anchors' remainders: incl[] becomes
 * the remainder bytes and order[] the stack count of each anchor; returns
 * the top-level remainder in *top_bytes, *top_n. SIGNAL CONTEXT. */
static void fold_rest(prof_ctx_t *P, uint64_t *top_bytes, uint32_t *top_n)
{
    uint64_t *rem = P->incl;
    uint32_t *remn = P->order;
    *top_bytes = 0;
    *top_n = 0;
    for (uint32_t i = 0; i < P->t->count; i++) {
        uint32_t p = P->par[i];
        P->near[i] = (P->flag[i] & F_ANCHOR) ? i : p == FIL_NONE ? FIL_NONE : P->near[p];
        rem[i] = 0;
        remn[i] = 0;
    }
    for (uint32_t i = 0; i < P->t->count; i++) {
        uint32_t a = P->near[i];
        uint64_t *b = a == FIL_NONE ? top_bytes : &rem[a];
        if (P->self[i] == 0 || (P->flag[i] & F_WRITTEN))
            continue;
        *b = *b + P->self[i] < *b ? UINT64_MAX : *b + P->self[i];
        if (a == FIL_NONE)
            *top_n += *top_n < UINT32_MAX;
        else
            remn[a] += remn[a] < UINT32_MAX;
    }
}

/* Write every line (see the file comment). SIGNAL CONTEXT. */
static void write_lines(prof_ctx_t *P)
{
    char label[FIL_REMAINDER_LABEL];
    uint64_t top_bytes;
    uint32_t top_n;
    fold_rest(P, &top_bytes, &top_n);
    for (uint32_t i = 0; i < P->t->count && !P->w->failed; i++) {
        if (P->flag[i] & F_WRITTEN)
            write_line(P, i, NULL, 0, P->self[i]);
        if ((P->flag[i] & F_ANCHOR) && P->order[i] > 0)
            write_line(P, i, label,
                       fil_report_remainder_label(label, P->order[i], FIL_FOLDED_SMALL),
                       P->incl[i]);
    }
    if (top_n > 0)
        write_line(P, FIL_NONE, label, fil_report_remainder_label(label, top_n, FIL_FOLDED_SMALL),
                   top_bytes);
}

/*
 * Write the collapsed stacks of t within the budget o (see fil/report.h)
 * and flush w. 0, or -1 if scratch is too small, the tree is malformed or
 * a write failed. SIGNAL CONTEXT: caller memory only.
 */
int fil_write_prof_opts(const fil_tree_t *t, const fil_prof_opts_t *o, fil_writer_t *w,
                        void *scratch, size_t cap)
{
    static const fil_prof_opts_t defaults = {FIL_PROF_MAX_BYTES, FIL_PROF_MAX_LINES,
                                             FIL_PROF_EDGE_MAX};
    prof_ctx_t P = {.t = t, .w = w};
    uint64_t total, used;
    o = o ? o : &defaults;
    P.edge = o->edge_frames < 1                   ? 1
             : o->edge_frames > FIL_PROF_EDGE_MAX ? FIL_PROF_EDGE_MAX
                                                  : o->edge_frames;
    if (carve(&P, scratch, cap) < 0)
        return -1;
    if (fil_report_stats(t, P.par, P.incl, P.self, P.depth, NULL, &total) < 0)
        return -1;
    measure(&P);
    used = choose_anchors(&P, o->max_bytes);
    choose_lines(&P, used, o->max_bytes, o->max_lines);
    write_lines(&P);
    return fil_writer_flush(w);
}

/* fil_write_prof_opts with the default budget. SIGNAL CONTEXT. */
int fil_write_prof(const fil_tree_t *t, fil_writer_t *w, void *scratch, size_t cap)
{
    return fil_write_prof_opts(t, NULL, w, scratch, cap);
}
