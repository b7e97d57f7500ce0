/* SPDX-License-Identifier: MIT */
/*
 * cli.h - private interface between the files of the `fil-profile` launcher.
 *
 * args.c parses the command line into fil_cli_args_t (pointers into argv,
 * nothing allocated) and builds the argument vectors; env.c builds the
 * child's environment; resultdir.c makes the result folder and the `latest`
 * link; supervise.c runs and waits for the child; oomkill.c reads the cgroup
 * OOM-kill counter; browser.c opens the report; sample.c samples memory
 * over time and writes the reports on demand; forward.c decides whether a
 * signal must be passed on to the program; sigpolicy.c is what signals do
 * once the program is gone; limitcheck.c refuses limits the program cannot
 * run under; preload.c names the preload library so that LD_PRELOAD can
 * carry it; main.c ties them together. Everything here runs in the
 * supervisor process's main thread, never in signal context, except
 * sigpolicy.c's handlers (a SIGNAL-SAFE FILE) and sample.c's two threads,
 * which run from the child's fork to its reaping.
 */
#ifndef FIL_CLI_H
#define FIL_CLI_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "fil/render.h"

#define FIL_CLI_VERSION "0.1.0"

/* Exit status for usage and setup errors (nothing was run). */
#define FIL_CLI_EXIT_USAGE 2
/* Exit status when the interpreter could not be executed. */
#define FIL_CLI_EXIT_EXEC 127

/* Child processes listed in the main program's reports, at most. */
#define FIL_CLI_MAX_CHILD_ROWS 4096

/* Most interpreter options accepted in the `python` form. */
#define FIL_CLI_MAX_PYOPTS 64

typedef enum fil_cli_mode {
    FIL_CLI_MODE_RUN = 0, /* target is a script path */
    FIL_CLI_MODE_MODULE,  /* target is a module name (-m) */
    FIL_CLI_MODE_CODE,    /* target is code (-c, python form only) */
} fil_cli_mode_t;

/* fil_cli_parse() results. */
typedef enum fil_cli_parse_result {
    FIL_CLI_PARSE_ERROR = -1, /* usage error, reason in err */
    FIL_CLI_PARSE_OK = 0,     /* run the program */
    FIL_CLI_PARSE_HELP,       /* -h/--help was given */
    FIL_CLI_PARSE_VERSION,    /* --version was given */
    FIL_CLI_PARSE_PYVERSION,  /* python -V (or -VV): the interpreter's version, in pyopts[0] */
} fil_cli_parse_result_t;

/* The parsed command line. Strings point into argv (or into pyopt_cluster),
 * so argv must outlive this. */
typedef struct fil_cli_args {
    const char *output;                     /* -o DIR, default "fil-result" */
    int no_browser;                         /* --no-browser */
    int verbose;                            /* --verbose */
    int quiet;                              /* --quiet: only errors and warnings on stderr */
    int no_usr2;                            /* --no-usr2: SIGUSR2 is the program's, untouched */
    int no_children;                        /* --no-children: the main process only */
    int oom_continue;                       /* --on-oom=continue (default exit) */
    int oom_detection;                      /* 0 with --disable-oom-detection */
    int has_memory_limit;                   /* --memory-limit given */
    uint64_t memory_limit;                  /* its value in bytes */
    const char *memory_limit_text;          /* ... as typed, for messages */
    int has_safety_margin;                  /* --safety-margin given */
    uint64_t safety_margin;                 /* its value in bytes */
    const char *safety_margin_text;         /* ... as typed, for messages */
    int python_form;                        /* 1 for `python`, 0 for `run` */
    const char *pyopts[FIL_CLI_MAX_PYOPTS]; /* interpreter options, in order */
    int npyopts;
    char pyopt_cluster[64]; /* flags before -c/-m in one cluster ("-u" of "-uc") */
    fil_cli_mode_t mode;
    const char *target;       /* script path, module name or code */
    char *const *script_argv; /* the program's own arguments, untouched */
    int script_argc;
} fil_cli_args_t;

/* args.c */
fil_cli_parse_result_t fil_cli_parse(int argc, char *const *argv, fil_cli_args_t *a, char *err,
                                     size_t errlen);
int fil_cli_command_argc(const fil_cli_args_t *a);
void fil_cli_command_argv(const fil_cli_args_t *a, const char **out);
int fil_cli_exec_argc(const fil_cli_args_t *a);
void fil_cli_exec_argv(const fil_cli_args_t *a, const char *python, const char **out);
const char *fil_cli_mode_name(fil_cli_mode_t mode);

/* env.c */
typedef struct fil_cli_env_opts {
    const char *preload;     /* absolute path of libfilpreload.so */
    const char *libdir;      /* absolute path of its folder (holds python/filprofiler) */
    int state_fd;            /* fd number the child inherits */
    const char *result_dir;  /* absolute path of the result folder */
    const char *result_shown; /* the same as the user would type it, for messages */
    const fil_cli_args_t *a; /* OOM mode, detection, margin, verbosity */
    const char *children;    /* the registry's socket name (FIL_CHILDREN), or NULL */
} fil_cli_env_opts_t;
char **fil_cli_build_env(char *const *environ_in, const fil_cli_env_opts_t *o);
void fil_cli_free_env(char **env);

