/* SPDX-License-Identifier: MIT */
/*
 * test_cli.c - unit tests of the launcher's pure parts: command-line parsing,
 * the argument vectors, the child's environment, the result folder name, the
 * `latest` link, the cgroup OOM-kill counter, and the timeline's
 * downsampling (sample.c's point array, fed with made-up samples).
 *
 * Design: src/cli is not in libfilcore, so the files under test are included
 * directly (main.c, supervise.c and browser.c are not: they fork and exec).
 * Parsing is table-driven: each row is a command line and what the user
 * would see come of it (target, the program's own arguments untouched, the
 * interpreter options, the error text). File-system tests run in a fresh
 * temporary folder, and the OOM-kill counter is read from fake proc/ and
 * sys/fs/cgroup/ trees built there (v1, v2, hybrid, container, missing).
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/cli/args.c"
#include "../../src/cli/env.c"
#include "../../src/cli/oomkill.c"
#include "../../src/cli/resultdir.c"
#include "../../src/cli/sample.c"
#include "../../src/cli/say.c"

/* sample.c's calls into children.c (the registry), which is not under test here. */
void fil_cli_children_sample(const struct fil_state_header *h, uint64_t t_ns) { (void)h, (void)t_ns; }
void fil_cli_children_main_pid(pid_t pid) { (void)pid; }
#include "check.h"

/* ---- parsing ------------------------------------------------------------ */

#define MAXARGS 16

/* One command line and its expected outcome. Strings are compared exactly,
 * except `error`, which must be contained in the message. */
typedef struct parse_case {
    const char *argv[MAXARGS]; /* argv[0] included, NULL-terminated */
    int result;                /* fil_cli_parse_result_t */
    const char *target;
    int mode;
    const char *args;   /* the program's arguments joined by '|' */
    const char *pyopts; /* interpreter options joined by '|' */
    const char *output;
    const char *error;
} parse_case_t;

#define FP "fil-profile"
#define OK FIL_CLI_PARSE_OK
#define ERR FIL_CLI_PARSE_ERROR
#define RUN FIL_CLI_MODE_RUN
#define MOD FIL_CLI_MODE_MODULE
#define CODE FIL_CLI_MODE_CODE
#define DEF "fil-result"

