/* SPDX-License-Identifier: MIT */
/*
 * test_forward.c - unit tests of the launcher's signal bookkeeping
 * (src/cli/forward.c): whether a signal the launcher reads once the
 * program has ended was the program's, from the notes in the program's
 * signal ring.
 *
 * Design: forward.c is included directly (src/cli is not in libfilcore).
 * The "program" is this process: a memfd named fil-state, mapped here so
 * that /proc/self/maps shows it, holds a header with our pid and the ring,
 * written as the program's trampoline writes it. The signals are made-up
 * signalfd records; nothing is sent.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "../../src/cli/forward.c"

#include "check.h"

static fil_state_header_t *hdr;
static int state_fd = -1;

/* A state memfd with our pid, mapped read-write here. */
static void make_state(void)
{
    state_fd = (int)syscall(SYS_memfd_create, "fil-state", MFD_CLOEXEC);
    if (state_fd < 0 || ftruncate(state_fd, FIL_STATE_HEADER_SIZE) != 0)
        abort();
    hdr = mmap(NULL, FIL_STATE_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
    if (hdr == MAP_FAILED)
        abort();
    hdr->pid = (int32_t)getpid();
    hdr->magic = FIL_STATE_MAGIC;
}

/* A fresh supervisor's view of an empty ring, for the next test. */
static void start(fil_cli_forward_t *f)
{
    memset(&hdr->signals, 0, sizeof hdr->signals);
    fil_cli_forward_init(f, getpid(), state_fd);
}

/* Note a delivery of sig from sender, made `ago` ns before now. */
static void note(int sig, int32_t sender, uint64_t ago)
{
    uint32_t n = ++hdr->signals.next;
    fil_sig_event_t *e = &hdr->signals.ev[n % FIL_SIG_RING];
    e->sig = sig;
    e->code = SI_USER;
    e->pid = sender;
    e->t_ns = mono_ns() - ago;
    __atomic_store_n(&e->seq, n, __ATOMIC_RELEASE);
}

/* The signalfd record of sig sent by kill(2) from sender. */
static struct signalfd_siginfo sent(int sig, int32_t sender)
{
    struct signalfd_siginfo si;
    memset(&si, 0, sizeof si);
    si.ssi_signo = (uint32_t)sig;
    si.ssi_code = SI_USER;
    si.ssi_pid = (uint32_t)sender;
    return si;
}

/* A group signal the program noted and a sweep claimed as its alone
 * before our copy was pending (the sender stalled between the two): our
 * copy, read once the program has ended, was the program's, once. */
static void test_late_copy_of_a_group_signal(void)
{
    fil_cli_forward_t f;
    struct signalfd_siginfo si = sent(SIGINT, 4242);
    start(&f);
    note(SIGINT, 4242, 2 * SETTLE);
    CHECK(fil_cli_forward_sweep(&f) == 0); /* SIGINT is not pending here: the program's alone */
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 1);
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 0); /* a second copy is ours */
    fil_cli_forward_end(&f);
}

/* A note claimed as the program's alone longer ago than LATE_COPY, or of
 * another sender or signal, leaves our signal ours: it stops the render. */
static void test_an_older_or_other_note_is_not_a_late_copy(void)
{
    fil_cli_forward_t f;
    struct signalfd_siginfo si = sent(SIGINT, 4242);
    start(&f);
    note(SIGINT, 4242, 3 * LATE_COPY);
    note(SIGINT, 777, 2 * SETTLE);
    note(SIGTERM, 4242, 2 * SETTLE);
    CHECK(fil_cli_forward_sweep(&f) == 0);
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 0);
    fil_cli_forward_end(&f);
}

/* A fresh note whose sender is still running (a child that spins: its
 * kill(2) may still be queueing our copy of a group signal) is left
 * unclaimed and looked at again soon: our copy, read then, matches it; once
 * SETTLE old it is claimed. */
