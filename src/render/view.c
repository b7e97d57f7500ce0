/* SPDX-License-Identifier: MIT */
/*
 * view.c - a validated, read-only view of a state. SIGNAL-SAFE FILE.
 *
 * A file-backed view trusts nothing in the file: the header must carry the
 * magic and version, every chunk must lie inside the file, every count is
 * clipped to what the chunks can hold, and records are checked again when
 * they are read (parents must precede children, functions and strings must
 * exist). The total is the sum of the per-node bytes, which a writer killed
 * at any instruction leaves consistent (repair()). A live view reads this process's own
 * state through the writer's chunk pointers.
 *
 * A frozen view (fil_view_freeze) is a file view of a program that is still
 * running, for a report on demand: the header and every node's two
 * counters are copied into the caller's memory, and the report reads the
 * copies, so every writer sees the same figures. Each counter is one
 * aligned 8-byte store (state.h), so each copied value is one the program
 * really stored. The peak is copied consistently: the program copies
 * bytes[] into peak[] only after a new high-water mark (which raises
 * peak_total) and marks the copy with snapshot_busy; so when snapshot_busy
 * was clear and peak_total and at_peak were the same before and after our
 * copy, peak[] did not change under it (or, at_peak set throughout,
 * bytes[] held the peak and did not change: any decrease would have
 * cleared at_peak, any increase raised peak_total). Otherwise the copy is
 * taken again, a few times. What is held now is a copy taken over the
 * time the loop runs (milliseconds), not one instant. A live view is
 * frozen the same way, under the tracker lock (the %%filprofile magic's
 * in-process report), so the lock is held for the copy only, not while the
 * files are written.
 *
 * Allowed calls: none besides memcpy (everything is arithmetic on memory).
 */
#include <string.h>

#include "fil/state_writer.h"
#include "render_internal.h"

static void set_err(char *err, size_t errlen, const char *msg) {
    size_t n = strlen(msg);
    if (!errlen)
        return;
    if (n >= errlen)
        n = errlen - 1;
    memcpy(err, msg, n);
    err[n] = 0;
}

static const fil_seg_t *seg(const fil_view_t *v, int s) {
    switch (s) {
    case FIL_SEG_NODES: return &v->h->nodes;
    case FIL_SEG_BYTES: return &v->h->bytes;
    case FIL_SEG_PEAK: return &v->h->peak;
    case FIL_SEG_FUNCS: return &v->h->funcs;
    case FIL_SEG_STOP: return &v->h->stop;
    default: return &v->h->strings;
    }
}

static const void *file_at(const fil_view_t *v, int s, uint64_t i) {
    const fil_seg_t *g = seg(v, s);
    uint32_t k;
    uint64_t w;
    fil_seg_locate(i, &k, &w);
    return v->base + g->chunk_off[k] + w * g->elem_size;
}

/* Elements segment g can hold in chunks that lie inside the file; 0 if a
 * chunk is misplaced. */
static uint64_t file_capacity(const fil_view_t *v, const fil_seg_t *g, uint32_t elem) {
    if (g->elem_size != elem || g->nchunks > FIL_SEG_MAX_CHUNKS)
        return 0;
    uint64_t cap = 0;
    for (uint32_t k = 0; k < g->nchunks; k++) {
        uint64_t off = g->chunk_off[k], len = fil_seg_chunk_elems(k) * elem;
        if (off % 4096 || off < FIL_STATE_HEADER_SIZE || off > v->size || len > v->size - off)
            return cap; /* keep only the chunks before a bad one */
        cap += fil_seg_chunk_elems(k);
    }
    return cap;
}

static uint64_t min3(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* The writer stores a node's bytes before the total, each one aligned word
 * (state.h): a process killed between the two leaves the nodes right and
 * the total one update behind. So the total is the nodes' sum (torn: the
 * header disagreed), and bytes[] is the peak state while nothing decreased
 * since the peak (at_peak) or when it holds more than the recorded peak
 * (an increase whose peak_total store the kill cut off). Unsigned sums:
 * a damaged file may hold anything. */
