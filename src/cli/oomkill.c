/* SPDX-License-Identifier: MIT */
/*
 * oomkill.c - the kernel OOM-kill counter of the launcher's memory cgroup.
 *
 * Read before fork and after reap: if it grew while the program ran and the
 * program died of SIGKILL, the kernel's OOM killer is the likely culprit,
 * and the report says so. The cgroup comes from /proc/self/cgroup (the child
 * starts in the same one): a cgroup v1 line whose controller list holds
 * "memory" (its counter is `oom_kill N` in memory.oom_control), else the v2
 * line "0::/path" (`oom_kill N` in memory.events, which counts the subtree).
 * Where the hierarchy is mounted comes from /proc/self/mountinfo (hybrid
 * machines mount v2 at /sys/fs/cgroup/unified; containers may mount a
 * sub-tree, whose mount root is stripped from the path); the usual mount
 * points are the fallback. Every path is read below `root` ("" in
 * production) so tests can use a fake tree. Stdio is fine: supervisor only,
 * never signal context.
 */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* One hierarchy the launcher belongs to. */
typedef struct cg_hier {
    int found;           /* the /proc/self/cgroup line was seen */
    char path[PATH_MAX]; /* the cgroup's path in its hierarchy, "/..." */
} cg_hier_t;

/* Does the comma-separated list hold `word`? */
static int list_has(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, word, n) && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Open root + path for reading. NULL if it cannot be opened. */
static FILE *open_under(const char *root, const char *path)
{
    char full[PATH_MAX];

    if ((size_t)snprintf(full, sizeof full, "%s%s", root, path) >= sizeof full)
        return NULL;
    return fopen(full, "re");
}

/*
 * Find the memory v1 and the v2 lines of /proc/self/cgroup. 0, or -1 if the
 * file cannot be read.
 */
static int read_proc_cgroup(const char *root, const char *file, cg_hier_t *v1, cg_hier_t *v2)
{
    char line[PATH_MAX + 256];
    FILE *f = open_under(root, file);

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        char *ctl = strchr(line, ':'), *path = ctl ? strchr(ctl + 1, ':') : NULL;
        cg_hier_t *h;

        if (!path)
            continue;
        *ctl = '\0';
        *path++ = '\0';
        path[strcspn(path, "\n")] = '\0';
        if (!strcmp(line, "0") && ctl[1] == '\0')
            h = v2;
        else if (list_has(ctl + 1, "memory"))
            h = v1;
        else
            continue;
        h->found = 1;
        snprintf(h->path, sizeof h->path, "%s", path);
    }
    fclose(f);
    return 0;
}

/*
 * Is the mountinfo line a mount of the wanted hierarchy (fstype "cgroup2", or
 * "cgroup" with "memory" among its super options)? If so, copy its mount root
 * and mount point. 1 if it is, else 0.
 */
