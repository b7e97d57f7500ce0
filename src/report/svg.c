/* SPDX-License-Identifier: MIT */
/*
 * svg.c - draws the flamegraph SVG from the layout computed in svg_layout.c.
 *
 * Output is a standalone SVG 1.1 document: a title and optional subtitle at
 * the top, an "all" box spanning the full width at level 0, and one
 * <g class="frame"> per drawn node holding a <title> tooltip (label, source
 * line, "N bytes (P.PP%)"), a <rect> and, when at least three characters fit
 * at ~7 px each, a <text> clipped with "..". Normal orientation stacks levels
 * upwards from the bottom (flamegraph); inverted hangs them from the top
 * (icicle). Every user-provided string goes through fil_write_xml, so the
 * document is well-formed for any input bytes. Colors are a deterministic
 * function of the function name (warm hues), or of the raw label (grey-blue
 * when it starts with '['), so equal functions share a color across
 * reports. Frames live in <g id="frames"> so interactivity can be added with
 * a script later without changing the drawing.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none beyond the writer.
 */
#include <string.h>

#include "report_internal.h"

#define SVG_LEVEL_H 16     /* px per level */
#define SVG_BOX_H 15       /* px height of a box (1 px gap between levels) */
#define SVG_BOTTOM 10      /* px below the lowest level */
#define SVG_TOP 36         /* px above the first level: title only */
#define SVG_TOP_SUB 54     /* ... title and subtitle */
#define SVG_CHAR_W 7       /* px per character of box text */
#define SVG_PAD 3          /* px between box edge and text */
#define SVG_DEFAULT_W 1200 /* width when opts say 0 */
#define SVG_MIN_W 100      /* narrower requests are widened */
#define SVG_MAX_W 100000   /* keeps centi-px ranges below 2^27 */

/* One drawing in progress. */
typedef struct svg_ctx {
    const fil_report_svg_layout_t *L; /* geometry */
    fil_writer_t *w;                  /* output */
    int inverted;                     /* icicle: level 0 at the top */
    uint64_t height;                  /* image height, px */
    uint32_t width;                   /* image width, px */
    uint32_t top;                     /* px above level 0 when inverted */
} svg_ctx_t;

/* One box to draw. */
typedef struct svg_box {
    uint32_t level;                 /* 0 = the "all" box */
    uint64_t off, bytes;            /* left edge and width, in bytes */
    const fil_report_label_t *name; /* tooltip first line */
    const char *src;                /* tooltip second line, or NULL */
    size_t src_len;                 /* its length */
    const fil_report_label_t *text; /* text drawn in the box, clipped */
    uint32_t rgb[3];                /* fill color */
} svg_box_t;

static const char svg_style[] =
    "<style type=\"text/css\">\n"
    "text{font-family:monospace;font-size:11px;fill:#000}\n"
    ".title{font-family:sans-serif;font-size:17px;text-anchor:middle}\n"
    ".subtitle{font-family:sans-serif;font-size:12px;fill:#555;text-anchor:middle}\n"
    ".note{font-family:sans-serif;font-size:14px;text-anchor:middle}\n"
    ".frame rect{stroke:#fdfaf5;stroke-width:0.5}\n"
    "</style>\n";

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

/*
 * Write l escaped, cut to at most `fit` characters: if it is longer, the
 * first fit - 2 characters then "..". SIGNAL CONTEXT: caller memory only.
 */
