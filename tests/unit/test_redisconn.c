/*
 * test_redisconn.c - unit tests for lib/store/redisconn.c against a private
 * redis-server (see helpers.h): address parsing, AUTH (wrong password refused
 * without echoing it), SELECT, a fresh context after the server dies and
 * comes back, EVALSHA reload after SCRIPT FLUSH, and the command timeout
 * while the server is stopped.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "redisconn.h"

static th_redis srv;
static fm_redis *r;

static void setup(void)
{
    /* A write to a dead server's socket must be an error, not a signal (workers do the same). */
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    memset(&srv, 0, sizeof(srv));
    srv.databases = 4;
    th_redis_start(&srv);
    r = fm_redis_new(srv.addr, srv.password, 0, 300);
    ck_assert_ptr_nonnull(r);
}

static void teardown(void)
{
    fm_redis_free(r);
    r = NULL;
    th_redis_stop(&srv);
}

/* Runs a command of NUL-terminated words and returns the reply (never NULL). */
static redisReply *cmd(fm_redis *h, int argc, const char **argv)
{
    redisReply *reply = fm_redis_argv(h, argc, argv, NULL);

    ck_assert_msg(reply != NULL, "command failed: %s", fm_redis_errstr(h));
    return reply;
}

static void expect_status(fm_redis *h, int argc, const char **argv, const char *want)
{
    redisReply *reply = cmd(h, argc, argv);

    ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(reply->str, want);
    freeReplyObject(reply);
}

static void expect_string(fm_redis *h, const char *key, const char *want)
{
    const char *argv[] = {"GET", key};
    redisReply *reply = cmd(h, 2, argv);

    if (want == NULL) {
        ck_assert_int_eq(reply->type, REDIS_REPLY_NIL);
    } else {
        ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
        ck_assert_str_eq(reply->str, want);
    }
    freeReplyObject(reply);
}

static long long expect_integer(fm_redis *h, int argc, const char **argv)
{
    redisReply *reply = cmd(h, argc, argv);
    long long v;

    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    v = reply->integer;
    freeReplyObject(reply);
    return v;
}

/* A key that does not fit FM_REDIS_KEY_MAX is refused, never cut. */
START_TEST(key_bounds)
{
    char key[FM_REDIS_KEY_MAX], name[FM_REDIS_KEY_MAX + 1];

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_int_eq(fm_redis_key(key, "%stask:%s", "fetchml:", "id-1"), FM_OK);
    ck_assert_str_eq(key, "fetchml:task:id-1");
    /* The longest that fits: FM_REDIS_KEY_MAX - 1 bytes and the NUL. */
    ck_assert_int_eq(fm_redis_key(key, "p:%.*s", FM_REDIS_KEY_MAX - 3, name), FM_OK);
    ck_assert_uint_eq(strlen(key), FM_REDIS_KEY_MAX - 1);
    ck_assert_int_eq(fm_redis_key(key, "p:%.*s", FM_REDIS_KEY_MAX - 2, name), FM_EINVAL);
    ck_assert_str_eq(key, "");
    /* The config's bounds fit: a 64-byte prefix, a 63-byte user. */
    ck_assert_int_eq(fm_redis_key(key, "%.64suser:%.63s:tasks", name, name), FM_OK);
}
END_TEST

