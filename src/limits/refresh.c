/* SPDX-License-Identifier: MIT */
/*
 * refresh.c - re-reading the values that change, and computing headroom.
 *
 * SIGNAL-SAFE FILE: checked by scripts/check-signal-safety.
 * Allowed calls: none directly; open, read, close through rawio.c.
 *
 * Design: fil_limits_read() (limits.c) fills a fil_limits_t once at startup;
 * afterwards the out-of-memory path calls fil_limits_refresh() from whatever
 * context it is in (possibly a signal handler, possibly a thread interrupted
 * inside malloc) to update the moving figures: MemAvailable, SwapFree, the
 * chosen cgroup's usage, the process's own size, and its soft RLIMIT_AS and
 * RLIMIT_DATA (a program may set its own with setrlimit, lowering them or
 * raising them up to the hard limit, after startup). It only opens the
 * files whose names were settled at startup, reads them into stack buffers
 * and parses them by hand. The static limits (MemTotal, the cgroup's limit
 * and directory) are never changed here, and every caller refreshes a copy
 * of its own, so a refresh racing with a reader of the same struct can only
 * make a figure slightly stale.
 */
#include <string.h>

#include "limits_internal.h"

/* See limits_internal.h: set by fil_limits_read(), then read-only. The
 * initial value serves a refresh on a struct not filled by fil_limits_read. */
uint64_t fil_limits_page_size = 4096;

/* See limits_internal.h. Context: SIGNAL CONTEXT. */
const char *fil_limits_cgroup_file(int version, int usage)
{
    if (version == 1)
        return usage ? "memory.usage_in_bytes" : "memory.limit_in_bytes";
    if (version == 2)
        return usage ? "memory.current" : "memory.max";
    return NULL;
}

/* If line is "<key>: <number> [kB]" store the number in bytes into *out
 * (when out is non-NULL) and return 1; 0 for another key or junk. */
static int meminfo_field(const char *line, const char *key, uint64_t *out)
{
    const char *p = line;
    uint64_t v;

    for (; *key != '\0'; key++, p++)
        if (*p != *key)
            return 0;
    if (*p++ != ':')
        return 0;
    p = fil_limits_skip_blanks(p);
    if (fil_limits_parse_u64(&p, &v) < 0)
        return 0;
    p = fil_limits_skip_blanks(p);
    if (p[0] == 'k' && p[1] == 'B') {
        if (v > UINT64_MAX / 1024)
            return 0;
        v *= 1024;
    }
    if (out != NULL)
        *out = v;
    return 1;
}

/* Read the three meminfo fields named keys[0..2] into out[0..2] (NULL
 * entries are skipped; fields not found are left unchanged). The number of
 * fields found, or -1 if the file cannot be read.
 * Context: SIGNAL CONTEXT: stack buffers only. */
