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
    int r = 0;
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
    static const int sigs[] = {SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = fil_oom_on_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], &sa, NULL) != 0)
            r = -1;
    }
    return r;
}