START_TEST(new_refuses_bad_arguments)
{
    static const char *const bad[] = {
        "unix:relative.sock", "unix:",           "localhost",
        "localhost:",         ":6379",           "localhost:0",
        "localhost:65536",    "localhost:63x79", "localhost:-1",
        "localhost:+6379x",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        ck_assert_msg(fm_redis_new(bad[i], NULL, 0, 100) == NULL, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(errno, EINVAL);
    }
    errno = 0;
    ck_assert_ptr_null(fm_redis_new(NULL, NULL, 0, 100));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(fm_redis_new("127.0.0.1:6379", NULL, 0, 0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(fm_redis_new("127.0.0.1:6379", NULL, -1, 100));
    ck_assert_int_eq(errno, EINVAL);

    /* Does not connect: a handle for an address nobody listens on is fine. */
    fm_redis *h = fm_redis_new("127.0.0.1:65535", "pw", 0, 100);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(fm_redis_errstr(h), "");
    fm_redis_free(h);
    h = fm_redis_new("localhost:6379", NULL, 15, 100);
    ck_assert_ptr_nonnull(h);
    fm_redis_free(h);
    fm_redis_free(NULL);
}
END_TEST

START_TEST(right_password_works)
{
    const char *set[] = {"SET", "k", "v1"};
    const char *bin[] = {"SET", "bin", "a\0b"};
    const size_t binlen[] = {3, 3, 3};
    const char *get[] = {"GET", "bin"};
    redisReply *reply;

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_str_eq(fm_redis_errstr(r), "");
    expect_status(r, 3, set, "OK");
    expect_string(r, "k", "v1");

    /* Binary safe: argvlen carries an embedded NUL. */
    reply = fm_redis_argv(r, 3, bin, binlen);
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
    reply = cmd(r, 2, get);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_uint_eq(reply->len, 3);
    ck_assert_int_eq(memcmp(reply->str, "a\0b", 3), 0);
    freeReplyObject(reply);
}
END_TEST

START_TEST(error_reply_is_returned)
{
    const char *bogus[] = {"NOSUCHCOMMAND", "x"};
    redisReply *reply = cmd(r, 2, bogus);

    ck_assert_int_eq(reply->type, REDIS_REPLY_ERROR);
    ck_assert_ptr_nonnull(strstr(reply->str, "unknown command"));
    freeReplyObject(reply);
    /* An error reply is an answer: the connection stays usable. */
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
}
END_TEST

START_TEST(wrong_password_refused)
{
    const char *wrong = "wrong-password-3f9a1c";
    fm_redis *h = fm_redis_new(srv.addr, wrong, 0, 300);
    const char *ping[] = {"PING"};
    const char *err;

    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_null(fm_redis_argv(h, 1, ping, NULL));
    err = fm_redis_errstr(h);
    ck_assert_msg(strncmp(err, "AUTH refused", 12) == 0, "errstr \"%s\"", err);
    ck_assert_ptr_null(strstr(err, wrong));
    ck_assert_ptr_null(strstr(err, srv.password));
    ck_assert_int_eq(fm_redis_ping(h), FM_EREDIS);
    ck_assert_ptr_null(strstr(fm_redis_errstr(h), wrong));
    fm_redis_free(h);
}
END_TEST

START_TEST(no_password_gets_noauth)
{
    fm_redis *h = fm_redis_new(srv.addr, NULL, 0, 300);
    const char *get[] = {"GET", "k"};
    redisReply *reply;

    ck_assert_ptr_nonnull(h);
    reply = cmd(h, 2, get);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strncmp(reply->str, "NOAUTH", 6) == 0, "reply \"%s\"", reply->str);
    freeReplyObject(reply);
    ck_assert_int_eq(fm_redis_ping(h), FM_EREDIS);
    fm_redis_free(h);
}
END_TEST

START_TEST(db_select)
{
    fm_redis *h3 = fm_redis_new(srv.addr, srv.password, 3, 300);
    const char *set[] = {"SET", "only-in-3", "three"};

    ck_assert_ptr_nonnull(h3);
    expect_status(h3, 3, set, "OK");
    expect_string(h3, "only-in-3", "three");
    expect_string(r, "only-in-3", NULL);
    fm_redis_free(h3);

    /* The server has 4 databases: SELECT 5 fails and the command is not run. */
    fm_redis *h5 = fm_redis_new(srv.addr, srv.password, 5, 300);
    const char *ping[] = {"PING"};
    ck_assert_ptr_nonnull(h5);
    ck_assert_ptr_null(fm_redis_argv(h5, 1, ping, NULL));
    ck_assert_msg(strncmp(fm_redis_errstr(h5), "SELECT refused", 14) == 0, "errstr \"%s\"",
                  fm_redis_errstr(h5));
    fm_redis_free(h5);
}
END_TEST

START_TEST(server_restart_fresh_context)
{
    const char *set[] = {"SET", "k", "before"};
    const char *ping[] = {"PING"};

    expect_status(r, 3, set, "OK");
    th_redis_kill(&srv);

    /* The old context is dead: the call fails and drops it. */
    ck_assert_ptr_null(fm_redis_argv(r, 1, ping, NULL));
    ck_assert_str_ne(fm_redis_errstr(r), "");
    ck_assert_ptr_null(strstr(fm_redis_errstr(r), srv.password));
    /* Still down: the reconnect fails too. */
    ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS);
    ck_assert_msg(strncmp(fm_redis_errstr(r), "connect", 7) == 0, "errstr \"%s\"",
                  fm_redis_errstr(r));

    th_redis_start(&srv);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_str_eq(fm_redis_errstr(r), "");
    /* No persistence: the restarted server is empty, and AUTH was redone. */
    expect_string(r, "k", NULL);
}
END_TEST

START_TEST(restart_without_failed_call_in_between)
{
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    th_redis_kill(&srv);
    th_redis_start(&srv);
    /* The first call may find the old socket dead (and drop it); the next one must work. */
    (void)fm_redis_ping(r);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_str_eq(fm_redis_errstr(r), "");
}
END_TEST

START_TEST(eval_loads_and_reloads)
{
    fm_redis_script script = {.source = "return ARGV[1] .. ':' .. KEYS[1]"};
    const char *argv[] = {"key1", "arg1"};
    const char *flush[] = {"SCRIPT", "FLUSH"};
    const char *exists[] = {"SCRIPT", "EXISTS", NULL};
    char sha[41];
    redisReply *reply;

    reply = fm_redis_eval(r, &script, 1, 2, argv);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(reply->str, "arg1:key1");
    freeReplyObject(reply);
    ck_assert(th_is_lower_hex(script.sha, 40));
    memcpy(sha, script.sha, sizeof(sha));

    /* After SCRIPT FLUSH the server answers NOSCRIPT; the script is loaded again. */
    expect_status(r, 2, flush, "OK");
    exists[2] = sha;
    reply = cmd(r, 3, exists);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(reply->element[0]->integer, 0);
    freeReplyObject(reply);

    reply = fm_redis_eval(r, &script, 1, 2, argv);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(reply->str, "arg1:key1");
    freeReplyObject(reply);
    ck_assert_str_eq(script.sha, sha);
    reply = cmd(r, 3, exists);
    ck_assert_int_eq(reply->element[0]->integer, 1);
    freeReplyObject(reply);
}
END_TEST

START_TEST(eval_stale_sha_reloads)
{
    /* A sha the server never saw (as after a Redis restart) takes the NOSCRIPT path. */
    fm_redis_script script = {.source = "return 42"};
    redisReply *reply;

    memset(script.sha, 'f', 40);
    script.sha[40] = '\0';
    reply = fm_redis_eval(r, &script, 0, 0, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(reply->integer, 42);
    freeReplyObject(reply);
    ck_assert_str_ne(script.sha, "ffffffffffffffffffffffffffffffffffffffff");
    ck_assert(th_is_lower_hex(script.sha, 40));
}
END_TEST

START_TEST(eval_errors)
{
    fm_redis_script bad = {.source = "this is not lua"};
    fm_redis_script fails = {.source = "return redis.error_reply('nope')"};
    const char *argv[] = {"a"};
    redisReply *reply;

    /* numkeys larger than argc never reaches the server. */
    ck_assert_ptr_null(fm_redis_eval(r, &fails, 2, 1, argv));
    ck_assert_str_eq(fm_redis_errstr(r), "eval: bad argument count");

    /* A script that does not compile cannot be loaded. */
    ck_assert_ptr_null(fm_redis_eval(r, &bad, 0, 0, NULL));
    ck_assert_str_ne(fm_redis_errstr(r), "");

    /* An error raised by the script is a reply, not a connection failure. */
    reply = fm_redis_eval(r, &fails, 0, 1, argv);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ERROR);
    ck_assert_ptr_nonnull(strstr(reply->str, "nope"));
    freeReplyObject(reply);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
}
END_TEST

START_TEST(timeout_while_stopped)
{
    const char *ping[] = {"PING"};
    double t0, elapsed;
    fm_redis *fresh;

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);

    t0 = th_now();
    ck_assert_ptr_null(fm_redis_argv(r, 1, ping, NULL));
    elapsed = th_now() - t0;
    ck_assert_msg(elapsed >= 0.25 && elapsed < 2.0, "command took %.3f s (timeout 0.3 s)", elapsed);
    ck_assert_str_ne(fm_redis_errstr(r), "");

    /* Connecting works (the kernel accepts), but AUTH times out the same way. */
    fresh = fm_redis_new(srv.addr, srv.password, 0, 300);
    ck_assert_ptr_nonnull(fresh);
    t0 = th_now();
    ck_assert_int_eq(fm_redis_ping(fresh), FM_EREDIS);
    elapsed = th_now() - t0;
    ck_assert_msg(elapsed < 2.0, "connect+AUTH took %.3f s (timeout 0.3 s)", elapsed);

    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_int_eq(fm_redis_ping(fresh), FM_OK);
    fm_redis_free(fresh);
}
END_TEST