static int read_meminfo3(const char *root, const char *const keys[3], uint64_t *out[3])
{
    char path[FIL_LIMITS_PATH_MAX];
    char buf[512];
    fil_limits_lines_t lr;
    char *line;
    int found = 0;

    if (fil_limits_path(path, sizeof path, root, "/proc/meminfo", NULL, NULL) < 0)
        return -1;
    if (fil_limits_lines_open(&lr, path, buf, sizeof buf) < 0)
        return -1;
    while (found < 3 && fil_limits_lines_next(&lr, &line) >= 0)
        for (int k = 0; k < 3; k++)
            found += meminfo_field(line, keys[k], out[k]);
    fil_limits_lines_close(&lr);
    return found;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_meminfo(const char *root, uint64_t *total, uint64_t *avail,
                            uint64_t *swap_free)
{
    static const char *const keys[3] = {"MemTotal", "MemAvailable", "SwapFree"};
    uint64_t *out[3] = {total, avail, swap_free};

    return read_meminfo3(root, keys, out);
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_commit(const char *root, uint64_t *commit_limit, uint64_t *committed,
                           uint64_t *swap_total)
{
    static const char *const keys[3] = {"CommitLimit", "Committed_AS", "SwapTotal"};
    uint64_t *out[3] = {commit_limit, committed, swap_total};

    return read_meminfo3(root, keys, out);
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_statm(const char *root, uint64_t page_size, uint64_t *vm_size,
                          uint64_t *vm_data)
{
    char path[FIL_LIMITS_PATH_MAX];
    char text[256];
    uint64_t field[6];
    const char *p = text;

    if (fil_limits_path(path, sizeof path, root, "/proc/self/statm", NULL, NULL) < 0)
        return -1;
    if (page_size == 0 || fil_limits_read_small(path, text, sizeof text) < 0)
        return -1;
    /* size resident shared text lib data dt, in pages */
    for (int i = 0; i < 6; i++) {
        p = fil_limits_skip_blanks(p);
        if (fil_limits_parse_u64(&p, &field[i]) < 0)
            return -1;
    }
    if (field[0] > UINT64_MAX / page_size || field[5] > UINT64_MAX / page_size)
        return -1;
    *vm_size = field[0] * page_size;
    *vm_data = field[5] * page_size;
    return 0;
}

/* The soft limit at p, after a /proc/self/limits line's name: blanks, then
 * "unlimited" or a number of bytes (values >= FIL_UNLIMITED_MIN become
 * FIL_UNLIMITED). 0, or -1 on junk. Context: SIGNAL CONTEXT: pure. */
static int soft_limit_of(const char *p, uint64_t *out)
{
    uint64_t v;

    p = fil_limits_skip_blanks(p);
    if (strncmp(p, "unlimited", 9) == 0) {
        *out = FIL_UNLIMITED;
        return 0;
    }
    if (fil_limits_parse_u64(&p, &v) < 0)
        return -1;
    *out = v >= FIL_UNLIMITED_MIN ? FIL_UNLIMITED : v;
    return 0;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_rlimits(const char *root, uint64_t *as, uint64_t *data)
{
    static const char as_name[] = "Max address space", data_name[] = "Max data size";
    char path[FIL_LIMITS_PATH_MAX];
    char buf[256];
    fil_limits_lines_t lr;
    char *line;
    int found = 0;

    if (fil_limits_path(path, sizeof path, root, "/proc/self/limits", NULL, NULL) < 0 ||
        fil_limits_lines_open(&lr, path, buf, sizeof buf) < 0)
        return -1;
    while (found < 2 && fil_limits_lines_next(&lr, &line) >= 0) {
        if (strncmp(line, as_name, sizeof as_name - 1) == 0)
            found += soft_limit_of(line + sizeof as_name - 1, as) == 0;
        else if (strncmp(line, data_name, sizeof data_name - 1) == 0)
            found += soft_limit_of(line + sizeof data_name - 1, data) == 0;
    }
    fil_limits_lines_close(&lr);
    return found;
}

/* Bytes of inactive file cache charged to cgroup dir (v1 memory.stat
 * "total_inactive_file", v2 "inactive_file"); 0 if unreadable.
 * Context: SIGNAL CONTEXT: stack buffers only. */
static uint64_t inactive_file(const char *root, const char *dir, int version)
{
    char path[FIL_LIMITS_PATH_MAX], buf[256], *line;
    const char *want = version == 1 ? "total_inactive_file " : "inactive_file ";
    size_t n = version == 1 ? 20 : 14;
    uint64_t v = 0;
    fil_limits_lines_t lr;

    if (fil_limits_path(path, sizeof path, root, dir, "/", "memory.stat") != 0 ||
        fil_limits_lines_open(&lr, path, buf, sizeof buf) != 0)
        return 0;
    while (fil_limits_lines_next(&lr, &line) >= 0) {
        if (strncmp(line, want, n) == 0) { /* a line may be shorter than want */
            const char *p = line + n;
            if (fil_limits_parse_u64(&p, &v) != 0)
                v = 0;
            break;
        }
    }
    fil_limits_lines_close(&lr);
    return v;
}

/* Usage of cgroup dir that cannot be reclaimed without a fight: the usage
 * file minus inactive file cache, which the kernel drops before it OOM-kills
 * (a program reading big files would otherwise look close to its limit).
 * 0, or -1 if the usage file cannot be read. Context: SIGNAL CONTEXT. */
int fil_limits_cgroup_usage(const char *root, const char *dir, int version, uint64_t *out)
{
    uint64_t usage;
    if (fil_limits_read_value(root, dir, fil_limits_cgroup_file(version, 1), &usage) != 0)
        return -1;
    uint64_t cache = inactive_file(root, dir, version);
    *out = usage > cache ? usage - cache : 0;
    return 0;
}

/* Re-read mem_available, swap_free, cgroup_usage, vm_size, vm_data,
 * rlimit_as and rlimit_data; the rest of *l is left alone. 0 if at least one
 * source could be read, else -1.
 * Context: SIGNAL CONTEXT: stack buffers only, no locks. */
int fil_limits_refresh(fil_limits_t *l, const char *root)
{
    int ok = 0;

    if (fil_limits_read_rlimits(root, &l->rlimit_as, &l->rlimit_data) > 0)
        ok = 1;
    if (fil_limits_read_meminfo(root, NULL, &l->mem_available, &l->swap_free) > 0)
        ok = 1;
    if (fil_limits_read_statm(root, fil_limits_page_size, &l->vm_size, &l->vm_data) == 0)
        ok = 1;
    if (l->cgroup_version && l->cgroup_dir[0] != '\0' &&
        fil_limits_cgroup_usage(root, l->cgroup_dir, l->cgroup_version, &l->cgroup_usage) == 0)
        ok = 1;
    return ok ? 0 : -1;
}

/* limit - used, or 0 when used exceeds limit. */
static uint64_t room(uint64_t limit, uint64_t used)
{
    return limit > used ? limit - used : 0;
}

/* Take (kind, limit, headroom) as the best so far if it is strictly tighter. */
static void consider(fil_limit_kind_t kind, uint64_t limit, uint64_t head,
                     fil_limit_kind_t *best_kind, uint64_t *best_limit, uint64_t *best_head)
{
    if (*best_kind != FIL_LIMIT_NONE && head >= *best_head)
        return;
    *best_kind = kind;
    *best_limit = limit;
    *best_head = head;
}

/* See fil/limits.h. For FIL_LIMIT_SYSTEM, *limit is mem_available + swap_free
 * (the memory the kernel can still hand out); the system limit only counts
 * when /proc/meminfo was read (mem_total > 0). Ties go to the first of
 * RLIMIT_AS, RLIMIT_DATA, cgroup, system. Context: SIGNAL CONTEXT: pure. */
uint64_t fil_limits_headroom(const fil_limits_t *l, fil_limit_kind_t *kind, uint64_t *limit)
{
    fil_limit_kind_t k = FIL_LIMIT_NONE;
    uint64_t lim = FIL_UNLIMITED, head = FIL_UNLIMITED;

    if (l->rlimit_as < FIL_UNLIMITED_MIN)
        consider(FIL_LIMIT_RLIMIT_AS, l->rlimit_as, room(l->rlimit_as, l->vm_size), &k, &lim,
                 &head);
    if (l->rlimit_data < FIL_UNLIMITED_MIN)
        consider(FIL_LIMIT_RLIMIT_DATA, l->rlimit_data, room(l->rlimit_data, l->vm_data), &k,
                 &lim, &head);
    if (l->cgroup_version != 0 && l->cgroup_limit < FIL_UNLIMITED_MIN)
        consider(FIL_LIMIT_CGROUP, l->cgroup_limit, room(l->cgroup_limit, l->cgroup_usage), &k,
                 &lim, &head);
    if (l->mem_total > 0) {
        uint64_t sys = l->mem_available + l->swap_free;
        if (sys < l->mem_available)
            sys = FIL_UNLIMITED - 1; /* absurd overflow: saturate */
        consider(FIL_LIMIT_SYSTEM, sys, sys, &k, &lim, &head);
    }
    if (kind != NULL)
        *kind = k;
    if (limit != NULL)
        *limit = lim;
    return head;
}

/* See fil/limits.h. Context: SIGNAL CONTEXT: pure. */
const char *fil_limit_kind_name(fil_limit_kind_t kind)
{
    switch (kind) {
    case FIL_LIMIT_RLIMIT_AS:
        return "RLIMIT_AS";
    case FIL_LIMIT_RLIMIT_DATA:
        return "RLIMIT_DATA";
    case FIL_LIMIT_CGROUP:
        return "cgroup";
    case FIL_LIMIT_SYSTEM:
        return "MemAvailable";
    case FIL_LIMIT_NONE:
        break;
    }
    return "none";
}
