/* SPDX-License-Identifier: MIT */
/*
 * test_state.c - unit tests of the state writer (src/state/state_writer.c).
 *
 * Design: one private state (fil_state_open(-1)) per process, grown with the
 * writer API exactly as the profiled process grows it. What is asserted is
 * what the post-mortem reader depends on: the header fields (magic, version,
 * sizes, pid), the segment geometry (chunk k holds 4096 << k elements, so
 * fil_seg_locate maps 0 / 4095 / 4096 / 12287 / 12288 to chunks 0 / 0 / 1 /
 * 1 / 2), growth by whole chunks only (the file size moves by exactly the
 * page-rounded chunk sizes and equals what fstat says), element addresses
 * that never overlap within or across segments, strings that never cross a
 * chunk end (sizes around the 4096-byte chunk 0 and the FIL_STRING_MAX cut),
 * and that the mapped header and chunks really are the memfd's bytes: the fd
 * is found under /proc/self/fd by its "memfd:fil-state" link name and read
 * with pread at the header and at every chunk offset. Tests may use libc
 * freely.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fil/lock.h"
#include "fil/state.h"
#include "fil/state_writer.h"
#include "fil/sys.h"

/* Expected file size: the header plus every mapped chunk, page-rounded. */
static uint64_t expected_size(void)
{
    const fil_seg_t *segs[] = {&fil_state->nodes, &fil_state->bytes, &fil_state->peak,
                               &fil_state->funcs, &fil_state->strings, &fil_state->stop};
    uint64_t size = FIL_STATE_HEADER_SIZE;
    for (int s = 0; s < FIL_SEG_COUNT; s++)
        for (uint32_t k = 0; k < segs[s]->nchunks; k++)
            size += fil_page_round(fil_seg_chunk_elems(k) * segs[s]->elem_size);
    return size;
}

static const fil_seg_t *seg(int s)
{
    switch (s) {
    case FIL_SEG_NODES:
        return &fil_state->nodes;
    case FIL_SEG_BYTES:
        return &fil_state->bytes;
    case FIL_SEG_PEAK:
        return &fil_state->peak;
    case FIL_SEG_FUNCS:
        return &fil_state->funcs;
    case FIL_SEG_STOP:
        return &fil_state->stop;
    default:
        return &fil_state->strings;
    }
}

/* Elements segment s can hold with its chunks now. */
static uint64_t capacity(int s)
{
    return ((UINT64_C(1) << seg(s)->nchunks) - 1) << FIL_SEG_SHIFT;
}


/* ---- tests ------------------------------------------------------------------ */

