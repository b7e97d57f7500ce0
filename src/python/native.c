/* SPDX-License-Identifier: MIT */
/*
 * native.c - the filprofiler._native extension: how the profiler reads
 * this interpreter's frames.
 *
 * Built once per CPython version (frames.h holds what differs). The preload
 * library loads it when the program's code is about to run and calls
 * fil_native_start(), which registers the frame reader of fil/pyapi.h:
 * compare the calling thread's frame chain with what was resolved, hand
 * over the frames that differ, name a code object, find a line. On 3.12 and newer it also asks sys.monitoring (PEP 669, a tool id
 * of our own, so cProfile, coverage and debuggers keep theirs) for frame
 * start/exit events, which spare each allocation the walk (monitor.c).
 * There is no profile hook: nothing the program does with sys.setprofile,
 * threading.setprofile, cProfile or greenlets can hide its frames, and no
 * frame object is ever created on the program's behalf.
 *
 * A code object is named once: its function (file, qualified name, first
 * line) is interned by content and the index kept in the object's co_extra
 * slot. The slot's free function bumps an epoch when such a code object
 * dies, so an address the resolver remembered is never taken for the new
 * object that reuses it. Names are read straight from the str objects'
 * storage, encoded to UTF-8 into a stack buffer: no Python call, no
 * allocation, valid without the GIL (an allocation made while the GIL is
 * released still gets its lines; only marking the code object needs the
 * GIL, and an unmarked one is resolved each time instead of remembered).
 *
 * The module also serves the Jupyter magic (active, reset_peak,
 * render_peak, oom_rearm, oom_dumps). It imports in any interpreter: without the preload library
 * it only says that memory is not tracked.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "fil/common.h"
#include "fil/pyapi.h"
#include "frames.h"
#include "native_internal.h"

#if PY_VERSION_HEX >= 0x030C0000
#define GET_EXTRA PyUnstable_Code_GetExtra
#define SET_EXTRA PyUnstable_Code_SetExtra
#define REQUEST_EXTRA PyUnstable_Eval_RequestCodeExtraIndex
#else
#define GET_EXTRA _PyCode_GetExtra
#define SET_EXTRA _PyCode_SetExtra
#define REQUEST_EXTRA _PyEval_RequestCodeExtraIndex
#endif

const fil_host_api_t *fil_native_host; /* NULL when not profiled */
static Py_ssize_t extra_index = -1;    /* our co_extra slot */
PyInterpreterState *fil_native_interp; /* where we started: the slot and tool id are its */
uint32_t fil_native_code_epoch;        /* bumped when a marked code object dies */

/* co_extra free function: a code object we named is being destroyed.
 * Context: GIL held (code_dealloc). */
static void code_died(void *extra) {
    if (extra)
        __atomic_add_fetch(&fil_native_code_epoch, 1, __ATOMIC_RELEASE);
}

/* Append code point cp as UTF-8 to buf at *n (cap bytes). */
static void put_utf8(char *buf, size_t cap, size_t *n, Py_UCS4 cp) {
    char tmp[4];
    size_t k;
    if (cp < 0x80) {
        tmp[0] = (char)cp, k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | cp >> 6), tmp[1] = (char)(0x80 | (cp & 0x3F)), k = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | cp >> 12), tmp[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F)), k = 3;
    } else {
        tmp[0] = (char)(0xF0 | cp >> 18), tmp[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        tmp[2] = (char)(0x80 | (cp >> 6 & 0x3F)), tmp[3] = (char)(0x80 | (cp & 0x3F)), k = 4;
    }
    if (cp >= 0xDC80 && cp <= 0xDCFF) /* a byte that was not UTF-8 (surrogateescape) */
        tmp[0] = (char)(cp - 0xDC00), k = 1;
    if (*n + k <= cap) {
        memcpy(buf + *n, tmp, k);
        *n += k;
    }
}

/*
 * The UTF-8 text of str s: a pointer to its own storage when it is ASCII,
 * else encoded into buf (cap bytes, cut on a character boundary). A file
 * name's bytes that were not UTF-8 come back as themselves (Python decoded
 * them to U+DC80..U+DCFF, "surrogateescape"), so the path is the one on
 * disk: its source lines can be read, and the .prof records it as it is;
 * any other surrogate is encoded as itself, like "surrogatepass".
 * Context: any; reads s only (str objects are immutable).
 */
