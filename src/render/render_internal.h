/* SPDX-License-Identifier: MIT */
/*
 * render_internal.h - a validated view of a state, and drawing it.
 *
 * The same code draws reports in the supervisor (from the state file, after
 * the program ended) and inside the program during an out-of-memory or
 * crash dump (from its own mapping, with arena memory). It is SIGNAL CONTEXT
 * code: caller memory only, raw system calls only.
 */
#ifndef FIL_RENDER_INTERNAL_H
#define FIL_RENDER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fil/render.h"
#include "fil/report.h"
#include "fil/state.h"

struct fil_view;

/* The top lines of a view's trees, found once per report: the index page,
 * the launcher's stderr answer and summary.json ask for the same lines of
 * the same tree (10, 5 and 20 rows: each a prefix of the 20, the order
 * being total). One slot per tree kind (FIL_RENDER_*), for the trees
 * without the failed request (fil_render_tree, the index page's tables).
 * Only for a view that does not change while it is drawn (a file view of
 * an ended program, a frozen one). */
#define FIL_TOP_MEMO_ROWS FIL_SUMMARY_TOP
typedef struct fil_top_memo {
    int known[3];     /* 1 once the slot holds its tree's lines */
    int n[3];         /* rows, or -1 (the tree could not be read) */
    uint64_t total[3];/* the tree's total bytes */
    fil_top_line_t rows[3][FIL_TOP_MEMO_ROWS];
} fil_top_memo_t;

/* Address of element i of segment seg (FIL_SEG_* order), already checked to
 * be below the view's count for that segment. */
typedef const void *(*fil_view_at_fn)(const struct fil_view *v, int seg, uint64_t i);

typedef struct fil_view {
    const fil_state_header_t *h; /* validated header */
    fil_view_at_fn at;
    const char *base; /* file-backed views: the whole file */
    uint64_t size;
    uint64_t nodes, funcs, strings; /* usable counts */
    uint32_t fix_node;  /* journal repair: node whose bytes are fix_bytes */
    int64_t fix_bytes;
    int64_t total;      /* tracked bytes now, after repair */
    int torn;           /* 1 if the header's total disagreed with the nodes' sum */
    int peak_now;       /* 1 if bytes[] is the peak state (see view.c repair) */
    int snapshot_torn;  /* 1 if the peak snapshot was being copied */
    uint64_t corrupt;   /* records found inconsistent and shown as such */
    uint64_t clipped;   /* newest nodes left out: the dump arena was outgrown */
    const int64_t *fold;  /* fil_view_fold: per kept node, the bytes of the
                           * left-out nodes below it; NULL if none */
    const uint32_t *kept; /* ... and per left-out node (index - nodes), the
                           * kept ancestor its bytes went to */
    fil_state_header_t *frozen_h; /* fil_view_freeze: the header copy, else NULL */
    const int64_t *frozen_bytes;  /* ... and the copies of bytes[] and peak[] */
    const int64_t *frozen_peak;
    fil_view_at_fn inner_at;      /* a frozen view's at() before freezing */
    uint64_t stop_nodes;          /* fil_view_at_stop: nodes stop[] holds */
    int at_stop;                  /* 1: a view as of a stop signal (fil_view_at_stop) */
    fil_top_memo_t *memo;         /* the top lines found so far, or NULL: none kept */
} fil_view_t;

/* Simple bump allocator over one region. */
typedef struct fil_bump {
    char *base;
    size_t cap, used;
} fil_bump_t;
void *fil_bump(fil_bump_t *b, size_t n); /* 8-aligned, NULL if full */

/* Validate a state file mapped at base (size bytes). 0, or -1 with a
 * one-line reason in err. */
int fil_view_open_file(fil_view_t *v, const void *base, uint64_t size, char *err, size_t errlen);
/* Make file view v show the bytes held when stop signal sig reached the
 * program's handler (the state's stop[]), if the program recorded them for
 * that signal: 1, else 0 with v unchanged. Such a view is for what was held
 * then (its total, its FIL_RENDER_NOW/OOM trees); take the peak figures
 * from the view of the whole run. Context: any (SIGNAL-SAFE). */
