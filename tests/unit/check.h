/* SPDX-License-Identifier: MIT */
/*
 * check.h - the assertion machinery shared by the unit tests (tests/unit/).
 *
 * Each test is its own program and includes this header once, so the
 * counters and helpers are static. A CHECK* macro counts one assertion and,
 * if it fails, counts a failure and prints file:line and what was wrong to
 * stderr; the test goes on. A test may also count a hand-made assertion
 * itself (checks++, and failures++ with its own message). main() ends with
 * `return check_summary("test_NAME");`, which prints the closing line
 * `test_NAME: N checks, M failures` and gives the exit status (1 if any
 * check failed).
 *
 * The runtime flags (fil/runtime.h) come from the core library every unit
 * test links; a test process is not profiled and nothing dumps, so they
 * stay 0, except the lock switch turned on below.
 */
#ifndef FIL_TEST_CHECK_H
#define FIL_TEST_CHECK_H

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fil/runtime.h"

/* The tracker's lock is only taken once the interposed pthread_create has
 * seen a second thread (fil/lock.h); tests start threads without that
 * wrapper, so they turn it on from the start. */
__attribute__((constructor)) static void check_lock_on(void) { fil_lock_needed = 1; }

/* The state memfd fil_state_open(-1) made, found by its link name under
 * /proc/self/fd (the directory's own descriptor skipped); -1 if none. */
static inline int find_state_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    int found = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], target[300];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strstr(target, "memfd:fil-state") && atoi(e->d_name) != dirfd(d))
            found = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

static int checks;   /* assertions evaluated */
static int failures; /* assertions that failed */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* got (a string, NULL fails) equals want exactly. */
#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *got_ = (got), *want_ = (want);                                                 \
        checks++;                                                                                  \
        if (!got_ || strcmp(got_, want_) != 0) {                                                   \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got,         \
                    got_ ? got_ : "(null)", want_);                                                \
        }                                                                                          \
    } while (0)

/* got == want, both converted to the macro's type (long long, int64_t or
 * uint64_t), which is also how they are printed. */
#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long got_ = (got), want_ = (want);                                                    \
        checks++;                                                                                  \
        if (got_ != want_) {                                                                       \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, got_,       \
                    want_);                                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_I64(got, want)                                                                       \
    do {                                                                                           \
        int64_t got_ = (int64_t)(got), want_ = (int64_t)(want);                                    \
        checks++;                                                                                  \
        if (got_ != want_) {                                                                       \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: %s = %" PRId64 ", want %" PRId64 "\n", __FILE__, __LINE__,     \
                    #got, got_, want_);                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_U64(got, want)                                                                       \
    do {                                                                                           \
        uint64_t got_ = (got), want_ = (want);                                                     \
        checks++;                                                                                  \
        if (got_ != want_) {                                                                       \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: %s = %" PRIu64 ", want %" PRIu64 "\n", __FILE__, __LINE__,     \
                    #got, got_, want_);                                                            \
        }                                                                                          \
    } while (0)

/* Prints the closing line `test: N checks, M failures`, followed on the same
 * line by fmt and its arguments, and returns the exit status: 0 if no check
 * failed, else 1. */
static inline int check_summary_more(const char *test, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int check_summary_more(const char *test, const char *fmt, ...)
{
    va_list ap;

    printf("%s: %d checks, %d failures", test, checks, failures);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    return failures ? 1 : 0;
}

/* The closing line alone; the exit status as above. */
static inline int check_summary(const char *test)
{
    return check_summary_more(test, "%s", "");
}

#endif /* FIL_TEST_CHECK_H */
