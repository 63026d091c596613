/*
 * redact_keys.c - configured keys in any format, found by their digest.
 *
 * The config holds only SHA-256 digests of the keys, and the server accepts
 * any string whose digest is configured, so a key in a log line can only be
 * recognised by hashing candidates. A candidate lies in a run of the bytes
 * keys are made of (base64, base64url, hex, UUID, fetchml_: A-Z a-z 0-9
 * _ . ~ + / = -, and '%' for URL escapes) and is delimited by the run's ends
 * or by a separator a URL or a form puts around a value ('/', '=', '+', '.',
 * '~', or a %XX escape): "/v1/tasks/<key>", "?q=<key>", "a+<key>",
 * "<key>.json", "<k%2Fey>". So a
 * key a client put whole in a path segment, a query value or a header value
 * is found, also a base64 key whose own '/' or '=' split it, and %XX escapes
 * are decoded before hashing. Each candidate of 16 to 256 bytes is hashed and
 * looked up in a sorted array (binary search).
 *
 * Cost is bounded per line: at most DIGESTS_PER_LINE hashes and BOUNDS_MAX
 * separators per run. A run that would exceed either is redacted whole
 * without hashing (fail closed: a line crafted to be expensive loses its long
 * tokens, never lets a key through).
 */
#include "redact_keys.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "sha256.h"

#define TOKEN_MIN 16 /* shorter keys are not looked for */
#define TOKEN_MAX 256
#define DIGESTS_PER_LINE 64
#define BOUNDS_MAX 24 /* separators per run, each a start and an end */

static struct {
    unsigned char *digest; /* n * FM_REDACT_KEY_HASH_BYTES, sorted */
    size_t n;
} keys;

/* Byte classes, built at compile time: the scan tests every byte of every line. */
#define KEY_BYTE 1 /* may be part of a key */
#define KEY_SEP 2  /* and may also delimit one */
#define KEY_ALNUM(c)                                                                               \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define KEY_CLS(c)                                                                                 \
    ((c) == '/' || (c) == '=' || (c) == '+' || (c) == '.' || (c) == '~' ? KEY_BYTE | KEY_SEP       \
     : KEY_ALNUM(c) || (c) == '_' || (c) == '-' || (c) == '%'           ? KEY_BYTE                 \
                                                                        : 0)
#define KEY_CLS4(c) KEY_CLS(c), KEY_CLS((c) + 1), KEY_CLS((c) + 2), KEY_CLS((c) + 3)
#define KEY_CLS16(c) KEY_CLS4(c), KEY_CLS4((c) + 4), KEY_CLS4((c) + 8), KEY_CLS4((c) + 12)
#define KEY_CLS64(c) KEY_CLS16(c), KEY_CLS16((c) + 16), KEY_CLS16((c) + 32), KEY_CLS16((c) + 48)

static const unsigned char key_class[256] = {KEY_CLS64(0), KEY_CLS64(64), KEY_CLS64(128),
                                             KEY_CLS64(192)};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool is_escape(const unsigned char *s, size_t end, size_t p)
{
    return s[p] == '%' && p + 2 < end && hexval(s[p + 1]) >= 0 && hexval(s[p + 2]) >= 0;
}

/*
 * Whether a run of key bytes ends at s[i]: a byte no key has, or a %XX
 * escape of one (no key holds a control character, a non-ASCII byte or a
 * '%'), so that an escaped path such as "x%C2%85a%E2%80%A8b..." is many
 * short runs, not one long run whose separators exceed BOUNDS_MAX and which
 * would then be dropped whole.
 */
static bool ends_run(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c;

    if (key_class[s[i]] == 0)
        return true;
    if (!is_escape(s, len, i))
        return false;
    c = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
    return key_class[c] == 0 || c == '%';
}

/* Digests of secrets: ordered in constant time (sodium_compare), for qsort and bsearch alike. */
static int cmp_digest(const void *a, const void *b)
{
    return sodium_compare(a, b, FM_REDACT_KEY_HASH_BYTES);
}

