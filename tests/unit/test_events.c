/*
 * test_events.c - lib/store/events.c: an event published through the
 * worker's handle reaches a subscriber (a second, raw hiredis connection
 * that SUBSCRIBEs to <prefix>events), is valid JSON of the documented shape
 * with a fresh id each time; with Redis down or hung the publish is counted
 * as failed, returns at once and is logged once per interval.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "events.h"
#include "metrics.h"
#include "helpers.h"
#include "log.h"

#define PREFIX "ev:"

static char tmpdir[TH_PATH_MAX], log_path[TH_PATH_MAX];

static void setup(void)
{
    /* The counters are the shared metrics (metrics.h): a region as the master maps one. */
    fm_metrics_attach(fm_metrics_create(1));
    th_redis_setup();
    th_mkdtemp(tmpdir, "test_events");
    th_path(log_path, tmpdir, "api.log");
    ck_assert_int_eq(fm_log_open(log_path, FM_LOG_DEBUG, 0), FM_OK);
}

static void teardown(void)
{
    fm_log_close();
    th_rmtree(tmpdir);
    th_redis_teardown();
}

static redisContext *subscriber(void)
{
    return th_redis_subscribe(&th_srv, PREFIX "events", 2000);
}

/* The next event on the subscription, parsed (the caller deletes it). */
static cJSON *next_event(redisContext *c)
{
    char *text = th_redis_message(c, PREFIX "events");
    cJSON *event;

    ck_assert_msg(text != NULL, "no event within 2 s");
    event = cJSON_Parse(text);
    ck_assert_msg(event != NULL, "event is not JSON: %s", text);
    free(text);
    return event;
}

static cJSON *sample_task(const char *id)
{
    cJSON *t = cJSON_CreateObject();

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(t, "id", id));
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(t, "status", "queued"));
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(t, "job_name", "line\nbreak \"quoted\""));
    ck_assert_ptr_nonnull(cJSON_AddNullToObject(t, "worker_id"));
    return t;
}

static size_t log_lines_with(const char *needle)
{
    char *text = th_read_file(log_path);
    size_t n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

START_TEST(published_event_reaches_subscriber)
{
    static const char *keys[] = {"id", "type", "ts", "task"};
    redisContext *sub = subscriber();
    cJSON *task = sample_task("0b9d2c52-8c3e-4c1e-9a7f-2f0f6c1d9e11"), *ev, *item;
    unsigned long long ok0 = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED),
                       bad0 = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED);
    char first_id[FM_EVENTS_ID_SIZE];
    int64_t when;
    size_t k = 0;

    fm_events_publish(th_r, PREFIX, "task.created", task);
    ev = next_event(sub);
    cJSON_ArrayForEach(item, ev)
    {
        ck_assert_uint_lt(k, 4);
        ck_assert_str_eq(item->string, keys[k++]);
    }
    ck_assert_uint_eq(k, 4);
    ck_assert(th_is_lower_hex(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "id")), 32));
    ck_assert_uint_eq(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "id"))), 32);
    (void)snprintf(first_id, sizeof(first_id), "%s",
                   cJSON_GetStringValue(cJSON_GetObjectItem(ev, "id")));
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type")), "task.created");
    ck_assert_uint_eq(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "ts"))), 24);
    ck_assert_int_eq(
        fm_clock_parse_rfc3339(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "ts")), &when), FM_OK);
    ck_assert(cJSON_Compare(cJSON_GetObjectItem(ev, "task"), task, 1));
    cJSON_Delete(ev);

    /* The second event has its own id; a NULL task is "task":null. */
    fm_events_publish(th_r, PREFIX, "task.deleted", NULL);
    ev = next_event(sub);
    ck_assert_str_ne(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "id")), first_id);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(ev, "task")));
    cJSON_Delete(ev);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED), ok0 + 2);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED), bad0);

    /* Fire and forget leaves the handle in step: the next command reads its own reply. */
    ck_assert_int_eq(fm_redis_ping(th_r), FM_OK);
    cJSON_Delete(task);
    redisFree(sub);
}
END_TEST

START_TEST(redis_down_counted_no_hang)
{
    cJSON *task = sample_task("0b9d2c52-8c3e-4c1e-9a7f-2f0f6c1d9e12");
    unsigned long long ok0 = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED),
                       bad0 = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED);
    double t0;

    ck_assert_int_eq(fm_redis_ping(th_r), FM_OK);
    th_redis_kill(&th_srv);
    t0 = th_now();
    for (int i = 0; i < 20; i++)
        fm_events_publish(th_r, PREFIX, "task.started", task);
    ck_assert_msg(th_now() - t0 < 1.0, "20 publishes to a dead Redis took %.3f s", th_now() - t0);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED), bad0 + 20);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED), ok0);
    /* Logged once per interval, not once per event. */
    ck_assert_uint_eq(log_lines_with("not published"), 1);
    th_redis_start(&th_srv);
    fm_events_publish(th_r, PREFIX, "task.started", task);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED), ok0 + 1);
    cJSON_Delete(task);
}
END_TEST

/* Hung Redis: once a timeout opened the breaker, publishes fail at once and are counted. */
START_TEST(redis_hung_counted_no_hang)
{
    unsigned long long bad0;
    double t0;

    ck_assert_int_eq(fm_redis_ping(th_r), FM_OK);
    ck_assert_int_eq(kill(th_srv.pid, SIGSTOP), 0);
    ck_assert_int_eq(fm_redis_ping(th_r), FM_EREDIS);
    bad0 = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED);
    t0 = th_now();
    for (int i = 0; i < 20; i++)
        fm_events_publish(th_r, PREFIX, "task.progress", NULL);
    ck_assert_double_lt(th_now() - t0, 0.1);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED), bad0 + 20);
    ck_assert_int_eq(kill(th_srv.pid, SIGCONT), 0);
}
END_TEST

START_TEST(bad_arguments_counted)
{
    unsigned long long bad0 = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED);
    char prefix[FM_REDIS_KEY_MAX + 1];

    memset(prefix, 'p', FM_REDIS_KEY_MAX);
    prefix[FM_REDIS_KEY_MAX] = '\0';
    fm_events_publish(NULL, PREFIX, "task.created", NULL);
    fm_events_publish(th_r, prefix, "task.created", NULL);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_FAILED), bad0 + 2);
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, published_event_reaches_subscriber);
    tcase_add_test(tc, redis_down_counted_no_hang);
    tcase_add_test(tc, redis_hung_counted_no_hang);
    tcase_add_test(tc, bad_arguments_counted);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(events_suite)
