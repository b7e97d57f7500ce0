/* SPDX-License-Identifier: MIT */
/*
 * fil/report.h - report writers: buffered fd writer, collapsed stacks (.prof),
 * SVG flamegraphs (normal and reversed), index.html, source-line lookup, and
 * files created under a temporary name then renamed into place.
 *
 * Every function here is usable in SIGNAL CONTEXT: none allocates (all memory
 * is caller-provided), none uses stdio, locks or qsort. The only system calls
 * are open/read/write/close/rename/unlink/mkdir/getpid. This is checked by
 * scripts/check-signal-safety.
 *
 * A report is drawn from a call tree described by fil_tree_t: nodes
 * 0..count-1, each node's parent has a smaller index (or is FIL_NONE for a
 * top-level frame), each node has "self" bytes (memory allocated with exactly
 * that stack) and a frame label. Accessors are callbacks because the
 * profiler's own arrays are segmented.
 */
#ifndef FIL_REPORT_H
#define FIL_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fil/common.h"

/* ---- buffered writer ---------------------------------------------------- */

/* Writes to fd through a caller-owned buffer. Errors are sticky: after a
 * failed write(2) every later call is a no-op and fil_writer_flush returns -1. */
typedef struct fil_writer {
    int fd;       /* destination, owned by the caller */
    char *buf;    /* caller-owned buffer */
    size_t cap;   /* size of buf (>= 64) */
    size_t len;   /* bytes pending in buf */
    int failed;   /* a write(2) failed (errno lost), or the stop flag was seen */
    uint64_t written; /* bytes handed to write(2) so far */
    /* If non-NULL and *stop is set when the buffer is drained, the writer
     * fails instead of writing (how a long render is interrupted). */
    const volatile int *stop;
} fil_writer_t;

/* stop starts NULL; set w->stop after init to make the writer interruptible. */
void fil_writer_init(fil_writer_t *w, int fd, char *buf, size_t cap);
void fil_write_mem(fil_writer_t *w, const void *p, size_t n);
void fil_write_str(fil_writer_t *w, const char *s);
void fil_write_char(fil_writer_t *w, char c);
void fil_write_u64(fil_writer_t *w, uint64_t v);
void fil_write_i64(fil_writer_t *w, int64_t v);
void fil_write_hex(fil_writer_t *w, uint64_t v); /* "0x1f" */
/* v / 2^20 (or 2^30 for _gib) with one decimal, e.g. "100.0". */
void fil_write_mib(fil_writer_t *w, uint64_t bytes);
void fil_write_gib(fil_writer_t *w, uint64_t bytes);
/* Human size: "512 B", "12.3 KiB", "100.0 MiB", "1.91 GiB", "1.00 PiB". */
void fil_write_size(fil_writer_t *w, uint64_t bytes);
/* The same, truncated instead of rounded: for an amount that must not read
 * as reaching a bound it is below ("49.9 MiB left, less than 50.0 MiB"). */
void fil_write_size_down(fil_writer_t *w, uint64_t bytes);
/* Nanoseconds as seconds with three decimals, truncated: "12.345". */
void fil_write_seconds(fil_writer_t *w, uint64_t ns);
/* XML text/attribute escaping of n bytes (& < > " ' and control characters;
 * bytes that are not valid UTF-8 become U+FFFD) so any input gives valid XML. */
void fil_write_xml(fil_writer_t *w, const char *s, size_t n);
/* A JSON string literal, with quotes; invalid UTF-8 becomes U+FFFD. */
void fil_write_json_str(fil_writer_t *w, const char *s, size_t n);
/* 0, or -1 if any write failed. */
int fil_writer_flush(fil_writer_t *w);

/* Format v in decimal into buf (>= 21 bytes), NUL-terminated; returns length. */
size_t fil_fmt_u64(char *buf, uint64_t v);

/* ---- files written under a temporary name ------------------------------ */

typedef struct fil_atomic_file {
    int fd;              /* open descriptor of the temporary file, or -1 */
    char tmp[4096];      /* "<dir>/.<name>.tmp-<pid>" */
    char final[4096];    /* "<dir>/<name>" */
} fil_atomic_file_t;

