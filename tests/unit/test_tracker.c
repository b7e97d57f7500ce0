/* SPDX-License-Identifier: MIT */
/*
 * test_tracker.c - unit tests of the tracker (src/tracker/): live table,
 * mapping ranges, per-node bytes, total, peak snapshot, journal.
 *
 * Design: one private state (fil_state_open(-1)) per process, nodes interned
 * as the profiled process interns them, allocations recorded with the
 * tracker API at fake addresses (the tracker never dereferences them). Every
 * assertion is on a figure the reports show: a node's live bytes, the total,
 * the peak bytes per node and peak_total, the live count, the bytes an
 * munmap removed. The peak tests run first, on a fresh state, and compare
 * the lazy dirty-list snapshot with a brute-force shadow copy kept by the
 * test at every new maximum. The live table is filled with 200,000 blocks at
 * dense and at random addresses, looked up again through the realloc
 * protocol (which hands back size and node), and emptied twice (the second
 * round reuses swept leaves); a sliding window over ever new spans, and
 * spans chosen to hash next to the end of the span hash, make it sweep
 * empty spans among live ones, including probe runs that wrap. Blocks that
 * do not pack (2^39 bytes or more, a node of 2^24 or more) go through the
 * overflow list, and replacing a live address works across the packed table
 * and the overflow list. Four threads record at once. After every step the
 * header's total must equal the sum of the nodes' bytes. Python objects in
 * pymalloc-style arenas from fil_tracker_arena_new go to the pool records
 * (test_pools): exact sizes, replacement, the dictionary full, a pool laid
 * out again for another class, an arena given back. Tests may use libc
 * freely.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/tracker/pools.h"
#include "../../src/tracker/tracker_internal.h"
#include "check.h"
#include "fil/lock.h"
#include "fil/runtime.h"
#include "fil/stacks.h"
#include "fil/state.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"

#define PAGE 4096
#define NNODES 64 /* nodes 1..NNODES-1 interned by setup() */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t bytes_of(uint32_t n)
{
    return *(int64_t *)fil_state_at(FIL_SEG_BYTES, n);
}
static int64_t peak_of(uint32_t n)
{
    return *(int64_t *)fil_state_at(FIL_SEG_PEAK, n);
}

/* Total = sum of all nodes' bytes: what a reader of the file after a kill
 * computes (it sums the nodes), so the header's total must agree. */
static int consistent(void)
{
    int64_t sum = 0;
    for (uint64_t n = 0; n < fil_state->nodes.count; n++)
        sum += bytes_of((uint32_t)n);
    return sum == fil_state->total;
}

#define CHECK_CONSISTENT() CHECK(consistent())

/* Nodes 1..NNODES-1 as a program would make them. */
static void setup(void)
{
    CHECK(fil_state_open(-1) == 0);
    CHECK(fil_stacks_init() == 0);
    CHECK(fil_tracker_init() == 0);
    uint32_t f = fil_stacks_intern_func("t.py", 4, "f", 1, 1);
    fil_lock();
    for (uint32_t i = 1; i < NNODES; i++)
        CHECK_I64(fil_stacks_intern_node_locked(FIL_NONE, f, i), i);
    fil_unlock();
}

static void *addr(uint64_t a)
{
    return (void *)(uintptr_t)a;
}

/* ---- stop copy -------------------------------------------------------------- */

/* A stop signal reached the program's handler (fil_stop_pending), then the
 * program unwound: the first free copies what was held before it applies;
 * later frees and allocations leave the copy alone; a second signal clears
 * it until its own copy is taken. */
static void test_stop_copy(void)
{
    int64_t before = fil_state->total;
    fil_tracker_add(addr(0x7100000), 7000, 5);
    fil_tracker_add(addr(0x7200000), 900, 6);
    CHECK_I64(fil_state->stop_signal, 0);
    __atomic_store_n(&fil_stop_pending, SIGINT, __ATOMIC_RELEASE);
    fil_tracker_add(addr(0x7300000), 50, 7); /* an increase does not copy */
    CHECK_I64(fil_state->stop_signal, 0);
    fil_tracker_remove(addr(0x7100000));
    CHECK_I64(fil_state->stop_signal, SIGINT);
    CHECK_I64(fil_stop_pending, 0);
    CHECK_I64(fil_state->stop_total, before + 7950);
    CHECK(fil_state->stop.count == fil_state->nodes.count);
    CHECK_I64(*fil_state_i64(FIL_SEG_STOP, 5), bytes_of(5) + 7000);
    CHECK_I64(*fil_state_i64(FIL_SEG_STOP, 6), 900);
    CHECK_I64(*fil_state_i64(FIL_SEG_STOP, 7), 50);
    int64_t sum = 0;
    for (uint64_t n = 0; n < fil_state->stop.count; n++)
        sum += *fil_state_i64(FIL_SEG_STOP, n);
    CHECK_I64(sum, fil_state->stop_total); /* what a reader sums */
    fil_tracker_remove(addr(0x7200000));
    fil_tracker_add(addr(0x7400000), 123, 6);
    CHECK_I64(*fil_state_i64(FIL_SEG_STOP, 6), 900); /* the copy stays */
    /* A second signal: the old copy is withdrawn (as the trampoline does),
     * the next free takes a new one. */
    __atomic_store_n(&fil_state->stop_signal, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&fil_stop_pending, SIGTERM, __ATOMIC_RELEASE);
    fil_tracker_remove(addr(0x7300000));
    CHECK_I64(fil_state->stop_signal, SIGTERM);
    CHECK_I64(*fil_state_i64(FIL_SEG_STOP, 6), 123);
    CHECK_I64(*fil_state_i64(FIL_SEG_STOP, 7), 50);
    fil_tracker_remove(addr(0x7400000));
    CHECK_I64(fil_state->total, before);
    CHECK_CONSISTENT();
}

/* ---- peak ------------------------------------------------------------------- */

/* A and B held together, B freed, C (smaller than B) allocated: the peak is
 * A + B, with C absent from it. */
static void test_peak_abc(void)
{
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_state->peak_total, 0);
    fil_tracker_add(addr(0x100000), 1000, 1); /* A */
    fil_tracker_add(addr(0x200000), 5000, 2); /* B */
    CHECK_I64(fil_state->peak_total, 6000);
    CHECK_I64(fil_state->at_peak, 1);
    fil_tracker_remove(addr(0x200000));
    CHECK_I64(fil_state->at_peak, 0);
    fil_tracker_add(addr(0x300000), 3000, 3); /* C */
    CHECK_I64(fil_state->total, 4000);
    fil_tracker_settle_peak();
    CHECK_I64(fil_state->peak_total, 6000);
    CHECK_I64(peak_of(1), 1000);
    CHECK_I64(peak_of(2), 5000);
    CHECK_I64(peak_of(3), 0);
    CHECK_I64(bytes_of(2), 0);
    CHECK_I64(bytes_of(3), 3000);
    CHECK_CONSISTENT();

    /* C grows past the old peak: the next peak is A + C + D. Settling with
     * the state at its peak takes the snapshot at once. */
    fil_tracker_add(addr(0x400000), 2500, 4); /* D */
    CHECK_I64(fil_state->peak_total, 6500);
    fil_tracker_settle_peak();
    CHECK_I64(fil_state->at_peak, 0);
    CHECK_I64(peak_of(1), 1000);
    CHECK_I64(peak_of(2), 0);
    CHECK_I64(peak_of(3), 3000);
    CHECK_I64(peak_of(4), 2500);
    /* Settling again changes nothing. */
    fil_tracker_settle_peak();
    CHECK_I64(peak_of(3), 3000);

    /* The peak reached by replacing a block in place (an address freed
     * behind the tracker's back and handed out again). */
    fil_tracker_add(addr(0x300000), 4000, 5); /* replaces C: total 7500 */
    CHECK_I64(bytes_of(3), 0);
    CHECK_I64(bytes_of(5), 4000);
    CHECK_I64(fil_state->peak_total, 7500);
    fil_tracker_remove(addr(0x100000));
    CHECK_I64(peak_of(1), 1000);
    CHECK_I64(peak_of(3), 0);
    CHECK_I64(peak_of(4), 2500);
    CHECK_I64(peak_of(5), 4000);
    fil_tracker_remove(addr(0x300000));
    fil_tracker_remove(addr(0x400000));
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_state->peak_total, 7500);
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_CONSISTENT();
}

