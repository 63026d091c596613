/*
 * bruteforce.c - failed-authentication counting and address blocks in Redis,
 * with a per-worker cache.
 *
 * Redis side (one script per failure, atomic across workers):
 *
 *     n = INCR authfail:<addr>; if it has no TTL yet: EXPIRE window
 *     if n >= max: SET authblock:<addr> 1 EX block NX
 *     return {n, PTTL authblock:<addr>}
 *
 * The window is fixed (its TTL is set once); NX keeps an existing block's
 * end. A check is one PTTL of authblock:<addr>: -2 is clean; -1, a block an
 * operator set by hand, is blocked.
 *
 * Cache: FM_BF_CACHE_ENTRIES entries in hash chains (SipHash with a
 * per-process random key, so chosen addresses cannot pile into one chain)
 * and a doubly linked LRU list; when full, the least recently used entry is
 * reused. An entry holds when Redis last said "clean" and until when the
 * address is known blocked, both on the caller's monotonic clock.
 */
#include "bruteforce.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NBUCKETS 1024 /* power of two */
#define NONE (-1)

static fm_redis_script fail_script = {
    .source = "local n = redis.call('INCR', KEYS[1])\n"
              "if redis.call('TTL', KEYS[1]) < 0 then\n"
              "  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
              "end\n"
              "if n >= tonumber(ARGV[1]) then\n"
              "  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3], 'NX')\n"
              "end\n"
              "return {n, redis.call('PTTL', KEYS[2])}\n",
};

typedef struct entry {
    char addr[INET6_ADDRSTRLEN];
    bool clean_known; /* Redis said "not blocked" at checked_ms */
    int64_t checked_ms;
    int64_t blocked_until_ms; /* 0: not known blocked */
    int next;                 /* hash chain */
    int prev_lru, next_lru;   /* head = most recently used */
} entry;

static struct {
    pid_t pid; /* owner; a forked child starts empty */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    int buckets[NBUCKETS];
    entry e[FM_BF_CACHE_ENTRIES];
    int nused, head, tail;
} cache;

static void cache_init(void)
{
    if (cache.pid == getpid())
        return;
    memset(&cache, 0, sizeof(cache));
    cache.pid = getpid();
    crypto_shorthash_keygen(cache.hkey);
    for (size_t i = 0; i < NBUCKETS; i++)
        cache.buckets[i] = NONE;
    cache.head = cache.tail = NONE;
}

static size_t bucket_of(const char *addr)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    (void)crypto_shorthash(h, (const unsigned char *)addr, strlen(addr), cache.hkey);
    memcpy(&v, h, sizeof(v));
    return (size_t)(v & (NBUCKETS - 1));
}

static void lru_unlink(int i)
{
    entry *x = &cache.e[i];

    if (x->prev_lru != NONE)
        cache.e[x->prev_lru].next_lru = x->next_lru;
    else
        cache.head = x->next_lru;
    if (x->next_lru != NONE)
        cache.e[x->next_lru].prev_lru = x->prev_lru;
    else
        cache.tail = x->prev_lru;
}

static void lru_push(int i)
{
    entry *x = &cache.e[i];

    x->prev_lru = NONE;
    x->next_lru = cache.head;
    if (cache.head != NONE)
        cache.e[cache.head].prev_lru = i;
    cache.head = i;
    if (cache.tail == NONE)
        cache.tail = i;
}

static void chain_unlink(int i)
{
    int *link = &cache.buckets[bucket_of(cache.e[i].addr)];

    while (*link != NONE && *link != i)
        link = &cache.e[*link].next;
    if (*link == i)
        *link = cache.e[i].next;
}

/* The entry for addr, made most recently used; a new (empty) one when absent. */
static entry *cache_get(const char *addr)
{
    size_t b = bucket_of(addr);
    int i;

    for (i = cache.buckets[b]; i != NONE; i = cache.e[i].next)
        if (strcmp(cache.e[i].addr, addr) == 0)
            break;
    if (i == NONE) {
        if (cache.nused < FM_BF_CACHE_ENTRIES) {
            i = cache.nused++;
        } else {
            i = cache.tail;
            lru_unlink(i);
            chain_unlink(i);
        }
        memset(&cache.e[i], 0, sizeof(cache.e[i]));
        (void)snprintf(cache.e[i].addr, sizeof(cache.e[i].addr), "%s", addr);
        cache.e[i].next = cache.buckets[b];
        cache.buckets[b] = i;
    } else {
        lru_unlink(i);
    }
    lru_push(i);
    return &cache.e[i];
}

/*
 * addr as the guard keys it; -1 when it is not an IP literal. An IPv4-mapped
 * IPv6 address is its IPv4 address. Other IPv6 addresses are keyed by their
 * /64: one end site usually holds a whole /64, so per-/128 counting would let
 * a guesser rotate through addresses it owns anyway.
 */
