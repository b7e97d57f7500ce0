/* SPDX-License-Identifier: MIT */
/*
 * srclines.c - fetches the text of source lines shown in the flamegraph.
 *
 * Requests are not reordered. They point into the state's string table,
 * where the functions of one file share a few path strings, and a report
 * asks for one line per call stack: many ask for the same (string, line).
 * So the distinct (path string, line) pairs are found first (a hash table
 * in scratch); the strings that hold the same path are found next (each
 * string's bytes hashed once), and the distinct pairs are heapsorted by
 * (the path's first string, line): each file is opened once and read
 * front to back a chunk at a time (64 KiB scratch buffer), stopping as
 * soon as its last wanted line is done. A wanted line's end is found with
 * the newline scan and its bytes captured at once into a small stack
 * buffer: leading blanks skipped, trailing blanks and CR dropped, and a
 * line longer than FIL_SRC_MAX cut on a UTF-8 boundary with "..."
 * appended. Each distinct (file, line) is copied once into the pool;
 * duplicate requests share the text. Paths that are empty, too long, hold a
 * NUL or name no real file ("<string>", "<frozen ...>", "<stdin>") are not
 * opened. Files are opened O_NONBLOCK so a FIFO cannot hang a dump, and
 * reading stops after FIL_SRC_FILE_LIMIT bytes so a device cannot either.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: open, read, close, memcpy,
 * memcmp.
 */
#include <emmintrin.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "report_internal.h"

#define SRC_CHUNK 65536                          /* read(2) size, scratch bytes */
#define FIL_SRC_FILE_LIMIT (UINT64_C(256) << 20) /* bytes read per file at most */

/* The line being captured. */
typedef struct src_line {
    char buf[FIL_SRC_MAX + 1]; /* first bytes after the indentation */
    size_t kept;               /* bytes in buf */
    uint64_t seen;             /* bytes of the line seen so far, all of them */
    uint64_t len;              /* bytes after the indentation */
    uint64_t end;              /* len up to the last non-blank byte */
    int started;               /* indentation is over */
} src_line_t;

/* One fil_srclines_fill call. */
typedef struct src_ctx {
    fil_srcreq_t *reqs; /* caller's requests */
    uint32_t *canon;    /* per request: the request whose path string stands for its file */
    uint32_t *order;    /* request indexes sorted by (file, line) */
    size_t n;           /* number of requests */
    char *pool;         /* caller's text pool */
    size_t pool_cap;    /* its size */
    size_t pool_used;   /* bytes used */
    char *chunk;        /* SRC_CHUNK bytes of scratch for read(2) */
} src_ctx_t;

/* Slots of the table that finds the distinct requests of n: a power of two
 * at least 2n. */
static uint64_t table_slots(size_t n)
{
    uint64_t s = 16;
    while (s < 2 * (uint64_t)n)
        s *= 2;
    return s;
}

/* Scratch for n requests: the index arrays, the tables and the read
 * buffer. SIGNAL CONTEXT. */
size_t fil_srclines_scratch_size(size_t n)
{
    uint64_t bytes[6] = {(uint64_t)n * 4,         (uint64_t)n * 4, table_slots(n) * 4,
                         (uint64_t)n * 4,         table_slots(n) * 4, SRC_CHUNK};
    return fil_report_scratch_total(bytes, 6);
}

/* Sort order: (the file's path string, line). SIGNAL CONTEXT: caller
 * memory only. */
static int req_less(void *ctx, uint32_t x, uint32_t y)
{
    const src_ctx_t *C = ctx;
    const fil_srcreq_t *r = C->reqs, *a = &r[C->canon[x]], *b = &r[C->canon[y]];
    if (a->file != b->file)
        return (uintptr_t)a->file < (uintptr_t)b->file;
    if (a->file_len != b->file_len)
        return a->file_len < b->file_len;
    return r[x].line < r[y].line;
}

/* 1 if requests a and b ask for the same line of the same path string. */
static int same_req(const fil_srcreq_t *a, const fil_srcreq_t *b)
{
    return a->file == b->file && a->file_len == b->file_len && a->line == b->line;
}

/* 1 if a and b name the same path string. */
static int same_file(const fil_srcreq_t *a, const fil_srcreq_t *b)
{
    return a->file == b->file && a->file_len == b->file_len;
}

