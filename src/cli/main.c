/* SPDX-License-Identifier: MIT */
/*
 * main.c - the `fil-profile` launcher: from the command line to the exit
 * status.
 *
 * Order of work: parse the command line; check everything that can be
 * checked without side effects (the script opens, the library and package
 * exist, the interpreter is executable); then create the result folder and
 * the shared state file (a memfd the child grows and fills); run the child
 * (supervise.c), sampling its memory over time meanwhile (sample.c); render
 * the reports from the state (src/render); print the answer (the peak and
 * the top lines) and what was written; open the browser; exit with the
 * program's own status, or die of the signal the program died of
 * (sigpolicy.c).
 *
 * The launcher writes only to stderr, each line starting with
 * FIL_MSG_PREFIX, and never touches stdout except for --help and --version,
 * when no program runs; with --quiet only errors and warnings. Usage and
 * setup errors exit 2, before anything is created when possible (with no
 * argument at all, the usage text goes to stderr); an interpreter that
 * cannot be executed exits 127.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "fil/children.h"
#include "fil/common.h"
#include "fil/render.h"
#include "fil/state.h"
#include "fil/sys.h"

#ifndef FIL_DEFAULT_PYTHON
#define FIL_DEFAULT_PYTHON "python3"
#endif

extern char **environ;

/* Everything one run needs, filled step by step by main's helpers. */
typedef struct launch {
    const fil_cli_args_t *a;
    char python[PATH_MAX];  /* resolved interpreter */
    char libdir[PATH_MAX];  /* <bindir>/../lib/fil-profile, canonical */
    char preload[PATH_MAX]; /* libdir/libfilpreload.so */
    char pkgdir[PATH_MAX];  /* libdir/python: holds the filprofiler package */
    char outdir[PATH_MAX];  /* -o as typed, trailing slashes removed */
    size_t outdir_kept;     /* how much of outdir existed before the run (forget_outdir) */
    char name[64];          /* result folder name */
    char shown[PATH_MAX];   /* the result folder as the user would type it */
    char absdir[PATH_MAX];  /* its absolute path */
    int state_fd;           /* the shared state memfd */
    fil_run_info_t info;    /* what the renderer is told about the run */
    fil_run_options_t options;   /* the options, for summary.json */
    fil_answer_t answer;         /* the top lines, for stderr */
    fil_cli_sampler_cfg_t sampler; /* what sample.c needs */
    char children[FIL_CHILDREN_NAME_MAX + 1]; /* the registry's name; "" with --no-children */
    fil_child_row_t rows[FIL_CLI_MAX_CHILD_ROWS]; /* the child processes, for the reports */
    fil_tree_moment_t moments[2]; /* the tree's view: its peak, when memory ran out */
} launch_t;

/* --quiet: informational lines are not printed. Set once by launch(). */
static int quiet;

static const char usage_text[] =
    "Usage: fil-profile [OPTIONS] run [OPTIONS] (script.py | -m module) [ARGS...]\n"
    "       fil-profile [OPTIONS] python [PYOPTS] (script.py | -m module | -c code) [ARGS...]\n"
    "\n"
    "Run a Python program and report which lines held memory at its peak, or\n"
    "when it ran out of memory.\n"
    "\n"
    "Options (before or after the command word):\n"
    "  -o, --output DIR          result folder parent (default: fil-result)\n"
    "      --no-browser          do not open the report in a browser\n"
    "      --memory-limit SIZE   run with a soft address-space limit (e.g. 2G;\n"
    "                            a number without a unit is bytes)\n"
    "      --on-oom=exit|continue  after an out-of-memory dump: exit with status\n"
    "                            53 (default), or let the failure reach Python\n"
    "      --disable-oom-detection  do not predict exhaustion (an allocation\n"
    "                            that fails is still reported, exit 53)\n"
    "      --safety-margin SIZE  headroom under which memory counts as exhausted\n"
    "      --verbose             explain what the profiler does on stderr\n"
    "      --quiet               print only errors and warnings on stderr\n"
    "      --no-usr2             leave SIGUSR2 to the program (no report on demand)\n"
    "      --no-children         profile the main process only (by default every\n"
    "                            Python process it starts gets its own report in\n"
    "                            children/ of the result folder)\n"
    "  -h, --help                show this help\n"
    "      --version             show the version\n"
    "\n"
    "Results go to DIR/<timestamp>/ (DIR/latest points at the newest).\n"
    "kill -USR2 the program (or fil-profile) for a report on demand in a new folder.\n"
    "Exit status: the program's own; 53 on a detected out-of-memory; 128+N if\n"
    "the program died of signal N; 2 on a usage error or a refused limit.\n"
    "Environment: FIL_PYTHON selects the interpreter (default " FIL_DEFAULT_PYTHON ").\n";

