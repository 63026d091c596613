/*
 * test_auth.c - unit tests for lib/app/auth.c: both credential headers, every
 * refusal status, expiry at its exact boundary, the key fingerprint and the
 * SHA-256 of a known vector. The keys live in a real config file loaded with
 * fm_config_load, as the server loads them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "config.h"
#include "helpers.h"

#define K_ALICE1 "alice-key-one-0123456789"
#define K_ALICE2 "alice-key-two-9876543210"
#define K_BOB "bob-key-abcdefghijklmnop"
#define K_DAVE "dave-key-expired-long-ago"
#define K_ERIN "erin-key-expires-in-2030"
#define ERIN_EXPIRES 1893456000 /* 2030-01-01T00:00:00Z, `date -u -d ... +%s` */
#define NOW 1795910400          /* 2026-11-29T00:00:00Z */

static th_config conf;
static fm_config *cfg;

static void setup(void)
{
    char a1[65], a2[65], b[65], d[65], e[65];

    th_config_init(&conf, "test_auth");
    th_sha256_hex(K_ALICE1, a1);
    th_sha256_hex(K_ALICE2, a2);
    th_sha256_hex(K_BOB, b);
    th_sha256_hex(K_DAVE, d);
    th_sha256_hex(K_ERIN, e);
    th_config_set(&conf, "auth",
                  "  api_keys:\n"
                  "    alice:\n"
                  "      keys:\n"
                  "        - { hash: \"%s\", label: first }\n"
                  "        - { hash: \"%s\", label: second }\n"
                  "    bob:\n"
                  "      hash: \"%s\"\n"
                  "    dave:\n"
                  "      keys:\n"
                  "        - { hash: \"%s\", expires: \"2000-01-01T00:00:00Z\" }\n"
                  "    erin:\n"
                  "      keys:\n"
                  "        - { hash: \"%s\", expires: \"2030-01-01T00:00:00Z\" }\n",
                  a1, a2, b, d, e);
    cfg = th_config_load(&conf);
}

static void teardown(void)
{
    fm_config_free(cfg);
    cfg = NULL;
    th_config_free(&conf);
}

/* Authenticates and checks the status; returns the result for further checks. */
static fm_auth_result auth(const char *x_api_key, const char *authorization, fm_auth_status want)
{
    fm_auth_result r;

    memset(&r, 0xA5, sizeof(r));
    ck_assert_int_eq(fm_auth_authenticate(cfg, x_api_key, authorization, NOW, &r), FM_OK);
    ck_assert_int_eq(r.status, want);
    return r;
}

static void expect_user(const char *x_api_key, const char *authorization, const char *user)
{
    fm_auth_result r = auth(x_api_key, authorization, FM_AUTH_OK);

    ck_assert_ptr_nonnull(r.user);
    ck_assert_ptr_nonnull(r.key);
    ck_assert_str_eq(r.user->name, user);
    ck_assert_msg(th_is_lower_hex(r.key_id, FM_KEY_ID_LEN), "key_id \"%s\"", r.key_id);
}

/* A refusal before any key is looked at: no user, no key, no fingerprint. */
static void expect_refused_early(const char *x_api_key, const char *authorization,
                                 fm_auth_status want)
{
    fm_auth_result r = auth(x_api_key, authorization, want);

    ck_assert_ptr_null(r.user);
    ck_assert_ptr_null(r.key);
    ck_assert_str_eq(r.key_id, "");
}

START_TEST(x_api_key_ok)
{
    expect_user(K_ALICE1, NULL, "alice");
    expect_user(K_BOB, NULL, "bob");
    expect_user("  " K_BOB "\t", NULL, "bob");
}
END_TEST

START_TEST(rotation_keys_both_work)
{
    fm_auth_result r1 = auth(K_ALICE1, NULL, FM_AUTH_OK);
    fm_auth_result r2 = auth(K_ALICE2, NULL, FM_AUTH_OK);

    ck_assert_ptr_eq(r1.user, r2.user);
    ck_assert_ptr_ne(r1.key, r2.key);
    ck_assert_str_eq(r1.key->label, "first");
    ck_assert_str_eq(r2.key->label, "second");
}
END_TEST

