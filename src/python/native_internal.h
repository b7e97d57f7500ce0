/* SPDX-License-Identifier: MIT */
/* native_internal.h - what the files of the extension share. */
#ifndef FIL_NATIVE_INTERNAL_H
#define FIL_NATIVE_INTERNAL_H

#include "fil/pyapi.h"
#include "frames.h"

/* The preload library's table; NULL when this process is not profiled. */
extern const fil_host_api_t *fil_native_host;

/* The frame reader registered with the preload library (native.c). */
extern fil_pyframes_t fil_native_frames;

/* The innermost visible frame of ts into *top and, if below is not NULL,
 * the next visible one into *below (frame NULL if none). 1, or 0 if ts runs
 * no Python frame. Context: ts is the calling thread's. */
int fil_native_top_of(PyThreadState *ts, fil_pyraw_t *top, fil_pyraw_t *below);

/* Ask for frame start/exit events (monitor.c). 1 if they are on (event
 * mode), 0 if this interpreter has no sys.monitoring or no free tool id.
 * Context: GIL held, at start. */
int fil_native_monitor_start(void);

#endif