static void test_a_running_senders_note_settles_first(void)
{
    fil_cli_forward_t f;
    pid_t spinner = fork();
    if (spinner == 0)
        for (;;)
            __asm__ volatile("" ::: "memory");
    int32_t spin = (int32_t)spinner;
    struct signalfd_siginfo si = sent(SIGTERM, spin);
    start(&f);
    uint64_t t0 = mono_ns();
    note(SIGTERM, spin, 0);
    int first = fil_cli_forward_sweep(&f), second = fil_cli_forward_sweep(&f);
    if (mono_ns() - t0 < SETTLE) { /* else this machine stalled past SETTLE: it settled */
        CHECK(first == 1);
        CHECK(second == 1); /* still unsettled: looked at again */
        CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 1);
    }
    f.claimed[hdr->signals.next % FIL_SIG_RING] = hdr->signals.next; /* matched either way */
    f.alone[hdr->signals.next % FIL_SIG_RING] = 0;
    note(SIGTERM, spin, 0);
    struct timespec wait = {0, (long)(2 * SETTLE)};
    nanosleep(&wait, NULL);
    CHECK(fil_cli_forward_sweep(&f) == 0);              /* settled: the program's alone */
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 1); /* once, as a late copy */
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 0);
    fil_cli_forward_end(&f);
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
}

/* A fresh note whose sender sleeps or is gone is claimed at once: its
 * kill(2) has returned, no copy of ours is on its way. So is one sent to
 * the program alone by its nature (sigqueue); one the kernel sent (no
 * sender) waits. */
static void test_a_finished_senders_note_is_claimed_at_once(void)
{
    fil_cli_forward_t f;
    int ready[2];
    char c;
    CHECK(pipe(ready) == 0);
    pid_t sleeper = fork();
    if (sleeper == 0) {
        close(ready[0]);
        (void)!write(ready[1], "x", 1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    for (int tries = 0; tries < 1000 && may_be_sending((int32_t)sleeper); tries++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL); /* until it sleeps in pause() */
    }
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    CHECK(waitpid(gone, NULL, 0) == gone);

    start(&f);
    note(SIGTERM, (int32_t)sleeper, 0);
    CHECK(fil_cli_forward_sweep(&f) == 0);
    note(SIGTERM, (int32_t)gone, 0);
    CHECK(fil_cli_forward_sweep(&f) == 0);
    uint64_t t0 = mono_ns();
    note(SIGINT, 0, 0);
    int kernel = fil_cli_forward_sweep(&f);
    if (mono_ns() - t0 < SETTLE)
        CHECK(kernel == 1); /* the kernel's: SETTLE first */
    fil_cli_forward_end(&f);

    pid_t spinner = fork(); /* a running sender: only the code settles its note */
    if (spinner == 0)
        for (;;)
            __asm__ volatile("" ::: "memory");
    start(&f);
    note(SIGTERM, (int32_t)spinner, 0);
    hdr->signals.ev[hdr->signals.next % FIL_SIG_RING].code = SI_QUEUE;
    CHECK(fil_cli_forward_sweep(&f) == 0);
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
    fil_cli_forward_end(&f);
    kill(sleeper, SIGKILL);
    waitpid(sleeper, NULL, 0);
}

/* An unclaimed note of the signal (our copy read before any sweep) was the
 * program's, as before. */
static void test_an_unclaimed_note_is_the_programs(void)
{
    fil_cli_forward_t f;
    struct signalfd_siginfo si = sent(SIGTERM, 4343);
    start(&f);
    note(SIGTERM, 4343, 0);
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 1);
    CHECK(fil_cli_forward_was_childs(&f, &si, 0) == 0);
    fil_cli_forward_end(&f);
}

int main(void)
{
    make_state();
    test_late_copy_of_a_group_signal();
    test_an_older_or_other_note_is_not_a_late_copy();
    test_an_unclaimed_note_is_the_programs();
    test_a_running_senders_note_settles_first();
    test_a_finished_senders_note_is_claimed_at_once();
    return check_summary("test_forward");
}
