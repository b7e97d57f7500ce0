/* SPDX-License-Identifier: MIT */
/*
 * forward.c - passing a signal the supervisor received on to the program,
 * exactly once.
 *
 * The supervisor and the program share a process group, so a signal sent
 * to the group (the terminal's Ctrl-C, `kill -INT -- -PGID`, `timeout`)
 * reaches both, while one sent to the supervisor's pid alone (`kill PID`,
 * `docker stop`) reaches only the supervisor. siginfo names the sender, not
 * the target, so the supervisor looks at the program instead, in this order:
 *   1. a delivery the program's handler noted (src/interpose/sigview.c: the
 *      state's ring holds signal, si_code, sender and time), with the same
 *      signal, code and sender, at most a second old and not matched
 *      before: the program got it; it is claimed so it matches only once;
 *   2. the signal pending in the program (/proc/<pid>/status SigPnd or
 *      ShdPnd): it will get it, or has it blocked and a second one would
 *      merge with it; the supervisor waits for the note up to PENDING_WAIT
 *      to claim it;
 *   3. the program does not catch it (SIG_DFL or SIG_IGN, SigCgt) and
 *      does not block it (SigBlk): it is forwarded at once, since a second
 *      delivery then changes nothing;
 *   4. otherwise (a handler, or blocked: a program that takes it with
 *      sigwait notes it too, src/interpose/sigwait.c) the note has up to
 *      GRACE to appear (the program may just not have been scheduled
 *      yet); if it does not, the signal was the supervisor's alone and is
 *      forwarded. It is forwarded at once when no copy can be on its way:
 *      the sender's kill(2) has returned (see below; a sender we cannot
 *      look at, as `docker stop`'s outside our pid namespace: once the
 *      signal is SETTLE old), and then the signal is not pending in the
 *      program, no thread of the program is running (one that took it
 *      runs until its handler noted it) and there is still no note
 *      (`kill LAUNCHER` while the program sleeps or waits: a quarter of a
 *      second late before).
 * A note is matched once; and a note no signal of ours matches was a signal
 * sent to the program alone (`kill PROGRAM_PID`). The program's side wakes
 * the supervisor after each note (FIL_SIG_NOTED), and the supervisor sweeps
 * the ring then and every 2 ms while a note is unsettled (every 20 ms
 * otherwise: supervise.c; fil_cli_forward_sweep). A note found while that
 * signal is not pending for the supervisor is claimed as the program's
 * alone once no copy of ours can still be on its way:
 *   - it was sent to one process or thread (sigqueue, tgkill: si_code
 *     SI_QUEUE, SI_TKILL), or
 *   - its sender's kill(2) has returned: no thread of the sender is
 *     running (kill(2) never sleeps, so a sender that sleeps, has stopped
 *     or is gone has queued every copy), or the sender is us (a signal we
 *     forwarded), or
 *   - it is SETTLE old (the sender is still running, or the kernel sent it
 *     with no sender: a terminal's Ctrl-C).
 * A signal sent to the group is queued to each member by the same kill(2),
 * microseconds apart on bare metal; on a busy virtual machine the sender's
 * CPU can stall in between, long enough for the program to note it and the
 * supervisor to sweep (claiming at once counted 1 group signal in 20 twice).
 * Without the sweep, `kill -USR2 PROGRAM; kill -USR2 SUPERVISOR` within a
 * second took the first note for the second signal's delivery.
 * A signal the program itself sent (to its parent, or to its own group) is
 * never forwarded. Without a usable ring (the program replaced its image
 * with exec: it no longer maps the state), the terminal's SIGINT/SIGQUIT
 * are taken as delivered to the group and everything else is forwarded
 * after the grace, as before the ring existed.
 *
 * Supervisor only, never signal context (the signals are read from a
 * signalfd): stdio and sleeping are fine.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fil/state.h"

_Static_assert(sizeof(((fil_cli_forward_t *)0)->claimed) / sizeof(uint32_t) == FIL_SIG_RING &&
                   sizeof(((fil_cli_forward_t *)0)->alone) / sizeof(uint32_t) == FIL_SIG_RING,
               "one claim per ring slot");

#define SEC UINT64_C(1000000000)
#define GRACE (SEC / 4)        /* for the note of a caught, not pending signal */
#define PENDING_WAIT (2 * SEC) /* for the note of a pending one */
#define SETTLE (SEC / 50)      /* a note this old, our copy not pending: the program's alone */
#define LATE_COPY (SEC / 10)   /* after the death: how late our copy of a group signal may be */

