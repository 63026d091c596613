/*
 * jsonstr.h - a byte string as a JSON string literal (RFC 8259 section 7),
 * safe to embed in a line built by hand (the audit trail's records).
 */
#ifndef FM_JSONSTR_H
#define FM_JSONSTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * fm_jsonstr_char - the character at p (n bytes available; n == 0 gives 0):
 * returns its length (1-4) when it is valid UTF-8 (RFC 3629) and stores its
 * code point in *cp, or returns 0 when p[0] does not start a valid sequence
 * (*cp = 0). *unsafe is set for an invalid byte and for every character a
 * reader may take for a line break or that reorders text on screen: C0
 * controls (U+0000-U+001F), DEL and the C1 controls (U+007F-U+009F, NEL
 * included), U+2028 and U+2029, the bidirectional embeddings and overrides
 * (U+202A-U+202E), isolates (U+2066-U+2069) and marks (U+200E, U+200F,
 * U+061C). Every log writer escapes what this flags, so that one record is
 * one line for every reader and shows its fields in order.
 */
size_t fm_jsonstr_char(const char *p, size_t n, bool *unsafe, uint32_t *cp);

/*
 * fm_jsonstr_quote - write src (n bytes, any bytes, need not be
 * NUL-terminated) as a quoted JSON string into dst (cap bytes): '"' and '\\'
 * become \" and \\; every byte that is not part of valid UTF-8 (RFC 3629: no
 * overlong forms, surrogates or code points past U+10FFFF) becomes \u00XX;
 * every unsafe character (fm_jsonstr_char: controls, line and paragraph
 * separators, bidirectional controls) becomes \uXXXX of its code point;
 * other valid UTF-8 is copied. The output is cut
 * before the first escape or UTF-8 sequence that would not fit whole, so it
 * is always a complete literal: at most cap - 3 bytes between the quotes,
 * then the closing quote and a NUL. Returns the length written without the
 * NUL (cap < 3: 0, and dst is "" when cap > 0). Never fails.
 */
size_t fm_jsonstr_quote(char *dst, size_t cap, const char *src, size_t n);

/*
 * fm_jsonstr_utf8_valid - whether s (n bytes, need not be NUL-terminated;
 * NUL bytes count as valid) is entirely UTF-8 (RFC 3629): no overlong forms,
 * surrogates (U+D800-U+DFFF), code points past U+10FFFF, stray continuation
 * bytes or sequences cut at the end. The same rule fm_jsonstr_quote copies by.
 */
bool fm_jsonstr_utf8_valid(const char *s, size_t n);

#endif
