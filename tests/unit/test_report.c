/* SPDX-License-Identifier: MIT */
/*
 * test_report.c - unit tests of the report module (src/report/).
 *
 * Trees are small static arrays behind fil_tree_t callbacks. Every writer is
 * run into a temporary file which is read back and checked for what a user
 * would see: exact .prof lines, a well-formed SVG (a small XML checker
 * below), box widths in pixels, reversed-tree byte counts, source line
 * texts, size strings. Golden files in tests/data/golden/ pin the whole
 * output of one small tree; FIL_REGEN_GOLDEN=1 rewrites them (see
 * scripts/regen-golden). Every *_scratch_size bound is checked with a canary
 * pattern around a misaligned scratch area. Tests may use libc freely.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fil/report.h"
#include "../../src/report/report_internal.h"

/* ---- test trees ---------------------------------------------------------- */

typedef struct tnode {
    uint32_t parent;
    uint64_t self;
    uint64_t key;
    const char *file, *func;
    uint32_t line;
    const char *src;
    const char *raw;
} tnode_t;

typedef struct ttree {
    const tnode_t *nodes;
    uint32_t count;
} ttree_t;

static uint32_t t_parent(void *ctx, uint32_t i)
{
    return ((ttree_t *)ctx)->nodes[i].parent;
}
static uint64_t t_self(void *ctx, uint32_t i)
{
    return ((ttree_t *)ctx)->nodes[i].self;
}
static uint64_t t_key(void *ctx, uint32_t i)
{
    return ((ttree_t *)ctx)->nodes[i].key;
}

/* What t_frame says of the program's common directory (test_short_labels). */
static size_t test_own_start;

static void t_frame(void *ctx, uint32_t i, fil_frame_t *f)
{
    const tnode_t *n = &((ttree_t *)ctx)->nodes[i];
    memset(f, 0x5a, sizeof(*f)); /* the callee must fill everything it uses */
    f->file = n->file;
    f->file_len = n->file ? strlen(n->file) : 0;
    f->func = n->func;
    f->func_len = n->func ? strlen(n->func) : 0;
    f->line = n->line;
    f->source = n->src;
    f->source_len = n->src ? strlen(n->src) : 0;
    f->raw = n->raw;
    f->raw_len = n->raw ? strlen(n->raw) : 0;
    f->own_start = test_own_start;
}

static fil_tree_t make_tree(ttree_t *tt, const tnode_t *nodes, uint32_t count)
{
    tt->nodes = nodes;
    tt->count = count;
    return (fil_tree_t){count, tt, t_parent, t_self, t_key, t_frame, NULL};
}

#define N FIL_NONE
/* The small tree of the golden files. Keys identify (file, line, func). */
static const tnode_t small_nodes[] = {
    /* 0 */ {N, 0, 1, "main.py", "<module>", 10, "main()", NULL},
    /* 1 */ {0, 1000, 2, "main.py", "load", 5, "data = read_all(path)", NULL},
    /* 2 */ {1, 30000, 3, "lib/io.py", "read_csv", 20, "df = pd.read_csv(path)", NULL},
    /* 3 */ {1, 5000, 4, "lib/io.py", "parse", 30, NULL, NULL},
    /* 4 */ {0, 0, 5, "main.py", "compute", 12, "compute(df)", NULL},
    /* 5 */ {4, 20000, 3, "lib/io.py", "read_csv", 20, "df = pd.read_csv(path)", NULL},
    /* 6 */ {5, 4000, 6, NULL, NULL, 0, NULL, "[native] malloc+0x10 (libc.so.6)"},
    /* 7 */ {N, 500, 7, NULL, NULL, 0, NULL, "[No Python stack]"},
    /* 8 */ {4, 1, 8, "tiny.py", "tiny", 0, NULL, NULL},
    /* 9 */ {8, 0, 9, "tiny.py", "tinier", 3, NULL, NULL},
};
#define SMALL_COUNT ((uint32_t)(sizeof(small_nodes) / sizeof(small_nodes[0])))
#define SMALL_TOTAL 60501

/* ---- capture of writer output ------------------------------------------- */

typedef struct out {
    char *data;
    size_t len;
    int rc;
} out_t;

typedef int (*write_fn)(fil_writer_t *w, void *arg);

static char *read_fd_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    lseek(fd, 0, SEEK_SET);
    while ((r = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Run fn with a writer on a temporary file and a deliberately small buffer. */
static out_t capture(write_fn fn, void *arg)
{
    char path[] = "/tmp/fil-test-report-XXXXXX";
    char wbuf[64];
    int fd = mkstemp(path);
    fil_writer_t w;
    out_t o;
    unlink(path);
    fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
    o.rc = fn(&w, arg);
    if (fil_writer_flush(&w) < 0)
        o.rc = -1;
    o.data = read_fd_all(fd, &o.len);
    close(fd);
    return o;
}

typedef struct tree_job {
    const fil_tree_t *t;
    fil_svg_opts_t opts;
} tree_job_t;

static int do_prof(fil_writer_t *w, void *arg)
{
    const fil_tree_t *t = ((tree_job_t *)arg)->t;
    size_t cap = fil_prof_scratch_size(t->count);
    void *s = malloc(cap);
    int rc = fil_write_prof(t, w, s, cap);
    free(s);
    return rc;
}

static int do_svg(fil_writer_t *w, void *arg)
{
    tree_job_t *j = arg;
    size_t cap = fil_svg_scratch_size(j->t->count);
    void *s = malloc(cap);
    int rc = fil_write_svg(j->t, &j->opts, w, s, cap);
    free(s);
    return rc;
}

static out_t prof_of(const fil_tree_t *t)
{
    tree_job_t j = {t, {0}};
    return capture(do_prof, &j);
}

static out_t svg_of(const fil_tree_t *t, const char *title, const char *sub, int inverted)
{
    tree_job_t j = {t, {title, sub, inverted, 0, 0}};
    return capture(do_svg, &j);
}

/* ---- a tiny XML well-formedness checker --------------------------------- */

static size_t utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return len;
}

/* Valid UTF-8 with only XML-legal characters. */
static int xml_chars_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(u + i, n - i);
        if (len == 0 || (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n' && u[i] != '\r'))
            return 0;
        i += len;
    }
    return 1;
}

/* An entity reference at s (starting with '&'); returns its length or 0. */
static size_t entity_len(const char *s, const char *end)
{
    static const char *const names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(names[i]);
        if ((size_t)(end - s) >= n && memcmp(s, names[i], n) == 0)
            return n;
    }
    if (end - s > 3 && s[1] == '#') {
        const char *p = s + 2;
        long v = 0;
        int hex = *p == 'x';
        p += hex;
        const char *digits = p;
        while (p < end && (hex ? (strchr("0123456789abcdefABCDEF", *p) != NULL && *p)
                               : (*p >= '0' && *p <= '9'))) {
            v = v * (hex ? 16 : 10) + (*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
            p++;
        }
        if (p > digits && p < end && *p == ';' && (v == 9 || v == 10 || v == 13 || v >= 32))
            return (size_t)(p + 1 - s);
    }
    return 0;
}

/* Character data up to the next '<' (or end): entities valid, no "]]>". */
static const char *xml_text(const char *p, const char *end, char stop)
{
    while (p < end && *p != '<' && *p != stop) {
        if (*p == '&') {
            size_t n = entity_len(p, end);
            if (!n)
                return NULL;
            p += n;
        } else {
            if (end - p >= 3 && memcmp(p, "]]>", 3) == 0)
                return NULL;
            p++;
        }
    }
    return p;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == ':' || c == '.';
}

/* Attributes after a tag name; returns the position after '>' and sets
 * *empty for "/>", or NULL. */
static const char *xml_attrs(const char *p, const char *end, int *empty)
{
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\n'))
            p++;
        if (p >= end)
            return NULL;
        if (*p == '>' || (*p == '/' && p + 1 < end && p[1] == '>')) {
            *empty = *p == '/';
            return p + 1 + *empty;
        }
        if (!name_char(*p))
            return NULL;
        while (p < end && name_char(*p))
            p++;
        if (end - p < 2 || *p != '=' || (p[1] != '"' && p[1] != '\''))
            return NULL;
        char q = p[1];
        p = xml_text(p + 2, end, q);
        if (!p || p >= end || *p != q)
            return NULL;
        p++;
    }
}

/* "</name>" at p closing the element `open`; returns the position after it. */
static const char *close_tag(const char *p, const char *end, const char *open, size_t len)
{
    const char *nm = p + 2, *q = nm;
    while (q < end && name_char(*q))
        q++;
    if ((size_t)(q - nm) != len || memcmp(nm, open, len) != 0 || q >= end || *q != '>')
        return NULL;
    return q + 1;
}

/* 1 if doc is a well-formed XML document with one root element. */
static int xml_well_formed(const char *doc, size_t n)
{
    const char *p = doc, *end = doc + n;
    const char *stack[256];
    size_t stack_len[256];
    int depth = 0, roots = 0;
    if (!xml_chars_ok(doc, n))
        return 0;
    if (n > 5 && memcmp(p, "<?xml", 5) == 0)
        p = strstr(p, "?>") + 2;
    while (p < end) {
        if (*p != '<') {
            p = xml_text(p, end, '<');
            if (!p)
                return 0;
            continue;
        }
        if ((size_t)(end - p) >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            const char *cend = strstr(p + 9, "]]>"); /* character data, as is */
            if (!cend || depth == 0)
                return 0;
            p = cend + 3;
            continue;
        }
        if (p + 1 < end && p[1] == '/') {
            if (depth == 0 || !(p = close_tag(p, end, stack[depth - 1], stack_len[depth - 1])))
                return 0;
            depth--;
            continue;
        }
        const char *nm = p + 1, *q = nm;
        int empty = 0;
        while (q < end && name_char(*q))
            q++;
        if (q == nm || depth >= 256)
            return 0;
        if (depth == 0)
            roots++;
        p = xml_attrs(q, end, &empty);
        if (!p)
            return 0;
        if (!empty) {
            stack[depth] = nm;
            stack_len[depth++] = (size_t)(q - nm);
        }
    }
    return depth == 0 && roots == 1;
}

static void test_xml_checker(void)
{
    const char *good = "<?xml version=\"1.0\"?>\n<a x=\"1 &amp; 2\"><b/>t &lt; &#10; ></a>\n";
    CHECK(xml_well_formed(good, strlen(good)));
    CHECK(!xml_well_formed("<a><b></a></b>", 14));
    CHECK(!xml_well_formed("<a>x < y</a>", 12));
    CHECK(!xml_well_formed("<a>x & y</a>", 12));
    CHECK(!xml_well_formed("<a x=\"<\"></a>", 13));
    CHECK(!xml_well_formed("<a>]]></a>", 10));
    CHECK(!xml_well_formed("<a>\xff</a>", 8));
    CHECK(!xml_well_formed("<a>&#1;</a>", 11));
    CHECK(!xml_well_formed("<a></a><b></b>", 14));
    CHECK(xml_well_formed("<a><![CDATA[x < y && ]] z]]></a>", 32));
    CHECK(!xml_well_formed("<a><![CDATA[x < y</a>", 21));
}

/* ---- writer, numbers, sizes, escaping ------------------------------------ */

