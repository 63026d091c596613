/*
 * test_params.c - the FastCGI params a worker reads (fcgi-app/params.c): one
 * pass, the first occurrence wins, repeats are counted; strict
 * CONTENT_LENGTH.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "params.h"

#include "helpers.h"

START_TEST(scan)
{
    char *envp[] = {
        "REQUEST_METHOD=POST",   "HTTP_X_API_KEY=first", "NOEQUALS",      "DOCUMENT_URI=/v1/tasks",
        "HTTP_X_API_KEY=second", "REQUEST_METHODX=GET",  "QUERY_STRING=", NULL};
    const char *value[P_COUNT];
    int count[P_COUNT];

    fm_params_scan(envp, value, count);
    ck_assert_str_eq(value[P_METHOD], "POST");
    ck_assert_int_eq(count[P_METHOD], 1);
    ck_assert_str_eq(value[P_X_API_KEY], "first");
    ck_assert_int_eq(count[P_X_API_KEY], 2);
    ck_assert_str_eq(value[P_DOCUMENT_URI], "/v1/tasks");
    ck_assert_str_eq(value[P_QUERY], "");
    ck_assert_ptr_null(value[P_AUTHORIZATION]);
    ck_assert_int_eq(count[P_AUTHORIZATION], 0);
    fm_params_scan(NULL, value, count);
    ck_assert_ptr_null(value[P_METHOD]);
}
END_TEST

START_TEST(content_length)
{
    static const char *const refused[] = {
        "-1", "+5", " 5", "5 ", "0x10", "1e3", "99999999999999999999999"};
    char max[32], over[32];
    size_t n = 1;

    ck_assert_int_eq(fm_params_content_length(NULL, &n), FM_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(fm_params_content_length("", &n), FM_OK);
    ck_assert_int_eq(fm_params_content_length("00012", &n), FM_OK);
    ck_assert_uint_eq(n, 12);
    (void)snprintf(max, sizeof(max), "%zu", SIZE_MAX / 2);
    (void)snprintf(over, sizeof(over), "%zu", SIZE_MAX / 2 + 1);
    ck_assert_int_eq(fm_params_content_length(max, &n), FM_OK);
    ck_assert_uint_eq(n, SIZE_MAX / 2);
    ck_assert_int_eq(fm_params_content_length(over, &n), FM_EINVAL);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        n = 1;
        ck_assert_msg(fm_params_content_length(refused[i], &n) == FM_EINVAL, "%s", refused[i]);
        ck_assert_uint_eq(n, 0);
    }
}
END_TEST

static Suite *params_suite(void)
{
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, scan);
    tcase_add_test(tc, content_length);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(params_suite)