/* Many successive peaks: after every step the snapshot (peak[] if the state
 * is past its peak, bytes[] if it is at it) equals the test's brute-force
 * copy of all nodes taken at each new maximum. */
static void test_peak_many(void)
{
    enum { ROUNDS = 10000, NODES = 50, SLOTS = 400 };
    uint32_t n = (uint32_t)fil_state->nodes.count;
    int64_t *now = calloc(n, sizeof *now), *best = calloc(n, sizeof *best);
    fil_tracker_settle_peak();
    for (uint32_t i = 0; i < n; i++) {
        now[i] = bytes_of(i);
        best[i] = peak_of(i);
    }
    int64_t total = fil_state->total, peak_total = fil_state->peak_total;
    struct {
        uint64_t size;
        uint32_t node;
        int live;
    } slot[SLOTS];
    memset(slot, 0, sizeof slot);
    int ok = 1, flags_ok = 1, journal_ok = 1;
    int64_t peaks = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t x = next_rand();
        int s = (int)(x % SLOTS);
        void *p = addr(0x10000000 + (uint64_t)s * 64);
        if (slot[s].live) {
            fil_tracker_remove(p);
            now[slot[s].node] -= (int64_t)slot[s].size;
            total -= (int64_t)slot[s].size;
            slot[s].live = 0;
        } else {
            /* Sizes drift upwards so new peaks keep coming. */
            slot[s].size = 1 + (x >> 20) % (1000 + (uint64_t)r * 10);
            slot[s].node = 1 + (uint32_t)((x >> 40) % NODES);
            slot[s].live = 1;
            fil_tracker_add(p, slot[s].size, slot[s].node);
            now[slot[s].node] += (int64_t)slot[s].size;
            total += (int64_t)slot[s].size;
            if (total > peak_total) {
                peak_total = total;
                memcpy(best, now, n * sizeof *now);
                peaks++;
            }
        }
        if (fil_state->total != total || fil_state->peak_total != peak_total)
            ok = 0;
        if (fil_state->at_peak != (total == peak_total && fil_state->at_peak))
            flags_ok = 0;
        if (!consistent())
            journal_ok = 0;
        for (uint32_t i = 0; i < n && (r % 7 == 0 || r > ROUNDS - 50); i++) {
            int64_t snap = fil_state->at_peak ? bytes_of(i) : peak_of(i);
            if (snap != best[i] || bytes_of(i) != now[i]) {
                if (ok)
                    fprintf(stderr, "round %d node %u: snapshot %" PRId64 ", want %" PRId64 "\n", r,
                            i, snap, best[i]);
                ok = 0;
            }
        }
        if (r % 997 == 0) { /* a report asked for in between */
            fil_tracker_settle_peak();
            for (uint32_t i = 0; i < n; i++)
                if (peak_of(i) != best[i])
                    ok = 0;
        }
    }
    CHECK(ok);
    CHECK(flags_ok);
    CHECK(journal_ok);
    CHECK(peaks > 100); /* the test made many successive peaks */
    fil_tracker_settle_peak();
    int64_t sum = 0;
    int final_ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        sum += peak_of(i);
        if (peak_of(i) != best[i])
            final_ok = 0;
    }
    CHECK(final_ok);
    CHECK_I64(sum, peak_total);
    CHECK_I64(fil_state->peak_total, peak_total);
    for (int s = 0; s < SLOTS; s++)
        if (slot[s].live)
            fil_tracker_remove(addr(0x10000000 + (uint64_t)s * 64));
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_tracker_live_count(), 0);
    /* Emptying is a decrease: the peak stays as it was. */
    for (uint32_t i = 0; i < n; i++)
        if (peak_of(i) != best[i])
            final_ok = 0;
    CHECK(final_ok);
    free(now);
    free(best);
}

/* ---- add / remove ------------------------------------------------------------ */

static void test_add_remove(void)
{
    uint64_t allocs = fil_state->allocations;
    fil_tracker_add(addr(0x5000), 100, 1);
    /* One charge: the node's bytes and the total, each one stored word. */
    CHECK_I64(bytes_of(1), 100);
    CHECK_I64(fil_state->total, 100);
    CHECK_CONSISTENT();
    fil_tracker_add(addr(0x5020), 200, 1);
    CHECK_I64(bytes_of(1), 300);
    CHECK_I64(fil_state->total, 300);
    fil_tracker_add(addr(0x5040), 300, 2);
    fil_tracker_add(addr(0x9000), 0, 3); /* malloc(0) is a live block of 0 bytes */
    CHECK_I64(bytes_of(1), 300);
    CHECK_I64(bytes_of(2), 300);
    CHECK_I64(bytes_of(3), 0);
    CHECK_I64(fil_state->total, 600);
    CHECK_I64(fil_tracker_live_count(), 4);
    CHECK_I64(fil_state->allocations, allocs + 4);
    CHECK_CONSISTENT();

    /* Unknown pointers: nothing changes. */
    int64_t peak0 = fil_state->peak_total;
    uint64_t allocs0 = fil_state->allocations;
    fil_tracker_remove(addr(0x5060));     /* same span, empty slot */
    fil_tracker_remove(addr(0x77770000)); /* no span */
    fil_tracker_remove(NULL);
    CHECK_I64(fil_state->total, 600);
    CHECK_I64(bytes_of(1), 300);
    CHECK_I64(bytes_of(2), 300);
    CHECK_I64(fil_tracker_live_count(), 4);
    CHECK_I64(fil_state->peak_total, peak0);
    CHECK_I64(fil_state->allocations, allocs0);

    fil_tracker_remove(addr(0x5020));
    CHECK_I64(bytes_of(1), 100);
    CHECK_I64(fil_state->total, 400);
    CHECK_I64(bytes_of(2), 300); /* only the freed block's node changed */
    CHECK_CONSISTENT();
    fil_tracker_remove(addr(0x5020)); /* twice: the second is unknown */
    CHECK_I64(bytes_of(1), 100);
    CHECK_I64(fil_tracker_live_count(), 3);

    /* An address already live is replaced: the old block's node uncharged. */
    fil_tracker_add(addr(0x5040), 700, 4);
    CHECK_I64(bytes_of(2), 0);
    CHECK_I64(bytes_of(4), 700);
    CHECK_I64(fil_state->total, 800);
    CHECK_I64(fil_tracker_live_count(), 3);
    CHECK_CONSISTENT();
    fil_tracker_add(addr(0x5040), 50, 4); /* same node, new size */
    CHECK_I64(bytes_of(4), 50);
    CHECK_I64(fil_state->total, 150);

    fil_tracker_remove(addr(0x5000));
    fil_tracker_remove(addr(0x5040));
    fil_tracker_remove(addr(0x9000));
    CHECK_I64(bytes_of(1), 0);
    CHECK_I64(bytes_of(4), 0);
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_I64(fil_state->dropped, 0);
    CHECK_CONSISTENT();
}

