/* SPDX-License-Identifier: MIT */
/*
 * preload.c - a path to the preload library that LD_PRELOAD can carry.
 *
 * The dynamic loader splits LD_PRELOAD at spaces and colons, so a library
 * installed under "/home/Jane Doe/.local" or "/opt/a:b" cannot be named
 * there: the program would run unprofiled. Such a library is reached
 * through a symbolic link of ours instead,
 * <base>/fil-profile-<euid>/<hash of the library path>/libfilpreload.so,
 * where <base> is the first of $XDG_RUNTIME_DIR, $TMPDIR and /tmp that is
 * an absolute folder path without those characters and where the link can
 * be made. Both folders are made 0700 and must be ours and writable by no
 * one else (a folder another user made in /tmp is never used: the next
 * base is tried), and the link is replaced
 * atomically when it points elsewhere. The link stays for the next run and
 * for the processes the program leaves behind. Supervisor only.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Characters the loader splits LD_PRELOAD at. */
#define PRELOAD_SEPARATORS " :"

/* Is s an absolute path LD_PRELOAD can carry? */
static int carriable(const char *s)
{
    return s && s[0] == '/' && s[strcspn(s, PRELOAD_SEPARATORS)] == '\0';
}

/*
 * Make dir (mode 0700) if missing and check it is a real folder of ours
 * that no one else may write. 0, or -1 with the reason in err.
 */
static int own_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fil_cli_msgf(err, errlen, "cannot create folder '%s': %s", dir, strerror(errno));
    if (lstat(dir, &st) != 0)
        return fil_cli_msgf(err, errlen, "cannot use folder '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        return fil_cli_msgf(err, errlen,
                    "'%s' is not a folder of this user's that only it can write; not using it",
                    dir);
    return 0;
}

/* FNV-1a of s: names the folder of one installation's link. */
static uint64_t path_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Does the symbolic link at path point at target? */
static int links_to(const char *path, const char *target)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);

    if (n < 0)
        return 0;
    buf[n] = '\0';
    return strcmp(buf, target) == 0;
}

/*
 * The link to lib under base (see the file comment) into out, made or
 * fixed as needed. 0, or -1 with a one-line reason in err.
 */
static int link_under(const char *base, const char *lib, char *out, size_t len, char *err,
                      size_t errlen)
{
    char dir[PATH_MAX], sub[PATH_MAX], tmp[PATH_MAX];
    int r;

    /* base is shorter than PATH_MAX / 2 (the caller's check), so these fit. */
    snprintf(dir, sizeof dir, "%.*s/fil-profile-%ld", PATH_MAX / 2, base, (long)geteuid());
    snprintf(sub, sizeof sub, "%.*s/%016llx", PATH_MAX / 2 + 32, dir,
             (unsigned long long)path_hash(lib));
    snprintf(tmp, sizeof tmp, "%.*s/.link-%ld", PATH_MAX / 2 + 64, sub, (long)getpid());
    r = snprintf(out, len, "%s/libfilpreload.so", sub);
    if (r < 0 || (size_t)r >= len)
        return fil_cli_msgf(err, errlen, "path too long: %s", sub);
    if (own_dir(dir, err, errlen) != 0 || own_dir(sub, err, errlen) != 0)
        return -1;
    if (links_to(out, lib))
        return 0;
    unlink(tmp);
    if (symlink(lib, tmp) != 0 || rename(tmp, out) != 0) {
        int e = errno;

        unlink(tmp);
        return fil_cli_msgf(err, errlen, "cannot make the link '%s' to %s: %s", out, lib, strerror(e));
    }
    return 0;
}

/*
 * The path to put in LD_PRELOAD for the library at lib (an absolute,
 * resolved path) into out: lib itself when the loader can read it there,
 * else a link under the first of the bases (see the file comment) where
 * one can be had. 0, or -1 with a one-line reason in err (the last
 * base's).
 */
int fil_cli_preload_path(const char *lib, char *out, size_t len, char *err, size_t errlen)
{
    const char *bases[] = {getenv("XDG_RUNTIME_DIR"), getenv("TMPDIR"), "/tmp"};
    struct stat st;

    if (carriable(lib)) {
        if ((size_t)snprintf(out, len, "%s", lib) >= len)
            return fil_cli_msgf(err, errlen, "library path too long: %s", lib);
        return 0;
    }
    fil_cli_msgf(err, errlen, "no folder for a link to it");
    for (size_t k = 0; k < sizeof bases / sizeof bases[0]; k++)
        if (carriable(bases[k]) && strlen(bases[k]) < PATH_MAX / 2 && stat(bases[k], &st) == 0 &&
            S_ISDIR(st.st_mode) && link_under(bases[k], lib, out, len, err, errlen) == 0)
            return 0;
    return -1;
}
