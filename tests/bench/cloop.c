// SPDX-License-Identifier: MIT
/*
 * cloop.c - native malloc/free loop for the `c_loop` bench row.
 *
 * fil_bench_cloop(n) performs n malloc/free pairs of small, varying sizes
 * (16..271 bytes) with up to 8 blocks live at once, and writes one byte into
 * each block so the compiler cannot elide the pair. It is called once through
 * ctypes, so the time measured is the allocator's (plus fil-profile's
 * interposition and tracking), not ctypes' call overhead.
 *
 * Built by scripts/bench.py with `gcc -shared -fPIC -O2` into a temp dir.
 */
#include <stdlib.h>

/* Sink the compiler must assume is read, so malloc/free are not optimised out. */
volatile unsigned char fil_bench_sink;

/*
 * Perform n malloc/free pairs; return the number of failed mallocs (0 normally).
 * Context: the caller's thread; holds no locks.
 */
long fil_bench_cloop(long n) {
    void *live[8] = {0};
    long failed = 0;
    for (long i = 0; i < n; i++) {
        unsigned slot = (unsigned)i & 7u;
        free(live[slot]);
        size_t size = 16 + (size_t)((i * 37) & 255);
        unsigned char *p = malloc(size);
        if (p == NULL) {
            failed++;
        } else {
            p[0] = (unsigned char)i;
            fil_bench_sink = p[0];
        }
        live[slot] = p;
    }
    for (unsigned slot = 0; slot < 8; slot++) {
        free(live[slot]);
    }
    return failed;
}
