/* SPDX-License-Identifier: MIT */
/*
 * draw.c - a state view as a report tree, and the report files. SIGNAL-SAFE FILE.
 *
 * The call-stack tree of the state is already the flamegraph's tree: a node
 * is a frame at a line under its caller's node. The adapter here exposes it
 * as a fil_tree_t (peak bytes or live bytes per node), adds, for an
 * out-of-memory report, the native frames of the failing allocation and the
 * failed request itself above the Python line that asked for it, and looks
 * up the source text of every node that holds memory.
 *
 * The failed request is drawn no wider than the memory that was live (a
 * 1 PiB request would otherwise squeeze everything else out of the picture);
 * its label gives its true size, and the .prof line carries the true size.
 *
 * Allowed calls: the report module's writers, memcpy/memset, strlen.
 */
#include <string.h>

#include "fil/state_writer.h"
#include "render_internal.h"

#define WBUF 65536

#define EXTRA_MAX (FIL_NATIVE_MAX + 1)

typedef struct tree_ctx {
    const fil_view_t *v;
    int kind;
    uint32_t n;              /* state nodes */
    uint32_t nextra;         /* native frames + the failed request */
    uint32_t extra_parent;   /* state node the extras hang from, or FIL_NONE */
    uint64_t request_drawn;  /* bytes the failed request is drawn with */
    int request_in_prof;     /* 1: write the true size (prof), 0: drawn size (svg) */
    const fil_srcreq_t *src; /* per state node */
    const char *pool;
    char request_label[160];
    size_t request_len;
} tree_ctx_t;

static uint32_t t_parent(void *c, uint32_t i) {
    tree_ctx_t *t = c;
    if (i >= t->n)
        return i == t->n ? t->extra_parent : i - 1;
    if (i == 0)
        return FIL_NONE;
    uint32_t p = fil_view_node(t->v, i)->parent;
    return p < i ? p : FIL_NONE;
}

static uint64_t t_self(void *c, uint32_t i) {
    tree_ctx_t *t = c;
    if (i >= t->n) {
        if (i != t->n + t->nextra - 1)
            return 0;
        return t->request_in_prof ? t->v->h->oom.request : t->request_drawn;
    }
    int64_t b = t->kind == FIL_RENDER_PEAK ? fil_view_peak(t->v, i) : fil_view_bytes(t->v, i);
    return b > 0 ? (uint64_t)b : 0;
}

static uint64_t t_key(void *c, uint32_t i) {
    tree_ctx_t *t = c;
    if (i >= t->n)
        return UINT64_MAX - 2 - (i - t->n);
    if (i == 0)
        return UINT64_MAX - 1;
    const fil_node_t *nd = fil_view_node(t->v, i);
    return (uint64_t)nd->func << 32 | nd->line;
}

static void t_frame(void *c, uint32_t i, fil_frame_t *f) {
    tree_ctx_t *t = c;
    memset(f, 0, sizeof *f);
    if (i >= t->n) {
        uint32_t j = i - t->n;
        if (j == t->nextra - 1) {
            f->raw = t->request_label;
            f->raw_len = t->request_len;
        } else { /* outermost native frame first; nextra - 1 is the capped count */
            const char *s = t->v->h->oom.native[t->nextra - 2 - j];
            f->raw = s;
            f->raw_len = strnlen(s, FIL_NATIVE_TEXT);
        }
        return;
    }
    const fil_node_t *nd = fil_view_node(t->v, i);
    const fil_func_t *fn = nd->func < t->v->funcs ? t->v->at(t->v, FIL_SEG_FUNCS, nd->func) : NULL;
    if (i == 0 || !fn) {
        f->raw = i == 0 ? "[No Python stack]" : "[unreadable frame]";
        f->raw_len = strlen(f->raw);
        return;
    }
    if (fil_view_string(t->v, fn->file, &f->file, &f->file_len) != 0)
        f->file = "?", f->file_len = 1;
    if (fil_view_string(t->v, fn->name, &f->func, &f->func_len) != 0)
        f->func = "?", f->func_len = 1;
    f->line = nd->line;
    if (t->src && t->src[i].text_len) {
        f->source = t->pool + t->src[i].text_off;
        f->source_len = t->src[i].text_len;
    }
}

