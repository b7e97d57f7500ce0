/* SPDX-License-Identifier: MIT */
/*
 * answer.c - the answer for scripts: the top lines, call stacks and the
 * failing allocation's Python stack as JSON for summary.json, and the top
 * lines the launcher prints on stderr. SIGNAL-SAFE FILE.
 *
 * The lines are those of the index page's table (fil_top_lines, src/report:
 * frames merged by key, the bytes a line allocated itself and with what it
 * called, each byte once); a library's line also names the program's own
 * line that called it with the most of its bytes, and how many others did
 * (fil_top_lines), as the table does. Their
 * source text is looked up for those rows only (at most 2 * 20 requests),
 * so this costs little after a report. A call stack is one node of the
 * state's tree: the stacks listed are the nodes with the most bytes
 * allocated with exactly that stack. Frames are listed outermost first,
 * innermost last; a stack deeper than twice the edge keeps its first and
 * last frames and says how many were left out between them, so the file
 * stays small whatever the recursion. Only Python frames are listed: the
 * "[No Python stack]" node has no frames.
 *
 * Allowed calls: the report module's writers, fil_top_lines,
 * fil_srclines_fill, memset, strlen.
 */
#include <string.h>

#include "render_internal.h"

#define STACK_EDGE 32   /* frames kept at each end of a long call stack */
#define PYSTACK_EDGE 64 /* ... of the failing allocation's Python stack */
#define SRC_REQS (2 * FIL_SUMMARY_TOP)

/* Scratch for the functions of this file. Context: any. */
size_t fil_render_answer_scratch(uint32_t count)
{
    size_t rows = fil_top_lines_scratch_size(count);
    size_t path = (size_t)count * 4 + 8;
    size_t src =
        SRC_REQS * (sizeof(fil_srcreq_t) + FIL_SRC_MAX) + fil_srclines_scratch_size(SRC_REQS) + 64;
    return (rows > path ? rows : path) + src + 64;
}

/* A JSON string or null. SIGNAL CONTEXT. */
static void json_str_or_null(fil_writer_t *w, const char *s, size_t n)
{
    if (s)
        fil_write_json_str(w, s, n);
    else
        fil_write_str(w, "null");
}

/* "file": ..., "line": ..., "function": ... of a Python frame, nulls for a
 * raw one. SIGNAL CONTEXT. */
static void json_where(fil_writer_t *w, const fil_frame_t *f)
{
    fil_write_str(w, "\"file\": ");
    json_str_or_null(w, f->raw ? NULL : f->file, f->file_len);
    fil_write_str(w, ", \"line\": ");
    if (f->raw)
        fil_write_str(w, "null");
    else
        fil_write_u64(w, f->line);
    fil_write_str(w, ", \"function\": ");
    json_str_or_null(w, f->raw ? NULL : f->func, f->func_len);
}

/* "label": ..., where, "source": ... of node i (src: its looked-up text).
 * SIGNAL CONTEXT. */
static void json_line_of(fil_writer_t *w, const fil_tree_t *t, uint32_t i, const fil_srcreq_t *src,
                         const char *pool)
{
    fil_frame_t f = {0};
    char label[512];
    t->frame(t->ctx, i, &f);
    fil_report_short_text(&f, label, sizeof label);
    fil_write_str(w, "\"label\": ");
    fil_write_json_str(w, label, strlen(label));
    fil_write_str(w, ", ");
    json_where(w, &f);
    fil_write_str(w, ", \"source\": ");
    if (src && src->text_len)
        fil_write_json_str(w, pool + src->text_off, src->text_len);
    else
        fil_write_str(w, "null");
}

/* Look up the source text of nodes[0..n) (FIL_NONE entries skipped) into
 * req[] and the returned pool, or NULL without memory. SIGNAL CONTEXT. */
static const char *find_sources(const fil_tree_t *t, const uint32_t *nodes, uint32_t n,
                                fil_srcreq_t *req, fil_bump_t *mem)
{
    char *pool = fil_bump(mem, (size_t)n * FIL_SRC_MAX + 8);
    size_t cap = fil_srclines_scratch_size(n);
    void *scratch = fil_bump(mem, cap);
    if (!pool || !scratch)
        return NULL;
    for (uint32_t k = 0; k < n; k++) {
        fil_frame_t f = {0};
        memset(&req[k], 0, sizeof req[k]);
        req[k].file = "";
        if (nodes[k] == FIL_NONE)
            continue;
        t->frame(t->ctx, nodes[k], &f);
        if (!f.raw)
            req[k].file = f.file, req[k].file_len = f.file_len, req[k].line = f.line;
    }
    if (fil_srclines_fill(req, n, pool, (size_t)n * FIL_SRC_MAX, scratch, cap) != 0)
        return NULL;
    return pool;
}

