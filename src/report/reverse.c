/* SPDX-License-Identifier: MIT */
/*
 * reverse.c - the reversed call tree ("who allocated directly"), built in
 * caller scratch and exposed as another fil_tree_t.
 *
 * Every node with self bytes contributes its path read leaf first: the leaf
 * frame becomes a top-level reversed node, its caller that node's child, and
 * so on up to the original top-level frame, where the bytes land. Reversed
 * nodes are identified by (reversed parent, original key), found through an
 * open-addressing table (linear probing, power-of-two capacity at least
 * twice the node budget, so probes stay short and always end). New nodes are
 * appended, so a reversed parent always has a smaller index than its
 * children, as fil_tree_t requires. A path is only added when all its
 * missing nodes fit in the budget of max_nodes; otherwise its bytes go to a
 * single "[reversed view truncated]" node (one reserved extra slot), so
 * totals stay exact. Reversed nodes remember one original node they came
 * from, to which frame() delegates; keys are the original keys.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: memset.
 */
#include <string.h>

#include "report_internal.h"

#define TRUNCATED_LABEL "[reversed view truncated]"

/* Lives at the start of the scratch; out->ctx points here. */
typedef struct rev_state {
    fil_tree_t in;     /* the input tree (its ctx must outlive out) */
    uint32_t count;    /* reversed nodes made, truncation node included */
    uint32_t real;     /* reversed nodes made, truncation node excluded */
    uint32_t max_real; /* budget of real nodes (max_nodes) */
    uint32_t trunc;    /* index of the truncation node, or FIL_NONE */
    uint32_t *parent;  /* [max_nodes + 1] reversed parent */
    uint64_t *key;     /* [max_nodes + 1] original key */
    uint32_t *orig;    /* [max_nodes + 1] an original node with that key */
    uint64_t *self;    /* [max_nodes + 1] self bytes */
    uint32_t *table;   /* [mask + 1] node index or FIL_NONE */
    uint64_t mask;     /* table capacity - 1 */
    uint32_t *path;    /* [in.count] path of the current input node */
} rev_state_t;

/* Table capacity for max_nodes: a power of two >= 2 * (max_nodes + 1).
 * SIGNAL CONTEXT: caller memory only. */
static uint64_t table_capacity(uint32_t max_nodes)
{
    uint64_t want = 2 * ((uint64_t)max_nodes + 1), cap = 16;
    while (cap < want)
        cap <<= 1;
    return cap;
}

/* Scratch for fil_tree_reverse. SIGNAL CONTEXT: caller memory only. */
size_t fil_reverse_scratch_size(uint32_t count, uint32_t max_nodes)
{
    uint64_t slots = (uint64_t)max_nodes + 1;
    uint64_t bytes[7] = {
        sizeof(rev_state_t),           /* state */
        slots * 4,                     /* parent */
        slots * 8,                     /* key */
        slots * 4,                     /* orig */
        slots * 8,                     /* self */
        table_capacity(max_nodes) * 4, /* table */
        (uint64_t)count * 4,           /* path */
    };
    return fil_report_scratch_total(bytes, 7);
}

/* Slot where (parent, key) is or would go. SIGNAL CONTEXT: caller memory. */
static uint64_t find_slot(const rev_state_t *S, uint32_t parent, uint64_t key)
{
    uint64_t h = key ^ ((uint64_t)parent * UINT64_C(0x9E3779B97F4A7C15));
    h ^= h >> 31;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 29;
    for (uint64_t i = h & S->mask;; i = (i + 1) & S->mask) {
        uint32_t n = S->table[i];
        if (n == FIL_NONE || (S->parent[n] == parent && S->key[n] == key))
            return i;
    }
}

/* Append a node; returns its index. The caller checked the budget.
 * SIGNAL CONTEXT: caller memory only. */
static uint32_t add_node(rev_state_t *S, uint32_t parent, uint64_t key, uint32_t orig)
{
    uint32_t n = S->count++;
    S->parent[n] = parent;
    S->key[n] = key;
    S->orig[n] = orig;
    S->self[n] = 0;
    return n;
}

/* Add bytes to the truncation node, making it on first use. SIGNAL CONTEXT. */
static void add_truncated(rev_state_t *S, uint64_t bytes)
{
    if (S->trunc == FIL_NONE)
        S->trunc = add_node(S, FIL_NONE, FIL_REVERSE_TRUNCATED_KEY, FIL_NONE);
    S->self[S->trunc] += bytes;
}

/*
 * Collect the path of `node` leaf first into S->path; returns its length, or
 * 0 if a parent index is out of order. SIGNAL CONTEXT: caller memory only.
 */
static uint32_t collect_path(rev_state_t *S, uint32_t node)
{
    uint32_t depth = 0;
    while (node != FIL_NONE) {
        uint32_t parent = S->in.parent(S->in.ctx, node);
        if (parent != FIL_NONE && parent >= node)
            return 0;
        S->path[depth++] = node;
        node = parent;
    }
    return depth;
}

