/* SPDX-License-Identifier: MIT */
/*
 * reports.c - the supervisor's rendering of a finished run.
 *
 * After the program has been reaped, its state file is mapped read-only and
 * validated; the peak report is drawn from it, and when the program died of a
 * signal without having written an out-of-memory report itself (SIGKILL from
 * the OOM killer above all), the post-mortem report is drawn from the live
 * bytes it held at death (and what a dump cut short left half written is
 * removed). summary.json comes last, with everything known.
 * Working memory is mapped for the occasion, sized from the state.
 *
 * A report on demand (SIGUSR2, while the program runs) is drawn from a
 * frozen view (fil_view_freeze: a copy of the counters, so the figures of
 * every file agree although the program goes on), into its own folder:
 * what is held now (current-memory.*), the peak so far (peak-memory.*),
 * index.html and summary.json.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fil/lock.h"
#include "fil/render.h"
#include "fil/state_writer.h"
#include "fil/sys.h"
#include "render_internal.h"

/* The working memory a launcher thread keeps between renders
 * (fil_render_keep_scratch): one mapping, reused by the next render that
 * fits in it. A render initialises every byte it reads (a report's files
 * already share one mapping one after the other), so nothing is cleared;
 * the debug build fills a kept mapping with 0xa5 before every render to
 * prove that, and the first 16 MiB of a fresh one (all of it would fault
 * in hundreds of MiB for a program with 400,000 call stacks, and slow
 * the stop on SIGTERM past its grace). */
static __thread struct {
    char *base;
    size_t cap;
    int keep;
} kept;

void fil_render_keep_scratch(int on) {
    kept.keep = on;
    if (!on && kept.base) {
        fil_sys_unmap(kept.base, kept.cap);
        kept.base = NULL;
    }
}

/* Working memory of at least mem->cap bytes for an exit render or a
 * report on demand: the kept mapping if it is big enough, else a new one
 * (mem->cap is then what it holds). */
static void take_scratch(fil_bump_t *mem) {
#ifdef FIL_DEBUG
    size_t poison = (size_t)16 << 20; /* a fresh mapping: its first 16 MiB */
#endif
    if (kept.base && kept.cap >= mem->cap) {
        mem->base = kept.base;
        mem->cap = kept.cap;
        kept.base = NULL;
#ifdef FIL_DEBUG
        poison = mem->cap; /* what the last render left: all of it */
#endif
    } else {
        if (kept.base) { /* too small for this render: gone, this one is kept instead */
            fil_sys_unmap(kept.base, kept.cap);
            kept.base = NULL;
        }
        mem->base = fil_sys_pages(mem->cap);
    }
#ifdef FIL_DEBUG
    if (mem->base)
        memset(mem->base, 0xa5, poison < mem->cap ? poison : mem->cap);
#endif
}

/* Keep mem's mapping for the next render, or give it back. */
static void give_scratch(fil_bump_t *mem) {
    if (kept.keep && mem->base && !kept.base) {
        kept.base = mem->base;
        kept.cap = mem->cap;
    } else {
        fil_sys_unmap(mem->base, mem->cap);
    }
}

/* fil_render_files's second thread, for the program's own exit render:
 * the program has ended, so a core is free, and the .prof (the biggest
 * file of a program with many call stacks) is written beside the graphs.
 * It blocks every signal, as the launcher's other threads do: a stop
 * signal reaches the main thread, and the render's stop flag ends both. */
typedef struct side_thread {
    pthread_t thread;
    void (*fn)(void *);
    void *arg;
} side_thread_t;

static void *side_main(void *p) {
    side_thread_t *s = p;
    s->fn(s->arg);
    return NULL;
}

