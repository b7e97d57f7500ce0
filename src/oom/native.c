/* SPDX-License-Identifier: MIT */
/*
 * native.c - the native stack of the failing allocation. SIGNAL-SAFE FILE.
 *
 * libunwind walks the calling thread's own stack (local unwinding is
 * async-signal-safe and allocates nothing); frames inside this library are
 * skipped. libunwind's symbol lookup (unw_get_proc_name) is NOT used: it
 * mallocs while reading ELF images, which the dump's abort guard caught.
 * Frames are therefore labelled by library and offset from the library's
 * load address, from one pass over /proc/self/maps:
 * "[native] ?+0x1d38f (_multiarray_umath.cpython-311-x86_64-linux-gnu.so)",
 * which `addr2line -f -e <library> 0x1d38f` turns into a function name.
 * Frames in the interpreter's own binary are dropped (they are the Python
 * frames the report already shows).
 *
 * Allowed calls: unw_getcontext/init_local/step/get_reg, raw open/read/close
 * (through the limits line reader), memcpy, strnlen.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "fil/state_writer.h"
#include "oom_internal.h"
#include "../limits/limits_internal.h"
#include "../report/report_internal.h"

#define LIB_NAME 96

typedef struct frame {
    uint64_t ip;
    uint64_t off;    /* ip - load address of its library */
    const char *lib; /* basename inside libs[], or "?" */
    int exe;         /* 1: in the main executable (the interpreter) */
} frame_t;

/* Parse hex at *p. */
static uint64_t hex(char **p) {
    uint64_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v * 16 + (uint64_t)d;
    }
}

/* Basename of the path at the end of a maps line, or NULL. */
static const char *basename_of(const char *line) {
    const char *path = NULL;
    for (const char *s = line; *s; s++)
        if (*s == '/' && !path)
            path = s;
    for (const char *s = path; s && *s; s++)
        if (*s == '/')
            path = s + 1;
    return path;
}

/* Give each frame its library's basename and its offset from the library's
 * first mapping (the load address). */
static void name_libraries(frame_t *f, uint32_t n, char (*libs)[LIB_NAME]) {
    char buf[1024], cur[LIB_NAME] = "", exe[LIB_NAME] = "";
    uint64_t base = 0;
    fil_limits_lines_t lr;
    for (uint32_t i = 0; i < n; i++)
        f[i].lib = "?", f[i].off = f[i].ip;
    if (fil_limits_lines_open(&lr, "/proc/self/maps", buf, sizeof buf) != 0)
        return;
    char *line;
    for (int first = 1; fil_limits_lines_next(&lr, &line) >= 0; first = 0) {
        uint64_t lo = hex(&line);
        line++;
        uint64_t hi = hex(&line);
        const char *path = basename_of(line);
        if (!path)
            continue;
        size_t len = strnlen(path, sizeof cur - 1);
        if (first || strncmp(cur, path, len) != 0 || cur[len]) { /* a new library */
            memcpy(cur, path, len);
            cur[len] = 0;
            base = lo;
            if (first)
                memcpy(exe, cur, len + 1);
        }
        for (uint32_t i = 0; i < n; i++) {
            if (f[i].ip < lo || f[i].ip >= hi)
                continue;
            memcpy(libs[i], cur, len + 1);
            f[i].lib = libs[i];
            f[i].off = f[i].ip - base;
            f[i].exe = strncmp(cur, exe, sizeof cur) == 0 || strncmp(cur, "libpython", 9) == 0;
        }
    }
    fil_limits_lines_close(&lr);
}

/* Walk the stack into f. Returns the number of frames kept. */
static uint32_t walk(frame_t *f) {
    unw_context_t ctx;
    unw_cursor_t cur;
    if (unw_getcontext(&ctx) != 0 || unw_init_local(&cur, &ctx) != 0)
        return 0;
    uint32_t n = 0;
    while (n < FIL_NATIVE_MAX && unw_step(&cur) > 0) {
        unw_word_t ip = 0;
        unw_get_reg(&cur, UNW_REG_IP, &ip);
        if (ip >= fil_oom_cfg.self_lo && ip < fil_oom_cfg.self_hi)
            continue;
        f[n].ip = ip;
        f[n].exe = 0;
        n++;
    }
    return n;
}

void fil_oom_capture_native(void) {
    frame_t f[FIL_NATIVE_MAX];
    char libs[FIL_NATIVE_MAX][LIB_NAME];
    uint32_t n = walk(f), kept = 0;
    name_libraries(f, n, libs);
    fil_oom_info_t *o = &fil_state->oom;
    for (uint32_t i = 0; i < n && !f[i].exe; i++, kept++) {
        fil_writer_t w;
        fil_writer_init(&w, -1, o->native[i], FIL_NATIVE_TEXT - 1);
        fil_write_str(&w, "[native] ?+");
        fil_write_hex(&w, f[i].off);
        fil_write_str(&w, " (");
        fil_write_str(&w, f[i].lib);
        fil_write_char(&w, ')');
        o->native[i][w.len] = 0;
    }
    o->native_count = kept;
}
