/* SPDX-License-Identifier: MIT */
/*
 * label.c - how a frame is labelled, shared by the .prof, SVG and HTML
 * writers.
 *
 * A label is "file:line (func)", "file (func)" when the line is unknown, or
 * the frame's raw text. It is described as a short list of byte strings
 * pointing into the frame (plus the line number formatted into the label
 * itself) so each writer can escape or clip it its own way without copying
 * names into a buffer of some guessed size.
 *
 * The .prof keeps paths exactly as recorded (it is a byte-exact record that
 * scripts parse). What a person reads uses the short form: a library file
 * is named by its importable path, i.e. what follows the last
 * "site-packages/" or "dist-packages/" or, for the standard library,
 * "lib/pythonX.Y/" ("pandas/io/parsers/readers.py:611 (_read)"), a file of
 * the program's own leaves out the directory its frame says all the
 * program's files share (own_start, found by the caller), and a name
 * longer than FIL_LABEL_SHOW characters is cut with "..." (the tooltip has
 * the whole path). A frame is the program's own when its path has none of
 * those prefixes and is not a "<frozen ...>" module.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: memcmp, strlen, fil_fmt_u64.
 */
#include <string.h>

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

/* Append ":line" when the line is known. SIGNAL CONTEXT: caller memory. */
static void add_line(const fil_frame_t *f, fil_report_label_t *l)
{
    if (f->line != 0) {
        l->num[0] = ':';
        fil_report_label_add(l, l->num, 1 + fil_fmt_u64(l->num + 1, f->line));
    }
}

/*
 * Describe the label of f in *l (overwriting it), with the path as
 * recorded. Pieces point into f's strings and into l->num, which must stay
 * valid while l is used. SIGNAL CONTEXT: caller memory only.
 */
void fil_report_label(const fil_frame_t *f, fil_report_label_t *l)
{
    l->n = 0;
    if (f->raw) {
        fil_report_label_add(l, f->raw, f->raw_len);
        return;
    }
    fil_report_label_add(l, f->file, f->file_len);
    add_line(f, l);
    fil_report_label_add(l, " (", 2);
    fil_report_label_add(l, f->func, f->func_len);
    fil_report_label_add(l, ")", 1);
}

/* Offset just past "lib/python" + digits/dots + "/" in path, or 0.
 * SIGNAL CONTEXT: caller memory only. */
static size_t stdlib_start(const char *path, size_t n)
{
    static const char mark[] = "lib/python";
    size_t ml = sizeof(mark) - 1;
    for (size_t i = n >= ml ? n - ml + 1 : 0; i-- > 0;) {
        size_t j = i + ml;
        if (memcmp(path + i, mark, ml) != 0 || (i > 0 && path[i - 1] != '/'))
            continue;
        if (j >= n || path[j] < '0' || path[j] > '9')
            continue;
        while (j < n && ((path[j] >= '0' && path[j] <= '9') || path[j] == '.'))
            j++;
        if (j < n && path[j] == '/')
            return j + 1;
    }
    return 0;
}

/* Offset just past the last occurrence of mark in path, or 0.
 * SIGNAL CONTEXT: caller memory only. */
static size_t after_last(const char *path, size_t n, const char *mark)
{
    size_t ml = strlen(mark);
    for (size_t i = n >= ml ? n - ml + 1 : 0; i-- > 0;) {
        if (memcmp(path + i, mark, ml) == 0)
            return i + ml;
    }
    return 0;
}

/*
 * Where the importable part of path[0..n) starts (see the file comment), or
 * 0 to show it whole; *library says whether the file is a library's.
 * SIGNAL CONTEXT: caller memory only.
 */
