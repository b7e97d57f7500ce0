/* SPDX-License-Identifier: MIT */
/*
 * limitcheck.c - refusing limits the program cannot run under, and saying
 * so when the interpreter still cannot start under one.
 *
 * --memory-limit (a soft RLIMIT_AS): a limit below PROBE_BELOW is tried
 * first. The interpreter is started under it with the profiler and runs
 * `pass` (a probe: no shared state, no result folder, output discarded).
 * If the probe fails, the limit is refused with one line that names it,
 * says how much address space the interpreter needs (VmPeak of a probe
 * without the limit) and suggests a size with a unit; a bare number that
 * would be enough as kilobytes gets the `ulimit -v` hint, since that is
 * what such a number usually is. Nothing is created; exit status 2.
 *
 * --safety-margin: refused when the margin plus what the interpreter needs
 * to start (START_NEED) is more than is left now under the cgroup limit or
 * in system memory (MemAvailable + SwapFree): every allocation would count
 * as out of memory.
 *
 * After a run: if the program never started (the state holds no interpreter
 * version, which the extension records when it starts profiling) under an
 * address-space limit, and the interpreter died of a signal, could not load
 * (127), ran out of memory (53), or failed in another way while the limit
 * was tight (the library could not set up, or had already used half of
 * it: a syntax error under a roomy limit is not blamed on it), one line
 * says the limit is why.
 *
 * Supervisor only, before the real run or after it: stdio is fine.
 */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fil/common.h"
#include "fil/limits.h"
#include "fil/report.h"
#include "fil/state.h"

extern char **environ;

/* Limits at or above this are not probed: the interpreter starts in a few
 * tens of MiB, and the probe costs one more interpreter start. */
#define PROBE_BELOW (UINT64_C(1) << 30)
/* What the interpreter needs to start, for the --safety-margin check. */
#define START_NEED (UINT64_C(64) << 20)
/* Where a probe would write an out-of-memory dump: never creatable. */
#define PROBE_DIR "/dev/null/fil-probe"

/* n as "1.4 MiB" into buf (32 bytes). */
static const char *fmt_size(uint64_t n, char *buf)
{
    fil_writer_t w;

    fil_writer_init(&w, -1, buf, 31);
    fil_write_size(&w, n);
    buf[w.len] = '\0';
    return buf;
}

/*
 * Run the interpreter with the profiler on `code` (python -c, with the
 * user's interpreter options), under a soft RLIMIT_AS
 * of limit if has_limit. Its stdout into out (may be NULL). The wait status
 * into *status. 0, or -1 if it could not be run (message printed).
 */
static int probe(const fil_cli_args_t *a, const fil_cli_install_t *in, int has_limit,
                 uint64_t limit, const char *code, char *out, size_t outlen, int *status)
{
    fil_cli_args_t p = *a;
    fil_cli_env_opts_t eo = {in->preload, in->libdir, -1, PROBE_DIR, PROBE_DIR, &p, NULL};
    fil_cli_child_t c = {in->python, NULL, NULL, -1, has_limit, limit, 0, NULL, NULL};
    const char **argv;
    char **envp;
    int r = -1;

    p.mode = FIL_CLI_MODE_CODE, p.target = code, p.script_argc = 0;
    argv = calloc((size_t)fil_cli_exec_argc(&p) + 1, sizeof *argv);
    envp = fil_cli_build_env(environ, &eo);
    if (!argv || !envp) {
        fprintf(stderr, FIL_MSG_PREFIX "error: out of memory\n");
    } else {
        fil_cli_exec_argv(&p, in->python, argv);
        c.argv = argv, c.envp = envp;
        r = fil_cli_probe(&c, out, outlen, status);
    }
    free(argv);
    fil_cli_free_env(envp);
    return r;
}

