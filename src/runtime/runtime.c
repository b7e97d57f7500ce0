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
 * Also the failure path of FIL_ASSERT (fil/common.h). SIGNAL-SAFE FILE:
 * write(2) and abort() only.
 */
#include "fil/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fil/common.h"

__thread int fil_guard __attribute__((tls_model("initial-exec")));
__thread int fil_in_dump __attribute__((tls_model("initial-exec")));
int fil_active;
int fil_lock_word;
int fil_lock_needed;

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
