/*
 * test_redisconn.c - unit tests for lib/store/redisconn.c against a private
 * redis-server (see helpers.h): address parsing, AUTH (wrong password refused
 * without echoing it), SELECT, a fresh context after the server dies and
 * comes back (the first call after a restart succeeds), EVALSHA reload after
 * SCRIPT FLUSH, the command timeout while the server is stopped and the
 * circuit breaker it opens. The retry rules (what is sent twice and what
 * never is) are checked against a scripted stand-in server that drops
 * connections at chosen moments.
 */
#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "metrics.h"
#include "redisconn.h"

static th_redis srv;
static fm_redis *r;

static void setup(void)
{
    /* A write to a dead server's socket must be an error, not a signal (workers do the same). */
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    memset(&srv, 0, sizeof(srv));
    srv.databases = 4;
    fm_metrics_attach(fm_metrics_create(1)); /* Redis errors and latency are counted there */
    th_redis_start(&srv);
    r = fm_redis_new(srv.addr, NULL, srv.password, 0, 300);
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

/* Pings h every 10 ms until it answers (at most 2 s); returns the seconds that took. */
static double until_ok(fm_redis *h)
{
    double t0 = th_now();

    while (fm_redis_ping(h) != FM_OK) {
        ck_assert_msg(th_now() - t0 < 2.0, "no answer within 2 s: %s", fm_redis_errstr(h));
        th_sleep_ms(10);
    }
    return th_now() - t0;
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
        ck_assert_msg(fm_redis_new(bad[i], NULL, NULL, 0, 100) == NULL, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(errno, EINVAL);
    }
    errno = 0;
    ck_assert_ptr_null(fm_redis_new(NULL, NULL, NULL, 0, 100));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(fm_redis_new("127.0.0.1:6379", NULL, NULL, 0, 0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(fm_redis_new("127.0.0.1:6379", NULL, NULL, -1, 100));
    ck_assert_int_eq(errno, EINVAL);
    /* An ACL user without a password could never log in. */
    errno = 0;
    ck_assert_ptr_null(fm_redis_new("127.0.0.1:6379", "app", NULL, 0, 100));
    ck_assert_int_eq(errno, EINVAL);

    /* Does not connect: a handle for an address nobody listens on is fine. */
    fm_redis *h = fm_redis_new("127.0.0.1:65535", NULL, "pw", 0, 100);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(fm_redis_errstr(h), "");
    fm_redis_free(h);
    h = fm_redis_new("localhost:6379", NULL, NULL, 15, 100);
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
    ck_assert_int_eq(fm_metrics_get(FM_MET_REDIS_ERR_REPLY), 1);
    ck_assert_int_eq(fm_metrics_get(FM_MET_REDIS_ERR_CONNECTION), 0);
}
END_TEST

START_TEST(wrong_password_refused)
{
    const char *wrong = "wrong-password-3f9a1c";
    fm_redis *h = fm_redis_new(srv.addr, NULL, wrong, 0, 300);
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

/* An ACL user: "AUTH user password"; its rules, not the default user's, apply. */
START_TEST(acl_user_authenticates)
{
    const char *setuser[] = {"ACL",          "SETUSER", "app",   "on",
                             ">app-pw-5e21", "~app:*",  "+ping", "+get"};
    const char *other[] = {"GET", "other"};
    const char *flush[] = {"FLUSHALL"};
    const char *ping[] = {"PING"};
    redisReply *reply;
    fm_redis *h, *bad;

    expect_status(r, 8, setuser, "OK");
    h = fm_redis_new(srv.addr, "app", "app-pw-5e21", 0, 300);
    ck_assert_ptr_nonnull(h);
    expect_string(h, "app:k", NULL);
    for (int i = 0; i < 2; i++) {
        reply = i == 0 ? cmd(h, 2, other) : cmd(h, 1, flush);
        ck_assert_int_eq(reply->type, REDIS_REPLY_ERROR);
        ck_assert_msg(strncmp(reply->str, "NOPERM", 6) == 0, "reply \"%s\"", reply->str);
        freeReplyObject(reply);
    }
    ck_assert_int_eq(fm_redis_ping(h), FM_OK);
    fm_redis_free(h);

    /* The default user's password is not the app user's. */
    bad = fm_redis_new(srv.addr, "app", srv.password, 0, 300);
    ck_assert_ptr_nonnull(bad);
    ck_assert_ptr_null(fm_redis_argv(bad, 1, ping, NULL));
    ck_assert_msg(strncmp(fm_redis_errstr(bad), "AUTH refused", 12) == 0, "errstr \"%s\"",
                  fm_redis_errstr(bad));
    ck_assert_ptr_null(strstr(fm_redis_errstr(bad), srv.password));
    fm_redis_free(bad);
}
END_TEST

START_TEST(no_password_gets_noauth)
{
    fm_redis *h = fm_redis_new(srv.addr, NULL, NULL, 0, 300);
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
    fm_redis *h3 = fm_redis_new(srv.addr, NULL, srv.password, 3, 300);
    const char *set[] = {"SET", "only-in-3", "three"};

    ck_assert_ptr_nonnull(h3);
    expect_status(h3, 3, set, "OK");
    expect_string(h3, "only-in-3", "three");
    expect_string(r, "only-in-3", NULL);
    fm_redis_free(h3);

    /* The server has 4 databases: SELECT 5 fails and the command is not run. */
    fm_redis *h5 = fm_redis_new(srv.addr, NULL, srv.password, 5, 300);
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

/* Redis restarted while the handle was idle: the first call finds the dead socket and works. */
START_TEST(restart_without_failed_call_in_between)
{
    const char *incr[] = {"INCR", "n"};
    const char *set[] = {"SET", "k", "v"};

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    th_redis_kill(&srv);
    th_redis_start(&srv);
    /* Not idempotent, and it runs exactly once. */
    ck_assert_int_eq(th_redis_int(r, 2, incr), 1);
    ck_assert_str_eq(fm_redis_errstr(r), "");

    th_redis_kill(&srv);
    th_redis_start(&srv);
    expect_status(r, 3, set, "OK");
    th_redis_kill(&srv);
    th_redis_start(&srv);
    expect_string(r, "k", NULL);
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
    ck_assert_int_eq(fm_metrics_get(FM_MET_REDIS_ERR_TIMEOUT), 1);

    /* Connecting works (the kernel accepts), but AUTH times out the same way. */
    fresh = fm_redis_new(srv.addr, NULL, srv.password, 0, 300);
    ck_assert_ptr_nonnull(fresh);
    t0 = th_now();
    ck_assert_int_eq(fm_redis_ping(fresh), FM_EREDIS);
    elapsed = th_now() - t0;
    ck_assert_msg(elapsed < 2.0, "connect+AUTH took %.3f s (timeout 0.3 s)", elapsed);

    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    /* Both handles' breakers are open now: each closes at its next probe. */
    ck_assert_double_lt(until_ok(r), 1.0);
    ck_assert_double_lt(until_ok(fresh), 1.0);
    fm_redis_free(fresh);
}
END_TEST

/* Hung Redis: the first timeout opens the breaker, later calls fail at once without waiting. */
START_TEST(breaker_fails_fast_while_open)
{
    const char *incr[] = {"INCR", "n"};
    double t0, elapsed;

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
    t0 = th_now();
    ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS);
    ck_assert_double_ge(th_now() - t0, 0.25);
    t0 = th_now();
    for (int i = 0; i < 50; i++) {
        ck_assert_ptr_null(fm_redis_argv(r, 2, incr, NULL));
        ck_assert_msg(strncmp(fm_redis_errstr(r), "circuit open", 12) == 0, "errstr \"%s\"",
                      fm_redis_errstr(r));
    }
    ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS);
    elapsed = th_now() - t0;
    ck_assert_msg(elapsed < 0.1, "51 calls while open took %.3f s (timeout 0.3 s)", elapsed);
    ck_assert_int_eq(fm_metrics_get(FM_MET_REDIS_ERR_CIRCUIT), 51);
    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    /* Nothing was sent while open: the INCRs never ran. */
    ck_assert_double_lt(until_ok(r), 1.0);
    expect_string(r, "n", NULL);
}
END_TEST

/* A number from INFO's "name:value" lines, read through h. */
static long long info_number(fm_redis *h, const char *name)
{
    const char *info[] = {"INFO", "stats"};
    redisReply *reply = cmd(h, 2, info);
    char needle[64];
    const char *at;
    long long v;

    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    (void)snprintf(needle, sizeof(needle), "\n%s:", name);
    at = strstr(reply->str, needle);
    ck_assert_ptr_nonnull(at);
    v = strtoll(at + strlen(needle), NULL, 10);
    freeReplyObject(reply);
    return v;
}

/*
 * While open, calls keep coming and none waits: only the first timeout did.
 * The probes beside them are few (one connection at most every
 * FM_REDIS_PROBE_MS), and the breaker closes with the first call after
 * SIGCONT that finds the probe answered.
 */
START_TEST(breaker_probes_then_closes)
{
    double t0, t, took;
    int slow = 0, calls = 0;
    long long conns;

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    conns = info_number(r, "total_connections_received");
    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
    t0 = th_now();
    while ((t = th_now()) < t0 + 1.5) {
        ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS);
        calls++;
        if (th_now() - t >= 0.25) /* waited for the timeout (0.3 s) */
            slow++;
        th_sleep_ms(5);
    }
    ck_assert_msg(slow == 1, "%d of %d calls waited (only the first should)", slow, calls);
    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    took = until_ok(r);
    ck_assert_msg(took < 0.5, "closed %.3f s after SIGCONT", took);
    ck_assert_str_eq(fm_redis_errstr(r), "");
    /*
     * Probes: open from 0.3 s, a probe waits 300 ms and the next starts
     * 250 ms after that: at 0.55 s, 1.1 s and (after SIGCONT) 1.65 s. Back to
     * back they would be 5. The -1 is the real connection made on closing.
     */
    conns = info_number(r, "total_connections_received") - conns - 1;
    ck_assert_msg(conns >= 1 && conns <= 3, "%lld probe connections", conns);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
}
END_TEST

/* Sends INCR n count times without reading a reply. */
static void send_incrs(fm_redis *h, int count)
{
    const char *incr[] = {"INCR", "n"};

    for (int i = 0; i < count; i++)
        ck_assert_msg(fm_redis_send(h, 2, incr) == FM_OK, "send %d: %s", i, fm_redis_errstr(h));
}

/*
 * Fire and forget: after N sends a command gets its own reply (the string n,
 * not one of the INCRs' integers), on the same connection (the owed replies
 * were read, not thrown away with a dropped connection), again and again.
 */
START_TEST(send_then_command_gets_own_reply)
{
    const char *ping[] = {"PING"};
    long long conns;

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    conns = info_number(r, "total_connections_received");
    send_incrs(r, 200);
    expect_string(r, "n", "200");
    for (int i = 1; i <= 20; i++) {
        char want[16];

        send_incrs(r, i);
        (void)snprintf(want, sizeof(want), "%d", 200 + i * (i + 1) / 2);
        expect_string(r, "n", want);
    }
    send_incrs(r, 3);
    expect_status(r, 1, ping, "PONG");
    ck_assert_int_eq(info_number(r, "total_connections_received"), conns);
    ck_assert_int_eq(fm_redis_send(r, 0, ping), FM_EINVAL);
}
END_TEST

/*
 * Corked sends are held: another connection sees none of them until the
 * last (nested) uncork, then all of them, in order; a command that waits for
 * its reply while corked writes the held ones before itself, so it sees them
 * too and still gets its own reply; an uncork with nothing held is FM_OK.
 */
START_TEST(cork_holds_sends_until_uncork)
{
    fm_redis *other = fm_redis_new(srv.addr, NULL, srv.password, 0, 300);
    const char *set_a[] = {"SET", "a", "1"}, *append_a[] = {"APPEND", "a", "2"};
    const char *set_b[] = {"SET", "b", "x"};

    ck_assert_ptr_nonnull(other);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    fm_redis_cork(r);
    fm_redis_cork(r);
    ck_assert_int_eq(fm_redis_send(r, 3, set_a), FM_OK);
    ck_assert_int_eq(fm_redis_send(r, 3, append_a), FM_OK);
    ck_assert_int_eq(fm_redis_uncork(r), FM_OK); /* the outer cork still holds them */
    usleep(50 * 1000);
    expect_string(other, "a", NULL);
    ck_assert_int_eq(fm_redis_uncork(r), FM_OK);
    for (int i = 0; i < 100; i++) {
        redisReply *v = cmd(other, 2, (const char *[]){"GET", "a"});
        bool there = v->type == REDIS_REPLY_STRING;
        freeReplyObject(v);
        if (there)
            break;
        usleep(10 * 1000);
    }
    expect_string(other, "a", "12");
    /* Corked again: a waiting command on the same handle pushes the held send out first. */
    fm_redis_cork(r);
    ck_assert_int_eq(fm_redis_send(r, 3, set_b), FM_OK);
    expect_string(r, "b", "x");
    ck_assert_int_eq(fm_redis_uncork(r), FM_OK);
    ck_assert_int_eq(fm_redis_uncork(r), FM_OK); /* not corked: nothing to do */
    fm_redis_cork(NULL);
    ck_assert_int_eq(fm_redis_uncork(NULL), FM_OK);
    fm_redis_free(other);
}
END_TEST

/* With the breaker open nothing is sent and the send fails at once. */
START_TEST(send_respects_breaker)
{
    double t0;

    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
    ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS); /* the timeout opens it */
    t0 = th_now();
    for (int i = 0; i < 50; i++) {
        const char *incr[] = {"INCR", "n"};
        ck_assert_int_eq(fm_redis_send(r, 2, incr), FM_EREDIS);
        ck_assert_msg(strncmp(fm_redis_errstr(r), "circuit open", 12) == 0, "errstr \"%s\"",
                      fm_redis_errstr(r));
    }
    ck_assert_double_lt(th_now() - t0, 0.1);
    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    ck_assert_double_lt(until_ok(r), 1.0);
    expect_string(r, "n", NULL);
}
END_TEST

/*
 * Hung Redis: a send returns at once (the kernel takes it); the next command
 * waits for the owed reply no longer than timeout_ms and opens the breaker;
 * a send that fills the socket buffer gives up after timeout_ms too. After
 * SIGCONT the handle works and reads its own replies.
 */
START_TEST(send_to_hung_server_bounded)
{
    const char *ping[] = {"PING"};
    size_t big = 8u << 20;
    char *value = malloc(big + 1);
    const char *set[] = {"SET", "big", value};
    double t0, took;

    ck_assert_ptr_nonnull(value);
    memset(value, 'v', big);
    value[big] = '\0';
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
    t0 = th_now();
    send_incrs(r, 1);
    ck_assert_double_lt(th_now() - t0, 0.1);
    t0 = th_now();
    ck_assert_ptr_null(fm_redis_argv(r, 1, ping, NULL));
    took = th_now() - t0;
    ck_assert_msg(took >= 0.25 && took < 1.0, "command after send took %.3f s", took);
    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    ck_assert_double_lt(until_ok(r), 1.0);
    expect_string(r, "n", "1");

    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
    t0 = th_now();
    ck_assert_int_eq(fm_redis_send(r, 3, set), FM_EREDIS);
    took = th_now() - t0;
    ck_assert_msg(took >= 0.25 && took < 1.0, "send of 8 MB to a stopped server took %.3f s", took);
    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    ck_assert_double_lt(until_ok(r), 1.0);
    expect_string(r, "n", "1");
    free(value);
}
END_TEST

/* Redis restarted with replies owed: they are dropped with the dead connection. */
START_TEST(send_then_restart)
{
    send_incrs(r, 5);
    th_redis_kill(&srv);
    th_redis_start(&srv);
    expect_string(r, "n", NULL);
    send_incrs(r, 2);
    th_redis_kill(&srv);
    th_redis_start(&srv);
    send_incrs(r, 1); /* finds the dead connection before sending */
    expect_string(r, "n", "1");
}
END_TEST

/* A server that is down (connection refused) fails fast anyway and does not open the breaker. */
START_TEST(refused_does_not_open)
{
    th_redis_kill(&srv);
    ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS);
    ck_assert_int_eq(fm_redis_ping(r), FM_EREDIS);
    ck_assert_msg(strncmp(fm_redis_errstr(r), "connect", 7) == 0, "errstr \"%s\"",
                  fm_redis_errstr(r));
    ck_assert_int_eq(fm_metrics_get(FM_MET_REDIS_ERR_CONNECTION), 2);
    th_redis_start(&srv);
    ck_assert_int_eq(fm_redis_ping(r), FM_OK);
}
END_TEST

