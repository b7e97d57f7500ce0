/* SPDX-License-Identifier: MIT */
/*
 * exec.c - the profiler's variables travel across exec, and only there.
 *
 * Every process of the tree that loads this library (the program, the
 * Python processes it starts, and the shells and other programs between
 * them) takes the launcher's variables (LD_PRELOAD's entry for this
 * library, FIL_*) out of its environment in the constructor, before main
 * and before the interpreter copies the environment into os.environ: so
 * getenv, os.environ, a shell's `$LD_PRELOAD` and `env` all see the
 * environment as it would be without the profiler. The constructor keeps
 * a copy of those variables, and the exec family below puts them back
 * into the environment handed to the kernel, whatever environment the
 * caller built (subprocess's env=..., an empty one): so the next program
 * loads the library again, and a Python process below a shell is profiled.
 *
 * What is carried (fil_exec_setup): a process that is not Python yet
 * (a pyenv shim, `sh -c`, valgrind) carries everything it was given; a
 * profiled Python process carries what its children need to register with
 * the launcher (FIL_CHILDREN), never its own state or folder; with
 * --no-children a Python process carries nothing, as before.
 *
 * The wrappers may run in a vfork() child, which shares the parent's
 * memory: they allocate nothing (the new vectors are on the stack, or in
 * pages mapped for a huge environment), take no lock, touch no state.
 * glibc's system() and popen() spawn through an internal call that passes
 * the environment as it is: shell.c's take their place.
 */
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_internal.h"
#include "fil/children.h"
#include "fil/common.h"
#include "fil/sys.h"

extern char **environ;

/* The variables the launcher owns (cli/env.c sets them). */
static const char *const owned[] = {
    "FIL_STATE_FD",      "FIL_LIBDIR",        "FIL_RESULT_DIR", "FIL_RESULT_DISPLAY",
    "FIL_OOM_MODE",      "FIL_OOM_DETECTION", "FIL_SAFETY_MARGIN", "FIL_VERBOSE",
    "FIL_QUIET",         "FIL_USR2",          FIL_CHILDREN_ENV,
};
#define N_OWNED (sizeof owned / sizeof *owned)
/* What a profiled process's children get: not its state, not its folder. */
static const char *const for_children[] = {
    "FIL_LIBDIR", "FIL_OOM_MODE", "FIL_OOM_DETECTION", "FIL_SAFETY_MARGIN", "FIL_VERBOSE",
    "FIL_QUIET",  "FIL_USR2",     FIL_CHILDREN_ENV,
};
#define N_FOR_CHILDREN (sizeof for_children / sizeof *for_children)

/* Written once by the constructor (single-threaded), read-only afterwards. */
static char saved[8192];              /* "NAME=value" strings, NUL-separated */
static const char *carried[N_OWNED];  /* entries of saved[] */
static unsigned ncarried;
static char our_lib[4096];            /* our LD_PRELOAD entry, as given */
static int carrying;                  /* 1: exec'd programs get them back */

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);
static execve_fn real_execve, real_execvpe;
static fexecve_fn real_fexecve;
static execveat_fn real_execveat;
static spawn_fn real_spawn, real_spawnp;

/* Resolve the next definitions. Context: constructor (guard set). */
void fil_exec_resolve(void) {
    real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    real_fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    real_execveat = (execveat_fn)dlsym(RTLD_NEXT, "execveat");
    real_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
    real_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
}

/* Is entry "NAME=..." for name? */
static int named(const char *entry, const char *name) {
    size_t n = strlen(name);
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static int is_owned(const char *entry) {
    for (unsigned i = 0; i < N_OWNED; i++)
        if (named(entry, owned[i]))
            return 1;
    return 0;
}

/* Is the n-byte LD_PRELOAD entry p this library? */
static int is_ours(const char *p, size_t n) {
    static const char lib[] = "/libfilpreload.so";
    size_t k = sizeof lib - 1;
    return (n >= k && memcmp(p + n - k, lib, k) == 0) ||
           (n == k - 1 && memcmp(p, lib + 1, k - 1) == 0);
}

/*
 * The entries of the LD_PRELOAD value v that are not this library, ':'-
 * joined into out (cap bytes, NUL-terminated); the first entry that is
 * ours into mine (if not NULL). Returns the length written.
 * Context: any, vfork child included (memory copies only).
 */
size_t fil_exec_filter_preload(const char *v, char *out, size_t cap, char *mine, size_t mcap) {
    size_t k = 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ": ");
        if (is_ours(p, n)) {
            if (mine && !mine[0] && n < mcap) {
                memcpy(mine, p, n);
                mine[n] = 0;
            }
        } else if (n && k + n + 2 < cap) {
            if (k)
                out[k++] = ':';
            memcpy(out + k, p, n);
            k += n;
        }
        p += n;
        while (*p == ':' || *p == ' ')
            p++;
    }
    out[k] = 0;
    return k;
}

