/*
 * bruteforce.c - failed-authentication counting and address blocks in Redis,
 * with a per-worker cache.
 *
 * Redis side (one script per counted request, atomic across workers), with
 * C = authfail:<addr> for a failed authentication, anon:<addr> for a request
 * without a credential:
 *
 *     n = INCR C; if it has no TTL yet: EXPIRE window
 *     if n >= max:
 *         failure: SET authblock:<addr> 1 EX block, NX unless the block is "anon"
 *         keyless: SET authblock:<addr> anon PX (PTTL C) NX
 *     return {n, PTTL authblock:<addr>}
 *
 * The window is fixed (its TTL is set once); NX keeps an existing block's
 * end, except that a failed-authentication block replaces the (usually
 * shorter) keyless one. A check is one PTTL of authblock:<addr>: -2 is
 * clean; -1, a block an operator set by hand, is blocked.
 *
 * Cache: two tables (addresses; known "address key_id" pairs) of
 * FM_BF_CACHE_ENTRIES entries each, in hash chains (SipHash with a
 * per-process random key, so chosen addresses cannot pile into one chain)
 * and a doubly linked LRU list; when full, the least recently used entry is
 * reused. An address entry holds when Redis last said "clean" and until when
 * the address is known blocked, both on the caller's monotonic clock; a pair
 * entry, when this worker last wrote the pair and when it last found it known.
 */
#include "bruteforce.h"
#include "scripts.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NBUCKETS 1024 /* power of two */
#define NONE (-1)

/*
 * KEYS: counter, block. ARGV: max, window s, block s ("0": keyless, until the window ends).
 * allow-oom: a counter and a block are small and expire; a full Redis must
 * not let a guesser past the guard.
 */
fm_redis_script fm_bruteforce_fail_script = {
    .source = "#!lua flags=allow-oom\n"
              "local n = redis.call('INCR', KEYS[1])\n"
              "if redis.call('TTL', KEYS[1]) < 0 then\n"
              "  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
              "end\n"
              "if n >= tonumber(ARGV[1]) then\n"
              "  if ARGV[3] == '0' then\n"
              "    local left = math.max(redis.call('PTTL', KEYS[1]), 1)\n"
              "    redis.call('SET', KEYS[2], 'anon', 'PX', left, 'NX')\n"
              "  elseif redis.call('GET', KEYS[2]) == 'anon' then\n"
              "    redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])\n"
              "  else\n"
              "    redis.call('SET', KEYS[2], '1', 'EX', ARGV[3], 'NX')\n"
              "  end\n"
              "end\n"
              "return {n, redis.call('PTTL', KEYS[2])}\n",
};

/* An address, or "address key_id" for a known pair. */
#define ID_MAX (INET6_ADDRSTRLEN + 1 + FM_BF_KEY_ID_MAX + 1)

typedef struct entry {
    char id[ID_MAX];
    bool clean_known; /* address: Redis said "not blocked" at checked_ms; pair: known then */
    int64_t checked_ms;
    int64_t blocked_until_ms; /* 0: not known blocked */
    bool written;             /* pair: this worker wrote it to Redis, at written_ms */
    int64_t written_ms;
    int next;               /* hash chain */
    int prev_lru, next_lru; /* head = most recently used */
} entry;

typedef struct table {
    int buckets[NBUCKETS];
    entry e[FM_BF_CACHE_ENTRIES];
    int nused, head, tail;
} table;

static struct {
    bool ready; /* cleared in a forked child: it starts empty */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    table addrs, known;
} cache;

static void table_init(table *t)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        t->buckets[i] = NONE;
    t->head = t->tail = NONE;
}

/* Runs in the child of every fork(2) (pthread_atfork): no getpid(2) per request to notice one. */
static void cache_forget(void)
{
    cache.ready = false;
}

static void cache_init(void)
{
    static bool registered;

    if (cache.ready)
        return;
    if (!registered)
        registered = pthread_atfork(NULL, NULL, cache_forget) == 0;
    memset(&cache, 0, sizeof(cache));
    cache.ready = registered; /* without the hook, nothing is kept from one call to the next */
    crypto_shorthash_keygen(cache.hkey);
    table_init(&cache.addrs);
    table_init(&cache.known);
}

static size_t bucket_of(const char *id)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    (void)crypto_shorthash(h, (const unsigned char *)id, strlen(id), cache.hkey);
    memcpy(&v, h, sizeof(v));
    return (size_t)(v & (NBUCKETS - 1));
}

