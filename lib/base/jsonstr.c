/*
 * jsonstr.c - JSON string literals (see jsonstr.h).
 *
 * One pass over the input: each byte is either part of a valid UTF-8
 * sequence, copied whole, or escaped. Escapes and sequences are never split
 * at the cut, so the output is always a complete, valid JSON string.
 */
#include "jsonstr.h"

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

bool fm_jsonstr_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, len; i < n; i += len)
        if ((len = utf8_len((const unsigned char *)s + i, n - i)) == 0)
            return false;
    return true;
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
        size_t ulen = utf8_len(p, n - i), olen, adv = 1;
        const char *out = (const char *)p;
        char esc[8];

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            out = esc;
            olen = 2;
        } else if (*p < 0x20 || *p == 0x7f || ulen == 0) {
            (void)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
            out = esc;
            olen = 6;
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
