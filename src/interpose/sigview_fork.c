/* SPDX-License-Identifier: MIT */
/*
 * sigview_fork.c - registers sigview.c's fork handlers at start-up.
 *
 * Kept apart from sigview.c, which is signal-context code (a SIGNAL-SAFE
 * FILE), because pthread_atfork is a start-up call, not a signal-safe one.
 */
#include <pthread.h>

#include "sigview.h"

/* Context: library start-up, single-threaded. */
__attribute__((constructor)) static void sigview_fork_init(void) {
    pthread_atfork(fil_sigview_fork_prepare, fil_sigview_fork_release, fil_sigview_fork_release);
}
