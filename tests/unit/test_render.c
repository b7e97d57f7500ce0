/* SPDX-License-Identifier: MIT */
/*
 * test_render.c - unit tests of the render module (src/render/) on a real state.
 *
 * A state is built in-process with the writer API exactly as the profiled
 * process builds it (fil_state_open, interning, fil_tracker_add/remove), its
 * memfd is found through /proc/self/fd, and fil_render_reports() turns it into
 * report files, which are read back and checked for what a user sees: the
 * exact .prof lines (frames and bytes), the peak semantics (A and B held at
 * the high-water mark, not the later, smaller C), the post-mortem report of
 * the live bytes, and a writer killed between a node's store and the
 * total's (the reader sums the nodes).
 *
 * Then the renderer is fuzzed with copies of the file in fresh memfds:
 * truncated at many sizes, random byte flips (fixed seed) in the header and
 * in the used part of every segment, garbage counters, chunk offsets/counts
 * beyond the file, forward parents, string lengths past their chunk. Every
 * call must return -1 with a reason, or a mask whose files exist and whose
 * .prof lines are `<stack> <bytes>`; it must never crash (ASan/UBSan) or hang
 * (an alarm fails the test). Each damaged render runs in a forked child, so a
 * crash is counted and named (the case, the signal) and the run goes on.
 * Tests may use libc freely.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fil/lock.h"
#include "fil/render.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"

/* ---- files and folders ---------------------------------------------------- */

/* Whole file as a NUL-terminated string (caller frees), or NULL; its
 * length (which counts any NUL bytes inside) in *lenp if lenp. */
static char *slurp_len(const char *dir, const char *name, size_t *lenp)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    if (lenp)
        *lenp = len;
    return buf;
}

static char *slurp(const char *dir, const char *name)
{
    return slurp_len(dir, name, NULL);
}

static int exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *fresh_dir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/fil-test-render-XXXXXX");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return buf;
}

/* Remove dir and the files in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    if (rmdir(dir) != 0)
        fprintf(stderr, "rmdir %s: %s\n", dir, strerror(errno));
}

/* Offset of the first line of text[0..len) that is not "<something> <digits>\n"
 * (names may hold any byte but the separators), or len if all are fine. */
static size_t prof_bad_line(const char *text, size_t len)
{
    size_t p = 0;
    while (p < len) {
        const char *nl = memchr(text + p, '\n', len - p);
        if (!nl)
            return p; /* every line ends with a newline */
        size_t e = (size_t)(nl - text), d = e;
        while (d > p && text[d - 1] >= '0' && text[d - 1] <= '9')
            d--;
        if (d == e || d - p < 2 || text[d - 1] != ' ')
            return p;
        p = e + 1;
    }
    return len;
}

/* ---- the state under test ---------------------------------------------- */


