/* SPDX-License-Identifier: MIT */
/*
 * parse_size.c - parsing human sizes such as "2G" or "1.5GiB".
 *
 * Design: the grammar is DIGITS [ "." DIGITS ] [ UNIT ], where UNIT is one
 * of K, M, G, T (any case, powers of 1024), optionally followed by "iB" or
 * "B", or a lone "B" for bytes. Nothing else is accepted: no sign, no
 * blanks, no exponent. The value is computed exactly in integers: the whole
 * part times the unit, plus floor(fraction * unit) by binary long division
 * (the unit is a power of two), with every overflow rejected. A fraction
 * needs a unit (there is no such thing as 1.5 bytes).
 * Used by the command line only; no signal-context constraints.
 */
#include <stddef.h>

#include "limits_internal.h"

/* Digits of the fraction kept: 10^18 < 2^60, so twice a remainder below it
 * still fits in a uint64_t (see scale_fraction). Dropped digits are worth
 * less than 2^40 / 10^18 of a byte. */
#define FRAC_DIGITS_MAX 18

/* Lower-case ASCII letter. */
static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Parse the unit at s: the unit is 2^*shift bytes. 0, or -1 if s is not
 * exactly one unit. */
static int parse_unit(const char *s, int *shift)
{
    static const char units[] = "kmgt";

    *shift = 0;
    for (int i = 0; units[i] != '\0'; i++)
        if (lower(*s) == units[i])
            *shift = 10 * (i + 1);
    if (*shift != 0) {
        s++;
        if (lower(*s) == 'i' && lower(s[1]) == 'b')
            s += 2;
        else if (lower(*s) == 'b')
            s++;
    } else if (lower(*s) == 'b') {
        s++;
    }
    return *s == '\0' ? 0 : -1;
}

/* Parse ".DIGITS" at *p: numerator and 10^digits (extra digits dropped). */
static int parse_fraction(const char **p, uint64_t *num, uint64_t *den)
{
    const char *s = *p + 1;
    int n = 0;

    *num = 0;
    *den = 1;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        if (n < FRAC_DIGITS_MAX) {
            *num = *num * 10 + (uint64_t)(*s - '0');
            *den *= 10;
        }
    }
    *p = s;
    return 0;
}

/* floor(num * 2^shift / den) for num < den <= 10^18: long division, one
 * bit of the quotient per step. */
static uint64_t scale_fraction(uint64_t num, uint64_t den, int shift)
{
    uint64_t q = 0, rem = num;

    for (int i = 0; i < shift; i++) {
        rem <<= 1;
        q <<= 1;
        if (rem >= den) {
            rem -= den;
            q |= 1;
        }
    }
    return q;
}

/* See fil/limits.h. 0 with *out set, or -1 with *out unchanged.
 * Context: any thread, pure. */
int fil_parse_size(const char *s, uint64_t *out)
{
    uint64_t whole, num = 0, den = 1, v, frac;
    int shift;

    if (s == NULL || fil_limits_parse_u64(&s, &whole) < 0)
        return -1;
    if (*s == '.' && parse_fraction(&s, &num, &den) < 0)
        return -1;
    if (parse_unit(s, &shift) < 0)
        return -1;
    if (den > 1 && shift == 0)
        return -1;
    if (whole > (UINT64_MAX >> shift))
        return -1;
    v = whole << shift;
    frac = scale_fraction(num, den, shift);
    if (frac > UINT64_MAX - v)
        return -1;
    *out = v + frac;
    return 0;
}
