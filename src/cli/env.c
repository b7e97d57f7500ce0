/* SPDX-License-Identifier: MIT */
/*
 * env.c - the environment the profiled interpreter starts with.
 *
 * The child gets the user's environment minus the variables the launcher owns,
 * plus: LD_PRELOAD with our library first (the user's own value, if set, kept
 * byte for byte after a ':', so that the program's view of it is unchanged;
 * in the place of the user's entry, so that the order is unchanged too), FIL_STATE_FD, FIL_LIBDIR, FIL_RESULT_DIR, FIL_RESULT_DISPLAY, FIL_OOM_MODE,
 * FIL_OOM_DETECTION, and
 * FIL_SAFETY_MARGIN / FIL_VERBOSE / FIL_QUIET / FIL_USR2=0 only when asked for,
 * FIL_CHILDREN (the registry of child processes) unless --no-children. Inherited copies of
 * the FIL_* contract variables are dropped so a stray value in the user's
 * shell cannot change the run.
 *
 * The environment is built in the parent before fork, as one malloc'd array
 * of malloc'd strings; the launcher's own environment is never modified (so
 * xdg-open, started later, gets no LD_PRELOAD). Supervisor only.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fil/children.h"

/* Variables the launcher sets itself: inherited values are dropped. */
static const char *const owned_vars[] = {
    "LD_PRELOAD",   "FIL_STATE_FD", "FIL_LIBDIR", "FIL_RESULT_DIR", "FIL_RESULT_DISPLAY",
    "FIL_OOM_MODE", "FIL_OOM_DETECTION", "FIL_SAFETY_MARGIN",     "FIL_VERBOSE",
    "FIL_QUIET",    "FIL_USR2",  FIL_CHILDREN_ENV,
};
#define N_OWNED (sizeof owned_vars / sizeof owned_vars[0])

/* Most entries build_env appends. */
#define MAX_ADDED 16

/* The value of `name` in env (first match, like getenv), or NULL. */
static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);

    for (; env && *env; env++)
        if (!strncmp(*env, name, n) && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* Is the "NAME=value" entry one of owned_vars? */
static int is_owned(const char *entry)
{
    for (size_t k = 0; k < N_OWNED; k++) {
        size_t n = strlen(owned_vars[k]);

        if (!strncmp(entry, owned_vars[k], n) && entry[n] == '=')
            return 1;
    }
    return 0;
}

/*
 * Append a formatted "NAME=value" to env at *n. 0, or -1 if out of memory
 * (env unchanged).
 */
__attribute__((format(printf, 3, 4))) static int add(char **env, size_t *n, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    env[(*n)++] = s;
    return 0;
}

/* Append our LD_PRELOAD entry to env at *n: ours first, the user's value
 * after a ':' if set. 0, or -1 if out of memory. */
static int add_preload(char **env, size_t *n, char *const *in, const fil_cli_env_opts_t *o)
{
    const char *preload = env_get(in, "LD_PRELOAD");

    if (preload) /* kept as it is, even empty: the program gets it back so */
        return add(env, n, "LD_PRELOAD=%s:%s", o->preload, preload);
    return add(env, n, "LD_PRELOAD=%s", o->preload);
}

/*
 * Append our other variables to env at *n (room for MAX_ADDED), and
 * LD_PRELOAD unless placed (it took the user's own entry's place). 0, or -1
 * if out of memory (the strings added so far stay in env for the caller to
 * free).
 */
static int add_ours(char **env, size_t *n, char *const *in, const fil_cli_env_opts_t *o,
                    int placed)
{
    const fil_cli_args_t *a = o->a;
    int r = 0;

    if (!placed)
        r |= add_preload(env, n, in, o);
    r |= add(env, n, "FIL_STATE_FD=%d", o->state_fd);
    r |= add(env, n, "FIL_LIBDIR=%s", o->libdir);
    r |= add(env, n, "FIL_RESULT_DIR=%s", o->result_dir);
    r |= add(env, n, "FIL_RESULT_DISPLAY=%s", o->result_shown ? o->result_shown : o->result_dir);
    r |= add(env, n, "FIL_OOM_MODE=%s", a->oom_continue ? "continue" : "exit");
    r |= add(env, n, "FIL_OOM_DETECTION=%d", a->oom_detection ? 1 : 0);
    if (a->has_safety_margin)
        r |= add(env, n, "FIL_SAFETY_MARGIN=%" PRIu64, a->safety_margin);
    if (a->verbose)
        r |= add(env, n, "FIL_VERBOSE=1");
    if (a->quiet)
        r |= add(env, n, "FIL_QUIET=1");
    if (a->no_usr2)
        r |= add(env, n, "FIL_USR2=0");
    if (o->children)
        r |= add(env, n, FIL_CHILDREN_ENV "=%s", o->children);
    return r ? -1 : 0;
}

/*
 * Build the child's environment from environ_in (not modified) and o.
 * Returns a NULL-terminated array owned by the caller (free it with
 * fil_cli_free_env), or NULL if out of memory. Context: supervisor, before fork.
 */
char **fil_cli_build_env(char *const *environ_in, const fil_cli_env_opts_t *o)
{
    size_t count = 0, n = 0;
    char **env;

    while (environ_in && environ_in[count])
        count++;
    env = calloc(count + MAX_ADDED + 1, sizeof *env);
    if (!env)
        return NULL;
    int placed = 0;
    for (size_t k = 0; k < count; k++) {
        if (!placed && !strncmp(environ_in[k], "LD_PRELOAD=", 11)) {
            /* ours where the user's was: `env` and os.environ keep their order */
            if (add_preload(env, &n, environ_in, o) != 0)
                goto fail;
            placed = 1;
            continue;
        }
        if (is_owned(environ_in[k]))
            continue;
        if (!(env[n] = strdup(environ_in[k])))
            goto fail;
        n++;
    }
    if (add_ours(env, &n, environ_in, o, placed) != 0)
        goto fail;
    return env;
fail:
    fil_cli_free_env(env);
    return NULL;
}

/* Free what fil_cli_build_env returned (NULL is fine). */
void fil_cli_free_env(char **env)
{
    for (size_t k = 0; env && env[k]; k++)
        free(env[k]);
    free(env);
}
