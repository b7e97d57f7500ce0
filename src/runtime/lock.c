/* SPDX-License-Identifier: MIT */
/*
 * lock.c - the blocking slow path of the tracker lock (fil/lock.h).
 *
 * Kept out of runtime.c because it waits without bound: signal context
 * never takes this path (it uses fil_lock_timed), and the signal-safety
 * lint holds it to that.
 */
#include <sched.h>

#include "fil/lock.h"
#include "fil/runtime.h"
#include "lock_internal.h"

static int owner_claimed; /* 1 once a thread took the owner role */

/* fil_lock's slow path (fil/lock.h): the first call of each thread decides
 * its role; then spin, yielding after a while. Context: any thread. */
void fil_lock_slow(void) {
    if (fil_lock_role == 0) {
        int none = 0;
        if (__atomic_compare_exchange_n(&owner_claimed, &none, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            fil_lock_role = 1;
            fil_lock();
            return;
        }
        fil_lock_first_foreign(0);
    }
    for (unsigned spins = 0;; spins++) {
        if (__atomic_load_n(&fil_lock_word, __ATOMIC_RELAXED) == 0 && fil_trylock())
            return;
        if (spins > 64)
            sched_yield();
        else
            __builtin_ia32_pause();
    }
}

