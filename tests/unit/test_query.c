/*
 * test_query.c - strict query string parsing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#include "helpers.h"

static const char *const allowed[] = {"status", "limit", "offset", NULL};

static void expect_ok(const char *qs, const char *name, const char *want)
{
    fm_query q;
    char err[160] = "";

    ck_assert_msg(fm_query_parse(qs, allowed, &q, err, sizeof(err)) == 0, "%s: %s", qs, err);
    if (want == NULL)
        ck_assert_ptr_null(fm_query_get(&q, name));
    else
        ck_assert_str_eq(fm_query_get(&q, name), want);
}

static void expect_err(const char *qs, const char *want)
{
    fm_query q;
    char err[160] = "";

    ck_assert_msg(fm_query_parse(qs, allowed, &q, err, sizeof(err)) == FM_EINVAL, "accepted %s",
                  qs);
    ck_assert_str_eq(err, want);
}

START_TEST(decodes)
{
    expect_ok(NULL, "limit", NULL);
    expect_ok("", "limit", NULL);
    expect_ok("limit=10", "limit", "10");
    expect_ok("limit=%31%30", "limit", "10");
    expect_ok("%6c%69%6D%69%74=7", "limit", "7");
    expect_ok("status=queued&limit=5", "status", "queued");
    expect_ok("status=queued&limit=5", "limit", "5");
    expect_ok("status=a+b", "status", "a b");
    expect_ok("status=", "status", "");
    expect_ok("limit=1&&offset=2", "offset", "2");
    expect_ok("limit=1&", "limit", "1");
    expect_ok("status=x=y", "status", "x=y");
    expect_ok("status=caf%C3%A9", "status", "caf\xc3\xa9");
    expect_ok("status=caf\xc3\xa9", "status", "caf\xc3\xa9");
    expect_ok("status=%F0%9F%98%80", "status", "\xf0\x9f\x98\x80");
}
END_TEST

/* Values are served back in JSON: what is not UTF-8 (RFC 3629) is refused, escaped or raw. */
START_TEST(refuses_invalid_utf8)
{
    static const char *const values[] = {
        "%C0%AF",       /* overlong '/' */
        "%E0%80%AF",    /* overlong, three bytes */
        "%ED%A0%80",    /* surrogate U+D800 */
        "%ED%BF%BF",    /* surrogate U+DFFF */
        "%F4%90%80%80", /* past U+10FFFF */
        "%F8%88%80%80%80",
        "a%E2%82",      /* truncated */
        "%80",          /* lone continuation byte */
        "%FF",          /* never in UTF-8 */
        "\xc3",         /* raw, truncated */
        "\xed\xa0\x80", /* raw surrogate */
    };
    char qs[64];

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        (void)snprintf(qs, sizeof(qs), "status=%s", values[i]);
        expect_err(qs, "malformed value for query parameter \"status\"");
    }
    expect_err("st%C3atus=1", "malformed query parameter name");
}
END_TEST

START_TEST(refuses)
{
    expect_err("limit=1&limit=2", "query parameter \"limit\" given more than once");
    expect_err("limit=1&%6cimit=2", "query parameter \"limit\" given more than once");
    expect_err("api_key=abc",
               "unknown query parameter \"api_key\" (allowed: status, limit, offset)");
    expect_err("limit", "malformed value for query parameter \"limit\"");
    expect_err("=5", "malformed query parameter name");
    expect_err("limit=%", "malformed value for query parameter \"limit\"");
    expect_err("limit=%4", "malformed value for query parameter \"limit\"");
    expect_err("limit=%zz", "malformed value for query parameter \"limit\"");
    expect_err("limit=%00", "malformed value for query parameter \"limit\"");
    expect_err("limit=a%0Ab", "malformed value for query parameter \"limit\"");
    expect_err("li%00mit=1", "malformed query parameter name");
    expect_err("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", "unknown query parameter \"a\" (allowed: "
                                                      "status, limit, offset)");
}
END_TEST

START_TEST(bounds)
{
    char big[600];
    fm_query q;
    char err[160];
    static const char *const many[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", NULL};

    memset(big, 'x', sizeof(big));
    memcpy(big, "status=", 7);
    big[sizeof(big) - 1] = '\0';
    expect_err(big, "malformed value for query parameter \"status\"");
    ck_assert_int_eq(fm_query_parse("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8", many, &q, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(q.n, 8);
    ck_assert_int_eq(
        fm_query_parse("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", many, &q, err, sizeof(err)),
        FM_EINVAL);
    ck_assert_str_eq(err, "too many query parameters");
}
END_TEST

static Suite *query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, decodes);
    tcase_add_test(tc, refuses);
    tcase_add_test(tc, refuses_invalid_utf8);
    tcase_add_test(tc, bounds);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(query_suite)