/* Label of the failed request: "[failed request] malloc(N bytes, 1.00 PiB)". */
static void request_label(tree_ctx_t *t) {
    fil_writer_t w;
    fil_writer_init(&w, -1, t->request_label, sizeof t->request_label);
    fil_write_str(&w, "[failed request] ");
    fil_write_str(&w, t->v->h->oom.function[0] ? t->v->h->oom.function : "allocation");
    fil_write_str(&w, "(");
    fil_write_u64(&w, t->v->h->oom.request);
    fil_write_str(&w, " bytes = ");
    fil_write_size(&w, t->v->h->oom.request);
    fil_write_str(&w, ")");
    if (t->request_drawn < t->v->h->oom.request)
        fil_write_str(&w, ", drawn at the size of live memory");
    t->request_len = w.len;
}

/* Set up the adapter. Context: any; no allocation. */
static void tree_init(tree_ctx_t *t, const fil_view_t *v, int kind, fil_tree_t *tree) {
    memset(t, 0, sizeof *t);
    t->v = v;
    t->kind = kind;
    t->n = (uint32_t)v->nodes;
    const fil_oom_info_t *o = &v->h->oom;
    if (kind == FIL_RENDER_OOM && o->request) {
        uint32_t nat = o->native_count < FIL_NATIVE_MAX ? o->native_count : FIL_NATIVE_MAX;
        t->nextra = nat + 1;
        t->extra_parent = o->request_node < t->n ? o->request_node : FIL_NONE;
        uint64_t live = v->total > 0 ? (uint64_t)v->total : 0;
        t->request_drawn = o->request < live || live == 0 ? o->request : live;
        request_label(t);
    }
    tree->count = t->n + t->nextra;
    tree->ctx = t;
    tree->parent = t_parent;
    tree->self_bytes = t_self;
    tree->key = t_key;
    tree->frame = t_frame;
}

/* Room for the reversed tree: merged leaf-first paths are usually fewer
 * than the forward nodes; beyond this the reversed view says it was cut. */
static uint32_t reversed_room(uint64_t n) {
    uint64_t rev = 2 * n + 1024;
    return rev > (UINT64_C(1) << 24) ? (1u << 24) : (uint32_t)rev;
}

size_t fil_render_scratch_size(uint64_t nodes) {
    uint64_t n = nodes + EXTRA_MAX + 1;
    uint32_t rev = reversed_room(n);
    size_t work = fil_prof_scratch_size((uint32_t)n);
    size_t s = fil_svg_scratch_size((uint32_t)n);
    if (s > work)
        work = s;
    s = fil_reverse_scratch_size((uint32_t)n, (uint32_t)rev) + fil_svg_scratch_size((uint32_t)rev + 1);
    if (s > work)
        work = s;
    return n * sizeof(fil_srcreq_t) + n * FIL_SRC_MAX + fil_srclines_scratch_size(n) + n * 8 +
           sizeof(fil_tree_t) + sizeof(tree_ctx_t) + WBUF + work + 256;
}