/* Create dir/.name.tmp-PID (mode 0644). 0, or -1 with errno set. */
int fil_atomic_open(fil_atomic_file_t *f, const char *dir, const char *name);
/* Close and rename onto the final name. 0, or -1 (temporary removed). */
int fil_atomic_commit(fil_atomic_file_t *f);
/* Close and unlink the temporary file. */
void fil_atomic_abort(fil_atomic_file_t *f);
/* Unlink the temporaries process pid (gone) left in dir: the number
 * removed, or -1 with errno set. */
int fil_atomic_sweep(const char *dir, long pid);

/* ---- the call tree ------------------------------------------------------ */

/* How one frame is labelled. Strings need not be NUL-terminated. */
typedef struct fil_frame {
    const char *file; size_t file_len;     /* path of the source file */
    const char *func; size_t func_len;     /* function name */
    uint32_t line;                         /* 1-based; 0 if unknown */
    const char *source; size_t source_len; /* text of that line, or NULL */
    /* If raw is non-NULL it is the whole label, used verbatim instead of
     * "file:line (func)": e.g. "[No Python stack]" or
     * "[native] symbol+0x1f (libfoo.so)". */
    const char *raw; size_t raw_len;
    /* For a file of the program's own: how many leading bytes of the path
     * (its directory common to all the program's files) labels may leave
     * out; 0 to show the path whole. The full path stays in tooltips. */
    size_t own_start;
} fil_frame_t;

/* 1 if the file is a library's (site-packages, dist-packages, the standard
 * library, or a "<...>" pseudo-file), 0 if it is the program's own. */
int fil_path_is_library(const char *path, size_t n);

/* Per-node figures of a tree, as fil_report_stats computes them, kept by
 * the tree's owner when several writers draw the same tree. */
typedef struct fil_tree_stats {
    const uint32_t *par, *depth, *nstk;
    const uint64_t *incl, *self;
    uint64_t total;
} fil_tree_stats_t;

typedef struct fil_tree {
    uint32_t count; /* nodes 0..count-1; parent(i) < i or FIL_NONE */
    void *ctx;      /* passed to every callback */
    uint32_t (*parent)(void *ctx, uint32_t node);
    uint64_t (*self_bytes)(void *ctx, uint32_t node);
    /* Frame identity: two nodes with equal keys have the same label. Used to
     * merge frames in the reversed tree. */
    uint64_t (*key)(void *ctx, uint32_t node);
    void (*frame)(void *ctx, uint32_t node, fil_frame_t *out);
    /* The figures of the nodes, found once, or NULL: the writers then
     * compute them from the callbacks. */
    const fil_tree_stats_t *stats;
} fil_tree_t;

/* Fill par[i], incl[i] (self + descendants, saturating), depth[i]
 * (top-level = 1) and, if nstk is not NULL, nstk[i] (nodes with self bytes
 * in the subtree, saturating) for every node of t; self[i] too if self is
 * not NULL. *total gets the sum. 0, or -1 if a parent is out of order.
 * Copies t->stats when it is set. */
int fil_report_stats(const fil_tree_t *t, uint32_t *par, uint64_t *incl, uint64_t *self,
                     uint32_t *depth, uint32_t *nstk, uint64_t *total);

/* ---- bounded, folded trees ------------------------------------------- */

/* How a tree is cut down for a person (or a file) to read. A frame is kept
 * when it is among the max_nodes biggest by inclusive bytes, holds at least
 * the threshold (the larger of min_bytes and total * min_part / min_whole)
 * and is no deeper than max_depth (0: any depth); its parent must be kept
 * too. What is not kept is summed, per kept parent, into one remainder
 * frame with a raw label starting with '[' that says how many call stacks
 * it holds ("[1234 smaller call stacks]", "[12 deeper call stacks]"). The
 * totals are exactly those of the input. */
