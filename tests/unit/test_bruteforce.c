/*
 * test_bruteforce.c - unit tests for lib/store/bruteforce.c against a private
 * redis-server (see helpers.h): counting in a window, the block and its
 * length, expiry of both, the per-worker cache (no Redis call while an answer
 * is fresh; a block set elsewhere seen within FM_BF_RECHECK_MS; LRU bound),
 * address normalisation, NOSCRIPT recovery, requests without a key counted
 * apart, known clients (written once per refresh, asked only when told to)
 * and FM_EREDIS when Redis cannot answer (every answer's fm_err, blocked and seconds checked
 * together). Time is passed in, so the cache's clock is the test's.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bruteforce.h"
#include "config.h"
#include "helpers.h"
#include "redisconn.h"

static fm_config cfg;
static char prefix[] = "bf:";

/* What the guard answered, from (fm_err, blocked). */
#define CLEAN 0
#define BLOCKED 1
#define DOWN (-1)

static void setup(void)
{
    th_redis_setup();
    /* The module reads only these. */
    memset(&cfg, 0, sizeof(cfg));
    cfg.redis.key_prefix = prefix;
    cfg.rate_limit.auth_failures.max = 3;
    cfg.rate_limit.auth_failures.window_seconds = 60;
    cfg.rate_limit.auth_failures.block_seconds = 5;
    cfg.rate_limit.auth_failures.known_days = 2;
    cfg.rate_limit.auth_failures.anon_max = 4;
    cfg.rate_limit.auth_failures.anon_window_seconds = 30;
}

/* Checks the contract of one answer: FM_OK or FM_EREDIS; seconds only with a block. */
static int answer(fm_err rc, bool blocked, uint32_t secs)
{
    ck_assert_msg(rc == FM_OK || rc == FM_EREDIS, "unexpected %s", fm_err_name(rc));
    if (rc != FM_OK) {
        ck_assert(!blocked);
        ck_assert_uint_eq(secs, 0);
        return DOWN;
    }
    if (!blocked)
        ck_assert_uint_eq(secs, 0);
    else
        ck_assert_uint_ge(secs, 1);
    return blocked ? BLOCKED : CLEAN;
}

/* The textual address as the pipeline hands it to the guard (parsed once, keyed). */
static const fm_bf_addr *guard_addr(const char *text)
{
    static fm_bf_addr a;
    fm_cidr host;

    fm_bruteforce_addr(text, fm_ipacl_parse_host(text, &host) == FM_OK ? &host : NULL, &a);
    return &a;
}

static int bf_check(const char *addr, int64_t t, uint32_t *secs)
{
    bool blocked = true;
    fm_err rc = fm_bruteforce_check(th_r, cfg.redis.key_prefix, &cfg.rate_limit.auth_failures,
                                    guard_addr(addr), t, &blocked, secs);

    return answer(rc, blocked, *secs);
}

/* Counts a failed authentication (presented) or a request without a key (!presented). */
static int bf_count(const char *addr, bool presented, int64_t t, uint32_t *secs)
{
    bool blocked = true;
    fm_err rc = fm_bruteforce_fail(th_r, cfg.redis.key_prefix, &cfg.rate_limit.auth_failures,
                                   guard_addr(addr), presented, t, &blocked, secs);

    return answer(rc, blocked, *secs);
}

static int bf_fail(const char *addr, int64_t t, uint32_t *secs)
{
    return bf_count(addr, true, t, secs);
}

/* Is key_id a known client of addr? CLEAN: no, BLOCKED: yes (known), DOWN: Redis failed. */
static int bf_known(const char *addr, const char *key_id, int64_t t)
{
    bool known = true;
    fm_err rc = fm_bruteforce_known(th_r, cfg.redis.key_prefix, &cfg.rate_limit.auth_failures,
                                    guard_addr(addr), key_id, t, &known);

    ck_assert_msg(rc == FM_OK || rc == FM_EREDIS, "unexpected %s", fm_err_name(rc));
    if (rc != FM_OK) {
        ck_assert(!known);
        return DOWN;
    }
    return known ? BLOCKED : CLEAN;
}

static fm_err bf_remember(const char *addr, const char *key_id, int64_t t)
{
    return fm_bruteforce_remember(th_r, cfg.redis.key_prefix, &cfg.rate_limit.auth_failures,
                                  guard_addr(addr), key_id, t);
}