typedef struct str_job {
    void (*fn)(fil_writer_t *, uint64_t);
    uint64_t v;
    const char *s;
    size_t n;
    int json;
} str_job_t;

static int do_num(fil_writer_t *w, void *arg)
{
    str_job_t *j = arg;
    j->fn(w, j->v);
    return 0;
}

static int do_escape(fil_writer_t *w, void *arg)
{
    str_job_t *j = arg;
    if (j->json)
        fil_write_json_str(w, j->s, j->n);
    else
        fil_write_xml(w, j->s, j->n);
    return 0;
}

static void check_num(void (*fn)(fil_writer_t *, uint64_t), uint64_t v, const char *want)
{
    str_job_t j = {fn, v, NULL, 0, 0};
    out_t o = capture(do_num, &j);
    CHECK(o.rc == 0);
    CHECK_STR(o.data, want);
    free(o.data);
}

static void write_i64_u(fil_writer_t *w, uint64_t v)
{
    fil_write_i64(w, (int64_t)v);
}

static void test_numbers(void)
{
    char buf[21];
    CHECK(fil_fmt_u64(buf, 0) == 1 && strcmp(buf, "0") == 0);
    CHECK(fil_fmt_u64(buf, UINT64_MAX) == 20 && strcmp(buf, "18446744073709551615") == 0);
    /* Every digit count, odd and even, and the edges of a two-digit step. */
    for (uint64_t v = 1, k = 1; k <= 19; v *= 10, k++) {
        char want[21];
        snprintf(want, sizeof want, "%" PRIu64, v - 1);
        CHECK(fil_fmt_u64(buf, v - 1) == strlen(want) && strcmp(buf, want) == 0);
        snprintf(want, sizeof want, "%" PRIu64, v);
        CHECK(fil_fmt_u64(buf, v) == k && strcmp(buf, want) == 0);
        snprintf(want, sizeof want, "%" PRIu64, v * 7 + 3);
        CHECK(fil_fmt_u64(buf, v * 7 + 3) == strlen(want) && strcmp(buf, want) == 0);
    }
    check_num(fil_write_u64, 1234567890, "1234567890");
    check_num(write_i64_u, (uint64_t)INT64_MIN, "-9223372036854775808");
    check_num(write_i64_u, (uint64_t)-42, "-42");
    check_num(write_i64_u, 7, "7");
    check_num(fil_write_hex, 0, "0x0");
    check_num(fil_write_hex, 0x1f, "0x1f");
    check_num(fil_write_hex, UINT64_MAX, "0xffffffffffffffff");
    check_num(fil_write_mib, 100 * 1048576ull, "100.0");
    check_num(fil_write_mib, 1048576ull * 3 / 2, "1.5");
    check_num(fil_write_mib, 0, "0.0");
    check_num(fil_write_gib, 2050000000ull, "1.9");
}

static void test_sizes(void)
{
    static const struct {
        uint64_t v;
        const char *s;
    } table[] = {
        {0, "0 B"},
        {512, "512 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {12595, "12.3 KiB"},
        {1048575, "1.0 MiB"}, /* rounds up into the next unit */
        {100 * 1048576ull, "100.0 MiB"},
        {105172992, "100.3 MiB"},
        {2050000000ull, "1.91 GiB"},
        {1073741824ull, "1.00 GiB"},
        {1099511627776ull, "1.00 TiB"},
        {1125899906842624ull, "1.00 PiB"},
        {UINT64_MAX, "16384.00 PiB"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        check_num(fil_write_size, table[i].v, table[i].s);
    /* Truncated: just under a bound never reads as the bound. */
    check_num(fil_write_size_down, 50 * 1048576ull - 1, "49.9 MiB");
    check_num(fil_write_size_down, 50 * 1048576ull, "50.0 MiB");
    check_num(fil_write_size_down, 1048575, "1023.9 KiB");
    check_num(fil_write_size_down, 1023, "1023 B");
}

static void check_escape(const char *in, size_t n, int json, const char *want)
{
    str_job_t j = {NULL, 0, in, n, json};
    out_t o = capture(do_escape, &j);
    CHECK_STR(o.data, want);
    free(o.data);
}

static void test_escape(void)
{
    check_escape("a<b>&\"c\".py", 11, 0, "a&lt;b&gt;&amp;&quot;c&quot;.py");
    check_escape("it's ]]>", 8, 0, "it&#39;s ]]&gt;");
    check_escape("t\tn\nr\r\x01\x7f", 8, 0, "t&#9;n&#10;r&#13;\xEF\xBF\xBD&#127;");
    check_escape("\xff\xc3(\xe2\x82\xac", 6, 0, "\xEF\xBF\xBD\xEF\xBF\xBD(\xe2\x82\xac");
    check_escape("\xed\xa0\x80", 3, 0, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
    check_escape("\xc0\xaf", 2, 0, "\xEF\xBF\xBD\xEF\xBF\xBD");                 /* overlong */
    check_escape("\xef\xbf\xbe", 3, 0, "\xEF\xBF\xBD");                         /* U+FFFE */
    check_escape("nul\0x", 5, 0, "nul\xEF\xBF\xBDx");
    check_escape("", 0, 0, "");
    check_escape("a\"b\\c\n\x01\xff\xe2\x80\xa8\xc3\xa9", 13, 1,
                 "\"a\\\"b\\\\c\\n\\u0001\\ufffd\\u2028\xc3\xa9\"");
    check_escape(NULL, 0, 1, "\"\"");
}

/* Every writer reports a failing device (ENOSPC) through its return value. */
static void test_full_device(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT);
    static char scratch[32768]; /* fil_prof_scratch_size of a small tree */
    fil_html_page_t page = {"t", "h", "peak", "c", NULL};
    char buf[64];
    fil_writer_t w;
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0)
        return;
    fil_writer_init(&w, fd, buf, sizeof(buf));
    CHECK(fil_write_prof(&t, &w, scratch, sizeof(scratch)) == -1 && w.failed);
    fil_writer_init(&w, fd, buf, sizeof(buf));
    CHECK(fil_write_svg(&t, NULL, &w, scratch, sizeof(scratch)) == -1);
    fil_writer_init(&w, fd, buf, sizeof(buf));
    fil_html_begin(&w, &page);
    fil_html_graph(&w, "g", "a.svg", "help");
    CHECK(fil_html_end(&w, "c.prof") == -1);
    close(fd);
}

static void test_writer_errors(void)
{
    char buf[64], big[200];
    int fds[2];
    fil_writer_t w;
    CHECK(pipe(fds) == 0);
    close(fds[1]);
    fil_writer_init(&w, fds[1], buf, sizeof(buf)); /* closed descriptor */
    fil_write_str(&w, "hello");
    CHECK(w.failed == 0 && w.len == 5);
    CHECK(fil_writer_flush(&w) == -1);
    CHECK(w.failed == 1 && w.len == 0 && w.written == 0);
    fil_write_str(&w, "more");
    CHECK(w.len == 0);
    CHECK(fil_writer_flush(&w) == -1);
    close(fds[0]);

    /* A write larger than the buffer goes straight through, in order. */
    memset(big, 'b', sizeof(big));
    str_job_t j = {NULL, 0, big, sizeof(big), 0};
    out_t o = capture(do_escape, &j);
    CHECK(o.len == sizeof(big) && memcmp(o.data, big, sizeof(big)) == 0);
    free(o.data);
}

/* ---- .prof ----------------------------------------------------------------- */

static const char small_prof[] =
    "main.py:10 (<module>);main.py:5 (load) 1000\n"
    "main.py:10 (<module>);main.py:5 (load);lib/io.py:20 (read_csv) 30000\n"
    "main.py:10 (<module>);main.py:5 (load);lib/io.py:30 (parse) 5000\n"
    "main.py:10 (<module>);main.py:12 (compute);lib/io.py:20 (read_csv) 20000\n"
    "main.py:10 (<module>);main.py:12 (compute);lib/io.py:20 (read_csv);"
    "[native] malloc+0x10 (libc.so.6) 4000\n"
    "[No Python stack] 500\n"
    "main.py:10 (<module>);main.py:12 (compute);tiny.py (tiny) 1\n";

static void test_prof(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT);
    out_t o = prof_of(&t);
    CHECK(o.rc == 0);
    CHECK_STR(o.data, small_prof);
    free(o.data);

    static const tnode_t hostile[] = {
        {N, 7, 1, "x;y\n.py", "f;\rg", 3, NULL, NULL},
        {0, 9, 2, NULL, NULL, 0, NULL, "[raw;label]"},
    };
    t = make_tree(&tt, hostile, 2);
    o = prof_of(&t);
    CHECK_STR(o.data, "x?y?.py:3 (f??g) 7\nx?y?.py:3 (f??g);[raw?label] 9\n");
    free(o.data);

    static const tnode_t bad[] = {{N, 1, 1, "a", "b", 1, NULL, NULL},
                                  {1, 1, 1, "a", "b", 1, NULL, NULL}};
    t = make_tree(&tt, bad, 2); /* node 1 is its own parent */
    o = prof_of(&t);
    CHECK(o.rc == -1);
    free(o.data);
}

/* The top lines of nodes[0..count), at most max into rows: their number. */
static int top_rows(const tnode_t *nodes, uint32_t count, fil_top_line_t *rows, uint32_t max)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, nodes, count);
    size_t cap = fil_top_lines_scratch_size(t.count);
    void *scratch = malloc(cap);
    int n = scratch ? fil_top_lines(&t, rows, max, scratch, cap) : -1;
    free(scratch);
    return n;
}

/* A line's total counts each byte once, however often the line recurs
 * below itself; its self bytes are only those allocated on it. */
static void test_top_lines_totals(void)
{
    static const tnode_t nodes[] = {
        /* 0 */ {N, 0, 1, "a.py", "a", 1, NULL, NULL},
        /* 1 */ {0, 0, 2, "b.py", "b", 2, NULL, NULL},
        /* 2 */ {1, 100, 1, "a.py", "a", 1, NULL, NULL},
        /* 3 */ {2, 50, 2, "b.py", "b", 2, NULL, NULL},
        /* 4 */ {N, 10, 2, "b.py", "b", 2, NULL, NULL},
        /* 5 */ {4, 7, 3, "c.py", "c", 3, NULL, NULL},
    };
    fil_top_line_t rows[4];
    int n = top_rows(nodes, 6, rows, 4);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(rows[0].node == 2 && rows[0].self == 100 && rows[0].total == 150);
        CHECK(rows[1].node == 3 && rows[1].self == 60 && rows[1].total == 167);
        CHECK(rows[2].node == 5 && rows[2].self == 7 && rows[2].total == 7);
    }
}

/* A library's line called from several of the program's lines names the
 * one with the most of its bytes, those bytes, and how many others called
 * it; the same program line reached two ways is one caller; a program
 * line has no caller; a library line under library lines only has none;
 * more callers than the slots hold are "at least". */
