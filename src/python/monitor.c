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
 * lets any tool) before its stack first gets deep still gets it. Every
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

/* Take a free tool id; it, or -1. */
static int take_tool_id(PyObject *mon) {
    static const int ids[] = {4, 3};
    for (unsigned i = 0; i < sizeof ids / sizeof *ids; i++) {
        PyObject *r = PyObject_CallMethod(mon, "use_tool_id", "is", ids[i], "fil-profile");
        if (r) {
            Py_DECREF(r);
            return ids[i];
        }
        PyErr_Clear();
    }
    return -1;
}

/* usable: sys.monitoring may be asked (set at start); requested: the
 * pending call is queued (once). GIL. */
static int usable;
static int requested;

int fil_native_monitor_start(void) {
    usable = PySys_GetObject("monitoring") != NULL; /* borrowed */
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
        PyObject *f = PyObject_CallMethod(mon, "free_tool_id", "i", id);
        Py_XDECREF(f);
        PyErr_Clear();
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
        PyObject *f = PyObject_CallMethod(mon, "free_tool_id", "i", id);
        Py_XDECREF(f);
    }
    fil_native_host->guard_swap(g);
    if (r)
        __atomic_store_n(&fil_native_events, 1, __ATOMIC_RELEASE);
    Py_XDECREF(r);
    PyErr_Clear(); /* without events, every thread keeps walking: slower, never wrong */
    return 0;
}

void fil_native_monitor_request(void) {
    if (!usable || requested)
        return;
    requested = 1;
    if (Py_AddPendingCall(enable_events, NULL) != 0)
        requested = 0; /* the queue is full: the next deep walk asks again */
}

#else

int fil_native_monitor_start(void) { return 0; }

void fil_native_monitor_request(void) {}

#endif