/* The bytes of the state file, read through /proc/self/fd/N. */
static char *read_state(int fd, size_t *size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rfd = open(path, O_RDONLY);
    struct stat st;
    if (rfd < 0 || fstat(rfd, &st) != 0) {
        perror(path);
        exit(2);
    }
    char *buf = malloc((size_t)st.st_size);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(rfd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(rfd);
    *size = got;
    return buf;
}

static int memfd_with(const char *bytes, size_t size)
{
    int fd = memfd_create("fil-test-copy", MFD_CLOEXEC);
    size_t put = 0;
    if (fd < 0) {
        perror("memfd_create");
        exit(2);
    }
    while (put < size) {
        ssize_t n = pwrite(fd, bytes + put, size - put, (off_t)put);
        if (n <= 0) {
            perror("pwrite");
            exit(2);
        }
        put += (size_t)n;
    }
    return fd;
}

static char *const run_argv[] = {"run", "app.py", "--rows", "10"};

static fil_run_info_t run_info(int sig)
{
    fil_run_info_t info;
    memset(&info, 0, sizeof info);
    info.argc = 4;
    info.argv = run_argv;
    info.python = "/usr/bin/python3";
    info.start_ns = 1000000000;
    info.end_ns = 3500000000;
    info.exit_status = sig ? 128 + sig : 0;
    info.term_signal = sig;
    return info;
}

/* Byte counts of the scenario. */
enum { BYTES_A = 1000, BYTES_B = 5000, BYTES_C = 3000, BYTES_D = 64 };

/* Node indexes of the scenario. */
static uint32_t n_a, n_b, n_c, n_semi;

/*
 * Build the scenario: main.py:5 holds A; main.py:6 -> data.py:12 (load)
 * holds B, which is then freed; main.py:8 then holds C (< B). The peak is
 * A + B. A function whose name has a ';' holds D bytes from line 0.
 */
static void build_state(void)
{
    CHECK(fil_state_open(-1) == 0);
    CHECK(fil_stacks_init() == 0);
    CHECK(fil_tracker_init() == 0);
    uint32_t f_main = fil_stacks_intern_func("/app/main.py", 12, "<module>", 8, 1);
    uint32_t f_load = fil_stacks_intern_func("/app/data.py", 12, "load", 4, 10);
    uint32_t f_semi = fil_stacks_intern_func("/app/odd.py", 11, "a;b", 3, 1);
    CHECK(f_main != FIL_NONE && f_load != FIL_NONE && f_semi != FIL_NONE);
    CHECK(fil_stacks_intern_func("/app/main.py", 12, "<module>", 8, 1) == f_main);
    fil_lock();
    n_a = fil_stacks_intern_node_locked(FIL_NONE, f_main, 5);
    uint32_t n_call = fil_stacks_intern_node_locked(FIL_NONE, f_main, 6);
    n_b = fil_stacks_intern_node_locked(n_call, f_load, 12);
    n_c = fil_stacks_intern_node_locked(FIL_NONE, f_main, 8);
    n_semi = fil_stacks_intern_node_locked(n_c, f_semi, 0);
    CHECK(fil_stacks_intern_node_locked(n_call, f_load, 12) == n_b);
    fil_unlock();
    CHECK(n_a && n_call && n_b && n_c && n_semi);
    CHECK(n_a < n_call && n_call < n_b && n_b < n_c && n_c < n_semi);

    fil_tracker_add((void *)0x1000, BYTES_A, n_a);
    fil_tracker_add((void *)0x2000, BYTES_B, n_b);
    fil_tracker_remove((void *)0x2000);
    fil_tracker_add((void *)0x3000, BYTES_C, n_c);
    fil_tracker_add((void *)0x4000, BYTES_D, n_semi);
    fil_tracker_remove((void *)0x9999); /* never allocated: ignored */
    CHECK(fil_tracker_live_count() == 3);
    CHECK(fil_state->total == BYTES_A + BYTES_C + BYTES_D);
    CHECK(fil_state->peak_total == BYTES_A + BYTES_B);
    int64_t sum = 0;
    for (uint32_t i = 0; i < fil_state->nodes.count; i++)
        sum += *fil_state_i64(FIL_SEG_BYTES, i);
    CHECK(sum == fil_state->total); /* settled: the header agrees with the nodes */
}

static const char *const peak_prof = "/app/main.py:5 (<module>) 1000\n"
                                     "/app/main.py:6 (<module>);/app/data.py:12 (load) 5000\n";

static const char *const live_prof = "/app/main.py:5 (<module>) 1000\n"
                                     "/app/main.py:8 (<module>) 3000\n"
                                     "/app/main.py:8 (<module>);/app/odd.py (a?b) 64\n";

/* Render state fd into the existing folder dir as a run that ended normally
 * (sig 0) or died of sig; returns fil_render_reports' result. */
static int render_in(int fd, int sig, const char *dir, char *err, size_t errlen)
{
    fil_run_info_t info = run_info(sig);
    err[0] = 0;
    return fil_render_reports(fd, dir, &info, err, errlen);
}

/* The same into a fresh folder, whose name is left in dir. */
static int render(int fd, int sig, char *dir, size_t dirlen, char *err, size_t errlen)
{
    fresh_dir(dir, dirlen);
    return render_in(fd, sig, dir, err, errlen);
}

/* ---- tests on the real state -------------------------------------------- */

static void test_peak_report(int fd)
{
    char dir[64], err[256];
    int r = render(fd, 0, dir, sizeof dir, err, sizeof err);
    CHECK(r == (int)(FIL_RENDERED_PEAK | FIL_RENDERED_SUMMARY));
    char *prof = slurp(dir, "peak-memory.prof");
    CHECK_STR(prof, peak_prof); /* A and B at the peak; C came later and is smaller */
    free(prof);
    CHECK(exists(dir, "peak-memory.svg") && exists(dir, "peak-memory-reversed.svg"));
    CHECK(exists(dir, "index.html"));
    CHECK(!exists(dir, "out-of-memory.prof")); /* a normal end has no OOM report */
    char *sum = slurp(dir, "summary.json");
    CHECK(sum && strstr(sum, "\"peak_bytes\": 6000,"));
    CHECK(sum && strstr(sum, "\"tracked_bytes_at_end\": 4064,"));
    CHECK(sum && strstr(sum, "\"out_of_memory\": null"));
    CHECK(sum && strstr(sum, "\"command\": [\"run\", \"app.py\", \"--rows\", \"10\"]"));
    CHECK(sum && strstr(sum, "\"duration_seconds\": 2.500"));
    CHECK(sum && strstr(sum, "\"state_torn_update_rolled_back\": false"));
    free(sum);
    char *svg = slurp(dir, "peak-memory.svg");
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "</svg>"));
    CHECK(svg && strstr(svg, "load")); /* B's frame is drawn */
    free(svg);
    remove_dir(dir);
}

/* The program's own exit render writes its .prof on a second thread while
 * the graphs are drawn; a child's render writes it first, on the same
 * thread. Both make the same files. */
static void test_side_thread_same_files(int fd)
{
    static const char *const files[] = {"out-of-memory.prof", "out-of-memory.svg",
                                        "out-of-memory-reversed.svg", "peak-memory.prof",
                                        "peak-memory.svg", "peak-memory-reversed.svg"};
    char one[64], two[64], err[256];
    fil_run_info_t program = run_info(SIGKILL), child = run_info(SIGKILL);
    child.child_index = 1;
    fresh_dir(one, sizeof one);
    fresh_dir(two, sizeof two);
    CHECK(fil_render_reports(fd, one, &program, err, sizeof err) ==
          (int)(FIL_RENDERED_PEAK | FIL_RENDERED_OOM_POSTMORTEM | FIL_RENDERED_SUMMARY));
    CHECK(fil_render_reports(fd, two, &child, err, sizeof err) ==
          (int)(FIL_RENDERED_PEAK | FIL_RENDERED_OOM_POSTMORTEM | FIL_RENDERED_SUMMARY));
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        size_t n1 = 0, n2 = 0;
        char *a = slurp_len(one, files[i], &n1), *b = slurp_len(two, files[i], &n2);
        CHECK(a && b && n1 > 0);
        if (a && b && strstr(files[i], ".svg")) { /* a child's subtitle has no "fil-profile " */
            char *sa = strstr(a, "<text class=\"subtitle\""), *sb = strstr(b, "<text class=\"subtitle\"");
            char *ea = sa ? strchr(sa, '\n') : NULL, *eb = sb ? strchr(sb, '\n') : NULL;
            CHECK(ea && eb && sa - a == sb - b && memcmp(a, b, (size_t)(sa - a)) == 0);
            if (ea && eb) {
                CHECK(n1 - (size_t)(ea - a) == n2 - (size_t)(eb - b) &&
                      memcmp(ea, eb, n1 - (size_t)(ea - a)) == 0);
            }
        } else if (a && b) {
            CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
        }
        free(a);
        free(b);
    }
    remove_dir(one);
    remove_dir(two);
}

