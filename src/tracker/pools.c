/* SPDX-License-Identifier: MIT */
/*
 * pools.c - pymalloc's arenas, with a record per pool below each of them.
 *
 * The arena allocator (PyObject_SetArenaAllocator, installed by
 * src/interpose/pymem.c) maps M + S bytes so that the arena itself is
 * S-aligned and the pool records (pools.h) sit in the M bytes just below it.
 * Arenas are asked for top-down right below the previous one (the kernel's
 * own order), so they pack without gaps and without over-mapping; only when
 * the hint is taken does it map 2S + M once and trim it. Near RLIMIT_AS,
 * where even that fails, a few aligned places around a plain mapping are
 * tried with MAP_FIXED_NOREPLACE, and at last pymalloc gets a plain
 * unaligned arena without records (its blocks go to the live table), so
 * the profiler never fails an arena that plain Python would have had.
 *
 * Memory: M = 64 records of 384 bytes (1 MiB arenas, 16 KiB pools: 24 KiB,
 * 2.3%) or 192 bytes (Python 3.9's 256 KiB arenas: 12 KiB); plus one radix
 * byte per arena-sized piece of address space, in 64 KiB leaves (256 KiB
 * for 3.9) each covering 64 GiB, mapped when first needed. All raw mmap
 * (invariant 1); nothing is mapped until pymalloc asks for its first arena.
 *
 * The geometry comes from the first arena: 1 MiB means 16 KiB pools (3.10+
 * on 64-bit), 256 KiB means 4 KiB pools (3.9, or a build without the radix
 * tree); any other size gets plain arenas and no records.
 *
 * Context: the arena functions are called by pymalloc (GIL held, no fil
 * lock held); they take the lock for the radix and records. The record
 * helpers run under the lock.
 */
#include "pools.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/lock.h"
#include "fil/sys.h"
#include "tracker_internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

fil_pool_geom_t fil_pool_geom;
uint8_t *fil_pool_radix[FIL_RADIX_TOP];

#define R(c) ((65536u + (c)-1) / (c))
const uint32_t fil_pool_recip[33] = {
    0,      R(1),  R(2),  R(3),  R(4),  R(5),  R(6),  R(7),  R(8),  R(9),  R(10),
    R(11),  R(12), R(13), R(14), R(15), R(16), R(17), R(18), R(19), R(20), R(21),
    R(22),  R(23), R(24), R(25), R(26), R(27), R(28), R(29), R(30), R(31), R(32),
};
#undef R

/* Where the next arena's mapping is asked for (just below the last one);
 * 0: no hint. Only a hint: read and written with relaxed atomics. */
static uintptr_t next_hint;
static int geom_off; /* 1: this pymalloc's arena size is unknown: no records */

