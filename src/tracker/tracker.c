/* SPDX-License-Identifier: MIT */
/*
 * tracker.c - per-node live bytes, the total, and the peak snapshot; the
 * entry points that record a block (in a pool record, pools.h, or in the
 * live table, table.c).
 *
 * Every change of a node's bytes goes through charge(): one aligned 8-byte
 * store of the node's bytes, then one of the total (a SIGKILL cannot tear
 * either, and the reader sums the nodes when the two disagree: state.h).
 * The charge path is inlined into each entry point: ~20 instructions, the
 * node's counter and its epoch stamp the only cache lines it may miss.
 *
 * The peak snapshot is lazy and incremental. Reaching a new high-water mark
 * only sets at_peak; the copy into peak[] happens on the first decrease after
 * it (before the decrease is applied), or when someone asks for the report.
 * Only nodes changed since the previous snapshot are copied: each node has a
 * private epoch stamp, and a change to a node whose stamp is old appends it
 * to a dirty list. So a program that makes many successive peaks pays for
 * the nodes it touched, not for every call stack it ever had.
 *
 * The stop copy works the same way, once per stop signal: the trampoline
 * only raises fil_stop_pending; the first decrease after it copies every
 * node's bytes into stop[] before it is applied (before_decrease), so the
 * report of a program that was interrupted and unwound shows what it held
 * when the signal came.
 */
#include "fil/tracker.h"

#include <time.h>

#include "fil/common.h"
#include "fil/lock.h"
#include "fil/runtime.h"
#include "fil/state_writer.h"
#include "fil/sys.h"
#include "pools.h"
#include "tracker_internal.h"

/* Private per-node epoch stamps and the dirty list; grown with the nodes.
 * Protected by fil_lock. */
static uint32_t *stamp;
static uint32_t *dirty;
static uint64_t node_cap; /* entries in stamp and dirty */
static uint64_t ndirty;
static uint32_t epoch = 1;
/* Chunk 0 of the per-node bytes and of the peak bytes (nodes below
 * FIL_SEG_BASE), or NULL until mapped: spares the segment arithmetic for
 * most charges and snapshot copies. */
static int64_t *bytes0, *peak0;

/* Grow stamp/dirty to cover node n (>= node_cap). 0, or -1 with them
 * unchanged. */
static int cover(uint32_t n) {
    uint64_t ncap = node_cap ? node_cap : 4096;
    while (ncap <= n)
        ncap *= 2;
    uint32_t *s = fil_sys_pages(ncap * 4), *d = fil_sys_pages(ncap * 4);
    if (!s || !d) {
        fil_sys_unmap(s, ncap * 4);
        fil_sys_unmap(d, ncap * 4);
        return -1;
    }
    for (uint64_t i = 0; i < node_cap; i++) {
        s[i] = stamp[i];
        d[i] = dirty[i];
    }
    fil_sys_unmap(stamp, node_cap * 4);
    fil_sys_unmap(dirty, node_cap * 4);
    stamp = s;
    dirty = d;
    node_cap = ncap;
    return 0;
}

/* The per-node arrays for the first chunk of nodes, and that chunk of the
 * per-node bytes (node 0 exists: fil_stacks_init ran), so that the charge
 * path tests neither. 0, or -1. Context: startup, after fil_stacks_init. */
int fil_tracker_init(void) {
    if (fil_tracker_table_init() || fil_tracker_maps_init() || cover(FIL_SEG_BASE - 1) ||
        fil_state_reserve(FIL_SEG_BYTES, 1) || fil_state_reserve(FIL_SEG_PEAK, 1))
        return -1;
    bytes0 = (int64_t *)(void *)fil_state_chunks[FIL_SEG_BYTES][0];
    peak0 = (int64_t *)(void *)fil_state_chunks[FIL_SEG_PEAK][0];
    return 0;
}

/* node if the per-node arrays cover it, else 0 (counted) if they cannot
 * grow to: decided before a block is recorded, so that its record and its
 * charges always name the same node. Context: lock held. */
static __attribute__((noinline)) uint32_t cover_or_drop(uint32_t node) {
    if (cover(node) == 0)
        return node;
    fil_state->stacks_dropped++; /* the bytes still count, charged to no stack */
    return 0;
}

static inline __attribute__((always_inline)) uint32_t covered(uint32_t node) {
    return FIL_LIKELY(node < node_cap) ? node : cover_or_drop(node);
}

