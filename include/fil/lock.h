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
 * While the process has one thread the lock is not taken at all. Exactly
 * one thread, the owner (the first to ask for the lock: the constructor's),
 * may skip it, and only while fil_lock_needed is 0; it says so in
 * fil_owner_busy for the length of the section. Any other thread is
 * foreign: on its first section it sets fil_lock_needed, makes the owner's
 * busy flag visible with an asymmetric fence (membarrier(2): the owner's
 * fast path needs no fence instruction of its own), waits until the owner
 * is out of any lock-free section, and from then on everyone takes the
 * lock. So threads the interposed pthread_create never saw (glibc's timer
 * and AIO helpers, raw clone) are safe too; pthread_create still sets
 * fil_lock_needed before the thread exists, which spares it the fence.
 * Most batch jobs never start a thread and save two atomic operations per
 * allocation. Cost for the owner: ~8 instructions, no atomic RMW, no fence.
 */
#ifndef FIL_LOCK_H
#define FIL_LOCK_H

#include <sched.h>
#include <stdint.h>

#include "fil/common.h"
#include "fil/runtime.h" /* fil_lock_word, fil_lock_needed, fil_lock_role, fil_owner_busy */

static inline int fil_trylock(void) {
    return __atomic_exchange_n(&fil_lock_word, 1, __ATOMIC_ACQUIRE) == 0;
}

/* The slow path: claim the owner role, or make a foreign thread's first
 * section safe (see above), then spin for the lock (runtime.c). */
void fil_lock_slow(void);

/* Context: any thread; never while holding it already. NOT SIGNAL-SAFE:
 * it spins without bound, and the code a signal interrupted may hold the
 * lock; signal context uses fil_lock_timed (scripts/check-signal-safety
 * enforces it). */
static inline void fil_lock(void) {
    if (FIL_LIKELY(fil_lock_role > 0) &&
        FIL_LIKELY(!__atomic_load_n(&fil_lock_needed, __ATOMIC_RELAXED))) {
        __atomic_store_n(&fil_owner_busy, 1, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the store before the check */
        if (FIL_LIKELY(!__atomic_load_n(&fil_lock_needed, __ATOMIC_RELAXED)))
            return;
        __atomic_store_n(&fil_owner_busy, 0, __ATOMIC_RELEASE);
    }
    if (FIL_LIKELY(fil_lock_role != 0) && FIL_LIKELY(fil_trylock()))
        return;
    fil_lock_slow();
}

static inline void fil_unlock(void) {
    if (fil_lock_role > 0 && fil_owner_busy) /* a lock-free section of the owner */
        __atomic_store_n(&fil_owner_busy, 0, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&fil_lock_word, 0, __ATOMIC_RELEASE);
}

/*
 * fil_lock_owner_enter - the owner's lock-free section alone: 1 if the
 * calling thread is the owner and no other thread exists, in which case
 * it is now in such a section (leave it with fil_lock_owner_leave, not
 * fil_unlock); 0 otherwise, with nothing held: the caller then takes
 * fil_lock. For fast paths that want no call before their work: ~6
 * instructions, and the leave is one store. Context: any thread.
 */
static inline int fil_lock_owner_enter(void) {
    if (FIL_LIKELY(fil_lock_role > 0)) {
        __atomic_store_n(&fil_owner_busy, 1, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the store before the check */
        if (FIL_LIKELY(!__atomic_load_n(&fil_lock_needed, __ATOMIC_RELAXED)))
            return 1;
        __atomic_store_n(&fil_owner_busy, 0, __ATOMIC_RELEASE);
    }
    return 0;
}

static inline void fil_lock_owner_leave(void) {
    __atomic_store_n(&fil_owner_busy, 0, __ATOMIC_RELEASE);
}

/* Try for about `rounds` yields. 1 if acquired (release it with
 * fil_unlock), 0 if not. SIGNAL CONTEXT safe: no system call but
 * sched_yield, and a foreign thread's first section waits for the owner at
 * most the same bounded time. */
int fil_lock_timed(unsigned rounds);

#endif