/* ---- realloc ------------------------------------------------------------------- */

static void test_realloc(void)
{
    fil_realloc_t t;
    fil_tracker_add(addr(0x8000), 100, 1);
    /* Moved: the charge goes with it (to the new node). */
    fil_tracker_realloc_begin(addr(0x8000), &t, 0);
    CHECK_I64(t.had, 1);
    CHECK_I64(t.size, 100);
    CHECK_I64(t.node, 1);
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_I64(fil_state->total, 100); /* still charged until the end */
    fil_tracker_realloc_end(&t, addr(0x8000), addr(0xa000), 250, 2, 0);
    CHECK_I64(bytes_of(1), 0);
    CHECK_I64(bytes_of(2), 250);
    CHECK_I64(fil_state->total, 250);
    CHECK_I64(fil_tracker_live_count(), 1);
    CHECK_CONSISTENT();
    fil_tracker_remove(addr(0x8000)); /* the old address is gone */
    CHECK_I64(fil_state->total, 250);

    /* In place. */
    fil_tracker_realloc_begin(addr(0xa000), &t, 0);
    fil_tracker_realloc_end(&t, addr(0xa000), addr(0xa000), 40, 2, 0);
    CHECK_I64(bytes_of(2), 40);
    CHECK_I64(fil_tracker_live_count(), 1);

    /* Failed (p == NULL): the old block is live again, as it was. */
    fil_tracker_realloc_begin(addr(0xa000), &t, 0);
    fil_tracker_realloc_end(&t, addr(0xa000), NULL, 1 << 20, 3, 0);
    CHECK_I64(bytes_of(2), 40);
    CHECK_I64(bytes_of(3), 0);
    CHECK_I64(fil_state->total, 40);
    CHECK_I64(fil_tracker_live_count(), 1);
    fil_realloc_t t2;
    fil_tracker_realloc_begin(addr(0xa000), &t2, 0);
    CHECK_I64(t2.had, 1);
    CHECK_I64(t2.size, 40);
    CHECK_I64(t2.node, 2);
    fil_tracker_realloc_end(&t2, addr(0xa000), NULL, 0, 0, 0);

    /* realloc(NULL, n) and of an untracked block: a plain allocation. */
    fil_tracker_realloc_begin(NULL, &t, 0);
    CHECK_I64(t.had, 0);
    fil_tracker_realloc_end(&t, NULL, addr(0xc000), 64, 3, 0);
    fil_tracker_realloc_begin(addr(0xe000), &t, 0);
    CHECK_I64(t.had, 0);
    fil_tracker_realloc_end(&t, addr(0xe000), addr(0xe000), 32, 3, 0);
    CHECK_I64(bytes_of(3), 96);
    fil_tracker_realloc_begin(addr(0xd000), &t, 0); /* untracked, failed */
    fil_tracker_realloc_end(&t, addr(0xd000), NULL, 10, 3, 0);
    CHECK_I64(fil_tracker_live_count(), 3);
    CHECK_I64(fil_state->total, 136);
    CHECK_CONSISTENT();

    fil_tracker_remove(addr(0xa000));
    fil_tracker_remove(addr(0xc000));
    fil_tracker_remove(addr(0xe000));
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_tracker_live_count(), 0);
}

/* ---- anonymous mappings ---------------------------------------------------------- */

static void test_mmaps(void)
{
    const uint64_t base = 0x7f0000000000u;
    fil_tracker_map(addr(base), 10 * PAGE, 5);
    CHECK_I64(bytes_of(5), 10 * PAGE);
    CHECK_I64(fil_state->total, 10 * PAGE);
    /* A hole in the middle: pages 4 and 5. */
    CHECK_I64(fil_tracker_unmap(addr(base + 4 * PAGE), 2 * PAGE), 2 * PAGE);
    CHECK_I64(bytes_of(5), 8 * PAGE);
    CHECK_CONSISTENT();
    /* Again: nothing there any more. */
    CHECK_I64(fil_tracker_unmap(addr(base + 4 * PAGE), 2 * PAGE), 0);
    CHECK_I64(bytes_of(5), 8 * PAGE);
    /* The two pieces separately; an unmap over the hole takes only what is
     * mapped. */
    CHECK_I64(fil_tracker_unmap(addr(base), 4 * PAGE), 4 * PAGE);
    CHECK_I64(bytes_of(5), 4 * PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base + 3 * PAGE), 7 * PAGE), 4 * PAGE);
    CHECK_I64(bytes_of(5), 0);
    CHECK_I64(fil_state->total, 0);

    /* Across two neighbouring ranges of different nodes. */
    fil_tracker_map(addr(base), 4 * PAGE, 5);
    fil_tracker_map(addr(base + 4 * PAGE), 4 * PAGE, 6);
    CHECK_I64(fil_tracker_unmap(addr(base + 3 * PAGE), 2 * PAGE), 2 * PAGE);
    CHECK_I64(bytes_of(5), 3 * PAGE);
    CHECK_I64(bytes_of(6), 3 * PAGE);
    CHECK_CONSISTENT();
    /* The rest of both, and beyond. */
    CHECK_I64(fil_tracker_unmap(addr(base - 16 * PAGE), 64 * PAGE), 6 * PAGE);
    CHECK_I64(bytes_of(5), 0);
    CHECK_I64(bytes_of(6), 0);

    /* A map over an existing range replaces it (MAP_FIXED). */
    fil_tracker_map(addr(base), 8 * PAGE, 5);
    fil_tracker_map(addr(base + 2 * PAGE), 2 * PAGE, 7);
    CHECK_I64(bytes_of(5), 6 * PAGE);
    CHECK_I64(bytes_of(7), 2 * PAGE);
    CHECK_I64(fil_state->total, 8 * PAGE);
    fil_tracker_map(addr(base), 8 * PAGE, 6); /* over everything */
    CHECK_I64(bytes_of(5), 0);
    CHECK_I64(bytes_of(7), 0);
    CHECK_I64(bytes_of(6), 8 * PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base), 8 * PAGE), 8 * PAGE);
    CHECK_I64(bytes_of(6), 0);

    /* Lengths are rounded up to pages, for map and unmap alike; an unmap
     * address inside a page covers that page. */
    fil_tracker_map(addr(base), 1, 5);
    CHECK_I64(bytes_of(5), PAGE);
    fil_tracker_map(addr(base + 4 * PAGE), 2 * PAGE + 1, 5);
    CHECK_I64(bytes_of(5), 4 * PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base), 1), PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base + 6 * PAGE + 100), 1), PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base + 4 * PAGE + 4095), 2), 2 * PAGE);
    CHECK_I64(bytes_of(5), 0);
    CHECK_I64(fil_state->total, 0);
    CHECK_CONSISTENT();

    /* Many ranges (the array grows), every other page unmapped, then the
     * rest: exact counts throughout. */
    enum { NR = 3000 };
    for (uint64_t i = 0; i < NR; i++)
        fil_tracker_map(addr(base + i * 4 * PAGE), 3 * PAGE, 1 + (uint32_t)(i % 7));
    CHECK_I64(fil_state->total, NR * 3 * PAGE);
    uint64_t removed = 0;
    for (uint64_t i = 0; i < NR; i++)
        removed += fil_tracker_unmap(addr(base + i * 4 * PAGE + PAGE), PAGE);
    CHECK_I64(removed, NR * PAGE);
    CHECK_I64(fil_state->total, NR * 2 * PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base), NR * 4 * PAGE), NR * 2 * PAGE);
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_state->dropped, 0);
    CHECK_CONSISTENT();
}