/* One row of "top_lines". SIGNAL CONTEXT. */
static void json_row(fil_writer_t *w, const fil_tree_t *t, const fil_top_line_t *r, uint32_t caller,
                     const fil_srcreq_t *src, const char *pool)
{
    fil_frame_t f = {0};
    t->frame(t->ctx, r->node, &f);
    fil_write_char(w, '{');
    json_line_of(w, t, r->node, pool ? &src[0] : NULL, pool);
    fil_write_str(w, ", \"bytes\": ");
    fil_write_u64(w, r->self);
    fil_write_str(w, ", \"bytes_with_callees\": ");
    fil_write_u64(w, r->total);
    fil_write_str(w, ", \"own\": ");
    fil_write_str(w, !f.raw && !fil_path_is_library(f.file, f.file_len) ? "true" : "false");
    fil_write_str(w, ", \"called_from\": ");
    if (caller == FIL_NONE || (!f.raw && !fil_path_is_library(f.file, f.file_len))) {
        fil_write_str(w, "null}");
        return;
    }
    fil_write_char(w, '{');
    json_line_of(w, t, caller, pool ? &src[1] : NULL, pool);
    fil_write_str(w, ", \"bytes\": ");
    fil_write_u64(w, r->caller_bytes);
    fil_write_str(w, ", \"other_lines\": ");
    fil_write_u64(w, r->other_callers);
    fil_write_str(w, "}}");
}

/* See render_internal.h. SIGNAL CONTEXT: caller memory only. */
void fil_render_json_lines(fil_writer_t *w, const fil_tree_t *t, const fil_top_line_t *rows,
                           uint32_t n, fil_bump_t *mem)
{
    size_t used = mem->used;
    uint32_t nodes[SRC_REQS];
    fil_srcreq_t *req = fil_bump(mem, SRC_REQS * sizeof *req);
    const char *pool = NULL;
    n = n < FIL_SUMMARY_TOP ? n : FIL_SUMMARY_TOP;
    for (uint32_t k = 0; k < n; k++) {
        nodes[2 * k] = rows[k].node;
        nodes[2 * k + 1] = rows[k].caller;
    }
    if (req)
        pool = find_sources(t, nodes, 2 * n, req, mem);
    fil_write_char(w, '[');
    for (uint32_t k = 0; k < n && !w->failed; k++) {
        fil_write_str(w, k ? ",\n    " : "\n    ");
        json_row(w, t, &rows[k], nodes[2 * k + 1], req ? req + 2 * k : NULL, pool);
    }
    fil_write_str(w, n ? "\n  ]" : "]");
    mem->used = used;
}

/* The Python frames from leaf up to the outermost into path (innermost
 * first); their number. SIGNAL CONTEXT. */
static uint32_t python_path(const fil_tree_t *t, uint32_t leaf, uint32_t *path)
{
    uint32_t depth = 0;
    for (uint32_t i = leaf, k = 0; i != FIL_NONE && i < t->count && k < t->count; k++) {
        fil_frame_t f = {0};
        t->frame(t->ctx, i, &f);
        if (!f.raw)
            path[depth++] = i;
        i = t->parent(t->ctx, i);
    }
    return depth;
}

/* The frames of path[0..depth) (innermost first) as a JSON array,
 * outermost first, keeping `edge` at each end; returns how many were left
 * out. SIGNAL CONTEXT. */
static uint32_t json_frames(fil_writer_t *w, const fil_tree_t *t, const uint32_t *path,
                            uint32_t depth, uint32_t edge)
{
    uint32_t elided = depth > 2 * edge ? depth - 2 * edge : 0;
    fil_write_char(w, '[');
    for (uint32_t d = depth, k = 0; d-- > 0 && !w->failed; k++) {
        fil_frame_t f = {0};
        if (elided && d == depth - edge - 1)
            d = edge - 1; /* jump over the middle */
        t->frame(t->ctx, path[d], &f);
        fil_write_str(w, k ? ", {" : "{");
        json_where(w, &f);
        fil_write_char(w, '}');
    }
    fil_write_char(w, ']');
    return elided;
}