static void *side_run(void (*fn)(void *), void *arg) {
    side_thread_t *s = malloc(sizeof *s);
    sigset_t all, old;
    if (!s)
        return NULL;
    s->fn = fn;
    s->arg = arg;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&s->thread, NULL, side_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void side_wait(void *h) {
    side_thread_t *s = h;
    pthread_join(s->thread, NULL);
    free(s);
}

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
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-_./=:,+@%";
    size_t k = 0;
    /* As it would be typed: "fil-profile", then each word, in single
     * quotes when it holds anything a shell would split or expand. A
     * child's command is its own argv, which the program ran. */
#define PUT(c) (k + 1 < len ? (void)(buf[k++] = (c)) : (void)0)
    for (const char *s = info->child_index ? "" : "fil-profile"; *s; s++)
        PUT(*s);
    for (int i = 0; i < info->argc; i++) {
        const char *a = info->argv[i];
        int quote = !*a || strspn(a, plain) != strlen(a);
        if (k > 0)
            PUT(' ');
        if (quote)
            PUT('\'');
        for (; *a; a++) {
            if (*a == '\'') {
                PUT('\'');
                PUT('\\');
                PUT('\'');
            }
            PUT(*a);
        }
        if (quote)
            PUT('\'');
    }
#undef PUT
    buf[k] = 0;
}

int fil_render_live_peak(const char *dir, const char *title, char *err, size_t errlen) {
    if (!fil_state) {
        fil_view_t none;
        fil_view_open_file(&none, NULL, 0, err, errlen);
        return -1;
    }
    /* A consistent picture: other threads' allocations wait while the
     * counters are copied (fil_view_freeze), not while the files are
     * written and the source lines read. */
    fil_lock();
    fil_view_t v;
    fil_view_open_live(&v);
    size_t frozen = fil_page_round(fil_view_freeze_size(v.nodes));
    fil_bump_t mem = {NULL, frozen + fil_page_round(fil_render_fast_scratch_size(v.nodes)), 0};
    mem.base = fil_sys_pages(mem.cap);
    int ok = mem.base && fil_view_freeze(&v, &mem) == 0;
    fil_unlock();
    int r = -1;
    if (ok) {
        fil_bump_t work = {mem.base + frozen, mem.cap - frozen, 0};
        fil_top_memo_t memo = {{0}, {0}, {0}, {{{0}}}};
        v.memo = &memo; /* frozen: every file reads the same copy */
        if (fil_render_files(&v, FIL_RENDER_PEAK, dir, title, NULL, NULL, &work) == 0) {
            work.used = 0;
            r = fil_render_summary(&v, NULL, NULL, dir, NULL, &work);
        }
    }
    fil_sys_unmap(mem.base, mem.cap);
    if (r != 0 && errlen) {
        const char *m = "cannot write the report into that folder";
        size_t n = strlen(m) < errlen - 1 ? strlen(m) : errlen - 1;
        memcpy(err, m, n);
        err[n] = 0;
    }
    return r;
}

/* Map the state file read-only: its base and size, or NULL with the reason
 * in err. */
static void *map_state(int state_fd, size_t *size, char *err, size_t errlen) {
    struct stat st;
    void *base = MAP_FAILED;
    if (fstat(state_fd, &st) == 0 && st.st_size > 0)
        base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, state_fd, 0);
    if (base == MAP_FAILED) {
        fil_view_t none;
        fil_view_open_file(&none, NULL, 0, err, errlen);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return base;
}

/* The top lines for the launcher's stderr: of the peak, or of what was held
 * at the moment `held` (FIL_ANSWER_*) says. */
static void fill_answer(const fil_view_t *v, const fil_view_t *dv, int held, fil_answer_t *a,
                        fil_bump_t *mem) {
    fil_top_line_t rows[FIL_ANSWER_LINES];
    size_t used = mem->used;
    const fil_view_t *from = held == FIL_ANSWER_DEATH ? dv : v;
    fil_tree_t *t = fil_render_tree(from, held ? FIL_RENDER_NOW : FIL_RENDER_PEAK, mem);
    int n = t ? fil_render_top_rows(t, rows, FIL_ANSWER_LINES, mem) : -1;
    memset(a, 0, sizeof *a);
    a->held = held;
    a->peak = fil_view_peak_total(v);
    a->total = held ? (from->total > 0 ? (uint64_t)from->total : 0) : a->peak;
    if (n > 0)
        fil_render_fill_answer(a, t, rows, (uint32_t)n);
    mem->used = used;
}

/* What the stderr lines of a finished run are of: the moment the program
 * ran out of memory, crashed or died, else (--on-oom=continue too: what is
 * held at the end is not what was held then) the peak. */
