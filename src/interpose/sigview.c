/* SPDX-License-Identifier: MIT */
/*
 * sigview.c - the exported sigaction, signal and bsd_signal: the program's
 * handlers of the watched signals run through a trampoline that notes each
 * delivery in the shared state, so the supervisor can tell whether the
 * program already got a signal it received itself. A signal the program
 * blocks and takes with sigwait is noted the same way (sigwait.c).
 *
 * Why: the supervisor and the program share a process group. A signal sent
 * to the group (Ctrl-C, `kill -INT -- -PGID`, `timeout`) reaches both, and
 * siginfo says who sent it, not whether it went to one process or to the
 * group; forwarding such a signal delivered it twice (celery, uvicorn: a
 * second Ctrl-C is "force quit"). With the note, the supervisor forwards
 * only what the program did not get (src/cli/supervise.c).
 *
 * Only FIL_SIG_WATCHED signals are wrapped; every other call goes straight
 * to glibc's __sigaction. For a watched signal given a handler, the kernel
 * gets the trampoline (SA_SIGINFO added, the program's mask and other flags
 * kept) and the program's action is kept here; a query returns the
 * program's action whenever the kernel holds the trampoline, else the
 * kernel's own (SIG_DFL after SA_RESETHAND fired, or a handler installed
 * behind our back). SIG_DFL and SIG_IGN go to the kernel unchanged. exec
 * resets handled signals to SIG_DFL, so nothing of this survives it; a fork
 * child keeps the trampoline, which then notes nothing (fil_active is 0
 * there) and only calls the handler.
 *
 * SIGNAL-SAFE FILE. The trampoline is async-signal-safe: two atomic loads
 * under a sequence counter, one atomic add and plain stores into the mapped
 * header, clock_gettime, then getppid and kill to wake the supervisor
 * (FIL_SIG_NOTED); errno is preserved. Table updates hold a spinlock
 * with every signal blocked in the updating thread, so a handler can never
 * spin on a lock its own thread holds, and sigaction itself stays as
 * async-signal-safe as glibc's.
 * Allowed calls: __sigaction (glibc's sigaction), pthread_sigmask,
 * sigfillset, sigemptyset, sigaddset, clock_gettime, memset, getppid, kill.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/runtime.h"
#include "fil/state_writer.h"
#include "sigview.h"

extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

/* The program's action for one watched signal. `handler` and `flags` are
 * what the trampoline reads, under `seq` (odd while being written); `act`
 * is the whole action for queries, read and written under table_lock. */
typedef struct prog_action {
    unsigned seq;
    void *handler; /* sa_handler or sa_sigaction */
    int flags;     /* the program's sa_flags */
    struct sigaction act;
} prog_action_t;

static prog_action_t prog[NSIG];
static int table_lock; /* 0 free, 1 held; taken with every signal blocked */

static int watched(int sig) { return sig > 0 && sig < NSIG && FIL_SIG_WATCHED(sig); }

static int is_handler(void (*h)(int)) { return h != SIG_DFL && h != SIG_IGN && h != SIG_ERR; }

/* Note one delivery in the state's ring. SIGNAL CONTEXT: atomics, stores. */
static void note(int sig, const siginfo_t *si) {
    if (!fil_state || !__atomic_load_n(&fil_active, __ATOMIC_ACQUIRE))
        return; /* no state, or a fork child: the ring is the parent's */
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
        /* the program may unwind and free before dying of it: the tracker
         * keeps what is held now (fil_stop_pending) */
        __atomic_store_n(&fil_state->stop_signal, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&fil_stop_pending, sig, __ATOMIC_RELEASE);
    }
    fil_sig_log_t *g = &fil_state->signals;
    uint32_t n = __atomic_add_fetch(&g->next, 1, __ATOMIC_ACQ_REL);
    fil_sig_event_t *e = &g->ev[n % FIL_SIG_RING];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    __atomic_store_n(&e->seq, 0, __ATOMIC_RELEASE);
    e->sig = sig;
    e->code = si ? si->si_code : 0;
    e->pid = si && si->si_code <= 0 ? (int32_t)si->si_pid : 0;
    e->t_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    __atomic_store_n(&e->seq, n ? n : 1, __ATOMIC_RELEASE);
    int owner = fil_state_owner();
    if (owner > 1 && getppid() == owner)
        kill(owner, FIL_SIG_NOTED); /* look at it now (src/cli/forward.c) */
}

