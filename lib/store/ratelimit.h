/*
 * ratelimit.h - per-user token bucket kept in Redis, applied to every
 * authenticated request.
 *
 * The bucket holds up to burst tokens and refills at requests_per_minute/60
 * tokens per second; a request takes one token or is refused. One Lua script
 * does read-refill-take-write atomically on the Redis server, with the
 * server's clock (TIME), so the N workers of a pool share one exact bucket and
 * their own clocks never matter. Bucket keys expire once they would be full.
 *
 * To spend less than one Redis round trip per request, a worker process may
 * take a few tokens at once (a reservation: at most FM_RL_RESERVE_MAX, at
 * most 1/workers of what the bucket holds, so a small bucket is never
 * stranded in one worker, and only as many as its recent demand suggests)
 * and spend them locally for at most FM_RL_RESERVE_MS; unspent ones are then
 * dropped (lost, never returned).
 * The bucket records each worker's latest reservation until it has expired
 * and does not refill past burst minus those, so tokens held in workers plus
 * tokens in Redis never exceed burst: for any interval of length T,
 * requests admitted <= burst + rate * T, exactly, across the whole pool.
 *
 * Response fields follow draft-ietf-httpapi-ratelimit-headers (RateLimit-Policy,
 * RateLimit) and RFC 9110 section 10.2.3 (Retry-After).
 */
#ifndef FM_RATELIMIT_H
#define FM_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "redisconn.h"
#include "response.h"

/* One bucket's policy. */
typedef struct fm_rate {
    uint32_t requests_per_minute; /* refill rate, >= 1 */
    uint32_t burst;               /* bucket capacity, >= 1 */
} fm_rate;

#define FM_RL_RESERVE_MAX 8  /* tokens one worker takes from Redis at most at once */
#define FM_RL_RESERVE_MS 250 /* lifetime of a worker's reserved tokens, milliseconds */
#define FM_RL_LOCAL_SLOTS 64 /* users a worker holds reserved tokens for at once */

typedef struct fm_rl_result {
    bool allowed;
    bool local;             /* decided from this worker's reserved tokens, without Redis */
    uint32_t limit;         /* requests_per_minute of the policy applied */
    uint32_t burst;         /* bucket capacity */
    uint32_t remaining;     /* whole tokens left after this request (Redis + this worker) */
    uint32_t reset_s;       /* seconds until the bucket is full again */
    uint32_t retry_after_s; /* when refused: whole seconds >= 1 until one token exists */
} fm_rl_result;

/*
 * fm_ratelimit_take - take one token from the bucket "<prefix>rl:<user>" with
 * the given rate, for a pool of workers processes (>= 1; sizes the
 * reservation). now_ms is the caller's CLOCK_MONOTONIC time in milliseconds,
 * read before the call; it only ages this process's reserved tokens (the
 * bucket itself runs on Redis TIME).
 *
 * A token reserved earlier by this process for the same bucket and rate, and
 * younger than FM_RL_RESERVE_MS, is spent without contacting Redis
 * (out->local). Otherwise the script takes up to
 * min(want, FM_RL_RESERVE_MAX, burst / workers, tokens in the bucket / workers)
 * tokens, at least one, spends one now and keeps the rest for later calls.
 * want follows this process's demand for the bucket: 1 at first and after a
 * quiet spell (2 * FM_RL_RESERVE_MS), doubled while reservations are used up
 * within their lifetime, halved when one expires with tokens left.
 * Reserved tokens are dropped when the rate given changes, after a fork, and
 * when FM_RL_LOCAL_SLOTS other users need the space. out->remaining counts
 * the tokens in Redis plus those reserved here; out->reset_s is derived from
 * the same count, so both are approximate while other workers hold tokens.
 *
 * Returns FM_OK with *out filled (out->allowed says whether the request is
 * admitted); FM_EREDIS when Redis could not decide (connection error,
 * timeout, error reply); FM_EINVAL when "<prefix>rl:<user>" is longer than
 * the key buffer (255 bytes; the config's limits on prefix and user names
 * keep it shorter). On an error out->allowed is false and the caller applies
 * rate_limit.on_redis_error. Not thread-safe: one table per process.
 */
FM_MUST_CHECK fm_err fm_ratelimit_take(fm_redis *redis, const char *prefix, const char *user,
                                       const fm_rate *rate, int workers, int64_t now_ms,
                                       fm_rl_result *out);

/*
 * fm_ratelimit_headers - add the RateLimit-Policy and RateLimit header lines
 * for res to resp, each formatted once, straight into its header table, e.g.
 *   RateLimit-Policy: "user";q=30;w=60
 *   RateLimit: "user";r=9;t=20
 * A line that does not fit the table (fm_response_header) is left out.
 */
void fm_ratelimit_headers(const fm_rl_result *res, fm_response *resp);

#endif
