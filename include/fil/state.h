/* SPDX-License-Identifier: MIT */
/*
 * fil/state.h - layout of the shared state file.
 *
 * The profiled process keeps its aggregate state in one file (a memfd the
 * supervisor created and handed down as FIL_STATE_FD), mapped MAP_SHARED, so
 * that the supervisor can still read it after the process was SIGKILLed.
 *
 * Layout: a fixed header at offset 0, then chunks appended at the end of the
 * file as arrays grow. Each growable array is "segmented": chunk k holds
 * FIL_SEG_BASE << k elements, so 24 chunk offsets cover billions of elements,
 * the file only grows with the number of distinct call stacks (never with the
 * number of allocations), and no chunk ever moves, so the writer never needs
 * to remap what other threads are reading.
 *
 * Everything is offsets and indexes, never pointers. Publication order: an
 * element is written completely, then `count` is advanced with a release
 * store; a chunk is mapped and zeroed (ftruncate gives zeros), then its offset
 * is stored, then `nchunks` is advanced. A reader trusts only published
 * elements and validates every index it follows (parent < self, func < count,
 * string inside its chunk).
 *
 * Counters are single aligned 8-byte stores, which a SIGKILL cannot tear.
 * A charge stores the node's bytes first, then the total: the per-node bytes
 * are the truth, and a reader of a file whose writer died between the two
 * stores takes the total as their sum (fil_view_open_file).
 */
#ifndef FIL_STATE_H
#define FIL_STATE_H

#include <signal.h>
#include <stdint.h>

#include "fil/common.h"
#include "fil/limits.h"

#define FIL_STATE_MAGIC UINT64_C(0x3165746174536c46) /* "FlState1" */
#define FIL_STATE_VERSION 3u
#define FIL_STATE_HEADER_SIZE 65536u

#define FIL_SEG_SHIFT 12u /* chunk 0 holds 4096 elements */
#define FIL_SEG_BASE (1u << FIL_SEG_SHIFT)
#define FIL_SEG_MAX_CHUNKS 24u
#define FIL_STRING_MAX 4096u     /* longer names are cut */
#define FIL_NATIVE_MAX 32u       /* native frames kept for the failing allocation */
#define FIL_NATIVE_TEXT 160u     /* bytes per native frame label */

/* One node of the call-stack tree: a Python frame at a line. Node 0 is the
 * "[No Python stack]" pseudo-node (parent FIL_NONE, func FIL_NONE). */
typedef struct fil_node {
    uint32_t parent; /* index of the caller's node, FIL_NONE for a first frame */
    uint32_t func;   /* index into funcs, FIL_NONE for node 0 */
    uint32_t line;   /* line being executed in that frame */
    uint32_t depth;  /* 1 for a first frame (0 for node 0) */
} fil_node_t;

/* A function: code object identity reduced to names. */
typedef struct fil_func {
    uint64_t file; /* string index (see fil_state_string) */
    uint64_t name; /* string index */
    uint32_t first_line;
    uint32_t pad;
} fil_func_t;

/* A growable array. Which element lives where: see fil_seg_locate(). */
typedef struct fil_seg {
    uint32_t elem_size;                     /* bytes per element */
    uint32_t nchunks;                       /* published chunks */
    uint64_t count;                         /* published elements (bytes for strings) */
    uint64_t chunk_off[FIL_SEG_MAX_CHUNKS]; /* file offset of chunk k */
} fil_seg_t;

/* Why the in-process dump happened. */
typedef enum fil_dump_reason {
    FIL_REASON_NONE = 0,
    FIL_REASON_ALLOC_FAILED = 1, /* an allocator returned NULL / ENOMEM */
    FIL_REASON_PREDICTED = 2,    /* the request would cross the safety margin */
    FIL_REASON_SIGNAL = 3,       /* crash: SIGSEGV, SIGBUS, ... */
} fil_dump_reason_t;

