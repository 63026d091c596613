/*
 * test_pace.c - the minimum transfer rate (lib/base/pace.c): the grace at
 * the start, the deadline bytes push, the bounded credit, a trickle cut off.
 */
#include "pace.h"
#include "helpers.h"

#include <check.h>

START_TEST(grace_then_cut)
{
    fm_pace p;

    fm_pace_start(&p, 1000, 10000, 5000);
    ck_assert_int_eq(fm_pace_left_ms(&p, 5000), 10000);
    ck_assert_int_gt(fm_pace_left_ms(&p, 14999), 0);
    ck_assert_int_le(fm_pace_left_ms(&p, 15000), 0); /* nothing moved for the grace */
}
END_TEST

START_TEST(bytes_push_the_deadline_within_the_grace)
{
    fm_pace p;

    fm_pace_start(&p, 1000, 10000, 0);
    fm_pace_add(&p, 500, 1000); /* 0.5 s earned */
    ck_assert_int_eq(fm_pace_left_ms(&p, 1000), 9500);
    fm_pace_add(&p, 0, 2000);
    ck_assert_int_eq(fm_pace_left_ms(&p, 2000), 8500);
    /* The credit is bounded: a fast start earns no more than the grace. */
    fm_pace_add(&p, 1000000000, 2100);
    ck_assert_int_eq(fm_pace_left_ms(&p, 2100), 10000);
    ck_assert_int_le(fm_pace_left_ms(&p, 12100), 0);
}
END_TEST

/* At half the minimum rate the transfer is cut after about twice the grace. */
START_TEST(trickle_is_cut)
{
    fm_pace p;
    int64_t t = 0;

    fm_pace_start(&p, 1000, 10000, 0);
    while (fm_pace_left_ms(&p, t) > 0 && t < 100000) {
        t += 100;
        fm_pace_add(&p, 50, t); /* 500 bytes a second */
    }
    ck_assert_int_ge(t, 19000);
    ck_assert_int_le(t, 21000);
    fm_pace_start(&p, 0, 1000, 0); /* a rate of 0 is taken as 1 byte a second */
    fm_pace_add(&p, 1, 0);
    ck_assert_int_eq(fm_pace_left_ms(&p, 0), 1000);
}
END_TEST

/* At the minimum rate or above, a transfer of any length goes on. */
START_TEST(fast_enough_goes_on)
{
    fm_pace p;

    fm_pace_start(&p, 1000, 10000, 0);
    for (int64_t t = 100; t <= 3600000; t += 100) {
        fm_pace_add(&p, 100, t);
        ck_assert_int_gt(fm_pace_left_ms(&p, t), 0);
    }
}
END_TEST

/*
 * A high minimum (64 MiB/s) and chunks that each earn under a millisecond:
 * their sum still earns its time, so a transfer at the minimum goes on.
 */
START_TEST(small_amounts_add_up)
{
    fm_pace p;
    int64_t t = 0;

    fm_pace_start(&p, 64 << 20, 10000, 0);
    for (int i = 0; i < 61440; i++) { /* 64 KiB every ms: 62.5 MiB/s, just under */
        fm_pace_add(&p, 65536, ++t);
        ck_assert_int_gt(fm_pace_left_ms(&p, t), 0);
    }
    /* 61.44 s at 62.5/64 of the minimum: 1.44 s of the credit spent, to within a ms. */
    ck_assert_int_ge(fm_pace_left_ms(&p, t), 10000 - 1440 - 1);
    ck_assert_int_le(fm_pace_left_ms(&p, t), 10000 - 1440 + 1);
}
END_TEST

static Suite *pace_suite(void)
{
    Suite *s = suite_create("pace");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, grace_then_cut);
    tcase_add_test(tc, bytes_push_the_deadline_within_the_grace);
    tcase_add_test(tc, trickle_is_cut);
    tcase_add_test(tc, fast_enough_goes_on);
    tcase_add_test(tc, small_amounts_add_up);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(pace_suite)
