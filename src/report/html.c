/* SPDX-License-Identifier: MIT */
/*
 * html.c - index.html, the page a user opens first.
 *
 * A small self-contained HTML5 page (no scripts, no external resources): the
 * headline figure, the profiled command, optional notes, both flamegraphs
 * embedded with <object> (so their tooltips work; the fallback is a link)
 * and a link to the collapsed stacks, which hold every stack including
 * frames too narrow to draw. Every string from the caller goes through
 * fil_write_xml, which is valid for HTML text and quoted attributes too.
 * Missing (NULL) fields are left out.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: strlen.
 */
#include <string.h>

#include "report_internal.h"

static const char html_head[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font-family:sans-serif;margin:1.5em auto;max-width:1240px;padding:0 1em;"
    "color:#222;background:#fff}\n"
    "h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.5em}\n"
    "code{background:#f3f0ea;padding:0.1em 0.3em;word-break:break-all}\n"
    "object{width:100%;border:1px solid #ddd}\n"
    ".notes{color:#555}\n"
    "</style>\n";

/* Write s escaped (NULL writes nothing). SIGNAL CONTEXT: caller memory only. */
static void write_text(fil_writer_t *w, const char *s)
{
    if (s)
        fil_write_xml(w, s, strlen(s));
}

/* An <object> embedding svg with a link to it, under a heading.
 * SIGNAL CONTEXT: caller memory only. */
static void write_graph(fil_writer_t *w, const char *heading, const char *svg, const char *help)
{
    if (!svg)
        return;
    fil_write_str(w, "<h2>");
    fil_write_str(w, heading);
    fil_write_str(w, "</h2>\n<p>");
    fil_write_str(w, help);
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
    fil_write_str(w, "</a></object>\n");
}

/* Title, headline, command and notes. SIGNAL CONTEXT: caller memory only. */
static void write_intro(const fil_html_info_t *info, fil_writer_t *w)
{
    fil_write_str(w, "<title>");
    write_text(w, info->title ? info->title : "fil-profile");
    fil_write_str(w, "</title>\n</head>\n<body>\n<h1>");
    write_text(w, info->headline ? info->headline : info->title);
    fil_write_str(w, "</h1>\n");
    if (info->command) {
        fil_write_str(w, "<p>Command: <code>");
        write_text(w, info->command);
        fil_write_str(w, "</code></p>\n");
    }
    if (info->notes) {
        fil_write_str(w, "<p class=\"notes\">");
        write_text(w, info->notes);
        fil_write_str(w, "</p>\n");
    }
}

/*
 * Write index.html for info and flush w. 0, or -1 if a write failed.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_write_index_html(const fil_html_info_t *info, fil_writer_t *w)
{
    fil_write_str(w, html_head);
    write_intro(info, w);
    if (info->oom_svg) {
        fil_write_str(w, "<p class=\"oom\"><strong>");
        write_text(w, info->oom_headline ? info->oom_headline : "Out of memory");
        fil_write_str(w, "</strong></p>\n");
        write_graph(w, "Memory held when it ran out", info->oom_svg,
                    "What was live at that moment, with the failed request at its line.");
    }
    write_graph(w, "Memory by call stack", info->svg,
                "Wider boxes hold more memory; hover over a box for its size and source line.");
    write_graph(w, "Reversed: where memory was allocated", info->svg_reversed,
                "Top-level boxes are the lines that allocated directly; below them, their "
                "callers.");
    if (info->prof) {
        fil_write_str(w, "<h2>All call stacks</h2>\n<p>Boxes narrower than 0.1 px are not "
                         "drawn; <a href=\"");
        write_text(w, info->prof);
        fil_write_str(w, "\">");
        write_text(w, info->prof);
        fil_write_str(w, "</a> lists every stack in collapsed format (flamegraph.pl, "
                         "speedscope).</p>\n");
    }
    fil_write_str(w, "</body>\n</html>\n");
    return fil_writer_flush(w);
}