static void test_postmortem_report(int fd)
{
    char dir[64], err[256];
    int r = render(fd, SIGKILL, dir, sizeof dir, err, sizeof err);
    CHECK(r == (int)(FIL_RENDERED_PEAK | FIL_RENDERED_OOM_POSTMORTEM | FIL_RENDERED_SUMMARY));
    char *prof = slurp(dir, "out-of-memory.prof");
    CHECK_STR(prof, live_prof); /* what was live at death: A, C, D; not B */
    free(prof);
    prof = slurp(dir, "peak-memory.prof");
    CHECK_STR(prof, peak_prof);
    free(prof);
    CHECK(exists(dir, "out-of-memory.svg") && exists(dir, "out-of-memory-reversed.svg"));
    char *sum = slurp(dir, "summary.json");
    CHECK(sum && strstr(sum, "\"source\": \"post-mortem\""));
    CHECK(sum && strstr(sum, "\"kind\": \"killed\""));
    CHECK(sum && strstr(sum, "\"signal\": \"SIGKILL\""));
    CHECK(sum && strstr(sum, "\"tracked_bytes\": 4064"));
    CHECK(sum && strstr(sum, "\"exit_status\": 137"));
    free(sum);
    remove_dir(dir);
}

/* Three samples: the peak at 1.5 s. */
static const fil_time_point_t timeline[] = {
    {0, 100, 4096}, {1500000000, BYTES_A + BYTES_B, 8192}, {2000000000, 4064, 8192}};

/* An exit render with the launcher's figures: the answer for stderr, the
 * options, the timeline in summary.json and index.html. */
static void test_answers(int fd)
{
    char dir[64], err[256];
    fil_run_info_t info = run_info(0);
    fil_run_options_t o = {"out", 1, 0, 1, 0, 1, 1, 1, 3ull << 30, 0, 0, 1};
    fil_answer_t a;
    info.options = &o;
    info.timeline = timeline;
    info.timeline_len = 3;
    info.timeline_step_ns = 10000000;
    info.sample_ns = 10000000;
    info.peak_rss = 8192;
    info.answer = &a;
    fresh_dir(dir, sizeof dir);
    CHECK(fil_render_reports(fd, dir, &info, err, sizeof err) ==
          (int)(FIL_RENDERED_PEAK | FIL_RENDERED_SUMMARY));
    CHECK(a.held == FIL_ANSWER_PEAK && a.peak == 6000 && a.total == 6000 && a.n == 2);
    CHECK_STR(a.lines[0].where, "data.py:12 (load)"); /* B: the biggest at the peak */
    CHECK(a.lines[0].bytes == BYTES_B && a.lines[0].caller[0] == 0);
    CHECK_STR(a.lines[1].where, "main.py:5 (<module>)");
    char *sum = slurp(dir, "summary.json");
    CHECK(sum && strstr(sum, "\"report\": \"exit\""));
    CHECK(sum && strstr(sum, "\"peak_rss_bytes\": 8192"));
    CHECK(sum && strstr(sum, "\"memory_limit_bytes\": 3221225472, \"on_oom\": \"exit\""));
    CHECK(sum && strstr(sum, "\"quiet\": true, \"usr2_reports\": true"));
    CHECK(sum && strstr(sum, "\"peak_seconds\": 1.500"));
    CHECK(sum && strstr(sum, "[0.000, 100, 4096], [1.500, 6000, 8192], [2.000, 4064, 8192]"));
    CHECK(sum && strstr(sum, "\"label\": \"data.py:12 (load)\", \"file\": \"/app/data.py\", "
                             "\"line\": 12, \"function\": \"load\""));
    CHECK(sum && strstr(sum, "\"bytes\": 5000, \"bytes_with_callees\": 5000, \"own\": true"));
    CHECK(sum && strstr(sum, "{\"bytes\": 5000, \"depth\": 2, \"frames\": [{\"file\": "
                             "\"/app/main.py\", \"line\": 6, \"function\": \"<module>\"}, "
                             "{\"file\": \"/app/data.py\", \"line\": 12"));
    CHECK(sum && strstr(sum, "\"children\": []"));
    free(sum);
    char *html = slurp(dir, "index.html");
    CHECK(html && strstr(html, "<svg class=\"timeline\""));
    CHECK(html && strstr(html, "peak 5.9 KiB at 1.50 s"));
    CHECK(html && !strstr(html, "class=\"end\"")); /* a normal end marks no moment */
    free(html);
    remove_dir(dir);
}

/* A report on demand of the state as it is now: what is held now (A, C,
 * D), the peak so far (A, B), its moment in summary.json. */
