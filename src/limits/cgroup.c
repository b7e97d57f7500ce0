/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c - finding the memory cgroup that limits this process.
 *
 * Design: /proc/self/cgroup names the process's cgroup in each hierarchy
 * (v1: "N:ctrl,ctrl:/path" with "memory" among the controllers; v2:
 * "0::/path"). /proc/self/mountinfo says where each hierarchy is mounted and
 * which of its directories is the mount's root (not "/" inside a container
 * whose runtime mounts only the container's own subtree). The process's
 * directory is then mount point + (path relative to the mount root). A v1
 * memory hierarchy is preferred; otherwise the v2 one is used if its
 * directory has memory.max (i.e. the memory controller is enabled there).
 *
 * A child cgroup's limit does not tell the whole story: an ancestor may have
 * less room left. So the walk reads every level from the process's own
 * directory up to the mount point and keeps the level with the smallest
 * limit - usage among the limited ones; fil_limits_refresh() later re-reads
 * only that level's usage. Runs once at startup, but with the same raw
 * open/read/close and hand-written parsing as the signal-safe refresh (only
 * string functions are added), and fixed-size stack buffers: over-long
 * mountinfo lines (overlay mounts can have kilobytes of options) are skipped.
 */
#include <string.h>

#include "limits_internal.h"

/* Size of the cgroup path and mount path buffers. */
#define CG_PATH_MAX sizeof(((fil_limits_t *)0)->cgroup_dir)

/* What /proc/self/cgroup says about the process. */
typedef struct cg_self {
    int has_v1;           /* a v1 hierarchy with the memory controller is listed */
    char v1[CG_PATH_MAX]; /* the process's path in it */
    int has_v2;           /* the v2 unified hierarchy is listed */
    char v2[CG_PATH_MAX]; /* the process's path in it */
} cg_self_t;

/* The mount chosen for one hierarchy. */
typedef struct cg_mount {
    int score;               /* 0 none; 1 its root is not an ancestor of our path; 2 it is */
    char root[CG_PATH_MAX];  /* the directory of the hierarchy mounted there */
    char point[CG_PATH_MAX]; /* the mount point */
} cg_mount_t;

/* Copy src into dst; -1 (dst unchanged) if it does not fit. */
static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* 1 if the comma-separated list contains token exactly. */
static int has_token(const char *list, const char *token)
{
    size_t n = strlen(token);

    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, token, n) == 0)
            return 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

/* One line of /proc/self/cgroup ("id:controllers:path"; path may hold ':'). */
static void parse_self_line(char *line, cg_self_t *self)
{
    char *ctrl = strchr(line, ':');
    char *path;

    if (ctrl == NULL)
        return;
    *ctrl++ = '\0';
    path = strchr(ctrl, ':');
    if (path == NULL)
        return;
    *path++ = '\0';
    if (strcmp(line, "0") == 0 && ctrl[0] == '\0') {
        if (!self->has_v2 && copy_str(self->v2, sizeof self->v2, path) == 0)
            self->has_v2 = 1;
    } else if (has_token(ctrl, "memory")) {
        if (!self->has_v1 && copy_str(self->v1, sizeof self->v1, path) == 0)
            self->has_v1 = 1;
    }
}

/* Read <root>/proc/self/cgroup into *self. 0, or -1 if unreadable. */
static int read_self(const char *root, cg_self_t *self)
{
    char path[FIL_LIMITS_PATH_MAX];
    char buf[1024];
    fil_limits_lines_t lr;
    char *line;

    memset(self, 0, sizeof *self);
    if (fil_limits_path(path, sizeof path, root, "/proc/self/cgroup", NULL, NULL) < 0)
        return -1;
    if (fil_limits_lines_open(&lr, path, buf, sizeof buf) < 0)
        return -1;
    while (fil_limits_lines_next(&lr, &line) >= 0)
        parse_self_line(line, self);
    fil_limits_lines_close(&lr);
    return 0;
}

/* See limits_internal.h. Context: any thread, pure. */
char *fil_limits_unescape(char *s)
{
    char *out = s;

    for (const char *p = s; *p != '\0'; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
    return s;
}

/* 2 if the mount root is path or one of its ancestors, else 1. */
static int mount_score(const char *root, const char *path)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0)
        return 2;
    if (strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0'))
        return 2;
    return 1;
}

/* Keep (root, point) for hierarchy *m if it suits our path better. */
static void offer_mount(cg_mount_t *m, const char *root, const char *point, const char *path)
{
    int score = mount_score(root, path);

    if (score <= m->score || strlen(root) >= sizeof m->root || strlen(point) >= sizeof m->point)
        return;
    m->score = score;
    copy_str(m->root, sizeof m->root, root);
    copy_str(m->point, sizeof m->point, point);
}

/* Split line at spaces into at most max fields; returns the count. */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;

    for (char *p = line; *p != '\0' && n < max;) {
        f[n++] = p;
        while (*p != '\0' && *p != ' ')
            p++;
        if (*p == ' ')
            *p++ = '\0';
    }
    return n;
}

/* One mountinfo line: "id parent maj:min root point opts [optional...] -
 * fstype source superopts". Offers cgroup mounts to *m1 / *m2. */
