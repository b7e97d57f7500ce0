/* SPDX-License-Identifier: MIT */
/*
 * svg.c - draws the flamegraph SVG: fold, lay out, write.
 *
 * The tree is first folded (fold.c) so that what cannot be seen does not
 * take room: frames narrower than FIL_SVG_MIN_CENTIPX, beyond the
 * FIL_SVG_MAX_NODES biggest, or deeper than FIL_SVG_MAX_DEPTH are summed
 * into remainder boxes labelled with how many call stacks they hold. The
 * folded tree is laid out by svg_layout.c and written as a standalone SVG
 * 1.1 document: a title, an optional subtitle, a hint line (replaced by
 * the search bar when scripts run), a details line, an "all" box spanning
 * the full width at level 0, and one <g class="frame"> per drawn node
 * holding a <title> tooltip, a <rect> and, when at least three characters
 * fit at ~7 px each, a <text> clipped with "..". Icicle orientation (level
 * 0 at the top) puts the program's first frames right under the title, so
 * they are on the first screen however deep the stacks go; the flame
 * orientation (roots at the bottom) is kept as an option.
 *
 * Box text: the short label (library paths cut to their importable part),
 * the size, the source text. Tooltip lines: the short label, the full path
 * when it was shortened, the source text, then "<size>, <percent> (<bytes>
 * bytes)". Each <g> carries data-o / data-b / data-l (and data-t when the
 * text was clipped) for the inline script (svg_script.c), which adds zoom,
 * search and details without changing the static drawing.
 *
 * Colours are a deterministic function of the function name, so equal
 * functions share a colour across reports: the program's own frames in
 * saturated oranges (where the eye goes first), library frames in pale
 * sand, "[...]" labels (remainders, native frames, no Python stack) in
 * grey-blue. Every string from the program goes through fil_write_xml, so
 * the document is well-formed for any input bytes.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none beyond the writer.
 */
#include <string.h>

#include "report_internal.h"

#define SVG_LEVEL_H 16     /* px per level */
#define SVG_BOX_H 15       /* px height of a box (1 px gap between levels) */
#define SVG_BOTTOM 10      /* px below the lowest level */
#define SVG_TITLE_Y 24     /* baseline of the title */
#define SVG_ROW 20         /* px per header row (subtitle, hint, details) */
#define SVG_CHAR_W 7       /* px per character of box text */
#define SVG_PAD 3          /* px between box edge and text */
#define SVG_DEFAULT_W 1200 /* width when opts say 0 */
#define SVG_MIN_W 100      /* narrower requests are widened */
#define SVG_MAX_W 100000   /* keeps centi-px ranges below 2^27 */
#define SVG_PATH_SHOW 600  /* characters of a full path in a tooltip */

/* One drawing in progress. */
typedef struct svg_ctx {
    const fil_report_svg_layout_t *L; /* geometry */
    fil_writer_t *w;                  /* output */
    int inverted;                     /* icicle: level 0 at the top */
    uint64_t height;                  /* image height, px */
    uint32_t width;                   /* image width, px */
    uint32_t hint_y;                  /* top of the hint row */
    uint32_t details_y;               /* baseline of the details line */
    uint32_t top;                     /* px above level 0 when inverted */
} svg_ctx_t;

/* One box to draw. */
typedef struct svg_box {
    uint32_t level;                 /* 0 = the "all" box */
    uint64_t off, bytes;            /* left edge and width, in bytes */
    const fil_report_label_t *name; /* short label: text and tooltip */
    const char *path;               /* full path for the tooltip, or NULL */
    size_t path_len;
    const char *src; /* source text, or NULL */
    size_t src_len;
    uint32_t rgb[3]; /* fill color */
} svg_box_t;

/* Write v / 100 with two decimals, e.g. "12.05". SIGNAL CONTEXT. */
static void write_centi(fil_writer_t *w, uint64_t v)
{
    fil_write_u64(w, v / 100);
    fil_write_char(w, '.');
    fil_write_char(w, (char)('0' + v / 10 % 10));
    fil_write_char(w, (char)('0' + v % 10));
}