static void test_on_demand(int fd)
{
    char dir[64], err[256];
    fil_run_info_t info = run_info(0);
    fil_answer_t a;
    info.now_ns = 2000000000;
    info.sequence = 3;
    info.answer = &a;
    info.timeline = timeline;
    info.timeline_len = 3;
    fresh_dir(dir, sizeof dir);
    CHECK(fil_render_on_demand(fd, dir, &info, err, sizeof err) == 0);
    char *prof = slurp(dir, "current-memory.prof");
    CHECK_STR(prof, live_prof);
    free(prof);
    prof = slurp(dir, "peak-memory.prof");
    CHECK_STR(prof, peak_prof);
    free(prof);
    CHECK(exists(dir, "current-memory.svg") && exists(dir, "current-memory-reversed.svg"));
    CHECK(a.held == FIL_ANSWER_NOW && a.total == 4064 && a.peak == 6000);
    char *sum = slurp(dir, "summary.json");
    CHECK(sum && strstr(sum, "\"report\": \"on-demand\""));
    CHECK(sum && strstr(sum, "\"on_demand\": {\"sequence\": 3, \"seconds\": 1.000, "
                             "\"held_bytes\": 4064}"));
    CHECK(sum && strstr(sum, "\"exit_status\": null"));
    CHECK(sum && strstr(sum, "\"peak_snapshot_incomplete\": false"));
    CHECK(sum && strstr(sum, "\"current-memory.prof\""));
    free(sum);
    char *html = slurp(dir, "index.html");
    CHECK(html && strstr(html, "Report on demand at 1.0 s: 4.0 KiB held now; peak so far 5.9 KiB"));
    CHECK(html && strstr(html, "What is held now") && strstr(html, "report on demand"));
    free(html);
    remove_dir(dir);
}

/* A peak snapshot that stays busy while the counters are copied is
 * flagged, not trusted silently. */
static void test_on_demand_busy_snapshot(const char *orig, size_t size)
{
    char *bytes = malloc(size), dir[64], err[256];
    memcpy(bytes, orig, size);
    ((fil_state_header_t *)bytes)->snapshot_busy = 1;
    int fd = memfd_with(bytes, size);
    fil_run_info_t info = run_info(0);
    info.now_ns = 2000000000;
    fresh_dir(dir, sizeof dir);
    CHECK(fil_render_on_demand(fd, dir, &info, err, sizeof err) == 0);
    char *sum = slurp(dir, "summary.json");
    CHECK(sum && strstr(sum, "\"peak_snapshot_incomplete\": true"));
    free(sum);
    remove_dir(dir);
    close(fd);
    free(bytes);
}

/* A copy of the file renders the same as the original. */
static void test_copy_renders_same(const char *bytes, size_t size)
{
    int fd = memfd_with(bytes, size);
    char dir[64], err[256];
    int r = render(fd, SIGKILL, dir, sizeof dir, err, sizeof err);
    CHECK(r == (int)(FIL_RENDERED_PEAK | FIL_RENDERED_OOM_POSTMORTEM | FIL_RENDERED_SUMMARY));
    char *prof = slurp(dir, "out-of-memory.prof");
    CHECK_STR(prof, live_prof);
    free(prof);
    remove_dir(dir);
    close(fd);
}

static fil_state_header_t *hdr(char *bytes)
{
    return (fil_state_header_t *)bytes;
}

/* Node i's record in a file image (chunk 0 only: the scenario is small). */
static fil_node_t *node_at(char *bytes, uint32_t i)
{
    return (fil_node_t *)(bytes + hdr(bytes)->nodes.chunk_off[0]) + i;
}

/*
 * A writer killed between a charge's stores (node bytes, then total, then
 * peak_total: fil/state.h) leaves the nodes right: the reader must take the
 * total as their sum, and the live state as the peak when it holds more
 * than the recorded peak.
 */
static void test_torn_update(const char *orig, size_t size)
{
    struct {
        int64_t total;      /* the header's stale total */
        int64_t peak_total; /* and peak total (0: as written) */
        const char *peak;   /* the peak report expected */
    } cases[] = {
        /* died adding C: C's bytes stored, the total not yet */
        {BYTES_A + BYTES_D, 0, peak_prof},
        /* died changing A: its new bytes stored, the total 300 behind */
        {BYTES_A - 300 + BYTES_C + BYTES_D, 0, peak_prof},
        /* died on an increase that made a new peak, before peak_total */
        {BYTES_A + BYTES_D, BYTES_A + BYTES_D, live_prof},
    };
    char *bytes = malloc(size);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        memcpy(bytes, orig, size);
        fil_state_header_t *h = hdr(bytes);
        h->total = cases[k].total;
        if (cases[k].peak_total)
            h->peak_total = cases[k].peak_total;
        int fd = memfd_with(bytes, size);
        char dir[64], err[256];
        int r = render(fd, SIGKILL, dir, sizeof dir, err, sizeof err);
        CHECK(r == (int)(FIL_RENDERED_PEAK | FIL_RENDERED_OOM_POSTMORTEM | FIL_RENDERED_SUMMARY));
        char *prof = slurp(dir, "out-of-memory.prof");
        CHECK_STR(prof, live_prof); /* every node as stored */
        free(prof);
        prof = slurp(dir, "peak-memory.prof");
        CHECK_STR(prof, cases[k].peak);
        free(prof);
        char *sum = slurp(dir, "summary.json");
        CHECK(sum && strstr(sum, "\"state_torn_update_rolled_back\": true"));
        CHECK(sum && strstr(sum, "\"tracked_bytes_at_end\": 4064,"));
        char want[64];
        snprintf(want, sizeof want, "\"peak_bytes\": %d,",
                 cases[k].peak == live_prof ? 4064 : BYTES_A + BYTES_B);
        CHECK(sum && strstr(sum, want));
        free(sum);
        remove_dir(dir);
        close(fd);
    }
    free(bytes);
}

