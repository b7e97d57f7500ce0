/* SPDX-License-Identifier: MIT */
/*
 * supervise.c - running the profiled interpreter: fork, exec, signal
 * forwarding, wait, exit status.
 *
 * The forwarded signals (INT, TERM, HUP, QUIT, USR1, USR2) are blocked
 * before fork and our forwarding handler is installed, so none can slip by
 * between fork and knowing the child's pid. The child puts back the original
 * dispositions and mask before exec, so the program starts exactly as it
 * would have without us. The parent then unblocks them: from here every such
 * signal is passed on to the child, except SIGINT/SIGQUIT that the terminal
 * sent (the kernel already sent those to the whole foreground process group,
 * the child included; forwarding would deliver them twice). The supervisor
 * thus survives them all until the child is reaped.
 *
 * SIGUSR2 is the exception: the program's handler (src/interpose/usr2.c)
 * sends it to us to ask for a report on demand, which sample.c writes; so
 * a SIGUSR2 from the child itself is taken, not forwarded. Any other
 * SIGUSR2 is forwarded as usual: the program's handler (ours, which asks
 * back, or the program's own, which keeps it) decides.
 *
 * Exec failures are reported through a close-on-exec pipe: EOF means the
 * exec succeeded, an errno means it did not (the child printed why).
 * Reaping is in two steps: waitid(WNOWAIT) sees the death while the pid is
 * still ours, then the handler's target is cleared, then waitpid reaps; so
 * a late signal can never be sent to a recycled pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fil/common.h"
#include "fil/render.h"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define N_FORWARDED (int)(sizeof forwarded / sizeof forwarded[0])

/* The child to forward signals to; 0 when none. Written by the main flow
 * only (a single int store), read by the handler. */
static volatile sig_atomic_t child_pid;

/*
 * Forward sig to the child, unless it is a SIGINT/SIGQUIT the kernel or the
 * terminal sent (si_code SI_KERNEL or > 0): the child already got that one.
 * Once there is no child, SIGINT/SIGTERM/SIGHUP interrupt the rendering of
 * the reports instead. A SIGUSR2 the child sent asks for a report on demand.
 * SIGNAL CONTEXT: kill(), fil_render_interrupt() (a flag store) and
 * fil_cli_report_request() (one write) only, errno preserved.
 */
static void forward_signal(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    pid_t pid = (pid_t)child_pid;
    int from_kernel = si && (si->si_code == SI_KERNEL || si->si_code > 0);

    (void)uctx;
    if (sig == SIGUSR2 && pid > 0 && si && si->si_code == SI_USER && si->si_pid == pid &&
        fil_cli_report_request() == 0) {
        errno = saved;
        return; /* the program asks for a report on demand (sample.c) */
    }
    if (pid > 0 && !((sig == SIGINT || sig == SIGQUIT) && from_kernel))
        kill(pid, sig);
    if (pid <= 0 && (sig == SIGINT || sig == SIGTERM || sig == SIGHUP))
        fil_render_interrupt(); /* the program is gone: stop writing its reports */
    errno = saved;
}

/* The set of forwarded signals. */
static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    for (int k = 0; k < N_FORWARDED; k++)
        sigaddset(set, forwarded[k]);
}

/* Install forward_signal for every forwarded signal, saving the old actions. */
static void install_handlers(struct sigaction *old)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    forwarded_set(&sa.sa_mask);
    for (int k = 0; k < N_FORWARDED; k++)
        sigaction(forwarded[k], &sa, &old[k]);
}

/* Put back the actions saved by install_handlers. */
static void restore_handlers(const struct sigaction *old)
{
    for (int k = 0; k < N_FORWARDED; k++)
        sigaction(forwarded[k], &old[k], NULL);
}

/* CLOCK_REALTIME in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

/*
 * In the forked child: restore signals, apply the memory limit, let the state
 * fd survive exec, exec. Never returns: on failure it prints why, sends errno
 * through errfd and _exits 127. Context: child after fork of a
 * single-threaded parent (stdio is safe here).
 */
static void child_exec(const fil_cli_child_t *c, const struct sigaction *old,
                       const sigset_t *oldmask, int errfd)
{
    const char *what = "cannot run";
    int e;
    ssize_t n;

    restore_handlers(old);
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

/*
 * Wait for pid to end; clear the forwarding target before reaping it. The
 * wait status into *status. 0, or -1 (errno) if waiting failed.
 */
static int wait_child(pid_t pid, int *status)
{
    siginfo_t si;
    int r;

    do {
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
    } while (r != 0 && errno == EINTR);
    child_pid = 0;
    do
        r = waitpid(pid, status, 0);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

/*
 * Fork the child with the forwarded signals blocked; it execs c. Returns its
 * pid with child_pid set and the exec-status pipe's read end in *errfd, or
 * -1 with a message printed. Context: supervisor.
 */
static pid_t start_child(const fil_cli_child_t *c, struct sigaction *old, int *errfd)
{
    sigset_t set, oldmask;
    int pfd[2];
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "error: pipe: %s\n", strerror(errno));
        return -1;
    }
    forwarded_set(&set);
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    install_handlers(old);
    pid = fork();
    if (pid == 0)
        child_exec(c, old, &oldmask, pfd[1]);
    if (pid < 0)
        fprintf(stderr, FIL_MSG_PREFIX "error: fork: %s\n", strerror(errno));
    child_pid = pid > 0 ? pid : 0;
    if (pid > 0 && c->started)
        c->started(pid, c->started_ctx); /* the sampler (sample.c) */
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
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
 * (message printed). The forwarding handlers stay installed afterwards, with
 * nobody to forward to, so the reports get written. Context: supervisor.
 */
int fil_cli_supervise(const fil_cli_child_t *c, int *exit_status, int *term_signal,
                      uint64_t *start_ns, uint64_t *end_ns)
{
    struct sigaction old[N_FORWARDED];
    int errfd = -1, status = 0, exec_errno;
    pid_t pid;

    *start_ns = now_ns();
    pid = start_child(c, old, &errfd);
    if (pid < 0)
        return -1;
    exec_errno = read_exec_errno(errfd);
    close(errfd);
    if (wait_child(pid, &status) != 0) {
        fprintf(stderr, FIL_MSG_PREFIX "error: waitpid: %s\n", strerror(errno));
        return -1;
    }
    *end_ns = now_ns();
    *term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    *exit_status = WIFSIGNALED(status) ? 128 + *term_signal : WEXITSTATUS(status);
    return exec_errno ? 1 : 0;
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
