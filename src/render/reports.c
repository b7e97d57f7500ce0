/* SPDX-License-Identifier: MIT */
/*
 * reports.c - the supervisor's rendering of a finished run.
 *
 * After the program has been reaped, its state file is mapped read-only and
 * validated; the peak report is drawn from it, and when the program died of a
 * signal without having written an out-of-memory report itself (SIGKILL from
 * the OOM killer above all), the post-mortem report is drawn from the live
 * bytes it held at death. summary.json comes last, with everything known.
 * Working memory is mapped for the occasion, sized from the state.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fil/lock.h"
#include "fil/render.h"
#include "fil/state_writer.h"
#include "fil/sys.h"
#include "render_internal.h"

/* Title strings built with the report writer into a fixed buffer. */
static void peak_title(const fil_view_t *v, char *buf, size_t len) {
    fil_writer_t w;
    fil_writer_init(&w, -1, buf, len - 1);
    fil_write_str(&w, "Peak tracked memory usage: ");
    fil_write_size(&w, fil_view_peak_total(v));
    buf[w.len] = 0;
}

/* The headline of the out-of-memory / crash / death report. */
static void oom_title(const fil_view_t *v, const fil_run_info_t *info, char *buf, size_t len) {
    fil_writer_t w;
    fil_writer_init(&w, -1, buf, len - 1);
    fil_render_death_headline(v, info, &w);
    buf[w.len] = 0;
}

/* The command line as one string, for subtitles. */
static void command_line(const fil_run_info_t *info, char *buf, size_t len) {
    size_t k = 0;
    for (int i = 0; i < info->argc && k + 2 < len; i++) {
        size_t n = strlen(info->argv[i]);
        if (n > len - k - 2)
            n = len - k - 2;
        if (i)
            buf[k++] = ' ';
        memcpy(buf + k, info->argv[i], n);
        k += n;
    }
    buf[k] = 0;
}

int fil_render_live_peak(const char *dir, const char *title, char *err, size_t errlen) {
    if (!fil_state) {
        fil_view_t none;
        fil_view_open_file(&none, NULL, 0, err, errlen);
        return -1;
    }
    fil_lock(); /* a consistent picture: other threads' allocations wait */
    fil_view_t v;
    fil_view_open_live(&v);
    fil_bump_t mem = {NULL, fil_page_round(fil_render_scratch_size(v.nodes)), 0};
    mem.base = fil_sys_pages(mem.cap);
    int r = -1;
    if (mem.base && fil_render_files(&v, FIL_RENDER_PEAK, dir, title, NULL, NULL, &mem) == 0) {
        mem.used = 0;
        char *buf = fil_bump(&mem, 65536);
        r = buf && fil_render_summary(&v, NULL, dir, FIL_RENDERED_PEAK, NULL, buf, 65536) == 0
                ? 0
                : -1;
    }
    fil_unlock();
    fil_sys_unmap(mem.base, mem.cap);
    if (r != 0 && errlen) {
        const char *m = "cannot write the report into that folder";
        size_t n = strlen(m) < errlen - 1 ? strlen(m) : errlen - 1;
        memcpy(err, m, n);
        err[n] = 0;
    }
    return r;
}

int fil_render_reports(int state_fd, const char *dir, const fil_run_info_t *info, char *err,
                       size_t errlen) {
    struct stat st;
    if (fstat(state_fd, &st) != 0 || st.st_size <= 0) {
        fil_view_t none;
        fil_view_open_file(&none, NULL, 0, err, errlen);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *base = mmap(NULL, size, PROT_READ, MAP_SHARED, state_fd, 0);
    if (base == MAP_FAILED) {
        fil_view_t none;
        fil_view_open_file(&none, NULL, 0, err, errlen);
        return -1;
    }
    fil_view_t v;
    int rendered = -1;
    if (fil_view_open_file(&v, base, size, err, errlen) == 0) {
        fil_bump_t mem = {NULL, fil_page_round(fil_render_scratch_size(v.nodes)), 0};
        mem.base = fil_sys_pages(mem.cap);
        char title[512], sub[1024];
        command_line(info, sub, sizeof sub);
        unsigned r = 0;
        const char *oom_source = NULL;
        char oom_line[512];
        oom_title(&v, info, oom_line, sizeof oom_line);
        if (v.h->oom.dump_state == 2) {
            r |= FIL_RENDERED_OOM_INPROCESS;
            oom_source = "in-process";
        } else if (info->term_signal) {
            if (mem.base && fil_render_files(&v, FIL_RENDER_OOM, dir, oom_line, sub, NULL, &mem) == 0)
                r |= FIL_RENDERED_OOM_POSTMORTEM;
            oom_source = "post-mortem";
            mem.used = 0;
        }
        peak_title(&v, title, sizeof title);
        if (mem.base && fil_render_files(&v, FIL_RENDER_PEAK, dir, title, sub, oom_source ? oom_line : NULL,
                                         &mem) == 0)
            r |= FIL_RENDERED_PEAK;
        if (fil_render_summary(&v, info, dir, r, oom_source, title, sizeof title) == 0)
            r |= FIL_RENDERED_SUMMARY;
        fil_sys_unmap(mem.base, mem.cap);
        rendered = (int)r;
    }
    munmap(base, size);
    return rendered;
}
