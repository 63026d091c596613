/*
 * test_jsonstr.c - unit tests for lib/base/jsonstr.c: escapes, UTF-8
 * validation, and cuts that never split an escape or a UTF-8 sequence.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "helpers.h"
#include "jsonstr.h"

static void expect_quote(const char *src, size_t n, size_t cap, const char *want)
{
    char dst[64];

    ck_assert_uint_le(cap, sizeof dst);
    ck_assert_uint_eq(fm_jsonstr_quote(dst, cap, src, n), strlen(want));
    ck_assert_str_eq(dst, want);
}

START_TEST(escapes)
{
    expect_quote("plain", 5, 64, "\"plain\"");
    expect_quote("a\"b\\c", 5, 64, "\"a\\\"b\\\\c\"");
    expect_quote("\n\t\x01\x7f", 4, 64, "\"\\u000a\\u0009\\u0001\\u007f\"");
    expect_quote("a\0b", 3, 64, "\"a\\u0000b\"");
    expect_quote("", 0, 64, "\"\"");
}
END_TEST

START_TEST(utf8)
{
    expect_quote("caf\xc3\xa9", 5, 64, "\"caf\xc3\xa9\"");
    expect_quote("\xf0\x9f\x98\x80", 4, 64, "\"\xf0\x9f\x98\x80\"");
    /* Overlong, surrogate, past U+10FFFF, truncated, lone continuation: escaped bytewise. */
    expect_quote("\xc0\xaf", 2, 64, "\"\\u00c0\\u00af\"");
    expect_quote("\xed\xa0\x80", 3, 64, "\"\\u00ed\\u00a0\\u0080\"");
    expect_quote("\xf4\x90\x80\x80", 4, 64, "\"\\u00f4\\u0090\\u0080\\u0080\"");
    expect_quote("\xe2\x82", 2, 64, "\"\\u00e2\\u0082\"");
    expect_quote("\x80", 1, 64, "\"\\u0080\"");
}
END_TEST

START_TEST(cuts_whole)
{
    /* cap 8: at most 5 bytes between the quotes. */
    expect_quote("abcdefgh", 8, 8, "\"abcde\"");
    expect_quote("abcd\"", 5, 8, "\"abcd\"");             /* \" would need 6 */
    expect_quote("ab\x01", 3, 8, "\"ab\"");               /* \u0001 would need 8 */
    expect_quote("abc\xc3\xa9", 5, 8, "\"abc\xc3\xa9\""); /* fits exactly */
    expect_quote("abcd\xc3\xa9", 6, 8, "\"abcd\"");       /* a 2-byte sequence is not split */
    expect_quote("abc", 3, 3, "\"\"");
    {
        char d[2] = "x";

        ck_assert_uint_eq(fm_jsonstr_quote(d, 2, "abc", 3), 0);
        ck_assert_str_eq(d, "");
    }
}
END_TEST

/* Whatever the bytes, the output parses as one JSON string. */
START_TEST(always_valid_json)
{
    char src[32], dst[64];

    for (int round = 0; round < 2000; round++) {
        cJSON *v;

        randombytes_buf(src, sizeof src);
        (void)fm_jsonstr_quote(dst, 10 + (size_t)(round % 50), src, sizeof src);
        v = cJSON_Parse(dst);
        ck_assert_msg(cJSON_IsString(v), "not a JSON string: %s", dst);
        cJSON_Delete(v);
    }
}
END_TEST

static Suite *jsonstr_suite(void)
{
    Suite *s = suite_create("jsonstr");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, escapes);
    tcase_add_test(tc, utf8);
    tcase_add_test(tc, cuts_whole);
    tcase_add_test(tc, always_valid_json);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(jsonstr_suite)
