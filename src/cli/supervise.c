/* SPDX-License-Identifier: MIT */
/*
 * supervise.c - running the profiled interpreter: fork, exec, signal
 * forwarding, wait, exit status; and the probe runs of limitcheck.c.
 *
 * While the program runs, the forwarded signals (INT, TERM, HUP, QUIT,
 * USR1, USR2) and SIGCHLD are blocked in the supervisor and read from a
 * signalfd: nothing runs in signal context, and no signal can slip by
 * between fork and knowing the child's pid. The child puts back the
 * original mask and SIGCHLD disposition before exec, so the program starts
 * exactly as it would have without us. Each forwarded signal the
 * supervisor receives goes to forward.c, which passes it on only if the
 * program did not get it already: a signal sent to the process group
 * (Ctrl-C, `kill -- -PGID`) reaches both processes, and forwarding it too
 * delivered it twice.
 *
 * When SIGCHLD says the child exited, the loop ends. A forwarded signal
 * read after the child's death that was not the program's (not noted by it,
 * not what it died of) was sent to the supervisor after the program ended:
 * it is raised again and stays pending, blocked, with every later one, until
 * main enters the render phase (sigpolicy.c), where it stops the render.
 *
 * SIGUSR2 is the exception: the program's handler (src/interpose/usr2.c)
 * sends it to us to ask for a report on demand, which sample.c writes; so
 * a SIGUSR2 from the child itself is taken, not forwarded. Any other
 * SIGUSR2 is forwarded as usual: the program's handler (ours, which asks
 * back, or the program's own, which keeps it) decides. One that arrives
 * while the interpreter starts, before the program has decided about
 * SIGUSR2 (usr2_ready in the state), would kill it: it is held (several
 * merge into one, as a pending signal would) and sent once the program is
 * ready; with --no-usr2 it goes on at once, as without the profiler.
 *
 * Exec failures are reported through a close-on-exec pipe: EOF means the
 * exec succeeded, an errno means it did not (the child printed why).
 * Reaping is in two steps: waitid(WNOWAIT) sees the death while the pid is
 * still ours, so a forward can never reach a recycled pid, then waitpid
 * reaps.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fil/common.h"
#include "fil/state.h"

/* How often the wait for signals looks at the program's notes (forward.c):
 * idle, and while a note is unsettled. */
#define SWEEP_MS 20
#define SWEEP_SOON_MS 2

/* A SIGUSR2 that reached the launcher before the supervisor watched for
 * signals (fil_cli_usr2_catch_early). */
static volatile sig_atomic_t early_usr2;

static void on_early_usr2(int sig)
{
    (void)sig;
    early_usr2 = 1;
}