static void test_top_lines_callers(void)
{
    static const tnode_t nodes[] = {
        /* 0 */ {N, 0, 1, "main.py", "<module>", 1, NULL, NULL},
        /* 1 */ {0, 0, 2, "main.py", "w0", 5, NULL, NULL},
        /* 2 */ {1, 100, 9, "/usr/lib/python3/dist-packages/np/core.py", "ones", 205, NULL, NULL},
        /* 3 */ {0, 0, 3, "main.py", "w1", 6, NULL, NULL},
        /* 4 */ {3, 0, 8, "/usr/lib/python3/dist-packages/np/util.py", "helper", 3, NULL, NULL},
        /* 5 */ {4, 150, 9, "/usr/lib/python3/dist-packages/np/core.py", "ones", 205, NULL, NULL},
        /* 6 */ {0, 0, 4, "main.py", "w2", 7, NULL, NULL},
        /* 7 */ {6, 50, 9, "/usr/lib/python3/dist-packages/np/core.py", "ones", 205, NULL, NULL},
        /* 8 */ {1, 0, 3, "main.py", "w1", 6, NULL, NULL}, /* w1's line again, below w0 */
        /* 9 */ {8, 20, 9, "/usr/lib/python3/dist-packages/np/core.py", "ones", 205, NULL, NULL},
        /* 10 */ {N, 0, 8, "/usr/lib/python3/dist-packages/np/util.py", "helper", 3, NULL, NULL},
        /* 11 */ {10, 5, 7, "/usr/lib/python3/dist-packages/np/other.py", "f", 1, NULL, NULL},
        /* 12 */ {0, 40, 5, "main.py", "<module>", 11, NULL, NULL},
    };
    fil_top_line_t rows[4];
    int n = top_rows(nodes, 13, rows, 4);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK(rows[0].self == 320 && (rows[0].caller == 3 || rows[0].caller == 8));
        CHECK_U64(rows[0].caller_bytes, 170); /* w1's line: 150 + 20 */
        CHECK_INT(rows[0].other_callers, 2);  /* w0's and w2's */
        CHECK(rows[1].self == 40 && rows[1].caller == FIL_NONE); /* the program's own */
        CHECK(rows[2].self == 5 && rows[2].caller == FIL_NONE && rows[2].other_callers == 0);
    }

    /* 20 program lines calling one library line (the slots hold 16), the
     * last seen the biggest: still the one named, with its exact bytes; and
     * one line reached twice, before and after the slots filled. */
    static tnode_t many[45];
    static char names[20][16];
    many[0] = (tnode_t){N, 0, 1, "main.py", "<module>", 1, NULL, NULL};
    for (uint32_t i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "f%u", i);
        many[1 + 2 * i] = (tnode_t){0, 0, 100 + i, "main.py", names[i], 10 + i, NULL, NULL};
        many[2 + 2 * i] = (tnode_t){1 + 2 * i, i == 19 ? 50000 : 1000 + i, 9,
                                    "/x/site-packages/m.py", "g", 2, NULL, NULL};
    }
    many[41] = (tnode_t){0, 0, 119, "main.py", names[19], 29, NULL, NULL}; /* f19's line */
    many[42] = (tnode_t){41, 7, 9, "/x/site-packages/m.py", "g", 2, NULL, NULL};
    many[43] = (tnode_t){0, 0, 100, "main.py", names[0], 10, NULL, NULL}; /* f0's line */
    many[44] = (tnode_t){43, 3, 9, "/x/site-packages/m.py", "g", 2, NULL, NULL};
    n = top_rows(many, 45, rows, 1);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(rows[0].other_callers, FIL_TOP_CALLERS_MORE);
        CHECK(rows[0].caller == 39 || rows[0].caller == 41);
        CHECK_U64(rows[0].caller_bytes, 50007);
    }
}

/* ---- sorting --------------------------------------------------------------- */

static int key_less(void *ctx, uint32_t x, uint32_t y)
{
    const uint32_t *key = ctx;
    return key[x] < key[y];
}

/* The heapsort the writers use orders every array, duplicates included,
 * and keeps its elements. */
static void test_heapsort(void)
{
    static uint32_t key[600], a[600];
    unsigned seed = 12345;
    for (uint32_t n = 0; n <= 600; n += n < 40 ? 1 : 37) {
        for (uint32_t range = 3; range <= 1000000; range *= 1000) {
            uint64_t sum = 0, got = 0;
            for (uint32_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                key[i] = (seed >> 8) % range;
                a[i] = i;
                sum += i;
            }
            fil_report_heapsort(a, n, key_less, key);
            int sorted = 1;
            for (uint32_t i = 0; i < n; i++) {
                got += a[i];
                if (i > 0 && key[a[i - 1]] > key[a[i]])
                    sorted = 0;
            }
            CHECK(sorted && got == sum);
        }
    }
}

/* Lines longer than the text the writer keeps between lines (16 KiB) are
 * written whole, and the lines after them share their prefix correctly. */
static void test_prof_long_lines(void)
{
    enum { LONG = 7000 };
    static char name[4][LONG + 1];
    for (int k = 0; k < 4; k++) {
        memset(name[k], 'a' + k, LONG);
        name[k][LONG] = 0;
    }
    const tnode_t nodes[] = {
        /* 0 */ {N, 1, 1, name[0], "f", 1, NULL, NULL},
        /* 1 */ {0, 2, 2, name[1], "g", 2, NULL, NULL},
        /* 2 */ {1, 3, 3, name[2], "h", 3, NULL, NULL},
        /* 3 */ {2, 4, 4, name[3], "i", 4, NULL, NULL},
        /* 4 */ {1, 5, 5, "short.py", "j", 5, NULL, NULL},
        /* 5 */ {3, 6, 6, "leaf.py", "k", 6, NULL, NULL},
    };
    static const uint32_t chain[][6] = {{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 4},
                                        {0, 1, 2, 3, 5}};
    static const int depth[] = {1, 2, 3, 4, 3, 5};
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, nodes, 6);
    size_t cap = 6 * 5 * (LONG + 32), len = 0;
    char *want = malloc(cap);
    for (int i = 0; i < 6; i++) {
        for (int d = 0; d < depth[i]; d++) {
            const tnode_t *n = &nodes[chain[i][d]];
            len += (size_t)snprintf(want + len, cap - len, "%s%s:%u (%s)", d ? ";" : "", n->file,
                                    n->line, n->func);
        }
        len += (size_t)snprintf(want + len, cap - len, " %" PRIu64 "\n", nodes[i].self);
    }
    out_t o = prof_of(&t);
    CHECK(o.rc == 0);
    CHECK_STR(o.data, want);
    free(o.data);
    free(want);
}

/* ---- SVG ------------------------------------------------------------------- */

/* Attribute `name` of the first element after `from`, as a double. */
static double attr_after(const char *from, const char *name)
{
    char key[32];
    snprintf(key, sizeof(key), " %s=\"", name);
    const char *p = strstr(from, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* The <g> whose tooltip starts with `label` followed by a newline. */
static const char *find_frame(const char *svg, const char *label)
{
    char key[256];
    snprintf(key, sizeof(key), "<title>%s\n", label);
    return strstr(svg, key);
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void check_width(const char *svg, const char *label, uint64_t bytes, uint64_t total)
{
    const char *g = find_frame(svg, label);
    double want = 1180.0 * (double)bytes / (double)total;
    CHECK(g != NULL);
    if (g) {
        double got = attr_after(g, "width");
        CHECK(got > want - 0.1 && got < want + 0.1);
        if (!(got > want - 0.1 && got < want + 0.1))
            fprintf(stderr, "  %s: width %.3f, want %.3f\n", label, got, want);
    }
}

static void test_svg_small(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT);
    out_t o = svg_of(&t, "Peak <memory> & more", "python3 x.py --a \"b\"", 0);
    CHECK(o.rc == 0);
    CHECK(xml_well_formed(o.data, o.len));
    CHECK(strncmp(o.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44) == 0);
    CHECK(strstr(o.data, "Peak &lt;memory&gt; &amp; more</text>") != NULL);
    CHECK(strstr(o.data, "python3 x.py --a &quot;b&quot;</text>") != NULL);
    CHECK(strstr(o.data, ">all  59.1 KiB</text>") != NULL);
    CHECK(strstr(o.data, "<title>all\n59.1 KiB, 100.00% (60501 bytes)</title>") != NULL);
    check_width(o.data, "all", SMALL_TOTAL, SMALL_TOTAL);
    check_width(o.data, "main.py:10 (&lt;module&gt;)", 60001, SMALL_TOTAL);
    check_width(o.data, "main.py:5 (load)", 36000, SMALL_TOTAL);
    check_width(o.data, "main.py:12 (compute)", 24001, SMALL_TOTAL);
    check_width(o.data, "[native] malloc+0x10 (libc.so.6)", 4000, SMALL_TOTAL);
    check_width(o.data, "[No Python stack]", 500, SMALL_TOTAL);
    /* Tooltip: label, source, bytes and percent (36000 / 60501 = 59.50%). */
    CHECK(strstr(o.data, "<title>main.py:5 (load)\ndata = read_all(path)\n35.2 KiB, 59.50% "
                         "(36000 bytes)</title>") != NULL);
    CHECK(strstr(o.data, "<title>lib/io.py:30 (parse)\n4.9 KiB, 8.26% (5000 bytes)</title>") !=
          NULL);
    /* 1 byte is 0.02 px: folded into a remainder too small to draw. */
    CHECK(strstr(o.data, "tiny") == NULL);
    CHECK(count_of(o.data, "<g class=\"frame\" ") == 9);
    /* Children left to right by size: load (36000) before compute (24001). */
    double x_load = attr_after(find_frame(o.data, "main.py:5 (load)"), "x");
    double x_comp = attr_after(find_frame(o.data, "main.py:12 (compute)"), "x");
    CHECK(x_load > 9.9 && x_load < 10.1);
    double w_load = 1180.0 * 36000 / SMALL_TOTAL;
    CHECK(x_comp > x_load + w_load - 0.05 && x_comp < x_load + w_load + 0.05);
    /* Normal orientation: the root is below its children. */
    double y_all = attr_after(find_frame(o.data, "all"), "y");
    double y_root = attr_after(find_frame(o.data, "main.py:10 (&lt;module&gt;)"), "y");
    double y_load = attr_after(find_frame(o.data, "main.py:5 (load)"), "y");
    CHECK(y_all > y_root && y_root > y_load && y_all - y_root == 16);
    /* Text shows label and source, and raw frames are grey-blue. */
    CHECK(strstr(o.data, ">lib/io.py:20 (read_csv)  29.3 KiB  df = pd.read_csv(path)</text>") !=
          NULL);
    CHECK(strstr(find_frame(o.data, "[No Python stack]"), "fill=\"rgb(1") != NULL);
    CHECK(strstr(find_frame(o.data, "main.py:5 (load)"), "fill=\"rgb(2") != NULL);
    free(o.data);
}

static void test_svg_inverted(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT);
    double y_all, y_root;
    out_t o = svg_of(&t, "icicle", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    y_all = attr_after(find_frame(o.data, "all"), "y");
    y_root = attr_after(find_frame(o.data, "main.py:10 (&lt;module&gt;)"), "y");
    CHECK(y_all < y_root && y_root - y_all == 16);
    free(o.data);
}

static void test_svg_hostile(void)
{
    static const tnode_t nodes[] = {
        {N, 100, 1, "a<b>&\"c\".py", "f]]>g", 1, "if a < b && c > d: print(\"]]>\")", NULL},
        {0, 100, 2, "x;y\xff\xfe.py",
         "\x01\x02"
         "ctl\t\n",
         2, "s = '\xe2\x82'", NULL},
        {1, 100, 3, NULL, NULL, 0, NULL, "[native] <raw> & \"quoted\" \xc3"},
        {N, 100, 4, "", "", 0, "", NULL},
        {N, 100, 5, "<frozen importlib._bootstrap>", "_find_and_load", 7, NULL, NULL},
    };
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, nodes, 5);
    out_t o = svg_of(&t, "<script>alert('x')</script> \xff", "]]> \x1b[0m", 0);
    CHECK(o.rc == 0);
    CHECK(xml_well_formed(o.data, o.len));
    CHECK(strstr(o.data, "a&lt;b&gt;&amp;&quot;c&quot;.py:1 (f]]&gt;g)") != NULL);
    /* The hostile title is text; the only script is the graph's own. */
    CHECK(strstr(o.data, "<script>alert") == NULL && count_of(o.data, "<script") == 1);
    CHECK(strstr(o.data, "x;y\xEF\xBF\xBD\xEF\xBF\xBD.py") != NULL);
    free(o.data);
    o = svg_of(&t, "", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    free(o.data);
}

static void test_svg_empty(void)
{
    static const tnode_t zero[] = {{N, 0, 1, "a.py", "f", 1, NULL, NULL},
                                   {0, 0, 2, "a.py", "g", 2, NULL, NULL}};
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, zero, 2);
    for (int c = 0; c <= 2; c += 2) {
        t.count = (uint32_t)c;
        out_t o = svg_of(&t, "Peak & nothing", NULL, 0);
        CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
        CHECK(strstr(o.data, "No memory tracked") != NULL);
        CHECK(strstr(o.data, "Peak &amp; nothing") != NULL);
        CHECK(strstr(o.data, "class=\"frame\"") == NULL);
        free(o.data);
    }
}

static void test_svg_clipping(void)
{
    static char longfunc[400];
    memset(longfunc, 'f', sizeof(longfunc) - 1);
    tnode_t nodes[] = {
        {N, 0, 1, "big.py", longfunc, 1, "x = 1", NULL},
        {0, 1000000, 2, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.py", "w", 9, NULL, NULL},
        {0, 20000, 3, "narrow.py", "n", 1, NULL, NULL}, /* 23 px: 2 chars fit */
        {0, 35000, 4, "seven.py", "s", 1, NULL, NULL},  /* 39.1 px: 4 chars fit */
    };
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, nodes, 4);
    out_t o = svg_of(&t, "clip", NULL, 0);
    const char *g;
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    /* The root spans 1180 px: its text is cut to (1180-6)/7 = 167 chars. */
    g = strstr(o.data, "<title>big.py:1 (ffff");
    g = g ? strstr(g, "<text") : NULL;
    CHECK(g != NULL && strstr(g, "..</text>") != NULL);
    if (g) {
        const char *s = strchr(g, '>') + 1, *e = strstr(s, "</text>");
        CHECK(e - s == 167);
    }
    g = find_frame(o.data, "narrow.py:1 (n)");
    CHECK(g != NULL);
    if (g) { /* no <text> inside its <g> */
        const char *text = strstr(g, "<text");
        CHECK(text == NULL || text > strstr(g, "</g>"));
    }
    g = find_frame(o.data, "seven.py:1 (s)");
    CHECK(g != NULL && strstr(g, ">se..</text>") != NULL);
    g = find_frame(o.data, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.py:9 (w)");
    CHECK(g != NULL &&
          strstr(g, ">\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.py:9 (w)  976.6 KiB</text>") != NULL);
    free(o.data);
}

/* ---- reversed tree --------------------------------------------------------- */

static uint64_t inclusive(const fil_tree_t *t, uint32_t node)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        uint32_t p = i;
        while (p != FIL_NONE && p != node)
            p = t->parent(t->ctx, p);
        if (p == node)
            sum += t->self_bytes(t->ctx, i);
    }
    return sum;
}

