/*
 * redact.c - the log redaction filter.
 *
 * One left-to-right scan. Each rule is keyed to the byte where it can first be
 * recognised, and what it redacts starts at or after that byte, so no rule
 * ever has to take back bytes already written:
 *
 *   - a byte that starts a registered literal (first-byte table, then memcmp;
 *     longest wins), a held form of a key from the request's raw path (the
 *     same), or a token hashing to a configured key (found before the scan,
 *     redact_keys.c, and then treated like a literal), starts a redacted span;
 *   - ':' or '=' looks back at the key before it (bare, quoted, \"-quoted as
 *     in JSON inside a JSON string, or in [brackets]). A header name
 *     (Authorization, Proxy-Authorization, X-API-Key, Cookie, Set-Cookie, also
 *     HTTP_-prefixed as in FastCGI params) redacts the value to end of line; a
 *     key ending in a sensitive word (password, token, api_key, ...) redacts a
 *     quoted value (backslash escapes honoured; one level of \"-escaped JSON
 *     inside a JSON string is decoded) or a bare value up to & ; , or white
 *     space. ':' followed by "//" redacts URL userinfo when it holds a ':';
 *   - an alphanumeric byte after a non-alphanumeric one (a word start) tries
 *     the scheme words Bearer/Basic/Token, well-known token prefixes, JWTs and
 *     runs of 64 or more hex digits.
 *
 * A rule yields a span [start, end). Bytes between the trigger and start
 * (separator, blanks, opening quote) are copied but still checked for
 * literals. A literal that begins inside a span and runs past its end extends
 * the span, so a registered secret is never half shown; and since a literal
 * may swallow another rule's trigger, rules are retried inside literals.
 *
 * Bearer/Basic/Token followed by a plain word (letters only, lowercase after
 * the first, at most 16) is prose ("Token expired", "Basic auth",
 * "Bearer realm=") and is kept; anything else after them is a credential.
 *
 * The output is always a prefix of the untruncated output: plain bytes are
 * copied while they fit, and the marker is written whole or the output stops
 * before it. Every rule scans forward only over bytes it then consumes, or up
 * to the next byte that could trigger it again, so the scan stays linear.
 * Between triggers the scan steps over bytes with two table lookups each
 * (next_start): most bytes of a line start nothing, and the rules are only
 * called where one of them, or a literal, could start.
 */
#include "redact.h"
#include "redact_keys.h"
#include "redact_literals.h"

#include <stdbool.h>

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_LEN (sizeof(FM_REDACTED) - 1)

/* Longest key we look back over; header names are shorter, suffixes only need the tail. */
#define KEY_LOOKBACK 64

/* A credential after Bearer/Basic/Token that is a plain word this short is prose, not a secret. */
#define PLAIN_WORD_MAX 16

struct word {
    const char *s;
    size_t n;
};

#define WORD(lit)                                                                                  \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

/* Full key names (after an optional "http_") whose value runs to end of line. */
static const struct word header_keys[] = {
    WORD("authorization"), WORD("proxy_authorization"), WORD("x_api_key"),
    WORD("cookie"),        WORD("set_cookie"),
};

/* A key ending in one of these has its value redacted. '_' in a pattern also matches '-'. */
static const struct word sensitive_suffixes[] = {
    WORD("password"),      WORD("passwd"),      WORD("passphrase"), WORD("pwd"),
    WORD("secret"),        WORD("secret_key"),  WORD("token"),      WORD("api_key"),
    WORD("apikey"),        WORD("access_key"),  WORD("auth"),       WORD("cookie"),
    WORD("authorization"), WORD("private_key"),
};

static const struct word scheme_words[] = {WORD("bearer"), WORD("basic"), WORD("token")};

