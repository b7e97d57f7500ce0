/* SPDX-License-Identifier: MIT */
/* exec_internal.h - the environment across exec (exec.c) and the process
 * tree (children.c), for init.c and threads.c. */
#ifndef FIL_EXEC_INTERNAL_H
#define FIL_EXEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What exec'd programs get back (fil_exec_setup). */
enum {
    FIL_EXEC_NONE = 0,     /* nothing: --no-children, or no launcher */
    FIL_EXEC_CHILDREN = 1, /* what a child needs to register (a profiled process) */
    FIL_EXEC_ALL = 2,      /* everything (a process on its way to Python) */
};

void fil_exec_resolve(void);
void fil_exec_setup(int mode);
void fil_exec_strip(void);
void fil_exec_stop(void);
/* 1 while exec'd programs get our variables back (shell.c: else glibc's
 * system and popen). Context: any thread. */
int fil_exec_carrying(void);
size_t fil_exec_filter_preload(const char *v, char *out, size_t cap, char *mine, size_t mcap);

/* children.c */
/* Remember the registry's socket name (FIL_CHILDREN, or NULL).
 * Context: constructor. */
void fil_children_setup(const char *name);
/* A Python process the program exec'd registers its state (made with
 * fil_state_open(-1)) with the launcher in two steps, so that the
 * constructor's own set-up runs while the launcher makes the folder:
 * send_exec sends the state (0, or -1: no launcher), await_exec takes
 * the answer and the folder (0, or -1: refused; the caller does not
 * track). Context: constructor, guard set. */
int fil_children_send_exec(void);
int fil_children_await_exec(void);
/* Drop a registration sent and not awaited (the set-up failed). */
void fil_children_cancel_exec(void);
/* Give the out-of-memory dump the registered child's folder (after
 * fil_oom_init). Context: constructor. */
void fil_children_oom_dir(void);
/* 1 if this process registered as a child (its dumps go to its folder). */
int fil_children_registered(void);
/* In a fork() child, right after the fork: switch to a state of its own
 * and register it (from: the pid of the process that forked, taken before
 * the fork, since that process may be gone by now), or stop tracking.
 * Context: fork child, guard set, single-threaded. */
void fil_children_forked(pid_t from);
/* Record how this process exits (exit status) in its state. Any context
 * (aligned stores only; nothing in a vfork child). */
void fil_children_note_exit(int status);
/* The peak resident set of this process image (VmHWM), bytes; 0 if
 * unknown. Any context. */
uint64_t fil_children_peak_rss(void);
/* Mark this process's own state as exec'ing (not in a vfork child). */
void fil_children_before_exec(void);
/* Register the on_exit recorder. Context: constructor. */
void fil_children_at_exit(void);

#endif
