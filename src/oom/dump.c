/* SPDX-License-Identifier: MIT */
/*
 * dump.c - the one-shot out-of-memory / crash dump. SIGNAL-SAFE FILE.
 *
 * Runs in the thread whose allocation failed, or in a crash signal handler.
 * The first caller claims the dump with a compare-and-swap on its thread id.
 * The dump writes the failure into the state header first (so even a dump
 * that dies half-way leaves the supervisor a reason), then draws the report
 * from the live state with the emergency arena, prints the headline, and only
 * then marks itself complete (dump_done, a futex word).
 *
 * One dump at a time (invariant 3): a thread that loses the race never
 * returns before the winner's files and messages are complete. It sleeps on
 * dump_word; then, if the winner ends the process (exit 53, or a crash that
 * dies of its signal), it sleeps for good so the winner's ending decides the
 * exit status; with --on-oom=continue it returns and its caller fails its
 * own request. The winner itself crashing inside the dump is the one caller
 * that must not wait (it would wait for itself): it gets -1 and dies of its
 * signal, leaving the half-written dump to the supervisor's post-mortem.
 *
 * A program that goes on after running out of memory (a notebook kernel:
 * the cell gets its MemoryError, the kernel the next cell) may re-arm the
 * dump once the last one is complete (fil_oom_rearm): the next out of
 * memory is dumped again, into the folder given. So a process makes one
 * dump per re-arming, never two at once.
 *
 * Allowed calls: the report and render writers, fil_limits_refresh, raw
 * open/read/close/write/mkdir/rename/unlink, clock_gettime,
 * syscall(SYS_gettid, SYS_futex), pause, sched_yield. No malloc: the
 * allocator wrappers abort if this thread calls them while fil_in_dump is set.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fil/lock.h"
#include "fil/oom.h"
#include "fil/runtime.h"
#include "fil/state_writer.h"
#include "oom_internal.h"
#include "../limits/limits_internal.h"
#include "../render/render_internal.h"

/* Who dumps and how far it got. dump_owner is claimed with a CAS (0 -> tid)
 * and goes back to 0 only through fil_oom_rearm (which holds it at -1
 * while it changes the folder); dump_ends is written by the owner before
 * it completes; dump_word is the generation (bumped by each re-arming)
 * shifted left by one, with bit 0 set once the generation's files and
 * messages are complete: the futex word losers sleep on. */
static int dump_owner;          /* tid of the dumping thread; 0: armed; -1: re-arming */
static int dump_ends;           /* 1: the owner ends the process once done (exit 53 or its signal) */
static uint32_t dump_word;      /* generation << 1 | complete */
static uint32_t dumps_complete; /* dumps completed in this process */

#define RETRY 2 /* lost(): the dump was re-armed meanwhile, claim it again */

int fil_oom_dumped(void) { return (int)(__atomic_load_n(&dump_word, __ATOMIC_ACQUIRE) & 1); }

int fil_oom_dump_busy(void) {
    return __atomic_load_n(&dump_owner, __ATOMIC_SEQ_CST) > 0 && !fil_oom_dumped();
}

/* A fork child inherits the parent's dump_owner and dump_word: a dump
 * claimed by a parent thread (which is not in the child) made the child's
 * first out-of-memory wait for ever for a dump that never completes, and a
 * completed one left the child without a dump of its own (one per
 * process, into its own folder). */
void fil_oom_fork_rearm(void) {
    dump_owner = 0;
    dump_ends = 0;
    dump_word = 0;
    dumps_complete = 0;
}

uint32_t fil_oom_dump_count(void) { return __atomic_load_n(&dumps_complete, __ATOMIC_ACQUIRE); }

/* Sleep until dump_word is no longer w, or 20 ms have passed (a re-arming
 * changes the owner after the word, so a sleeper looks again). SIGNAL
 * CONTEXT: futex only. */
static void nap(uint32_t w) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    syscall(SYS_futex, &dump_word, FUTEX_WAIT_PRIVATE, w, &ts, NULL, 0);
}