/* Byte classes for the per-byte test in the main loop, built at compile time. */
#define CLS_ALNUM 1
#define CLS_SEP 2 /* ':' and '=' */
#define ALNUM_BYTE(c)                                                                              \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define CLS(c) (ALNUM_BYTE(c) ? CLS_ALNUM : ((c) == ':' || (c) == '=') ? CLS_SEP : 0)
/* A 256-entry table of F(byte), written out at compile time. */
#define TABLE4(F, c) F(c), F((c) + 1), F((c) + 2), F((c) + 3)
#define TABLE16(F, c) TABLE4(F, c), TABLE4(F, (c) + 4), TABLE4(F, (c) + 8), TABLE4(F, (c) + 12)
#define TABLE64(F, c)                                                                              \
    TABLE16(F, c), TABLE16(F, (c) + 16), TABLE16(F, (c) + 32), TABLE16(F, (c) + 48)
#define TABLE256(F)                                                                                \
    {                                                                                              \
        TABLE64(F, 0), TABLE64(F, 64), TABLE64(F, 128), TABLE64(F, 192)                            \
    }

static const unsigned char byte_class[256] = TABLE256(CLS);

/* The same with hex digits marked, for the skip over bytes where nothing can start (next_start). */
#define SCAN_HEX 4
#define HEX_BYTE(c)                                                                                \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define SCLS(c) (CLS(c) | (HEX_BYTE(c) ? SCAN_HEX : 0))

static const unsigned char scan_class[256] = TABLE256(SCLS);

static int is_alpha(unsigned char c)
{
    return (unsigned)((c | 0x20) - 'a') < 26;
}

static int is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

static int is_alnum(unsigned char c)
{
    return byte_class[c] == CLS_ALNUM;
}

/* Only a separator or a word start can trigger a rule other than a literal. */
static int may_trigger(const unsigned char *s, size_t i)
{
    unsigned char k = byte_class[s[i]];

    return k == CLS_SEP || (k == CLS_ALNUM && (i == 0 || byte_class[s[i - 1]] != CLS_ALNUM));
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (unsigned)((c | 0x20) - 'a') < 6;
}

static int is_upper_or_digit(unsigned char c)
{
    return (unsigned)(c - 'A') < 26 || is_digit(c);
}

static int is_word(unsigned char c)
{
    return is_alnum(c) || c == '_';
}

static int is_b64url(unsigned char c)
{
    return is_word(c) || c == '-';
}

static int is_slack_id(unsigned char c)
{
    return is_alnum(c) || c == '-';
}

/* RFC 7235 token68, without the trailing '=' padding. */
static int is_token68(unsigned char c)
{
    return is_b64url(c) || c == '.' || c == '~' || c == '+' || c == '/';
}

static int is_key(unsigned char c)
{
    return is_b64url(c) || c == '.';
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int is_quote(unsigned char c)
{
    return c == '"' || c == '\'';
}

static size_t run(const unsigned char *s, size_t len, size_t j, int (*cls)(unsigned char))
{
    while (j < len && cls(s[j]))
        j++;
    return j;
}

static int has_prefix(const unsigned char *s, size_t len, size_t i, const char *lit, size_t n)
{
    return len - i >= n && memcmp(s + i, lit, n) == 0;
}

#define HAS_PREFIX(s, len, i, lit) has_prefix(s, len, i, lit, sizeof(lit) - 1)

/* Case-insensitive compare with a lowercase pattern in which '_' also matches '-'. */
static bool fold_eq(const unsigned char *p, const char *pat, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        unsigned char c = p[k];

        if (pat[k] == '_') {
            if (c != '_' && c != '-')
                return 0;
        } else if ((c >= 'A' && c <= 'Z' ? c | 0x20 : c) != (unsigned char)pat[k]) {
            return 0;
        }
    }
    return 1;
}

static bool key_is_header(const unsigned char *k, size_t n)
{
    if (n > 5 && fold_eq(k, "http_", 5)) {
        k += 5;
        n -= 5;
    }
    for (size_t h = 0; h < NWORDS(header_keys); h++)
        if (header_keys[h].n == n && fold_eq(k, header_keys[h].s, n))
            return 1;
    return 0;
}