static void repair(fil_view_t *v) {
    const fil_state_header_t *h = v->h;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < v->nodes; i++)
        sum += (uint64_t) * (const int64_t *)v->at(v, FIL_SEG_BYTES, i);
    v->total = (int64_t)sum;
    v->fix_node = FIL_NONE;
    v->torn = v->total != h->total;
    v->peak_now = h->at_peak || v->total > h->peak_total;
    v->snapshot_torn = h->snapshot_busy != 0;
}

int fil_view_open_file(fil_view_t *v, const void *base, uint64_t size, char *err, size_t errlen) {
    memset(v, 0, sizeof *v);
    const fil_state_header_t *h = base;
    if (!base || size < FIL_STATE_HEADER_SIZE || h->magic != FIL_STATE_MAGIC) {
        set_err(err, errlen, "no profile data: the program did not start under the profiler");
        return -1;
    }
    if (h->version != FIL_STATE_VERSION || h->header_size != FIL_STATE_HEADER_SIZE) {
        set_err(err, errlen, "profile data has an unknown format version");
        return -1;
    }
    v->h = h;
    v->base = base;
    v->size = size;
    v->at = file_at;
    uint64_t ncap = min3(file_capacity(v, &h->nodes, sizeof(fil_node_t)),
                         file_capacity(v, &h->bytes, 8), file_capacity(v, &h->peak, 8));
    v->nodes = h->nodes.count < ncap ? h->nodes.count : ncap;
    if (v->nodes > FIL_NONE - 1)
        v->nodes = FIL_NONE - 1;
    uint64_t fcap = file_capacity(v, &h->funcs, sizeof(fil_func_t));
    v->funcs = h->funcs.count < fcap ? h->funcs.count : fcap;
    uint64_t scap = file_capacity(v, &h->strings, 1);
    v->strings = h->strings.count < scap ? h->strings.count : scap;
    repair(v);
    return 0;
}

/* at() of a view at a stop signal: the bytes from stop[] (0 for a node
 * made after the copy), the rest from the file. SIGNAL CONTEXT. */
static const void *stop_at(const fil_view_t *v, int s, uint64_t i) {
    static const int64_t none;
    if (s == FIL_SEG_BYTES)
        return i < v->stop_nodes ? file_at(v, FIL_SEG_STOP, i) : &none;
    return file_at(v, s, i);
}

/* See render_internal.h. */
int fil_view_at_stop(fil_view_t *v, int sig) {
    const fil_state_header_t *h = v->h;
    if (v->at != file_at || sig <= 0 || h->stop_signal != (uint32_t)sig)
        return 0;
    uint64_t cap = file_capacity(v, &h->stop, 8);
    uint64_t n = h->stop.count < cap ? h->stop.count : cap;
    v->stop_nodes = n < v->nodes ? n : v->nodes;
    v->at = stop_at;
    v->at_stop = 1;
    repair(v);
    v->torn = v->total != h->stop_total;
    v->peak_now = 0; /* not a peak view: see render_internal.h */
    return 1;
}

/* at() of a frozen view: the counters from the copies, the rest (append-only
 * records, validated at open) from the file or the live state. SIGNAL
 * CONTEXT. */
static const void *frozen_at(const fil_view_t *v, int s, uint64_t i) {
    if (s == FIL_SEG_BYTES)
        return v->frozen_bytes + i;
    if (s == FIL_SEG_PEAK)
        return v->frozen_peak + i;
    return v->inner_at(v, s, i);
}

/* See render_internal.h: the header copy and two counters per node, with
 * the bump allocator's alignment. Context: any. */
size_t fil_view_freeze_size(uint64_t nodes) {
    return sizeof(fil_state_header_t) + 2 * (size_t)nodes * 8 + 32;
}

