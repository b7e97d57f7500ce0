/* SPDX-License-Identifier: MIT */
/*
 * html.c - index.html, the page a user opens first: the answer, then the
 * evidence.
 *
 * The page is written in pieces so the caller decides what a run needs:
 * fil_html_begin (head, style, the headline and the command), then
 * fil_html_top_lines (the table of the lines that allocated the most),
 * fil_html_stack (the failing allocation's Python and native stacks, for
 * an out-of-memory or a crash), fil_html_reading (how to read the graphs),
 * fil_html_graph (each flame graph, embedded with <object> so it keeps its
 * own script: zoom and search work the same as when the SVG is opened on
 * its own; the fallback is a link), and fil_html_end (the .prof link).
 * The page itself has no script and loads nothing from the network. Every
 * string from the program or the caller goes through fil_write_xml, which
 * is valid for HTML text and quoted attributes too. A long stack is shown
 * as its first and last frames with the count of those between.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: strlen.
 */
#include <string.h>

#include "report_internal.h"

#define STACK_HEAD 12 /* frames shown from the outermost end of a long stack */
#define STACK_TAIL 28 /* ... and from the innermost end */

static const char html_style[] =
    "<style>\n"
    "body{font-family:sans-serif;margin:1em auto;max-width:1240px;padding:0 1em;"
    "color:#222;background:#fff;font-size:14px}\n"
    "h1{font-size:1.45em;margin:0.2em 0 0.3em}h2{font-size:1.15em;margin:1.2em 0 0.4em}\n"
    "h3{font-size:1em;margin:0.3em 0}\n"
    "header{border-left:6px solid #d9822b;padding:0.2em 0.8em}\n"
    "header.oom,header.crash{border-color:#c0392b}header.killed{border-color:#8e44ad}\n"
    "header.stopped{border-color:#2c6fbb}\n"
    "header p{margin:0.25em 0;color:#444}\n"
    "code{background:#f3f0ea;padding:0.05em 0.3em;word-break:break-all}\n"
    "table{border-collapse:collapse;width:100%;font-size:13px}\n"
    "th,td{text-align:left;padding:0.2em 0.5em;border-bottom:1px solid #eee;"
    "vertical-align:top}\n"
    "th{background:#f6f3ee}td.n{text-align:right;white-space:nowrap}\n"
    "td code{background:none;padding:0}td.src code{color:#333}tr.own td.line{font-weight:bold}\n"
    "td small{color:#666;font-weight:normal}\n"
    ".stacks{display:flex;gap:1.5em;flex-wrap:wrap}.stacks>div{flex:1 1 30em;min-width:0}\n"
    "ol.stack{margin:0;padding-left:2.5em;max-height:22em;overflow:auto;font-size:13px}\n"
    "ol.stack li{margin:0.1em 0}ol.stack .src{color:#555;display:block}\n"
    "li.gap{list-style:none;color:#777;font-style:italic}\n"
    "object{width:100%;border:1px solid #ddd}\n"
    ".notes,.help{color:#555}\n"
    "</style>\n";

/* Write s escaped (NULL writes nothing). SIGNAL CONTEXT: caller memory only. */
static void write_text(fil_writer_t *w, const char *s)
{
    if (s)
        fil_write_xml(w, s, strlen(s));
}

/* Write every piece of l escaped. SIGNAL CONTEXT: caller memory only. */
static void write_label(fil_writer_t *w, const fil_report_label_t *l)
{
    for (int i = 0; i < l->n; i++)
        fil_write_xml(w, l->part[i], l->len[i]);
}

/*
 * The head, style and header: headline, command and notes. p->kind names
 * the header's class ("peak", "oom", "crash", "killed", "stopped").
 * SIGNAL CONTEXT: caller memory only.
 */
