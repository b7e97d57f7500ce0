/* SPDX-License-Identifier: MIT */
/* interpose_internal.h - state shared by the wrapper files. */
#ifndef FIL_INTERPOSE_INTERNAL_H
#define FIL_INTERPOSE_INTERNAL_H

#include <stdlib.h>

#include "fil/common.h"
#include "fil/runtime.h"

/* Enter tracking for one call: 1 if it must be tracked (the guard is then
 * set; the caller clears it), 0 to pass straight through. A thread writing
 * a dump must not allocate (invariant 2): an allocator called from it
 * aborts (dump_aborts), so a violation shows as a crash in tests, never as
 * a hang; mmap passes through instead (libunwind may map its own pages). */
static inline int fil_enter(int dump_aborts) {
    if (__builtin_expect(fil_in_dump, 0)) {
        if (dump_aborts)
            abort();
        return 0;
    }
    if (__builtin_expect(!__atomic_load_n(&fil_active, __ATOMIC_RELAXED), 0) || fil_guard)
        return 0;
    fil_guard = 1;
    return 1;
}

/* Reports on demand (usr2.c): remember the launcher (constructor), install
 * the SIGUSR2 handler (start of profiling). */
void fil_usr2_setup(int enabled);
void fil_usr2_install(void);

/* Wrap CPython's MEM/OBJ allocators (pymem.c). 1 if in place, 0 if not Python. */
int fil_pymem_install(void);
/* Run fn(arg) noting the blocks Python's RAW allocator makes, and give them
 * back to that allocator when Python frees them at exit (pymem.c). */
void fil_pymem_raw_note(void (*fn)(void *), void *arg);
void fil_pymem_raw_release(void);

#endif
