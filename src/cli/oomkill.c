/* SPDX-License-Identifier: MIT */
/*
 * oomkill.c - the kernel OOM-kill counter of the launcher's memory cgroup.
 *
 * Read before fork, by the sampler while the program is alive and not dying
 * (sample.c), and after reap: if it grew after the program was last seen
 * alive and the program died of SIGKILL, the kernel's OOM killer is the
 * likely culprit, and the report says so (a kill before then was of another
 * process of the cgroup, such as a child). The cgroup comes from /proc/self/cgroup (the child
 * starts in the same one): a cgroup v1 line whose controller list holds
 * "memory" (its counter is `oom_kill N` in memory.oom_control), else the v2
 * line "0::/path" (`oom_kill N` in memory.events, which counts the subtree).
 * Where the hierarchy is mounted comes from /proc/self/mountinfo (hybrid
 * machines mount v2 at /sys/fs/cgroup/unified; containers may mount a
 * sub-tree, whose mount root is stripped from the path); the usual mount
 * points are the fallback. Every path is read below `root` ("" in
 * production) so tests can use a fake tree. Stdio is fine: supervisor only,
 * never signal context.
 *
 * For the children (children.c): the counter of a process's own cgroup
 * (fil_cli_oom_kills_of), records of a cgroup's counts with its v1 subtree's
 * and whether a kill came since (fil_cli_oom_tree_*), and whether a process
 * is dying, when a look at its cgroup tells nothing (fil_cli_proc_dying).
 */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define TREE_MAX_DEPTH 8

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
 * file it is read from into where (for fil_cli_oom_tree_read). 0, or -1.
 * Context: supervisor (the children thread).
 */
int fil_cli_oom_kills_of(pid_t pid, char *where, size_t len, uint64_t *count)
{
    char file[64];

    snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
    return oom_kills("", file, where, len, count);
}

/*
 * Per-cgroup records of the OOM-kill counters (fil_cli_oom_tree_t).
 *
 * A v2 memory.events counts the cgroup's whole subtree, and keeps counting
 * the kills of a child cgroup after that child is removed; a v1
 * memory.oom_control counts only the cgroup itself. So on v1 a record holds
 * the count of the cgroup and of each cgroup below it (up to
 * FIL_CLI_OOM_TREE_MAX of them), each under the cgroup's inode, and a rise
 * is judged cgroup by cgroup: a process that moved itself into a child
 * cgroup and was OOM-killed there before the launcher saw the move is still
 * found. The counts are never added up: a sum goes down when some other
 * cgroup of the subtree that had kills is removed (another test run
 * creating and removing its own cgroups beside ours), which hid the kill of
 * ours (the child's row said SIGKILL but not OOM-killed).
 */