/* What /proc/<pid>/status says about one signal. */
typedef struct sigstate {
    int ok;      /* the file was read */
    int pending; /* in SigPnd or ShdPnd */
    int caught;  /* in SigCgt: a handler is installed */
    int blocked; /* in SigBlk: it may be taken with sigwait */
} sigstate_t;

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* See cli.h. Context: supervisor. */
void fil_cli_forward_init(fil_cli_forward_t *f, pid_t pid, int state_fd)
{
    memset(f, 0, sizeof *f);
    f->pid = pid;
    f->state_fd = state_fd;
}

/* See cli.h. Context: supervisor. */
void fil_cli_forward_end(fil_cli_forward_t *f)
{
    if (f->h)
        munmap((void *)f->h, FIL_STATE_HEADER_SIZE);
    f->h = NULL;
}

/* 1 if pid still maps the state file fd (its image is the profiled one:
 * an exec unmaps it, and the new image notes nothing here; a re-exec'd
 * interpreter profiled as a child of its own maps another fil-state,
 * told apart by its inode). */
static int maps_state(pid_t pid, int fd)
{
    char path[64], line[512];
    int found = 0;
    struct stat st;
    FILE *fp;

    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    if (fstat(fd, &st) != 0 || !(fp = fopen(path, "re")))
        return 0;
    while (!found && fgets(line, sizeof line, fp)) {
        unsigned long long ino = 0;
        found = strstr(line, "/memfd:fil-state") != NULL &&
                sscanf(line, "%*s %*s %*s %*s %llu", &ino) == 1 &&
                ino == (unsigned long long)st.st_ino;
    }
    fclose(fp);
    return found;
}

/* The state's header, mapped read-only once the program has sized it and
 * published it (magic, our child's pid), while the program's image is the
 * profiled one; NULL otherwise. */
static const fil_state_header_t *header(fil_cli_forward_t *f)
{
    struct stat st;
    void *p;

    if (!f->h && fstat(f->state_fd, &st) == 0 && st.st_size >= (off_t)FIL_STATE_HEADER_SIZE &&
        (p = mmap(NULL, FIL_STATE_HEADER_SIZE, PROT_READ, MAP_SHARED, f->state_fd, 0)) !=
            MAP_FAILED)
        f->h = p;
    if (!f->h || __atomic_load_n(&f->h->magic, __ATOMIC_ACQUIRE) != FIL_STATE_MAGIC ||
        f->h->pid != f->pid || !maps_state(f->pid, f->state_fd))
        return NULL;
    return f->h;
}

/* The sender as the program's note records it: only user-sent signals
 * (si_code <= 0) have one. */
static int32_t sender(const struct signalfd_siginfo *si)
{
    return si->ssi_code <= 0 ? (int32_t)si->ssi_pid : 0;
}

/* Ring slot k's note into *copy if it is complete: its sequence number,
 * else 0. */
static uint32_t complete(const fil_state_header_t *h, uint32_t k, fil_sig_event_t *copy)
{
    const fil_sig_event_t *e = &h->signals.ev[k];
    uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);

    *copy = *e;
    return seq != 0 && __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) == seq ? seq : 0;
}

/* complete(), for a note not claimed yet. */
static uint32_t unclaimed(const fil_cli_forward_t *f, const fil_state_header_t *h, uint32_t k,
                          fil_sig_event_t *copy)
{
    uint32_t seq = complete(h, k, copy);

    return seq != 0 && f->claimed[k] != seq ? seq : 0;
}

/*
 * 1 if the program's ring holds a note of si no older than `since` that is
 * unclaimed (it is claimed), or with `alone`, one a sweep claimed as sent
 * to the program alone (it matches once more: see fil_cli_forward_was_childs).
 * 0 if not, -1 without a ring.
 */
