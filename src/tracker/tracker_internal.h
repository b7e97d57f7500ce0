/* SPDX-License-Identifier: MIT */
/* tracker_internal.h - what the tracker's files share. All under fil_lock. */
#ifndef FIL_TRACKER_INTERNAL_H
#define FIL_TRACKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fil/tracker.h"

/* Live malloc-family table (table.c). */
int fil_tracker_table_init(void);
/* 0 if inserted; 1 if addr was already live (it is replaced and its old
 * size/node returned, for the caller to uncharge); -1 if the table could not
 * grow (not inserted). */
int fil_tracker_table_put(uintptr_t addr, uint64_t size, uint32_t node, uint64_t *old_size,
                          uint32_t *old_node);
/* 1 and the entry's size/node if addr was live (entry removed), else 0. */
int fil_tracker_table_take(uintptr_t addr, uint64_t *size, uint32_t *node);
uint64_t fil_tracker_table_count(void);

/* Anonymous mapping ranges (mmaps.c). */
int fil_tracker_maps_init(void);
/* 0, or -1 if full. */
int fil_tracker_maps_add(uintptr_t start, uint64_t len, uint32_t node);
/* Remove [start, start+len) from all ranges, calling charge(node, -bytes)
 * for each piece removed, and noting the pieces in *saved if not NULL.
 * Returns the bytes removed. */
uint64_t fil_tracker_maps_remove(uintptr_t start, uint64_t len, fil_unmapped_t *saved);

/* A fork child forgets its parent's blocks (table.c, mmaps.c, pools.c). */
int fil_tracker_table_forget(void);
void fil_tracker_maps_forget(void);
void fil_tracker_pools_forget(void);

/* Apply delta to node's bytes and the total (tracker.c). */
void fil_tracker_charge_locked(uint32_t node, int64_t delta);

#endif
