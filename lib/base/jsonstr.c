/*
 * jsonstr.c - JSON string literals (see jsonstr.h).
 *
 * One pass over the input: each byte is either part of a valid UTF-8
 * sequence, copied whole, or escaped. Escapes and sequences are never split
 * at the cut, so the output is always a complete, valid JSON string.
 *
 * Some valid characters are escaped too: those a reader may take for a line
 * break (Python's str.splitlines() splits at U+000B, U+000C, U+001C-U+001E,
 * U+0085, U+2028 and U+2029, besides CR and LF) and those that reorder text
 * on screen (the bidirectional controls: "Trojan Source", CVE-2021-42574).
 * The bidirectional marks U+200E, U+200F and U+061C are included: they
 * cannot reorder a run by themselves, but they move neutral characters such
 * as quotes and commas across an RTL run, which is enough to misplace a
 * field boundary on screen, and no log value needs them.
 */
#include "jsonstr.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1-4), or 0 for an invalid byte. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* The code point of the valid sequence at p (len bytes, as utf8_len measured it). */
static uint32_t utf8_cp(const unsigned char *p, size_t len)
{
    static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t cp = p[0] & lead_mask[len];

    for (size_t i = 1; i < len; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    return cp;
}

static bool unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t fm_jsonstr_char(const char *p, size_t n, bool *unsafe, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t len = n > 0 ? utf8_len(u, n) : 0;

    *cp = len > 0 ? utf8_cp(u, len) : 0;
    *unsafe = len == 0 || unsafe_cp(*cp);
    return len;
}

size_t fm_jsonstr_quote(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0, room;

    if (cap < 3) {
        if (cap > 0)
            dst[0] = '\0';
        return 0;
    }
    room = cap - 2; /* what the opening quote and the content may take */
    dst[o++] = '"';
    for (size_t i = 0; i < n;) {
        const unsigned char *p = (const unsigned char *)src + i;
        uint32_t cp;
        bool unsafe;
        size_t ulen = fm_jsonstr_char(src + i, n - i, &unsafe, &cp), olen, adv = 1;
        const char *out = (const char *)p;
        char esc[8];

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            out = esc;
            olen = 2;
        } else if (ulen == 0) {
            (void)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
            out = esc;
            olen = 6;
        } else if (unsafe) {
            /* Every unsafe character is in the BMP: one \uXXXX stands for it. */
            (void)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            out = esc;
            olen = 6;
            adv = ulen;
        } else {
            olen = adv = ulen;
        }
        if (o + olen > room)
            break;
        memcpy(dst + o, out, olen);
        o += olen;
        i += adv;
    }
    dst[o++] = '"';
    dst[o] = '\0';
    return o;
}

bool fm_jsonstr_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(p + i, n - i);

        if (len == 0)
            return false;
        i += len;
    }
    return true;
}
