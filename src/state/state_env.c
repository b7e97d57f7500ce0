/* SPDX-License-Identifier: MIT */
/*
 * state_env.c - the state module's test switch, read from the environment.
 *
 * Kept out of state_writer.c, which runs in signal context and may not call
 * getenv. FIL_TEST_NO_REOPEN=1 turns off re-opening the state through the
 * supervisor when the program closed our descriptor, so that tests can see
 * the fallback (growth stops, drops are counted and reported at exit). The
 * flag is read by a constructor, long before the first growth needs it.
 */
#include <stdlib.h>

#include "fil/state_writer.h"

int fil_state_no_reopen;

/* Read FIL_TEST_NO_REOPEN. Context: library start-up, single-threaded. */
__attribute__((constructor)) static void read_state_env(void) {
    fil_state_no_reopen = getenv("FIL_TEST_NO_REOPEN") != NULL;
}
