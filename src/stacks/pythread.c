/* SPDX-License-Identifier: MIT */
/*
 * pythread.c - the per-thread record the Python extension resolves call
 * stacks into, and the resolver every allocation asks for its node
 * (through fil_stacks_current, inline in fil/stacks.h).
 *
 * The preload library knows nothing of Python frames. The extension, built
 * for the running interpreter, registers a resolver (fil/pyresolve.h) that
 * turns the calling thread's real frame chain into a node; this file owns
 * the memory it works in: a thread-local fil_pythread_t
 * and its arrays, from raw mmap (invariant 1), released when the thread
 * ends. Until a resolver is registered (interpreter start-up, or a program that is
 * not Python) every allocation is charged to the thread's base: the line
 * that started the thread, or node 0, "[No Python stack]".
 *
 * Thread-local state uses the initial-exec TLS model: this library is
 * preloaded, so its TLS is static and reading it never calls malloc.
 */
#include <pthread.h>

#include "fil/pyapi.h"
#include "fil/runtime.h"
#include "fil/stacks.h"
#include "fil/sys.h"

__thread fil_pythread_t fil_stacks_me __attribute__((tls_model("initial-exec"))) = {
    .base = FIL_NONE,
};
fil_resolver_fn fil_stacks_resolver; /* atomic: set by the extension's start */
static pthread_key_t exit_key;   /* frees a thread's arrays when it ends */
static int have_exit_key;

static void on_thread_exit(void *unused) {
    (void)unused;
    fil_stacks_thread_exit();
}

void fil_stacks_set_resolver(fil_resolver_fn fn) {
    if (fn && !have_exit_key && pthread_key_create(&exit_key, on_thread_exit) == 0)
        have_exit_key = 1;
    __atomic_store_n(&fil_stacks_resolver, fn, __ATOMIC_RELEASE);
}

fil_pythread_t *fil_stacks_thread(void) { return &fil_stacks_me; }

/* Unmap t's arrays (not the cache). */
static void free_arrays(const fil_pythread_t *t) {
    fil_sys_unmap(t->key, (size_t)t->cap * sizeof *t->key);
    fil_sys_unmap(t->e, (size_t)t->cap * sizeof *t->e);
    fil_sys_unmap(t->scratch, (size_t)t->cap * sizeof *t->scratch);
}

/*
 * fil_stacks_reserve - make t's key, entry and scratch arrays hold at least n
 * entries (doubling), keeping what both hold (the walker may be half-way
 * through collecting). 0, or -1 with t unchanged. Context: the thread
 * itself.
 */
int fil_stacks_reserve(fil_pythread_t *t, uint32_t n) {
    if (n <= t->cap)
        return 0;
    uint32_t cap = t->cap ? t->cap : 128;
    while (cap < n)
        cap = cap > UINT32_MAX / 2 ? n : cap * 2;
    fil_pykey_t *k = fil_sys_pages((size_t)cap * sizeof *k);
    fil_pyentry_t *e = fil_sys_pages((size_t)cap * sizeof *e);
    fil_pyraw_t *s = fil_sys_pages((size_t)cap * sizeof *s);
    if (!k || !e || !s) {
        fil_sys_unmap(k, (size_t)cap * sizeof *k);
        fil_sys_unmap(e, (size_t)cap * sizeof *e);
        fil_sys_unmap(s, (size_t)cap * sizeof *s);
        return -1;
    }
    for (uint32_t i = 0; i < t->cap; i++) {
        k[i] = t->key[i];
        e[i] = t->e[i];
        s[i] = t->scratch[i];
    }
    free_arrays(t);
    if (!t->e && t == &fil_stacks_me && have_exit_key)
        pthread_setspecific(exit_key, e); /* any non-NULL value: run on exit */
    t->key = k;
    t->e = e;
    t->scratch = s;
    t->cap = cap;
    return 0;
}

/* Map the call cache of t. 0, or -1. Context: the thread itself. */
int fil_stacks_map_cache(fil_pythread_t *t) {
    if (!t->cache)
        t->cache = fil_sys_pages(sizeof(fil_pycache_t) << FIL_PY_CACHE_BITS);
    return t->cache ? 0 : -1;
}

void fil_stacks_thread_base(uint32_t node) { fil_stacks_me.base = node == 0 ? FIL_NONE : node; }

void fil_stacks_thread_exit(void) {
    fil_pythread_t t = fil_stacks_me;
    fil_stacks_me.key = NULL;
    fil_stacks_me.e = NULL;
    fil_stacks_me.scratch = NULL;
    fil_stacks_me.cache = NULL;
    fil_stacks_me.cap = fil_stacks_me.depth = fil_stacks_me.resolved = fil_stacks_me.mirrored = 0;
    free_arrays(&t);
    fil_sys_unmap(t.cache, sizeof(fil_pycache_t) << FIL_PY_CACHE_BITS);
}
