/* SPDX-License-Identifier: MIT */
/*
 * say.c - one FIL_MSG_PREFIX line on stderr, whatever the text holds.
 *
 * The names in a message come from the program (file and function names,
 * which may hold a newline or a terminal escape) and from the user (paths):
 * a control character is printed as '?', so that every line a script reads
 * starts with the prefix and nothing reaches the terminal raw.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

void fil_cli_vline(const char *fmt, va_list ap)
{
    char line[PATH_MAX + 1024];
    int n = vsnprintf(line, sizeof line, fmt, ap);

    if (n < 0)
        return;
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, FIL_MSG_PREFIX "%s\n", line);
}

int fil_cli_msgf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return -1;
}