typedef struct fil_fold_opts {
    uint32_t max_nodes;  /* kept frames at most (remainders come on top) */
    uint32_t max_depth;  /* deepest kept level, top-level frames = 1; 0: no limit */
    uint64_t min_bytes;  /* absolute threshold */
    uint64_t min_part;   /* relative threshold: total * min_part / min_whole */
    uint64_t min_whole;  /* 0: no relative threshold */
} fil_fold_opts_t;

/* The key of every remainder frame made by fil_tree_fold / fil_tree_reverse. */
#define FIL_FOLD_KEY (UINT64_MAX - 1000)

/* The bytes a frame needs to be kept by fil_tree_fold with o, in a tree
 * that holds total bytes: the larger of the two thresholds. */
uint64_t fil_fold_threshold(const fil_fold_opts_t *o, uint64_t total);

/* Scratch for fil_tree_fold of a tree of `count` nodes. */
size_t fil_fold_scratch_size(uint32_t count, uint32_t max_nodes);
/* Nodes fil_tree_fold makes at most: kept ones plus one remainder each,
 * plus one top-level remainder. */
uint32_t fil_fold_max_out(uint32_t count, uint32_t max_nodes);
/* Fold `in` into *out as described above (frame() and key() of kept nodes
 * delegate to in). 0, or -1 if scratch is too small or in is malformed.
 * `in`, its ctx and the scratch must outlive *out. */
int fil_tree_fold(const fil_tree_t *in, const fil_fold_opts_t *o, fil_tree_t *out,
                  void *scratch, size_t cap);

/* ---- collapsed stacks --------------------------------------------------- */

/* How big a .prof may get. A stack deeper than 2 * edge_frames + 1 frames is
 * written as its first edge_frames frames, one "[N frames elided]" frame
 * and its last edge_frames frames. Stacks that do not fit max_bytes or
 * max_lines (smallest first) are summed into remainder lines
 * "<path>;[N smaller call stacks] <bytes>" under the biggest frames, or a
 * top-level "[N smaller call stacks] <bytes>"; every byte is still counted
 * exactly once. */
typedef struct fil_prof_opts {
    uint64_t max_bytes;    /* size of the file, about (remainder lines included) */
    uint32_t max_lines;    /* stacks written as their own line, at most */
    uint32_t edge_frames;  /* 1..FIL_PROF_EDGE_MAX */
} fil_prof_opts_t;

#define FIL_PROF_EDGE_MAX 64u
#define FIL_PROF_MAX_BYTES (UINT64_C(16) << 20)
#define FIL_PROF_MAX_LINES 200000u

/* Scratch bytes fil_write_prof needs for a tree of `count` nodes. */
size_t fil_prof_scratch_size(uint32_t count);
/* Lines in node order: frames root first joined by ';', each
 * "file:line (func)" (or raw), a space, the byte count, then remainder lines
 * as described above. ';', '\n', '\r' inside names are written as '?'. o NULL
 * means the defaults (FIL_PROF_MAX_BYTES, FIL_PROF_MAX_LINES,
 * FIL_PROF_EDGE_MAX). 0, or -1 (scratch too small, malformed tree or write
 * failed). */
int fil_write_prof_opts(const fil_tree_t *t, const fil_prof_opts_t *o, fil_writer_t *w,
                        void *scratch, size_t cap);
int fil_write_prof(const fil_tree_t *t, fil_writer_t *w, void *scratch, size_t cap);

/* ---- SVG flamegraph ----------------------------------------------------- */

typedef struct fil_svg_opts {
    const char *title;    /* e.g. "Peak tracked memory usage: 100.3 MiB" */
    const char *subtitle; /* e.g. the command line; may be NULL */
    int inverted;         /* 1: icicle (roots at the top), 0: flame (roots at the bottom) */
    int reversed;         /* the tree is a reversed tree (top level: allocating lines) */
    uint32_t width;       /* image width in px; 0 means 1200 */
} fil_svg_opts_t;

/* Frames narrower than this (centi-px) are summed into remainder boxes. */
#define FIL_SVG_MIN_CENTIPX 300
/* Boxes drawn at most (remainder boxes come on top), and the deepest level. */
#define FIL_SVG_MAX_NODES 6000u
#define FIL_SVG_MAX_DEPTH 200u

