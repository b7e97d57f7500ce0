/* SPDX-License-Identifier: MIT */
/*
 * init.c - start and end of tracking in the profiled process.
 *
 * The constructor runs before the interpreter starts: it maps the state the
 * supervisor handed down (FIL_STATE_FD), sets up the tables and the
 * out-of-memory machinery, checks the interpreter and arranges for the
 * profiler to start with the program's code (python.c), wraps CPython's
 * object allocators (pymem.c), removes the profiler's variables from the
 * environment the program and its children see, and turns tracking on.
 * Anything it allocates on the way is untracked (the guard is set).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"
#include "interpose_internal.h"

void fil_interpose_resolve(void);
void fil_python_setup(const char *libdir);
int fil_python_present(void);

/* The launcher's contract variables: read by now, and not the program's. */
static const char *const our_vars[] = {
    "FIL_STATE_FD",      "FIL_LIBDIR",        "FIL_RESULT_DIR", "FIL_RESULT_DISPLAY",
    "FIL_OOM_MODE",      "FIL_OOM_DETECTION", "FIL_SAFETY_MARGIN", "FIL_VERBOSE",
    "FIL_QUIET",         "FIL_USR2",
};

/* Remove our library from LD_PRELOAD so programs this one starts run
 * untracked (they would otherwise share, and corrupt, this state). */
static void drop_preload(void) {
    const char *v = getenv("LD_PRELOAD");
    if (!v)
        return;
    char keep[4096];
    size_t k = 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ": ");
        int ours = n >= 17 && memcmp(p + n - 17, "libfilpreload.so", 16) == 0;
        ours = ours || (n >= 16 && memcmp(p + n - 16, "libfilpreload.so", 16) == 0);
        if (!ours && n && k + n + 1 < sizeof keep) {
            if (k)
                keep[k++] = ':';
            memcpy(keep + k, p, n);
            k += n;
        }
        p += n;
        while (*p == ':' || *p == ' ')
            p++;
    }
    keep[k] = 0;
    if (k)
        setenv("LD_PRELOAD", keep, 1);
    else
        unsetenv("LD_PRELOAD");
}

__attribute__((constructor)) static void fil_preload_init(void) {
    fil_guard = 1;
    fil_interpose_resolve();
    const char *libdir = getenv("FIL_LIBDIR");
    if (libdir && !fil_python_present()) {
        /* Not the interpreter yet (a pyenv shim, a wrapper script, valgrind
         * on its way to python): track nothing, touch nothing, and let the
         * environment through to the interpreter it will exec. */
        fil_guard = 0;
        return;
    }
    const char *fd = getenv("FIL_STATE_FD");
    int n = fd ? atoi(fd) : -1;
    if (fil_state_open(n) == 0 && fil_stacks_init() == 0 && fil_tracker_init() == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        fil_state->start_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        fil_state->running = FIL_RUNNING_STARTED;
        fil_oom_init();
        const char *usr2 = getenv("FIL_USR2");
        fil_usr2_setup(fd && libdir && !(usr2 && strcmp(usr2, "0") == 0));
        if (libdir)
            fil_python_setup(libdir); /* may refuse the interpreter and exit */
        fil_pymem_install();
        drop_preload();
        for (unsigned i = 0; i < sizeof our_vars / sizeof *our_vars; i++)
            unsetenv(our_vars[i]);
        __atomic_store_n(&fil_active, 1, __ATOMIC_RELEASE);
    }
    fil_guard = 0;
}

/* Normal exit: settle the peak so peak[] is complete. */
__attribute__((destructor)) static void fil_preload_fini(void) {
    struct rusage ru;

    if (!__atomic_load_n(&fil_active, __ATOMIC_ACQUIRE))
        return;
    fil_guard = 1;
    fil_tracker_settle_peak();
    if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0)
        fil_state->exit_peak_rss = (uint64_t)ru.ru_maxrss * 1024u;
    fil_state->running = FIL_RUNNING_FINISHED;
    fil_guard = 0;
}