static const char *utf8_of(PyObject *s, char *buf, size_t cap, size_t *len) {
    if (!s || !PyUnicode_Check(s)) {
        *len = 1;
        return "?";
    }
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(s)) {
        *len = 1;
        return "?";
    }
#endif
    if (PyUnicode_IS_ASCII(s)) {
        *len = (size_t)PyUnicode_GET_LENGTH(s);
        return (const char *)PyUnicode_DATA(s);
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    size_t k = 0;
    for (Py_ssize_t i = 0; i < n && k + 4 <= cap; i++)
        put_utf8(buf, cap, &k, PyUnicode_READ(kind, data, i));
    *len = k;
    return buf;
}

/* 1 if s[0..n) is `name` or ends with "/" `name`. */
static int names_file(const char *s, size_t n, const char *name) {
    size_t k = strlen(name);
    return (n == k && memcmp(s, name, k) == 0) ||
           (n > k && s[n - k - 1] == '/' && memcmp(s + n - k, name, k) == 0);
}

/* The folder of the standard library (that of os.__file__, os being
 * imported before any program code runs), without its final '/'; empty
 * when it could not be read. Set once by fil_native_start. */
static char stdlib_dir[1024];
static size_t stdlib_len;

/* Note the standard library's folder. Context: fil_native_start (GIL held,
 * guard set); an exception raised on the way is dropped, and one already
 * set is kept. */
static void find_stdlib(void) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *mods = PySys_GetObject("modules"); /* borrowed */
    PyObject *os = mods && PyDict_Check(mods) ? PyDict_GetItemString(mods, "os") : NULL;
    PyObject *file = os ? PyObject_GetAttrString(os, "__file__") : NULL;
    Py_ssize_t n = 0;
    const char *s = file && PyUnicode_Check(file) ? PyUnicode_AsUTF8AndSize(file, &n) : NULL;
    const char *slash = s ? strrchr(s, '/') : NULL;
    if (slash && slash > s && (size_t)(slash - s) < sizeof stdlib_dir) {
        stdlib_len = (size_t)(slash - s);
        memcpy(stdlib_dir, s, stdlib_len);
    }
    Py_XDECREF(file);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

/* The FIL_PYFUNC_* flags of the machinery Python runs code through, by
 * file: LAUNCHER for runpy, through which Python runs `-m module`, a
 * zipapp or a directory, and for the import system it calls; IMPORT as
 * well for the import system (importlib's bootstrap, zipimport), which
 * sits between every import statement and the module body it runs. The
 * import system and zipimport are always frozen; runpy is frozen since
 * 3.11 ("<frozen runpy>"), else (3.9, 3.10, -X frozen_modules=off) the
 * standard library's own runpy.py; the bootstrap's .py files are matched
 * the same way for an interpreter built to run them. A program's own
 * runpy.py (a script of that name, a module tools/runpy.py) is neither:
 * its lines are shown. With no standard library folder known, any file
 * of those names is taken. */
static unsigned machinery_flags(const char *file, size_t flen) {
    static const struct {
        const char *name;
        unsigned flags;
    } frozen[] = {
        {"<frozen runpy>", FIL_PYFUNC_LAUNCHER},
        {"<frozen importlib._bootstrap>", FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT},
        {"<frozen importlib._bootstrap_external>", FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT},
        /* 3.9 imports a zipped package through its load_module */
        {"<frozen zipimport>", FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT},
    },
      files[] = {
          {"runpy.py", FIL_PYFUNC_LAUNCHER},
          {"importlib/_bootstrap.py", FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT},
          {"importlib/_bootstrap_external.py", FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_IMPORT},
      };
    for (unsigned i = 0; i < sizeof frozen / sizeof *frozen; i++)
        if (flen == strlen(frozen[i].name) && memcmp(file, frozen[i].name, flen) == 0)
            return frozen[i].flags;
    for (unsigned i = 0; i < sizeof files / sizeof *files; i++) {
        const char *f = files[i].name;
        size_t k = strlen(f);
        if (!stdlib_len) {
            if (names_file(file, flen, f))
                return files[i].flags;
        } else if (flen == stdlib_len + 1 + k && memcmp(file, stdlib_dir, stdlib_len) == 0 &&
                   file[stdlib_len] == '/' && memcmp(file + stdlib_len + 1, f, k) == 0) {
            return files[i].flags;
        }
    }
    return 0;
}