/* A failed mremap puts back what it took, each piece on its own node; past
 * FIL_UNMAPPED_PIECES pieces the rest goes back on the last piece's node. */
static void test_unmap_undo(void)
{
    const uint64_t base = 0x7f0000000000u;
    fil_unmapped_t t;
    fil_tracker_map(addr(base), 4 * PAGE, 5);
    fil_tracker_map(addr(base + 4 * PAGE), 4 * PAGE, 6);
    CHECK_I64(fil_tracker_unmap_keep(addr(base + 2 * PAGE), 4 * PAGE, &t), 4 * PAGE);
    CHECK_I64(t.n, 2);
    CHECK_I64(bytes_of(5), 2 * PAGE);
    CHECK_I64(bytes_of(6), 2 * PAGE);
    fil_tracker_unmap_undo(&t);
    CHECK_I64(bytes_of(5), 4 * PAGE);
    CHECK_I64(bytes_of(6), 4 * PAGE);
    CHECK_I64(fil_state->total, 8 * PAGE);
    CHECK_CONSISTENT();
    /* Put back, the pieces are ranges again: an unmap takes each. */
    CHECK_I64(fil_tracker_unmap(addr(base), 3 * PAGE), 3 * PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base + 3 * PAGE), 5 * PAGE), 5 * PAGE);
    CHECK_I64(fil_state->total, 0);

    enum { NP = FIL_UNMAPPED_PIECES + 3 };
    for (uint32_t i = 0; i < NP; i++)
        fil_tracker_map(addr(base + i * PAGE), PAGE, 1 + i);
    CHECK_I64(fil_tracker_unmap_keep(addr(base), NP * PAGE, &t), NP * PAGE);
    CHECK_I64(fil_state->total, 0);
    fil_tracker_unmap_undo(&t);
    CHECK_I64(fil_state->total, NP * PAGE);
    for (uint32_t i = 0; i < FIL_UNMAPPED_PIECES - 1; i++)
        CHECK_I64(bytes_of(1 + i), PAGE);
    CHECK_I64(bytes_of(FIL_UNMAPPED_PIECES), 4 * PAGE);
    CHECK_I64(fil_tracker_unmap(addr(base), NP * PAGE), NP * PAGE);
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_state->dropped, 0);
    CHECK_CONSISTENT();
}

/* ---- the live table ---------------------------------------------------------------- */

typedef struct block {
    uint64_t addr, size;
    uint32_t node;
} block_t;

/* Record n blocks, find each again with its size and node, remove them all;
 * per-node bytes, total and the live count exact at each stage. */
static void round_trip(const block_t *b, uint64_t n, const char *what)
{
    int64_t want[NNODES] = {0};
    int64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        fil_tracker_add(addr(b[i].addr), b[i].size, b[i].node);
        want[b[i].node] += (int64_t)b[i].size;
        total += (int64_t)b[i].size;
    }
    CHECK_I64(fil_tracker_live_count(), n);
    CHECK_I64(fil_state->total, total);
    int nodes_ok = 1;
    for (uint32_t i = 0; i < NNODES; i++)
        if (bytes_of(i) != want[i])
            nodes_ok = 0;
    CHECK(nodes_ok);
    CHECK_CONSISTENT();

    /* Found again: realloc_begin hands back what is recorded; a failed
     * realloc puts it back. */
    uint64_t found = 0;
    for (uint64_t i = 0; i < n; i++) {
        fil_realloc_t t;
        fil_tracker_realloc_begin(addr(b[i].addr), &t, 0);
        if (t.had && t.size == b[i].size && t.node == b[i].node)
            found++;
        else if (found == i)
            fprintf(stderr,
                    "%s: block %" PRIu64 " at %#" PRIx64 ": had %d size %" PRIu64 " node %u\n",
                    what, i, b[i].addr, t.had, t.size, t.node);
        fil_tracker_realloc_end(&t, addr(b[i].addr), NULL, 0, 0, 0);
    }
    CHECK_I64(found, n);
    CHECK_I64(fil_tracker_live_count(), n);
    CHECK_I64(fil_state->total, total);

    /* Removed (in another order than added). */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t j = (i * 7919) % n;
        fil_tracker_remove(addr(b[j].addr));
    }
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_I64(fil_state->total, 0);
    nodes_ok = 1;
    for (uint32_t i = 0; i < NNODES; i++)
        if (bytes_of(i) != 0)
            nodes_ok = 0;
    CHECK(nodes_ok);
    CHECK_I64(fil_state->dropped, 0);
    CHECK_CONSISTENT();
}

/* Sweeps over probe runs that wrap around the end of the span hash. White
 * box: spans are chosen whose home slot (table.c's multiplicative hash at
 * its first size, 2^14 entries) is among the last or first 24 slots, so
 * their run crosses the end; half of them are emptied, filler spans bring
 * the hash to half load, and the sweep that follows must leave every live
 * block findable. If the hash changes, this stays a valid (less pointed)
 * test. Runs before anything grows the hash. */
static void test_sweep_wrap(void)
{
    enum { PER_END = 48, PATTERNS = 6 };
    const unsigned shift = 64 - 14;
    const uint64_t cap = UINT64_C(1) << 14;
    uint64_t spans[2 * PER_END];
    int n = 0, lo = 0, hi = 0;
    for (uint64_t span = 0x3000000; n < 2 * PER_END; span++) {
        uint64_t h = ((span + 1) * UINT64_C(0x9e3779b97f4a7c15)) >> shift;
        if (h >= cap - 24 && hi < PER_END)
            spans[n++] = span, hi++;
        else if (h < 24 && lo < PER_END)
            spans[n++] = span, lo++;
    }
    uint64_t filler = 0x5000000, bad = 0;
    for (int pat = 0; pat < PATTERNS; pat++) {
        for (int i = 0; i < n; i++)
            fil_tracker_add(addr(spans[i] << 10 | 0x40), 100 + (uint64_t)i, (uint32_t)(1 + i % 9));
        for (int i = 0; i < n; i++) /* empty some: a different subset each time */
            if ((i * 7 + pat) % 3 == 0)
                fil_tracker_remove(addr(spans[i] << 10 | 0x40));
        /* Filler spans, emptied at once, until the hash sweeps. */
        for (int i = 0; i < 9000; i++) {
            fil_tracker_add(addr(filler << 10), 1, 1);
            fil_tracker_remove(addr(filler << 10));
            filler++;
        }
        for (int i = 0; i < n; i++) {
            if ((i * 7 + pat) % 3 == 0)
                continue;
            fil_realloc_t t;
            fil_tracker_realloc_begin(addr(spans[i] << 10 | 0x40), &t, 0);
            if (!t.had || t.size != 100 + (uint64_t)i || t.node != (uint32_t)(1 + i % 9))
                bad++;
            fil_tracker_realloc_end(&t, addr(spans[i] << 10 | 0x40), NULL, 0, 0, 0);
            fil_tracker_remove(addr(spans[i] << 10 | 0x40));
        }
        if (fil_tracker_live_count() != 0 || fil_state->total != 0)
            bad++;
    }
    CHECK_I64(bad, 0);
    CHECK_I64(fil_state->total, 0);
    CHECK_CONSISTENT();
}

