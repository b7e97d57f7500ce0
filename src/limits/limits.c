/* SPDX-License-Identifier: MIT */
/*
 * limits.c - reading every memory limit once, at startup.
 *
 * Design: fil_limits_read() gathers the static limits (soft RLIMIT_AS and
 * RLIMIT_DATA, MemTotal, the tightest memory cgroup) and a first sample of
 * the moving figures, which fil_limits_refresh() (refresh.c) updates later
 * from signal context. It is not signal-safe itself only because of
 * getrlimit() and sysconf(); the files are read with the same raw code as
 * the refresh, so both parse /proc identically. The page size is captured
 * here, once, into fil_limits_page_size so that the refresh needs no sysconf.
 */
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "limits_internal.h"

/* Soft limit of resource `res` in bytes, FIL_UNLIMITED if none or unknown. */
static uint64_t soft_rlimit(int res)
{
    struct rlimit rl;

    if (getrlimit(res, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return FIL_UNLIMITED;
    if ((uint64_t)rl.rlim_cur >= FIL_UNLIMITED_MIN)
        return FIL_UNLIMITED;
    return (uint64_t)rl.rlim_cur;
}

/* Read everything into *l; see fil/limits.h. Missing files leave their
 * fields at 0 (sizes) or FIL_UNLIMITED (limits). Always 0.
 * Context: any thread, at startup (not signal-safe: getrlimit, sysconf). */
int fil_limits_read(fil_limits_t *l, const char *root)
{
    long page = sysconf(_SC_PAGESIZE);

    if (root == NULL)
        root = "";
    if (page > 0)
        fil_limits_page_size = (uint64_t)page;
    memset(l, 0, sizeof *l);
    l->rlimit_as = soft_rlimit(RLIMIT_AS);
    l->rlimit_data = soft_rlimit(RLIMIT_DATA);
    fil_limits_read_meminfo(root, &l->mem_total, &l->mem_available, &l->swap_free);
    fil_limits_read_statm(root, fil_limits_page_size, &l->vm_size, &l->vm_data);
    fil_limits_read_cgroup(l, root);
    return 0;
}
