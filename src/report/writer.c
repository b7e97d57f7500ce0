/* SPDX-License-Identifier: MIT */
/*
 * writer.c - the buffered fd writer and number/size formatting.
 *
 * A fil_writer_t collects bytes in a caller-owned buffer and hands them to
 * write(2) when the buffer is full or on fil_writer_flush. Errors are sticky:
 * the first failed or zero-length write(2) sets `failed`, drops what is
 * pending, and turns every later call into a no-op, so report code can write
 * a whole file and check once at the end. A writer with a stop flag fails
 * the same way the first time it drains after the flag was set, which is
 * how a signal handler interrupts a long render. Numbers are formatted from the
 * unsigned magnitude into small stack buffers; sizes use integer arithmetic
 * only (no floating point, no stdio, no locale).
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: write, memcpy, strlen.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "report_internal.h"

/*
 * Set up w to write to fd through buf[0..cap). Nothing is written yet.
 * SIGNAL CONTEXT: caller memory only.
 */
void fil_writer_init(fil_writer_t *w, int fd, char *buf, size_t cap)
{
    w->fd = fd;
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->failed = 0;
    w->written = 0;
    w->stop = NULL;
}

/*
 * write(2) all n bytes of p, retrying on EINTR and short writes. On error
 * marks the writer failed. SIGNAL CONTEXT: caller memory only.
 */
static void write_all(fil_writer_t *w, const char *p, size_t n)
{
    if (w->stop && *w->stop)
        w->failed = 1; /* interrupted: the caller removes the partial file */
    while (n > 0 && !w->failed) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            w->failed = 1;
            break;
        }
        p += r;
        n -= (size_t)r;
        w->written += (uint64_t)r;
    }
}

/*
 * Hand the pending bytes to write(2). Pending bytes are dropped either way.
 * SIGNAL CONTEXT: caller memory only.
 */
static void drain(fil_writer_t *w)
{
    if (w->len > 0)
        write_all(w, w->buf, w->len);
    w->len = 0;
}

/*
 * Append n bytes; large writes bypass the buffer. No-op once failed.
 * SIGNAL CONTEXT: caller memory only.
 */
void fil_write_mem(fil_writer_t *w, const void *p, size_t n)
{
    if (n == 0 || w->failed)
        return;
    if (n <= w->cap - w->len) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        return;
    }
    drain(w);
    if (n <= w->cap) {
        memcpy(w->buf, p, n);
        w->len = n;
    } else {
        write_all(w, p, n);
    }
}

/* Append a NUL-terminated string (NULL writes nothing). SIGNAL CONTEXT. */
void fil_write_str(fil_writer_t *w, const char *s)
{
    if (s)
        fil_write_mem(w, s, strlen(s));
}

/* Append one byte. SIGNAL CONTEXT: caller memory only. */
void fil_write_char(fil_writer_t *w, char c)
{
    if (!w->failed && w->len < w->cap)
        w->buf[w->len++] = c;
    else
        fil_write_mem(w, &c, 1);
}

/*
 * Format v in decimal into buf (at least 21 bytes), NUL-terminated; returns
 * the number of digits. SIGNAL CONTEXT: caller memory only.
 */
size_t fil_fmt_u64(char *buf, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    char tmp[20];
    size_t at = sizeof tmp, n;
    while (v >= 100) { /* two digits a step, from the right */
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        tmp[--at] = pairs[d + 1];
        tmp[--at] = pairs[d];
    }
    if (v >= 10) {
        tmp[--at] = pairs[v * 2 + 1];
        tmp[--at] = pairs[v * 2];
    } else {
        tmp[--at] = (char)('0' + v);
    }
    n = sizeof tmp - at;
    memcpy(buf, tmp + at, n);
    buf[n] = '\0';
    return n;
}

/* Append v in decimal. SIGNAL CONTEXT: caller memory only. */
void fil_write_u64(fil_writer_t *w, uint64_t v)
{
    char buf[24];
    fil_write_mem(w, buf, fil_fmt_u64(buf, v));
}

/* Append v in decimal with a leading '-' if negative (INT64_MIN included).
 * SIGNAL CONTEXT: caller memory only. */
void fil_write_i64(fil_writer_t *w, int64_t v)
{
    if (v < 0) {
        fil_write_char(w, '-');
        fil_write_u64(w, (uint64_t)0 - (uint64_t)v);
    } else {
        fil_write_u64(w, (uint64_t)v);
    }
}

/* Append "0x" and v in lowercase hex without padding ("0x0" for zero).
 * SIGNAL CONTEXT: caller memory only. */