/* 1 if a and b name the same path (in one string or two). */
static int same_path(const fil_srcreq_t *a, const fil_srcreq_t *b)
{
    return a->file_len == b->file_len &&
           (a->file == b->file || memcmp(a->file, b->file, a->file_len) == 0);
}

/* Hash of a request's path string (its address). */
static uint64_t string_hash(const fil_srcreq_t *r)
{
    uint64_t h = ((uint64_t)(uintptr_t)r->file ^ (uint64_t)r->file_len << 48) *
                 UINT64_C(0x9E3779B97F4A7C15);
    return h ^ (h >> 29);
}

/* Hash of a request's path (its bytes). */
static uint64_t path_hash(const fil_srcreq_t *r)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < r->file_len; i++)
        h = (h ^ (unsigned char)r->file[i]) * UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

/*
 * canon[i] of each distinct request order[0..u): the first of them whose
 * path is the same, so that a file named by several path strings (one per
 * function record, in the state) is read once, not once per string
 * (pandas' report: 1,953 opens of 438 files before). Each string's bytes
 * are hashed once: strings by address in `bystr`, paths by content in
 * `bypath` (request index + 1, 0: free; slots a power of two > u).
 * SIGNAL CONTEXT: caller memory only.
 */
static void canon_paths(src_ctx_t *C, size_t u, uint32_t *bystr, uint32_t *bypath, uint64_t slots)
{
    const fil_srcreq_t *r = C->reqs;
    memset(bystr, 0, slots * 4);
    memset(bypath, 0, slots * 4);
    for (size_t k = 0; k < u; k++) {
        uint32_t i = C->order[k];
        uint64_t h = string_hash(&r[i]) & (slots - 1);
        while (bystr[h] && !same_file(&r[bystr[h] - 1], &r[i]))
            h = (h + 1) & (slots - 1);
        if (bystr[h]) {
            C->canon[i] = C->canon[bystr[h] - 1];
            continue;
        }
        bystr[h] = i + 1;
        uint64_t p = path_hash(&r[i]) & (slots - 1);
        while (bypath[p] && !same_path(&r[bypath[p] - 1], &r[i]))
            p = (p + 1) & (slots - 1);
        if (!bypath[p])
            bypath[p] = i + 1;
        C->canon[i] = bypath[p] - 1;
    }
}

/* Hash of a request's (path string, line). */
static uint64_t req_hash(const fil_srcreq_t *r)
{
    uint64_t h = (uint64_t)(uintptr_t)r->file * UINT64_C(0x9E3779B97F4A7C15);
    h ^= ((uint64_t)r->file_len << 32 | r->line) * UINT64_C(0xC2B2AE3D27D4EB4F);
    return h ^ (h >> 29);
}

/*
 * Open the file of r read-only, or return -1 for paths that are not worth
 * opening (see the file comment) or cannot be opened.
 * SIGNAL CONTEXT: caller memory only.
 */
static int open_source(const fil_srcreq_t *r)
{
    char path[PATH_MAX];
    int fd;
    if (!r->file || r->file_len == 0 || r->file_len >= sizeof(path) || r->file[0] == '<')
        return -1;
    for (size_t i = 0; i < r->file_len; i++) {
        if (r->file[i] == '\0')
            return -1;
    }
    memcpy(path, r->file, r->file_len);
    path[r->file_len] = '\0';
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Start capturing a new line. SIGNAL CONTEXT: caller memory only. */
static void line_reset(src_line_t *l)
{
    l->kept = 0;
    l->seen = l->len = l->end = 0;
    l->started = 0;
}

/* 1 for the bytes a captured line drops at its ends (a CR included). */
static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\r';
}

/* Capture s[0..n) (no newline among them), the next bytes of a wanted
 * line: leading blanks skipped, the first bytes kept, the length up to the
 * last non-blank byte noted. SIGNAL CONTEXT: memcpy only. */
static void line_feed_run(src_line_t *l, const char *s, size_t n)
{
    size_t i = 0, j = n;
    l->seen += n;
    if (!l->started) {
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n)
            return;
        l->started = 1;
    }
    size_t room = sizeof(l->buf) - l->kept, take = n - i < room ? n - i : room;
    memcpy(l->buf + l->kept, s + i, take);
    l->kept += take;
    while (j > i && is_blank(s[j - 1]))
        j--;
    if (j > i)
        l->end = l->len + (j - i);
    l->len += n - i;
}

