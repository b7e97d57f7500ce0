/* SPDX-License-Identifier: MIT */
/*
 * native.c - the native stack of the failing allocation. SIGNAL-SAFE FILE.
 *
 * libunwind walks the calling thread's own stack (local unwinding is
 * async-signal-safe and allocates nothing); frames inside this library are
 * skipped. libunwind's symbol lookup (unw_get_proc_name) is NOT used: it
 * mallocs while reading ELF images, which the dump's abort guard caught.
 * Instead one pass over /proc/self/maps gives each frame its library and its
 * offset from the library's load address, and elfsym.c reads the function
 * name from the library file itself:
 * "[native] PyArray_NewFromDescr+0x1f (_multiarray_umath.cpython-311-....so)"
 * or, for a static function of a stripped library, "[native] ?+0x1d38f (...)"
 * (the library offset, for `addr2line -f -e <library>`). When a library
 * made the request, the interpreter's frames that called it end the list
 * (they are the Python frames the report already shows); when the
 * interpreter made it itself (a bytearray growing through PyObject_Realloc,
 * a bytes object through PyObject_Calloc), its own frames are the native
 * stack, up to its eval loop (a function named _PyEval_* or PyEval_).
 *
 * Allowed calls: unw_getcontext/init_local/step/get_reg, raw open/read/
 * lseek/close (the limits line reader, elfsym.c), memcpy, strnlen.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "fil/state_writer.h"
#include "oom_internal.h"
#include "../limits/limits_internal.h"
#include "../report/report_internal.h"

#define LIB_NAME 96
#define LIB_PATH 256

typedef struct frame {
    uint64_t ip;
    uint64_t off;     /* ip - load address of its library */
    const char *lib;  /* basename inside path[], or "?" */
    char path[LIB_PATH]; /* the library file ("" if unknown) */
    int exe;          /* 1: in the main executable (the interpreter) */
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

/* The path at the end of a maps line (from its first '/'), or NULL. */
static const char *path_of(const char *line) {
    for (const char *s = line; *s; s++)
        if (*s == '/')
            return s;
    return NULL;
}

static const char *basename_of(const char *path) {
    const char *b = path;
    for (const char *s = path; *s; s++)
        if (*s == '/')
            b = s + 1;
    return b;
}

/* Give each frame its library file and its offset from the library's first
 * mapping (the load address). */
static void name_libraries(frame_t *f, uint32_t n) {
    char buf[1024], cur[LIB_PATH] = "", exe[LIB_PATH] = "";
    uint64_t base = 0;
    fil_limits_lines_t lr;
    for (uint32_t i = 0; i < n; i++)
        f[i].lib = "?", f[i].off = f[i].ip, f[i].path[0] = 0;
    if (fil_limits_lines_open(&lr, "/proc/self/maps", buf, sizeof buf) != 0)
        return;
    char *line;
    for (int first = 1; fil_limits_lines_next(&lr, &line) >= 0; first = 0) {
        uint64_t lo = hex(&line);
        line++;
        uint64_t hi = hex(&line);
        const char *path = path_of(line);
        if (!path)
            continue;
        size_t len = strnlen(path, sizeof cur - 1);
        if (first || strncmp(cur, path, len) != 0 || cur[len]) { /* a new file */
            memcpy(cur, path, len);
            cur[len] = 0;
            base = lo;
            if (first)
                memcpy(exe, cur, len + 1);
        }
        for (uint32_t i = 0; i < n; i++) {
            if (f[i].ip < lo || f[i].ip >= hi)
                continue;
            memcpy(f[i].path, cur, len + 1);
            f[i].lib = basename_of(f[i].path);
            f[i].off = f[i].ip - base;
            f[i].exe = strncmp(cur, exe, sizeof cur) == 0 ||
                       strncmp(f[i].lib, "libpython", 9) == 0;
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

/* Is sym the interpreter's eval loop or its entry (_PyEval_EvalFrameDefault,
 * its .cold part, PyEval_EvalCode...)? Where the Python frames begin. */
static int is_eval(const char *sym) {
    const char *p = sym[0] == '_' ? sym + 1 : sym;
    const char *want = "PyEval_";
    while (*want && *p == *want)
        p++, want++;
    return *want == 0;
}

/* Label frame f as "[native] sym+0xoff (lib)" into out; its symbol into sym. */
static void label(const frame_t *f, char *out, char *sym, size_t cap) {
    uint64_t off = f->off;
    sym[0] = '?', sym[1] = 0;
    /* A return address points after the call: look up the call itself. */
    if (f->path[0] && f->off && fil_oom_elf_symbol(f->path, f->off - 1, sym, cap, &off) == 0)
        off += 1; /* else: the library offset, for addr2line */
    fil_writer_t w;
    fil_writer_init(&w, -1, out, FIL_NATIVE_TEXT - 1);
    fil_write_str(&w, "[native] ");
    fil_write_str(&w, sym);
    fil_write_char(&w, '+');
    fil_write_hex(&w, off);
    fil_write_str(&w, " (");
    fil_write_str(&w, f->lib);
    fil_write_char(&w, ')');
    out[w.len] = 0;
}

/* The warm-up at startup: one walk, so libunwind's lazy set-up (its
 * validation pipe, the unwind tables of the loaded objects) happens now and
 * not in a dump. Naming the frames has nothing to set up (raw reads of
 * /proc/self/maps and of the library files), so it is not done. */
void fil_oom_warm_native(void) {
    frame_t f[FIL_NATIVE_MAX];
    (void)walk(f);
}

void fil_oom_capture_native(void) {
    frame_t f[FIL_NATIVE_MAX];
    uint32_t n = walk(f), kept = 0;
    name_libraries(f, n);
    fil_oom_info_t *o = &fil_state->oom;
    int lead = 1; /* still in the interpreter's own frames that made the request */
    for (uint32_t i = 0; i < n; i++) {
        if (f[i].exe && !lead)
            break; /* back in the interpreter that called the library */
        lead &= f[i].exe;
        char sym[LIB_NAME];
        label(&f[i], o->native[kept], sym, sizeof sym);
        if (f[i].exe && is_eval(sym))
            break; /* the Python frames the report shows */
        kept++;
    }
    if (kept < FIL_NATIVE_MAX)
        o->native[kept][0] = 0; /* an eval loop frame labelled there is not kept */
    o->native_count = kept;
}
