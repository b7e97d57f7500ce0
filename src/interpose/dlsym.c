/* SPDX-License-Identifier: MIT */
/*
 * dlsym.c - keep the allocator wrappers in force for symbols looked up by hand.
 *
 * A call to malloc from C code goes through the global symbol scope, where
 * this preloaded library comes first. A lookup in a specific library's
 * handle does not: ctypes.CDLL("libc.so.6").malloc, or
 * dlsym(dlopen("libc.so.6"), "free"), returns libc's own function, and
 * memory allocated through it would escape tracking (or be freed without
 * being forgotten). So dlsym is interposed: when a lookup that is not
 * RTLD_NEXT returns exactly the function our wrapper stands in front of, the
 * wrapper is returned instead (pthread_create too: the tracker's lock and a
 * new thread's attribution depend on seeing every thread start). Lookups of
 * anything else, lookups that find
 * another library's own allocator, and RTLD_NEXT chains are left alone.
 */
#include <dlfcn.h>
#include <string.h>

#include "fil/common.h"
#include "interpose_internal.h"

typedef void *(*dlsym_fn)(void *, const char *);

static dlsym_fn real_dlsym;

/* The wrapped names, and our wrappers. */
static const char *const names[] = {
    "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "mmap", "mmap64", "munmap", "mremap", "pthread_create",
};
#define NNAMES (sizeof names / sizeof *names)
static void *ours[NNAMES];   /* our definition of names[i] */
static void *theirs[NNAMES]; /* the next definition (libc's) */

/* Resolve the real dlsym and both sides of each wrapped name. Context: the
 * first dlsym call; dlvsym is not interposed, so this cannot recurse. */
static void resolve(void) {
    dlsym_fn d = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!d)
        d = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    for (unsigned i = 0; d && i < NNAMES; i++) {
        ours[i] = d(RTLD_DEFAULT, names[i]);
        theirs[i] = d(RTLD_NEXT, names[i]);
    }
    __atomic_store_n(&real_dlsym, d, __ATOMIC_RELEASE);
}

/* RTLD_NEXT means "after the caller's object", and glibc's dlsym takes the
 * caller from its own return address: so that lookup is a tail call (a
 * jump, GCC's sibling call at -O1 and above), which leaves the program's
 * return address in place. Called and returned from here, it would search
 * after libfilpreload instead: a user's preloaded shim doing
 * dlsym(RTLD_NEXT, "malloc") would find itself and recurse for ever. */
FIL_API void *dlsym(void *handle, const char *symbol) {
    if (!__atomic_load_n(&real_dlsym, __ATOMIC_ACQUIRE))
        resolve();
    dlsym_fn d = real_dlsym;
    if (handle == RTLD_NEXT && d)
        return d(handle, symbol); /* tail call: see above */
    if (!d)
        return NULL;
    void *p = d(handle, symbol);
    if (!p || handle == RTLD_DEFAULT)
        return p;
    for (unsigned i = 0; i < NNAMES; i++)
        if (p == theirs[i] && ours[i] && strcmp(symbol, names[i]) == 0)
            return ours[i];
    return p;
}
