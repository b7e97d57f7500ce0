/* SPDX-License-Identifier: MIT */
/*
 * table.c - the live-allocation table: address -> (size, node).
 *
 * Open addressing with linear probing over private pages; deletion shifts
 * later entries back (no tombstones), so lookups stay short however many
 * allocations come and go. The table doubles at 5/8 load, rehashing into
 * fresh pages; the old pages are returned at once. Context: fil_lock held
 * for everything here.
 *
 * An entry is 16 bytes: the address, and the size (40 bits) packed with the
 * node (24 bits). The table's cost is its cache and TLB misses and the
 * kernel zeroing its pages, so its size matters more than the unpacking.
 * The rare entry that does not pack (a block of 1 TiB or more, a node
 * beyond 16 million) goes to a small overflow list searched only when it is
 * not empty.
 */
#include "tracker_internal.h"

#include "fil/common.h"
#include "fil/sys.h"

typedef struct live {
    uintptr_t addr; /* 0 = empty slot */
    uint64_t meta;  /* size << NODE_BITS | node */
} live_t;

#define NODE_BITS 24
#define SIZE_LIMIT (UINT64_C(1) << (64 - NODE_BITS))

static live_t *slots; /* private pages, cap entries */
static uint64_t cap, used;

/* Entries that do not pack: (addr, size, node) triples, unsorted. */
typedef struct odd {
    uintptr_t addr;
    uint64_t size;
    uint64_t node;
} odd_t;
static odd_t *odd;
static uint64_t nodd, odd_cap;
static unsigned shift; /* 64 - log2(cap): slot = top bits of the product */

/* Blocks of 32 slots per 1 KiB of address space: the span number is
 * scattered with Fibonacci hashing (the high bits of span * 2^64/phi), and
 * the 32-byte offset inside the span picks the slot within the block
 * (glibc's chunks are at least 32 bytes apart, so neighbours never share a
 * home). Blocks allocated one after another then share cache lines of the
 * table: 2-4 small objects per line instead of one line each. The offset is
 * turned by the span's hash, so spans that share a block do not all start
 * at the same slots. */
#define SPAN_SHIFT 10
#define GRAIN_SHIFT 5
#define BLOCK_BITS (SPAN_SHIFT - GRAIN_SHIFT)
static inline uint64_t slot_of(uintptr_t a) {
    uint64_t h = (uint64_t)(a >> SPAN_SHIFT) * UINT64_C(0x9e3779b97f4a7c15);
    uint64_t within = ((a >> GRAIN_SHIFT) ^ (h >> (64 - BLOCK_BITS))) & ((1u << BLOCK_BITS) - 1);
    return (((h >> shift) << BLOCK_BITS) + within) & (cap - 1);
}

int fil_tracker_table_init(void) {
    cap = 1 << 16;
    shift = 64 - 16;
    slots = fil_sys_pages_huge(cap * sizeof(live_t));
    return slots ? 0 : -1;
}

/* Double the table. 0, or -1 with it unchanged. */
static int grow(void) {
    uint64_t ncap = cap * 2;
    live_t *n = fil_sys_pages_huge(ncap * sizeof(live_t));
    if (!n)
        return -1;
    live_t *old = slots;
    uint64_t ocap = cap;
    slots = n;
    cap = ncap;
    shift--;
    for (uint64_t i = 0; i < ocap; i++) {
        if (!old[i].addr)
            continue;
        uint64_t j = slot_of(old[i].addr);
        while (slots[j].addr)
            j = (j + 1) & (cap - 1);
        slots[j] = old[i];
    }
    fil_sys_unmap(old, ocap * sizeof(live_t));
    return 0;
}

/* Take addr out of the overflow list. 1 if it was there. */
static int odd_take(uintptr_t addr, uint64_t *size, uint32_t *node) {
    for (uint64_t i = 0; i < nodd; i++) {
        if (odd[i].addr != addr)
            continue;
        *size = odd[i].size;
        *node = (uint32_t)odd[i].node;
        odd[i] = odd[--nodd];
        return 1;
    }
    return 0;
}

/* Record an entry that does not pack. Same contract as table_put. */
static int odd_put(uintptr_t addr, uint64_t size, uint32_t node, uint64_t *old_size,
                   uint32_t *old_node) {
    int replaced = odd_take(addr, old_size, old_node);
    if (nodd == odd_cap) {
        uint64_t ncap = odd_cap ? odd_cap * 2 : 256;
        odd_t *n = fil_sys_pages(ncap * sizeof(odd_t));
        if (!n)
            return -1;
        for (uint64_t i = 0; i < nodd; i++)
            n[i] = odd[i];
        fil_sys_unmap(odd, odd_cap * sizeof(odd_t));
        odd = n;
        odd_cap = ncap;
    }
    odd[nodd++] = (odd_t){addr, size, node};
    return replaced;
}

int fil_tracker_table_put(uintptr_t addr, uint64_t size, uint32_t node, uint64_t *old_size,
                          uint32_t *old_node) {
    if (FIL_UNLIKELY(size >= SIZE_LIMIT || node >= (1u << NODE_BITS)))
        return odd_put(addr, size, node, old_size, old_node);
    if ((used + 1) * 8 > cap * 5 && grow() != 0)
        return -1;
    uint64_t j = slot_of(addr);
    while (slots[j].addr && slots[j].addr != addr)
        j = (j + 1) & (cap - 1);
    int replaced = slots[j].addr != 0;
    if (replaced) {
        *old_size = slots[j].meta >> NODE_BITS;
        *old_node = (uint32_t)(slots[j].meta & ((1u << NODE_BITS) - 1));
    } else {
        used++;
    }
    slots[j].addr = addr;
    slots[j].meta = size << NODE_BITS | node;
    return replaced;
}

/* Remove slot j and shift back the entries of its probe run. */
static void delete_at(uint64_t j) {
    uint64_t i = j;
    for (;;) {
        slots[i].addr = 0;
        uint64_t k = i;
        for (;;) {
            k = (k + 1) & (cap - 1);
            if (!slots[k].addr)
                return;
            uint64_t home = slot_of(slots[k].addr);
            /* Entry k may move to i if its home is not in (i, k]. */
            int between = i <= k ? (i < home && home <= k) : (i < home || home <= k);
            if (!between)
                break;
        }
        slots[i] = slots[k];
        i = k;
    }
}

int fil_tracker_table_take(uintptr_t addr, uint64_t *size, uint32_t *node) {
    uint64_t j = slot_of(addr);
    while (slots[j].addr) {
        if (slots[j].addr == addr) {
            *size = slots[j].meta >> NODE_BITS;
            *node = (uint32_t)(slots[j].meta & ((1u << NODE_BITS) - 1));
            delete_at(j);
            used--;
            return 1;
        }
        j = (j + 1) & (cap - 1);
    }
    return nodd ? odd_take(addr, size, node) : 0;
}

uint64_t fil_tracker_table_count(void) { return used + nodd; }