static int answer_kind(const fil_view_t *v, const char *oom_source) {
    const fil_oom_info_t *o = &v->h->oom;
    if (!oom_source || (o->dump_state == 2 && v->h->oom_continue))
        return FIL_ANSWER_PEAK;
    if (o->dump_state == 0 || o->reason == FIL_REASON_NONE)
        return FIL_ANSWER_DEATH;
    return o->reason == FIL_REASON_SIGNAL ? FIL_ANSWER_CRASH : FIL_ANSWER_OOM;
}

/* Every report of a finished run from the validated view v (see
 * fil_render_reports). The mask of what was written. A program that died
 * of a stop signal it had a handler for is drawn as it was when the signal
 * came (fil_view_at_stop), if it recorded that. */
static unsigned render_finished(const fil_view_t *v, const char *dir, const fil_run_info_t *info,
                                fil_bump_t *mem) {
    char title[512], sub[1024], oom_line[512];
    unsigned r = 0;
    const char *oom_source = NULL;
    uint64_t budget = info->child_index ? FIL_RENDER_CHILD_PROF_BYTES : 0;
    fil_render_page_t page = {NULL, NULL, info, budget, NULL, NULL},
                      plain = {NULL, NULL, NULL, budget, NULL, NULL};
    if (!info->child_index) { /* a child's renders already run side by side */
        page.side_run = plain.side_run = side_run;
        page.side_wait = plain.side_wait = side_wait;
    }
    fil_view_t at_stop = *v;
    fil_top_memo_t stop_memo = {{0}, {0}, {0}, {{{0}}}};
    const fil_view_t *dv = v; /* what was held at the death */
    at_stop.memo = &stop_memo; /* its own lines, not v's */
    if (v->h->oom.dump_state != 2 && fil_view_at_stop(&at_stop, info->term_signal))
        dv = &at_stop;
    command_line(info, sub, sizeof sub);
    oom_title(dv, info, oom_line, sizeof oom_line);
    if (v->h->oom.dump_state == 2) {
        r |= FIL_RENDERED_OOM_INPROCESS;
        oom_source = "in-process";
    } else if (info->term_signal) {
        if (mem->base && fil_render_files(dv, FIL_RENDER_OOM, dir, oom_line, sub, &plain, mem) == 0)
            r |= FIL_RENDERED_OOM_POSTMORTEM;
        oom_source = "post-mortem";
        mem->used = 0;
    }
    page.death = oom_source ? oom_line : NULL;
    peak_title(v, title, sizeof title);
    if (mem->base && fil_render_files(v, FIL_RENDER_PEAK, dir, title, sub, &page, mem) == 0)
        r |= FIL_RENDERED_PEAK;
    mem->used = 0;
    if (mem->base && info->answer)
        fill_answer(v, dv, answer_kind(v, oom_source), info->answer, mem);
    if (mem->base && fil_render_summary(v, dv, info, dir, oom_source, mem) == 0)
        r |= FIL_RENDERED_SUMMARY;
    return r;
}

int fil_render_reports(int state_fd, const char *dir, const fil_run_info_t *info, char *err,
                       size_t errlen) {
    size_t size = 0;
    void *base = map_state(state_fd, &size, err, errlen);
    fil_view_t v;
    int rendered = -1;
    if (!base)
        return -1;
    if (fil_view_open_file(&v, base, size, err, errlen) == 0) {
        size_t side = info->child_index ? 0 : fil_render_side_scratch_size(v.nodes);
        size_t alone = fil_page_round(fil_render_fast_scratch_size(v.nodes));
        fil_bump_t mem = {NULL, fil_page_round(alone + side), 0};
        fil_top_memo_t memo = {{0}, {0}, {0}, {{{0}}}};
        v.memo = &memo; /* the program ended: its state no longer changes */
        if (v.h->pid > 0) /* a dump it was writing when it was killed left its temporaries */
            (void)fil_atomic_sweep(dir, v.h->pid);
        take_scratch(&mem);
        if (!mem.base && side) { /* an inherited RLIMIT_AS, say: one thread's memory */
            mem.cap = alone;
            take_scratch(&mem);
        }
        if (mem.base) {
            rendered = (int)render_finished(&v, dir, info, &mem);
            give_scratch(&mem);
        } else if (errlen) { /* "no memory for their working memory (12 MiB)" */
            fil_writer_t w;
            fil_writer_init(&w, -1, err, errlen - 1);
            fil_write_str(&w, "no memory for their working memory (");
            fil_write_size(&w, mem.cap);
            fil_write_str(&w, ")");
            err[w.len < errlen - 1 ? w.len : errlen - 1] = 0;
        }
    }
    munmap(base, size);
    return rendered;
}

