/* SPDX-License-Identifier: MIT */
/*
 * escape.c - UTF-8 validation and XML / JSON escaping of untrusted bytes.
 *
 * File names, function names and source lines come from the profiled
 * program and may hold any bytes. Both escapers walk the input once, copy
 * runs of harmless bytes through fil_write_mem, and replace everything else:
 * XML markup characters become entities, tab/newline/CR become numeric
 * references, other C0 controls (not allowed in XML 1.0 at all) and every
 * byte that does not start a valid UTF-8 sequence become U+FFFD. The result
 * is well-formed UTF-8 XML text or attribute content, or a valid JSON string,
 * for any input.
 *
 * SIGNAL-SAFE FILE (checked by scripts/check-signal-safety).
 * SIGNAL CONTEXT: caller memory only. Calls: memcpy.
 */
#include <string.h>

#include "report_internal.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

/*
 * Validate one UTF-8 sequence at s (n >= 1 bytes available). Returns its
 * length 1..4 with the code point in *cp, or 0 if invalid: stray
 * continuation bytes, overlong forms, surrogates, values above U+10FFFF and
 * truncated sequences. SIGNAL CONTEXT: caller memory only.
 */
size_t fil_report_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4)
        return 0;
    len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    *cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return len;
}

/*
 * Walk s character by character; returns the byte length of the prefix
 * holding at most max_chars characters and stores the character count in
 * *chars. SIGNAL CONTEXT: caller memory only.
 */
static size_t utf8_walk(const char *s, size_t n, size_t max_chars, size_t *chars)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < n && k < max_chars) {
        uint32_t cp;
        size_t len = u[i] < 0x80 ? 1 : fil_report_utf8_seq(u + i, n - i, &cp);
        i += len ? len : 1;
        k++;
    }
    *chars = k;
    return i;
}

/* Characters in s, one per valid sequence and one per invalid byte.
 * SIGNAL CONTEXT: caller memory only. */
size_t fil_report_utf8_chars(const char *s, size_t n)
{
    size_t chars;
    utf8_walk(s, n, (size_t)-1, &chars);
    return chars;
}

/* Bytes of the longest prefix of s with at most max_chars characters.
 * SIGNAL CONTEXT: caller memory only. */
size_t fil_report_utf8_prefix(const char *s, size_t n, size_t max_chars)
{
    size_t chars;
    return utf8_walk(s, n, max_chars, &chars);
}

/*
 * The XML replacement for the ASCII byte c, or NULL if c is written as is.
 * SIGNAL CONTEXT: caller memory only.
 */
static const char *xml_entity(unsigned char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    case '\t':
        return "&#9;";
    case '\n':
        return "&#10;";
    case '\r':
        return "&#13;";
    case 0x7F:
        return "&#127;";
    default:
        return c < 0x20 ? REPLACEMENT : NULL;
    }
}

/*
 * Escape n bytes of s as XML 1.0 text or attribute content (see the file
 * comment). s may be NULL when n is 0. SIGNAL CONTEXT: caller memory only.
 */
void fil_write_xml(fil_writer_t *w, const char *s, size_t n)
{
    /* 1 for the ASCII bytes written as they are: the common case, skipped
     * a byte per step without a branch on which byte it is. */
    static const unsigned char plain[128] = {
        [' '] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
        ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
        ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, [':'] = 1,
        [';'] = 1, ['='] = 1, ['?'] = 1, ['@'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,
        ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
        ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
        ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['['] = 1, ['\\'] = 1,
        [']'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,
        ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
        ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
        ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['{'] = 1, ['|'] = 1,
        ['}'] = 1, ['~'] = 1};
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    if (n == 0)
        return;
    while (i < n) {
        while (i < n && u[i] < 0x80 && plain[u[i]])
            i++;
        if (i == n)
            break;
        const char *rep = NULL;
        size_t len = 1;
        if (u[i] < 0x80) {
            rep = xml_entity(u[i]);
        } else {
            uint32_t cp;
            len = fil_report_utf8_seq(u + i, n - i, &cp);
            if (len == 0 || cp == 0xFFFE || cp == 0xFFFF) {
                rep = REPLACEMENT;
                len = len ? len : 1;
            }
        }
        if (rep) {
            fil_write_mem(w, s + run, i - run);
            fil_write_str(w, rep);
            run = i + len;
        }
        i += len;
    }
    fil_write_mem(w, s + run, n - run);
}

/*
 * The JSON escape for the ASCII byte c (into buf), or NULL if c is written
 * as is. SIGNAL CONTEXT: caller memory only.
 */
static const char *json_escape(unsigned char c, char buf[8])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    default:
        if (c >= 0x20)
            return NULL;
        memcpy(buf, "\\u00", 4);
        buf[4] = hex[c >> 4];
        buf[5] = hex[c & 15];
        buf[6] = '\0';
        return buf;
    }
}

/*
 * Write n bytes of s as a quoted JSON string. Invalid UTF-8 becomes \ufffd;
 * U+2028/U+2029 are escaped so the output is also a valid JavaScript
 * literal. SIGNAL CONTEXT: caller memory only.
 */
void fil_write_json_str(fil_writer_t *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    char buf[8];
    fil_write_char(w, '"');
    while (s && i < n) {
        const char *rep = NULL;
        size_t len = 1;
        if (u[i] < 0x80) {
            rep = json_escape(u[i], buf);
        } else {
            uint32_t cp;
            len = fil_report_utf8_seq(u + i, n - i, &cp);
            if (len == 0)
                rep = "\\ufffd";
            else if (cp == 0x2028 || cp == 0x2029)
                rep = cp == 0x2028 ? "\\u2028" : "\\u2029";
            len = len ? len : 1;
        }
        if (rep) {
            fil_write_mem(w, s + run, i - run);
            fil_write_str(w, rep);
            run = i + len;
        }
        i += len;
    }
    if (s)
        fil_write_mem(w, s + run, n - run);
    fil_write_char(w, '"');
}
