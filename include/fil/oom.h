/* SPDX-License-Identifier: MIT */
/*
 * fil/oom.h - out-of-memory forensics: limits, emergency arena, detection,
 * the one-shot dump, crash handlers.
 */
#ifndef FIL_OOM_H
#define FIL_OOM_H

#include <stddef.h>
#include <stdint.h>

#include "fil/common.h"

/* Read limits, reserve the arena (resident when memory is short, oom.c),
 * set the first budget; child: a process the program started (its lines,
 * --verbose's first, say its pid). 0, or -1 (detection off; tracking
 * still works). Context: startup, after the state and tracker exist. */
int fil_oom_init(int child);

/* Warm the unwinder up (its lazy set-up, a pipe among it, happens now and
 * not in a dump), once the process is sure to be tracked.
 * Context: startup, after fil_oom_init. */
void fil_oom_warm_up(void);

/* The process will not be tracked after all (its launcher refused it):
 * give back what fil_oom_init took, the arena and the stderr copy.
 * Context: startup, after fil_oom_init, before tracking. */
void fil_oom_abandon(void);

/* This process is a child the program started (src/interpose/children.c):
 * its dumps go to dir (display: the same as the user would type it) and
 * its stderr lines say its pid; forked: re-fault the inherited arena if it
 * is resident.
 * Context: start-up or fork child, single-threaded. */
void fil_oom_child(const char *dir, const char *display, int forked);

/* Bytes the predictive check allows before the next refresh (all threads). */
extern int64_t fil_oom_budget;

/* Call stacks the emergency arena is sized for (written under the lock by
 * oom.c when it grows the arena). */
extern uint32_t fil_oom_arena_nodes;

/* This thread's allowance, taken from fil_oom_budget in slices so that the
 * common case is a thread-local subtraction, not an atomic one. */
extern __thread int64_t fil_oom_local __attribute__((tls_model("initial-exec")));

/* The state now holds `nodes` call stacks. When that reaches what the arena
 * was sized for, the budget is zeroed, and so is this thread's allowance
 * (it is the thread making the new call stacks: a deep recursion makes one
 * per level, and its small allocations would otherwise be paid from the
 * allowance's slice, up to 1 MiB of them, before anything looked at the
 * budget), so its next allocation takes the slow path, which grows the
 * arena while memory is still plentiful. Context: lock held (interning a
 * new node); one comparison. */
static inline void fil_oom_nodes_grew(uint64_t nodes) {
    if (FIL_UNLIKELY(nodes >= fil_oom_arena_nodes)) {
        __atomic_store_n(&fil_oom_budget, 0, __ATOMIC_RELAXED);
        fil_oom_local = 0;
    }
}

/* Slow path of the predictive check: refresh limits; dump and exit (or, with
 * --on-oom=continue, return -1 so the wrapper fails the request) if the
 * request would leave less than the safety margin. 0 to go ahead.
 * Context: any thread, reentrancy-guarded, no lock held. */
int fil_oom_check(const char *fn, size_t size);

/* The thread's allowance ran out (or size is large): take a new slice from
 * the global budget, or run fil_oom_check. 0 to go ahead. */
int fil_oom_refill(const char *fn, size_t size);

/* The thread's allowance covers size (now spent from it): 1, or 0 when
 * fil_oom_refill must decide. No system call, no atomic operation. */
static inline int fil_oom_fits(size_t size) {
    return FIL_LIKELY(size < (UINT64_C(1) << 20) && (fil_oom_local -= (int64_t)size) >= 0);
}

/* Fast path: 0 to go ahead. */
static inline int fil_oom_precheck(const char *fn, size_t size) {
    return fil_oom_fits(size) ? 0 : fil_oom_refill(fn, size);
}

/* An allocator returned NULL / ENOMEM for size bytes: dump (once) and exit
 * 53, or return with --on-oom=continue. Context: any thread, guarded, no lock. */
void fil_oom_failed(const char *fn, size_t size);

/* Install the crash handlers (after the interpreter's own signal set-up,
 * so that it still reports SIG_DFL for them). Context: start of profiling. */
void fil_oom_install_late(void);

/* A thread the program started begins: give it an alternate signal stack
 * for the crash handlers (once they are installed), taken back when it
 * ends. Context: the new thread, before its own code; guard set. */
void fil_oom_thread_start(void);

/* 1 if an mmap of len bytes with these flags and prot (or an mremap growth
 * of len bytes: flags 0, PROT_WRITE) that just failed with ENOMEM failed for
 * lack of memory under RLIMIT_AS, RLIMIT_DATA or the overcommit accounting;
 * 0 for every other reason (empty huge-page pool, vm.max_map_count, an
 * address that cannot be honoured), which is not an out-of-memory condition.
 * Context: any thread, guarded, no lock held (exhausted.c). */
int fil_oom_mapping_exhausted(size_t len, int flags, int prot);

/* Memory grew (more call stacks): make the arena big enough while memory is
 * still plentiful. Context: any thread, guarded, no lock held. */
void fil_oom_grow_arena(void);

/*
 * fil_oom_rearm - a program that goes on after running out of memory (a
 * notebook kernel) makes the next out of memory dump again: from now on
 * out-of-memory lets the allocation fail (as --on-oom=continue), and the
 * next dump writes into dir (created by the dump if missing; its parent
 * must exist). Once a dump is complete, its record in the state header is
 * cleared. 0, or -1 (and nothing changed) while a dump is being written.
 * Context: any thread, guard set, not in signal context.
 */
int fil_oom_rearm(const char *dir);

/* Dumps completed in this process (each re-arming allows one more). */
uint32_t fil_oom_dump_count(void);

/* 1 while the calling thread is writing a dump (the malloc wrapper aborts if
 * called then: the dump must not allocate). */
int fil_oom_dumping_here(void);

#endif
