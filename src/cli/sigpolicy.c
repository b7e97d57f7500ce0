/* SPDX-License-Identifier: MIT */
/*
 * sigpolicy.c - the supervisor's signals once the program is gone.
 * SIGNAL-SAFE FILE.
 *
 * Policy, from the moment the child has been reaped (fil_cli_render_phase):
 *   - SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the render at once: the
 *     supervisor says so in one line, removes the render's temporary files
 *     (".<name>.tmp-<our pid>" in the result folder, the naming of
 *     src/report/atomic.c; every complete file was renamed into place and
 *     stays), then dies of that signal. One that arrived after the program
 *     ended but before the render phase was kept pending (supervise.c) and
 *     acts as soon as the phase begins.
 *   - SIGUSR1 and SIGUSR2 are ignored: there is no program to pass them to.
 * After the render, main dies of the signal the program died of
 * (fil_cli_die_of), so shells see 128+N and `for ...; do fil-profile ...;
 * done` stops on Ctrl-C as it does with plain Python.
 *
 * stop_render() is the one place the render is stopped from: it raises the
 * render's stop flag (fil_render_interrupt: every writer checks it, aborts
 * the file it is writing and skips the rest, and summary.json, written
 * last, records that the reports were interrupted) and returns; main then
 * says so, removes any temporary left, and dies of that signal
 * (fil_cli_stop_signal). The render has STOP_GRACE_S seconds to unwind
 * (SIGALRM): if it cannot, because the supervisor is blocked writing to a
 * stderr nobody reads, or a second stop signal comes, it dies at once,
 * temporaries removed, without the summary.
 *
 * Dying of a signal must not leave a core of the supervisor: fil_cli_die_of
 * makes the process non-dumpable and sets RLIMIT_CORE to 0 first (the
 * program's own core, if any, was already written by the kernel).
 *
 * Allowed calls: write, open, close, unlinkat, getpid, alarm, sigaction,
 * sigemptyset, sigaddset, sigprocmask, raise, _exit, strlen, memcmp,
 * syscall(SYS_getdents64, SYS_prctl, SYS_prlimit64).
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "fil/common.h"
#include "fil/render.h"

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
/* Seconds the render has to unwind after a stop signal. */
#define STOP_GRACE_S 1
#define N_STOP (int)(sizeof stop_signals / sizeof stop_signals[0])

/* The result folder, opened before the render phase begins; -1 if none. */
static int result_dirfd = -1;

/* A directory entry as getdents64 returns it. */
struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Write s to stderr. SIGNAL CONTEXT. */
static void say(const char *s)
{
    if (write(2, s, strlen(s)) < 0) {
    }
}

/* "SIGINT" etc. for the signals that stop the render. SIGNAL CONTEXT. */
static const char *stop_name(int sig)
{
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "SIGQUIT";
    }
}

/* Decimal digits of v into buf (at least 12 bytes), NUL-terminated. */
static void fmt_uint(char *buf, unsigned v)
{
    char tmp[12];
    int n = 0, i = 0;

    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < (int)sizeof tmp);
    while (n > 0)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
}

/* 1 if name is one of our temporaries: ".<name>.tmp-<suffix>". */
static int is_temporary(const char *name, const char *suffix, size_t slen)
{
    size_t n = strlen(name);

    return name[0] == '.' && n > slen + 1 && memcmp(name + n - slen, suffix, slen) == 0;
}

/* Unlink the render's temporaries in the result folder. SIGNAL CONTEXT. */
static void remove_temporaries(void)
{
    char buf[4096], suffix[24] = ".tmp-";
    long n;

    if (result_dirfd < 0)
        return;
    fmt_uint(suffix + 5, (unsigned)getpid());
    size_t slen = strlen(suffix);
    lseek(result_dirfd, 0, SEEK_SET);
    while ((n = syscall(SYS_getdents64, result_dirfd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
            if (is_temporary(d->d_name, suffix, slen))
                unlinkat(result_dirfd, d->d_name, 0);
            off += d->d_reclen;
        }
    }
}

/* The signal that stopped the render, 0 if none. */
static volatile sig_atomic_t stopped_by;

/* The hook: stop the render for sig (see the top comment). SIGNAL CONTEXT. */
static void stop_render(int sig)
{
    if (stopped_by) { /* the render did not unwind fast enough: now */
        remove_temporaries();
        fil_cli_die_of(sig);
    }
    stopped_by = sig;
    fil_render_interrupt();
    alarm(STOP_GRACE_S);
}

/*
 * After the render: if a stop signal ended it, say so, remove what is left
 * of its temporaries, and die of that signal. Returns if there was none.
 * Context: supervisor, after the render.
 */
/* "Stopped by SIGx while writing the reports..." on stderr; the folder
 * named if shown is not NULL. */
static void say_stopped(int sig, const char *shown)
{
    say(FIL_MSG_PREFIX "Stopped by ");
    say(stop_name(sig));
    say(" while writing the reports: the files already written are complete");
    if (shown) {
        say(" (in ");
        say(shown);
        say(")");
    }
    say("\n");
}

void fil_cli_stop_signal(const char *shown)
{
    int sig = stopped_by;

    if (!sig)
        return;
    say_stopped(sig, shown);
    remove_temporaries();
    fil_cli_die_of(sig);
}

/* Handler of the stop signals during the render phase. SIGNAL CONTEXT. */
static void on_stop(int sig)
{
    stop_render(sig);
}

/* The render did not unwind within STOP_GRACE_S. SIGNAL CONTEXT. */
static void on_alarm(int sig)
{
    (void)sig; /* no message: a stderr nobody reads may be why we are late */
    remove_temporaries();
    fil_cli_die_of(stopped_by ? stopped_by : SIGTERM);
}

/*
 * Die of sig, as the program did: no core of the supervisor, the default
 * action restored, the signal unblocked and raised. A signal that cannot
 * kill (never one a process died of) falls back to exit 128 + sig.
 * SIGNAL CONTEXT.
 */
void fil_cli_die_of(int sig)
{
    struct rlimit none = {0, 0};
    struct sigaction dfl;
    sigset_t set;

    syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
    syscall(SYS_prlimit64, 0, RLIMIT_CORE, &none, NULL);
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

/*
 * Enter the render phase: remember the result folder dir for the cleanup,
 * install the policy above and unblock the forwarded signals (any that
 * arrived since the program ended acts now). 0, or -1 if dir cannot be
 * opened (the policy still holds; nothing is cleaned). Context: supervisor,
 * after the child was reaped; not signal context.
 */
int fil_cli_render_phase(const char *dir)
{
    struct sigaction stop, ign;
    sigset_t set;

    result_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    memset(&stop, 0, sizeof stop);
    stop.sa_handler = on_stop;
    sigfillset(&stop.sa_mask); /* one stop at a time */
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&set);
    for (int k = 0; k < N_STOP; k++) {
        sigaction(stop_signals[k], &stop, NULL);
        sigaddset(&set, stop_signals[k]);
    }
    stop.sa_handler = on_alarm;
    sigaction(SIGALRM, &stop, NULL);
    sigaction(SIGUSR1, &ign, NULL);
    sigaction(SIGUSR2, &ign, NULL);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return result_dirfd >= 0 ? 0 : -1;
}
