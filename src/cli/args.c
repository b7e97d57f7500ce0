/* SPDX-License-Identifier: MIT */
/*
 * args.c - the `fil-profile` command line: parsing it, and the argument
 * vectors built from it (the command recorded in the summary, the
 * interpreter's argv).
 *
 * Grammar:
 *   fil-profile [OPTS] run [OPTS] (script | -m module) [ARGS...]
 *   fil-profile [OPTS] python [OPTS | PYOPTS] (script | -m module | -c code) [ARGS...]
 * Our options are accepted before and after the command word. The first
 * non-option after it is the target, and everything after the target belongs
 * to the program untouched: a script's own `-o` or `--help` never reaches us.
 * In the python form, interpreter options (-u, -B, -X opt, -W arg, ...) are
 * kept in order and later passed before the bootstrap's "-c"; a cluster that
 * ends in c or m ("-uc code") is split into its flags and the target.
 *
 * Parsing allocates nothing: the result points into argv (or into the
 * struct's own small buffer). Every function here is pure; any thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fil/limits.h"

/* One parsing step's outcome: the fil_cli_parse_result_t values, plus these. */
#define STEP_TAKEN 0     /* the option was consumed */
#define STEP_NOT_OURS 10 /* not one of our options */
#define STEP_TARGET 11   /* the target was found: options end here */

/* Single-letter interpreter flags that take no argument. */
static const char python_flags[] = "bBdEiIOPqsSuvxR";

/*
 * Format a usage error into err. Returns FIL_CLI_PARSE_ERROR, so callers can
 * `return fail(...)`. Context: any.
 */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FIL_CLI_PARSE_ERROR;
}

/*
 * Does arg name the long option `name`, alone or as "name=value"? Returns 1
 * with *attached set to the value (NULL when alone), else 0.
 */