START_TEST(bearer_ok)
{
    expect_user(NULL, "Bearer " K_BOB, "bob");
    expect_user(NULL, "bearer " K_BOB, "bob");
    expect_user(NULL, "BEARER " K_BOB, "bob");
    expect_user(NULL, "bEaReR " K_BOB, "bob");
    expect_user(NULL, "  Bearer    " K_BOB "   ", "bob");
    expect_user(NULL, "Bearer\t" K_BOB, "bob");
}
END_TEST

START_TEST(bearer_malformed)
{
    expect_refused_early(NULL, "Basic YWxpY2U6c2VjcmV0", FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Basic " K_BOB, FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Bearer", FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Bearer    ", FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Bearer" K_BOB, FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Token " K_BOB, FM_AUTH_MALFORMED);
    expect_refused_early(NULL, K_BOB, FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Bearer " K_BOB " extra", FM_AUTH_MALFORMED);
    /* A valid X-API-Key does not rescue a bad Authorization header. */
    expect_refused_early(K_BOB, "Basic YWxpY2U6c2VjcmV0", FM_AUTH_MALFORMED);
}
END_TEST

START_TEST(both_headers)
{
    expect_user(K_BOB, "Bearer " K_BOB, "bob");
    expect_user(" " K_BOB, "bearer  " K_BOB " ", "bob");
    expect_refused_early(K_BOB, "Bearer " K_ALICE1, FM_AUTH_MALFORMED);
    expect_refused_early(K_ALICE1, "Bearer " K_ALICE2, FM_AUTH_MALFORMED);
    expect_refused_early(K_BOB, "Bearer " K_BOB "x", FM_AUTH_MALFORMED);
}
END_TEST

START_TEST(missing)
{
    expect_refused_early(NULL, NULL, FM_AUTH_MISSING);
    /* An empty header value carries no credential. */
    expect_refused_early("", NULL, FM_AUTH_MISSING);
    expect_refused_early(NULL, "", FM_AUTH_MISSING);
    expect_refused_early("", "", FM_AUTH_MISSING);
}
END_TEST

START_TEST(malformed_key_bytes)
{
    char big[FM_AUTH_KEY_MAX + 2];

    expect_refused_early("   ", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("bob key", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("bob\x01key", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("bob\x7fkey", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("bob\x1bkey", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("bob\rkey", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("bob\nkey", NULL, FM_AUTH_MALFORMED);
    expect_refused_early("caf\xc3\xa9", NULL, FM_AUTH_MALFORMED);
    expect_refused_early(NULL, "Bearer bob\x01key", FM_AUTH_MALFORMED);

    /* FM_AUTH_KEY_MAX bytes is still a key (just not a known one); one more is not. */
    memset(big, 'k', FM_AUTH_KEY_MAX);
    big[FM_AUTH_KEY_MAX] = '\0';
    (void)auth(big, NULL, FM_AUTH_UNKNOWN);
    big[FM_AUTH_KEY_MAX] = 'k';
    big[FM_AUTH_KEY_MAX + 1] = '\0';
    expect_refused_early(big, NULL, FM_AUTH_MALFORMED);
}
END_TEST

START_TEST(unknown)
{
    fm_auth_result r = auth("no-such-key-anywhere", NULL, FM_AUTH_UNKNOWN);
    unsigned char h[FM_KEY_HASH_BYTES];
    char id[FM_KEY_ID_LEN + 1];

    ck_assert_ptr_null(r.user);
    /* The fingerprint of what was presented is still reported, for the audit trail. */
    ck_assert_int_eq(fm_auth_hash_key("no-such-key-anywhere", 20, h), 0);
    fm_config_key_id(h, id);
    ck_assert_str_eq(r.key_id, id);

    r = auth(NULL, "Bearer " K_BOB "X", FM_AUTH_UNKNOWN);
    ck_assert_ptr_null(r.user);
    /* Keys are case-sensitive. */
    r = auth("BOB-KEY-ABCDEFGHIJKLMNOP", NULL, FM_AUTH_UNKNOWN);
    ck_assert_ptr_null(r.user);
}
END_TEST

START_TEST(expired)
{
    fm_auth_result r = auth(K_DAVE, NULL, FM_AUTH_EXPIRED);

    ck_assert_ptr_null(r.user);
    ck_assert_ptr_nonnull(r.key);
    ck_assert_int_eq(r.key->expires, 946684800);
    ck_assert(th_is_lower_hex(r.key_id, FM_KEY_ID_LEN));
}
END_TEST

START_TEST(expiry_boundary)
{
    fm_auth_result r;

    /* NOW (2026) is before 2030: accepted. */
    expect_user(K_ERIN, NULL, "erin");
    ck_assert_int_eq(fm_auth_authenticate(cfg, K_ERIN, NULL, ERIN_EXPIRES - 1, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_OK);
    ck_assert_str_eq(r.user->name, "erin");
    ck_assert_int_eq(fm_auth_authenticate(cfg, K_ERIN, NULL, ERIN_EXPIRES, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_EXPIRED);
    ck_assert_ptr_null(r.user);
    ck_assert_int_eq(fm_auth_authenticate(cfg, K_ERIN, NULL, ERIN_EXPIRES + 86400, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_EXPIRED);
    ck_assert_ptr_null(r.user);
    /* A key without expires never expires. */
    ck_assert_int_eq(fm_auth_authenticate(cfg, K_BOB, NULL, INT64_MAX, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_OK);
}
END_TEST

START_TEST(key_id_properties)
{
    unsigned char h1[FM_KEY_HASH_BYTES], h2[FM_KEY_HASH_BYTES], d[crypto_hash_sha256_BYTES];
    char id1[FM_KEY_ID_LEN + 1], id1b[FM_KEY_ID_LEN + 1], id2[FM_KEY_ID_LEN + 1];
    char hex1[65], want[65];
    crypto_hash_sha256_state st;
    fm_auth_result r;

    ck_assert_int_eq(fm_auth_hash_key(K_ALICE1, strlen(K_ALICE1), h1), 0);
    ck_assert_int_eq(fm_auth_hash_key(K_ALICE2, strlen(K_ALICE2), h2), 0);
    fm_config_key_id(h1, id1);
    fm_config_key_id(h1, id1b);
    fm_config_key_id(h2, id2);

    ck_assert_msg(th_is_lower_hex(id1, FM_KEY_ID_LEN), "key_id \"%s\"", id1);
    ck_assert_str_eq(id1, id1b);
    ck_assert_str_ne(id1, id2);

    /* Not a piece of the stored hash, so the audit trail does not leak it. */
    th_sha256_hex(K_ALICE1, hex1);
    ck_assert_ptr_null(strstr(hex1, id1));

    /* The documented derivation: SHA-256("fetchml-key-id:" || hash), first 12 hex. */
    ck_assert_int_eq(crypto_hash_sha256_init(&st), 0);
    ck_assert_int_eq(crypto_hash_sha256_update(&st, (const unsigned char *)"fetchml-key-id:", 15),
                     0);
    ck_assert_int_eq(crypto_hash_sha256_update(&st, h1, sizeof(h1)), 0);
    ck_assert_int_eq(crypto_hash_sha256_final(&st, d), 0);
    ck_assert_ptr_nonnull(sodium_bin2hex(want, sizeof(want), d, sizeof(d)));
    want[FM_KEY_ID_LEN] = '\0';
    ck_assert_str_eq(id1, want);

    /* authenticate reports the same fingerprint, whichever header carried the key. */
    ck_assert_int_eq(fm_auth_authenticate(cfg, K_ALICE1, NULL, NOW, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_OK);
    ck_assert_str_eq(r.key_id, id1);
    ck_assert_int_eq(fm_auth_authenticate(cfg, NULL, "Bearer " K_ALICE1, NOW, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_OK);
    ck_assert_str_eq(r.key_id, id1);
}
END_TEST

START_TEST(hash_known_vector)
{
    unsigned char h[FM_KEY_HASH_BYTES];
    char hex[65];

    ck_assert_int_eq(fm_auth_hash_key("abc", 3, h), 0);
    ck_assert_ptr_nonnull(sodium_bin2hex(hex, sizeof(hex), h, sizeof(h)));
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    /* len bounds the input: only "ab" of "abc" is hashed. */
    ck_assert_int_eq(fm_auth_hash_key("abc", 2, h), 0);
    ck_assert_ptr_nonnull(sodium_bin2hex(hex, sizeof(hex), h, sizeof(h)));
    ck_assert_str_eq(hex, "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603");
}
END_TEST

START_TEST(generated_key_format)
{
    char k[FM_AUTH_KEY_GEN_LEN + 1], k2[FM_AUTH_KEY_GEN_LEN + 1];
    fm_auth_result r;

    fm_auth_key_generate(k);
    fm_auth_key_generate(k2);
    ck_assert_uint_eq(strlen(k), FM_AUTH_KEY_GEN_LEN);
    ck_assert_uint_eq(FM_AUTH_KEY_GEN_LEN, 80);
    ck_assert(strncmp(k, "fetchml_", 8) == 0);
    ck_assert(th_is_lower_hex(k + 8, 72));
    ck_assert_str_ne(k, k2);
    ck_assert(fm_auth_key_checksum_ok(k, strlen(k)));
    /* A well-formed key that is not configured is unknown, with a fingerprint. */
    r = auth(k, NULL, FM_AUTH_UNKNOWN);
    ck_assert(th_is_lower_hex(r.key_id, FM_KEY_ID_LEN));
    /* Any changed digit breaks the checksum: refused as malformed, never looked up. */
    for (size_t i = 8; i < FM_AUTH_KEY_GEN_LEN; i++) {
        char saved = k[i];
        k[i] = saved == '0' ? '1' : '0';
        ck_assert_msg(!fm_auth_key_checksum_ok(k, strlen(k)), "digit %zu", i);
        r = auth(k, NULL, FM_AUTH_MALFORMED);
        ck_assert_ptr_null(r.user);
        k[i] = saved;
    }
    /* Wrong length or upper-case hex with the prefix: malformed. */
    ck_assert(!fm_auth_key_checksum_ok(k, strlen(k) - 1));
    k[20] = (char)(k[20] >= 'a' ? k[20] - 32 : k[20]);
    if (k[20] >= 'A' && k[20] <= 'F')
        ck_assert(!fm_auth_key_checksum_ok(k, strlen(k)));
    ck_assert(!fm_auth_key_checksum_ok("fetchml_", 8));
    /* Keys without the prefix are not checked (openssl rand -hex 32 keys stay valid). */
    ck_assert(fm_auth_key_checksum_ok(K_BOB, strlen(K_BOB)));
    expect_user(K_BOB, NULL, "bob");
}
END_TEST

START_TEST(reasons)
{
    ck_assert_str_eq(fm_auth_reason(FM_AUTH_OK), "ok");
    ck_assert_str_eq(fm_auth_reason(FM_AUTH_MISSING), "missing_key");
    ck_assert_str_eq(fm_auth_reason(FM_AUTH_MALFORMED), "malformed_key");
    ck_assert_str_eq(fm_auth_reason(FM_AUTH_UNKNOWN), "unknown_key");
    ck_assert_str_eq(fm_auth_reason(FM_AUTH_EXPIRED), "expired");
}
END_TEST

/* The config builder's default sections: alice (researcher) and bob (analyst) with known keys. */
START_TEST(builder_defaults)
{
    th_config c;
    fm_config *def;
    fm_auth_result r;

    th_config_init(&c, "test_auth_defaults");
    def = th_config_load(&c);
    ck_assert_int_eq(fm_auth_authenticate(def, TH_KEY_ALICE, NULL, NOW, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_OK);
    ck_assert_str_eq(r.user->name, "alice");
    ck_assert(fm_rbac_allows(r.user->effective, FM_PERM(FM_RES_JOBS, FM_ACT_CREATE)));
    ck_assert_int_eq(fm_auth_authenticate(def, TH_KEY_BOB, NULL, NOW, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_OK);
    ck_assert_str_eq(r.user->name, "bob");
    ck_assert(!fm_rbac_allows(r.user->effective, FM_PERM(FM_RES_JOBS, FM_ACT_CREATE)));
    ck_assert_int_eq(fm_auth_authenticate(def, K_BOB, NULL, NOW, &r), FM_OK);
    ck_assert_int_eq(r.status, FM_AUTH_UNKNOWN);
    ck_assert_str_eq(def->logging.file + strlen(c.dir), "/audit.log");
    fm_config_free(def);
    th_config_free(&c);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, x_api_key_ok);
    tcase_add_test(tc, rotation_keys_both_work);
    tcase_add_test(tc, bearer_ok);
    tcase_add_test(tc, bearer_malformed);
    tcase_add_test(tc, both_headers);
    tcase_add_test(tc, missing);
    tcase_add_test(tc, malformed_key_bytes);
    tcase_add_test(tc, unknown);
    tcase_add_test(tc, expired);
    tcase_add_test(tc, expiry_boundary);
    tcase_add_test(tc, key_id_properties);
    tcase_add_test(tc, hash_known_vector);
    tcase_add_test(tc, reasons);
    tcase_add_test(tc, generated_key_format);
    tcase_add_test(tc, builder_defaults);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(auth_suite)