static long long ttl_of(const char *key)
{
    const char *argv[] = {"PTTL", key};
    return th_redis_int(th_r, 2, argv);
}

static long long count_of(const char *key)
{
    const char *argv[] = {"GET", key};
    redisReply *reply = th_redis_cmd(th_r, 2, argv);
    long long n = reply->type == REDIS_REPLY_NIL ? 0 : strtoll(reply->str, NULL, 10);

    freeReplyObject(reply);
    return n;
}

START_TEST(counts_then_blocks)
{
    uint32_t secs = 99;
    long long t;

    ck_assert_int_eq(bf_check("192.0.2.1", 0, &secs), CLEAN);
    ck_assert_uint_eq(secs, 0);
    ck_assert_int_eq(bf_fail("192.0.2.1", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_fail("192.0.2.1", 0, &secs), CLEAN);
    ck_assert_uint_eq(secs, 0);
    ck_assert_int_eq(count_of("bf:authfail:192.0.2.1"), 2);
    /* A fixed window from the first failure. */
    t = ttl_of("bf:authfail:192.0.2.1");
    ck_assert_int_gt(t, 59000);
    ck_assert_int_le(t, 60000);
    ck_assert_int_eq(ttl_of("bf:authblock:192.0.2.1"), -2);

    /* The third reaches max: blocked for block_seconds. */
    ck_assert_int_eq(bf_fail("192.0.2.1", 0, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 5);
    t = ttl_of("bf:authblock:192.0.2.1");
    ck_assert_int_gt(t, 4000);
    ck_assert_int_le(t, 5000);

    /* Known blocked in this worker: for FM_BF_RECHECK_MS no Redis call. */
    long long pttl = th_redis_calls(th_r, "pttl");
    ck_assert_int_eq(bf_check("192.0.2.1", 10, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 5);
    ck_assert_int_eq(bf_check("192.0.2.1", 999, &secs), BLOCKED);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl);
    /* After that Redis is asked again, so an operator's unblock shows within a second. */
    ck_assert_int_eq(bf_check("192.0.2.1", 1000, &secs), BLOCKED);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl + 1);
    const char *unblock[] = {"DEL", "bf:authblock:192.0.2.1"};
    ck_assert_int_eq(th_redis_int(th_r, 2, unblock), 1);
    ck_assert_int_eq(bf_check("192.0.2.1", 1500, &secs), BLOCKED); /* still cached */
    ck_assert_int_eq(bf_check("192.0.2.1", 2000, &secs), CLEAN);
    ck_assert_uint_eq(secs, 0);

    /* Other addresses are not affected. */
    ck_assert_int_eq(bf_check("192.0.2.2", 10, &secs), CLEAN);
}
END_TEST

/* A full Redis (maxmemory, noeviction) does not let a guesser past the guard: failures still count.
 */
START_TEST(counts_when_redis_full)
{
    const char *full[] = {"CONFIG", "SET", "maxmemory", "1"};
    const char *room[] = {"CONFIG", "SET", "maxmemory", "0"};
    uint32_t secs = 0;

    freeReplyObject(th_redis_cmd(th_r, 4, full));
    ck_assert_int_eq(bf_fail("192.0.2.9", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_fail("192.0.2.9", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_fail("192.0.2.9", 0, &secs), BLOCKED);
    freeReplyObject(th_redis_cmd(th_r, 4, room));
    ck_assert_int_eq(count_of("bf:authfail:192.0.2.9"), 3);
}
END_TEST

START_TEST(block_ends)
{
    const char *shorten[] = {"PEXPIRE", "bf:authblock:192.0.2.3", "20"};
    uint32_t secs;

    for (int i = 0; i < 3; i++)
        (void)bf_fail("192.0.2.3", 0, &secs);
    ck_assert_int_eq(bf_check("192.0.2.3", 999, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 5);
    /* The block ends in Redis: the next time this worker asks, Redis says clean. */
    ck_assert_int_eq(th_redis_int(th_r, 3, shorten), 1);
    th_sleep_ms(40);
    ck_assert_int_eq(bf_check("192.0.2.3", 1000, &secs), CLEAN);
    ck_assert_uint_eq(secs, 0);

    /* While the count's window lasts, one more failure blocks again at once. */
    ck_assert_int_eq(bf_fail("192.0.2.3", 5000, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 5);
    ck_assert_int_eq(count_of("bf:authfail:192.0.2.3"), 4);
}
END_TEST

START_TEST(window_ends)
{
    const char *shorten[] = {"PEXPIRE", "bf:authfail:192.0.2.4", "20"};
    uint32_t secs;

    ck_assert_int_eq(bf_fail("192.0.2.4", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_fail("192.0.2.4", 0, &secs), CLEAN);
    ck_assert_int_eq(th_redis_int(th_r, 3, shorten), 1);
    th_sleep_ms(40);
    /* A new window: counting starts again at 1, with a fresh TTL. */
    ck_assert_int_eq(bf_fail("192.0.2.4", 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:authfail:192.0.2.4"), 1);
    ck_assert_int_gt(ttl_of("bf:authfail:192.0.2.4"), 59000);
    ck_assert_int_eq(bf_fail("192.0.2.4", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_fail("192.0.2.4", 0, &secs), BLOCKED);
}
END_TEST

START_TEST(existing_block_keeps_its_end)
{
    const char *block[] = {"SET", "bf:authblock:192.0.2.5", "1", "PX", "2500"};
    uint32_t secs;

    freeReplyObject(th_redis_cmd(th_r, 5, block));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(bf_fail("192.0.2.5", 0, &secs), BLOCKED);
    /* Failures in the lag window do not extend a block already set. */
    ck_assert_uint_eq(secs, 3);
    ck_assert_int_le(ttl_of("bf:authblock:192.0.2.5"), 2500);
}
END_TEST

START_TEST(block_set_elsewhere_seen_within_a_second)
{
    const char *block[] = {"SET", "bf:authblock:192.0.2.6", "1", "EX", "60"};
    long long pttl;
    uint32_t secs;

    ck_assert_int_eq(bf_check("192.0.2.6", 1000, &secs), CLEAN);
    /* Another worker blocks the address. */
    freeReplyObject(th_redis_cmd(th_r, 5, block));
    pttl = th_redis_calls(th_r, "pttl");
    ck_assert_int_eq(bf_check("192.0.2.6", 1500, &secs), CLEAN); /* the documented lag */
    ck_assert_int_eq(bf_check("192.0.2.6", 1999, &secs), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl);
    ck_assert_int_eq(bf_check("192.0.2.6", 2000, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 60);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl + 1);
}
END_TEST

START_TEST(block_without_expiry)
{
    const char *block[] = {"SET", "bf:authblock:192.0.2.7", "1"};
    uint32_t secs;

    /* An operator's hand-made block: refused, with block_seconds as the hint. */
    freeReplyObject(th_redis_cmd(th_r, 3, block));
    ck_assert_int_eq(bf_check("192.0.2.7", 0, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 5);
}
END_TEST

START_TEST(addresses_normalised)
{
    const char *dbsize[] = {"DBSIZE"};
    uint32_t secs;

    /* IPv4-mapped IPv6 is the IPv4 address. */
    ck_assert_int_eq(bf_fail("::ffff:198.51.100.7", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_fail("198.51.100.7", 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:authfail:198.51.100.7"), 2);
    ck_assert_int_eq(bf_fail("::FFFF:198.51.100.7", 0, &secs), BLOCKED);
    ck_assert_int_eq(bf_check("::ffff:198.51.100.7", 0, &secs), BLOCKED);

    /* IPv6 by its /64: rotating addresses inside one's own /64 does not help. */
    ck_assert_int_eq(bf_fail("2001:db8::1", 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:authfail:2001:db8::/64"), 1);
    ck_assert_int_eq(bf_fail("2001:db8::ffff:1234", 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:authfail:2001:db8::/64"), 2);

    /* Not an address: never counted, never blocked. */
    ck_assert_int_eq(th_redis_int(th_r, 1, dbsize), 3);
    ck_assert_int_eq(bf_fail("2001:db8:0:1::1", 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:authfail:2001:db8:0:1::/64"), 1);
    ck_assert_int_eq(th_redis_int(th_r, 1, dbsize), 4);
    const char *odd[] = {"",      "localhost",    "198.51.100.7 ",   "1.2.3", "2001:db8::1%eth0",
                         "unix:", "2001:db8::zz", "::ffff:1.2.3.4.5"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        ck_assert_int_eq(bf_fail(odd[i], 0, &secs), CLEAN);
        ck_assert_int_eq(bf_check(odd[i], 0, &secs), CLEAN);
    }
    ck_assert_int_eq(bf_check(NULL, 0, &secs), CLEAN);
    ck_assert_int_eq(th_redis_int(th_r, 1, dbsize), 4);
}
END_TEST

START_TEST(clean_cached_for_a_second)
{
    long long pttl = th_redis_calls(th_r, "pttl");
    uint32_t secs;

    ck_assert_int_eq(bf_check("192.0.2.8", 0, &secs), CLEAN);
    ck_assert_int_eq(bf_check("192.0.2.8", 999, &secs), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl + 1);
    ck_assert_int_eq(bf_check("192.0.2.8", FM_BF_RECHECK_MS, &secs), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl + 2);
}
END_TEST

START_TEST(cache_is_bounded_lru)
{
    char addr[32];
    long long pttl;
    uint32_t secs;

    for (int i = 0; i < FM_BF_CACHE_ENTRIES; i++) {
        (void)snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
        ck_assert_int_eq(bf_check(addr, 0, &secs), CLEAN);
    }
    pttl = th_redis_calls(th_r, "pttl");
    /* All remembered; 10.0.0.0 becomes the most recent. */
    ck_assert_int_eq(bf_check("10.0.0.0", 1, &secs), CLEAN);
    ck_assert_int_eq(bf_check("10.0.3.255", 1, &secs), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl);
    /* One more pushes out the least recently used, 10.0.0.1. */
    ck_assert_int_eq(bf_check("10.1.0.0", 1, &secs), CLEAN);
    ck_assert_int_eq(bf_check("10.0.0.0", 2, &secs), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl + 1);
    ck_assert_int_eq(bf_check("10.0.0.1", 2, &secs), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "pttl"), pttl + 2);
}
END_TEST

START_TEST(survives_script_flush)
{
    const char *flush[] = {"SCRIPT", "FLUSH"};
    uint32_t secs;

    ck_assert_int_eq(bf_fail("192.0.2.9", 0, &secs), CLEAN);
    freeReplyObject(th_redis_cmd(th_r, 2, flush));
    ck_assert_int_eq(bf_fail("192.0.2.9", 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:authfail:192.0.2.9"), 2);
}
END_TEST

START_TEST(redis_down)
{
    uint32_t secs = 7;

    /* A block this worker knows of outlives Redis; nothing else is blocked. */
    for (int i = 0; i < 3; i++)
        (void)bf_fail("192.0.2.11", 0, &secs);
    th_redis_kill(&th_srv);
    ck_assert_int_eq(bf_check("192.0.2.11", 2000, &secs), BLOCKED);
    ck_assert_uint_ge(secs, 2);
    ck_assert_int_eq(bf_check("192.0.2.11", 6000, &secs), DOWN);
    ck_assert_int_eq(bf_check("192.0.2.10", 0, &secs), DOWN);
    ck_assert_uint_eq(secs, 0);
    ck_assert_int_eq(bf_fail("192.0.2.10", 0, &secs), DOWN);
    ck_assert_uint_eq(secs, 0);
}
END_TEST

START_TEST(fork_starts_empty)
{
    uint32_t secs;
    pid_t pid;
    int status;

    for (int i = 0; i < 3; i++)
        (void)bf_fail("192.0.2.11", 0, &secs);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child asks Redis (a fresh connection) rather than trust its parent's cache. */
        fm_redis *c = th_redis_connect();
        const char *del[] = {"DEL", "bf:authblock:192.0.2.11"};
        redisReply *reply = c != NULL ? fm_redis_argv(c, 2, del, NULL) : NULL;
        bool blocked = true;
        int ok = reply != NULL &&
                 fm_bruteforce_check(c, cfg.redis.key_prefix, &cfg.rate_limit.auth_failures,
                                     guard_addr("192.0.2.11"), 0, &blocked, &secs) == FM_OK &&
                 !blocked;

        if (reply != NULL)
            freeReplyObject(reply);
        _exit(ok ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(keyless_counted_apart)
{
    const char *get[] = {"GET", "bf:authblock:192.0.2.20"};
    redisReply *reply;
    uint32_t secs;
    long long t;

    /* Requests without a key count in their own window, not as failed authentications. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(bf_count("192.0.2.20", false, 0, &secs), CLEAN);
    ck_assert_int_eq(count_of("bf:anon:192.0.2.20"), 3);
    ck_assert_int_eq(count_of("bf:authfail:192.0.2.20"), 0);
    t = ttl_of("bf:anon:192.0.2.20");
    ck_assert_int_gt(t, 29000);
    ck_assert_int_le(t, 30000);

    /* The anon_max-th blocks the address until that window ends, not for block_seconds. */
    ck_assert_int_eq(bf_count("192.0.2.20", false, 0, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 30);
    ck_assert_int_le(ttl_of("bf:authblock:192.0.2.20"), t);
    ck_assert_int_eq(bf_check("192.0.2.20", 10, &secs), BLOCKED);
    reply = th_redis_cmd(th_r, 2, get);
    ck_assert_str_eq(reply->str, "anon");
    freeReplyObject(reply);

    /* A failed-authentication block replaces it whole. */
    cfg.rate_limit.auth_failures.block_seconds = 600;
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(bf_fail("192.0.2.20", 20, &secs), BLOCKED);
    ck_assert_uint_le(secs, 30);
    ck_assert_int_eq(bf_fail("192.0.2.20", 20, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 600);
    ck_assert_int_gt(ttl_of("bf:authblock:192.0.2.20"), 599000);

    /* ... and a keyless one never shortens a failed-authentication block. */
    ck_assert_int_eq(bf_count("192.0.2.20", false, 30, &secs), BLOCKED);
    ck_assert_uint_eq(secs, 600);

    /* IPv6 by its /64 here too. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(bf_count(i % 2 ? "2001:db8:5::1" : "2001:db8:5::ab:1", false, 0, &secs),
                         CLEAN);
    ck_assert_int_eq(count_of("bf:anon:2001:db8:5::/64"), 3);
    ck_assert_int_eq(bf_count("2001:db8:5::9", false, 0, &secs), BLOCKED);
}
END_TEST

START_TEST(known_clients)
{
    long long set0 = th_redis_calls(th_r, "set"), exists0 = th_redis_calls(th_r, "exists");

    /* Nothing is known before a success. */
    ck_assert_int_eq(bf_known("192.0.2.30", "0123456789ab", 0), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "exists"), exists0 + 1);
    /* A no is not cached: a stream of guesses cannot fill the cache. */
    ck_assert_int_eq(bf_known("192.0.2.30", "0123456789ab", 1), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "exists"), exists0 + 2);

    /* A success is written once, with known_days to live ... */
    ck_assert_int_eq(bf_remember("192.0.2.30", "0123456789ab", 100), FM_OK);
    ck_assert_int_eq(th_redis_calls(th_r, "set"), set0 + 1);
    ck_assert_int_gt(ttl_of("bf:authknown:192.0.2.30:0123456789ab"), 2LL * 86400 * 1000 - 5000);
    /* ... and again only after FM_BF_KNOWN_REFRESH_MS: later successes cost no Redis call. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(bf_remember("192.0.2.30", "0123456789ab", 100 + i * 1000), FM_OK);
    ck_assert_int_eq(th_redis_calls(th_r, "set"), set0 + 1);
    ck_assert_int_eq(bf_known("192.0.2.30", "0123456789ab", 200), BLOCKED);
    ck_assert_int_eq(th_redis_calls(th_r, "exists"), exists0 + 2);
    ck_assert_int_eq(bf_remember("192.0.2.30", "0123456789ab", 100 + FM_BF_KNOWN_REFRESH_MS),
                     FM_OK);
    ck_assert_int_eq(th_redis_calls(th_r, "set"), set0 + 2);

    /* Per (address, key): another key, or another address, is not known. */
    ck_assert_int_eq(bf_known("192.0.2.30", "0123456789ac", 200), CLEAN);
    ck_assert_int_eq(bf_known("192.0.2.31", "0123456789ab", 200), CLEAN);

    /* Another worker's success is found in Redis (one EXISTS), then cached. */
    const char *other[] = {"SET", "bf:authknown:192.0.2.31:00000000000f", "1", "EX", "60"};
    freeReplyObject(th_redis_cmd(th_r, 5, other));
    exists0 = th_redis_calls(th_r, "exists");
    ck_assert_int_eq(bf_known("192.0.2.31", "00000000000f", 300), BLOCKED);
    ck_assert_int_eq(bf_known("192.0.2.31", "00000000000f", 400), BLOCKED);
    ck_assert_int_eq(th_redis_calls(th_r, "exists"), exists0 + 1);
    /* ... for FM_BF_RECHECK_MS only: an operator's DEL shows within a second. */
    const char *forget[] = {"DEL", "bf:authknown:192.0.2.31:00000000000f"};
    ck_assert_int_eq(th_redis_int(th_r, 2, forget), 1);
    ck_assert_int_eq(bf_known("192.0.2.31", "00000000000f", 300 + FM_BF_RECHECK_MS), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "exists"), exists0 + 2);
    /* Learnt from Redis, not written here: a success here writes it (renewing its life). */
    freeReplyObject(th_redis_cmd(th_r, 5, other));
    ck_assert_int_eq(bf_known("192.0.2.31", "00000000000f", 2000), BLOCKED);
    set0 = th_redis_calls(th_r, "set");
    ck_assert_int_eq(bf_remember("192.0.2.31", "00000000000f", 2000), FM_OK);
    ck_assert_int_eq(th_redis_calls(th_r, "set"), set0 + 1);
    ck_assert_int_gt(ttl_of("bf:authknown:192.0.2.31:00000000000f"), 60000);

    /* IPv6 by its /64; IPv4-mapped as IPv4. */
    ck_assert_int_eq(bf_remember("2001:db8:7::1", "aaaaaaaaaaaa", 0), FM_OK);
    ck_assert_int_eq(ttl_of("bf:authknown:2001:db8:7::/64:aaaaaaaaaaaa") > 0, 1);
    ck_assert_int_eq(bf_known("2001:db8:7::ffff:2", "aaaaaaaaaaaa", 0), BLOCKED);
    ck_assert_int_eq(bf_known("::ffff:192.0.2.30", "0123456789ab", 0), BLOCKED);

    /* Not a fingerprint: refused, nothing asked or written. */
    set0 = th_redis_calls(th_r, "set");
    exists0 = th_redis_calls(th_r, "exists");
    const char *bad[] = {"", "0123456789AB", "01234567 9ab", "0123456789abcdef0", "x:y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool known = true;
        ck_assert_int_eq(fm_bruteforce_known(th_r, prefix, &cfg.rate_limit.auth_failures,
                                             guard_addr("192.0.2.30"), bad[i], 0, &known),
                         FM_EINVAL);
        ck_assert(!known);
        ck_assert_int_eq(bf_remember("192.0.2.30", bad[i], 0), FM_EINVAL);
    }
    ck_assert_int_eq(bf_remember("not-an-ip", "0123456789ab", 0), FM_OK);
    ck_assert_int_eq(bf_known("not-an-ip", "0123456789ab", 0), CLEAN);

    /* known_days 0: no known clients, no Redis call. */
    cfg.rate_limit.auth_failures.known_days = 0;
    ck_assert_int_eq(bf_remember("192.0.2.32", "0123456789ab", 0), FM_OK);
    ck_assert_int_eq(bf_known("192.0.2.30", "0123456789ab", 0), CLEAN);
    ck_assert_int_eq(th_redis_calls(th_r, "set"), set0);
    ck_assert_int_eq(th_redis_calls(th_r, "exists"), exists0);

    /* Redis down: not known (the block stays), and the error says so. */
    cfg.rate_limit.auth_failures.known_days = 2;
    th_redis_kill(&th_srv);
    ck_assert_int_eq(bf_known("192.0.2.33", "0123456789ab", 0), DOWN);
    ck_assert_int_eq(bf_remember("192.0.2.33", "0123456789ab", 0), FM_EREDIS);
}
END_TEST

static Suite *bruteforce_suite(void)
{
    Suite *s = suite_create("bruteforce");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, th_redis_teardown);
    tcase_add_test(tc, counts_then_blocks);
    tcase_add_test(tc, counts_when_redis_full);
    tcase_add_test(tc, block_ends);
    tcase_add_test(tc, window_ends);
    tcase_add_test(tc, existing_block_keeps_its_end);
    tcase_add_test(tc, block_set_elsewhere_seen_within_a_second);
    tcase_add_test(tc, block_without_expiry);
    tcase_add_test(tc, addresses_normalised);
    tcase_add_test(tc, clean_cached_for_a_second);
    tcase_add_test(tc, cache_is_bounded_lru);
    tcase_add_test(tc, survives_script_flush);
    tcase_add_test(tc, redis_down);
    tcase_add_test(tc, fork_starts_empty);
    tcase_add_test(tc, keyless_counted_apart);
    tcase_add_test(tc, known_clients);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(bruteforce_suite)