static int noted(fil_cli_forward_t *f, const struct signalfd_siginfo *si, uint64_t since, int alone)
{
    const fil_state_header_t *h = header(f);

    if (!h)
        return -1;
    for (uint32_t k = 0; k < FIL_SIG_RING; k++) {
        fil_sig_event_t copy;
        uint32_t seq = alone ? complete(h, k, &copy) : unclaimed(f, h, k, &copy);
        if (seq == 0 || (alone && f->alone[k] != seq))
            continue;
        if (copy.sig == (int32_t)si->ssi_signo && copy.code == si->ssi_code &&
            copy.pid == sender(si) && copy.t_ns >= since) {
            FIL_ASSERT(alone || f->claimed[k] != seq); /* a note matches once */
            if (alone)
                f->alone[k] = 0;
            else
                f->claimed[k] = seq;
            return 1;
        }
    }
    return 0;
}

/* Whether bit sig is set in the hex mask at p. */
static int mask_has(const char *p, int sig)
{
    uint64_t m = 0;

    sscanf(p, "%" SCNx64, &m);
    return sig > 0 && sig <= 64 && ((m >> (sig - 1)) & 1);
}

/* Read pid's pending and caught state for sig. */
static void child_sigstate(pid_t pid, int sig, sigstate_t *st)
{
    char path[64], line[256];
    FILE *fp;

    memset(st, 0, sizeof *st);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(fp = fopen(path, "re")))
        return;
    while (fgets(line, sizeof line, fp)) {
        if (!strncmp(line, "SigPnd:", 7) || !strncmp(line, "ShdPnd:", 7))
            st->pending |= mask_has(line + 7, sig);
        else if (!strncmp(line, "SigBlk:", 7))
            st->blocked = mask_has(line + 7, sig);
        else if (!strncmp(line, "SigCgt:", 7))
            st->caught = mask_has(line + 7, sig), st->ok = 1;
    }
    fclose(fp);
}

static int may_be_sending(int32_t pid);

/* 1 if the program got si (or surely will), 0 if it must be forwarded. */
static int program_got(fil_cli_forward_t *f, const struct signalfd_siginfo *si)
{
    uint64_t t0 = mono_ns(), since = t0 > SEC ? t0 - SEC : 0;
    int sig = (int)si->ssi_signo;
    struct timespec ms = {0, 1000000};

    for (;;) {
        /* read first: every copy is queued (a sender we cannot look at, the
         * kernel's or one outside our pid namespace: once it is SETTLE old) */
        int sent = mono_ns() - t0 >= SETTLE || !may_be_sending(sender(si));
        int n = noted(f, si, since, 0);
        sigstate_t st;
        if (n > 0)
            return 1;
        child_sigstate(f->pid, sig, &st);
        uint64_t waited = mono_ns() - t0;
        if (!st.ok || (!st.caught && (!st.blocked || st.pending)))
            return st.ok && st.pending; /* not caught: a second one changes nothing */
        /* The sender's kill(2) had returned, so a copy for the program was
         * queued by then: it is still pending, or a thread of the program
         * took it and is running until its handler notes it (the
         * trampoline notes before anything else), or noted. None of the
         * three, looked at in that order: no copy, the signal was ours. */
        if (n == 0 && sent && !st.pending && !may_be_sending(f->pid))
            return noted(f, si, since, 0) > 0;
        if (n < 0 && si->ssi_code > 0 && (sig == SIGINT || sig == SIGQUIT) &&
            getpgid(f->pid) == getpgrp())
            return 1; /* no ring: the terminal signalled the whole group */
        if (waited > (st.pending ? PENDING_WAIT : GRACE))
            return st.pending; /* pending all along: blocked, it would merge */
        nanosleep(&ms, NULL);
    }
}

/* 1 if a kill(2) by pid may still be queueing copies: a thread of it is
 * running, or there is no sender to look at (pid 0: the kernel, or a
 * sender outside our pid namespace). 0 once none runs: it sleeps, has
 * stopped, or is gone; or it is us (a signal we forwarded). */
static int may_be_sending(int32_t pid)
{
    char path[64];
    struct dirent *d;
    int running = 0;
    DIR *dir;

    if (pid <= 0)
        return 1;
    if (pid == (int32_t)getpid())
        return 0; /* we forwarded it: our kill(2) has returned */
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    if (!(dir = opendir(path))) /* gone: its kill(2) ended with it; hidden (hidepid): unknown */
        return !(errno == ENOENT && kill((pid_t)pid, 0) != 0 && errno == ESRCH);
    while (!running && (d = readdir(dir))) {
        char stat[64], line[512];
        const char *paren;
        FILE *fp;
        if (d->d_name[0] == '.' ||
            snprintf(stat, sizeof stat, "%s/%s/stat", path, d->d_name) >= (int)sizeof stat ||
            !(fp = fopen(stat, "re")))
            continue;
        if (fgets(line, sizeof line, fp) && (paren = strrchr(line, ')')) && paren[1] == ' ')
            running = paren[2] == 'R';
        else
            running = 1; /* a name that fills the line: cannot tell */
        fclose(fp);
    }
    closedir(dir);
    return running;
}

