/*
 * bruteforce.h - the brute-force guard, run on every request before the key
 * is checked, and the known-client rule that keeps a shared address usable.
 *
 * Failed authentications are counted per client address in Redis, in a fixed
 * window: "<prefix>authfail:<addr>" is incremented and, on its first
 * increment, expires after rate_limit.auth_failures.window_seconds. When the
 * count reaches auth_failures.max, "<prefix>authblock:<addr>" is set with
 * block_seconds to live, and the address is refused (429) before any key is
 * checked until it expires. The count is not reset by the block: while its
 * window lasts, one more failure after the block blocks again.
 *
 * Requests that present no credential at all are counted the same way in
 * "<prefix>anon:<addr>" against rate_limit.anonymous (max per
 * window_seconds); reaching max blocks the address until that window ends
 * (the block key then holds "anon"; a later failed-authentication block
 * replaces it with its longer one). So per address and window, at most
 * anonymous.max keyless requests and auth_failures.max failed ones get past
 * the guard, plus at most one more per worker process that had not yet seen
 * the block; every other request from a blocked address is refused at the
 * guard without a key check or a log line.
 *
 * Known clients: while an address is blocked, a request whose key
 * authenticated successfully from that address within
 * auth_failures.known_days still goes on. A success is remembered as
 * "<prefix>authknown:<addr>:<key_id>" (key_id: the key's public fingerprint,
 * auth.h) with known_days to live; a worker writes it again at most every
 * FM_BF_KNOWN_REFRESH_MS per (address, key), so an unblocked address costs no
 * Redis call beyond that. Whether a key is known is asked (one EXISTS) only
 * while its address is blocked, for every presented key alike, valid or not.
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
 * runs its course. Known (address, key) pairs are cached likewise, up to
 * FM_BF_CACHE_ENTRIES of them: a "known" answer for FM_BF_RECHECK_MS (so an
 * operator's DEL of the authknown key shows within a second), this worker's
 * own write for FM_BF_KNOWN_REFRESH_MS; only successes enter that cache, so
 * failed guesses cannot push known clients out. Not
 * thread-safe: one cache per process, for one key prefix (a process serves
 * one configuration).
 */
#ifndef FM_BRUTEFORCE_H
#define FM_BRUTEFORCE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "ipacl.h"
#include "redisconn.h"

/* The guard's settings (rate_limit.auth_failures in the config). */
typedef struct fm_bf_policy {
    uint32_t max;                 /* failed authentications per window, 1..1000000 */
    uint32_t window_seconds;      /* counting window, 1..86400 */
    uint32_t block_seconds;       /* how long an address is refused, 1..604800 */
    uint32_t known_days;          /* known-client memory, days, 0..365; 0 = no known clients */
    uint32_t anon_max;            /* keyless requests per anon window, 1..1000000 */
    uint32_t anon_window_seconds; /* their counting window (and longest block), 1..86400 */
} fm_bf_policy;

#define FM_BF_CACHE_ENTRIES 1024       /* addresses one worker remembers */
#define FM_BF_RECHECK_MS 1000          /* an address is asked about again after this, ms */
#define FM_BF_KNOWN_REFRESH_MS 3600000 /* a known client is written again after this, ms */
#define FM_BF_KEY_ID_MAX 16            /* longest key fingerprint accepted, hex digits */

/* A client address as the guard keys it (see above); key "" when it is not an IP literal. */
typedef struct fm_bf_addr {
    char key[INET6_ADDRSTRLEN];
} fm_bf_addr;

/*
 * fm_bruteforce_addr - the client address text, which fm_ipacl_parse_host
 * parsed into host (NULL when it is not an IP literal), as the guard keys it,
 * into *out: made once per request, and what every call below takes as addr.
 */
void fm_bruteforce_addr(const char *text, const fm_cidr *host, fm_bf_addr *out);

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
                                         const fm_bf_policy *policy, const fm_bf_addr *addr,
                                         int64_t now_ms, bool *blocked, uint32_t *retry_after_s);

/*
 * fm_bruteforce_fail - count one request from addr that ended without a valid
 * key (one Lua script) under the key prefix: presented says whether it
 * carried a credential (a failed authentication, counted against
 * policy->max) or none (counted against policy->anon_max). On FM_OK,
 * *blocked says whether the address is blocked now (this request reached a
 * max, or it was already blocked), with *block_s = whole seconds (>= 1) the
 * block still lasts, and caches that; an address that is not an IP literal
 * is not counted. FM_EREDIS when Redis could not answer, FM_EINVAL when a key
 * would not fit: nothing counted, *blocked false.
 */
FM_MUST_CHECK fm_err fm_bruteforce_fail(fm_redis *redis, const char *prefix,
                                        const fm_bf_policy *policy, const fm_bf_addr *addr,
                                        bool presented, int64_t now_ms, bool *blocked,
                                        uint32_t *block_s);

/*
 * fm_bruteforce_known - for a request from a blocked addr: did the key with
 * fingerprint key_id (1..FM_BF_KEY_ID_MAX lowercase hex, auth.h's key_id)
 * authenticate successfully from addr within policy->known_days? Answers
 * from this worker's cache when a yes is younger than FM_BF_RECHECK_MS, else
 * with one EXISTS (only a yes is cached).
 * *known is false when known_days is 0 or addr is not an IP literal. Returns
 * FM_OK; FM_EREDIS when Redis could not answer; FM_EINVAL for a bad key_id
 * or a key that would not fit. On an error *known is false (a blocked
 * address stays blocked).
 */
FM_MUST_CHECK fm_err fm_bruteforce_known(fm_redis *redis, const char *prefix,
                                         const fm_bf_policy *policy, const fm_bf_addr *addr,
                                         const char *key_id, int64_t now_ms, bool *known);

/*
 * fm_bruteforce_remember - the key with fingerprint key_id authenticated
 * successfully from addr: make it a known client of addr for
 * policy->known_days (SET ... EX), unless this worker did so within
 * FM_BF_KNOWN_REFRESH_MS (then no Redis call). Does nothing when
 * known_days is 0 or addr is not an IP literal. Returns FM_OK, FM_EREDIS
 * when Redis could not answer, FM_EINVAL as fm_bruteforce_known.
 */
FM_MUST_CHECK fm_err fm_bruteforce_remember(fm_redis *redis, const char *prefix,
                                            const fm_bf_policy *policy, const fm_bf_addr *addr,
                                            const char *key_id, int64_t now_ms);

#endif