/*
 * A process killed while it was dumping leaves the failed request and its
 * native frames in the header: the post-mortem report hangs them under the
 * request's line, outermost native frame first, then the request with its
 * true byte count. A native_count beyond FIL_NATIVE_MAX (a torn or damaged
 * record) must be clamped: only the recorded frames are drawn.
 */
static void test_request_and_native_frames(const char *orig, size_t size)
{
    static const uint32_t counts[] = {3, FIL_NATIVE_MAX, FIL_NATIVE_MAX + 8};
    char *bytes = malloc(size);
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        memcpy(bytes, orig, size);
        fil_oom_info_t *o = &hdr(bytes)->oom;
        o->dump_state = 1;
        o->reason = FIL_REASON_ALLOC_FAILED;
        memcpy(o->function, "malloc", 7);
        o->request = 1 << 20;
        o->request_node = n_c;
        o->native_count = counts[k];
        for (uint32_t i = 0; i < FIL_NATIVE_MAX; i++)
            snprintf(o->native[i], FIL_NATIVE_TEXT, "[native] f%u+0x1 (lib.so)", i);
        int fd = memfd_with(bytes, size);
        char dir[64], err[256];
        fresh_dir(dir, sizeof dir);
        fflush(stderr);
        pid_t pid = fork(); /* a crash here is a finding, not the end of the test */
        if (pid == 0) {
            int r = render_in(fd, SIGKILL, dir, err, sizeof err);
            char *prof = r >= 0 ? slurp(dir, "out-of-memory.prof") : NULL;
            char want[4096];
            size_t w = (size_t)snprintf(want, sizeof want, "/app/main.py:8 (<module>)");
            uint32_t shown = counts[k] < FIL_NATIVE_MAX ? counts[k] : FIL_NATIVE_MAX;
            for (uint32_t i = shown; i-- > 0;)
                w += (size_t)snprintf(want + w, sizeof want - w, ";[native] f%u+0x1 (lib.so)", i);
            snprintf(want + w, sizeof want - w,
                     ";[failed request] malloc(1048576 bytes = 1.0 MiB), drawn at the size of "
                     "live memory 1048576\n");
            int ok = prof && strstr(prof, want) && !strstr(prof, ";;");
            if (!ok)
                fprintf(stderr, "native_count %u: want the line\n  %s got\n%s", counts[k], want,
                        prof ? prof : "(no out-of-memory.prof)");
            free(prof);
            _exit(ok ? 0 : 10);
        }
        int status;
        waitpid(pid, &status, 0);
        remove_dir(dir);
        checks++;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failures++;
            fprintf(stderr, "%s:%d: request with native_count %u: %s (wait status 0x%x)\n",
                    __FILE__, __LINE__, counts[k],
                    WIFEXITED(status) && WEXITSTATUS(status) == 10 ? "wrong report" : "CRASHED",
                    status);
        }
        close(fd);
    }
    free(bytes);
}

/* ---- fuzzing -------------------------------------------------------------- */

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rnd(void)
{ /* xorshift64*, fixed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static uint64_t fuzz_calls, fuzz_failed, fuzz_crashed;

/* Check that dir/name exists (and, for a .prof, is well formed); append
 * what is wrong to why. 1 if fine. */
static int check_file(const char *dir, const char *name, char *why, size_t whylen)
{
    size_t n = strlen(why);
    if (!exists(dir, name)) {
        snprintf(why + n, whylen - n, " %s missing;", name);
        return 0;
    }
    if (!strstr(name, ".prof"))
        return 1;
    size_t len = 0;
    char *p = slurp_len(dir, name, &len);
    size_t bad = p ? prof_bad_line(p, len) : 0;
    int ok = p && bad == len;
    if (!ok) {
        char line[100];
        size_t k = 0;
        for (size_t i = bad; p && i < len && p[i] != '\n' && k < sizeof line - 1; i++)
            line[k++] = p[i] >= 32 && p[i] < 127 ? p[i] : '.';
        line[k] = 0;
        snprintf(why + n, whylen - n, " %s has a malformed line \"%s\";", name, line);
    }
    free(p);
    return ok;
}

/* The contract of one render of a damaged file, checked in the child:
 * exit 0 (rendered, files fine), 2 (rejected with a reason) or 10 (broken,
 * message printed). */
static int fuzz_child(int fd, int sig, const char *what, const char *dir)
{
    char err[256], why[1024] = "";
    memset(err, 0, sizeof err);
    int r = render_in(fd, sig, dir, err, sizeof err);
    int ok = 1;
    if (r < 0) {
        ok = r == -1 && err[0] != 0;
        if (!ok)
            snprintf(why, sizeof why, " no reason given;");
    } else {
        unsigned m = (unsigned)r;
        if (m & ~15u) {
            ok = 0;
            snprintf(why, sizeof why, " unknown mask bits;");
        }
        if (m & FIL_RENDERED_SUMMARY)
            ok &= check_file(dir, "summary.json", why, sizeof why);
        if (m & FIL_RENDERED_PEAK) {
            static const char *const names[] = {"peak-memory.prof", "peak-memory.svg",
                                                "peak-memory-reversed.svg", "index.html"};
            for (int i = 0; i < 4; i++)
                ok &= check_file(dir, names[i], why, sizeof why);
        }
        if (m & FIL_RENDERED_OOM_POSTMORTEM) {
            static const char *const names[] = {"out-of-memory.prof", "out-of-memory.svg",
                                                "out-of-memory-reversed.svg"};
            for (int i = 0; i < 3; i++)
                ok &= check_file(dir, names[i], why, sizeof why);
        }
    }
    if (!ok)
        fprintf(stderr, "fuzz %s (signal %d): returned %d, err \"%s\":%s\n", what, sig, r, err,
                why);
    return !ok ? 10 : r < 0 ? 2 : 0;
}

/*
 * Render fd as a normal end (sig 0) or a death by sig, in a child process so
 * that a crash is counted and reported with the case's name instead of
 * ending the test; a render running over 20 s counts as a hang. Sanitizer
 * reports of crashes after the third are silenced.
 */
static void fuzz_render(int fd, int sig, const char *what)
{
    char dir[64];
    fresh_dir(dir, sizeof dir); /* made and removed here: a crashed child leaves nothing */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        if (fuzz_crashed >= 3) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, 2);
        }
        signal(SIGALRM, SIG_DFL);
        alarm(20);
        _exit(fuzz_child(fd, sig, what, dir));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    remove_dir(dir);
    fuzz_calls++;
    checks++;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        fuzz_failed++;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    } else {
        failures++;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            fprintf(stderr, "fuzz %s (signal %d): HUNG (over 20 s)\n", what, sig);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 10) {
            /* a signal, or a sanitizer's report and exit */
            fuzz_crashed++;
            fprintf(stderr, "fuzz %s (signal %d): CRASHED (wait status 0x%x)\n", what, sig, status);
        }
    }
}

