/*
 * query.c - strict query string parsing (see query.h).
 */
#include "query.h"

#include <stdio.h>
#include <string.h>

#include "jsonstr.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes src[0..n) into dst (cap bytes with NUL). 0, or -1 on a bad escape, control byte,
 * overflow, or a result that is not UTF-8 (values are stored and served back as JSON).
 */
static int decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || o + 1 >= cap)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return fm_jsonstr_utf8_valid(dst, o) ? 0 : -1;
}

static void allowed_list(const char *const *allowed, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; allowed[i] != NULL && o < cap; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", allowed[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

fm_err fm_query_parse(const char *qs, const char *const *allowed, fm_query *out, char *err,
                      size_t errlen)
{
    char names[128];

    memset(out, 0, sizeof(*out));
    if (qs == NULL)
        return FM_OK;
    while (*qs != '\0') {
        size_t len = strcspn(qs, "&"), klen = strcspn(qs, "=");
        char *name = out->names[out->n], *value = out->values[out->n];
        size_t i;

        if (len == 0) { /* "a=1&&b=2": an empty pair is harmless */
            qs++;
            continue;
        }
        if (out->n == FM_QUERY_MAX) {
            (void)snprintf(err, errlen, "too many query parameters");
            return FM_EINVAL;
        }
        if (klen > len)
            klen = len;
        if (klen == 0 || decode(qs, klen, name, FM_QUERY_NAME_MAX) != 0) {
            (void)snprintf(err, errlen, "malformed query parameter name");
            return FM_EINVAL;
        }
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], name) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            allowed_list(allowed, names, sizeof(names));
            (void)snprintf(err, errlen, "unknown query parameter \"%.31s\" (allowed: %s)", name,
                           names);
            return FM_EINVAL;
        }
        if (fm_query_get(out, name) != NULL) {
            (void)snprintf(err, errlen, "query parameter \"%s\" given more than once", name);
            return FM_EINVAL;
        }
        if (klen == len || decode(qs + klen + 1, len - klen - 1, value, FM_QUERY_VALUE_MAX) != 0) {
            (void)snprintf(err, errlen, "malformed value for query parameter \"%s\"", name);
            return FM_EINVAL;
        }
        out->n++;
        qs += len;
        if (*qs == '&')
            qs++;
    }
    return FM_OK;
}

const char *fm_query_get(const fm_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}