/* 1 if s[0..n) starts with prefix. */
static int starts_with(const char *s, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

/*
 * 1 if file is the name IPython gave code it compiled from a cell: its own
 * "<ipython-input-N-HASH>", or ipykernel's ".../ipykernel_PID/HASH.py" (a
 * path in the temporary folder, HASH decimal: ipykernel/compiler.py).
 */
static int is_cell(const char *file, size_t flen) {
    if (starts_with(file, flen, "<ipython-input-"))
        return 1;
    if (flen < 4 || memcmp(file + flen - 3, ".py", 3) != 0)
        return 0;
    size_t dot = flen - 3, b = dot;
    while (b > 0 && file[b - 1] >= '0' && file[b - 1] <= '9')
        b--;
    if (b == dot || b == 0 || file[b - 1] != '/')
        return 0;
    size_t end = b - 1, d = end; /* the folder: "ipykernel_<pid>" */
    while (d > 0 && file[d - 1] != '/')
        d--;
    return starts_with(file + d, end - d, "ipykernel_");
}

/* 1 if file[0..n) is name in an installed packages folder: the path ends
 * with "/site-packages/NAME" or "/dist-packages/NAME" (Debian's). */
static int installed_file(const char *file, size_t n, const char *name) {
    static const char *const dirs[] = {"/site-packages/", "/dist-packages/"};
    size_t k = strlen(name);
    if (n < k || memcmp(file + n - k, name, k) != 0)
        return 0;
    for (unsigned i = 0; i < 2; i++) {
        size_t d = strlen(dirs[i]);
        if (n - k >= d && memcmp(file + n - k - d, dirs[i], d) == 0)
            return 1;
    }
    return 0;
}

/* 1 if file is the module a Jupyter kernel is started with, as installed:
 * a program of the user's that happens to be named ipykernel_launcher.py
 * is an ordinary program (as the kernel's entry, everything it ran would
 * be swallowed into its first line). */
static int is_kernel_entry(const char *file, size_t flen) {
    return installed_file(file, flen, "ipykernel_launcher.py") ||
           installed_file(file, flen, "ipykernel/__main__.py");
}

/* Intern the function of co by its content; FIL_NONE if the state is full.
 * FIL_PYFUNC_LAUNCHER and IMPORT into *flags for runpy's and the import
 * system's, CELL and KERNEL for a notebook's (pyresolve.h). Context: any
 * thread, guard set. */
static uint32_t intern_code(PyCodeObject *co, unsigned *flags) {
    char fbuf[1024], nbuf[512];
    size_t flen, nlen;
    const char *file = utf8_of(co->co_filename, fbuf, sizeof fbuf, &flen);
#if PY_VERSION_HEX >= 0x030B0000
    const char *name = utf8_of(co->co_qualname, nbuf, sizeof nbuf, &nlen);
#else
    const char *name = utf8_of(co->co_name, nbuf, sizeof nbuf, &nlen);
#endif
    *flags |= machinery_flags(file, flen);
    if (nlen == 8 && memcmp(name, "<module>", 8) == 0)
        *flags |= FIL_PYFUNC_MODULE;
    if (is_cell(file, flen))
        *flags |= FIL_PYFUNC_CELL;
    if (is_kernel_entry(file, flen))
        *flags |= FIL_PYFUNC_KERNEL;
    return fil_native_host->intern_func(file, flen, name, nlen, (uint32_t)co->co_firstlineno);
}

/* The flags kept in co_extra beside the function, and the shift above them. */
#define STORED_FLAGS                                                                               \
    (FIL_PYFUNC_LAUNCHER | FIL_PYFUNC_MODULE | FIL_PYFUNC_CELL | FIL_PYFUNC_KERNEL | FIL_PYFUNC_IMPORT)
#define FUNC_SHIFT 7

/*
 * fil_native_func_of: the frame source's func_of. The co_extra value is
 * 1 + (function << FUNC_SHIFT | flags), so 0 means "not named yet". The slot is read
 * and written only for an allocation CPython's object allocator made
 * (FIL_PYFUNC_MAY_MARK: GIL held, no lock of the interpreter's held), and
 * only in the interpreter that gave us the slot: a slot index is an
 * interpreter's own, and in a subinterpreter ours is nobody's (setting it
 * fails) or another extension's. Otherwise the function is interned by
 * content and the code left unmarked. A failure to mark leaves whatever
 * exception the program was raising as it was.
 */
uint32_t fil_native_func_of(const void *code, unsigned *flags) {
    PyCodeObject *co = (PyCodeObject *)code;
    int gil = (*flags & FIL_PYFUNC_MAY_MARK) != 0 && PyInterpreterState_Get() == fil_native_interp;
    *flags = 0;
    void *x = NULL;
    if (gil && GET_EXTRA((PyObject *)co, extra_index, &x) == 0 && x) {
        uintptr_t v = (uintptr_t)x - 1;
        *flags = FIL_PYFUNC_TRUSTED | (unsigned)(v & STORED_FLAGS);
        return (uint32_t)(v >> FUNC_SHIFT);
    }
    uint32_t id = intern_code(co, flags);
    if (id != FIL_NONE && gil) {
        uintptr_t v = ((uintptr_t)id << FUNC_SHIFT | (*flags & STORED_FLAGS)) + 1;
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *raising = PyErr_GetRaisedException();
#else
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
#endif
        if (SET_EXTRA((PyObject *)co, extra_index, (void *)v) == 0)
            *flags |= FIL_PYFUNC_TRUSTED;
        else
            PyErr_Clear();
#if PY_VERSION_HEX >= 0x030C0000
        PyErr_SetRaisedException(raising);
#else
        PyErr_Restore(type, value, tb);
#endif
    }
    return id;
}

#if PY_VERSION_HEX >= 0x030A0000
/*
 * PyCode_Addr2Line reads a code object's line table from its start on
 * every call, so the allocations of a long function cost its length each:
 * importing numpy runs a 7,000-line module whose every statement allocates.
 * The process keeps, for the code objects asked about last (a small
 * direct-mapped cache), the line-table range of the last answer, and
 * _PyCode_CheckLineNumber (what PyCode_Addr2Line calls after starting the
 * range at the table's head) moves from there, forward or back. Threads
 * take a slot with a try-lock and ask PyCode_Addr2Line when it is busy:
 * no thread-local storage, which a dlopen'ed module gets from malloc on a
 * thread's first use (inside our allocator, perhaps while memory runs
 * out); a slot left busy by a thread a fork did not copy only costs that
 * slot. A slot is
 * used only for the same code object with the same line table (the bytes
 * object, its size, the first line) and the same name of ours in co_extra:
 * a code object that reuses a dead one's address has its own table, so a
 * kept range only ever points into the live table it was made for (a code
 * object dying does not empty the cache: the module that imported it goes
 * on where it was).
 */
/* Which code object, and which line table: what a kept range or answer is
 * used for only. */
typedef struct code_id {
    const PyCodeObject *code;
    const PyObject *table;
    const void *named; /* our name in co_extra */
    Py_ssize_t size;   /* of the line table */
    int first;         /* co_firstlineno */
} code_id_t;

static code_id_t code_id(const PyCodeObject *co, const void *named) {
    code_id_t id = {co, co->co_linetable, named, PyBytes_GET_SIZE(co->co_linetable),
                    co->co_firstlineno};
    return id;
}

static int same_code(const code_id_t *a, const code_id_t *b) {
    return a->code == b->code && a->table == b->table && a->named == b->named &&
           a->size == b->size && a->first == b->first;
}

#define LINE_SLOTS 256
typedef struct line_slot {
    int busy; /* the try-lock */
    code_id_t id;
    PyCodeAddressRange range;
} line_slot_t;
static line_slot_t line_slots[LINE_SLOTS];

/* The range at the head of co's line table, as PyCode_Addr2Line starts it. */
static void range_start(PyCodeObject *co, PyCodeAddressRange *r) {
    r->opaque.lo_next = (const void *)PyBytes_AS_STRING(co->co_linetable);
    r->opaque.limit = r->opaque.lo_next + PyBytes_GET_SIZE(co->co_linetable);
    r->opaque.computed_line = co->co_firstlineno;
    r->ar_start = -1;
    r->ar_end = 0;
    r->ar_line = -1;
}

/*
 * Most line lookups are of an instruction asked about before: a new call
 * stack is mostly frames already seen at the same place under another
 * caller (the import system's frames of every nested import, a library
 * function called from a new line), whose nodes are new but whose lines
 * are not (importing numpy: 51,000 of 62,000 lookups; pandas: 161,000 of
 * 195,000). So the last answers are kept by (code object, instruction)
 * in a direct-mapped table, each entry taken with a try-lock and used
 * only for the same code_id as a line slot is: a code object that reuses
 * a dead one's address has its own line table.
 */
#define LINE_MEMO_BITS 11
#define LINE_MEMO (1 << LINE_MEMO_BITS)
typedef struct line_memo {
    int busy; /* the try-lock */
    uint32_t line;
    const void *instr;
    code_id_t id;
} line_memo_t;
static line_memo_t line_memo[LINE_MEMO];

static line_memo_t *memo_of(const PyCodeObject *co, const void *instr) {
    uint64_t h = ((uintptr_t)co ^ (uint64_t)(uintptr_t)instr << 9) * UINT64_C(0x9E3779B97F4A7C15);
    return &line_memo[h >> (64 - LINE_MEMO_BITS)];
}

/* The kept line of (id, instr) into *line: 1, else 0. */
static int memo_get(const code_id_t *id, const void *instr, uint32_t *line) {
    line_memo_t *m = memo_of(id->code, instr);
    int hit = 0;
    if (__atomic_exchange_n(&m->busy, 1, __ATOMIC_ACQUIRE))
        return 0;
    if (m->instr == instr && same_code(&m->id, id)) {
        *line = m->line;
        hit = 1;
    }
    __atomic_store_n(&m->busy, 0, __ATOMIC_RELEASE);
    return hit;
}

static void memo_put(const code_id_t *id, const void *instr, uint32_t line) {
    line_memo_t *m = memo_of(id->code, instr);
    if (__atomic_exchange_n(&m->busy, 1, __ATOMIC_ACQUIRE))
        return;
    m->id = *id;
    m->instr = instr;
    m->line = line;
    __atomic_store_n(&m->busy, 0, __ATOMIC_RELEASE);
}
#endif

/* fil_native_line_of: the frame source's line_of. Context: any thread of
 * the program, GIL held or not (the frame's code object is alive). */
uint32_t fil_native_line_of(const void *code, const void *instr) {
    PyCodeObject *co = (PyCodeObject *)code;
    int addr = fil_py_offset(co, instr), line;
#if PY_VERSION_HEX >= 0x030A0000
    void *named = NULL;
    if (addr >= 0 && extra_index >= 0 && GET_EXTRA((PyObject *)co, extra_index, &named) == 0 &&
        named) {
        code_id_t id = code_id(co, named);
        uint32_t kept;
        if (memo_get(&id, instr, &kept))
            return kept;
        line_slot_t *s = &line_slots[((uintptr_t)co * UINT64_C(0x9E3779B97F4A7C15)) >> 56];
        if (!__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE)) {
            if (!same_code(&s->id, &id)) {
                s->id = id;
                range_start(co, &s->range);
            }
            line = _PyCode_CheckLineNumber(addr, &s->range);
            __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
            memo_put(&id, instr, line > 0 ? (uint32_t)line : 0);
            return line > 0 ? (uint32_t)line : 0;
        }
    }
#endif
    line = PyCode_Addr2Line(co, addr);
    return line > 0 ? (uint32_t)line : 0;
}

