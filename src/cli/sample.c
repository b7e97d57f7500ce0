/* SPDX-License-Identifier: MIT */
/*
 * sample.c - memory over time, and reports on demand, in the supervisor.
 *
 * Two threads run from the child's fork (fil_cli_sampler_started, called by
 * supervise.c with the forwarded signals still blocked) until it has been
 * reaped (fil_cli_sampler_stop, called by main.c), so the supervisor's
 * signal and wait loop stays as it is and the program pays nothing:
 *
 *  - the sampler wakes every SAMPLE_NS and reads the program's tracked
 *    total from the shared state's header (two aligned 8-byte loads from a
 *    read-only mapping of it) and its resident set from /proc/PID/statm (an
 *    fd opened at fork: it names that process, never a later one with the
 *    same pid). A peak reached between two samples is not lost: when
 *    peak_total rose since the last sample, the sample is at least the new
 *    peak_total (the total was that high at some moment of the interval).
 *    Points go into a fixed array of MAX_POINTS, each the highest values of
 *    an interval of step_ns; when it is full, step_ns doubles and neighbours
 *    merge, keeping their maxima, so any run keeps at most MAX_POINTS points
 *    and the peak survives every merge. The timeline is the supervisor's,
 *    so it is still there when the program was SIGKILLed.
 *
 *  - the reporter waits on a pipe. SIGUSR2 that the program's handler
 *    (src/interpose/usr2.c) sends the supervisor reaches the supervisor's
 *    handler, which calls fil_cli_report_request(): one byte written to the
 *    pipe (async-signal-safe). The reporter then makes a new result folder,
 *    renders the report on demand from the shared state
 *    (fil_render_on_demand), points DIR/latest at it and says so on
 *    stderr. The program is never stopped.
 *
 * fil_cli_sampler_stop stops the reporter first, waiting for a report in
 * progress (requests not started are dropped), then the sampler, after one
 * last sample; so no render of ours runs when main.c writes the exit
 * reports. The timeline is guarded by tl_lock (the reporter copies it).
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fil/common.h"
#include "fil/state.h"

#define SAMPLE_NS UINT64_C(10000000) /* 10 ms between samples */
#define MAX_POINTS 2000u             /* points kept, whatever the length of the run */
#define OOM_LOOK_EVERY 10u           /* samples between looks at the OOM-kill count */

/* The timeline: points[0..npoints), each the maxima of [t_ns, t_ns + step_ns).
 * Protected by tl_lock (written by the sampler, copied by the reporter and,
 * once both are stopped, read by the main thread). */
static fil_time_point_t points[MAX_POINTS];
static uint32_t npoints;
static uint64_t step_ns = SAMPLE_NS;
static pthread_mutex_t tl_lock = PTHREAD_MUTEX_INITIALIZER;

/* The reporter's copy of the timeline for one report. Reporter only. */
static fil_time_point_t report_points[MAX_POINTS];

/* Set once by fil_cli_sampler_started; read by both threads. */
static fil_cli_sampler_cfg_t cfg;
static int statm_fd = -1;                 /* /proc/PID/statm of the child */
static int status_fd = -1;                /* /proc/PID/status of the child (VmHWM) */
static const fil_state_header_t *header;  /* read-only map of the header, once sized */
static int stop_pipe[2] = {-1, -1};       /* sampler: readable means stop */
static volatile sig_atomic_t req_fd = -1; /* reporter pipe's write end; -1: no reports */
static int req_wr = -1;                   /* ... the same, kept to stop the reporter */
static int req_rd = -1;                   /* ... its read end */
static volatile sig_atomic_t stopping;    /* drop requests not started */
static pthread_t sampler, reporter;
static int running;                /* both threads were started */
static uint64_t prev_peak;         /* peak_total at the last sample (sampler) */
static uint64_t last_rss;          /* last RSS read (sampler) */
static uint64_t hwm;               /* highest VmHWM or RSS read (sampler) */
static uint64_t cost_ns, nsamples; /* CPU time the samples took (sampler) */
static pid_t main_pid;             /* the program */
static uint64_t alive_kills[2];    /* cgroup OOM-kill counts of the last two looks that
                                      found the program alive, [1] the latest (sampler) */
static int alive_kills_known;      /* ... they were read */

/* CLOCK_REALTIME in ns (the clock of start_ns and the header's times). */
static uint64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* This thread's CPU time in ns. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Double the interval and merge the points that now share one. Lock held. */
static void halve_locked(void)
{
    uint32_t k = 0;

    step_ns *= 2;
    for (uint32_t i = 0; i < npoints; i++) {
        uint64_t t = points[i].t_ns / step_ns * step_ns;

        if (k > 0 && points[k - 1].t_ns == t) {
            fil_time_point_t *p = &points[k - 1];
            p->tracked = points[i].tracked > p->tracked ? points[i].tracked : p->tracked;
            p->rss = points[i].rss > p->rss ? points[i].rss : p->rss;
        } else {
            points[k] = points[i];
            points[k++].t_ns = t;
        }
    }
    npoints = k;
}