/* preload.c */
int fil_cli_preload_path(const char *lib, char *out, size_t len, char *err, size_t errlen);

/* resultdir.c */
int fil_cli_timestamp_name(const struct timespec *ts, char *buf, size_t len);
int fil_cli_mkdir_p(const char *dir, char *err, size_t errlen);
int fil_cli_make_result_dir(const char *dir, char *name, size_t namelen, char *err, size_t errlen);
int fil_cli_update_latest(const char *dir, const char *name, char *warn, size_t warnlen);
void fil_cli_trim_dir(const char *output, char *buf, size_t len);
int fil_cli_join(const char *dir, const char *name, char *buf, size_t len);

/* oomkill.c */
int fil_cli_oom_kills(const char *root, uint64_t *count);
int fil_cli_oom_kills_of(pid_t pid, char *dir, size_t len, uint64_t *count);
/* The OOM-kill counts of a cgroup and, on v1, of each cgroup below it:
 * see fil_cli_oom_tree_read. */
#define FIL_CLI_OOM_TREE_MAX 256
typedef struct fil_cli_oom_tree {
    uint32_t n;   /* entries in e */
    int complete; /* every cgroup of the subtree is in e */
    struct {
        uint64_t ino;   /* the cgroup folder's inode */
        uint64_t count; /* its own oom_kill count (v2: its subtree's) */
    } e[FIL_CLI_OOM_TREE_MAX + 1];
} fil_cli_oom_tree_t;
int fil_cli_oom_tree_read(const char *where, fil_cli_oom_tree_t *t);
int fil_cli_oom_tree_rose(const fil_cli_oom_tree_t *then, const fil_cli_oom_tree_t *now);
int fil_cli_proc_dying(const char *root, pid_t pid);

/* supervise.c */
/* Raise the launcher's own soft RLIMIT_NOFILE to its hard limit (at most
 * 65536): it holds three descriptors for each live child process (its
 * state, a pidfd, its connection), so that a tree of hundreds of live
 * Python processes is profiled whole under the usual soft 1024. The
 * program, and so every process it starts, gets the limit back. */
void fil_cli_raise_nofile(void);
/* Raise the launcher's own soft RLIMIT_AS and RLIMIT_DATA to the hard
 * limits (an inherited `ulimit -Sv` is the program's budget, not the
 * renderer's); the program and the probe runs get the user's back.
 * fil_cli_user_rlimit: getrlimit as the user set it. Context: supervisor,
 * single-threaded, before the first fork. */
void fil_cli_raise_memory(void);
int fil_cli_user_rlimit(int resource, struct rlimit *rl);
typedef struct fil_cli_child {
    const char *python;      /* resolved interpreter path */
    const char *const *argv; /* NULL-terminated exec argv */
    char *const *envp;       /* NULL-terminated environment */
    int state_fd;            /* inherited by the child (FD_CLOEXEC cleared there) */
    int has_memory_limit;    /* set soft RLIMIT_AS in the child */
    uint64_t memory_limit;
    int hold_usr2;           /* reports on demand: hold a SIGUSR2 until the program is ready */
    /* Called in the parent right after fork, with the child's pid, while
     * the forwarded signals are still blocked (sample.c starts there); or
     * NULL. */
    void (*started)(pid_t pid, void *ctx);
    void *started_ctx;
} fil_cli_child_t;
/* Note a SIGUSR2 sent to the launcher before it watches for signals (it
 * would kill the launcher): the supervisor then treats it as sent while
 * the program starts. */
void fil_cli_usr2_catch_early(void);
/* Ignore SIGPIPE in the launcher: a stderr whose reader went away
 * (`fil-profile run x.py 2>&1 | head -1`) must not kill it and change the
 * exit status; its writes just fail. What it execs (the program, a probe,
 * xdg-open) gets the original disposition back with
 * fil_cli_restore_sigpipe. Context: the start of main; restore: a forked
 * child before exec. */
void fil_cli_ignore_sigpipe(void);
void fil_cli_restore_sigpipe(void);
/* Note which of stdin and stdout the launcher was given, and the other
 * descriptors it inherited, so that once the program is forked the
 * launcher lets go of them: those of stdin and stdout (and only those: a
 * closed one may then hold a descriptor of the launcher's) are put on
 * /dev/null, the others closed. Context: the start of main, before any
 * descriptor is opened. */
void fil_cli_note_given_fds(void);
/* Block the signals the run watches from now on (before the result folder
 * is made: a SIGTERM or Ctrl-C then waits for the program, which gets it,
 * instead of killing the launcher and leaving the folder empty); the
 * program still starts with the mask the launcher was given. */
void fil_cli_block_watched(void);
int fil_cli_supervise(const fil_cli_child_t *c, int *exit_status, int *term_signal,
                      uint64_t *start_ns, uint64_t *end_ns);
