/* SPDX-License-Identifier: MIT */
/*
 * summary.c - summary.json and the out-of-memory headline. SIGNAL-SAFE FILE.
 *
 * summary.json is the machine-readable record of a run: what ran, how it
 * ended, the peak, the limits the program ran under and, when memory ran
 * out or the program died, why. The in-process dump writes it with what the
 * program knows; the supervisor rewrites it with the whole story.
 *
 * Deaths are named for what they were: "Out of memory" only when memory ran
 * out (the in-process dump says so); a program that died of a signal the
 * profiler did not catch is "killed (SIGKILL)" (with "by the kernel's OOM
 * killer" when the cgroup's OOM-kill count went up), "interrupted
 * (SIGINT)", "terminated (SIGTERM)", "crashed (SIGSEGV)"... in headlines,
 * SVG titles, index.html and summary.json ("reason", and "kind": killed,
 * interrupted, terminated, crashed, or for the in-process dump
 * allocation-failed, predicted, signal).
 *
 * What scripts read besides (answer.c): the top lines and call stacks at
 * the peak, the Python stack of the failing allocation and what was held
 * then, the peak RSS, the options, memory over time (the launcher's
 * samples) and, for a report on demand, its moment. The layout is
 * described by docs/summary.schema.json; keys are only ever added.
 *
 * Allowed calls: the report module's writers, memcpy, strlen, open,
 * openat, close.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "render_internal.h"

#define SUMMARY_BUF 65536 /* the writer's buffer (fil_render_scratch_size counts it) */

