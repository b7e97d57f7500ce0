/* SPDX-License-Identifier: MIT */
/*
 * draw.c - a state view as a report tree, and the report files. SIGNAL-SAFE FILE.
 *
 * The call-stack tree of the state is already the flamegraph's tree: a node
 * is a frame at a line under its caller's node. The adapter here exposes it
 * as a fil_tree_t (peak bytes or live bytes per node), adds, for an
 * out-of-memory report, the native frames of the failing allocation and the
 * failed request itself above the Python line that asked for it, and looks
 * up the source text of every node that any report shows.
 *
 * The failed request is drawn no wider than the memory that was live (a
 * 1 PiB request would otherwise squeeze everything else out of the picture);
 * its label gives its true size, and the .prof line carries the true size.
 * The index page's table of what was held leaves it out (it was not held).
 *
 * Files are written under a temporary name and renamed (fil_atomic_*). A
 * render can be interrupted: fil_render_interrupt() (async-signal-safe, for
 * the supervisor's SIGINT/SIGTERM handler) sets a flag that every writer
 * checks when it drains its buffer; the file being written then fails and
 * its temporary is removed, and the files not started yet are skipped.
 *
 * Allowed calls: the report module's writers, memcpy/memset, strlen.
 */
#include <errno.h>
#include <string.h>

#include "fil/state_writer.h"
#include "render_internal.h"

#define WBUF 65536
#define EXTRA_MAX (FIL_NATIVE_MAX + 1)
#define REV_MAX_NODES 20000u /* reversed frames made, biggest first, at most */
#define REV_MAX_DEPTH 200u   /* callers shown below an allocating line */
#define TOP_ROWS 10u         /* rows of the top lines tables */

enum { REQ_DRAWN = 0, REQ_TRUE = 1, REQ_NONE = 2 };

/* Set by fil_render_interrupt(); read by every writer of a render. */
static volatile int render_stop;

/* A function's strings as t_frame gives them (flatten()). */
typedef struct fstr {
    const char *file, *name;
    uint32_t file_len, name_len;
    uint32_t own_start;
} fstr_t;

typedef struct tree_ctx {
    const fil_view_t *v;
    int kind;
    uint32_t n;              /* state nodes */
    uint32_t nextra;         /* native frames + the failed request */
    uint32_t extra_parent;   /* state node the extras hang from, or FIL_NONE */
    uint64_t request_drawn;  /* bytes the failed request is drawn with */
    int request_mode;        /* REQ_DRAWN (svg), REQ_TRUE (prof), REQ_NONE (held only) */
    const fil_srcreq_t *src; /* per state node */
    const char *pool;
    char request_label[160];
    size_t request_len;
    const char *own_dir; /* directory all the program's files share, or NULL */
    size_t own_len;      /* its length, '/' included */
    /* Copies of the state nodes' parent, self bytes and key (flatten()),
     * or NULL: every writer reads them several times, and a view's
     * accessors check and locate each record. */
    const uint32_t *fpar;
    const uint64_t *fself, *fkey;
    const fstr_t *fstr; /* [nfstr]: functions 0..nfstr-1 (at most one per node), or NULL */
    uint32_t nfstr;
} tree_ctx_t;

/* Async-signal-safe: ask the render in progress to stop. */
void fil_render_interrupt(void)
{
    render_stop = 1;
}

/* 1 once fil_render_interrupt() was called. */
int fil_render_interrupted(void)
{
    return render_stop != 0;
}

/* The first file of the reports that could not be written, and why: per
 * thread, as the launcher renders children's reports side by side. */
static __thread int fail_errno __attribute__((tls_model("initial-exec")));
static __thread char fail_name[64] __attribute__((tls_model("initial-exec")));

/* See render_internal.h. SIGNAL CONTEXT: plain stores. */
void fil_render_note_failure(const char *name, int e)
{
    size_t n = strlen(name);

    if (fail_errno || render_stop)
        return; /* an interrupted render is no failure to write */
    n = n < sizeof fail_name - 1 ? n : sizeof fail_name - 1;
    memcpy(fail_name, name, n);
    fail_name[n] = '\0';
    fail_errno = e ? e : EIO;
}

/* See render.h. */
int fil_render_take_failure(char *name, size_t len)
{
    int e = fail_errno;

    if (e && len) {
        size_t n = strlen(fail_name) < len - 1 ? strlen(fail_name) : len - 1;
        memcpy(name, fail_name, n);
        name[n] = '\0';
    }
    fail_errno = 0;
    return e;
}