/* Write every piece of l escaped. SIGNAL CONTEXT: caller memory only. */
static void write_label(fil_writer_t *w, const fil_report_label_t *l)
{
    for (int i = 0; i < l->n; i++)
        fil_write_xml(w, l->part[i], l->len[i]);
}

/* Characters of l. SIGNAL CONTEXT: caller memory only. */
static size_t label_chars(const fil_report_label_t *l)
{
    size_t total = 0;
    for (int i = 0; i < l->n; i++)
        total += fil_report_utf8_chars(l->part[i], l->len[i]);
    return total;
}

/*
 * Write l escaped, cut to at most `fit` characters (>= 3): if it is longer,
 * the first fit - 2 characters then "..". SIGNAL CONTEXT: caller memory.
 */
static void write_clipped(fil_writer_t *w, const fil_report_label_t *l, size_t fit)
{
    size_t budget;
    if (label_chars(l) <= fit) {
        write_label(w, l);
        return;
    }
    budget = fit - 2;
    for (int i = 0; i < l->n && budget > 0; i++) {
        size_t n = fil_report_utf8_prefix(l->part[i], l->len[i], budget);
        fil_write_xml(w, l->part[i], n);
        budget -= fil_report_utf8_chars(l->part[i], n);
    }
    fil_write_str(w, "..");
}

/* Percent of total with two decimals, integers only. SIGNAL CONTEXT. */
static void write_percent(fil_writer_t *w, uint64_t part, uint64_t total)
{
    write_centi(w, fil_report_scale(part, total, 10000));
}

/* y of the top of a box at `level`, px. SIGNAL CONTEXT: caller memory only. */
static uint64_t level_y(const svg_ctx_t *S, uint32_t level)
{
    if (S->inverted)
        return S->top + (uint64_t)level * SVG_LEVEL_H;
    return S->height - SVG_BOTTOM - ((uint64_t)level + 1) * SVG_LEVEL_H;
}

/* The <title> tooltip of b. SIGNAL CONTEXT: caller memory only. */
static void write_tooltip(const svg_ctx_t *S, const svg_box_t *b)
{
    fil_writer_t *w = S->w;
    char size[24];
    fil_write_str(w, "<title>");
    write_label(w, b->name);
    if (b->path && b->path_len > 0) {
        size_t chars = fil_report_utf8_chars(b->path, b->path_len), cut = 0;
        fil_write_char(w, '\n');
        if (chars > SVG_PATH_SHOW) { /* keeps every box small: the end says most */
            cut = fil_report_utf8_prefix(b->path, b->path_len, chars - SVG_PATH_SHOW);
            fil_write_str(w, "...");
        }
        fil_write_xml(w, b->path + cut, b->path_len - cut);
    }
    if (b->src && b->src_len > 0) {
        fil_write_char(w, '\n');
        fil_write_xml(w, b->src, b->src_len);
    }
    fil_write_char(w, '\n');
    fil_write_mem(w, size, fil_report_size_text(size, b->bytes));
    fil_write_str(w, ", ");
    write_percent(w, b->bytes, S->L->total);
    fil_write_str(w, "% (");
    fil_write_u64(w, b->bytes);
    fil_write_str(w, " bytes)</title>");
}

/* The <rect> of b at x (centi-px), y (px), width wc (centi-px). SIGNAL CONTEXT. */
static void write_rect(fil_writer_t *w, const svg_box_t *b, uint64_t x, uint64_t y, uint64_t wc)
{
    fil_write_str(w, "<rect x=\"");
    write_centi(w, x);
    fil_write_str(w, "\" y=\"");
    fil_write_u64(w, y);
    fil_write_str(w, "\" width=\"");
    write_centi(w, wc);
    fil_write_str(w, "\" height=\"");
    fil_write_u64(w, SVG_BOX_H);
    fil_write_str(w, "\" fill=\"rgb(");
    for (int i = 0; i < 3; i++) {
        fil_write_u64(w, b->rgb[i]);
        fil_write_char(w, i < 2 ? ',' : ')');
    }
    fil_write_str(w, "\"/>");
}