/* The inode of directory dir, or 0. */
static uint64_t dir_ino(const char *dir)
{
    struct stat st;

    return stat(dir, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Add (ino, count of dir/memory.oom_control) to t, if it has room. */
static void tree_add(fil_cli_oom_tree_t *t, uint64_t ino, const char *dir)
{
    uint64_t v;

    if (t->n > FIL_CLI_OOM_TREE_MAX) {
        t->complete = 0;
        return;
    }
    if (read_oom_kill(dir, "/memory.oom_control", &v) == 0) {
        t->e[t->n].ino = ino;
        t->e[t->n].count = v;
        t->n++;
    }
}

/* Record the v1 cgroups below dir into t (depth-first, up to
 * TREE_MAX_DEPTH levels). */
static void add_below(const char *dir, int depth, fil_cli_oom_tree_t *t)
{
    char sub[PATH_MAX];
    struct dirent *e;
    DIR *d = depth < TREE_MAX_DEPTH ? opendir(dir) : NULL;

    if (!d) {
        if (depth >= TREE_MAX_DEPTH)
            t->complete = 0;
        return;
    }
    while (t->complete && (e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= sizeof sub)
            continue;
        tree_add(t, (uint64_t)e->d_ino, sub);
        add_below(sub, depth + 1, t);
    }
    closedir(d);
}

/*
 * Read the counter file `where` (as fil_cli_oom_kills_of named it) into t:
 * e[0] is the cgroup itself; on v1 the cgroups below it follow (t->complete
 * clear if some were left out). 0, or -1 if the file cannot be read.
 * Context: supervisor (the children thread).
 */
int fil_cli_oom_tree_read(const char *where, fil_cli_oom_tree_t *t)
{
    static const char v1[] = "/memory.oom_control";
    char dir[PATH_MAX];
    size_t n = strlen(where), k = sizeof v1 - 1;
    const char *slash = strrchr(where, '/');

    t->n = 0;
    t->complete = 1;
    if (!slash || (size_t)(slash - where) >= sizeof dir ||
        read_oom_kill("", where, &t->e[0].count) != 0)
        return -1;
    memcpy(dir, where, (size_t)(slash - where));
    dir[slash - where] = 0;
    t->e[0].ino = dir_ino(dir);
    t->n = 1;
    if (n > k && !strcmp(where + n - k, v1))
        add_below(dir, 0, t);
    return 0;
}

/* then's count for inode ino into *count. 1 if then has it, else 0. */
static int tree_find(const fil_cli_oom_tree_t *then, uint64_t ino, uint64_t *count)
{
    for (uint32_t i = 0; i < then->n; i++)
        if (then->e[i].ino == ino) {
            *count = then->e[i].count;
            return 1;
        }
    return 0;
}

/*
 * Did some cgroup of record `now` have an OOM kill since record `then` (both
 * of the same counter file, by fil_cli_oom_tree_read)? A cgroup in both is
 * compared with itself; one that is not in a complete `then` was made since
 * (or removed and made again: a new inode), so each of its kills is newer
 * than `then`. 1 or 0. Context: any.
 */
int fil_cli_oom_tree_rose(const fil_cli_oom_tree_t *then, const fil_cli_oom_tree_t *now)
{
    for (uint32_t i = 0; i < now->n; i++) {
        uint64_t was;

        if (tree_find(then, now->e[i].ino, &was) ? now->e[i].count > was
                                                  : then->complete && now->e[i].count > 0)
            return 1;
    }
    return 0;
}

#define PF_EXITING_FLAG 0x4u /* task->flags: the task has begun to exit */
/* After the command in /proc/PID/stat: fields 3 (state), 9 (flags) and 31
 * (signal: the pending signals); each %*s skips one field. */
#define SKIP5 " %*s %*s %*s %*s %*s"
#define STAT_FIELDS " %c" SKIP5 " %llu" SKIP5 SKIP5 SKIP5 SKIP5 " %*s %llu"

/*
 * Is process pid dying: gone, a zombie, past the start of its exit (the
 * flags field of /proc/PID/stat), or with SIGKILL pending (its `signal`
 * field)? Read below root ("" in production). 1 if so or if the file cannot
 * be read, else 0.
 *
 * A cgroup v1 hierarchy shows an exiting task in its root cgroup ("/" in
 * /proc/PID/cgroup), so a look at a dying child must not be taken as a
 * move. And the kernel counts an OOM kill before it sends the SIGKILL: a
 * look whose count may already hold the child's own kill shows the child
 * dying when this is read after it. Context: supervisor.
 */
int fil_cli_proc_dying(const char *root, pid_t pid)
{
    char file[64], line[1024];
    unsigned long long flags, pending;
    char state;
    FILE *f;
    const char *rest;
    int n;

    snprintf(file, sizeof file, "/proc/%d/stat", (int)pid);
    f = open_under(root, file);
    if (!f)
        return 1;
    n = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    rest = n ? strrchr(line, ')') : NULL; /* the command may hold spaces and ')' */
    if (!rest || sscanf(rest + 1, STAT_FIELDS, &state, &flags, &pending) != 3)
        return 1;
    return state == 'Z' || state == 'X' || (flags & PF_EXITING_FLAG) ||
           (pending & (1ull << (SIGKILL - 1)));
}
