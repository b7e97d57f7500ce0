/* SPDX-License-Identifier: MIT */
/*
 * fil/children.h - how the processes of the profiled tree find the
 * launcher: the messages of its registry socket.
 *
 * The launcher (src/cli/children.c) listens on an abstract unix socket of
 * type SOCK_SEQPACKET whose name (without the leading NUL) it hands down
 * in FIL_CHILDREN. A Python process the program starts, by exec or by
 * fork, makes a state file of its own and registers it: one
 * fil_child_hello_t carrying the memfd (SCM_RIGHTS); the launcher answers
 * with one fil_child_reply_t (its report folder, the descriptor it keeps
 * the memfd under) before the child goes on, so the state is in the
 * launcher's hands before the child can be killed. The connection stays
 * open: the process sends a fil_child_reaped_t for each child it reaps
 * (the launcher learns how a process it is not the parent of ended). A
 * process with no state of its own (a shell between the program and a
 * Python grandchild) opens a connection of notes only.
 *
 * The sender's pid is the kernel's (SO_PEERCRED), never the message's.
 */
#ifndef FIL_CHILDREN_H
#define FIL_CHILDREN_H

#include <stdint.h>

/* The environment variable with the registry's abstract socket name. */
#define FIL_CHILDREN_ENV "FIL_CHILDREN"
/* Longest socket name (sun_path holds 108 bytes with the leading NUL). */
#define FIL_CHILDREN_NAME_MAX 100

#define FIL_CHILD_MAGIC UINT64_C(0x31646c6968436c46) /* "FlChild1" */

/* fil_child_hello_t.type, fil_child_reaped_t.type */
enum {
    FIL_CHILD_MSG_STATE = 1,  /* hello with a state memfd: register a process */
    FIL_CHILD_MSG_NOTES = 2,  /* hello without one: this connection sends notes only */
    FIL_CHILD_MSG_REAPED = 3, /* a note: this process reaped pid with wstatus */
};

typedef struct fil_child_hello {
    uint64_t magic;
    uint32_t type;     /* FIL_CHILD_MSG_STATE or FIL_CHILD_MSG_NOTES */
    uint32_t kind;     /* FIL_CHILD_EXEC or FIL_CHILD_FORK (fil/state.h) */
    int32_t parent;    /* its parent: the forking pid (read before fork) or getppid() */
    int32_t pad;
} fil_child_hello_t;

#define FIL_CHILD_DIR_MAX 2048

typedef struct fil_child_reply {
    uint64_t magic;
    int32_t ok;       /* 1: registered; 0: refused (the child does not track) */
    int32_t launcher; /* the launcher's pid */
    int32_t fd;       /* the number the launcher holds the memfd under */
    int32_t pad;
    char dir[FIL_CHILD_DIR_MAX];     /* the child's report folder, absolute */
    char display[FIL_CHILD_DIR_MAX]; /* the same as the user would type it */
} fil_child_reply_t;

typedef struct fil_child_reaped {
    uint64_t magic;
    uint32_t type;   /* FIL_CHILD_MSG_REAPED */
    int32_t pid;     /* the process reaped */
    int32_t wstatus; /* its wait status (as waitpid gives it) */
    int32_t pad;
} fil_child_reaped_t;

#endif
