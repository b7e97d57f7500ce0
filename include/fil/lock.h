/* SPDX-License-Identifier: MIT */
/*
 * fil/lock.h - the one lock of the profiled process.
 *
 * A spinlock that yields the CPU after a short spin. It protects the live
 * allocation table, the interning tables and every write to the shared state.
 * Critical sections are short and never call the real allocator or Python,
 * so a holder always releases it soon; the dump path therefore waits for it
 * only a bounded time (fil_lock_timed) and proceeds without it if the holder
 * is the crashed thread itself.
 *
 * Until the program starts a second thread the lock is not taken at all:
 * fil_lock_needed is set by the pthread_create wrapper before the new
 * thread exists, and no critical section creates a thread, so no section
 * that began without the lock can overlap one that takes it. Most batch
 * jobs never start a thread and save two atomic operations per allocation.
 */
#ifndef FIL_LOCK_H
#define FIL_LOCK_H

#include <sched.h>
#include <stdint.h>

#include "fil/runtime.h" /* fil_lock_word, fil_lock_needed */

static inline int fil_trylock(void) {
    return __atomic_exchange_n(&fil_lock_word, 1, __ATOMIC_ACQUIRE) == 0;
}

/* Context: any thread; never while holding it already. NOT SIGNAL-SAFE:
 * it spins without bound, and the code a signal interrupted may hold the
 * lock; signal context uses fil_lock_timed (scripts/check-signal-safety
 * enforces it). */
static inline void fil_lock(void) {
    if (!__atomic_load_n(&fil_lock_needed, __ATOMIC_RELAXED))
        return;
    for (unsigned spins = 0;; spins++) {
        if (__atomic_load_n(&fil_lock_word, __ATOMIC_RELAXED) == 0 && fil_trylock())
            return;
        if (spins > 64)
            sched_yield();
        else
            __builtin_ia32_pause();
    }
}

static inline void fil_unlock(void) {
    if (__atomic_load_n(&fil_lock_needed, __ATOMIC_RELAXED))
        __atomic_store_n(&fil_lock_word, 0, __ATOMIC_RELEASE);
}

/* Try for about `rounds` yields. 1 if acquired, 0 if not. SIGNAL CONTEXT safe. */
static inline int fil_lock_timed(unsigned rounds) {
    if (!__atomic_load_n(&fil_lock_needed, __ATOMIC_RELAXED))
        return 1;
    for (unsigned i = 0; i < rounds; i++) {
        if (fil_trylock())
            return 1;
        sched_yield();
    }
    return 0;
}

#endif
