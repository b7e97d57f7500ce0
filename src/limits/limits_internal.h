/* SPDX-License-Identifier: MIT */
/*
 * limits_internal.h - helpers shared by the files of the limits module.
 *
 * Everything declared here is implemented with raw open/read/close and
 * hand-written parsing, so that fil_limits_read() (startup) and
 * fil_limits_refresh() (SIGNAL CONTEXT) run the very same code. No function
 * here allocates, uses stdio or takes a lock; all buffers belong to the
 * caller and usually live on its stack.
 */
#ifndef FIL_LIMITS_INTERNAL_H
#define FIL_LIMITS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fil/limits.h"

/* Longest path the module builds (root + cgroup_dir + file name). */
#define FIL_LIMITS_PATH_MAX 1024

/* Bytes per page used to convert /proc/self/statm. Written once by
 * fil_limits_read() (from sysconf) before any refresh can run, read-only
 * afterwards, so signal handlers may read it without a lock. */
extern uint64_t fil_limits_page_size;

/* A line assembler over a file descriptor and a caller-owned buffer. A line
 * and its '\n' must fit in cap - 1 bytes (one is kept for the NUL); longer
 * lines are skipped whole. */
typedef struct fil_limits_lines {
    int fd;       /* open descriptor, owned by the reader until close */
    char *buf;    /* caller-owned buffer of cap bytes */
    size_t cap;   /* size of buf; one byte is kept for the terminating NUL */
    size_t start; /* first unconsumed byte in buf */
    size_t end;   /* one past the last byte read into buf */
    int eof;      /* read(2) returned 0 or failed: no more input */
    int skipping; /* inside an over-long line: drop bytes up to its '\n' */
} fil_limits_lines_t;

/* Join up to four strings (NULL counts as "") into out, which must not
 * overlap them. 0, or -1 with out set to "" if the result does not fit in
 * cap bytes. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_path(char *out, size_t cap, const char *a, const char *b, const char *c,
                    const char *d);

/* Read at most cap - 1 bytes of the file at path into buf, NUL-terminated.
 * Returns the byte count, or -1 if the file cannot be opened or read.
 * Context: SIGNAL CONTEXT: stack buffers only. */
long fil_limits_read_small(const char *path, char *buf, size_t cap);

/* Open path for line reading through buf (cap >= 2). 0, or -1.
 * Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_lines_open(fil_limits_lines_t *lr, const char *path, char *buf, size_t cap);

/* Next line, without its '\n' and NUL-terminated inside the buffer (the
 * caller may modify it until the next call). Returns its length and sets
 * *line, or -1 at end of file. Context: SIGNAL CONTEXT: stack buffers only. */
long fil_limits_lines_next(fil_limits_lines_t *lr, char **line);

/* Close the descriptor. Context: SIGNAL CONTEXT. */
void fil_limits_lines_close(fil_limits_lines_t *lr);

/* Parse decimal digits at *p into *out and advance *p past them. 0, or -1
 * (no digit, or the value overflows uint64_t) with *p unchanged.
 * Context: SIGNAL CONTEXT: pure. */
int fil_limits_parse_u64(const char **p, uint64_t *out);

/* Skip spaces and tabs. Context: SIGNAL CONTEXT: pure. */
const char *fil_limits_skip_blanks(const char *p);

/* Parse a limit file's text: optional blanks, then "max" (cgroup v2) or a
 * number, then only whitespace. Values >= FIL_UNLIMITED_MIN become
 * FIL_UNLIMITED. 0, or -1 on junk. Context: SIGNAL CONTEXT: pure. */
int fil_limits_parse_limit(const char *s, uint64_t *out);

/* Read one value (see fil_limits_parse_limit) from root + dir + "/" + name.
 * 0, or -1 if missing or unparsable. Context: SIGNAL CONTEXT: stack only. */
int fil_limits_read_value(const char *root, const char *dir, const char *name, uint64_t *out);

/* The file holding a cgroup's limit or usage for cgroup `version` (1, 2),
 * e.g. "memory.max"; NULL for another version. Context: SIGNAL CONTEXT. */
const char *fil_limits_cgroup_file(int version, int usage);

/* A cgroup's usage minus its inactive file cache (memory.stat), which the
 * kernel reclaims before it OOM-kills. 0, or -1 if the usage is unreadable.
 * Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_cgroup_usage(const char *root, const char *dir, int version, uint64_t *out);

/* /proc/meminfo below root: MemTotal, MemAvailable, SwapFree in bytes. A
 * field not found is left unchanged; NULL pointers are skipped. Returns the
 * number of fields found, or -1 if the file cannot be read.
 * Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_meminfo(const char *root, uint64_t *total, uint64_t *avail,
                            uint64_t *swap_free);

/* /proc/meminfo below root: CommitLimit, Committed_AS and SwapTotal in bytes
 * (what the kernel's overcommit accounting compares a new mapping with). A
 * field not found is left unchanged. Returns the number of fields found, or
 * -1 if the file cannot be read. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_commit(const char *root, uint64_t *commit_limit, uint64_t *committed,
                           uint64_t *swap_total);

/* /proc/self/statm below root: size and data fields, times page_size.
 * 0, or -1 with both unchanged. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_statm(const char *root, uint64_t page_size, uint64_t *vm_size,
                          uint64_t *vm_data);

/* /proc/self/limits below root: the soft "Max address space" and "Max data
 * size" in bytes (FIL_UNLIMITED for "unlimited"), what getrlimit(2) says
 * now. A field not found is left unchanged. Returns the number of fields
 * found, or -1 if the file cannot be read.
 * Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_rlimits(const char *root, uint64_t *as, uint64_t *data);
/* Decode mountinfo octal escapes ("\040" -> ' ') in place. Returns s.
 * Context: any thread, pure. */
char *fil_limits_unescape(char *s);

/* Find the cgroup with the least memory headroom among the process's cgroup
 * and its ancestors (see cgroup.c) and fill cgroup_version, cgroup_limit,
 * cgroup_usage and cgroup_dir. Without a usable memory cgroup they are set to
 * 0, FIL_UNLIMITED, 0, "". Context: any thread (startup; not signal-safe by
 * contract, though it only uses raw calls). */
void fil_limits_read_cgroup(fil_limits_t *l, const char *root);

#endif
