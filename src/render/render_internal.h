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
} fil_view_t;

/* Validate a state file mapped at base (size bytes). 0, or -1 with a
 * one-line reason in err. */
int fil_view_open_file(fil_view_t *v, const void *base, uint64_t size, char *err, size_t errlen);
/* A view of the live state of this process (in-process dump). */
void fil_view_open_live(fil_view_t *v);

const fil_node_t *fil_view_node(const fil_view_t *v, uint32_t i);
int64_t fil_view_bytes(const fil_view_t *v, uint32_t i);
int64_t fil_view_peak(const fil_view_t *v, uint32_t i);
/* String at idx: 0 and (*s, *n), or -1 if it is out of bounds. */
int fil_view_string(const fil_view_t *v, uint64_t idx, const char **s, size_t *n);

/* Simple bump allocator over one region. */
typedef struct fil_bump {
    char *base;
    size_t cap, used;
} fil_bump_t;
void *fil_bump(fil_bump_t *b, size_t n); /* 8-aligned, NULL if full */

enum { FIL_RENDER_PEAK = 0, FIL_RENDER_OOM = 1 };

/* Memory fil_render_files needs for a view with `nodes` nodes. */
size_t fil_render_scratch_size(uint64_t nodes);

/* Write <prefix>.prof, <prefix>.svg, <prefix>-reversed.svg (and index.html
 * for the peak) into dir. title is the SVG title. For FIL_RENDER_OOM the
 * failing request and native frames recorded in the header are drawn above
 * the request's line. oom_note (peak only, may be NULL): the out-of-memory
 * headline, when there is such a report for index.html to show first.
 * 0, or -1 if any file failed. */
int fil_render_files(const fil_view_t *v, int kind, const char *dir, const char *title,
                     const char *subtitle, const char *oom_note, fil_bump_t *mem);

/* Write summary.json into dir. info may be NULL (in-process dump). */
int fil_render_summary(const fil_view_t *v, const fil_run_info_t *info, const char *dir,
                       unsigned rendered, const char *oom_source, char *buf, size_t buflen);

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
