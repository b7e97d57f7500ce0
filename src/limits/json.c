/* SPDX-License-Identifier: MIT */
/*
 * json.c - the limits as a JSON object, for summary.json.
 *
 * SIGNAL-SAFE FILE: checked by scripts/check-signal-safety.
 * Allowed calls: strlen, and the fil_write_* writer of src/report.
 *
 * Design: summary.json is also written by the out-of-memory dump, so this
 * only formats through the caller's fil_writer_t (no allocation, no stdio).
 * Any value at or above FIL_UNLIMITED_MIN is written as null, which is how
 * "no limit" reads in JSON; keys are in a fixed order so the output can be
 * compared byte for byte.
 */
#include <string.h>

#include "limits_internal.h"

/* `"key": value` with value null when unlimited; sep is written first. */
static void put_u64(fil_writer_t *w, const char *sep, const char *key, uint64_t v)
{
    fil_write_str(w, sep);
    fil_write_json_str(w, key, strlen(key));
    fil_write_str(w, ": ");
    if (v >= FIL_UNLIMITED_MIN)
        fil_write_str(w, "null");
    else
        fil_write_u64(w, v);
}

/* `, "key": "string"` */
static void put_str(fil_writer_t *w, const char *key, const char *s)
{
    fil_write_str(w, ", ");
    fil_write_json_str(w, key, strlen(key));
    fil_write_str(w, ": ");
    fil_write_json_str(w, s, strlen(s));
}

/* See fil/limits.h. Writes one line-free JSON object; errors are the
 * writer's (sticky). Context: SIGNAL CONTEXT: caller's writer only. */
void fil_limits_write_json(const fil_limits_t *l, fil_writer_t *w)
{
    fil_limit_kind_t kind;
    uint64_t head = fil_limits_headroom(l, &kind, NULL);

    put_u64(w, "{", "rlimit_as", l->rlimit_as);
    put_u64(w, ", ", "rlimit_data", l->rlimit_data);
    put_u64(w, ", ", "mem_total", l->mem_total);
    put_u64(w, ", ", "mem_available", l->mem_available);
    put_u64(w, ", ", "swap_free", l->swap_free);
    put_u64(w, ", ", "cgroup_version", (uint64_t)l->cgroup_version);
    put_u64(w, ", ", "cgroup_limit", l->cgroup_limit);
    put_u64(w, ", ", "cgroup_usage", l->cgroup_usage);
    put_str(w, "cgroup_dir", l->cgroup_dir);
    put_u64(w, ", ", "vm_size", l->vm_size);
    put_u64(w, ", ", "vm_data", l->vm_data);
    put_str(w, "tightest", fil_limit_kind_name(kind));
    put_u64(w, ", ", "headroom", head);
    fil_write_str(w, "}");
}