static bool key_is_sensitive(const unsigned char *k, size_t n)
{
    for (size_t w = 0; w < NWORDS(sensitive_suffixes); w++) {
        size_t m = sensitive_suffixes[w].n;

        if (n >= m && fold_eq(k + n - m, sensitive_suffixes[w].s, m))
            return 1;
    }
    return 0;
}

/* Length of a registered literal or a key token that starts at s[i] (the longer), or 0. */
static size_t known_len(const fm_redact_hits *h, const unsigned char *s, size_t len, size_t i)
{
    size_t n = fm_redact_literals_at(s, len, i), k;

    if (h->n > 0 && (k = fm_redact_keys_at(h, i)) > n)
        n = k;
    return n;
}

/* End of a string whose opening quote q is just before j: at the closing quote, or end of line. */
static size_t quoted_end(const unsigned char *s, size_t len, size_t j, unsigned char q)
{
    while (j < len && s[j] != q && s[j] != '\n') {
        if (s[j] == '\\' && j + 1 < len)
            j++;
        j++;
    }
    return j;
}

/*
 * Same for a string opened by \" inside an enclosing JSON string: outer escapes
 * are decoded on the fly (\\ is one backslash, \" one quote), and the inner
 * string ends at a decoded quote that no decoded backslash escapes. A raw quote
 * ends the enclosing string, and so this one too.
 */
static size_t escaped_quoted_end(const unsigned char *s, size_t len, size_t j)
{
    int inner_escape = 0;

    while (j < len && s[j] != '"' && s[j] != '\n') {
        if (s[j] == '\\') {
            if (j + 1 >= len)
                return len;
            if (s[j + 1] == '"' && !inner_escape)
                return j;
            inner_escape = s[j + 1] == '\\' ? !inner_escape : 0;
            j += 2;
        } else {
            inner_escape = 0;
            j++;
        }
    }
    return j;
}

/* In a quoted-key (JSON-like) context a bare value is a number or literal and ends at } ] too. */
static bool ends_bare_value(unsigned char c, int quoted_key)
{
    if (is_space(c) || c == '&' || c == ';' || c == ',')
        return 1;
    return quoted_key && (c == '}' || c == ']' || c == '\\' || is_quote(c));
}

/*
 * scheme://userinfo@host: the userinfo is a span when it holds a password (a
 * ':'). One slash is enough ("redis:/:pw@host"): nginx merges slashes in the
 * paths it passes on, so a URL pasted into a path arrives that way.
 */
static bool rule_userinfo(const unsigned char *s, size_t len, size_t i, size_t *vs, size_t *ve)
{
    size_t a = i + (s[i + 2] == '/' ? 3 : 2), at = 0;

    for (size_t j = a; j < len; j++) {
        unsigned char c = s[j];

        if (c == '/' || c == '?' || c == '#' || c == '\\' || c == '<' || c == '>' || is_quote(c) ||
            is_space(c))
            break;
        if (c == '@')
            at = j;
    }
    if (at == 0 || memchr(s + a, ':', at - a) == NULL)
        return 0;
    *vs = a;
    *ve = at;
    return 1;
}