static int long_opt(const char *arg, const char *name, const char **attached)
{
    size_t n = strlen(name);

    if (strncmp(arg, name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
        return 0;
    *attached = arg[n] == '=' ? arg + n + 1 : NULL;
    return 1;
}

/*
 * The value of option `name` at argv[*i]: `attached` if the option carried it,
 * else the next argument (advancing *i). STEP_TAKEN, or an error.
 */
static int take_value(int argc, char *const *argv, int *i, const char *name, const char *attached,
                      const char **val, char *err, size_t errlen)
{
    if (attached == NULL) {
        if (*i + 1 >= argc)
            return fail(err, errlen, "option '%s' requires an argument", name);
        attached = argv[++*i];
    }
    if (*attached == '\0')
        return fail(err, errlen, "option '%s' requires a non-empty argument", name);
    *val = attached;
    return STEP_TAKEN;
}

/*
 * Store the value of one of our valued options. STEP_TAKEN, or an error
 * naming the option and the bad value.
 */
static int apply_value(fil_cli_args_t *a, const char *name, const char *val, char *err,
                       size_t errlen)
{
    uint64_t n = 0;

    if (!strcmp(name, "-o") || !strcmp(name, "--output")) {
        a->output = val;
    } else if (!strcmp(name, "--on-oom")) {
        if (strcmp(val, "exit") != 0 && strcmp(val, "continue") != 0)
            return fail(err, errlen,
                        "invalid value '%s' for --on-oom (expected 'exit' or 'continue')", val);
        a->oom_continue = val[0] == 'c';
    } else {
        if (fil_parse_size(val, &n) != 0)
            return fail(err, errlen, "invalid size '%s' for %s (examples: 2G, 512M, 100000k)", val,
                        name);
        if (!strcmp(name, "--memory-limit")) {
            if (n == 0)
                return fail(err, errlen, "--memory-limit must be larger than 0");
            a->has_memory_limit = 1, a->memory_limit = n, a->memory_limit_text = val;
        } else {
            a->has_safety_margin = 1, a->safety_margin = n, a->safety_margin_text = val;
        }
    }
    return STEP_TAKEN;
}

/*
 * Try argv[*i] as one of our options taking a value (-o DIR, -oDIR,
 * --output[=]DIR, --memory-limit, --on-oom, --safety-margin). STEP_TAKEN
 * (with *i on the last argument consumed), STEP_NOT_OURS, or an error.
 */
static int value_option(int argc, char *const *argv, int *i, fil_cli_args_t *a, char *err,
                        size_t errlen)
{
    static const char *const names[] = {"--output", "--memory-limit", "--on-oom",
                                        "--safety-margin"};
    const char *arg = argv[*i], *attached = NULL, *val = NULL, *name = NULL;
    int r;

    if (arg[1] == 'o') {
        name = "-o";
        attached = arg[2] ? arg + 2 : NULL;
    }
    for (size_t k = 0; !name && k < sizeof names / sizeof names[0]; k++)
        if (long_opt(arg, names[k], &attached))
            name = names[k];
    if (!name)
        return STEP_NOT_OURS;
    r = take_value(argc, argv, i, name, attached, &val, err, errlen);
    return r == STEP_TAKEN ? apply_value(a, name, val, err, errlen) : r;
}

/*
 * Try argv[*i] as one of our options. STEP_TAKEN, FIL_CLI_PARSE_HELP,
 * FIL_CLI_PARSE_VERSION, STEP_NOT_OURS, or an error.
 */
static int our_option(int argc, char *const *argv, int *i, fil_cli_args_t *a, char *err,
                      size_t errlen)
{
    const char *arg = argv[*i];

    if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
        return FIL_CLI_PARSE_HELP;
    if (!strcmp(arg, "--version"))
        return FIL_CLI_PARSE_VERSION;
    if (!strcmp(arg, "--no-browser"))
        a->no_browser = 1;
    else if (!strcmp(arg, "--verbose"))
        a->verbose = 1;
    else if (!strcmp(arg, "--quiet"))
        a->quiet = 1;
    else if (!strcmp(arg, "--no-usr2"))
        a->no_usr2 = 1;
    else if (!strcmp(arg, "--no-children"))
        a->no_children = 1;
    else if (!strcmp(arg, "--disable-oom-detection"))
        a->oom_detection = 0;
    else
        return value_option(argc, argv, i, a, err, errlen);
    return STEP_TAKEN;
}

/*
 * Set the target from the option at argv[*i] (-m, -c or "--"): `attached` if
 * it carried the value ("-mfoo"), else the next argument. Code may be empty
 * (`python3 -c ''` runs nothing), a module or script name may not. On
 * success *i is past the target. STEP_TARGET, or an error saying what was
 * missing.
 */
static int take_target(int argc, char *const *argv, int *i, fil_cli_args_t *a, fil_cli_mode_t mode,
                       const char *attached, const char *missing, char *err, size_t errlen)
{
    if (attached == NULL || *attached == '\0') {
        if (*i + 1 >= argc || (argv[*i + 1][0] == '\0' && mode != FIL_CLI_MODE_CODE))
            return fail(err, errlen, "%s", missing);
        attached = argv[++*i];
    }
    a->mode = mode;
    a->target = attached;
    ++*i;
    return STEP_TARGET;
}

/* The first non-option argv[*i] is the script: options end. STEP_TARGET. */
static int script_target(int *i, fil_cli_args_t *a, const char *arg)
{
    a->mode = FIL_CLI_MODE_RUN;
    a->target = arg;
    ++*i;
    return STEP_TARGET;
}

/* Append one interpreter option. STEP_TAKEN, or an error if there are too many. */
static int add_pyopt(fil_cli_args_t *a, const char *opt, char *err, size_t errlen)
{
    if (a->npyopts >= FIL_CLI_MAX_PYOPTS)
        return fail(err, errlen, "too many interpreter options (at most %d)", FIL_CLI_MAX_PYOPTS);
    a->pyopts[a->npyopts++] = opt;
    return STEP_TAKEN;
}

/*
 * An interpreter option taking an argument (-X opt, -Xopt, -W arg,
 * --check-hash-based-pycs mode) at argv[*i]: keep it, and the next argument
 * too when the value is separate. STEP_TAKEN, or an error.
 */
static int pyopt_with_value(int argc, char *const *argv, int *i, int separate, fil_cli_args_t *a,
                            char *err, size_t errlen)
{
    int r = add_pyopt(a, argv[*i], err, errlen);

    if (r != STEP_TAKEN || !separate)
        return r;
    if (*i + 1 >= argc)
        return fail(err, errlen, "option '%s' requires an argument", argv[*i]);
    return add_pyopt(a, argv[++*i], err, errlen);
}

/*
 * The flags before c or m in a cluster like "-uc": keep them ("-u") in the
 * struct's buffer as one more interpreter option. STEP_TAKEN, or an error.
 */
static int split_cluster(const char *arg, size_t flags_end, fil_cli_args_t *a, char *err,
                         size_t errlen)
{
    if (flags_end <= 1)
        return STEP_TAKEN;
    if (flags_end >= sizeof a->pyopt_cluster)
        return fail(err, errlen, "interpreter option cluster too long: '%s'", arg);
    memcpy(a->pyopt_cluster, arg, flags_end);
    a->pyopt_cluster[flags_end] = '\0';
    return add_pyopt(a, a->pyopt_cluster, err, errlen);
}

/* How many times the interpreter options from argv[i] on ask for the
 * version, as python counts them: each V of a cluster of flags ("-V",
 * "-uV", "-Vc CODE": -c, -m, -X and -W end a cluster, and the version
 * wins over what they name when their value is there) and each
 * "--version", up to the first argument that is none of these. */
static int version_count(int argc, char *const *argv, int i)
{
    int v = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--version")) {
            v++;
            continue;
        }
        if (arg[0] != '-' || arg[1] == '-' || arg[1] == '\0')
            return v;
        for (const char *f = arg + 1; *f; f++) {
            if (*f == 'V')
                v++;
            else if (strchr("cmXW", *f))
                return f[1] || i + 1 < argc ? v : 0;
            else if (!strchr(python_flags, *f))
                return v;
        }
    }
    return v;
}

