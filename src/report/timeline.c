/* SPDX-License-Identifier: MIT */
/*
 * timeline.c - memory over time, as an inline SVG plot in index.html.
 *
 * The launcher samples the program's tracked total and its resident set
 * every few milliseconds and keeps at most a fixed number of points, each
 * the highest values of its interval (src/cli/sample.c); this file draws
 * them: tracked bytes and RSS against seconds since the start, two
 * polylines over a grid with round tick values (1, 2 or 5 times a power of
 * ten, in B/KiB/MiB/GiB and seconds), the peak of tracked memory marked
 * with a dot and its size, and one moment (the out-of-memory, the kill,
 * the report on demand) marked with a vertical line. A sentence under the
 * plot says that it is sampled and at which resolution (invariant 6: what
 * is sampled says so). Plain SVG inside the page: no script, no network.
 *
 * Geometry is integer, in tenths of a pixel, through fil_report_scale.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: strlen.
 */
#include <string.h>

#include "report_internal.h"

#define PLOT_W 1000 /* whole image, px */
#define PLOT_H 270
#define MARGIN_L 84 /* room for the y labels */
#define MARGIN_R 24
#define MARGIN_T 26 /* room for the legend */
#define MARGIN_B 38 /* room for the x labels */
#define AREA_W (PLOT_W - MARGIN_L - MARGIN_R)
#define AREA_H (PLOT_H - MARGIN_T - MARGIN_B)
#define NS_PER_MS UINT64_C(1000000)

/* The scales of one plot. */
typedef struct axes {
    uint64_t t_max_ms; /* right edge, ms (a multiple of t_step_ms) */
    uint64_t t_step_ms;
    uint64_t unit; /* bytes per y label unit (1, KiB, MiB or GiB) */
    const char *unit_name;
    uint64_t y_step; /* y tick step, in units */
    uint64_t y_max;  /* top edge, in units (a multiple of y_step) */
} axes_t;

/*
 * Index of the first point with the most tracked bytes, or FIL_NONE for no
 * points. SIGNAL CONTEXT: caller memory only.
 */
uint32_t fil_timeline_peak(const fil_time_point_t *p, uint32_t n)
{
    uint32_t best = FIL_NONE;
    for (uint32_t i = 0; i < n; i++)
        if (best == FIL_NONE || p[i].tracked > p[best].tracked)
            best = i;
    return best;
}

/* The smallest of 1, 2, 5 times a power of ten that is at least v (v >= 1).
 * SIGNAL CONTEXT. */
static uint64_t nice_at_least(uint64_t v)
{
    uint64_t p = 1;
    for (;;) {
        if (v <= p)
            return p;
        if (v <= 2 * p)
            return 2 * p;
        if (v <= 5 * p)
            return 5 * p;
        if (p > UINT64_MAX / 100)
            return v;
        p *= 10;
    }
}

/* Round v up to a multiple of step (step >= 1). SIGNAL CONTEXT. */
static uint64_t round_up(uint64_t v, uint64_t step)
{
    return (v + step - 1) / step * step;
}

/* Choose the scales for points p[0..n) and the marked moment. SIGNAL CONTEXT. */
static void choose_axes(axes_t *a, const fil_time_point_t *p, uint32_t n,
                        const fil_timeline_marks_t *m)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB"};
    uint64_t t_end = m->end_label ? m->end_ns : 0, y_top = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t end = p[i].t_ns + m->step_ns;
        t_end = end > t_end ? end : t_end;
        y_top = p[i].tracked > y_top ? p[i].tracked : y_top;
        y_top = p[i].rss > y_top ? p[i].rss : y_top;
    }
    uint64_t ms = (t_end + NS_PER_MS - 1) / NS_PER_MS;
    a->t_step_ms = nice_at_least(ms / 6 ? ms / 6 : 1);
    a->t_max_ms = round_up(ms ? ms : 1, a->t_step_ms);
    int u = 0;
    while (u < 3 && y_top >= (UINT64_C(4) << (10 * (u + 1))))
        u++;
    a->unit = UINT64_C(1) << (10 * u);
    a->unit_name = names[u];
    uint64_t units = (y_top + a->unit - 1) / a->unit;
    a->y_step = nice_at_least(units / 4 ? units / 4 : 1);
    a->y_max = round_up(units, a->y_step);
}

/* Append v tenths as "12.3". SIGNAL CONTEXT. */
static void write_tenths(fil_writer_t *w, uint64_t v)
{
    fil_write_u64(w, v / 10);
    fil_write_char(w, '.');
    fil_write_char(w, (char)('0' + v % 10));
}

/* Append ms as seconds with the decimals `step_ms` needs ("0.25", "12").
 * SIGNAL CONTEXT. */
