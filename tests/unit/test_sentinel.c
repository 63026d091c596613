/*
 * test_sentinel.c - unit tests for lib/store/sentinel.c and the Sentinel part
 * of lib/store/redisconn.c, against real redis-server and redis-sentinel
 * processes on loopback TCP (helpers.h: th_sentinel_setup): discovery through
 * a list whose first sentinel is dead, the sentinels' password and a wrong
 * one, an unknown master name, ROLE refusing a replica the sentinels name,
 * READONLY from a demoted master, AUTH with a username, a killed master
 * (calls fail fast, then the promoted replica serves) and a hung one (the
 * breaker opens, its probe asks a sentinel and sees the failover).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "metrics.h"
#include "redisconn.h"
#include "sentinel.h"

static th_sentinel_set set;

static void setup_one(void)
{
    fm_metrics_attach(fm_metrics_create(1));
    th_sentinel_setup(&set, 1);
}

static void setup_three(void)
{
    fm_metrics_attach(fm_metrics_create(1));
    th_sentinel_setup(&set, 3);
}

static void teardown(void)
{
    th_sentinel_teardown(&set);
}

/* A handle through the sentinels list (n of them), the set's passwords, timeout_ms. */
static fm_redis *through(const char *const *list, size_t n, const char *master, int timeout_ms)
{
    fm_redis_opts o = {.sentinels = list,
                       .nsentinels = n,
                       .master_name = master,
                       .password = set.password,
                       .sentinel_password = set.sentinel_password,
                       .timeout_ms = timeout_ms};
    fm_redis *h = fm_redis_open(&o);

    ck_assert_ptr_nonnull(h);
    return h;
}

static redisReply *run(fm_redis *h, int argc, const char **argv)
{
    return fm_redis_argv(h, argc, argv, NULL);
}

static bool set_ok(fm_redis *h, const char *key, const char *value)
{
    const char *argv[] = {"SET", key, value};
    redisReply *r = run(h, 3, argv);
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;

    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* The value of key read directly on port (the test's own connection), "" when none. */
static void get_direct(int port, const char *key, char *out, size_t outlen)
{
    const char *argv[] = {"GET", key};
    redisReply *r = th_tcp_cmd(port, set.password, 2, argv);

    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        (void)snprintf(out, outlen, "%s", r->str);
    if (r != NULL)
        freeReplyObject(r);
}

/* A handle from o whose PING fails with an errstr containing want (and no password). */
static void ping_fails(const fm_redis_opts *o, const char *want)
{
    fm_redis *h = fm_redis_open(o);

    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(fm_redis_ping(h), FM_EREDIS);
    ck_assert_msg(strstr(fm_redis_errstr(h), want) != NULL, "errstr \"%s\"", fm_redis_errstr(h));
    ck_assert_ptr_null(strstr(fm_redis_errstr(h), set.password));
    ck_assert_ptr_null(strstr(fm_redis_errstr(h), "not-the-"));
    fm_redis_free(h);
}

/* Runs argv on port as the test (the set's password); the reply must be a status. */
static void admin(int port, const char *password, int argc, const char **argv)
{
    redisReply *r = th_tcp_cmd(port, password, argc, argv);

    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "%s refused", argv[0]);
    freeReplyObject(r);
}

START_TEST(new_refuses_bad_arguments)
{
    const char *good[] = {"127.0.0.1:26379"};
    const char *bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":26379", "h:12a"};
    char name[80];
    fm_redis_opts o = {.sentinels = good, .nsentinels = 1, .master_name = "m", .timeout_ms = 100};
    fm_redis *h;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *one[] = {bad[i]};

        errno = 0;
        ck_assert_msg(fm_sentinel_new(one, 1, "m", NULL, NULL, 100) == NULL, "accepted %s", bad[i]);
        ck_assert_int_eq(errno, EINVAL);
    }
    ck_assert_ptr_null(fm_sentinel_new(good, 0, "m", NULL, NULL, 100));
    ck_assert_ptr_null(fm_sentinel_new(good, FM_SENTINEL_MAX + 1, "m", NULL, NULL, 100));
    ck_assert_ptr_null(fm_sentinel_new(good, 1, "", NULL, NULL, 100));
    memset(name, 'm', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_ptr_null(fm_sentinel_new(good, 1, name, NULL, NULL, 100));
    ck_assert_ptr_null(fm_sentinel_new(good, 1, "m", "user", NULL, 100));
    ck_assert_ptr_null(fm_sentinel_new(good, 1, "m", NULL, NULL, 0));
    fm_sentinel_free(fm_sentinel_new(good, 1, "m", "user", "pw", 100));

    h = fm_redis_open(&o);
    ck_assert_ptr_nonnull(h);
    fm_redis_free(h);
    o.master_name = NULL;
    ck_assert_ptr_null(fm_redis_open(&o));
    o.master_name = "m";
    o.username = "u"; /* a username needs a password */
    ck_assert_ptr_null(fm_redis_open(&o));
}
END_TEST

