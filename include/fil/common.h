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

/* A node value meaning "the profiler's own allocation: do not record it"
 * (no interned node ever has this index). */
#define FIL_NODE_UNTRACKED (UINT32_MAX - 1)

/* A limit value meaning "no limit". Anything at or above FIL_UNLIMITED_MIN is
 * treated as unlimited (cgroup v1 reports 9223372036854771712, RLIMIT_INFINITY
 * is ~0). */
#define FIL_UNLIMITED UINT64_MAX
#define FIL_UNLIMITED_MIN (UINT64_C(1) << 60)

/* FIL_ASSERT(cond): an accounting or protocol invariant, checked in debug
 * builds (`make DEBUG=1`, and the unit tests) and compiled out otherwise. A
 * failure writes "file:line: assertion failed: cond" to stderr with write(2)
 * and aborts, so it may be used in signal context too. */
#ifdef FIL_DEBUG
void fil_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));
#define FIL_ASSERT(cond) (FIL_LIKELY(cond) ? (void)0 : fil_assert_fail(#cond, __FILE__, __LINE__))
#else
#define FIL_ASSERT(cond) ((void)0)
#endif

/* Exit status when an out-of-memory condition was detected and dumped. */
#define FIL_EXIT_OOM 53

/* Every line the profiler writes to stderr starts with this. */
#define FIL_MSG_PREFIX "=fil-profile= "

#endif
