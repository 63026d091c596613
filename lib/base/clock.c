/*
 * clock.c - RFC 3339 timestamps. All times are UTC; no locale or TZ is read.
 */
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t fm_clock_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Formats Unix ms as RFC 3339 UTC, with or without the milliseconds. */
static char *format_ms(char buf[FM_RFC3339_MAX], int64_t ms, int with_ms)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    time_t t;
    struct tm tm;

    if (frac < 0) { /* before 1970: floor, so that the fraction counts forward */
        secs--;
        frac += 1000;
    }
    t = (time_t)secs;
    if (gmtime_r(&t, &tm) == NULL) {
        (void)snprintf(buf, FM_RFC3339_MAX, "1970-01-01T00:00:00Z");
        return buf;
    }
    size_t n = strftime(buf, FM_RFC3339_MAX, "%Y-%m-%dT%H:%M:%S", &tm);

    if (with_ms)
        (void)snprintf(buf + n, FM_RFC3339_MAX - n, ".%03uZ", (unsigned)frac);
    else
        (void)snprintf(buf + n, FM_RFC3339_MAX - n, "Z");
    return buf;
}

char *fm_clock_rfc3339(char buf[FM_RFC3339_MAX], int with_ms)
{
    return format_ms(buf, fm_clock_now_ms(), with_ms);
}

char *fm_clock_rfc3339_ms(char buf[FM_RFC3339_MAX], int64_t ms)
{
    return format_ms(buf, ms, 1);
}

/* Reads exactly n decimal digits; strict, unlike strtol, which takes signs and spaces. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 ? 28 + leap : dim[month - 1];
}

/* Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

fm_err fm_clock_parse_rfc3339(const char *text, int64_t *out)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, off = 0;

    if (text == NULL || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return FM_EPARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return FM_EPARSE;
    if (*p != '\0') {
        if ((*p != 'T' && *p != 't') || (p++, digits(&p, 2, &h)) || *p++ != ':' ||
            digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &s))
            return FM_EPARSE;
        if (h > 23 || mi > 59 || s > 60)
            return FM_EPARSE;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return FM_EPARSE;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return FM_EPARSE;
            off = sign * (oh * 3600 + om * 60);
        } else {
            return FM_EPARSE;
        }
        if (*p != '\0')
            return FM_EPARSE;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off;
    return FM_OK;
}