/* (a) The file cut at every 4 KiB and at some odd sizes. */
static void fuzz_truncation(const char *orig, size_t size)
{
    size_t odd[] = {0,
                    1,
                    7,
                    8,
                    100,
                    4095,
                    FIL_STATE_HEADER_SIZE - 1,
                    FIL_STATE_HEADER_SIZE,
                    FIL_STATE_HEADER_SIZE + 1,
                    FIL_STATE_HEADER_SIZE + 4097,
                    size - 4097,
                    size - 1,
                    size - 13};
    char what[64];
    for (size_t cut = 0; cut <= size; cut += 4096) {
        int fd = memfd_with(orig, cut);
        snprintf(what, sizeof what, "truncated at %zu", cut);
        fuzz_render(fd, (cut / 4096) & 1 ? SIGKILL : 0, what);
        close(fd);
    }
    for (size_t k = 0; k < sizeof odd / sizeof *odd; k++) {
        if (odd[k] > size)
            continue;
        int fd = memfd_with(orig, odd[k]);
        snprintf(what, sizeof what, "truncated at %zu", odd[k]);
        fuzz_render(fd, 0, what);
        fuzz_render(fd, SIGKILL, what);
        close(fd);
    }
    /* Too short for a header: a reason, nothing drawn. */
    int fd = memfd_with(orig, 100);
    char dir[64], err[256];
    CHECK(render(fd, 0, dir, sizeof dir, err, sizeof err) == -1 && err[0]);
    remove_dir(dir);
    close(fd);
}

/* Pick an offset worth flipping: the header's fields, or the used part of a segment. */
static size_t flip_offset(const char *orig, size_t size)
{
    const fil_state_header_t *h = (const fil_state_header_t *)orig;
    uint64_t pick = rnd() % 8;
    if (pick < 3) /* layout and counters: everything before the limits */
        return rnd() % offsetof(fil_state_header_t, limits);
    if (pick == 3) /* the rest of the header, the OOM record above all */
        return rnd() % sizeof(fil_state_header_t);
    const fil_seg_t *segs[] = {&h->nodes, &h->bytes, &h->peak, &h->funcs, &h->strings};
    const fil_seg_t *g = segs[pick - 3 > 4 ? 4 : pick - 3];
    uint64_t used = g->count * g->elem_size;
    if (g->nchunks == 0 || used == 0)
        return rnd() % size;
    uint64_t cap0 = (uint64_t)FIL_SEG_BASE * g->elem_size;
    size_t off = (size_t)(g->chunk_off[0] + rnd() % (used < cap0 ? used : cap0));
    return off < size ? off : rnd() % size;
}

/* (b) Random byte flips with a fixed seed, undone after each render. */
static void fuzz_flips(const char *orig, size_t size, int iterations)
{
    int fd = memfd_with(orig, size);
    char what[96];
    for (int it = 0; it < iterations; it++) {
        size_t offs[8];
        int n = 1 + (int)(rnd() % 8);
        for (int k = 0; k < n; k++) {
            offs[k] = flip_offset(orig, size);
            unsigned char b;
            uint64_t how = rnd() % 4;
            if (how == 0)
                b = (unsigned char)(orig[offs[k]] ^ (1u << (rnd() % 8)));
            else if (how == 1)
                b = 0xff;
            else
                b = (unsigned char)rnd();
            if (pwrite(fd, &b, 1, (off_t)offs[k]) != 1)
                exit(2);
        }
        snprintf(what, sizeof what, "flip iteration %d (first offset %zu)", it, offs[0]);
        fuzz_render(fd, it & 1 ? SIGKILL : 0, what);
        for (int k = 0; k < n; k++)
            if (pwrite(fd, orig + offs[k], 1, (off_t)offs[k]) != 1)
                exit(2);
    }
    close(fd);
}

typedef void (*mutator_t)(char *bytes, size_t size);

