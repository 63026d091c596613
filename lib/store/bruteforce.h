/*
 * bruteforce.h - the brute-force guard, run on every request before the key
 * is checked.
 *
 * Failed authentications are counted per client address in Redis, in a fixed
 * window: "<prefix>authfail:<addr>" is incremented and, on its first
 * increment, expires after rate_limit.auth_failures.window_seconds. When the
 * count reaches auth_failures.max, "<prefix>authblock:<addr>" is set with
 * block_seconds to live, and the address is refused (429) before any key is
 * checked until it expires. The count is not reset by the block: while its
 * window lasts, one more failure after the block blocks again.
 *
 * The address is REMOTE_ADDR: an IPv4 address as given, an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) as its IPv4 address, and any other IPv6 address
 * by its /64 ("2001:db8:1:2::/64"), since a site usually holds a whole /64;
 * anything that is not an IPv4 or IPv6 literal is never counted or blocked
 * (the global allow-list, checked before the guard, refuses it first).
 *
 * To spare a Redis round trip per request, each worker process caches, for
 * up to FM_BF_CACHE_ENTRIES addresses (least recently used out), what Redis
 * last said about an address (clean, or blocked until when) for
 * FM_BF_RECHECK_MS. So a block set by another worker, or lifted by an
 * operator (DEL the authblock key), takes effect in this one at most
 * FM_BF_RECHECK_MS (1 s) late; a block this worker sets itself applies from
 * the next request. While Redis is unreachable a block this worker knows of
 * runs its course. Not thread-safe: one cache per process, for one key
 * prefix (a process serves one configuration).
 */
#ifndef FM_BRUTEFORCE_H
#define FM_BRUTEFORCE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "redisconn.h"

/* The guard's settings (rate_limit.auth_failures in the config). */
typedef struct fm_bf_policy {
    uint32_t max;            /* failed authentications per window, 1..1000000 */
    uint32_t window_seconds; /* counting window, 1..86400 */
    uint32_t block_seconds;  /* how long an address is refused, 1..604800 */
} fm_bf_policy;

#define FM_BF_CACHE_ENTRIES 1024 /* addresses one worker remembers */
#define FM_BF_RECHECK_MS 1000    /* an address is asked about again after this, ms */

/*
 * fm_bruteforce_check - is addr blocked? now_ms is the caller's
 * CLOCK_MONOTONIC time in milliseconds. Answers from the cache when it can,
 * else with one PTTL. On FM_OK, *blocked says whether the address is refused
 * now, and then *retry_after_s = whole seconds (>= 1) until the block ends
 * (0 otherwise); an address that is not an IP literal is never blocked.
 * Returns FM_EREDIS when Redis could not answer (connection error, timeout,
 * error reply) and FM_EINVAL when a key would not fit (prefix longer than the
 * config allows): *blocked is false then, and the caller does not block (the
 * guard fails open; the rate limiter's own policy still applies).
 */
FM_MUST_CHECK fm_err fm_bruteforce_check(fm_redis *redis, const char *prefix,
                                         const fm_bf_policy *policy, const char *addr,
                                         int64_t now_ms, bool *blocked, uint32_t *retry_after_s);

/*
 * fm_bruteforce_fail - count one failed authentication from addr with
 * policy (one Lua script) under the key prefix. On FM_OK, *blocked says
 * whether the address is blocked now (this failure reached max, or it was
 * already blocked), with *block_s = whole seconds (>= 1) the block still
 * lasts, and caches that; an address that is not an IP literal is not
 * counted. FM_EREDIS when Redis could not answer, FM_EINVAL when a key would
 * not fit: nothing counted, *blocked false.
 */
FM_MUST_CHECK fm_err fm_bruteforce_fail(fm_redis *redis, const char *prefix,
                                        const fm_bf_policy *policy, const char *addr,
                                        int64_t now_ms, bool *blocked, uint32_t *block_s);

#endif
