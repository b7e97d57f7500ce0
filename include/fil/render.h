/* SPDX-License-Identifier: MIT */
/*
 * fil/render.h - turning the shared state into reports.
 *
 * The supervisor calls fil_render_reports() after the profiled program has
 * exited (or died): it maps the state file read-only, validates it, and writes
 * the peak report, and the post-mortem out-of-memory report when the program
 * died of a signal without dumping one itself. summary.json is always
 * (re)written last with everything known about the run.
 */
#ifndef FIL_RENDER_H
#define FIL_RENDER_H

#include <stddef.h>
#include <stdint.h>

/* What the supervisor knows about the run. */
typedef struct fil_run_info {
    int argc;                  /* the profiled command as the user gave it */
    char *const *argv;         /* e.g. {"run", "x.py", "--rows", "10"} or {"python", "-c", "..."} */
    const char *python;        /* interpreter used */
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME at fork and at reap */
    int exit_status;           /* as a shell reports it: code, or 128+N */
    int term_signal;           /* N if the program died of signal N, else 0 */
    int oom_kill_known;        /* 1 if the cgroup OOM-kill counter could be read */
    uint64_t oom_kills_before; /* cgroup oom_kill counter before the run */
    uint64_t oom_kills_after;  /* ... and after */
} fil_run_info_t;

/* What fil_render_reports wrote (bit flags). */
#define FIL_RENDERED_PEAK 1u              /* peak-memory.* and index.html */
#define FIL_RENDERED_OOM_INPROCESS 2u     /* the program dumped out-of-memory.* itself */
#define FIL_RENDERED_OOM_POSTMORTEM 4u    /* we wrote out-of-memory.* from the state */
#define FIL_RENDERED_SUMMARY 8u

/* Render reports from the state in state_fd into the existing directory dir.
 * Returns a mask of FIL_RENDERED_* (>= 0), or -1 with a one-line reason in
 * err (the state was unusable: nothing but summary.json was written).
 * Context: supervisor process, single-threaded. */
int fil_render_reports(int state_fd, const char *dir, const fil_run_info_t *info, char *err,
                       size_t errlen);

/* Ask the render in progress to stop: the file being written is removed and
 * the rest are skipped (summary.json is still written). Async-signal-safe:
 * the supervisor's SIGINT/SIGTERM handler calls it once the program has
 * ended. */
void fil_render_interrupt(void);
/* 1 once fil_render_interrupt() was called. */
int fil_render_interrupted(void);

/* What ended a program that died of signal sig, as the predicate of "The
 * program ...": "was interrupted (SIGINT)", "was terminated (SIGTERM)",
 * "was killed (SIGKILL)", "was killed by the kernel's OOM killer
 * (SIGKILL)" (oom_killed: the cgroup's OOM-kill count went up), "crashed
 * (SIGSEGV)", "was killed by SIGUSR1"...
 * Written into buf (NUL-terminated, cut to len). Context: any. */
void fil_render_death_words(int sig, int oom_killed, char *buf, size_t len);

/* Render the peak report of this process's own live state into the
 * existing directory dir (peak-memory.*, index.html, summary.json), with the
 * given title. 0, or -1 with a one-line reason in err. Context: the profiled
 * process, any thread; blocks other threads' allocations while it runs. */
int fil_render_live_peak(const char *dir, const char *title, char *err, size_t errlen);

#endif
