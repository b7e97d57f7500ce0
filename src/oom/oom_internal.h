/* SPDX-License-Identifier: MIT */
/* oom_internal.h - what the files of the oom module share. */
#ifndef FIL_OOM_INTERNAL_H
#define FIL_OOM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sigsegv.h>

#include "fil/limits.h"
#include "fil/runtime.h"
#include "fil/state.h"

/* Test hook called inside the dump (FIL_TEST_MALLOC_IN_DUMP: it calls
 * malloc, which must abort). NULL in normal runs. */
extern void (*fil_oom_test_hook)(void);

/* Set at startup, read-only afterwards (except the arena, see oom.c). */
typedef struct fil_oom_config {
    char dir[4096];        /* result folder */
    char display_dir[4096];/* the same as the user would type it */
    int continue_mode;     /* --on-oom=continue */
    int detection;         /* predictive detection on */
    int verbose;
    int quiet; /* --quiet: the dump says nothing but errors */
    uint64_t margin;       /* safety margin for cgroup / system limits */
    uint64_t fail_after;   /* FIL_TEST_FAIL_AFTER: fail the Nth allocation (0: off) */
    int overcommit;        /* vm.overcommit_memory: 0 heuristic, 1 always, 2 never */
    uintptr_t self_lo, self_hi; /* text of libfilpreload.so, skipped in native stacks */
    int err_fd;            /* a high copy of the stderr the program started with, or -1 */
    uint64_t err_dev, err_ino; /* what it is, to know it again (fil_oom_stderr) */
    char who[32];          /* "[pid 1234] " in a child the program started, else "" */
} fil_oom_config_t;

/* Where the dump's lines go: the stderr the program started with (the
 * launcher's terminal or log), even if the program has since pointed fd 2
 * elsewhere (pytest's capture, a daemon's log); fd 2 if that copy is gone;
 * -1 if the program started with no stderr. SIGNAL CONTEXT: fstat only. */
int fil_oom_stderr(void);
/* Start a line of ours on fil_oom_stderr() in w (over buf): the prefix and
 * the process's "pid N: " when it is a child. SIGNAL CONTEXT. */
void fil_oom_line(fil_writer_t *w, char *buf, size_t len);

extern fil_oom_config_t fil_oom_cfg;

/* The emergency arena: pre-faulted private pages. Replaced (never shrunk)
 * under the lock while memory is plentiful; the dump uses whatever is
 * current. */
extern char *fil_oom_arena;
extern size_t fil_oom_arena_size;
/* 1 while size_arena may move the arena (mremap, under the lock, with
 * signals blocked); a dump that draws without the lock waits until it is 0
 * (dump.c), and size_arena does not move the arena once a dump is claimed
 * (fil_oom_dump_busy). */
extern int fil_oom_arena_moving;

/* 1 if a dump is claimed and not complete: it may be drawing in the arena,
 * perhaps without the lock. SIGNAL CONTEXT. */
int fil_oom_dump_busy(void);

/* A fork child's dump is armed: the parent's claim and its dumps are the
 * parent's. Context: fork child, single-threaded. */
void fil_oom_fork_rearm(void);

/* The one-shot dump (invariant 3). Fills the header's oom record, renders
 * the report from the live state with the arena, prints the headline.
 * kind/limit/room: the limit blamed and the headroom it had left; addr: the
 * faulting address the kernel reported, or NULL for a signal that was sent,
 * whose si_addr means nothing. Returns 1 if this call wrote the dump. A
 * thread that loses the race waits until the winner's dump is complete and
 * then never returns if the winner ends the process (exit 53 or its crash
 * signal), else returns 0 (--on-oom=continue: fail the request). -1 if there
 * is no dump to make or wait for: no state, a fork child (not tracking), or
 * the dumping thread itself crashed inside its dump. Context: any thread,
 * guarded, no lock held, or a crash handler. SIGNAL CONTEXT: arena only. */
int fil_oom_dump(fil_dump_reason_t reason, const char *fn, uint64_t request, uint32_t node,
                 int sig, const uint64_t *addr, fil_limit_kind_t kind, uint64_t limit,
                 uint64_t room);

/* Block the calling thread for good (another thread has dumped and will end
 * the process). SIGNAL CONTEXT. */
void fil_oom_wait_forever(void) __attribute__((noreturn));

/* 1 once the dump has been completed (and not re-armed since). */
int fil_oom_dumped(void);

/* Capture the calling thread's native stack into the header's oom record,
 * skipping the profiler's own frames. SIGNAL CONTEXT: no allocation. */
void fil_oom_capture_native(void);

/* Walk the calling thread's stack once, naming nothing: libunwind's lazy
 * set-up is done at startup. Context: startup. */
void fil_oom_warm_native(void);

/* Name of the function at vaddr (relative to the load address) in the ELF
 * file path, and the offset into it. 0, or -1. SIGNAL CONTEXT (elfsym.c). */
int fil_oom_elf_symbol(const char *path, uint64_t vaddr, char *name, size_t cap, uint64_t *off);

/* Install the crash handlers. 0, or -1. Context: startup. */
int fil_oom_install_crash_handlers(void);

/* The handlers (crash.c) and their alternate stack. SIGNAL CONTEXT. */
#define FIL_OOM_ALT_STACK (256 * 1024)
extern char fil_oom_alt_stack[FIL_OOM_ALT_STACK];
int fil_oom_on_fault(void *addr, int serious);
void fil_oom_on_segv(int sig, siginfo_t *si, void *uc);
/* libsigsegv's own SIGSEGV action, which fil_oom_on_segv hands real faults to. */
extern struct sigaction fil_oom_segv_prev;
/* The actions the program had for the crash signals when ours went in
 * (faulthandler's, with -X faulthandler), indexed by FIL_OOM_CRASH_SIGS:
 * after the dump the signal goes to it, as it would have without us. */
#define FIL_OOM_CRASH_SIGS {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}
#define FIL_OOM_NCRASH 5
extern struct sigaction fil_oom_crash_prior[FIL_OOM_NCRASH];
void fil_oom_on_overflow(int emergency, stackoverflow_context_t scp);
void fil_oom_on_signal(int sig, siginfo_t *si, void *uc);

/* Write a "=fil-profile= ..." line to stderr: a, then b and c (paths) with
 * their control characters as '?'. SIGNAL CONTEXT. */
void fil_oom_say(const char *a, const char *b, const char *c);

#endif