/* VmPeak of an interpreter that starts without a limit, bytes; 0 if unknown. */
static uint64_t startup_need(const fil_cli_args_t *a, const fil_cli_install_t *in)
{
    char out[4096];
    const char *p;
    int status;
    uint64_t kib;

    if (probe(a, in, 0, 0, "import os; os.write(1, open('/proc/self/status', 'rb').read())",
              out, sizeof out, &status) != 0 ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !(p = strstr(out, "VmPeak:")) ||
        sscanf(p, "VmPeak: %" SCNu64 " kB", &kib) != 1)
        return 0;
    return kib * 1024;
}

/* 1 if s is digits only: a size without a unit. */
static int bare_number(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

/* A round size with a unit that fits an interpreter needing `need`:
 * the smallest power of two from 64M up that is at least twice it. */
static void suggest(uint64_t need, char *buf, size_t len)
{
    uint64_t mib = 64;

    while (mib < 2 * (need >> 20) + 1)
        mib *= 2;
    if (mib >= 1024)
        snprintf(buf, len, "%" PRIu64 "G", mib / 1024);
    else
        snprintf(buf, len, "%" PRIu64 "M", mib);
}

/* Print the one line refusing --memory-limit (need: 0 if unknown). */
static void refuse_limit(const fil_cli_args_t *a, uint64_t need)
{
    const char *text = a->memory_limit_text ? a->memory_limit_text : "?";
    char lim[32], needs[64] = "", kib[32], better[16];

    if (need)
        snprintf(needs, sizeof needs, " (it needs about %s)", fmt_size(need, kib));
    fmt_size(a->memory_limit, lim);
    if (bare_number(text) && a->memory_limit <= UINT64_MAX / 1024 &&
        (!need || a->memory_limit * 1024 >= need)) {
        fprintf(stderr,
                FIL_MSG_PREFIX "error: --memory-limit %s is %s bytes (%s), too little for the "
                               "interpreter to start%s; a size without a unit is bytes: for %s "
                               "kilobytes, as ulimit -v counts, write %sK (%s)\n",
                text, text, lim, needs, text, text, fmt_size(a->memory_limit * 1024, kib));
        return;
    }
    suggest(need, better, sizeof better);
    fprintf(stderr,
            FIL_MSG_PREFIX "error: --memory-limit %s (%s) is too little for the interpreter to "
                           "start%s; give it more, e.g. --memory-limit %s\n",
            text, lim, needs, better);
}

/* --memory-limit: probe a small limit. 0, or -1 with the refusal printed. */
static int check_memory_limit(const fil_cli_args_t *a, const fil_cli_install_t *in)
{
    int status;

    if (!a->has_memory_limit || a->memory_limit >= PROBE_BELOW)
        return 0;
    if (probe(a, in, 1, a->memory_limit, "pass", NULL, 0, &status) != 0)
        return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    refuse_limit(a, startup_need(a, in));
    return -1;
}

/* --safety-margin: refuse one that leaves nothing to run in. 0, or -1. */
static int check_margin(const fil_cli_args_t *a)
{
    fil_limits_t l;
    fil_limit_kind_t kind;
    uint64_t limit, room;
    char m[32], r[32], lim[32], where[64];

    if (!a->has_safety_margin || !a->oom_detection)
        return 0;
    fil_limits_read(&l, "");
    l.rlimit_as = l.rlimit_data = FIL_UNLIMITED; /* the margin is for the other two */
    room = fil_limits_headroom(&l, &kind, &limit);
    if (kind == FIL_LIMIT_NONE || a->safety_margin + START_NEED <= room)
        return 0;
    if (kind == FIL_LIMIT_CGROUP)
        snprintf(where, sizeof where, "under the cgroup limit of %s", fmt_size(limit, lim));
    else
        snprintf(where, sizeof where, "in MemAvailable + SwapFree");
    fprintf(stderr,
            FIL_MSG_PREFIX "error: --safety-margin %s (%s) is more than the memory there is: "
                           "only %s is left now %s, so every allocation would count as out of "
                           "memory\n",
            a->safety_margin_text ? a->safety_margin_text : "?", fmt_size(a->safety_margin, m),
            fmt_size(room, r), where);
    return -1;
}

/*
 * Refuse a --memory-limit the interpreter cannot start under and a
 * --safety-margin larger than the memory there is. 0 to go on, or -1 with
 * one line printed (nothing created). Context: supervisor, before the
 * result folder exists.
 */
int fil_cli_check_limits(const fil_cli_args_t *a, const fil_cli_install_t *in)
{
    return check_memory_limit(a, in) || check_margin(a) ? -1 : 0;
}

/* What the state says about the start: 1 if the interpreter reached the
 * program (the extension recorded its version); *vm_size the address space
 * the preload library measured at its start (0 if the state was never
 * set up: the library did not even get that far). */
static int program_started(int state_fd, uint64_t *vm_size)
{
    uint64_t magic = 0;
    char version = 0;

    *vm_size = 0;
    if (pread(state_fd, &magic, sizeof magic, offsetof(fil_state_header_t, magic)) !=
            (ssize_t)sizeof magic ||
        magic != FIL_STATE_MAGIC)
        return 0;
    if (pread(state_fd, vm_size, sizeof *vm_size,
              offsetof(fil_state_header_t, limits) + offsetof(fil_limits_t, vm_size)) !=
        (ssize_t)sizeof *vm_size)
        *vm_size = 0;
    return pread(state_fd, &version, 1, offsetof(fil_state_header_t, python_version)) == 1 &&
           version != 0;
}

/* The address-space limit the child ran under into *limit; 0 if none. */
static int as_limit(const fil_cli_args_t *a, uint64_t *limit)
{
    struct rlimit rl;

    if (fil_cli_user_rlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        *limit = (uint64_t)rl.rlim_cur;
    else
        *limit = FIL_UNLIMITED;
    if (a->has_memory_limit && a->memory_limit < *limit)
        *limit = a->memory_limit;
    return *limit != FIL_UNLIMITED;
}

/*
 * After the run: if the interpreter failed before the program started under
 * an address-space limit, print one line saying the limit is why. 1 if it
 * did (the caller then says nothing more about the death), else 0.
 * Context: supervisor, after the child was reaped.
 */
int fil_cli_explain_start_failure(const fil_cli_args_t *a, int state_fd, int exit_status,
                                  int term_signal)
{
    uint64_t limit, vm_size;
    char lim[32], how[64], opt[96];
    const char *abbrev = term_signal ? sigabbrev_np(term_signal) : NULL;

    if ((!term_signal && exit_status == 0) || !as_limit(a, &limit) ||
        program_started(state_fd, &vm_size))
        return 0;
    /* Any other failure before the program (a syntax error in the script)
     * is blamed on the limit only if the limit was tight at the start: the
     * library never set up, or had used half of it already. */
    if (!term_signal && exit_status != FIL_CLI_EXIT_EXEC && exit_status != FIL_EXIT_OOM &&
        vm_size && vm_size < limit / 2)
        return 0;
    if (term_signal)
        snprintf(how, sizeof how, "died of SIG%s", abbrev ? abbrev : "?");
    else if (exit_status == FIL_EXIT_OOM)
        snprintf(how, sizeof how, "ran out of memory");
    else if (exit_status == FIL_CLI_EXIT_EXEC)
        snprintf(how, sizeof how, "could not load");
    else
        snprintf(how, sizeof how, "failed (exit status %d)", exit_status);
    if (a->has_memory_limit && a->memory_limit == limit)
        snprintf(opt, sizeof opt, "--memory-limit %s (%s of address space)",
                 a->memory_limit_text ? a->memory_limit_text : "", fmt_size(limit, lim));
    else
        snprintf(opt, sizeof opt, "RLIMIT_AS (ulimit -v) of %s", fmt_size(limit, lim));
    fprintf(stderr,
            FIL_MSG_PREFIX "error: the interpreter %s before the program started: %s is too "
                           "little for it to start under the profiler\n",
            how, opt);
    return 1;
}
