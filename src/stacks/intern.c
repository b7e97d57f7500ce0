/* SPDX-License-Identifier: MIT */
/*
 * intern.c - interning of functions and call-stack nodes into the shared state.
 *
 * Two open-addressing hash tables in private pages map a key to an index in
 * the shared state: functions by (file, name, first line) content, nodes by
 * (parent, func, line). Records are written to the state first and published
 * by advancing its count; only then does the table point at them, so a
 * reader of the state never sees a half-written record. Tables double at 50%
 * load. Everything runs under the one lock; nothing here calls malloc.
 */
#include <string.h>

#include "fil/lock.h"
#include "fil/oom.h"
#include "fil/stacks.h"
#include "fil/state_writer.h"
#include "fil/sys.h"

typedef struct slot {
    uint32_t hash; /* hash of the key (never 0), 0 = empty; its low bits place it */
    uint32_t index;
} slot_t;

typedef struct table {
    slot_t *slots; /* private pages */
    uint64_t cap;  /* power of two */
    uint64_t used;
} table_t;

static table_t func_table, node_table; /* protected by fil_lock */

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h ? h : 1;
}

/* The 32 bits of a mixed hash a slot keeps (8-byte slots: half the pages
 * a table of numpy's 43,000 call stacks touches as it doubles). */
static uint32_t slot_hash(uint64_t h) {
    uint32_t x = (uint32_t)h ^ (uint32_t)(h >> 32);
    return x ? x : 1;
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * UINT64_C(0x100000001b3);
    return h;
}

static int table_init(table_t *t, uint64_t cap) {
    t->slots = fil_sys_pages(cap * sizeof(slot_t));
    t->cap = cap;
    t->used = 0;
    return t->slots ? 0 : -1;
}

/* Double the table. 0, or -1 with the table unchanged. Context: lock held. */
static int table_grow(table_t *t) {
    table_t n;
    if (table_init(&n, t->cap * 2) != 0)
        return -1;
    for (uint64_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].hash)
            continue;
        uint64_t j = t->slots[i].hash & (n.cap - 1);
        while (n.slots[j].hash)
            j = (j + 1) & (n.cap - 1);
        n.slots[j] = t->slots[i];
    }
    n.used = t->used;
    fil_sys_unmap(t->slots, t->cap * sizeof(slot_t));
    *t = n;
    return 0;
}

/* Insert (hash, index) at a slot known to be free. Context: lock held. */
static void table_put(table_t *t, uint32_t hash, uint32_t index) {
    uint64_t j = hash & (t->cap - 1);
    while (t->slots[j].hash)
        j = (j + 1) & (t->cap - 1);
    t->slots[j].hash = hash;
    t->slots[j].index = index;
    t->used++;
}

int fil_stacks_init(void) {
    if (table_init(&func_table, 1024) || table_init(&node_table, 4096))
        return -1;
    fil_lock();
    /* Node 0: "[No Python stack]". */
    int ok = fil_state_reserve(FIL_SEG_NODES, 1) == 0;
    if (ok) {
        fil_node_t *n = fil_state_at(FIL_SEG_NODES, 0);
        n->parent = FIL_NONE;
        n->func = FIL_NONE;
        __atomic_store_n(&fil_state->nodes.count, 1, __ATOMIC_RELEASE);
    }
    fil_unlock();
    return ok ? 0 : -1;
}

static int string_equals(uint64_t idx, const char *s, size_t n) {
    const char *p = fil_state_at(FIL_SEG_STRINGS, idx);
    uint32_t len;
    memcpy(&len, p, 4);
    return len == n && memcmp(p + 4, s, n) == 0;
}

/* Publish a new function record. Its index, or FIL_NONE. Context: lock held. */
static uint32_t add_func(const char *file, size_t flen, const char *name, size_t nlen,
                         uint32_t first_line) {
    uint64_t count = fil_state->funcs.count;
    if (count >= FIL_NONE || fil_state_reserve(FIL_SEG_FUNCS, 1) != 0)
        return FIL_NONE;
    uint64_t fs = fil_state_add_string(file, flen);
    uint64_t ns = fil_state_add_string(name, nlen);
    if (fs == UINT64_MAX || ns == UINT64_MAX)
        return FIL_NONE;
    fil_func_t *f = fil_state_at(FIL_SEG_FUNCS, count);
    f->file = fs;
    f->name = ns;
    f->first_line = first_line;
    __atomic_store_n(&fil_state->funcs.count, count + 1, __ATOMIC_RELEASE);
    return (uint32_t)count;
}

