// SPDX-License-Identifier: MIT
/*
 * cthread.c - a tiny shared library for the end-to-end tests: memory
 * allocated by native threads and native loops, called through ctypes.
 *
 * Built by the `cthread_lib` fixture of tests/e2e/conftest.py with
 * `gcc -shared -fPIC -O2 -pthread`. Every block stays live (its pointer is
 * kept in a global) until release_all() is called, so the tests can check
 * it is charged to the Python line that called into the library.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEPT 64

/* Blocks kept live; written by the worker thread before join, read after. */
static void *kept[MAX_KEPT];
static int n_kept;

static void keep(void *p) {
    if (p != NULL && n_kept < MAX_KEPT)
        kept[n_kept++] = p;
}

/* Thread body: malloc `arg` bytes, touch every page, keep the block. */
static void *c_thread_main(void *arg) {
    size_t n = (size_t)arg;
    char *p = malloc(n);
    if (p != NULL)
        memset(p, 1, n);
    keep(p);
    return p;
}

/* Start a pthread that mallocs and touches n bytes, keep them live, return
 * after joining it. Returns 0, or -1 if the thread or the memory failed. */
int start_c_thread(size_t n) {
    pthread_t t;
    void *result = NULL;
    if (pthread_create(&t, NULL, c_thread_main, (void *)n) != 0)
        return -1;
    if (pthread_join(t, &result) != 0)
        return -1;
    return result != NULL ? 0 : -1;
}

/* malloc `count` blocks of `size` bytes from the calling thread and keep
 * them live. Returns the number of blocks allocated. */
long cloop(long count, size_t size) {
    long i;
    for (i = 0; i < count; i++) {
        void *p = malloc(size);
        if (p == NULL)
            break;
        memset(p, 2, size);
        keep(p);
    }
    return i;
}

/* free every block kept so far. */
void release_all(void) {
    while (n_kept > 0)
        free(kept[--n_kept]);
}
