/* SPDX-License-Identifier: MIT */
/*
 * shell.c - system(), popen() and pclose() that start their shell through
 * our posix_spawn, so that what they run gets the profiler's variables
 * back (exec.c) and a Python process below `sh -c` is profiled.
 *
 * Why: glibc's system() and popen() spawn /bin/sh through an internal
 * __posix_spawn with the environment as it is, which the constructor
 * stripped of our variables (exec.c): `os.system("python3 step2.py")`
 * ran step2.py unprofiled. These do what glibc's do (the same shell and
 * arguments, the same signal handling: POSIX's system(), glibc 2.36's
 * choices), through the exported posix_spawn. When nothing is carried
 * (--no-children, no launcher) the calls go to glibc's own.
 *
 * system(): SIGINT and SIGQUIT ignored in the caller while the command
 * runs (counted, for calls from several threads at once), SIGCHLD blocked
 * in the calling thread; the shell gets the caller's mask and SIG_DFL for
 * those of the two the caller did not ignore; the status as waitpid gave
 * it, W_EXITCODE(127, 0) if the shell could not be started. The wait goes
 * through our waitpid (children.c notes the child's end).
 *
 * popen(): a pipe, the shell's end on its stdin or stdout, the caller's
 * end close-on-exec only with "e" (as glibc), the other popen() streams
 * still open closed in the new shell (POSIX). A table of the streams it
 * opened tells pclose() which shell to wait for; a stream it does not know
 * (opened by glibc's popen when the table was full or nothing is carried)
 * goes to glibc's pclose.
 *
 * Context: any thread of the program; never a vfork child.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_internal.h"
#include "fil/common.h"

extern char **environ;
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

typedef int (*system_fn)(const char *);
typedef FILE *(*popen_fn)(const char *, const char *);
typedef int (*pclose_fn)(FILE *);

static system_fn real_system;
static popen_fn real_popen;
static pclose_fn real_pclose;
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static pthread_mutex_t ignore_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;

/* A fork while another thread is in popen (its lock held across the
 * spawn) must not leave the child a lock nobody will release. */
static void fork_prepare(void) {
    pthread_mutex_lock(&ignore_lock);
    pthread_mutex_lock(&streams_lock);
}

static void fork_release(void) {
    pthread_mutex_unlock(&streams_lock);
    pthread_mutex_unlock(&ignore_lock);
}

static void resolve_now(void) {
    real_system = (system_fn)dlsym(RTLD_NEXT, "system");
    real_popen = (popen_fn)dlsym(RTLD_NEXT, "popen");
    real_pclose = (pclose_fn)dlsym(RTLD_NEXT, "pclose");
    pthread_atfork(fork_prepare, fork_release, fork_release);
}

static void resolve(void) { pthread_once(&resolved, resolve_now); }

static const char shell_path[] = "/bin/sh";

/* ---- system ------------------------------------------------------------- */

/* The caller's SIGINT and SIGQUIT actions, taken by the first of the
 * system() calls running at once and put back by the last. */
static unsigned ignoring;
static struct sigaction saved_int, saved_quit;

static void ignore_begin(sigset_t *reset) {
    struct sigaction ign;
    ign.sa_handler = SIG_IGN;
    ign.sa_flags = 0;
    sigemptyset(&ign.sa_mask);
    pthread_mutex_lock(&ignore_lock);
    if (ignoring++ == 0) {
        __sigaction(SIGINT, &ign, &saved_int);
        __sigaction(SIGQUIT, &ign, &saved_quit);
    }
    sigemptyset(reset);
    if (saved_int.sa_handler != SIG_IGN)
        sigaddset(reset, SIGINT);
    if (saved_quit.sa_handler != SIG_IGN)
        sigaddset(reset, SIGQUIT);
    pthread_mutex_unlock(&ignore_lock);
}

static void ignore_end(void) {
    pthread_mutex_lock(&ignore_lock);
    if (--ignoring == 0) {
        __sigaction(SIGINT, &saved_int, NULL);
        __sigaction(SIGQUIT, &saved_quit, NULL);
    }
    pthread_mutex_unlock(&ignore_lock);
}

/* Wait for pid (through our waitpid), retrying on EINTR: its status, or
 * -1 (errno set). */
static int wait_for(pid_t pid) {
    int status;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? status : -1;
}

FIL_API int system(const char *command) {
    resolve();
    if (!command || !fil_exec_carrying())
        return real_system(command); /* "is there a shell", or nothing to carry */
    sigset_t chld, omask, reset;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ignore_begin(&reset);
    pthread_sigmask(SIG_BLOCK, &chld, &omask);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &omask);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)command, NULL};
    pid_t pid;
    int status, r = posix_spawn(&pid, shell_path, NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    /* a shell that could not start is a shell that exited 127, errno
     * untouched, as glibc's */
    int e = errno;
    status = r == 0 ? wait_for(pid) : W_EXITCODE(127, 0);
    if (r == 0)
        e = errno;
    ignore_end();
    pthread_sigmask(SIG_SETMASK, &omask, NULL);
    errno = e;
    return status;
}

