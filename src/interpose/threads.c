/* SPDX-License-Identifier: MIT */
/*
 * threads.c - pthread_create and fork.
 *
 * A new thread inherits, as the root of its stacks, the node of the line
 * that created it: memory a C thread allocates is charged to the Python line
 * that started it, and a Python thread's frames hang below that line too.
 * It also gets an alternate signal stack for the crash handlers (oom).
 * A fork() child never writes into its parent's state: before fork returns
 * in it, it moves to a state of its own (children.c), or stops tracking.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/lock.h"
#include "fil/oom.h"
#include "fil/stacks.h"
#include "exec_internal.h"
#include "interpose_internal.h"

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef pid_t (*fork_fn)(void);

static create_fn real_create;
static fork_fn real_fork;

/* Resolve the next definitions (the allocators' too: interpose.c).
 * Context: constructor (dlsym may allocate; the guard is set so that
 * passes through untracked). */
void fil_interpose_resolve_alloc(void);

void fil_interpose_resolve(void) {
    fil_interpose_resolve_alloc();
    real_create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    real_fork = (fork_fn)dlsym(RTLD_NEXT, "fork");
    fil_exec_resolve();
}

typedef struct start {
    void *(*fn)(void *);
    void *arg;
    uint32_t base; /* node of the creating line */
} start_t;

static void *trampoline(void *p) {
    start_t s = *(start_t *)p;
    __libc_free(p);
    fil_guard = 1;
    fil_oom_thread_start(); /* an alternate stack: a crash here is dumped too */
    fil_guard = 0;
    fil_stacks_thread_base(s.base);
    return s.fn(s.arg);
}

FIL_API int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                           void *arg) {
    if (!real_create)
        fil_interpose_resolve();
    /* From now on the tracker's lock is really taken (see fil/lock.h). */
    __atomic_store_n(&fil_lock_needed, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&fil_active, __ATOMIC_RELAXED) || fil_guard)
        return real_create(t, attr, fn, arg);
    fil_guard = 1;
    start_t *s = __libc_malloc(sizeof *s); /* untracked: the profiler's own */
    if (s) {
        s->fn = fn;
        s->arg = arg;
        s->base = fil_stacks_current();
        if (s->base == 0)
            s->base = FIL_NONE;
    }
    fil_guard = 0;
    if (!s)
        return real_create(t, attr, fn, arg);
    int r = real_create(t, attr, trampoline, s);
    if (r != 0)
        __libc_free(s);
    return r;
}

/*
 * fork - the child is a process of its own: children.c moves it to a state
 * of its own (or stops it tracking) before fork returns in it. The lock is
 * held across the real fork so that the child inherits the tracker's and
 * the interning tables between two sections, never half-updated by another
 * thread; the guard is set meanwhile, so what the fork handlers allocate
 * passes through untracked (and never asks for the lock we hold).
 * Context: any thread.
 */
FIL_API pid_t fork(void) {
    if (!real_fork)
        fil_interpose_resolve();
    int g = fil_guard, tracked = __atomic_load_n(&fil_active, __ATOMIC_ACQUIRE) && !g;
    fil_guard = 1;
    pid_t self = getpid(); /* the child's parent, even once it has exited */
    if (tracked)
        fil_lock();
    pid_t pid = real_fork();
    if (tracked)
        fil_unlock(); /* in the child too: its copy of the lock is ours */
    if (pid == 0)
        fil_children_forked(self);
    fil_guard = g;
    return pid;
}
