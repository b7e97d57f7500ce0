/* SPDX-License-Identifier: MIT */
/*
 * usr2.c - SIGUSR2 asks the launcher for a report on demand. SIGNAL-SAFE FILE.
 *
 * Fil's users know `kill -USR2 <pid>` as "write a report now". The report
 * is drawn by the launcher (src/cli/sample.c) from the shared state, so the
 * program is never stopped and nothing it holds is touched: our handler
 * only sends SIGUSR2 on to the launcher, which takes a SIGUSR2 from its
 * child as the request (src/cli/supervise.c) and forwards any other.
 *
 * The handler goes in when profiling starts (python.c, right after the
 * crash handlers: Python's signal set-up has run), only where SIGUSR2 has
 * its default action (an inherited SIG_IGN stays). A program that
 * installs its own handler (signal.signal, faulthandler.register,
 * sigaction) simply replaces ours and keeps SIGUSR2 for itself; so does a
 * SIGUSR2 sent to the launcher, which forwards it (holding it until this
 * decision is made: usr2_ready in the state). --no-usr2 (FIL_USR2=0)
 * installs nothing. A fork child (another pid) or a program whose launcher
 * is gone gets the default action, as without the profiler.
 *
 * Allowed calls: getpid, getppid, kill, sigqueue, sigaction, sigemptyset,
 * sigprocmask, raise.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/state_writer.h"

/* The launcher's pid and ours, set once at startup (fil_usr2_setup); 0:
 * reports on demand are off. Read by the handler. */
static pid_t launcher;
static pid_t self;

/* Let sig take its default action now (we are not the profiled program,
 * or nobody can write the report). SIGNAL CONTEXT. */
static void default_action(int sig)
{
    struct sigaction sa;
    sigset_t set;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

/* The handler: ask the launcher. SIGNAL CONTEXT: errno preserved. */
static void on_usr2(int sig, siginfo_t *si, void *uc)
{
    int e = errno;
    (void)si;
    (void)uc;
    if (launcher > 0 && getpid() == self && getppid() == launcher) {
        /* The count first, then the signal carrying it: a signal sent to
         * the whole group is pending for the launcher too, and ours
         * merges into it when it comes before the launcher read that
         * one (standard signals do not queue); the launcher then finds
         * the count moved (supervise.c). */
        union sigval v;
        if (fil_state) {
            v.sival_int = (int)__atomic_add_fetch(&fil_state->usr2_requests, 1, __ATOMIC_SEQ_CST);
            if (sigqueue(launcher, SIGUSR2, v) != 0)
                kill(launcher, SIGUSR2);
        } else {
            kill(launcher, SIGUSR2); /* no count to give: a plain request */
        }
    } else
        default_action(sig);
    errno = e;
}

/* Remember who the launcher is, if reports on demand are wanted. Context:
 * the constructor, with the launcher still our parent. */
void fil_usr2_setup(int enabled)
{
    launcher = enabled ? getppid() : 0;
    self = getpid();
}

/* Install the handler where SIGUSR2 has its default action. Context: start
 * of profiling (GIL held), after Python's own signal set-up. */
void fil_usr2_install(void)
{
    struct sigaction old, sa;
    if (launcher > 1 && sigaction(SIGUSR2, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_usr2;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR2, &sa, NULL);
    }
    if (fil_state)
        __atomic_store_n(&fil_state->usr2_ready, 1, __ATOMIC_RELEASE);
}