/* See cli.h. Context: the start of main. */
void fil_cli_usr2_catch_early(void)
{
    struct sigaction old, sa;

    if (sigaction(SIGUSR2, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return; /* an inherited SIG_IGN stays, for the program too */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_early_usr2;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL); /* exec puts the default action back for the program */
}

/* SIGPIPE's disposition as the launcher found it (fil_cli_ignore_sigpipe). */
static struct sigaction orig_sigpipe;
static int sigpipe_saved;

/* See cli.h. Context: the start of main. */
void fil_cli_ignore_sigpipe(void)
{
    struct sigaction ign;

    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigpipe_saved = sigaction(SIGPIPE, &ign, &orig_sigpipe) == 0;
}

/* See cli.h. Context: a forked child before exec. */
void fil_cli_restore_sigpipe(void)
{
    if (sigpipe_saved)
        sigaction(SIGPIPE, &orig_sigpipe, NULL);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define N_FORWARDED (int)(sizeof forwarded / sizeof forwarded[0])

/* The set the run watches: the forwarded signals (the program's side notes
 * the same ones, FIL_SIG_WATCHED), SIGCHLD, and the program's "look at my
 * note" (FIL_SIG_NOTED). */
static void watched_set(sigset_t *set)
{
    sigemptyset(set);
    for (int k = 0; k < N_FORWARDED; k++) {
        FIL_ASSERT(FIL_SIG_WATCHED(forwarded[k]));
        sigaddset(set, forwarded[k]);
    }
    sigaddset(set, SIGCHLD);
    sigaddset(set, FIL_SIG_NOTED);
}

/* CLOCK_REALTIME in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The soft limits the launcher raised for itself, as the user gave them:
 * RLIMIT_NOFILE (fil_cli_raise_nofile: three descriptors per live child),
 * RLIMIT_AS and RLIMIT_DATA (fil_cli_raise_memory: the reports' memory is
 * not the program's). The program and the probe runs get them back
 * (restore_user_limits). */
enum { LIM_NOFILE, LIM_AS, LIM_DATA, NLIMITS };
static const int lim_res[NLIMITS] = {RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_DATA};
static struct rlimit user_lim[NLIMITS];
static int lim_raised[NLIMITS];

#define NOFILE_MAX 65536

/* Raise soft limit i to its hard one, at most cap. */
static void raise_soft(int i, rlim_t cap)
{
    struct rlimit rl;

    if (lim_raised[i] || getrlimit(lim_res[i], &user_lim[i]) != 0 ||
        user_lim[i].rlim_cur >= cap || user_lim[i].rlim_cur >= user_lim[i].rlim_max)
        return;
    rl = user_lim[i];
    rl.rlim_cur = rl.rlim_max > cap ? cap : rl.rlim_max;
    if (setrlimit(lim_res[i], &rl) == 0)
        lim_raised[i] = 1;
}

void fil_cli_raise_nofile(void) { raise_soft(LIM_NOFILE, NOFILE_MAX); }

void fil_cli_raise_memory(void)
{
    raise_soft(LIM_AS, RLIM_INFINITY);
    raise_soft(LIM_DATA, RLIM_INFINITY);
}

int fil_cli_user_rlimit(int resource, struct rlimit *rl)
{
    for (int i = 0; i < NLIMITS; i++) {
        if (resource == lim_res[i] && lim_raised[i]) {
            *rl = user_lim[i];
            return 0;
        }
    }
    return getrlimit(resource, rl);
}

/* In a child about to exec the program (or a probe run): the user's. */
static void restore_user_limits(void)
{
    for (int i = 0; i < NLIMITS; i++)
        if (lim_raised[i])
            setrlimit(lim_res[i], &user_lim[i]);
}

/* Set the soft RLIMIT_AS to limit (capped at the hard limit). 0, or -1. */
static int set_as_limit(uint64_t limit)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_AS, &rl) != 0)
        return -1;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && limit > rl.rlim_max ? rl.rlim_max : limit;
    return setrlimit(RLIMIT_AS, &rl);
}

/* The launcher's pid, taken before the program is forked. */
static pid_t launcher_pid;

/*
 * In the forked child: die with the launcher (a SIGKILL of what the user
 * started kills the program, as it kills a plain Python, rather than
 * leaving it running orphaned; the launcher never ends before the program
 * otherwise, and PR_SET_PDEATHSIG is kept across exec and not inherited
 * by the program's own children), restore the mask, SIGCHLD, SIGPIPE and
 * RLIMIT_NOFILE, apply the memory limit,
 * let the state fd survive exec, exec. Never returns: on failure it prints
 * why, sends errno through errfd and _exits 127. Context: child after fork
 * of a single-threaded parent (stdio is safe here).
 */
static void child_exec(const fil_cli_child_t *c, const struct sigaction *oldchld,
                       const sigset_t *oldmask, int errfd)
{
    const char *what = "cannot run";
    int e;
    ssize_t n;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != launcher_pid)
        _exit(FIL_CLI_EXIT_EXEC); /* the launcher is already gone */
    sigaction(SIGCHLD, oldchld, NULL);
    fil_cli_restore_sigpipe();
    restore_user_limits();
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    if (c->has_memory_limit && set_as_limit(c->memory_limit) != 0) {
        what = "cannot set the memory limit for";
    } else if (fcntl(c->state_fd, F_SETFD, 0) != 0) {
        what = "cannot pass the state file to";
    } else {
        execve(c->python, (char *const *)c->argv, c->envp);
    }
    e = errno;
    fprintf(stderr, FIL_MSG_PREFIX "error: %s %s: %s\n", what, c->python, strerror(e));
    n = write(errfd, &e, sizeof e);
    (void)n;
    _exit(FIL_CLI_EXIT_EXEC);
}

