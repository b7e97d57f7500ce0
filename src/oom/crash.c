/* SPDX-License-Identifier: MIT */
/*
 * crash.c - crash handlers: dump the live allocations, then die as before.
 * SIGNAL-SAFE FILE.
 *
 * SIGSEGV goes through libsigsegv, which also recognises a stack overflow
 * and runs that handler on an alternate stack reserved here. In front of it
 * sits fil_oom_on_segv: a SIGSEGV that was sent (kill, raise: si_code <= 0)
 * has no faulting address (its si_addr holds the sender's pid) and is dumped
 * directly; a real fault is handed to libsigsegv. SIGBUS, SIGABRT, SIGFPE and
 * SIGILL get a plain sigaction handler (on the alternate stack, reset to the
 * default action on entry; none for one the program was started ignoring).
 * Every handler dumps once, then hands the signal to the handler the
 * program had before ours (faulthandler's traceback still comes), then to
 * the default action, so the exit status stays 128+N. A thread that
 * crashes while another thread dumps waits inside fil_oom_dump until that
 * dump is complete (and for good if its owner ends the process), so a
 * second crash never cuts a dump short.
 *
 * Allowed calls: the dump, sigaction, sigemptyset, sigprocmask, raise.
 * (Installing the handlers is not signal context: see install.c.)
 */
#include <signal.h>
#include <sigsegv.h>
#include <string.h>

#include "fil/runtime.h"
#include "fil/state.h"
#include "oom_internal.h"

char fil_oom_alt_stack[FIL_OOM_ALT_STACK] __attribute__((aligned(16)));

struct sigaction fil_oom_segv_prev;

/* Dump for signal sig; addr is the kernel's faulting address if known. */
/* The crashing thread's stack cannot be resolved here (signal context):
 * the report shows where it last allocated (fil_last_node), and says so. */
static void dump_for(int sig, const void *addr, int known) {
    uint64_t a = (uint64_t)(uintptr_t)addr;
    uint32_t node = fil_last_node ? fil_last_node : FIL_NONE;
    fil_oom_dump(FIL_REASON_SIGNAL, NULL, 0, node, sig, known ? &a : NULL, FIL_LIMIT_NONE, 0, 0);
}

struct sigaction fil_oom_crash_prior[FIL_OOM_NCRASH];

/* Put action a in for sig and deliver sig now. */
static void deliver(int sig, const struct sigaction *a) {
    sigaction(sig, a, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

/* After the dump, sig goes where it would have gone without us: to the
 * handler the program had when ours went in (faulthandler prints its
 * traceback, then dies of sig itself), then, if that handler returns, to
 * the default action, so the exit status stays 128+sig. */
static void die_of(int sig) {
    static const int crash[FIL_OOM_NCRASH] = FIL_OOM_CRASH_SIGS;
    for (int i = 0; i < FIL_OOM_NCRASH; i++) {
        const struct sigaction *p = &fil_oom_crash_prior[i];
        int handler = (p->sa_flags & SA_SIGINFO) ? p->sa_sigaction != NULL
                                                 : p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN;
        if (crash[i] == sig && handler)
            deliver(sig, p);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    deliver(sig, &sa);
}

/* libsigsegv: a fault. Returning 0 lets the default action happen. */
int fil_oom_on_fault(void *addr, int serious) {
    (void)serious;
    dump_for(SIGSEGV, addr, 1);
    die_of(SIGSEGV);
    return 0;
}

/* libsigsegv: stack overflow, on the alternate stack; must not return. */
void fil_oom_on_overflow(int emergency, stackoverflow_context_t scp) {
    (void)emergency;
    (void)scp;
    dump_for(SIGSEGV, NULL, 0);
    die_of(SIGSEGV);
}

void fil_oom_on_signal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    int fault = si && si->si_code > 0 && sig != SIGABRT; /* kernel-reported fault */
    dump_for(sig, fault ? si->si_addr : NULL, fault);
    die_of(sig);
}

void fil_oom_on_segv(int sig, siginfo_t *si, void *uc) {
    if (si && si->si_code > 0 && (fil_oom_segv_prev.sa_flags & SA_SIGINFO) &&
        fil_oom_segv_prev.sa_sigaction) {
        fil_oom_segv_prev.sa_sigaction(sig, si, uc); /* libsigsegv: fault or overflow */
        return;
    }
    dump_for(sig, NULL, 0); /* sent with kill or raise */
    die_of(sig);
}

