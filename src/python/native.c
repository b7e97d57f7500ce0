/* SPDX-License-Identifier: MIT */
/*
 * native.c - the filprofiler._native extension: Python call stacks.
 *
 * A C profile function (PyEval_SetProfile) pushes each Python frame on the
 * preload library's per-thread shadow stack at "call" and pops it at
 * "return". Each code object is interned once as a function and remembers
 * its index in its co_extra slot, so later calls cost a lookup, not a hash
 * of names. Line numbers are not followed here: the preload library asks for
 * a frame's line (through the readers registered at start) only when an
 * allocation happens.
 *
 * Everything this module allocates for itself runs with the guard set, so
 * it is not charged to the program. Context: GIL held, except the frame
 * readers, which the allocating thread calls on its own suspended frames.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <stdint.h>

/* Provided by libfilpreload.so (already loaded: LD_PRELOAD). */
extern uint32_t fil_stacks_intern_func(const char *file, size_t flen, const char *name,
                                       size_t nlen, uint32_t first_line);
extern void fil_stacks_push(void *pyframe, void *code, uint32_t func);
extern void fil_stacks_pop(void *pyframe);
extern void fil_stacks_set_frame_readers(int (*line)(void *), int (*lasti)(void *));
extern int fil_tracking_active(void);
extern int fil_guard_swap(int v);
extern void fil_state_set_python_version(const char *v);
extern int fil_pymem_install(void);
extern void fil_tracker_reset_peak(void);
extern int fil_render_live_peak(const char *dir, const char *title, char *err, size_t errlen);

static Py_ssize_t extra_index = -1;

static int frame_line(void *f) { return PyFrame_GetLineNumber((PyFrameObject *)f); }

#if PY_VERSION_HEX >= 0x030B0000
static int frame_lasti(void *f) { return PyFrame_GetLasti((PyFrameObject *)f); }
#define FRAME_LASTI frame_lasti
#else
#define FRAME_LASTI NULL
#endif

/* The interned function of a code object, interning it on first sight.
 * Context: GIL held, guard set. */
static uint32_t func_of(PyCodeObject *code) {
    void *extra = NULL;
    if (_PyCode_GetExtra((PyObject *)code, extra_index, &extra) == 0 && extra)
        return (uint32_t)((uintptr_t)extra - 1);
    Py_ssize_t flen = 0, nlen = 0;
    const char *file = PyUnicode_AsUTF8AndSize(code->co_filename, &flen);
#if PY_VERSION_HEX >= 0x030B0000
    const char *name = PyUnicode_AsUTF8AndSize(code->co_qualname, &nlen);
#else
    const char *name = PyUnicode_AsUTF8AndSize(code->co_name, &nlen);
#endif
    if (!file || !name) {
        PyErr_Clear();
        file = file ? file : "?";
        name = name ? name : "?";
        flen = (Py_ssize_t)strlen(file);
        nlen = (Py_ssize_t)strlen(name);
    }
    uint32_t id = fil_stacks_intern_func(file, (size_t)flen, name, (size_t)nlen,
                                         (uint32_t)code->co_firstlineno);
    if (id != UINT32_MAX && _PyCode_SetExtra((PyObject *)code, extra_index,
                                             (void *)((uintptr_t)id + 1)) != 0)
        PyErr_Clear();
    return id;
}

/* The profile function. Context: GIL held. */
static int hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    (void)arg;
    if (what == PyTrace_CALL) {
        if (!fil_tracking_active())
            return 0;
        int g = fil_guard_swap(1);
        PyCodeObject *code = PyFrame_GetCode(frame);
        uint32_t func = func_of(code);
        if (func != UINT32_MAX)
            fil_stacks_push(frame, code, func); /* the frame keeps code alive */
        Py_DECREF(code);
        fil_guard_swap(g);
    } else if (what == PyTrace_RETURN) {
        fil_stacks_pop(frame);
    }
    return 0;
}

/* start() - profile the calling thread from now on. */
static PyObject *start(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    if (extra_index < 0) {
        extra_index = _PyEval_RequestCodeExtraIndex(NULL);
        if (extra_index < 0)
            return PyErr_Format(PyExc_RuntimeError, "no co_extra slot available");
        fil_stacks_set_frame_readers(frame_line, FRAME_LASTI);
        fil_state_set_python_version(Py_GetVersion());
        fil_pymem_install(); /* again, in case PYTHONMALLOC or -X dev replaced ours */
    }
    PyEval_SetProfile(hook, NULL);
    Py_RETURN_NONE;
}

/* stop() - stop profiling the calling thread. */
static PyObject *stop(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    PyEval_SetProfile(NULL, NULL);
    Py_RETURN_NONE;
}

/* active() - True if allocations are tracked in this process. */
static PyObject *active(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyBool_FromLong(fil_tracking_active());
}

/* reset_peak() - start measuring a new peak from now (e.g. a notebook cell). */
static PyObject *reset_peak(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    if (!fil_tracking_active())
        return PyErr_Format(PyExc_RuntimeError, "memory is not being tracked in this process");
    fil_tracker_reset_peak();
    Py_RETURN_NONE;
}

/* render_peak(dir, title) - write the peak report of this process into dir. */
static PyObject *render_peak(PyObject *self, PyObject *args) {
    (void)self;
    const char *dir, *title;
    if (!PyArg_ParseTuple(args, "ss", &dir, &title))
        return NULL;
    if (!fil_tracking_active())
        return PyErr_Format(PyExc_RuntimeError, "memory is not being tracked in this process");
    char err[256] = "";
    int r;
    int g = fil_guard_swap(1);
    Py_BEGIN_ALLOW_THREADS r = fil_render_live_peak(dir, title, err, sizeof err);
    Py_END_ALLOW_THREADS fil_guard_swap(g);
    if (r != 0)
        return PyErr_Format(PyExc_OSError, "%s: %s", dir, err);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start", start, METH_NOARGS, "Profile the calling thread's Python calls."},
    {"stop", stop, METH_NOARGS, "Stop profiling the calling thread."},
    {"active", active, METH_NOARGS, "Whether allocations are being tracked."},
    {"reset_peak", reset_peak, METH_NOARGS, "Start measuring a new peak from now."},
    {"render_peak", render_peak, METH_VARARGS, "render_peak(dir, title): write the peak report."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "fil-profile's native side.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void);
PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