size_t fil_svg_scratch_size(uint32_t count);
/* A standalone, interactive SVG. The tree is first folded (fil_tree_fold)
 * so that frames narrower than FIL_SVG_MIN_CENTIPX, beyond the
 * FIL_SVG_MAX_NODES biggest or deeper than FIL_SVG_MAX_DEPTH become labelled
 * remainder boxes. One box per frame, width proportional to inclusive
 * bytes, children ordered by bytes (largest first); box text is the short
 * label, the size and the source text, clipped to the box; a <title>
 * tooltip has the label, the full path, the source line, the size, the
 * percent of the total and the exact bytes. An inline script (no network)
 * adds click-to-zoom, search with the matched share, and hover details;
 * without scripts the drawing is complete and static. 0, or -1. */
int fil_write_svg(const fil_tree_t *t, const fil_svg_opts_t *o, fil_writer_t *w,
                  void *scratch, size_t cap);
/* The bytes a frame needs to get a box of its own in fil_write_svg with o,
 * in a tree that holds total bytes: anything smaller is summed into a
 * remainder box. */
uint64_t fil_svg_min_bytes(const fil_svg_opts_t *o, uint64_t total);

/* ---- reversed tree ------------------------------------------------------ */

/* Scratch bytes for fil_tree_reverse with room for max_nodes reversed nodes. */
size_t fil_reverse_scratch_size(uint32_t count, uint32_t max_nodes);
/* Nodes fil_tree_reverse makes at most (reversed frames and remainders). */
uint32_t fil_reverse_max_out(uint32_t max_nodes);
/* Build the reversed tree of `in` (each stack read leaf first; frames merged
 * by key) into scratch and describe it in *out (callbacks delegate frame() to
 * in). Reversed frames are made biggest first (by the bytes of the stacks
 * through them) until max_nodes are made or the next holds fewer than
 * min_bytes (a flame graph would not draw it: fil_svg_min_bytes); a frame at
 * level max_depth (0: any) gets no callers. What is left out is summed, per reversed parent,
 * into one remainder frame (key FIL_FOLD_KEY, raw label "[N smaller call
 * stacks]" or "[N call stacks with deeper callers]"), so totals stay exact.
 * 0, or -1 if scratch is too small or in is malformed. `in` and the scratch
 * must outlive *out. */
int fil_tree_reverse(const fil_tree_t *in, fil_tree_t *out, uint32_t max_nodes,
                     uint32_t max_depth, uint64_t min_bytes, void *scratch, size_t cap);

/* ---- source lines ------------------------------------------------------- */

typedef struct fil_srcreq {
    const char *file; size_t file_len; /* in: path */
    uint32_t line;                     /* in: 1-based line */
    uint32_t text_off;                 /* out: offset of text in pool */
    uint32_t text_len;                 /* out: 0 if not found */
} fil_srcreq_t;

/* Longest source text kept, in bytes (longer lines are cut, ending in "..."). */
#define FIL_SRC_MAX 120

size_t fil_srclines_scratch_size(size_t n);
/* Fill text_off/text_len for each request, reading every distinct file once.
 * Leading whitespace and the trailing newline are dropped. pool must hold
 * n * FIL_SRC_MAX bytes. Requests keep their order. 0, or -1 on bad sizes. */
int fil_srclines_fill(fil_srcreq_t *reqs, size_t n, char *pool, size_t pool_cap,
                      void *scratch, size_t cap);

/* ---- top lines ---------------------------------------------------------- */

/* One line (frames merged by key) of a tree. */
typedef struct fil_top_line {
    uint32_t node;  /* the node of that line holding the most self bytes */
    uint64_t self;  /* bytes allocated by the line itself */
    uint64_t total; /* bytes it held with what it called (each byte once) */
    /* For a library's line (or a bracketed one): the program's own line
     * that called it with the most of its self bytes (a node of that line;
     * FIL_NONE if none did), those bytes, and how many other lines of the
     * program called it (FIL_TOP_CALLERS_MORE: at least that many). */
    uint32_t caller;
    uint32_t other_callers;
    uint64_t caller_bytes;
} fil_top_line_t;

