/* SPDX-License-Identifier: MIT */
/*
 * install.c - installs the crash handlers of crash.c at startup.
 *
 * Kept apart from crash.c because libsigsegv's installers are start-up
 * calls, not signal-context ones: crash.c holds only what runs in a handler.
 */
#include <signal.h>
#include <string.h>

#include "oom_internal.h"

int fil_oom_install_crash_handlers(void) {
    static const int crash[FIL_OOM_NCRASH] = FIL_OOM_CRASH_SIGS;
    int r = 0, ignored[FIL_OOM_NCRASH] = {0};
    for (int i = 0; i < FIL_OOM_NCRASH; i++) { /* before libsigsegv puts its own in */
        if (sigaction(crash[i], NULL, &fil_oom_crash_prior[i]) != 0)
            fil_oom_crash_prior[i].sa_handler = SIG_DFL;
        ignored[i] = !(fil_oom_crash_prior[i].sa_flags & SA_SIGINFO) &&
                     fil_oom_crash_prior[i].sa_handler == SIG_IGN;
    }
    if (stackoverflow_install_handler(fil_oom_on_overflow, fil_oom_alt_stack,
                                      sizeof fil_oom_alt_stack) != 0)
        r = -1;
    if (sigsegv_install_handler(fil_oom_on_fault) != 0)
        r = -1;
    /* Put fil_oom_on_segv in front of libsigsegv's handler (see crash.c). */
    struct sigaction front;
    if (sigaction(SIGSEGV, NULL, &fil_oom_segv_prev) == 0 &&
        (fil_oom_segv_prev.sa_flags & SA_SIGINFO)) {
        front = fil_oom_segv_prev;
        front.sa_sigaction = fil_oom_on_segv;
        if (sigaction(SIGSEGV, &front, NULL) != 0)
            r = -1;
    }
    for (int i = 1; i < FIL_OOM_NCRASH; i++) {
        if (ignored[i])
            continue; /* ignored as the program was started: sent ones stay harmless */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = fil_oom_on_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(crash[i], &sa, NULL) != 0)
            r = -1;
    }
    return r;
}
