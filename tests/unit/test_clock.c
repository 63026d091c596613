/*
 * test_clock.c - unit tests for lib/base/clock.c: the shape of generated RFC 3339
 * timestamps and the parser's accepted forms, exact epoch values (checked
 * against `date -u -d ... +%s`) and refusals.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#include "helpers.h"

/* Checks text against a shape where 'd' is a decimal digit and anything else is literal. */
static int shape_ok(const char *text, const char *shape)
{
    if (strlen(text) != strlen(shape))
        return 0;
    for (size_t i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == 'd' ? !(text[i] >= '0' && text[i] <= '9') : text[i] != shape[i])
            return 0;
    }
    return 1;
}

static void expect_time(const char *text, int64_t want)
{
    int64_t got = 0x5a5a5a5a;

    ck_assert_msg(fm_clock_parse_rfc3339(text, &got) == 0, "refused \"%s\"", text);
    ck_assert_msg(got == want, "\"%s\": got %lld, want %lld", text, (long long)got,
                  (long long)want);
}

static void expect_refused(const char *text)
{
    int64_t got;

    ck_assert_msg(fm_clock_parse_rfc3339(text, &got) == FM_EPARSE, "accepted \"%s\"", text);
}

START_TEST(format_shapes)
{
    char buf[FM_RFC3339_MAX];
    int64_t parsed;
    time_t before = time(NULL);

    ck_assert_ptr_eq(fm_clock_rfc3339(buf, 1), buf);
    ck_assert_msg(shape_ok(buf, "dddd-dd-ddTdd:dd:dd.dddZ"), "with ms: \"%s\"", buf);
    ck_assert_int_eq(fm_clock_parse_rfc3339(buf, &parsed), 0);
    ck_assert_int_ge(parsed, (int64_t)before - 1);
    ck_assert_int_le(parsed, (int64_t)time(NULL) + 1);

    ck_assert_ptr_eq(fm_clock_rfc3339(buf, 0), buf);
    ck_assert_msg(shape_ok(buf, "dddd-dd-ddTdd:dd:ddZ"), "without ms: \"%s\"", buf);
    ck_assert_int_eq(fm_clock_parse_rfc3339(buf, &parsed), 0);
    ck_assert_int_ge(parsed, (int64_t)before - 1);
    ck_assert_int_le(parsed, (int64_t)time(NULL) + 1);
}
END_TEST