static void lru_unlink(table *t, int i)
{
    entry *x = &t->e[i];

    if (x->prev_lru != NONE)
        t->e[x->prev_lru].next_lru = x->next_lru;
    else
        t->head = x->next_lru;
    if (x->next_lru != NONE)
        t->e[x->next_lru].prev_lru = x->prev_lru;
    else
        t->tail = x->prev_lru;
}

static void lru_push(table *t, int i)
{
    entry *x = &t->e[i];

    x->prev_lru = NONE;
    x->next_lru = t->head;
    if (t->head != NONE)
        t->e[t->head].prev_lru = i;
    t->head = i;
    if (t->tail == NONE)
        t->tail = i;
}

static void chain_unlink(table *t, int i)
{
    int *link = &t->buckets[bucket_of(t->e[i].id)];

    while (*link != NONE && *link != i)
        link = &t->e[*link].next;
    if (*link == i)
        *link = t->e[i].next;
}

/* The entry for id in t, made most recently used; a new (empty) one when absent. */
static entry *cache_get(table *t, const char *id)
{
    size_t b = bucket_of(id);
    int i;

    for (i = t->buckets[b]; i != NONE; i = t->e[i].next)
        if (strcmp(t->e[i].id, id) == 0)
            break;
    if (i == NONE) {
        if (t->nused < FM_BF_CACHE_ENTRIES) {
            i = t->nused++;
        } else {
            i = t->tail;
            lru_unlink(t, i);
            chain_unlink(t, i);
        }
        memset(&t->e[i], 0, sizeof(t->e[i]));
        (void)snprintf(t->e[i].id, sizeof(t->e[i].id), "%s", id);
        t->e[i].next = t->buckets[b];
        t->buckets[b] = i;
    } else {
        lru_unlink(t, i);
    }
    lru_push(t, i);
    return &t->e[i];
}

/*
 * An IPv4 address is keyed as itself: text, which parsed as one, is already
 * what inet_ntop would make of it (fm_ipacl_parse_host takes no leading zeros),
 * so it is copied rather than formatted again. An IPv4-mapped IPv6 address
 * arrives as its IPv4 address, which is formatted. Other IPv6 addresses are
 * keyed by their /64: one end site usually holds a whole /64, so per-/128
 * counting would let a guesser rotate through addresses it owns anyway.
 */
void fm_bruteforce_addr(const char *text, const fm_cidr *host, fm_bf_addr *out)
{
    unsigned char a6[16];
    size_t n;

    out->key[0] = '\0';
    if (host == NULL)
        return;
    if (host->family == AF_INET) {
        n = strnlen(text, sizeof(out->key));
        if (strchr(text, ':') == NULL && n < sizeof(out->key))
            memcpy(out->key, text, n + 1);
        else if (inet_ntop(AF_INET, host->addr, out->key, sizeof(out->key)) == NULL)
            out->key[0] = '\0';
        return;
    }
    memcpy(a6, host->addr, 8);
    memset(a6 + 8, 0, 8);
    if (inet_ntop(AF_INET6, a6, out->key, sizeof(out->key) - 3) == NULL)
        out->key[0] = '\0';
    else
        (void)snprintf(out->key + strlen(out->key), sizeof(out->key) - strlen(out->key), "/64");
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
                           const fm_bf_addr *addr, int64_t now_ms, bool *blocked,
                           uint32_t *retry_after_s)
{
    char key[320];
    const char *argv[2] = {"PTTL", key};
    redisReply *reply;
    entry *x;
    fm_err rc = FM_EREDIS;

    *blocked = false;
    *retry_after_s = 0;
    if (addr->key[0] == '\0')
        return FM_OK;
    cache_init();
    x = cache_get(&cache.addrs, addr->key);
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
    if (block_key(key, sizeof(key), prefix, "authblock", addr->key) != 0)
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
                          const fm_bf_addr *addr, bool presented, int64_t now_ms, bool *blocked,
                          uint32_t *block_s)
{
    char count_key[320], blk_key[320], max[16], window[16], block[16];
    const char *argv[5] = {count_key, blk_key, max, window, block};
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    *blocked = false;
    *block_s = 0;
    if (addr->key[0] == '\0')
        return FM_OK;
    cache_init();
    if (block_key(count_key, sizeof(count_key), prefix, presented ? "authfail" : "anon",
                  addr->key) != 0 ||
        block_key(blk_key, sizeof(blk_key), prefix, "authblock", addr->key) != 0)
        return FM_EINVAL;
    (void)snprintf(max, sizeof(max), "%u", (unsigned)(presented ? policy->max : policy->anon_max));
    (void)snprintf(window, sizeof(window), "%u",
                   (unsigned)(presented ? policy->window_seconds : policy->anon_window_seconds));
    (void)snprintf(block, sizeof(block), "%u", presented ? (unsigned)policy->block_seconds : 0u);
    reply = fm_redis_eval(redis, &fm_bruteforce_fail_script, 2, 5, argv);
    if (reply == NULL)
        return FM_EREDIS;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        *blocked = record_block(cache_get(&cache.addrs, addr->key), policy,
                                reply->element[1]->integer, now_ms, block_s);
        rc = FM_OK;
    }
    freeReplyObject(reply);
    return rc;
}