/* ---- retry rules, against a scripted stand-in server --------------------------- */

/*
 * A stand-in for Redis on a unix socket (a forked child, no AUTH): the i-th
 * connection reads one command, appends it to a log file, then does acts[i]:
 * "" closes without answering (the reply is lost after the command arrived),
 * "shut" answers +PONG and stops reading while keeping the socket open (the
 * client's next write fails with EPIPE and delivers nothing), anything else is
 * sent as the reply. Then the next connection.
 */
typedef struct fake {
    char dir[TH_PATH_MAX], sock[TH_PATH_MAX], log[TH_PATH_MAX], addr[TH_PATH_MAX + 8];
    pid_t pid;
} fake;

static fake fk;

static void fake_serve(int lfd, int logfd, const char *const *acts, int nacts)
{
    for (int i = 0; i < nacts; i++) {
        char buf[4096];
        int fd = accept(lfd, NULL, NULL);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

        if (n <= 0 || write(logfd, buf, (size_t)n) != n)
            _exit(1);
        if (strcmp(acts[i], "shut") == 0) {
            if (write(fd, "+PONG\r\n", 7) != 7 || shutdown(fd, SHUT_RD) != 0)
                _exit(1);
            continue; /* fd stays open: the client sees no EOF */
        }
        if (acts[i][0] != '\0' && write(fd, acts[i], strlen(acts[i])) != (ssize_t)strlen(acts[i]))
            _exit(1);
        (void)close(fd);
    }
    pause();
    _exit(0);
}

