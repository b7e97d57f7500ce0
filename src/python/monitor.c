/* SPDX-License-Identifier: MIT */
/*
 * monitor.c - frame start and exit events from sys.monitoring (PEP 669),
 * on CPython 3.12 and newer.
 *
 * With them the preload library keeps each thread's resolved chain as a
 * mirror of the live one (fil/pyresolve.h), so an allocation costs the
 * same at any stack depth. They are not free: every call and return runs
 * a callback (calls.py: 2.9x plain Python's instructions with them, 2.0x
 * without), and the walk's shortcuts make shallow stacks cheap without
 * them. So they come on only when a thread's stack first gets deep
 * (FIL_PY_DEEP_ON frames, the walk asks through fil_src_hook), and stay
 * on: a pending call (Py_AddPendingCall) takes the tool id, registers the
 * callbacks and sets the events, at a point where the interpreter may
 * re-instrument the running code, not in the middle of the allocation
 * that asked. We take a tool id of our own (4, else 3: the
 * ones PEP 669 leaves free), so cProfile (PROFILER_ID), coverage and
 * debuggers keep theirs and nobody's hook replaces another's; and only
 * then, so that a program that takes one of them for itself (as PEP 669
 * lets any tool) before its stack first gets deep still gets it. The id
 * stays the program's to take: sys.monitoring's use_tool_id, get_tool and
 * free_tool_id are wrapped from the start, so that the id we hold looks
 * free (get_tool says None, free_tool_id does nothing) and a use_tool_id
 * of it first gives it back (our events and callbacks cleared, every
 * thread walking again) and a later deep stack asks for the other. Every
 * report is checked against the mirror, and the first mismatch (a greenlet
 * switch, events lost) only sends the next allocation back to the walk, so
 * the events make attribution faster, never wrong.
 *
 * The callbacks are C functions called with vectorcall; they allocate
 * nothing and call no Python code. Context: GIL held, the thread whose
 * frame starts or exits.
 */
#include "native_internal.h"

#if PY_VERSION_HEX >= 0x030C0000

/* PY_START, PY_RESUME, PY_THROW (code, offset[, exception]): a frame runs. */
static PyObject *on_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs >= 1)
        fil_native_started(args[0]);
    Py_RETURN_NONE;
}

/* PY_RETURN, PY_YIELD, PY_UNWIND (code, offset, value): a frame leaves. */
static PyObject *on_leave(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs >= 1)
        fil_native_exiting(args[0]);
    Py_RETURN_NONE;
}

static PyMethodDef enter_def = {"fil_profile_enter", (PyCFunction)(void (*)(void))on_start,
                                METH_FASTCALL, NULL};
static PyMethodDef exit_def = {"fil_profile_exit", (PyCFunction)(void (*)(void))on_leave,
                               METH_FASTCALL, NULL};

/* mon.events.<name> as a long, or -1. */
static long event_bit(PyObject *mon, const char *name) {
    PyObject *events = PyObject_GetAttrString(mon, "events");
    PyObject *v = events ? PyObject_GetAttrString(events, name) : NULL;
    long bit = v ? PyLong_AsLong(v) : -1;
    Py_XDECREF(v);
    Py_XDECREF(events);
    return bit;
}

/* Register cb for each event named in names on tool id; the mask of them, or -1. */
static long register_all(PyObject *mon, int id, const char *const *names, PyObject *cb) {
    long mask = 0;
    for (; *names; names++) {
        long bit = event_bit(mon, *names);
        PyObject *r = bit > 0 ? PyObject_CallMethod(mon, "register_callback", "ilO", id, bit, cb)
                              : NULL;
        if (!r)
            return -1;
        Py_DECREF(r);
        mask |= bit;
    }
    return mask;
}

/* usable: sys.monitoring may be asked (set at start); requested: the
 * pending call is queued (once while we hold no id); our_id: the tool id
 * we hold, or -1; generations: how many times events began. GIL. */
static int usable;
static int requested;
static int our_id = -1;
static int generations;

/* sys.monitoring's own use_tool_id, free_tool_id and get_tool (NULL if
 * they could not be wrapped: then they are the module's). */
