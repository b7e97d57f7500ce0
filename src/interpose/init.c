/* SPDX-License-Identifier: MIT */
/*
 * init.c - start and end of tracking in the profiled process.
 *
 * The constructor runs before the interpreter starts: it maps the state the
 * supervisor handed down (FIL_STATE_FD), sets up the tables and the
 * out-of-memory machinery, checks the interpreter and arranges for the
 * profiler to start with the program's code (python.c), wraps CPython's
 * object allocators (pymem.c), removes the profiler's variables from the
 * environment the program sees (exec.c carries them to its children),
 * and turns tracking on. A Python process the program started registers a
 * state of its own with the launcher (children.c): the registration is
 * sent first and its answer taken after the tables and the out-of-memory
 * set-up, which run while the launcher makes the child's folder.
 * Anything it allocates on the way is untracked (the guard is set).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"
#include "exec_internal.h"
#include "fil/children.h"
#include "interpose_internal.h"

void fil_interpose_resolve(void);
void fil_python_setup(const char *libdir);
int fil_python_supported(const char *libdir);
int fil_python_present(void);

/* CLOCK_REALTIME in nanoseconds. */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The constructor. Three kinds of process load this library: one that is
 * not Python (yet): a shim, a shell, valgrind, any program the tree runs;
 * the program itself (FIL_STATE_FD: the launcher's memfd); and a Python
 * process the program started (no FIL_STATE_FD, FIL_CHILDREN: it makes
 * and registers a state of its own, children.c). Each takes the
 * launcher's variables out of its environment (exec.c puts back what the
 * next exec needs).
 */
__attribute__((constructor)) static void fil_preload_init(void) {
    fil_guard = 1;
    fil_interpose_resolve();
    const char *libdir = getenv("FIL_LIBDIR");
    const char *fd = getenv("FIL_STATE_FD");
    const char *registry = getenv(FIL_CHILDREN_ENV);
    fil_children_setup(registry);
    if (libdir && !fil_python_present()) {
        /* Not the interpreter: track nothing, and carry the environment
         * through to the programs it execs (the interpreter, or a Python
         * grandchild below a shell). */
        fil_exec_setup(FIL_EXEC_ALL);
        fil_exec_strip();
        fil_guard = 0;
        return;
    }
    int child = !fd && registry && libdir;
    if (child && fil_python_supported(libdir) != 0) {
        /* An interpreter we have no extension for: it runs unprofiled, and
         * carries what its children need, as a profiled one does (a Python
         * it starts is the program's too). */
        fil_exec_setup(FIL_EXEC_CHILDREN);
        fil_exec_strip();
        fil_guard = 0;
        return;
    }
    fil_exec_setup(registry ? FIL_EXEC_CHILDREN : FIL_EXEC_NONE);
    int n = fd ? atoi(fd) : -1;
    int ok = fil_state_open(n) == 0 && (!child || fil_children_send_exec() == 0) &&
             fil_stacks_init() == 0 && fil_tracker_init() == 0;
    if (ok) {
        fil_oom_init(child); /* meanwhile a child's launcher makes its folder */
        ok = !child || fil_children_await_exec() == 0;
        if (!ok)
            fil_oom_abandon();
    }
    if (ok) {
        fil_oom_warm_up();
        fil_state->start_ns = now_ns();
        fil_state->running = FIL_RUNNING_STARTED;
        fil_children_oom_dir();
        const char *usr2 = getenv("FIL_USR2");
        fil_usr2_setup(fd && libdir && !(usr2 && strcmp(usr2, "0") == 0));
        if (libdir)
            fil_python_setup(libdir); /* may refuse the interpreter and exit */
        fil_pymem_install();
        fil_children_at_exit();
        __atomic_store_n(&fil_active, 1, __ATOMIC_RELEASE);
    } else if (child) {
        fil_children_cancel_exec(); /* a registration sent and not waited for */
        fil_exec_stop(); /* no launcher to take this one's children either */
    } else if (fd) {
        /* The launcher's own program: its report would say 0 B tracked. */
        int e = errno;
        fprintf(stderr, FIL_MSG_PREFIX "warning: the profiler could not set up its state (%s%s); "
                "the program runs unprofiled\n", strerror(e),
                e == EFBIG ? ": the file size limit, ulimit -f, is too small" : "");
    }
    fil_exec_strip();
    fil_guard = 0;
}

/* Normal exit: settle the peak so peak[] is complete. */
__attribute__((destructor)) static void fil_preload_fini(void) {
    uint64_t rss;

    if (!__atomic_load_n(&fil_active, __ATOMIC_ACQUIRE))
        return;
    fil_guard = 1;
    fil_tracker_settle_peak();
    rss = fil_children_peak_rss();
    if (rss > fil_state->exit_peak_rss)
        fil_state->exit_peak_rss = rss;
    fil_state->running = FIL_RUNNING_FINISHED;
    fil_guard = 0;
}
