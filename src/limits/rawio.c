/* SPDX-License-Identifier: MIT */
/*
 * rawio.c - raw file reading and number parsing for the limits module.
 *
 * SIGNAL-SAFE FILE: checked by scripts/check-signal-safety.
 * Allowed calls: open, read, close, __errno_location (errno), memmove.
 *
 * Design: /proc and cgroup files are read with open(O_RDONLY|O_CLOEXEC) and
 * read(2) into buffers the caller owns (on its stack), and parsed by the
 * small hand-written routines below instead of strtoull/sscanf, which are not
 * async-signal-safe. Files longer than one buffer (mountinfo, meminfo) go
 * through a line assembler that keeps one partial line in the buffer and
 * skips lines that do not fit, so memory use stays fixed whatever the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "limits_internal.h"

/* Append s to out at *len; -1 if it does not fit (one byte kept for NUL). */
static int path_append(char *out, size_t cap, size_t *len, const char *s)
{
    if (s == NULL)
        return 0;
    for (; *s != '\0'; s++) {
        if (*len + 1 >= cap)
            return -1;
        out[(*len)++] = *s;
    }
    return 0;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_path(char *out, size_t cap, const char *a, const char *b, const char *c,
                    const char *d)
{
    size_t len = 0;

    if (cap == 0)
        return -1;
    if (path_append(out, cap, &len, a) < 0 || path_append(out, cap, &len, b) < 0 ||
        path_append(out, cap, &len, c) < 0 || path_append(out, cap, &len, d) < 0) {
        out[0] = '\0';
        return -1;
    }
    out[len] = '\0';
    return 0;
}

/* read(2) retried on EINTR. Returns what read returns. */
static long read_retry(int fd, char *buf, size_t n)
{
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r >= 0 || errno != EINTR)
            return (long)r;
    }
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
long fil_limits_read_small(const char *path, char *buf, size_t cap)
{
    size_t len = 0;
    long r = -1;
    int fd;

    if (cap == 0)
        return -1;
    buf[0] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (len + 1 < cap) {
        r = read_retry(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (r < 0)
        return -1;
    return (long)len;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_lines_open(fil_limits_lines_t *lr, const char *path, char *buf, size_t cap)
{
    lr->fd = -1;
    lr->buf = buf;
    lr->cap = cap;
    lr->start = lr->end = 0;
    lr->eof = 0;
    lr->skipping = 0;
    if (cap < 2)
        return -1;
    lr->fd = open(path, O_RDONLY | O_CLOEXEC);
    return lr->fd < 0 ? -1 : 0;
}

/* Move pending bytes to the front and read more; an over-long line (buffer
 * full without '\n') is dropped and the reader starts skipping it. */
static void lines_fill(fil_limits_lines_t *lr)
{
    long r;

    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->start = 0;
    }
    if (lr->end + 1 >= lr->cap) {
        lr->skipping = 1;
        lr->end = 0;
    }
    r = read_retry(lr->fd, lr->buf + lr->end, lr->cap - 1 - lr->end);
    if (r <= 0)
        lr->eof = 1;
    else
        lr->end += (size_t)r;
}

/* First '\n' in the n bytes at b, or NULL (memchr is not on our list). */
static char *find_newline(char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] == '\n')
            return b + i;
    return NULL;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
long fil_limits_lines_next(fil_limits_lines_t *lr, char **line)
{
    for (;;) {
        char *b = lr->buf + lr->start;
        char *nl = find_newline(b, lr->end - lr->start);
        if (nl != NULL) {
            long n = (long)(nl - b);
            lr->start += (size_t)n + 1;
            if (lr->skipping) {
                lr->skipping = 0;
                continue;
            }
            *nl = '\0';
            *line = b;
            return n;
        }
        if (lr->eof) {
            long n = (long)(lr->end - lr->start);
            lr->start = lr->end;
            if (n == 0 || lr->skipping)
                return -1;
            b[n] = '\0'; /* end + 1 < cap is kept by lines_fill */
            *line = b;
            return n;
        }
        lines_fill(lr);
    }
}

/* See limits_internal.h. Context: SIGNAL CONTEXT. */
void fil_limits_lines_close(fil_limits_lines_t *lr)
{
    if (lr->fd >= 0)
        close(lr->fd);
    lr->fd = -1;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: pure. */
int fil_limits_parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *p = s;
    return 0;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: pure. */
const char *fil_limits_skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: pure. */
int fil_limits_parse_limit(const char *s, uint64_t *out)
{
    uint64_t v;

    s = fil_limits_skip_blanks(s);
    if (s[0] == 'm' && s[1] == 'a' && s[2] == 'x') {
        v = FIL_UNLIMITED;
        s += 3;
    } else if (fil_limits_parse_u64(&s, &v) < 0) {
        return -1;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (*s != '\0')
        return -1;
    *out = v >= FIL_UNLIMITED_MIN ? FIL_UNLIMITED : v;
    return 0;
}

/* See limits_internal.h. Context: SIGNAL CONTEXT: stack buffers only. */
int fil_limits_read_value(const char *root, const char *dir, const char *name, uint64_t *out)
{
    char path[FIL_LIMITS_PATH_MAX];
    char text[64];

    if (fil_limits_path(path, sizeof path, root, dir, "/", name) < 0)
        return -1;
    if (fil_limits_read_small(path, text, sizeof text) < 0)
        return -1;
    return fil_limits_parse_limit(text, out);
}