/* A listening socket for the stand-in: on fk.sock, or with tcp on 127.0.0.1 (any port). */
static int fake_listen(bool tcp)
{
    struct sockaddr_un sa;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int lfd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM, 0);

    ck_assert_int_ge(lfd, 0);
    if (tcp) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
        (void)snprintf(fk.addr, sizeof(fk.addr), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    } else {
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path, fk.sock, strlen(fk.sock) + 1);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_lt(snprintf(fk.addr, sizeof(fk.addr), "unix:%s", fk.sock),
                         (int)sizeof(fk.addr));
    }
    ck_assert_int_eq(listen(lfd, 8), 0);
    return lfd;
}

static void fake_start_on(bool tcp, const char *const *acts, int nacts)
{
    int lfd, logfd;

    memset(&fk, 0, sizeof(fk));
    th_mkdtemp(fk.dir, "fm-fake");
    th_path(fk.sock, fk.dir, "f.sock");
    th_path(fk.log, fk.dir, "commands");
    lfd = fake_listen(tcp);
    logfd = open(fk.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    ck_assert_int_ge(logfd, 0);
    fk.pid = fork();
    ck_assert_int_ge(fk.pid, 0);
    if (fk.pid == 0)
        fake_serve(lfd, logfd, acts, nacts);
    (void)close(lfd);
    (void)close(logfd);
}

static void fake_start(const char *const *acts, int nacts)
{
    fake_start_on(false, acts, nacts);
}

/* How many times the stand-in received word (a command name or argument). */
static int fake_count(const char *word)
{
    char buf[8192], needle[64];
    int fd = open(fk.log, O_RDONLY), count = 0;
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    (void)close(fd);
    (void)snprintf(needle, sizeof(needle), "\r\n%s\r\n", word);
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        count++;
    return count;
}

static void fake_stop(void)
{
    if (fk.pid > 0) {
        (void)kill(fk.pid, SIGKILL);
        (void)waitpid(fk.pid, NULL, 0);
    }
    th_rmtree(fk.dir);
    memset(&fk, 0, sizeof(fk));
}

static fm_redis *fake_handle(void)
{
    fm_redis *h = fm_redis_new(fk.addr, NULL, NULL, 0, 300);

    ck_assert_ptr_nonnull(h);
    return h;
}

/*
 * PING answered on the first connection, which then goes bad (acts[0]); a
 * pause lets that reach this side; the INCR that follows is answered want
 * by the second connection, and the stand-in received it exactly once.
 */
static void ping_then_incr_once(bool tcp, const char *const acts[2], long long want)
{
    const char *ping[] = {"PING"};
    const char *incr[] = {"INCR", "n"};
    fm_redis *h;

    fake_start_on(tcp, acts, 2);
    h = fake_handle();
    expect_status(h, 1, ping, "PONG");
    th_sleep_ms(50);
    ck_assert_int_eq(th_redis_int(h, 2, incr), want);
    ck_assert_int_eq(fake_count("INCR"), 1);
    fm_redis_free(h);
    fake_stop();
}

/* The write failed before a byte left (EPIPE): even INCR is sent again, and runs once. */
START_TEST(unsent_command_retried)
{
    static const char *const acts[] = {"shut", ":7\r\n"};

    ping_then_incr_once(false, acts, 7);
}
END_TEST

/*
 * Over TCP a write to a connection the peer has closed succeeds (the data is
 * discarded), so only the check before sending can tell: the closed
 * connection is replaced and the command sent once, on the fresh one.
 */
START_TEST(closed_tcp_connection_replaced_before_sending)
{
    static const char *const acts[] = {"+PONG\r\n", ":3\r\n"};

    ping_then_incr_once(true, acts, 3);
}
END_TEST

/* The command arrived and the reply was lost: INCR may have run, so it is not sent again. */
START_TEST(lost_reply_not_retried)
{
    static const char *const acts[] = {"+PONG\r\n", "", ":1\r\n"};
    const char *ping[] = {"PING"};
    const char *incr[] = {"INCR", "n"};
    fm_redis *h;

    fake_start(acts, 3);
    h = fake_handle();
    /* One connection per command here (the stand-in closes after each). */
    expect_status(h, 1, ping, "PONG");
    th_sleep_ms(50); /* until the stand-in's close has arrived */
    ck_assert_ptr_null(fm_redis_argv(h, 2, incr, NULL));
    ck_assert_str_ne(fm_redis_errstr(h), "");
    ck_assert_int_eq(fake_count("INCR"), 1);
    /* The next call makes a fresh connection. */
    ck_assert_int_eq(th_redis_int(h, 2, incr), 1);
    ck_assert_int_eq(fake_count("INCR"), 2);
    fm_redis_free(h);
    fake_stop();
}
END_TEST

/* A read-only command whose reply was lost is sent once more, on a fresh connection. */
START_TEST(lost_reply_read_only_retried)
{
    static const char *const acts[] = {"+PONG\r\n", "", "$2\r\nv1\r\n"};
    const char *ping[] = {"ping"};

    fake_start(acts, 3);
    fm_redis *h = fake_handle();
    expect_status(h, 1, ping, "PONG");
    th_sleep_ms(50); /* until the stand-in's close has arrived */
    expect_string(h, "k", "v1");
    ck_assert_int_eq(fake_count("GET"), 2);
    fm_redis_free(h);
    fake_stop();
}
END_TEST

/* Scripts: retried after a lost reply only when marked idempotent. */
START_TEST(lost_reply_script_retried_only_if_idempotent)
{
    static const char *const acts[] = {"+PONG\r\n", "", ":5\r\n", "+PONG\r\n", "", ":6\r\n"};
    fm_redis_script counts = {.source = "return redis.call('INCR', KEYS[1])"};
    fm_redis_script reads = {.source = "return redis.call('GET', KEYS[1])", .idempotent = true};
    const char *ping[] = {"PING"};
    const char *argv[] = {"k"};
    redisReply *reply;
    fm_redis *h;

    /* Known shas: no SCRIPT LOAD goes to the stand-in. */
    memset(counts.sha, 'a', 40);
    memset(reads.sha, 'b', 40);
    fake_start(acts, 6);
    h = fake_handle();
    expect_status(h, 1, ping, "PONG");
    th_sleep_ms(50); /* until the stand-in's close has arrived */
    ck_assert_ptr_null(fm_redis_eval(h, &counts, 1, 1, argv));
    ck_assert_int_eq(fake_count(counts.sha), 1);
    reply = fm_redis_eval(h, &counts, 1, 1, argv);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->integer, 5);
    freeReplyObject(reply);

    expect_status(h, 1, ping, "PONG");
    th_sleep_ms(50); /* until the stand-in's close has arrived */
    reply = fm_redis_eval(h, &reads, 1, 1, argv);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->integer, 6);
    freeReplyObject(reply);
    ck_assert_int_eq(fake_count(reads.sha), 2);
    fm_redis_free(h);
    fake_stop();
}
END_TEST

