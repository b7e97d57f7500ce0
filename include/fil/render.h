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

#include "fil/report.h"

/* The options the program ran with, as summary.json reports them. */
typedef struct fil_run_options {
    const char *output;     /* -o DIR as given */
    int no_browser;         /* --no-browser */
    int verbose;            /* --verbose */
    int quiet;              /* --quiet */
    int oom_continue;       /* --on-oom=continue */
    int oom_detection;      /* 0 with --disable-oom-detection */
    int usr2;               /* 0 with --no-usr2 */
    int has_memory_limit;   /* --memory-limit given ... */
    uint64_t memory_limit;  /* ... in bytes */
    int has_safety_margin;  /* --safety-margin given ... */
    uint64_t safety_margin; /* ... in bytes */
    int children;           /* 0 with --no-children */
} fil_run_options_t;

/* Lines of the answer printed on stderr at exit. */
#define FIL_ANSWER_LINES 5
/* Lines and call stacks listed in summary.json. */
#define FIL_SUMMARY_TOP 20

/* One of the top lines, as the launcher prints it. */
typedef struct fil_answer_line {
    uint64_t bytes;   /* allocated by the line itself */
    char where[256];  /* its short label: "script.py:12 (main)" */
    char caller[256]; /* for a library's line, the program's line that called it; else "" */
} fil_answer_line_t;

/* What fil_render_reports found for the launcher to print (filled when
 * fil_run_info_t.answer is not NULL). */
/* Which memory fil_answer_t's lines held (fil_answer_t.held). */
enum {
    FIL_ANSWER_PEAK = 0,  /* at the peak */
    FIL_ANSWER_OOM = 1,   /* when the program ran out of memory */
    FIL_ANSWER_CRASH = 2, /* when it crashed (and dumped) */
    FIL_ANSWER_DEATH = 3, /* when it died of a signal it could not report */
    FIL_ANSWER_NOW = 4,   /* when a report on demand was asked for */
};

typedef struct fil_answer {
    int held;         /* FIL_ANSWER_*: when the lines held the memory */
    uint64_t peak;    /* tracked bytes at the peak */
    uint64_t total;   /* bytes the lines' shares are of */
    uint32_t n;       /* lines[0..n), biggest first */
    fil_answer_line_t lines[FIL_ANSWER_LINES];
} fil_answer_t;

/* One child process as the parent's summary.json and index.html list it. */
typedef struct fil_child_row {
    int pid;
    int argc;
    char *const *argv;   /* its command line */
    const char *folder;  /* its report folder, relative to the parent's */
    int exit_known;      /* 0: how it ended is not known (exit_status null) */
    int exit_status;     /* as a shell reports it: code, or 128+N */
    int term_signal;     /* N if it died of signal N */
    uint64_t peak_bytes; /* its own peak (exact, from its state) */
    int out_of_memory;   /* it ran out of memory (dumped), or the OOM killer killed it */
    int oom_killed;      /* the kernel's OOM killer killed it */
    int running;         /* still running when the program ended */
    int execed;          /* it replaced its image with exec: a later row of its pid is what it became */
    const char *kind;    /* "exec" or "fork" */
    int parent;          /* the process that started it */
} fil_child_row_t;

/* The process tree at one moment (the launcher's samples). */
typedef struct fil_tree_moment {
    const char *what;     /* "peak", "oom": the file is tree-<what>.svg */
    const char *headline; /* what index.html says of it */
    uint64_t t_ns;        /* since the program started */
    uint64_t total;       /* the tree's tracked bytes then (sum of its processes) */
    uint32_t nprocs;
    const int *pids;      /* the processes, main program first */
    const uint64_t *held; /* ... and what each held */
} fil_tree_moment_t;

