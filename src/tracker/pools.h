/* SPDX-License-Identifier: MIT */
/*
 * pools.h - metadata of Python objects found by address arithmetic.
 *
 * pymalloc carves small blocks (1..512 bytes, 16-byte classes) out of pools
 * of one size class each, and pools out of arenas that the tracker hands it
 * (pools.c: PyObject_SetArenaAllocator). The tracker makes every arena
 * S-aligned (S = the arena size pymalloc asks for) and maps M bytes of its
 * own just below it, one record of R bytes per pool. So the record of a
 * block at p is
 *
 *     (p & ~(S - 1)) - M + ((p & (S - 1)) >> pool_shift) * R
 *
 * and a one-byte-per-arena radix (radix_top/leaves) only answers "is p in
 * such an arena" (a block pymalloc could not place comes from malloc).
 *
 * A record: a dictionary of 15 (node, requested size) pairs with reference
 * counts, each pair and its count in one 8-byte entry (one compare finds
 * it, one cache line holds the dictionary), and one nibble per block
 * (block index = pool offset / block size), 0 for "not recorded here",
 * else 1 + the dictionary entry. So a live object costs half a byte, and a
 * pool 384 bytes (16 KiB pools; 192 for the 4 KiB pools of Python 3.9):
 * 2.3% of an arena's address space and less of its resident memory,
 * instead of the live table's 8 bytes per 16. How many blocks a record
 * lists is the sum of its entries' counts (nothing else keeps it: the
 * slow paths that need it add them up).
 * A search of a full dictionary finds nothing until one of its blocks is
 * freed, so a record remembers that its last search failed (`full`) and
 * sends the next misses to the table at once (a workload of random sizes
 * fills dictionaries and kept searching all 15 entries at every miss).
 * Exactness does not move: the dictionary holds the requested size itself.
 * A block whose pair does not fit in a full dictionary, or whose index is
 * beyond the nibbles (only the second half of a 16-byte class pool), goes
 * to the live table (table.c) like a malloc block.
 *
 * Why the nibbles can be trusted: a record is laid out for one class (cls),
 * checked against pymalloc's pool header by every recorded allocation; a
 * pool changes class only after pymalloc emptied it, and then every block
 * recorded before is gone (a free takes the record's class: a block
 * recorded since the change is live, so the record was laid out again). A
 * nonzero nibble is always exactly one charge not yet uncharged: taking it
 * uncharges and clears it, and a relayout or an arena's release uncharges
 * the nibbles of blocks freed while the profiler was not looking (guard
 * set), so the per-node bytes never drift.
 *
 * Context: fil_lock held for everything here.
 */
#ifndef FIL_TRACKER_POOLS_H
#define FIL_TRACKER_POOLS_H

#include <stddef.h>
#include <stdint.h>

#include "fil/common.h"

#define FIL_POOL_DICT 15u
#define FIL_POOLS_PER_ARENA 64u
#define FIL_RADIX_TOP_SHIFT 36u
#define FIL_RADIX_TOP 2048u /* covers the 47-bit user address space */

/* A dictionary entry: a (node, size) pair and how many nibbles name it. */
typedef struct fil_pool_ent {
    uint32_t node;
    uint16_t size; /* requested bytes, 1..512 */
    uint16_t refs; /* nibbles naming the entry; 0: free */
} fil_pool_ent_t;

typedef struct fil_pool_rec {
    uint8_t cls;  /* block size / 16 the nibbles are laid out for; 0: none yet */
    uint8_t full; /* a hint: 1 after a search found no entry free, until a block
                   * of the record is taken (fil_pool_take) or it is laid out */
    uint8_t last; /* a hint: the entry the last search returned (< FIL_POOL_DICT),
                   * where the fast path looks when a pair is not at its home */
    uint8_t pad[5];
    fil_pool_ent_t ent[FIL_POOL_DICT];
    uint8_t nib[]; /* geometry.nib_cap / 2 bytes */
} fil_pool_rec_t;

/* pymalloc's geometry, fixed by the first arena (pools.c). */
typedef struct fil_pool_geom {
    unsigned arena_shift; /* log2 S; 0 until an arena with records exists */
    unsigned pool_shift;  /* log2 of the pool size (S / 64) */
    uint32_t rec_size;    /* R */
    uint32_t nib_cap;     /* blocks a record has nibbles for */
    uintptr_t meta_size;  /* M = 64 * R, page-rounded */
} fil_pool_geom_t;

extern fil_pool_geom_t fil_pool_geom;

/* The geometry of CPython 3.10+ on 64-bit, as constants: the fast paths are
 * written once over a geometry argument and instantiated for this one
 * (constant shifts and masks) and for fil_pool_geom (anything else). */