START_TEST(unreachable_socket)
{
    char addr[TH_PATH_MAX + 32];
    fm_redis *h;

    ck_assert_int_lt(snprintf(addr, sizeof(addr), "unix:%s/nobody.sock", srv.dir),
                     (int)sizeof(addr));
    h = fm_redis_new(addr, "pw-not-shown", 0, 300);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(fm_redis_ping(h), FM_EREDIS);
    ck_assert_msg(strncmp(fm_redis_errstr(h), "connect", 7) == 0, "errstr \"%s\"",
                  fm_redis_errstr(h));
    ck_assert_ptr_null(strstr(fm_redis_errstr(h), "pw-not-shown"));
    fm_redis_free(h);
}
END_TEST

START_TEST(counter_across_calls)
{
    const char *incr[] = {"INCR", "n"};

    for (long long i = 1; i <= 5; i++)
        ck_assert_int_eq(expect_integer(r, 2, incr), i);
}
END_TEST

static Suite *redisconn_suite(void)
{
    Suite *s = suite_create("redisconn");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, key_bounds);
    tcase_add_test(tc, new_refuses_bad_arguments);
    tcase_add_test(tc, right_password_works);
    tcase_add_test(tc, error_reply_is_returned);
    tcase_add_test(tc, wrong_password_refused);
    tcase_add_test(tc, no_password_gets_noauth);
    tcase_add_test(tc, db_select);
    tcase_add_test(tc, server_restart_fresh_context);
    tcase_add_test(tc, restart_without_failed_call_in_between);
    tcase_add_test(tc, eval_loads_and_reloads);
    tcase_add_test(tc, eval_stale_sha_reloads);
    tcase_add_test(tc, eval_errors);
    tcase_add_test(tc, timeout_while_stopped);
    tcase_add_test(tc, unreachable_socket);
    tcase_add_test(tc, counter_across_calls);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(redisconn_suite)
