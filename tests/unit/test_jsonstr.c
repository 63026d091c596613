/*
 * test_jsonstr.c - unit tests for lib/base/jsonstr.c: escapes, UTF-8
 * validation, and cuts that never split an escape or a UTF-8 sequence.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"
#include "jsonstr.h"

typedef struct quote_case {
    const char *src;
    size_t n, cap;
    const char *want;
} quote_case;

static const quote_case cases[] = {
    /* Escapes. */
    {"plain", 5, 64, "\"plain\""},
    {"a\"b\\c", 5, 64, "\"a\\\"b\\\\c\""},
    {"\n\t\x01\x7f", 4, 64, "\"\\u000a\\u0009\\u0001\\u007f\""},
    {"a\0b", 3, 64, "\"a\\u0000b\""},
    {"", 0, 64, "\"\""},
    /* Valid UTF-8 is copied. */
    {"caf\xc3\xa9", 5, 64, "\"caf\xc3\xa9\""},
    {"\xf0\x9f\x98\x80", 4, 64, "\"\xf0\x9f\x98\x80\""},
    /* Overlong, surrogate, past U+10FFFF, truncated, lone continuation: escaped bytewise. */
    {"\xc0\xaf", 2, 64, "\"\\u00c0\\u00af\""},
    {"\xed\xa0\x80", 3, 64, "\"\\u00ed\\u00a0\\u0080\""},
    {"\xf4\x90\x80\x80", 4, 64, "\"\\u00f4\\u0090\\u0080\\u0080\""},
    {"\xe2\x82", 2, 64, "\"\\u00e2\\u0082\""},
    {"\x80", 1, 64, "\"\\u0080\""},
    /* cap 8: at most 5 bytes between the quotes, never half an escape or sequence. */
    {"abcdefgh", 8, 8, "\"abcde\""},
    {"abcd\"", 5, 8, "\"abcd\""},
    {"ab\x01", 3, 8, "\"ab\""},
    {"abc\xc3\xa9", 5, 8, "\"abc\xc3\xa9\""},
    {"abcd\xc3\xa9", 6, 8, "\"abcd\""},
    {"abc", 3, 3, "\"\""},
    {"abc", 3, 2, ""},
};

/*
 * One sample of each class of character a reader may take for a line break
 * or that reorders text on screen, with its escape; then neighbours that are
 * plain text and must be copied.
 */
typedef struct cp_case {
    const char *utf8;
    const char *want; /* quoted output */
    int unsafe;
} cp_case;

