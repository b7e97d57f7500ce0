/* SPDX-License-Identifier: MIT */
/*
 * table.c - the live-allocation table: address -> (size, node).
 *
 * Two levels. Address space is cut into 1 KiB spans; a small open-addressing
 * hash maps a span that holds live blocks to a leaf of 64 slots, one per
 * 16 bytes of the span (glibc and pymalloc both align blocks to 16 bytes, so
 * two live blocks never share a slot). A slot is 8 bytes: a presence bit,
 * the size (39 bits) and the node (24 bits).
 *
 * Why: the cost of this table is cache misses. Small objects allocated one
 * after another sit in the same span, so they share a leaf, and 4-8 of them
 * share one cache line of it; the span hash has one entry per span, not per
 * object, so it is ~20 times smaller than a table of objects and mostly
 * stays in cache. Memory: a 512-byte leaf per 1 KiB span holding many
 * blocks (about 26 bytes per 50-byte object, as much as a hash table of
 * objects would take).
 *
 * A span starts with a compact leaf instead: one cache line of 7 (grain,
 * slot) pairs, the grains (0..63, 0xff for a free pair) in its first 8
 * bytes, found with one 8-byte compare of them all. Blocks of a few hundred
 * bytes and up (bytearray buffers, a pandas column's pieces, the blocks of
 * pymalloc pools whose records are full) hold 1-4 per span, and gave each
 * span a 512-byte leaf of which they used 8-32 bytes: the table was 0.45x
 * the heap, and zeroing its new pages 15% of the run of
 * tests/bench/many_peaks.py. The 8th block of a span moves its pairs into
 * a full leaf (never back: a span that filled once fills again).
 *
 * The span hash uses linear probing with backward-shift deletion. A span
 * whose last block goes keeps its entry and leaf (a program that allocates
 * and frees in the same place would otherwise insert and delete an entry
 * every time); when the hash reaches half load, empty spans are swept out
 * first (leaves back to a free list) and the hash doubles only if live spans
 * still fill half of it. Leaves live in chunks that never move. The rare
 * block that does not pack (1/2 TiB or more, a node beyond 16 million) goes
 * to a small overflow list searched only when it is not empty.
 *
 * Context: fil_lock held for everything here.
 */
#include "tracker_internal.h"

#include "fil/common.h"
#include "fil/sys.h"

#define SPAN_SHIFT 10
#define GRAIN_SHIFT 4
#define SLOTS (1u << (SPAN_SHIFT - GRAIN_SHIFT))
#define NODE_BITS 24
#define PRESENT (UINT64_C(1) << 63)
#define SIZE_LIMIT (UINT64_C(1) << (63 - NODE_BITS))
#define LEAF_CHUNK_SHIFT 12 /* chunk k holds 4096 << k leaves */
#define LEAF_CHUNKS 20

typedef struct leaf {
    uint64_t slot[SLOTS]; /* PRESENT | size << NODE_BITS | node, or 0 */
} leaf_t;

/* A compact leaf: slot[i] holds grain[i]'s block when grain[i] != FREE;
 * grain[7] is always FREE (a search for FREE stops there when all 7 are
 * used). A free compact leaf is linked through slot[0]. */
#define PAIRS 7
#define FREE 0xffu
typedef struct cleaf {
    uint8_t grain[PAIRS + 1];
    uint64_t slot[PAIRS];
} cleaf_t;
_Static_assert(sizeof(cleaf_t) == 64, "a compact leaf is one cache line");

/* A span's leaf index: a full leaf's, or COMPACT | a compact leaf's. */
#define COMPACT (UINT32_C(1) << 31)

typedef struct span {
    uint64_t key;   /* span number + 1; 0 = empty */
    uint32_t leaf;  /* leaf index, COMPACT for a compact leaf */
    uint32_t count; /* live blocks in the leaf */
} span_t;

static span_t *spans; /* private pages, cap entries */
static uint64_t cap, nspans, used;
static unsigned shift; /* 64 - log2(cap) */

static leaf_t *leaf_chunk[LEAF_CHUNKS];   /* chunks of leaves, never moved */
static uint32_t nleaves;                  /* leaves ever handed out */
static uint32_t free_leaf = UINT32_MAX;   /* free list, linked through slot[0] */
static cleaf_t *cleaf_chunk[LEAF_CHUNKS]; /* the same for compact leaves */
static uint32_t ncleaves;
static uint32_t free_cleaf = UINT32_MAX;

