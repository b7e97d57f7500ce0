/* SPDX-License-Identifier: MIT */
/*
 * report_internal.h - helpers shared by the files of src/report/.
 *
 * Everything declared here follows the module's rule: SIGNAL CONTEXT, caller
 * memory only. Scratch memory is carved into 8-byte aligned arrays with
 * fil_report_carve(); a size function that reserves FIL_REPORT_ALIGN_SLACK
 * per array (plus the array bytes) is always sufficient whatever the
 * alignment of the caller's pointer.
 */
#ifndef FIL_REPORT_INTERNAL_H
#define FIL_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fil/report.h"

/* Worst-case padding lost when aligning one carved array to 8 bytes. */
#define FIL_REPORT_ALIGN_SLACK 8

/* Bump allocator over caller scratch: [cur, end). */
typedef struct fil_report_arena {
    char *cur; /* next free byte (unaligned) */
    char *end; /* one past the last usable byte */
} fil_report_arena_t;

void fil_report_arena_init(fil_report_arena_t *a, void *scratch, size_t cap);
void *fil_report_carve(fil_report_arena_t *a, uint64_t bytes);
/* Saturating sum of array byte counts plus one alignment slack per array. */
size_t fil_report_scratch_total(const uint64_t *bytes, int n);

/* Heapsort of n 32-bit items; less(ctx, x, y) is a strict weak order. */
typedef int (*fil_report_less_fn)(void *ctx, uint32_t x, uint32_t y);
void fil_report_heapsort(uint32_t *a, size_t n, fil_report_less_fn less, void *ctx);
/* The elements of a[0..n) in `less` order, taken one at a time: make the
 * heap, then take its first element *n times at most (each O(log n)). */
void fil_report_heap_first(uint32_t *a, size_t n, fil_report_less_fn less, void *ctx);
uint32_t fil_report_heap_next(uint32_t *a, size_t *n, fil_report_less_fn less, void *ctx);

/* Length (1..4) of the valid UTF-8 sequence at s, storing its code point in
 * *cp, or 0 if the bytes at s are not valid UTF-8 (overlong, surrogate,
 * truncated, above U+10FFFF). n >= 1. */
size_t fil_report_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);
/* Number of characters in s, counting each invalid byte as one character
 * (as fil_write_xml draws it: one U+FFFD each). */
size_t fil_report_utf8_chars(const char *s, size_t n);
/* Bytes of the longest prefix of s holding at most max_chars characters. */
size_t fil_report_utf8_prefix(const char *s, size_t n, size_t max_chars);

/* A frame label as up to FIL_LABEL_PARTS byte strings, without copying:
 * "file:line (func)", "file (func)" or the raw label, then optionally
 * "  source" appended by fil_report_label_add_source(). num holds the line
 * number text, so a label must not be copied once built. */
#define FIL_LABEL_PARTS 16
/* Characters of a file or function name shown before it is cut with "...". */
#define FIL_LABEL_SHOW 160
typedef struct fil_report_label {
    const char *part[FIL_LABEL_PARTS]; /* pieces, in order */
    size_t len[FIL_LABEL_PARTS];       /* their byte lengths */
    int n;                             /* pieces used */
    char num[24];                      /* decimal line number */
} fil_report_label_t;

void fil_report_label(const fil_frame_t *f, fil_report_label_t *l);
void fil_report_label_add_source(const fil_frame_t *f, fil_report_label_t *l);
void fil_report_label_add(fil_report_label_t *l, const char *s, size_t n);
/* The label a person reads: library paths shortened to their importable
 * part, long names cut. Returns 1 for a library's (or raw) frame, 0 for the
 * program's own. */
int fil_report_label_short(const fil_frame_t *f, fil_report_label_t *l);
/* Where the importable part of a path starts (0: show it whole). */
size_t fil_report_path_start(const char *path, size_t n, int *library);
/* Total bytes of a label's pieces. */
size_t fil_report_label_len(const fil_report_label_t *l);

/* ---- per-node figures shared by the writers (fold.c) ---------------------- */

/* fil_report_stats (fil/report.h) fills the per-node figures. */
/* Order for heapsorting nodes by (bytes descending, index ascending), with
 * ctx the bytes array. */
int fil_report_bigger_first(void *ctx, uint32_t x, uint32_t y);
/* Format the label of a remainder frame holding `stacks` call stacks into
 * buf (>= FIL_REMAINDER_LABEL bytes); flags say why they were folded.
 * Returns its length. */
#define FIL_FOLDED_SMALL 1u
#define FIL_FOLDED_DEEP 2u
#define FIL_REMAINDER_LABEL 64
size_t fil_report_remainder_label(char *buf, uint64_t stacks, unsigned flags);

/* ---- SVG layout (svg_layout.c), drawn by svg.c ---------------------------- */

#define FIL_SVG_SIDE 10    /* left and right margin, px */
#define FIL_SVG_MIN_BOX 10 /* narrowest drawn box, centi-px (0.1 px) */

/* Where every node of a tree goes. Widths are in centi-pixels (1/100 px) so
 * all geometry is integer; arrays are carved from the caller's scratch. */
typedef struct fil_report_svg_layout {
    const fil_tree_t *t;
    uint64_t *incl;     /* inclusive bytes: self + all descendants */
    uint64_t *xoff;     /* bytes to the left of the node's box */
    uint32_t *par;      /* parent of each node (FIL_NONE for top level) */
    uint32_t *order;    /* nodes sorted by (parent, incl desc, index) */
    uint32_t *level;    /* 0: not drawn; else depth, top-level frames = 1 */
    uint64_t total;     /* bytes of the whole tree (the "all" box) */
    uint64_t range;     /* drawable width, centi-px */
    uint32_t max_level; /* deepest drawn level */
} fil_report_svg_layout_t;

/* Scale part (<= total) bytes to round(part * range / total), integers only. */
uint64_t fil_report_scale(uint64_t part, uint64_t total, uint64_t range);
/* Left edge in centi-px of a box starting `off` bytes from the left. */
uint64_t fil_report_svg_x(const fil_report_svg_layout_t *L, uint64_t off);
size_t fil_report_svg_layout_size(uint32_t count);
int fil_report_svg_layout(fil_report_svg_layout_t *L, const fil_tree_t *t, uint64_t range,
                          void *scratch, size_t cap);

/* The flame graphs' style sheet and script (svg_script.c). */
extern const char fil_svg_style[];
extern const char fil_svg_script[];

/* Format a human size (fil_write_size) into buf (>= 24 bytes); returns its
 * length. */
size_t fil_report_size_text(char *buf, uint64_t bytes);

/* 0 when the writer is healthy, -1 once a write failed. */
static inline int fil_report_status(const fil_writer_t *w)
{
    return w->failed ? -1 : 0;
}

#endif