/* Look up the source text of every state node that holds memory. */
static void find_sources(tree_ctx_t *t, const fil_tree_t *tree, fil_bump_t *mem) {
    uint32_t n = t->n;
    uint64_t *incl = fil_bump(mem, (size_t)tree->count * 8);
    fil_srcreq_t *req = fil_bump(mem, (size_t)n * sizeof *req);
    char *pool = fil_bump(mem, (size_t)n * FIL_SRC_MAX);
    size_t scap = fil_srclines_scratch_size(n);
    void *scratch = fil_bump(mem, scap);
    if (!incl || !req || !pool || !scratch)
        return;
    for (uint32_t i = 0; i < tree->count; i++)
        incl[i] = tree->self_bytes(tree->ctx, i);
    for (uint32_t i = tree->count; i-- > 1;) {
        uint32_t p = tree->parent(tree->ctx, i);
        if (p != FIL_NONE)
            incl[p] += incl[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        fil_frame_t f;
        memset(&req[i], 0, sizeof req[i]);
        req[i].file = "";
        if (!incl[i])
            continue;
        t_frame(t, i, &f);
        if (!f.raw) {
            req[i].file = f.file;
            req[i].file_len = f.file_len;
            req[i].line = f.line;
        }
    }
    if (fil_srclines_fill(req, n, pool, (size_t)n * FIL_SRC_MAX, scratch, scap) == 0) {
        t->src = req;
        t->pool = pool;
    }
}

typedef int (*body_fn)(void *ctx, fil_writer_t *w);

/* Write dir/name through a temporary file. 0, or -1. */
static int write_file(const char *dir, const char *name, body_fn body, void *ctx, char *wbuf) {
    fil_atomic_file_t f;
    if (fil_atomic_open(&f, dir, name) != 0)
        return -1;
    fil_writer_t w;
    fil_writer_init(&w, f.fd, wbuf, WBUF);
    int r = body(ctx, &w);
    if (fil_writer_flush(&w) != 0 || r != 0) {
        fil_atomic_abort(&f);
        return -1;
    }
    return fil_atomic_commit(&f);
}

typedef struct job {
    const fil_tree_t *tree;
    tree_ctx_t *t;
    fil_svg_opts_t opts;
    void *work;
    size_t work_cap;
    fil_html_info_t html;
} job_t;

static int body_prof(void *c, fil_writer_t *w) {
    job_t *j = c;
    j->t->request_in_prof = 1;
    int r = fil_write_prof(j->tree, w, j->work, j->work_cap);
    j->t->request_in_prof = 0;
    return r;
}

static int body_svg(void *c, fil_writer_t *w) {
    job_t *j = c;
    return fil_write_svg(j->tree, &j->opts, w, j->work, j->work_cap);
}

static int body_reversed(void *c, fil_writer_t *w) {
    job_t *j = c;
    fil_tree_t rev;
    uint32_t max = reversed_room(j->tree->count);
    size_t rcap = fil_reverse_scratch_size(j->tree->count, max);
    if (rcap > j->work_cap || fil_tree_reverse(j->tree, &rev, max, j->work, rcap) != 0)
        return -1;
    fil_svg_opts_t o = j->opts;
    o.inverted = 1;
    return fil_write_svg(&rev, &o, w, (char *)j->work + rcap, j->work_cap - rcap);
}

static int body_html(void *c, fil_writer_t *w) {
    job_t *j = c;
    return fil_write_index_html(&j->html, w);
}

/* Name "<prefix><suffix>" into buf. */
static const char *name(char *buf, const char *prefix, const char *suffix) {
    size_t a = strlen(prefix), b = strlen(suffix);
    memcpy(buf, prefix, a);
    memcpy(buf + a, suffix, b + 1);
    return buf;
}

int fil_render_files(const fil_view_t *v, int kind, const char *dir, const char *title,
                     const char *subtitle, const char *oom_note, fil_bump_t *mem) {
    fil_tree_t *tree = fil_bump(mem, sizeof *tree);
    tree_ctx_t *t = fil_bump(mem, sizeof *t);
    char *wbuf = fil_bump(mem, WBUF);
    if (!tree || !t || !wbuf)
        return -1;
    tree_init(t, v, kind, tree);
    find_sources(t, tree, mem);
    job_t j = {tree, t, {title, subtitle, 0, 0}, NULL, 0, {0}};
    j.work_cap = mem->cap - ((mem->used + 7) & ~(size_t)7);
    j.work = fil_bump(mem, j.work_cap);
    const char *prefix = kind == FIL_RENDER_PEAK ? "peak-memory" : "out-of-memory";
    char nm[64];
    int bad = 0;
    bad |= write_file(dir, name(nm, prefix, ".prof"), body_prof, &j, wbuf);
    bad |= write_file(dir, name(nm, prefix, ".svg"), body_svg, &j, wbuf);
    bad |= write_file(dir, name(nm, prefix, "-reversed.svg"), body_reversed, &j, wbuf);
    if (kind == FIL_RENDER_PEAK) {
        j.html = (fil_html_info_t){"fil-profile: peak memory", subtitle, title, "peak-memory.svg",
                                   "peak-memory-reversed.svg", "peak-memory.prof", NULL,
                                   oom_note, oom_note ? "out-of-memory.svg" : NULL};
        bad |= write_file(dir, "index.html", body_html, &j, wbuf);
    }
    return bad ? -1 : 0;
}
