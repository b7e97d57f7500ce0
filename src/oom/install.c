/* SPDX-License-Identifier: MIT */
/*
 * install.c - installs the crash handlers of crash.c at startup, and gives
 * each thread the program starts afterwards an alternate signal stack.
 *
 * Kept apart from crash.c because libsigsegv's installers are start-up
 * calls, not signal-context ones: crash.c holds only what runs in a handler.
 *
 * The handlers run on an alternate stack (SA_ONSTACK), but sigaltstack is
 * per thread and a new thread starts without one: a thread that overflowed
 * its stack could not run the handler at all and the kernel killed the
 * process with no dump (only the supervisor's post-mortem). So the thread
 * start (src/interpose/threads.c) maps one of FIL_OOM_ALT_STACK bytes, a
 * guard page below it, for each thread, and takes it back when the thread
 * ends (a thread-specific key's destructor: it runs on return and on
 * pthread_exit). Untouched until a signal comes, it costs address space,
 * not memory; a thread that set an alternate stack of its own keeps it.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fil/sys.h"
#include "oom_internal.h"

/* The key whose destructor takes a thread's alternate stack back; valid
 * once alt_ready is set (after the crash handlers went in). */
static pthread_key_t alt_key;
static int alt_ready;

/* The mapping of an alternate stack: a guard page, then the stack. */
static size_t alt_guard(void) {
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

/* Destructor of alt_key: stop using the stack if it is still this
 * thread's, and unmap it. Context: thread exit. */
static void alt_release(void *base) {
    char *sp = (char *)base + alt_guard();
    stack_t cur, off;
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == sp) {
        if (cur.ss_flags & SS_ONSTACK)
            return; /* running on it (not at a thread's end): leave it mapped */
        memset(&off, 0, sizeof off);
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, NULL);
    }
    fil_sys_unmap(base, alt_guard() + FIL_OOM_ALT_STACK);
}

void fil_oom_thread_start(void) {
    stack_t cur, ss;
    if (!__atomic_load_n(&alt_ready, __ATOMIC_ACQUIRE))
        return;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return; /* it has one already */
    size_t guard = alt_guard();
    char *base = fil_sys_pages(guard + FIL_OOM_ALT_STACK);
    if (!base)
        return; /* no address space left: the post-mortem still comes */
    mprotect(base, guard, PROT_NONE);
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = base + guard;
    ss.ss_size = FIL_OOM_ALT_STACK;
    if (sigaltstack(&ss, NULL) != 0 || pthread_setspecific(alt_key, base) != 0)
        alt_release(base);
}

int fil_oom_install_crash_handlers(void) {
    static const int crash[FIL_OOM_NCRASH] = FIL_OOM_CRASH_SIGS;
    int r = 0, ignored[FIL_OOM_NCRASH] = {0};
    for (int i = 0; i < FIL_OOM_NCRASH; i++) { /* before libsigsegv puts its own in */
        if (sigaction(crash[i], NULL, &fil_oom_crash_prior[i]) != 0)
            fil_oom_crash_prior[i].sa_handler = SIG_DFL;
        ignored[i] = !(fil_oom_crash_prior[i].sa_flags & SA_SIGINFO) &&
                     fil_oom_crash_prior[i].sa_handler == SIG_IGN;
    }
    if (stackoverflow_install_handler(fil_oom_on_overflow, fil_oom_alt_stack,
                                      sizeof fil_oom_alt_stack) != 0)
        r = -1;
    if (sigsegv_install_handler(fil_oom_on_fault) != 0)
        r = -1;
    /* Put fil_oom_on_segv in front of libsigsegv's handler (see crash.c). */
    struct sigaction front;
    if (sigaction(SIGSEGV, NULL, &fil_oom_segv_prev) == 0 &&
        (fil_oom_segv_prev.sa_flags & SA_SIGINFO)) {
        front = fil_oom_segv_prev;
        front.sa_sigaction = fil_oom_on_segv;
        if (sigaction(SIGSEGV, &front, NULL) != 0)
            r = -1;
    }
    for (int i = 1; i < FIL_OOM_NCRASH; i++) {
        if (ignored[i])
            continue; /* ignored as the program was started: sent ones stay harmless */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = fil_oom_on_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(crash[i], &sa, NULL) != 0)
            r = -1;
    }
    if (pthread_key_create(&alt_key, alt_release) == 0)
        __atomic_store_n(&alt_ready, 1, __ATOMIC_RELEASE);
    return r;
}
