/*
 * test_ratelimit.c - unit tests for lib/ratelimit.c against a private
 * redis-server (see helpers.h): the exact burst, remaining and retry values,
 * refill, the bucket key and its expiry, independence of users and prefixes,
 * the header strings, and -1 when Redis cannot decide.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "ratelimit.h"
#include "redisconn.h"

#define PREFIX "rltest:"
#define HDR_MAX 128

static th_redis srv;
static fm_redis *r;

static void setup(void)
{
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    memset(&srv, 0, sizeof(srv));
    th_redis_start(&srv);
    r = fm_redis_new(srv.addr, srv.password, 0, 500);
    ck_assert_ptr_nonnull(r);
}

static void teardown(void)
{
    fm_redis_free(r);
    r = NULL;
    th_redis_stop(&srv);
}

static fm_rl_result take(const char *prefix, const char *user, uint32_t rpm, uint32_t burst)
{
    fm_rate rate = {.requests_per_minute = rpm, .burst = burst};
    fm_rl_result res;

    ck_assert_msg(fm_ratelimit_take(r, prefix, user, &rate, &res) == 0, "take failed: %s",
                  fm_redis_errstr(r));
    ck_assert_uint_eq(res.limit, rpm);
    ck_assert_uint_eq(res.burst, burst);
    return res;
}

static long long integer_command(int argc, const char **argv)
{
    redisReply *reply = fm_redis_argv(r, argc, argv, NULL);
    long long v;

    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    v = reply->integer;
    freeReplyObject(reply);
    return v;
}

START_TEST(burst_then_refused)
{
    fm_rl_result res;

    for (uint32_t i = 0; i < 5; i++) {
        res = take(PREFIX, "alice", 60, 5);
        ck_assert_msg(res.allowed, "request %u refused", i + 1);
        ck_assert_uint_eq(res.remaining, 4 - i);
        ck_assert_uint_eq(res.retry_after_s, 0);
        /* 5 - remaining tokens missing at one per second, rounded up. */
        ck_assert_uint_eq(res.reset_s, i + 1);
    }
    for (int i = 0; i < 3; i++) {
        res = take(PREFIX, "alice", 60, 5);
        ck_assert(!res.allowed);
        ck_assert_uint_eq(res.remaining, 0);
        /* 60/min is one token a second: the next one is at most 1 s away. */
        ck_assert_uint_eq(res.retry_after_s, 1);
        ck_assert_uint_eq(res.reset_s, 5);
    }
}
END_TEST

START_TEST(slow_rate_retry_after)
{
    fm_rl_result res = take(PREFIX, "slow", 6, 1);

    ck_assert(res.allowed);
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.reset_s, 10);
    res = take(PREFIX, "slow", 6, 1);
    ck_assert(!res.allowed);
    /* 6/min is one token every 10 s. */
    ck_assert_uint_eq(res.retry_after_s, 10);
}
END_TEST

START_TEST(refill)
{
    fm_rl_result res = take(PREFIX, "fast", 120, 1);

    ck_assert(res.allowed);
    ck_assert(!take(PREFIX, "fast", 120, 1).allowed);
    /* 120/min is a token every 500 ms. */
    th_sleep_ms(600);
    res = take(PREFIX, "fast", 120, 1);
    ck_assert(res.allowed);
    ck_assert_uint_eq(res.remaining, 0);
    /* Only one token came back (burst 1), whatever the time slept. */
    ck_assert(!take(PREFIX, "fast", 120, 1).allowed);
}
END_TEST

START_TEST(bucket_key_and_ttl)
{
    const char *pttl[] = {"PTTL", PREFIX "rl:alice"};
    const char *hlen[] = {"HLEN", PREFIX "rl:alice"};
    const char *dbsize[] = {"DBSIZE"};
    long long ttl;

    (void)take(PREFIX, "alice", 60, 5);
    ck_assert_int_eq(integer_command(1, dbsize), 1);
    ck_assert_int_eq(integer_command(2, hlen), 2);
    /* One token missing at 1/s refills in 1 s; the key lives 1 s past that. */
    ttl = integer_command(2, pttl);
    ck_assert_int_gt(ttl, 1000);
    ck_assert_int_le(ttl, 2000);

    for (int i = 0; i < 4; i++)
        (void)take(PREFIX, "alice", 60, 5);
    ttl = integer_command(2, pttl);
    ck_assert_int_gt(ttl, 5000);
    ck_assert_int_le(ttl, 6000);
}
END_TEST

START_TEST(users_independent)
{
    ck_assert(take(PREFIX, "alice", 60, 2).allowed);
    ck_assert(take(PREFIX, "alice", 60, 2).allowed);
    ck_assert(!take(PREFIX, "alice", 60, 2).allowed);

    fm_rl_result bob = take(PREFIX, "bob", 60, 2);
    ck_assert(bob.allowed);
    ck_assert_uint_eq(bob.remaining, 1);

    /* Same user under another prefix is another bucket. */
    fm_rl_result other = take("other:", "alice", 60, 2);
    ck_assert(other.allowed);
    ck_assert_uint_eq(other.remaining, 1);
    ck_assert(!take(PREFIX, "alice", 60, 2).allowed);
}
END_TEST