/* ---- popen and pclose --------------------------------------------------- */

#define MAX_STREAMS 256
#define RESERVED ((FILE *)1) /* a slot whose popen is starting its shell */

/* The streams popen opened. streams_lock is held only to read or change
 * the table, never across a call that may allocate (posix_spawn's file
 * actions, fdopen): the tracker's lock, which an allocation takes, is held
 * by a thread that forks while fork_prepare waits for streams_lock. */
static struct {
    FILE *f;
    int fd;
    pid_t pid;
} streams[MAX_STREAMS];

/* Parse popen's mode as glibc does: exactly one of r and w, and e. 0, or
 * -1 (EINVAL). */
static int parse_mode(const char *mode, int *reading, int *cloexec) {
    int r = 0, w = 0;
    *cloexec = 0;
    for (; *mode; mode++) {
        if (*mode == 'r')
            r = 1;
        else if (*mode == 'w')
            w = 1;
        else if (*mode == 'e')
            *cloexec = 1;
        else
            return -1;
    }
    if (r == w)
        return -1;
    *reading = r;
    return 0;
}

/* Start the shell for popen with its end of the pipe on target (0 or 1),
 * the other popen() streams (others[0..n)) closed in it. 0 and *pid, or an
 * errno value. Context: streams_lock not held. */
static int spawn_piped(const char *command, int child_end, int target, const int *others, int n,
                       pid_t *pid) {
    posix_spawn_file_actions_t fa;
    int r = posix_spawn_file_actions_init(&fa);
    if (r != 0)
        return r;
    /* dup2 onto itself clears close-on-exec (glibc 2.29 and later) */
    r = posix_spawn_file_actions_adddup2(&fa, child_end, target);
    for (int i = 0; r == 0 && i < n; i++)
        if (others[i] != target)
            r = posix_spawn_file_actions_addclose(&fa, others[i]);
    if (r == 0) {
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)command, NULL};
        r = posix_spawn(pid, shell_path, &fa, NULL, argv, environ);
    }
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

FIL_API FILE *popen(const char *command, const char *mode) {
    resolve();
    int reading, cloexec;
    if (!fil_exec_carrying())
        return real_popen(command, mode);
    if (!command || !mode || parse_mode(mode, &reading, &cloexec) != 0) {
        errno = EINVAL;
        return NULL;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return NULL;
    int mine = reading ? fds[0] : fds[1], theirs = reading ? fds[1] : fds[0];
    int others[MAX_STREAMS], nothers = 0, slot = -1;
    pthread_mutex_lock(&streams_lock);
    for (int i = 0; i < MAX_STREAMS; i++) {
        if (!streams[i].f && slot < 0)
            slot = i;
        else if (streams[i].f && streams[i].f != RESERVED)
            others[nothers++] = streams[i].fd;
    }
    if (slot >= 0)
        streams[slot].f = RESERVED;
    pthread_mutex_unlock(&streams_lock);
    if (slot < 0) { /* a table full of open streams: glibc's, unprofiled */
        close(fds[0]);
        close(fds[1]);
        return real_popen(command, mode);
    }
    pid_t pid = -1;
    int r = spawn_piped(command, theirs, reading ? 1 : 0, others, nothers, &pid);
    close(theirs);
    FILE *f = NULL;
    if (r == 0) {
        if (!cloexec)
            fcntl(mine, F_SETFD, 0);
        f = fdopen(mine, reading ? "r" : "w");
        if (!f)
            r = errno;
    }
    pthread_mutex_lock(&streams_lock);
    streams[slot].fd = mine;
    streams[slot].pid = pid;
    streams[slot].f = f; /* NULL: the slot is free again */
    pthread_mutex_unlock(&streams_lock);
    if (!f) {
        close(mine); /* the shell, if it started, sees its pipe end */
        if (pid > 0)
            (void)wait_for(pid);
        errno = r;
    }
    return f;
}

FIL_API int pclose(FILE *f) {
    resolve();
    pid_t pid = -1;
    pthread_mutex_lock(&streams_lock);
    for (int i = 0; i < MAX_STREAMS; i++) {
        if (f && streams[i].f == f) {
            pid = streams[i].pid;
            streams[i].f = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&streams_lock);
    if (pid < 0)
        return real_pclose(f);
    fclose(f);
    return wait_for(pid);
}