/* The peak bookkeeping of a live header, read one word at a time. */
typedef struct peak_word {
    uint32_t busy, at_peak;
    int64_t peak_total;
} peak_word_t;

/* Read them, one aligned acquire load each. SIGNAL CONTEXT. */
static void read_peak_word(const fil_state_header_t *h, peak_word_t *p) {
    p->busy = __atomic_load_n(&h->snapshot_busy, __ATOMIC_ACQUIRE);
    p->at_peak = __atomic_load_n(&h->at_peak, __ATOMIC_ACQUIRE);
    p->peak_total = __atomic_load_n(&h->peak_total, __ATOMIC_ACQUIRE);
}

/* Copy n counters of segment s, one aligned load each. */
static void copy_counters(const fil_view_t *v, int s, int64_t *out, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        out[i] = __atomic_load_n((const int64_t *)v->at(v, s, i), __ATOMIC_RELAXED);
}

/* See render_internal.h and the file comment. v must be a file view; mem
 * holds fil_view_freeze_size(v->nodes). 0, or -1 with v unchanged.
 * Context: supervisor (the program runs meanwhile); SIGNAL-SAFE. */
int fil_view_freeze(fil_view_t *v, fil_bump_t *mem) {
    const fil_state_header_t *live = v->h;
    fil_state_header_t *h = fil_bump(mem, sizeof *h);
    int64_t *bytes = fil_bump(mem, (size_t)v->nodes * 8 + 8);
    int64_t *peak = fil_bump(mem, (size_t)v->nodes * 8 + 8);
    peak_word_t before, after;
    if (!h || !bytes || !peak)
        return -1;
    for (int attempt = 0; attempt < 50; attempt++) {
        read_peak_word(live, &before);
        memcpy(h, live, sizeof *h);
        copy_counters(v, FIL_SEG_PEAK, peak, v->nodes);
        copy_counters(v, FIL_SEG_BYTES, bytes, v->nodes);
        read_peak_word(live, &after);
        if (!before.busy && !after.busy && before.at_peak == after.at_peak &&
            before.peak_total == after.peak_total)
            break; /* consistent; after 50 tries the copy is flagged below */
    }
    h->snapshot_busy = after.busy || before.at_peak != after.at_peak ||
                       before.peak_total != after.peak_total;
    h->at_peak = after.at_peak;
    h->peak_total = after.peak_total;
    /* Only the v->nodes counters counted at open were copied, while the
     * header's peak_total also holds the bytes of call stacks made since
     * (a program making new ones at its peak): a consistent snapshot
     * over all nodes sums to peak_total, so the copied part is the peak
     * this report can draw, and claims. */
    if (!h->snapshot_busy && !h->at_peak) {
        uint64_t sum = 0;
        for (uint64_t i = 0; i < v->nodes; i++)
            sum += (uint64_t)peak[i];
        if ((int64_t)sum < h->peak_total)
            h->peak_total = (int64_t)sum;
    }
    v->frozen_h = h;
    v->frozen_bytes = bytes;
    v->frozen_peak = peak;
    v->h = h;
    v->inner_at = v->at;
    v->at = frozen_at;
    repair(v);
    /* The program is alive: no store was cut off. The header's total was
     * copied at another moment than the nodes, and a sum of nodes copied
     * one after the other may exceed any total the program had, so only
     * at_peak says that bytes[] is the peak. */
    v->torn = 0;
    v->peak_now = h->at_peak != 0;
    return 0;
}

static const void *live_at(const fil_view_t *v, int s, uint64_t i) {
    (void)v;
    return fil_state_at(s, i);
}

void fil_view_open_live(fil_view_t *v) {
    memset(v, 0, sizeof *v);
    v->h = fil_state;
    v->at = live_at;
    v->nodes = __atomic_load_n(&fil_state->nodes.count, __ATOMIC_ACQUIRE);
    v->funcs = __atomic_load_n(&fil_state->funcs.count, __ATOMIC_ACQUIRE);
    v->strings = __atomic_load_n(&fil_state->strings.count, __ATOMIC_ACQUIRE);
    repair(v);
}

