/*
 * test_taskbody.c - the body of POST /v1/tasks as JSON text (RFC 8259):
 * what cJSON would let through is refused before it could be stored, and
 * the error that echoes a field name stays valid UTF-8; a metadata number
 * must be one JSON can hold, and a metadata name is given once. (Field validation
 * and the stored record are tested with Redis in test_tasks.c.) The spec
 * holds the immutable fields only, in their order; the worker routes'
 * bodies (claim, heartbeat, complete) are checked as strictly.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The spec: the immutable fields, in this order; no lifecycle field. */
START_TEST(spec_fields)
{
    static const char *const want[] = {"id",       "job_name",  "args",       "priority",
                                       "user",     "commit_id", "experiment", "datasets",
                                       "metadata", "created_at"};
    char err[256];
    cJSON *spec = NULL;
    const cJSON *f;
    size_t i = 0;

    ck_assert_int_eq(fm_taskbody_build(BODY("{\"job_name\":\"x\",\"datasets\":[]}"), "alice", &spec,
                                       err, sizeof(err)),
                     FM_OK);
    cJSON_ArrayForEach(f, spec)
    {
        ck_assert_uint_lt(i, sizeof(want) / sizeof(want[0]));
        ck_assert_str_eq(f->string, want[i++]);
    }
    ck_assert_uint_eq(i, sizeof(want) / sizeof(want[0]));
    ck_assert_uint_eq(
        strlen(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "created_at"))), 24);
    cJSON_Delete(spec);
}
END_TEST

static fm_err claim(const char *body, char name[FM_TASKBODY_WORKER_MAX], char *err)
{
    return fm_taskbody_claim(body, body != NULL ? strlen(body) : 0, name, err, 256);
}

START_TEST(claim_body)
{
    char name[FM_TASKBODY_WORKER_MAX], err[256], body[128];

    ck_assert_int_eq(claim(NULL, name, err), FM_OK);
    ck_assert_str_eq(name, "");
    ck_assert_int_eq(claim("{}", name, err), FM_OK);
    ck_assert_str_eq(name, "");
    ck_assert_int_eq(claim("{\"worker\":\"gpu-1.rack:2\"}", name, err), FM_OK);
    ck_assert_str_eq(name, "gpu-1.rack:2");
    (void)snprintf(body, sizeof(body), "{\"worker\":\"%063d\"}", 0);
    ck_assert_int_eq(claim(body, name, err), FM_OK);
    ck_assert_uint_eq(strlen(name), 63);
    (void)snprintf(body, sizeof(body), "{\"worker\":\"%064d\"}", 0);
    ck_assert_int_eq(claim(body, name, err), FM_EINVAL);
    ck_assert_str_eq(err, "worker: must be 1-63 characters of A-Z a-z 0-9 _ . : -");
    ck_assert_str_eq(name, "");
    ck_assert_int_eq(claim("{\"worker\":\"a/b\"}", name, err), FM_EINVAL);
    ck_assert_int_eq(claim("{\"worker\":\"\"}", name, err), FM_EINVAL);
    ck_assert_int_eq(claim("{\"worker\":7}", name, err), FM_EINVAL);
    ck_assert_int_eq(claim("{\"job_name\":\"x\"}", name, err), FM_EINVAL);
    ck_assert_str_eq(err, "unknown field \"job_name\"");
    ck_assert_int_eq(claim("{\"worker\":\"a\",\"worker\":\"b\"}", name, err), FM_EINVAL);
    ck_assert_str_eq(err, "duplicate field");
    ck_assert_int_eq(claim("[]", name, err), FM_EINVAL);
    ck_assert_int_eq(claim("{\"worker\":\"a\"} x", name, err), FM_EPARSE);
}
END_TEST

static fm_err heartbeat(const char *body, double *progress, char **metrics, char *err)
{
    return fm_taskbody_heartbeat(body, body != NULL ? strlen(body) : 0, progress, metrics, err,
                                 256);
}