/* The first sentinel is dead: the second answers, and is asked first from then on. */
START_TEST(discovers_master_past_dead_sentinel)
{
    char dead[32], got[64];
    const char *list[] = {dead, set.sentinels[0]};
    char host[FM_SENTINEL_HOST_MAX], err[160];
    fm_sentinel *s;
    fm_redis *h;
    int port = 0;
    double t0;

    (void)snprintf(dead, sizeof(dead), "127.0.0.1:%d", th_free_port());
    s = fm_sentinel_new(list, 2, TH_MASTER_NAME, NULL, set.sentinel_password, 300);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fm_sentinel_master(s, host, &port, err, sizeof(err)), FM_OK);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, set.redis_port[0]);
    /* Remembered: the live one is asked first, so the answer comes without trying the dead one. */
    (void)snprintf(dead, sizeof(dead), "127.0.0.1:1");
    t0 = th_now();
    ck_assert_int_eq(fm_sentinel_master(s, host, &port, err, sizeof(err)), FM_OK);
    ck_assert(th_now() - t0 < 0.3);
    fm_sentinel_free(s);

    h = through(list, 2, TH_MASTER_NAME, 300);
    ck_assert_msg(set_ok(h, "k", "v1"), "SET failed: %s", fm_redis_errstr(h));
    get_direct(set.redis_port[0], "k", got, sizeof(got));
    ck_assert_str_eq(got, "v1");
    ck_assert_str_eq(fm_redis_errstr(h), "");
    fm_redis_free(h);
}
END_TEST

START_TEST(sentinel_password_and_name_checked)
{
    const char *list[] = {set.sentinels[0]};
    fm_redis_opts o = {.sentinels = list,
                       .nsentinels = 1,
                       .master_name = TH_MASTER_NAME,
                       .password = set.password,
                       .sentinel_password = "not-the-sentinels-password",
                       .timeout_ms = 300};

    ping_fails(&o, "refused the AUTH");
    o.sentinel_password = set.sentinel_password;
    o.master_name = "no-such-master";
    ping_fails(&o, "does not know master_name");
    o.master_name = TH_MASTER_NAME;
    o.password = "not-the-redis-password";
    ping_fails(&o, "AUTH refused");
}
END_TEST

/* A name the sentinels give the replica's address for: ROLE says slave, nothing is written. */
START_TEST(replica_refused_by_role)
{
    char port[16], got[64];
    const char *mon[] = {"SENTINEL", "MONITOR", "wrong", "127.0.0.1", port, "1"};
    const char *auth[] = {"SENTINEL", "SET", "wrong", "auth-pass", set.password};
    const char *list[] = {set.sentinels[0]};
    fm_redis *h;

    (void)snprintf(port, sizeof(port), "%d", set.redis_port[1]);
    admin(set.sentinel_port[0], set.sentinel_password, 6, mon);
    admin(set.sentinel_port[0], set.sentinel_password, 5, auth);

    h = through(list, 1, "wrong", 300);
    ck_assert(!set_ok(h, "k", "on-replica"));
    ck_assert_msg(strncmp(fm_redis_errstr(h), "not the master", 14) == 0, "errstr \"%s\"",
                  fm_redis_errstr(h));
    get_direct(set.redis_port[1], "k", got, sizeof(got));
    ck_assert_str_eq(got, "");
    fm_redis_free(h);
}
END_TEST

