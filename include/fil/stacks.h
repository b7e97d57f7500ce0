/* SPDX-License-Identifier: MIT */
/*
 * fil/stacks.h - call-stack interning and the per-thread shadow stack.
 *
 * A call stack is a node of a tree: (parent node, function, line). Nodes and
 * functions are interned into the shared state, so a node index names a whole
 * stack. Each thread keeps a shadow stack of the Python frames it is in; the
 * node for "here" is resolved only when an allocation asks for it, and only
 * for the frames that may have moved since the last time.
 */
#ifndef FIL_STACKS_H
#define FIL_STACKS_H

#include <stddef.h>
#include <stdint.h>

#include "fil/common.h"

/* Set up the interning tables. 0, or -1. Context: startup. */
int fil_stacks_init(void);

/* Intern a function; its index, or FIL_NONE. Context: any; takes the lock. */
FIL_API uint32_t fil_stacks_intern_func(const char *file, size_t flen, const char *name,
                                        size_t nlen, uint32_t first_line);

/* Intern (parent, func, line); its index, or 0 (the no-stack node) if the
 * state is full (counted in dropped). Context: lock held. */
uint32_t fil_stacks_intern_node_locked(uint32_t parent, uint32_t func, uint32_t line);

/* Shadow stack of the calling thread. Context: the thread itself, GIL held. */
FIL_API void fil_stacks_push(void *pyframe, void *code, uint32_t func);
FIL_API void fil_stacks_pop(void *pyframe);

/* Functions the Python extension provides to read a frame's line and last
 * instruction offset (lasti may be NULL). Context: startup. */
FIL_API void fil_stacks_set_frame_readers(int (*line)(void *), int (*lasti)(void *));

/* The node allocations of this thread are charged to now (0 if no Python
 * stack). Context: the thread itself, any time; may take the lock. */
uint32_t fil_stacks_current(void);

/* For a new thread: the node of the line that started it (FIL_NONE: none). */
void fil_stacks_thread_base(uint32_t node);

/* Release the calling thread's shadow stack memory. */
void fil_stacks_thread_exit(void);

/* Number of interned nodes. */
uint32_t fil_stacks_node_count(void);

#endif