#define FIL_TOP_LINES_MAX 64u
#define FIL_TOP_CALLERS 16u
#define FIL_TOP_CALLERS_MORE FIL_TOP_CALLERS

size_t fil_top_lines_scratch_size(uint32_t count);
/* " and N other lines" for a row other lines of the program called too
 * (" and at least N ..." when saturated); nothing if none did. */
void fil_write_other_callers(fil_writer_t *w, const fil_top_line_t *r);
/* The lines of t with the most self bytes, biggest first, at most max (<=
 * FIL_TOP_LINES_MAX). Returns the number of rows, or -1 (scratch too
 * small, malformed tree). */
int fil_top_lines(const fil_tree_t *t, fil_top_line_t *rows, uint32_t max, void *scratch,
                  size_t cap);

/* The label a person reads (library paths shortened to their importable
 * part, long names cut, as in the graphs) of frame f, into buf
 * (NUL-terminated, cut to len). Returns 1 for a library's (or raw) frame,
 * 0 for the program's own. */
int fil_report_short_text(const fil_frame_t *f, char *buf, size_t len);

/* ---- memory over time ---------------------------------------------------- */

/* One point of the timeline: the largest values seen in its interval. */
typedef struct fil_time_point {
    uint64_t t_ns;    /* start of the interval, since the program started */
    uint64_t tracked; /* tracked bytes (highest in the interval) */
    uint64_t rss;     /* resident bytes (highest sampled in the interval; 0: unknown) */
} fil_time_point_t;

/* What the plot marks besides the two curves. */
typedef struct fil_timeline_marks {
    uint64_t step_ns;      /* each point's interval (what a point is the maximum of) */
    uint64_t sample_ns;    /* how often the launcher sampled */
    uint64_t end_ns;       /* the moment marked with a vertical line, since the start */
    const char *end_label; /* its words ("out of memory", "report on demand"); NULL: none */
} fil_timeline_marks_t;

/* Index of the first point holding the most tracked bytes (the peak), or
 * FIL_NONE when n is 0. */
uint32_t fil_timeline_peak(const fil_time_point_t *p, uint32_t n);

/* ---- index.html --------------------------------------------------------- */

typedef struct fil_html_page {
    const char *title;    /* "fil-profile: peak memory" */
    const char *headline; /* "Peak tracked memory usage: 100.3 MiB" */
    const char *kind;     /* header class: "peak", "oom", "crash", "killed", "stopped" */
    const char *command;  /* the profiled command line, or NULL */
    const char *notes;    /* extra paragraph (plain text), or NULL */
} fil_html_page_t;

/* The page is written in order with these (see html.c); all escape what
 * they are given and never fail on their own (the writer records errors). */
void fil_html_begin(fil_writer_t *w, const fil_html_page_t *p);
void fil_html_top_lines(fil_writer_t *w, const char *heading, const char *intro,
                        const fil_tree_t *t, const fil_top_line_t *rows, uint32_t n,
                        uint64_t total);
/* path: scratch for t->count indexes. native[]: innermost first.
 * python_heading: the title of the Python stack's column. */
void fil_html_stack(fil_writer_t *w, const char *heading, const char *python_heading,
                    const fil_tree_t *t, uint32_t leaf, const char *const *native,
                    uint32_t nnative, uint32_t *path);
void fil_html_reading(fil_writer_t *w);
void fil_html_graph(fil_writer_t *w, const char *heading, const char *svg, const char *help);
/* A section with memory over time as an inline SVG plot (no script):
 * tracked and resident bytes against seconds, the peak and m->end_label
 * marked, and a sentence saying how it was sampled. */
void fil_html_timeline(fil_writer_t *w, const char *heading, const fil_time_point_t *p,
                       uint32_t n, const fil_timeline_marks_t *m);
/* 0, or -1 if any write of the page failed. */
int fil_html_end(fil_writer_t *w, const char *prof);

#endif