int fil_view_at_stop(fil_view_t *v, int sig);
/* A view of the live state of this process (in-process dump). */
void fil_view_open_live(fil_view_t *v);
/* Memory fil_view_fold needs to keep `keep` of a view's `nodes` nodes. */
size_t fil_view_fold_size(uint64_t nodes, uint64_t keep);
/* Keep only nodes [0, keep) of v (the dump's arena cannot draw more): the
 * bytes of every node left out are added to its nearest kept ancestor
 * (a left-out root's to node 0), so the totals stay exact and the memory
 * shows under the deepest caller drawn; v->clipped counts the nodes left
 * out. 0, or -1 with v unchanged if mem is too small. SIGNAL-SAFE. */
int fil_view_fold(fil_view_t *v, uint64_t keep, fil_bump_t *mem);
/* Node i as v draws it: i, the kept ancestor of a node fil_view_fold left
 * out, or FIL_NONE for an index v does not know. */
uint32_t fil_view_kept_node(const fil_view_t *v, uint32_t i);
/* Memory fil_view_freeze needs for a view with `nodes` nodes. */
size_t fil_view_freeze_size(uint64_t nodes);
/* Make a file view of a state whose program is still running (or a live
 * view, under the tracker lock) read a copy of the header and of every
 * node's counters, taken so that the peak snapshot is consistent (retried
 * while the program was copying it), in mem. 0, or -1 if mem is too
 * small. */
int fil_view_freeze(fil_view_t *v, fil_bump_t *mem);

const fil_node_t *fil_view_node(const fil_view_t *v, uint32_t i);
int64_t fil_view_bytes(const fil_view_t *v, uint32_t i);
int64_t fil_view_peak(const fil_view_t *v, uint32_t i);
/* String at idx: 0 and (*s, *n), or -1 if it is out of bounds. */
int fil_view_string(const fil_view_t *v, uint64_t idx, const char **s, size_t *n);



/* Which bytes a report shows: the peak's; what was held when the program
 * ended, with the failed request and its native frames; what is held now
 * (a report on demand: current-memory.*). */
enum { FIL_RENDER_PEAK = 0, FIL_RENDER_OOM = 1, FIL_RENDER_NOW = 2 };

/* What index.html shows besides the peak (fil_render_files, peak kind). */
typedef struct fil_render_page {
    const char *death;          /* headline of the out-of-memory / death report, or NULL */
    const char *now;            /* headline of a report on demand, or NULL */
    const fil_run_info_t *info; /* the timeline and the moments it marks; may be NULL */
    uint64_t prof_bytes;        /* the .prof's byte budget; 0: FIL_PROF_MAX_BYTES */
    /* A second thread for the .prof (the launcher's exit render; NULL in a
     * dump, which draws on one thread): side_run starts fn(arg) and
     * returns a handle for side_wait, or NULL if it could not (the .prof is
     * then written in turn). Used only when mem holds
     * fil_render_side_scratch_size on top of fil_render_fast_scratch_size. */
    void *(*side_run)(void (*fn)(void *), void *arg);
    void (*side_wait)(void *handle);
} fil_render_page_t;

/* The extra memory of fil_render_files's .prof on a second thread: its
 * writer's own scratch and buffer. */
size_t fil_render_side_scratch_size(uint64_t nodes);

/* The .prof budget of a child process's own reports: a tree of many
 * workers stays small to write and to keep; what does not fit is summed
 * into remainder lines, so the totals stay exact. */
#define FIL_RENDER_CHILD_PROF_BYTES (FIL_PROF_MAX_BYTES / 8)

/* Memory fil_render_files needs for a view with `nodes` nodes. */
size_t fil_render_scratch_size(uint64_t nodes);
/* The same, plus room for the flat copies of the nodes' figures, labels
 * and per-node statistics that spare the writers the view's accessors
 * (68 bytes a node): what the launcher maps; the dump's arena is sized
 * with fil_render_scratch_size, and fil_render_files makes the copies only
 * when they fit on top of it. */
size_t fil_render_fast_scratch_size(uint64_t nodes);