/*
 * The master is demoted behind the sentinels' back: the next write gets
 * READONLY, the handle asks the sentinels again (which still name it), and
 * ROLE refuses it. Once it is a master again, the next call works.
 */
START_TEST(readonly_rediscovers)
{
    char port[16];
    const char *demote[] = {"REPLICAOF", "127.0.0.1", port};
    const char *promote[] = {"REPLICAOF", "NO", "ONE"};
    const char *list[] = {set.sentinels[0]};
    fm_redis *h = through(list, 1, TH_MASTER_NAME, 300);

    ck_assert(set_ok(h, "k", "v1"));
    (void)snprintf(port, sizeof(port), "%d", set.redis_port[1]);
    admin(set.redis_port[0], set.password, 3, demote);
    ck_assert(!set_ok(h, "k", "v2"));
    ck_assert_msg(strncmp(fm_redis_errstr(h), "not the master", 14) == 0, "errstr \"%s\"",
                  fm_redis_errstr(h));
    admin(set.redis_port[0], set.password, 3, promote);
    ck_assert_msg(set_ok(h, "k", "v3"), "SET failed: %s", fm_redis_errstr(h));
    fm_redis_free(h);
}
END_TEST

/* AUTH <username> <password>, as with an ACL user (redis.username). */
START_TEST(username_auth)
{
    const char *acl[] = {"ACL", "SETUSER", "fetchml", "on", ">user-pw", "~*", "+@all"};
    const char *list[] = {set.sentinels[0]};
    fm_redis_opts o = {.sentinels = list,
                       .nsentinels = 1,
                       .master_name = TH_MASTER_NAME,
                       .username = "fetchml",
                       .password = "user-pw",
                       .sentinel_password = set.sentinel_password,
                       .timeout_ms = 300};
    fm_redis *h;

    admin(set.redis_port[0], set.password, 7, acl);
    h = fm_redis_open(&o);
    ck_assert_msg(set_ok(h, "k", "v"), "SET as fetchml failed: %s", fm_redis_errstr(h));
    fm_redis_free(h);
    o.username = "nobody";
    ping_fails(&o, "AUTH refused");
}
END_TEST

/*
 * The master is killed: every call fails fast (refused, never a wait) until
 * the sentinels promote the replica; then the handle writes there, and what
 * was written before the kill is there.
 */
START_TEST(failover_after_master_killed)
{
    fm_redis *h = through(set.sentinels, 3, TH_MASTER_NAME, 300);
    double t0, worst = 0;
    char got[64];
    int failed = 0;

    ck_assert(set_ok(h, "before", "kept"));
    th_sentinel_kill_redis(&set, 0);
    t0 = th_now();
    for (;;) {
        double c0 = th_now();
        bool ok = set_ok(h, "after", "v");

        if (th_now() - c0 > worst)
            worst = th_now() - c0;
        if (ok)
            break;
        failed++;
        ck_assert_msg(th_now() - t0 < 15, "no failover within 15 s: %s", fm_redis_errstr(h));
        th_sleep_ms(20);
    }
    ck_assert_int_gt(failed, 0);
    /* A refused connect and a sentinel question: far below one timeout each. */
    ck_assert_msg(worst < 0.3, "a call took %.3f s during the failover", worst);
    ck_assert_int_eq(th_sentinel_master_port(&set), set.redis_port[1]);
    get_direct(set.redis_port[1], "before", got, sizeof(got));
    ck_assert_str_eq(got, "kept");
    get_direct(set.redis_port[1], "after", got, sizeof(got));
    ck_assert_str_eq(got, "v");
    fm_redis_free(h);
}
END_TEST

/*
 * The master hangs (SIGSTOP): one call times out and opens the breaker; calls
 * then fail at once; the probe, taking turns between the master and a
 * sentinel, learns of the failover and the breaker closes onto the new master
 * while the old one is still stopped.
 */