typedef struct fil_oom_info {
    uint32_t dump_state;    /* 0 none, 1 dumping, 2 dumped (files complete) */
    uint32_t reason;        /* fil_dump_reason_t */
    char function[32];      /* "malloc", "mmap", ... (reason 1, 2) */
    uint64_t request;       /* requested bytes */
    uint32_t request_node;  /* node the request came from */
    int32_t signal;         /* reason 3 */
    uint64_t fault_addr;    /* reason 3, when fault_known */
    uint32_t limit_kind;    /* fil_limit_kind_t of the tightest limit */
    uint32_t fault_known;   /* 1: the kernel reported fault_addr (not a sent signal) */
    uint64_t limit_value;   /* that limit's value */
    uint64_t headroom;      /* headroom when detected */
    uint64_t tracked;       /* tracked bytes when detected */
    uint64_t rss;           /* resident set size when detected */
    uint64_t time_ns;       /* CLOCK_REALTIME when detected */
    uint64_t dump_ns;       /* how long writing the dump took */
    uint32_t native_count;
    uint32_t pad2;
    char native[FIL_NATIVE_MAX][FIL_NATIVE_TEXT]; /* "[native] sym+0x1f (lib)" */
} fil_oom_info_t;

/* Signals the supervisor forwards to the program (src/cli/supervise.c) and
 * whose deliveries the program's side notes (src/interpose/sigview.c). */
#define FIL_SIG_WATCHED(s)                                                                         \
    ((s) == SIGINT || (s) == SIGTERM || (s) == SIGHUP || (s) == SIGQUIT || (s) == SIGUSR1 ||      \
     (s) == SIGUSR2)
#define FIL_SIG_RING 32u
/* The signal the program's side sends the supervisor after noting a
 * delivery, so that the supervisor looks at the note at once (forward.c).
 * A real-time one glibc leaves to applications, blocked in the supervisor
 * and never passed on. */
#define FIL_SIG_NOTED (__SIGRTMAX - 2)

/* One delivery of a watched signal to a handler of the program, noted in
 * the handler's trampoline so that the supervisor forwards a signal only if
 * the program did not get it already (a process-group kill reaches both). */
typedef struct fil_sig_event {
    uint32_t seq;  /* 0 while being written, else the event's number (written last) */
    int32_t sig;
    int32_t code;  /* si_code: SI_USER, SI_KERNEL (the terminal), ... */
    int32_t pid;   /* si_pid: the sender (0 from the kernel) */
    uint64_t t_ns; /* CLOCK_MONOTONIC when delivered */
} fil_sig_event_t;

typedef struct fil_sig_log {
    uint32_t next; /* events noted so far; event n lives in ev[n % FIL_SIG_RING] */
    uint32_t pad;
    fil_sig_event_t ev[FIL_SIG_RING];
} fil_sig_log_t;

