/*
 * test_ipacl.c - CIDR parsing (accepted and refused entries, exact messages)
 * and allow-list matching, including IPv4-mapped IPv6 on both sides.
 */
#include "ipacl.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "helpers.h"

static const struct good_case {
    const char *text;
    int family;
    uint8_t addr[16];
    unsigned prefix;
} good_cases[] = {
    {"10.0.0.0/8", AF_INET, {10, 0, 0, 0}, 8},
    {"127.0.0.1", AF_INET, {127, 0, 0, 1}, 32},
    {"192.168.0.0/16", AF_INET, {192, 168, 0, 0}, 16},
    {"0.0.0.0/0", AF_INET, {0}, 0},
    {"255.255.255.255/32", AF_INET, {255, 255, 255, 255}, 32},
    {"0.0.0.0", AF_INET, {0}, 32},
    {"10.1.2.128/25", AF_INET, {10, 1, 2, 128}, 25},
    {"::1", AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
    {"fe80::/10", AF_INET6, {0xfe, 0x80}, 10},
    {"2001:DB8::/32", AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32},
    {"::/0", AF_INET6, {0}, 0},
    {"::ffff:10.0.0.0/104", AF_INET, {10, 0, 0, 0}, 8},
    {"::ffff:127.0.0.1", AF_INET, {127, 0, 0, 1}, 32},
    {"::ffff:0:0/96", AF_INET, {0}, 0},
    {"::ffff:a00:0/104", AF_INET, {10, 0, 0, 0}, 8},
};

START_TEST(test_parse_good)
{
    const struct good_case *gc = &good_cases[_i];
    fm_cidr c;
    char err[256] = "untouched";

    memset(&c, 0x5a, sizeof(c));
    ck_assert_msg(fm_ipacl_parse_cidr(gc->text, &c, err, sizeof(err)) == FM_OK, "%s: %s", gc->text,
                  err);
    ck_assert_int_eq(c.family, gc->family);
    ck_assert_uint_eq(c.prefix, gc->prefix);
    ck_assert_mem_eq(c.addr, gc->addr, gc->family == AF_INET ? 4 : 16);
    if (gc->family == AF_INET) {
        static const uint8_t zero[12];
        ck_assert_mem_eq(c.addr + 4, zero, sizeof(zero));
    }
}
END_TEST

static const struct bad_case {
    const char *text;
    const char *err;
} bad_cases[] = {
    {"010.0.0.1", "invalid CIDR \"010.0.0.1\": leading zero in IPv4 octet"},
    {"10.0.0.0/33", "invalid CIDR \"10.0.0.0/33\": prefix must be 0..32"},
    {"10.0.0.0/", "invalid CIDR \"10.0.0.0/\": empty prefix"},
    {"10.0.0.0/+8",
     "invalid CIDR \"10.0.0.0/+8\": prefix must be decimal without sign or leading zero"},
    {"10.0.0.0/08",
     "invalid CIDR \"10.0.0.0/08\": prefix must be decimal without sign or leading zero"},
    {"10.0.0.0/-0",
     "invalid CIDR \"10.0.0.0/-0\": prefix must be decimal without sign or leading zero"},
    {"10.0.0.0/8/8",
     "invalid CIDR \"10.0.0.0/8/8\": prefix must be decimal without sign or leading zero"},
    {"10.0.0.0/99999999999999999999999", "invalid CIDR \"10.0.0.0/99999999999999999999999\": "
                                         "prefix must be 0..32"},
    {"1.2.3.4.5", "invalid CIDR \"1.2.3.4.5\": IPv4 address must have 4 octets"},
    {"1.2.3.4.", "invalid CIDR \"1.2.3.4.\": IPv4 address must have 4 octets"},
    {"1.2.3", "invalid CIDR \"1.2.3\": IPv4 address must have 4 octets"},
    {"1..2.3", "invalid CIDR \"1..2.3\": empty IPv4 octet"},
    {"256.1.1.1", "invalid CIDR \"256.1.1.1\": IPv4 octet out of range 0..255"},
    {"1.2.3.1000", "invalid CIDR \"1.2.3.1000\": IPv4 octet out of range 0..255"},
    {" 1.2.3.4", "invalid CIDR \" 1.2.3.4\": white space not allowed"},
    {"1.2.3.4\n", "invalid CIDR \"1.2.3.4?\": white space not allowed"},
    {"1.2.3.4/8", "invalid CIDR \"1.2.3.4/8\": host bits set below /8"},
    {"10.0.0.1/8", "invalid CIDR \"10.0.0.1/8\": host bits set below /8"},
    {"2001:db8::/129", "invalid CIDR \"2001:db8::/129\": prefix must be 0..128"},
    {"fe80::1/10", "invalid CIDR \"fe80::1/10\": host bits set below /10"},
    {"::ffff:10.0.0.0/80", "invalid CIDR \"::ffff:10.0.0.0/80\": host bits set below /80"},
    {"::ffff:010.0.0.1", "invalid CIDR \"::ffff:010.0.0.1\": leading zero in IPv4 octet"},
    {"fe80::1%eth0", "invalid CIDR \"fe80::1%eth0\": not an IPv6 address"},
    {"[::1]", "invalid CIDR \"[::1]\": not an IPv6 address"},
    {"1:2:3:4:5:6:7:8:9", "invalid CIDR \"1:2:3:4:5:6:7:8:9\": not an IPv6 address"},
    {"gggg::", "invalid CIDR \"gggg::\": not an IPv6 address"},
    {"localhost", "invalid CIDR \"localhost\": not an IP address"},
    {"", "invalid CIDR \"\": empty address"},
    {"/8", "invalid CIDR \"/8\": empty address"},
    {"0x0a.0.0.1", "invalid CIDR \"0x0a.0.0.1\": not an IP address"},
    {"1.2.3.4\"x", "invalid CIDR \"1.2.3.4?x\": not an IP address"},
    {"1111:2222:3333:4444:5555:6666:7777:8888/128/xx",
     "invalid CIDR \"1111:2222:3333:4444:5555:6666:7777:8888/128/xx\": "
     "prefix must be decimal without sign or leading zero"},
    {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee",
     "invalid CIDR \"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaa...\": too long"},
};

START_TEST(test_parse_bad)
{
    const struct bad_case *bc = &bad_cases[_i];
    fm_cidr c, before;
    char err[256];

    memset(&c, 0x5a, sizeof(c));
    before = c;
    ck_assert_int_eq(fm_ipacl_parse_cidr(bc->text, &c, err, sizeof(err)), FM_EINVAL);
    ck_assert_str_eq(err, bc->err);
    ck_assert_mem_eq(&c, &before, sizeof(c));
}
END_TEST

START_TEST(test_parse_small_err_buffer)
{
    fm_cidr c;
    char err[8];

    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(fm_ipacl_parse_cidr("10.0.0.0/33", &c, err, sizeof(err)), FM_EINVAL);
    ck_assert_str_eq(err, "invalid");
    ck_assert_int_eq(fm_ipacl_parse_cidr("10.0.0.0/33", &c, NULL, 0), FM_EINVAL);
    ck_assert_int_eq(fm_ipacl_parse_cidr(NULL, &c, err, sizeof(err)), FM_EINVAL);
}
END_TEST

static void build(fm_ipacl *list, const char *const *entries, size_t n)
{
    char err[256];

    memset(list, 0, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        fm_cidr c;

        ck_assert_msg(fm_ipacl_parse_cidr(entries[i], &c, err, sizeof(err)) == FM_OK, "%s", err);
        ck_assert_int_eq(fm_ipacl_add(list, &c), FM_OK);
    }
    ck_assert_uint_eq(list->count, n);
}

static const struct match_case {
    const char *addr;
    bool expect;
} spec_list_cases[] = {
    {"10.0.0.1", true},
    {"10.255.255.255", true},
    {"11.0.0.0", false},
    {"9.255.255.255", false},
    {"192.168.3.4", true},
    {"192.169.0.0", false},
    {"127.0.0.1", true},
    {"127.0.0.2", false},
    {"::1", true},
    {"::2", false},
    {"2001:db8:1::5", true},
    {"2001:db9::", false},
    {"::ffff:127.0.0.1", true},
    {"::FFFF:10.9.8.7", true},
    {"::ffff:a09:807", true},
    {"::ffff:127.0.0.2", false},
    {"::127.0.0.1", false},
    {"0:0:0:0:0:0:0:1", true},
    {"", false},
    {"garbage", false},
    {"10.0.0.1 ", false},
    {" 10.0.0.1", false},
    {"010.0.0.1", false},
    {"10.0.0.1/8", false},
    {"10.0.0", false},
    {"[::1]", false},
    {"::1%lo", false},
    {"10.0.0.1:8080", false},
};

START_TEST(test_match_list)
{
    static const char *const entries[] = {"10.0.0.0/8", "192.168.0.0/16", "127.0.0.1", "::1",
                                          "2001:db8::/32"};
    const struct match_case *mc = &spec_list_cases[_i];
    fm_ipacl list;

    build(&list, entries, sizeof(entries) / sizeof(entries[0]));
    ck_assert_msg(fm_ipacl_match(&list, mc->addr) == mc->expect, "%s", mc->addr);
    fm_ipacl_free(&list);
    ck_assert_ptr_null(list.entries);
    ck_assert_uint_eq(list.count, 0);
}
END_TEST

START_TEST(test_match_mapped_entry)
{
    static const char *const entries[] = {"::ffff:10.0.0.0/104"};
    fm_ipacl list;

    build(&list, entries, 1);
    ck_assert(fm_ipacl_match(&list, "10.1.2.3"));
    ck_assert(fm_ipacl_match(&list, "::ffff:10.1.2.3"));
    ck_assert(!fm_ipacl_match(&list, "11.0.0.0"));
    ck_assert(!fm_ipacl_match(&list, "::a01:203"));
    fm_ipacl_free(&list);
}
END_TEST

START_TEST(test_match_zero_prefix_is_per_family)
{
    static const char *const v4_all[] = {"0.0.0.0/0"};
    static const char *const v6_all[] = {"::/0"};
    fm_ipacl list;

    build(&list, v4_all, 1);
    ck_assert(fm_ipacl_match(&list, "1.2.3.4"));
    ck_assert(fm_ipacl_match(&list, "255.255.255.255"));
    ck_assert(fm_ipacl_match(&list, "::ffff:8.8.8.8"));
    ck_assert(!fm_ipacl_match(&list, "::1"));
    ck_assert(!fm_ipacl_match(&list, "2001:db8::1"));
    fm_ipacl_free(&list);

    build(&list, v6_all, 1);
    ck_assert(fm_ipacl_match(&list, "::1"));
    ck_assert(fm_ipacl_match(&list, "fe80::1"));
    ck_assert(!fm_ipacl_match(&list, "1.2.3.4"));
    ck_assert(!fm_ipacl_match(&list, "::ffff:1.2.3.4"));
    fm_ipacl_free(&list);
}
END_TEST

START_TEST(test_match_prefix_edges)
{
    static const char *const entries[] = {"10.1.2.128/25", "fe80::/10"};
    fm_ipacl list;

    build(&list, entries, 2);
    ck_assert(fm_ipacl_match(&list, "10.1.2.128"));
    ck_assert(fm_ipacl_match(&list, "10.1.2.255"));
    ck_assert(!fm_ipacl_match(&list, "10.1.2.127"));
    ck_assert(fm_ipacl_match(&list, "fe80::1"));
    ck_assert(fm_ipacl_match(&list, "febf:ffff::"));
    ck_assert(!fm_ipacl_match(&list, "fec0::"));
    ck_assert(!fm_ipacl_match(&list, "fe7f::"));
    fm_ipacl_free(&list);
}
END_TEST

START_TEST(test_match_empty_and_null)
{
    fm_ipacl list = {0};

    ck_assert(!fm_ipacl_match(&list, "127.0.0.1"));
    ck_assert(!fm_ipacl_match(&list, "::1"));
    ck_assert(!fm_ipacl_match(NULL, "127.0.0.1"));
    fm_ipacl_free(&list);
    fm_ipacl_free(NULL);

    static const char *const entries[] = {"0.0.0.0/0"};
    build(&list, entries, 1);
    ck_assert(!fm_ipacl_match(&list, NULL));
    fm_ipacl_free(&list);
}
END_TEST

START_TEST(test_add_many)
{
    fm_ipacl list = {0};
    fm_cidr c;
    char text[32], err[128];

    for (unsigned i = 0; i < 256; i++) {
        (void)snprintf(text, sizeof(text), "10.%u.0.0/16", i);
        ck_assert_int_eq(fm_ipacl_parse_cidr(text, &c, err, sizeof(err)), FM_OK);
        ck_assert_int_eq(fm_ipacl_add(&list, &c), FM_OK);
    }
    ck_assert_uint_eq(list.count, 256);
    ck_assert(fm_ipacl_match(&list, "10.255.1.1"));
    ck_assert(fm_ipacl_match(&list, "10.0.255.255"));
    ck_assert(!fm_ipacl_match(&list, "11.0.0.1"));
    fm_ipacl_free(&list);
}
END_TEST

static Suite *ipacl_suite(void)
{
    Suite *s = suite_create("ipacl");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_parse_good, 0, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
    tcase_add_loop_test(tc, test_parse_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_parse_small_err_buffer);
    tcase_add_loop_test(tc, test_match_list, 0,
                        (int)(sizeof(spec_list_cases) / sizeof(spec_list_cases[0])));
    tcase_add_test(tc, test_match_mapped_entry);
    tcase_add_test(tc, test_match_zero_prefix_is_per_family);
    tcase_add_test(tc, test_match_prefix_edges);
    tcase_add_test(tc, test_match_empty_and_null);
    tcase_add_test(tc, test_add_many);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(ipacl_suite)