/* A sliding window of live blocks over ever new spans, with the span hash at
 * its first size: it fills to half load again and again and each time
 * sweeps out the empty spans while live ones sit in the same probe runs
 * (including runs that wrap around the end). Every live block is looked up
 * again after each stretch. Runs before test_table, which grows the hash. */
static void test_churn(void)
{
    enum { W = 3000, STEPS = 120000 };
    block_t *w = calloc(W, sizeof *w);
    int64_t want[NNODES] = {0};
    int64_t total = 0;
    uint64_t bad = 0;
    for (uint64_t i = 0; i < STEPS; i++) {
        block_t *b = &w[i % W];
        if (i >= W) {
            fil_tracker_remove(addr(b->addr));
            want[b->node] -= (int64_t)b->size;
            total -= (int64_t)b->size;
        }
        uint64_t x = next_rand();
        uint64_t span = (i * 0x9e3779b97f4a7c15u + 99) & ((UINT64_C(1) << 30) - 1);
        *b = (block_t){(span << 10) | ((x & 31) << 5) | (x & 16), (x >> 8) % 5000,
                       (uint32_t)((x >> 32) % NNODES)};
        fil_tracker_add(addr(b->addr), b->size, b->node);
        want[b->node] += (int64_t)b->size;
        total += (int64_t)b->size;
        if (i % 4999 == 0 || i + 1 == STEPS) {
            uint64_t live = i + 1 < W ? i + 1 : W;
            for (uint64_t j = 0; j < live; j++) {
                fil_realloc_t t;
                fil_tracker_realloc_begin(addr(w[j].addr), &t, 0);
                if (!t.had || t.size != w[j].size || t.node != w[j].node)
                    bad++;
                fil_tracker_realloc_end(&t, addr(w[j].addr), NULL, 0, 0, 0);
            }
            if (fil_tracker_live_count() != live || fil_state->total != total)
                bad++;
        }
    }
    CHECK_I64(bad, 0);
    int nodes_ok = 1;
    for (uint32_t i = 0; i < NNODES; i++)
        if (bytes_of(i) != want[i])
            nodes_ok = 0;
    CHECK(nodes_ok);
    for (uint64_t j = 0; j < W; j++)
        fil_tracker_remove(addr(w[j].addr));
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_I64(fil_state->total, 0);
    CHECK_CONSISTENT();
    free(w);
}

static void test_table(void)
{
    enum { N = 200000 };
    block_t *b = malloc(N * sizeof *b);
    const uint64_t max_size = UINT64_C(1) << 38;

    /* Dense: 32 bytes apart, as glibc's smallest chunks. */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t x = next_rand();
        b[i] = (block_t){0x55550000000u + i * 32, x % 25 == 0 ? max_size - (x >> 40) : x % 97,
                         (uint32_t)((x >> 32) % NNODES)};
    }
    b[0].size = max_size;
    b[1].size = 0;
    round_trip(b, N, "dense");

    /* Random 16-byte-aligned addresses in distinct 32-byte grains: grain
     * numbers i * odd mod 2^35 are distinct; the low 16 is random. */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t x = next_rand();
        uint64_t grain = (i * 0x9e3779b97f4a7c15u + 12345) & ((UINT64_C(1) << 35) - 1);
        b[i] =
            (block_t){(grain << 5) | (x & 16), x % (max_size + 1), (uint32_t)((x >> 20) % NNODES)};
    }
    round_trip(b, N, "random");
    /* Again with other addresses: the span hash sweeps the empty spans of
     * the previous round and reuses their leaves. */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t x = next_rand();
        uint64_t grain = (i * 0xc2b2ae3d27d4eb4fu + 777) & ((UINT64_C(1) << 35) - 1);
        b[i] = (block_t){(grain << 5) | (x & 16), (x >> 7) % 100000, (uint32_t)(x % NNODES)};
    }
    round_trip(b, N, "random again");

    /* Mixed, at fresh addresses: blocks come and go while others stay, and
     * the hash sweeps the previous round's empty spans among live ones. */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t x = next_rand();
        uint64_t grain = (i * 0xd6e8feb86659fd93u + 4242) & ((UINT64_C(1) << 35) - 1);
        b[i] = (block_t){(grain << 5) | (x & 16), (x >> 9) % 4096, (uint32_t)(x % NNODES)};
    }
    int64_t live_bytes = 0;
    uint64_t live = 0;
    int mixed_ok = 1;
    for (uint64_t i = 0; i < N; i++) {
        fil_tracker_add(addr(b[i].addr), b[i].size, b[i].node);
        live_bytes += (int64_t)b[i].size;
        live++;
        if (i % 3 == 2) {
            fil_tracker_remove(addr(b[i - 1].addr));
            live_bytes -= (int64_t)b[i - 1].size;
            live--;
        }
        if (i % 10007 == 0 && (fil_tracker_live_count() != live || fil_state->total != live_bytes))
            mixed_ok = 0;
    }
    CHECK(mixed_ok);
    uint64_t found = 0, want_found = 0;
    for (uint64_t i = 0; i < N; i++) {
        if (i % 3 == 1 && i + 1 != N)
            continue;
        fil_realloc_t t;
        want_found++;
        fil_tracker_realloc_begin(addr(b[i].addr), &t, 0);
        found += t.had && t.size == b[i].size && t.node == b[i].node;
        fil_tracker_realloc_end(&t, addr(b[i].addr), NULL, 0, 0, 0);
    }
    CHECK_I64(found, want_found);
    CHECK_I64(fil_tracker_live_count(), live);
    for (uint64_t i = 0; i < N; i++)
        if (i % 3 != 1 || i + 1 == N) /* the last was never removed in the loop */
            fil_tracker_remove(addr(b[i].addr));
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_I64(fil_state->total, 0);
    free(b);
}

/* One span's blocks through its compact leaf and the move into a full one:
 * 7 blocks at scattered grains of one 1 KiB span (first, last, middle) stay
 * compact; a block at a live address replaces it there; a grain not
 * recorded is not found; the 8th moves all into a full leaf, where each is
 * found once with its size and node; taken in another order, none is left. */
