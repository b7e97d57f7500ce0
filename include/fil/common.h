/* SPDX-License-Identifier: MIT */
/*
 * fil/common.h - small definitions shared by every module.
 *
 * Nothing here allocates or has state; it may be included from code that runs
 * in signal context.
 */
#ifndef FIL_COMMON_H
#define FIL_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Export a symbol from a library built with -fvisibility=hidden. */
#define FIL_API __attribute__((visibility("default")))

#define FIL_LIKELY(x) __builtin_expect(!!(x), 1)
#define FIL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* "No index": used for absent parents, missing functions, unset nodes. */
#define FIL_NONE UINT32_MAX

/* A limit value meaning "no limit". Anything at or above FIL_UNLIMITED_MIN is
 * treated as unlimited (cgroup v1 reports 9223372036854771712, RLIMIT_INFINITY
 * is ~0). */
#define FIL_UNLIMITED UINT64_MAX
#define FIL_UNLIMITED_MIN (UINT64_C(1) << 60)

/* Exit status when an out-of-memory condition was detected and dumped. */
#define FIL_EXIT_OOM 53

/* Every line the profiler writes to stderr starts with this. */
#define FIL_MSG_PREFIX "=fil-profile= "

#endif
