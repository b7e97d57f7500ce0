/* SPDX-License-Identifier: MIT */
/* sigview.h - what sigview.c shares with sigview_fork.c and sigwait.c. */
#ifndef FIL_SIGVIEW_H
#define FIL_SIGVIEW_H

#include <signal.h>

/* Take sigview's table lock before fork, release it after (both sides), so
 * a child never inherits it held by a thread that does not exist there.
 * Context: pthread_atfork handlers of the forking thread. */
void fil_sigview_fork_prepare(void);
void fil_sigview_fork_release(void);

/* The program took watched signal sig (si as the kernel gave it) with
 * sigwait, sigwaitinfo or sigtimedwait: note the delivery as the
 * trampoline notes a handled one. Other signals are not noted.
 * Context: any thread (SIGNAL-SAFE). */
void fil_sigview_taken(int sig, const siginfo_t *si);

#endif