/* The headline of a report on demand: "Report on demand at 3.2 s: 50.0 MiB
 * held now; peak so far 80.0 MiB". */
static void now_title(const fil_view_t *v, const fil_run_info_t *info, char *buf, size_t len) {
    fil_writer_t w;
    uint64_t ms = info->now_ns > info->start_ns ? (info->now_ns - info->start_ns) / 1000000u : 0;
    fil_writer_init(&w, -1, buf, len - 1);
    fil_write_str(&w, "Report on demand at ");
    fil_write_u64(&w, ms / 1000);
    fil_write_char(&w, '.');
    fil_write_char(&w, (char)('0' + ms % 1000 / 100));
    fil_write_str(&w, " s: ");
    fil_write_size(&w, v->total > 0 ? (uint64_t)v->total : 0);
    fil_write_str(&w, " held now; peak so far ");
    fil_write_size(&w, fil_view_peak_total(v));
    buf[w.len] = 0;
}

/* The files of a report on demand from the frozen view v. 0, or -1. */
static int render_now(const fil_view_t *v, const char *dir, const fil_run_info_t *info,
                      fil_bump_t *mem) {
    char title[512], sub[1024], now[512], held[512];
    uint64_t budget = info->child_index ? FIL_RENDER_CHILD_PROF_BYTES : 0;
    fil_render_page_t page = {NULL, now, info, budget, NULL, NULL},
                      plain = {NULL, NULL, NULL, budget, NULL, NULL};
    unsigned r = 0;
    size_t mark = mem->used;
    command_line(info, sub, sizeof sub);
    now_title(v, info, now, sizeof now);
    fil_writer_t w;
    fil_writer_init(&w, -1, held, sizeof held - 1);
    fil_write_str(&w, "Memory held now: ");
    fil_write_size(&w, v->total > 0 ? (uint64_t)v->total : 0);
    held[w.len] = 0;
    if (fil_render_files(v, FIL_RENDER_NOW, dir, held, sub, &plain, mem) == 0)
        r |= FIL_RENDERED_NOW;
    mem->used = mark;
    peak_title(v, title, sizeof title);
    if (fil_render_files(v, FIL_RENDER_PEAK, dir, title, sub, &page, mem) == 0)
        r |= FIL_RENDERED_PEAK;
    mem->used = mark;
    if (info->answer)
        fill_answer(v, v, FIL_ANSWER_NOW, info->answer, mem);
    int s = fil_render_summary(v, NULL, info, dir, NULL, mem);
    return s == 0 && r == (FIL_RENDERED_NOW | FIL_RENDERED_PEAK) ? 0 : -1;
}

int fil_render_on_demand(int state_fd, const char *dir, const fil_run_info_t *info, char *err,
                         size_t errlen) {
    size_t size = 0;
    void *base;
    fil_view_t v;
    int r = -1;
    if (errlen)
        err[0] = 0;
    base = map_state(state_fd, &size, err, errlen);
    if (!base)
        return -1;
    if (fil_view_open_file(&v, base, size, err, errlen) == 0) {
        size_t frozen = fil_view_freeze_size(v.nodes);
        fil_bump_t mem = {NULL, fil_page_round(fil_render_fast_scratch_size(v.nodes) + frozen), 0};
        take_scratch(&mem);
        if (mem.base && fil_view_freeze(&v, &mem) == 0) {
            fil_bump_t work = {mem.base + mem.used, mem.cap - mem.used, 0};
            fil_top_memo_t memo = {{0}, {0}, {0}, {{{0}}}};
            v.memo = &memo; /* frozen: every file reads the same copy */
            r = render_now(&v, dir, info, &work);
        }
        give_scratch(&mem);
    }
    munmap(base, size);
    if (r != 0 && errlen && !err[0]) {
        const char *m = "cannot write the report on demand into that folder";
        size_t n = strlen(m) < errlen - 1 ? strlen(m) : errlen - 1;
        memcpy(err, m, n);
        err[n] = 0;
    }
    return r;
}