/* Does the LD_PRELOAD value v name this library? Context: any. */
static int holds_ours(const char *v) {
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ": ");
        if (is_ours(p, n))
            return 1;
        p += n;
        while (*p == ':' || *p == ' ')
            p++;
    }
    return 0;
}

/*
 * The program's own LD_PRELOAD inside value v, byte for byte, when v is
 * "<our entry>:<theirs>" as the launcher and with_ours build it (so an
 * empty value, or one separated by spaces, comes back as it was); NULL
 * otherwise. Context: any.
 */
static const char *theirs_verbatim(const char *v) {
    size_t m = strlen(our_lib);
    if (m == 0 || strncmp(v, our_lib, m) != 0 || v[m] != ':' || holds_ours(v + m + 1))
        return NULL;
    return v + m + 1;
}

/* Save "NAME=value" of name into saved[] if it is set. */
static void save(const char *name, size_t *used) {
    const char *v = getenv(name);
    size_t n = strlen(name), m = v ? strlen(v) : 0;
    if (!v || *used + n + m + 2 > sizeof saved || ncarried >= N_OWNED)
        return;
    char *e = saved + *used;
    memcpy(e, name, n);
    e[n] = '=';
    memcpy(e + n + 1, v, m + 1);
    carried[ncarried++] = e;
    *used += n + m + 2;
}

/*
 * fil_exec_setup - remember what exec'd programs must get back (mode), and
 * find our LD_PRELOAD entry. Call before fil_exec_strip. Context:
 * constructor, single-threaded, guard set.
 */
void fil_exec_setup(int mode) {
    char rest[4096];
    const char *pre = getenv("LD_PRELOAD");
    size_t used = 0;
    if (pre)
        fil_exec_filter_preload(pre, rest, sizeof rest, our_lib, sizeof our_lib);
    if (mode == FIL_EXEC_NONE || !our_lib[0])
        return;
    for (unsigned i = 0; i < (mode == FIL_EXEC_ALL ? N_OWNED : N_FOR_CHILDREN); i++)
        save(mode == FIL_EXEC_ALL ? owned[i] : for_children[i], &used);
    carrying = 1;
}

/* Take our variables and our LD_PRELOAD entry out of the environment (the
 * program's view). Context: constructor, single-threaded, guard set. */
void fil_exec_strip(void) {
    const char *v = getenv("LD_PRELOAD");
    if (v) {
        char keep[4096];
        const char *theirs = theirs_verbatim(v);
        if (theirs)
            setenv("LD_PRELOAD", theirs, 1);
        else if (fil_exec_filter_preload(v, keep, sizeof keep, NULL, 0))
            setenv("LD_PRELOAD", keep, 1);
        else
            unsetenv("LD_PRELOAD");
    }
    for (unsigned i = 0; i < N_OWNED; i++)
        unsetenv(owned[i]);
}

/* Stop carrying (the launcher cannot take children any more). */
void fil_exec_stop(void) { carrying = 0; }

int fil_exec_carrying(void) { return carrying; }