static void m_chunk_past_end(char *b, size_t s)
{
    hdr(b)->nodes.chunk_off[0] = s + 4096;
}
static void m_chunk_overlaps_end(char *b, size_t s)
{
    hdr(b)->funcs.chunk_off[0] = s - 4096;
}
static void m_chunk_in_header(char *b, size_t s)
{
    (void)s;
    hdr(b)->strings.chunk_off[0] = 0;
}
static void m_chunk_unaligned(char *b, size_t s)
{
    (void)s;
    hdr(b)->bytes.chunk_off[0] += 8;
}
static void m_chunk_huge(char *b, size_t s)
{
    (void)s;
    hdr(b)->peak.chunk_off[0] = UINT64_MAX - 4095;
}
static void m_nchunks_huge(char *b, size_t s)
{
    (void)s;
    hdr(b)->nodes.nchunks = 1000;
}
static void m_nchunks_more(char *b, size_t s)
{
    (void)s;
    hdr(b)->strings.nchunks = 5;
}
static void m_count_huge(char *b, size_t s)
{
    (void)s;
    hdr(b)->nodes.count = UINT64_MAX;
}
static void m_funcs_count_huge(char *b, size_t s)
{
    (void)s;
    hdr(b)->funcs.count = UINT64_MAX / 2;
}
static void m_strings_count_huge(char *b, size_t s)
{
    (void)s;
    hdr(b)->strings.count = UINT64_MAX;
}
static void m_elem_size(char *b, size_t s)
{
    (void)s;
    hdr(b)->nodes.elem_size = 1;
}
static void m_elem_size_big(char *b, size_t s)
{
    (void)s;
    hdr(b)->funcs.elem_size = 1u << 30;
}
static void m_magic(char *b, size_t s)
{
    (void)s;
    hdr(b)->magic ^= 1;
}
static void m_version(char *b, size_t s)
{
    (void)s;
    hdr(b)->version = 99;
}
static void m_header_size(char *b, size_t s)
{
    (void)s;
    hdr(b)->header_size = 4096;
}
static void m_parent_self(char *b, size_t s)
{
    (void)s;
    node_at(b, n_b)->parent = n_b;
}
static void m_parent_forward(char *b, size_t s)
{
    (void)s;
    node_at(b, n_a)->parent = n_semi;
}
static void m_parent_far(char *b, size_t s)
{
    (void)s;
    node_at(b, n_b)->parent = FIL_NONE - 1;
}
static void m_parent_cycle(char *b, size_t s)
{
    (void)s;
    node_at(b, n_b)->parent = n_c;
    node_at(b, n_c)->parent = n_b;
}
static void m_func_bad(char *b, size_t s)
{
    (void)s;
    node_at(b, n_a)->func = 1000000;
}
static void m_func_none(char *b, size_t s)
{
    (void)s;
    node_at(b, n_c)->func = FIL_NONE;
}
static void m_node0_func(char *b, size_t s)
{
    (void)s;
    node_at(b, 0)->func = 0;
}
static void m_depth(char *b, size_t s)
{
    (void)s;
    node_at(b, n_b)->depth = UINT32_MAX;
}
static fil_func_t *func_at(char *b, uint32_t i)
{
    return (fil_func_t *)(b + hdr(b)->funcs.chunk_off[0]) + i;
}
static void m_func_file_past(char *b, size_t s)
{
    (void)s;
    func_at(b, 0)->file = UINT64_MAX - 2;
}
static void m_func_name_near_end(char *b, size_t s)
{
    (void)s;
    func_at(b, 1)->name = hdr(b)->strings.count - 2;
}
static void m_string_len_huge(char *b, size_t s)
{
    (void)s;
    uint32_t len = UINT32_MAX;
    memcpy(b + hdr(b)->strings.chunk_off[0], &len, 4); /* the first string: main.py's path */
}
static void m_string_len_past_chunk(char *b, size_t s)
{
    (void)s;
    uint32_t len = FIL_SEG_BASE - 2; /* fits FIL_STRING_MAX, not the chunk or the count */
    memcpy(b + hdr(b)->strings.chunk_off[0], &len, 4);
}
static void m_string_len_past_count(char *b, size_t s)
{
    (void)s;
    uint32_t len = 100;
    uint64_t last = func_at(b, 2)->name; /* the last string written */
    memcpy(b + hdr(b)->strings.chunk_off[0] + last, &len, 4);
}
static void m_bytes_negative(char *b, size_t s)
{
    (void)s;
    ((int64_t *)(b + hdr(b)->bytes.chunk_off[0]))[n_a] = INT64_MIN;
}
static void m_peak_huge(char *b, size_t s)
{
    (void)s;
    ((int64_t *)(b + hdr(b)->peak.chunk_off[0]))[n_b] = INT64_MAX;
    ((int64_t *)(b + hdr(b)->peak.chunk_off[0]))[n_a] = INT64_MAX;
}
static void m_totals(char *b, size_t s)
{
    (void)s;
    hdr(b)->total = INT64_MIN;
    hdr(b)->peak_total = -1;
    hdr(b)->at_peak = 7;
    hdr(b)->snapshot_busy = 1;
}
/* Counters that cannot come from any sequence of charges. */
static void m_counters_garbage(char *b, size_t s)
{
    (void)s;
    hdr(b)->total = INT64_MAX;
    hdr(b)->peak_total = INT64_MIN;
    hdr(b)->at_peak = 0;
    *(int64_t *)(b + hdr(b)->bytes.chunk_off[0] + 8 * n_b) = INT64_MAX;
    *(int64_t *)(b + hdr(b)->bytes.chunk_off[0] + 8 * n_a) = INT64_MAX;
}
/* A half-finished dump record, as a process killed while dumping leaves it. */
static void m_oom_garbage(char *b, size_t s)
{
    (void)s;
    fil_oom_info_t *o = &hdr(b)->oom;
    o->dump_state = 1;
    o->reason = 77;
    memset(o->function, 'x', sizeof o->function); /* no NUL */
    o->request = UINT64_MAX;
    o->request_node = FIL_NONE - 1;
    o->signal = -5;
    o->limit_kind = 1000;
    o->native_count = 1000000;
    memset(o->native, 'y', sizeof o->native); /* no NULs */
}
static void m_oom_native_count(char *b, size_t s)
{
    (void)s;
    fil_oom_info_t *o = &hdr(b)->oom;
    o->dump_state = 1;
    o->reason = FIL_REASON_ALLOC_FAILED;
    memcpy(o->function, "malloc", 7);
    o->request = 1 << 20;
    o->request_node = n_c;
    o->native_count = FIL_NATIVE_MAX + 5;
}
static void m_python_version(char *b, size_t s)
{
    (void)s;
    memset(hdr(b)->python_version, '"', sizeof hdr(b)->python_version); /* no NUL, quotes */
}