/* What the supervisor knows about the run. */
typedef struct fil_run_info {
    int argc;                  /* the profiled command as the user gave it */
    char *const *argv;         /* e.g. {"run", "x.py", "--rows", "10"} or {"python", "-c", "..."} */
    const char *python;        /* interpreter used */
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME at fork and at reap */
    int exit_status;           /* as a shell reports it: code, or 128+N; -1: not known */
    int term_signal;           /* N if the program died of signal N, else 0 */
    int oom_kill_known;        /* 1 if the cgroup OOM-kill counter could be read */
    uint64_t oom_kills_before; /* cgroup oom_kill counter before the run */
    uint64_t oom_kills_after;  /* ... and after */
    const fil_run_options_t *options; /* NULL: not known (in-process) */
    const fil_time_point_t *timeline; /* memory over time, t_ns since start_ns */
    uint32_t timeline_len;
    uint64_t timeline_step_ns;   /* the interval each point is the maximum of */
    uint64_t sample_ns;          /* how often the launcher sampled */
    uint64_t peak_rss;           /* the program's peak resident set, bytes; 0: unknown */
    uint64_t now_ns;             /* report on demand: CLOCK_REALTIME of it; 0 at exit */
    uint32_t sequence;           /* report on demand: 1 for the first of the run, ... */
    fil_answer_t *answer;        /* out: the top lines for stderr, or NULL */
    /* The process tree (the main program's report only; else 0/NULL). */
    const fil_child_row_t *children; /* the child processes profiled */
    uint32_t nchildren;
    const fil_tree_moment_t *moments; /* the tree's view at its peak, at an OOM */
    uint32_t nmoments;
    int children_profiled;       /* 0 with --no-children */
    int child_index;             /* a child's own report: 1; 0 for the main program */
} fil_run_info_t;

/* One process of the tree's view (fil_render_tree_view). */
typedef struct fil_tree_proc {
    int state_fd;         /* its state file (structure and labels) */
    const int64_t *bytes; /* its per-node bytes at the moment */
    uint64_t nbytes;      /* entries of bytes (nodes interned later hold 0) */
    const char *label;    /* its root frame: "pid 1234: python worker.py" */
} fil_tree_proc_t;

/* Write dir/<name>.svg and dir/<name>.prof: one flame graph of procs[0..n),
 * each process's frames below its own root frame. 0, or -1.
 * Context: supervisor. */
int fil_render_tree_view(const fil_tree_proc_t *procs, uint32_t n, const char *dir,
                         const char *name, const char *title, const char *subtitle);

/* What fil_render_reports wrote (bit flags). */
#define FIL_RENDERED_PEAK 1u              /* peak-memory.* and index.html */
#define FIL_RENDERED_OOM_INPROCESS 2u     /* the program dumped out-of-memory.* itself */
#define FIL_RENDERED_OOM_POSTMORTEM 4u    /* we wrote out-of-memory.* from the state */
#define FIL_RENDERED_SUMMARY 8u
#define FIL_RENDERED_NOW 16u              /* current-memory.* (a report on demand) */

/* Render reports from the state in state_fd into the existing directory dir.
 * Returns a mask of FIL_RENDERED_* (>= 0), or -1 with a one-line reason in
 * err (the state was unusable: nothing but summary.json was written).
 * Context: supervisor process, single-threaded. */
int fil_render_reports(int state_fd, const char *dir, const fil_run_info_t *info, char *err,
                       size_t errlen);

/* Let the calling thread keep the working memory of one fil_render_reports
 * or fil_render_on_demand for the next (on: 1), or give back what it kept
 * and keep no more (0). A launcher thread that draws one child's reports
 * after another then maps and faults in its working memory once, not for
 * each child; it gives it back whenever it has nothing more to draw, so
 * the memory is held no longer than the renders need it. Context: the
 * supervisor, the thread itself. */
void fil_render_keep_scratch(int on);

/* Render a report of a program that is still running, from its state in
 * state_fd, into the existing directory dir: what it holds now
 * (current-memory.*), the peak so far (peak-memory.*), index.html and
 * summary.json. The counters are copied first (the program goes on
 * changing them), so every figure of the report is of one moment: see
 * fil_view_freeze. info->now_ns is the moment, info->exit_status is
 * ignored. 0, or -1 with a one-line reason in err. Context: supervisor,
 * any one thread (not at the same time as fil_render_reports). */
int fil_render_on_demand(int state_fd, const char *dir, const fil_run_info_t *info, char *err,
                         size_t errlen);

/* Ask the render in progress to stop: the file being written is removed and
 * the rest are skipped (summary.json is still written). Async-signal-safe:
 * the supervisor's SIGINT/SIGTERM handler calls it once the program has
 * ended. */
void fil_render_interrupt(void);
/* 1 once fil_render_interrupt() was called. */
int fil_render_interrupted(void);
/* The errno of the first report file that could not be written since the
 * last call (its name into name, cut to len), or 0; forgets it. Context:
 * the thread that rendered. */
int fil_render_take_failure(char *name, size_t len);

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