/* Read the exec-status pipe: 0 if exec succeeded (EOF), else the errno. */
static int read_exec_errno(int fd)
{
    int e = 0;
    ssize_t n;

    do
        n = read(fd, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof e ? (e ? e : -1) : 0;
}

/* 1 if the child has exited (not yet reaped); its siginfo into *info. */
static int child_exited(pid_t pid, siginfo_t *info)
{
    memset(info, 0, sizeof *info);
    return waitid(P_PID, (id_t)pid, info, WEXITED | WNOHANG | WNOWAIT) == 0 && info->si_pid == pid;
}

/* The signal the exited child died of (from its waitid siginfo), else 0. */
static int death_signal(const siginfo_t *info)
{
    return info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED ? info->si_status : 0;
}

/*
 * One signal read while the child may be gone: 1 if the child has exited
 * (the loop ends), else 0. A forwarded signal read after the death that was
 * not the program's is raised again to stay pending for the render phase.
 */
static int after_death(fil_cli_forward_t *f, const struct signalfd_siginfo *si)
{
    siginfo_t info;

    if (!child_exited(f->pid, &info))
        return 0;
    if (si->ssi_signo != SIGCHLD && !fil_cli_forward_was_childs(f, si, death_signal(&info)))
        raise((int)si->ssi_signo); /* blocked: pending until the render phase */
    return 1;
}

/*
 * Read signals until the child has exited, forwarding what the program did
 * not get (forward.c). 0, or -1 (errno) if the signalfd failed.
 * Context: supervisor, the watched signals blocked.
 */
static int watch_child(fil_cli_forward_t *f, int sfd, int hold_usr2)
{
    struct signalfd_siginfo si;

    int soon = 0, held = 0;
    uint32_t usr2_seen = 0; /* the handler's requests taken (usr2_requests) */

    if (early_usr2 && hold_usr2)
        held = 1;
    else if (early_usr2)
        kill(f->pid, SIGUSR2); /* --no-usr2: the program's, as if sent to it */
    early_usr2 = 0;
    for (;;) {
        struct pollfd pfd = {sfd, POLLIN, 0};
        int ready = poll(&pfd, 1, soon ? SWEEP_SOON_MS : SWEEP_MS);
        if (held && fil_cli_forward_usr2_ready(f)) {
            kill(f->pid, SIGUSR2); /* held while the program started: now it reports */
            held = 0;
        }
        if (ready <= 0) {
            if (ready < 0 && errno != EINTR)
                return -1;
            soon = fil_cli_forward_sweep(f); /* notes of signals sent to the program alone */
            continue;
        }
        ssize_t n = read(sfd, &si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof si)
            return -1;
        if (si.ssi_signo == (uint32_t)FIL_SIG_NOTED) {
            if ((pid_t)si.ssi_pid == f->pid)
                soon = fil_cli_forward_sweep(f); /* a note, just made: settling */
            continue;
        }
        if (after_death(f, &si))
            return 0;
        if (si.ssi_signo == SIGUSR2 && si.ssi_code == SI_QUEUE && (pid_t)si.ssi_pid == f->pid) {
            /* the program's SIGUSR2 handler asks for a report on demand,
             * unless its count was seen already (below) */
            uint32_t count = (uint32_t)si.ssi_int;
            if ((int32_t)(count - usr2_seen) > 0) {
                usr2_seen = count;
                (void)fil_cli_report_request();
            }
            continue;
        }
        if (si.ssi_signo == SIGUSR2 && si.ssi_code == SI_USER && (pid_t)si.ssi_pid == f->pid &&
            fil_cli_report_request() == 0)
            continue; /* the program's own kill(getppid(), SIGUSR2) */
        if (si.ssi_signo == SIGUSR2 && (int32_t)(fil_cli_forward_usr2_requests(f) - usr2_seen) > 0) {
            /* the handler's request merged into this one (a group signal,
             * pending for us when the program's copy ran the handler) */
            usr2_seen = fil_cli_forward_usr2_requests(f);
            (void)fil_cli_report_request();
        }
        if (si.ssi_signo == SIGUSR2 && hold_usr2 && !fil_cli_forward_usr2_ready(f)) {
            held = 1; /* sent to us before the program could take it: later */
            continue;
        }
        if (si.ssi_signo != SIGCHLD)
            fil_cli_forward(f, &si);
    }
}

/* Reap pid; the wait status into *status. 0, or -1 (errno). */
static int reap(pid_t pid, int *status)
{
    int r;

    do
        r = waitpid(pid, status, 0);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

/* Most inherited descriptors above 2 that fil_cli_note_given_fds notes. */
#define MAX_GIVEN_FDS 1024

/* What the launcher was started with (fil_cli_note_given_fds): whether fds 0
 * and 1 were open (only then are they the program's: a closed one may
 * since hold a descriptor of the launcher's own), and the descriptors
 * above 2 it inherited open across exec, which are the program's too. */
static int given_stdio[2];
static int given_fds[MAX_GIVEN_FDS];
static int n_given_fds;

/* See cli.h. Context: the start of main, before any descriptor is opened. */
void fil_cli_note_given_fds(void)
{
    DIR *d;
    struct dirent *e;

    for (int fd = 0; fd <= 1; fd++)
        given_stdio[fd] = fcntl(fd, F_GETFD) != -1;
    d = opendir("/proc/self/fd");
    if (!d)
        return;
    while ((e = readdir(d)) != NULL && n_given_fds < MAX_GIVEN_FDS) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        int flags;

        if (*end != '\0' || end == e->d_name || fd <= 2 || fd == dirfd(d))
            continue;
        flags = fcntl((int)fd, F_GETFD);
        if (flags != -1 && !(flags & FD_CLOEXEC)) /* close-on-exec: not inherited */
            given_fds[n_given_fds++] = (int)fd;
    }
    closedir(d);
}

/*
 * Let go of the program's descriptors once it has them: the launcher never
 * reads its stdin nor writes its stdout, nor uses what else it was handed,
 * and holding them kept a pipe open after the program closed its end
 * (`prog | consumer` saw no EOF, `producer | prog` no EPIPE, a parent
 * waiting on a pipe it passed no EOF, until the reports were written).
 * /dev/null takes the place of stdin and stdout, so their numbers stay
 * taken; the others are closed. stderr stays: the launcher speaks there.
 * Context: supervisor, after the fork.
 */
static void release_given_fds(void)
{
    int null;

    for (int k = 0; k < n_given_fds; k++)
        close(given_fds[k]);
    n_given_fds = 0;
    if (!given_stdio[0] && !given_stdio[1])
        return;
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return;
    for (int fd = 0; fd <= 1; fd++)
        if (given_stdio[fd])
            dup2(null, fd);
    close(null);
}

/* The signal mask the launcher started with, once fil_cli_block_watched
 * blocked the watched signals early: the program gets it. */
static sigset_t start_mask;
static int blocked_early;

/* See cli.h. Context: main thread, before any other thread. */
void fil_cli_block_watched(void)
{
    sigset_t set;

    watched_set(&set);
    if (!blocked_early && sigprocmask(SIG_BLOCK, &set, &start_mask) == 0)
        blocked_early = 1;
}

/*
 * Fork the child with the watched signals blocked and SIGCHLD at its
 * default action (so the child can be waited for even if we inherited
 * SIG_IGN); it execs c. Returns its pid and the exec-status pipe's read end
 * in *errfd, or -1 with a message printed. The signals stay blocked.
 * Context: supervisor.
 */
static pid_t start_child(const fil_cli_child_t *c, int *errfd)
{
    sigset_t set, oldmask;
    struct sigaction dfl, oldchld;
    int pfd[2];
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "error: pipe: %s\n", strerror(errno));
        return -1;
    }
    watched_set(&set);
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    if (blocked_early)
        oldmask = start_mask; /* the program's mask is the one we were given */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &dfl, &oldchld);
    launcher_pid = getpid();
    pid = fork();
    if (pid == 0)
        child_exec(c, &oldchld, &oldmask, pfd[1]);
    if (pid < 0)
        fprintf(stderr, FIL_MSG_PREFIX "error: fork: %s\n", strerror(errno));
    if (pid > 0)
        release_given_fds();
    if (pid > 0 && c->started)
        c->started(pid,
                   c->started_ctx); /* the sampler (sample.c); its threads block every signal */
    close(pfd[1]);
    if (pid < 0)
        close(pfd[0]);
    else
        *errfd = pfd[0];
    return pid;
}