void fil_write_hex(fil_writer_t *w, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[18];
    size_t n = sizeof(buf);
    do {
        buf[--n] = digits[v & 15];
        v >>= 4;
    } while (v > 0);
    buf[--n] = 'x';
    buf[--n] = '0';
    fil_write_mem(w, buf + n, sizeof(buf) - n);
}

/*
 * bytes / 2^shift rounded half up to `decimals` (1 or 2) decimal places, as
 * an integer count of 10^-decimals units. shift <= 50 keeps the remainder
 * product below 2^57. SIGNAL CONTEXT: caller memory only.
 */
static uint64_t scaled(uint64_t bytes, unsigned shift, unsigned decimals, int down)
{
    uint64_t mul = decimals == 2 ? 100 : 10;
    uint64_t q = bytes >> shift;
    uint64_t r = bytes & ((UINT64_C(1) << shift) - 1);
    uint64_t frac = (r * mul + (down ? 0 : UINT64_C(1) << (shift - 1))) >> shift;
    return q * mul + frac;
}

static uint64_t scaled_units(uint64_t bytes, unsigned shift, unsigned decimals)
{
    return scaled(bytes, shift, decimals, 0);
}

/* Append units / 10^decimals with exactly `decimals` decimal digits.
 * SIGNAL CONTEXT: caller memory only. */
static void write_fixed(fil_writer_t *w, uint64_t units, unsigned decimals)
{
    uint64_t mul = decimals == 2 ? 100 : 10;
    uint64_t frac = units % mul;
    fil_write_u64(w, units / mul);
    fil_write_char(w, '.');
    if (decimals == 2)
        fil_write_char(w, (char)('0' + frac / 10));
    fil_write_char(w, (char)('0' + frac % 10));
}

/* Append bytes / 2^20 with one decimal, e.g. "100.0". SIGNAL CONTEXT. */
void fil_write_mib(fil_writer_t *w, uint64_t bytes)
{
    write_fixed(w, scaled_units(bytes, 20, 1), 1);
}

/* Append bytes / 2^30 with one decimal, e.g. "1.9" (as the header says;
 * fil_write_size uses two decimals for GiB). SIGNAL CONTEXT. */
void fil_write_gib(fil_writer_t *w, uint64_t bytes)
{
    write_fixed(w, scaled_units(bytes, 30, 1), 1);
}

/*
 * Append a human size: "512 B", then KiB/MiB with one decimal and
 * GiB/TiB/PiB with two. The unit is chosen after rounding, so 1048575 bytes
 * is "1.0 MiB", never "1024.0 KiB". SIGNAL CONTEXT: caller memory only.
 */
/* fil_write_size, rounded to nearest (down: truncated). */
static void write_size(fil_writer_t *w, uint64_t bytes, int down)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        fil_write_u64(w, bytes);
        fil_write_str(w, " B");
        return;
    }
    for (unsigned u = 0; u < 5; u++) {
        unsigned decimals = u < 2 ? 1 : 2;
        uint64_t mul = decimals == 2 ? 100 : 10;
        uint64_t units_v = scaled(bytes, 10 * (u + 1), decimals, down);
        if (units_v < 1024 * mul || u == 4) {
            write_fixed(w, units_v, decimals);
            fil_write_char(w, ' ');
            fil_write_str(w, units[u]);
            return;
        }
    }
}

void fil_write_size(fil_writer_t *w, uint64_t bytes)
{
    write_size(w, bytes, 0);
}

void fil_write_size_down(fil_writer_t *w, uint64_t bytes)
{
    write_size(w, bytes, 1);
}

/* See fil/report.h. SIGNAL CONTEXT: caller memory only. */
void fil_write_seconds(fil_writer_t *w, uint64_t ns)
{
    uint64_t ms = ns / 1000000u;
    fil_write_u64(w, ms / 1000);
    fil_write_char(w, '.');
    fil_write_char(w, (char)('0' + ms % 1000 / 100));
    fil_write_char(w, (char)('0' + ms % 100 / 10));
    fil_write_char(w, (char)('0' + ms % 10));
}

/*
 * Write out everything pending. 0, or -1 if any write since init failed.
 * SIGNAL CONTEXT: caller memory only.
 */
int fil_writer_flush(fil_writer_t *w)
{
    drain(w);
    return fil_report_status(w);
}

/*
 * Format a human size into buf (at least 24 bytes: "16384.00 PiB" is the
 * longest), NUL-terminated; returns its length. SIGNAL CONTEXT: caller
 * memory only (the writer never reaches its descriptor: the text fits).
 */
size_t fil_report_size_text(char *buf, uint64_t bytes)
{
    fil_writer_t w;
    fil_writer_init(&w, -1, buf, 23);
    fil_write_size(&w, bytes);
    buf[w.len] = '\0';
    return w.len;
}