/* Print one FIL_MSG_PREFIX line to stderr. Context: supervisor. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fil_cli_vline(fmt, ap);
    va_end(ap);
}

/* Print one FIL_MSG_PREFIX line to stderr unless --quiet. Context: supervisor. */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
    va_list ap;

    if (quiet)
        return;
    va_start(ap, fmt);
    fil_cli_vline(fmt, ap);
    va_end(ap);
}

/*
 * Check that the script can be opened (run mode only). A named pipe or a
 * device is left to the interpreter unopened: opening it here would wait
 * for its writer and then throw away what that writer sends. 0, or -1 with
 * the error printed.
 */
static int check_script(const fil_cli_args_t *a)
{
    struct stat st;
    int fd;

    if (a->mode != FIL_CLI_MODE_RUN)
        return 0;
    if (!strcmp(a->target, "-")) {
        say("error: reading the program from standard input is not supported");
        return -1;
    }
    if (stat(a->target, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return 0;
    fd = open(a->target, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        say("error: cannot open script '%s': %s", a->target, strerror(errno));
        return -1;
    }
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    /* A directory runs as with Python when it has a __main__ module. */
    int runnable = !dir || faccessat(fd, "__main__.py", R_OK, 0) == 0 ||
                   faccessat(fd, "__main__.pyc", R_OK, 0) == 0;
    close(fd);
    if (!runnable) {
        say("error: cannot run '%s': it is a directory without __main__.py", a->target);
        return -1;
    }
    return 0;
}

/*
 * Find our library folder from /proc/self/exe (<bindir>/../lib/fil-profile)
 * and check it holds the preload library and the Python package. 0, or -1
 * with the error printed.
 */
static int find_libdir(launch_t *l)
{
    char exe[PATH_MAX], guess[PATH_MAX + 32], pkg[PATH_MAX + 16], lib[PATH_MAX];
    char err[PATH_MAX + 128];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    struct stat st;

    if (n < 0) {
        say("error: cannot read /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    snprintf(guess, sizeof guess, "%s/../lib/fil-profile", dirname(exe));
    if (!realpath(guess, l->libdir)) {
        say("error: cannot find the fil-profile library folder %s: %s", guess, strerror(errno));
        return -1;
    }
    snprintf(l->preload, sizeof l->preload, "%.*s/libfilpreload.so", PATH_MAX - 20, l->libdir);
    snprintf(l->pkgdir, sizeof l->pkgdir, "%.*s/python", PATH_MAX - 8, l->libdir);
    snprintf(pkg, sizeof pkg, "%s/filprofiler", l->pkgdir);
    if (access(l->preload, R_OK) != 0 || stat(pkg, &st) != 0 || !S_ISDIR(st.st_mode)) {
        say("error: incomplete installation: need %s and %s", l->preload, pkg);
        return -1;
    }
    /* LD_PRELOAD cannot name a path with a space or a colon: use a link. */
    memcpy(lib, l->preload, sizeof lib);
    if (fil_cli_preload_path(lib, l->preload, sizeof l->preload, err, sizeof err) != 0) {
        say("error: cannot preload %s: %s", lib, err);
        return -1;
    }
    return 0;
}

/*
 * Resolve the interpreter: $FIL_PYTHON, else FIL_DEFAULT_PYTHON, into
 * python[len]. 0, or -1 with the error printed.
 */
static int find_python(char *python, size_t len)
{
    const char *py = getenv("FIL_PYTHON");
    const char *base;

    if (!py || !*py)
        py = FIL_DEFAULT_PYTHON;
    if (fil_cli_find_program(py, python, len) != 0) {
        say("error: cannot run %s: %s", py, strerror(errno));
        return -1;
    }
    /* An interpreter not named python* or pypy* (FIL_PYTHON=/usr/bin/perl,
     * a wrapper of the user's) is asked for its version first, so that the
     * script never runs under another language: one line, nothing made. */
    base = strrchr(python, '/');
    base = base ? base + 1 : python;
    if (strncmp(base, "python", 6) != 0 && strncmp(base, "pypy", 4) != 0) {
        const char *argv[] = {python, "-V", NULL};
        fil_cli_child_t c = {python, argv, environ, -1, 0, 0, 0, NULL, NULL};
        char out[256] = "";
        int status = 0;
        if (fil_cli_probe(&c, out, sizeof out, &status) != 0)
            return -1;
        if (strncmp(out, "Python ", 7) != 0) {
            out[strcspn(out, "\n")] = '\0';
            say("error: %s is not a Python interpreter (its -V printed \"%.60s\"); set "
                "FIL_PYTHON to one", python, out);
            return -1;
        }
    }
    return 0;
}

/* Warn when --memory-limit exceeds the hard RLIMIT_AS (the hard one applies). */
static void check_memory_limit(const fil_cli_args_t *a)
{
    struct rlimit rl;

    if (!a->has_memory_limit || getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_max == RLIM_INFINITY)
        return;
    if (a->memory_limit > rl.rlim_max)
        say("warning: --memory-limit %" PRIu64 " is above the hard RLIMIT_AS; using %" PRIu64,
            a->memory_limit, (uint64_t)rl.rlim_max);
}

/* The longest path a report file takes below the result folder: its
 * temporary, "/.current-memory-reversed.svg.tmp-<pid>", with room to spare. */
#define REPORT_NAME_ROOM 64

/* The length of the parent of path's first n bytes: "a//b" -> "a", "/b"
 * -> "/", "b" -> "" (the current folder). */
static size_t parent_len(const char *path, size_t n)
{
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

/* The length of the longest prefix of dir, cut at a '/', that names
 * something already there (0: none, the current folder). All of it for a
 * path with a "." or ".." part: its spelling is not its folders ("new/../
 * keep" is keep), so forget_outdir removes none of them. */
static size_t existing_prefix(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    size_t n = strlen(dir);

    for (const char *p = dir; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
        if (p[0] == '.' && (p[1] == '/' || !p[1] || (p[1] == '.' && (p[2] == '/' || !p[2]))))
            return n;
    memcpy(path, dir, n + 1);
    while (n > 0 && lstat(path, &st) != 0 && errno == ENOENT)
        path[n = parent_len(path, n)] = 0;
    return n;
}

/* The empty result folder of a run that did not happen goes, and so do the
 * folders of -o that the run made (empty: rmdir removes nothing else). */
static void forget_outdir(launch_t *l)
{
    char path[PATH_MAX];
    size_t n = strlen(l->outdir);

    rmdir(l->absdir);
    memcpy(path, l->outdir, n + 1);
    while (n > l->outdir_kept && rmdir(path) == 0)
        path[n = parent_len(path, n)] = 0;
}

/*
 * Create the result folder (DIR/latest is pointed at it once the program
 * has run: see point_latest). 0, or -1 with the error printed.
 */
static int make_result_dir(launch_t *l)
{
    char err[PATH_MAX + 128], path[PATH_MAX];

    if (strlen(l->a->output) >= sizeof l->outdir) { /* not cut short: mkdir -p would make it */
        say("error: output folder path too long: '%s'", l->a->output);
        return -1;
    }
    fil_cli_trim_dir(l->a->output, l->outdir, sizeof l->outdir);
    l->outdir_kept = existing_prefix(l->outdir);
    if (fil_cli_make_result_dir(l->outdir, l->name, sizeof l->name, err, sizeof err) != 0) {
        say("error: %s", err);
        return -1;
    }
    fil_cli_join(l->outdir, l->name, l->shown, sizeof l->shown);
    if (!realpath(l->shown, path) || strlen(path) >= sizeof l->absdir) {
        say("error: cannot resolve %s: %s", l->shown, strerror(errno));
        return -1;
    }
    memcpy(l->absdir, path, strlen(path) + 1);
    if (strlen(l->absdir) + REPORT_NAME_ROOM >= PATH_MAX) { /* found out only after the run */
        say("error: output folder path too long for the report files in it: '%s'", l->shown);
        rmdir(l->shown);
        return -1;
    }
    if (l->a->verbose)
        note("Result folder: %s", l->absdir);
    return 0;
}

/*
 * Create the shared state file: an empty memfd, close-on-exec (the child
 * clears that flag), at a high descriptor number (fil_sys_fd_high: never
 * 0-2, which the program owns even if they were closed, and out of the
 * way of the program's own files, which the child inherits it beside).
 * 0, or -1 with the error printed.
 */
static int make_state_fd(launch_t *l)
{
    int fd = memfd_create("fil-state", MFD_CLOEXEC);

    if (fd < 0) {
        say("error: cannot create the state file: %s", strerror(errno));
        return -1;
    }
    l->state_fd = fil_sys_fd_high(fd);
    return 0;
}

/* The peak resident set of the program itself, bytes: its own getrusage
 * figure at a normal exit, or the highest VmHWM the sampler read; never
 * RUSAGE_CHILDREN, which is the largest descendant's. 0 if unknown. */
static uint64_t program_peak_rss(const launch_t *l)
{
    uint64_t sampled = fil_cli_sampler_peak_rss(), at_exit = 0;

    if (pread(l->state_fd, &at_exit, sizeof at_exit,
              offsetof(fil_state_header_t, exit_peak_rss)) != (ssize_t)sizeof at_exit)
        at_exit = 0;
    return at_exit > sampled ? at_exit : sampled;
}

/* Read the cgroup OOM-kill counter into *v; remember whether it is known. */
static void read_oom_kills(launch_t *l, uint64_t *v)
{
    if (fil_cli_oom_kills("", v) != 0)
        l->info.oom_kill_known = 0;
}

/*
 * Start the registry of the processes the program starts (children.c),
 * unless --no-children. Its failure is a warning: the run goes on with
 * the main process only.
 */
static void start_children(launch_t *l)
{
    fil_cli_children_cfg_t c = {l->absdir, l->shown, l->python, &l->options, &l->info,
                                l->a->quiet, l->state_fd, 0, 0};

    l->info.children_profiled = 0;
    if (l->a->no_children)
        return;
    c.start_ns = l->info.start_ns;
    fil_cli_raise_nofile();
    if (fil_cli_children_start(&c, l->children) == 0)
        l->info.children_profiled = 1;
    else
        l->children[0] = 0;
}

/* "died of SIGTERM" (or "died of signal N") into buf. */
static void signal_words(int sig, char *buf, size_t len)
{
    const char *abbrev = sig ? sigabbrev_np(sig) : NULL;
    if (abbrev)
        snprintf(buf, len, "died of SIG%s", abbrev);
    else
        snprintf(buf, len, "died of signal %d", sig);
}

/* Above this many children dead of one signal (a multiprocessing pool
 * stops its workers with SIGTERM), they share one line. */
#define GROUPED_DEATHS 3

/* How many children that did not run out of memory died of sig. */
static uint32_t same_deaths(const fil_run_info_t *in, int sig)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < in->nchildren; i++)
        n += !in->children[i].out_of_memory && in->children[i].term_signal == sig;
    return n;
}

/* One line for each signal more than GROUPED_DEATHS children died of:
 * "8 child processes died of SIGTERM: 4101, 4102, ..." (the next line
 * says where their reports are). */
static void say_grouped_deaths(const launch_t *l)
{
    const fil_run_info_t *in = &l->info;
    for (uint32_t i = 0; i < in->nchildren; i++) {
        int sig = in->children[i].term_signal;
        uint32_t n = in->children[i].out_of_memory ? 0 : same_deaths(in, sig);
        int first = 1;
        for (uint32_t j = 0; j < i && first; j++)
            first = in->children[j].out_of_memory || in->children[j].term_signal != sig;
        if (!sig || n <= GROUPED_DEATHS || !first)
            continue;
        char died[64], pids[72];
        size_t k = 0;
        uint32_t listed = 0;
        signal_words(sig, died, sizeof died);
        for (uint32_t j = i; j < in->nchildren; j++) {
            const fil_child_row_t *r = &in->children[j];
            if (r->out_of_memory || r->term_signal != sig)
                continue;
            int more = listed + 1 < n; /* another row follows: keep room for ", ..." */
            int w = snprintf(pids + k, sizeof pids - k, "%s%d", listed ? ", " : "", r->pid);
            if (w < 0 || (size_t)w >= sizeof pids - k - (more ? 6 : 0)) {
                snprintf(pids + k, sizeof pids - k, ", ...");
                break;
            }
            k += (size_t)w;
            listed++;
        }
        note("%u child processes %s: %s", n, died, pids);
    }
}

/*
 * The program has ended: give its children a moment to end (1 s), take
 * their reports, and say where they are; those that ran out of memory or
 * were killed by name.
 */
static void end_children(launch_t *l)
{
    fil_run_info_t *in = &l->info;
    int oom_killed = in->term_signal == SIGKILL && in->oom_kill_known &&
                     in->oom_kills_after > in->oom_kills_before;

    if (!l->children[0])
        return;
    fil_cli_children_stop(1000, oom_killed);
    in->nchildren = fil_cli_children_rows(l->rows, FIL_CLI_MAX_CHILD_ROWS);
    in->children = l->rows;
    for (uint32_t i = 0; i < in->nchildren; i++) {
        const fil_child_row_t *r = &l->rows[i];
        char died[64];
        signal_words(r->term_signal, died, sizeof died);
        if (r->out_of_memory)
            note("Child process %d %s: %s/%s", r->pid,
                 r->oom_killed ? "was killed by the kernel's OOM killer" : "ran out of memory",
                 l->shown, r->folder);
        else if (r->term_signal && same_deaths(in, r->term_signal) <= GROUPED_DEATHS)
            note("Child process %d %s: %s/%s", r->pid, died, l->shown, r->folder);
    }
    say_grouped_deaths(l);
    if (in->nchildren)
        note("Profiled %u child process%s: reports in %s/children/", in->nchildren,
             in->nchildren == 1 ? "" : "es", l->shown);
}

/* The tree's view (tree-peak.svg, tree-oom.svg) is drawn by a thread of
 * its own while the main thread writes the program's reports (which name
 * it): they read different states. */
typedef struct moments_job {
    launch_t *l;
    char sub[1024];
    uint32_t drawn;
} moments_job_t;

static void *draw_moments(void *arg)
{
    moments_job_t *j = arg;

    j->drawn = fil_cli_children_draw_moments(j->l->moments, j->l->info.nmoments, j->sub);
    return NULL;
}

/* Start drawing the moments; 1 if a thread was started (join it). */
static int start_moments(launch_t *l, moments_job_t *j, pthread_t *t)
{
    size_t k = 0;
    sigset_t all, old;
    int r;

    if (!l->children[0] || !l->info.nchildren)
        return 0;
    l->info.nmoments = fil_cli_children_moments(l->moments);
    l->info.moments = l->moments;
    if (!l->info.nmoments)
        return 0;
    j->l = l;
    j->sub[0] = 0;
    for (int i = 0; i < l->info.argc && k + 2 < sizeof j->sub; i++)
        k += (size_t)snprintf(j->sub + k, sizeof j->sub - k, "%s%s", i ? " " : "",
                              l->info.argv[i]);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the render phase's signals stay ours */
    r = pthread_create(t, NULL, draw_moments, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        draw_moments(j);
    return r == 0;
}

/* Wait for the moments' graphs; warn about those that could not be drawn. */
static void end_moments(launch_t *l, moments_job_t *j, pthread_t *t, int started)
{
    if (started)
        pthread_join(*t, NULL);
    if (l->info.nmoments && j->drawn < l->info.nmoments)
        say("warning: the process tree's graph could not be written completely to %s",
            l->shown);
}

/*
 * Build the child's argv and environment, run it, and fill l->info. Returns
 * fil_cli_supervise's result (0 ran, 1 not executable, -1 failure), or -1 if
 * out of memory (error printed).
 */
static int run_child(launch_t *l)
{
    const fil_cli_args_t *a = l->a;
    const char **argv = calloc((size_t)fil_cli_exec_argc(a) + 1, sizeof *argv);
    fil_cli_env_opts_t eo = {l->preload, l->libdir, l->state_fd, l->absdir, l->shown, a,
                             l->children[0] ? l->children : NULL};
    char **envp = fil_cli_build_env(environ, &eo);
    fil_cli_child_t c = {l->python,         argv,          envp, l->state_fd, a->has_memory_limit,
                         a->memory_limit,   !a->no_usr2,   fil_cli_sampler_started,
                         &l->sampler};
    fil_run_info_t *in = &l->info;
    int r = -1;

    if (!argv || !envp) {
        say("error: out of memory");
        goto out;
    }
    fil_cli_exec_argv(a, l->python, argv);
    if (a->verbose)
        note("Running %s with LD_PRELOAD=%s", l->python, l->preload);
    in->oom_kill_known = 1;
    read_oom_kills(l, &in->oom_kills_before);
    r = fil_cli_supervise(&c, &in->exit_status, &in->term_signal, &in->start_ns, &in->end_ns);
    fil_cli_sampler_stop();
    fil_cli_sampler_timeline(in);
    if (a->verbose) {
        uint64_t samples, ns = fil_cli_sampler_overhead_ns(&samples);
        note("Memory sampled %" PRIu64 " times (%.1f ms of the launcher's CPU time); %" PRIu32
             " timeline points of %.0f ms",
             samples, (double)ns / 1e6, in->timeline_len, (double)in->timeline_step_ns / 1e6);
    }
    in->peak_rss = program_peak_rss(l);
    read_oom_kills(l, &in->oom_kills_after);
    /* Kills counted while the program was still alive and not dying were
     * of other processes of its cgroup (a child the OOM killer chose). */
    uint64_t alive;
    if (fil_cli_sampler_oom_kills_alive(&alive) == 0 && alive > in->oom_kills_before &&
        alive <= in->oom_kills_after)
        in->oom_kills_before = alive;
    end_children(l);
out:
    free(argv);
    fil_cli_free_env(envp);
    return r;
}

/* Update DIR/latest to the new result folder (a failure is a warning). */
static void point_latest(const launch_t *l)
{
    char err[PATH_MAX + 128];

    if (fil_cli_update_latest(l->outdir, l->name, err, sizeof err) != 0)
        say("warning: %s", err);
}

/*
 * Did no profiled interpreter run? Either the preload library refused it
 * (no extension for its version: it said so and exited 127), or what ran
 * never became a Python interpreter (FIL_PYTHON names another program, or
 * the dynamic loader failed: then an address-space limit may be why, and
 * fil_cli_explain_start_failure says so instead), or a signal killed it
 * before the profiler was set up in it (a Ctrl-C in its first
 * milliseconds: plain Python dies of it too). Then the empty result folder
 * goes, with the folders of -o the run made, and DIR/latest is left as it
 * was. 0 if it ran; 2 if a signal killed it first (the launcher dies of
 * it); 1 otherwise (exit 127).
 */
static int child_refused(launch_t *l)
{
    fil_state_header_t h;

    if (pread(l->state_fd, &h, offsetof(fil_state_header_t, python_version), 0) !=
        (ssize_t)offsetof(fil_state_header_t, python_version))
        memset(&h, 0, sizeof h);
    if (h.magic == FIL_STATE_MAGIC && h.running != FIL_RUNNING_REFUSED)
        return 0;
    if (h.magic != FIL_STATE_MAGIC &&
        !fil_cli_explain_start_failure(l->a, l->state_fd, l->info.exit_status,
                                       l->info.term_signal)) {
        if (!l->info.term_signal)
            say("error: %s did not start a Python interpreter under the profiler "
                "(exit status %d); no report", l->python, l->info.exit_status);
        else { /* a Ctrl-C before Python could take it: as plain Python, its death */
            const char *abbrev = sigabbrev_np(l->info.term_signal);
            note("Stopped by SIG%s before the program started; no report",
                 abbrev ? abbrev : "?");
            forget_outdir(l);
            return 2;
        }
    }
    forget_outdir(l);
    return 1;
}

/* Explain a death by signal, and a likely kernel OOM kill. */
static void explain_death(const fil_run_info_t *in)
{
    char words[128];
    int oom_killed = in->oom_kill_known && in->oom_kills_after > in->oom_kills_before;

    if (in->term_signal == 0)
        return;
    fil_render_death_words(in->term_signal, oom_killed, words, sizeof words);
    note("The program %s", words);
    if (in->term_signal == SIGKILL && oom_killed)
        note("The kernel's out-of-memory killer killed it (cgroup oom_kill count %" PRIu64
            " -> %" PRIu64 ")",
            in->oom_kills_before, in->oom_kills_after);
}

/* A human size ("76.4 MiB") into buf (at least 32 bytes). */
static void size_text(char *buf, size_t len, uint64_t bytes)
{
    fil_writer_t w;

    fil_writer_init(&w, -1, buf, len - 1);
    fil_write_size(&w, bytes);
    buf[w.len] = '\0';
}

/*
 * The answer, short enough for a CI log: the peak (and the peak RSS),
 * then the top lines with MiB and the share of the memory they are of (at
 * the peak, or when the program ran out of memory, crashed or died):
 *   Peak tracked memory: 76.4 MiB (peak RSS 95.1 MiB)
 *   Top lines at the peak:
 *     1.   76.3 MiB  99.9%  script.py:3 (<module>)
 *     2.    0.1 MiB   0.1%  numpy/core/numeric.py:205 (ones), called from script.py:4 (main)
 */
static void print_answer(const launch_t *l)
{
    const fil_answer_t *a = &l->answer;
    char peak[32], rss[32];

    size_text(peak, sizeof peak, a->peak);
    size_text(rss, sizeof rss, l->info.peak_rss);
    if (l->info.peak_rss)
        note("Peak tracked memory: %s (peak RSS %s)", peak, rss);
    else
        note("Peak tracked memory: %s", peak);
    if (a->n == 0)
        return;
    if (a->held != FIL_ANSWER_PEAK) {
        static const char *const when[] = {"", "when it ran out of memory", "when it crashed",
                                           "when it died", "now"};
        size_text(peak, sizeof peak, a->total);
        note("Top lines %s (of %s held):", a->held <= FIL_ANSWER_NOW ? when[a->held] : "", peak);
    } else {
        note("Top lines at the peak:");
    }
    for (uint32_t k = 0; k < a->n; k++) {
        const fil_answer_line_t *r = &a->lines[k];
        double mib = (double)r->bytes / (1024.0 * 1024.0);
        double pct = a->total ? 100.0 * (double)r->bytes / (double)a->total : 0.0;

        if (k > 0 && mib < 0.05 && pct < 0.05)
            break; /* "0.0 MiB 0.0%": the rest says nothing (index.html lists them) */
        note("  %u. %8.1f MiB %5.1f%%  %s%s%s", k + 1, mib, pct, r->where,
             r->caller[0] ? ", called from " : "", r->caller);
    }
}

/* Render the reports, print the answer and what was written, open the
 * browser. `explained`: the reason for an unusable state was already given. */
static void render(launch_t *l, int explained)
{
    char err[512] = "";
    char index[PATH_MAX + 16], absindex[PATH_MAX + 16];
    int flags;

    char bad[64];
    int e;

    l->info.answer = &l->answer;
    flags = fil_render_reports(l->state_fd, l->absdir, &l->info, err, sizeof err);
    e = fil_render_take_failure(bad, sizeof bad);
    if (e && !fil_render_interrupted())
        say("error: cannot write %s/%s: %s; the report there is incomplete", l->shown, bad,
            strerror(e));
    if (flags < 0) {
        struct rlimit rl;
        int capped = strncmp(err, "no memory", 9) == 0 && getrlimit(RLIMIT_AS, &rl) == 0 &&
                     rl.rlim_max != RLIM_INFINITY;
        if (!explained && err[0])
            say("error: cannot write the reports: %s%s", err,
                capped ? " under the hard RLIMIT_AS (ulimit -Hv), which the launcher shares"
                       : "");
        else if (!explained)
            say("error: cannot write the reports");
        return;
    }
    if (!fil_render_interrupted())
        print_answer(l);
    snprintf(index, sizeof index, "%s/index.html", l->shown);
    if (flags & FIL_RENDERED_PEAK)
        note("Wrote peak-memory report to %s", index);
    if (flags & FIL_RENDERED_OOM_POSTMORTEM) {
        char words[128];
        const fil_run_info_t *in = &l->info;
        fil_render_death_words(in->term_signal,
                               in->oom_kill_known && in->oom_kills_after > in->oom_kills_before,
                               words, sizeof words);
        note("Wrote the report of the memory held when the program %s to "
             "%s/out-of-memory.svg",
             words, l->shown);
    }
    if (fil_render_interrupted())
        return; /* fil_cli_stop_signal says so */
    snprintf(absindex, sizeof absindex, "%s/index.html", l->absdir);
    if ((flags & FIL_RENDERED_PEAK) && !l->a->no_browser)
        fil_cli_open_browser(absindex);
}

/* Warn when the state could not record everything (its file could not grow,
 * e.g. the program closed the profiler's descriptor and it could not be
 * opened again, or a table was full): the report then charges that memory
 * to the nearest recorded caller (call stacks) or leaves it out
 * (allocations). */
static void warn_dropped(const launch_t *l)
{
    uint64_t stacks = 0, allocs = 0;

    if (pread(l->state_fd, &stacks, sizeof stacks,
              offsetof(fil_state_header_t, stacks_dropped)) != (ssize_t)sizeof stacks ||
        pread(l->state_fd, &allocs, sizeof allocs, offsetof(fil_state_header_t, dropped)) !=
            (ssize_t)sizeof allocs)
        return;
    if (stacks || allocs)
        say("warning: %" PRIu64 " call stacks and %" PRIu64 " allocations could not be "
            "recorded (the state file could not grow: no address space or memory left under "
            "a limit, a file size limit (ulimit -f), or the program closed the profiler's "
            "descriptor); that memory is shown "
            "under the nearest recorded caller",
            stacks, allocs);
}

/* The options for summary.json, and what the sampler needs. */
static void describe_run(launch_t *l)
{
    const fil_cli_args_t *a = l->a;
    fil_run_options_t o = {a->output,        a->no_browser,       a->verbose,
                           a->quiet,         a->oom_continue,     a->oom_detection,
                           !a->no_usr2,      a->has_memory_limit, a->memory_limit,
                           a->has_safety_margin, a->safety_margin, !a->no_children};
    fil_cli_sampler_cfg_t s = {l->state_fd, l->outdir, &l->info, a->quiet, !a->no_usr2};

    l->options = o;
    l->info.options = &l->options;
    l->sampler = s;
}

/*
 * Everything after a successful parse. Returns the exit status: the
 * program's, 2 for setup errors, 127 if the interpreter cannot be run.
 */
static int launch(const fil_cli_args_t *a)
{
    static launch_t l; /* several PATH_MAX buffers: kept off the stack */
    const char **cmd = calloc((size_t)fil_cli_command_argc(a) + 1, sizeof *cmd);
    int r = FIL_CLI_EXIT_USAGE, explained, die = 0, moments_started;
    static moments_job_t mj;
    pthread_t mt;

    l.a = a;
    l.state_fd = -1;
    quiet = a->quiet;
    if (!cmd)
        say("error: out of memory");
    if (!cmd || check_script(a) || find_libdir(&l))
        goto out;
    if (find_python(l.python, sizeof l.python)) {
        r = FIL_CLI_EXIT_EXEC;
        goto out;
    }
    check_memory_limit(a);
    fil_cli_raise_memory(); /* the reports' memory is not the program's */
    fil_cli_install_t in = {l.python, l.preload, l.libdir};
    if (fil_cli_check_limits(a, &in))
        goto out;
    fil_cli_block_watched(); /* a stop signal from here on goes to the program */
    if (make_result_dir(&l) || make_state_fd(&l))
        goto out;
    fil_cli_command_argv(a, cmd);
    l.info.argc = fil_cli_command_argc(a);
    l.info.argv = (char *const *)cmd;
    l.info.python = l.python;
    describe_run(&l);
    start_children(&l);
    switch (run_child(&l)) {
    case 0:
        switch (child_refused(&l)) {
        case 0:
            break;
        case 2:
            r = l.info.exit_status;
            die = l.info.term_signal;
            goto out;
        default:
            r = FIL_CLI_EXIT_EXEC;
            goto out;
        }
        point_latest(&l);
        fil_cli_render_phase(l.absdir); /* from here a stop signal stops the render */
        explained = fil_cli_explain_start_failure(a, l.state_fd, l.info.exit_status,
                                                  l.info.term_signal);
        if (!explained)
            explain_death(&l.info);
        moments_started = start_moments(&l, &mj, &mt);
        render(&l, explained); /* while the children's reports are still being drawn */
        end_moments(&l, &mj, &mt, moments_started);
        fil_cli_children_wait_reports();
        warn_dropped(&l);
        fil_cli_stop_signal(l.shown); /* returns unless a stop signal ended the render */
        r = l.info.exit_status;
        die = l.info.term_signal;
        break;
    case 1:
        r = FIL_CLI_EXIT_EXEC;
        forget_outdir(&l); /* nothing ran: the empty folder goes, latest stays */
        break;
    default:
        forget_outdir(&l);
        break;
    }
out:
    fil_cli_children_wait_reports(); /* no child's report is left half-written */
    if (l.state_fd >= 0)
        close(l.state_fd);
    free(cmd);
    if (die)
        fil_cli_die_of(die); /* as the program did: a shell sees 128+N */
    return r;
}

/* `fil-profile python -V`: what `python3 -V` prints, from the interpreter
 * FIL_PYTHON names; nothing is run or profiled. Its exit status, or 127. */
static int python_version(const fil_cli_args_t *a)
{
    char python[PATH_MAX];
    if (find_python(python, sizeof python) != 0)
        return FIL_CLI_EXIT_EXEC;
    char *argv[] = {python, (char *)a->pyopts[0], NULL};
    fil_cli_restore_sigpipe();
    execv(python, argv);
    say("error: cannot run %s: %s", python, strerror(errno));
    return FIL_CLI_EXIT_EXEC;
}

/* Parse, then launch; --help and --version go to stdout, errors exit 2. */
int main(int argc, char **argv)
{
    fil_cli_args_t a;
    char err[512];

    fil_cli_note_given_fds();
    fil_cli_usr2_catch_early();
    fil_cli_ignore_sigpipe();
    if (argc < 2) { /* nothing asked: say how to ask */
        fputs(usage_text, stderr);
        return FIL_CLI_EXIT_USAGE;
    }
    switch (fil_cli_parse(argc, argv, &a, err, sizeof err)) {
    case FIL_CLI_PARSE_HELP:
        fputs(usage_text, stdout);
        return 0;
    case FIL_CLI_PARSE_VERSION:
        puts("fil-profile " FIL_CLI_VERSION);
        return 0;
    case FIL_CLI_PARSE_PYVERSION:
        return python_version(&a);
    case FIL_CLI_PARSE_ERROR:
        say("error: %s", err);
        say("Try 'fil-profile --help'.");
        return FIL_CLI_EXIT_USAGE;
    case FIL_CLI_PARSE_OK:
        break;
    }
    return launch(&a);
}