static uint32_t reversed_root(const fil_tree_t *r, uint64_t key)
{
    uint32_t found = FIL_NONE;
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->parent(r->ctx, i) == FIL_NONE && r->key(r->ctx, i) == key) {
            CHECK(found == FIL_NONE); /* merged: one root per key */
            found = i;
        }
    }
    return found;
}

static void check_reversed_callers(const fil_tree_t *rt);

static void test_reverse(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT), r;
    size_t cap = fil_reverse_scratch_size(t.count, 64);
    void *s = malloc(cap);
    static const struct {
        uint64_t key, bytes;
    } roots[] = {{3, 50000}, {4, 5000}, {2, 1000}, {6, 4000}, {7, 500}, {8, 1}};
    uint64_t total = 0;
    CHECK(fil_tree_reverse(&t, &r, 64, 0, 0, s, cap) == 0);
    for (uint32_t i = 0; i < r.count; i++) {
        uint32_t p = r.parent(r.ctx, i);
        CHECK(p == FIL_NONE || p < i);
        total += r.self_bytes(r.ctx, i);
    }
    CHECK(total == SMALL_TOTAL);
    for (size_t k = 0; k < sizeof(roots) / sizeof(roots[0]); k++) {
        uint32_t n = reversed_root(&r, roots[k].key);
        CHECK(n != FIL_NONE && inclusive(&r, n) == roots[k].bytes);
    }
    check_reversed_callers(&r);
    free(s);
}

/* read_csv (key 3) has two callers: load (30000) and compute (20000), whose
 * bytes land on <module> (key 1), the root-most frame. */
static void check_reversed_callers(const fil_tree_t *rt)
{
    fil_tree_t r = *rt;
    uint32_t rc = reversed_root(&r, 3), by_load = FIL_NONE, by_comp = FIL_NONE;
    for (uint32_t i = 0; i < r.count; i++) {
        if (r.parent(r.ctx, i) == rc && r.key(r.ctx, i) == 2)
            by_load = i;
        if (r.parent(r.ctx, i) == rc && r.key(r.ctx, i) == 5)
            by_comp = i;
    }
    CHECK(by_load != FIL_NONE && inclusive(&r, by_load) == 30000);
    CHECK(by_comp != FIL_NONE && inclusive(&r, by_comp) == 20000);
    CHECK(r.self_bytes(r.ctx, by_load) == 0);
    fil_frame_t f;
    r.frame(r.ctx, rc, &f);
    CHECK(f.func_len == 8 && memcmp(f.func, "read_csv", 8) == 0 && f.line == 20);
    /* 18 reversed nodes: the .prof of the reversed tree reads leaf first. */
    CHECK(r.count == 18);
    out_t o = prof_of(&r);
    CHECK(strstr(o.data, "\nlib/io.py:20 (read_csv);main.py:12 (compute);main.py:10 (<module>) "
                         "20000\n") != NULL);
    CHECK(strstr(o.data, "[native] malloc+0x10 (libc.so.6);lib/io.py:20 (read_csv);main.py:12 "
                         "(compute);main.py:10 (<module>) 4000\n") != NULL);
    free(o.data);
}

/* A remainder frame: raw label "[N ... call stack(s)]" and FIL_FOLD_KEY. */
static int is_remainder(const fil_tree_t *r, uint32_t i, uint64_t *stacks)
{
    fil_frame_t f;
    char label[64];
    unsigned long long n = 0;
    r->frame(r->ctx, i, &f);
    if (!f.raw || f.raw_len >= sizeof(label) || r->key(r->ctx, i) != FIL_FOLD_KEY)
        return 0;
    memcpy(label, f.raw, f.raw_len);
    label[f.raw_len] = 0;
    if (sscanf(label, "[%llu ", &n) != 1 || !strstr(label, "call stack") ||
        label[f.raw_len - 1] != ']')
        return 0;
    *stacks = n;
    return 1;
}

/* With a small budget the biggest reversed frames are made first; what is
 * left goes to labelled remainders, and every byte is still there. */
static void test_reverse_budget(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT), r;
    for (uint32_t max = 0; max <= 19; max++) {
        size_t cap = fil_reverse_scratch_size(t.count, max);
        void *s = malloc(cap);
        uint64_t total = 0, rem_bytes = 0, stacks = 0;
        uint32_t rems = 0;
        CHECK(fil_tree_reverse(&t, &r, max, 0, 0, s, cap) == 0);
        CHECK(r.count <= 2 * max + 1);
        for (uint32_t i = 0; i < r.count; i++) {
            uint64_t n;
            total += r.self_bytes(r.ctx, i);
            if (is_remainder(&r, i, &n)) {
                rems++;
                rem_bytes += r.self_bytes(r.ctx, i);
                stacks += n;
            }
        }
        CHECK(total == SMALL_TOTAL);
        CHECK((rems == 0) == (max >= 18));
        if (max == 0) /* everything in one top-level remainder */
            CHECK(rem_bytes == SMALL_TOTAL && r.count == 1 && stacks == 7);
        if (max == 1) { /* read_csv (50000) first; its two callers folded below it */
            uint32_t rc = reversed_root(&r, 3);
            CHECK(rc == 0 && inclusive(&r, rc) == 50000 && r.count == 3);
            CHECK(rem_bytes == SMALL_TOTAL && stacks == 7);
        }
        free(s);
    }
    /* A depth limit of 1: each allocating line, its callers folded. */
    size_t cap = fil_reverse_scratch_size(t.count, 100);
    void *s = malloc(cap);
    CHECK(fil_tree_reverse(&t, &r, 100, 1, 0, s, cap) == 0);
    for (uint32_t i = 0; i < r.count; i++) {
        uint64_t n;
        uint32_t p = r.parent(r.ctx, i);
        CHECK(p == FIL_NONE || (r.parent(r.ctx, p) == FIL_NONE && is_remainder(&r, i, &n)));
    }
    free(s);
    CHECK(fil_tree_reverse(&t, &r, 18, 0, 0, NULL, 0) == -1 && r.count == 0);
}

/* ---- budgets: many tiny stacks, deep stacks --------------------------------- */

#define TINY 50000u
#define TINY_BYTES 100u
#define BIG_BYTES 500000000ull
/* 50,000 tiny stacks in import chains 50 deep under one import frame, and
 * one big allocation: <module> -> main -> ones. */
static tnode_t *many_tiny(uint32_t *count)
{
    uint32_t n = TINY + 4;
    tnode_t *v = calloc(n, sizeof(*v));
    v[0] = (tnode_t){N, 0, 1, "main.py", "<module>", 1, "main()", NULL};
    v[1] = (tnode_t){0, 0, 2, "<frozen importlib._bootstrap>", "_find_and_load", 1178, NULL, NULL};
    for (uint32_t i = 2; i < TINY + 2; i++)
        v[i] = (tnode_t){(i - 2) % 50 == 0 ? 1 : i - 1, TINY_BYTES, 1000 + i,
                         "/usr/lib/python3/dist-packages/numpy/core/_add_newdocs.py",
                         "<module>", i % 4000 + 1, NULL, NULL};
    v[TINY + 2] = (tnode_t){0, 0, 3, "main.py", "main", 5, "a = np.ones(n)", NULL};
    v[TINY + 3] = (tnode_t){TINY + 2, BIG_BYTES, 4,
                            "/usr/lib/python3/dist-packages/numpy/core/numeric.py", "ones", 205,
                            "a = empty(shape, dtype, order)", NULL};
    *count = n;
    return v;
}