START_TEST(unreachable_socket)
{
    char addr[TH_PATH_MAX + 32];
    fm_redis *h;

    ck_assert_int_lt(snprintf(addr, sizeof(addr), "unix:%s/nobody.sock", srv.dir),
                     (int)sizeof(addr));
    h = fm_redis_new(addr, NULL, "pw-not-shown", 0, 300);
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
        ck_assert_int_eq(th_redis_int(r, 2, incr), i);
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
    tcase_add_test(tc, acl_user_authenticates);
    tcase_add_test(tc, no_password_gets_noauth);
    tcase_add_test(tc, db_select);
    tcase_add_test(tc, server_restart_fresh_context);
    tcase_add_test(tc, restart_without_failed_call_in_between);
    tcase_add_test(tc, eval_loads_and_reloads);
    tcase_add_test(tc, eval_stale_sha_reloads);
    tcase_add_test(tc, eval_errors);
    tcase_add_test(tc, timeout_while_stopped);
    tcase_add_test(tc, breaker_fails_fast_while_open);
    tcase_add_test(tc, breaker_probes_then_closes);
    tcase_add_test(tc, refused_does_not_open);
    tcase_add_test(tc, unsent_command_retried);
    tcase_add_test(tc, closed_tcp_connection_replaced_before_sending);
    tcase_add_test(tc, lost_reply_not_retried);
    tcase_add_test(tc, lost_reply_read_only_retried);
    tcase_add_test(tc, lost_reply_script_retried_only_if_idempotent);
    tcase_add_test(tc, unreachable_socket);
    tcase_add_test(tc, counter_across_calls);
    tcase_add_test(tc, send_then_command_gets_own_reply);
    tcase_add_test(tc, cork_holds_sends_until_uncork);
    tcase_add_test(tc, send_respects_breaker);
    tcase_add_test(tc, send_to_hung_server_bounded);
    tcase_add_test(tc, send_then_restart);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(redisconn_suite)