static const parse_case_t parse_cases[] = {
    {{FP, "run", "x.py"}, OK, "x.py", RUN, "", "", DEF, NULL},
    {{FP, "run", "x.py", "a", "b"}, OK, "x.py", RUN, "a|b", "", DEF, NULL},
    /* options before and after the command word */
    {{FP, "-o", "out", "--no-browser", "run", "x.py"}, OK, "x.py", RUN, "", "", "out", NULL},
    {{FP, "run", "-o", "out", "x.py"}, OK, "x.py", RUN, "", "", "out", NULL},
    {{FP, "run", "--output=o2", "x.py"}, OK, "x.py", RUN, "", "", "o2", NULL},
    {{FP, "--output", "o3", "run", "x.py"}, OK, "x.py", RUN, "", "", "o3", NULL},
    {{FP, "run", "-oo4", "x.py"}, OK, "x.py", RUN, "", "", "o4", NULL},
    {{FP, "-o", "a", "run", "-o", "b", "x.py"}, OK, "x.py", RUN, "", "", "b", NULL},
    /* everything after the script belongs to it */
    {{FP, "run", "x.py", "-o", "mine", "--help", "--version", "-m"},
     OK,
     "x.py",
     RUN,
     "-o|mine|--help|--version|-m",
     "",
     DEF,
     NULL},
    {{FP, "run", "x.py", "--", "run"}, OK, "x.py", RUN, "--|run", "", DEF, NULL},
    /* "--" ends our options: the next argument is the script */
    {{FP, "run", "--", "-odd.py", "-o", "z"}, OK, "-odd.py", RUN, "-o|z", "", DEF, NULL},
    {{FP, "--", "run", "x.py"}, OK, "x.py", RUN, "", "", DEF, NULL},
    /* modules */
    {{FP, "run", "-m", "pkg.mod", "--flag"}, OK, "pkg.mod", MOD, "--flag", "", DEF, NULL},
    {{FP, "run", "-mjson.tool", "f"}, OK, "json.tool", MOD, "f", "", DEF, NULL},
    {{FP, "run", "--verbose", "-m", "m", "-m", "x"}, OK, "m", MOD, "-m|x", "", DEF, NULL},
    /* the python form */
    {{FP, "python", "x.py", "-u"}, OK, "x.py", RUN, "-u", "", DEF, NULL},
    {{FP, "python", "-u", "-B", "x.py"}, OK, "x.py", RUN, "", "-u|-B", DEF, NULL},
    {{FP, "python", "-X", "dev", "-Wignore", "-O", "-m", "m", "a"},
     OK,
     "m",
     MOD,
     "a",
     "-X|dev|-Wignore|-O",
     DEF,
     NULL},
    {{FP, "python", "-c", "print(1)", "-o", "x"}, OK, "print(1)", CODE, "-o|x", "", DEF, NULL},
    {{FP, "python", "-uc", "pass", "z"}, OK, "pass", CODE, "z", "-u", DEF, NULL},
    {{FP, "python", "-Bum", "m"}, OK, "m", MOD, "", "-Bu", DEF, NULL},
    {{FP, "python", "-cpass"}, OK, "pass", CODE, "", "", DEF, NULL},
    {{FP, "python", "-u", "-o", "out", "--no-browser", "-B", "x.py"},
     OK,
     "x.py",
     RUN,
     "",
     "-u|-B",
     "out",
     NULL},
    {{FP, "python", "--check-hash-based-pycs", "never", "x.py"},
     OK,
     "x.py",
     RUN,
     "",
     "--check-hash-based-pycs|never",
     DEF,
     NULL},
    {{FP, "python", "--", "-x.py"}, OK, "-x.py", RUN, "", "", DEF, NULL},
    /* sizes and OOM options (values checked in test_parse_values) */
    {{FP, "run", "--memory-limit", "2G", "--safety-margin=64M", "x.py"},
     OK,
     "x.py",
     RUN,
     "",
     "",
     DEF,
     NULL},
    {{FP, "--on-oom=continue", "--disable-oom-detection", "run", "x.py"},
     OK,
     "x.py",
     RUN,
     "",
     "",
     DEF,
     NULL},
    {{FP, "--on-oom", "exit", "run", "x.py"}, OK, "x.py", RUN, "", "", DEF, NULL},
    /* help and version, wherever our options are read */
    {{FP, "--help"}, FIL_CLI_PARSE_HELP, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "run", "-h", "x.py"}, FIL_CLI_PARSE_HELP, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "--version", "bogus"}, FIL_CLI_PARSE_VERSION, NULL, 0, NULL, NULL, NULL, NULL},
    /* the interpreter's own -V and --version, as python3 -V: it prints,
     * nothing runs (a wrapper script that stands in for python is asked
     * `python --version` by tools) */
    {{FP, "python", "--version"}, FIL_CLI_PARSE_PYVERSION, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "python", "-Vc", "1"}, FIL_CLI_PARSE_PYVERSION, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "python", "-u", "-X", "dev", "-V"}, FIL_CLI_PARSE_PYVERSION, NULL, 0, NULL, NULL, NULL,
     NULL},
    {{FP, "python", "-Vc"}, ERR, NULL, 0, NULL, NULL, NULL, "option '-c' requires code to run"},
    {{FP, "python", "-c", "1", "-V"}, OK, "1", CODE, "-V", "", DEF, NULL},
    {{FP, "python", "x.py", "--version"}, OK, "x.py", RUN, "--version", "", DEF, NULL},
    {{FP, "python", "-V"}, FIL_CLI_PARSE_PYVERSION, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "python", "-u", "-VV", "x.py"}, FIL_CLI_PARSE_PYVERSION, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "python", "-uVB"}, FIL_CLI_PARSE_PYVERSION, NULL, 0, NULL, NULL, NULL, NULL},
    {{FP, "run", "-V", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown option '-V'"},
    /* errors */
    {{FP}, ERR, NULL, 0, NULL, NULL, NULL, "missing command"},
    {{FP, "-o", "x"}, ERR, NULL, 0, NULL, NULL, NULL, "missing command"},
    {{FP, "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown command 'x.py'"},
    {{FP, "--bogus", "run", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown option '--bogus'"},
    {{FP, "run", "--bogus", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown option '--bogus'"},
    {{FP, "run", "-c", "1"}, ERR, NULL, 0, NULL, NULL, NULL,
     "unknown option '-c' (to run code: fil-profile python -c CODE)"},
    {{FP, "run"}, ERR, NULL, 0, NULL, NULL, NULL, "missing script"},
    {{FP, "run", "--verbose"}, ERR, NULL, 0, NULL, NULL, NULL, "missing script"},
    {{FP, "run", "--"}, ERR, NULL, 0, NULL, NULL, NULL, "missing script"},
    {{FP, "run", "-m"}, ERR, NULL, 0, NULL, NULL, NULL, "'-m' requires a module name"},
    {{FP, "run", "-m", ""}, ERR, NULL, 0, NULL, NULL, NULL, "'-m' requires a module name"},
    {{FP, "run", "-o"}, ERR, NULL, 0, NULL, NULL, NULL, "'-o' requires an argument"},
    {{FP, "run", "--output=", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "non-empty"},
    {{FP, "run", "--memory-limit", "lots", "x.py"},
     ERR,
     NULL,
     0,
     NULL,
     NULL,
     NULL,
     "invalid size 'lots' for --memory-limit"},
    {{FP, "run", "--memory-limit", "0", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "larger than 0"},
    {{FP, "--safety-margin=1.5", "run", "x.py"},
     ERR,
     NULL,
     0,
     NULL,
     NULL,
     NULL,
     "invalid size '1.5' for --safety-margin"},
    {{FP, "--on-oom=maybe", "run", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "--on-oom"},
    {{FP, "--no-browser=1", "run", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown option"},
    {{FP, "python"}, ERR, NULL, 0, NULL, NULL, NULL, "missing program"},
    {{FP, "python", "-u", "-B"}, ERR, NULL, 0, NULL, NULL, NULL, "missing program"},
    {{FP, "python", "-c"}, ERR, NULL, 0, NULL, NULL, NULL, "'-c' requires code"},
    {{FP, "python", "-c", "", "a"}, OK, "", CODE, "a", "", DEF, NULL},
    {{FP, "python", "-uc", ""}, OK, "", CODE, "", "-u", DEF, NULL},
    {{FP, "python", "-m", ""}, ERR, NULL, 0, NULL, NULL, NULL, "'-m' requires a module"},
    {{FP, "run", "-m", ""}, ERR, NULL, 0, NULL, NULL, NULL, "'-m' requires a module"},
    {{FP, "python", "-X"}, ERR, NULL, 0, NULL, NULL, NULL, "'-X' requires an argument"},
    {{FP, "python", "-Z", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown option '-Z'"},
    {{FP, "python", "-uZ", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "'-Z' in '-uZ'"},
    {{FP, "python", "--frob", "x.py"}, ERR, NULL, 0, NULL, NULL, NULL, "unknown option '--frob'"},
};

/* Join n strings with '|' into buf. */
static const char *join(const char *const *v, int n, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int k = 0; k < n; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? "|" : "", v[k]);
    return buf;
}

/* Count a NULL-terminated vector. */
static int count(const char *const *v)
{
    int n = 0;

    while (v[n])
        n++;
    return n;
}

/* Check one row of parse_cases. */
static void check_parse_case(const parse_case_t *c)
{
    fil_cli_args_t a;
    char err[256], buf[512];
    int argc = count(c->argv);
    int r = fil_cli_parse(argc, (char *const *)c->argv, &a, err, sizeof err);

    if (r != c->result)
        fprintf(stderr, "case \"%s %s\": result %d (%s)\n", c->argv[1] ? c->argv[1] : "",
                c->argv[2] ? c->argv[2] : "", r, err);
    CHECK_INT(r, c->result);
    if (c->result == ERR && r == ERR) {
        CHECK(strstr(err, c->error) != NULL);
        if (!strstr(err, c->error))
            fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, c->error);
    }
    if (c->result != OK || r != OK)
        return;
    CHECK_STR(a.target, c->target);
    CHECK_INT(a.mode, c->mode);
    CHECK_STR(join((const char *const *)a.script_argv, a.script_argc, buf, sizeof buf), c->args);
    CHECK_STR(join(a.pyopts, a.npyopts, buf, sizeof buf), c->pyopts);
    CHECK_STR(a.output, c->output);
}

/* The option values the table does not show. */
static void test_parse_values(void)
{
    const char *v1[] = {FP, "run", "--memory-limit", "2G", "--safety-margin=64M", "x.py", NULL};
    const char *v2[] = {
        FP, "--on-oom=continue", "--disable-oom-detection", "--verbose", "run", "x.py", NULL};
    fil_cli_args_t a;
    char err[256];

    /* python -V: the flag the interpreter gets, short or long as python counts them */
    const char *pv1[] = {FP, "python", "-uV", NULL}, *pv2[] = {FP, "python", "-BVV", "x.py", NULL};
    CHECK_INT(fil_cli_parse(3, (char *const *)pv1, &a, err, sizeof err), FIL_CLI_PARSE_PYVERSION);
    CHECK_STR(a.pyopts[0], "-V");
    CHECK_INT(fil_cli_parse(4, (char *const *)pv2, &a, err, sizeof err), FIL_CLI_PARSE_PYVERSION);
    CHECK_STR(a.pyopts[0], "-VV");
    const char *pv3[] = {FP, "python", "-V", "--version", NULL},
               *pv4[] = {FP, "python", "--version", "-c", "1", NULL},
               *pv5[] = {FP, "python", "-V", "x.py", "-V", NULL};
    CHECK_INT(fil_cli_parse(4, (char *const *)pv3, &a, err, sizeof err), FIL_CLI_PARSE_PYVERSION);
    CHECK_STR(a.pyopts[0], "-VV");
    CHECK_INT(fil_cli_parse(5, (char *const *)pv4, &a, err, sizeof err), FIL_CLI_PARSE_PYVERSION);
    CHECK_STR(a.pyopts[0], "-V");
    CHECK_INT(fil_cli_parse(5, (char *const *)pv5, &a, err, sizeof err), FIL_CLI_PARSE_PYVERSION);
    CHECK_STR(a.pyopts[0], "-V");

    CHECK_INT(fil_cli_parse(6, (char *const *)v1, &a, err, sizeof err), OK);
    CHECK(a.has_memory_limit && a.memory_limit == 2ull << 30);
    CHECK(a.has_safety_margin && a.safety_margin == 64ull << 20);
    CHECK(a.oom_detection == 1 && a.oom_continue == 0 && !a.verbose && !a.no_browser);
    CHECK(!a.python_form);
    CHECK_INT(fil_cli_parse(6, (char *const *)v2, &a, err, sizeof err), OK);
    CHECK(!a.has_memory_limit && !a.has_safety_margin);
    CHECK(a.oom_detection == 0 && a.oom_continue == 1 && a.verbose);
    CHECK(!a.quiet && !a.no_usr2);
    /* --quiet and --no-usr2, before and after the command word; the
     * script's own --quiet is the script's. */
    const char *v3[] = {FP, "--quiet", "run", "--no-usr2", "x.py", "--quiet", NULL};
    const char *v4[] = {FP, "--no-usr2", "python", "--quiet", "-u", "x.py", NULL};
    CHECK_INT(fil_cli_parse(6, (char *const *)v3, &a, err, sizeof err), OK);
    CHECK(a.quiet && a.no_usr2 && a.script_argc == 1 && !strcmp(a.script_argv[0], "--quiet"));
    CHECK_INT(fil_cli_parse(6, (char *const *)v4, &a, err, sizeof err), OK);
    CHECK(a.quiet && a.no_usr2 && a.npyopts == 1 && a.script_argc == 0);
    /* --quiet wins over --verbose, in either order. */
    const char *v5[] = {FP, "--verbose", "run", "--quiet", "x.py", NULL};
    const char *v6[] = {FP, "--quiet", "--verbose", "run", "x.py", NULL};
    CHECK_INT(fil_cli_parse(5, (char *const *)v5, &a, err, sizeof err), OK);
    CHECK(a.quiet && !a.verbose);
    CHECK_INT(fil_cli_parse(5, (char *const *)v6, &a, err, sizeof err), OK);
    CHECK(a.quiet && !a.verbose);
    const char *v7[] = {FP, "run", "--no-children", "x.py", "--no-children", NULL};
    CHECK_INT(fil_cli_parse(5, (char *const *)v7, &a, err, sizeof err), OK);
    CHECK(a.no_children && a.script_argc == 1 && !strcmp(a.script_argv[0], "--no-children"));
}

/* The interpreter's argv and the recorded command follow the contract. */
static void test_vectors(void)
{
    const char *v[] = {FP, "-o", "o", "python", "-u", "-X", "dev", "-Bm", "pkg", "-o", "x", NULL};
    const char *run[] = {FP, "run", "--verbose", "x.py", "--n", "3", NULL};
    const char *out[32];
    fil_cli_args_t a;
    char err[256], buf[1024];

    CHECK_INT(fil_cli_parse(11, (char *const *)v, &a, err, sizeof err), OK);
    /* The interpreter runs the program as the user would have typed it. */
    CHECK_INT(fil_cli_exec_argc(&a), 9);
    fil_cli_exec_argv(&a, "/usr/bin/python3", out);
    CHECK(out[9] == NULL);
    CHECK_STR(join(out, 9, buf, sizeof buf), "/usr/bin/python3|-u|-X|dev|-B|-m|pkg|-o|x");
    CHECK_INT(fil_cli_command_argc(&a), 9);
    fil_cli_command_argv(&a, out);
    CHECK(out[9] == NULL);
    CHECK_STR(join(out, 9, buf, sizeof buf), "python|-u|-X|dev|-B|-m|pkg|-o|x");

    CHECK_INT(fil_cli_parse(6, (char *const *)run, &a, err, sizeof err), OK);
    fil_cli_exec_argv(&a, "py", out);
    CHECK_STR(join(out, fil_cli_exec_argc(&a), buf, sizeof buf), "py|x.py|--n|3");
    fil_cli_command_argv(&a, out);
    CHECK_STR(join(out, fil_cli_command_argc(&a), buf, sizeof buf), "run|x.py|--n|3");
    {   /* a script named like an option follows "--", as the user would type it */
        const char *dash[] = {FP, "run", "--", "-x.py", "a", NULL};
        CHECK_INT(fil_cli_parse(5, (char *const *)dash, &a, err, sizeof err), OK);
        fil_cli_exec_argv(&a, "py", out);
        CHECK_STR(join(out, fil_cli_exec_argc(&a), buf, sizeof buf), "py|--|-x.py|a");
    }
}

/* ---- environment -------------------------------------------------------- */

/* The value of name in env, or NULL. */
static const char *lookup(char *const *env, const char *name)
{
    return env_get(env, name);
}

static void test_env(void)
{
    char *in[] = {
        "HOME=/root",     "LD_PRELOAD=libx.so", "PYTHONMALLOC=pymalloc_debug", "FIL_VERBOSE=1",
        "FIL_STATE_FD=9", "PATH=/bin",          "FIL_SAFETY_MARGIN=5",         "FIL_CHILDREN=x",
        NULL};
    char *plain[] = {"HOME=/root", "FIL_RESULT_DISPLAY=stale", NULL};
    const char *argv[] = {FP, "--safety-margin", "1K", "--on-oom=continue", "run", "x.py", NULL};
    fil_cli_args_t a;
    char err[256], **env;
    fil_cli_env_opts_t o = {"/p/libfilpreload.so", "/p", 7, "/r/2026", "r/2026", &a, NULL};

    CHECK_INT(fil_cli_parse(6, (char *const *)argv, &a, err, sizeof err), OK);
    env = fil_cli_build_env(in, &o);
    CHECK(env != NULL);
    CHECK_STR(lookup(env, "HOME"), "/root");
    CHECK_STR(lookup(env, "PATH"), "/bin");
    CHECK_STR(lookup(env, "LD_PRELOAD"), "/p/libfilpreload.so:libx.so");
    CHECK_STR(env[1], "LD_PRELOAD=/p/libfilpreload.so:libx.so"); /* the user's place */
    CHECK_STR(lookup(env, "PYTHONMALLOC"), "pymalloc_debug"); /* the user's, untouched */
    CHECK_STR(lookup(env, "FIL_STATE_FD"), "7");
    CHECK_STR(lookup(env, "FIL_LIBDIR"), "/p");
    CHECK_STR(lookup(env, "FIL_RESULT_DIR"), "/r/2026");
    CHECK_STR(lookup(env, "FIL_RESULT_DISPLAY"), "r/2026");
    CHECK_STR(lookup(env, "FIL_OOM_MODE"), "continue");
    CHECK_STR(lookup(env, "FIL_OOM_DETECTION"), "1");
    CHECK_STR(lookup(env, "FIL_SAFETY_MARGIN"), "1024");
    CHECK(lookup(env, "FIL_VERBOSE") == NULL); /* inherited copy dropped, not asked for */
    CHECK(lookup(env, "FIL_CHILDREN") == NULL);  /* ... and so is a stray registry */
    CHECK_INT(count((const char *const *)env), 11);
    fil_cli_free_env(env);

    /* Children on: the registry's name is handed down. */
    o.children = "fil-profile-1-abc";
    env = fil_cli_build_env(in, &o);
    CHECK_STR(lookup(env, "FIL_CHILDREN"), "fil-profile-1-abc");
    CHECK_INT(count((const char *const *)env), 12);
    fil_cli_free_env(env);
    o.children = NULL;

    a.has_safety_margin = 0, a.verbose = 1, a.oom_continue = 0, a.oom_detection = 0;
    env = fil_cli_build_env(plain, &o);
    CHECK_STR(lookup(env, "LD_PRELOAD"), "/p/libfilpreload.so");
    CHECK(lookup(env, "PYTHONMALLOC") == NULL);
    CHECK_STR(lookup(env, "FIL_RESULT_DISPLAY"), "r/2026"); /* inherited copy replaced */
    CHECK(lookup(env, "FIL_SAFETY_MARGIN") == NULL);
    CHECK_STR(lookup(env, "FIL_VERBOSE"), "1");
    CHECK_STR(lookup(env, "FIL_OOM_MODE"), "exit");
    CHECK_STR(lookup(env, "FIL_OOM_DETECTION"), "0");
    fil_cli_free_env(env);
}

/* ---- result folder ------------------------------------------------------ */

static void test_timestamp(void)
{
    struct timespec ts = {1795773600, 123456789}, zero = {0, 999999999};
    char name[64], small[10];

    setenv("TZ", "UTC", 1);
    tzset();
    CHECK_INT(fil_cli_timestamp_name(&ts, name, sizeof name), 0);
    CHECK_STR(name, "2026-11-27T10-00-00_123");
    CHECK_INT(fil_cli_timestamp_name(&zero, name, sizeof name), 0);
    CHECK_STR(name, "1970-01-01T00-00-00_999");
    CHECK_INT(fil_cli_timestamp_name(&ts, small, sizeof small), -1);
}

static void test_trim_join(void)
{
    char buf[64];

    fil_cli_trim_dir("fil-result///", buf, sizeof buf);
    CHECK_STR(buf, "fil-result");
    fil_cli_trim_dir("/", buf, sizeof buf);
    CHECK_STR(buf, "/");
    CHECK_INT(fil_cli_join("/", "x", buf, sizeof buf), 1);
    CHECK_STR(buf, "/x");
    CHECK_INT(fil_cli_join("a/b", "x", buf, sizeof buf), 1);
    CHECK_STR(buf, "a/b/x");
    CHECK_INT(fil_cli_join("a", "0123456789", buf, 8), 0);
}

/* nftw callback: remove one entry. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Write text to path (creating it). */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Does the folder name look like YYYY-MM-DDTHH-MM-SS_mmm? */
static int is_stamp(const char *s)
{
    const char *pat = "dddd-dd-ddTdd-dd-dd_ddd";

    for (; *pat; pat++, s++)
        if (*pat == 'd' ? (*s < '0' || *s > '9') : *s != *pat)
            return 0;
    return *s == '\0';
}

/* Folder creation, fresh names, `latest`, and what is left alone. */
static void test_result_dir(const char *tmp)
{
    char dir[512], name[64], name2[64], err[1024], link[600], target[64], path[600];
    ssize_t n;

    snprintf(dir, sizeof dir, "%s/a/b/out", tmp);
    CHECK_INT(fil_cli_make_result_dir(dir, name, sizeof name, err, sizeof err), 0);
    CHECK(is_stamp(name));
    CHECK_INT(fil_cli_make_result_dir(dir, name2, sizeof name2, err, sizeof err), 0);
    CHECK(strcmp(name, name2) != 0); /* same millisecond: the next name is taken */
    CHECK_INT(fil_cli_update_latest(dir, name, err, sizeof err), 0);
    CHECK_INT(fil_cli_update_latest(dir, name2, err, sizeof err), 0);
    snprintf(link, sizeof link, "%s/latest", dir);
    n = readlink(link, target, sizeof target - 1);
    CHECK(n > 0);
    target[n > 0 ? n : 0] = '\0';
    CHECK_STR(target, name2); /* relative, replaced */

    /* a symlink of the user's own is left alone; one of ours is replaced */
    remove(link);
    CHECK_INT(symlink("../elsewhere", link), 0);
    CHECK_INT(fil_cli_update_latest(dir, name, err, sizeof err), 1);
    CHECK(strstr(err, "symbolic link of your own (to '../elsewhere')") != NULL);
    n = readlink(link, target, sizeof target - 1);
    CHECK(n == 12 && memcmp(target, "../elsewhere", 12) == 0);
    remove(link);
    CHECK_INT(symlink("2020-01-02T03-04-05_678", link), 0);
    CHECK_INT(fil_cli_update_latest(dir, name, err, sizeof err), 0);
    n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    CHECK_STR(target, name);

    /* a `latest` that is not a symlink is left alone */
    remove(link);
    write_file(link, "mine\n");
    CHECK_INT(fil_cli_update_latest(dir, name, err, sizeof err), 1);
    CHECK(strstr(err, "not a symbolic link") != NULL);
    n = readlink(link, target, sizeof target);
    CHECK(n < 0 && errno == EINVAL); /* still a regular file */

    /* DIR itself a file, or a file in the way */
    snprintf(path, sizeof path, "%s/file", tmp);
    write_file(path, "x");
    CHECK_INT(fil_cli_make_result_dir(path, name, sizeof name, err, sizeof err), -1);
    CHECK(strstr(err, "exists and is not a directory") != NULL);
    snprintf(path, sizeof path, "%s/file/sub", tmp);
    CHECK_INT(fil_cli_mkdir_p(path, err, sizeof err), -1);
    CHECK(strstr(err, "not a directory") != NULL);
}

/* ---- OOM-kill counter --------------------------------------------------- */

/* Create root + rel (a file, with parents) holding text. */
static void put(const char *root, const char *rel, const char *text)
{
    char path[1024], err[256];
    char *slash;

    snprintf(path, sizeof path, "%s%s", root, rel);
    slash = strrchr(path, '/');
    *slash = '\0';
    CHECK_INT(fil_cli_mkdir_p(path, err, sizeof err), 0);
    *slash = '/';
    write_file(path, text);
}

static void test_oom_kills(const char *tmp)
{
    char root[512];
    uint64_t n = 0;

    /* hybrid: v1 memory controller, v2 at /sys/fs/cgroup/unified */
    snprintf(root, sizeof root, "%s/hybrid", tmp);
    put(root, "/proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/jobs/j1\n0::/jobs/j1\n");
    put(root, "/proc/self/mountinfo",
        "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
    put(root, "/sys/fs/cgroup/memory/jobs/j1/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n");
    CHECK_INT(fil_cli_oom_kills(root, &n), 0);
    CHECK_INT(n, 7);

    /* pure v2, nested */
    snprintf(root, sizeof root, "%s/v2", tmp);
    put(root, "/proc/self/cgroup", "0::/user.slice/app.scope\n");
    put(root, "/proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    put(root, "/sys/fs/cgroup/user.slice/app.scope/memory.events",
        "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n");
    CHECK_INT(fil_cli_oom_kills(root, &n), 0);
    CHECK_INT(n, 2);

    /* container: the mount root is our cgroup, so it is stripped from the path */
    snprintf(root, sizeof root, "%s/container", tmp);
    put(root, "/proc/self/cgroup", "9:memory:/docker/abc\n");
    put(root, "/proc/self/mountinfo",
        "40 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
    put(root, "/sys/fs/cgroup/memory/memory.oom_control", "oom_kill 11\n");
    CHECK_INT(fil_cli_oom_kills(root, &n), 0);
    CHECK_INT(n, 11);

    /* no counter anywhere */
    snprintf(root, sizeof root, "%s/missing", tmp);
    put(root, "/proc/self/cgroup", "0::/\n");
    CHECK_INT(fil_cli_oom_kills(root, &n), -1);
    snprintf(root, sizeof root, "%s/nothing", tmp);
    CHECK_INT(fil_cli_oom_kills(root, &n), -1);
}

/* Remove root + rel: a fake cgroup folder and its counter file. */
static void drop_cgroup(const char *root, const char *rel)
{
    char path[1024];

    snprintf(path, sizeof path, "%s%s/memory.oom_control", root, rel);
    CHECK_INT(unlink(path), 0);
    snprintf(path, sizeof path, "%s%s", root, rel);
    CHECK_INT(rmdir(path), 0);
}

/* The counts of a v1 subtree are compared cgroup by cgroup: a removed
 * cgroup's kills neither hide a kill elsewhere nor count as one. */
static void test_oom_trees(const char *tmp)
{
    static fil_cli_oom_tree_t then, now; /* 4 KiB each */
    char root[512], where[600], rel[64];

    snprintf(root, sizeof root, "%s/tree", tmp);
    snprintf(where, sizeof where, "%s/P/memory.oom_control", root);
    put(root, "/P/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
    put(root, "/P/ours/memory.oom_control", "oom_kill 0\n");
    put(root, "/P/other/memory.oom_control", "oom_kill 1\n");
    put(root, "/P/other/deep/memory.oom_control", "oom_kill 2\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &then), 0);
    CHECK_INT(then.n, 4);
    CHECK_INT(then.complete, 1);
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 0);

    /* the other cgroups go (3 kills), ours has one: still a rise (a sum
     * would have gone from 3 to 1) */
    drop_cgroup(root, "/P/other/deep");
    drop_cgroup(root, "/P/other");
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 0); /* a removal is no kill */
    put(root, "/P/ours/memory.oom_control", "oom_kill 1\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 1);

    /* a cgroup made since: its kills are new ones */
    put(root, "/P/memory.oom_control", "oom_kill 0\n");
    put(root, "/P/ours/memory.oom_control", "oom_kill 0\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &then), 0);
    put(root, "/P/new/memory.oom_control", "oom_kill 0\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 0);
    put(root, "/P/new/memory.oom_control", "oom_kill 1\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 1);

    /* past FIL_CLI_OOM_TREE_MAX cgroups: the record is incomplete, and a
     * cgroup not in it is not judged; those in it still are */
    for (int i = 0; i < FIL_CLI_OOM_TREE_MAX + 10; i++) {
        snprintf(rel, sizeof rel, "/P/many/c%03d/memory.oom_control", i);
        put(root, rel, "oom_kill 4\n");
    }
    CHECK_INT(fil_cli_oom_tree_read(where, &then), 0);
    CHECK_INT(then.n, FIL_CLI_OOM_TREE_MAX + 1);
    CHECK_INT(then.complete, 0);
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 0);
    put(root, "/P/memory.oom_control", "oom_kill 1\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 1);

    /* v2: memory.events already counts the subtree; only the file itself */
    snprintf(where, sizeof where, "%s/v2/memory.events", root);
    put(root, "/v2/memory.events", "oom 1\noom_kill 1\n");
    put(root, "/v2/sub/memory.oom_control", "oom_kill 5\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &then), 0);
    CHECK_INT(then.n, 1);
    CHECK_INT(then.e[0].count, 1);
    put(root, "/v2/memory.events", "oom 2\noom_kill 2\n");
    CHECK_INT(fil_cli_oom_tree_read(where, &now), 0);
    CHECK_INT(fil_cli_oom_tree_rose(&then, &now), 1);

    snprintf(where, sizeof where, "%s/none/memory.oom_control", root);
    CHECK_INT(fil_cli_oom_tree_read(where, &then), -1);
}

/* A process is dying when /proc/PID/stat says so: a zombie, PF_EXITING in
 * its flags, SIGKILL among its pending signals, or no such file. */
static void test_proc_dying(const char *tmp)
{
    /* fields 3..31 of a real line; %s is the state, then flags and signal */
    static const char fmt[] =
        "4242 (a (b) c) %s 1 1 1 0 -1 %s 99 0 0 0 0 0 0 0 20 0 1 0 3071078 3133440 410 "
        "18446744073709551615 94519569076224 94519569096105 140728062880080 0 0 %s 0 0 0 "
        "0 0 0 17 0 0 0 0 0 0\n";
    struct {
        const char *state, *flags, *signal;
        int dying;
    } cases[] = {
        {"R", "4194304", "0", 0},
        {"S", "4194560", "16384", 0}, /* SIGTERM pending: not yet */
        {"R", "4194308", "0", 1},     /* PF_EXITING */
        {"D", "4194304", "256", 1},   /* SIGKILL pending */
        {"Z", "4194304", "0", 1},
    };
    char root[512], text[512];

    snprintf(root, sizeof root, "%s/procs", tmp);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(text, sizeof text, fmt, cases[k].state, cases[k].flags, cases[k].signal);
        put(root, "/proc/4242/stat", text);
        CHECK_INT(fil_cli_proc_dying(root, 4242), cases[k].dying);
    }
    put(root, "/proc/4242/stat", "4242 (cut");
    CHECK_INT(fil_cli_proc_dying(root, 4242), 1);
    CHECK_INT(fil_cli_proc_dying(root, 4343), 1); /* gone */
    CHECK_INT(fil_cli_proc_dying("", getpid()), 0);
}

/* Start sample.c's timeline afresh. */
static void timeline_reset(void)
{
    npoints = 0;
    step_ns = SAMPLE_NS;
}

/* The timeline's invariants: at most MAX_POINTS points, at interval starts,
 * strictly increasing. */
static void check_timeline_shape(void)
{
    CHECK(npoints > 0 && npoints <= MAX_POINTS);
    CHECK(step_ns % SAMPLE_NS == 0);
    int ordered = 1, aligned = 1;
    for (uint32_t i = 0; i < npoints; i++) {
        aligned &= points[i].t_ns % step_ns == 0;
        ordered &= i == 0 || points[i].t_ns > points[i - 1].t_ns;
    }
    CHECK(aligned);
    CHECK(ordered);
}

/* A run of `seconds` sampled every 10 ms (a jitter of up to 3 ms), rising
 * to a one-sample spike at 40% of the run and back: the spike survives
 * every halving, and the curve's shape is kept at the new resolution. */
static void test_timeline_long_run(uint64_t seconds)
{
    uint64_t n = seconds * 100, spike = n * 2 / 5, last_t = 0;
    timeline_reset();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t = i * SAMPLE_NS + (i * 7919) % 3000000;
        uint64_t tracked = i < n / 2 ? i * 1000 : (n - i) * 1000;
        add_point(t, i == spike ? UINT64_C(1) << 40 : tracked, 4096 + i);
        last_t = t;
    }
    check_timeline_shape();
    uint32_t k = fil_timeline_peak(points, npoints);
    CHECK(points[k].tracked == UINT64_C(1) << 40); /* the peak survived */
    uint64_t at = spike * SAMPLE_NS + (spike * 7919) % 3000000;
    CHECK(points[k].t_ns <= at && at < points[k].t_ns + step_ns);
    CHECK(points[npoints - 1].rss == 4096 + n - 1); /* maxima kept */
    CHECK(points[npoints - 1].t_ns <= last_t && last_t < points[npoints - 1].t_ns + step_ns);
    /* A 1-hour run keeps at least half the points (the array is never
     * emptied by more than one halving at a time). */
    CHECK(npoints >= MAX_POINTS / 2 || n < MAX_POINTS);
    uint32_t mid = npoints / 2; /* rising before the middle, falling after */
    CHECK(points[mid / 2].tracked < points[mid].tracked || mid < 4);
    CHECK(points[mid + mid / 2].tracked < points[mid].tracked || mid < 4);
}

/* Gaps (the sampler was stopped) and a clock stepping back merge, never
 * reorder. */
static void test_timeline_gaps(void)
{
    timeline_reset();
    add_point(0, 10, 1);
    add_point(5 * SAMPLE_NS, 20, 2);
    add_point(4 * SAMPLE_NS, 30, 3); /* clock stepped back: merged into the last */
    add_point(UINT64_C(3600) * 1000000000u, 40, 4);
    CHECK(npoints == 3);
    CHECK(points[1].tracked == 30 && points[1].rss == 3);
    check_timeline_shape();
    for (uint64_t i = 0; i < 3 * MAX_POINTS; i++) /* sparse: one in every 7 intervals */
        add_point(UINT64_C(3600) * 1000000000u + i * 7 * SAMPLE_NS, i, i);
    check_timeline_shape();
    CHECK(points[npoints - 1].tracked == 3 * MAX_POINTS - 1);
}

int main(void)
{
    char tmp[] = "/tmp/fil-test-cli-XXXXXX";

    for (size_t k = 0; k < sizeof parse_cases / sizeof parse_cases[0]; k++)
        check_parse_case(&parse_cases[k]);
    test_parse_values();
    test_vectors();
    test_env();
    test_timestamp();
    test_trim_join();
    test_timeline_long_run(60);
    test_timeline_long_run(3600);
    test_timeline_gaps();
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_result_dir(tmp);
    test_oom_kills(tmp);
    test_oom_trees(tmp);
    test_proc_dying(tmp);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_cli");
}
