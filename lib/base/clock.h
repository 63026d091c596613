/*
 * clock.h - wall-clock timestamps in RFC 3339 UTC.
 */
#ifndef FM_CLOCK_H
#define FM_CLOCK_H

#include <stdint.h>

#include "err.h"

#define FM_RFC3339_MAX 32 /* "2026-11-29T06:40:00.123Z" plus NUL, with room */

/*
 * fm_clock_rfc3339 - format now (CLOCK_REALTIME) as "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * (with_ms != 0) or "YYYY-MM-DDTHH:MM:SSZ" into buf (FM_RFC3339_MAX bytes).
 * Returns buf. Never fails for dates between years 0 and 9999.
 */
char *fm_clock_rfc3339(char buf[FM_RFC3339_MAX], int with_ms);

/*
 * fm_clock_rfc3339_ms - format ms (milliseconds since the Unix epoch, e.g. a
 * Redis TIME) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf. Returns buf.
 */
char *fm_clock_rfc3339_ms(char buf[FM_RFC3339_MAX], int64_t ms);

/* fm_clock_now_ms - milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t fm_clock_now_ms(void);

/*
 * fm_clock_parse_rfc3339 - parse "YYYY-MM-DDTHH:MM:SSZ", the same with a
 * numeric offset (+HH:MM), or a bare date "YYYY-MM-DD" (midnight UTC) into
 * Unix seconds. Fractional seconds are accepted and dropped. Returns FM_OK
 * and sets *out, or FM_EPARSE (for NULL text too) on any other form or an
 * impossible date (*out is then unchanged).
 */
fm_err fm_clock_parse_rfc3339(const char *text, int64_t *out);

#endif
