/* SPDX-License-Identifier: MIT */
/*
 * prof.c - the collapsed-stacks file (.prof), flamegraph.pl compatible.
 *
 * One line per node with self bytes: the frames from the top-level one down
 * to the node, joined by ';', then a space and the node's self bytes. The
 * path of a node is collected leaf first into a caller-provided index array
 * (depth <= node count because every parent index is smaller than its
 * child's) and written back to front. Separators that would break the format
 * (';', '\n', '\r') inside names become '?'; everything else is copied as is,
 * since the file is a byte-exact record. A parent index that is not smaller
 * than its child's makes the whole call fail rather than write a wrong stack.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none beyond the writer.
 */
#include "report_internal.h"

/* Scratch for a tree of `count` nodes: one path array. SIGNAL CONTEXT. */
size_t fil_prof_scratch_size(uint32_t count)
{
    uint64_t bytes[1] = {(uint64_t)count * sizeof(uint32_t)};
    return fil_report_scratch_total(bytes, 1);
}

/* Write s[0..n) with ';', '\n' and '\r' replaced by '?'. SIGNAL CONTEXT. */
static void write_sanitized(fil_writer_t *w, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ';' || s[i] == '\n' || s[i] == '\r') {
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

/*
 * Collect the path of `node` leaf first into path[]; returns its length, or
 * 0 if a parent index is out of order. SIGNAL CONTEXT: caller memory only.
 */
static uint32_t collect_path(const fil_tree_t *t, uint32_t node, uint32_t *path)
{
    uint32_t depth = 0;
    while (node != FIL_NONE) {
        uint32_t parent = t->parent(t->ctx, node);
        if (parent != FIL_NONE && parent >= node)
            return 0;
        path[depth++] = node;
        node = parent;
    }
    return depth;
}

/*
 * Write the collapsed stacks of t (see fil/report.h) and flush w.
 * 0, or -1 if scratch is too small, the tree is malformed or a write failed.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_write_prof(const fil_tree_t *t, fil_writer_t *w, void *scratch, size_t cap)
{
    fil_report_arena_t a;
    uint32_t *path;
    fil_report_arena_init(&a, scratch, cap);
    path = fil_report_carve(&a, (uint64_t)t->count * sizeof(uint32_t));
    if (!path && t->count > 0)
        return -1;
    for (uint32_t i = 0; i < t->count && !w->failed; i++) {
        uint64_t bytes = t->self_bytes(t->ctx, i);
        uint32_t depth;
        if (bytes == 0)
            continue;
        depth = collect_path(t, i, path);
        if (depth == 0)
            return -1;
        for (uint32_t d = depth; d-- > 0;) {
            write_frame(t, path[d], w);
            fil_write_char(w, d > 0 ? ';' : ' ');
        }
        fil_write_u64(w, bytes);
        fil_write_char(w, '\n');
    }
    return fil_writer_flush(w);
}
