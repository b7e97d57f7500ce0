/* SPDX-License-Identifier: MIT */
/*
 * fil/tracker.h - live allocations and the bytes each call stack holds.
 *
 * The tracker maps every live tracked allocation to its size and node, keeps
 * each node's live bytes and the total in the shared state, and keeps the
 * peak snapshot: the per-node bytes at the high-water mark of the total.
 * All functions take the one lock themselves unless named _locked.
 */
#ifndef FIL_TRACKER_H
#define FIL_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "fil/common.h"

/* Private tables. 0, or -1. Context: startup. */
int fil_tracker_init(void);

/* malloc family (blocks go to the live table). Context: any thread,
 * reentrancy-guarded. */
void fil_tracker_add(void *p, size_t size, uint32_t node);
void fil_tracker_remove(void *p);
/* CPython's MEM/OBJ allocators: a block in one of pymalloc's arenas is
 * recorded in its pool's record (src/tracker/pools.h), any other in the
 * table. Context: any thread, reentrancy-guarded. */
void fil_tracker_py_add(void *p, size_t size, uint32_t node);
void fil_tracker_py_remove(void *p);
/* realloc: begin forgets old before the real call; end records the outcome
 * (p NULL: failed, old restored). py: 1 for CPython's allocators. */
typedef struct fil_realloc {
    uint64_t size; /* old block's size */
    uint32_t node; /* old block's node */
    int had;       /* old was tracked */
} fil_realloc_t;
void fil_tracker_realloc_begin(void *old, fil_realloc_t *t, int py);
void fil_tracker_realloc_end(const fil_realloc_t *t, void *old, void *p, size_t size,
                             uint32_t node, int py);

/* pymalloc's arena allocator (src/tracker/pools.c): S-aligned arenas with
 * their pool records; a plain mapping when that cannot be had, NULL if
 * nothing can. Context: pymalloc, GIL held, no lock held. */
void *fil_tracker_arena_new(size_t size);
void fil_tracker_arena_del(void *p, size_t size);
/* 1 if a request of `size` bytes to the arena allocator is not one of
 * pymalloc's arenas: CPython 3.11+ takes its stack of frames from there
 * too (a chunk of 16 KiB, or what one frame needs). 0 while pymalloc's
 * geometry is not known. */
int fil_tracker_arena_foreign(size_t size);

/* Anonymous mappings, page-granular; partial unmaps split ranges. */
void fil_tracker_map(void *p, size_t len, uint32_t node);
/* Returns the tracked bytes that were removed. */
uint64_t fil_tracker_unmap(void *p, size_t len);
/* munmap, mremap: keep forgets [p, p+len) before the real call, as unmap
 * does (returns the tracked bytes removed), and keeps the pieces it took
 * with their nodes; undo puts them back as they were when the call failed.
 * Pieces past FIL_UNMAPPED_PIECES (as many mappings merged into one) go back
 * as one range, with the node of the last piece kept. */
#define FIL_UNMAPPED_PIECES 8
typedef struct fil_unmapped {
    uint32_t n; /* pieces below */
    struct {
        uintptr_t start;
        uint64_t len;
        uint32_t node;
    } piece[FIL_UNMAPPED_PIECES];
} fil_unmapped_t;
uint64_t fil_tracker_unmap_keep(void *p, size_t len, fil_unmapped_t *t);
void fil_tracker_unmap_undo(const fil_unmapped_t *t);

/* Take the peak snapshot now if the current state is the peak.
 * Context: any; takes the lock. */
void fil_tracker_settle_peak(void);

/* Start a new peak from now: peak[] := live bytes for every node, and the
 * high-water mark := the current total (for a Jupyter cell's own peak).
 * Context: any; takes the lock. O(nodes). */
void fil_tracker_reset_peak(void);

/* A fork child forgets every block it inherited (they are its parent's)
 * and starts from zero on the state fil_state_fork_child made. 0, or -1.
 * Context: fork child, single-threaded, before any tracking. */
int fil_tracker_fork_child(void);

/* Live allocations counted in the table (for tests and sizing). */
uint64_t fil_tracker_live_count(void);

#endif