/* 1 if no copy of the signal noted in e can still be on its way to us (the
 * top comment). */
static int settled(const fil_sig_event_t *e, uint64_t now)
{
    return e->code == SI_QUEUE || e->code == SI_TKILL || e->t_ns + SETTLE <= now ||
           !may_be_sending(e->pid);
}

/* See cli.h (and the top comment): 1 if a note is left to look at again
 * soon. Context: supervisor, between signals. */
int fil_cli_forward_sweep(fil_cli_forward_t *f)
{
    const fil_state_header_t *h = f->h ? f->h : header(f);
    int unsettled = 0;

    if (!h || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != FIL_STATE_MAGIC || h->pid != f->pid)
        return 0;
    uint32_t next = __atomic_load_n(&h->signals.next, __ATOMIC_ACQUIRE);
    if (next == f->swept_next && !f->unsettled)
        return 0; /* nothing new since the last sweep */
    for (uint32_t k = 0; k < FIL_SIG_RING; k++) {
        fil_sig_event_t copy;
        sigset_t pend;
        uint32_t seq = unclaimed(f, h, k, &copy);
        if (seq == 0)
            continue;
        if (copy.sig <= 0 || copy.sig >= NSIG) {
            f->claimed[k] = seq; /* not a signal: nothing will match it */
            continue;
        }
        /* Settled first, pending after: a sender whose kill(2) returned
         * between the two would have queued our copy unseen. */
        if (!settled(&copy, mono_ns()) || sigpending(&pend) != 0 ||
            sigismember(&pend, copy.sig) == 1) {
            unsettled = 1; /* ours may be on its way, or is here: look again soon */
            continue;
        }
        f->claimed[k] = f->alone[k] = seq; /* sent to the program alone */
    }
    f->swept_next = next;
    f->unsettled = unsettled;
    return unsettled;
}

/* See cli.h. Context: supervisor. */
int fil_cli_forward_usr2_ready(fil_cli_forward_t *f)
{
    const fil_state_header_t *h = header(f);

    return h && __atomic_load_n(&h->usr2_ready, __ATOMIC_ACQUIRE);
}

/* See cli.h. */
uint32_t fil_cli_forward_usr2_requests(fil_cli_forward_t *f)
{
    const fil_state_header_t *h = header(f);

    return h ? __atomic_load_n(&h->usr2_requests, __ATOMIC_ACQUIRE) : 0;
}

/* See cli.h. Context: supervisor, the child not yet reaped. */
void fil_cli_forward(fil_cli_forward_t *f, const struct signalfd_siginfo *si)
{
    if (si->ssi_code <= 0 && (pid_t)si->ssi_pid == f->pid)
        return; /* the program signalled its parent, or its own group */
    if (!program_got(f, si))
        kill(f->pid, (int)si->ssi_signo);
}

/* See cli.h. Context: supervisor, the child exited but not yet reaped. A
 * signal of ours the program took just before it ended is not a stop of
 * the render (the launcher died of a group SIGINT the program had taken
 * with sigwaitinfo and exited on), so a note claimed as the program's alone
 * also counts for LATE_COPY after it was made: kill(2) of a group queues
 * the signal to one member after the other, microseconds apart, unless the
 * sender's CPU stalls in between (a busy virtual machine), and the program
 * may then have noted it, and woken a sweep that claimed the note as its
 * alone, before our copy was pending. */
int fil_cli_forward_was_childs(fil_cli_forward_t *f, const struct signalfd_siginfo *si,
                               int death_signal)
{
    uint64_t now = mono_ns();

    return death_signal == (int)si->ssi_signo ||
           (si->ssi_code <= 0 && (pid_t)si->ssi_pid == f->pid) ||
           noted(f, si, now > SEC ? now - SEC : 0, 0) > 0 ||
           noted(f, si, now > LATE_COPY ? now - LATE_COPY : 0, 1) > 0;
}
