/* SPDX-License-Identifier: MIT */
/* lock_internal.h - what runtime.c and lock.c share of the tracker lock. */
#ifndef FIL_LOCK_INTERNAL_H
#define FIL_LOCK_INTERNAL_H

/* A foreign thread is about to take the lock for the first time: turn the
 * owner's lock elision off and wait for the owner to leave a section it may
 * be in without the lock (at most `rounds` yields; 0: without bound).
 * SIGNAL CONTEXT safe when rounds > 0. */
void fil_lock_first_foreign(unsigned rounds);

#endif