static int parse_mount(const char *line, int v2, char *mroot, char *mpoint)
{
    char fstype[64], opts[512];
    const char *sep = strstr(line, " - ");

    if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", mroot, mpoint) != 2)
        return 0;
    if (sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
        return 0;
    if (v2)
        return !strcmp(fstype, "cgroup2");
    return !strcmp(fstype, "cgroup") && list_has(opts, "memory");
}

/*
 * The directory of cgroup `path` (below root): the first matching mount whose
 * root contains it, else the usual mount point. 0, or -1 if the cgroup is
 * outside every mount of its hierarchy.
 */
static int cgroup_dir(const char *root, int v2, const char *path, char *dir, size_t len)
{
    char line[2 * PATH_MAX], mroot[PATH_MAX], mpoint[PATH_MAX];
    FILE *f = open_under(root, "/proc/self/mountinfo");
    int found = 0;

    while (f && !found && fgets(line, sizeof line, f)) {
        size_t n;

        if (!parse_mount(line, v2, mroot, mpoint))
            continue;
        n = strcmp(mroot, "/") ? strlen(mroot) : 0;
        if (strncmp(path, mroot, n) || (path[n] != '/' && path[n] != '\0'))
            continue;
        found = (size_t)snprintf(dir, len, "%s%s%s", root, mpoint, path + n) < len;
    }
    if (f)
        fclose(f);
    if (found)
        return 0;
    if (f && !v2) /* mountinfo lists no v1 memory hierarchy holding us */
        return -1;
    snprintf(dir, len, "%s%s%s", root, v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", path);
    return 0;
}

/* The value of the `oom_kill N` line of dir/file. 0, or -1 if absent. */
static int read_oom_kill(const char *dir, const char *file, uint64_t *count)
{
    char line[256], key[64];
    uint64_t v;
    int found = -1;
    FILE *f = open_under(dir, file);

    if (!f)
        return -1;
    while (found < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %" SCNu64, key, &v) == 2 && !strcmp(key, "oom_kill"))
            *count = v, found = 0;
    fclose(f);
    return found;
}

/*
 * The OOM-kill count of the launcher's memory cgroup, read below root ("" in
 * production) into *count. 0, or -1 if it cannot be known (no memory cgroup,
 * unreadable files, kernel without the counter). Context: supervisor.
 */
/* The counter of the memory cgroup the cgroup file `file` names: its
 * value into *count and the file holding it into where (if not NULL). */
static int oom_kills(const char *root, const char *file, char *where, size_t len,
                     uint64_t *count)
{
    cg_hier_t v1 = {0}, v2 = {0};
    char dir[PATH_MAX];
    const char *name = NULL;

    if (read_proc_cgroup(root, file, &v1, &v2) != 0)
        return -1;
    if (v1.found && cgroup_dir(root, 0, v1.path, dir, sizeof dir) == 0 &&
        read_oom_kill(dir, "/memory.oom_control", count) == 0)
        name = "/memory.oom_control";
    else if (v2.found && cgroup_dir(root, 1, v2.path, dir, sizeof dir) == 0 &&
             read_oom_kill(dir, "/memory.events", count) == 0)
        name = "/memory.events";
    if (!name)
        return -1;
    if (where && (size_t)snprintf(where, len, "%s%s", dir, name) >= len)
        return -1;
    return 0;
}

int fil_cli_oom_kills(const char *root, uint64_t *count)
{
    return oom_kills(root, "/proc/self/cgroup", NULL, 0, count);
}

/*
 * The OOM-kill count of process pid's memory cgroup into *count, and the
 * file it is read from into where (for fil_cli_oom_kills_dir). 0, or -1.
 * Context: supervisor (the children thread).
 */
int fil_cli_oom_kills_of(pid_t pid, char *where, size_t len, uint64_t *count)
{
    char file[64];

    snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
    return oom_kills("", file, where, len, count);
}

#define TREE_MAX_DIRS 256 /* a bigger v1 subtree: its own counter only */
#define TREE_MAX_DEPTH 8

/* Add the oom_kill counts of the cgroups below dir (v1) to *sum, counting
 * the folders visited in *dirs. 0, or -1 past TREE_MAX_DIRS. */
static int add_below(const char *dir, int depth, unsigned *dirs, uint64_t *sum)
{
    char sub[PATH_MAX];
    uint64_t v;
    struct dirent *e;
    int r = 0;
    DIR *d = depth < TREE_MAX_DEPTH ? opendir(dir) : NULL;

    if (!d)
        return 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        if (++*dirs > TREE_MAX_DIRS) {
            r = -1;
            break;
        }
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= sizeof sub)
            continue;
        if (read_oom_kill(sub, "/memory.oom_control", &v) == 0)
            *sum += v;
        r = add_below(sub, depth + 1, dirs, sum);
    }
    closedir(d);
    return r;
}

/*
 * The count in the file fil_cli_oom_kills_of named. A v2 memory.events
 * counts the cgroup's whole subtree; a v1 memory.oom_control only the
 * cgroup itself, so the counts of the cgroups below it are added (up to
 * TREE_MAX_DIRS of them): a process that moved itself into a child cgroup
 * and was OOM-killed there before the launcher saw the move still shows
 * as a rise. 0, or -1. Context: supervisor (the children thread).
 */
int fil_cli_oom_kills_dir(const char *where, uint64_t *count)
{
    static const char v1[] = "/memory.oom_control";
    char dir[PATH_MAX];
    size_t n = strlen(where), k = sizeof v1 - 1;
    unsigned dirs = 0;
    uint64_t sum;

    if (read_oom_kill("", where, count) != 0)
        return -1;
    if (n <= k || n - k >= sizeof dir || strcmp(where + n - k, v1))
        return 0;
    memcpy(dir, where, n - k);
    dir[n - k] = 0;
    sum = *count;
    if (add_below(dir, 0, &dirs, &sum) == 0)
        *count = sum;
    return 0;
}