/* Triggered at ':' or '=' (s[i]). */
static bool rule_separator(const unsigned char *s, size_t len, size_t i, size_t *vs, size_t *ve)
{
    size_t k = i, kend, v, e;
    int quoted = 0, to_eol;

    if (s[i] == ':' && len - i >= 3 && s[i + 1] == '/')
        return rule_userinfo(s, len, i, vs, ve);

    while (k > 0 && is_blank(s[k - 1]))
        k--;
    if (k > 0 && is_quote(s[k - 1])) {
        quoted = 1;
        k--;
        if (k > 0 && s[k - 1] == '\\')
            k--;
    } else if (k > 0 && s[k - 1] == ']') {
        k--;
    }
    kend = k;
    while (k > 0 && kend - k < KEY_LOOKBACK && is_key(s[k - 1]))
        k--;
    if (k == kend)
        return 0;
    if (key_is_header(s + k, kend - k))
        to_eol = 1;
    else if (key_is_sensitive(s + k, kend - k))
        to_eol = 0;
    else
        return 0;

    /* "=>", ":=" and "==" are separators too; a value never starts with '=' or '>'. */
    v = i + 1;
    while (v < len && (s[v] == '=' || s[v] == '>'))
        v++;
    while (v < len && is_blank(s[v]))
        v++;
    if (v >= len)
        return 0;

    if (is_quote(s[v]) && (quoted || !to_eol)) {
        v++;
        e = quoted_end(s, len, v, s[v - 1]);
    } else if (quoted && s[v] == '\\' && v + 1 < len && s[v + 1] == '"') {
        v += 2;
        e = escaped_quoted_end(s, len, v);
    } else if (to_eol) {
        e = v;
        while (e < len && s[e] != '\n' && s[e] != '\r')
            e++;
    } else {
        e = v;
        while (e < len && !ends_bare_value(s[e], quoted))
            e++;
    }
    if (e == v)
        return 0;
    *vs = v;
    *ve = e;
    return 1;
}

/* "expired", "auth", "Token", "realm=": prose after a scheme word, not a credential. */
static bool is_plain_word(const unsigned char *p, size_t n)
{
    while (n > 0 && p[n - 1] == '=')
        n--;
    if (n > PLAIN_WORD_MAX)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (k == 0 ? !is_alpha(p[k]) : (unsigned)(p[k] - 'a') >= 26)
            return 0;
    return 1;
}

/* Between a scheme word and its credential: blanks, or '+' as a URL-encoded form writes a space. */
static int is_scheme_gap(unsigned char c)
{
    return is_blank(c) || c == '+';
}

/* Word start: "Bearer <credential>" and friends, any letter case. */
static bool rule_scheme(const unsigned char *s, size_t len, size_t i, size_t *vs, size_t *ve)
{
    unsigned char c = s[i] | 0x20;

    if (c != 'b' && c != 't')
        return 0;
    for (size_t w = 0; w < NWORDS(scheme_words); w++) {
        size_t m = scheme_words[w].n, v, e;

        if (len - i <= m || !is_scheme_gap(s[i + m]) || !fold_eq(s + i, scheme_words[w].s, m))
            continue;
        v = run(s, len, i + m, is_scheme_gap);
        e = run(s, len, v, is_token68);
        while (e < len && s[e] == '=')
            e++;
        if (e == v || is_plain_word(s + v, e - v))
            return 0;
        *vs = v;
        *ve = e;
        return 1;
    }
    return 0;
}

/* eyJ<header>.<payload>.<signature>; the signature may be empty (alg "none"). */
static size_t jwt_end(const unsigned char *s, size_t len, size_t i)
{
    size_t a, b;

    if (!HAS_PREFIX(s, len, i, "eyJ"))
        return 0;
    a = run(s, len, i + 3, is_b64url);
    if (a - i < 10 || a >= len || s[a] != '.')
        return 0;
    b = run(s, len, a + 1, is_b64url);
    if (b - a - 1 < 4 || b >= len || s[b] != '.')
        return 0;
    return run(s, len, b + 1, is_b64url);
}

/*
 * API keys and SHA-256 key hashes: a run of 64 or more hex digits, in either
 * case, whatever surrounds it (40-hex commit ids and UUID groups are shorter).
 * End of the run, or 0.
 */
static size_t hex_end(const unsigned char *s, size_t len, size_t i)
{
    size_t e = run(s, len, i, is_hex);

    return e - i >= 64 ? e : 0;
}

/* Prefix lit then at least min bytes of class cls: end of the token, or 0. */
static size_t prefixed_end(const unsigned char *s, size_t len, size_t i, const char *lit, size_t n,
                           int (*cls)(unsigned char), size_t min)
{
    size_t e;

    if (!has_prefix(s, len, i, lit, n))
        return 0;
    e = run(s, len, i + n, cls);
    return e - i - n >= min ? e : 0;
}