/* The text drawn in b's box: label, size, source. SIGNAL CONTEXT. */
static void box_text(const svg_box_t *b, fil_report_label_t *t, char *size)
{
    *t = *b->name; /* its pieces still point into b->name, which outlives t */
    fil_report_label_add(t, "  ", 2);
    fil_report_label_add(t, size, fil_report_size_text(size, b->bytes));
    if (b->src && b->src_len > 0) {
        fil_report_label_add(t, "  ", 2);
        fil_report_label_add(t, b->src, b->src_len);
    }
}

/* The opening <g> with the script's data attributes. SIGNAL CONTEXT. */
static void write_group(const svg_ctx_t *S, const svg_box_t *b, const fil_report_label_t *text,
                        size_t fit)
{
    fil_writer_t *w = S->w;
    fil_write_str(w, "<g class=\"frame\" data-o=\"");
    fil_write_u64(w, b->off);
    fil_write_str(w, "\" data-b=\"");
    fil_write_u64(w, b->bytes);
    fil_write_str(w, "\" data-l=\"");
    fil_write_u64(w, b->level);
    if (fit < 3 || label_chars(text) > fit) {
        fil_write_str(w, "\" data-t=\"");
        write_label(w, text);
    }
    fil_write_str(w, "\">");
}

/* One <g class="frame"> for b. SIGNAL CONTEXT: caller memory only. */
static void write_box(const svg_ctx_t *S, const svg_box_t *b)
{
    fil_writer_t *w = S->w;
    uint64_t x = fil_report_svg_x(S->L, b->off);
    uint64_t wc = fil_report_svg_x(S->L, b->off + b->bytes) - x;
    uint64_t y = level_y(S, b->level);
    uint64_t inner = 100 * 2 * SVG_PAD;
    size_t fit = wc > inner ? (size_t)((wc - inner) / (100 * SVG_CHAR_W)) : 0;
    fil_report_label_t text;
    char size[24];
    box_text(b, &text, size);
    write_group(S, b, &text, fit);
    write_tooltip(S, b);
    write_rect(w, b, x, y, wc);
    if (fit >= 3) {
        fil_write_str(w, "<text x=\"");
        write_centi(w, x + 100 * SVG_PAD);
        fil_write_str(w, "\" y=\"");
        fil_write_u64(w, y + SVG_BOX_H - 4);
        fil_write_str(w, "\">");
        write_clipped(w, &text, fit);
        fil_write_str(w, "</text>");
    }
    fil_write_str(w, "</g>\n");
}

/* FNV-1a hash of s[0..n). SIGNAL CONTEXT: caller memory only. */
static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Fill color of a frame (see the file comment). SIGNAL CONTEXT. */
static void frame_color(const fil_frame_t *f, int library, uint32_t rgb[3])
{
    const char *s = f->raw ? f->raw : f->func;
    size_t n = f->raw ? f->raw_len : f->func_len;
    uint32_t h = s ? name_hash(s, n) : 0;
    if (f->raw && n > 0 && s[0] == '[') {
        rgb[0] = 120 + h % 31;
        rgb[1] = 140 + (h >> 8) % 31;
        rgb[2] = 180 + (h >> 16) % 41;
    } else if (library) {
        rgb[0] = 225 + h % 26;
        rgb[1] = 195 + (h >> 8) % 36;
        rgb[2] = 120 + (h >> 16) % 51;
    } else {
        rgb[0] = 225 + h % 31;
        rgb[1] = 95 + (h >> 8) % 71;
        rgb[2] = 30 + (h >> 16) % 41;
    }
}

/* Draw node i of the layout. SIGNAL CONTEXT: caller memory only. */
static void write_node(const svg_ctx_t *S, uint32_t i)
{
    const fil_report_svg_layout_t *L = S->L;
    fil_frame_t f = {0};
    fil_report_label_t name;
    svg_box_t b;
    int library, shortened;
    L->t->frame(L->t->ctx, i, &f);
    library = fil_report_label_short(&f, &name);
    shortened = !f.raw && (name.part[0] != f.file || name.len[0] != f.file_len);
    b.level = L->level[i];
    b.off = L->xoff[i];
    b.bytes = L->incl[i];
    b.name = &name;
    b.path = shortened ? f.file : NULL;
    b.path_len = shortened ? f.file_len : 0;
    b.src = f.source;
    b.src_len = f.source_len;
    frame_color(&f, library, b.rgb);
    write_box(S, &b);
}