/* Copy the changed nodes into peak[]. Context: lock held. */
static void snapshot_locked(void) {
    fil_state_header_t *h = fil_state;
    __atomic_store_n(&h->snapshot_busy, 1, __ATOMIC_RELEASE);
    for (uint64_t i = 0; i < ndirty; i++) {
        uint32_t n = dirty[i];
        if (FIL_LIKELY(n < FIL_SEG_BASE))
            peak0[n] = bytes0[n];
        else
            *fil_state_i64(FIL_SEG_PEAK, n) = *fil_state_i64(FIL_SEG_BYTES, n);
    }
    ndirty = 0;
    epoch++;
    __atomic_store_n(&h->at_peak, 0, __ATOMIC_RELEASE); /* after the copies */
    __atomic_store_n(&h->snapshot_busy, 0, __ATOMIC_RELEASE);
}

/* The stop copy (see the top comment). Context: lock held. */
static void stop_copy_locked(void) {
    fil_state_header_t *h = fil_state;
    int sig = __atomic_exchange_n(&fil_stop_pending, 0, __ATOMIC_ACQ_REL);
    if (sig <= 0 || fil_state_reserve(FIL_SEG_STOP, 0) != 0)
        return; /* no room: the report shows what was held at death */
    uint64_t n = h->nodes.count;
    __atomic_store_n(&h->stop_signal, 0, __ATOMIC_RELEASE);
    for (uint64_t i = 0; i < n; i++)
        *fil_state_i64(FIL_SEG_STOP, i) = *fil_state_i64(FIL_SEG_BYTES, i);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->stop_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    h->stop_total = h->total;
    __atomic_store_n(&h->stop.count, n, __ATOMIC_RELEASE);
    __atomic_store_n(&h->stop_signal, (uint32_t)sig, __ATOMIC_RELEASE); /* last */
}

/* Before a decrease: settle the peak snapshot and the stop copy that wait
 * for one. Out of line: charge() only tests two words. Context: lock held. */
static __attribute__((noinline)) void before_decrease(void) {
    if (fil_state->at_peak)
        snapshot_locked();
    if (__atomic_load_n(&fil_stop_pending, __ATOMIC_ACQUIRE))
        stop_copy_locked();
}

/* 1 if a decrease must first settle the peak snapshot or the stop copy. */
static inline int decrease_waits(const fil_state_header_t *h) {
    return FIL_UNLIKELY(h->at_peak | __atomic_load_n(&fil_stop_pending, __ATOMIC_RELAXED));
}

/*
 * apply - add delta to node's live bytes and the total. Stores in the
 * order a reader of a killed process relies on (state.h): node bytes,
 * total, peak_total, at_peak; each one aligned word (release stores: on
 * x86 plain moves the compiler may not reorder). The node is covered
 * (covered()): its stamp and, below FIL_SEG_BASE, its bytes are plain
 * array slots. ~20 instructions. Context: lock held; a decrease only once
 * decrease_waits() is clear.
 */
static inline __attribute__((always_inline)) void apply(uint32_t node, int64_t delta) {
    fil_state_header_t *h = fil_state;
    FIL_ASSERT(node < node_cap && bytes0);
    if (FIL_UNLIKELY(stamp[node] != epoch)) {
        stamp[node] = epoch;
        dirty[ndirty++] = node;
    }
    int64_t *b = FIL_LIKELY(node < FIL_SEG_BASE) ? bytes0 + node : fil_state_i64(FIL_SEG_BYTES, node);
    __atomic_store_n(b, *b + delta, __ATOMIC_RELEASE);
    int64_t total = h->total + delta;
    __atomic_store_n(&h->total, total, __ATOMIC_RELEASE);
    if (delta > 0 && total > h->peak_total) { /* (a decrease makes no peak: no load) */
        __atomic_store_n(&h->peak_total, total, __ATOMIC_RELEASE);
        if (!h->at_peak)
            __atomic_store_n(&h->at_peak, 1, __ATOMIC_RELEASE);
    }
}

/* charge - apply delta, snapshotting the peak (and taking the stop copy)
 * first if this is the first decrease after one. Context: lock held. */
static inline __attribute__((always_inline)) void charge(uint32_t node, int64_t delta) {
    if (delta < 0 && decrease_waits(fil_state))
        before_decrease();
    apply(node, delta);
}

void fil_tracker_charge_locked(uint32_t node, int64_t delta) { charge(node, delta); }

/* Record a live block in the live table and charge it. The node is
 * covered. Context: lock held. */
