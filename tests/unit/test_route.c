/*
 * test_route.c - route selection (lib/app/route.c): captures, the rest of a
 * path, the first match winning, HEAD on a GET route, and what a path
 * without its method's route leaves for 405 and the metrics.
 */
#include "route.h"
#include "helpers.h"

#include <check.h>
#include <string.h>

static int handler(fm_call *call, fm_response *resp)
{
    (void)call;
    (void)resp;
    return 0;
}

static const fm_route table[] = {
    {"GET", "/v1/tasks/claim", FM_PERM_NONE, handler, 0},
    {"GET", "/v1/tasks/{id}", FM_PERM_NONE, handler, 0},
    {"DELETE", "/v1/tasks/{id}", FM_PERM_NONE, handler, 0},
    {"GET", "/v1/e/{name}/files/{path*}", FM_PERM_NONE, handler, 0},
    {"PUT", "/v1/e/{name}/files/{path*}", FM_PERM_NONE, handler, FM_ROUTE_STREAM_BODY},
};
static const size_t ntable = sizeof(table) / sizeof(table[0]);

START_TEST(match_captures_segments_and_tail)
{
    char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX];
    const char *path = "/v1/e/exp1/files/a/b.txt", *tail = NULL;

    ck_assert(fm_route_match("/v1/tasks/{id}", "/v1/tasks/abc", params, &tail));
    ck_assert_str_eq(params[0], "abc");
    ck_assert_ptr_null(tail);
    ck_assert(!fm_route_match("/v1/tasks/{id}", "/v1/tasks/", params, NULL));
    ck_assert(!fm_route_match("/v1/tasks/{id}", "/v1/tasks/a/b", params, NULL));
    ck_assert(fm_route_match("/v1/e/{name}/files/{path*}", path, params, &tail));
    ck_assert_str_eq(params[0], "exp1");
    ck_assert_ptr_eq(tail, path + strlen("/v1/e/exp1/files/"));
    ck_assert(!fm_route_match("/v1/e/{name}/files/{path*}", "/v1/e/exp1/files/", params, NULL));
}
END_TEST

START_TEST(find_takes_the_first_route_of_the_method)
{
    fm_route_found f;

    fm_route_find(table, ntable, "GET", "/v1/tasks/claim", &f);
    ck_assert_ptr_eq(f.route, &table[0]);
    ck_assert_uint_eq(f.first, 0);
    fm_route_find(table, ntable, "DELETE", "/v1/tasks/t1", &f);
    ck_assert_ptr_eq(f.route, &table[2]);
    ck_assert_uint_eq(f.first, 1);
    ck_assert_str_eq(f.params[0], "t1");
    ck_assert_ptr_null(f.tail);
    fm_route_find(table, ntable, "HEAD", "/v1/e/x/files/y", &f);
    ck_assert_ptr_eq(f.route, &table[3]);
    ck_assert_str_eq(f.tail, "y");
    fm_route_find(table, ntable, "PUT", "/v1/e/x/files/y/z", &f);
    ck_assert_ptr_eq(f.route, &table[4]);
    ck_assert_str_eq(f.tail, "y/z");
}
END_TEST

START_TEST(find_without_a_route_says_allow_and_first)
{
    fm_route_found f;

    fm_route_find(table, ntable, "POST", "/v1/tasks/t1", &f);
    ck_assert_ptr_null(f.route);
    ck_assert_uint_eq(f.first, 1);
    ck_assert_str_eq(f.allow, "GET, DELETE");
    fm_route_find(table, ntable, "GET", "/v1/nothing", &f);
    ck_assert_ptr_null(f.route);
    ck_assert_uint_eq(f.first, ntable);
    ck_assert_str_eq(f.allow, "");
}
END_TEST

START_TEST(streams_follows_the_route_found)
{
    ck_assert(fm_pipeline_streams(table, ntable, "PUT", "/v1/e/x/files/y"));
    ck_assert(!fm_pipeline_streams(table, ntable, "GET", "/v1/e/x/files/y"));
    ck_assert(!fm_pipeline_streams(table, ntable, "PUT", "/v1/tasks/t1"));
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, match_captures_segments_and_tail);
    tcase_add_test(tc, find_takes_the_first_route_of_the_method);
    tcase_add_test(tc, find_without_a_route_says_allow_and_first);
    tcase_add_test(tc, streams_follows_the_route_found);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(route_suite)