/*
 * Copy the captured line into the pool (cut with "..." if longer than
 * FIL_SRC_MAX) and give it to every request in order[k..) for `line`.
 * Returns the first order position past those requests.
 * SIGNAL CONTEXT: caller memory only.
 */
static size_t line_store(src_ctx_t *C, const src_line_t *l, size_t k, size_t k_end)
{
    uint32_t line = C->reqs[C->order[k]].line;
    int cut = l->end > FIL_SRC_MAX;
    size_t len = cut ? FIL_SRC_MAX - 3 : (size_t)l->end;
    size_t off = C->pool_used;
    while (cut && len > 0 && ((unsigned char)l->buf[len] & 0xC0) == 0x80)
        len--; /* never end inside a UTF-8 sequence */
    if (off + len + (cut ? 3 : 0) > C->pool_cap) {
        len = 0; /* cannot happen with pool_cap >= n * FIL_SRC_MAX */
        cut = 0;
    }
    memcpy(C->pool + off, l->buf, len);
    if (cut) {
        memcpy(C->pool + off + len, "...", 3);
        len += 3;
    }
    C->pool_used += len;
    for (; k < k_end && C->reqs[C->order[k]].line == line; k++) {
        C->reqs[C->order[k]].text_off = (uint32_t)off;
        C->reqs[C->order[k]].text_len = (uint32_t)len;
    }
    return k;
}