/* The host table of the preload library, if this process has one. */
static const fil_host_api_t *find_host(void) {
    const fil_host_api_t *h = dlsym(RTLD_DEFAULT, "fil_host_api");
    return h && h->version == FIL_PYAPI_VERSION ? h : NULL;
}

/*
 * fil_native_start - see fil/pyapi.h. Context: the preload library's audit
 * hook, GIL held, guard set, once.
 */
__attribute__((visibility("default"))) int fil_native_start(const fil_host_api_t *api) {
    if (!api || api->version != FIL_PYAPI_VERSION)
        return -1;
    fil_native_host = api;
    extra_index = REQUEST_EXTRA(code_died);
    fil_native_interp = PyInterpreterState_Get();
    if (extra_index < 0)
        return -1;
    find_stdlib();
    api->set_python_version(Py_GetVersion());
    api->pymem_install(); /* again, in case PYTHONMALLOC or -X dev replaced ours */
    /* FIL_TEST_WALK_ONLY: walk mode on every version (tests, benchmarks). */
    if (!getenv("FIL_TEST_WALK_ONLY"))
        fil_native_monitor_start();
    api->set_resolver(fil_native_resolve);
    return 0;
}

/* ---- the module, for the Jupyter magic ---------------------------------- */

static int tracked(void) { return fil_native_host && fil_native_host->active(); }