static void write_seconds(fil_writer_t *w, uint64_t ms, uint64_t step_ms)
{
    int decimals = step_ms % 1000 == 0 ? 0 : step_ms % 100 == 0 ? 1 : step_ms % 10 == 0 ? 2 : 3;
    uint64_t frac = ms % 1000;
    fil_write_u64(w, ms / 1000);
    if (decimals == 0)
        return;
    fil_write_char(w, '.');
    for (int d = 0, div = 100; d < decimals; d++, div /= 10)
        fil_write_char(w, (char)('0' + frac / (uint64_t)div % 10));
}

/* x of time t_ns, tenths of a px. SIGNAL CONTEXT. */
static uint64_t x_of(const axes_t *a, uint64_t t_ns)
{
    uint64_t total = a->t_max_ms * NS_PER_MS;
    uint64_t t = t_ns < total ? t_ns : total;
    return 10 * MARGIN_L + fil_report_scale(t, total, 10 * AREA_W);
}

/* y of b bytes, tenths of a px. SIGNAL CONTEXT. */
static uint64_t y_of(const axes_t *a, uint64_t b)
{
    uint64_t total = a->y_max * a->unit;
    uint64_t v = b < total ? b : total;
    return 10 * (MARGIN_T + AREA_H) - fil_report_scale(v, total, 10 * AREA_H);
}

/* One <text> at (x10, y10) with an anchor and a class. SIGNAL CONTEXT. */
static void text_at(fil_writer_t *w, uint64_t x10, uint64_t y10, const char *anchor,
                    const char *cls)
{
    fil_write_str(w, "<text x=\"");
    write_tenths(w, x10);
    fil_write_str(w, "\" y=\"");
    write_tenths(w, y10);
    fil_write_str(w, "\" text-anchor=\"");
    fil_write_str(w, anchor);
    fil_write_str(w, "\" class=\"");
    fil_write_str(w, cls);
    fil_write_str(w, "\">");
}

/* The grid, the tick labels and the axis names. SIGNAL CONTEXT. */
static void write_grid(fil_writer_t *w, const axes_t *a)
{
    for (uint64_t v = 0; v <= a->y_max; v += a->y_step) {
        uint64_t y = y_of(a, v * a->unit);
        fil_write_str(w, "<line class=\"grid\" x1=\"");
        write_tenths(w, 10 * MARGIN_L);
        fil_write_str(w, "\" x2=\"");
        write_tenths(w, 10 * (MARGIN_L + AREA_W));
        fil_write_str(w, "\" y1=\"");
        write_tenths(w, y);
        fil_write_str(w, "\" y2=\"");
        write_tenths(w, y);
        fil_write_str(w, "\"/>");
        text_at(w, 10 * (MARGIN_L - 6), y + 35, "end", "tick");
        fil_write_u64(w, v);
        fil_write_char(w, ' ');
        fil_write_str(w, a->unit_name);
        fil_write_str(w, "</text>\n");
    }
    for (uint64_t ms = 0; ms <= a->t_max_ms; ms += a->t_step_ms) {
        uint64_t x = x_of(a, ms * NS_PER_MS);
        text_at(w, x, 10 * (MARGIN_T + AREA_H + 16), "middle", "tick");
        write_seconds(w, ms, a->t_step_ms);
        fil_write_str(w, "</text>\n");
    }
    text_at(w, 10 * (MARGIN_L + AREA_W), 10 * (PLOT_H - 4), "end", "tick");
    fil_write_str(w, "seconds since the start</text>\n");
}

/* One curve: field 0 tracked, 1 RSS (points with an unknown RSS skipped).
 * SIGNAL CONTEXT. */
static void write_curve(fil_writer_t *w, const axes_t *a, const fil_time_point_t *p, uint32_t n,
                        int rss, const char *cls)
{
    fil_write_str(w, "<polyline class=\"");
    fil_write_str(w, cls);
    fil_write_str(w, "\" points=\"");
    for (uint32_t i = 0; i < n && !w->failed; i++) {
        uint64_t b = rss ? p[i].rss : p[i].tracked;
        if (rss && b == 0)
            continue;
        write_tenths(w, x_of(a, p[i].t_ns));
        fil_write_char(w, ',');
        write_tenths(w, y_of(a, b));
        fil_write_char(w, ' ');
    }
    fil_write_str(w, "\"/>\n");
}