/* Blocks that do not pack: (addr, size, node) triples, unsorted. */
typedef struct odd {
    uintptr_t addr;
    uint64_t size;
    uint64_t node;
} odd_t;
static odd_t *odd;
static uint64_t nodd, odd_cap;

static inline uint64_t home(uint64_t key) {
    return (key * UINT64_C(0x9e3779b97f4a7c15)) >> shift;
}

/* Chunk k holds indices [(2^k - 1) << LEAF_CHUNK_SHIFT, (2^(k+1) - 1) << ...). */
static inline uint32_t chunk_of(uint32_t i) {
    uint64_t q = ((uint64_t)i >> LEAF_CHUNK_SHIFT) + 1;
    return 63u - (uint32_t)__builtin_clzll(q);
}

static inline uint32_t chunk_base(uint32_t k) {
    return (uint32_t)(((UINT64_C(1) << k) - 1) << LEAF_CHUNK_SHIFT);
}

static inline leaf_t *leaf_at(uint32_t i) {
    uint32_t k = chunk_of(i);
    return &leaf_chunk[k][i - chunk_base(k)];
}

static inline cleaf_t *cleaf_at(uint32_t i) {
    uint32_t k = chunk_of(i);
    return &cleaf_chunk[k][i - chunk_base(k)];
}

/* The pair of compact leaf c whose grain is g (FREE: a free pair), or
 * PAIRS if none: the lowest zero byte of grains ^ g in every byte. */
static inline uint32_t cleaf_find(const cleaf_t *c, uint32_t g) {
    uint64_t v;
    __builtin_memcpy(&v, c->grain, sizeof v);
    v ^= UINT64_C(0x0101010101010101) * g;
    uint64_t z = (v - UINT64_C(0x0101010101010101)) & ~v & UINT64_C(0x8080808080808080);
    return (uint32_t)__builtin_ctzll(z | (UINT64_C(1) << 63)) >> 3;
}

int fil_tracker_table_init(void) {
    cap = 1 << 14;
    shift = 64 - 14;
    spans = fil_sys_pages(cap * sizeof(span_t));
    return spans ? 0 : -1;
}

/* Zeroed pages for leaf chunk k of len bytes. The first chunk of a kind
 * gets small pages (MADV_NOHUGEPAGE, for THP "always" too): as a huge
 * page, the first leaf a short-lived process (a pool worker, a small
 * script) touches would fault in and keep 2 MiB of memory for a few
 * leaves. Later chunks of 2 MiB and more serve a table that grew, and are
 * probed at random: huge pages spare them a TLB miss per 4 KiB. */
static void *chunk_pages(size_t len, uint32_t k) {
    return k ? fil_sys_pages_huge(len) : fil_sys_pages_small(len);
}

/* A zeroed leaf's index, or UINT32_MAX. */
static uint32_t leaf_new(void) {
    if (free_leaf != UINT32_MAX) {
        uint32_t i = free_leaf;
        leaf_t *l = leaf_at(i);
        free_leaf = (uint32_t)l->slot[0];
        l->slot[0] = 0;
        return i;
    }
    uint32_t k = chunk_of(nleaves);
    if (k >= LEAF_CHUNKS || nleaves >= COMPACT - 1)
        return UINT32_MAX;
    if (!leaf_chunk[k]) {
        leaf_chunk[k] = chunk_pages(((size_t)1 << (LEAF_CHUNK_SHIFT + k)) * sizeof(leaf_t), k);
        if (!leaf_chunk[k])
            return UINT32_MAX;
    }
    return nleaves++;
}

/* An empty compact leaf's index (COMPACT set), or UINT32_MAX. */
static uint32_t cleaf_new(void) {
    cleaf_t *c;
    uint32_t i;

    if (free_cleaf != UINT32_MAX) {
        i = free_cleaf;
        c = cleaf_at(i);
        free_cleaf = (uint32_t)c->slot[0];
        c->slot[0] = 0;
        return i | COMPACT;
    }
    uint32_t k = chunk_of(ncleaves);
    if (k >= LEAF_CHUNKS || ncleaves >= COMPACT - 1)
        return UINT32_MAX;
    if (!cleaf_chunk[k]) {
        cleaf_chunk[k] = chunk_pages(((size_t)1 << (LEAF_CHUNK_SHIFT + k)) * sizeof(cleaf_t), k);
        if (!cleaf_chunk[k])
            return UINT32_MAX;
    }
    i = ncleaves++;
    c = cleaf_at(i);
    __builtin_memset(c->grain, FREE, sizeof c->grain);
    return i | COMPACT;
}