static uint64_t tree_sum(const fil_tree_t *t)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < t->count; i++)
        sum += t->self_bytes(t->ctx, i);
    return sum;
}

/* The data-b of the frame whose tooltip starts with label. */
static uint64_t frame_bytes(const char *svg, const char *label)
{
    char key[300];
    const char *p;
    snprintf(key, sizeof(key), "<title>%s\n", label);
    p = strstr(svg, key);
    while (p && p > svg && strncmp(p, "<g ", 3) != 0)
        p--;
    p = p ? strstr(p, "data-b=\"") : NULL;
    return p ? strtoull(p + 8, NULL, 10) : 0;
}

static void check_big_whole(const char *svg, int reversed)
{
    const char *ones = "numpy/core/numeric.py:205 (ones)";
    CHECK(frame_bytes(svg, ones) == BIG_BYTES);
    CHECK(frame_bytes(svg, "main.py:5 (main)") == BIG_BYTES);
    CHECK(frame_bytes(svg, "main.py:1 (&lt;module&gt;)") ==
          (reversed ? BIG_BYTES : BIG_BYTES + (uint64_t)TINY * TINY_BYTES));
    /* The full path is in the tooltip, the short one in the box. */
    CHECK(strstr(svg, ">numpy/core/numeric.py:205 (ones)  476.8 MiB  a = empty(") != NULL);
    CHECK(strstr(svg, "\n/usr/lib/python3/dist-packages/numpy/core/numeric.py\n") != NULL);
}

static void test_budget_many_tiny(void)
{
    uint32_t n;
    tnode_t *v = many_tiny(&n);
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, v, n), r;
    uint64_t total = BIG_BYTES + (uint64_t)TINY * TINY_BYTES;
    CHECK(tree_sum(&t) == total);

    /* Forward graph: the big stack whole, the tiny ones one labelled box,
     * and the graph only as deep as what can be seen (all + 3 levels). */
    out_t o = svg_of(&t, "many", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    check_big_whole(o.data, 0);
    CHECK(frame_bytes(o.data, "[50000 smaller call stacks]") == (uint64_t)TINY * TINY_BYTES);
    CHECK(frame_bytes(o.data, "all") == total);
    CHECK(count_of(o.data, "<g class=\"frame\" ") == 6);
    CHECK(attr_after(o.data, "height") == 78 + 10 + 4 * 16);
    free(o.data);

    /* Reversed with the renderer's budget (20000): the big one comes first
     * and is whole (3 frames); 19997 tiny allocating lines are made, and
     * the 30003 that did not fit are one top-level box. */
    size_t cap = fil_reverse_scratch_size(t.count, 20000);
    void *s = malloc(cap);
    CHECK(fil_tree_reverse(&t, &r, 20000, 200, 0, s, cap) == 0);
    CHECK(tree_sum(&r) == total && r.count <= 40001);
    CHECK(r.key(r.ctx, 0) == 4 && inclusive(&r, 0) == BIG_BYTES);
    o = svg_of(&r, "many reversed", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    check_big_whole(o.data, 1);
    CHECK(frame_bytes(o.data, "[30003 smaller call stacks]") == 30003ull * TINY_BYTES);
    CHECK(frame_bytes(o.data, "all") == total);
    free(o.data);
    o = prof_of(&r);
    CHECK(strstr(o.data, "\n/usr/lib/python3/dist-packages/numpy/core/numeric.py:205 (ones);"
                         "main.py:5 (main);main.py:1 (<module>) 500000000\n") ||
          strncmp(o.data, "/usr/lib/python3/dist-packages/numpy/core/numeric.py:205 (ones);"
                          "main.py:5 (main);main.py:1 (<module>) 500000000\n", 100) == 0);
    free(o.data);

    /* Reversed as the renderer does it, with the drawing's threshold: the
     * tiny lines are too narrow to be drawn, so none is made. The big stack
     * is whole, the 50000 tiny ones are one top-level box, and the totals
     * are the same. A tiny line is below the threshold, the big one above. */
    uint64_t min = fil_svg_min_bytes(NULL, total);
    CHECK(min > TINY_BYTES && min <= BIG_BYTES);
    CHECK_U64(min, (total * FIL_SVG_MIN_CENTIPX + 100 * (1200 - 20) - 1) / (100 * (1200 - 20)));
    CHECK(fil_tree_reverse(&t, &r, 20000, 200, min, s, cap) == 0);
    CHECK(tree_sum(&r) == total);
    CHECK_U64(r.count, 4); /* ones, main, <module>, one remainder */
    o = svg_of(&r, "many reversed", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    check_big_whole(o.data, 1);
    CHECK(frame_bytes(o.data, "[50000 smaller call stacks]") == (uint64_t)TINY * TINY_BYTES);
    CHECK(frame_bytes(o.data, "all") == total);
    CHECK(count_of(o.data, "<g class=\"frame\" ") == 5);
    free(o.data);
    /* A threshold of one byte makes what no threshold makes. */
    CHECK(fil_tree_reverse(&t, &r, 20000, 200, 1, s, cap) == 0);
    CHECK(tree_sum(&r) == total && r.count > 20000);
    free(s);

    /* .prof within a 1 MiB budget: the big line whole, the rest folded into
     * labelled remainder lines, every byte counted once. */
    fil_prof_opts_t po = {1u << 20, 100000, 64};
    tree_job_t j = {&t, {0}};
    (void)j;
    size_t pcap = fil_prof_scratch_size(t.count);
    void *ps = malloc(pcap);
    char path[] = "/tmp/fil-test-prof-XXXXXX";
    int fd = mkstemp(path);
    char wbuf[4096];
    fil_writer_t w;
    unlink(path);
    fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
    CHECK(fil_write_prof_opts(&t, &po, &w, ps, pcap) == 0);
    size_t len;
    char *text = read_fd_all(fd, &len);
    close(fd);
    CHECK(len <= (1u << 20) + 4096);
    CHECK(strstr(text, "main.py:1 (<module>);main.py:5 (main);/usr/lib/python3/dist-packages/"
                       "numpy/core/numeric.py:205 (ones) 500000000\n") != NULL);
    uint64_t sum = 0, folded = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n'), *sp;
        *nl = 0;
        sp = strrchr(line, ' ');
        sum += strtoull(sp + 1, NULL, 10);
        if (strstr(line, " smaller call stack"))
            folded += strtoull(sp + 1, NULL, 10);
        line = nl + 1;
    }
    CHECK(sum == total && folded > 0);
    free(text);
    free(ps);
    free(v);
}

typedef struct stack_job {
    const fil_tree_t *t;
    uint32_t leaf;
    uint32_t *path;
} stack_job_t;

static int do_stack(fil_writer_t *w, void *arg)
{
    stack_job_t *j = arg;
    fil_html_stack(w, "stack", "Python stack (innermost last)", j->t, j->leaf, NULL, 0, j->path);
    return 0;
}

/* A stack 5000 frames deep: .prof lines keep 64 frames at each end around
 * "[N frames elided]", the SVG stops at FIL_SVG_MAX_DEPTH with a
 * remainder, and the bytes are exact. */
static void test_budget_deep(void)
{
    uint32_t n = 5000;
    tnode_t *v = calloc(n, sizeof(*v));
    for (uint32_t i = 0; i < n; i++)
        v[i] = (tnode_t){i == 0 ? N : i - 1, i % 10 == 9 ? 1000 : 0, i == 0 ? 1 : 2, "rec.py",
                         i == 0 ? "<module>" : "f", i == 0 ? 9 : 3, NULL, NULL};
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, v, n);
    out_t o = prof_of(&t);
    uint64_t sum = 0;
    int lines = 0, max_frames = 0, elided_ok = 1;
    for (char *line = o.data; *line;) {
        char *nl = strchr(line, '\n'), *sp, *e;
        int frames = 1;
        *nl = 0;
        sp = strrchr(line, ' ');
        sum += strtoull(sp + 1, NULL, 10);
        for (char *c = line; c < sp; c++)
            frames += *c == ';';
        if (frames > max_frames)
            max_frames = frames;
        e = strstr(line, "frames elided]");
        if (e) { /* depth d = 10k: d - 128 elided, 64 + 1 + 64 frames */
            unsigned long depth = (unsigned long)(lines + 1) * 10;
            char want[64];
            snprintf(want, sizeof(want), ";[%lu frames elided];", depth - 128);
            elided_ok &= strstr(line, want) != NULL && frames == 129;
        }
        lines++;
        line = nl + 1;
    }
    CHECK(sum == 500 * 1000ull && lines == 500 && max_frames == 129 && elided_ok);
    CHECK(strncmp(o.data, "rec.py:9 (<module>);rec.py:3 (f);", 33) == 0);
    free(o.data);
    o = svg_of(&t, "deep", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    CHECK(count_of(o.data, "<g class=\"frame\" ") == FIL_SVG_MAX_DEPTH + 2);
    CHECK(strstr(o.data, "<title>[480 deeper call stacks]\n") != NULL);
    free(o.data);
    /* index.html shows the first 12 and the last 28 frames of the stack. */
    uint32_t *path = malloc(n * sizeof(uint32_t));
    o = capture(do_stack, &(stack_job_t){&t, n - 1, path});
    CHECK(o.rc == 0 && count_of(o.data, "<li>") == 12 + 28 &&
          count_of(o.data, "<li") == 12 + 28 + 2); /* the gap, and no native frames */
    CHECK(strstr(o.data, "... 4960 more frames ...") != NULL);
    CHECK(strstr(o.data, "<li>") < strstr(o.data, "rec.py:9 (&lt;module&gt;)"));
    free(o.data);
    free(path);
    free(v);
}

/* Labels a person reads: importable paths for libraries, whole paths for
 * the program's own files. */
static void test_short_labels(void)
{
    static const struct {
        const char *path, *shown;
        int library;
    } cases[] = {
        {"/usr/lib/python3/dist-packages/pandas/io/parsers/readers.py", "pandas/io/parsers/readers.py", 1},
        {"/home/u/.venv/lib/python3.11/site-packages/numpy/core/numeric.py", "numpy/core/numeric.py", 1},
        {"/usr/lib/python3.11/json/decoder.py", "json/decoder.py", 1},
        {"/opt/py/lib/python3.12/site-packages/x.py", "x.py", 1},
        {"/home/u/work/analyze.py", "/home/u/work/analyze.py", 0},
        {"analyze.py", "analyze.py", 0},
        {"<frozen importlib._bootstrap>", "&lt;frozen importlib._bootstrap&gt;", 1},
        {"/usr/lib/python3/dist-packages/", "/usr/lib/python3/dist-packages/", 1},
        {"/srv/mylib/python3/app.py", "/srv/mylib/python3/app.py", 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        tnode_t node = {N, 1, 1, cases[k].path, "g", 7, NULL, NULL};
        ttree_t tt;
        fil_tree_t t = make_tree(&tt, &node, 1);
        char want[300];
        snprintf(want, sizeof(want), ">%s:7 (g)  1 B</text>", cases[k].shown);
        out_t o = svg_of(&t, "labels", NULL, 1);
        CHECK(strstr(o.data, want) != NULL);
        if (!strstr(o.data, want))
            fprintf(stderr, "  label for %s: want %s\n", cases[k].path, cases[k].shown);
        free(o.data);
        o = prof_of(&t); /* the .prof keeps the path as recorded */
        snprintf(want, sizeof(want), "%s:7 (g) 1\n", cases[k].path);
        CHECK_STR(o.data, want);
        free(o.data);
    }
    /* The program's common directory is left out of its labels (not of a
     * library's, nor of the .prof), and the tooltip has the full path. */
    static const tnode_t own[] = {{N, 0, 1, "/home/u/work/analyze.py", "<module>", 3, NULL, NULL},
                                  {0, 5, 2, "/home/u/work/pkg/io.py", "load", 9, NULL, NULL},
                                  {1, 5, 3, "/home/u/work/lib/python3.11/json/x.py", "f", 1,
                                   NULL, NULL}};
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, own, 3);
    test_own_start = strlen("/home/u/work/");
    out_t o = svg_of(&t, "own", NULL, 1);
    CHECK(strstr(o.data, "<title>analyze.py:3 (&lt;module&gt;)\n/home/u/work/analyze.py\n"));
    CHECK(strstr(o.data, "<title>pkg/io.py:9 (load)\n/home/u/work/pkg/io.py\n"));
    CHECK(strstr(o.data, "<title>json/x.py:1 (f)\n"));
    free(o.data);
    o = prof_of(&t);
    CHECK(strstr(o.data, "/home/u/work/analyze.py:3 (<module>);/home/u/work/pkg/io.py:9 (load) 5\n"));
    free(o.data);
    test_own_start = 0;
}

/* The fold keeps the biggest subtrees whole within max_nodes. */
static void test_fold(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT), r;
    size_t cap = fil_fold_scratch_size(t.count, 3);
    void *s = malloc(cap);
    fil_fold_opts_t o = {3, 0, 0, 0, 0};
    CHECK(fil_tree_fold(&t, &o, &r, s, cap) == 0);
    /* Kept: <module> (60001), load (36000), read_csv under load (30000). */
    CHECK(tree_sum(&r) == SMALL_TOTAL);
    out_t p = prof_of(&r);
    /* Remainders follow the kept nodes, in the order of what they hold:
     * parse under load, compute's 3 stacks under <module>, then the
     * top-level [No Python stack]. */
    CHECK_STR(p.data, "main.py:10 (<module>);main.py:5 (load) 1000\n"
                      "main.py:10 (<module>);main.py:5 (load);lib/io.py:20 (read_csv) 30000\n"
                      "main.py:10 (<module>);main.py:5 (load);[1 smaller call stack] 5000\n"
                      "main.py:10 (<module>);[3 smaller call stacks] 24001\n"
                      "[1 smaller call stack] 500\n");
    free(p.data);
    free(s);
}