#define PREFIXED_END(s, len, i, lit, cls, min)                                                     \
    prefixed_end(s, len, i, lit, sizeof(lit) - 1, cls, min)

/* Word start: self-contained tokens redacted whole. Returns the end, or 0. */
static size_t rule_token(const unsigned char *s, size_t len, size_t i)
{
    size_t e = 0, h;

    switch (s[i]) {
    case 'g':
        if (len - i > 4 && s[i + 1] == 'h' && memchr("pousr", s[i + 2], 5) != NULL &&
            s[i + 3] == '_') {
            e = run(s, len, i + 4, is_alnum);
            e = e - i - 4 >= 36 ? e : 0;
        }
        if (e == 0)
            e = PREFIXED_END(s, len, i, "github_pat_", is_word, 22);
        if (e == 0)
            e = PREFIXED_END(s, len, i, "glpat-", is_b64url, 20);
        break;
    case 's':
    case 'r':
        if (len - i > 8 && s[i + 1] == 'k' && s[i + 2] == '_' &&
            (HAS_PREFIX(s, len, i + 3, "live_") || HAS_PREFIX(s, len, i + 3, "test_")))
            e = PREFIXED_END(s, len, i + 8, "", is_alnum, 10);
        break;
    case 'A':
        if (HAS_PREFIX(s, len, i, "AKIA") || HAS_PREFIX(s, len, i, "ASIA")) {
            e = run(s, len, i + 4, is_upper_or_digit);
            e = e - i - 4 == 16 && (e == len || !is_alnum(s[e])) ? e : 0;
        }
        break;
    case 'x':
        if (len - i > 5 && HAS_PREFIX(s, len, i, "xox") && memchr("bpars", s[i + 3], 5) != NULL &&
            s[i + 4] == '-')
            e = PREFIXED_END(s, len, i + 5, "", is_slack_id, 10);
        break;
    case 'e':
        e = jwt_end(s, len, i);
        break;
    case 'f':
        e = PREFIXED_END(s, len, i, "fetchml_", is_word, 20);
        break;
    default:
        break;
    }
    if (e != 0 || !is_hex(s[i]))
        return e;
    h = i;
    if (s[i] == '0' && len - i > 2 && (s[i + 1] | 0x20) == 'x')
        h = i + 2;
    return hex_end(s, len, h);
}

/* A rule other than a literal that triggers at s[i]: 1 and its span [*vs, *ve), or 0. */
static bool rule_at(const unsigned char *s, size_t len, size_t i, size_t *vs, size_t *ve)
{
    if (!may_trigger(s, i)) {
        /* A hex run glued to a word ("g<64 hex>") is still a key or a hash. */
        if (!is_hex(s[i]) || is_hex(s[i - 1]))
            return 0;
        *vs = i;
        *ve = hex_end(s, len, i);
        return *ve != 0;
    }
    if (s[i] == ':' || s[i] == '=')
        return rule_separator(s, len, i, vs, ve);
    if (rule_scheme(s, len, i, vs, ve))
        return 1;
    *vs = i;
    *ve = rule_token(s, len, i);
    return *ve != 0;
}

/*
 * Final end of the span [start, end). A literal that starts inside and runs
 * past the end extends it. Inside a literal the other rules are tried again,
 * as the literal may have swallowed their trigger ("pw: x" in "pw: xy").
 * Rules are not retried elsewhere inside a span: a rule's span already covers
 * its whole value, and retrying every byte could make the scan quadratic.
 */