START_TEST(heartbeat_body)
{
    char err[256], body[8192];
    char *metrics = (char *)&metrics;
    double progress = 7;
    size_t used;

    ck_assert_int_eq(heartbeat(NULL, &progress, &metrics, err), FM_OK);
    ck_assert(progress == -1);
    ck_assert_ptr_null(metrics);
    ck_assert_int_eq(heartbeat("{\"progress\":12.5,\"metrics\":{\"loss\":0.5,\"val/acc\":1e2}}",
                               &progress, &metrics, err),
                     FM_OK);
    ck_assert(progress == 12.5);
    ck_assert_str_eq(metrics, "{\"loss\":0.5,\"val/acc\":100}");
    free(metrics);
    ck_assert_int_eq(heartbeat("{\"progress\":0}", &progress, &metrics, err), FM_OK);
    ck_assert(progress == 0);
    ck_assert_int_eq(heartbeat("{\"progress\":100}", &progress, &metrics, err), FM_OK);
    ck_assert_int_eq(heartbeat("{\"progress\":100.5}", &progress, &metrics, err), FM_EINVAL);
    ck_assert_str_eq(err, "progress: must be a number from 0 to 100");
    ck_assert(progress == -1);
    ck_assert_int_eq(heartbeat("{\"progress\":-1}", &progress, &metrics, err), FM_EINVAL);
    ck_assert_int_eq(heartbeat("{\"progress\":\"50\"}", &progress, &metrics, err), FM_EINVAL);
    ck_assert_int_eq(heartbeat("{\"metrics\":{\"loss\":\"low\"}}", &progress, &metrics, err),
                     FM_EINVAL);
    ck_assert_ptr_null(metrics);
    ck_assert_int_eq(heartbeat("{\"metrics\":{\"loss\":1e999}}", &progress, &metrics, err),
                     FM_EINVAL);
    ck_assert_int_eq(heartbeat("{\"metrics\":{\"a b\":1}}", &progress, &metrics, err), FM_EINVAL);
    ck_assert_int_eq(heartbeat("{\"metrics\":{\"a\":1,\"a\":2}}", &progress, &metrics, err),
                     FM_EINVAL);
    ck_assert_int_eq(heartbeat("{\"metrics\":[1]}", &progress, &metrics, err), FM_EINVAL);
    ck_assert_int_eq(heartbeat("{\"status\":\"x\"}", &progress, &metrics, err), FM_EINVAL);
    /* 32 names fit, 33 do not. */
    used = (size_t)snprintf(body, sizeof(body), "{\"metrics\":{");
    for (int i = 0; i < 33; i++)
        used += (size_t)snprintf(body + used, sizeof(body) - used, "%s\"m%d\":1", i ? "," : "", i);
    (void)snprintf(body + used, sizeof(body) - used, "}}");
    ck_assert_int_eq(heartbeat(body, &progress, &metrics, err), FM_EINVAL);
    (void)snprintf(strrchr(body, ','), 4, "}}");
    ck_assert_int_eq(heartbeat(body, &progress, &metrics, err), FM_OK);
    free(metrics);
    /* The longest metrics there can be render within 4096 bytes. */
    used = (size_t)snprintf(body, sizeof(body), "{\"metrics\":{");
    for (int i = 0; i < 32; i++)
        used += (size_t)snprintf(body + used, sizeof(body) - used,
                                 "%s\"%062d%02d\":-2.2250738585072014e-308", i ? "," : "", 0, i);
    (void)snprintf(body + used, sizeof(body) - used, "}}");
    ck_assert_int_eq(heartbeat(body, &progress, &metrics, err), FM_OK);
    ck_assert_uint_le(strlen(metrics), 4096);
    free(metrics);
}
END_TEST

static fm_err complete(const char *body, const char **status, char **error, char *err)
{
    return fm_taskbody_complete(body, body != NULL ? strlen(body) : 0, status, error, err, 256);
}

START_TEST(complete_body)
{
    char err[256], body[4200];
    const char *status;
    char *error = (char *)&error;

    ck_assert_int_eq(complete("{\"status\":\"completed\"}", &status, &error, err), FM_OK);
    ck_assert_str_eq(status, "completed");
    ck_assert_ptr_null(error);
    ck_assert_int_eq(complete("{\"status\":\"failed\",\"error\":\"exit 2\"}", &status, &error, err),
                     FM_OK);
    ck_assert_str_eq(status, "failed");
    ck_assert_str_eq(error, "exit 2");
    free(error);
    ck_assert_int_eq(complete("{\"status\":\"cancelled\"}", &status, &error, err), FM_OK);
    ck_assert_str_eq(status, "cancelled");
    ck_assert_int_eq(complete(NULL, &status, &error, err), FM_EPARSE);
    ck_assert_str_eq(err, "request body is empty");
    ck_assert_int_eq(complete("{}", &status, &error, err), FM_EINVAL);
    ck_assert_str_eq(err, "status: must be completed, failed or cancelled");
    ck_assert_ptr_null(status);
    ck_assert_int_eq(complete("{\"status\":\"running\"}", &status, &error, err), FM_EINVAL);
    ck_assert_int_eq(complete("{\"status\":\"completed\",\"error\":\"x\"}", &status, &error, err),
                     FM_EINVAL);
    ck_assert_str_eq(err,
                     "error: must be a string of at most 4096 bytes, with failed or cancelled");
    ck_assert_ptr_null(status);
    ck_assert_ptr_null(error);
    ck_assert_int_eq(complete("{\"status\":\"failed\",\"error\":5}", &status, &error, err),
                     FM_EINVAL);
    ck_assert_int_eq(complete("{\"status\":\"failed\",\"worker\":\"w\"}", &status, &error, err),
                     FM_EINVAL);
    (void)snprintf(body, sizeof(body), "{\"status\":\"failed\",\"error\":\"%04096d\"}", 0);
    ck_assert_int_eq(complete(body, &status, &error, err), FM_OK);
    ck_assert_uint_eq(strlen(error), 4096);
    free(error);
    (void)snprintf(body, sizeof(body), "{\"status\":\"failed\",\"error\":\"%04097d\"}", 0);
    ck_assert_int_eq(complete(body, &status, &error, err), FM_EINVAL);
    /* JSON text rules hold here too. */
    ck_assert_int_eq(
        complete("{\"status\":\"failed\",\"error\":\"a\\u0000b\"}", &status, &error, err),
        FM_EPARSE);
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
    tcase_add_test(tc, spec_fields);
    tcase_add_test(tc, claim_body);
    tcase_add_test(tc, heartbeat_body);
    tcase_add_test(tc, complete_body);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(taskbody_suite)