START_TEST(burst_change_applies)
{
    /* A smaller burst caps an existing fuller bucket at once. */
    ck_assert_uint_eq(take(PREFIX, "carol", 60, 10).remaining, 9);
    fm_rl_result res = take(PREFIX, "carol", 60, 2);
    ck_assert(res.allowed);
    ck_assert_uint_eq(res.remaining, 1);
}
END_TEST

START_TEST(headers_exact)
{
    fm_rl_result res = {.allowed = true, .limit = 30, .burst = 10, .remaining = 9, .reset_s = 20};
    char policy[HDR_MAX], state[HDR_MAX];

    fm_ratelimit_headers(&res, policy, state, sizeof(policy));
    ck_assert_str_eq(policy, "RateLimit-Policy: \"user\";q=30;w=60");
    ck_assert_str_eq(state, "RateLimit: \"user\";r=9;t=20");

    res = (fm_rl_result){.limit = 4294967295u, .remaining = 0, .reset_s = 4294967295u};
    fm_ratelimit_headers(&res, policy, state, sizeof(policy));
    ck_assert_str_eq(policy, "RateLimit-Policy: \"user\";q=4294967295;w=60");
    ck_assert_str_eq(state, "RateLimit: \"user\";r=0;t=4294967295");

    /* Bounded by cap and always terminated. */
    fm_ratelimit_headers(&res, policy, state, 10);
    ck_assert_str_eq(policy, "RateLimit");
    ck_assert_str_eq(state, "RateLimit");
}
END_TEST

START_TEST(headers_from_take)
{
    char policy[HDR_MAX], state[HDR_MAX];
    fm_rl_result res = take(PREFIX, "dave", 120, 20);

    fm_ratelimit_headers(&res, policy, state, sizeof(policy));
    ck_assert_str_eq(policy, "RateLimit-Policy: \"user\";q=120;w=60");
    /* One of 20 tokens used, back in 0.5 s: t rounds up to 1. */
    ck_assert_str_eq(state, "RateLimit: \"user\";r=19;t=1");
}
END_TEST

START_TEST(redis_down)
{
    char addr[TH_PATH_MAX + 32];
    fm_rate rate = {.requests_per_minute = 60, .burst = 5};
    fm_rl_result res;
    fm_redis *down;

    ck_assert_int_lt(snprintf(addr, sizeof(addr), "unix:%s/nobody.sock", srv.dir),
                     (int)sizeof(addr));
    down = fm_redis_new(addr, srv.password, 0, 200);
    ck_assert_ptr_nonnull(down);
    memset(&res, 0xA5, sizeof(res));
    ck_assert_int_eq(fm_ratelimit_take(down, PREFIX, "alice", &rate, &res), -1);
    ck_assert(!res.allowed);
    fm_redis_free(down);

    /* The server going away mid-life is the same. */
    ck_assert(take(PREFIX, "alice", 60, 5).allowed);
    th_redis_kill(&srv);
    memset(&res, 0xA5, sizeof(res));
    ck_assert_int_eq(fm_ratelimit_take(r, PREFIX, "alice", &rate, &res), -1);
    ck_assert(!res.allowed);
}
END_TEST

START_TEST(error_reply_is_failure)
{
    const char *set[] = {"SET", PREFIX "rl:erin", "not a hash"};
    fm_rate rate = {.requests_per_minute = 60, .burst = 5};
    fm_rl_result res;
    redisReply *reply = fm_redis_argv(r, 3, set, NULL);

    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
    /* WRONGTYPE inside the script: Redis could not decide. */
    ck_assert_int_eq(fm_ratelimit_take(r, PREFIX, "erin", &rate, &res), -1);
    ck_assert(!res.allowed);
    /* The connection is still good for the next user. */
    ck_assert(take(PREFIX, "frank", 60, 5).allowed);
}
END_TEST

START_TEST(survives_script_flush)
{
    const char *flush[] = {"SCRIPT", "FLUSH"};
    redisReply *reply;

    ck_assert_uint_eq(take(PREFIX, "gina", 60, 5).remaining, 4);
    reply = fm_redis_argv(r, 2, flush, NULL);
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
    ck_assert_uint_eq(take(PREFIX, "gina", 60, 5).remaining, 3);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, burst_then_refused);
    tcase_add_test(tc, slow_rate_retry_after);
    tcase_add_test(tc, refill);
    tcase_add_test(tc, bucket_key_and_ttl);
    tcase_add_test(tc, users_independent);
    tcase_add_test(tc, burst_change_applies);
    tcase_add_test(tc, headers_exact);
    tcase_add_test(tc, headers_from_take);
    tcase_add_test(tc, redis_down);
    tcase_add_test(tc, error_reply_is_failure);
    tcase_add_test(tc, survives_script_flush);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (th_run_begin("test_ratelimit") != 0)
        return EXIT_FAILURE;
    sr = srunner_create(ratelimit_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    th_run_end();
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
