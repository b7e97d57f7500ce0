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
 * One dump per process (invariant 3): a thread that loses the race never
 * returns before the winner's files and messages are complete. It sleeps on
 * dump_done; then, if the winner ends the process (exit 53, or a crash that
 * dies of its signal), it sleeps for good so the winner's ending decides the
 * exit status; with --on-oom=continue it returns and its caller fails its
 * own request. The winner itself crashing inside the dump is the one caller
 * that must not wait (it would wait for itself): it gets -1 and dies of its
 * signal, leaving the half-written dump to the supervisor's post-mortem.
 *
 * Allowed calls: the report and render writers, fil_limits_refresh, raw
 * open/read/close/write/mkdir/rename/unlink, clock_gettime,
 * syscall(SYS_gettid, SYS_futex), pause, sched_yield. No malloc: the
 * allocator wrappers abort if this thread calls them while fil_in_dump is set.
 */
#include <limits.h>
#include <linux/futex.h>
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

/* Who dumps and how far it got. dump_owner is claimed once (CAS 0 -> tid) and
 * never reset; dump_ends is written by the owner before dump_done; dump_done
 * goes 0 -> 1 once, after every file and message is complete, and is the
 * futex word losers sleep on. */
static int dump_owner; /* tid of the dumping thread, 0 before any dump */
static int dump_ends;  /* 1: the owner ends the process once done (exit 53 or its signal) */
static int dump_done;  /* 1 once the files and messages are complete */

int fil_oom_dumped(void) { return __atomic_load_n(&dump_done, __ATOMIC_ACQUIRE); }

/* Sleep until another thread's dump is complete. SIGNAL CONTEXT: futex only. */
static void wait_done(void) {
    while (!__atomic_load_n(&dump_done, __ATOMIC_ACQUIRE))
        syscall(SYS_futex, &dump_done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

/* Mark the dump complete and wake every waiting loser. SIGNAL CONTEXT. */
static void mark_done(void) {
    __atomic_store_n(&dump_done, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &dump_done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void fil_oom_wait_forever(void) {
    for (;;)
        pause();
}

void fil_oom_say(const char *a, const char *b, const char *c) {
    char buf[1024];
    fil_writer_t w;
    fil_writer_init(&w, 2, buf, sizeof buf);
    fil_write_str(&w, FIL_MSG_PREFIX);
    fil_write_str(&w, fil_oom_cfg.who);
    fil_write_str(&w, a);
    fil_write_str(&w, b ? b : "");
    fil_write_str(&w, c ? c : "");
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

/* Draw the report with the arena. 0, or -1. */
static int draw(char *title, size_t tlen) {
    fil_view_t v;
    fil_view_open_live(&v);
    while (v.nodes > 1 && fil_render_scratch_size(v.nodes) > fil_oom_arena_size) {
        v.clipped += v.nodes - v.nodes * 3 / 4; /* arena outgrown: draw what fits */
        v.nodes = v.nodes * 3 / 4;
    }
    fil_writer_t w;
    fil_writer_init(&w, -1, title, tlen - 1);
    fil_write_str(&w, fil_state->oom.reason == FIL_REASON_SIGNAL ? "Crash: " : "Out of memory: ");
    fil_render_oom_headline(&v, 0, &w);
    title[w.len] = 0;
    mkdir(fil_oom_cfg.dir, 0755);
    fil_bump_t mem = {fil_oom_arena, fil_oom_arena_size, 0};
    int r = fil_render_files(&v, FIL_RENDER_OOM, fil_oom_cfg.dir, title, NULL, NULL, &mem);
    mem.used = 0;
    if (fil_render_summary(&v, NULL, fil_oom_cfg.dir, FIL_RENDERED_OOM_INPROCESS, "in-process",
                           &mem) != 0)
        r = -1;
    return r;
}

/*
 * The thread lost the race for the dump (another thread owns it): wait until
 * that dump is complete, then sleep for good if its owner ends the process.
 * Returns 0 (--on-oom=continue: the dump is complete, the caller goes on).
 * SIGNAL CONTEXT: futex and pause only.
 */
static int lost(void) {
    FIL_ASSERT(__atomic_load_n(&dump_owner, __ATOMIC_ACQUIRE) != (int)syscall(SYS_gettid));
    wait_done();
    if (__atomic_load_n(&dump_ends, __ATOMIC_ACQUIRE))
        fil_oom_wait_forever();
    return 0;
}

/* For a predicted out-of-memory: what was left, and the margin it was
 * compared with, on stderr. SIGNAL CONTEXT: stack buffer only. */
static void say_margin(void) {
    char buf[256];
    fil_writer_t w;
    fil_writer_init(&w, 2, buf, sizeof buf);
    fil_write_str(&w, FIL_MSG_PREFIX);
    fil_write_str(&w, fil_oom_cfg.who);
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
    if (!__atomic_compare_exchange_n(&dump_owner, &none, tid, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return none == tid ? -1 : lost(); /* -1: the owner crashed inside its dump */
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
