/*
 * ratelimit.h - per-user token bucket kept in Redis (SPEC section 2, step 6).
 *
 * The bucket holds up to burst tokens and refills at requests_per_minute/60
 * tokens per second; a request takes one token or is refused. One Lua script
 * does read-refill-take-write atomically on the Redis server, with the
 * server's clock (TIME), so the N workers of a pool share one exact bucket and
 * their own clocks never matter. Bucket keys expire once they would be full.
 * Response fields follow draft-ietf-httpapi-ratelimit-headers (RateLimit-Policy,
 * RateLimit) and RFC 9110 section 10.2.3 (Retry-After).
 */
#ifndef FM_RATELIMIT_H
#define FM_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "redisconn.h"

typedef struct fm_rl_result {
    bool allowed;
    uint32_t limit;            /* requests_per_minute of the policy applied */
    uint32_t burst;            /* bucket capacity */
    uint32_t remaining;        /* whole tokens left after this request */
    uint32_t reset_s;          /* seconds until the bucket is full again */
    uint32_t retry_after_s;    /* when refused: whole seconds >= 1 until one token exists */
} fm_rl_result;

/*
 * fm_ratelimit_take - take one token from the bucket "<prefix>rl:<user>" with
 * the given rate. Returns 0 with *out filled, or -1 when Redis could not
 * decide (connection error, timeout, error reply); the caller applies
 * rate_limit.on_redis_error.
 */
int fm_ratelimit_take(fm_redis *redis, const char *prefix, const char *user, const fm_rate *rate,
                      fm_rl_result *out);

/*
 * fm_ratelimit_headers - write the RateLimit-Policy and RateLimit header lines
 * (without CRLF) for res into policy and state (each cap bytes), e.g.
 *   RateLimit-Policy: "user";q=30;w=60
 *   RateLimit: "user";r=9;t=20
 */
void fm_ratelimit_headers(const fm_rl_result *res, char *policy, char *state, size_t cap);

#endif
