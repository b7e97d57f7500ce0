/* SPDX-License-Identifier: MIT */
/*
 * sort.c - scratch carving and an in-place heapsort for the report writers.
 *
 * qsort may allocate, so the writers sort index arrays with this heapsort:
 * O(n log n) worst case, no recursion, no memory beyond the array. Scratch
 * memory handed in by the caller is split into 8-byte aligned arrays by a
 * bump "arena" that only moves forward and fails (NULL) instead of
 * overrunning; each *_scratch_size function sums the same array sizes with
 * fil_report_scratch_total, so the two stay in step.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: none.
 */
#include "report_internal.h"

/* Start carving [scratch, scratch + cap). SIGNAL CONTEXT: caller memory. */
void fil_report_arena_init(fil_report_arena_t *a, void *scratch, size_t cap)
{
    a->cur = scratch;
    a->end = scratch ? (char *)scratch + cap : NULL;
}

/*
 * Take `bytes` bytes aligned to 8 from the arena. Returns the array, or NULL
 * if it does not fit (the arena is then left unchanged).
 * SIGNAL CONTEXT: caller memory only.
 */
void *fil_report_carve(fil_report_arena_t *a, uint64_t bytes)
{
    uintptr_t p = (uintptr_t)a->cur;
    uintptr_t aligned = (p + 7) & ~(uintptr_t)7;
    if (!a->cur || aligned < p || aligned > (uintptr_t)a->end)
        return NULL;
    if (bytes > (uint64_t)((uintptr_t)a->end - aligned))
        return NULL;
    a->cur = (char *)aligned + bytes;
    return (void *)aligned;
}

/*
 * Sum of n array sizes plus FIL_REPORT_ALIGN_SLACK each, saturated at
 * SIZE_MAX (a request that large can never be met, which is the truth).
 * SIGNAL CONTEXT: caller memory only.
 */
size_t fil_report_scratch_total(const uint64_t *bytes, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        uint64_t add = bytes[i] + FIL_REPORT_ALIGN_SLACK;
        if (add < bytes[i] || total + add < total)
            return SIZE_MAX;
        total += add;
    }
    return total > SIZE_MAX ? SIZE_MAX : (size_t)total;
}

/* Restore the max-heap property below `root` in a[0..n). SIGNAL CONTEXT. */
static void sift_down(uint32_t *a, size_t root, size_t n, fil_report_less_fn less, void *ctx)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && less(ctx, a[child], a[child + 1]))
            child++;
        if (!less(ctx, a[root], a[child]))
            return;
        uint32_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

/*
 * sift_down(a, 0, n) for the extraction phase, with one comparison per
 * level instead of two: the element moved to the top came from the bottom
 * and nearly always belongs near it, so the hole is first walked down along
 * the bigger children to a leaf, then the element climbs back from there
 * (a few steps). SIGNAL CONTEXT: caller memory only.
 */
static void sift_from_top(uint32_t *a, size_t n, fil_report_less_fn less, void *ctx)
{
    uint32_t x = a[0];
    size_t j = 0;
    for (;;) {
        size_t child = 2 * j + 1;
        if (child >= n)
            break;
        if (child + 1 < n && less(ctx, a[child], a[child + 1]))
            child++;
        a[j] = a[child];
        j = child;
    }
    while (j > 0) {
        size_t parent = (j - 1) / 2;
        if (!less(ctx, a[parent], x))
            break;
        a[j] = a[parent];
        j = parent;
    }
    a[j] = x;
}

/*
 * Sort a[0..n) ascending by `less`. Not stable: callers that need a total
 * order break ties themselves (e.g. by node index).
 * SIGNAL CONTEXT: caller memory only.
 */
void fil_report_heapsort(uint32_t *a, size_t n, fil_report_less_fn less, void *ctx)
{
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n, less, ctx);
    for (size_t end = n - 1; end > 0; end--) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_from_top(a, end, less, ctx);
    }
}

/* Restore the heap property below `root` in a[0..n) for a heap whose top
 * is the first in `less` order. SIGNAL CONTEXT: caller memory only. */
static void first_sift_down(uint32_t *a, size_t root, size_t n, fil_report_less_fn less,
                            void *ctx)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && less(ctx, a[child + 1], a[child]))
            child++;
        if (!less(ctx, a[child], a[root]))
            return;
        uint32_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

/*
 * Make a[0..n) a heap whose top is the first element in `less` order, for
 * callers that take elements in order until they have enough
 * (fil_report_heap_next): O(n) to build and O(log n) per element taken,
 * instead of sorting the whole array. SIGNAL CONTEXT: caller memory only.
 */
void fil_report_heap_first(uint32_t *a, size_t n, fil_report_less_fn less, void *ctx)
{
    for (size_t i = n / 2; i-- > 0;)
        first_sift_down(a, i, n, less, ctx);
}

/*
 * Take the first element of the heap a[0..*n) (fil_report_heap_first):
 * successive calls give the elements in `less` order, the order
 * fil_report_heapsort sorts them in (callers make it total). *n > 0.
 * SIGNAL CONTEXT: caller memory only.
 */
uint32_t fil_report_heap_next(uint32_t *a, size_t *n, fil_report_less_fn less, void *ctx)
{
    uint32_t top = a[0];
    size_t m = --*n;
    if (m == 0)
        return top;
    uint32_t x = a[m];
    size_t j = 0;
    for (;;) { /* the hole down along the first children, then x up (sift_from_top) */
        size_t child = 2 * j + 1;
        if (child >= m)
            break;
        if (child + 1 < m && less(ctx, a[child + 1], a[child]))
            child++;
        a[j] = a[child];
        j = child;
    }
    while (j > 0) {
        size_t parent = (j - 1) / 2;
        if (!less(ctx, x, a[parent]))
            break;
        a[j] = a[parent];
        j = parent;
    }
    a[j] = x;
    return top;
}