/*
 * Run the child described by c and wait for it. Fills *exit_status (code, or
 * 128+N for signal N), *term_signal (N or 0) and the CLOCK_REALTIME times at
 * fork and reap. Returns 0 when the program ran, 1 when it could not be
 * executed (the child printed why; status 127), -1 if fork/pipe/wait failed
 * (message printed). The forwarded signals stay blocked afterwards: those
 * that arrive from now on wait for the render phase (sigpolicy.c).
 * Context: supervisor.
 */
int fil_cli_supervise(const fil_cli_child_t *c, int *exit_status, int *term_signal,
                      uint64_t *start_ns, uint64_t *end_ns)
{
    int errfd = -1, status = 0, exec_errno, sfd;
    sigset_t set;
    fil_cli_forward_t f;
    pid_t pid;

    *start_ns = now_ns();
    pid = start_child(c, &errfd);
    if (pid < 0)
        return -1;
    watched_set(&set);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    exec_errno = read_exec_errno(errfd);
    close(errfd);
    fil_cli_forward_init(&f, pid, c->state_fd);
    if (sfd < 0 || watch_child(&f, sfd, c->hold_usr2) != 0)
        fprintf(stderr, FIL_MSG_PREFIX "error: cannot watch for signals: %s\n", strerror(errno));
    fil_cli_forward_end(&f);
    if (sfd >= 0)
        close(sfd);
    if (reap(pid, &status) != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "error: waitpid: %s\n", strerror(errno));
        return -1;
    }
    *end_ns = now_ns();
    *term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    *exit_status = WIFSIGNALED(status) ? 128 + *term_signal : WEXITSTATUS(status);
    return exec_errno ? 1 : 0;
}