/* Return an empty leaf (all slots 0; a compact one: all pairs free) to
 * its free list. */
static void leaf_free(uint32_t i) {
    if (i & COMPACT) {
        cleaf_at(i & ~COMPACT)->slot[0] = free_cleaf;
        free_cleaf = i & ~COMPACT;
        return;
    }
    leaf_at(i)->slot[0] = free_leaf;
    free_leaf = i;
}

/* Double the span hash. 0, or -1 with it unchanged. */
static int grow(void) {
    uint64_t ncap = cap * 2;
    span_t *n = fil_sys_pages_huge(ncap * sizeof(span_t));
    if (!n)
        return -1;
    span_t *old = spans;
    uint64_t ocap = cap;
    spans = n;
    cap = ncap;
    shift--;
    for (uint64_t i = 0; i < ocap; i++) {
        if (!old[i].key)
            continue;
        uint64_t j = home(old[i].key);
        while (spans[j].key)
            j = (j + 1) & (cap - 1);
        spans[j] = old[i];
    }
    fil_sys_unmap(old, ocap * sizeof(span_t));
    return 0;
}

/* Slot of span key in the hash, or of the empty slot ending its run. */
static inline uint64_t find(uint64_t key) {
    uint64_t j = home(key);
    while (spans[j].key && spans[j].key != key)
        j = (j + 1) & (cap - 1);
    return j;
}

/* Remove span slot j and shift back the entries of its probe run. */
static void delete_at(uint64_t i) {
    for (;;) {
        spans[i].key = 0;
        uint64_t k = i;
        for (;;) {
            k = (k + 1) & (cap - 1);
            if (!spans[k].key)
                return;
            uint64_t h = home(spans[k].key);
            int between = i <= k ? (i < h && h <= k) : (i < h || h <= k);
            if (!between)
                break;
        }
        spans[i] = spans[k];
        i = k;
    }
}

/* Remove the spans with no live block, freeing their leaves. Rebuilds the
 * hash in place by deleting with backward shift. */