static PyObject *real_use, *real_free, *real_get;

/* Call sys.monitoring's function `name` (its own, when wrapped). */
static PyObject *call_real(PyObject *mon, PyObject *real, const char *name, const char *fmt,
                           int id, PyObject *arg) {
    if (!real)
        return PyObject_CallMethod(mon, name, fmt, id, arg);
    return PyObject_CallFunction(real, fmt, id, arg);
}

/* Take a free tool id; it, or -1. */
static int take_tool_id(PyObject *mon) {
    static const int ids[] = {4, 3};
    for (unsigned i = 0; i < sizeof ids / sizeof *ids; i++) {
        PyObject *name = PyUnicode_FromString("fil-profile");
        PyObject *r = name ? call_real(mon, real_use, "use_tool_id", "iO", ids[i], name) : NULL;
        Py_XDECREF(name);
        if (r) {
            Py_DECREF(r);
            return our_id = ids[i];
        }
        PyErr_Clear();
    }
    return -1;
}

/* Give back tool id `id`: no events, no callbacks, free. Whatever it
 * allocates (the code re-instrumented) is ours. GIL; no exception set. */
static void free_tool(PyObject *mon, int id) {
    static const char *const names[] = {"PY_START", "PY_RESUME",  "PY_THROW",
                                        "PY_RETURN", "PY_YIELD", "PY_UNWIND"};
    int g = fil_native_host->guard_swap(1);
    PyObject *r = PyObject_CallMethod(mon, "set_events", "ii", id, 0);
    Py_XDECREF(r);
    PyErr_Clear();
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        long bit = event_bit(mon, names[i]);
        r = bit > 0 ? PyObject_CallMethod(mon, "register_callback", "ilO", id, bit, Py_None) : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
    }
    r = call_real(mon, real_free, "free_tool_id", "i", id, NULL);
    Py_XDECREF(r);
    PyErr_Clear();
    if (id == our_id)
        our_id = -1;
    fil_native_host->guard_swap(g);
}

/* The tool id argument of a wrapped call, or -1 if it is none (the real
 * function then says what is wrong with it). */
static int id_of(PyObject *const *args, Py_ssize_t nargs) {
    int overflow = 0;
    long v = nargs >= 1 && PyLong_Check(args[0]) ? PyLong_AsLongAndOverflow(args[0], &overflow) : -1;
    if (v == -1 && PyErr_Occurred())
        PyErr_Clear();
    return overflow || v < 0 || v > 63 ? -1 : (int)v;
}

/* use_tool_id(id, name): ours first given back, events off (every thread
 * walks), and asked for again by the next deep stack (the other id). */
static PyObject *use_tool_id(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (our_id >= 0 && id_of(args, nargs) == our_id) {
        PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
        __atomic_store_n(&fil_native_events, 0, __ATOMIC_RELEASE);
        if (mon)
            free_tool(mon, our_id);
        requested = 0;
    }
    return PyObject_Vectorcall(real_use, args, (size_t)nargs, NULL);
}

/* free_tool_id(id): ours is not the program's to free (it looks free). */
static PyObject *free_tool_id(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (our_id >= 0 && id_of(args, nargs) == our_id && nargs == 1)
        Py_RETURN_NONE;
    return PyObject_Vectorcall(real_free, args, (size_t)nargs, NULL);
}

/* get_tool(id): ours looks free. */
static PyObject *get_tool(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (our_id >= 0 && id_of(args, nargs) == our_id && nargs == 1)
        Py_RETURN_NONE;
    return PyObject_Vectorcall(real_get, args, (size_t)nargs, NULL);
}

static PyMethodDef wrapped_defs[] = {
    {"use_tool_id", (PyCFunction)(void (*)(void))use_tool_id, METH_FASTCALL, NULL},
    {"free_tool_id", (PyCFunction)(void (*)(void))free_tool_id, METH_FASTCALL, NULL},
    {"get_tool", (PyCFunction)(void (*)(void))get_tool, METH_FASTCALL, NULL},
};

/* Put the wrappers in place of sys.monitoring's three (all or none, each
 * with the docstring and signature of the one it wraps, bound to the
 * module as those are). GIL, at start. */