/* Add one sample at t_ns since the start: merged into the last point if it
 * falls in its interval, else appended (halving first when full). */
static void add_point(uint64_t t_ns, uint64_t tracked, uint64_t rss)
{
    pthread_mutex_lock(&tl_lock);
    for (;;) {
        uint64_t t = t_ns / step_ns * step_ns;
        fil_time_point_t *last = npoints ? &points[npoints - 1] : NULL;

        if (last && last->t_ns >= t) { /* same interval (or the clock stepped back) */
            last->tracked = tracked > last->tracked ? tracked : last->tracked;
            last->rss = rss > last->rss ? rss : last->rss;
            break;
        }
        if (npoints < MAX_POINTS) {
            points[npoints++] = (fil_time_point_t){t, tracked, rss};
            break;
        }
        halve_locked();
    }
    pthread_mutex_unlock(&tl_lock);
}

/* Map the header once the child has sized the state file; NULL until then. */
static const fil_state_header_t *state_header(void)
{
    struct stat st;
    void *p;

    if (header)
        return header;
    if (fstat(cfg.state_fd, &st) != 0 || st.st_size < (off_t)FIL_STATE_HEADER_SIZE)
        return NULL;
    p = mmap(NULL, FIL_STATE_HEADER_SIZE, PROT_READ, MAP_SHARED, cfg.state_fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    header = p;
    return header;
}

/* The child's resident set in bytes, or the last one read when it cannot
 * be read (the child is gone). */
static uint64_t read_rss(void)
{
    char buf[128];
    unsigned long long size, res;
    ssize_t n = statm_fd >= 0 ? pread(statm_fd, buf, sizeof buf - 1, 0) : -1;

    if (n <= 0)
        return last_rss;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &res) != 2 || res == 0)
        return last_rss;
    last_rss = (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
    return last_rss;
}

/* Raise hwm to the child's VmHWM (the kernel's high-water mark of its
 * resident set, which sees between our samples) and to rss. */
static void read_hwm(uint64_t rss)
{
    char buf[4096];
    ssize_t n = status_fd >= 0 ? pread(status_fd, buf, sizeof buf - 1, 0) : -1;
    const char *at;
    unsigned long long kib;

    if (rss > hwm)
        hwm = rss;
    if (n <= 0)
        return;
    buf[n] = '\0';
    at = strstr(buf, "\nVmHWM:");
    if (at && sscanf(at + 7, "%llu", &kib) == 1 && kib * 1024u > hwm)
        hwm = (uint64_t)kib * 1024u;
}

/* One sample: tracked bytes (at least a peak reached since the last one)
 * and RSS, at the current time. Sampler thread (and the main thread once
 * the sampler is stopped). */
static void take_sample(void)
{
    uint64_t c0 = thread_cpu_ns(), t = realtime_ns();
    const fil_state_header_t *h = state_header();
    uint64_t tracked = 0, rss = read_rss();

    read_hwm(rss);
    if (h && __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == FIL_STATE_MAGIC) {
        int64_t total = __atomic_load_n(&h->total, __ATOMIC_ACQUIRE);
        int64_t peak = __atomic_load_n(&h->peak_total, __ATOMIC_ACQUIRE);

        tracked = total > 0 ? (uint64_t)total : 0;
        if (peak > 0 && (uint64_t)peak > prev_peak) {
            tracked = (uint64_t)peak > tracked ? (uint64_t)peak : tracked;
            prev_peak = (uint64_t)peak;
        } else if (peak >= 0 && (uint64_t)peak < prev_peak) {
            prev_peak = (uint64_t)peak; /* a new peak was started (Jupyter's %%filprofile) */
        }
    }
    add_point(t > cfg.info->start_ns ? t - cfg.info->start_ns : 0, tracked, rss);
    /* The OOM-kill count while the program is alive and not dying (read
     * first, then the program's state): a kill of another process of the
     * cgroup (one of its children) before then is not the program's. The
     * look before the latest is the one that counts: a victim stalled
     * between the kernel's count of its kill and its SIGKILL looks alive
     * (children.c, watch_cgroup). */
    uint64_t kills;
    if (nsamples % OOM_LOOK_EVERY == 0 && main_pid > 0 && fil_cli_oom_kills("", &kills) == 0 &&
        !fil_cli_proc_dying("", main_pid)) {
        alive_kills[0] = alive_kills_known ? alive_kills[1] : kills;
        alive_kills[1] = kills;
        alive_kills_known = 1;
    }
    /* The process tree's total, and its moments (children.c). */
    fil_cli_children_sample(h && __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == FIL_STATE_MAGIC
                                ? h
                                : NULL,
                            t > cfg.info->start_ns ? t - cfg.info->start_ns : 0);
    cost_ns += thread_cpu_ns() - c0;
    nsamples++;
}