/* The peak dot and its label, the marked moment, the legend. SIGNAL CONTEXT. */
static void write_marks(fil_writer_t *w, const axes_t *a, const fil_time_point_t *p, uint32_t n,
                        const fil_timeline_marks_t *m)
{
    uint32_t k = fil_timeline_peak(p, n);
    if (k != FIL_NONE) {
        uint64_t x = x_of(a, p[k].t_ns), y = y_of(a, p[k].tracked);
        fil_write_str(w, "<circle class=\"peak\" r=\"4\" cx=\"");
        write_tenths(w, x);
        fil_write_str(w, "\" cy=\"");
        write_tenths(w, y);
        fil_write_str(w, "\"/>");
        text_at(w, x, y > 10 * (MARGIN_T + 12) ? y - 80 : y + 140,
                x > 10 * (MARGIN_L + AREA_W * 3 / 4) ? "end" : "middle", "peak");
        fil_write_str(w, "peak ");
        fil_write_size(w, p[k].tracked);
        fil_write_str(w, " at ");
        write_seconds(w, p[k].t_ns / NS_PER_MS, m->step_ns / NS_PER_MS ? m->step_ns / NS_PER_MS : 1);
        fil_write_str(w, " s</text>\n");
    }
    if (m->end_label) {
        uint64_t x = x_of(a, m->end_ns);
        fil_write_str(w, "<line class=\"end\" y1=\"");
        write_tenths(w, 10 * MARGIN_T);
        fil_write_str(w, "\" y2=\"");
        write_tenths(w, 10 * (MARGIN_T + AREA_H));
        fil_write_str(w, "\" x1=\"");
        write_tenths(w, x);
        fil_write_str(w, "\" x2=\"");
        write_tenths(w, x);
        fil_write_str(w, "\"/>");
        /* at the foot of its line: the peak's label is near the top */
        text_at(w, x > 40 ? x - 40 : x, 10 * (MARGIN_T + AREA_H - 8), "end", "end");
        fil_write_xml(w, m->end_label, strlen(m->end_label));
        fil_write_str(w, "</text>\n");
    }
    text_at(w, 10 * MARGIN_L, 10 * (MARGIN_T - 10), "start", "tracked");
    fil_write_str(w, "\xe2\x80\x94 tracked by fil-profile</text>");
    text_at(w, 10 * (MARGIN_L + 230), 10 * (MARGIN_T - 10), "start", "rss");
    fil_write_str(w, "\xe2\x80\x94 resident (RSS)</text>\n");
}

/* "Sampled every 10 ms; 1,234 points, each the highest of 40 ms." */
static void write_note(fil_writer_t *w, uint32_t n, const fil_timeline_marks_t *m)
{
    fil_write_str(w, "<p class=\"help\">Sampled by the launcher every ");
    fil_write_u64(w, m->sample_ns / NS_PER_MS ? m->sample_ns / NS_PER_MS : 1);
    fil_write_str(w, " ms from the shared state (tracked) and /proc (RSS); ");
    fil_write_u64(w, n);
    fil_write_str(w, " points, each the highest value of ");
    fil_write_u64(w, m->step_ns / NS_PER_MS ? m->step_ns / NS_PER_MS : 1);
    fil_write_str(w, " ms, and a peak between two samples is still counted, so the tracked "
                     "curve reaches the true peak. RSS includes what the profiler and the "
                     "interpreter hold.</p>\n");
}

/*
 * The whole section (see fil/report.h). With no points it says so instead
 * of drawing. SIGNAL CONTEXT: caller memory only.
 */
void fil_html_timeline(fil_writer_t *w, const char *heading, const fil_time_point_t *p, uint32_t n,
                       const fil_timeline_marks_t *m)
{
    axes_t a;
    fil_write_str(w, "<section class=\"timeline\">\n<h2>");
    fil_write_xml(w, heading, strlen(heading));
    fil_write_str(w, "</h2>\n");
    if (n == 0) {
        fil_write_str(w, "<p class=\"help\">No samples: the program ended before the first "
                         "one.</p>\n</section>\n");
        return;
    }
    choose_axes(&a, p, n, m);
    fil_write_str(w, "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" "
                     "viewBox=\"0 0 1000 270\" width=\"100%\" role=\"img\">\n"
                     "<title>Tracked and resident memory over time</title>\n"
                     "<style>.grid{stroke:#e4e0d8;stroke-width:1}"
                     ".tick{font:12px sans-serif;fill:#555}"
                     "polyline{fill:none;stroke-width:2;stroke-linejoin:round}"
                     "polyline.tracked{stroke:#d9822b}polyline.rss{stroke:#2c6fbb}"
                     "text.tracked{font:12px sans-serif;fill:#d9822b}"
                     "text.rss{font:12px sans-serif;fill:#2c6fbb}"
                     "circle.peak{fill:#c0392b}text.peak{font:bold 12px sans-serif;fill:#c0392b}"
                     "line.end{stroke:#8e44ad;stroke-width:1.5;stroke-dasharray:5,3}"
                     "text.end{font:bold 12px sans-serif;fill:#8e44ad}</style>\n");
    write_grid(w, &a);
    write_curve(w, &a, p, n, 1, "rss");
    write_curve(w, &a, p, n, 0, "tracked");
    write_marks(w, &a, p, n, m);
    fil_write_str(w, "</svg>\n");
    write_note(w, n, m);
    fil_write_str(w, "</section>\n");
}