static inline __attribute__((always_inline)) void table_add(uintptr_t p, size_t size, uint32_t node) {
    uint64_t osize;
    uint32_t onode;
    int r = fil_tracker_table_put(p, size, node, &osize, &onode);
    if (r < 0) {
        fil_state->dropped++;
        return;
    }
    if (r == 1) /* freed behind our back (e.g. inside libc): forget the old block */
        charge(onode, -(int64_t)osize);
    fil_state->allocations++;
    charge(node, (int64_t)size);
}

/* The same for a block from CPython's allocator: in its pool's record when
 * it is in an arena of ours and fits, else in the table. Written over the
 * geometry g, instantiated for the usual one as constants (see py_add). */
static inline __attribute__((always_inline)) void py_add_g(uintptr_t p, size_t size, uint32_t node,
                                                            fil_pool_geom_t g) {
    fil_pool_rec_t *r = size - 1 < 512 ? fil_pool_rec_of(p, g) : NULL;
    uint64_t osize;
    uint32_t onode;
    int k = r ? fil_pool_put(r, p, (uint32_t)size, node, &osize, &onode, g) : 0;
    if (!k) {
        table_add(p, size, node);
        return;
    }
    if (k == 2)
        charge(onode, -(int64_t)osize);
    fil_state->allocations++;
    charge(node, (int64_t)size);
}

static inline __attribute__((always_inline)) void py_add(uintptr_t p, size_t size, uint32_t node) {
    if (FIL_LIKELY(fil_pool_geom.arena_shift == 20))
        py_add_g(p, size, node, FIL_POOL_GEOM_1M);
    else
        py_add_g(p, size, node, fil_pool_geom);
}

/* Out of line: every case py_add_fast leaves; to_table (its -1): the node
 * is covered and the block goes to the live table, as py_add would find. */
static __attribute__((noinline)) void py_add_slow(uintptr_t p, size_t size, uint32_t node,
                                                  int to_table) {
    if (to_table)
        table_add(p, size, node);
    else
        py_add(p, size, covered(node));
}

/*
 * py_add_fast - the common case of a Python object: a covered node, the
 * usual geometry, a block in one of our arenas that fil_pool_put_plain
 * records. 1 if done; -1 with nothing changed if the node is covered and
 * the block can only go to the live table (bigger than pymalloc's blocks,
 * or its record's dictionary full without its pair: py_add would find
 * the same after a second look); 0 with nothing changed otherwise. No
 * call, so that its callers save no registers: ~60 instructions with the
 * charge. Context: lock held.
 */
static inline __attribute__((always_inline)) int py_add_fast(uintptr_t p, size_t size,
                                                              uint32_t node) {
    if (FIL_UNLIKELY(node >= node_cap || fil_pool_geom.arena_shift != 20))
        return 0;
    if (FIL_UNLIKELY(size - 1 >= 512))
        return -1;
    fil_pool_rec_t *r = fil_pool_rec_of(p, FIL_POOL_GEOM_1M);
    int k = r ? fil_pool_put_plain(r, p, (uint32_t)size, node, FIL_POOL_GEOM_1M) : 0;
    if (FIL_UNLIKELY(k <= 0))
        return k;
    fil_state->allocations++;
    apply(node, (int64_t)size);
    return 1;
}

/* Forget p (py: it may be in a pool record). 1 and its size and node if it
 * was recorded. Context: lock held. */
static inline __attribute__((always_inline)) int take_g(uintptr_t p, int py, uint64_t *size,
                                                         uint32_t *node, fil_pool_geom_t g) {
    fil_pool_rec_t *r = py ? fil_pool_rec_of(p, g) : NULL;
    if (r && fil_pool_take(r, p, size, node, g))
        return 1;
    return fil_tracker_table_take(p, size, node);
}

static inline __attribute__((always_inline)) int take(uintptr_t p, int py, uint64_t *size,
                                                       uint32_t *node) {
    if (!py)
        return fil_tracker_table_take(p, size, node);
    if (FIL_LIKELY(fil_pool_geom.arena_shift == 20))
        return take_g(p, 1, size, node, FIL_POOL_GEOM_1M);
    return take_g(p, 1, size, node, fil_pool_geom);
}

/* take()'s common case for a Python object: in a record of ours, the usual
 * geometry. 1 and the block's size and node (forgotten now), or 0 with
 * nothing changed. No call. Context: lock held. */