static void write_clipped(fil_writer_t *w, const fil_report_label_t *l, size_t fit)
{
    size_t total = 0, budget;
    for (int i = 0; i < l->n; i++)
        total += fil_report_utf8_chars(l->part[i], l->len[i]);
    if (total <= fit) {
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
    fil_write_str(w, "<title>");
    write_label(w, b->name);
    if (b->src && b->src_len > 0) {
        fil_write_char(w, '\n');
        fil_write_xml(w, b->src, b->src_len);
    }
    fil_write_char(w, '\n');
    fil_write_u64(w, b->bytes);
    fil_write_str(w, " bytes (");
    write_percent(w, b->bytes, S->L->total);
    fil_write_str(w, "%)</title>");
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

/* One <g class="frame"> for b. SIGNAL CONTEXT: caller memory only. */
static void write_box(const svg_ctx_t *S, const svg_box_t *b)
{
    fil_writer_t *w = S->w;
    uint64_t x = fil_report_svg_x(S->L, b->off);
    uint64_t wc = fil_report_svg_x(S->L, b->off + b->bytes) - x;
    uint64_t y = level_y(S, b->level);
    uint64_t inner = 100 * 2 * SVG_PAD;
    uint64_t fit = wc > inner ? (wc - inner) / (100 * SVG_CHAR_W) : 0;
    fil_write_str(w, "<g class=\"frame\">");
    write_tooltip(S, b);
    write_rect(w, b, x, y, wc);
    if (fit >= 3) {
        fil_write_str(w, "<text x=\"");
        write_centi(w, x + 100 * SVG_PAD);
        fil_write_str(w, "\" y=\"");
        fil_write_u64(w, y + SVG_BOX_H - 4);
        fil_write_str(w, "\">");
        write_clipped(w, b->text, fit);
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

/* Fill color of a frame: warm by function name, grey-blue for "[...]" raw
 * labels. SIGNAL CONTEXT: caller memory only. */
static void frame_color(const fil_frame_t *f, uint32_t rgb[3])
{
    const char *s = f->raw ? f->raw : f->func;
    size_t n = f->raw ? f->raw_len : f->func_len;
    uint32_t h = s ? name_hash(s, n) : 0;
    if (f->raw && n > 0 && s[0] == '[') {
        rgb[0] = 120 + h % 31;
        rgb[1] = 140 + (h >> 8) % 31;
        rgb[2] = 180 + (h >> 16) % 41;
    } else {
        rgb[0] = 205 + h % 51;
        rgb[1] = 80 + (h >> 8) % 141;
        rgb[2] = (h >> 16) % 56;
    }
}

/* Draw node i of the layout. SIGNAL CONTEXT: caller memory only. */
static void write_node(const svg_ctx_t *S, uint32_t i)
{
    const fil_report_svg_layout_t *L = S->L;
    fil_frame_t f = {0};
    fil_report_label_t name, text;
    svg_box_t b;
    L->t->frame(L->t->ctx, i, &f);
    fil_report_label(&f, &name);
    fil_report_label(&f, &text);
    fil_report_label_add_source(&f, &text);
    b.level = L->level[i];
    b.off = L->xoff[i];
    b.bytes = L->incl[i];
    b.name = &name;
    b.src = f.source;
    b.src_len = f.source_len;
    b.text = &text;
    frame_color(&f, b.rgb);
    write_box(S, &b);
}

/* Draw the full-width "all" box. SIGNAL CONTEXT: caller memory only. */
static void write_all(const svg_ctx_t *S)
{
    fil_report_label_t name = {.n = 0}, text = {.n = 0};
    svg_box_t b = {.level = 0, .off = 0, .bytes = S->L->total, .name = &name, .text = &text};
    fil_report_label_add(&name, "all", 3);
    fil_report_label_add(&text, "all (", 5);
    fil_report_label_add(&text, text.num, fil_fmt_u64(text.num, S->L->total));
    fil_report_label_add(&text, " bytes, 100%)", 13);
    b.rgb[0] = 214;
    b.rgb[1] = 160;
    b.rgb[2] = 120;
    write_box(S, &b);
}

/* Write the prolog, style, background, title and subtitle. SIGNAL CONTEXT. */
static void write_header(const svg_ctx_t *S, const fil_svg_opts_t *o)
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
    fil_write_str(w, "\">\n");
    fil_write_str(w, svg_style);
    fil_write_str(w, "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#fdfaf5\"/>\n");
    fil_write_str(w, "<text class=\"title\" x=\"");
    write_centi(w, (uint64_t)S->width * 50);
    fil_write_str(w, "\" y=\"24\">");
    if (o->title)
        fil_write_xml(w, o->title, strlen(o->title));
    fil_write_str(w, "</text>\n");
    if (o->subtitle) {
        fil_write_str(w, "<text class=\"subtitle\" x=\"");
        write_centi(w, (uint64_t)S->width * 50);
        fil_write_str(w, "\" y=\"44\">");
        fil_write_xml(w, o->subtitle, strlen(o->subtitle));
        fil_write_str(w, "</text>\n");
    }
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
    uint64_t range;
    o = o ? o : &defaults;
    S.inverted = o->inverted;
    S.width = o->width == 0 ? SVG_DEFAULT_W : o->width;
    S.width = S.width < SVG_MIN_W ? SVG_MIN_W : S.width > SVG_MAX_W ? SVG_MAX_W : S.width;
    S.top = o->subtitle ? SVG_TOP_SUB : SVG_TOP;
    range = 100 * ((uint64_t)S.width - 2 * FIL_SVG_SIDE);
    if (fil_report_svg_layout(&L, t, range, scratch, cap) < 0)
        return -1;
    S.height = S.top + SVG_BOTTOM + ((uint64_t)L.max_level + 1) * SVG_LEVEL_H;
    write_header(&S, o);
    if (L.total == 0) {
        fil_write_str(w, "<text class=\"note\" x=\"");
        write_centi(w, (uint64_t)S.width * 50);
        fil_write_str(w, "\" y=\"");
        fil_write_u64(w, S.top + 12);
        fil_write_str(w, "\">No memory tracked</text>\n");
    } else {
        write_frames(&S);
    }
    fil_write_str(w, "</svg>\n");
    return fil_writer_flush(w);
}