/* active() - True if allocations are tracked in this process. */
static PyObject *active(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyBool_FromLong(tracked());
}

static PyObject *not_tracked(void) {
    return PyErr_Format(PyExc_RuntimeError,
                        "memory is not being tracked in this process: start it under "
                        "fil-profile (for Jupyter, the 'Python 3 with fil-profile' kernel)");
}

/* reset_peak() - start measuring a new peak from now (e.g. a notebook cell). */
static PyObject *reset_peak(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    if (!tracked())
        return not_tracked();
    fil_native_host->reset_peak();
    Py_RETURN_NONE;
}

/* render_peak(dir, title) - write the peak report of this process into dir. */
static PyObject *render_peak(PyObject *self, PyObject *args) {
    (void)self;
    const char *dir, *title;
    if (!PyArg_ParseTuple(args, "ss", &dir, &title))
        return NULL;
    if (!tracked())
        return not_tracked();
    char err[256] = "";
    int r;
    int g = fil_native_host->guard_swap(1);
    Py_BEGIN_ALLOW_THREADS r = fil_native_host->render_live_peak(dir, title, err, sizeof err);
    Py_END_ALLOW_THREADS fil_native_host->guard_swap(g);
    if (r != 0)
        return PyErr_Format(PyExc_OSError, "%s: %s", dir, err);
    Py_RETURN_NONE;
}