static void test_compact_leaves(void)
{
    const uintptr_t span = 0x4444400000u; /* 1 KiB aligned, used by no other test */
    const uint32_t grains[] = {0, 63, 31, 7, 40, 12, 55, 1, 20, 62};
    enum { G = sizeof grains / sizeof grains[0] };
    uint64_t count0 = fil_tracker_table_count(), os, size;
    uint32_t on, node;
    int ok = 1;

    for (uint32_t i = 0; i < G; i++) {
        ok &= fil_tracker_table_put(span + grains[i] * 16, 100 + i, 7 + i, &os, &on) == 0;
        ok &= fil_tracker_table_count() == count0 + i + 1;
        if (i == 3) { /* compact: replace one, miss one */
            ok &= fil_tracker_table_put(span + 63 * 16, 555, 9, &os, &on) == 1 && os == 101 &&
                  on == 8;
            ok &= fil_tracker_table_put(span + 63 * 16, 101, 8, &os, &on) == 1 && os == 555 &&
                  on == 9;
            ok &= fil_tracker_table_take(span + 5 * 16, &size, &node) == 0;
        }
    }
    CHECK(ok);
    CHECK_I64(fil_tracker_table_count(), count0 + G);
    /* A replacement in the full leaf, then every block once, in reverse. */
    CHECK(fil_tracker_table_put(span + 31 * 16, 77, 3, &os, &on) == 1 && os == 102 && on == 9);
    CHECK(fil_tracker_table_put(span + 31 * 16, 102, 9, &os, &on) == 1);
    for (uint32_t i = G; i-- > 0;) {
        int had = fil_tracker_table_take(span + grains[i] * 16, &size, &node);
        CHECK(had == 1 && size == 100 + i && node == 7 + i);
        CHECK(fil_tracker_table_take(span + grains[i] * 16, &size, &node) == 0);
    }
    CHECK_I64(fil_tracker_table_count(), count0);

    /* Compact again (a new span), emptied out of order and filled anew:
     * the pairs freed are reused, 7 fit again before a move. */
    const uintptr_t span2 = span + 1024;
    for (uint32_t round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < 7; i++)
            CHECK(fil_tracker_table_put(span2 + ((i * 9 + round) & 63) * 16, 1 + i, 2, &os, &on) ==
                  0);
        for (uint32_t i = 0; i < 7; i++) {
            uint32_t k = (i * 3) % 7; /* 0 3 6 2 5 1 4 */
            int had = fil_tracker_table_take(span2 + ((k * 9 + round) & 63) * 16, &size, &node);
            CHECK(had == 1 && size == 1 + k && node == 2);
        }
    }
    CHECK_I64(fil_tracker_table_count(), count0);
}

/* ---- threads --------------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 20000 };

static void *thread_main(void *arg)
{
    uint32_t node = (uint32_t)(uintptr_t)arg;
    uint64_t base = 0x6600000000u + (uint64_t)node * 0x10000000u;
    for (uint64_t i = 0; i < PER_THREAD; i++)
        fil_tracker_add(addr(base + i * 48), 10 + i % 7, node);
    for (uint64_t i = 0; i < PER_THREAD; i += 2)
        fil_tracker_remove(addr(base + i * 48));
    for (uint64_t i = 0; i < 200; i++) {
        fil_tracker_map(addr(0x7e0000000000u + (uint64_t)node * 0x100000000u + i * 2 * PAGE), PAGE,
                        node);
        fil_tracker_settle_peak();
    }
    return NULL;
}

/* Threads recording at once: every byte accounted to its node. */
static void test_threads(void)
{
    pthread_t th[THREADS];
    for (uint32_t i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(10 + i)) == 0);
    for (uint32_t i = 0; i < THREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    int64_t want = 0; /* bytes of the odd-numbered blocks of one thread */
    for (uint64_t i = 1; i < PER_THREAD; i += 2)
        want += (int64_t)(10 + i % 7);
    int nodes_ok = 1;
    for (uint32_t i = 0; i < THREADS; i++)
        if (bytes_of(10 + i) != want + 200 * PAGE)
            nodes_ok = 0;
    CHECK(nodes_ok);
    CHECK_I64(fil_state->total, THREADS * (want + 200 * PAGE));
    CHECK_I64(fil_tracker_live_count(), THREADS * PER_THREAD / 2);
    CHECK_CONSISTENT();
    for (uint32_t n = 10; n < 10 + THREADS; n++) {
        uint64_t base = 0x6600000000u + (uint64_t)n * 0x10000000u;
        for (uint64_t i = 1; i < PER_THREAD; i += 2)
            fil_tracker_remove(addr(base + i * 48));
        CHECK_I64(fil_tracker_unmap(addr(0x7e0000000000u + (uint64_t)n * 0x100000000u), 400 * PAGE),
                  200 * PAGE);
    }
    CHECK_I64(fil_state->total, 0);
    CHECK_I64(fil_tracker_live_count(), 0);
}

/* Threads nobody announced (as glibc's timer and AIO helpers, or a raw
 * clone, which the pthread_create wrapper never sees): the lock elision is
 * on (fil_lock_needed 0) and the main thread, the lock's owner, records
 * without the lock while they start. Their first sections must fence it
 * off: every byte still accounted to its node. */
static void test_threads_unseen(void)
{
    __atomic_store_n(&fil_lock_needed, 0, __ATOMIC_SEQ_CST);
    CHECK_I64(fil_lock_role, 1); /* the main thread took the lock first */
    pthread_t th[THREADS];
    for (uint32_t i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(10 + i)) == 0);
    thread_main((void *)(uintptr_t)(10 + THREADS)); /* the owner, at the same time */
    for (uint32_t i = 0; i < THREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK_I64(fil_lock_needed, 1); /* a foreign thread turned the elision off */
    int64_t want = 0;
    for (uint64_t i = 1; i < PER_THREAD; i += 2)
        want += (int64_t)(10 + i % 7);
    int nodes_ok = 1;
    for (uint32_t i = 0; i <= THREADS; i++)
        if (bytes_of(10 + i) != want + 200 * PAGE)
            nodes_ok = 0;
    CHECK(nodes_ok);
    CHECK_I64(fil_state->total, (THREADS + 1) * (want + 200 * PAGE));
    CHECK_I64(fil_tracker_live_count(), (THREADS + 1) * PER_THREAD / 2);
    CHECK_CONSISTENT();
    for (uint32_t n = 10; n <= 10 + THREADS; n++) {
        uint64_t base = 0x6600000000u + (uint64_t)n * 0x10000000u;
        for (uint64_t i = 1; i < PER_THREAD; i += 2)
            fil_tracker_remove(addr(base + i * 48));
        fil_tracker_unmap(addr(0x7e0000000000u + (uint64_t)n * 0x100000000u), 400 * PAGE);
    }
    CHECK_I64(fil_state->total, 0);
}