#define FIL_POOL_GEOM_1M ((fil_pool_geom_t){20, 14, 128 + 256, 512, 64 * (128 + 256)})
#define FIL_POOL_GEOM_256K ((fil_pool_geom_t){18, 12, 128 + 64, 128, 64 * (128 + 64)})
extern uint8_t *fil_pool_radix[FIL_RADIX_TOP];

/* ceil(65536 / c): (g * recip[c]) >> 16 == g / c for g < 2048, c <= 32
 * (tests/unit/test_tracker.c checks every case). */
extern const uint32_t fil_pool_recip[33];

/* The record of the pool holding p, or NULL if p is not in an arena with
 * records. ~10 instructions: two dependent loads (radix, leaf byte). */
static inline __attribute__((always_inline)) fil_pool_rec_t *
fil_pool_rec_of(uintptr_t p, fil_pool_geom_t g) {
    uintptr_t top = p >> FIL_RADIX_TOP_SHIFT;
    if (FIL_UNLIKELY(top >= FIL_RADIX_TOP))
        return NULL;
    const uint8_t *leaf = fil_pool_radix[top];
    if (!leaf || !leaf[(p & ((UINT64_C(1) << FIL_RADIX_TOP_SHIFT) - 1)) >> g.arena_shift])
        return NULL;
    uintptr_t s = (uintptr_t)1 << g.arena_shift;
    return (fil_pool_rec_t *)((p & ~(s - 1)) - g.meta_size +
                              ((p & (s - 1)) >> g.pool_shift) * g.rec_size);
}

/* The class (block size / 16) of the pool holding p, from pymalloc's own
 * pool header: `uint szidx` at offset 36 of struct pool_header, the same in
 * every CPython 3 (Objects/obmalloc.c, Include/internal/pycore_obmalloc.h);
 * block size = (szidx + 1) << 4. Reading the authority (one load of a cache
 * line pymalloc has just written) rather than deriving the class from the
 * request keeps blocks that realloc shrank in place, and the debug
 * allocator's offset pointers, in the right slot. Only for an address in
 * an arena of ours (the pool is mapped). */
static inline uint32_t fil_pool_class(uintptr_t p, fil_pool_geom_t g) {
    uintptr_t pool = p & ~(((uintptr_t)1 << g.pool_shift) - 1);
    return *(const uint32_t *)(pool + 36) + 1;
}

/* Index of the block at p in a pool of class c: offset / (16 c), one
 * multiplication. Unique per block whatever pymalloc's pool header size. */
static inline uint32_t fil_pool_index(uintptr_t p, uint32_t c, fil_pool_geom_t g) {
    uint32_t grain = (uint32_t)(p & (((uintptr_t)1 << g.pool_shift) - 1)) >> 4;
    return (grain * fil_pool_recip[c]) >> 16;
}

static inline uint32_t fil_pool_nib(const fil_pool_rec_t *r, uint32_t k) {
    return (r->nib[k >> 1] >> ((k & 1) << 2)) & 15u;
}

static inline void fil_pool_set_nib(fil_pool_rec_t *r, uint32_t k, uint32_t v) {
    unsigned sh = (k & 1) << 2;
    r->nib[k >> 1] = (uint8_t)((r->nib[k >> 1] & ~(15u << sh)) | (v << sh));
}

/* 1 if entry e holds (node, size): one 8-byte load and compare (the
 * count, in the top 16 bits, is shifted out). */
static inline int fil_pool_ent_is(const fil_pool_ent_t *e, uint32_t node, uint32_t size) {
    uint64_t v;
    __builtin_memcpy(&v, e, sizeof v);
    return ((v ^ (node | (uint64_t)size << 32)) << 16) == 0;
}

/* Blocks record r lists (nonzero nibbles). */
static inline uint32_t fil_pool_listed(const fil_pool_rec_t *r) {
    uint32_t n = 0;
    for (unsigned i = 0; i < FIL_POOL_DICT; i++)
        n += r->ent[i].refs;
    return n;
}

/* Where (node, size) is looked for first in a record's dictionary: objects
 * of several lines share a pool, so a hash spreads them instead of one
 * "last used" entry that they would keep evicting. */
static inline uint32_t fil_pool_home(uint32_t node, uint32_t size) {
    return (uint32_t)(((uint64_t)((node ^ (size << 21)) * 0x9e3779b1u) * FIL_POOL_DICT) >> 32);
}

/* Slow paths (pools.c). */
/* Lay r out for class c, uncharging blocks it still lists (they are gone:
 * pymalloc changes a pool's class only once it is empty). */
void fil_pool_relayout(fil_pool_rec_t *r, uint32_t c);
/* r's dictionary entry for (node, size), looked for from its home on,
 * made if there is a free one; FIL_POOL_DICT if the dictionary is full. */
uint32_t fil_pool_entry(fil_pool_rec_t *r, uint32_t node, uint32_t size, uint32_t home);
/* Blocks listed in all records (the live count's share of them). */
uint64_t fil_pool_count_live(void);

