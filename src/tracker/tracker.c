/* SPDX-License-Identifier: MIT */
/*
 * tracker.c - per-node live bytes, the total, and the peak snapshot.
 *
 * Every change of a node's bytes goes through fil_tracker_charge_locked(),
 * which journals the old values in the shared header (seq odd while the
 * update is in flight) so a reader of a killed process can undo a torn
 * update.
 *
 * The peak snapshot is lazy and incremental. Reaching a new high-water mark
 * only sets at_peak; the copy into peak[] happens on the first decrease after
 * it (before the decrease is applied), or when someone asks for the report.
 * Only nodes changed since the previous snapshot are copied: each node has a
 * private epoch stamp, and a change to a node whose stamp is old appends it
 * to a dirty list. So a program that makes many successive peaks pays for
 * the nodes it touched, not for every call stack it ever had.
 */
#include "fil/tracker.h"

#include "fil/common.h"
#include "fil/lock.h"
#include "fil/state_writer.h"
#include "fil/sys.h"
#include "tracker_internal.h"

/* Private per-node epoch stamps and the dirty list; grown with the nodes.
 * Protected by fil_lock. */
static uint32_t *stamp;
static uint32_t *dirty;
static uint64_t node_cap; /* entries in stamp and dirty */
static uint64_t ndirty;
static uint32_t epoch = 1;

int fil_tracker_init(void) {
    return fil_tracker_table_init() || fil_tracker_maps_init() ? -1 : 0;
}

/* Grow stamp/dirty to cover node n (>= node_cap). 0, or -1 with them
 * unchanged. Out of line: the fast path only compares n with node_cap. */
static __attribute__((noinline)) int cover(uint32_t n) {
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

/* Copy the changed nodes into peak[]. Context: lock held. */
static void snapshot_locked(void) {
    fil_state_header_t *h = fil_state;
    __atomic_store_n(&h->snapshot_busy, 1, __ATOMIC_RELEASE);
    for (uint64_t i = 0; i < ndirty; i++) {
        uint32_t n = dirty[i];
        *(int64_t *)fil_state_at(FIL_SEG_PEAK, n) = *(int64_t *)fil_state_at(FIL_SEG_BYTES, n);
    }
    ndirty = 0;
    epoch++;
    h->at_peak = 0;
    __atomic_store_n(&h->snapshot_busy, 0, __ATOMIC_RELEASE);
}

/*
 * fil_tracker_charge_locked - add delta to node's live bytes and the total,
 * snapshotting the peak first if this is the first decrease after one.
 * Context: lock held.
 */
void fil_tracker_charge_locked(uint32_t node, int64_t delta) {
    fil_state_header_t *h = fil_state;
    if (delta < 0 && h->at_peak)
        snapshot_locked();
    if (FIL_UNLIKELY(node >= node_cap) && cover(node) != 0) {
        node = 0; /* the bytes still count, charged to no stack */
        h->stacks_dropped++;
    }
    if (stamp[node] != epoch) {
        stamp[node] = epoch;
        dirty[ndirty++] = node;
    }
    int64_t *b = fil_state_at(FIL_SEG_BYTES, node);
    h->j_node = node;
    h->j_old_bytes = *b;
    h->j_old_total = h->total;
    __atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);
    *b += delta;
    h->total += delta;
    __atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);
    if (h->total > h->peak_total) {
        h->peak_total = h->total;
        h->at_peak = 1;
    }
}

/* Record a live block and charge it (not if it is the profiler's own).
 * Context: lock held. */
static void add_locked(void *p, size_t size, uint32_t node) {
    uint64_t osize;
    uint32_t onode;
    if (FIL_UNLIKELY(node == FIL_NODE_UNTRACKED))
        return;
    int r = fil_tracker_table_put((uintptr_t)p, size, node, &osize, &onode);
    if (r < 0) {
        fil_state->dropped++;
        return;
    }
    if (r == 1) /* freed behind our back (e.g. inside libc): forget the old block */
        fil_tracker_charge_locked(onode, -(int64_t)osize);
    fil_state->allocations++;
    fil_tracker_charge_locked(node, (int64_t)size);
}

void fil_tracker_add(void *p, size_t size, uint32_t node) {
    fil_lock();
    add_locked(p, size, node);
    fil_unlock();
}

void fil_tracker_remove(void *p) {
    uint64_t size;
    uint32_t node;
    fil_lock();
    if (fil_tracker_table_take((uintptr_t)p, &size, &node))
        fil_tracker_charge_locked(node, -(int64_t)size);
    fil_unlock();
}

/*
 * fil_tracker_realloc_begin - forget old before the real realloc runs, so no
 * other thread can be handed the same address while we still list it.
 * Fills *t for fil_tracker_realloc_end. Context: any thread, guarded.
 */
void fil_tracker_realloc_begin(void *old, fil_realloc_t *t) {
    t->had = 0;
    fil_lock();
    if (old && fil_tracker_table_take((uintptr_t)old, &t->size, &t->node))
        t->had = 1;
    fil_unlock();
}

/* p == NULL: the realloc failed and old is still live; otherwise the old
 * block is gone and p (size bytes) is charged to node. */
void fil_tracker_realloc_end(const fil_realloc_t *t, void *old, void *p, size_t size,
                             uint32_t node) {
    uint64_t osize;
    uint32_t onode;
    fil_lock();
    if (!p) {
        if (t->had)
            fil_tracker_table_put((uintptr_t)old, t->size, t->node, &osize, &onode);
    } else {
        if (t->had)
            fil_tracker_charge_locked(t->node, -(int64_t)t->size);
        add_locked(p, size, node);
    }
    fil_unlock();
}

static uint64_t pages(size_t len) { return ((uint64_t)len + 4095) & ~UINT64_C(4095); }

void fil_tracker_map(void *p, size_t len, uint32_t node) {
    if (FIL_UNLIKELY(node == FIL_NODE_UNTRACKED))
        return;
    fil_lock();
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
                                         pages(len + ((uintptr_t)p & 4095)));
    fil_unlock();
    return n;
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
        *(int64_t *)fil_state_at(FIL_SEG_PEAK, n) = *(int64_t *)fil_state_at(FIL_SEG_BYTES, n);
    ndirty = 0;
    epoch++;
    h->peak_total = h->total;
    h->at_peak = 1; /* now is the peak until memory goes down */
    __atomic_store_n(&h->snapshot_busy, 0, __ATOMIC_RELEASE);
    fil_unlock();
}

uint64_t fil_tracker_live_count(void) {
    fil_lock();
    uint64_t n = fil_tracker_table_count();
    fil_unlock();
    return n;
}