/*
 * Try argv[*i] as an interpreter option or option cluster. STEP_TAKEN,
 * STEP_TARGET (-c/-m found, *i past the target), STEP_NOT_OURS, or an error.
 */
static int python_option(int argc, char *const *argv, int *i, fil_cli_args_t *a, char *err,
                         size_t errlen)
{
    const char *arg = argv[*i];
    int r;

    if (!strcmp(arg, "--check-hash-based-pycs"))
        return pyopt_with_value(argc, argv, i, 1, a, err, errlen);
    if ((r = version_count(argc, argv, *i)) > 0 && (arg[1] != '-' || !strcmp(arg, "--version"))) {
        a->pyopts[0] = r > 1 ? "-VV" : "-V"; /* as python: print it, run nothing */
        a->npyopts = 1;
        return FIL_CLI_PARSE_PYVERSION;
    }
    if (arg[1] == '-')
        return STEP_NOT_OURS;
    for (size_t j = 1; arg[j]; j++) {
        char c = arg[j];

        if (strchr(python_flags, c) || c == 'V') /* a V here: its -c or -m lacks a value */
            continue;
        if (c == 'X' || c == 'W')
            return pyopt_with_value(argc, argv, i, arg[j + 1] == '\0', a, err, errlen);
        if (c != 'c' && c != 'm')
            return arg[2] == '\0' ? fail(err, errlen, "unknown option '%s'", arg)
                                  : fail(err, errlen, "unknown option '-%c' in '%s'", c, arg);
        if ((r = split_cluster(arg, j, a, err, errlen)) != STEP_TAKEN)
            return r;
        if (c == 'm')
            return take_target(argc, argv, i, a, FIL_CLI_MODE_MODULE, arg + j + 1,
                               "option '-m' requires a module name", err, errlen);
        return take_target(argc, argv, i, a, FIL_CLI_MODE_CODE, arg + j + 1,
                           "option '-c' requires code to run", err, errlen);
    }
    return add_pyopt(a, arg, err, errlen);
}

