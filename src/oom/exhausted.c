/* SPDX-License-Identifier: MIT */
/*
 * exhausted.c - was a failed mapping a lack of memory?
 *
 * mmap and mremap fail with ENOMEM for many reasons, and only some of them
 * mean the program ran out of memory (invariant 7: never a false
 * out-of-memory). A failure is out of memory only when one of the limits a
 * memory profiler reports explains it:
 *   - RLIMIT_AS: the address space would grow past the soft limit;
 *   - RLIMIT_DATA: a private writable mapping would grow the data segment
 *     past it;
 *   - overcommit accounting: with vm.overcommit_memory=2 the commit charge
 *     would pass CommitLimit; with the default heuristic (0) one request
 *     larger than RAM + swap is refused (MAP_NORESERVE skips both checks
 *     in mode 0, and mode 1 never refuses).
 * Anything else is the program's own business, exactly as without the
 * profiler: an empty huge-page pool (MAP_HUGETLB, the "try huge pages,
 * fall back" probe of many allocators), vm.max_map_count, an address hint
 * that cannot be honoured, mremap that cannot grow in place.
 *
 * Runs on the failure path, possibly short of memory: stack buffers and the
 * raw /proc readers of src/limits only, no allocation.
 */
#include <sys/mman.h>

#include "fil/oom.h"
#include "fil/state_writer.h"
#include "oom_internal.h"
#include "../limits/limits_internal.h"

/* Would the kernel's overcommit accounting refuse `len` more committed bytes
 * (mode 2), or refuse this one request outright (mode 0)? */
static int commit_refused(uint64_t len, int accounted, const fil_limits_t *l) {
    uint64_t commit_limit = 0, committed = 0, swap_total = 0;
    if (!accounted || fil_oom_cfg.overcommit == 1 ||
        fil_limits_read_commit("", &commit_limit, &committed, &swap_total) < 0)
        return 0;
    if (fil_oom_cfg.overcommit == 2)
        return commit_limit > 0 && committed + len > commit_limit;
    return l->mem_total > 0 && len > l->mem_total + swap_total;
}

/*
 * fil_oom_mapping_exhausted - 1 if a mapping of len more bytes (flags and
 * prot as given to mmap; MAP_PRIVATE writable for an mremap growth) failed
 * for lack of memory under one of the limits above, else 0. Call it right
 * after the failure. Context: any thread, guarded, no lock held.
 */
int fil_oom_mapping_exhausted(size_t len, int flags, int prot) {
    if (!fil_state || (flags & MAP_HUGETLB))
        return 0;
    fil_limits_t l = fil_state->limits;
    fil_limits_refresh(&l, "");
    int writable = (prot & PROT_WRITE) != 0;
    int data = writable && !(flags & MAP_SHARED);
    if (l.rlimit_as != FIL_UNLIMITED && l.vm_size + len > l.rlimit_as)
        return 1;
    if (data && l.rlimit_data != FIL_UNLIMITED && l.vm_data + len > l.rlimit_data)
        return 1;
    int noreserve = (flags & MAP_NORESERVE) && fil_oom_cfg.overcommit != 2;
    return commit_refused(len, writable && !noreserve, &l);
}
