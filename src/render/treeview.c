/* SPDX-License-Identifier: MIT */
/*
 * treeview.c - the process tree's view: what each process held at one
 * moment, as one flame graph whose first level is the process.
 *
 * The launcher copies every process's per-node bytes at the moment (the
 * whole tree's sampled peak, or when a process ran out of memory or was
 * killed by the OOM killer); this file draws them. Each process's own call
 * tree comes from its state file (fil_render_tree over a validated view:
 * structure and labels), its bytes from the copy; the combined tree puts
 * process p's root frame ("pid 1234: python worker.py") at index base_p
 * and its node j at base_p + 1 + j, so a parent still comes before its
 * children. Writes <name>.svg and <name>.prof.
 * Context: supervisor.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fil/render.h"
#include "fil/sys.h"
#include "render_internal.h"

typedef struct proc_ctx {
    const fil_tree_proc_t *in;
    fil_tree_t *t;       /* its own tree (labels, parents) */
    uint32_t base;       /* index of its root frame in the combined tree */
    uint32_t count;      /* its nodes drawn */
    void *map;           /* its state, mapped read-only */
    size_t map_size;
    fil_view_t v;
    fil_bump_t mem;
} proc_ctx_t;

typedef struct combo {
    proc_ctx_t *p;
    uint32_t n;
    uint32_t count;
} combo_t;

/* The process of combined index i (binary search on base). */
static proc_ctx_t *owner(combo_t *c, uint32_t i) {
    uint32_t lo = 0, hi = c->n;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (c->p[mid].base <= i)
            lo = mid;
        else
            hi = mid;
    }
    return &c->p[lo];
}

static uint32_t c_parent(void *ctx, uint32_t i) {
    proc_ctx_t *p = owner(ctx, i);
    if (i == p->base)
        return FIL_NONE;
    uint32_t q = p->t->parent(p->t->ctx, i - p->base - 1);
    return q == FIL_NONE || q >= i - p->base - 1 ? p->base : p->base + 1 + q;
}

static uint64_t c_self(void *ctx, uint32_t i) {
    proc_ctx_t *p = owner(ctx, i);
    uint32_t j = i - p->base - 1;
    if (i == p->base || j >= p->in->nbytes)
        return 0;
    return p->in->bytes[j] > 0 ? (uint64_t)p->in->bytes[j] : 0;
}

static uint64_t c_key(void *ctx, uint32_t i) {
    combo_t *c = ctx;
    proc_ctx_t *p = owner(c, i);
    uint32_t k = (uint32_t)(p - c->p);
    if (i == p->base)
        return UINT64_MAX - 100000 - k;
    return p->t->key(p->t->ctx, i - p->base - 1) ^ ((uint64_t)(k + 1) << 52);
}

static void c_frame(void *ctx, uint32_t i, fil_frame_t *f) {
    proc_ctx_t *p = owner(ctx, i);
    if (i == p->base) {
        memset(f, 0, sizeof *f);
        f->raw = p->in->label;
        f->raw_len = strlen(p->in->label);
        return;
    }
    p->t->frame(p->t->ctx, i - p->base - 1, f);
}

/* Open process p's state and its tree. 0, or -1 (it is left out). */
static int open_proc(proc_ctx_t *p) {
    struct stat st;
    char err[128];
    if (fstat(p->in->state_fd, &st) != 0 || st.st_size <= 0)
        return -1;
    p->map_size = (size_t)st.st_size;
    p->map = mmap(NULL, p->map_size, PROT_READ, MAP_SHARED, p->in->state_fd, 0);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        return -1;
    }
    if (fil_view_open_file(&p->v, p->map, p->map_size, err, sizeof err) != 0)
        return -1;
    p->mem.cap = fil_page_round(fil_render_scratch_size(p->v.nodes));
    p->mem.base = fil_sys_pages(p->mem.cap);
    p->t = p->mem.base ? fil_render_tree(&p->v, FIL_RENDER_NOW, &p->mem) : NULL;
    if (!p->t)
        return -1;
    p->count = p->t->count < p->v.nodes ? p->t->count : (uint32_t)p->v.nodes;
    return 0;
}

/* Write t as dir/<name><ext> with the writer fn. 0, or -1. */
static int write_file(const char *dir, const char *name, const char *ext, const fil_tree_t *t,
                      const char *title, const char *sub) {
    char file[256];
    size_t n = strlen(name);
    if (n + strlen(ext) + 1 > sizeof file)
        return -1;
    memcpy(file, name, n);
    memcpy(file + n, ext, strlen(ext) + 1);
    int svg = ext[1] == 's';
    size_t cap = fil_page_round((svg ? fil_svg_scratch_size(t->count)
                                     : fil_prof_scratch_size(t->count)) + (1u << 16));
    char *scratch = fil_sys_pages(cap);
    fil_atomic_file_t f;
    int r = -1;
    if (!scratch || fil_atomic_open(&f, dir, file) != 0)
        goto out;
    fil_writer_t w;
    fil_writer_init(&w, f.fd, scratch, 1u << 16);
    fil_svg_opts_t o = {title, sub, 1, 0, 0};
    /* The tree's .prof holds every process: a quarter of a program's budget
     * keeps it quick to write; what does not fit is summed (totals exact). */
    fil_prof_opts_t po = {FIL_PROF_MAX_BYTES / 4, FIL_PROF_MAX_LINES / 4, FIL_PROF_EDGE_MAX};
    int ok = svg ? fil_write_svg(t, &o, &w, scratch + (1u << 16), cap - (1u << 16))
                 : fil_write_prof_opts(t, &po, &w, scratch + (1u << 16), cap - (1u << 16));
    if (ok != 0 || fil_writer_flush(&w) != 0) {
        fil_atomic_abort(&f);
        goto out;
    }
    r = fil_atomic_commit(&f);
out:
    fil_sys_unmap(scratch, cap);
    return r;
}

int fil_render_tree_view(const fil_tree_proc_t *procs, uint32_t n, const char *dir,
                         const char *name, const char *title, const char *subtitle) {
    size_t pcap = fil_page_round(sizeof(proc_ctx_t) * (n ? n : 1));
    proc_ctx_t *p = fil_sys_pages(pcap);
    combo_t c = {p, 0, 0};
    int r = -1;
    if (!p)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        proc_ctx_t *q = &p[c.n];
        memset(q, 0, sizeof *q);
        q->in = &procs[i];
        if (open_proc(q) != 0) {
            if (q->map)
                munmap(q->map, q->map_size);
            fil_sys_unmap(q->mem.base, q->mem.cap);
            continue;
        }
        q->base = c.count;
        c.count += 1 + q->count;
        c.n++;
    }
    fil_tree_t t = {c.count, &c, c_parent, c_self, c_key, c_frame, NULL};
    if (c.n > 0 && write_file(dir, name, ".svg", &t, title, subtitle) == 0 &&
        write_file(dir, name, ".prof", &t, title, subtitle) == 0)
        r = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        munmap(p[i].map, p[i].map_size);
        fil_sys_unmap(p[i].mem.base, p[i].mem.cap);
    }
    fil_sys_unmap(p, pcap);
    return r;
}
