/* SPDX-License-Identifier: MIT */
/*
 * fil/runtime.h - the process-wide flags that several modules read.
 *
 * These flags are the only state shared by the allocator wrappers
 * (src/interpose), the tracker, the stack resolver and the out-of-memory
 * dump, so they have one owner (src/runtime/runtime.c, part of the core
 * library) and this one header, which includes nothing of the profiler's
 * own: every module can include it without an include circle.
 *
 * Thread-local flags use the initial-exec TLS model: the preload library is
 * loaded at start-up, so its TLS block is static and reading a flag never
 * calls malloc (a dynamic TLS access may allocate on first use).
 */
#ifndef FIL_RUNTIME_H
#define FIL_RUNTIME_H

#include <stdint.h>

/* 1 while this thread is inside the profiler (or must not be tracked): its
 * allocations pass straight through untracked (invariant 1). Written only by
 * the thread itself. */
extern __thread int fil_guard __attribute__((tls_model("initial-exec")));

/* 1 while this thread writes an out-of-memory or crash dump: the allocator
 * wrappers abort if such a thread calls them (invariant 2). Written only by
 * the thread itself. */
extern __thread int fil_in_dump __attribute__((tls_model("initial-exec")));

/* The node this thread's latest tracked allocation was charged to (0:
 * none yet). Stored by fil_stacks_current; read by the crash handler, which
 * cannot resolve the stack itself (signal context), to show where in the
 * Python code the crashing thread last allocated. Written only by the
 * thread itself. */
extern __thread uint32_t fil_last_node __attribute__((tls_model("initial-exec")));

/* 1 while allocations are tracked in this process: set by the preload
 * constructor once the state is mapped, cleared in a fork child that does
 * not track and when the state cannot be used. Atomic loads and stores. */
extern int fil_active;

/* The storage of the process's one lock (see fil/lock.h): 0 free, 1 held;
 * and 1 once the process may have more than one thread (never reset). */
extern int fil_lock_word;
extern int fil_lock_needed;
/* This thread's role for the lock: 0 not known yet, 1 the owner (the one
 * thread that may skip the lock while fil_lock_needed is 0), -1 foreign.
 * Written only by the thread itself. */
extern __thread int fil_lock_role __attribute__((tls_model("initial-exec")));
/* 1 while the owner is in a section it entered without the lock; written
 * only by the owner, read by a foreign thread's first section. */
extern int fil_owner_busy;

/* A stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) reached a handler of
 * the program: its number, until the tracker has copied the bytes held at
 * that moment into the state's stop[] (before the first decrease after
 * it: a program that unwinds before dying frees what it held). Stored by
 * the signal trampoline (src/interpose/sigview.c), taken by the tracker
 * under its lock. Atomic loads and stores. */
extern int fil_stop_pending;

/* 1 if allocations are being tracked now. Any context. */
static inline int fil_runtime_active(void) {
    return __atomic_load_n(&fil_active, __ATOMIC_ACQUIRE);
}

#endif