static size_t span_end(const fm_redact_hits *h, const unsigned char *s, size_t len, size_t start,
                       size_t end)
{
    size_t literal_cover = start;

    if (fm_redact_literals_none() && h->n == 0)
        return end;
    for (size_t j = start; j < end; j++) {
        size_t n, vs, ve;

        if ((n = known_len(h, s, len, j)) > 0 && j + n > literal_cover) {
            literal_cover = j + n;
            if (literal_cover > end)
                end = literal_cover;
        }
        if (j < literal_cover && rule_at(s, len, j, &vs, &ve) && ve > end)
            end = ve;
    }
    return end;
}

/*
 * The first position from j on (j > 0) where the main loop could find
 * something, or stop when none comes first: a literal or a key token may
 * start there (known_len), or, unless a rule's span is pending, rule_at may
 * trigger (may_trigger, or a hex digit glued to a word: the first test of
 * rule_at). Every other byte the loop would only step over.
 */
static size_t next_start(const unsigned char *s, size_t j, size_t stop, const unsigned char *lit,
                         const fm_redact_hits *h, bool rules)
{
    for (size_t k = 0; k < h->n; k++)
        if (h->start[k] >= j) {
            if (h->start[k] < stop)
                stop = h->start[k];
            break;
        }
    for (; j < stop; j++) {
        unsigned char c = scan_class[s[j]], p;

        if (lit[s[j]])
            return j;
        if (!rules || c == 0)
            continue;
        if ((c & CLS_SEP) != 0)
            return j;
        p = scan_class[s[j - 1]];
        if ((p & CLS_ALNUM) == 0 || ((c & SCAN_HEX) != 0 && (p & SCAN_HEX) == 0))
            return j;
    }
    return stop;
}

struct sink {
    char *dst;
    size_t n;
    size_t lim; /* cap - 1: room for the NUL */
};

/* Plain bytes may be cut anywhere; returns -1 once the output is full. */
static int put_plain(struct sink *o, const unsigned char *p, size_t n)
{
    size_t room = o->lim - o->n;
    size_t k = n < room ? n : room;

    if (k > 0)
        memcpy(o->dst + o->n, p, k);
    o->n += k;
    return k == n ? 0 : -1;
}

static int put_marker(struct sink *o)
{
    if (o->lim - o->n < MARKER_LEN)
        return -1;
    memcpy(o->dst + o->n, FM_REDACTED, MARKER_LEN);
    o->n += MARKER_LEN;
    return 0;
}

size_t fm_redact(const char *src, size_t len, char *dst, size_t cap)
{
    const unsigned char *s = (const unsigned char *)src, *lit;
    fm_redact_hits hits;
    struct sink o;
    size_t i = 0, plain = 0, ps = 0, pe = 0;
    int pending = 0; /* a rule's span [ps, pe) lies ahead, after a kept prefix */

    if (dst == NULL || cap == 0)
        return 0;
    o = (struct sink){dst, 0, cap - 1};
    if (s == NULL)
        len = 0;
    fm_redact_keys_find(s, len, &hits);
    lit = fm_redact_literals_starts();

    while (i < len) {
        size_t start = i, end = 0, n, vs, ve;

        if (pending && i == ps) {
            end = pe;
            pending = 0;
        } else if ((n = known_len(&hits, s, len, i)) > 0) {
            end = i + n;
        } else if (!pending && rule_at(s, len, i, &vs, &ve)) {
            if (vs == i) {
                end = ve;
            } else {
                pending = 1;
                ps = vs;
                pe = ve;
            }
        }
        if (end == 0) {
            i = next_start(s, i + 1, pending ? ps : len, lit, &hits, !pending);
            continue;
        }

        if (put_plain(&o, s + plain, start - plain) != 0)
            goto out;
        for (;;) {
            end = span_end(&hits, s, len, start, end);
            if (!pending || end <= ps)
                break;
            /* A literal in the kept prefix runs into the pending span: one span. */
            if (pe > end)
                end = pe;
            pending = 0;
        }
        if (put_marker(&o) != 0)
            goto out;
        i = plain = end;
    }
    (void)put_plain(&o, s + plain, len - plain);
out:
    dst[o.n] = '\0';
    return o.n;
}