/* Entries of a NULL-terminated vector. */
static size_t count(char *const *v) {
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* Room for a new environment: on the caller's stack when it fits. */
#define ENV_ON_STACK 1024
#define PRELOAD_MAX 8192

typedef struct newenv {
    char **v;          /* the vector to hand to the kernel */
    size_t mapped;     /* bytes of pages mapped for it, 0 if on the stack */
    char preload[PRELOAD_MAX]; /* "LD_PRELOAD=ours[:theirs]" */
} newenv_t;

/*
 * Fill e->v from env with our variables put back: env's own entries
 * except ours, then the carried ones; LD_PRELOAD, with our library first
 * and env's other preloads after it, in the place of env's own LD_PRELOAD
 * (so a child's `env` lists it where the program put it), else last. stack has ENV_ON_STACK slots.
 * Returns the vector (env itself when nothing is carried or no room can
 * be had, and when env has a FIL_STATE_FD of its own: a fil-profile the
 * tree runs starting its program, which is that launcher's to profile).
 * Context: any, vfork child included.
 */
static char *const *with_ours(char *const *env, newenv_t *e, char **stack) {
    size_t n = count(env), k = 0, need = n + ncarried + 2;
    const char *theirs = NULL;
    if (!carrying)
        return env;
    for (size_t i = 0; i < n; i++)
        if (named(env[i], "FIL_STATE_FD"))
            return env; /* stripped from every environ here: only a launcher sets it */
    e->v = stack;
    e->mapped = 0;
    if (need > ENV_ON_STACK) {
        e->mapped = fil_page_round(need * sizeof(char *));
        e->v = fil_sys_pages(e->mapped);
        if (!e->v)
            return env;
    }
    int placed = 0;
    for (size_t i = 0; i < n; i++) {
        if (named(env[i], "LD_PRELOAD")) {
            theirs = env[i] + 11; /* the last, as the loader reads it */
            if (!placed) /* ours where the first was: the order is kept */
                e->v[k++] = e->preload;
            placed = 1;
        } else if (!is_owned(env[i]))
            e->v[k++] = env[i];
    }
    for (unsigned i = 0; i < ncarried; i++)
        e->v[k++] = (char *)carried[i];
    size_t m = strlen(our_lib);
    memcpy(e->preload, "LD_PRELOAD=", 11);
    memcpy(e->preload + 11, our_lib, m + 1);
    if (theirs && 11 + m + 1 < PRELOAD_MAX) {
        char *t = e->preload + 11 + m;
        size_t tl = strlen(theirs);
        if (!holds_ours(theirs) && 12 + m + tl < PRELOAD_MAX) {
            *t = ':'; /* theirs as it is: the child's fil_exec_strip gives it back */
            memcpy(t + 1, theirs, tl + 1);
        } else if (fil_exec_filter_preload(theirs, t + 1, PRELOAD_MAX - 12 - m, NULL, 0)) {
            *t = ':';
        }
    }
    if (!placed)
        e->v[k++] = e->preload;
    e->v[k] = NULL;
    return e->v;
}

/* Give back what with_ours mapped (the exec failed). Keeps errno. */
static void done(newenv_t *e) {
    int saved_errno = errno;
    if (e->mapped)
        fil_sys_unmap(e->v, e->mapped);
    errno = saved_errno;
}

static void resolve(void) {
    if (!real_execve)
        fil_exec_resolve();
}

FIL_API int execve(const char *path, char *const argv[], char *const envp[]) {
    char *stack[ENV_ON_STACK];
    newenv_t e;
    resolve();
    fil_children_before_exec();
    int r = real_execve(path, argv, with_ours(envp, &e, stack));
    done(&e);
    return r;
}

FIL_API int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

FIL_API int execvpe(const char *file, char *const argv[], char *const envp[]) {
    char *stack[ENV_ON_STACK];
    newenv_t e;
    resolve();
    fil_children_before_exec();
    int r = real_execvpe(file, argv, with_ours(envp, &e, stack));
    done(&e);
    return r;
}

FIL_API int execvp(const char *file, char *const argv[]) {
    return execvpe(file, argv, environ);
}

FIL_API int fexecve(int fd, char *const argv[], char *const envp[]) {
    char *stack[ENV_ON_STACK];
    newenv_t e;
    resolve();
    fil_children_before_exec();
    int r = real_fexecve(fd, argv, with_ours(envp, &e, stack));
    done(&e);
    return r;
}

FIL_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                     int flags) {
    char *stack[ENV_ON_STACK];
    newenv_t e;
    resolve();
    if (!real_execveat) {
        errno = ENOSYS;
        return -1;
    }
    fil_children_before_exec();
    int r = real_execveat(dirfd, path, argv, with_ours(envp, &e, stack), flags);
    done(&e);
    return r;
}

FIL_API int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    char *stack[ENV_ON_STACK];
    newenv_t e;
    resolve();
    int r = real_spawn(pid, path, fa, attr, argv, with_ours(envp, &e, stack));
    done(&e);
    return r;
}

FIL_API int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    char *stack[ENV_ON_STACK];
    newenv_t e;
    resolve();
    int r = real_spawnp(pid, file, fa, attr, argv, with_ours(envp, &e, stack));
    done(&e);
    return r;
}

/* The execl family: the arguments into a vector on the stack. */
static void fill_argv(const char *arg, va_list ap, char **argv, size_t n) {
    argv[0] = (char *)arg;
    for (size_t i = 1; i < n; i++)
        argv[i] = va_arg(ap, char *);
    argv[n] = NULL;
    (void)va_arg(ap, char *); /* the terminating NULL */
}

/* Arguments after arg up to the NULL. */
static size_t count_args(va_list ap) {
    va_list cp;
    size_t n = 1;
    va_copy(cp, ap);
    while (va_arg(cp, char *))
        n++;
    va_end(cp);
    return n;
}

FIL_API int execl(const char *path, const char *arg, ...) {
    va_list ap;
    va_start(ap, arg);
    size_t n = count_args(ap);
    char *argv[n + 1];
    fill_argv(arg, ap, argv, n);
    va_end(ap);
    return execve(path, argv, environ);
}

FIL_API int execlp(const char *file, const char *arg, ...) {
    va_list ap;
    va_start(ap, arg);
    size_t n = count_args(ap);
    char *argv[n + 1];
    fill_argv(arg, ap, argv, n);
    va_end(ap);
    return execvpe(file, argv, environ);
}

FIL_API int execle(const char *path, const char *arg, ...) {
    va_list ap;
    va_start(ap, arg);
    size_t n = count_args(ap);
    char *argv[n + 1];
    fill_argv(arg, ap, argv, n);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