/* parent() of the adapter. SIGNAL CONTEXT: caller memory only. */
static uint32_t t_parent(void *c, uint32_t i)
{
    tree_ctx_t *t = c;
    if (i < t->n && t->fpar)
        return t->fpar[i];
    if (i >= t->n)
        return i == t->n ? t->extra_parent : i - 1;
    if (i == 0)
        return FIL_NONE;
    uint32_t p = fil_view_node(t->v, i)->parent;
    return p < i ? p : FIL_NONE;
}

/* self_bytes() of the adapter. SIGNAL CONTEXT: caller memory only. */
static uint64_t t_self(void *c, uint32_t i)
{
    tree_ctx_t *t = c;
    if (i < t->n && t->fself)
        return t->fself[i];
    if (i >= t->n) {
        if (i != t->n + t->nextra - 1 || t->request_mode == REQ_NONE)
            return 0;
        return t->request_mode == REQ_TRUE ? t->v->h->oom.request : t->request_drawn;
    }
    int64_t b = t->kind == FIL_RENDER_PEAK ? fil_view_peak(t->v, i) : fil_view_bytes(t->v, i);
    return b > 0 ? (uint64_t)b : 0;
}

/* key() of the adapter: (function, line), distinct values for the rest.
 * SIGNAL CONTEXT: caller memory only. */
static uint64_t t_key(void *c, uint32_t i)
{
    tree_ctx_t *t = c;
    if (i < t->n && t->fkey)
        return t->fkey[i];
    if (i >= t->n)
        return UINT64_MAX - 2 - (i - t->n);
    if (i == 0)
        return UINT64_MAX - 1;
    const fil_node_t *nd = fil_view_node(t->v, i);
    return (uint64_t)nd->func << 32 | nd->line;
}

/* frame() of an extra node (native frame or the request). SIGNAL CONTEXT. */
static void extra_frame(tree_ctx_t *t, uint32_t i, fil_frame_t *f)
{
    uint32_t j = i - t->n;
    if (j == t->nextra - 1) {
        f->raw = t->request_label;
        f->raw_len = t->request_len;
    } else { /* outermost native frame first; nextra - 1 is the capped count */
        const char *s = t->v->h->oom.native[t->nextra - 2 - j];
        f->raw = s;
        f->raw_len = strnlen(s, FIL_NATIVE_TEXT);
    }
}