/* Draw the full-width "all" box. SIGNAL CONTEXT: caller memory only. */
static void write_all(const svg_ctx_t *S)
{
    fil_report_label_t name = {.n = 0};
    svg_box_t b = {.level = 0, .off = 0, .bytes = S->L->total, .name = &name};
    fil_report_label_add(&name, "all", 3);
    b.rgb[0] = 214;
    b.rgb[1] = 160;
    b.rgb[2] = 120;
    write_box(S, &b);
}

/* Write one header text line of class cls at baseline y. SIGNAL CONTEXT. */
static void write_line(const svg_ctx_t *S, const char *cls, const char *id, uint32_t y,
                       const char *s)
{
    fil_writer_t *w = S->w;
    fil_write_str(w, "<text class=\"");
    fil_write_str(w, cls);
    if (id) {
        fil_write_str(w, "\" id=\"");
        fil_write_str(w, id);
    }
    fil_write_str(w, "\" x=\"");
    fil_write_u64(w, FIL_SVG_SIDE);
    fil_write_str(w, "\" y=\"");
    fil_write_u64(w, y);
    fil_write_str(w, "\">");
    if (s)
        fil_write_xml(w, s, strlen(s));
    fil_write_str(w, "</text>\n");
}

/* The prolog: <svg> with the script's data, style, background. SIGNAL CONTEXT. */
static void write_prolog(const svg_ctx_t *S)
{
    fil_writer_t *w = S->w;
    fil_write_str(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"");
    fil_write_u64(w, S->width);
    fil_write_str(w, "\" height=\"");
    fil_write_u64(w, S->height);
    fil_write_str(w, "\" viewBox=\"0 0 ");
    fil_write_u64(w, S->width);
    fil_write_char(w, ' ');
    fil_write_u64(w, S->height);
    fil_write_str(w, "\" data-width=\"");
    fil_write_u64(w, S->width);
    fil_write_str(w, "\" data-side=\"");
    fil_write_u64(w, FIL_SVG_SIDE);
    fil_write_str(w, "\" data-total=\"");
    fil_write_u64(w, S->L->total);
    fil_write_str(w, "\">\n<style type=\"text/css\"><![CDATA[\n");
    fil_write_str(w, fil_svg_style);
    fil_write_str(w, "]]></style>\n");
    fil_write_str(w, "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#fdfaf5\"/>\n");
}

/* Title, subtitle, hint and the (empty) details line. SIGNAL CONTEXT. */
static void write_header(const svg_ctx_t *S, const fil_svg_opts_t *o)
{
    fil_writer_t *w = S->w;
    write_line(S, "title", NULL, SVG_TITLE_Y, o->title);
    if (o->subtitle)
        write_line(S, "subtitle", NULL, SVG_TITLE_Y + SVG_ROW, o->subtitle);
    fil_write_str(w, "<text class=\"hint\" id=\"hint\" data-y=\"");
    fil_write_u64(w, S->hint_y);
    fil_write_str(w, "\" x=\"");
    fil_write_u64(w, FIL_SVG_SIDE);
    fil_write_str(w, "\" y=\"");
    fil_write_u64(w, S->hint_y + 16);
    fil_write_str(w, "\">");
    fil_write_str(w, o->reversed ? "Top row: the lines that allocated; below each, its callers. "
                                 : "Top row: the program's first frames; below each, what it "
                                   "called. ");
    fil_write_str(w, "Width is memory; hover over a box for its size and source line.</text>\n");
    write_line(S, "details", "details", S->details_y, NULL);
}

/* Draw the "all" box and every drawn node. SIGNAL CONTEXT. */
static void write_frames(const svg_ctx_t *S)
{
    const fil_report_svg_layout_t *L = S->L;
    fil_write_str(S->w, "<g id=\"frames\">\n");
    write_all(S);
    for (uint32_t k = 0; k < L->t->count && !S->w->failed; k++) {
        if (L->level[L->order[k]] != 0)
            write_node(S, L->order[k]);
    }
    fil_write_str(S->w, "</g>\n");
}