/* Write <prefix>.prof, <prefix>.svg, <prefix>-reversed.svg (and index.html
 * for the peak) into dir. title is the SVG title. For FIL_RENDER_OOM the
 * failing request and native frames recorded in the header are drawn above
 * the request's line. page (may be NULL): for the peak kind, what index.html
 * shows first (the out-of-memory / death or on-demand sections) and the
 * timeline; for every kind, the .prof's budget.
 * 0, or -1 if any file failed. */
/* Remember that file `name` of the reports could not be written, errno e
 * (0: EIO), if it is the first (fil_render_take_failure). SIGNAL CONTEXT. */
void fil_render_note_failure(const char *name, int e);
int fil_render_files(const fil_view_t *v, int kind, const char *dir, const char *title,
                     const char *subtitle, const fil_render_page_t *page, fil_bump_t *mem);

/* Write summary.json into dir, with scratch from mem (what
 * fil_render_scratch_size counts for it; mem->used is restored). info may
 * be NULL (in-process dump). death: the view the out-of-memory section is
 * of (fil_view_at_stop), or NULL for v. Its "files" are those found in
 * dir. 0, or -1. */
int fil_render_summary(const fil_view_t *v, const fil_view_t *death, const fil_run_info_t *info,
                       const char *dir, const char *oom_source, fil_bump_t *mem);

/* A report tree over v of the given kind in mem (no source text; for
 * FIL_RENDER_OOM without the failed request, which was never held), or
 * NULL if mem is too small. */
fil_tree_t *fil_render_tree(const fil_view_t *v, int kind, fil_bump_t *mem);

/* Scratch the answer functions below need on a tree of `count` nodes. */
size_t fil_render_answer_scratch(uint32_t count);
/* The top lines of t (at most max) into rows, with scratch from mem
 * (restored); for a tree of fil_render_tree over a view with a memo, found
 * once per report. Their number, or -1. */
int fil_render_top_rows(const fil_tree_t *t, fil_top_line_t *rows, uint32_t max, fil_bump_t *mem);
/* JSON: the array of rows[0..n) (label, file, line, function, source, bytes,
 * with callees, the program's calling line), of `total` bytes. */
void fil_render_json_lines(fil_writer_t *w, const fil_tree_t *t, const fil_top_line_t *rows,
                           uint32_t n, fil_bump_t *mem);
/* JSON: the array of the `max` call stacks with the most bytes. */
void fil_render_json_stacks(fil_writer_t *w, const fil_tree_t *t, uint32_t max,
                            fil_bump_t *mem);
/* JSON: the Python stack of node leaf, innermost last (long ones keep
 * their ends), then `, "<elided_key>": N`. */
void fil_render_json_stack(fil_writer_t *w, const fil_tree_t *t, uint32_t leaf,
                           const char *elided_key, fil_bump_t *mem);
/* Fill a (see fil/render.h) from rows[0..n) of t. */
void fil_render_fill_answer(fil_answer_t *a, const fil_tree_t *t, const fil_top_line_t *rows,
                            uint32_t n);

/* index.html's part on the process tree (treehtml.c): the child processes
 * and the tree's view at its moments; nothing when in has neither.
 * SIGNAL CONTEXT safe (writes only). */
void fil_render_html_tree(fil_writer_t *w, const fil_run_info_t *in);

/* Bytes tracked at the peak (the peak report's total). */
uint64_t fil_view_peak_total(const fil_view_t *v);

/* Append the whole headline of the out-of-memory / crash / death report:
 * "Out of memory: malloc(N) failed ...", "Crash: SIGSEGV at address ...",
 * "Terminated (SIGTERM) with 12.0 MiB tracked", "Killed by the kernel's
 * OOM killer (SIGKILL) with ..." (info NULL: no signal known). */
void fil_render_death_headline(const fil_view_t *v, const fil_run_info_t *info, fil_writer_t *w);

/* Append the out-of-memory headline ("malloc(N) failed with 1.71 GiB tracked;
 * limit RLIMIT_AS 1.91 GiB" / "killed by SIGKILL ...") to w. */
void fil_render_oom_headline(const fil_view_t *v, int term_signal, fil_writer_t *w);

#endif