static const cp_case cp_cases[] = {
    {"\x0b", "\"\\u000b\"", 1},         /* C0: vertical tab (splitlines breaks) */
    {"\x1e", "\"\\u001e\"", 1},         /* C0: record separator (splitlines breaks) */
    {"\x7f", "\"\\u007f\"", 1},         /* DEL */
    {"\xc2\x80", "\"\\u0080\"", 1},     /* C1, first */
    {"\xc2\x85", "\"\\u0085\"", 1},     /* NEL (splitlines breaks) */
    {"\xc2\x9f", "\"\\u009f\"", 1},     /* C1, last */
    {"\xe2\x80\xa8", "\"\\u2028\"", 1}, /* LINE SEPARATOR */
    {"\xe2\x80\xa9", "\"\\u2029\"", 1}, /* PARAGRAPH SEPARATOR */
    {"\xe2\x80\xaa", "\"\\u202a\"", 1}, /* LRE */
    {"\xe2\x80\xae", "\"\\u202e\"", 1}, /* RLO */
    {"\xe2\x81\xa6", "\"\\u2066\"", 1}, /* LRI */
    {"\xe2\x81\xa9", "\"\\u2069\"", 1}, /* PDI */
    {"\xe2\x80\x8e", "\"\\u200e\"", 1}, /* LRM */
    {"\xe2\x80\x8f", "\"\\u200f\"", 1}, /* RLM */
    {"\xd8\x9c", "\"\\u061c\"", 1},     /* ARABIC LETTER MARK */
    {"~", "\"~\"", 0},
    {"\xc2\xa0", "\"\xc2\xa0\"", 0},                 /* U+00A0, after C1 */
    {"\xd8\x9b", "\"\xd8\x9b\"", 0},                 /* U+061B */
    {"\xe2\x80\x8d", "\"\xe2\x80\x8d\"", 0},         /* U+200D */
    {"\xe2\x80\xa7", "\"\xe2\x80\xa7\"", 0},         /* U+2027 */
    {"\xe2\x80\xaf", "\"\xe2\x80\xaf\"", 0},         /* U+202F */
    {"\xe2\x81\xa5", "\"\xe2\x81\xa5\"", 0},         /* U+2065 */
    {"\xe2\x81\xaa", "\"\xe2\x81\xaa\"", 0},         /* U+206A */
    {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", 0}, /* U+1F600 */
};

START_TEST(code_point_classes)
{
    const cp_case *c = &cp_cases[_i];
    size_t n = strlen(c->utf8);
    char dst[64];
    uint32_t cp;
    bool unsafe;

    ck_assert_uint_eq(fm_jsonstr_char(c->utf8, n, &unsafe, &cp), n);
    ck_assert_int_eq(unsafe, c->unsafe);
    ck_assert_uint_eq(fm_jsonstr_quote(dst, sizeof dst, c->utf8, n), strlen(c->want));
    ck_assert_str_eq(dst, c->want);
}
END_TEST

START_TEST(char_invalid_and_empty)
{
    uint32_t cp = 7;
    bool unsafe = false;

    ck_assert_uint_eq(fm_jsonstr_char("\x85", 1, &unsafe, &cp), 0);
    ck_assert(unsafe);
    ck_assert_uint_eq(cp, 0);
    ck_assert_uint_eq(fm_jsonstr_char("\xe2\x80", 2, &unsafe, &cp), 0);
    ck_assert_uint_eq(fm_jsonstr_char("", 0, &unsafe, &cp), 0);
}
END_TEST

START_TEST(quote_cases)
{
    const quote_case *c = &cases[_i];
    char dst[64];

    memset(dst, 'x', sizeof dst);
    ck_assert_uint_eq(fm_jsonstr_quote(dst, c->cap, c->src, c->n), strlen(c->want));
    ck_assert_str_eq(dst, c->want);
}
END_TEST

typedef struct utf8_case {
    const char *s;
    size_t n;
    bool valid;
} utf8_case;

static const utf8_case utf8_cases[] = {
    {"", 0, true},
    {"plain ascii", 11, true},
    {"a\0b", 3, true},
    {"caf\xc3\xa9", 5, true},
    {"\xe2\x80\xa8", 3, true},              /* U+2028 is valid (escaping is the log's business) */
    {"\xef\xbf\xbf", 3, true},              /* U+FFFF */
    {"\xf0\x90\x80\x80", 4, true},          /* U+10000 */
    {"\xf4\x8f\xbf\xbf", 4, true},          /* U+10FFFF */
    {"\xc0\x80", 2, false},                 /* overlong NUL */
    {"\xc1\xbf", 2, false},                 /* overlong */
    {"\xe0\x9f\xbf", 3, false},             /* overlong, three bytes */
    {"\xf0\x8f\xbf\xbf", 4, false},         /* overlong, four bytes */
    {"\xed\xa0\x80", 3, false},             /* U+D800 */
    {"\xed\xbf\xbf", 3, false},             /* U+DFFF */
    {"\xed\xa0\xbd\xed\xb8\x80", 6, false}, /* a surrogate pair encoded as CESU-8 */
    {"\xf4\x90\x80\x80", 4, false},         /* U+110000 */
    {"\xf5\x80\x80\x80", 4, false},
    {"\xff", 1, false},
    {"\x80", 1, false},        /* lone continuation */
    {"ab\xe2\x82", 4, false},  /* truncated at the end */
    {"\xe2\x82x", 3, false},   /* truncated before a byte */
    {"caf\xc3\xa9", 4, false}, /* cut by n */
};

START_TEST(utf8_valid_cases)
{
    const utf8_case *c = &utf8_cases[_i];

    ck_assert_msg(fm_jsonstr_utf8_valid(c->s, c->n) == c->valid, "case %d", _i);
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

    tcase_add_loop_test(tc, quote_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, always_valid_json);
    tcase_add_loop_test(tc, utf8_valid_cases, 0, (int)(sizeof utf8_cases / sizeof utf8_cases[0]));
    tcase_add_loop_test(tc, code_point_classes, 0, (int)(sizeof cp_cases / sizeof cp_cases[0]));
    tcase_add_test(tc, char_invalid_and_empty);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(jsonstr_suite)
