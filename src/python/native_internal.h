/* SPDX-License-Identifier: MIT */
/* native_internal.h - what the files of the extension share. */
#ifndef FIL_NATIVE_INTERNAL_H
#define FIL_NATIVE_INTERNAL_H

#include "fil/pyapi.h"
#include "frames.h"

/* The preload library's table; NULL when this process is not profiled. */
extern const fil_host_api_t *fil_native_host;

/* Naming code objects (native.c): the interned function and FIL_PYFUNC_*
 * flags of a code object (FIL_PYFUNC_MAY_MARK in *flags on the way in:
 * co_extra may be read and set), the line of an instruction position, and
 * the epoch bumped when a code object named in co_extra dies. Context:
 * the allocating thread, guard set. */
uint32_t fil_native_func_of(const void *code, unsigned *flags);
uint32_t fil_native_line_of(const void *code, const void *instr);
extern uint32_t fil_native_code_epoch;

/* The interpreter the extension started in (the main one): our co_extra
 * slot and sys.monitoring tool id are that interpreter's only. */
extern PyInterpreterState *fil_native_interp;

/* 1 in event mode (3.12+: set once, when the first deep stack asked for
 * events and they are on; read without the GIL, atomically). */
extern int fil_native_events;

/* The resolver (resolver.c: fil/pyresolve.h over this interpreter's
 * frames), and event mode's reports of the frame that just started or is
 * about to exit on the calling thread, whose code object is `code` (the
 * monitoring callback's argument). Context: the thread itself; the
 * reports are made with the GIL held. */
uint32_t fil_native_resolve(fil_pythread_t *t);
void fil_native_started(const void *code);
void fil_native_exiting(const void *code);

/* Get ready for frame start/exit events (monitor.c): nothing is taken
 * yet. 1 if this interpreter has sys.monitoring, else 0. Context: GIL
 * held, at start. */
int fil_native_monitor_start(void);
/* Ask for the events (once; they come on at the main thread's next safe
 * point, and stay on). Context: GIL held, inside CPython's allocator. */
void fil_native_monitor_request(void);

#endif