/* read(2) retrying on EINTR; <= 0 ends the file. SIGNAL CONTEXT. */
static ssize_t read_chunk(int fd, char *buf)
{
    ssize_t r;
    do {
        r = read(fd, buf, SRC_CHUNK);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* The 16-bit mask of the newlines in s[0..16). SIGNAL CONTEXT: no call. */
static unsigned newlines16(const char *s)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
}

/* The 64-bit mask of the newlines in s[0..64). SIGNAL CONTEXT: no call. */
static uint64_t newlines64(const char *s)
{
    return (uint64_t)newlines16(s) | (uint64_t)newlines16(s + 16) << 16 |
           (uint64_t)newlines16(s + 32) << 32 | (uint64_t)newlines16(s + 48) << 48;
}

/* Set bits of x (no call: the builtin may be libgcc's without -mpopcnt).
 * SIGNAL CONTEXT: no call. */
static uint64_t bits64(uint64_t x)
{
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
    return (x * UINT64_C(0x0101010101010101)) >> 56;
}

/*
 * Skip *need newlines of s[i..n), 64 bytes at a time (a block with fewer
 * newlines than still needed is skipped whole), then 16: the position
 * after the last one, with *need 0, or n with *need lowered by those
 * seen. SIGNAL CONTEXT: no call.
 */
static size_t skip_lines(const char *s, size_t i, size_t n, uint64_t *need)
{
    for (; i + 64 <= n; i += 64) {
        uint64_t m = newlines64(s + i), c = bits64(m);
        if (c < *need) {
            *need -= c;
            continue;
        }
        for (; m; m &= m - 1) {
            if (--*need == 0)
                return i + (unsigned)__builtin_ctzll(m) + 1;
        }
    }
    for (; i + 16 <= n; i += 16) {
        unsigned m = newlines16(s + i);
        for (; m; m &= m - 1) {
            if (--*need == 0)
                return i + (unsigned)__builtin_ctz(m) + 1;
        }
    }
    for (; i < n; i++) {
        if (s[i] == '\n' && --*need == 0)
            return i + 1;
    }
    return n;
}

/* The position of the first newline of s[i..n), or n. SIGNAL CONTEXT:
 * no call. */
static size_t find_newline(const char *s, size_t i, size_t n)
{
    for (; i + 16 <= n; i += 16) {
        unsigned m = newlines16(s + i);
        if (m)
            return i + (unsigned)__builtin_ctz(m);
    }
    while (i < n && s[i] != '\n')
        i++;
    return i;
}

/*
 * Read fd line by line and store the lines wanted by order[k..k_end)
 * (sorted by line, none 0). Lines nobody wants are skipped counting
 * newlines 16 bytes at a time; a wanted one is fed byte by byte. SIGNAL CONTEXT: caller memory only.
 */
static void scan_file(src_ctx_t *C, int fd, size_t k, size_t k_end)
{
    src_line_t cur;
    uint64_t lineno = 1, total = 0;
    ssize_t r;
    line_reset(&cur);
    while (k < k_end && total < FIL_SRC_FILE_LIMIT && (r = read_chunk(fd, C->chunk)) > 0) {
        total += (uint64_t)r;
        size_t i = 0, n = (size_t)r;
        while (i < n && k < k_end) {
            uint64_t want = C->reqs[C->order[k]].line;
            if (lineno < want) {
                uint64_t need = want - lineno;
                i = skip_lines(C->chunk, i, n, &need);
                lineno = want - need; /* need > 0: the file goes on in the next chunk */
                continue;
            }
            size_t e = find_newline(C->chunk, i, n); /* the wanted line, at once */
            line_feed_run(&cur, C->chunk + i, e - i);
            i = e;
            if (e < n) {
                i++;
                k = line_store(C, &cur, k, k_end);
                line_reset(&cur);
                lineno++;
            }
        }
    }
    /* A last line without a newline still counts. */
    if (k < k_end && cur.seen > 0 && lineno == C->reqs[C->order[k]].line)
        line_store(C, &cur, k, k_end);
}

/* Handle the requests order[k0..k1) of one file. SIGNAL CONTEXT. */
static void fill_file(src_ctx_t *C, size_t k0, size_t k1)
{
    int fd;
    while (k0 < k1 && C->reqs[C->order[k0]].line == 0)
        k0++; /* line 0 means unknown */
    if (k0 == k1)
        return;
    fd = open_source(&C->reqs[C->order[k0]]);
    if (fd < 0)
        return;
    scan_file(C, fd, k0, k1);
    close(fd);
}

/*
 * Fill text_off/text_len of every request (see fil/report.h). 0, or -1 if
 * pool or scratch are too small or n is too large for 32-bit offsets.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_srclines_fill(fil_srcreq_t *reqs, size_t n, char *pool, size_t pool_cap, void *scratch,
                      size_t cap)
{
    fil_report_arena_t a;
    src_ctx_t C = {.reqs = reqs, .n = n, .pool = pool, .pool_cap = pool_cap};
    const fil_srcreq_t *ca, *cb;
    if (n == 0)
        return 0;
    if (n > UINT32_MAX / FIL_SRC_MAX || !pool || pool_cap < n * FIL_SRC_MAX)
        return -1;
    fil_report_arena_init(&a, scratch, cap);
    C.order = fil_report_carve(&a, (uint64_t)n * 4);
    uint32_t *rep = fil_report_carve(&a, (uint64_t)n * 4); /* the first request like i */
    uint64_t slots = table_slots(n);
    uint32_t *table = fil_report_carve(&a, slots * 4); /* request index + 1, 0: free */
    C.canon = fil_report_carve(&a, (uint64_t)n * 4);
    uint32_t *bypath = fil_report_carve(&a, slots * 4);
    C.chunk = fil_report_carve(&a, SRC_CHUNK);
    if (!C.order || !rep || !table || !C.canon || !bypath || !C.chunk)
        return -1;
    memset(table, 0, slots * 4);
    size_t u = 0; /* the distinct requests go into order[0..u) */
    for (size_t i = 0; i < n; i++) {
        reqs[i].text_off = 0;
        reqs[i].text_len = 0;
        uint64_t h = req_hash(&reqs[i]) & (slots - 1);
        while (table[h] && !same_req(&reqs[table[h] - 1], &reqs[i]))
            h = (h + 1) & (slots - 1);
        if (!table[h]) {
            table[h] = (uint32_t)i + 1;
            C.order[u++] = (uint32_t)i;
        }
        rep[i] = table[h] - 1;
    }
    canon_paths(&C, u, table, bypath, slots);
    fil_report_heapsort(C.order, u, req_less, &C);
    for (size_t k0 = 0, k1; k0 < u; k0 = k1) {
        ca = &reqs[C.canon[C.order[k0]]];
        for (k1 = k0 + 1; k1 < u && (cb = &reqs[C.canon[C.order[k1]]], same_file(ca, cb)); k1++)
            ;
        fill_file(&C, k0, k1);
    }
    for (size_t i = 0; i < n; i++) {
        reqs[i].text_off = reqs[rep[i]].text_off;
        reqs[i].text_len = reqs[rep[i]].text_len;
    }
    return 0;
}
