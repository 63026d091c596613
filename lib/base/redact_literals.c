/*
 * redact_literals.c - internal to the redaction filter (redact.c): the
 * literal secrets registered at config load (fm_redact_add_secret) and the
 * forms of keys held for one request (fm_redact_hold_path), found in a line
 * by first byte, then constant-time comparison. The public contract is in
 * redact.h.
 */
#include "redact_literals.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "redact_keys.h"

static struct {
    char *value[FM_REDACT_MAX_SECRETS];
    size_t len[FM_REDACT_MAX_SECRETS];
    size_t count;
    unsigned char first[256]; /* nonzero when some secret starts with that byte */
} secrets;

/*
 * The forms of keys the current request's raw path holds, as nginx's path
 * normalisation leaves them (fm_redact_hold_path): literals for one request.
 * Keys are known only by digest, so these forms cannot be computed at config
 * load; the raw path is the one place the key is seen whole.
 */
static struct {
    char *buf; /* the forms back to back; never longer than the raw path */
    size_t size;
    size_t start[FM_REDACT_KEY_HITS], len[FM_REDACT_KEY_HITS];
    size_t count;
    unsigned char first[256];
} held;

/* secrets.first | held.first: the one table the scan looks at for every byte. */
static unsigned char starts[256];

const unsigned char *fm_redact_literals_starts(void)
{
    return starts;
}

size_t fm_redact_literals_at(const unsigned char *s, size_t len, size_t i)
{
    size_t best = 0;

    if (secrets.first[s[i]])
        for (size_t k = 0; k < secrets.count; k++) {
            size_t n = secrets.len[k];

            if (n > best && n <= len - i && sodium_memcmp(s + i, secrets.value[k], n) == 0)
                best = n;
        }
    if (held.first[s[i]])
        for (size_t k = 0; k < held.count; k++) {
            size_t n = held.len[k];

            if (n > best && n <= len - i && sodium_memcmp(s + i, held.buf + held.start[k], n) == 0)
                best = n;
        }
    return best;
}

bool fm_redact_literals_none(void)
{
    return secrets.count == 0 && held.count == 0;
}

fm_err fm_redact_add_secret(const char *value)
{
    size_t n;
    char *copy;

    if (value == NULL) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    n = strlen(value);
    if (n < FM_REDACT_MIN_SECRET)
        return FM_OK;
    for (size_t k = 0; k < secrets.count; k++)
        if (secrets.len[k] == n && sodium_memcmp(secrets.value[k], value, n) == 0)
            return FM_OK;
    if (secrets.count == FM_REDACT_MAX_SECRETS) {
        errno = ENOSPC;
        return FM_ESYS;
    }
    copy = malloc(n + 1);
    if (copy == NULL)
        return FM_ESYS;
    memcpy(copy, value, n + 1);
    secrets.value[secrets.count] = copy;
    secrets.len[secrets.count] = n;
    secrets.count++;
    secrets.first[(unsigned char)value[0]] = 1;
    starts[(unsigned char)value[0]] = 1;
    return FM_OK;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static int hex_value(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* p[0, n) as nginx normalises a path: %XX decoded, runs of '/' merged. Returns the length. */
static size_t normalise(const unsigned char *p, size_t n, char *out)
{
    size_t o = 0;

    for (size_t j = 0; j < n; j++) {
        unsigned char c = p[j];

        if (c == '%' && j + 2 < n && is_hex(p[j + 1]) && is_hex(p[j + 2])) {
            c = (unsigned char)(hex_value(p[j + 1]) * 16 + hex_value(p[j + 2]));
            j += 2;
        }
        if (c == '/' && o > 0 && out[o - 1] == '/')
            continue;
        out[o++] = (char)c;
    }
    return o;
}

fm_err fm_redact_hold_path(const char *raw, size_t len)
{
    fm_redact_hits h;
    size_t o = 0;

    fm_redact_release();
    if (raw == NULL) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    fm_redact_keys_find((const unsigned char *)raw, len, &h);
    if (h.n == 0)
        return FM_OK;
    if ((held.buf = malloc(len)) == NULL) {
        errno = ENOMEM;
        return FM_ESYS;
    }
    held.size = len;
    for (size_t k = 0; k < h.n; k++) {
        size_t a = o, n = normalise((const unsigned char *)raw + h.start[k], h.end[k] - h.start[k],
                                    held.buf + o);

        /*
         * A '/' at either end may be the one nginx left of the key's and the
         * path's: the app may split the path there ("/v1/tasks//k" routes as
         * task "k"), so the form is held without it.
         */
        if (n > 0 && held.buf[a] == '/') {
            a++;
            n--;
        }
        if (n > 0 && held.buf[a + n - 1] == '/')
            n--;
        if (n == 0)
            continue;
        held.start[held.count] = a;
        held.len[held.count] = n;
        held.first[(unsigned char)held.buf[a]] = 1;
        starts[(unsigned char)held.buf[a]] = 1;
        held.count++;
        o = a + n;
    }
    return FM_OK;
}

void fm_redact_release(void)
{
    if (held.buf != NULL) {
        sodium_memzero(held.buf, held.size);
        free(held.buf);
    }
    held.buf = NULL;
    held.size = 0;
    held.count = 0;
    memset(held.first, 0, sizeof(held.first));
    memcpy(starts, secrets.first, sizeof(starts));
}

void fm_redact_clear_secrets(void)
{
    fm_redact_release();
    for (size_t k = 0; k < secrets.count; k++) {
        sodium_memzero(secrets.value[k], secrets.len[k]);
        free(secrets.value[k]);
        secrets.value[k] = NULL;
        secrets.len[k] = 0;
    }
    secrets.count = 0;
    memset(secrets.first, 0, sizeof(secrets.first));
    memset(starts, 0, sizeof(starts));
    fm_redact_keys_clear();
}