/*
 * Add the reversed path of input node `node` holding `bytes`. 0, or -1 if
 * the input tree is malformed. SIGNAL CONTEXT: caller memory only.
 */
static int add_path(rev_state_t *S, uint32_t node, uint64_t bytes)
{
    uint32_t depth = collect_path(S, node), j = 0, rp = FIL_NONE;
    if (depth == 0)
        return -1;
    for (; j < depth; j++) { /* follow the part that exists */
        uint64_t slot = find_slot(S, rp, S->in.key(S->in.ctx, S->path[j]));
        if (S->table[slot] == FIL_NONE)
            break;
        rp = S->table[slot];
    }
    if (j < depth && depth - j > S->max_real - S->real) {
        add_truncated(S, bytes);
        return 0;
    }
    for (; j < depth; j++) { /* create the rest */
        uint64_t key = S->in.key(S->in.ctx, S->path[j]);
        uint64_t slot = find_slot(S, rp, key);
        rp = add_node(S, rp, key, S->path[j]);
        S->table[slot] = rp;
        S->real++;
    }
    S->self[rp] += bytes;
    return 0;
}

/* parent() of the reversed tree. SIGNAL CONTEXT: caller memory only. */
static uint32_t rev_parent(void *ctx, uint32_t node)
{
    return ((const rev_state_t *)ctx)->parent[node];
}

/* self_bytes() of the reversed tree. SIGNAL CONTEXT: caller memory only. */
static uint64_t rev_self(void *ctx, uint32_t node)
{
    return ((const rev_state_t *)ctx)->self[node];
}

/* key() of the reversed tree: the original key (FIL_REVERSE_TRUNCATED_KEY
 * for the truncation node). SIGNAL CONTEXT: caller memory only. */
static uint64_t rev_key(void *ctx, uint32_t node)
{
    return ((const rev_state_t *)ctx)->key[node];
}

/* frame() of the reversed tree: the frame of one original node it came
 * from, or the raw truncation label. SIGNAL CONTEXT: caller memory only. */
static void rev_frame(void *ctx, uint32_t node, fil_frame_t *out)
{
    const rev_state_t *S = ctx;
    if (node == S->trunc) {
        memset(out, 0, sizeof(*out));
        out->raw = TRUNCATED_LABEL;
        out->raw_len = sizeof(TRUNCATED_LABEL) - 1;
        return;
    }
    S->in.frame(S->in.ctx, S->orig[node], out);
}

/* Carve the state and its arrays; NULL if scratch is too small.
 * SIGNAL CONTEXT: caller memory only. */
static rev_state_t *carve_state(const fil_tree_t *in, uint32_t max_nodes, void *scratch, size_t cap)
{
    fil_report_arena_t a;
    uint64_t slots = (uint64_t)max_nodes + 1, tcap = table_capacity(max_nodes);
    rev_state_t *S;
    fil_report_arena_init(&a, scratch, cap);
    S = fil_report_carve(&a, sizeof(*S));
    if (!S)
        return NULL;
    S->parent = fil_report_carve(&a, slots * 4);
    S->key = fil_report_carve(&a, slots * 8);
    S->orig = fil_report_carve(&a, slots * 4);
    S->self = fil_report_carve(&a, slots * 8);
    S->table = fil_report_carve(&a, tcap * 4);
    S->path = fil_report_carve(&a, (uint64_t)in->count * 4);
    if (!S->parent || !S->key || !S->orig || !S->self || !S->table || !S->path)
        return NULL;
    S->mask = tcap - 1;
    return S;
}

/*
 * Build the reversed tree of in into scratch and describe it in *out (see
 * fil/report.h). 0, or -1 if scratch is too small or in is malformed (out is
 * then left empty). SIGNAL CONTEXT: caller memory only.
 */
int fil_tree_reverse(const fil_tree_t *in, fil_tree_t *out, uint32_t max_nodes, void *scratch,
                     size_t cap)
{
    rev_state_t *S;
    if (max_nodes > FIL_NONE - 1) /* indexes must stay below FIL_NONE */
        max_nodes = FIL_NONE - 1;
    S = carve_state(in, max_nodes, scratch, cap);
    memset(out, 0, sizeof(*out));
    if (!S)
        return -1;
    S->in = *in;
    S->count = S->real = 0;
    S->max_real = max_nodes;
    S->trunc = FIL_NONE;
    memset(S->table, 0xFF, (S->mask + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < in->count; i++) {
        uint64_t bytes = in->self_bytes(in->ctx, i);
        if (bytes > 0 && add_path(S, i, bytes) < 0)
            return -1;
    }
    out->count = S->count;
    out->ctx = S;
    out->parent = rev_parent;
    out->self_bytes = rev_self;
    out->key = rev_key;
    out->frame = rev_frame;
    return 0;
}
