/*
 * jsonstr.h - a byte string as a JSON string literal (RFC 8259 section 7),
 * safe to embed in a line built by hand (the audit trail's records).
 */
#ifndef FM_JSONSTR_H
#define FM_JSONSTR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * fm_jsonstr_quote - write src (n bytes, any bytes, need not be
 * NUL-terminated) as a quoted JSON string into dst (cap bytes): '"' and '\\'
 * become \" and \\; every byte below 0x20, DEL and every byte that is not
 * part of valid UTF-8 (RFC 3629: no overlong forms, surrogates or code points
 * past U+10FFFF) becomes \u00XX; valid UTF-8 is copied. The output is cut
 * before the first escape or UTF-8 sequence that would not fit whole, so it
 * is always a complete literal: at most cap - 3 bytes between the quotes,
 * then the closing quote and a NUL. Returns the length written without the
 * NUL (cap < 3: 0, and dst is "" when cap > 0). Never fails.
 */
size_t fm_jsonstr_quote(char *dst, size_t cap, const char *src, size_t n);

/*
 * fm_jsonstr_utf8_valid - true when s (n bytes) is valid UTF-8 (RFC 3629, as
 * above: no overlong forms, surrogates or code points past U+10FFFF), as
 * JSON text must be (RFC 8259 section 8.1).
 */
bool fm_jsonstr_utf8_valid(const char *s, size_t n);

#endif
