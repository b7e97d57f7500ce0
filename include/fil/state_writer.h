/* SPDX-License-Identifier: MIT */
/*
 * fil/state_writer.h - the profiled process's side of the shared state.
 *
 * One writer per process. Growth (ftruncate + mmap of a new chunk) and
 * appends happen under the tracker lock; element pointers handed out stay
 * valid for the life of the process because chunks never move.
 */
#ifndef FIL_STATE_WRITER_H
#define FIL_STATE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "fil/state.h"

enum {
    FIL_SEG_NODES,
    FIL_SEG_BYTES,
    FIL_SEG_PEAK,
    FIL_SEG_FUNCS,
    FIL_SEG_STRINGS,
    FIL_SEG_STOP, /* grown only when a stop signal's copy is taken */
    FIL_SEG_COUNT
};

/* The mapped header, or NULL before fil_state_open() succeeded. */
extern fil_state_header_t *fil_state;

/* Map the state file: fd >= 0 is the supervisor's memfd (must be empty);
 * fd < 0 creates a private memfd. 0, or -1 (no state: tracking stays off).
 * Context: startup, single-threaded. */
int fil_state_open(int fd);

/* Make room for `more` elements after the published count of segment s.
 * 0, or -1 if the file could not grow (the caller counts a drop).
 * Context: tracker lock held. */
int fil_state_reserve(int s, uint64_t more);

/* Private pointers to the mapped chunks of each segment (state_writer.c);
 * an entry is set before the chunk is published and never changes. */
extern char *fil_state_chunks[FIL_SEG_COUNT][FIL_SEG_MAX_CHUNKS];
extern uint32_t fil_state_elem_size[FIL_SEG_COUNT];

/* Address of element i of segment s; i must be below the reserved capacity.
 * Context: any (chunks never move). */
static inline void *fil_state_at(int s, uint64_t i) {
    uint32_t k;
    uint64_t w;
    fil_seg_locate(i, &k, &w);
    return fil_state_chunks[s][k] + w * fil_state_elem_size[s];
}

/* Node n's int64 counter in FIL_SEG_BYTES or FIL_SEG_PEAK: fil_state_at with
 * the element size known at compile time (the charge path's address
 * arithmetic: ~6 instructions, no load of the element size). */
static inline int64_t *fil_state_i64(int s, uint64_t n) {
    uint32_t k;
    uint64_t w;
    fil_seg_locate(n, &k, &w);
    return (int64_t *)(void *)fil_state_chunks[s][k] + w;
}

/* Append a string (cut at FIL_STRING_MAX); its index, or UINT64_MAX.
 * Context: tracker lock held. */
uint64_t fil_state_add_string(const char *s, size_t n);

/* 1 when FIL_TEST_NO_REOPEN is set (state_env.c, read by a constructor):
 * a state descriptor the program closed is not opened again through the
 * supervisor, so tests can exercise the drop counting behind it. */
extern int fil_state_no_reopen;

/* In a fork() child: move to a state file of its own (a copy of the
 * inherited call-stack tree and names, every counter zero), mapped where
 * the parent's was. 0, or -1 (the caller stops tracking). Context: fork
 * child, single-threaded, before any tracking. */
int fil_state_fork_child(void);

/* The process that holds this state's descriptor open (under fd), through
 * whose /proc/<pid>/fd/<fd> it is opened again if the program closes ours. */
void fil_state_set_owner(int pid, int fd);

/* The state's descriptor in this process (-1 before fil_state_open). */
int fil_state_fd(void);

/* Bytes of the state file now. */
uint64_t fil_state_size(void);

/* The supervisor that handed the state down (our parent at startup), or 0
 * for a private state. SIGNAL CONTEXT safe. */
int fil_state_owner(void);

/* Record the interpreter version in the header. */
void fil_state_set_python_version(const char *v);

#endif