static void *raw_map(uintptr_t at, size_t len, int extra) {
    long r = syscall(SYS_mmap, (void *)at, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    return (r < 0 && r > -4096) ? NULL : (void *)r;
}

/* Fix the geometry from the first arena size. 1 if arenas of `size` get
 * records. Context: pymalloc's arena allocator (GIL held). */
static int geometry(size_t size) {
    fil_pool_geom_t *g = &fil_pool_geom;
    if (g->arena_shift)
        return size == (size_t)1 << g->arena_shift;
    if (geom_off)
        return 0;
    if (size == (size_t)1 << 20)
        *g = FIL_POOL_GEOM_1M;
    else if (size == (size_t)1 << 18)
        *g = FIL_POOL_GEOM_256K;
    else
        geom_off = 1;
    return !geom_off;
}

/* Map M + S bytes with the arena part S-aligned, or NULL. */
static char *map_aligned(size_t s, size_t m) {
    uintptr_t hint = __atomic_load_n(&next_hint, __ATOMIC_RELAXED);
    char *b = hint ? raw_map(hint, m + s, 0) : NULL;
    if (b && ((uintptr_t)b + m) % s != 0) {
        fil_sys_unmap(b, m + s);
        b = NULL;
    }
    if (!b) { /* over-map once, trim to the aligned part */
        char *o = raw_map(0, 2 * s + m, 0);
        if (o) {
            uintptr_t a = ((uintptr_t)o + m + s - 1) & ~(uintptr_t)(s - 1);
            b = (char *)(a - m);
            fil_sys_unmap(o, (size_t)(b - o));
            fil_sys_unmap(b + m + s, (size_t)(o + 2 * s + m - (b + m + s)));
        }
    }
    if (!b) { /* near the limit: aligned places around a plain mapping */
        char *o = raw_map(0, m + s, 0);
        if (!o)
            return NULL;
        fil_sys_unmap(o, m + s);
        uintptr_t lo = ((uintptr_t)o + m) & ~(uintptr_t)(s - 1);
        for (uintptr_t a = lo; !b && a <= lo + s; a += s) {
            if (a < m)
                continue;
            b = raw_map(a - m, m + s, MAP_FIXED_NOREPLACE);
            if (b && (uintptr_t)b != a - m) { /* an old kernel took it as a hint */
                fil_sys_unmap(b, m + s);
                b = NULL;
            }
        }
    }
    if (b)
        __atomic_store_n(&next_hint, (uintptr_t)b - s, __ATOMIC_RELAXED);
    return b;
}

/* Set the radix byte of the arena at a. 0, or -1 if a leaf could not be
 * mapped (the arena then goes without records). Context: lock held. */
static int radix_set(uintptr_t a, uint8_t v) {
    uintptr_t top = a >> FIL_RADIX_TOP_SHIFT;
    if (top >= FIL_RADIX_TOP)
        return -1;
    unsigned as = fil_pool_geom.arena_shift;
    if (!fil_pool_radix[top]) {
        if (!v)
            return 0;
        fil_pool_radix[top] = fil_sys_pages((size_t)1 << (FIL_RADIX_TOP_SHIFT - as));
        if (!fil_pool_radix[top])
            return -1;
    }
    fil_pool_radix[top][(a & ((UINT64_C(1) << FIL_RADIX_TOP_SHIFT) - 1)) >> as] = v;
    return 0;
}

/* See fil/tracker.h. */
int fil_tracker_arena_foreign(size_t size) {
    unsigned s = fil_pool_geom.arena_shift;
    return s && size != (size_t)1 << s;
}

/*
 * fil_tracker_arena_new - an arena of `size` bytes for pymalloc, S-aligned
 * with its pool records below it when possible, else a plain mapping;
 * NULL if even that fails. Context: pymalloc (GIL held); takes the lock.
 */
void *fil_tracker_arena_new(size_t size) {
    if (!geometry(size))
        return raw_map(0, size, 0);
    size_t m = fil_pool_geom.meta_size;
    char *b = map_aligned(size, m);
    if (!b)
        return raw_map(0, size, 0);
    fil_lock();
    int r = radix_set((uintptr_t)b + m, 1);
    fil_unlock();
    if (r != 0) { /* no leaf: give back the records' part, keep the arena */
        fil_sys_unmap(b, m);
    }
    return b + m;
}

/*
 * fil_tracker_pools_forget - a fork child forgets the blocks its parent
 * recorded: the records of every arena are dropped with MADV_DONTNEED
 * (this process's copy of those pages becomes zero pages again, the
 * parent's are untouched, nothing is copied), so a record reads "no class
 * yet, nothing live" and an inherited object freed by the child is simply
 * unknown. The arenas themselves stay: pymalloc goes on using them.
 * Context: fork child, single-threaded, lock held.
 */
void fil_tracker_pools_forget(void) {
    unsigned as = fil_pool_geom.arena_shift;
    if (!as)
        return;
    size_t per_leaf = (size_t)1 << (FIL_RADIX_TOP_SHIFT - as);
    for (uintptr_t top = 0; top < FIL_RADIX_TOP; top++) {
        const uint8_t *leaf = fil_pool_radix[top];
        for (size_t i = 0; leaf && i < per_leaf; i++) {
            if (!leaf[i])
                continue;
            uintptr_t a = (top << FIL_RADIX_TOP_SHIFT) | ((uintptr_t)i << as);
            syscall(SYS_madvise, a - fil_pool_geom.meta_size, fil_pool_geom.meta_size,
                    MADV_DONTNEED);
        }
    }
}

/* Uncharge what record r still lists (blocks freed behind our back) and
 * clear it. Context: lock held. */
static void drop_stale(fil_pool_rec_t *r) {
    uint32_t left = fil_pool_listed(r);
    for (uint32_t k = 0; left && k < fil_pool_geom.nib_cap; k++) {
        uint32_t v = fil_pool_nib(r, k);
        if (!v)
            continue;
        fil_tracker_charge_locked(r->ent[v - 1].node, -(int64_t)r->ent[v - 1].size);
        fil_pool_set_nib(r, k, 0);
        left--;
    }
    for (unsigned i = 0; i < FIL_POOL_DICT; i++)
        r->ent[i].refs = 0;
}

/*
 * fil_tracker_arena_del - pymalloc gives back the arena at p (size bytes):
 * uncharge what its records still list, forget it, unmap it with its
 * records. Context: pymalloc (GIL held); takes the lock.
 */
void fil_tracker_arena_del(void *p, size_t size) {
    size_t m = 0;
    fil_lock();
    fil_pool_rec_t *r = fil_pool_rec_of((uintptr_t)p, fil_pool_geom);
    if (r) {
        m = fil_pool_geom.meta_size;
        for (unsigned i = 0; i < FIL_POOLS_PER_ARENA; i++) {
            fil_pool_rec_t *q = (fil_pool_rec_t *)((char *)r + i * fil_pool_geom.rec_size);
            if (fil_pool_listed(q))
                drop_stale(q);
        }
        radix_set((uintptr_t)p, 0);
    }
    fil_unlock();
    fil_sys_unmap((char *)p - m, size + m);
}

void fil_pool_relayout(fil_pool_rec_t *r, uint32_t c) {
    if (fil_pool_listed(r))
        drop_stale(r);
    memset(r->nib, 0, fil_pool_geom.nib_cap / 2);
    for (unsigned i = 0; i < FIL_POOL_DICT; i++)
        r->ent[i].refs = 0;
    r->cls = (uint8_t)c;
    r->full = 0;
}

uint32_t fil_pool_entry(fil_pool_rec_t *r, uint32_t node, uint32_t size, uint32_t home) {
    uint32_t free_at = FIL_POOL_DICT;
    for (uint32_t n = 0, i = home; n < FIL_POOL_DICT; n++, i = i + 1 < FIL_POOL_DICT ? i + 1 : 0) {
        if (fil_pool_ent_is(&r->ent[i], node, size))
            return r->last = (uint8_t)i;
        if (!r->ent[i].refs && free_at == FIL_POOL_DICT)
            free_at = i;
    }
    if (free_at < FIL_POOL_DICT) {
        r->ent[free_at].node = node;
        r->ent[free_at].size = (uint16_t)size;
        r->last = (uint8_t)free_at;
    } else {
        r->full = 1; /* the next misses go to the table without a search */
    }
    return free_at;
}

/*
 * fil_pool_count_live - blocks listed in all records (for tests: the live
 * count): every arena is found through the radix. Context: lock held;
 * O(address space the radix covers), not for a fast path.
 */
uint64_t fil_pool_count_live(void) {
    uint64_t n = 0;
    unsigned as = fil_pool_geom.arena_shift;
    for (uintptr_t top = 0; as && top < FIL_RADIX_TOP; top++) {
        const uint8_t *leaf = fil_pool_radix[top];
        for (uintptr_t i = 0; leaf && i < ((uintptr_t)1 << (FIL_RADIX_TOP_SHIFT - as)); i++) {
            if (!leaf[i])
                continue;
            uintptr_t a = top << FIL_RADIX_TOP_SHIFT | i << as;
            for (unsigned q = 0; q < FIL_POOLS_PER_ARENA; q++)
                n += fil_pool_listed(
                    (const fil_pool_rec_t *)(a - fil_pool_geom.meta_size + q * fil_pool_geom.rec_size));
        }
    }
    return n;
}
