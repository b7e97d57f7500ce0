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
    int failed;   /* a write(2) failed (errno lost) */
    uint64_t written; /* bytes handed to write(2) so far */
} fil_writer_t;

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
} fil_frame_t;

typedef struct fil_tree {
    uint32_t count; /* nodes 0..count-1; parent(i) < i or FIL_NONE */
    void *ctx;      /* passed to every callback */
    uint32_t (*parent)(void *ctx, uint32_t node);
    uint64_t (*self_bytes)(void *ctx, uint32_t node);
    /* Frame identity: two nodes with equal keys have the same label. Used to
     * merge frames in the reversed tree. */
    uint64_t (*key)(void *ctx, uint32_t node);
    void (*frame)(void *ctx, uint32_t node, fil_frame_t *out);
} fil_tree_t;

/* ---- collapsed stacks --------------------------------------------------- */

/* Scratch bytes fil_write_prof needs for a tree of `count` nodes. */
size_t fil_prof_scratch_size(uint32_t count);
/* One line per node with self bytes > 0, in node order: frames root first
 * joined by ';', each "file:line (func)" (or raw), a space, the byte count.
 * ';', '\n', '\r' inside names are written as '?'. 0, or -1 (scratch too
 * small or write failed). */
int fil_write_prof(const fil_tree_t *t, fil_writer_t *w, void *scratch, size_t cap);

/* ---- SVG flamegraph ----------------------------------------------------- */

typedef struct fil_svg_opts {
    const char *title;    /* e.g. "Peak tracked memory usage: 100.3 MiB" */
    const char *subtitle; /* e.g. the command line; may be NULL */
    int inverted;         /* 1: icicle (roots at top), used for reversed */
    uint32_t width;       /* image width in px; 0 means 1200 */
} fil_svg_opts_t;

size_t fil_svg_scratch_size(uint32_t count);
/* A standalone SVG: one box per node, width proportional to inclusive bytes,
 * children ordered by bytes (largest first), text "file:line (func)" then the
 * source text, clipped to the box; <title> tooltip with the label, source
 * line, bytes and percent of total. Boxes narrower than 0.1 px are omitted
 * (the .prof has everything). 0, or -1. */
int fil_write_svg(const fil_tree_t *t, const fil_svg_opts_t *o, fil_writer_t *w,
                  void *scratch, size_t cap);

/* ---- reversed tree ------------------------------------------------------ */

/* Scratch bytes for fil_tree_reverse with room for max_nodes reversed nodes. */
size_t fil_reverse_scratch_size(uint32_t count, uint32_t max_nodes);
/* Build the reversed tree of `in` (each stack read leaf first; frames merged
 * by key) into scratch and describe it in *out (callbacks delegate frame() to
 * in). If max_nodes is too small, remaining bytes go to one node labelled
 * "[reversed view truncated]". 0, or -1 if scratch is too small. `in` and the
 * scratch must outlive *out. */
int fil_tree_reverse(const fil_tree_t *in, fil_tree_t *out, uint32_t max_nodes,
                     void *scratch, size_t cap);
/* Added by the report module: the key of the "[reversed view truncated]"
 * node (out->count is at most max_nodes + 1: max_nodes reversed frames plus
 * that node, which is created only when needed and has parent FIL_NONE). */
#define FIL_REVERSE_TRUNCATED_KEY UINT64_MAX

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

/* ---- index.html --------------------------------------------------------- */

typedef struct fil_html_info {
    const char *title;    /* "fil-profile: peak memory" */
    const char *command;  /* the profiled command line */
    const char *headline; /* "Peak tracked memory: 100.3 MiB" */
    const char *svg;      /* "peak-memory.svg" */
    const char *svg_reversed; /* "peak-memory-reversed.svg" */
    const char *prof;     /* "peak-memory.prof" */
    const char *notes;    /* extra paragraph (plain text), or NULL */
    const char *oom_headline; /* "Out of memory: ..." when there is such a report, or NULL */
    const char *oom_svg;      /* "out-of-memory.svg", shown first, or NULL */
} fil_html_info_t;

/* A small page embedding both SVGs with links to them and the .prof. */
int fil_write_index_html(const fil_html_info_t *info, fil_writer_t *w);

#endif