static void parse_mount_line(char *line, const cg_self_t *self, cg_mount_t *m1, cg_mount_t *m2)
{
    char *f[64];
    int n = split_fields(line, f, 64);
    int sep = 6;

    while (sep < n && strcmp(f[sep], "-") != 0)
        sep++;
    if (sep + 3 >= n)
        return;
    fil_limits_unescape(f[3]);
    fil_limits_unescape(f[4]);
    if (self->has_v1 && strcmp(f[sep + 1], "cgroup") == 0 && has_token(f[sep + 3], "memory"))
        offer_mount(m1, f[3], f[4], self->v1);
    else if (self->has_v2 && strcmp(f[sep + 1], "cgroup2") == 0)
        offer_mount(m2, f[3], f[4], self->v2);
}

/* Scan <root>/proc/self/mountinfo for the mounts of our hierarchies. */
static void read_mounts(const char *root, const cg_self_t *self, cg_mount_t *m1, cg_mount_t *m2)
{
    char path[FIL_LIMITS_PATH_MAX];
    char buf[4096];
    fil_limits_lines_t lr;
    char *line;

    m1->score = m2->score = 0;
    if (fil_limits_path(path, sizeof path, root, "/proc/self/mountinfo", NULL, NULL) < 0)
        return;
    if (fil_limits_lines_open(&lr, path, buf, sizeof buf) < 0)
        return;
    while (fil_limits_lines_next(&lr, &line) >= 0)
        parse_mount_line(line, self, m1, m2);
    fil_limits_lines_close(&lr);
}

/* The directory of cgroup `path` under mount *m, into out (CG_PATH_MAX
 * bytes), without a trailing '/'. When the mount's root is not an ancestor
 * of path (odd namespaces), the mount point itself is the best guess.
 * Returns the length of the mount point prefix (where the walk stops), or -1
 * if it does not fit. */
static long cgroup_dir(const cg_mount_t *m, const char *path, char *out)
{
    const char *rel = "";
    size_t len, stop = strlen(m->point);

    if (m->score == 2)
        rel = strcmp(m->root, "/") == 0 ? path : path + strlen(m->root);
    if (fil_limits_path(out, CG_PATH_MAX, m->point, rel, NULL, NULL) < 0)
        return -1;
    len = strlen(out);
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
    if (stop > len)
        stop = len;
    return (long)stop;
}

/* Where the walk is: which level has the least room so far. */
typedef struct cg_walk {
    int readable;  /* some level's limit file was read */
    int limited;   /* some level had a limit */
    uint64_t room; /* limit - usage of the best limited level */
} cg_walk_t;

/* Record level dir into *l if it is the first readable one or the tightest. */
static void walk_level(fil_limits_t *l, const char *root, int version, const char *dir,
                       cg_walk_t *w)
{
    uint64_t limit, usage = 0, room;

    if (fil_limits_read_value(root, dir, fil_limits_cgroup_file(version, 0), &limit) < 0)
        return;
    if (limit >= FIL_UNLIMITED_MIN && w->readable)
        return;
    fil_limits_cgroup_usage(root, dir, version, &usage);
    room = limit > usage ? limit - usage : 0;
    if (limit < FIL_UNLIMITED_MIN && w->limited && room >= w->room)
        return;
    if (limit < FIL_UNLIMITED_MIN) {
        w->limited = 1;
        w->room = room;
    }
    w->readable = 1;
    l->cgroup_version = version;
    l->cgroup_limit = limit;
    l->cgroup_usage = usage;
    copy_str(l->cgroup_dir, sizeof l->cgroup_dir, dir);
}

/* Walk from dir (modified) up to its first `stop` bytes, the mount point.
 * Returns 1 if some level was readable (and *l was filled), else 0. */
static int walk(fil_limits_t *l, const char *root, int version, char *dir, size_t stop)
{
    cg_walk_t w = {0, 0, FIL_UNLIMITED};
    size_t len = strlen(dir);

    for (;;) {
        walk_level(l, root, version, dir, &w);
        if (len <= stop)
            break;
        while (len > stop && dir[len - 1] != '/')
            len--;
        if (len > stop)
            len--; /* the '/' itself */
        dir[len] = '\0';
    }
    return w.readable;
}

/* See limits_internal.h. Context: any thread (startup). */
void fil_limits_read_cgroup(fil_limits_t *l, const char *root)
{
    cg_self_t self;
    cg_mount_t m1, m2;
    char dir[CG_PATH_MAX];
    uint64_t max;
    long stop;

    l->cgroup_version = 0;
    l->cgroup_limit = FIL_UNLIMITED;
    l->cgroup_usage = 0;
    l->cgroup_dir[0] = '\0';
    if (read_self(root, &self) < 0)
        return;
    read_mounts(root, &self, &m1, &m2);
    if (self.has_v1 && m1.score > 0 && (stop = cgroup_dir(&m1, self.v1, dir)) >= 0 &&
        walk(l, root, 1, dir, (size_t)stop))
        return;
    if (self.has_v2 && m2.score > 0 && (stop = cgroup_dir(&m2, self.v2, dir)) >= 0 &&
        fil_limits_read_value(root, dir, "memory.max", &max) == 0)
        walk(l, root, 2, dir, (size_t)stop);
}