/* Wake every thread sleeping on dump_word. SIGNAL CONTEXT. */
static void wake_all(void) {
    syscall(SYS_futex, &dump_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Mark the dump complete and wake every waiting loser. SIGNAL CONTEXT. */
static void mark_done(void) {
    __atomic_add_fetch(&dumps_complete, 1, __ATOMIC_RELEASE);
    __atomic_or_fetch(&dump_word, 1, __ATOMIC_RELEASE);
    wake_all();
}

void fil_oom_wait_forever(void) {
    for (;;)
        pause();
}

int fil_oom_stderr(void) {
    struct stat st;
    int fd = fil_oom_cfg.err_fd;
    if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_dev == fil_oom_cfg.err_dev &&
        (uint64_t)st.st_ino == fil_oom_cfg.err_ino)
        return fd;
    return fd >= 0 ? 2 : -1; /* the program closed our copy (closerange): its fd 2 */
}

void fil_oom_line(fil_writer_t *w, char *buf, size_t len) {
    fil_writer_init(w, fil_oom_stderr(), buf, len);
    fil_write_str(w, FIL_MSG_PREFIX);
    fil_write_str(w, fil_oom_cfg.who);
}

/* Write s with each control character as '?': a path the user gave (-o
 * "a\nb") must not start a line without the prefix. SIGNAL CONTEXT. */
static void write_shown(fil_writer_t *w, const char *s) {
    for (; s && *s; s++)
        fil_write_char(w, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

void fil_oom_say(const char *a, const char *b, const char *c) {
    char buf[1024];
    fil_writer_t w;
    fil_oom_line(&w, buf, sizeof buf);
    fil_write_str(&w, a);
    write_shown(&w, b);
    write_shown(&w, c);
    fil_write_char(&w, '\n');
    fil_writer_flush(&w);
}

/* Resident set size from /proc/self/statm, bytes (0 if unreadable). */
static uint64_t rss_now(void) {
    char buf[256];
    if (fil_limits_read_small("/proc/self/statm", buf, sizeof buf) <= 0)
        return 0;
    const char *p = buf;
    uint64_t size, res;
    if (fil_limits_parse_u64(&p, &size) != 0)
        return 0;
    p = fil_limits_skip_blanks(p);
    if (fil_limits_parse_u64(&p, &res) != 0)
        return 0;
    return res * fil_limits_page_size;
}

/* Record why and where in the header, before anything can go wrong. */
static void record(fil_dump_reason_t reason, const char *fn, uint64_t request, uint32_t node,
                   int sig, const uint64_t *addr) {
    fil_oom_info_t *o = &fil_state->oom;
    o->reason = reason;
    size_t n = fn ? strnlen(fn, sizeof o->function - 1) : 0;
    memcpy(o->function, fn ? fn : "", n);
    o->function[n] = 0;
    o->request = request;
    o->request_node = node;
    o->signal = sig;
    o->fault_addr = addr ? *addr : 0;
    o->fault_known = addr != NULL;
    o->tracked = fil_state->total > 0 ? (uint64_t)fil_state->total : 0;
    o->rss = rss_now();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    __atomic_store_n(&o->dump_state, 1, __ATOMIC_RELEASE);
}

/* mkdir -p of the result folder: each missing folder of its path (a
 * re-armed dump's folder may be new, fil_oom_rearm). SIGNAL CONTEXT:
 * stack buffer only. */
static void make_folder(const char *dir) {
    char path[sizeof fil_oom_cfg.dir];
    size_t n = strnlen(dir, sizeof path - 1);
    memcpy(path, dir, n);
    path[n] = 0;
    for (size_t i = 1; i < n; i++) {
        if (path[i] != '/')
            continue;
        path[i] = 0;
        mkdir(path, 0755);
        path[i] = '/';
    }
    mkdir(path, 0755);
}

/* Draw the report with the arena. 0, or -1. */
static int draw(char *title, size_t tlen) {
    fil_view_t v;
    fil_view_open_live(&v);
    fil_bump_t mem = {fil_oom_arena, fil_oom_arena_size, 0};
    if (fil_render_scratch_size(v.nodes) > fil_oom_arena_size) {
        /* Arena outgrown (it could not grow under RLIMIT_AS, or the call
         * stacks came faster): draw the oldest nodes that fit, with the
         * bytes of the others on their nearest drawn caller (the fold's
         * tables at the arena's end). */
        uint64_t keep = v.nodes;
        size_t fold = 0;
        do {
            keep = keep * 3 / 4;
            fold = fil_view_fold_size(v.nodes, keep);
        } while (keep > 1 && fil_render_scratch_size(keep) + fold > fil_oom_arena_size);
        fil_bump_t tail = {fil_oom_arena, fil_oom_arena_size, fil_oom_arena_size - fold};
        if (fold < fil_oom_arena_size && fil_view_fold(&v, keep, &tail) == 0) {
            mem.cap = fil_oom_arena_size - fold;
        } else { /* no room even for the fold: the newest are left out */
            v.clipped += v.nodes - keep;
            v.nodes = keep;
        }
    }
    fil_writer_t w;
    fil_writer_init(&w, -1, title, tlen - 1);
    fil_write_str(&w, fil_state->oom.reason == FIL_REASON_SIGNAL ? "Crash: " : "Out of memory: ");
    fil_render_oom_headline(&v, 0, &w);
    title[w.len] = 0;
    make_folder(fil_oom_cfg.dir);
    int r = fil_render_files(&v, FIL_RENDER_OOM, fil_oom_cfg.dir, title, NULL, NULL, &mem);
    mem.used = 0;
    if (fil_render_summary(&v, NULL, NULL, fil_oom_cfg.dir, "in-process", &mem) != 0)
        r = -1;
    FIL_ASSERT(fil_oom_arena == mem.base); /* the arena did not move under the dump */
    return r;
}

/*
 * The dump could not get the lock in time and draws without it: wait while
 * size_arena may be moving the arena (it holds the lock for one mremap and
 * has signals blocked, so it is another thread, and it soon clears the
 * flag; it leaves the arena where it is once it sees this dump claimed).
 * With size_arena this is Dekker's handshake: the claim, then the look at
 * the flag here; the flag, then the look at the claim there. Without it a
 * growth could move the arena while the dump drew in its old pages.
 * SIGNAL CONTEXT: sched_yield only.
 */
static void arena_settled(void) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the claim before the look */
    while (__atomic_load_n(&fil_oom_arena_moving, __ATOMIC_SEQ_CST))
        sched_yield();
}

/*
 * The thread lost the race for the dump (another thread owns it, or it is
 * being re-armed): wait until that dump is complete, then sleep for good if
 * its owner ends the process. Returns 0 (--on-oom=continue: the dump is
 * complete, the caller goes on), RETRY if the dump was re-armed meanwhile,
 * -1 if the owner is this thread (it crashed inside its own dump).
 * SIGNAL CONTEXT: futex and pause only.
 */
static int lost(int tid) {
    for (;;) {
        int owner = __atomic_load_n(&dump_owner, __ATOMIC_ACQUIRE);
        uint32_t w = __atomic_load_n(&dump_word, __ATOMIC_ACQUIRE);
        if (owner == 0)
            return RETRY;
        if (owner == tid)
            return -1;
        if (owner > 0 && (w & 1))
            break;
        nap(w);
    }
    if (__atomic_load_n(&dump_ends, __ATOMIC_ACQUIRE))
        fil_oom_wait_forever();
    return 0;
}

/* For a predicted out-of-memory: what was left, and the margin it was
 * compared with, on stderr. SIGNAL CONTEXT: stack buffer only. */
static void say_margin(void) {
    char buf[256];
    fil_writer_t w;
    fil_oom_line(&w, buf, sizeof buf);
    fil_write_str(&w, "Predicted: ");
    fil_write_size_down(&w, fil_state->oom.headroom); /* never reads as the margin itself */
    fil_write_str(&w, fil_state->oom.limit_kind == FIL_LIMIT_CGROUP
                          ? " left under the cgroup limit, less than the safety margin of "
                          : " of memory available, less than the safety margin of ");
    fil_write_size(&w, fil_state->margin);
    fil_write_str(&w, " (--safety-margin)\n");
    fil_writer_flush(&w);
}

/* Headline, the margin of a prediction, where the files went, on stderr.
 * SIGNAL CONTEXT. */
static void announce(const char *title, int r) {
    if (!fil_oom_cfg.quiet) {
        fil_oom_say(title, NULL, NULL);
        if (fil_state->oom.reason == FIL_REASON_PREDICTED)
            say_margin();
    }
    if (r == 0 && !fil_oom_cfg.quiet)
        fil_oom_say(fil_state->oom.reason == FIL_REASON_SIGNAL ? "Wrote crash report to "
                                                               : "Wrote out-of-memory report to ",
                    fil_oom_cfg.display_dir, "/out-of-memory.svg");
    else if (r != 0)
        fil_oom_say("error: the out-of-memory report could not be written completely to ",
                    fil_oom_cfg.display_dir, NULL);
}

/* The owner's work: record, capture, draw, announce. SIGNAL CONTEXT: arena only. */
static void write_dump(fil_dump_reason_t reason, const char *fn, uint64_t request, uint32_t node,
                       int sig, const uint64_t *addr) {
    fil_in_dump = 1;
    record(reason, fn, request, node, sig, addr);
    fil_oom_capture_native();
    if (fil_oom_test_hook)
        fil_oom_test_hook(); /* FIL_TEST_MALLOC_IN_DUMP: must abort */
    int locked = fil_lock_timed(2000); /* the holder may be this crashed thread */
    if (!locked)
        arena_settled();
    char title[512];
    int r = draw(title, sizeof title);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fil_state->oom.dump_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec -
                             fil_state->oom.time_ns;
    FIL_ASSERT(fil_state->oom.dump_state == 1);
    __atomic_store_n(&fil_state->oom.dump_state, 2, __ATOMIC_RELEASE);
    if (locked)
        fil_unlock();
    fil_in_dump = 0;
    announce(title, r);
}

int fil_oom_dump(fil_dump_reason_t reason, const char *fn, uint64_t request, uint32_t node,
                 int sig, const uint64_t *addr, fil_limit_kind_t kind, uint64_t limit,
                 uint64_t room) {
    int tid = (int)syscall(SYS_gettid), none = 0;
    /* A fork child does not track (fil_active is 0) and must not touch the
     * parent's state or result folder, even when it crashes. */
    if (!fil_state || !__atomic_load_n(&fil_active, __ATOMIC_ACQUIRE))
        return -1;
    while (!__atomic_compare_exchange_n(&dump_owner, &none, tid, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
        int r = lost(tid);
        if (r != RETRY)
            return r;
        none = 0;
    }
    FIL_ASSERT(fil_state->oom.dump_state == 0 && !fil_oom_dumped());
    __atomic_store_n(&dump_ends, reason == FIL_REASON_SIGNAL || !fil_oom_cfg.continue_mode,
                     __ATOMIC_RELEASE);
    fil_state->oom.limit_kind = kind;
    fil_state->oom.limit_value = limit;
    fil_state->oom.headroom = room;
    write_dump(reason, fn, request, node, sig, addr);
    FIL_ASSERT(__atomic_load_n(&dump_owner, __ATOMIC_RELAXED) == tid);
    mark_done();
    return 1;
}

/* Copy s into a folder field of the configuration (cut to fit). */
static void set_folder(char *field, size_t cap, const char *s) {
    size_t n = strnlen(s, cap - 1);
    memcpy(field, s, n);
    field[n] = 0;
}

int fil_oom_rearm(const char *dir) {
    int owner = __atomic_load_n(&dump_owner, __ATOMIC_ACQUIRE);
    if (!fil_state || owner < 0 || (owner > 0 && !fil_oom_dumped()))
        return -1; /* a dump is being written (or re-armed) right now */
    if (!__atomic_compare_exchange_n(&dump_owner, &owner, -1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return -1; /* a dump started meanwhile */
    set_folder(fil_oom_cfg.dir, sizeof fil_oom_cfg.dir, dir);
    set_folder(fil_oom_cfg.display_dir, sizeof fil_oom_cfg.display_dir, dir);
    fil_oom_cfg.continue_mode = 1;
    fil_state->oom_continue = 1;
    if (owner > 0) { /* the last dump is complete: a new generation */
        memset(&fil_state->oom, 0, sizeof fil_state->oom);
        uint32_t w = __atomic_load_n(&dump_word, __ATOMIC_ACQUIRE);
        __atomic_store_n(&dump_word, (w | 1) + 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&dump_owner, 0, __ATOMIC_RELEASE);
    wake_all();
    return 0;
}