size_t fil_report_path_start(const char *path, size_t n, int *library)
{
    size_t a, b, start;
    *library = n > 0 && path[0] == '<';
    if (!path || n == 0)
        return 0;
    a = after_last(path, n, "/site-packages/");
    b = after_last(path, n, "/dist-packages/");
    start = a > b ? a : b;
    if (start == 0)
        start = stdlib_start(path, n);
    if (start == 0 || start >= n)
        return 0;
    *library = 1;
    return start;
}

/* 1 if path is a library's (see fil/report.h). SIGNAL CONTEXT: caller
 * memory only. */
int fil_path_is_library(const char *path, size_t n)
{
    int library;
    fil_report_path_start(path, n, &library);
    return library;
}

/* Append s[0..n), cut to FIL_LABEL_SHOW characters with "..." (at the end,
 * or at the start when keep_tail). SIGNAL CONTEXT: caller memory only. */
static void add_capped(fil_report_label_t *l, const char *s, size_t n, int keep_tail)
{
    size_t chars = fil_report_utf8_chars(s, n), cut;
    if (chars <= FIL_LABEL_SHOW) {
        fil_report_label_add(l, s, n);
        return;
    }
    if (keep_tail) {
        cut = fil_report_utf8_prefix(s, n, chars - (FIL_LABEL_SHOW - 3));
        fil_report_label_add(l, "...", 3);
        fil_report_label_add(l, s + cut, n - cut);
        return;
    }
    cut = fil_report_utf8_prefix(s, n, FIL_LABEL_SHOW - 3);
    fil_report_label_add(l, s, cut);
    fil_report_label_add(l, "...", 3);
}

/*
 * Describe the label a person reads (see the file comment) in *l; returns
 * 1 if the frame is a library's or a raw label, 0 if it is the program's
 * own. Same lifetime rules as fil_report_label.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_report_label_short(const fil_frame_t *f, fil_report_label_t *l)
{
    int library = 1;
    size_t start;
    l->n = 0;
    if (f->raw) {
        add_capped(l, f->raw, f->raw_len, 0);
        return 1;
    }
    start = fil_report_path_start(f->file, f->file_len, &library);
    if (!library && f->own_start > 0 && f->own_start < f->file_len)
        start = f->own_start;
    add_capped(l, f->file + start, f->file_len - start, 1);
    add_line(f, l);
    fil_report_label_add(l, " (", 2);
    add_capped(l, f->func, f->func_len, 0);
    fil_report_label_add(l, ")", 1);
    return library;
}

/* Append "  source" when f has source text. SIGNAL CONTEXT: caller memory. */
void fil_report_label_add_source(const fil_frame_t *f, fil_report_label_t *l)
{
    if (!f->source || f->source_len == 0)
        return;
    fil_report_label_add(l, "  ", 2);
    fil_report_label_add(l, f->source, f->source_len);
}

/* Bytes of the label l. SIGNAL CONTEXT: caller memory only. */
size_t fil_report_label_len(const fil_report_label_t *l)
{
    size_t n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->len[i];
    return n;
}

/*
 * The short label of f (fil_report_label_short) copied into buf,
 * NUL-terminated and cut to len - 1 bytes (never inside a UTF-8 character),
 * a NUL byte of a name written as '?'.
 * Returns 1 for a library's or raw frame, 0 for the program's own.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_report_short_text(const fil_frame_t *f, char *buf, size_t len)
{
    fil_report_label_t l;
    int library = fil_report_label_short(f, &l);
    size_t k = 0;
    if (len == 0)
        return library;
    for (int i = 0; i < l.n && k < len - 1; i++) {
        size_t n = l.len[i] < len - 1 - k ? l.len[i] : len - 1 - k;
        while (n < l.len[i] && n > 0 && ((unsigned char)l.part[i][n] & 0xC0) == 0x80)
            n--; /* cut before a whole character, never inside one */
        for (size_t j = 0; j < n; j++) /* a NUL in a name would end the text */
            buf[k + j] = l.part[i][j] ? l.part[i][j] : '?';
        k += n;
    }
    buf[k] = '\0';
    return library;
}