/*
 * Our options before the command word, then the command word itself. On
 * success *i is past the command word. FIL_CLI_PARSE_OK/HELP/VERSION, or an
 * error.
 */
static int parse_command_word(int argc, char *const *argv, int *i, fil_cli_args_t *a, char *err,
                              size_t errlen)
{
    int r, options_ended = 0;

    for (; *i < argc; ++*i) {
        const char *arg = argv[*i];

        if (!strcmp(arg, "run") || !strcmp(arg, "python")) {
            a->python_form = arg[0] == 'p';
            ++*i;
            return FIL_CLI_PARSE_OK;
        }
        if (!options_ended && !strcmp(arg, "--")) {
            options_ended = 1;
            continue;
        }
        if (options_ended || arg[0] != '-' || arg[1] == '\0')
            return fail(err, errlen, "unknown command '%s' (expected 'run' or 'python')", arg);
        r = our_option(argc, argv, i, a, err, errlen);
        if (r == STEP_NOT_OURS)
            return fail(err, errlen, "unknown option '%s'", arg);
        if (r != STEP_TAKEN)
            return r;
    }
    return fail(err, errlen, "missing command (expected 'run' or 'python')");
}

/*
 * After the command word. `run`: our options, then the script, "-m module"
 * or "-- script". `python` (a->python_form): our options and interpreter
 * options in any order, then the script, "-m module", "-c code" or
 * "-- script" (-m and -c are interpreter options there, so may end a
 * cluster). STEP_TARGET (*i past the target), FIL_CLI_PARSE_HELP/VERSION,
 * FIL_CLI_PARSE_PYVERSION (python -V), or an error.
 */
static int parse_tail(int argc, char *const *argv, int *i, fil_cli_args_t *a, char *err,
                      size_t errlen)
{
    int r;

    for (; *i < argc; ++*i) {
        const char *arg = argv[*i];

        if (!strcmp(arg, "--"))
            return take_target(argc, argv, i, a, FIL_CLI_MODE_RUN, NULL,
                               "missing script to run after '--'", err, errlen);
        if (!a->python_form && !strncmp(arg, "-m", 2))
            return take_target(argc, argv, i, a, FIL_CLI_MODE_MODULE, arg + 2,
                               "option '-m' requires a module name", err, errlen);
        if (arg[0] != '-' || arg[1] == '\0')
            return script_target(i, a, arg);
        /* the python form is the interpreter's command line: its --version
         * is python's (fil-profile --version is ours) */
        r = a->python_form && !strcmp(arg, "--version") ? STEP_NOT_OURS
                                                         : our_option(argc, argv, i, a, err, errlen);
        if (r == STEP_NOT_OURS && a->python_form)
            r = python_option(argc, argv, i, a, err, errlen);
        if (r == STEP_NOT_OURS && !a->python_form && !strncmp(arg, "-c", 2))
            return fail(err, errlen, "unknown option '%s' (to run code: fil-profile python -c CODE)",
                        arg);
        if (r == STEP_NOT_OURS)
            return fail(err, errlen, "unknown option '%s'", arg);
        if (r != STEP_TAKEN)
            return r;
    }
    return a->python_form
               ? fail(err, errlen, "missing program to run (a script, -m module or -c code)")
               : fail(err, errlen, "missing script to run (or -m module)");
}

/*
 * Parse argv (argv[0] is the launcher itself) into *a. Returns
 * FIL_CLI_PARSE_OK with every field set, FIL_CLI_PARSE_HELP or
 * FIL_CLI_PARSE_VERSION as soon as those options are seen among ours,
 * FIL_CLI_PARSE_PYVERSION for the python form's -V or -VV, or
 * FIL_CLI_PARSE_ERROR with a one-line reason in err. Pure; any thread.
 */