/* (d) Structural corruption: offsets, counts, parents, strings, counters. */
static void fuzz_structures(const char *orig, size_t size)
{
    static const struct {
        const char *name;
        mutator_t fn;
    } muts[] = {
        {"chunk past end", m_chunk_past_end},
        {"chunk overlapping end", m_chunk_overlaps_end},
        {"chunk in header", m_chunk_in_header},
        {"chunk unaligned", m_chunk_unaligned},
        {"chunk offset huge", m_chunk_huge},
        {"nchunks huge", m_nchunks_huge},
        {"nchunks beyond file", m_nchunks_more},
        {"node count huge", m_count_huge},
        {"func count huge", m_funcs_count_huge},
        {"string count huge", m_strings_count_huge},
        {"elem size", m_elem_size},
        {"elem size big", m_elem_size_big},
        {"magic", m_magic},
        {"version", m_version},
        {"header size", m_header_size},
        {"parent self", m_parent_self},
        {"parent forward", m_parent_forward},
        {"parent far", m_parent_far},
        {"parent cycle", m_parent_cycle},
        {"func out of range", m_func_bad},
        {"func none", m_func_none},
        {"node 0 func", m_node0_func},
        {"depth", m_depth},
        {"func file past strings", m_func_file_past},
        {"func name near end", m_func_name_near_end},
        {"string length huge", m_string_len_huge},
        {"string length past chunk", m_string_len_past_chunk},
        {"string length past count", m_string_len_past_count},
        {"bytes negative", m_bytes_negative},
        {"peak huge", m_peak_huge},
        {"totals", m_totals},
        {"counters garbage", m_counters_garbage},
        {"oom record garbage", m_oom_garbage},
        {"oom native count", m_oom_native_count},
        {"python version", m_python_version},
    };
    char *bytes = malloc(size);
    for (size_t k = 0; k < sizeof muts / sizeof *muts; k++) {
        memcpy(bytes, orig, size);
        muts[k].fn(bytes, size);
        int fd = memfd_with(bytes, size);
        fuzz_render(fd, 0, muts[k].name);
        fuzz_render(fd, SIGKILL, muts[k].name);
        close(fd);
    }
    /* The header's own checks give a reason, not a report. */
    mutator_t rejected[] = {m_magic, m_version, m_header_size};
    for (size_t k = 0; k < sizeof rejected / sizeof *rejected; k++) {
        memcpy(bytes, orig, size);
        rejected[k](bytes, size);
        int fd = memfd_with(bytes, size);
        char dir[64], err[256];
        CHECK(render(fd, SIGKILL, dir, sizeof dir, err, sizeof err) == -1 && err[0]);
        remove_dir(dir);
        close(fd);
    }
    /* A forward parent must not put a wrong stack into the report: A's line
     * is either left out or drawn on its own, never under D's frames. */
    memcpy(bytes, orig, size);
    m_parent_forward(bytes, size);
    int fd = memfd_with(bytes, size);
    char dir[64], err[256];
    int r = render(fd, SIGKILL, dir, sizeof dir, err, sizeof err);
    char *prof = r >= 0 ? slurp(dir, "out-of-memory.prof") : NULL;
    CHECK(!prof || !strstr(prof, "(a?b);/app/main.py:5"));
    free(prof);
    remove_dir(dir);
    close(fd);
    free(bytes);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_render: timed out (a render hung)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(3);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    build_state();
    int fd = find_state_fd();
    CHECK(fd >= 0);
    if (fd < 0) {
        fprintf(stderr, "test_render: no memfd:fil-state in /proc/self/fd\n");
        return 1;
    }
    size_t size;
    char *orig = read_state(fd, &size);
    CHECK(size == fil_state_size());
    CHECK(size > FIL_STATE_HEADER_SIZE && size % 4096 == 0);

    test_peak_report(fd);
    test_postmortem_report(fd);
    test_side_thread_same_files(fd);
    test_answers(fd);
    test_on_demand(fd);
    test_on_demand_busy_snapshot(orig, size);
    test_copy_renders_same(orig, size);
    test_torn_update(orig, size);
    test_request_and_native_frames(orig, size);

    fuzz_truncation(orig, size);
    fuzz_structures(orig, size);
    fuzz_flips(orig, size, 2500);
    free(orig);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return check_summary_more("test_render",
                              "; fuzz: %llu renders (%llu rejected, %llu crashed), %.1f s",
                              (unsigned long long)fuzz_calls, (unsigned long long)fuzz_failed,
                              (unsigned long long)fuzz_crashed, secs);
}