/* frame() of the adapter. SIGNAL CONTEXT: caller memory only. */
static void t_frame(void *c, uint32_t i, fil_frame_t *f)
{
    tree_ctx_t *t = c;
    memset(f, 0, sizeof *f);
    if (i >= t->n) {
        extra_frame(t, i, f);
        return;
    }
    uint32_t func = t->fkey && i > 0 ? (uint32_t)(t->fkey[i] >> 32) : FIL_NONE;
    if (func < t->nfstr) { /* the function's strings, found once (flatten) */
        const fstr_t *fs = &t->fstr[func];
        f->file = fs->file, f->file_len = fs->file_len;
        f->func = fs->name, f->func_len = fs->name_len;
        f->line = (uint32_t)t->fkey[i];
        f->own_start = fs->own_start;
        if (t->src && t->src[i].text_len) {
            f->source = t->pool + t->src[i].text_off;
            f->source_len = t->src[i].text_len;
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
    if (t->own_len && f->file_len > t->own_len && memcmp(f->file, t->own_dir, t->own_len) == 0)
        f->own_start = t->own_len;
    if (t->src && t->src[i].text_len) {
        f->source = t->pool + t->src[i].text_off;
        f->source_len = t->src[i].text_len;
    }
}

/* Label of the failed request: "[failed request] malloc(N bytes = 1.00 PiB)". */
static void request_label(tree_ctx_t *t)
{
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

/* Shorten *len to the directory part (up to and including a '/') that
 * dir[0..*len) shares with s[0..n). */
static void common_dir(const char *dir, size_t *len, const char *s, size_t n)
{
    size_t k = 0, max = *len < n ? *len : n;
    while (k < max && dir[k] == s[k])
        k++;
    while (k > 0 && dir[k - 1] != '/')
        k--;
    *len = k;
}

/* The directory all the program's own files (absolute paths, not a
 * library's) share, so labels can leave it out; none if it is just "/". */
static void find_own_dir(tree_ctx_t *t)
{
    const fil_view_t *v = t->v;
    t->own_dir = NULL;
    t->own_len = 0;
    for (uint64_t i = 0; i < v->funcs; i++) {
        const fil_func_t *fn = v->at(v, FIL_SEG_FUNCS, i);
        const char *s;
        size_t n;
        if (fil_view_string(v, fn->file, &s, &n) != 0 || n == 0 || s[0] != '/' ||
            fil_path_is_library(s, n))
            continue;
        if (!t->own_dir) {
            t->own_dir = s;
            t->own_len = n;
        }
        common_dir(t->own_dir, &t->own_len, s, n);
        if (t->own_len <= 1)
            break;
    }
    if (t->own_len <= 1)
        t->own_len = 0;
}

/* Bytes flatten() takes for n state nodes. */
static size_t flat_size(uint64_t n)
{
    return n * (4 + 8 + 8 + sizeof(fstr_t) + 8 + 4 + 4) + sizeof(fil_tree_stats_t) + 64;
}

/* The strings of functions 0..t->nfstr-1 as t_frame reads them from the
 * view, with the program's directory (find_own_dir) found. SIGNAL
 * CONTEXT: caller memory only. */
static void flatten_funcs(tree_ctx_t *t, fstr_t *fs, uint32_t nf)
{
    const fil_view_t *v = t->v;
    for (uint32_t k = 0; k < nf; k++) {
        const fil_func_t *fn = v->at(v, FIL_SEG_FUNCS, k);
        const char *p;
        size_t len;
        if (fil_view_string(v, fn->file, &p, &len) != 0)
            p = "?", len = 1;
        fs[k].file = p, fs[k].file_len = (uint32_t)len;
        fs[k].own_start = t->own_len && len > t->own_len && memcmp(p, t->own_dir, t->own_len) == 0
                              ? (uint32_t)t->own_len
                              : 0;
        if (fil_view_string(v, fn->name, &p, &len) != 0)
            p = "?", len = 1;
        fs[k].name = p, fs[k].name_len = (uint32_t)len;
    }
    t->fstr = fs;
    t->nfstr = nf;
}

/* The figures of tree (its nodes' parents and bytes flat in par and
 * self) for every writer (fil_tree_t.stats), when it is the state's tree
 * alone (no failed request, whose bytes a writer may count otherwise).
 * SIGNAL CONTEXT: caller memory only. */
static void keep_stats(fil_tree_t *tree, uint32_t *par, uint64_t *self, fil_bump_t *mem)
{
    uint32_t n = tree->count;
    fil_tree_stats_t *s = fil_bump(mem, sizeof *s);
    uint64_t *incl = fil_bump(mem, (size_t)n * 8);
    uint32_t *depth = fil_bump(mem, (size_t)n * 4), *nstk = fil_bump(mem, (size_t)n * 4);
    uint64_t total;
    if (!s || !incl || !depth || !nstk ||
        fil_report_stats(tree, par, incl, self, depth, nstk, &total) != 0)
        return;
    *s = (fil_tree_stats_t){par, depth, nstk, incl, self, total};
    tree->stats = s;
}

/* Copy the parent, self bytes and key of every state node of t into mem
 * (read from then on), and the figures of the tree when it has no extra
 * node; nothing if mem is too small. SIGNAL CONTEXT: caller memory only. */
static void flatten(tree_ctx_t *t, fil_tree_t *tree, fil_bump_t *mem)
{
    uint32_t n = t->n;
    uint64_t *self = fil_bump(mem, (size_t)n * 8), *key = fil_bump(mem, (size_t)n * 8);
    uint32_t *par = fil_bump(mem, (size_t)n * 4);
    if (!self || !key || !par)
        return;
    for (uint32_t i = 0; i < n; i++) {
        par[i] = t_parent(t, i);
        self[i] = t_self(t, i);
        key[i] = t_key(t, i);
    }
    t->fpar = par, t->fself = self, t->fkey = key;
    uint32_t nf = t->v->funcs < n ? (uint32_t)t->v->funcs : n;
    fstr_t *fs = fil_bump(mem, (size_t)nf * sizeof *fs);
    if (fs)
        flatten_funcs(t, fs, nf);
    if (tree->count == n) /* par and self are what stats writes: the same values */
        keep_stats(tree, par, self, mem);
}

/* Set up the adapter. Context: any; no allocation. */
static void tree_init(tree_ctx_t *t, const fil_view_t *v, int kind, fil_tree_t *tree)
{
    memset(t, 0, sizeof *t);
    t->v = v;
    t->kind = kind;
    t->n = (uint32_t)v->nodes;
    const fil_oom_info_t *o = &v->h->oom;
    if (kind == FIL_RENDER_OOM && o->request) {
        uint32_t nat = o->native_count < FIL_NATIVE_MAX ? o->native_count : FIL_NATIVE_MAX;
        t->nextra = nat + 1;
        t->extra_parent = fil_view_kept_node(v, o->request_node);
        uint64_t live = v->total > 0 ? (uint64_t)v->total : 0;
        t->request_drawn = o->request < live || live == 0 ? o->request : live;
        request_label(t);
    }
    find_own_dir(t);
    tree->count = t->n + t->nextra;
    tree->ctx = t;
    tree->parent = t_parent;
    tree->self_bytes = t_self;
    tree->key = t_key;
    tree->frame = t_frame;
    tree->stats = NULL;
}

/* The reversed frames budget for a tree of n nodes: REV_MAX_NODES, or less
 * for a small tree (its reversed paths are fewer), so that the emergency
 * arena, which is sized with this, does not grow for nothing. */
static uint32_t rev_budget(uint64_t n)
{
    uint64_t b = n + 512;
    return b < REV_MAX_NODES ? (uint32_t)b : REV_MAX_NODES;
}

/* Scratch for the index page's tables and stack on `n` tree nodes. */
static size_t index_work(uint64_t n)
{
    return fil_top_lines_scratch_size((uint32_t)n) + n * 4 + sizeof(fil_tree_t) +
           sizeof(tree_ctx_t) + 64;
}

/* Memory fil_render_files needs: the fixed parts plus the biggest of the
 * writers' scratch (each an exact upper bound). Context: any. */
size_t fil_render_scratch_size(uint64_t nodes)
{
    uint64_t n = nodes + EXTRA_MAX + 1;
    size_t work = fil_prof_scratch_size((uint32_t)n);
    size_t s = fil_svg_scratch_size((uint32_t)n);
    if (s > work)
        work = s;
    s = fil_reverse_scratch_size((uint32_t)n, rev_budget(n)) +
        fil_svg_scratch_size(fil_reverse_max_out(rev_budget(n)));
    if (s > work)
        work = s;
    s = index_work(n);
    if (s > work)
        work = s;
    size_t files = n * sizeof(fil_srcreq_t) + n * FIL_SRC_MAX + fil_srclines_scratch_size(n) +
                   n * 8 + sizeof(fil_tree_t) + sizeof(tree_ctx_t) + WBUF + work + 256;
    size_t summary = WBUF + sizeof(fil_tree_t) + sizeof(tree_ctx_t) +
                     fil_render_answer_scratch((uint32_t)n) + 256;
    return files > summary ? files : summary;
}

/* See render_internal.h. Context: any. */
size_t fil_render_fast_scratch_size(uint64_t nodes)
{
    return fil_render_scratch_size(nodes) + flat_size(nodes);
}

/* See render_internal.h. Context: any. */
size_t fil_render_side_scratch_size(uint64_t nodes)
{
    return fil_prof_scratch_size((uint32_t)(nodes + EXTRA_MAX + 1)) + WBUF + 1024;
}

/* See render_internal.h. Context: any; caller memory only. */
fil_tree_t *fil_render_tree(const fil_view_t *v, int kind, fil_bump_t *mem)
{
    fil_tree_t *tree = fil_bump(mem, sizeof *tree);
    tree_ctx_t *t = fil_bump(mem, sizeof *t);
    if (!tree || !t)
        return NULL;
    tree_init(t, v, kind, tree);
    t->request_mode = REQ_NONE;
    return tree;
}

/* Whether state node i is shown by some report: it held memory at the
 * peak or at the end, or it is on the failing request's stack. */
static void mark_shown(const fil_view_t *v, uint64_t *shown, uint32_t n)
{
    const fil_oom_info_t *o = &v->h->oom;
    for (uint32_t i = 0; i < n; i++) {
        int64_t p = fil_view_peak(v, i), b = fil_view_bytes(v, i);
        shown[i] = (p > 0 ? (uint64_t)p : 0) + (b > 0 ? (uint64_t)b : 0);
    }
    for (uint32_t i = n; i-- > 1;) {
        uint32_t p = fil_view_node(v, i)->parent;
        if (p < i)
            shown[p] += shown[i];
    }
    for (uint32_t i = fil_view_kept_node(v, o->request_node), k = 0; i < n && k < n; k++) {
        uint32_t p = fil_view_node(v, i)->parent;
        shown[i] |= 1;
        if (i == 0 || p >= i)
            break;
        i = p;
    }
}

/* Look up the source text of every state node a report shows. */
static void find_sources(tree_ctx_t *t, fil_bump_t *mem)
{
    uint32_t n = t->n;
    uint64_t *shown = fil_bump(mem, (size_t)n * 8 + 8);
    fil_srcreq_t *req = fil_bump(mem, (size_t)n * sizeof *req);
    char *pool = fil_bump(mem, (size_t)n * FIL_SRC_MAX);
    size_t scap = fil_srclines_scratch_size(n);
    void *scratch = fil_bump(mem, scap);
    if (!shown || !req || !pool || !scratch)
        return;
    mark_shown(t->v, shown, n);
    for (uint32_t i = 0; i < n; i++) {
        fil_frame_t f;
        memset(&req[i], 0, sizeof req[i]);
        req[i].file = "";
        if (!shown[i])
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

/* Write dir/name through a temporary file; skipped once interrupted.
 * 0, or -1. */
static int write_file(const char *dir, const char *name, body_fn body, void *ctx, char *wbuf)
{
    fil_atomic_file_t f;
    if (render_stop)
        return -1;
    if (fil_atomic_open(&f, dir, name) != 0) {
        fil_render_note_failure(name, errno);
        return -1;
    }
    fil_writer_t w;
    fil_writer_init(&w, f.fd, wbuf, WBUF);
    w.stop = &render_stop;
    errno = 0;
    int r = body(ctx, &w);
    if (fil_writer_flush(&w) != 0 || r != 0 || render_stop) {
        int e = errno;
        fil_atomic_abort(&f);
        fil_render_note_failure(name, e);
        return -1;
    }
    if (fil_atomic_commit(&f) != 0) {
        fil_render_note_failure(name, errno);
        return -1;
    }
    return 0;
}

typedef struct job {
    const fil_tree_t *tree;
    tree_ctx_t *t;
    fil_svg_opts_t opts;
    void *work;
    size_t work_cap;
    const char *command; /* index: the command line, or NULL */
    const char *death;   /* index: headline of the out-of-memory / death report, or NULL */
    const char *now;     /* index: headline of a report on demand, or NULL */
    const fil_run_info_t *info; /* index: the timeline, or NULL */
    uint64_t prof_bytes;        /* the .prof's budget, 0: the default */
} job_t;

/* The .prof, with the failed request at its true size. 0, or -1. */
static int body_prof(void *c, fil_writer_t *w)
{
    job_t *j = c;
    uint64_t bytes = j->prof_bytes && j->prof_bytes < FIL_PROF_MAX_BYTES ? j->prof_bytes
                                                                          : FIL_PROF_MAX_BYTES;
    uint64_t lines = (uint64_t)FIL_PROF_MAX_LINES * bytes / FIL_PROF_MAX_BYTES; /* in proportion */
    fil_prof_opts_t o = {bytes, (uint32_t)(lines ? lines : 1), FIL_PROF_EDGE_MAX};
    j->t->request_mode = REQ_TRUE;
    int r = fil_write_prof_opts(j->tree, &o, w, j->work, j->work_cap);
    j->t->request_mode = REQ_DRAWN;
    return r;
}

/* Sum of the self bytes of every node of t. */
static uint64_t tree_total(const fil_tree_t *t)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        uint64_t b = t->self_bytes(t->ctx, i);
        sum = sum + b < sum ? UINT64_MAX : sum + b;
    }
    return sum;
}

/* The flame graph. 0, or -1. */
static int body_svg(void *c, fil_writer_t *w)
{
    job_t *j = c;
    return fil_write_svg(j->tree, &j->opts, w, j->work, j->work_cap);
}

/* The reversed flame graph: reverse within the budget, then draw. 0, or -1. */
static int body_reversed(void *c, fil_writer_t *w)
{
    job_t *j = c;
    fil_tree_t rev;
    uint32_t budget = rev_budget(j->tree->count);
    size_t rcap = fil_reverse_scratch_size(j->tree->count, budget);
    fil_svg_opts_t o = j->opts;
    o.reversed = 1;
    /* Frames too narrow to be drawn are not made, only summed. */
    uint64_t min = fil_svg_min_bytes(&o, tree_total(j->tree));
    if (rcap > j->work_cap ||
        fil_tree_reverse(j->tree, &rev, budget, REV_MAX_DEPTH, min, j->work, rcap) != 0)
        return -1;
    return fil_write_svg(&rev, &o, w, (char *)j->work + rcap, j->work_cap - rcap);
}

/* Name "<prefix><suffix>" into buf. */
static const char *name(char *buf, const char *prefix, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    memcpy(buf, prefix, a);
    memcpy(buf + a, suffix, b + 1);
    return buf;
}


/*
 * The top lines of t (at most max <= FIL_TOP_MEMO_ROWS) and its total: for
 * a tree of tree_init over a view with a memo, and without the failed
 * request (whose bytes would count), the lines found the first time they
 * were asked for in this report (a prefix of the FIL_TOP_MEMO_ROWS first:
 * fil_top_lines orders rows totally, and a row's figures do not depend on
 * the others); else computed. Their number, or -1. SIGNAL CONTEXT: caller
 * memory only.
 */
static int top_lines(const fil_tree_t *t, fil_top_line_t *rows, uint32_t max, uint64_t *total,
                     void *scratch, size_t cap)
{
    const tree_ctx_t *c = t->frame == t_frame ? t->ctx : NULL;
    fil_top_memo_t *m = c ? c->v->memo : NULL;
    int k = c ? c->kind : 0;
    if (!m || k < 0 || k > 2 || (c->nextra && c->request_mode != REQ_NONE) ||
        max > FIL_TOP_MEMO_ROWS) {
        int n = fil_top_lines(t, rows, max, scratch, cap);
        *total = tree_total(t);
        return n;
    }
    if (!m->known[k]) {
        m->n[k] = fil_top_lines(t, m->rows[k], FIL_TOP_MEMO_ROWS, scratch, cap);
        m->total[k] = tree_total(t);
        m->known[k] = 1;
    }
    int n = m->n[k] < (int)max ? m->n[k] : (int)max;
    for (int r = 0; r < n; r++)
        rows[r] = m->rows[k][r];
    *total = m->total[k];
    return n;
}

/* See render_internal.h. SIGNAL CONTEXT: caller memory only. */
int fil_render_top_rows(const fil_tree_t *t, fil_top_line_t *rows, uint32_t max, fil_bump_t *mem)
{
    size_t used = mem->used, cap = fil_top_lines_scratch_size(t->count);
    void *scratch = fil_bump(mem, cap);
    uint64_t total;
    int n = scratch ? top_lines(t, rows, max, &total, scratch, cap) : -1;
    mem->used = used;
    return n;
}

/* One top lines table of tree t. */
static void index_table(fil_writer_t *w, const char *heading, const char *intro,
                        const fil_tree_t *t, void *scratch, size_t cap)
{
    fil_top_line_t rows[TOP_ROWS];
    uint64_t total;
    int n = top_lines(t, rows, TOP_ROWS, &total, scratch, cap);
    fil_html_top_lines(w, heading, intro, t, rows, n > 0 ? (uint32_t)n : 0, total);
}

/* The header class of the death report: "oom", "crash" or "killed". */
static const char *death_kind(const fil_oom_info_t *o)
{
    if (o->dump_state == 0 || o->reason == FIL_REASON_NONE)
        return "killed";
    return o->reason == FIL_REASON_SIGNAL ? "crash" : "oom";
}

/* A second tree over the job's view (what was or is held, not the peak)
 * at the start of work, sharing the job's source text; *head gets the
 * bytes it takes. SIGNAL CONTEXT: caller memory only. */
static fil_tree_t *held_tree(job_t *j, int kind, char *work, size_t *head)
{
    tree_ctx_t *ot = (tree_ctx_t *)work;
    fil_tree_t *otree = (fil_tree_t *)(work + ((sizeof *ot + 7) & ~(size_t)7));
    *head = ((sizeof *ot + 7) & ~(size_t)7) + ((sizeof *otree + 7) & ~(size_t)7);
    tree_init(ot, j->t->v, kind, otree);
    ot->src = j->t->src;
    ot->pool = j->t->pool;
    ot->fpar = j->t->fpar; /* the same nodes: only the bytes differ */
    ot->fkey = j->t->fkey;
    ot->fstr = j->t->fstr;
    ot->nfstr = j->t->nfstr;
    ot->request_mode = REQ_NONE;
    return otree;
}

/* The sections about the death: the failing allocation and what was held. */
static void index_death(job_t *j, fil_writer_t *w, char *work, size_t cap)
{
    const fil_view_t *v = j->t->v;
    const fil_oom_info_t *o = &v->h->oom;
    size_t head;
    fil_tree_t *otree = held_tree(j, FIL_RENDER_OOM, work, &head);
    tree_ctx_t *ot = otree->ctx;
    const char *native[FIL_NATIVE_MAX];
    uint32_t nat = o->native_count < FIL_NATIVE_MAX ? o->native_count : FIL_NATIVE_MAX;
    uint32_t req = fil_view_kept_node(v, o->request_node);
    if (o->dump_state == 2 && o->reason != FIL_REASON_NONE) {
        for (uint32_t k = 0; k < nat; k++)
            native[k] = o->native[k];
        int crash = o->reason == FIL_REASON_SIGNAL;
        fil_html_stack(w, crash ? "Where it crashed" : "The allocation that failed",
                       crash ? "Python stack at the thread's last allocation (innermost last)"
                             : "Python stack (innermost last)",
                       otree, req < ot->n ? req : FIL_NONE, native, nat,
                       (uint32_t *)(work + head));
    }
    if (o->dump_state == 2 && v->h->oom_continue)
        return; /* the program went on: what it holds now is not what it held then */
    index_table(w, "What held the memory at that moment",
                ot->nextra ? "The lines that held the most memory when the program ended as the "
                             "headline says (the failed request itself is not counted: it was "
                             "never held)."
                           : "The lines that held the most memory when the program ended as the "
                             "headline says.",
                otree, work + head, cap - head);
}

/* A report on demand: the table of what is held now. */
static void index_now(job_t *j, fil_writer_t *w, char *work, size_t cap)
{
    size_t head;
    fil_tree_t *ntree = held_tree(j, FIL_RENDER_NOW, work, &head);
    index_table(w, "What is held now",
                "The lines that held the most memory when the report was asked for; the "
                "program was still running.",
                ntree, work + head, cap - head);
}

/* The moment the timeline marks, since the start: the out-of-memory or
 * crash the program recorded, its death, or the report on demand. */
static const char *timeline_mark(const job_t *j, uint64_t *at, char *buf, size_t len)
{
    const fil_run_info_t *in = j->info;
    const fil_oom_info_t *o = &j->t->v->h->oom;
    uint64_t when = 0;
    const char *what = NULL;
    if (in->now_ns) {
        when = in->now_ns, what = "report on demand";
    } else if (o->dump_state == 2 && o->reason != FIL_REASON_NONE) {
        when = o->time_ns, what = o->reason == FIL_REASON_SIGNAL ? "crash" : "out of memory";
    } else if (in->term_signal) {
        fil_render_death_words(in->term_signal, 0, buf, len);
        when = in->end_ns, what = strncmp(buf, "was ", 4) == 0 ? buf + 4 : buf;
    }
    *at = when > in->start_ns ? when - in->start_ns : 0;
    return what;
}

/* Memory over time, from the launcher's samples. */
static void index_timeline(const job_t *j, fil_writer_t *w)
{
    const fil_run_info_t *in = j->info;
    fil_timeline_marks_t m = {in->timeline_step_ns, in->sample_ns, 0, NULL};
    char words[96];
    if (!in->timeline)
        return;
    m.end_label = timeline_mark(j, &m.end_ns, words, sizeof words);
    fil_html_timeline(w, "Memory over time", in->timeline, in->timeline_len, &m);
}

/* Fill page for index.html: the title, headline, header class and notes
 * (into notes, len bytes) for a plain peak, a death or a report on demand. */
static void index_page(const job_t *j, fil_html_page_t *page, char *notes, size_t len)
{
    fil_writer_t nw;
    fil_html_page_t p = {"fil-profile: peak memory", j->opts.title, "peak", j->command, NULL};
    *page = p;
    if (!j->death && !j->now)
        return;
    fil_writer_init(&nw, -1, notes, len - 1);
    fil_write_str(&nw, j->opts.title);
    if (j->now) {
        fil_write_str(&nw, " so far. The program was still running: current-memory.svg holds "
                           "what it held when the report was asked for; the peak report "
                           "follows it.");
        page->title = "fil-profile: report on demand";
        page->headline = j->now;
        page->kind = "stopped";
    } else {
        fil_write_str(&nw, ". The report of that moment is out-of-memory.svg; the peak report "
                           "follows it.");
        page->title = "fil-profile: how the program ended";
        page->headline = j->death;
        page->kind = death_kind(&j->t->v->h->oom);
    }
    notes[nw.len] = 0;
    page->notes = notes;
}

/* index.html: the headline, the death's (or the moment's) sections if any,
 * the peak's top lines, memory over time, how to read the graphs, the
 * graphs. 0, or -1. */
static int body_index(void *c, fil_writer_t *w)
{
    job_t *j = c;
    fil_html_page_t page;
    char notes[512];
    index_page(j, &page, notes, sizeof notes);
    fil_html_begin(w, &page);
    if (j->death)
        index_death(j, w, j->work, j->work_cap);
    if (j->now)
        index_now(j, w, j->work, j->work_cap);
    index_table(w, j->death ? "Top lines at the peak" : j->now ? "Top lines at the peak so far"
                                                               : "Top lines",
                "The lines that allocated the most of the memory held at the peak of tracked "
                "memory; in bold, the program's own lines.",
                j->tree, j->work, j->work_cap);
    if (j->info)
        index_timeline(j, w);
    fil_render_html_tree(w, j->info);
    fil_html_reading(w);
    if (j->death)
        fil_html_graph(w, "Memory held at that moment", "out-of-memory.svg",
                       "What was held when the program ended, with the failed request (if any) "
                       "at its line; out-of-memory-reversed.svg has it by allocating line.");
    if (j->now)
        fil_html_graph(w, "Memory held now", "current-memory.svg",
                       "What was held when the report was asked for; current-memory-reversed.svg "
                       "has it by allocating line.");
    fil_html_graph(w, "Memory at the peak, by call stack", "peak-memory.svg",
                   "Top row: where the program started; below each box, what it called.");
    fil_html_graph(w, "Memory at the peak, by allocating line (reversed)",
                   "peak-memory-reversed.svg",
                   "Top row: the lines that allocated; below each box, its callers.");
    return fil_html_end(w, "peak-memory.prof");
}

/* The .prof written on a second thread (fil_render_page_t's side_run):
 * its own copy of the tree's adapter, with no source text (the .prof has
 * none, and the first thread reads it in meanwhile) and the failed
 * request at its true size, its own scratch and buffer. What failed is
 * handed back, since failures are noted per thread. Launcher only. */
typedef struct side_job {
    fil_tree_t tree;
    tree_ctx_t t;
    job_t j;
    const char *dir;
    char name[64];
    char *wbuf;
    int bad;
    int fail_errno;
    char fail_name[64];
} side_job_t;

static void side_prof(void *arg)
{
    side_job_t *s = arg;
    s->bad = write_file(s->dir, s->name, body_prof, &s->j, s->wbuf);
    s->fail_errno = fil_render_take_failure(s->fail_name, sizeof s->fail_name);
}

/* Start the .prof of job j on a second thread, if the page offers one and
 * mem has room for it; the handle, or NULL (then it is written in turn). */
static void *start_side(side_job_t *s, const job_t *j, const tree_ctx_t *t,
                        const fil_render_page_t *page, const char *dir, const char *file,
                        fil_bump_t *mem)
{
    size_t need = fil_render_side_scratch_size(t->v->nodes);
    if (!page || !page->side_run || !page->side_wait ||
        mem->cap - mem->used < need + fil_render_scratch_size(t->v->nodes))
        return NULL;
    size_t used = mem->used;
    s->wbuf = fil_bump(mem, WBUF);
    s->j = *j;
    s->j.work_cap = fil_prof_scratch_size(j->tree->count);
    s->j.work = fil_bump(mem, s->j.work_cap);
    if (!s->wbuf || !s->j.work) {
        mem->used = used;
        return NULL;
    }
    s->t = *t;
    s->t.src = NULL;
    s->tree = *j->tree;
    s->tree.ctx = &s->t;
    s->j.tree = &s->tree;
    s->j.t = &s->t;
    s->dir = dir;
    memcpy(s->name, file, strlen(file) + 1);
    s->bad = 0;
    s->fail_errno = 0;
    void *h = page->side_run(side_prof, s);
    if (!h)
        mem->used = used;
    return h;
}

/* See render_internal.h. Context: supervisor, or SIGNAL CONTEXT (dump)
 * with mem the emergency arena. */
int fil_render_files(const fil_view_t *v, int kind, const char *dir, const char *title,
                     const char *subtitle, const fil_render_page_t *page, fil_bump_t *mem)
{
    /* The flat copies only with room for them on top of what the writers
     * need (the launcher's memory; the dump's arena is sized without). */
    int room = mem->cap - mem->used >= fil_render_fast_scratch_size(v->nodes);
    fil_tree_t *tree = fil_bump(mem, sizeof *tree);
    tree_ctx_t *t = fil_bump(mem, sizeof *t);
    char *wbuf = fil_bump(mem, WBUF);
    side_job_t *side = room && page && page->side_run ? fil_bump(mem, sizeof *side) : NULL;
    if (!tree || !t || !wbuf)
        return -1;
    tree_init(t, v, kind, tree);
    if (room)
        flatten(t, tree, mem);
    job_t j = {tree, t, {title, subtitle, 1, 0, 0}, NULL, 0, subtitle, NULL, NULL, NULL, 0};
    if (page)
        j.death = page->death, j.now = page->now, j.info = page->info,
        j.prof_bytes = page->prof_bytes;
    const char *prefix = kind == FIL_RENDER_PEAK  ? "peak-memory"
                         : kind == FIL_RENDER_NOW ? "current-memory"
                                                  : "out-of-memory";
    char nm[64];
    /* The .prof needs no source text: on a second thread it is written
     * while the source lines are read and the graphs drawn. */
    void *h = side ? start_side(side, &j, t, page, dir, name(nm, prefix, ".prof"), mem) : NULL;
    find_sources(t, mem);
    j.work_cap = mem->cap - ((mem->used + 7) & ~(size_t)7);
    j.work = fil_bump(mem, j.work_cap);
    int bad = 0;
    if (!h)
        bad |= write_file(dir, name(nm, prefix, ".prof"), body_prof, &j, wbuf);
    bad |= write_file(dir, name(nm, prefix, ".svg"), body_svg, &j, wbuf);
    bad |= write_file(dir, name(nm, prefix, "-reversed.svg"), body_reversed, &j, wbuf);
    if (kind == FIL_RENDER_PEAK)
        bad |= write_file(dir, "index.html", body_index, &j, wbuf);
    if (h) {
        page->side_wait(h);
        bad |= side->bad;
        if (side->fail_errno)
            fil_render_note_failure(side->fail_name, side->fail_errno);
    }
    return bad ? -1 : 0;
}