/* Blocks that do not pack go to the overflow list and round-trip exactly. */
static void test_overflow(void)
{
    const uint64_t lim = UINT64_C(1) << 39;
    block_t big[] = {
        {0x600000001000u, lim - 1, 1}, /* largest that packs */
        {0x600000002000u, lim, 2},     /* smallest that does not */
        {0x600000003000u, lim * 3 + 17, 3},
        {0x600000003020u, UINT64_C(1) << 55, 4}, /* beside a big one */
        {0x600000004000u, 12, 5},                /* an ordinary neighbour */
    };
    round_trip(big, 5, "big");

    /* Nodes of 2^24 and more, through the table itself (no charge). */
    static const struct {
        uintptr_t addr;
        uint64_t size;
        uint32_t node;
    } odd[] = {
        {0x7000000, 8, (1u << 24) - 1},       {0x7000020, 8, 1u << 24},
        {0x7000040, lim, (1u << 24) + 5},     {0x7000060, 1, FIL_NONE - 1},
        {0x7000080, lim - 1, (1u << 24) - 1}, {0x7100000, 0, 1u << 31},
    };
    enum { NODD = sizeof odd / sizeof odd[0] };
    int put_ok = 1, take_ok = 1;
    fil_lock();
    uint64_t count0 = fil_tracker_table_count();
    for (int i = 0; i < NODD; i++) {
        uint64_t os = 0;
        uint32_t on = 0;
        if (fil_tracker_table_put(odd[i].addr, odd[i].size, odd[i].node, &os, &on) != 0)
            put_ok = 0;
    }
    uint64_t count1 = fil_tracker_table_count();
    /* Replacing one in place reports the old entry exactly. */
    uint64_t os = 0;
    uint32_t on = 0;
    int rep = fil_tracker_table_put(0x7000020, 99, (1u << 24) + 1, &os, &on);
    for (int i = NODD - 1; i >= 0; i--) {
        uint64_t size = 0;
        uint32_t node = 0;
        uint64_t want_size = i == 1 ? 99 : odd[i].size;
        uint32_t want_node = i == 1 ? (1u << 24) + 1 : odd[i].node;
        if (fil_tracker_table_take(odd[i].addr, &size, &node) != 1 || size != want_size ||
            node != want_node)
            take_ok = 0;
    }
    uint64_t size = 0;
    uint32_t node = 0;
    int again = fil_tracker_table_take(0x7000020, &size, &node);
    uint64_t count2 = fil_tracker_table_count();
    fil_unlock();
    CHECK(put_ok);
    CHECK(take_ok);
    CHECK_I64(count1, count0 + NODD);
    CHECK_I64(rep, 1);
    CHECK_I64(os, 8);
    CHECK_I64(on, 1u << 24);
    CHECK_I64(again, 0);
    CHECK_I64(count2, count0);
}

/* An address handed out again after its block went unseen is replaced even
 * when one of the two blocks packs and the other does not: the old one is
 * uncharged and only one block is live. */
static void test_replace_across(void)
{
    const uint64_t lim = UINT64_C(1) << 39;
    fil_tracker_add(addr(0x610000000000u), 100, 1);
    fil_tracker_add(addr(0x610000000000u), lim, 2);
    CHECK_I64(bytes_of(1), 0);
    CHECK_I64(bytes_of(2), lim);
    CHECK_I64(fil_tracker_live_count(), 1);
    CHECK_I64(fil_state->total, lim);

    fil_tracker_add(addr(0x620000000000u), lim, 3);
    fil_tracker_add(addr(0x620000000000u), 200, 4);
    CHECK_I64(bytes_of(3), 0);
    CHECK_I64(bytes_of(4), 200);
    CHECK_I64(fil_tracker_live_count(), 2);

    fil_tracker_remove(addr(0x610000000000u));
    fil_tracker_remove(addr(0x620000000000u));
    CHECK_I64(fil_tracker_live_count(), 0);
    CHECK_I64(fil_state->total, 0);
    CHECK_CONSISTENT();
}


/* ---- pool records (pools.h) ------------------------------------------------- */

#define ARENA (1u << 20)
#define POOL (16u << 10)

/* Lay pool i of arena a out for blocks of 16 * c bytes, as pymalloc does
 * (the tracker reads szidx at offset 36 of the pool header). */
static void fake_pool(char *a, unsigned i, uint32_t c)
{
    uint32_t szidx = c - 1;
    memcpy(a + (size_t)i * POOL + 36, &szidx, 4);
}

/* Block k of pool i (class c), pymalloc's layout: 48 bytes of header first. */
static void *blk(char *a, unsigned i, uint32_t c, unsigned k)
{
    return a + (size_t)i * POOL + 48 + (size_t)k * 16 * c;
}

/* (g * recip[c]) >> 16 is g / c for every grain of a pool and class. */
static void test_pool_index(void)
{
    int ok = 1;
    for (uint32_t c = 1; c <= 32; c++)
        for (uint32_t g = 0; g < 2048; g++)
            if (((g * fil_pool_recip[c]) >> 16) != g / c)
                ok = 0;
    CHECK(ok);
}

static void test_pools(void)
{
    int64_t total0 = fil_state->total;
    uint64_t live0 = fil_tracker_live_count();
    char *a = fil_tracker_arena_new(ARENA);
    CHECK(a != NULL);
    CHECK_I64((uintptr_t)a % ARENA, 0); /* S-aligned, records below */
    CHECK_I64(fil_pool_geom.arena_shift, 20);
    CHECK_I64(fil_pool_geom.pool_shift, 14);
    char *b = fil_tracker_arena_new(ARENA);
    CHECK(b != NULL && (uintptr_t)b % ARENA == 0 && b != a);

    /* 2-tuples (56 bytes, class 4) and ints (28 bytes, class 2) from two
     * lines, in two pools: each charged its requested size. */
    fake_pool(a, 0, 4);
    fake_pool(a, 1, 2);
    enum { N = 255 };
    for (unsigned k = 0; k < N; k++) {
        fil_tracker_py_add(blk(a, 0, 4, k), 56, 5);
        fil_tracker_py_add(blk(a, 1, 2, k), 28, 6);
    }
    CHECK_I64(bytes_of(5), 56 * N);
    CHECK_I64(bytes_of(6), 28 * N);
    CHECK_I64(fil_state->total, total0 + 84 * N);
    CHECK_I64(fil_tracker_live_count(), live0 + 2 * N);
    CHECK_I64(fil_tracker_table_count(), live0); /* none went to the table */
    CHECK_CONSISTENT();
    /* realloc protocol hands back the exact size and node */
    fil_realloc_t t;
    fil_tracker_realloc_begin(blk(a, 0, 4, 7), &t, 1);
    CHECK_I64(t.had, 1);
    CHECK_I64(t.size, 56);
    CHECK_I64(t.node, 5);
    fil_tracker_realloc_end(&t, blk(a, 0, 4, 7), NULL, 0, 0, 1); /* failed: still live */
    CHECK_I64(bytes_of(5), 56 * N);
    /* shrunk in place (pymalloc keeps the block): 50 bytes, another line */
    fil_tracker_realloc_begin(blk(a, 0, 4, 7), &t, 1);
    fil_tracker_realloc_end(&t, blk(a, 0, 4, 7), blk(a, 0, 4, 7), 50, 7, 1);
    CHECK_I64(bytes_of(5), 56 * (N - 1));
    CHECK_I64(bytes_of(7), 50);
    fil_tracker_py_remove(blk(a, 0, 4, 7));
    CHECK_I64(bytes_of(7), 0);
    for (unsigned k = 0; k < N; k++) {
        if (k != 7)
            fil_tracker_py_remove(blk(a, 0, 4, k));
        fil_tracker_py_remove(blk(a, 1, 2, k));
    }
    CHECK_I64(bytes_of(5), 0);
    CHECK_I64(bytes_of(6), 0);
    CHECK_I64(fil_tracker_live_count(), live0);
    CHECK_I64(fil_state->total, total0);

    /* 20 (node, size) pairs in one pool: 15 fit the dictionary, the rest go
     * to the table, every one exact. Freed, the entries are reused. */
    fake_pool(a, 2, 2);
    for (unsigned k = 0; k < 20; k++)
        fil_tracker_py_add(blk(a, 2, 2, k), 17 + k % 16, 8 + k / 16);
    CHECK_I64(bytes_of(8), (17 + 32) * 16 / 2);
    CHECK_I64(bytes_of(9), 17 + 18 + 19 + 20);
    CHECK_I64(fil_tracker_table_count(), live0 + 5);
    CHECK_CONSISTENT();
    for (unsigned k = 0; k < 20; k++)
        fil_tracker_py_remove(blk(a, 2, 2, k));
    CHECK_I64(bytes_of(8), 0);
    CHECK_I64(bytes_of(9), 0);
    CHECK_I64(fil_tracker_live_count(), live0);

    /* The second half of a 16-byte class pool has no nibbles: the table. */
    fake_pool(a, 3, 1);
    fil_tracker_py_add(blk(a, 3, 1, 10), 16, 10);
    fil_tracker_py_add(blk(a, 3, 1, 900), 9, 10);
    CHECK_I64(bytes_of(10), 25);
    CHECK_I64(fil_tracker_table_count(), live0 + 1);
    fil_tracker_py_remove(blk(a, 3, 1, 900));
    fil_tracker_py_remove(blk(a, 3, 1, 10));
    CHECK_I64(bytes_of(10), 0);

    /* Blocks freed behind our back (guard set) stay charged until their
     * place is used again, the pool is laid out for another class, or the
     * arena is given back; then they are uncharged, never twice. */
    fake_pool(a, 4, 4);
    fil_tracker_py_add(blk(a, 4, 4, 0), 60, 11);
    fil_tracker_py_add(blk(a, 4, 4, 1), 61, 11);
    fil_tracker_py_add(blk(a, 4, 4, 0), 62, 12); /* block 0 again: 60 forgotten */
    CHECK_I64(bytes_of(11), 61);
    CHECK_I64(bytes_of(12), 62);
    fake_pool(a, 4, 8); /* emptied by pymalloc, now 128-byte blocks */
    fil_tracker_py_add(blk(a, 4, 8, 3), 100, 13);
    CHECK_I64(bytes_of(11), 0);
    CHECK_I64(bytes_of(12), 0);
    CHECK_I64(bytes_of(13), 100);
    fake_pool(b, 9, 3);
    fil_tracker_py_add(blk(b, 9, 3, 2), 40, 14);
    CHECK_CONSISTENT();
    fil_tracker_arena_del(a, ARENA); /* block 3 of pool 4 was still listed */
    fil_tracker_arena_del(b, ARENA);
    CHECK_I64(bytes_of(13), 0);
    CHECK_I64(bytes_of(14), 0);
    CHECK_I64(fil_tracker_live_count(), live0);
    CHECK_I64(fil_state->total, total0);
    CHECK_CONSISTENT();

    /* An address outside our arenas is a table block, even from CPython. */
    fil_tracker_py_add(addr(0x6000), 100, 15);
    CHECK_I64(fil_tracker_table_count(), live0 + 1);
    fil_tracker_py_remove(addr(0x6000));
    CHECK_I64(bytes_of(15), 0);
}