static inline __attribute__((always_inline)) int py_take_fast(uintptr_t p, uint64_t *size,
                                                               uint32_t *node) {
    if (FIL_UNLIKELY(fil_pool_geom.arena_shift != 20))
        return 0;
    fil_pool_rec_t *r = fil_pool_rec_of(p, FIL_POOL_GEOM_1M);
    return FIL_LIKELY(r != NULL) && fil_pool_take(r, p, size, node, FIL_POOL_GEOM_1M);
}

/* FIL_NODE_UNTRACKED (fil/common.h): the profiler's own allocation, which
 * the resolver recognised (CPython instrumenting code for our events). */
void fil_tracker_add(void *p, size_t size, uint32_t node) {
    if (FIL_UNLIKELY(node == FIL_NODE_UNTRACKED))
        return;
    fil_lock();
    table_add((uintptr_t)p, size, covered(node));
    fil_unlock();
}

static __attribute__((noinline)) void py_add_locked(uintptr_t p, size_t size, uint32_t node) {
    fil_lock();
    int k = py_add_fast(p, size, node);
    if (k <= 0)
        py_add_slow(p, size, node, k);
    fil_unlock();
}

/* The owner alone, and the common case, first: a section with no call in
 * it on its common path. When the fast case does not hold, the general
 * path runs in the same section (not a second attempt under the lock). */
void fil_tracker_py_add(void *p, size_t size, uint32_t node) {
    if (FIL_UNLIKELY(node == FIL_NODE_UNTRACKED))
        return;
    if (FIL_LIKELY(fil_lock_owner_enter())) {
        int k = py_add_fast((uintptr_t)p, size, node);
        if (FIL_UNLIKELY(k <= 0))
            py_add_slow((uintptr_t)p, size, node, k);
        fil_lock_owner_leave();
        return;
    }
    py_add_locked((uintptr_t)p, size, node);
}

/* Forget p and uncharge it; pool_tried: py_take_fast found it in no record
 * of the usual geometry, so only the table can list it. Context: lock
 * held (or the owner's section). */
static __attribute__((noinline)) void remove_rest(uintptr_t p, int py, int pool_tried) {
    uint64_t size;
    uint32_t node;
    int had = pool_tried ? fil_tracker_table_take(p, &size, &node) : take(p, py, &size, &node);
    if (had)
        charge(node, -(int64_t)size);
}

void fil_tracker_remove(void *p) {
    fil_lock();
    remove_rest((uintptr_t)p, 0, 0);
    fil_unlock();
}

/* As fil_tracker_py_add: the owner's section, and in it the common case
 * (the block is in a record) before the general path. A snapshot that
 * waits for a decrease is settled first, whether or not the block turns
 * out to be ours: while at_peak the live bytes are the peak's, so copying
 * them early is the same copy (a program that makes a new peak between
 * most frees, pure_python.py, took the general path at each). */
void fil_tracker_py_remove(void *p) {
    uint64_t size;
    uint32_t node;
    if (FIL_LIKELY(fil_lock_owner_enter())) {
        if (FIL_UNLIKELY(decrease_waits(fil_state)))
            before_decrease();
        if (FIL_LIKELY(py_take_fast((uintptr_t)p, &size, &node)))
            apply(node, -(int64_t)size);
        else
            remove_rest((uintptr_t)p, 1, fil_pool_geom.arena_shift == 20);
        fil_lock_owner_leave();
        return;
    }
    fil_lock();
    remove_rest((uintptr_t)p, 1, 0);
    fil_unlock();
}

/*
 * fil_tracker_realloc_begin - forget old before the real realloc runs, so no
 * other thread can be handed the same address while we still list it.
 * Fills *t for fil_tracker_realloc_end. Context: any thread, guarded.
 */
void fil_tracker_realloc_begin(void *old, fil_realloc_t *t, int py) {
    t->had = 0;
    if (!old)
        return;
    fil_lock();
    if ((py && py_take_fast((uintptr_t)old, &t->size, &t->node)) ||
        take((uintptr_t)old, py, &t->size, &t->node))
        t->had = 1;
    fil_unlock();
}

/* List old again as it was, still charged (a realloc failed). */
static void relist(uintptr_t old, uint64_t size, uint32_t node, int py) {
    uint64_t osize;
    uint32_t onode;
    fil_pool_rec_t *r = py && size - 1 < 512 ? fil_pool_rec_of(old, fil_pool_geom) : NULL;
    if (r && fil_pool_put(r, old, (uint32_t)size, node, &osize, &onode, fil_pool_geom))
        return; /* 2 is impossible: old was taken from there */
    if (fil_tracker_table_put(old, size, node, &osize, &onode) < 0) {
        charge(node, -(int64_t)size); /* cannot list it: stop counting it */
        fil_state->dropped++;
    }
}

