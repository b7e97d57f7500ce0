/* SPDX-License-Identifier: MIT */
/* interpose_internal.h - state shared by the wrapper files. */
#ifndef FIL_INTERPOSE_INTERNAL_H
#define FIL_INTERPOSE_INTERNAL_H

/* 1 while this thread is inside the profiler; its allocations pass through. */
extern __thread int fil_guard __attribute__((tls_model("initial-exec")));
/* 1 when allocations are tracked. */
extern int fil_active;
/* 1 while this thread writes a dump: allocators must abort if called. */
extern __thread int fil_in_dump __attribute__((tls_model("initial-exec")));

/* Wrap CPython's MEM/OBJ allocators (pymem.c). 1 if in place, 0 if not Python. */
FIL_API int fil_pymem_install(void);

#endif
