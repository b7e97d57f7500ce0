/* SPDX-License-Identifier: MIT */
/*
 * sigwait.c - the exported sigwait, sigwaitinfo and sigtimedwait.
 *
 * A program that blocks its stop signals and takes them with sigwait (a
 * server's main loop, Python's signal.sigwait) has no handler for them,
 * so the trampoline of sigview.c never sees them; the supervisor took
 * such a signal as not caught and forwarded it at once, and a SIGTERM
 * sent to the process group was read twice. These wrappers call the next
 * definitions and note each watched signal taken (fil_sigview_taken), so
 * the supervisor matches it as a handled one's (src/cli/forward.c).
 * sigwait and sigwaitinfo are made of sigtimedwait, as glibc's are,
 * since the note needs the sender.
 *
 * Context: any thread. Not signal context (neither is the real sigwait).
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "fil/common.h"
#include "fil/runtime.h"
#include "sigview.h"

typedef int (*timedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);

static timedwait_fn real_timedwait;

/* Resolve the next definition (dlsym may allocate: the guard is set, so
 * that passes through untracked). */
static void resolve(void) {
    int g = fil_guard;
    fil_guard = 1;
    __atomic_store_n(&real_timedwait, (timedwait_fn)dlsym(RTLD_NEXT, "sigtimedwait"),
                     __ATOMIC_RELEASE);
    fil_guard = g;
}

FIL_API int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
    siginfo_t own;
    if (!__atomic_load_n(&real_timedwait, __ATOMIC_ACQUIRE))
        resolve();
    if (!real_timedwait) {
        errno = ENOSYS;
        return -1;
    }
    int r = real_timedwait(set, info ? info : &own, timeout);
    if (r > 0) {
        int e = errno;
        fil_sigview_taken(r, info ? info : &own);
        errno = e;
    }
    return r;
}

/* As glibc's: sigtimedwait without a timeout. */
FIL_API int sigwaitinfo(const sigset_t *set, siginfo_t *info) {
    return sigtimedwait(set, info, NULL);
}

/* As glibc's: restarted after an interruption; the error number is
 * returned, not left in errno. */
FIL_API int sigwait(const sigset_t *set, int *sig) {
    siginfo_t si;
    int r, e = errno;
    do
        r = sigwaitinfo(set, &si);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int err = errno;
        errno = e;
        return err;
    }
    *sig = r;
    errno = e;
    return 0;
}