/* ---- interruption ------------------------------------------------------------ */

static volatile int stop_flag;
static int frames_until_stop;

/* t_frame that raises the stop flag after frames_until_stop calls, as a
 * signal handler would in the middle of a file. */
static void stopping_frame(void *ctx, uint32_t i, fil_frame_t *f)
{
    if (--frames_until_stop == 0)
        stop_flag = 1;
    t_frame(ctx, i, f);
}

static void test_interrupt(void)
{
    uint32_t n;
    tnode_t *v = many_tiny(&n);
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, v, n);
    size_t cap = fil_prof_scratch_size(n);
    void *s = malloc(cap);
    char wbuf[4096];
    fil_writer_t w;
    int fd = open("/dev/null", O_WRONLY);
    t.frame = stopping_frame;
    stop_flag = 0;
    frames_until_stop = 1000;
    fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
    w.stop = &stop_flag;
    CHECK(fil_write_prof(&t, &w, s, cap) == -1 && w.failed);
    CHECK(w.written < 4 * sizeof(wbuf)); /* it stopped soon after the flag */
    stop_flag = 0;
    frames_until_stop = -1;
    fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
    w.stop = &stop_flag;
    CHECK(fil_write_prof(&t, &w, s, cap) == 0 && w.written > 1000000);
    close(fd);
    free(s);
    free(v);
}

/* ---- golden files ------------------------------------------------------ */

static const char *data_dir(void)
{
    const char *d = getenv("FIL_TEST_DATA");
    return d && *d ? d : "tests/data";
}

static void check_golden(const char *name, const out_t *o)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/golden/%s", data_dir(), name);
    if (getenv("FIL_REGEN_GOLDEN") && strcmp(getenv("FIL_REGEN_GOLDEN"), "1") == 0) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (f) {
            fwrite(o->data, 1, o->len, f);
            fclose(f);
            fprintf(stderr, "regenerated %s\n", path);
        }
        return;
    }
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    if (fd < 0) {
        fprintf(stderr, "  missing golden file %s (run scripts/regen-golden)\n", path);
        return;
    }
    size_t len;
    char *want = read_fd_all(fd, &len);
    close(fd);
    CHECK(len == o->len && memcmp(want, o->data, len) == 0);
    if (len != o->len || memcmp(want, o->data, len) != 0)
        fprintf(stderr, "  %s differs from the output (run scripts/regen-golden if intended)\n",
                path);
    free(want);
}

/* A tree of the new layout for the golden files: a big line, 30 tiny
 * siblings that add up to a visible remainder, and a stack 140 deep. */
static tnode_t *golden_tree(uint32_t *count)
{
    uint32_t n = 3 + 30 + 140;
    tnode_t *v = calloc(n, sizeof(*v));
    v[0] = (tnode_t){N, 0, 1, "/srv/app/main.py", "<module>", 3, "run()", NULL};
    v[1] = (tnode_t){0, 10000, 2, "/usr/lib/python3/dist-packages/pandas/io/parsers/readers.py",
                     "_read", 611, "return parser.read(nrows)", NULL};
    for (uint32_t i = 2; i < 32; i++)
        v[i] = (tnode_t){0, 10, 10 + i, "/usr/lib/python3.11/json/decoder.py", "decode", i, NULL,
                         NULL};
    v[32] = (tnode_t){0, 0, 100, "/srv/app/main.py", "recurse", 9, "return recurse(n - 1)", NULL};
    for (uint32_t i = 33; i < n; i++)
        v[i] = (tnode_t){i - 1, i == n - 1 ? 3000 : 0, 100, "/srv/app/main.py", "recurse", 9,
                         "return recurse(n - 1)", NULL};
    *count = n;
    return v;
}

static void test_golden(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT), r;
    size_t cap = fil_reverse_scratch_size(t.count, 1000);
    void *s = malloc(cap);
    out_t o = prof_of(&t);
    check_golden("small.prof", &o);
    free(o.data);
    o = svg_of(&t, "Peak tracked memory usage: 59.1 KiB", "fil-profile run main.py", 0);
    check_golden("small.svg", &o);
    free(o.data);
    CHECK(fil_tree_reverse(&t, &r, 1000, 0, 0, s, cap) == 0);
    o = svg_of(&r, "Peak tracked memory usage: 59.1 KiB (reversed)", "fil-profile run main.py", 1);
    check_golden("small-reversed.svg", &o);
    CHECK(xml_well_formed(o.data, o.len));
    free(o.data);
    free(s);

    uint32_t n;
    tnode_t *g = golden_tree(&n);
    t = make_tree(&tt, g, n);
    o = svg_of(&t, "Peak tracked memory usage: 12.7 KiB", "fil-profile run main.py", 1);
    check_golden("folded.svg", &o);
    CHECK(xml_well_formed(o.data, o.len) && strstr(o.data, "[30 smaller call stacks]"));
    free(o.data);
    o = prof_of(&t);
    check_golden("folded.prof", &o);
    CHECK(strstr(o.data, ";[14 frames elided];") != NULL); /* 142 deep */
    free(o.data);
    free(g);
}

/* ---- source lines ------------------------------------------------------------ */

static int has_text(const fil_srcreq_t *r, const char *pool, const char *want)
{
    return r->text_len == strlen(want) && memcmp(pool + r->text_off, want, strlen(want)) == 0;
}

static void test_srclines(void)
{
    /* Requested lines of the sample, out of order, with repeats and misses. */
    static const uint32_t lines[] = {2, 1, 3, 4, 5, 6, 7, 8, 9, 2, 10, 0};
    char sample[PATH_MAX], missing[PATH_MAX];
    fil_srcreq_t reqs[16];
    size_t n = 0;
    snprintf(sample, sizeof(sample), "%s/srclines_sample.py", data_dir());
    snprintf(missing, sizeof(missing), "%s/no_such_file.py", data_dir());
    for (size_t i = 0; i < 12; i++)
        reqs[n++] = (fil_srcreq_t){sample, strlen(sample), lines[i], 9, 9};
    reqs[n++] = (fil_srcreq_t){missing, strlen(missing), 1, 9, 9};
    reqs[n++] = (fil_srcreq_t){"<string>", 8, 1, 9, 9};
    reqs[n++] = (fil_srcreq_t){sample, strlen(sample) - 3, 1, 9, 9}; /* not NUL-terminated */
    char *pool = malloc(n * FIL_SRC_MAX);
    size_t cap = fil_srclines_scratch_size(n);
    void *s = malloc(cap);
    CHECK(fil_srclines_fill(reqs, n, pool, n * FIL_SRC_MAX, s, cap) == 0);
    CHECK(has_text(&reqs[0], pool, "x = [0] * 1000  # indented"));
    CHECK(has_text(&reqs[9], pool, "x = [0] * 1000  # indented"));
    CHECK(reqs[0].text_off == reqs[9].text_off); /* stored once */
    CHECK(has_text(&reqs[1], pool, "import os"));
    CHECK(has_text(&reqs[2], pool, "if x:"));
    CHECK(has_text(&reqs[3], pool, "y = 1")); /* CRLF */
    CHECK(reqs[4].text_len == 0);             /* empty line */
    /* 6 bytes, then 2-byte characters: the cut at 117 bytes backs off to 116. */
    CHECK(reqs[5].text_len == 119);
    CHECK(memcmp(pool + reqs[5].text_off, "s = \"a\xc3\xa9", 8) == 0);
    CHECK(memcmp(pool + reqs[5].text_off + 114, "\xc3\xa9...", 5) == 0);
    CHECK(reqs[6].text_len == 120 && pool[reqs[6].text_off + 119] == 'x');
    CHECK(reqs[7].text_len == 120 && memcmp(pool + reqs[7].text_off + 114, "yyy...", 6) == 0);
    CHECK(has_text(&reqs[8], pool, "return 42")); /* last line, no newline */
    for (size_t i = 10; i < n; i++)               /* past the end, line 0, missing files */
        CHECK(reqs[i].text_len == 0);
    CHECK(fil_srclines_fill(reqs, n, pool, n * FIL_SRC_MAX - 1, s, cap) == -1);
    free(s);
    free(pool);
}

/* Fill reqs[0..n) with a pool and scratch of the sizes documented; the
 * pool (to be freed). */
static char *fill_lines(fil_srcreq_t *reqs, size_t n)
{
    char *pool = malloc(n * FIL_SRC_MAX);
    size_t cap = fil_srclines_scratch_size(n);
    void *s = malloc(cap);
    CHECK(fil_srclines_fill(reqs, n, pool, n * FIL_SRC_MAX, s, cap) == 0);
    free(s);
    return pool;
}