/* The sampler thread: a sample every SAMPLE_NS until stop_pipe is readable. */
static void *sampler_main(void *arg)
{
    struct pollfd pf = {stop_pipe[0], POLLIN, 0};
    uint64_t next = realtime_ns();

    (void)arg;
    for (;;) {
        uint64_t now = realtime_ns();
        int wait_ms = next > now ? (int)((next - now) / 1000000u) : 0;

        if (poll(&pf, 1, wait_ms) != 0 && (pf.revents || errno != EINTR))
            break;
        take_sample();
        next += SAMPLE_NS;
        if (next + SAMPLE_NS < realtime_ns())
            next = realtime_ns(); /* we were stopped (SIGSTOP, a loaded machine): no burst */
    }
    return NULL;
}

/* Print one FIL_MSG_PREFIX line (unless --quiet and not an error). */
__attribute__((format(printf, 2, 3))) static void report_say(int error, const char *fmt, ...)
{
    va_list ap;

    if (cfg.quiet && !error)
        return;
    va_start(ap, fmt);
    fil_cli_vline(fmt, ap);
    va_end(ap);
}

/* The run info of a report on demand now: the run's, with the moment, a
 * copy of the timeline so far, and room for the figures. */
static void now_info(fil_run_info_t *in, fil_answer_t *answer, uint32_t sequence)
{
    *in = *cfg.info;
    in->now_ns = realtime_ns();
    in->end_ns = in->now_ns;
    in->exit_status = 0;
    in->term_signal = 0;
    in->sequence = sequence;
    in->answer = answer;
    pthread_mutex_lock(&tl_lock);
    memcpy(report_points, points, npoints * sizeof *points);
    in->timeline = report_points;
    in->timeline_len = npoints;
    in->timeline_step_ns = step_ns;
    pthread_mutex_unlock(&tl_lock);
    in->sample_ns = SAMPLE_NS;
}

/* A human size ("50.0 MiB") into buf. */
static void size_text(char *buf, size_t len, uint64_t bytes)
{
    fil_writer_t w;

    fil_writer_init(&w, -1, buf, len - 1);
    fil_write_size(&w, bytes);
    buf[w.len] = '\0';
}

/* "3.2 s: 50.0 MiB held now, peak so far 80.0 MiB" into buf. */
static void now_words(const fil_run_info_t *in, const fil_answer_t *a, char *buf, size_t len)
{
    char held[32], peak[32];

    uint64_t ms = in->now_ns > in->start_ns ? (in->now_ns - in->start_ns) / 1000000u : 0;

    size_text(held, sizeof held, a->total);
    size_text(peak, sizeof peak, a->peak);
    /* tenths cut, not rounded: the moment index.html's headline shows */
    snprintf(buf, len, "%" PRIu64 ".%u s: %s held now, peak so far %s", ms / 1000,
             (unsigned)(ms % 1000 / 100), held, peak);
}

/* Write report on demand number `sequence` into a new result folder. */
static void report_now(uint32_t sequence)
{
    char name[64], shown[PATH_MAX], absdir[PATH_MAX], err[PATH_MAX + 128], words[160];
    fil_run_info_t in;
    fil_answer_t answer;

    if (fil_cli_make_result_dir(cfg.outdir, name, sizeof name, err, sizeof err) != 0) {
        report_say(1, "error: report on demand: %s", err);
        return;
    }
    fil_cli_join(cfg.outdir, name, shown, sizeof shown);
    if (!realpath(shown, absdir)) {
        report_say(1, "error: report on demand: cannot resolve %s: %s", shown, strerror(errno));
        return;
    }
    now_info(&in, &answer, sequence);
    if (fil_render_on_demand(cfg.state_fd, absdir, &in, err, sizeof err) != 0) {
        char bad[64];
        int e = fil_render_take_failure(bad, sizeof bad);
        if (e)
            report_say(1, "error: report on demand: cannot write %s/%s: %s", shown, bad,
                       strerror(e));
        else
            report_say(1, "error: report on demand: %s", err[0] ? err : "not written");
        return;
    }
    if (fil_cli_update_latest(cfg.outdir, name, err, sizeof err) != 0)
        report_say(1, "warning: %s", err);
    now_words(&in, &answer, words, sizeof words);
    report_say(0, "Report on demand at %s; wrote %s/index.html", words, shown);
}

