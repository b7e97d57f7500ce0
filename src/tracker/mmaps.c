/* SPDX-License-Identifier: MIT */
/*
 * mmaps.c - anonymous mappings the program made, as address ranges.
 *
 * Ranges never overlap (the kernel would have replaced the old mapping; a
 * MAP_FIXED over a tracked range is first removed from it), and are kept
 * sorted by start in one array of private pages, so a partial munmap finds
 * the ranges it touches by binary search and trims or splits them. Programs
 * hold few anonymous mappings (glibc's own large-malloc mappings do not come
 * through here), so the O(n) insert is cheap. Context: fil_lock held.
 */
#include "tracker_internal.h"

#include <string.h>

#include "fil/sys.h"

typedef struct range {
    uintptr_t start;
    uint64_t len;
    uint32_t node;
    uint32_t pad;
} range_t;

static range_t *ranges; /* private pages */
static uint64_t cap, count;

int fil_tracker_maps_init(void) {
    cap = 1024;
    ranges = fil_sys_pages(cap * sizeof(range_t));
    return ranges ? 0 : -1;
}

/* Forget every range (a fork child: they are its parent's). */
void fil_tracker_maps_forget(void) { count = 0; }

/* Index of the first range ending after addr. */
static uint64_t first_after(uintptr_t addr) {
    uint64_t lo = 0, hi = count;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (ranges[mid].start + ranges[mid].len <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int insert_at(uint64_t i, uintptr_t start, uint64_t len, uint32_t node) {
    if (count == cap) {
        range_t *n = fil_sys_pages(cap * 2 * sizeof(range_t));
        if (!n)
            return -1;
        memcpy(n, ranges, count * sizeof(range_t));
        fil_sys_unmap(ranges, cap * sizeof(range_t));
        ranges = n;
        cap *= 2;
    }
    memmove(&ranges[i + 1], &ranges[i], (count - i) * sizeof(range_t));
    ranges[i] = (range_t){start, len, node, 0};
    count++;
    return 0;
}

int fil_tracker_maps_add(uintptr_t start, uint64_t len, uint32_t node) {
    fil_tracker_maps_remove(start, len, NULL);
    return insert_at(first_after(start), start, len, node);
}

/* Note a removed piece (ascending addresses) in *s. */
static void save_piece(fil_unmapped_t *s, uintptr_t start, uint64_t len, uint32_t node) {
    if (s->n < FIL_UNMAPPED_PIECES) {
        s->piece[s->n].start = start;
        s->piece[s->n].len = len;
        s->piece[s->n].node = node;
        s->n++;
    } else { /* the last piece stretches to the end of this one */
        uintptr_t last = s->piece[FIL_UNMAPPED_PIECES - 1].start;
        s->piece[FIL_UNMAPPED_PIECES - 1].len = start + len - last;
    }
}

uint64_t fil_tracker_maps_remove(uintptr_t start, uint64_t len, fil_unmapped_t *saved) {
    uintptr_t end = start + len;
    uint64_t removed = 0;
    uint64_t i = first_after(start);
    while (i < count && ranges[i].start < end) {
        range_t r = ranges[i];
        uintptr_t rend = r.start + r.len;
        uintptr_t cut_lo = r.start > start ? r.start : start;
        uintptr_t cut_hi = rend < end ? rend : end;
        fil_tracker_charge_locked(r.node, -(int64_t)(cut_hi - cut_lo));
        removed += cut_hi - cut_lo;
        if (saved)
            save_piece(saved, cut_lo, cut_hi - cut_lo, r.node);
        if (r.start < cut_lo && cut_hi < rend) { /* hole in the middle: split */
            ranges[i].len = cut_lo - r.start;
            if (insert_at(i + 1, cut_hi, rend - cut_hi, r.node) != 0)
                fil_tracker_charge_locked(r.node, -(int64_t)(rend - cut_hi));
            return removed;
        }
        if (r.start < cut_lo) { /* keep the left part */
            ranges[i].len = cut_lo - r.start;
            i++;
        } else if (cut_hi < rend) { /* keep the right part */
            ranges[i].start = cut_hi;
            ranges[i].len = rend - cut_hi;
            i++;
        } else { /* all of it */
            memmove(&ranges[i], &ranges[i + 1], (count - i - 1) * sizeof(range_t));
            count--;
        }
    }
    return removed;
}
