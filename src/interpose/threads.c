/* SPDX-License-Identifier: MIT */
/*
 * threads.c - pthread_create and fork.
 *
 * A new thread inherits, as the root of its stacks, the node of the line
 * that created it: memory a C thread allocates is charged to the Python line
 * that started it, and a Python thread's frames hang below that line too.
 * A fork() child stops tracking at once: the shared state belongs to the
 * parent, and the child writing to it would corrupt the parent's report.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/lock.h"
#include "fil/stacks.h"
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
}

typedef struct start {
    void *(*fn)(void *);
    void *arg;
    uint32_t base; /* node of the creating line */
} start_t;

static void *trampoline(void *p) {
    start_t s = *(start_t *)p;
    __libc_free(p);
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

FIL_API pid_t fork(void) {
    if (!real_fork)
        fil_interpose_resolve();
    pid_t pid = real_fork();
    if (pid == 0)
        __atomic_store_n(&fil_active, 0, __ATOMIC_RELEASE);
    return pid;
}
