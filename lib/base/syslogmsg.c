/*
 * syslogmsg.c - RFC 3164 header parsing and log-line rendering for nginx's
 * syslog output.
 *
 * Parsing is one forward pass over a fixed shape: "<", one to three digits
 * without a leading zero, ">", the 15-byte timestamp and a space, then either
 * "TAG: " or "HOSTNAME TAG: ". The two are told apart by the colon: a tag
 * (alphanumerics and '_') is always followed by ": ", a hostname never holds
 * a colon-space. Nothing is copied; the result points into the datagram.
 *
 * Rendering is the same order of steps as the api log (log.c): redact the
 * whole message first, so that the filter sees every secret whole, then
 * escape control bytes, then cut to the line size. Cutting after redaction
 * can only drop bytes, never uncover part of a secret.
 */
#include "syslogmsg.h"

#include "log.h"

#include "redact.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PRI_MAX 191      /* facility 23 * 8 + severity 7 */
#define TIMESTAMP_LEN 15 /* "Mmm dd hh:mm:ss" */
#define HOSTNAME_MAX 255

static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static int is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

static int is_tag_byte(unsigned char c)
{
    return is_digit(c) || (unsigned)((c | 0x20) - 'a') < 26 || c == '_';
}

/* Two digits at p as a number no greater than max, or -1. */
static int two_digits(const unsigned char *p, int max)
{
    int v;

    if (!is_digit(p[0]) || !is_digit(p[1]))
        return -1;
    v = (p[0] - '0') * 10 + (p[1] - '0');
    return v <= max ? v : -1;
}

/* "Mmm dd hh:mm:ss": day space-padded (RFC 3164 4.1.2), 60 seconds allowed for a leap second. */
static int timestamp_ok(const unsigned char *p)
{
    const char *m = NULL;
    int day;

    for (size_t k = 0; k + 3 <= sizeof(months) - 1 && m == NULL; k += 3)
        if (memcmp(p, months + k, 3) == 0)
            m = months + k;
    if (m == NULL || p[3] != ' ')
        return 0;
    if (p[4] == ' ')
        day = is_digit(p[5]) ? p[5] - '0' : -1;
    else
        day = two_digits(p + 4, 31);
    return day >= 1 && p[6] == ' ' && two_digits(p + 7, 23) >= 0 && p[9] == ':' &&
           two_digits(p + 10, 59) >= 0 && p[12] == ':' && two_digits(p + 13, 60) >= 0;
}

/* "TAG: " at s + i: the tag length, or 0. */
static size_t tag_at(const unsigned char *s, size_t len, size_t i)
{
    size_t j = i;

    while (j < len && j - i <= FM_SYSLOGMSG_TAG_MAX && is_tag_byte(s[j]))
        j++;
    if (j == i || j - i > FM_SYSLOGMSG_TAG_MAX || len - j < 2 || s[j] != ':' || s[j + 1] != ' ')
        return 0;
    return j - i;
}

fm_err fm_syslogmsg_parse(const char *buf, size_t len, fm_syslogmsg *out)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 1, n;
    int pri = 0;

    if (buf == NULL || out == NULL || len < 3 || s[0] != '<')
        goto fail;
    while (i < len && i <= 3 && is_digit(s[i]))
        pri = pri * 10 + (s[i++] - '0');
    if (i == 1 || i >= len || s[i] != '>' || pri > PRI_MAX || (s[1] == '0' && i > 2))
        goto fail;
    i++;
    if (len - i < TIMESTAMP_LEN + 1 || !timestamp_ok(s + i) || s[i + TIMESTAMP_LEN] != ' ')
        goto fail;
    i += TIMESTAMP_LEN + 1;

    n = tag_at(s, len, i);
    if (n == 0) {
        /* A hostname: printable, no blanks, then one space before the tag. */
        size_t h = i;

        while (h < len && h - i < HOSTNAME_MAX && s[h] > ' ' && s[h] < 0x7f)
            h++;
        if (h == i || h >= len || s[h] != ' ')
            goto fail;
        i = h + 1;
        n = tag_at(s, len, i);
        if (n == 0)
            goto fail;
    }
    out->pri = pri;
    out->tag = buf + i;
    out->tag_len = n;
    out->msg = buf + i + n + 2;
    out->msg_len = len - (i + n + 2);
    return FM_OK;
fail:
    return FM_EPARSE;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * One round of "%XX" decoding from src into dst (never longer). Returns the
 * new length. '+' is kept: a base64 key holds '+', and the filter must see
 * the key as sent to recognise it (it takes "Bearer+token" as a credential).
 */
static size_t url_decode(const char *src, size_t len, char *dst)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (src[i] == '%' && i + 2 < len && (h = hexval((unsigned char)src[i + 1])) >= 0 &&
            (l = hexval((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

size_t fm_syslogmsg_line(const char *msg, size_t len, char line[FM_SYSLOGMSG_LINE_MAX])
{
    char a[FM_LOG_SANITIZE_MAX], b[FM_LOG_SANITIZE_MAX];
    char *cur = a, *next = b, *tmp;
    size_t n = len < sizeof(a) - 1 ? len : sizeof(a) - 1, m, cut;

    memcpy(a, msg, n);
    for (int round = 0; round < 3 && memchr(cur, '%', n) != NULL; round++) {
        m = url_decode(cur, n, next);
        tmp = cur;
        cur = next;
        next = tmp;
        if (m == n)
            break;
        n = m;
    }
    if (len >= FM_SYSLOGMSG_NGINX_CUT && len <= FM_SYSLOGMSG_NGINX_MAX) {
        for (cut = n; cut > 0 && strchr(" \t\"'/?&=,;", cur[cut - 1]) == NULL; cut--)
            ;
        if (cut < n && cut + sizeof(FM_REDACTED) <= sizeof(a)) {
            memcpy(cur + cut, FM_REDACTED, sizeof(FM_REDACTED) - 1);
            n = cut + sizeof(FM_REDACTED) - 1;
        }
    }
    return fm_log_sanitize(cur, n, line, FM_SYSLOGMSG_LINE_MAX);
}
