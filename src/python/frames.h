/* SPDX-License-Identifier: MIT */
/*
 * frames.h - the running interpreter's frames, version by version.
 *
 * The extension is compiled once per CPython version, against that
 * version's headers; these few inline functions are all it knows of frame
 * layouts:
 *
 *   3.9, 3.10  frames are PyFrameObjects: tstate->frame, f_back, f_code,
 *              f_lasti (3.9: bytes, 3.10: code units; -1 before the first
 *              instruction).
 *   3.11       _PyInterpreterFrame in the thread's data stack (internal
 *              header): tstate->cframe->current_frame, previous, f_code,
 *              prev_instr; a frame still setting up (before its first
 *              traceable instruction) is not shown, as in tracebacks.
 *   3.12       as 3.11, plus shim frames owned by the C stack between a C
 *              caller and the Python frames it runs; they are skipped.
 *   3.13       tstate->current_frame, f_executable (a code object, except
 *              for shims), instr_ptr (the instruction being executed).
 *
 * An instruction position is an opaque pointer-sized value: the address of
 * the code unit (3.11+) or the offset plus two (3.9/3.10, so that it is
 * never NULL). Only frames of the calling thread are read, and only while
 * that thread is inside an allocator or an event callback: its frames
 * cannot change meanwhile, with or without the GIL.
 */
#ifndef FIL_PY_FRAMES_H
#define FIL_PY_FRAMES_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <frameobject.h>

#if PY_VERSION_HEX >= 0x030B0000
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE
typedef _PyInterpreterFrame fil_frame_t;
#else
typedef PyFrameObject fil_frame_t;
#endif

#if PY_VERSION_HEX < 0x03090000
#error "fil-profile supports CPython 3.9 and newer"
#endif

/* The innermost frame of thread state ts (maybe hidden), or NULL. */
static inline fil_frame_t *fil_py_top(PyThreadState *ts) {
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#elif PY_VERSION_HEX >= 0x030B0000
    return ts->cframe ? ts->cframe->current_frame : NULL;
#else
    return ts->frame;
#endif
}

static inline fil_frame_t *fil_py_below(fil_frame_t *f) {
#if PY_VERSION_HEX >= 0x030B0000
    return f->previous;
#else
    return f->f_back;
#endif
}

/* 1 if f is not a Python frame a traceback would show. */
static inline int fil_py_hidden(fil_frame_t *f) {
#if PY_VERSION_HEX >= 0x030C0000
    if (f->owner == FRAME_OWNED_BY_CSTACK)
        return 1;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    if (!f->f_executable || !PyCode_Check(f->f_executable))
        return 1;
#endif
#if PY_VERSION_HEX >= 0x030B0000
    return _PyFrame_IsIncomplete(f);
#else
    (void)f;
    return 0;
#endif
}

static inline PyCodeObject *fil_py_code(fil_frame_t *f) {
#if PY_VERSION_HEX >= 0x030D0000
    return (PyCodeObject *)f->f_executable;
#else
    return f->f_code;
#endif
}

static inline const void *fil_py_instr(fil_frame_t *f) {
#if PY_VERSION_HEX >= 0x030D0000
    return f->instr_ptr;
#elif PY_VERSION_HEX >= 0x030B0000
    return f->prev_instr;
#else
    return (const void *)(intptr_t)(f->f_lasti + 2);
#endif
}

/* The byte offset PyCode_Addr2Line wants for instruction position instr. */
static inline int fil_py_offset(PyCodeObject *co, const void *instr) {
#if PY_VERSION_HEX >= 0x030B0000
    return (int)((const _Py_CODEUNIT *)instr - _PyCode_CODE(co)) * (int)sizeof(_Py_CODEUNIT);
#elif PY_VERSION_HEX >= 0x030A0000
    (void)co;
    return (int)((intptr_t)instr - 2) * (int)sizeof(_Py_CODEUNIT);
#else
    (void)co;
    return (int)((intptr_t)instr - 2);
#endif
}

/* 1 if f is at its first instruction (3.12+: RESUME, where the interpreter
 * instruments the code for sys.monitoring before the start event). */
static inline int fil_py_starting(const void *frame) {
#if PY_VERSION_HEX >= 0x030C0000
    fil_frame_t *f = (fil_frame_t *)(uintptr_t)frame;
    PyCodeObject *co = fil_py_code(f);
    return (const _Py_CODEUNIT *)fil_py_instr(f) == _PyCode_CODE(co) + co->_co_firsttraceable;
#else
    (void)frame;
    return 0;
#endif
}

/* The calling thread's thread state, whether or not it holds the GIL
 * (NULL for a thread Python does not know). Since 3.12 the attached
 * thread state is a thread-local of the calling thread itself, read first.
 * Before, the "current" one is the GIL holder's, maybe another thread's:
 * it is taken when it was made for the calling thread (its thread_id is
 * ours, *self: the thread's pthread_self(), asked once; an allocation with
 * the GIL held, the common case, ~6 instructions), and otherwise the
 * GIL-state key is asked (a TSS lookup, ~40). */
static inline PyThreadState *fil_py_thread_state(unsigned long *self) {
#if PY_VERSION_HEX >= 0x030D0000
    (void)self;
    PyThreadState *ts = PyThreadState_GetUnchecked();
    return ts ? ts : PyGILState_GetThisThreadState();
#elif PY_VERSION_HEX >= 0x030C0000
    (void)self;
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    return ts ? ts : PyGILState_GetThisThreadState();
#else
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    if (__builtin_expect(!*self, 0))
        *self = (unsigned long)pthread_self();
    if (ts && ts->thread_id == *self)
        return ts;
    return PyGILState_GetThisThreadState();
#endif
}

#endif