/* The reporter thread: one report per request byte, until stopped. */
static void *reporter_main(void *arg)
{
    uint32_t sequence = 0;

    (void)arg;
    for (;;) {
        char c;
        ssize_t n = read(req_rd, &c, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == 's' || stopping)
            break;
        report_now(++sequence);
    }
    return NULL;
}

/* Start a thread with every signal blocked (the main thread takes them). */
static int start_thread(pthread_t *t, void *(*fn)(void *))
{
    sigset_t all, old;
    int r;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(t, NULL, fn, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/*
 * Start sampling the child pid and taking report requests; cfgp is a
 * fil_cli_sampler_cfg_t that outlives the run. A failure is a warning: the
 * run goes on without a timeline (or reports on demand). Context: the
 * supervisor's main thread, right after fork (fil_cli_child_t.started).
 */
void fil_cli_sampler_started(pid_t pid, void *cfgp)
{
    fil_cli_children_main_pid(pid);
    main_pid = pid;
    static fil_run_info_t run; /* the run as it started: main.c fills in the end later */
    char path[64];
    int req[2];

    cfg = *(const fil_cli_sampler_cfg_t *)cfgp;
    run = *cfg.info;
    cfg.info = &run;
    snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
    statm_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    status_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (pipe2(stop_pipe, O_CLOEXEC) != 0 || pipe2(req, O_CLOEXEC | O_NONBLOCK) != 0) {
        report_say(1, "warning: no memory timeline: pipe: %s", strerror(errno));
        return;
    }
    fcntl(req[0], F_SETFL, 0); /* the reporter blocks; the signal handler never does */
    req_rd = req[0];
    req_wr = req[1];
    if (start_thread(&sampler, sampler_main) != 0) {
        report_say(1, "warning: no memory timeline: cannot start a thread");
        return;
    }
    if (start_thread(&reporter, reporter_main) != 0) {
        char s = 's';
        report_say(1, "warning: no reports on demand: cannot start a thread");
        if (write(stop_pipe[1], &s, 1) == 1)
            pthread_join(sampler, NULL);
        return;
    }
    if (cfg.reports)
        req_fd = req[1];
    running = 1;
}

/*
 * Ask for a report on demand. 0 if asked, -1 if reports are off (--no-usr2,
 * or no reporter). SIGNAL CONTEXT: one write(2), errno preserved.
 */
int fil_cli_report_request(void)
{
    int fd = (int)req_fd, e = errno;
    char c = 'r';
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, &c, 1); /* a full pipe (EAGAIN): requests are already waiting */
    (void)n;
    errno = e;
    return 0;
}

/*
 * Stop both threads (a report in progress is finished first), then take the
 * last sample: what the program held when it ended. Context: main thread,
 * after the child was reaped.
 */
void fil_cli_sampler_stop(void)
{
    char s = 's';

    if (!running)
        return;
    stopping = 1;
    req_fd = -1; /* the signal handler asks no more */
    fcntl(req_wr, F_SETFL, 0);
    if (write(req_wr, &s, 1) == 1) /* after any request queued: those are dropped */
        pthread_join(reporter, NULL);
    if (write(stop_pipe[1], &s, 1) == 1)
        pthread_join(sampler, NULL);
    take_sample();
    running = 0;
}

/* Fill info's timeline fields with the samples (after fil_cli_sampler_stop). */
void fil_cli_sampler_timeline(fil_run_info_t *info)
{
    info->timeline = npoints ? points : NULL;
    info->timeline_len = npoints;
    info->timeline_step_ns = step_ns;
    info->sample_ns = SAMPLE_NS;
}

/* CPU time the samples took in the supervisor, and their number in *samples. */
uint64_t fil_cli_sampler_overhead_ns(uint64_t *samples)
{
    *samples = nsamples;
    return cost_ns;
}

/* The program's own peak resident set: the highest VmHWM (or RSS) the
 * sampler read, at most SAMPLE_NS before the program ended; 0 if none was
 * read. Main thread, once the sampler is stopped. */
uint64_t fil_cli_sampler_peak_rss(void)
{
    return hwm;
}

/* The cgroup OOM-kill count of the look before the sampler's latest that
 * found the program alive and not dying into *count: 0, or -1 if none was
 * read. Main thread, once the sampler is stopped. */
int fil_cli_sampler_oom_kills_alive(uint64_t *count)
{
    if (!alive_kills_known)
        return -1;
    *count = alive_kills[0];
    return 0;
}