/*
 * fil_stacks_intern_func - index of the function (file, name, first_line),
 * adding it if new. FIL_NONE if the state is full. Context: any; takes the lock.
 */
uint32_t fil_stacks_intern_func(const char *file, size_t flen, const char *name, size_t nlen,
                                uint32_t first_line) {
    if (flen > FIL_STRING_MAX)
        flen = FIL_STRING_MAX;
    if (nlen > FIL_STRING_MAX)
        nlen = FIL_STRING_MAX;
    uint32_t h =
        slot_hash(mix(hash_bytes(hash_bytes(first_line * UINT64_C(31), file, flen), name, nlen)));
    uint32_t found = FIL_NONE;
    fil_lock();
    for (uint64_t j = h & (func_table.cap - 1); func_table.slots[j].hash;
         j = (j + 1) & (func_table.cap - 1)) {
        if (func_table.slots[j].hash != h)
            continue;
        const fil_func_t *f = fil_state_at(FIL_SEG_FUNCS, func_table.slots[j].index);
        if (f->first_line == first_line && string_equals(f->file, file, flen) &&
            string_equals(f->name, name, nlen)) {
            found = func_table.slots[j].index;
            break;
        }
    }
    if (found == FIL_NONE && (func_table.used * 2 < func_table.cap || table_grow(&func_table) == 0)) {
        found = add_func(file, flen, name, nlen, first_line);
        if (found != FIL_NONE)
            table_put(&func_table, h, found);
    }
    if (found == FIL_NONE)
        fil_state->stacks_dropped++;
    fil_unlock();
    return found;
}

static uint64_t node_hash(uint32_t parent, uint32_t func, uint32_t line) {
    return mix(((uint64_t)parent << 32 | func) ^ mix(line + UINT64_C(0x9e3779b97f4a7c15)));
}

/* Publish a new node record. Its index, or 0. Context: lock held. */
static uint32_t add_node(uint32_t parent, uint32_t func, uint32_t line) {
    uint64_t count = fil_state->nodes.count;
    if (count >= FIL_NONE - 1 || fil_state_reserve(FIL_SEG_NODES, 1) != 0)
        return 0;
    fil_node_t *n = fil_state_at(FIL_SEG_NODES, count);
    n->parent = parent;
    n->func = func;
    n->line = line;
    n->depth = parent == FIL_NONE ? 1 : ((fil_node_t *)fil_state_at(FIL_SEG_NODES, parent))->depth + 1;
    __atomic_store_n(&fil_state->nodes.count, count + 1, __ATOMIC_RELEASE);
    fil_oom_nodes_grew(count + 1);
    return (uint32_t)count;
}

/*
 * fil_stacks_intern_node_locked - index of node (parent, func, line), adding
 * it if new; 0 (and a drop counted) if the state cannot grow.
 * Context: lock held.
 */
uint32_t fil_stacks_intern_node_locked(uint32_t parent, uint32_t func, uint32_t line) {
    uint32_t h = slot_hash(node_hash(parent, func, line));
    for (uint64_t j = h & (node_table.cap - 1); node_table.slots[j].hash;
         j = (j + 1) & (node_table.cap - 1)) {
        if (node_table.slots[j].hash != h)
            continue;
        const fil_node_t *n = fil_state_at(FIL_SEG_NODES, node_table.slots[j].index);
        if (n->parent == parent && n->func == func && n->line == line)
            return node_table.slots[j].index;
    }
    if (node_table.used * 2 >= node_table.cap && table_grow(&node_table) != 0)
        goto full;
    uint32_t idx = add_node(parent, func, line);
    if (idx == 0)
        goto full;
    table_put(&node_table, h, idx);
    return idx;
full:
    fil_state->stacks_dropped++;
    return 0;
}

/* fil_stacks_intern_node_locked, taking the lock. Context: any, lock not held. */
uint32_t fil_stacks_intern_node(uint32_t parent, uint32_t func, uint32_t line) {
    fil_lock();
    uint32_t n = fil_stacks_intern_node_locked(parent, func, line);
    fil_unlock();
    return n;
}

uint32_t fil_stacks_node_count(void) {
    return fil_state ? (uint32_t)__atomic_load_n(&fil_state->nodes.count, __ATOMIC_ACQUIRE) : 0;
}