fil_cli_parse_result_t fil_cli_parse(int argc, char *const *argv, fil_cli_args_t *a, char *err,
                                     size_t errlen)
{
    int i = 1, r;

    memset(a, 0, sizeof *a);
    a->output = "fil-result";
    a->oom_detection = 1;
    if (errlen > 0)
        err[0] = '\0';
    r = parse_command_word(argc, argv, &i, a, err, errlen);
    if (r != FIL_CLI_PARSE_OK)
        return (fil_cli_parse_result_t)r;
    r = parse_tail(argc, argv, &i, a, err, errlen);
    if (r != STEP_TARGET)
        return (fil_cli_parse_result_t)r;
    a->script_argv = argv + i;
    a->script_argc = argc - i;
    if (a->quiet)
        a->verbose = 0; /* --quiet wins, wherever each was given */
    return FIL_CLI_PARSE_OK;
}

/* "run", "module" or "code": the mode word the Python runner expects. */
const char *fil_cli_mode_name(fil_cli_mode_t mode)
{
    return mode == FIL_CLI_MODE_MODULE ? "module" : mode == FIL_CLI_MODE_CODE ? "code" : "run";
}

/* Number of entries fil_cli_command_argv() writes, not counting its NULL. */
int fil_cli_command_argc(const fil_cli_args_t *a)
{
    return 1 + a->npyopts + (a->mode != FIL_CLI_MODE_RUN) + 1 + a->script_argc;
}

/*
 * The profiled command as recorded in the summary, without our options:
 * {"run"|"python", pyopts..., ["-m"|"-c"], target, args..., NULL}. out must
 * hold fil_cli_command_argc(a) + 1 entries; they point into a and argv.
 */
void fil_cli_command_argv(const fil_cli_args_t *a, const char **out)
{
    int n = 0;

    out[n++] = a->python_form ? "python" : "run";
    for (int k = 0; k < a->npyopts; k++)
        out[n++] = a->pyopts[k];
    if (a->mode != FIL_CLI_MODE_RUN)
        out[n++] = a->mode == FIL_CLI_MODE_MODULE ? "-m" : "-c";
    out[n++] = a->target;
    for (int k = 0; k < a->script_argc; k++)
        out[n++] = a->script_argv[k];
    out[n] = NULL;
}

/* 1 if the script must follow "--" so the interpreter does not read it as
 * an option ("-weird.py"). */
static int needs_dashdash(const fil_cli_args_t *a)
{
    return a->mode == FIL_CLI_MODE_RUN && a->target[0] == '-';
}

/* Number of entries fil_cli_exec_argv() writes, not counting its NULL. */
int fil_cli_exec_argc(const fil_cli_args_t *a)
{
    return 1 + a->npyopts + (a->mode != FIL_CLI_MODE_RUN || needs_dashdash(a)) + 1 +
           a->script_argc;
}

/*
 * The interpreter's argv: exactly what the user would have typed to run the
 * program without the profiler,
 * {python, pyopts..., ("-m" module | "-c" code | ["--"] script), args..., NULL},
 * so that sys.argv, sys.orig_argv, sys.path and __main__ are Python's own
 * (the preload library starts profiling from inside the interpreter). out
 * must hold fil_cli_exec_argc(a) + 1 entries; they point into a and argv.
 */
void fil_cli_exec_argv(const fil_cli_args_t *a, const char *python, const char **out)
{
    int n = 0;

    out[n++] = python;
    for (int k = 0; k < a->npyopts; k++)
        out[n++] = a->pyopts[k];
    if (a->mode != FIL_CLI_MODE_RUN)
        out[n++] = a->mode == FIL_CLI_MODE_MODULE ? "-m" : "-c";
    else if (needs_dashdash(a))
        out[n++] = "--";
    out[n++] = a->target;
    for (int k = 0; k < a->script_argc; k++)
        out[n++] = a->script_argv[k];
    out[n] = NULL;
}