void fil_sigview_taken(int sig, const siginfo_t *si) {
    if (watched(sig))
        note(sig, si);
}

/* The kernel's handler for a watched signal the program handles: note the
 * delivery, then call the program's handler as it asked to be called.
 * SIGNAL CONTEXT. */
static void trampoline(int sig, siginfo_t *si, void *uc) {
    int saved = errno;
    prog_action_t *p = &prog[sig];
    void *handler;
    int flags;
    unsigned s;
    note(sig, si);
    do {
        while ((s = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE)) & 1)
            ;
        handler = __atomic_load_n(&p->handler, __ATOMIC_RELAXED);
        flags = __atomic_load_n(&p->flags, __ATOMIC_RELAXED);
    } while (__atomic_load_n(&p->seq, __ATOMIC_ACQUIRE) != s);
    errno = saved;
    if (flags & SA_SIGINFO)
        ((void (*)(int, siginfo_t *, void *))handler)(sig, si, uc);
    else if (is_handler((void (*)(int))handler))
        ((void (*)(int))handler)(sig);
}

/* Take the table lock with every signal blocked; *saved gets the mask. */
static void lock_table(sigset_t *saved) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, saved);
    while (__atomic_exchange_n(&table_lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static void unlock_table(const sigset_t *saved) {
    __atomic_store_n(&table_lock, 0, __ATOMIC_RELEASE);
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* fork() while another thread updates the table would leave the child with
 * the lock held for good: fork takes it first (sigview_fork.c registers
 * these) and both sides release it. fork_mask: the forking thread's mask. */
static sigset_t fork_mask;

void fil_sigview_fork_prepare(void) { lock_table(&fork_mask); }

void fil_sigview_fork_release(void) { unlock_table(&fork_mask); }

/* Record act as the program's action for sig (the trampoline's view first
 * of all). Context: table lock held. */
static void store(int sig, const struct sigaction *act) {
    prog_action_t *p = &prog[sig];
    __atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&p->handler, (void *)act->sa_handler, __ATOMIC_RELAXED);
    __atomic_store_n(&p->flags, act->sa_flags, __ATOMIC_RELAXED);
    __atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELEASE);
    FIL_ASSERT(!(p->seq & 1)); /* readers see a finished write */
    p->act = *act;
}

/* Install act for a watched sig: a handler goes in behind the trampoline.
 * 0, or -1 with errno (the table as it was). Context: table lock held. */
static int install(int sig, const struct sigaction *act) {
    if (!is_handler(act->sa_handler))
        return __sigaction(sig, act, NULL);
    struct sigaction k = *act, before = prog[sig].act;
    k.sa_flags |= SA_SIGINFO;
    k.sa_sigaction = trampoline;
    store(sig, act);
    int r = __sigaction(sig, &k, NULL);
    if (r != 0) {
        int e = errno;
        store(sig, &before);
        errno = e;
    }
    return r;
}

/* sigaction(2) as the program sees it. Context: any thread; async-signal-
 * safe like the real one (the lock is taken with signals blocked). */
FIL_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!watched(sig))
        return __sigaction(sig, act, old);
    sigset_t saved;
    struct sigaction kern, view;
    lock_table(&saved);
    int r = __sigaction(sig, NULL, &kern);
    if (r == 0) {
        view = kern.sa_sigaction == trampoline ? prog[sig].act : kern;
        if (act)
            r = install(sig, act);
    }
    int e = errno;
    unlock_table(&saved);
    if (r == 0 && old)
        *old = view;
    errno = e;
    return r;
}

/* BSD signal(): the handler stays installed, the signal is blocked while it
 * runs, interrupted system calls restart; as glibc's, through sigaction()
 * above. The previous handler, or SIG_ERR. Context: any thread. */
static void (*bsd(int sig, void (*h)(int)))(int) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = h;
    sigemptyset(&act.sa_mask);
    if (sig <= 0 || sig >= NSIG || sigaddset(&act.sa_mask, sig) != 0) {
        errno = EINVAL;
        return SIG_ERR;
    }
    act.sa_flags = SA_RESTART;
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

FIL_API void (*signal(int sig, void (*h)(int)))(int) { return bsd(sig, h); }

FIL_API void (*bsd_signal(int sig, void (*h)(int)))(int) { return bsd(sig, h); }