void fil_html_begin(fil_writer_t *w, const fil_html_page_t *p)
{
    fil_write_str(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    fil_write_str(w, "<title>");
    write_text(w, p->title ? p->title : "fil-profile");
    fil_write_str(w, "</title>\n");
    fil_write_str(w, html_style);
    fil_write_str(w, "</head>\n<body>\n<header class=\"");
    write_text(w, p->kind ? p->kind : "peak");
    fil_write_str(w, "\">\n<h1>");
    write_text(w, p->headline ? p->headline : p->title);
    fil_write_str(w, "</h1>\n");
    if (p->command) {
        fil_write_str(w, "<p>Command: <code>");
        write_text(w, p->command);
        fil_write_str(w, "</code></p>\n");
    }
    if (p->notes) {
        fil_write_str(w, "<p class=\"notes\">");
        write_text(w, p->notes);
        fil_write_str(w, "</p>\n");
    }
    fil_write_str(w, "</header>\n");
}

/* "<size> (<percent>%)" of part in total. SIGNAL CONTEXT: caller memory. */
static void write_share(fil_writer_t *w, uint64_t part, uint64_t total)
{
    char size[24];
    uint64_t centi = fil_report_scale(part > total ? total : part, total, 10000);
    fil_write_mem(w, size, fil_report_size_text(size, part));
    fil_write_str(w, " <small>(");
    fil_write_u64(w, centi / 100);
    fil_write_char(w, '.');
    fil_write_char(w, (char)('0' + centi / 10 % 10));
    fil_write_str(w, "%)</small>");
}

/* <code title="full path">short label</code> for frame f, whose short
 * label is l. SIGNAL CONTEXT: caller memory only. */
static void write_code_label(fil_writer_t *w, const fil_frame_t *f, const fil_report_label_t *l)
{
    fil_write_str(w, "<code title=\"");
    if (!f->raw)
        fil_write_xml(w, f->file, f->file_len);
    fil_write_str(w, "\">");
    write_label(w, l);
    fil_write_str(w, "</code>");
}

/* f's source text between the tags open and close, if it has any.
 * SIGNAL CONTEXT: caller memory only. */
static void write_source(fil_writer_t *w, const fil_frame_t *f, const char *open,
                         const char *close)
{
    if (!f->source || f->source_len == 0)
        return;
    fil_write_str(w, open);
    fil_write_xml(w, f->source, f->source_len);
    fil_write_str(w, close);
}

/* For a library's line: "called from <the program's line that called it
 * with the most of its bytes>", and when others did too, that line's bytes
 * and how many others there are. SIGNAL CONTEXT: caller memory. */
static void write_caller(fil_writer_t *w, const fil_tree_t *t, const fil_top_line_t *r)
{
    fil_frame_t f = {0};
    fil_report_label_t l;
    if (r->caller == FIL_NONE || r->caller >= t->count)
        return;
    t->frame(t->ctx, r->caller, &f);
    fil_report_label_short(&f, &l);
    fil_write_str(w, "<br><small>called from ");
    write_code_label(w, &f, &l);
    write_source(w, &f, ": <code>", "</code>");
    if (r->other_callers) {
        fil_write_str(w, " (");
        fil_write_size(w, r->caller_bytes);
        fil_write_char(w, ')');
        fil_write_other_callers(w, r);
    }
    fil_write_str(w, "</small>");
}

/* One row of the top lines table; the program's own lines are in bold,
 * a library's line says which of the program's lines called it.
 * SIGNAL CONTEXT: caller memory only. */
static void write_row(fil_writer_t *w, const fil_tree_t *t, const fil_top_line_t *r, uint32_t k,
                      uint64_t total)
{
    fil_frame_t f = {0};
    fil_report_label_t l;
    int library;
    t->frame(t->ctx, r->node, &f);
    library = fil_report_label_short(&f, &l);
    fil_write_str(w, library ? "<tr><td class=\"n\">" : "<tr class=\"own\"><td class=\"n\">");
    fil_write_u64(w, k + 1);
    fil_write_str(w, "</td><td class=\"line\">");
    write_code_label(w, &f, &l);
    if (library)
        write_caller(w, t, r);
    fil_write_str(w, "</td><td class=\"src\">");
    write_source(w, &f, "<code>", "</code>");
    fil_write_str(w, "</td><td class=\"n\">");
    write_share(w, r->self, total);
    fil_write_str(w, "</td><td class=\"n\">");
    write_share(w, r->total, total);
    fil_write_str(w, "</td></tr>\n");
}

/*
 * The top lines table under heading h2, with a sentence saying what the
 * figures are; total is what the percentages are of. SIGNAL CONTEXT:
 * caller memory only.
 */
void fil_html_top_lines(fil_writer_t *w, const char *heading, const char *intro,
                        const fil_tree_t *t, const fil_top_line_t *rows, uint32_t n, uint64_t total)
{
    fil_write_str(w, "<section class=\"top-lines\">\n<h2>");
    write_text(w, heading);
    fil_write_str(w, "</h2>\n<p class=\"help\">");
    write_text(w, intro);
    fil_write_str(w, "</p>\n<table>\n<tr><th>#</th><th>Line (file:line, function)</th>"
                     "<th>Source</th><th>Allocated by the line itself</th>"
                     "<th>With what it called</th></tr>\n");
    for (uint32_t k = 0; k < n && !w->failed; k++)
        write_row(w, t, &rows[k], k, total);
    if (n == 0)
        fil_write_str(w,
                      "<tr><td></td><td>No memory tracked</td><td></td><td></td><td></td></tr>\n");
    fil_write_str(w, "</table>\n</section>\n");
}

/* One <li> for frame i of t. SIGNAL CONTEXT: caller memory only. */
static void write_stack_item(fil_writer_t *w, const fil_tree_t *t, uint32_t i)
{
    fil_frame_t f = {0};
    fil_report_label_t l;
    t->frame(t->ctx, i, &f);
    fil_report_label_short(&f, &l);
    fil_write_str(w, "<li>");
    write_code_label(w, &f, &l);
    write_source(w, &f, "<span class=\"src\">", "</span>");
    fil_write_str(w, "</li>\n");
}

/* "<li class="gap">... N frames ...</li>". SIGNAL CONTEXT. */
static void write_gap(fil_writer_t *w, uint64_t n)
{
    fil_write_str(w, "<li class=\"gap\">... ");
    fil_write_u64(w, n);
    fil_write_str(w, " more frames ...</li>\n");
}

/*
 * The Python stack of node `leaf` of t (outermost first, innermost last;
 * long stacks cut in the middle) and the native frames native[0..nnative)
 * (given innermost first, shown innermost last), under heading h2. path
 * must hold t->count entries. SIGNAL CONTEXT: caller memory only.
 */
void fil_html_stack(fil_writer_t *w, const char *heading, const char *python_heading,
                    const fil_tree_t *t, uint32_t leaf, const char *const *native,
                    uint32_t nnative, uint32_t *path)
{
    uint32_t depth = 0;
    for (uint32_t i = leaf; i != FIL_NONE && i < t->count && depth < t->count;
         i = t->parent(t->ctx, i))
        path[depth++] = i;
    fil_write_str(w, "<section class=\"failing\">\n<h2>");
    write_text(w, heading);
    fil_write_str(w, "</h2>\n<div class=\"stacks\"><div><h3>");
    write_text(w, python_heading);
    fil_write_str(w, "</h3>\n<ol class=\"stack\">\n");
    for (uint32_t d = depth; d-- > 0 && !w->failed;) {
        if (depth > STACK_HEAD + STACK_TAIL + 1 && d == depth - STACK_HEAD - 1) {
            write_gap(w, depth - STACK_HEAD - STACK_TAIL);
            d = STACK_TAIL - 1;
        }
        write_stack_item(w, t, path[d]);
    }
    if (depth == 0)
        fil_write_str(w, "<li class=\"gap\">not recorded</li>\n");
    fil_write_str(w, "</ol></div>\n<div><h3>Native stack (innermost last)</h3>\n"
                     "<ol class=\"stack\">\n");
    for (uint32_t k = nnative; k-- > 0;) {
        fil_write_str(w, "<li><code>");
        write_text(w, native[k]);
        fil_write_str(w, "</code></li>\n");
    }
    if (nnative == 0)
        fil_write_str(w, "<li class=\"gap\">not recorded</li>\n");
    fil_write_str(w, "</ol></div></div>\n</section>\n");
}

/* A few sentences on how to read the graphs. SIGNAL CONTEXT. */
void fil_html_reading(fil_writer_t *w)
{
    fil_write_str(
        w, "<section class=\"reading\">\n<h2>How to read the graphs</h2>\n<p>Each box is a line "
           "of code that was running, with the memory it held and its source text; its width is "
           "that memory. In the first graph the top row is where the program started and each "
           "box sits above the lines it called, so the program's own lines (in orange; library "
           "code is pale) come first and a wide box far down is where the memory went. The "
           "reversed graph starts from the lines that allocated directly and goes down through "
           "their callers. Click a box to zoom into it, click an upper box or press Esc to zoom "
           "out, press / to search (the share of memory matched is shown), and hover for the "
           "size and the source line. Call stacks too small to see are summed into grey "
           "<code>[N smaller call stacks]</code> boxes.</p>\n</section>\n");
}

/* A graph section: heading, help, link, and the embedded SVG. SIGNAL CONTEXT. */
void fil_html_graph(fil_writer_t *w, const char *heading, const char *svg, const char *help)
{
    if (!svg)
        return;
    fil_write_str(w, "<section class=\"graph\">\n<h2>");
    write_text(w, heading);
    fil_write_str(w, "</h2>\n<p class=\"help\">");
    write_text(w, help);
    fil_write_str(w, " <a href=\"");
    write_text(w, svg);
    fil_write_str(w, "\">Open ");
    write_text(w, svg);
    fil_write_str(w, " on its own</a>.</p>\n<object type=\"image/svg+xml\" data=\"");
    write_text(w, svg);
    fil_write_str(w, "\"><a href=\"");
    write_text(w, svg);
    fil_write_str(w, "\">");
    write_text(w, svg);
    fil_write_str(w, "</a></object>\n</section>\n");
}

/* The .prof link, the end of the page, and flush. 0, or -1 if any write
 * failed. SIGNAL CONTEXT: caller memory only. */
int fil_html_end(fil_writer_t *w, const char *prof)
{
    if (prof) {
        fil_write_str(w, "<h2>All call stacks</h2>\n<p class=\"help\"><a href=\"");
        write_text(w, prof);
        fil_write_str(w, "\">");
        write_text(w, prof);
        fil_write_str(w, "</a> lists the call stacks in collapsed format (flamegraph.pl, "
                         "speedscope), with full paths; the smallest are summed into "
                         "<code>[N smaller call stacks]</code> lines and very deep ones keep "
                         "their first and last frames around a <code>[N frames elided]</code> "
                         "frame, so the file stays small and its total exact.</p>\n");
    }
    fil_write_str(w, "</body>\n</html>\n");
    return fil_writer_flush(w);
}