static const char *const signames[] = {
    [1] = "SIGHUP",   [2] = "SIGINT",   [3] = "SIGQUIT",  [4] = "SIGILL",   [5] = "SIGTRAP",
    [6] = "SIGABRT",  [7] = "SIGBUS",   [8] = "SIGFPE",   [9] = "SIGKILL",  [10] = "SIGUSR1",
    [11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
    [16] = "SIGSTKFLT", [17] = "SIGCHLD", [18] = "SIGCONT", [19] = "SIGSTOP", [20] = "SIGTSTP",
    [21] = "SIGTTIN", [22] = "SIGTTOU", [23] = "SIGURG",  [24] = "SIGXCPU", [25] = "SIGXFSZ",
    [26] = "SIGVTALRM", [27] = "SIGPROF", [28] = "SIGWINCH", [29] = "SIGIO", [30] = "SIGPWR",
    [31] = "SIGSYS",
};

static void write_signame(fil_writer_t *w, int sig) {
    if (sig > 0 && sig < (int)(sizeof signames / sizeof *signames) && signames[sig]) {
        fil_write_str(w, signames[sig]);
    } else {
        fil_write_str(w, "signal ");
        fil_write_u64(w, (uint64_t)(sig > 0 ? sig : 0));
    }
}

/* What a post-mortem death by sig is called. */
typedef enum death { D_KILLED, D_INTERRUPTED, D_TERMINATED, D_CRASHED, D_OTHER } death_t;

/* How a death by sig is named. */
static death_t death_of(int sig)
{
    switch (sig) {
    case SIGKILL: return D_KILLED;
    case SIGINT: return D_INTERRUPTED;
    case SIGTERM: case SIGHUP: case SIGQUIT: return D_TERMINATED;
    case SIGSEGV: case SIGBUS: case SIGABRT: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS:
        return D_CRASHED;
    default: return D_OTHER;
    }
}

/* The words for a death by sig (see fil/render.h); with was, as a
 * predicate: "was terminated (SIGTERM)", "crashed (SIGSEGV)". */
static void write_death_words(fil_writer_t *w, int sig, int oom_killed, int was)
{
    static const char *const words[] = {"killed (", "interrupted (", "terminated (", "crashed ("};
    death_t d = death_of(sig);
    if (was && d != D_CRASHED)
        fil_write_str(w, "was ");
    if (d == D_OTHER) {
        fil_write_str(w, "killed by ");
        write_signame(w, sig);
        return;
    }
    if (d == D_KILLED && oom_killed)
        fil_write_str(w, "killed by the kernel's OOM killer (");
    else
        fil_write_str(w, words[d]);
    write_signame(w, sig);
    fil_write_char(w, ')');
}

/* See fil/render.h. Context: any. */
void fil_render_death_words(int sig, int oom_killed, char *buf, size_t len)
{
    fil_writer_t w;
    if (len == 0)
        return;
    fil_writer_init(&w, -1, buf, len - 1);
    write_death_words(&w, sig, oom_killed, 1);
    buf[w.len < len - 1 ? w.len : len - 1] = 0;
}

/* 1 if info says the cgroup OOM killer ended the program. */
static int oom_killed(const fil_run_info_t *info)
{
    return info && info->oom_kill_known && info->oom_kills_after > info->oom_kills_before;
}

/* 1 if the program dumped its own report (out of memory or crash). */
static int in_process(const fil_oom_info_t *o)
{
    return o->dump_state != 0 && o->reason != FIL_REASON_NONE;
}

/* See render_internal.h: the in-process reason, or the death's words. */
void fil_render_oom_headline(const fil_view_t *v, int term_signal, fil_writer_t *w)
{
    const fil_oom_info_t *o = &v->h->oom;
    uint64_t tracked = v->total > 0 ? (uint64_t)v->total : 0;
    if (!in_process(o)) {
        write_death_words(w, term_signal, 0, 0);
        fil_write_str(w, " with ");
        fil_write_size(w, tracked);
        fil_write_str(w, " tracked");
        return;
    }
    if (o->reason == FIL_REASON_SIGNAL) {
        write_signame(w, o->signal);
        if (o->fault_known) {
            fil_write_str(w, " at address ");
            fil_write_hex(w, o->fault_addr);
        }
    } else {
        fil_write_str(w, o->function);
        fil_write_char(w, '(');
        fil_write_u64(w, o->request);
        fil_write_str(w, o->reason == FIL_REASON_PREDICTED ? ") would exceed the limit" : ") failed");
    }
    fil_write_str(w, " with ");
    fil_write_size(w, o->tracked);
    fil_write_str(w, " tracked");
    if (o->limit_kind != FIL_LIMIT_NONE) {
        fil_write_str(w, "; limit ");
        fil_write_str(w, fil_limit_kind_name((fil_limit_kind_t)o->limit_kind));
        fil_write_char(w, ' ');
        fil_write_size(w, o->limit_value);
    }
}

/* The reason of a post-mortem death: "killed by the kernel's OOM killer
 * (SIGKILL) with 300.0 MiB tracked". */
static void write_death_reason(const fil_view_t *v, const fil_run_info_t *info, fil_writer_t *w)
{
    uint64_t tracked = v->total > 0 ? (uint64_t)v->total : 0;
    write_death_words(w, info ? info->term_signal : 0, oom_killed(info), 0);
    fil_write_str(w, " with ");
    fil_write_size(w, tracked);
    fil_write_str(w, " tracked");
}

/* See render_internal.h. */
void fil_render_death_headline(const fil_view_t *v, const fil_run_info_t *info, fil_writer_t *w)
{
    const fil_oom_info_t *o = &v->h->oom;
    char buf[512];
    fil_writer_t hw;
    if (in_process(o)) {
        fil_write_str(w, o->reason == FIL_REASON_SIGNAL ? "Crash: " : "Out of memory: ");
        fil_render_oom_headline(v, 0, w);
        return;
    }
    fil_writer_init(&hw, -1, buf, sizeof buf);
    write_death_reason(v, info, &hw);
    if (hw.len > 0 && buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
    fil_write_mem(w, buf, hw.len);
}

static void key(fil_writer_t *w, const char *k) {
    fil_write_str(w, ",\n  \"");
    fil_write_str(w, k);
    fil_write_str(w, "\": ");
}

static void key_u64(fil_writer_t *w, const char *k, uint64_t v) {
    key(w, k);
    fil_write_u64(w, v);
}

static void key_bool(fil_writer_t *w, const char *k, int v) {
    key(w, k);
    fil_write_str(w, v ? "true" : "false");
}

static void json_str_or_null(fil_writer_t *w, const char *s) {
    if (s)
        fil_write_json_str(w, s, strlen(s));
    else
        fil_write_str(w, "null");
}

static void u64_or_null(fil_writer_t *w, int known, uint64_t v) {
    if (known)
        fil_write_u64(w, v);
    else
        fil_write_str(w, "null");
}

/* Seconds from the start of the run to CLOCK_REALTIME t, or null. */
static void write_moment(fil_writer_t *w, const fil_run_info_t *info, uint64_t t) {
    if (info && t && t >= info->start_ns)
        fil_write_seconds(w, t - info->start_ns);
    else
        fil_write_str(w, "null");
}

/* The top lines of the tree of `kind` over v, as a JSON array. */
static void write_top_lines(const fil_view_t *v, int kind, fil_writer_t *w, fil_bump_t *mem) {
    size_t used = mem->used;
    fil_top_line_t rows[FIL_SUMMARY_TOP];
    fil_tree_t *t = fil_render_tree(v, kind, mem);
    int n = t ? fil_render_top_rows(t, rows, FIL_SUMMARY_TOP, mem) : -1;
    if (n >= 0)
        fil_render_json_lines(w, t, rows, (uint32_t)n, mem);
    else
        fil_write_str(w, "[]");
    mem->used = used;
}

/* The out-of-memory record's additions: the failing allocation's Python
 * stack (innermost last; null when none was recorded: a crash, a kill),
 * when it happened, and the top lines of what was held then. */
static void write_oom_more(const fil_view_t *v, const fil_run_info_t *info, fil_writer_t *w,
                           fil_bump_t *mem) {
    const fil_oom_info_t *o = &v->h->oom;
    size_t used = mem->used;
    fil_tree_t *t = fil_render_tree(v, FIL_RENDER_NOW, mem);
    uint32_t node = fil_view_kept_node(v, o->request_node);
    uint32_t leaf = in_process(o) && t && node < t->count ? node : FIL_NONE;
    fil_write_str(w, ", \"python_stack\": ");
    if (t)
        fil_render_json_stack(w, t, leaf, "python_stack_frames_elided", mem);
    else
        fil_write_str(w, "null, \"python_stack_frames_elided\": 0");
    mem->used = used;
    /* A crash handler cannot resolve the stack (signal context): a crash's
     * is where the thread last allocated. */
    fil_write_str(w, ", \"python_stack_at\": ");
    fil_write_str(w, leaf == FIL_NONE                  ? "null"
                     : o->reason == FIL_REASON_SIGNAL ? "\"last allocation\""
                                                       : "\"allocation\"");
    fil_write_str(w, ", \"seconds\": ");
    write_moment(w, info, in_process(o) ? o->time_ns
                          : v->at_stop  ? v->h->stop_ns
                          : info        ? info->end_ns
                                        : 0);
    /* What the figures are of: the dump's moment, the arrival of the stop
     * signal the program then died of (it may have freed much before
     * dying), or the death itself. */
    fil_write_str(w, ", \"held_at\": ");
    fil_write_str(w, in_process(o) ? "\"dump\"" : v->at_stop ? "\"signal\"" : "\"death\"");
    fil_write_str(w, ",\n    \"top_lines\": ");
    if (in_process(o) && v->h->oom_continue)
        fil_write_str(w, "null"); /* the program went on: what it holds now is not what it held */
    else
        write_top_lines(v, FIL_RENDER_NOW, w, mem);
}

static void write_oom(const fil_view_t *v, const fil_run_info_t *info, const char *source,
                      fil_writer_t *w, fil_bump_t *mem) {
    const fil_oom_info_t *o = &v->h->oom;
    int sig = info ? info->term_signal : 0;
    fil_write_str(w, "{\"source\": ");
    fil_write_json_str(w, source, strlen(source));
    fil_write_str(w, ", \"reason\": ");
    char buf[512];
    fil_writer_t hw;
    fil_writer_init(&hw, -1, buf, sizeof buf);
    if (in_process(o))
        fil_render_oom_headline(v, sig, &hw);
    else
        write_death_reason(v, info, &hw);
    fil_write_json_str(w, buf, hw.len);
    static const char *const kinds[] = {"killed", "allocation-failed", "predicted", "signal"};
    static const char *const deaths[] = {"killed", "interrupted", "terminated", "crashed",
                                         "killed"};
    fil_write_str(w, ", \"kind\": \"");
    fil_write_str(w, in_process(o) ? kinds[o->reason & 3] : deaths[death_of(sig)]);
    fil_write_str(w, "\", \"function\": ");
    if (o->dump_state && o->function[0])
        fil_write_json_str(w, o->function, strnlen(o->function, sizeof o->function));
    else
        fil_write_str(w, "null");
    fil_write_str(w, ", \"requested_bytes\": ");
    fil_write_u64(w, o->dump_state ? o->request : 0);
    fil_write_str(w, ", \"tracked_bytes\": ");
    fil_write_u64(w, o->dump_state ? o->tracked : (uint64_t)(v->total > 0 ? v->total : 0));
    /* A kill by the kernel's OOM killer has no dump of its own: the limit
     * is the one it hit (the cgroup's, else the machine's), with nothing
     * left under it, and the RSS the launcher last saw. */
    uint64_t rss = o->rss, limit = o->limit_value, headroom = o->headroom;
    fil_limit_kind_t kind = (fil_limit_kind_t)o->limit_kind;
    if (!in_process(o) && oom_killed(info)) {
        const fil_limits_t *l = &v->h->limits;
        int cg = l->cgroup_limit != FIL_UNLIMITED && l->cgroup_limit != 0;
        kind = cg ? FIL_LIMIT_CGROUP : FIL_LIMIT_SYSTEM;
        limit = cg ? l->cgroup_limit : l->mem_total;
        headroom = 0;
        rss = info->peak_rss;
    }
    fil_write_str(w, ", \"rss_bytes\": ");
    fil_write_u64(w, rss);
    fil_write_str(w, ", \"limit\": \"");
    fil_write_str(w, fil_limit_kind_name(kind));
    fil_write_str(w, "\", \"limit_bytes\": ");
    fil_write_u64(w, limit);
    fil_write_str(w, ", \"headroom_bytes\": ");
    fil_write_u64(w, headroom);
    fil_write_str(w, ", \"signal\": ");
    int s = o->dump_state && o->reason == FIL_REASON_SIGNAL ? o->signal : sig;
    if (s > 0) {
        fil_write_char(w, '"');
        write_signame(w, s);
        fil_write_char(w, '"');
    } else {
        fil_write_str(w, "null");
    }
    fil_write_str(w, ", \"fault_address\": ");
    if (o->dump_state && o->reason == FIL_REASON_SIGNAL && o->fault_known) {
        fil_write_char(w, '"');
        fil_write_hex(w, o->fault_addr);
        fil_write_char(w, '"');
    } else {
        fil_write_str(w, "null");
    }
    fil_write_str(w, ", \"time_ns\": ");
    fil_write_u64(w, o->time_ns);
    fil_write_str(w, ", \"dump_ms\": ");
    fil_write_u64(w, o->dump_ns / 1000000u);
    fil_write_str(w, ", \"oom_kill_confirmed\": ");
    if (info && info->oom_kill_known)
        fil_write_str(w, oom_killed(info) ? "true" : "false");
    else
        fil_write_str(w, "null");
    fil_write_str(w, ", \"native_stack\": [");
    for (uint32_t i = 0; o->dump_state && i < o->native_count && i < FIL_NATIVE_MAX; i++) {
        if (i)
            fil_write_str(w, ", ");
        fil_write_json_str(w, o->native[i], strnlen(o->native[i], FIL_NATIVE_TEXT));
    }
    fil_write_char(w, ']');
    write_oom_more(v, info, w, mem);
    fil_write_char(w, '}');
}

static void write_run(const fil_run_info_t *info, fil_writer_t *w) {
    key(w, "command");
    fil_write_char(w, '[');
    for (int i = 0; info && i < info->argc; i++) {
        if (i)
            fil_write_str(w, ", ");
        fil_write_json_str(w, info->argv[i], strlen(info->argv[i]));
    }
    fil_write_char(w, ']');
    key(w, "python");
    if (info && info->python)
        fil_write_json_str(w, info->python, strlen(info->python));
    else
        fil_write_str(w, "null");
    key(w, "exit_status");
    /* null in a report on demand (the program is still running) and for a
     * child whose end is not known (exit_status -1) */
    if (info && !info->now_ns && info->exit_status >= 0)
        fil_write_u64(w, (uint64_t)info->exit_status);
    else
        fil_write_str(w, "null");
    key(w, "duration_seconds");
    if (info && info->end_ns >= info->start_ns) {
        uint64_t ms = (info->end_ns - info->start_ns) / 1000000u;
        fil_write_u64(w, ms / 1000);
        fil_write_char(w, '.');
        char d[4] = {(char)('0' + ms % 1000 / 100), (char)('0' + ms % 100 / 10),
                     (char)('0' + ms % 10), 0};
        fil_write_str(w, d);
    } else {
        fil_write_str(w, "null");
    }
}

/* "files": the report files that are in dir (whatever was asked for: a
 * full disk leaves some out), summary.json last. */
static void write_files(const char *dir, fil_writer_t *w) {
    static const char *const names[] = {
        "peak-memory.prof",    "peak-memory.svg",           "peak-memory-reversed.svg",
        "index.html",          "out-of-memory.prof",        "out-of-memory.svg",
        "out-of-memory-reversed.svg", "current-memory.prof", "current-memory.svg",
        "current-memory-reversed.svg"};
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    key(w, "files");
    fil_write_char(w, '[');
    for (unsigned i = 0; dfd >= 0 && i < sizeof names / sizeof *names; i++) {
        int fd = openat(dfd, names[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        close(fd);
        fil_write_char(w, '"');
        fil_write_str(w, names[i]);
        fil_write_str(w, "\", ");
    }
    if (dfd >= 0)
        close(dfd);
    fil_write_str(w, "\"summary.json\"]");
}

/* "options": what the program ran with (null in-process: not known). */
static void write_options(const fil_run_info_t *info, fil_writer_t *w) {
    const fil_run_options_t *o = info ? info->options : NULL;
    key(w, "options");
    if (!o) {
        fil_write_str(w, "null");
        return;
    }
    fil_write_str(w, "{\"output\": ");
    json_str_or_null(w, o->output);
    fil_write_str(w, ", \"no_browser\": ");
    fil_write_str(w, o->no_browser ? "true" : "false");
    fil_write_str(w, ", \"memory_limit_bytes\": ");
    u64_or_null(w, o->has_memory_limit, o->memory_limit);
    fil_write_str(w, ", \"on_oom\": ");
    fil_write_str(w, o->oom_continue ? "\"continue\"" : "\"exit\"");
    fil_write_str(w, ", \"oom_detection\": ");
    fil_write_str(w, o->oom_detection ? "true" : "false");
    fil_write_str(w, ", \"safety_margin_bytes\": ");
    u64_or_null(w, o->has_safety_margin, o->safety_margin);
    fil_write_str(w, ", \"verbose\": ");
    fil_write_str(w, o->verbose ? "true" : "false");
    fil_write_str(w, ", \"quiet\": ");
    fil_write_str(w, o->quiet ? "true" : "false");
    fil_write_str(w, ", \"usr2_reports\": ");
    fil_write_str(w, o->usr2 ? "true" : "false");
    fil_write_str(w, ", \"children\": ");
    fil_write_str(w, o->children ? "true" : "false");
    fil_write_char(w, '}');
}

/* "timeline": [[seconds, tracked_bytes, rss_bytes], ...] and its
 * resolution; the peak's moment. */
static void write_timeline(const fil_run_info_t *info, fil_writer_t *w) {
    uint32_t n = info && info->timeline ? info->timeline_len : 0;
    uint32_t peak = n ? fil_timeline_peak(info->timeline, n) : FIL_NONE;
    key(w, "peak_seconds");
    if (peak != FIL_NONE)
        fil_write_seconds(w, info->timeline[peak].t_ns);
    else
        fil_write_str(w, "null");
    key(w, "timeline_interval_seconds");
    if (n)
        fil_write_seconds(w, info->timeline_step_ns);
    else
        fil_write_str(w, "null");
    key(w, "timeline");
    fil_write_char(w, '[');
    for (uint32_t i = 0; i < n && !w->failed; i++) {
        const fil_time_point_t *p = &info->timeline[i];
        fil_write_str(w, i ? (i % 4 ? ", [" : ",\n    [") : "\n    [");
        fil_write_seconds(w, p->t_ns);
        fil_write_str(w, ", ");
        fil_write_u64(w, p->tracked);
        fil_write_str(w, ", ");
        fil_write_u64(w, p->rss);
        fil_write_char(w, ']');
    }
    fil_write_str(w, n ? "\n  ]" : "]");
}

/* One child's row of "children". */
static void write_child(const fil_child_row_t *c, fil_writer_t *w) {
    fil_write_str(w, "\n    {\"pid\": ");
    fil_write_u64(w, (uint64_t)(c->pid > 0 ? c->pid : 0));
    fil_write_str(w, ", \"command\": [");
    for (int i = 0; i < c->argc && !w->failed; i++) {
        if (i)
            fil_write_str(w, ", ");
        fil_write_json_str(w, c->argv[i], strlen(c->argv[i]));
    }
    fil_write_str(w, "], \"folder\": ");
    fil_write_json_str(w, c->folder, strlen(c->folder));
    fil_write_str(w, ", \"exit_status\": ");
    u64_or_null(w, c->exit_known && !c->running, (uint64_t)c->exit_status);
    fil_write_str(w, ", \"signal\": ");
    if (c->term_signal) {
        fil_write_char(w, '"');
        write_signame(w, c->term_signal);
        fil_write_char(w, '"');
    } else {
        fil_write_str(w, "null");
    }
    fil_write_str(w, ", \"peak_bytes\": ");
    fil_write_u64(w, c->peak_bytes);
    fil_write_str(w, ", \"out_of_memory\": ");
    fil_write_str(w, c->out_of_memory ? "true" : "false");
    fil_write_str(w, ", \"oom_killed\": ");
    fil_write_str(w, c->oom_killed ? "true" : "false");
    fil_write_str(w, ", \"running\": ");
    fil_write_str(w, c->running ? "true" : "false");
    fil_write_str(w, ", \"execed\": ");
    fil_write_str(w, c->execed ? "true" : "false");
    fil_write_str(w, ", \"kind\": ");
    json_str_or_null(w, c->kind);
    fil_write_str(w, ", \"parent_pid\": ");
    fil_write_u64(w, (uint64_t)(c->parent > 0 ? c->parent : 0));
    fil_write_char(w, '}');
}

/* "children": the child processes profiled, each in its own folder. */
static void write_children(const fil_run_info_t *info, fil_writer_t *w) {
    uint32_t n = info ? info->nchildren : 0;
    key(w, "children");
    fil_write_char(w, '[');
    for (uint32_t i = 0; i < n && !w->failed; i++) {
        write_child(&info->children[i], w);
        if (i + 1 < n)
            fil_write_char(w, ',');
    }
    fil_write_str(w, n ? "\n  ]" : "]");
}

/* "process_tree": the tree's view at its sampled peak and when memory ran
 * out: when, the sum, and what each process held. */
static void write_tree(const fil_run_info_t *info, fil_writer_t *w) {
    uint32_t n = info ? info->nmoments : 0;
    key(w, "process_tree");
    if (!n) {
        fil_write_str(w, "null");
        return;
    }
    fil_write_str(w, "{\"sample_interval_seconds\": 0.010");
    for (uint32_t i = 0; i < n; i++) {
        const fil_tree_moment_t *m = &info->moments[i];
        fil_write_str(w, ",\n    \"");
        fil_write_str(w, m->what);
        fil_write_str(w, "\": {\"seconds\": ");
        fil_write_seconds(w, m->t_ns);
        fil_write_str(w, ", \"tracked_bytes\": ");
        fil_write_u64(w, m->total);
        fil_write_str(w, ", \"graph\": \"tree-");
        fil_write_str(w, m->what);
        fil_write_str(w, ".svg\", \"processes\": [");
        for (uint32_t k = 0; k < m->nprocs; k++) {
            fil_write_str(w, k ? ", {\"pid\": " : "{\"pid\": ");
            fil_write_u64(w, (uint64_t)(m->pids[k] > 0 ? m->pids[k] : 0));
            fil_write_str(w, ", \"held_bytes\": ");
            fil_write_u64(w, m->held[k]);
            fil_write_char(w, '}');
        }
        fil_write_str(w, "]}");
    }
    fil_write_str(w, "}");
}

/* The keys added for scripts: the kind of report, the peak RSS, the
 * options, the top lines and stacks at the peak, memory over time, the
 * child processes and the process tree's view. */
static void write_answers(const fil_view_t *v, const fil_run_info_t *info, fil_writer_t *w,
                          fil_bump_t *mem) {
    key(w, "report");
    fil_write_str(w, !info ? "\"in-process\"" : info->now_ns ? "\"on-demand\"" : "\"exit\"");
    key(w, "on_demand");
    if (info && info->now_ns) {
        fil_write_str(w, "{\"sequence\": ");
        fil_write_u64(w, info->sequence);
        fil_write_str(w, ", \"seconds\": ");
        write_moment(w, info, info->now_ns);
        fil_write_str(w, ", \"held_bytes\": ");
        fil_write_u64(w, v->total > 0 ? (uint64_t)v->total : 0);
        fil_write_char(w, '}');
    } else {
        fil_write_str(w, "null");
    }
    key(w, "peak_rss_bytes");
    u64_or_null(w, info && info->peak_rss, info ? info->peak_rss : 0);
    write_options(info, w);
    key(w, "top_lines");
    write_top_lines(v, FIL_RENDER_PEAK, w, mem);
    key(w, "top_stacks");
    size_t used = mem->used;
    fil_tree_t *t = fil_render_tree(v, FIL_RENDER_PEAK, mem);
    if (t)
        fil_render_json_stacks(w, t, FIL_SUMMARY_TOP, mem);
    else
        fil_write_str(w, "[]");
    mem->used = used;
    write_timeline(info, w);
    write_children(info, w);
    write_tree(info, w);
}

static void write_body(const fil_view_t *v, const fil_view_t *death, const fil_run_info_t *info,
                       const char *dir, const char *oom_source, fil_writer_t *w,
                       fil_bump_t *mem) {
    const fil_state_header_t *h = v->h;
    fil_write_str(w, "{\n  \"fil_profile_version\": \"0.1.0\"");
    write_run(info, w);
    key(w, "python_version");
    fil_write_json_str(w, h->python_version, strnlen(h->python_version, sizeof h->python_version));
    key_u64(w, "peak_bytes", fil_view_peak_total(v));
    key(w, "peak_mib");
    fil_write_mib(w, fil_view_peak_total(v));
    key_u64(w, "tracked_bytes_at_end", v->total > 0 ? (uint64_t)v->total : 0);
    key_u64(w, "call_stacks", v->nodes);
    key_u64(w, "functions", v->funcs);
    key_u64(w, "tracked_allocations", h->allocations);
    key_u64(w, "dropped_allocations", h->dropped);
    key_u64(w, "dropped_call_stacks", h->stacks_dropped);
    key_u64(w, "state_bytes", h->file_size);
    key_bool(w, "state_torn_update_rolled_back", v->torn);
    key_u64(w, "call_stacks_not_drawn", v->clipped);
    key_bool(w, "peak_snapshot_incomplete", v->snapshot_torn);
    key(w, "limits");
    fil_limits_write_json(&h->limits, w);
    key_u64(w, "emergency_arena_bytes", h->arena_size);
    key_u64(w, "safety_margin_bytes", h->margin);
    key_bool(w, "oom_detection", h->oom_detection);
    key(w, "out_of_memory");
    if (oom_source)
        write_oom(death ? death : v, info, oom_source, w, mem);
    else
        fil_write_str(w, "null");
    key_bool(w, "reports_interrupted", fil_render_interrupted());
    write_files(dir, w);
    write_answers(v, info, w, mem);
    fil_write_str(w, "\n}\n");
}

int fil_render_summary(const fil_view_t *v, const fil_view_t *death, const fil_run_info_t *info,
                       const char *dir, const char *oom_source, fil_bump_t *mem) {
    fil_atomic_file_t f;
    size_t used = mem->used;
    char *buf = fil_bump(mem, SUMMARY_BUF);
    int r = -1;
    if (!buf)
        goto out;
    if (fil_atomic_open(&f, dir, "summary.json") != 0) {
        fil_render_note_failure("summary.json", errno);
        goto out;
    }
    fil_writer_t w;
    fil_writer_init(&w, f.fd, buf, SUMMARY_BUF);
    write_body(v, death, info, dir, oom_source, &w, mem);
    if (fil_writer_flush(&w) != 0) {
        int e = errno;
        fil_atomic_abort(&f);
        fil_render_note_failure("summary.json", e);
        goto out;
    }
    r = fil_atomic_commit(&f);
    if (r != 0)
        fil_render_note_failure("summary.json", errno);
out:
    mem->used = used;
    return r;
}