static void test_header(void)
{
    fil_state_header_t *h = fil_state;
    CHECK(h != NULL);
    CHECK_U64(h->magic, FIL_STATE_MAGIC);
    CHECK_U64(h->version, FIL_STATE_VERSION);
    CHECK_U64(h->header_size, FIL_STATE_HEADER_SIZE);
    CHECK_U64(h->file_size, FIL_STATE_HEADER_SIZE);
    CHECK_U64(fil_state_size(), FIL_STATE_HEADER_SIZE);
    CHECK_U64((uint64_t)h->pid, (uint64_t)getpid());
    CHECK_U64(h->nodes.elem_size, sizeof(fil_node_t));
    CHECK_U64(h->bytes.elem_size, 8);
    CHECK_U64(h->peak.elem_size, 8);
    CHECK_U64(h->funcs.elem_size, sizeof(fil_func_t));
    CHECK_U64(h->strings.elem_size, 1);
    CHECK_U64(h->stop.elem_size, 8);
    for (int s = 0; s < FIL_SEG_COUNT; s++) {
        CHECK_U64(seg(s)->nchunks, 0);
        CHECK_U64(seg(s)->count, 0);
    }
    CHECK_U64((uint64_t)h->total, 0);
    CHECK_U64((uint64_t)h->peak_total, 0);

    /* sys.version whole, as the program sees it (3.9's has a newline). */
    fil_state_set_python_version("3.11.2 (main, Mar 13 2023)\n[GCC 12.2.0]");
    CHECK(strcmp(h->python_version, "3.11.2 (main, Mar 13 2023)\n[GCC 12.2.0]") == 0);
    char longer[200];
    memset(longer, 'v', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    fil_state_set_python_version(longer); /* cut to the field, NUL-terminated */
    CHECK_U64(strlen(h->python_version), sizeof h->python_version - 1);
}

static void test_locate(void)
{
    static const struct {
        uint64_t i;
        uint32_t chunk;
        uint64_t within;
    } cases[] = {
        {0, 0, 0},         {4095, 0, 4095}, {4096, 1, 0},      {12287, 1, 8191}, {12288, 2, 0},
        {28671, 2, 16383}, {28672, 3, 0},   {61439, 3, 32767}, {61440, 4, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t k = 99;
        uint64_t w = 99;
        fil_seg_locate(cases[c].i, &k, &w);
        CHECK_U64(k, cases[c].chunk);
        CHECK_U64(w, cases[c].within);
    }
    for (uint32_t k = 0; k < FIL_SEG_MAX_CHUNKS; k++)
        CHECK_U64(fil_seg_chunk_elems(k), UINT64_C(4096) << k);
    /* Every index maps inside its chunk, consecutive indexes consecutively. */
    uint32_t pk = 0;
    uint64_t pw = 0;
    int ok = 1;
    for (uint64_t i = 1; i < 200000; i++) {
        uint32_t k;
        uint64_t w;
        fil_seg_locate(i, &k, &w);
        if (w >= fil_seg_chunk_elems(k))
            ok = 0;
        if (k == pk ? w != pw + 1 : (k != pk + 1 || w != 0 || pw + 1 != fil_seg_chunk_elems(pk)))
            ok = 0;
        pk = k;
        pw = w;
    }
    CHECK(ok);
}

/* A byte range [start, end). */
typedef struct range {
    uint64_t start, end;
} range_t;

static int by_start(const void *a, const void *b)
{
    uint64_t x = ((const range_t *)a)->start, y = ((const range_t *)b)->start;
    return x < y ? -1 : x > y;
}

/* 1 if no two of the n ranges overlap (sorts them). */
static int disjoint(range_t *r, uint64_t n)
{
    qsort(r, n, sizeof *r, by_start);
    for (uint64_t i = 1; i < n; i++)
        if (r[i].start < r[i - 1].end)
            return 0;
    return 1;
}

static void test_reserve(void)
{
    uint64_t size0 = fil_state_size();
    fil_lock();
    /* Nothing needed yet: a reserve of 0 maps nothing. */
    CHECK(fil_state_reserve(FIL_SEG_FUNCS, 0) == 0);
    CHECK_U64(fil_state->funcs.nchunks, 0);
    CHECK_U64(fil_state_size(), size0);

    /* One node: one chunk each of nodes, bytes, peak. */
    CHECK(fil_state_reserve(FIL_SEG_NODES, 1) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 1);
    CHECK_U64(fil_state->bytes.nchunks, 1);
    CHECK_U64(fil_state->peak.nchunks, 1);
    CHECK_U64(fil_state_size(), size0 + 4096 * 16 + 4096 * 8 * 2);
    /* Up to the end of chunk 0 nothing more is mapped. */
    CHECK(fil_state_reserve(FIL_SEG_NODES, 4096) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 1);
    CHECK_U64(fil_state_size(), size0 + 4096 * 16 + 4096 * 8 * 2);
    /* One more: chunk 1 (8192 elements). */
    CHECK(fil_state_reserve(FIL_SEG_NODES, 4097) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 2);
    CHECK_U64(fil_state->bytes.nchunks, 2);
    CHECK_U64(fil_state->peak.nchunks, 2);
    CHECK_U64(fil_state_size(), size0 + 12288 * 16 + 12288 * 8 * 2);
    CHECK(fil_state_reserve(FIL_SEG_NODES, 12288) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 2);
    /* 20,000 nodes: chunks of 4096 + 8192 + 16384. */
    CHECK(fil_state_reserve(FIL_SEG_NODES, 20000) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 3);
    CHECK_U64(fil_state->bytes.nchunks, 3);
    CHECK_U64(fil_state->peak.nchunks, 3);
    CHECK_U64(capacity(FIL_SEG_NODES), 28672);
    CHECK_U64(fil_state_size(), size0 + 28672 * 16 + 28672 * 8 * 2);
    /* Reserve counts from the published count. */
    fil_state->nodes.count = 20000;
    CHECK(fil_state_reserve(FIL_SEG_NODES, 8672) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 3);
    CHECK(fil_state_reserve(FIL_SEG_NODES, 8673) == 0);
    CHECK_U64(fil_state->nodes.nchunks, 4);
    CHECK_U64(fil_state->bytes.nchunks, 4);
    CHECK_U64(fil_state->peak.nchunks, 4);
    fil_state->nodes.count = 0;
    /* Functions: 24-byte records, chunk 0 is 96 KiB (24 pages). */
    CHECK(fil_state_reserve(FIL_SEG_FUNCS, 5000) == 0);
    CHECK_U64(fil_state->funcs.nchunks, 2);
    CHECK(fil_state_reserve(FIL_SEG_STRINGS, 1) == 0);
    fil_unlock();

    CHECK_U64(fil_state_size(), expected_size());
    CHECK_U64(fil_state_size() % 4096, 0);
    CHECK_U64(fil_state->file_size, fil_state_size());

    /* Chunk mappings match fil_state_at, and no two element ranges overlap,
     * within a segment or across segments. */
    uint64_t total = 0;
    for (int s = 0; s < FIL_SEG_COUNT; s++)
        total += capacity(s);
    range_t *rg = malloc(total * sizeof *rg);
    uint64_t n = 0;
    int inside = 1;
    for (int s = 0; s < FIL_SEG_COUNT; s++) {
        uint32_t es = fil_state_elem_size[s];
        CHECK_U64(es, seg(s)->elem_size);
        for (uint64_t i = 0; i < capacity(s); i++) {
            uint32_t k;
            uint64_t w;
            fil_seg_locate(i, &k, &w);
            char *p = fil_state_at(s, i);
            if (k >= seg(s)->nchunks || p != fil_state_chunks[s][k] + w * es)
                inside = 0;
            rg[n].start = (uint64_t)(uintptr_t)p;
            rg[n].end = rg[n].start + es;
            n++;
        }
    }
    CHECK(inside);
    CHECK_U64(n, total);
    CHECK(disjoint(rg, n));
    /* The same in the file: chunk offsets are disjoint, page-aligned, after
     * the header and inside file_size. */
    n = 0;
    int file_ok = 1;
    for (int s = 0; s < FIL_SEG_COUNT; s++)
        for (uint32_t k = 0; k < seg(s)->nchunks; k++) {
            rg[n].start = seg(s)->chunk_off[k];
            rg[n].end = rg[n].start + fil_seg_chunk_elems(k) * seg(s)->elem_size;
            if (rg[n].start < FIL_STATE_HEADER_SIZE || rg[n].start % 4096 ||
                rg[n].end > fil_state_size())
                file_ok = 0;
            n++;
        }
    CHECK(file_ok);
    CHECK(disjoint(rg, n));
    free(rg);

    /* Writing every element with its own pattern and reading all of them back
     * shows no write lands on another element. */
    for (int s = 0; s < FIL_SEG_COUNT; s++) {
        uint32_t es = fil_state_elem_size[s];
        for (uint64_t i = 0; i < capacity(s); i++) {
            unsigned char *p = fil_state_at(s, i);
            for (uint32_t b = 0; b < es; b++)
                p[b] = (unsigned char)(i * 7 + b * 13 + (uint64_t)s * 101);
        }
    }
    int intact = 1;
    for (int s = 0; s < FIL_SEG_COUNT; s++) {
        uint32_t es = fil_state_elem_size[s];
        for (uint64_t i = 0; i < capacity(s); i++) {
            const unsigned char *p = fil_state_at(s, i);
            for (uint32_t b = 0; b < es; b++)
                if (p[b] != (unsigned char)(i * 7 + b * 13 + (uint64_t)s * 101))
                    intact = 0;
        }
    }
    CHECK(intact);
}

/* Strings of sizes around the chunk sizes: each lies inside one chunk and
 * reads back as written; longer than FIL_STRING_MAX is cut. */
static void test_strings(void)
{
    static const size_t sizes[] = {0,     1,    4000, 4091, 4092, 4093, 4096, 4100,
                                   10000, 3,    4088, 8187, 8188, 8189, 4096, 4096,
                                   4095,  4094, 17,   4096, 4096, 4096, 4096, 4096};
    enum { N = sizeof sizes / sizeof sizes[0], ROUNDS = 12 };
    char *buf = malloc(20000);
    uint64_t idx[N * ROUNDS];
    size_t want_len[N * ROUNDS];
    int all_inside = 1, all_published = 1, monotonic = 1;
    uint64_t prev_end = fil_state->strings.count;
    for (int r = 0; r < ROUNDS; r++)
        for (size_t c = 0; c < N; c++) {
            size_t t = (size_t)r * N + c, n = sizes[c] + (size_t)r * 3 % 5;
            for (size_t b = 0; b < n; b++)
                buf[b] = (char)('a' + (t + b) % 26);
            fil_lock();
            idx[t] = fil_state_add_string(buf, n);
            fil_unlock();
            want_len[t] = n > FIL_STRING_MAX ? FIL_STRING_MAX : n;
            CHECK(idx[t] != UINT64_MAX);
            uint64_t last = idx[t] + 4 + want_len[t] - 1;
            uint32_t k1, k2;
            uint64_t w1, w2;
            fil_seg_locate(idx[t], &k1, &w1);
            fil_seg_locate(last, &k2, &w2);
            if (k1 != k2)
                all_inside = 0;
            if (k2 >= fil_state->strings.nchunks)
                all_published = 0;
            if (idx[t] < prev_end)
                monotonic = 0;
            prev_end = idx[t] + 4 + want_len[t];
            CHECK_U64(fil_state->strings.count, prev_end);
        }
    CHECK(all_inside);
    CHECK(all_published);
    CHECK(monotonic);
    int same = 1;
    for (size_t t = 0; t < N * ROUNDS; t++) {
        const char *p = fil_state_at(FIL_SEG_STRINGS, idx[t]);
        uint32_t len;
        memcpy(&len, p, 4);
        if (len != want_len[t])
            same = 0;
        for (size_t b = 0; b < want_len[t] && same; b++)
            if (p[4 + b] != (char)('a' + (t + b) % 26))
                same = 0;
        if (!same) {
            fprintf(stderr, "string %zu: length %u, want %zu\n", t, len, want_len[t]);
            break;
        }
    }
    CHECK(same);
    CHECK_U64(fil_state_size(), expected_size());
    free(buf);
}

/* Bytes left in the chunk the next string would start in. */
static uint64_t room(void)
{
    uint32_t k;
    uint64_t w;
    fil_seg_locate(fil_state->strings.count, &k, &w);
    return fil_seg_chunk_elems(k) - w;
}

/* Strings whose length prefix and bytes exactly fit the rest of a chunk stay
 * there (no byte wasted); one to four bytes more and they start the next
 * chunk. Runs on a fresh strings segment (chunks 0 to about 8). */
static void test_string_edges(void)
{
    char *buf = malloc(FIL_STRING_MAX);
    memset(buf, 'x', FIL_STRING_MAX);
    int placed = 1, inside = 1;
    /* Each case moves on to the next chunk, twice as big: one pass only. */
    for (int delta = -3; delta <= 4; delta++) {
        fil_lock();
        for (uint64_t r0 = room(); r0 < 1000 || r0 > 3000; r0 = room()) {
            /* pad to leave 1000..3000 bytes: fill this chunk up, or
             * eat into it leaving 2000 */
            uint64_t pad = r0 < 1000 ? (r0 >= 4 ? r0 - 4 : 0) : r0 - 4 - 2000;
            fil_state_add_string(buf, pad > FIL_STRING_MAX ? FIL_STRING_MAX : pad);
        }
        uint64_t at = fil_state->strings.count, r = room();
        size_t n = (size_t)((int64_t)r - 4 + delta);
        uint64_t idx = fil_state_add_string(buf, n);
        fil_unlock();
        uint64_t want = delta <= 0 ? at : at + r; /* here, or the next chunk's start */
        if (idx != want) {
            fprintf(stderr, "room %" PRIu64 ", string of %zu at %" PRIu64 ", want %" PRIu64 "\n", r,
                    n, idx, want);
            placed = 0;
        }
        uint32_t k1, k2;
        uint64_t w1, w2;
        fil_seg_locate(idx, &k1, &w1);
        fil_seg_locate(idx + 4 + n - 1, &k2, &w2);
        if (k1 != k2 || k2 >= fil_state->strings.nchunks)
            inside = 0;
    }
    CHECK(placed);
    CHECK(inside);
    CHECK(fil_state->strings.nchunks <= 10);
    CHECK_U64(fil_state_size(), expected_size());
    free(buf);
}

/* The memfd under /proc/self/fd holds what the mapping shows. */
static void test_file(void)
{
    int fd = find_state_fd();
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    CHECK_U64((uint64_t)st.st_size, fil_state_size());

    fil_state_header_t *h = malloc(sizeof *h);
    CHECK(pread(fd, h, sizeof *h, 0) == (ssize_t)sizeof *h);
    CHECK(memcmp(h, fil_state, sizeof *h) == 0);
    CHECK_U64(h->magic, FIL_STATE_MAGIC);
    CHECK_U64(h->nodes.nchunks, fil_state->nodes.nchunks);
    CHECK_U64(h->strings.count, fil_state->strings.count);
    CHECK_U64(h->file_size, (uint64_t)st.st_size);
    free(h);

    /* A change through the mapping is in the file at once. */
    fil_state->allocations = 0x1122334455667788u;
    uint64_t v = 0;
    CHECK(pread(fd, &v, 8, (off_t)offsetof(fil_state_header_t, allocations)) == 8);
    CHECK_U64(v, 0x1122334455667788u);
    fil_state->allocations = 0;

    /* Every chunk, read at its recorded offset, equals its mapping. */
    int chunks_same = 1;
    for (int s = 0; s < FIL_SEG_COUNT; s++)
        for (uint32_t k = 0; k < seg(s)->nchunks; k++) {
            size_t len = fil_seg_chunk_elems(k) * seg(s)->elem_size;
            char *b = malloc(len);
            if (pread(fd, b, len, (off_t)seg(s)->chunk_off[k]) != (ssize_t)len ||
                memcmp(b, fil_state_chunks[s][k], len) != 0)
                chunks_same = 0;
            free(b);
        }
    CHECK(chunks_same);
    /* Element 12288 of nodes (chunk 2, index 0) at its file offset. */
    fil_node_t *n = fil_state_at(FIL_SEG_NODES, 12288);
    *n = (fil_node_t){7, 8, 9, 10};
    fil_node_t r = {0, 0, 0, 0};
    CHECK(pread(fd, &r, sizeof r, (off_t)fil_state->nodes.chunk_off[2]) == (ssize_t)sizeof r);
    CHECK(r.parent == 7 && r.func == 8 && r.line == 9 && r.depth == 10);
}

/* fil_sys_touch_pages (fil/sys.h), as the emergency arena uses it: every
 * page it covers becomes resident, and what was written there is still
 * there, page starts included (a dump may be drawing in those pages while
 * another thread makes the arena resident). */
static void test_touch_pages(void)
{
    const size_t pages = 40, len = pages * 4096;
    char *p = fil_sys_pages(len);
    CHECK(p != NULL);
    if (!p)
        return;
    unsigned char vec[40];
    CHECK(mincore(p, len, vec) == 0);
    size_t in = 0;
    for (size_t i = 0; i < pages; i++)
        in += vec[i] & 1;
    CHECK_U64(in, 0);
    fil_sys_touch_pages(p, 4096, len); /* all but the first page */
    CHECK(mincore(p, len, vec) == 0);
    in = 0;
    for (size_t i = 1; i < pages; i++)
        in += vec[i] & 1;
    CHECK_U64(in, pages - 1);
    CHECK_U64(vec[0] & 1, 0);
    size_t nonzero = 0;
    for (size_t i = 0; i < len; i++)
        nonzero += p[i] != 0;
    CHECK_U64(nonzero, 0);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(0x22 + i % 7);
    fil_sys_touch_pages(p, 0, len);
    size_t changed = 0;
    for (size_t i = 0; i < len; i++)
        changed += p[i] != (char)(0x22 + i % 7);
    CHECK_U64(changed, 0);
    fil_sys_unmap(p, len);
}

int main(void)
{
    test_touch_pages();
    CHECK(fil_state_open(-1) == 0);
    if (!fil_state) {
        check_summary("test_state");
        return 1;
    }
    test_header();
    test_locate();
    test_reserve();
    test_string_edges();
    test_strings();
    test_file();
    return check_summary("test_state");
}
