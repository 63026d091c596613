/*
 * test_wsconn.c - lib/store/wsconn.c on a real Redis: a registered socket is
 * listed with what it was registered with; a mark is listed with it and
 * given back by the end; ending twice finds nothing the second time; a mark
 * on an unregistered id leaves nothing behind; bad fields are refused before
 * Redis; entries of another host are not listed; Redis down is FM_EREDIS.
 * Also fm_redis_subscribe / fm_redis_message (redisconn.c), which the relay
 * uses.
 */
#include <check.h>
#include <string.h>

#include "helpers.h"
#include "redisconn.h"
#include "wsconn.h"

static fm_wsconn_store store;

static void setup(void)
{
    th_redis_setup();
    store = (fm_wsconn_store){.redis = th_r, .prefix = "t:", .host = "hostA"};
}

static void teardown(void)
{
    th_redis_teardown();
}

static fm_wsconn sample(const char *user, int64_t opened)
{
    fm_wsconn c;

    memset(&c, 0, sizeof(c));
    fm_wsconn_new_id(c.id);
    (void)snprintf(c.user, sizeof(c.user), "%s", user);
    (void)snprintf(c.key_id, sizeof(c.key_id), "0123456789ab");
    (void)snprintf(c.kind, sizeof(c.kind), "user");
    c.opened_ms = opened;
    return c;
}

START_TEST(register_list_mark_end)
{
    fm_wsconn a = sample("alice", 1000), b = sample("bob", 2000), got, *list;
    size_t n;
    bool found;

    ck_assert_int_eq(strlen(a.id), 32);
    ck_assert(th_is_lower_hex(a.id, 32));
    ck_assert_str_ne(a.id, b.id);
    ck_assert_int_eq(fm_wsconn_register(&store, &a), FM_OK);
    ck_assert_int_eq(fm_wsconn_register(&store, &b), FM_OK);
    ck_assert_int_eq(fm_wsconn_list(&store, &list, &n), FM_OK);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        const fm_wsconn *want = strcmp(list[i].id, a.id) == 0 ? &a : &b;
        ck_assert_str_eq(list[i].user, want->user);
        ck_assert_str_eq(list[i].key_id, "0123456789ab");
        ck_assert_str_eq(list[i].kind, "user");
        ck_assert_int_eq(list[i].opened_ms, want->opened_ms);
        ck_assert_str_eq(list[i].reason, "");
    }
    free(list);

    ck_assert_int_eq(fm_wsconn_mark(&store, a.id, "key_revoked"), FM_OK);
    ck_assert_int_eq(fm_wsconn_list(&store, &list, &n), FM_OK);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(list[i].reason, strcmp(list[i].id, a.id) == 0 ? "key_revoked" : "");
    free(list);

    /* Get reads the entry and leaves it; end takes it. */
    ck_assert_int_eq(fm_wsconn_get(&store, a.id, &got, &found), FM_OK);
    ck_assert(found);
    ck_assert_str_eq(got.user, "alice");
    ck_assert_str_eq(got.key_id, "0123456789ab");
    ck_assert_str_eq(got.kind, "user");
    ck_assert_int_eq(got.opened_ms, 1000);
    ck_assert_int_eq(fm_wsconn_end(&store, a.id, &got, &found), FM_OK);
    ck_assert(found);
    ck_assert_str_eq(got.user, "alice");
    ck_assert_str_eq(got.reason, "key_revoked");
    ck_assert_int_eq(got.opened_ms, 1000);
    ck_assert_int_eq(fm_wsconn_get(&store, a.id, &got, &found), FM_OK);
    ck_assert(!found);
    ck_assert_str_eq(got.id, a.id);
    ck_assert_str_eq(got.user, "");
    ck_assert_int_eq(fm_wsconn_end(&store, a.id, &got, &found), FM_OK);
    ck_assert(!found);
    ck_assert_str_eq(got.id, a.id);
    ck_assert_str_eq(got.user, "");
    ck_assert_int_eq(fm_wsconn_end(&store, b.id, &got, &found), FM_OK);
    ck_assert(found);
    ck_assert_str_eq(got.reason, "");
    ck_assert_int_eq(fm_wsconn_list(&store, &list, &n), FM_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(list);
    {
        const char *argv[] = {"EXISTS", "t:ws:hostA", "t:ws:hostA:closing"};
        ck_assert_int_eq(th_redis_int(th_r, 3, argv), 0);
    }
}
END_TEST

START_TEST(mark_of_an_unregistered_id_leaves_nothing)
{
    fm_wsconn a = sample("alice", 1);
    const char *argv[] = {"EXISTS", "t:ws:hostA:closing"};

    ck_assert_int_eq(fm_wsconn_mark(&store, a.id, "key_expired"), FM_OK);
    ck_assert_int_eq(th_redis_int(th_r, 2, argv), 0);
}
END_TEST