/* p == NULL: the realloc failed and old is still live; otherwise the old
 * block is gone and p (size bytes) is charged to node. */
void fil_tracker_realloc_end(const fil_realloc_t *t, void *old, void *p, size_t size,
                             uint32_t node, int py) {
    int k;
    fil_lock();
    if (!p) {
        if (t->had)
            relist((uintptr_t)old, t->size, t->node, py);
    } else {
        if (t->had)
            charge(t->node, -(int64_t)t->size);
        if (FIL_UNLIKELY(node == FIL_NODE_UNTRACKED))
            ; /* the new block is the profiler's */
        else if (!py)
            table_add((uintptr_t)p, size, covered(node));
        else if ((k = py_add_fast((uintptr_t)p, size, node)) <= 0)
            py_add_slow((uintptr_t)p, size, node, k);
    }
    fil_unlock();
}

static uint64_t pages(size_t len) { return ((uint64_t)len + 4095) & ~UINT64_C(4095); }

void fil_tracker_map(void *p, size_t len, uint32_t node) {
    if (FIL_UNLIKELY(node == FIL_NODE_UNTRACKED))
        return;
    fil_lock();
    node = covered(node);
    if (fil_tracker_maps_add((uintptr_t)p, pages(len), node) == 0) {
        fil_state->allocations++;
        fil_tracker_charge_locked(node, (int64_t)pages(len));
    } else {
        fil_state->dropped++;
    }
    fil_unlock();
}

uint64_t fil_tracker_unmap(void *p, size_t len) {
    fil_lock();
    uint64_t n = fil_tracker_maps_remove((uintptr_t)p & ~(uintptr_t)4095,
                                         pages(len + ((uintptr_t)p & 4095)), NULL);
    fil_unlock();
    return n;
}

uint64_t fil_tracker_unmap_keep(void *p, size_t len, fil_unmapped_t *t) {
    t->n = 0;
    fil_lock();
    uint64_t n = fil_tracker_maps_remove((uintptr_t)p & ~(uintptr_t)4095,
                                         pages(len + ((uintptr_t)p & 4095)), t);
    fil_unlock();
    return n;
}

/* Not an allocation: the count of allocations stays. */
void fil_tracker_unmap_undo(const fil_unmapped_t *t) {
    fil_lock();
    for (uint32_t i = 0; i < t->n; i++) {
        if (fil_tracker_maps_add(t->piece[i].start, t->piece[i].len, t->piece[i].node) == 0)
            fil_tracker_charge_locked(t->piece[i].node, (int64_t)t->piece[i].len);
        else
            fil_state->dropped++;
    }
    fil_unlock();
}


void fil_tracker_settle_peak(void) {
    fil_lock();
    if (fil_state->at_peak)
        snapshot_locked();
    fil_unlock();
}

void fil_tracker_reset_peak(void) {
    fil_lock();
    fil_state_header_t *h = fil_state;
    __atomic_store_n(&h->snapshot_busy, 1, __ATOMIC_RELEASE);
    for (uint64_t n = 0; n < h->nodes.count; n++)
        *fil_state_i64(FIL_SEG_PEAK, n) = *fil_state_i64(FIL_SEG_BYTES, n);
    ndirty = 0;
    epoch++;
    h->peak_total = h->total;
    h->at_peak = 1; /* now is the peak until memory goes down */
    __atomic_store_n(&h->snapshot_busy, 0, __ATOMIC_RELEASE);
    fil_unlock();
}

/*
 * fil_tracker_fork_child - a fork child starts with nothing: the blocks
 * live at the fork are its parent's (they stay in the parent's report), so
 * every record of them is dropped and an inherited block the child frees
 * is unknown to it, as an untracked one is. The per-node counters were
 * zeroed with the new state (fil_state_fork_child); the peak's dirty list
 * starts again. 0, or -1 (the caller stops tracking).
 * Context: fork child, single-threaded, before any tracking.
 */
int fil_tracker_fork_child(void) {
    fil_lock();
    int r = fil_tracker_table_forget();
    fil_tracker_maps_forget();
    fil_tracker_pools_forget();
    ndirty = 0;
    epoch++;
    fil_unlock();
    return r;
}

uint64_t fil_tracker_live_count(void) {
    fil_lock();
    uint64_t n = fil_tracker_table_count() + fil_pool_count_live();
    fil_unlock();
    return n;
}