static void wrap_tool_ids(PyObject *mon) {
    PyObject **reals[] = {&real_use, &real_free, &real_get};
    PyObject *modname = PyUnicode_FromString("sys.monitoring"), *w[3] = {NULL, NULL, NULL};
    int ok = modname != NULL;
    for (int i = 0; ok && i < 3; i++) {
        PyObject *real = PyObject_GetAttrString(mon, wrapped_defs[i].ml_name);
        if (real && PyCFunction_Check(real)) /* its docstring and signature (static) */
            wrapped_defs[i].ml_doc = ((PyCFunctionObject *)real)->m_ml->ml_doc;
        *reals[i] = real;
        w[i] = real ? PyCFunction_NewEx(&wrapped_defs[i], mon, modname) : NULL;
        ok = w[i] != NULL;
    }
    for (int i = 0; ok && i < 3; i++)
        ok = PyObject_SetAttrString(mon, wrapped_defs[i].ml_name, w[i]) == 0;
    for (int i = 0; i < 3; i++) {
        if (!ok && *reals[i]) { /* put back what was replaced, keep none */
            (void)PyObject_SetAttrString(mon, wrapped_defs[i].ml_name, *reals[i]);
            Py_CLEAR(*reals[i]);
        }
        Py_XDECREF(w[i]);
    }
    Py_XDECREF(modname);
    PyErr_Clear();
}

int fil_native_monitor_start(void) {
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    usable = mon != NULL;
    if (mon)
        wrap_tool_ids(mon);
    return usable;
}

/* Take a tool id and register our callbacks: the tool id and its events'
 * mask, or -1 (no id free, or a failure: none is kept). GIL. */
static int take_tool(PyObject *mon, long *mask) {
    static const char *const enters[] = {"PY_START", "PY_RESUME", "PY_THROW", NULL};
    static const char *const exits[] = {"PY_RETURN", "PY_YIELD", "PY_UNWIND", NULL};
    int id = take_tool_id(mon);
    if (id < 0)
        return -1;
    PyObject *enter = PyCFunction_New(&enter_def, NULL), *leave = PyCFunction_New(&exit_def, NULL);
    long a = enter ? register_all(mon, id, enters, enter) : -1;
    long b = leave ? register_all(mon, id, exits, leave) : -1;
    Py_XDECREF(enter); /* sys.monitoring holds its own references */
    Py_XDECREF(leave);
    if (a <= 0 || b <= 0) {
        PyErr_Clear();
        free_tool(mon, id);
        return -1;
    }
    *mask = a | b;
    return id;
}

/* The pending call: take a tool id and set our events. What this and the
 * interpreter allocate for it (our callbacks, the instrumentation of the
 * code running now) is our own (guard set); code that starts later is
 * instrumented before its first instruction, which the resolver
 * recognises (fil_src_top). Event mode begins once they are set.
 * Context: the main thread, GIL held, between two instructions. */
static int enable_events(void *unused) {
    (void)unused;
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    int g = fil_native_host->guard_swap(1);
    long mask = 0;
    int id = mon ? take_tool(mon, &mask) : -1;
    PyObject *r = id >= 0 ? PyObject_CallMethod(mon, "set_events", "il", id, mask) : NULL;
    if (id >= 0 && !r) {
        PyErr_Clear();
        free_tool(mon, id);
    }
    fil_native_host->guard_swap(g);
    if (r) {
        generations = generations == INT32_MAX ? 1 : generations + 1;
        __atomic_store_n(&fil_native_events, generations, __ATOMIC_RELEASE);
    }
    Py_XDECREF(r);
    PyErr_Clear(); /* without events, every thread keeps walking: slower, never wrong */
    return 0;
}

void fil_native_monitor_request(void) {
    if (!usable || requested || our_id >= 0)
        return;
    requested = 1;
    if (Py_AddPendingCall(enable_events, NULL) != 0)
        requested = 0; /* the queue is full: the next deep walk asks again */
}

#else

int fil_native_monitor_start(void) { return 0; }

void fil_native_monitor_request(void) {}

#endif