START_TEST(bad_fields_refused)
{
    fm_wsconn c = sample("alice", 1), got;
    bool found;

    c.user[0] = '\0';
    ck_assert_int_eq(fm_wsconn_register(&store, &c), FM_EINVAL);
    c = sample("al ice", 1);
    ck_assert_int_eq(fm_wsconn_register(&store, &c), FM_EINVAL);
    c = sample("alice", -1);
    ck_assert_int_eq(fm_wsconn_register(&store, &c), FM_EINVAL);
    c = sample("alice", 1);
    c.id[3] = 'Z';
    ck_assert_int_eq(fm_wsconn_register(&store, &c), FM_EINVAL);
    ck_assert_int_eq(fm_wsconn_end(&store, "short", &got, &found), FM_EINVAL);
    ck_assert_int_eq(fm_wsconn_get(&store, "short", &got, &found), FM_EINVAL);
    ck_assert(!found);
    c = sample("alice", 1);
    ck_assert_int_eq(fm_wsconn_mark(&store, c.id, "Key Revoked"), FM_EINVAL);
    ck_assert_int_eq(fm_wsconn_mark(&store, c.id, ""), FM_EINVAL);
}
END_TEST

START_TEST(hosts_are_apart_and_garbage_skipped)
{
    fm_wsconn_store other = {.redis = th_r, .prefix = "t:", .host = "hostB"};
    fm_wsconn a = sample("alice", 5), *list;
    const char *junk[] = {"HSET", "t:ws:hostA", "0123456789abcdef0123456789abcdef", "not a value"};
    size_t n;
    redisReply *r;

    ck_assert_int_eq(fm_wsconn_register(&other, &a), FM_OK);
    r = th_redis_cmd(th_r, 4, junk);
    freeReplyObject(r);
    ck_assert_int_eq(fm_wsconn_list(&store, &list, &n), FM_OK);
    ck_assert_uint_eq(n, 0);
    free(list);
    ck_assert_int_eq(fm_wsconn_list(&other, &list, &n), FM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(list[0].id, a.id);
    free(list);
}
END_TEST

START_TEST(host_name_is_a_key_word)
{
    char h[FM_WSCONN_HOST_MAX];

    fm_wsconn_host(h);
    ck_assert_uint_gt(strlen(h), 0);
    ck_assert_uint_eq(
        strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"), strlen(h));
}
END_TEST

START_TEST(redis_down)
{
    fm_wsconn a = sample("alice", 1), *list = NULL, got;
    size_t n;
    bool found;

    th_redis_kill(&th_srv);
    ck_assert_int_eq(fm_wsconn_register(&store, &a), FM_EREDIS);
    ck_assert_int_eq(fm_wsconn_list(&store, &list, &n), FM_EREDIS);
    ck_assert_ptr_null(list);
    ck_assert_int_eq(fm_wsconn_end(&store, a.id, &got, &found), FM_EREDIS);
    ck_assert_int_eq(fm_wsconn_get(&store, a.id, &got, &found), FM_EREDIS);
    ck_assert(!found);
    ck_assert_int_eq(fm_wsconn_mark(&store, a.id, "key_revoked"), FM_EREDIS);
}
END_TEST

START_TEST(subscription_gets_messages_without_blocking)
{
    fm_redis *sub = th_redis_connect();
    const char *pub[] = {"PUBLISH", "t:events", "one"}, *pub2[] = {"PUBLISH", "t:events", "two"};
    redisReply *msg = NULL;
    double t0;

    ck_assert_int_eq(fm_redis_fd(sub), -1);
    ck_assert_int_eq(fm_redis_subscribe(sub, "t:events"), FM_OK);
    ck_assert_int_ge(fm_redis_fd(sub), 0);
    t0 = th_now();
    ck_assert_int_eq(fm_redis_message(sub, &msg), FM_OK);
    ck_assert_ptr_null(msg);
    ck_assert(th_now() - t0 < 0.1);
    ck_assert_int_eq(th_redis_int(th_r, 3, pub), 1);
    ck_assert_int_eq(th_redis_int(th_r, 3, pub2), 1);
    for (int i = 0; i < 100 && msg == NULL; i++) {
        th_sleep_ms(10);
        ck_assert_int_eq(fm_redis_message(sub, &msg), FM_OK);
    }
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(msg->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(msg->element[0]->str, "message");
    ck_assert_str_eq(msg->element[2]->str, "one");
    freeReplyObject(msg);
    /* The second arrived in the same read, or comes on the next. */
    msg = NULL;
    for (int i = 0; i < 100 && msg == NULL; i++) {
        ck_assert_int_eq(fm_redis_message(sub, &msg), FM_OK);
        if (msg == NULL)
            th_sleep_ms(10);
    }
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(msg->element[2]->str, "two");
    freeReplyObject(msg);
    th_redis_kill(&th_srv);
    for (int i = 0; i < 100; i++) {
        fm_err rc = fm_redis_message(sub, &msg);
        if (rc == FM_EREDIS)
            break;
        ck_assert_ptr_null(msg);
        th_sleep_ms(10);
    }
    ck_assert_int_eq(fm_redis_fd(sub), -1);
    ck_assert_int_eq(fm_redis_subscribe(sub, "t:events"), FM_EREDIS);
    fm_redis_free(sub);
}
END_TEST

static Suite *wsconn_suite(void)
{
    Suite *s = suite_create("wsconn");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, register_list_mark_end);
    tcase_add_test(tc, mark_of_an_unregistered_id_leaves_nothing);
    tcase_add_test(tc, bad_fields_refused);
    tcase_add_test(tc, hosts_are_apart_and_garbage_skipped);
    tcase_add_test(tc, host_name_is_a_key_word);
    tcase_add_test(tc, redis_down);
    tcase_add_test(tc, subscription_gets_messages_without_blocking);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(wsconn_suite)