/* See render_internal.h. SIGNAL CONTEXT: caller memory only. */
void fil_render_json_stack(fil_writer_t *w, const fil_tree_t *t, uint32_t leaf,
                           const char *elided_key, fil_bump_t *mem)
{
    size_t used = mem->used;
    uint32_t *path = fil_bump(mem, (size_t)t->count * 4 + 8), elided = 0;
    if (leaf == FIL_NONE || leaf >= t->count || !path)
        fil_write_str(w, "null");
    else
        elided = json_frames(w, t, path, python_path(t, leaf, path), PYSTACK_EDGE);
    fil_write_str(w, ", \"");
    fil_write_str(w, elided_key);
    fil_write_str(w, "\": ");
    fil_write_u64(w, elided);
    mem->used = used;
}

/* The max (<= FIL_SUMMARY_TOP) nodes with the most self bytes into best[],
 * biggest first (ties: lower node); their number. SIGNAL CONTEXT. */
static uint32_t biggest_stacks(const fil_tree_t *t, uint32_t max, uint32_t *best, uint64_t *bytes)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        uint64_t b = t->self_bytes(t->ctx, i);
        uint32_t k;
        if (b == 0 || (n == max && b <= bytes[max - 1]))
            continue;
        k = n < max ? n++ : max - 1;
        while (k > 0 && b > bytes[k - 1]) {
            best[k] = best[k - 1], bytes[k] = bytes[k - 1];
            k--;
        }
        best[k] = i, bytes[k] = b;
    }
    return n;
}

/* See render_internal.h. SIGNAL CONTEXT: caller memory only. */
void fil_render_json_stacks(fil_writer_t *w, const fil_tree_t *t, uint32_t max, fil_bump_t *mem)
{
    size_t used = mem->used;
    uint32_t best[FIL_SUMMARY_TOP], *path = fil_bump(mem, (size_t)t->count * 4 + 8), n = 0;
    uint64_t bytes[FIL_SUMMARY_TOP];
    if (path)
        n = biggest_stacks(t, max < FIL_SUMMARY_TOP ? max : FIL_SUMMARY_TOP, best, bytes);
    fil_write_char(w, '[');
    for (uint32_t k = 0; k < n && !w->failed; k++) {
        uint32_t depth = python_path(t, best[k], path);
        fil_write_str(w, k ? ",\n    {\"bytes\": " : "\n    {\"bytes\": ");
        fil_write_u64(w, bytes[k]);
        fil_write_str(w, ", \"depth\": ");
        fil_write_u64(w, depth);
        fil_write_str(w, ", \"frames\": ");
        uint32_t elided = json_frames(w, t, path, depth, STACK_EDGE);
        fil_write_str(w, ", \"frames_elided\": ");
        fil_write_u64(w, elided);
        fil_write_char(w, '}');
    }
    fil_write_str(w, n ? "\n  ]" : "]");
    mem->used = used;
}

/* See render_internal.h. SIGNAL CONTEXT: caller memory only. */
void fil_render_fill_answer(fil_answer_t *a, const fil_tree_t *t, const fil_top_line_t *rows,
                            uint32_t n)
{
    a->n = 0;
    for (uint32_t k = 0; k < n && k < FIL_ANSWER_LINES; k++) {
        fil_answer_line_t *l = &a->lines[a->n++];
        fil_frame_t f = {0};
        uint32_t caller = FIL_NONE;
        t->frame(t->ctx, rows[k].node, &f);
        l->bytes = rows[k].self;
        if (fil_report_short_text(&f, l->where, sizeof l->where))
            caller = rows[k].caller;
        l->caller[0] = 0;
        if (caller != FIL_NONE && caller < t->count) {
            fil_frame_t c = {0};
            t->frame(t->ctx, caller, &c);
            fil_report_short_text(&c, l->caller, sizeof l->caller);
            size_t used = strlen(l->caller);
            fil_writer_t cw;
            fil_writer_init(&cw, -1, l->caller + used, sizeof l->caller - 1 - used);
            fil_write_other_callers(&cw, &rows[k]);
            l->caller[used + cw.len] = 0;
        }
    }
}
