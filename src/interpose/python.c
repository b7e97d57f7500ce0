/* SPDX-License-Identifier: MIT */
/*
 * python.c - starting the profiler inside the interpreter.
 *
 * The launcher runs the program exactly as the user would: `python
 * [options] script.py args` (or -m module, -c code), so sys.argv,
 * sys.orig_argv, sys.path, __main__ and tracebacks are Python's own. What
 * makes the program profiled is this library, preloaded:
 *
 *  1. The constructor (init.c) calls fil_python_setup() before the
 *     interpreter initialises (a process that is not Python at all, such as
 *     a pyenv shim on its way to python, is left alone and keeps the
 *     environment for the interpreter it execs). It finds the version
 *     (Py_GetVersion works before initialisation), picks the extension
 *     built for it in <libdir>/python/filprofiler/, or refuses with one
 *     line naming the versions this install supports; then it adds an
 *     audit hook (PySys_AddAuditHook is allowed before Py_Initialize).
 *  2. The audit hook sees every audit event. The first "cpython.run_*"
 *     event (run_file, run_module, run_command: Python is about to run the
 *     program's code) loads the extension with dlopen and calls its
 *     fil_native_start() with fil_host_api: from then on allocations are
 *     charged to the Python lines that make them. The crash handlers are
 *     installed then too, after Python's signal module has looked at the
 *     handlers, so signal.getsignal(SIGSEGV) says SIG_DFL as it does
 *     without the profiler; and the SIGUSR2 handler of reports on demand
 *     (usr2.c).
 *  3. "cpython._PySys_ClearAuditHooks" is raised while the interpreter
 *     finalises, before thread states go: the resolver is removed, and
 *     later allocations are charged to "[No Python stack]"; and our
 *     hook's entry, which Python frees next, goes back to the allocator
 *     that made it before Python initialised (fil_pymem_raw_release).
 *
 * The hook costs a string comparison per audit event once started.
 * Context: the constructor runs single-threaded; the hook runs with the
 * GIL held, in whatever thread raised the event.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fil/common.h"
#include "fil/oom.h"
#include "fil/pyapi.h"
#include "fil/render.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/tracker.h"
#include "interpose_internal.h"

typedef int (*audit_hook_fn)(const char *event, void *args, void *data);
typedef int (*add_hook_fn)(audit_hook_fn hook, void *data);
typedef const char *(*version_fn)(void);

static char extension[4096]; /* the extension to load at the first run event */
static int started;          /* 1 once fil_native_start ran (GIL held) */

static int guard_swap(int v) {
    int old = fil_guard;
    fil_guard = v;
    return old;
}

static int tracking_active(void) { return fil_runtime_active(); }

/* What the extension may call (fil/pyapi.h). */
FIL_API const fil_host_api_t fil_host_api = {
    .version = FIL_PYAPI_VERSION,
    .intern_func = fil_stacks_intern_func,
    .intern_node = fil_stacks_intern_node,
    .set_resolver = fil_stacks_set_resolver,
    .thread = fil_stacks_thread,
    .reserve = fil_stacks_reserve,
    .map_cache = fil_stacks_map_cache,
    .active = tracking_active,
    .guard_swap = guard_swap,
    .set_python_version = fil_state_set_python_version,
    .pymem_install = fil_pymem_install,
    .forget = fil_tracker_py_remove,
    .reset_peak = fil_tracker_reset_peak,
    .render_live_peak = fil_render_live_peak,
    .oom_rearm = fil_oom_rearm,
    .oom_dumps = fil_oom_dump_count,
};

/* Load the extension and start it. Context: audit hook, GIL held, guard set. */
static void start(void) {
    void *h = dlopen(extension, RTLD_NOW | RTLD_LOCAL);
    fil_native_start_fn fn = h ? (fil_native_start_fn)dlsym(h, FIL_NATIVE_START) : NULL;
    if (!fn || fn(&fil_host_api) != 0)
        fprintf(stderr, FIL_MSG_PREFIX "warning: %s: %s; memory is charged to [No Python stack]\n",
                extension, h ? "the extension did not start" : dlerror());
    fil_oom_install_late();
    fil_usr2_install(); /* SIGUSR2: a report on demand (usr2.c) */
}

static int audit(const char *event, void *args, void *data) {
    (void)args;
    (void)data;
    if (event[0] != 'c' || strncmp(event, "cpython.", 8) != 0)
        return 0;
    int g = fil_guard;
    fil_guard = 1;
    if (!started && strncmp(event + 8, "run_", 4) == 0) {
        started = 1;
        start();
    } else if (strcmp(event + 8, "_PySys_ClearAuditHooks") == 0) {
        fil_stacks_set_resolver(NULL);
        fil_pymem_raw_release(); /* our hook's entry is freed next */
    }
    fil_guard = g;
    return 0;
}

/* Add our audit hook; arg is PySys_AddAuditHook. Context: constructor. */
static void add_audit_hook(void *arg) {
    add_hook_fn add;
    memcpy(&add, &arg, sizeof add);
    add(audit, NULL);
}

/* "3.11" of "3.11.2 (main, ...)" into major/minor. 0, or -1. */
static int parse_version(const char *v, int *major, int *minor) {
    char *end;
    long a = strtol(v, &end, 10);
    if (end == v || *end != '.')
        return -1;
    const char *m = end + 1;
    long b = strtol(m, &end, 10);
    if (end == m)
        return -1;
    *major = (int)a;
    *minor = (int)b;
    return 0;
}

/* Is name "_native.cpython-<X><Y><flags>-<platform>.so" (X one digit, as
 * CPython's own tag)? Its version into *major, *minor, and 1 into *plain if
 * it has no ABI flags (a debug or free-threaded build has "d" or "t"). */