static void sweep(void) {
    for (uint64_t i = 0; i < cap;) {
        if (spans[i].key && spans[i].count == 0) {
            leaf_free(spans[i].leaf);
            delete_at(i); /* may move a later entry into i: look at i again */
            nspans--;
        } else {
            i++;
        }
    }
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

/* Record a block that does not pack. Same contract as table_put; on -1
 * nothing changed (room is made before the old entry is taken out). */
static int odd_put(uintptr_t addr, uint64_t size, uint32_t node, uint64_t *old_size,
                   uint32_t *old_node) {
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
    int replaced = odd_take(addr, old_size, old_node);
    odd[nodd++] = (odd_t){addr, size, node};
    return replaced;
}

/* The slot of addr in span j's leaf, or NULL (a compact leaf without it). */
static inline uint64_t *slot_of(uint64_t j, uintptr_t addr) {
    uint32_t g = (uint32_t)(addr >> GRAIN_SHIFT) & (SLOTS - 1);
    if (!(spans[j].leaf & COMPACT))
        return &leaf_at(spans[j].leaf)->slot[g];
    cleaf_t *c = cleaf_at(spans[j].leaf & ~COMPACT);
    uint32_t i = cleaf_find(c, g);
    return i < PAIRS ? &c->slot[i] : NULL;
}

/* Take addr out of the leaves. 1 and its size/node if it was there. */
static int leaf_take(uintptr_t addr, uint64_t *size, uint32_t *node) {
    uint64_t j = find((addr >> SPAN_SHIFT) + 1);
    if (!spans[j].key)
        return 0;
    uint64_t *s = slot_of(j, addr);
    if (!s || !*s)
        return 0;
    if (spans[j].leaf & COMPACT) { /* the pair is free again */
        cleaf_t *c = cleaf_at(spans[j].leaf & ~COMPACT);
        c->grain[s - c->slot] = FREE;
    }
    *size = (*s & ~PRESENT) >> NODE_BITS;
    *node = (uint32_t)(*s & ((1u << NODE_BITS) - 1));
    *s = 0;
    used--;
    spans[j].count--; /* an empty span stays until a sweep */
    return 1;
}

/* A free slot for addr in span j's compact leaf, which does not hold it:
 * a free pair, or once all are used a full leaf the pairs move into (the
 * span's leaf from then on). NULL, nothing changed, if no leaf is left. */
static uint64_t *compact_room(uint64_t j, uintptr_t addr) {
    uint32_t ci = spans[j].leaf & ~COMPACT;
    cleaf_t *c = cleaf_at(ci);
    uint32_t g = (uint32_t)(addr >> GRAIN_SHIFT) & (SLOTS - 1);
    uint32_t i = cleaf_find(c, FREE);

    if (i < PAIRS) {
        c->grain[i] = (uint8_t)g;
        return &c->slot[i];
    }
    uint32_t fi = leaf_new();
    if (fi == UINT32_MAX)
        return NULL;
    leaf_t *f = leaf_at(fi);
    for (i = 0; i < PAIRS; i++) {
        f->slot[c->grain[i]] = c->slot[i];
        c->grain[i] = FREE;
        c->slot[i] = 0;
    }
    leaf_free(ci | COMPACT);
    spans[j].leaf = fi;
    return &f->slot[g];
}

/* Store a packable block in its leaf. Same contract as table_put. */
static int leaf_put(uintptr_t addr, uint64_t size, uint32_t node, uint64_t *old_size,
                    uint32_t *old_node) {
    uint64_t key = (addr >> SPAN_SHIFT) + 1;
    uint64_t j = find(key);
    if (!spans[j].key) {
        if ((nspans + 1) * 2 > cap) {
            sweep();
            if ((nspans + 1) * 4 > cap && grow() != 0)
                return -1;
            j = find(key);
        }
        uint32_t l = cleaf_new();
        if (l == UINT32_MAX)
            return -1;
        spans[j] = (span_t){key, l, 0};
        nspans++;
    }
    uint64_t *s = slot_of(j, addr);
    if (!s && (s = compact_room(j, addr)) == NULL)
        return -1;
    int replaced = *s != 0;
    if (replaced) {
        *old_size = (*s & ~PRESENT) >> NODE_BITS;
        *old_node = (uint32_t)(*s & ((1u << NODE_BITS) - 1));
    } else {
        spans[j].count++;
        used++;
    }
    *s = PRESENT | size << NODE_BITS | node;
    return replaced;
}

/* A block lives in the leaves or in the overflow list, never both: a new
 * block at a live address replaces the old one wherever it was. */
int fil_tracker_table_put(uintptr_t addr, uint64_t size, uint32_t node, uint64_t *old_size,
                          uint32_t *old_node) {
    if (FIL_UNLIKELY(size >= SIZE_LIMIT || node >= (1u << NODE_BITS))) {
        int r = odd_put(addr, size, node, old_size, old_node);
        if (r == 0 && leaf_take(addr, old_size, old_node))
            r = 1;
        return r;
    }
    int in_odd = FIL_UNLIKELY(nodd != 0) && odd_take(addr, old_size, old_node);
    uint64_t s2;
    uint32_t n2;
    int r = leaf_put(addr, size, node, in_odd ? &s2 : old_size, in_odd ? &n2 : old_node);
    return r < 0 ? -1 : (r || in_odd);
}

int fil_tracker_table_take(uintptr_t addr, uint64_t *size, uint32_t *node) {
    if (leaf_take(addr, size, node))
        return 1;
    return nodd ? odd_take(addr, size, node) : 0;
}

uint64_t fil_tracker_table_count(void) {
    return used + nodd;
}

/* Forget every block (a fork child: they are its parent's). The old
 * tables are unmapped (this process's copies only) and a fresh one is made. */
int fil_tracker_table_forget(void) {
    fil_sys_unmap(spans, cap * sizeof(span_t));
    for (uint32_t k = 0; k < LEAF_CHUNKS; k++) {
        fil_sys_unmap(leaf_chunk[k], ((size_t)1 << (LEAF_CHUNK_SHIFT + k)) * sizeof(leaf_t));
        fil_sys_unmap(cleaf_chunk[k], ((size_t)1 << (LEAF_CHUNK_SHIFT + k)) * sizeof(cleaf_t));
        leaf_chunk[k] = NULL;
        cleaf_chunk[k] = NULL;
    }
    nspans = used = nodd = 0;
    nleaves = ncleaves = 0;
    free_leaf = free_cleaf = UINT32_MAX;
    return fil_tracker_table_init();
}
