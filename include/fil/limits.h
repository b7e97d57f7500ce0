/* SPDX-License-Identifier: MIT */
/*
 * fil/limits.h - the memory limits a process runs under, and its headroom.
 *
 * fil_limits_read() runs once at startup (it may be slow: it parses
 * mountinfo and walks the cgroup hierarchy). fil_limits_refresh() re-reads
 * only the values that change (MemAvailable, SwapFree, cgroup usage, the
 * process's own address-space size) and is SIGNAL CONTEXT safe: raw
 * open/read/close into stack buffers, no malloc, no stdio.
 *
 * Every path is read below `root` ("" in production; tests build a fake tree
 * with proc/ and sys/fs/cgroup/ and pass its directory).
 */
#ifndef FIL_LIMITS_H
#define FIL_LIMITS_H

#include <stdint.h>

#include "fil/common.h"
#include "fil/report.h"

typedef enum fil_limit_kind {
    FIL_LIMIT_NONE = 0,
    FIL_LIMIT_RLIMIT_AS,
    FIL_LIMIT_RLIMIT_DATA,
    FIL_LIMIT_CGROUP,
    FIL_LIMIT_SYSTEM, /* MemAvailable + SwapFree */
} fil_limit_kind_t;

typedef struct fil_limits {
    uint64_t rlimit_as;     /* soft RLIMIT_AS in bytes, FIL_UNLIMITED if none */
    uint64_t rlimit_data;   /* soft RLIMIT_DATA in bytes, FIL_UNLIMITED if none */
    uint64_t mem_total;     /* /proc/meminfo MemTotal, bytes (0 if unreadable) */
    uint64_t mem_available; /* MemAvailable, bytes */
    uint64_t swap_free;     /* SwapFree, bytes */
    int cgroup_version;     /* 1 or 2 for the cgroup holding cgroup_limit; 0 none */
    uint64_t cgroup_limit;  /* tightest ancestor's memory limit, FIL_UNLIMITED if none */
    uint64_t cgroup_usage;  /* that cgroup's usage minus inactive file cache, bytes */
    char cgroup_dir[512];   /* directory (below root) of that cgroup, "" if none */
    uint64_t vm_size;       /* this process's address-space size (statm), bytes */
    uint64_t vm_data;       /* this process's data+stack size (statm), bytes */
} fil_limits_t;

/* Read everything. Missing files leave their fields at "unlimited"/0.
 * 0 always (a machine without /proc still gets rlimits). */
int fil_limits_read(fil_limits_t *l, const char *root);

/* Re-read mem_available, swap_free, cgroup_usage, vm_size, vm_data and the
 * soft rlimit_as and rlimit_data (/proc/self/limits: the program may have
 * changed its own). SIGNAL CONTEXT safe. 0, or -1 if nothing could be read. */
int fil_limits_refresh(fil_limits_t *l, const char *root);

/* Smallest headroom over all limits, in bytes (FIL_UNLIMITED if none):
 *   RLIMIT_AS: rlimit_as - vm_size;  RLIMIT_DATA: rlimit_data - vm_data;
 *   cgroup: cgroup_limit - cgroup_usage;  system: mem_available + swap_free.
 * (A negative difference is 0.) *kind and *limit (the limit's own value,
 * e.g. rlimit_as) describe the tightest one; either pointer may be NULL. */
uint64_t fil_limits_headroom(const fil_limits_t *l, fil_limit_kind_t *kind, uint64_t *limit);

/* "RLIMIT_AS", "RLIMIT_DATA", "cgroup", "MemAvailable", "none". */
const char *fil_limit_kind_name(fil_limit_kind_t kind);

/* The limits as a JSON object (unlimited values as null), e.g.
 * {"rlimit_as": 2048000000, "rlimit_data": null, "mem_total": ...,
 *  "mem_available": ..., "swap_free": ..., "cgroup_version": 1,
 *  "cgroup_limit": null, "cgroup_usage": ..., "cgroup_dir": "...",
 *  "vm_size": ..., "tightest": "RLIMIT_AS", "headroom": ...} */
void fil_limits_write_json(const fil_limits_t *l, fil_writer_t *w);

/* Parse "2G", "512M", "1.5GiB", "100000k", "123" (bytes) -> bytes. K/M/G/T
 * are powers of 1024, with or without "iB"/"B". 0, or -1 on bad input. */
int fil_parse_size(const char *s, uint64_t *out);

#endif
