/*
 * test_response.c - unit tests for lib/base/response.c: header lines (CR/LF
 * refused, length and table limits), JSON bodies, the {error, code, trace_id} error
 * body parsed back with cJSON, and RFC 9110 reason phrases.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "response.h"

#include "helpers.h"

static fm_response resp;

static void setup(void)
{
    memset(&resp, 0, sizeof(resp));
}

static void teardown(void)
{
    fm_response_reset(&resp);
}

/* The body as a NUL-terminated copy, checking body_len on the way. */
static cJSON *parse_body(void)
{
    cJSON *j;

    ck_assert_ptr_nonnull(resp.body);
    ck_assert_uint_eq(resp.body_len, strlen(resp.body));
    j = cJSON_ParseWithLength(resp.body, resp.body_len);
    ck_assert_ptr_nonnull(j);
    return j;
}

static void expect_error_body(const char *code, const char *message, const char *trace_id)
{
    cJSON *j = parse_body();

    ck_assert(cJSON_IsObject(j));
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error")), message);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "code")), code);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "trace_id")),
                     trace_id);
    cJSON_Delete(j);
}

START_TEST(header_lines)
{
    ck_assert_int_eq(fm_response_header(&resp, "Retry-After: %u", 7u), 0);
    ck_assert_int_eq(fm_response_header(&resp, "%s", "X-Plain: yes"), 0);
    ck_assert_uint_eq(resp.nheaders, 2);
    ck_assert_str_eq(resp.headers[0], "Retry-After: 7");
    ck_assert_str_eq(resp.headers[1], "X-Plain: yes");
}
END_TEST

START_TEST(header_injection_refused)
{
    ck_assert_int_eq(fm_response_header(&resp, "X-A: %s", "ok"), 0);
    ck_assert_int_eq(fm_response_header(&resp, "X-B: %s", "a\r\nSet-Cookie: evil=1"), FM_EINVAL);
    ck_assert_int_eq(fm_response_header(&resp, "X-B: %s", "a\nSet-Cookie: evil=1"), FM_EINVAL);
    ck_assert_int_eq(fm_response_header(&resp, "X-B: %s", "a\rb"), FM_EINVAL);
    ck_assert_int_eq(fm_response_header(&resp, "X-B: ok\r\n"), FM_EINVAL);
    ck_assert_int_eq(fm_response_header(&resp, "X-B: %s", "\n"), FM_EINVAL);
    ck_assert_uint_eq(resp.nheaders, 1);
    ck_assert_str_eq(resp.headers[0], "X-A: ok");
    /* The refused line leaves nothing behind in the next slot. */
    ck_assert_str_eq(resp.headers[1], "");
    ck_assert_int_eq(fm_response_header(&resp, "X-C: %d", 3), 0);
    ck_assert_uint_eq(resp.nheaders, 2);
    ck_assert_str_eq(resp.headers[1], "X-C: 3");
}
END_TEST

START_TEST(header_too_long)
{
    char value[FM_RESPONSE_HEADER_MAX + 8];

    /* "X: " is 3 bytes; the line must fit FM_RESPONSE_HEADER_MAX - 1 characters. */
    memset(value, 'v', sizeof(value));
    value[FM_RESPONSE_HEADER_MAX - 1 - 3] = '\0';
    ck_assert_int_eq(fm_response_header(&resp, "X: %s", value), 0);
    ck_assert_uint_eq(strlen(resp.headers[0]), FM_RESPONSE_HEADER_MAX - 1);

    value[FM_RESPONSE_HEADER_MAX - 1 - 3] = 'v';
    value[FM_RESPONSE_HEADER_MAX - 3] = '\0';
    ck_assert_int_eq(fm_response_header(&resp, "X: %s", value), FM_EINVAL);
    ck_assert_uint_eq(resp.nheaders, 1);
    ck_assert_str_eq(resp.headers[1], "");
}
END_TEST

START_TEST(header_table_full)
{
    for (int i = 0; i < FM_RESPONSE_MAX_HEADERS; i++)
        ck_assert_int_eq(fm_response_header(&resp, "X-N: %d", i), 0);
    ck_assert_uint_eq(resp.nheaders, FM_RESPONSE_MAX_HEADERS);
    ck_assert_int_eq(fm_response_header(&resp, "X-Over: 1"), FM_EINVAL);
    ck_assert_uint_eq(resp.nheaders, FM_RESPONSE_MAX_HEADERS);
    ck_assert_str_eq(resp.headers[0], "X-N: 0");
    ck_assert_str_eq(resp.headers[FM_RESPONSE_MAX_HEADERS - 1], "X-N: 11");
}
END_TEST