/* Whether s[a, b), %XX-decoded, hashes to a configured key. */
static bool is_key(const unsigned char *s, size_t a, size_t b)
{
    unsigned char buf[TOKEN_MAX], d[FM_REDACT_KEY_HASH_BYTES];
    size_t n = 0;

    for (size_t p = a; p < b; p++) {
        if (n == sizeof(buf))
            return false;
        if (is_escape(s, b, p)) {
            buf[n++] = (unsigned char)(hexval(s[p + 1]) * 16 + hexval(s[p + 2]));
            p += 2;
        } else {
            buf[n++] = s[p];
        }
    }
    if (n < TOKEN_MIN)
        return false;
    if (fm_sha256(d, buf, n) != FM_OK)
        return true; /* cannot tell: redacted (fail closed) */
    return bsearch(d, keys.digest, keys.n, FM_REDACT_KEY_HASH_BYTES, cmp_digest) != NULL;
}

static void add_hit(fm_redact_hits *h, size_t a, size_t b)
{
    /* Spans come in order of start: one that overlaps the last, or finds no room, joins it. */
    if (h->n > 0 && (a <= h->end[h->n - 1] || h->n == FM_REDACT_KEY_HITS)) {
        if (b > h->end[h->n - 1])
            h->end[h->n - 1] = b;
        return;
    }
    h->start[h->n] = a;
    h->end[h->n] = b;
    h->n++;
}

/* The candidates of the run s[a, b); *budget is the digests the line may still take. */
static void search_run(const unsigned char *s, size_t a, size_t b, fm_redact_hits *h,
                       size_t *budget)
{
    size_t starts[BOUNDS_MAX + 1], ends[BOUNDS_MAX + 1], ns = 0, ne = 0;

    starts[ns++] = a;
    for (size_t p = a; p < b; p++) {
        size_t w = (key_class[s[p]] & KEY_SEP) != 0 ? 1 : is_escape(s, b, p) ? 3 : 0;

        if (w == 0)
            continue;
        if (ns > BOUNDS_MAX)
            goto whole;
        ends[ne++] = p;
        starts[ns++] = p + w;
        p += w - 1;
    }
    ends[ne++] = b;
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k < ne; k++) {
            if (ends[k] < starts[i] + TOKEN_MIN || ends[k] - starts[i] > 3 * TOKEN_MAX)
                continue;
            if (*budget == 0)
                goto whole;
            (*budget)--;
            if (is_key(s, starts[i], ends[k]))
                add_hit(h, starts[i], ends[k]);
        }
    return;
whole:
    add_hit(h, a, b);
}

void fm_redact_keys_find(const unsigned char *s, size_t len, fm_redact_hits *h)
{
    size_t budget = DIGESTS_PER_LINE;

    h->n = 0;
    if (keys.n == 0)
        return;
    for (size_t i = 0; i < len;) {
        size_t a = i;

        while (i < len && !ends_run(s, len, i))
            i++;
        if (i - a >= TOKEN_MIN)
            search_run(s, a, i, h, &budget);
        if (i < len)
            i += key_class[s[i]] == 0 ? 1 : 3; /* the byte, or the escape, that ended it */
    }
}

size_t fm_redact_keys_at(const fm_redact_hits *h, size_t i)
{
    for (size_t k = 0; k < h->n && h->start[k] <= i; k++)
        if (h->start[k] == i)
            return h->end[k] - i;
    return 0;
}

void fm_redact_keys_clear(void)
{
    free(keys.digest);
    keys.digest = NULL;
    keys.n = 0;
}

fm_err fm_redact_set_key_hashes(const unsigned char *hashes, size_t n)
{
    unsigned char *copy = NULL;

    if (n > 0 && hashes == NULL) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    if (n > 0) {
        if (n > SIZE_MAX / FM_REDACT_KEY_HASH_BYTES ||
            (copy = malloc(n * FM_REDACT_KEY_HASH_BYTES)) == NULL) {
            errno = ENOMEM;
            return FM_ESYS;
        }
        memcpy(copy, hashes, n * FM_REDACT_KEY_HASH_BYTES);
        qsort(copy, n, FM_REDACT_KEY_HASH_BYTES, cmp_digest);
    }
    fm_redact_keys_clear();
    keys.digest = copy;
    keys.n = n;
    return FM_OK;
}