/* key_id is what auth.h calls a key's fingerprint: lowercase hex, never the key or its hash. */
static bool key_id_ok(const char *key_id)
{
    size_t n = key_id != NULL ? strnlen(key_id, FM_BF_KEY_ID_MAX + 1) : 0;

    if (n == 0 || n > FM_BF_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((key_id[i] >= '0' && key_id[i] <= '9') || (key_id[i] >= 'a' && key_id[i] <= 'f')))
            return false;
    return true;
}

/*
 * The cache entry and Redis key of the pair (addr, key_id), or NULL: *rc is
 * FM_OK when there is no pair to speak of (known clients off, addr not an IP
 * literal), FM_EINVAL for a bad key_id or a key that would not fit.
 */
static entry *known_pair(const char *prefix, const fm_bf_policy *policy, const fm_bf_addr *addr,
                         const char *key_id, char key[320], fm_err *rc)
{
    char id[ID_MAX];

    *rc = FM_OK;
    if (policy->known_days == 0 || addr->key[0] == '\0')
        return NULL;
    *rc = FM_EINVAL;
    if (!key_id_ok(key_id) ||
        snprintf(key, 320, "%sauthknown:%s:%s", prefix, addr->key, key_id) >= 320)
        return NULL;
    *rc = FM_OK;
    cache_init();
    (void)snprintf(id, sizeof(id), "%s %s", addr->key, key_id);
    return cache_get(&cache.known, id);
}

fm_err fm_bruteforce_known(fm_redis *redis, const char *prefix, const fm_bf_policy *policy,
                           const fm_bf_addr *addr, const char *key_id, int64_t now_ms, bool *known)
{
    char key[320];
    const char *argv[2] = {"EXISTS", key};
    redisReply *reply;
    fm_err rc;
    entry *x = known_pair(prefix, policy, addr, key_id, key, &rc);

    *known = false;
    if (x == NULL)
        return rc;
    /* A yes is trusted as long as an address's state is: an operator's DEL shows within 1 s. */
    if (x->clean_known && now_ms - x->checked_ms < FM_BF_RECHECK_MS) {
        *known = true;
        return FM_OK;
    }
    /* Not known here: ask, and remember only a yes (a guess must not fill the cache). */
    reply = fm_redis_argv(redis, 2, argv, NULL);
    if (reply == NULL)
        return FM_EREDIS;
    rc = reply->type == REDIS_REPLY_INTEGER ? FM_OK : FM_EREDIS;
    if (rc == FM_OK && reply->integer == 1) {
        x->clean_known = true;
        x->checked_ms = now_ms;
        *known = true;
    }
    freeReplyObject(reply);
    return rc;
}

fm_err fm_bruteforce_remember(fm_redis *redis, const char *prefix, const fm_bf_policy *policy,
                              const fm_bf_addr *addr, const char *key_id, int64_t now_ms)
{
    char key[320], ttl[16];
    const char *argv[5] = {"SET", key, "1", "EX", ttl};
    redisReply *reply;
    fm_err rc;
    entry *x = known_pair(prefix, policy, addr, key_id, key, &rc);

    /* Learnt from Redis is not enough: the pair's time to live is renewed by a write. */
    if (x == NULL || (x->written && now_ms - x->written_ms < FM_BF_KNOWN_REFRESH_MS))
        return rc;
    (void)snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)policy->known_days * 86400ULL);
    reply = fm_redis_argv(redis, 5, argv, NULL);
    if (reply == NULL)
        return FM_EREDIS;
    rc = reply->type == REDIS_REPLY_STATUS ? FM_OK : FM_EREDIS;
    if (rc == FM_OK) {
        x->written = true;
        x->written_ms = now_ms;
        x->clean_known = true;
        x->checked_ms = now_ms;
    }
    freeReplyObject(reply);
    return rc;
}