/* ---- a fork child's own state ------------------------------------------ */

/* A fork child moves to a state of its own (fil_state_fork_child) and
 * forgets the parent's blocks (fil_tracker_fork_child): its counters start
 * at zero, an inherited malloc block or pymalloc object it frees changes
 * nothing, what it allocates is charged to the same node ids, and the
 * parent's file is never written. The child reports through a pipe. */
static void test_fork_child(void)
{
    char *a = fil_tracker_arena_new(ARENA);
    CHECK(a != NULL);
    fake_pool(a, 2, 3);
    fil_tracker_add(addr(0x7100000), 4000, 7);
    fil_tracker_py_add(blk(a, 2, 3, 1), 40, 8);
    int64_t parent_total = fil_state->total, parent_peak = fil_state->peak_total;
    uint64_t parent_nodes = fil_state->nodes.count;
    int64_t parent7 = bytes_of(7);
    /* The parent was interrupted: its stop copy is its own, not the child's. */
    __atomic_store_n(&fil_stop_pending, SIGINT, __ATOMIC_RELEASE);
    fil_tracker_remove(addr(0x7100000));
    fil_tracker_add(addr(0x7100000), 4000, 7);
    CHECK_I64(fil_state->stop_signal, SIGINT);
    int fd[2];
    CHECK(pipe(fd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        int64_t got[9] = {0};
        close(fd[0]);
        got[0] = fil_state_fork_child() == 0 && fil_tracker_fork_child() == 0;
        got[1] = fil_state->total;
        got[2] = (int64_t)fil_state->nodes.count;
        fil_tracker_remove(addr(0x7100000));        /* the parent's: unknown here */
        fil_tracker_py_remove(blk(a, 2, 3, 1));
        got[3] = fil_state->total + bytes_of(7) + bytes_of(8);
        fil_tracker_add(addr(0x7200000), 300, 7);  /* the child's own */
        got[4] = bytes_of(7);
        got[5] = fil_state->peak_total;
        got[6] = consistent();
        got[7] = fil_state->pid == getpid();
        got[8] = fil_state->stop_signal + fil_state->stop_total + (int64_t)fil_state->execed;
        ssize_t w = write(fd[1], got, sizeof got);
        _exit(w == (ssize_t)sizeof got ? 0 : 1);
    }
    close(fd[1]);
    int64_t got[9] = {0};
    CHECK(read(fd[0], got, sizeof got) == (ssize_t)sizeof got);
    close(fd[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_I64(got[0], 1);
    CHECK_I64(got[1], 0);                          /* nothing held at the start */
    CHECK_I64(got[2], (int64_t)parent_nodes);      /* the tree it inherited */
    CHECK_I64(got[3], 0);                          /* inherited frees: no effect */
    CHECK_I64(got[4], 300);
    CHECK_I64(got[5], 300);
    CHECK_I64(got[6], 1);
    CHECK_I64(got[7], 1);
    CHECK_I64(got[8], 0); /* no stop copy, no exec of its own yet */
    /* The parent's state is as it was. */
    CHECK_I64(fil_state->stop_signal, SIGINT);
    __atomic_store_n(&fil_state->stop_signal, 0, __ATOMIC_RELEASE);
    CHECK_I64(fil_state->total, parent_total);
    CHECK_I64(fil_state->peak_total, parent_peak);
    CHECK_I64(bytes_of(7), parent7);
    CHECK_I64(fil_state->pid, getpid());
    fil_tracker_remove(addr(0x7100000));
    fil_tracker_py_remove(blk(a, 2, 3, 1));
    fil_tracker_arena_del(a, ARENA);
    CHECK_CONSISTENT();
}

int main(void)
{
    setup();
    if (failures) {
        return check_summary("test_tracker");
    }
    test_peak_abc(); /* first: on a fresh total and peak */
    test_peak_many();
    test_stop_copy();
    test_add_remove();
    test_realloc();
    test_mmaps();
    test_unmap_undo();
    test_sweep_wrap();
    test_churn();
    test_table();
    test_compact_leaves();
    test_threads();
    test_threads_unseen();
    test_overflow();
    test_pool_index();
    test_pools();
    test_fork_child();
    test_replace_across(); /* last: a failure here leaves blocks behind */
    return check_summary("test_tracker");
}