int fil_cli_find_program(const char *name, char *out, size_t len);
int fil_cli_probe(const fil_cli_child_t *c, char *out, size_t outlen, int *status);

/* limitcheck.c */
typedef struct fil_cli_install {
    const char *python;  /* resolved interpreter */
    const char *preload; /* libfilpreload.so */
    const char *libdir;  /* its folder (holds python/filprofiler) */
} fil_cli_install_t;
int fil_cli_check_limits(const fil_cli_args_t *a, const fil_cli_install_t *in);
int fil_cli_explain_start_failure(const fil_cli_args_t *a, int state_fd, int exit_status,
                                  int term_signal);

/* forward.c: passing a received signal on to the program, exactly once. */
struct fil_state_header;
struct signalfd_siginfo;
typedef struct fil_cli_forward {
    pid_t pid;                           /* the child, not yet reaped */
    int state_fd;                        /* the shared state */
    const struct fil_state_header *h;    /* its header mapped read-only, or NULL */
    uint32_t claimed[32];                /* per ring slot: the note already matched */
    uint32_t alone[32];                  /* ... claimed by a sweep as sent to the program alone */
    uint32_t swept_next;                 /* the ring's count at the last sweep */
    int unsettled;                       /* the last sweep left notes to look at again */
} fil_cli_forward_t;
void fil_cli_forward_init(fil_cli_forward_t *f, pid_t pid, int state_fd);
void fil_cli_forward(fil_cli_forward_t *f, const struct signalfd_siginfo *si);
int fil_cli_forward_was_childs(fil_cli_forward_t *f, const struct signalfd_siginfo *si,
                               int death_signal);
int fil_cli_forward_sweep(fil_cli_forward_t *f);
void fil_cli_forward_end(fil_cli_forward_t *f);
/* 1 once the program has decided about SIGUSR2 (state usr2_ready). */
int fil_cli_forward_usr2_ready(fil_cli_forward_t *f);
/* How many reports on demand the program's SIGUSR2 handler asked for
 * (the state's usr2_requests; 0 without a state). */
uint32_t fil_cli_forward_usr2_requests(fil_cli_forward_t *f);

/* sigpolicy.c: the supervisor's signals once the program is gone. */
int fil_cli_render_phase(const char *dir);
void fil_cli_die_of(int sig) __attribute__((noreturn));
void fil_cli_stop_signal(const char *shown);

/* sample.c */
typedef struct fil_cli_sampler_cfg {
    int state_fd;               /* the shared state */
    const char *outdir;         /* -o DIR, trimmed: reports on demand go in new folders there */
    const fil_run_info_t *info; /* the run: command, interpreter, options, start_ns */
    int quiet;                  /* --quiet */
    int reports;                /* 0 with --no-usr2 */
} fil_cli_sampler_cfg_t;
void fil_cli_sampler_started(pid_t pid, void *cfg);
void fil_cli_sampler_stop(void);
int fil_cli_report_request(void);
void fil_cli_sampler_timeline(fil_run_info_t *info);
uint64_t fil_cli_sampler_overhead_ns(uint64_t *samples);
uint64_t fil_cli_sampler_peak_rss(void);
int fil_cli_sampler_oom_kills_alive(uint64_t *count);

/* say.c */
/* Print one FIL_MSG_PREFIX line to stderr, control characters as '?'. */
void fil_cli_vline(const char *fmt, va_list ap);
/* Format an error message into buf; returns -1, for `return fil_cli_msgf(...)`. */
__attribute__((format(printf, 3, 4))) int fil_cli_msgf(char *buf, size_t len, const char *fmt,
                                                       ...);

/* children.c: the processes the program starts. */
typedef struct fil_cli_children_cfg {
    const char *absdir;   /* the main result folder, absolute */
    const char *shown;    /* ... as the user would type it */
    const char *python;   /* the interpreter, for the children's summaries */
    const fil_run_options_t *options;
    const fil_run_info_t *info; /* the main program's command */
    int quiet;
    int state_fd;         /* the main program's state */
    uint64_t start_ns;    /* CLOCK_REALTIME when the program started */
    int main_pid;
} fil_cli_children_cfg_t;
int fil_cli_children_start(const fil_cli_children_cfg_t *c, char *name);
void fil_cli_children_main_pid(pid_t pid);
void fil_cli_children_sample(const struct fil_state_header *h, uint64_t t_ns);
void fil_cli_children_stop(unsigned grace_ms, int main_oom);
void fil_cli_children_wait_reports(void);
uint32_t fil_cli_children_rows(fil_child_row_t *out, uint32_t max);
uint32_t fil_cli_children_count(void);
uint32_t fil_cli_children_moments(fil_tree_moment_t *out);
uint32_t fil_cli_children_draw_moments(const fil_tree_moment_t *in, uint32_t n,
                                       const char *subtitle);

/* browser.c */
void fil_cli_open_browser(const char *path);

#endif
