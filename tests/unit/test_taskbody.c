/*
 * test_taskbody.c - the body of POST /v1/tasks as JSON text (RFC 8259):
 * what cJSON would let through is refused before it could be stored, and
 * the error that echoes a field name stays valid UTF-8; a metadata number
 * must be one JSON can hold, and a metadata name is given once. (Field validation
 * and the stored record are tested with Redis in test_tasks.c.)
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "jsonstr.h"
#include "taskbody.h"

#include "helpers.h"

static fm_err build(const char *body, size_t len, char *err, size_t errlen)
{
    cJSON *task = NULL;
    fm_err rc = fm_taskbody_build(body, len, "alice", &task, err, errlen);

    ck_assert(rc == FM_OK ? task != NULL : task == NULL);
    cJSON_Delete(task);
    return rc;
}

#define BODY(s) s, sizeof(s) - 1

START_TEST(not_json_text)
{
    static const struct {
        const char *body;
        size_t len;
        bool utf8; /* refused as not UTF-8, before any JSON is looked at */
    } refused[] = {
        {BODY("{\"job_name\":\"x\",\"args\":\"a\nb\"}"), false},    /* raw newline in a string */
        {BODY("{\"job_name\":\"x\",\"args\":\"a\tb\"}"), false},    /* raw tab in a string */
        {BODY("{\"job_name\":\"x\",\"args\":\"a\x01z\"}"), false},  /* raw control byte */
        {BODY("{\"job_nam\xfc\":\"x\"}"), true},                    /* not UTF-8 */
        {BODY("{\"job_name\":\"x\",\"args\":\"\xc0\xaf\"}"), true}, /* overlong */
        {BODY("{\"job_name\":\"x\",\"args\":\"\xed\xa0\x80\"}"), true}, /* a surrogate */
        {BODY("\x01{\"job_name\":\"x\"}"), false}, /* cJSON skips it as white space */
        {BODY("{\"job_name\":\"x\"}\x0b"), false},
        {BODY("{\"job_name\":\"tr\\u0000unc\"}"), false},
        {BODY("{\"job_name\":\"tr\0unc\"}"), false},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(build(refused[i].body, refused[i].len, err, sizeof(err)) == FM_EPARSE,
                      "case %zu accepted", i);
        ck_assert_str_eq(err,
                         refused[i].utf8
                             ? "request body is not valid UTF-8"
                             : "request body is not valid JSON (one object, no NUL characters)");
    }
}
END_TEST

START_TEST(json_text)
{
    static const char *const accepted[] = {
        "\t{\r\n\"job_name\" : \"x\" }\n",
        "{\"job_name\":\"x\",\"args\":\"a\\nb\\t\\u0001\\\\\\\"\"}",
        "{\"job_name\":\"x\",\"metadata\":{\"note\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}}",
        "{\"job_name\":\"x\",\"args\":\"\\\\u0000 is text here\"}",
    };
    char err[256];

    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        ck_assert_msg(build(accepted[i], strlen(accepted[i]), err, sizeof(err)) == FM_OK,
                      "case %zu: %s", i, err);
}
END_TEST

/* 63 ASCII bytes then a 2-byte character: the 64-byte echo must not keep half of it. */
START_TEST(unknown_field_echo_is_utf8)
{
    char body[128], name[80], err[256];
    int n;

    memset(name, 'a', 63);
    memcpy(name + 63, "\xc3\xa9", 3);
    n = snprintf(body, sizeof(body), "{\"job_name\":\"x\",\"%s\":1}", name);
    ck_assert_int_eq(build(body, (size_t)n, err, sizeof(err)), FM_EINVAL);
    ck_assert(fm_jsonstr_utf8_valid(err, strlen(err)));
    ck_assert_int_eq(strncmp(err, "unknown field \"aaa", 18), 0);
    ck_assert_ptr_null(strchr(err, '\xc3'));
}
END_TEST

/* A number too large for a double would be stored, and answered, as null. */
START_TEST(metadata_number_finite)
{
    char err[256];

    ck_assert_int_eq(
        build(BODY("{\"job_name\":\"x\",\"metadata\":{\"seed\":1e999}}"), err, sizeof(err)),
        FM_EINVAL);
    ck_assert_int_eq(
        build(BODY("{\"job_name\":\"x\",\"metadata\":{\"seed\":-1e999}}"), err, sizeof(err)),
        FM_EINVAL);
    ck_assert_int_eq(
        build(BODY("{\"job_name\":\"x\",\"metadata\":{\"seed\":1e308}}"), err, sizeof(err)), FM_OK);
}
END_TEST

/* Readers differ on which of two values of one name they take: refused, as at the top level. */
START_TEST(metadata_name_once)
{
    char err[256];

    ck_assert_int_eq(
        build(BODY("{\"job_name\":\"x\",\"metadata\":{\"e\":\"a\",\"f\":1,\"e\":\"b\"}}"), err,
              sizeof(err)),
        FM_EINVAL);
    ck_assert_str_eq(err,
                     "metadata: must be an object of at most 64 string, number or boolean values");
    ck_assert_int_eq(
        build(BODY("{\"job_name\":\"x\",\"metadata\":{\"e\":\"a\",\"E\":1}}"), err, sizeof(err)),
        FM_OK);
}
END_TEST

START_TEST(utf8_valid)
{
    ck_assert(fm_jsonstr_utf8_valid("", 0));
    ck_assert(fm_jsonstr_utf8_valid("caf\xc3\xa9", 5));
    ck_assert(!fm_jsonstr_utf8_valid("caf\xc3", 4));
    ck_assert(!fm_jsonstr_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
}
END_TEST

static Suite *taskbody_suite(void)
{
    Suite *s = suite_create("taskbody");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, not_json_text);
    tcase_add_test(tc, json_text);
    tcase_add_test(tc, unknown_field_echo_is_utf8);
    tcase_add_test(tc, metadata_number_finite);
    tcase_add_test(tc, metadata_name_once);
    tcase_add_test(tc, utf8_valid);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(taskbody_suite)