size_t fil_view_fold_size(uint64_t nodes, uint64_t keep) {
    uint64_t out = nodes > keep ? nodes - keep : 0;
    return (size_t)(keep * 8 + 8 + ((out * 4 + 7) & ~UINT64_C(7)) + 8);
}

/* See render_internal.h. One pass in index order: a parent always has a
 * smaller index than its child, so a left-out node's parent is either
 * kept or a left-out node already resolved. SIGNAL-SAFE: caller memory. */
int fil_view_fold(fil_view_t *v, uint64_t keep, fil_bump_t *mem) {
    uint64_t n = v->nodes;
    if (keep == 0 || keep >= n)
        return keep >= n ? 0 : -1;
    int64_t *fold = fil_bump(mem, (size_t)keep * 8 + 8);
    uint32_t *kept = fil_bump(mem, (size_t)(n - keep) * 4 + 8);
    if (!fold || !kept)
        return -1;
    for (uint64_t i = 0; i < keep; i++)
        fold[i] = 0;
    for (uint64_t j = keep; j < n; j++) {
        uint32_t p = fil_view_node(v, (uint32_t)j)->parent, a = 0;
        if (p < keep)
            a = p;
        else if (p < j)
            a = kept[p - keep];
        kept[j - keep] = a;
        fold[a] += fil_view_bytes(v, (uint32_t)j);
    }
    v->clipped += n - keep;
    v->nodes = keep;
    v->fold = fold;
    v->kept = kept;
    return 0;
}

uint32_t fil_view_kept_node(const fil_view_t *v, uint32_t i) {
    if (i < v->nodes)
        return i;
    if (v->kept && i < v->nodes + v->clipped)
        return v->kept[i - v->nodes];
    return FIL_NONE;
}

const fil_node_t *fil_view_node(const fil_view_t *v, uint32_t i) {
    return v->at(v, FIL_SEG_NODES, i);
}

int64_t fil_view_bytes(const fil_view_t *v, uint32_t i) {
    int64_t folded = v->fold && i < v->nodes ? v->fold[i] : 0;
    if (i == v->fix_node)
        return v->fix_bytes + folded;
    return *(const int64_t *)v->at(v, FIL_SEG_BYTES, i) + folded;
}

int64_t fil_view_peak(const fil_view_t *v, uint32_t i) {
    if (v->peak_now) /* nothing decreased since the peak: now is the peak */
        return fil_view_bytes(v, i);
    return *(const int64_t *)v->at(v, FIL_SEG_PEAK, i);
}

uint64_t fil_view_peak_total(const fil_view_t *v) {
    int64_t p = v->peak_now ? v->total : v->h->peak_total;
    return p > 0 ? (uint64_t)p : 0;
}

int fil_view_string(const fil_view_t *v, uint64_t idx, const char **s, size_t *n) {
    if (idx >= v->strings || v->strings - idx < 4)
        return -1;
    uint32_t k;
    uint64_t w;
    fil_seg_locate(idx, &k, &w);
    if (w + 4 > fil_seg_chunk_elems(k))
        return -1;
    const char *p = v->at(v, FIL_SEG_STRINGS, idx);
    uint32_t len;
    memcpy(&len, p, 4);
    if (len > FIL_STRING_MAX || w + 4 + len > fil_seg_chunk_elems(k) || idx + 4 + len > v->strings)
        return -1;
    *s = p + 4;
    *n = len;
    return 0;
}

void *fil_bump(fil_bump_t *b, size_t n) {
    size_t at = (b->used + 7) & ~(size_t)7;
    if (at > b->cap || n > b->cap - at)
        return NULL;
    b->used = at + n;
    return b->base + at;
}
