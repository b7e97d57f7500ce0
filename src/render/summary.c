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
 * Allowed calls: the report module's writers, memcpy, strlen.
 */
#include <signal.h>
#include <string.h>

#include "render_internal.h"

static const char *const signames[] = {
    [1] = "SIGHUP",   [2] = "SIGINT",   [3] = "SIGQUIT",  [4] = "SIGILL",   [5] = "SIGTRAP",
    [6] = "SIGABRT",  [7] = "SIGBUS",   [8] = "SIGFPE",   [9] = "SIGKILL",  [10] = "SIGUSR1",
    [11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
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

static void write_oom(const fil_view_t *v, const fil_run_info_t *info, const char *source,
                      fil_writer_t *w) {
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
    fil_write_str(w, ", \"rss_bytes\": ");
    fil_write_u64(w, o->rss);
    fil_write_str(w, ", \"limit\": \"");
    fil_write_str(w, fil_limit_kind_name((fil_limit_kind_t)o->limit_kind));
    fil_write_str(w, "\", \"limit_bytes\": ");
    fil_write_u64(w, o->limit_value);
    fil_write_str(w, ", \"headroom_bytes\": ");
    fil_write_u64(w, o->headroom);
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
    fil_write_str(w, "]}");
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
    if (info)
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

static void write_files(unsigned rendered, fil_writer_t *w) {
    key(w, "files");
    fil_write_char(w, '[');
    const char *sep = "";
    if (rendered & FIL_RENDERED_PEAK) {
        fil_write_str(w, "\"peak-memory.prof\", \"peak-memory.svg\", "
                         "\"peak-memory-reversed.svg\", \"index.html\"");
        sep = ", ";
    }
    if (rendered & (FIL_RENDERED_OOM_INPROCESS | FIL_RENDERED_OOM_POSTMORTEM)) {
        fil_write_str(w, sep);
        fil_write_str(w, "\"out-of-memory.prof\", \"out-of-memory.svg\", "
                         "\"out-of-memory-reversed.svg\"");
    }
    fil_write_str(w, sep[0] || (rendered & 6) ? ", \"summary.json\"]" : "\"summary.json\"]");
}

static void write_body(const fil_view_t *v, const fil_run_info_t *info, unsigned rendered,
                       const char *oom_source, fil_writer_t *w) {
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
        write_oom(v, info, oom_source, w);
    else
        fil_write_str(w, "null");
    key_bool(w, "reports_interrupted", fil_render_interrupted());
    write_files(rendered, w);
    fil_write_str(w, "\n}\n");
}

int fil_render_summary(const fil_view_t *v, const fil_run_info_t *info, const char *dir,
                       unsigned rendered, const char *oom_source, char *buf, size_t buflen) {
    fil_atomic_file_t f;
    if (fil_atomic_open(&f, dir, "summary.json") != 0)
        return -1;
    fil_writer_t w;
    fil_writer_init(&w, f.fd, buf, buflen);
    write_body(v, info, rendered | FIL_RENDERED_SUMMARY, oom_source, &w);
    if (fil_writer_flush(&w) != 0) {
        fil_atomic_abort(&f);
        return -1;
    }
    return fil_atomic_commit(&f);
}