/* oom_rearm(dir) - from now on out of memory raises MemoryError (as
 * --on-oom=continue) and the next one is dumped into dir; False while a
 * dump is being written. */
static PyObject *oom_rearm(PyObject *self, PyObject *args) {
    (void)self;
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir))
        return NULL;
    if (!tracked())
        return not_tracked();
    int g = fil_native_host->guard_swap(1);
    int r = fil_native_host->oom_rearm(dir);
    fil_native_host->guard_swap(g);
    return PyBool_FromLong(r == 0);
}

/* oom_dumps() - out-of-memory dumps completed in this process. */
static PyObject *oom_dumps(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    if (!tracked())
        return not_tracked();
    return PyLong_FromUnsignedLong(fil_native_host->oom_dumps());
}

static PyMethodDef methods[] = {
    {"active", active, METH_NOARGS, "Whether allocations are being tracked."},
    {"reset_peak", reset_peak, METH_NOARGS, "Start measuring a new peak from now."},
    {"render_peak", render_peak, METH_VARARGS, "render_peak(dir, title): write the peak report."},
    {"oom_rearm", oom_rearm, METH_VARARGS, "oom_rearm(dir): dump the next out of memory into dir."},
    {"oom_dumps", oom_dumps, METH_NOARGS, "Out-of-memory dumps completed in this process."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "fil-profile's native side.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void);
PyMODINIT_FUNC PyInit__native(void) {
    if (!fil_native_host) {
        const fil_host_api_t *h = find_host();
        if (h && h->active()) /* profiled, but started before us: not by the audit hook */
            fil_native_host = h;
    }
    return PyModule_Create(&module);
}