START_TEST(hung_master_breaker_follows_failover)
{
    fm_redis *h = through(set.sentinels, 3, TH_MASTER_NAME, 300);
    double t0, c0;
    bool ok = false;

    ck_assert(set_ok(h, "before", "kept"));
    th_sentinel_stop_redis(&set, 0);
    c0 = th_now();
    ck_assert(!set_ok(h, "k", "v"));
    ck_assert(th_now() - c0 < 1.0);
    c0 = th_now();
    ck_assert(!set_ok(h, "k", "v"));
    ck_assert_msg(strncmp(fm_redis_errstr(h), "circuit open", 12) == 0, "errstr \"%s\"",
                  fm_redis_errstr(h));
    ck_assert(th_now() - c0 < 0.05);
    t0 = th_now();
    while (!ok) {
        ck_assert_msg(th_now() - t0 < 15, "breaker still open 15 s later: %s", fm_redis_errstr(h));
        c0 = th_now();
        ok = set_ok(h, "after", "v");
        /* At most one timeout per call (a probe's PING closing onto the hung master never waits).
         */
        ck_assert(th_now() - c0 < 1.0);
        th_sleep_ms(20);
    }
    ck_assert_int_eq(th_sentinel_master_port(&set), set.redis_port[1]);
    fm_redis_free(h);
}
END_TEST

/* The next reply on subscription h within seconds (NULL: none came; the connection holds). */
static redisReply *next_message(fm_redis *h, double seconds)
{
    double end = th_now() + seconds;
    redisReply *msg = NULL;

    while (msg == NULL && th_now() < end) {
        ck_assert_int_eq(fm_redis_message(h, &msg), FM_OK);
        if (msg == NULL)
            th_sleep_ms(10);
    }
    return msg;
}

/*
 * The event relay's subscription through the sentinels: a PING on it is
 * answered "pong"; once the master hangs it is not, the relay drops it, and
 * after the failover a fresh subscription (on the promoted replica) gets
 * what is published there.
 */
START_TEST(subscription_keepalive_follows_failover)
{
    fm_redis *sub = through(set.sentinels, 3, TH_MASTER_NAME, 300);
    const char *pub[] = {"PUBLISH", "t:events", "after"};
    redisReply *msg;
    double t0;

    ck_assert_int_eq(fm_redis_subscribe(sub, "t:events"), FM_OK);
    ck_assert_int_eq(fm_redis_sub_ping(sub), FM_OK);
    msg = next_message(sub, 2);
    ck_assert_ptr_nonnull(msg);
    ck_assert(msg->type == REDIS_REPLY_ARRAY && msg->elements == 2);
    ck_assert_str_eq(msg->element[0]->str, "pong");
    freeReplyObject(msg);

    th_sentinel_stop_redis(&set, 0);
    ck_assert_int_eq(fm_redis_sub_ping(sub), FM_OK);
    ck_assert_ptr_null(next_message(sub, 1));
    fm_redis_sub_drop(sub);
    ck_assert_int_eq(fm_redis_fd(sub), -1);
    t0 = th_now();
    while (fm_redis_subscribe(sub, "t:events") != FM_OK) {
        ck_assert_msg(th_now() - t0 < 15, "no subscription 15 s later: %s", fm_redis_errstr(sub));
        th_sleep_ms(100);
    }
    ck_assert_int_eq(th_sentinel_master_port(&set), set.redis_port[1]);
    msg = th_tcp_cmd(set.redis_port[1], set.password, 3, pub);
    ck_assert(msg != NULL && msg->type == REDIS_REPLY_INTEGER && msg->integer == 1);
    freeReplyObject(msg);
    msg = next_message(sub, 2);
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(msg->element[2]->str, "after");
    freeReplyObject(msg);
    fm_redis_free(sub);
}
END_TEST

static Suite *sentinel_suite(void)
{
    Suite *s = suite_create("sentinel");

    TH_TCASE(s, "one sentinel", setup_one, teardown, new_refuses_bad_arguments,
             discovers_master_past_dead_sentinel, sentinel_password_and_name_checked,
             replica_refused_by_role, readonly_rediscovers, username_auth);
    TH_TCASE(s, "three sentinels", setup_three, teardown, failover_after_master_killed,
             hung_master_breaker_follows_failover, subscription_keepalive_follows_failover);
    return s;
}

TH_MAIN(sentinel_suite)
