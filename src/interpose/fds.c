/* SPDX-License-Identifier: MIT */
/*
 * fds.c - the exported pipe2: the profiler's own pipes live high.
 *
 * libunwind opens a pipe when it is first used (to validate addresses) and
 * keeps it for good; the profiler warms libunwind up at start-up, and
 * libunwind re-opens that pipe if it finds it closed. pipe2 returns the
 * lowest free descriptors, so with the program started with stdout closed
 * the pipe took descriptor 1 and the program's first print failed with
 * EBADF; and in every run it took numbers the program's own files would
 * have had. A pipe2 called from inside the profiler (the guard set, or
 * while dumping) is therefore moved up with fil_sys_fd_high before the
 * caller sees it; the program's own calls pass straight to the kernel.
 * Nothing is allocated. Async-signal-safe (raw syscall, fcntl, close).
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/runtime.h"
#include "fil/sys.h"

/* pipe2(2); a profiler caller gets both ends at high numbers, close-on-exec.
 * Context: any thread, any context. */
FIL_API int pipe2(int fds[2], int flags) {
    int r = (int)syscall(SYS_pipe2, fds, flags);
    if (r == 0 && (fil_guard || fil_in_dump)) {
        fds[0] = fil_sys_fd_high(fds[0]);
        fds[1] = fil_sys_fd_high(fds[1]);
        FIL_ASSERT(fds[0] > 2 && fds[1] > 2); /* never one of the program's 0-2 */
    }
    return r;
}