typedef struct fil_state_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size; /* bytes the writer has sized the file to */
    int32_t pid;
    uint32_t running;   /* FIL_RUNNING_*: 1 after start, 2 when the program
                         * finished normally, 3 if the interpreter was refused */
    char python_version[64];
    uint64_t start_ns;

    fil_seg_t nodes;   /* fil_node_t */
    fil_seg_t bytes;   /* int64_t per node: live bytes now */
    fil_seg_t peak;    /* int64_t per node: live bytes at the last snapshot */
    fil_seg_t funcs;   /* fil_func_t */
    fil_seg_t strings; /* uint32_t length + bytes, never across a chunk end */

    /* Counters; written by the tracker under its lock, one aligned store
     * each, in this order: node bytes, total, peak_total, at_peak. */
    int64_t total;       /* tracked bytes now (= sum of bytes[] once settled) */
    int64_t peak_total;  /* high-water mark of total */
    uint32_t at_peak;    /* 1: total == peak_total and bytes[] is the peak state */
    uint32_t snapshot_busy; /* 1 while peak[] is being copied */
    uint64_t peak_ns;    /* when the peak was reached */
    uint64_t allocations; /* tracked allocation calls */
    uint64_t dropped;    /* allocations that could not be recorded */
    uint64_t stacks_dropped; /* frames/stacks that could not be interned: their
                              * memory is charged to the nearest recorded caller */

    fil_limits_t limits; /* as read at startup */
    uint64_t arena_size; /* emergency arena reserved, bytes */
    uint64_t margin;     /* safety margin used by prediction, bytes */
    uint32_t oom_detection; /* 1 if predictive detection was on */
    uint32_t oom_continue;  /* 1 if --on-oom=continue */
    fil_oom_info_t oom;
    fil_sig_log_t signals; /* written by the program's signal trampoline */

    /* The bytes held when a stop signal last reached a handler of the
     * program (fil_stop_pending): what "the memory held when the program
     * was interrupted" means for a program that then unwinds and frees it
     * before dying of the signal. Copied under the tracker lock before the
     * first decrease after the signal; stop_signal is cleared when a new
     * stop signal arrives and set, last, once stop[] is complete. */
    fil_seg_t stop;         /* int64_t per node, stop.count nodes */
    int64_t stop_total;     /* total at the copy */
    uint32_t stop_signal;   /* N: stop[] holds the bytes as of signal N; 0: none */
    uint32_t stop_pad;
    uint64_t stop_ns;       /* CLOCK_REALTIME of the copy */

    /* The program's own peak resident set at a normal exit (getrusage
     * RUSAGE_SELF, bytes; written by the preload library's destructor), 0
     * if it did not get there: the launcher then has what it sampled. */
    uint64_t exit_peak_rss;

    /* 1 once the program's start-up has decided about SIGUSR2 (usr2.c put
     * its handler in, or left an inherited disposition): until then the
     * launcher holds a SIGUSR2 sent to it instead of killing the program. */
    uint32_t usr2_ready;
    /* Requests for a report on demand the program's SIGUSR2 handler made
     * (usr2.c: incremented, then sent to the launcher with sigqueue and
     * the new count): a request that merges into a SIGUSR2 already
     * pending for the launcher (the same group signal's copy) is still
     * seen, and one seen that way is not taken twice. */
    uint32_t usr2_requests;

    /* The process tree (src/interpose/children.c). How the process ended,
     * as it knew it: exit(status), a return from main, or _exit(status);
     * exited stays 0 for a death by a signal. A child the program started
     * has its own state file and says how it began. */
    uint32_t exited;   /* 1 once exit_code is stored */
    int32_t exit_code; /* the status it exited with (written before exited) */
    uint32_t child_kind; /* FIL_CHILD_*: 0 for the launcher's own program */
    int32_t parent_pid;  /* the process that started it (0: the launcher) */
    /* 1 once the process called exec (a fork child that exec'd another
     * program and allocated nothing is no Python process of the tree). */
    uint32_t execed;
    uint32_t pad_execed;
} fil_state_header_t;

_Static_assert(sizeof(fil_state_header_t) <= FIL_STATE_HEADER_SIZE, "header too big");

/* Values of fil_state_header_t.running. */
#define FIL_RUNNING_STARTED 1u
#define FIL_RUNNING_FINISHED 2u
#define FIL_RUNNING_REFUSED 3u /* no extension for this interpreter: it exited 127 */

/* Values of fil_state_header_t.child_kind. */
#define FIL_CHILD_MAIN 0u /* the program the launcher ran */
#define FIL_CHILD_EXEC 1u /* a Python interpreter started by exec (spawn, subprocess) */
#define FIL_CHILD_FORK 2u /* a fork() of a profiled process that did not exec */

/* Which chunk holds element i, and at which index inside it. */
static inline void fil_seg_locate(uint64_t i, uint32_t *chunk, uint64_t *within) {
    uint64_t q = (i >> FIL_SEG_SHIFT) + 1;
    uint32_t k = 63u - (uint32_t)__builtin_clzll(q);
    *chunk = k;
    *within = i - (((UINT64_C(1) << k) - 1) << FIL_SEG_SHIFT);
}

/* Elements chunk k holds. */
static inline uint64_t fil_seg_chunk_elems(uint32_t k) { return (uint64_t)FIL_SEG_BASE << k; }

#endif