/* CLOCK_REALTIME in milliseconds, truncated as fm_clock_now_ms truncates. */
static int64_t realtime_ms(void)
{
    struct timespec ts;

    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Bracketed by CLOCK_REALTIME samples taken just before and after, not by
 * time(): glibc's time() reads the coarse clock, which can still show the
 * previous second when the fine one has passed it, so an upper bound of
 * (time() + 1) s failed now and then. Many rounds, so that a clock with
 * only second resolution is caught unless every round falls in a ms ending 000.
 */
START_TEST(now_ms)
{
    for (int i = 0; i < 1000; i++) {
        int64_t before = realtime_ms();
        int64_t ms = fm_clock_now_ms();
        int64_t after = realtime_ms();

        ck_assert_int_ge(ms, before);
        ck_assert_int_le(ms, after);
    }
}
END_TEST

/* A given Unix-ms time (a Redis TIME), milliseconds kept, before 1970 too. */
START_TEST(format_given_ms)
{
    char buf[FM_RFC3339_MAX];

    ck_assert_str_eq(fm_clock_rfc3339_ms(buf, 0), "1970-01-01T00:00:00.000Z");
    ck_assert_str_eq(fm_clock_rfc3339_ms(buf, 1700000000123), "2023-11-14T22:13:20.123Z");
    ck_assert_str_eq(fm_clock_rfc3339_ms(buf, 951825600999), "2000-02-29T12:00:00.999Z");
    ck_assert_str_eq(fm_clock_rfc3339_ms(buf, -1), "1969-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(parse_utc)
{
    expect_time("1970-01-01T00:00:00Z", 0);
    expect_time("2026-11-29T00:00:00Z", 1795910400);
    expect_time("2030-01-01T00:00:00Z", 1893456000);
    expect_time("2000-01-01T00:00:00Z", 946684800);
    expect_time("2000-02-29T12:34:56Z", 951827696);
    expect_time("9999-12-31T23:59:59Z", 253402300799);
    expect_time("1969-12-31T23:59:59Z", -1);
    expect_time("0001-01-01T00:00:00Z", -62135596800);
    /* RFC 3339 section 5.6 allows lower-case t and z. */
    expect_time("2026-11-29t00:00:00z", 1795910400);
}
END_TEST

START_TEST(parse_offsets)
{
    expect_time("2026-11-29T06:40:00+02:00", 1795927200);
    expect_time("2026-11-29T06:40:00-05:30", 1795954200);
    expect_time("2026-11-29T00:00:00+00:00", 1795910400);
    expect_time("2026-11-29T00:00:00-00:00", 1795910400);
    expect_time("2026-11-29T02:00:00+02:00", 1795910400);
    expect_time("2026-11-28T23:59:00-00:01", 1795910400);
}
END_TEST

START_TEST(parse_bare_date)
{
    expect_time("2026-11-29", 1795910400);
    expect_time("1970-01-01", 0);
    expect_time("2024-02-29", 1709164800);
}
END_TEST

START_TEST(parse_fraction_dropped)
{
    expect_time("2026-11-29T00:00:00.1Z", 1795910400);
    expect_time("2026-11-29T00:00:00.999Z", 1795910400);
    expect_time("2026-11-29T00:00:00.123456789Z", 1795910400);
    expect_time("2026-11-29T06:40:00.5+02:00", 1795927200);
}
END_TEST

START_TEST(parse_leap_days)
{
    expect_time("2024-02-29T00:00:00Z", 1709164800);
    expect_time("2000-02-29", 951782400);
    expect_refused("2023-02-29");
    expect_refused("1900-02-29");
    expect_refused("2100-02-29T00:00:00Z");
    expect_refused("2024-02-30");
    expect_refused("2026-04-31");
    expect_refused("2026-06-31T00:00:00Z");
    expect_time("2026-12-31", 1798675200);
}
END_TEST

START_TEST(parse_leap_second)
{
    /* :60 is a valid RFC 3339 second; it counts as the next second. */
    expect_time("2016-12-31T23:59:60Z", 1483228800);
    expect_refused("2016-12-31T23:59:61Z");
}
END_TEST

START_TEST(parse_junk)
{
    int64_t out;

    ck_assert_int_eq(fm_clock_parse_rfc3339(NULL, &out), FM_EPARSE);
    expect_refused("");
    expect_refused("abc");
    expect_refused("2026");
    expect_refused("2026-11");
    expect_refused("2026-1-29");
    expect_refused("2026-11-9");
    expect_refused("26-11-29");
    expect_refused("+2026-11-29");
    expect_refused(" 2026-11-29");
    expect_refused("2026-11-29 ");
    expect_refused("2026/11/29");
    expect_refused("2026-13-01");
    expect_refused("2026-00-10");
    expect_refused("2026-01-00");
    expect_refused("2026-01-32");
    expect_refused("2026-11-29T");
    expect_refused("2026-11-29T00:00");
    expect_refused("2026-11-29T00:00Z");
    expect_refused("2026-11-29T00:00:00");
    expect_refused("2026-11-29 00:00:00Z");
    expect_refused("2026-11-29T24:00:00Z");
    expect_refused("2026-11-29T00:60:00Z");
    expect_refused("2026-11-29T0:00:00Z");
    expect_refused("2026-11-29T00:00:00.Z");
    expect_refused("2026-11-29T00:00:00,5Z");
    expect_refused("2026-11-29T00:00:00ZZ");
    expect_refused("2026-11-29T00:00:00Z junk");
    expect_refused("2026-11-29T00:00:00+0200");
    expect_refused("2026-11-29T00:00:00+02");
    expect_refused("2026-11-29T00:00:00+24:00");
    expect_refused("2026-11-29T00:00:00+02:60");
    expect_refused("2026-11-29T00:00:00UTC");
    expect_refused("2026-11-29T-1:00:00Z");
    expect_refused("2026-11-29Z");
}
END_TEST

static Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, format_shapes);
    tcase_add_test(tc, now_ms);
    tcase_add_test(tc, format_given_ms);
    tcase_add_test(tc, parse_utc);
    tcase_add_test(tc, parse_offsets);
    tcase_add_test(tc, parse_bare_date);
    tcase_add_test(tc, parse_fraction_dropped);
    tcase_add_test(tc, parse_leap_days);
    tcase_add_test(tc, parse_leap_second);
    tcase_add_test(tc, parse_junk);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(clock_suite)
