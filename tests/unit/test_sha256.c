/*
 * test_sha256.c - unit tests for lib/base/sha256.c: the FIPS 180-4 example
 * messages (NIST's "SHA-256 examples": "abc", the 448-bit two-block message,
 * a million 'a'), the empty message, parts equal to the one-shot digest
 * however the message is cut, and agreement with libsodium's independent
 * implementation for every length from 0 to 1,100 bytes (across the 55/56/64
 * padding boundaries) and again after a fork.
 */
#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sha256.h"

#include "helpers.h"

static void expect_hex(const unsigned char d[FM_SHA256_BYTES], const char *want)
{
    char hex[2 * FM_SHA256_BYTES + 1];

    (void)sodium_bin2hex(hex, sizeof hex, d, FM_SHA256_BYTES);
    ck_assert_str_eq(hex, want);
}

START_TEST(fips_examples)
{
    unsigned char d[FM_SHA256_BYTES];
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char *million = malloc(1000000);

    ck_assert_int_eq(fm_sha256(d, "abc", 3), FM_OK);
    expect_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(fm_sha256(d, two, strlen(two)), FM_OK);
    expect_hex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    ck_assert_int_eq(fm_sha256(d, "", 0), FM_OK);
    expect_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_ptr_nonnull(million);
    memset(million, 'a', 1000000);
    ck_assert_int_eq(fm_sha256(d, million, 1000000), FM_OK);
    expect_hex(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}
END_TEST

START_TEST(parts_are_the_concatenation)
{
    const char *msg = "fetchml-key-id:0123456789abcdef0123456789abcdef";
    size_t len = strlen(msg);
    unsigned char whole[FM_SHA256_BYTES], d[FM_SHA256_BYTES];

    ck_assert_int_eq(fm_sha256(whole, msg, len), FM_OK);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b += 7) {
            const fm_sha256_part parts[] = {{msg, a}, {msg + a, b - a}, {msg + b, len - b}};

            ck_assert_int_eq(fm_sha256_parts(d, parts, 3), FM_OK);
            ck_assert_mem_eq(d, whole, FM_SHA256_BYTES);
        }
    }
    ck_assert_int_eq(fm_sha256_parts(d, NULL, 1), FM_ESYS);
    ck_assert_int_eq(fm_sha256_parts(d, (const fm_sha256_part[]){{msg, 1}}, 0), FM_ESYS);
}
END_TEST

/* A stream gives the one-shot digest however the message comes; misuse is an error, not a crash. */
START_TEST(stream_is_the_one_shot)
{
    unsigned char buf[5000], whole[FM_SHA256_BYTES], d[FM_SHA256_BYTES];
    fm_sha256_stream s = {0};

    randombytes_buf(buf, sizeof buf);
    ck_assert_int_eq(fm_sha256(whole, buf, sizeof buf), FM_OK);
    for (size_t step = 1; step <= 4097; step = step * 3 + 1) {
        ck_assert_int_eq(fm_sha256_begin(&s), FM_OK);
        for (size_t at = 0; at < sizeof buf; at += step)
            ck_assert_int_eq(fm_sha256_add(&s, buf + at, at + step <= sizeof buf ? step : sizeof buf - at), FM_OK);
        ck_assert_int_eq(fm_sha256_end(&s, d), FM_OK);
        ck_assert_mem_eq(d, whole, FM_SHA256_BYTES);
        ck_assert_ptr_null(s.ctx);
    }
    /* Not begun (or ended): add and end fail; drop is a no-op; begin again restarts. */
    ck_assert_int_eq(fm_sha256_add(&s, buf, 1), FM_ESYS);
    ck_assert_int_eq(fm_sha256_end(&s, d), FM_ESYS);
    fm_sha256_drop(&s);
    ck_assert_int_eq(fm_sha256_begin(&s), FM_OK);
    ck_assert_int_eq(fm_sha256_add(&s, "x", 1), FM_OK);
    ck_assert_int_eq(fm_sha256_begin(&s), FM_OK); /* drops the first */
    ck_assert_int_eq(fm_sha256_add(&s, "abc", 3), FM_OK);
    ck_assert_int_eq(fm_sha256_end(&s, d), FM_OK);
    ck_assert_int_eq(fm_sha256(whole, "abc", 3), FM_OK);
    ck_assert_mem_eq(d, whole, FM_SHA256_BYTES);
    ck_assert_int_eq(fm_sha256_begin(&s), FM_OK);
    fm_sha256_drop(&s);
    ck_assert_ptr_null(s.ctx);
}
END_TEST

static void agree_with_libsodium(void)
{
    unsigned char buf[1100], d[FM_SHA256_BYTES], want[crypto_hash_sha256_BYTES];

    randombytes_buf(buf, sizeof buf);
    for (size_t n = 0; n <= sizeof buf; n++) {
        ck_assert_int_eq(fm_sha256(d, buf, n), FM_OK);
        ck_assert_int_eq(crypto_hash_sha256(want, buf, n), 0);
        ck_assert_msg(memcmp(d, want, sizeof want) == 0, "length %zu differs", n);
    }
}

START_TEST(agrees_with_libsodium_and_after_fork)
{
    pid_t pid;
    int status;

    agree_with_libsodium(); /* the context now exists: the child inherits it */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        agree_with_libsodium();
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    agree_with_libsodium();
}
END_TEST

static Suite *sha256_suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, fips_examples);
    tcase_add_test(tc, parts_are_the_concatenation);
    tcase_add_test(tc, stream_is_the_one_shot);
    tcase_add_test(tc, agrees_with_libsodium_and_after_fork);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(sha256_suite)