/* Lines straddling the 64 KiB read boundary. */
static void test_srclines_chunks(void)
{
    char path[] = "/tmp/fil-test-src-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (int i = 1; i <= 5000; i++)
        fprintf(f, "  line_%05d = %d  # padding to cross chunks\n", i, i * 7);
    fclose(f);
    size_t per = strlen("  line_00001 = 7  # padding to cross chunks\n");
    fil_srcreq_t reqs[80];
    size_t n = 0;
    for (uint32_t line = 1; line <= 5000; line += 79)
        reqs[n++] = (fil_srcreq_t){path, strlen(path), line, 0, 0};
    reqs[n++] = (fil_srcreq_t){path, strlen(path), 65536 / (uint32_t)per + 1, 0, 0};
    reqs[n++] = (fil_srcreq_t){path, strlen(path), 5000, 0, 0};
    char *pool = fill_lines(reqs, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        char want[80];
        snprintf(want, sizeof(want), "line_%05u = %u  # padding to cross chunks", reqs[i].line,
                 reqs[i].line * 7);
        ok &= reqs[i].text_len == strlen(want) &&
              memcmp(pool + reqs[i].text_off, want, strlen(want)) == 0;
    }
    CHECK(ok);
    unlink(path);
    free(pool);
}

/* Lines of every length from 0 to 40 bytes, several to a 16-byte block
 * and across the 64 KiB read chunks: every wanted line is found. */
static void test_srclines_short_lines(void)
{
    char path[] = "/tmp/fil-test-src-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (int i = 1; i <= 20000; i++)
        fprintf(f, "%d%.*s\n", i, i % 37, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
    fclose(f);
    fil_srcreq_t reqs[400];
    size_t n = 0;
    for (uint32_t line = 1; line <= 20000 && n < 400; line += 1 + line % 97)
        reqs[n++] = (fil_srcreq_t){path, strlen(path), line, 0, 0};
    char *pool = fill_lines(reqs, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        char want[64];
        uint32_t line = reqs[i].line;
        snprintf(want, sizeof(want), "%u%.*s", line, (int)(line % 37),
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
        ok &= reqs[i].text_len == strlen(want) &&
              memcmp(pool + reqs[i].text_off, want, strlen(want)) == 0;
    }
    CHECK(ok);
    unlink(path);
    free(pool);
}

/* Many requests for few lines, the path in two separate strings (as two
 * functions of one file may hold it): every request gets its line, and
 * each distinct line is stored once per string. */
static void test_srclines_many(void)
{
    char path[] = "/tmp/fil-test-src-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (int i = 1; i <= 10; i++)
        fprintf(f, "v%d = %d\n", i, i);
    fclose(f);
    char *copy = strdup(path);
    size_t n = 50000;
    fil_srcreq_t *reqs = calloc(n, sizeof *reqs);
    uint32_t seed = 12345;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *p = (seed >> 16) & 1 ? path : copy;
        reqs[i] = (fil_srcreq_t){p, strlen(p), 1 + (seed >> 8) % 12, 0, 0}; /* 11, 12: past the end */
    }
    char *pool = malloc(n * FIL_SRC_MAX);
    size_t cap = fil_srclines_scratch_size(n);
    void *s = malloc(cap);
    CHECK(fil_srclines_fill(reqs, n, pool, n * FIL_SRC_MAX, s, cap) == 0);
    int ok = 1;
    uint32_t off_of[2][13] = {{0}};
    for (size_t i = 0; i < n; i++) {
        char want[32];
        uint32_t line = reqs[i].line;
        if (line > 10) {
            ok &= reqs[i].text_len == 0;
            continue;
        }
        snprintf(want, sizeof want, "v%u = %u", line, line);
        ok &= reqs[i].text_len == strlen(want) &&
              memcmp(pool + reqs[i].text_off, want, strlen(want)) == 0;
        uint32_t *o = &off_of[reqs[i].file == path][line];
        if (*o == 0)
            *o = reqs[i].text_off + 1;
        ok &= *o == reqs[i].text_off + 1; /* one copy per (string, line) */
    }
    CHECK(ok);
    unlink(path);
    free(copy);
    free(s);
    free(pool);
    free(reqs);
}

/* ---- atomic files and index.html ------------------------------------------- */

static void test_atomic(void)
{
    char dir[] = "/tmp/fil-test-atomic-XXXXXX", tmpname[PATH_MAX], path[PATH_MAX];
    fil_atomic_file_t f;
    struct stat st;
    CHECK(mkdtemp(dir) != NULL);
    CHECK(fil_atomic_open(&f, dir, "report.svg") == 0);
    snprintf(tmpname, sizeof(tmpname), "%s/.report.svg.tmp-%d", dir, (int)getpid());
    snprintf(path, sizeof(path), "%s/report.svg", dir);
    CHECK_STR(f.tmp, tmpname);
    CHECK_STR(f.final, path);
    CHECK(write(f.fd, "data", 4) == 4);
    mode_t mask = umask(0);
    umask(mask);
    CHECK(stat(path, &st) < 0 && stat(tmpname, &st) == 0);
    CHECK((st.st_mode & 0777) == (0644 & ~mask));
    CHECK(fil_atomic_commit(&f) == 0);
    CHECK(stat(path, &st) == 0 && st.st_size == 4 && stat(tmpname, &st) < 0);
    fil_atomic_abort(&f); /* harmless after commit */
    CHECK(stat(path, &st) == 0);
    unlink(path);

    CHECK(fil_atomic_open(&f, dir, "gone.prof") == 0);
    fil_atomic_abort(&f);
    snprintf(tmpname, sizeof(tmpname), "%s/.gone.prof.tmp-%d", dir, (int)getpid());
    CHECK(stat(tmpname, &st) < 0 && f.fd == -1);

    static char longname[5000];
    memset(longname, 'n', sizeof(longname) - 1);
    errno = 0;
    CHECK(fil_atomic_open(&f, dir, longname) == -1 && errno == ENAMETOOLONG && f.fd == -1);
    /* The final name fits, the temporary name does not. */
    size_t fits = sizeof(f.final) - 1 - strlen(dir) - 1 - 5;
    CHECK(fil_atomic_open(&f, dir, longname + sizeof(longname) - 1 - fits) == -1);
    CHECK(errno == ENAMETOOLONG && f.fd == -1);
    CHECK(fil_atomic_open(&f, "/nonexistent-dir-fil", "x") == -1 && errno == ENOENT);
    CHECK(fil_atomic_commit(&f) == -1);
    rmdir(dir);
}

typedef struct html_job {
    const fil_html_page_t *page;
    const fil_tree_t *t;
    int death;
} html_job_t;

static int do_html(fil_writer_t *w, void *arg)
{
    html_job_t *j = arg;
    fil_top_line_t rows[4];
    size_t cap = fil_top_lines_scratch_size(j->t->count);
    void *s = malloc(cap);
    uint32_t *path = malloc(j->t->count * sizeof(uint32_t));
    static const char *const native[] = {"[native] malloc+0x10 (libc.so.6)",
                                         "[native] PyMem_Malloc+0x2 (<python>)"};
    int n = fil_top_lines(j->t, rows, 4, s, cap);
    fil_html_begin(w, j->page);
    if (j->death)
        fil_html_stack(w, "The allocation that failed", "Python stack (innermost last)", j->t, 6, native, 2, path);
    fil_html_top_lines(w, "Top lines", "intro <i>", j->t, rows, n > 0 ? (uint32_t)n : 0,
                       SMALL_TOTAL);
    fil_html_reading(w);
    fil_html_graph(w, "Memory & more", "peak-memory.svg", "Top row <b>");
    free(s);
    free(path);
    return fil_html_end(w, "peak-memory.prof");
}

/* Where the n-th occurrence of needle starts in hay, or NULL. */
static const char *nth(const char *hay, const char *needle, int n)
{
    const char *p = hay;
    for (int k = 0; p && k <= n; k++)
        p = strstr(k ? p + 1 : p, needle);
    return p;
}

/* The timeline plot of p[0..n). */
typedef struct timeline_job {
    const fil_time_point_t *p;
    uint32_t n;
    fil_timeline_marks_t m;
} timeline_job_t;

static int do_timeline(fil_writer_t *w, void *arg)
{
    timeline_job_t *j = arg;
    fil_html_timeline(w, "Memory over time", j->p, j->n, &j->m);
    return 0;
}

/* The plot: well-formed, both curves with a point per sample (RSS
 * points that are unknown left out), the peak and the moment marked,
 * round ticks; no samples says so; huge values do not overflow. */
static void test_timeline(void)
{
    static const fil_time_point_t p[] = {
        {0, 0, 0}, {10000000, 3 << 20, 5 << 20}, {20000000, 60 << 20, 70 << 20},
        {30000000, 2 << 20, 0}};
    timeline_job_t j = {p, 4, {10000000, 10000000, 35000000, "out of memory"}};
    out_t o = capture(do_timeline, &j);
    const char *svg = o.data ? strstr(o.data, "<svg") : NULL;
    CHECK(o.rc == 0 && svg);
    CHECK(svg && xml_well_formed(svg, strstr(svg, "</svg>") + 6 - svg));
    CHECK(o.data && count_of(o.data, "<polyline") == 2);
    CHECK(o.data && strstr(o.data, "peak 60.0 MiB at 0.02 s"));
    CHECK(o.data && strstr(o.data, "out of memory</text>"));
    CHECK(o.data && strstr(o.data, ">80 MiB</text>") && strstr(o.data, ">0.04</text>"));
    CHECK(o.data && strstr(o.data, "4 points, each the highest value of 10 ms"));
    const char *rss = o.data ? strstr(o.data, "polyline class=\"rss\" points=\"") : NULL;
    CHECK(rss && count_of(rss, ",") - count_of(strstr(rss, "/>"), ",") == 2); /* 0s skipped */
    free(o.data);
    j.n = 0;
    o = capture(do_timeline, &j);
    CHECK(o.rc == 0 && o.data && strstr(o.data, "No samples") && !strstr(o.data, "<svg"));
    free(o.data);
    static const fil_time_point_t huge[] = {{0, UINT64_C(1) << 60, UINT64_C(1) << 61},
                                            {UINT64_C(864000) * 1000000000u, 1, 1}};
    timeline_job_t h = {huge, 2, {UINT64_C(1) << 40, 10000000, UINT64_C(1) << 62, "x"}};
    o = capture(do_timeline, &h);
    CHECK(o.rc == 0 && o.data && strstr(o.data, " GiB</text>") && strstr(o.data, "peak "));
    svg = o.data ? strstr(o.data, "<svg") : NULL;
    CHECK(svg && xml_well_formed(svg, strstr(svg, "</svg>") + 6 - svg));
    free(o.data);
}

static void test_html(void)
{
    fil_html_page_t page = {"fil-profile: peak memory", "Peak tracked memory: 59.1 KiB", "peak",
                            "python3 x.py --x '<b>' & \xff", "Note: </p><script>"};
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT);
    html_job_t j = {&page, &t, 0};
    out_t o = capture(do_html, &j);
    CHECK(o.rc == 0);
    CHECK(strncmp(o.data, "<!DOCTYPE html>", 15) == 0);
    CHECK(strstr(o.data, "<title>fil-profile: peak memory</title>") != NULL);
    CHECK(strstr(o.data, "python3 x.py --x &#39;&lt;b&gt;&#39; &amp; \xEF\xBF\xBD") != NULL);
    CHECK(strstr(o.data, "<h1>Peak tracked memory: 59.1 KiB</h1>") != NULL);
    CHECK(strstr(o.data, "data=\"peak-memory.svg\"") != NULL);
    CHECK(strstr(o.data, "href=\"peak-memory.prof\"") != NULL);
    CHECK(strstr(o.data, "Note: &lt;/p&gt;&lt;script&gt;") != NULL);
    CHECK(strstr(o.data, "<script") == NULL); /* the page itself runs nothing */
    CHECK(strstr(o.data, "intro &lt;i&gt;") != NULL && strstr(o.data, "Top row &lt;b&gt;"));
    CHECK(strstr(o.data, "</html>\n") != NULL);
    CHECK(strstr(o.data, "failing") == NULL); /* no failure: no stack section */
    /* Top lines: read_csv (key 3) allocated 50000 of 60501 directly, then
     * parse 5000, native 4000, load 1000; with callees read_csv is still
     * 54000 (its native child), load 36000. The table comes before the graph. */
    const char *r1 = strstr(o.data, "<td class=\"n\">1</td>");
    const char *r4 = strstr(o.data, "<td class=\"n\">4</td>");
    CHECK(r1 && strstr(r1, "lib/io.py:20 (read_csv)") < strstr(r1, "</tr>"));
    CHECK(r1 && strstr(r1, "48.8 KiB <small>(82.6%)</small>") < strstr(r1, "</tr>"));
    CHECK(r1 && strstr(r1, "52.7 KiB <small>(89.2%)</small>") < strstr(r1, "</tr>"));
    CHECK(r1 && strstr(r1, "df = pd.read_csv(path)") < strstr(r1, "</tr>"));
    CHECK(r4 && strstr(r4, "main.py:5 (load)") < strstr(r4, "</tr>"));
    CHECK(r4 && strstr(r4, "35.2 KiB <small>(59.5%)</small>") < strstr(r4, "</tr>"));
    CHECK(strstr(o.data, "<tr class=\"own\"><td class=\"n\">4</td>") != NULL);
    CHECK(r1 && strstr(o.data, "<object") > r1);
    CHECK(nth(o.data, "<tr", 4) && !nth(o.data, "<tr", 5)); /* header + 4 rows */
    free(o.data);

    page.kind = "oom";
    j.death = 1;
    o = capture(do_html, &j);
    CHECK(o.rc == 0 && strstr(o.data, "<header class=\"oom\">") != NULL);
    /* Python stack of node 6 outermost first, then the native frames
     * innermost last. */
    const char *py = strstr(o.data, "Python stack (innermost last)");
    const char *m = py ? strstr(py, "main.py:10 (&lt;module&gt;)") : NULL;
    const char *c = m ? strstr(m, "main.py:12 (compute)") : NULL;
    const char *rc = c ? strstr(c, "lib/io.py:20 (read_csv)") : NULL;
    const char *nat = rc ? strstr(rc, "[native] PyMem_Malloc") : NULL;
    CHECK(py && m && c && rc && nat && strstr(nat, "[native] malloc+0x10"));
    CHECK(nat && strstr(o.data, "Top lines") > nat);
    free(o.data);
}