/* The script, as character data. SIGNAL CONTEXT: caller memory only. */
static void write_script(fil_writer_t *w)
{
    fil_write_str(w, "<script type=\"text/ecmascript\"><![CDATA[\n");
    fil_write_str(w, fil_svg_script);
    fil_write_str(w, "]]></script>\n");
}

/* Scratch of the fold step for `count` nodes. SIGNAL CONTEXT. */
static size_t fold_part(uint32_t count)
{
    return fil_fold_scratch_size(count, FIL_SVG_MAX_NODES);
}

/* Scratch for fil_write_svg on `count` nodes: the fold, then the layout
 * of what the fold makes. SIGNAL CONTEXT: caller memory only. */
size_t fil_svg_scratch_size(uint32_t count)
{
    size_t a = fold_part(count),
           b = fil_report_svg_layout_size(fil_fold_max_out(count, FIL_SVG_MAX_NODES));
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Set up the drawing's geometry for options o. SIGNAL CONTEXT. */
static void geometry(svg_ctx_t *S, const fil_svg_opts_t *o)
{
    S->inverted = o->inverted;
    S->width = o->width == 0 ? SVG_DEFAULT_W : o->width;
    S->width = S->width < SVG_MIN_W ? SVG_MIN_W : S->width > SVG_MAX_W ? SVG_MAX_W : S->width;
    S->hint_y = SVG_TITLE_Y + (o->subtitle ? SVG_ROW : 0) + 6;
    S->details_y = S->hint_y + 26 + 14;
    S->top = S->details_y + 8;
}

/* The fold of a drawing S: boxes of at least FIL_SVG_MIN_CENTIPX of the
 * drawing's range, which it returns (centi-px). SIGNAL CONTEXT. */
static uint64_t fold_opts(const svg_ctx_t *S, fil_fold_opts_t *fo)
{
    uint64_t range = 100 * ((uint64_t)S->width - 2 * FIL_SVG_SIDE);
    *fo = (fil_fold_opts_t){FIL_SVG_MAX_NODES, FIL_SVG_MAX_DEPTH, 1, FIL_SVG_MIN_CENTIPX, range};
    return range;
}

/* See fil/report.h. SIGNAL CONTEXT: none needed. */
uint64_t fil_svg_min_bytes(const fil_svg_opts_t *o, uint64_t total)
{
    static const fil_svg_opts_t defaults = {0};
    svg_ctx_t S = {0};
    fil_fold_opts_t fo;
    geometry(&S, o ? o : &defaults);
    fold_opts(&S, &fo);
    return fil_fold_threshold(&fo, total);
}

/*
 * Write the flamegraph of t (see fil/report.h) and flush w. o may be NULL
 * (defaults). 0, or -1 if scratch is too small, the tree is malformed or a
 * write failed. SIGNAL CONTEXT: caller memory only.
 */
int fil_write_svg(const fil_tree_t *t, const fil_svg_opts_t *o, fil_writer_t *w, void *scratch,
                  size_t cap)
{
    static const fil_svg_opts_t defaults = {0};
    fil_report_svg_layout_t L;
    svg_ctx_t S = {.L = &L, .w = w};
    fil_tree_t folded;
    fil_fold_opts_t fo;
    size_t fcap = fold_part(t->count);
    uint64_t range;
    o = o ? o : &defaults;
    geometry(&S, o);
    range = fold_opts(&S, &fo);
    if (fcap > cap || fil_tree_fold(t, &fo, &folded, scratch, fcap) < 0)
        return -1;
    if (fil_report_svg_layout(&L, &folded, range, (char *)scratch + fcap, cap - fcap) < 0)
        return -1;
    S.height = S.top + SVG_BOTTOM + ((uint64_t)L.max_level + 1) * SVG_LEVEL_H;
    write_prolog(&S);
    write_header(&S, o);
    if (L.total == 0)
        write_line(&S, "note", NULL, S.top + 12, "No memory tracked");
    else
        write_frames(&S);
    write_script(w);
    fil_write_str(w, "</svg>\n");
    return fil_writer_flush(w);
}
