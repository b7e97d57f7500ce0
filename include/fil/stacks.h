/* SPDX-License-Identifier: MIT */
/*
 * fil/stacks.h - call-stack interning and the per-thread shadow stack.
 *
 * A call stack is a node of a tree: (parent node, function, line). Nodes and
 * functions are interned into the shared state, so a node index names a whole
 * stack. The node for "here" is resolved only when an allocation asks for
 * it, by the Python extension's resolver (fil/pyresolve.h), from the
 * thread's real frames, in a per-thread record this module owns.
 */
#ifndef FIL_STACKS_H
#define FIL_STACKS_H

#include <stddef.h>
#include <stdint.h>

#include "fil/common.h"
#include "fil/pyapi.h"
#include "fil/runtime.h" /* fil_last_node */

/* Set up the interning tables. 0, or -1. Context: startup. */
int fil_stacks_init(void);

/* Intern a function; its index, or FIL_NONE. Context: any; takes the lock. */
uint32_t fil_stacks_intern_func(const char *file, size_t flen, const char *name, size_t nlen,
                                uint32_t first_line);

/* Intern (parent, func, line); its index, or 0 (the no-stack node) if the
 * state is full (counted in dropped). Context: lock held. */
uint32_t fil_stacks_intern_node_locked(uint32_t parent, uint32_t func, uint32_t line);

/* Intern (parent, func, line) taking the lock itself (for the extension). */
uint32_t fil_stacks_intern_node(uint32_t parent, uint32_t func, uint32_t line);

/* The Python extension's resolver (fil/pyapi.h): install, or remove with
 * NULL. Context: the GIL holder; any thread may be allocating. */
void fil_stacks_set_resolver(fil_resolver_fn fn);

/* The calling thread's record, and growth of its arrays (pythread.c). */
fil_pythread_t *fil_stacks_thread(void);
int fil_stacks_reserve(fil_pythread_t *t, uint32_t n);
int fil_stacks_map_cache(fil_pythread_t *t);

/* The calling thread's record (initial-exec TLS: this library is
 * preloaded, so reading it never calls malloc) and the extension's
 * resolver (NULL until registered; atomic), owned by pythread.c and read
 * by the inline entry points below. */
extern __thread fil_pythread_t fil_stacks_me __attribute__((tls_model("initial-exec")));
extern fil_resolver_fn fil_stacks_resolver;

/* The node allocations of this thread are charged to now (0 if no Python
 * stack), or FIL_NODE_UNTRACKED for an allocation the profiler caused
 * (CPython instrumenting a code object for our sys.monitoring events): the
 * tracker then does not record it (invariant 1). Inline, so that an
 * allocator wrapper makes one call for it, the resolver's (indirect, into
 * the extension); without a resolver, a TLS load. Context: the thread
 * itself, guard set, any time; may take the lock. */
static inline uint32_t fil_stacks_resolve_here(int pymem) {
    fil_resolver_fn r = __atomic_load_n(&fil_stacks_resolver, __ATOMIC_ACQUIRE);
    uint32_t node;
    if (r) {
        if (pymem)
            fil_stacks_me.in_pymem = 1;
        node = r(&fil_stacks_me);
        if (pymem)
            fil_stacks_me.in_pymem = 0;
    } else {
        node = fil_stacks_me.base;
    }
    node = node == FIL_NONE ? 0 : node; /* FIL_NODE_UNTRACKED passes */
    if (node != FIL_NODE_UNTRACKED)
        fil_last_node = node; /* where a crash of this thread last allocated */
    return node;
}

static inline uint32_t fil_stacks_current(void) { return fil_stacks_resolve_here(0); }

/* The same for an allocation made through CPython's MEM/OBJ allocators
 * (GIL held): the extension may then call the C API to mark code objects. */
static inline uint32_t fil_stacks_current_pymem(void) { return fil_stacks_resolve_here(1); }

/* For a new thread: the node of the line that started it (0: none). */
void fil_stacks_thread_base(uint32_t node);

/* Release the calling thread's arrays. */
void fil_stacks_thread_exit(void);

/* Number of interned nodes. */
uint32_t fil_stacks_node_count(void);

#endif