/* ---- scratch bounds ------------------------------------------------------------ */

#define CANARY 0xA5
#define GUARD 64

/* A scratch area of `size` bytes at offset `mis` inside a canary-filled block. */
static unsigned char *guarded(size_t size, size_t mis)
{
    unsigned char *b = malloc(size + 2 * GUARD + mis);
    memset(b, CANARY, size + 2 * GUARD + mis);
    return b;
}

static int guard_intact(const unsigned char *b, size_t size, size_t mis)
{
    for (size_t i = 0; i < GUARD + mis; i++)
        if (b[i] != CANARY)
            return 0;
    for (size_t i = GUARD + mis + size; i < size + 2 * GUARD + mis; i++)
        if (b[i] != CANARY)
            return 0;
    return 1;
}

/* A 300-node tree with deep chains, wide fans and repeated keys. */
static fil_tree_t gen_tree(ttree_t *tt)
{
    static const char *const funcs[] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6",
                                        "f7", "f8", "f9", "fa", "fb", "fc"};
    static tnode_t gen[300];
    for (uint32_t i = 0; i < 300; i++) {
        uint32_t k = (i * 7) % 13;
        gen[i] = (tnode_t){i == 0       ? FIL_NONE
                           : i % 5 == 0 ? (i * 13) % i
                                        : i - 1,
                           (i * 7919) % 1000 + (i % 3 != 0),
                           k,
                           "gen.py",
                           funcs[k],
                           k + 1,
                           NULL,
                           NULL};
    }
    return make_tree(tt, gen, 300);
}

/* Every scratch bound of t holds at each misalignment, with canaries. */
static void check_bounds(const fil_tree_t *t, uint32_t max_nodes, int fd)
{
    char wbuf[128];
    fil_writer_t w;
    fil_tree_t r;
    for (size_t mis = 0; mis < 8; mis++) {
        size_t sz = fil_prof_scratch_size(t->count);
        unsigned char *b = guarded(sz, mis);
        fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
        CHECK(fil_write_prof(t, &w, b + GUARD + mis, sz) == 0 && guard_intact(b, sz, mis));
        free(b);

        sz = fil_svg_scratch_size(t->count);
        b = guarded(sz, mis);
        fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
        CHECK(fil_write_svg(t, NULL, &w, b + GUARD + mis, sz) == 0 && guard_intact(b, sz, mis));
        free(b);

        sz = fil_reverse_scratch_size(t->count, max_nodes);
        b = guarded(sz, mis);
        CHECK(fil_tree_reverse(t, &r, max_nodes, 3, 0, b + GUARD + mis, sz) == 0);
        CHECK(r.count <= fil_reverse_max_out(max_nodes));
        {
            size_t psz = fil_prof_scratch_size(r.count), ssz = fil_svg_scratch_size(r.count);
            unsigned char *pb = guarded(psz > ssz ? psz : ssz, mis);
            fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
            CHECK(fil_write_prof(&r, &w, pb + GUARD + mis, psz) == 0 && guard_intact(pb, psz, mis));
            fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
            CHECK(fil_write_svg(&r, NULL, &w, pb + GUARD + mis, ssz) == 0 &&
                  guard_intact(pb, ssz, mis));
            free(pb);
        }
        CHECK(guard_intact(b, sz, mis));
        free(b);

        sz = fil_fold_scratch_size(t->count, max_nodes);
        b = guarded(sz, mis);
        fil_fold_opts_t fo = {max_nodes, 4, 0, 1, 100};
        CHECK(fil_tree_fold(t, &fo, &r, b + GUARD + mis, sz) == 0);
        CHECK(r.count <= fil_fold_max_out(t->count, max_nodes) && guard_intact(b, sz, mis));
        free(b);

        sz = fil_top_lines_scratch_size(t->count);
        b = guarded(sz, mis);
        fil_top_line_t rows[12];
        CHECK(fil_top_lines(t, rows, 12, b + GUARD + mis, sz) >= 0 && guard_intact(b, sz, mis));
        free(b);
    }
}

static void check_srclines_bounds(void)
{
    char sample[PATH_MAX], pool[3 * FIL_SRC_MAX + 2 * GUARD];
    snprintf(sample, sizeof(sample), "%s/srclines_sample.py", data_dir());
    for (size_t mis = 0; mis < 8; mis++) {
        fil_srcreq_t reqs[3] = {{sample, strlen(sample), 6, 0, 0},
                                {sample, strlen(sample), 1, 0, 0},
                                {sample, strlen(sample), 8, 0, 0}};
        size_t sz = fil_srclines_scratch_size(3);
        unsigned char *b = guarded(sz, mis);
        memset(pool, CANARY, sizeof(pool));
        CHECK(fil_srclines_fill(reqs, 3, pool + GUARD, 3 * FIL_SRC_MAX, b + GUARD + mis, sz) == 0);
        CHECK(guard_intact(b, sz, mis) && reqs[0].text_len == 119);
        CHECK(guard_intact((unsigned char *)pool, 3 * FIL_SRC_MAX, 0));
        free(b);
    }
}

static void test_scratch_bounds(void)
{
    ttree_t tt;
    fil_tree_t t = make_tree(&tt, small_nodes, SMALL_COUNT), r;
    int fd = open("/dev/null", O_WRONLY);
    char wbuf[128];
    fil_writer_t w;
    check_bounds(&t, 0, fd);
    check_bounds(&t, 13, fd);
    check_bounds(&t, 100, fd);
    t = gen_tree(&tt);
    check_bounds(&t, 50, fd);
    check_bounds(&t, 100000, fd);
    check_srclines_bounds();
    /* Too little scratch fails cleanly. */
    uint64_t tiny[16];
    fil_writer_init(&w, fd, wbuf, sizeof(wbuf));
    CHECK(fil_write_prof(&t, &w, tiny, 8) == -1);
    CHECK(fil_write_svg(&t, NULL, &w, tiny, sizeof(tiny)) == -1);
    CHECK(fil_tree_reverse(&t, &r, 5, 0, 0, tiny, sizeof(tiny)) == -1);
    close(fd);
}

/* The generated tree: the reversed tree keeps every byte, per leaf key. */
static void test_reverse_generated(void)
{
    ttree_t tt;
    fil_tree_t t = gen_tree(&tt), r;
    size_t cap = fil_reverse_scratch_size(t.count, 100000);
    void *s = malloc(cap);
    uint64_t by_key[13] = {0};
    CHECK(fil_tree_reverse(&t, &r, 100000, 0, 0, s, cap) == 0);
    for (uint32_t i = 0; i < t.count; i++)
        by_key[t.key(t.ctx, i)] += t.self_bytes(t.ctx, i);
    for (uint64_t k = 0; k < 13; k++) {
        uint32_t n = reversed_root(&r, k);
        CHECK(by_key[k] == 0 || (n != FIL_NONE && inclusive(&r, n) == by_key[k]));
    }
    out_t o = svg_of(&r, "generated", NULL, 1);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    free(o.data);
    t = gen_tree(&tt);
    o = svg_of(&t, "generated", NULL, 0);
    CHECK(o.rc == 0 && xml_well_formed(o.data, o.len));
    free(o.data);
    free(s);
}

int main(void)
{
    test_xml_checker();
    test_numbers();
    test_sizes();
    test_escape();
    test_writer_errors();
    test_full_device();
    test_heapsort();
    test_top_lines_totals();
    test_top_lines_callers();
    test_prof();
    test_prof_long_lines();
    test_svg_small();
    test_svg_inverted();
    test_svg_hostile();
    test_svg_empty();
    test_svg_clipping();
    test_reverse();
    test_reverse_budget();
    test_reverse_generated();
    test_golden();
    test_budget_many_tiny();
    test_budget_deep();
    test_short_labels();
    test_fold();
    test_interrupt();
    test_srclines();
    test_srclines_chunks();
    test_srclines_short_lines();
    test_srclines_many();
    test_atomic();
    test_html();
    test_timeline();
    test_scratch_bounds();
    return check_summary("test_report");
}