static int normalize(const char *addr, char out[INET6_ADDRSTRLEN])
{
    struct in_addr a4;
    struct in6_addr a6;

    if (addr == NULL || strlen(addr) >= INET6_ADDRSTRLEN)
        return -1;
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        (void)snprintf(out, INET6_ADDRSTRLEN, "%s", addr);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
        return inet_ntop(AF_INET, &a4, out, INET6_ADDRSTRLEN) != NULL ? 0 : -1;
    }
    memset(&a6.s6_addr[8], 0, 8);
    if (inet_ntop(AF_INET6, &a6, out, INET6_ADDRSTRLEN - 3) == NULL)
        return -1;
    (void)snprintf(out + strlen(out), INET6_ADDRSTRLEN - strlen(out), "/64");
    return 0;
}

static uint32_t ms_to_s_min1(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;

    return s < 1 ? 1 : s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/*
 * Records a block answer from Redis (PTTL of the block key: > 0 ms left, -1
 * no expiry, -2 none). Returns true and sets *secs when blocked.
 */
static bool record_block(entry *x, const fm_bf_policy *policy, long long pttl, int64_t now_ms,
                         uint32_t *secs)
{
    x->checked_ms = now_ms;
    if (pttl == -2 || pttl == 0) {
        x->clean_known = true;
        x->blocked_until_ms = 0;
        return false;
    }
    x->clean_known = false;
    if (pttl < 0) {
        /* A block without an end: refuse, and ask again after the usual interval. */
        x->blocked_until_ms = now_ms + FM_BF_RECHECK_MS;
        *secs = policy->block_seconds;
        return true;
    }
    x->blocked_until_ms = now_ms + pttl;
    *secs = ms_to_s_min1(pttl);
    return true;
}

static int block_key(char *key, size_t cap, const char *prefix, const char *what, const char *addr)
{
    return snprintf(key, cap, "%s%s:%s", prefix, what, addr) < (int)cap ? 0 : -1;
}

fm_err fm_bruteforce_check(fm_redis *redis, const char *prefix, const fm_bf_policy *policy,
                           const char *addr, int64_t now_ms, bool *blocked, uint32_t *retry_after_s)
{
    char ip[INET6_ADDRSTRLEN], key[320];
    const char *argv[2] = {"PTTL", key};
    redisReply *reply;
    entry *x;
    fm_err rc = FM_EREDIS;

    *blocked = false;
    *retry_after_s = 0;
    if (normalize(addr, ip) != 0)
        return FM_OK;
    cache_init();
    x = cache_get(ip);
    /* Both answers are trusted for FM_BF_RECHECK_MS only: an operator's unblock shows too. */
    if (now_ms - x->checked_ms < FM_BF_RECHECK_MS) {
        if (x->blocked_until_ms > now_ms) {
            *blocked = true;
            *retry_after_s = ms_to_s_min1(x->blocked_until_ms - now_ms);
            return FM_OK;
        }
        if (x->clean_known)
            return FM_OK;
    }
    if (block_key(key, sizeof(key), prefix, "authblock", ip) != 0)
        return FM_EINVAL;
    reply = fm_redis_argv(redis, 2, argv, NULL);
    if (reply == NULL) {
        /* Redis gone: a block this worker saw still runs its course. */
        if (x->blocked_until_ms > now_ms) {
            *blocked = true;
            *retry_after_s = ms_to_s_min1(x->blocked_until_ms - now_ms);
            return FM_OK;
        }
        return FM_EREDIS;
    }
    if (reply->type == REDIS_REPLY_INTEGER) {
        *blocked = record_block(x, policy, reply->integer, now_ms, retry_after_s);
        rc = FM_OK;
    }
    freeReplyObject(reply);
    return rc;
}

fm_err fm_bruteforce_fail(fm_redis *redis, const char *prefix, const fm_bf_policy *policy,
                          const char *addr, int64_t now_ms, bool *blocked, uint32_t *block_s)
{
    char ip[INET6_ADDRSTRLEN], fail_key[320], blk_key[320], max[16], window[16], block[16];
    const char *argv[5] = {fail_key, blk_key, max, window, block};
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    *blocked = false;
    *block_s = 0;
    if (normalize(addr, ip) != 0)
        return FM_OK;
    cache_init();
    if (block_key(fail_key, sizeof(fail_key), prefix, "authfail", ip) != 0 ||
        block_key(blk_key, sizeof(blk_key), prefix, "authblock", ip) != 0)
        return FM_EINVAL;
    (void)snprintf(max, sizeof(max), "%u", (unsigned)policy->max);
    (void)snprintf(window, sizeof(window), "%u", (unsigned)policy->window_seconds);
    (void)snprintf(block, sizeof(block), "%u", (unsigned)policy->block_seconds);
    reply = fm_redis_eval(redis, &fail_script, 2, 5, argv);
    if (reply == NULL)
        return FM_EREDIS;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        *blocked = record_block(cache_get(ip), policy, reply->element[1]->integer, now_ms, block_s);
        rc = FM_OK;
    }
    freeReplyObject(reply);
    return rc;
}