START_TEST(json_body)
{
    cJSON *o = cJSON_CreateObject();

    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(cJSON_AddNumberToObject(o, "a", 1));
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(o, "b", "x\"y"));
    ck_assert_int_eq(fm_response_json(&resp, 201, o), 0);
    ck_assert_int_eq(resp.status, 201);
    ck_assert_str_eq(resp.body, "{\"a\":1,\"b\":\"x\\\"y\"}");
    ck_assert_uint_eq(resp.body_len, strlen("{\"a\":1,\"b\":\"x\\\"y\"}"));

    /* The caller still owns json; a second body replaces the first. */
    ck_assert_ptr_nonnull(cJSON_AddTrueToObject(o, "c"));
    ck_assert_int_eq(fm_response_json(&resp, 200, o), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "{\"a\":1,\"b\":\"x\\\"y\",\"c\":true}");
    cJSON_Delete(o);
}
END_TEST

START_TEST(json_take)
{
    char *first = strdup("{\"a\":1}"), *second = strdup("{\"b\":[]}");

    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(second);
    ck_assert_int_eq(fm_response_header(&resp, "X-A: 1"), 0);
    fm_response_json_take(&resp, 201, first, strlen(first));
    ck_assert_int_eq(resp.status, 201);
    ck_assert_ptr_eq(resp.body, first);
    ck_assert_uint_eq(resp.body_len, 7);
    /* A second body replaces (and frees) the first; headers stay. */
    fm_response_json_take(&resp, 200, second, strlen(second));
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "{\"b\":[]}");
    ck_assert_uint_eq(resp.body_len, 8);
    ck_assert_uint_eq(resp.nheaders, 1);
}
END_TEST

START_TEST(error_body)
{
    ck_assert_int_eq(fm_response_header(&resp, "WWW-Authenticate: Bearer"), 0);
    fm_response_error(&resp, 401, "UNAUTHORIZED", "API key required", "0123abcd");
    ck_assert_int_eq(resp.status, 401);
    expect_error_body("UNAUTHORIZED", "API key required", "0123abcd");
    /* Headers already added stay. */
    ck_assert_uint_eq(resp.nheaders, 1);
    ck_assert_str_eq(resp.headers[0], "WWW-Authenticate: Bearer");
}
END_TEST

START_TEST(error_replaces_body)
{
    cJSON *o = cJSON_CreateObject();

    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(o, "secret-ish", "handler output"));
    ck_assert_int_eq(fm_response_json(&resp, 200, o), 0);
    cJSON_Delete(o);
    fm_response_error(&resp, 500, "INTERNAL", "internal error", "t-1");
    ck_assert_int_eq(resp.status, 500);
    ck_assert_ptr_null(strstr(resp.body, "handler output"));
    expect_error_body("INTERNAL", "internal error", "t-1");
}
END_TEST

START_TEST(error_body_escaping)
{
    /* Quotes, newlines and control bytes are escaped, so the body stays one JSON object. */
    fm_response_error(&resp, 400, "BAD_REQUEST", "bad \"x\"\n\x01}", NULL);
    ck_assert_ptr_null(strchr(resp.body, '\n'));
    ck_assert_ptr_null(strchr(resp.body, '\x01'));
    expect_error_body("BAD_REQUEST", "bad \"x\"\n\x01}", "");
}
END_TEST

START_TEST(reset_clears)
{
    ck_assert_int_eq(fm_response_header(&resp, "X-A: 1"), 0);
    fm_response_error(&resp, 404, "NOT_FOUND", "not found", "t");
    fm_response_reset(&resp);
    ck_assert_int_eq(resp.status, 0);
    ck_assert_uint_eq(resp.nheaders, 0);
    ck_assert_ptr_null(resp.body);
    ck_assert_uint_eq(resp.body_len, 0);
    ck_assert_str_eq(resp.headers[0], "");
    /* Reusable after reset. */
    fm_response_error(&resp, 503, "SERVICE_UNAVAILABLE", "try later", "t2");
    expect_error_body("SERVICE_UNAVAILABLE", "try later", "t2");
}
END_TEST

START_TEST(reason_phrases)
{
    static const struct {
        int status;
        const char *reason;
    } want[] = {
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {413, "Content Too Large"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
        {0, "Unknown"},
        {418, "Unknown"},
        {999, "Unknown"},
        {-1, "Unknown"},
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_str_eq(fm_response_reason(want[i].status), want[i].reason);
}
END_TEST

static Suite *response_suite(void)
{
    Suite *s = suite_create("response");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, header_lines);
    tcase_add_test(tc, header_injection_refused);
    tcase_add_test(tc, header_too_long);
    tcase_add_test(tc, header_table_full);
    tcase_add_test(tc, json_body);
    tcase_add_test(tc, json_take);
    tcase_add_test(tc, error_body);
    tcase_add_test(tc, error_replaces_body);
    tcase_add_test(tc, error_body_escaping);
    tcase_add_test(tc, reset_clears);
    tcase_add_test(tc, reason_phrases);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(response_suite)
