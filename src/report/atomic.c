/* SPDX-License-Identifier: MIT */
/*
 * atomic.c - report files written under a temporary name, then renamed.
 *
 * fil_atomic_open creates "<dir>/.<name>.tmp-<pid>" (the dot goes before
 * the last path component of name, so the file is hidden and never seen
 * under its final name half written); fil_atomic_commit closes it and
 * renames it onto "<dir>/<name>", fil_atomic_abort closes and unlinks it.
 * Paths are joined into the struct's fixed buffers (ENAMETOOLONG when they do
 * not fit). A stale temporary with our pid is unlinked and the file created
 * with O_EXCL, so a symlink planted under the temporary name is not
 * followed. After commit or abort the struct is inert (fd -1, no temporary
 * name), so aborting after a commit does nothing. fil_atomic_sweep removes
 * the temporaries a process that died while writing left in a folder (an
 * out-of-memory dump cut short by SIGTERM or SIGKILL).
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: open, close, rename, unlink,
 * unlinkat, getpid, strlen, memcpy, memcmp, syscall(SYS_getdents64).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename(2) only: no stdio stream is used */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "report_internal.h"

/* Appends to a fixed buffer; `over` records that something did not fit. */
typedef struct path_buf {
    char *buf;  /* destination */
    size_t cap; /* its size, NUL included */
    size_t len; /* bytes used */
    int over;   /* something did not fit */
} path_buf_t;

/* Append n bytes of s. SIGNAL CONTEXT: caller memory only. */
static void pb_add(path_buf_t *p, const char *s, size_t n)
{
    if (p->over || n >= p->cap - p->len) {
        p->over = 1;
        return;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

/* Join dir and name[0..split) (the directory part of name, "/" included).
 * SIGNAL CONTEXT: caller memory only. */
static void pb_dir(path_buf_t *p, const char *dir, const char *name, size_t split)
{
    size_t dlen = dir ? strlen(dir) : 0;
    p->buf[0] = '\0';
    if (dlen > 0) {
        pb_add(p, dir, dlen);
        if (dir[dlen - 1] != '/')
            pb_add(p, "/", 1);
    }
    pb_add(p, name, split);
}

/*
 * Fill f->final and f->tmp from dir and name. 0, or -1 with errno
 * ENAMETOOLONG or EINVAL (empty name). SIGNAL CONTEXT: caller memory only.
 */
static int make_names(fil_atomic_file_t *f, const char *dir, const char *name)
{
    size_t nlen = strlen(name), split = nlen, plen;
    path_buf_t fin = {f->final, sizeof(f->final), 0, 0};
    path_buf_t tmp = {f->tmp, sizeof(f->tmp), 0, 0};
    char pid[24];
    while (split > 0 && name[split - 1] != '/')
        split--;
    if (split == nlen) {
        errno = EINVAL;
        return -1;
    }
    pb_dir(&fin, dir, name, nlen);
    pb_dir(&tmp, dir, name, split);
    pb_add(&tmp, ".", 1);
    pb_add(&tmp, name + split, nlen - split);
    pb_add(&tmp, ".tmp-", 5);
    plen = fil_fmt_u64(pid, (uint64_t)getpid());
    pb_add(&tmp, pid, plen);
    if (fin.over || tmp.over) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/*
 * Create the temporary file for dir/name (mode 0644, subject to umask).
 * 0, or -1 with errno set and f->fd == -1. SIGNAL CONTEXT: caller memory.
 */
int fil_atomic_open(fil_atomic_file_t *f, const char *dir, const char *name)
{
    f->fd = -1;
    f->tmp[0] = f->final[0] = '\0';
    if (!name) {
        errno = EINVAL;
        return -1;
    }
    if (make_names(f, dir, name) < 0) {
        f->tmp[0] = f->final[0] = '\0';
        return -1;
    }
    (void)unlink(f->tmp); /* a stale file from an earlier process with our pid */
    do {
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
    } while (f->fd < 0 && errno == EINTR);
    if (f->fd < 0) {
        f->tmp[0] = '\0';
        return -1;
    }
    return 0;
}

/*
 * Close the temporary file and rename it onto the final name. 0, or -1 with
 * errno set and the temporary removed. SIGNAL CONTEXT: caller memory only.
 */
int fil_atomic_commit(fil_atomic_file_t *f)
{
    int rc = 0, saved;
    if (f->fd < 0 || f->tmp[0] == '\0') {
        errno = EBADF;
        return -1;
    }
    if (close(f->fd) < 0 && errno != EINTR)
        rc = -1; /* EINTR: Linux has closed the descriptor anyway */
    f->fd = -1;
    if (rc == 0 && rename(f->tmp, f->final) < 0)
        rc = -1;
    if (rc < 0) {
        saved = errno;
        (void)unlink(f->tmp);
        errno = saved;
    }
    f->tmp[0] = '\0';
    return rc;
}

/* Close and unlink the temporary file; safe to call twice or after commit.
 * SIGNAL CONTEXT: caller memory only. */
void fil_atomic_abort(fil_atomic_file_t *f)
{
    int saved = errno;
    if (f->fd >= 0)
        (void)close(f->fd);
    f->fd = -1;
    if (f->tmp[0] != '\0')
        (void)unlink(f->tmp);
    f->tmp[0] = '\0';
    errno = saved;
}

/* A directory entry as getdents64 returns it. */
struct atomic_dirent {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/*
 * Unlink every ".<name>.tmp-<pid>" in dir: what process pid, now gone, was
 * writing when it died (fil_atomic_open's names). Its complete files were
 * renamed into place and stay; another process's temporaries are not
 * touched. The number removed, or -1 with errno set if dir cannot be read.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_atomic_sweep(const char *dir, long pid)
{
    char buf[4096], suffix[32] = ".tmp-";
    size_t slen;
    long n;
    int fd, removed = 0, saved;

    if (!dir || pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    slen = 5 + fil_fmt_u64(suffix + 5, (uint64_t)pid);
    do
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            const struct atomic_dirent *d = (const struct atomic_dirent *)(buf + off);
            size_t len = strlen(d->d_name);
            if (d->d_name[0] == '.' && len > slen + 1 &&
                memcmp(d->d_name + len - slen, suffix, slen) == 0 &&
                unlinkat(fd, d->d_name, 0) == 0)
                removed++;
            off += d->d_reclen;
        }
    }
    saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : removed;
}
