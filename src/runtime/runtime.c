/* SPDX-License-Identifier: MIT */
/*
 * runtime.c - storage of the process-wide flags declared in fil/runtime.h.
 *
 * Nothing but definitions: the flags live in the core library so that every
 * program linking it (the preload library, the launcher, the unit tests)
 * gets exactly one copy, and no module has to declare another module's
 * variable for itself. In the launcher and the unit tests they stay 0
 * (nothing is tracked there), except fil_lock_needed, which tests that start
 * threads by hand turn on.
 *
 * Also the lock's bounded path for signal context (fil_lock_timed, and the
 * first-foreign-section handshake it shares with lock.c's blocking slow
 * path) and the failure path of FIL_ASSERT (fil/common.h).
 * SIGNAL-SAFE FILE: write(2), abort(), sched_yield and syscall
 * (membarrier) only.
 */
#include "fil/runtime.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/lock.h"
#include "lock_internal.h"

__thread int fil_guard __attribute__((tls_model("initial-exec")));
__thread int fil_in_dump __attribute__((tls_model("initial-exec")));
__thread uint32_t fil_last_node __attribute__((tls_model("initial-exec")));
__thread int fil_lock_role __attribute__((tls_model("initial-exec")));
int fil_active;
int fil_stop_pending;
int fil_lock_word;
int fil_lock_needed;
int fil_owner_busy;

/* A foreign thread is about to take the lock for the first time: turn the
 * owner's lock elision off and wait (at most `rounds` yields, or for ever
 * if rounds is 0) until it has left a section it may be in without the
 * lock. The owner stores fil_owner_busy, then loads fil_lock_needed with
 * no fence between; membarrier makes every running thread of the process
 * execute a full barrier, so either the owner's busy store is visible now,
 * or its load comes after and sees fil_lock_needed. Without membarrier
 * (kernels before 4.14) the bounded wait below is a best effort; the
 * kernel here has it. SIGNAL CONTEXT safe: raw system calls only. */
void fil_lock_first_foreign(unsigned rounds) {
    fil_lock_role = -1;
    if (!__atomic_load_n(&fil_lock_needed, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&fil_lock_needed, 1, __ATOMIC_SEQ_CST);
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0 &&
            (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0 ||
             syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0))
            syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
    }
    for (unsigned i = 0; __atomic_load_n(&fil_owner_busy, __ATOMIC_ACQUIRE); i++) {
        if (rounds && i >= rounds)
            break;
        sched_yield();
    }
}

int fil_lock_timed(unsigned rounds) {
    if (fil_lock_role > 0 && !__atomic_load_n(&fil_lock_needed, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&fil_owner_busy, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    if (fil_lock_role == 0)
        fil_lock_first_foreign(rounds);
    for (unsigned i = 0; i < rounds; i++) {
        if (fil_trylock())
            return 1;
        sched_yield();
    }
    return 0;
}

#ifdef FIL_DEBUG
/* Report a failed FIL_ASSERT and abort. SIGNAL CONTEXT: write(2) only. */
void fil_assert_fail(const char *cond, const char *file, int line) {
    char num[16];
    size_t n = sizeof num;
    unsigned v = line > 0 ? (unsigned)line : 0;
    do
        num[--n] = (char)('0' + v % 10);
    while ((v /= 10) && n > 0);
    const char *parts[] = {FIL_MSG_PREFIX "assertion failed at ", file, ":"};
    for (unsigned i = 0; i < 3; i++)
        if (write(2, parts[i], strlen(parts[i])) < 0)
            break;
    if (write(2, num + n, sizeof num - n) >= 0 && write(2, ": ", 2) >= 0 &&
        write(2, cond, strlen(cond)) >= 0 && write(2, "\n", 1) >= 0) {
    }
    abort();
}
#endif
