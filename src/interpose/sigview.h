/* SPDX-License-Identifier: MIT */
/* sigview.h - what sigview.c shares with sigview_fork.c. */
#ifndef FIL_SIGVIEW_H
#define FIL_SIGVIEW_H

/* Take sigview's table lock before fork, release it after (both sides), so
 * a child never inherits it held by a thread that does not exist there.
 * Context: pthread_atfork handlers of the forking thread. */
void fil_sigview_fork_prepare(void);
void fil_sigview_fork_release(void);

#endif