static int extension_name(const char *name, int *major, int *minor, int *plain) {
    const char *p = "_native.cpython-";
    size_t n = strlen(p), len = strlen(name);
    if (strncmp(name, p, n) != 0 || len < 4 || strcmp(name + len - 3, ".so") != 0)
        return 0;
    const char *v = name + n;
    if (v[0] < '0' || v[0] > '9' || v[1] < '0' || v[1] > '9')
        return 0;
    char *end;
    *major = v[0] - '0';
    *minor = (int)strtol(v + 1, &end, 10);
    *plain = *end == '-';
    return 1;
}

/*
 * Find the extension for Python major.minor in dir (into extension[]) and
 * list the versions there are ("3.11, 3.12") into have. 0 if found, else -1.
 */
static int find_extension(const char *dir, int major, int minor, char *have, size_t cap) {
    DIR *d = opendir(dir);
    int found = -1, best_plain = 0;
    size_t k = 0;
    unsigned char minors[64] = {0}; /* 3.N: minors[N] (readdir's order is no order) */
    have[0] = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        int x, y, plain;
        if (!extension_name(de->d_name, &x, &y, &plain))
            continue;
        if (x == 3 && y >= 0 && y < 64)
            minors[y] = 1;
        if (x == major && y == minor && (found != 0 || (plain && !best_plain))) {
            snprintf(extension, sizeof extension, "%s/%s", dir, de->d_name);
            found = 0;
            best_plain = plain;
        }
    }
    if (d)
        closedir(d);
    for (int y = 0; y < 64; y++) {
        int w = minors[y] ? snprintf(have + k, cap - k, "%s3.%d", k ? ", " : "", y) : 0;
        if (w > 0 && (size_t)w < cap - k)
            k += (size_t)w;
    }
    return found;
}

/* Refuse to run: one line, then exit 127 before the interpreter starts. */
static void refuse(const char *python, const char *what, const char *have, int too_old) {
    if (fil_state)
        fil_state->running = FIL_RUNNING_REFUSED;
    if (too_old)
        fprintf(stderr, FIL_MSG_PREFIX "error: %s %s; fil-profile needs Python 3.9 or newer "
                                       "(this install supports %s)\n",
                python, what, have[0] ? have : "none yet");
    else if (strstr(what, "free-threaded"))
        fprintf(stderr, FIL_MSG_PREFIX "error: %s %s; use a build with the GIL (Python %s)\n",
                python, what, have[0] ? have : "3.9-3.13");
    else
        fprintf(stderr,
                FIL_MSG_PREFIX "error: %s %s; this fil-profile supports Python %s "
                               "(add one with: make PYTHONS=\"... %s\" && make install)\n",
                python, what, have[0] ? have : "(none built)", python);
    _exit(127);
}

/* 1 if this process is a CPython interpreter (of any version). */
int fil_python_present(void) { return dlsym(RTLD_DEFAULT, "Py_GetVersion") != NULL; }

/*
 * fil_python_supported - 0 if this install has an extension for this
 * interpreter's version, else -1 (nothing printed: a child the program
 * started with another interpreter runs unprofiled rather than refused).
 * Context: constructor, single-threaded, guard set.
 */
int fil_python_supported(const char *libdir) {
    char dir[4096], have[256];
    version_fn version = (version_fn)dlsym(RTLD_DEFAULT, "Py_GetVersion");
    int major = 0, minor = 0;
    snprintf(dir, sizeof dir, "%s/python/filprofiler", libdir);
    if (!version || parse_version(version(), &major, &minor) != 0 || major != 3 || minor < 9 ||
        !dlsym(RTLD_DEFAULT, "PySys_AddAuditHook"))
        return -1;
    return find_extension(dir, major, minor, have, sizeof have);
}

/*
 * fil_python_setup - called by the constructor of the profiled program
 * (libdir: the launcher's library folder). Refuses an interpreter this
 * install has no extension for; otherwise adds the audit hook.
 * Context: constructor, single-threaded, guard set.
 */
void fil_python_setup(const char *libdir) {
    char dir[4096], have[256] = "", self[4096];
    snprintf(dir, sizeof dir, "%s/python/filprofiler", libdir);
    version_fn version = (version_fn)dlsym(RTLD_DEFAULT, "Py_GetVersion");
    add_hook_fn add = (add_hook_fn)dlsym(RTLD_DEFAULT, "PySys_AddAuditHook");
    int major = 0, minor = 0;
    int readable = version && parse_version(version(), &major, &minor) == 0;
    int free_threaded = readable && strstr(version(), "free-threading") != NULL;
    int ok = readable && major == 3 && minor >= 9 && add && !free_threaded;
    /* One listing of the folder: none if fil_python_supported found the
     * extension already (a child the program started). */
    if (ok && !extension[0])
        ok = find_extension(dir, major, minor, have, sizeof have) == 0;
    if (ok) {
        /* The entry is PyMem_RawMalloc'ed now, with the allocator of before
         * initialisation, and freed at exit with the one of then (pymem.c). */
        fil_pymem_raw_note(add_audit_hook, (void *)add);
        return;
    }
    if (!have[0])
        find_extension(dir, major, minor, have, sizeof have); /* what there is, for the refusal */
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    if (!readable)
        refuse(self, "has no version we can read", have, 0);
    char what[96];
    snprintf(what, sizeof what, "is Python %d.%d", major, minor);
    if (free_threaded) /* 3.13t: another ABI, and no GIL to rely on */
        snprintf(what, sizeof what, "is a free-threaded build of Python %d.%d (not supported)",
                 major, minor);
    refuse(self, what, have, major < 3 || (major == 3 && minor < 9));
}
