/* SPDX-License-Identifier: MIT */
/*
 * label.c - how a frame is labelled, shared by the .prof and SVG writers.
 *
 * A label is "file:line (func)", "file (func)" when the line is unknown, or
 * the frame's raw text. It is described as a short list of byte strings
 * pointing into the frame (plus the line number formatted into the label
 * itself) so each writer can escape or clip it its own way without copying
 * names into a buffer of some guessed size.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none beyond fil_fmt_u64.
 */
#include "report_internal.h"

/* Append the piece s[0..n) if there is room (there always is for the fixed
 * shapes built here). SIGNAL CONTEXT: caller memory only. */
void fil_report_label_add(fil_report_label_t *l, const char *s, size_t n)
{
    if (l->n >= FIL_LABEL_PARTS || n == 0 || !s)
        return;
    l->part[l->n] = s;
    l->len[l->n] = n;
    l->n++;
}

/*
 * Describe the label of f in *l (overwriting it). Pieces point into f's
 * strings and into l->num, which must stay valid while l is used.
 * SIGNAL CONTEXT: caller memory only.
 */
void fil_report_label(const fil_frame_t *f, fil_report_label_t *l)
{
    l->n = 0;
    if (f->raw) {
        fil_report_label_add(l, f->raw, f->raw_len);
        return;
    }
    fil_report_label_add(l, f->file, f->file_len);
    if (f->line != 0) {
        l->num[0] = ':';
        fil_report_label_add(l, l->num, 1 + fil_fmt_u64(l->num + 1, f->line));
    }
    fil_report_label_add(l, " (", 2);
    fil_report_label_add(l, f->func, f->func_len);
    fil_report_label_add(l, ")", 1);
}

/* Append "  source" when f has source text. SIGNAL CONTEXT: caller memory. */
void fil_report_label_add_source(const fil_frame_t *f, fil_report_label_t *l)
{
    if (!f->source || f->source_len == 0)
        return;
    fil_report_label_add(l, "  ", 2);
    fil_report_label_add(l, f->source, f->source_len);
}