/*
 * In the forked probe child: stdin and stderr on /dev/null, stdout on outfd
 * (or /dev/null), the memory limit, exec. Never returns. Context: child
 * after fork of a single-threaded parent.
 */
static void probe_exec(const fil_cli_child_t *c, int outfd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);

    fil_cli_restore_sigpipe();
    restore_user_limits();
    if (null >= 0) {
        dup2(null, 0);
        dup2(outfd >= 0 ? outfd : null, 1);
        dup2(null, 2);
    }
    if (!c->has_memory_limit || set_as_limit(c->memory_limit) == 0)
        execve(c->python, (char *const *)c->argv, c->envp);
    _exit(FIL_CLI_EXIT_EXEC);
}

/* Read fd to EOF into out (NUL-terminated, the rest dropped); close fd. */
static void read_all(int fd, char *out, size_t outlen)
{
    size_t n = 0;
    char sink[256];

    for (;;) {
        int full = n + 1 >= outlen;
        ssize_t r = read(fd, full ? sink : out + n, full ? sizeof sink : outlen - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (!full)
            n += (size_t)r;
    }
    if (outlen > 0)
        out[n] = '\0';
    close(fd);
}

/*
 * Run c to its end as a probe: stdin and stderr on /dev/null, stdout into
 * out (outlen bytes, NUL-terminated; out NULL: /dev/null), no signal
 * forwarding, no state file (c->state_fd is ignored). The wait status into
 * *status. 0, or -1 if it could not be started (message printed).
 * Context: supervisor, before the real run.
 */
int fil_cli_probe(const fil_cli_child_t *c, char *out, size_t outlen, int *status)
{
    int pfd[2] = {-1, -1};
    pid_t pid;

    if (out && pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "error: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid == 0)
        probe_exec(c, pfd[1]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (pid < 0) {
        fprintf(stderr, FIL_MSG_PREFIX "error: fork: %s\n", strerror(errno));
        if (pfd[0] >= 0)
            close(pfd[0]);
        return -1;
    }
    if (pfd[0] >= 0)
        read_all(pfd[0], out, outlen);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* 0 if path is an executable regular file, else an errno value. */
static int check_executable(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return EACCES;
    return access(path, X_OK) == 0 ? 0 : errno;
}

/*
 * Resolve a program name like execvp would: a name with a '/' is taken as
 * is, else each $PATH entry is tried (an empty entry is "."). The path goes
 * to out. 0, or -1 with errno set (ENOENT if not found). Context: supervisor.
 */
int fil_cli_find_program(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH"), *p, *end;
    int e = ENOENT;

    if (strchr(name, '/')) {
        if ((size_t)snprintf(out, len, "%s", name) >= len)
            e = ENAMETOOLONG;
        else if ((e = check_executable(out)) == 0)
            return 0;
        errno = e;
        return -1;
    }
    for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; p; p = *end ? end + 1 : NULL) {
        int dirlen;

        end = strchrnul(p, ':');
        dirlen = (int)(end - p);
        if (dirlen == 0)
            p = ".", dirlen = 1;
        if ((size_t)snprintf(out, len, "%.*s/%s", dirlen, p, name) < len &&
            check_executable(out) == 0)
            return 0;
    }
    errno = ENOENT;
    return -1;
}
