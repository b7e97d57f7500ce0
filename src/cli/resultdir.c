/* SPDX-License-Identifier: MIT */
/*
 * resultdir.c - the result folder DIR/<YYYY-MM-DDTHH-MM-SS_mmm> and the
 * DIR/latest link.
 *
 * DIR is created like `mkdir -p`. The folder is named after the local time
 * with milliseconds and created with a plain mkdir, so two runs never share
 * one: on EEXIST we wait a millisecond and take the next name. DIR/latest is
 * a relative symlink to the folder name, replaced atomically (a temporary
 * symlink renamed over it). Nothing the user had is deleted or overwritten:
 * if DIR/latest exists and is not a symlink, or is a symlink to anything but
 * one of our folders, it is left alone, and a temporary link is never
 * created over an existing name. Supervisor only.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Attempts at a fresh folder name (1 ms apart) before giving up. */
#define NAME_ATTEMPTS 5000

/*
 * The folder name for time ts in local time: "2026-11-21T10-00-00_123".
 * 0, or -1 if buf is too small.
 */
int fil_cli_timestamp_name(const struct timespec *ts, char *buf, size_t len)
{
    struct tm tm;
    size_t n;
    int r;

    if (!localtime_r(&ts->tv_sec, &tm))
        return -1;
    n = strftime(buf, len, "%Y-%m-%dT%H-%M-%S", &tm);
    if (n == 0)
        return -1;
    r = snprintf(buf + n, len - n, "_%03ld", (long)(ts->tv_nsec / 1000000));
    return r < 0 || (size_t)r >= len - n ? -1 : 0;
}

/* Is path an existing directory (following symlinks)? */
static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The reason mkdir(path) failed with errno e, path not being a directory,
 * into err. Returns -1.
 */
static int mkdir_failed(const char *path, int e, char *err, size_t errlen)
{
    struct stat st;

    if (e != EEXIST)
        return fil_cli_msgf(err, errlen, "cannot create folder '%s': %s", path, strerror(e));
    if (stat(path, &st) != 0) {
        e = errno;
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            return e == ENOENT
                       ? fil_cli_msgf(err, errlen, "'%s' is a symbolic link to a missing folder", path)
                       : fil_cli_msgf(err, errlen, "cannot follow the symbolic link '%s': %s", path,
                              strerror(e));
    }
    return fil_cli_msgf(err, errlen, "'%s' exists and is not a directory", path);
}

/*
 * Create dir and its missing parents (mode 0777 less the umask). 0 once dir
 * is a directory, or -1 with a one-line reason in err (e.g. a component
 * exists and is not a directory).
 */
int fil_cli_mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof path)
        return fil_cli_msgf(err, errlen, "invalid output folder '%s'", dir);
    memcpy(path, dir, len + 1);
    for (size_t k = 1; k <= len; k++) {
        if (path[k] != '/' && path[k] != '\0')
            continue;
        path[k] = '\0';
        if (mkdir(path, 0777) != 0) {
            int e = errno; /* before is_dir()'s stat() replaces it */

            if (!is_dir(path))
                return mkdir_failed(path, e, err, errlen);
        }
        path[k] = dir[k];
    }
    return 0;
}

/*
 * Create dir (with parents) and a fresh timestamp-named folder in it; its
 * name goes to name. 0, or -1 with a reason in err.
 */
int fil_cli_make_result_dir(const char *dir, char *name, size_t namelen, char *err, size_t errlen)
{
    char path[PATH_MAX];
    const struct timespec ms = {0, 1000000};

    if (fil_cli_mkdir_p(dir, err, errlen) != 0)
        return -1;
    for (int attempt = 0; attempt < NAME_ATTEMPTS; attempt++) {
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        if (fil_cli_timestamp_name(&now, name, namelen) != 0)
            return fil_cli_msgf(err, errlen, "cannot format the result folder name");
        if (!fil_cli_join(dir, name, path, sizeof path))
            return fil_cli_msgf(err, errlen, "output folder path too long: '%s'", dir);
        if (mkdir(path, 0777) == 0)
            return 0;
        if (errno != EEXIST)
            return fil_cli_msgf(err, errlen, "cannot create folder '%s': %s", path, strerror(errno));
        nanosleep(&ms, NULL);
    }
    return fil_cli_msgf(err, errlen, "cannot find a free folder name in '%s'", dir);
}

/*
 * Create a new symlink to `name` under a temporary name in dir, never over an
 * existing file; its path goes to tmp. 0, or -1 with errno set.
 */
static int make_temp_link(const char *dir, const char *name, char *tmp, size_t tmplen)
{
    for (int k = 0; k < 1000; k++) {
        if ((size_t)snprintf(tmp, tmplen, "%s/.latest-%ld-%d", dir, (long)getpid(), k) >= tmplen) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (symlink(name, tmp) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

/* 1 if a symlink's target is one of our folder names (YYYY-MM-DDTHH-MM-SS_
 * and digits, in the same folder): a `latest` we made. */
static int our_target(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd-dd-dd_";
    size_t i;

    for (i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i])
            return 0;
    }
    if (!t[i])
        return 0;
    for (; t[i]; i++) {
        if (!(t[i] >= '0' && t[i] <= '9'))
            return 0;
    }
    return 1;
}

/*
 * Point dir/latest at the folder `name` (a relative symlink), atomically.
 * Returns 0 if updated; 1 if dir/latest exists and is not a symlink, or is
 * a symlink of the user's own (to anything but one of our folders): left
 * alone, warning in warn; -1 if it could not be updated (warning in warn).
 */
int fil_cli_update_latest(const char *dir, const char *name, char *warn, size_t warnlen)
{
    char link[PATH_MAX], tmp[PATH_MAX], target[PATH_MAX];
    struct stat st;
    ssize_t n;
    int e;

    if (!fil_cli_join(dir, "latest", link, sizeof link))
        return fil_cli_msgf(warn, warnlen, "cannot update '%s/latest': path too long", dir);
    if (lstat(link, &st) == 0) {
        if (!S_ISLNK(st.st_mode)) {
            fil_cli_msgf(warn, warnlen, "'%s' exists and is not a symbolic link; not updating it",
                         link);
            return 1;
        }
        n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        if (n >= 0 && !our_target(target)) {
            fil_cli_msgf(warn, warnlen,
                         "'%s' is a symbolic link of your own (to '%s'); not updating it", link,
                         target);
            return 1;
        }
    }
    if (make_temp_link(dir, name, tmp, sizeof tmp) != 0)
        return fil_cli_msgf(warn, warnlen, "cannot update '%s': %s", link, strerror(errno));
    if (rename(tmp, link) != 0) {
        e = errno;
        unlink(tmp);
        return fil_cli_msgf(warn, warnlen, "cannot update '%s': %s", link, strerror(e));
    }
    return 0;
}

/*
 * The output folder as the user typed it, trailing slashes removed ("/" stays
 * "/"), into buf. Used both to build paths and to print them.
 */
void fil_cli_trim_dir(const char *output, char *buf, size_t len)
{
    size_t n = strlen(output);

    while (n > 1 && output[n - 1] == '/')
        n--;
    snprintf(buf, len, "%.*s", (int)n, output);
}

/*
 * "<dir>/<name>" for a trimmed dir, without doubling the slash of "/", into
 * buf. Returns 1, or 0 if it did not fit.
 */
int fil_cli_join(const char *dir, const char *name, char *buf, size_t len)
{
    int r = snprintf(buf, len, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);

    return r >= 0 && (size_t)r < len;
}