/*
 * fil_pool_put - record a block of size bytes (1..512) at p, in record r,
 * charged to node. 1 if recorded; 2 if recorded in place of a block listed
 * at the same place that was freed behind our back (its size and node are
 * returned for the caller to uncharge); 0 if it does not fit (the caller
 * uses the live table).
 */
static inline __attribute__((always_inline)) int
fil_pool_put(fil_pool_rec_t *r, uintptr_t p, uint32_t size, uint32_t node, uint64_t *old_size,
             uint32_t *old_node, fil_pool_geom_t g) {
    uint32_t c = fil_pool_class(p, g);
    if (FIL_UNLIKELY(c - 1 >= 32 || size - 1 >= (c << 4)))
        return 0; /* not a pool pymalloc laid out, or not a block of it */
    if (FIL_UNLIKELY(r->cls != c))
        fil_pool_relayout(r, c);
    uint32_t k = fil_pool_index(p, c, g);
    if (FIL_UNLIKELY(k >= g.nib_cap))
        return 0;
    uint32_t e = fil_pool_home(node, size);
    if (FIL_UNLIKELY(!fil_pool_ent_is(&r->ent[e], node, size))) {
        if (r->full)
            return 0; /* no search until a block of this pool goes */
        e = fil_pool_entry(r, node, size, e);
        if (e >= FIL_POOL_DICT)
            return 0;
    }
    uint32_t old = fil_pool_nib(r, k);
    int replaced = old != 0;
    if (FIL_UNLIKELY(replaced)) { /* freed behind our back: the caller uncharges it */
        *old_size = r->ent[old - 1].size;
        *old_node = r->ent[old - 1].node;
        r->ent[old - 1].refs--;
        r->full = 0;
    }
    fil_pool_set_nib(r, k, e + 1);
    r->ent[e].refs++;
    return 1 + replaced;
}

/*
 * fil_pool_put_plain - fil_pool_put's common case only: the pool's class
 * is the record's, the block's place is free and (node, size) is at its
 * home in the dictionary, or at the entry the last search returned (a
 * pair whose home was taken when it came: pure_python.py's buffer that
 * str % formats into, made and freed for every row in the same block of a
 * pool full of older pairs, searched at every turn). 1 if recorded; -1
 * (nothing changed) if the pair is at neither and the dictionary is full,
 * where fil_pool_put would answer 0 without a search; 0 (nothing changed)
 * for anything else, which fil_pool_put then handles. ~30 instructions,
 * no call.
 */
static inline __attribute__((always_inline)) int
fil_pool_put_plain(fil_pool_rec_t *r, uintptr_t p, uint32_t size, uint32_t node,
                   fil_pool_geom_t g) {
    uint32_t c = fil_pool_class(p, g);
    if (FIL_UNLIKELY(c != r->cls || size - 1 >= (c << 4)))
        return 0; /* also a class not laid out yet, or not pymalloc's (c - 1 >= 32) */
    uint32_t k = fil_pool_index(p, c, g);
    uint32_t e = fil_pool_home(node, size);
    if (FIL_UNLIKELY(k >= g.nib_cap))
        return 0;
    if (FIL_UNLIKELY(!fil_pool_ent_is(&r->ent[e], node, size))) {
        e = r->last;
        if (!fil_pool_ent_is(&r->ent[e], node, size))
            return r->full ? -1 : 0;
    }
    uint8_t *b = &r->nib[k >> 1];
    unsigned sh = (k & 1) << 2;
    if (FIL_UNLIKELY((*b >> sh) & 15u))
        return 0;
    *b = (uint8_t)(*b | (e + 1) << sh);
    r->ent[e].refs++;
    return 1;
}

/* fil_pool_take - 1 and the block's size and node if p is recorded in r
 * (forgotten now), else 0. ~15 instructions, no call. */
static inline __attribute__((always_inline)) int
fil_pool_take(fil_pool_rec_t *r, uintptr_t p, uint64_t *size, uint32_t *node, fil_pool_geom_t g) {
    uint32_t c = r->cls;
    if (FIL_UNLIKELY(!c))
        return 0;
    uint32_t k = fil_pool_index(p, c, g);
    if (FIL_UNLIKELY(k >= g.nib_cap))
        return 0;
    uint8_t *b = &r->nib[k >> 1];
    unsigned sh = (k & 1) << 2;
    uint32_t v = (*b >> sh) & 15u;
    if (FIL_UNLIKELY(!v))
        return 0;
    *b = (uint8_t)(*b ^ v << sh);
    r->full = 0; /* an entry may be free now */
    fil_pool_ent_t *e = &r->ent[v - 1];
    e->refs--;
    *size = e->size;
    *node = e->node;
    return 1;
}

#endif
