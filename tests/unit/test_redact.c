/*
 * test_redact.c - the redaction filter: a corpus of exact input -> output
 * pairs for every rule and for what must be kept, every occurrence replaced,
 * truncation at every capacity, registered literals, and a seeded random test.
 */
#include "redact.h"

#include <check.h>
#include <sodium.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define HEX16 "0123456789abcdef"
#define HEX64 HEX16 HEX16 HEX16 HEX16
#define ALNUM36 "abcdefghijklmnopqrstuvwxyzABCD012345"
#define JWT                                                                                        \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."                            \
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
#define R FM_REDACTED

static const struct redact_case {
    const char *in;
    const char *out;
} cases[] = {
    /* Header forms: the value runs to end of line. */
    {"Authorization: Bearer abc.def", "Authorization: " R},
    {"authorization:Basic dXNlcjpwYXNz\nnext line", "authorization:" R "\nnext line"},
    {"Proxy-Authorization: Basic Zm9vOmJhcg==", "Proxy-Authorization: " R},
    {"X-API-Key: k1 k2\r\nHost: x", "X-API-Key: " R "\r\nHost: x"},
    {"x-api-key: abc", "x-api-key: " R},
    {"Cookie: session=abc; theme=dark", "Cookie: " R},
    {"Set-Cookie: sid=xyz; HttpOnly\nVary: Accept", "Set-Cookie: " R "\nVary: Accept"},
    {"HTTP_AUTHORIZATION=Bearer abc HTTP_HOST=x", "HTTP_AUTHORIZATION=" R},
    {"HTTP_X_API_KEY=abcdef\nREMOTE_ADDR=10.0.0.1", "HTTP_X_API_KEY=" R "\nREMOTE_ADDR=10.0.0.1"},
    {"HTTP_COOKIE=a=1; b=2", "HTTP_COOKIE=" R},
    {"http_proxy_authorization=Basic eA==", "http_proxy_authorization=" R},
    {"{\"authorization\":\"Bearer abc\",\"host\":\"h\"}",
     "{\"authorization\":\"" R "\",\"host\":\"h\"}"},
    {"Authorization:", "Authorization:"},
    {"Authorization: \nHost: x", "Authorization: \nHost: x"},

    /* Scheme credentials anywhere, any case; the scheme word is kept. */
    {"sent Bearer abc123xyz upstream", "sent Bearer " R " upstream"},
    {"q=Bearer+abc123xyz&x=1", "q=Bearer+" R "&x=1"},
    {"q=Basic+auth&x=1", "q=Basic+auth&x=1"},
    {"BEARER AbCdEf", "BEARER " R},
    {"bearer\teyJ0eXAi.x", "bearer\t" R},
    {"basic dXNlcjpwYXNz ok", "basic " R " ok"},
    {"Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Token " R},
    {"'Bearer abc-123'", "'Bearer " R "'"},
    {"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, next", "Basic " R ", next"},

    /* Sensitive fields: the key is kept, the value replaced. */
    {"password=hunter2", "password=" R},
    {"login user=bob password=hunter2 ok", "login user=bob password=" R " ok"},
    {"PASSWORD=x;next=1", "PASSWORD=" R ";next=1"},
    {"passwd=a,b", "passwd=" R ",b"},
    {"pwd=s3cr3t", "pwd=" R},
    {"secret=abc", "secret=" R},
    {"token=abc&x=1", "token=" R "&x=1"},
    {"api_key=a apikey=b api-key=c", "api_key=" R " apikey=" R " api-key=" R},
    {"access_key=a private_key=b auth=c", "access_key=" R " private_key=" R " auth=" R},
    {"redis_password=pw1 db=0", "redis_password=" R " db=0"},
    {"client_secret=a access_token=b refresh_token=c",
     "client_secret=" R " access_token=" R " refresh_token=" R},
    {"db.password=abc", "db.password=" R},
    {"password: hunter2 (from config)", "password: " R " (from config)"},
    {"Password : hunter2", "Password : " R},
    {"{\"password\":\"hunter2\"}", "{\"password\":\"" R "\"}"},
    {"{\"password\": \"hun\\\"ter\", \"user\": \"bob\"}",
     "{\"password\": \"" R "\", \"user\": \"bob\"}"},
    {"{\"pin_token\":12345,\"n\":1}", "{\"pin_token\":" R ",\"n\":1}"},
    {"{\"api_key\": null}", "{\"api_key\": " R "}"},
    {"{\"password\":\"\"}", "{\"password\":\"\"}"},
    {"GET /v1/x?password=abc&a=b HTTP/1.1", "GET /v1/x?password=" R "&a=b HTTP/1.1"},
    {"/login?user=bob&token=abc%26def&page=2", "/login?user=bob&token=" R "&page=2"},
    {"password=\"two words\" next", "password=\"" R "\" next"},
    {"user[password]=x&a=b", "user[password]=" R "&a=b"},
    {"{'client_secret': 'abc def'}", "{'client_secret': '" R "'}"},
    {"password => 'x'", "password => '" R "'"},
    {"body=\"{\\\"password\\\":\\\"p\\\\\\\"q\\\",\\\"x\\\":1}\"",
     "body=\"{\\\"password\\\":\\\"" R "\\\",\\\"x\\\":1}\""},
    {"password=", "password="},
    {"password=&a=b", "password=&a=b"},
    {"password: \nnext", "password: \nnext"},
    {"password=a token=b secret=c", "password=" R " token=" R " secret=" R},

    /* URL userinfo. */
    {"redis://:s3cret@127.0.0.1:6379/0", "redis://" R "@127.0.0.1:6379/0"},
    {"https://alice:pw@example.com/path", "https://" R "@example.com/path"},
    {"postgres://u:p@ss@db:5432/x", "postgres://" R "@db:5432/x"},
    {"url=\"https://u:p@h\"", "url=\"https://" R "@h\""},
    {"ssh://git@github.com/x", "ssh://git@github.com/x"},
    {"http://example.com:8080/a@b", "http://example.com:8080/a@b"},

    /* 64 or more hex digits bounded by non-alphanumerics. */
    {"key_hash " HEX64 " x", "key_hash " R " x"},
    {"sha256:" HEX64, "sha256:" R},
    {HEX64 "ab", R},
    {"0x" HEX64 ".", R "."},
    {"h=" HEX64 "\"", "h=" R "\""},
    {"short " HEX16 HEX16 HEX16 "0123456789abcde", "short " HEX16 HEX16 HEX16 "0123456789abcde"},
    /* Glued to a word, a 64-hex run is still a key or a hash. */
    {HEX64 "g", R "g"},
    {"z" HEX64, "z" R},
    {"/v1/g" HEX64 "g/x", "/v1/g" R "g/x"},
    {"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", R},
    /* nginx merges slashes: a URL pasted into a path keeps one. */
    {"GET /v1/redis:/:s3cret@host", "GET /v1/redis:/" R "@host"},

    /* Well-known token formats. */
    {"ghp_" ALNUM36 " gho_" ALNUM36, R " " R},
    {"ghu_" ALNUM36 ",ghs_" ALNUM36 ";ghr_" ALNUM36, R "," R ";" R},
    {"ghp_abc", "ghp_abc"},
    {"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", R},
    {"glpat-abcdefghij0123456789 x", R " x"},
    {"sk_live_4eC39HqLyjWDarjtT1zdp7dc sk_test_4eC39HqLyjWDarjtT1zdp7dc", R " " R},
    {"rk_live_4eC39HqLyjWDarjtT1zdp7dc", R},
    {"aws AKIAIOSFODNN7EXAMPLE ASIAIOSFODNN7EXAMPL2", "aws " R " " R},
    {"AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"},
    {"slack xoxb-123456789012-abcdef xoxp-1234-5678-abcdef", "slack " R " " R},
    {"xoxa-2-abcdefghij xoxr-abcdefghij xoxs-abcdefghij", R " " R " " R},
    {"jwt " JWT " ok", "jwt " R " ok"},
    {"fetchml_abcdefghijklmnopqrst", R},
    {"key fetchml_abc_DEF_123_456_7890 ok", "key " R " ok"},
    {"fetchml_short", "fetchml_short"},

    /* Kept. */
    {"the tokenizer ran", "the tokenizer ran"},
    {"Token expired for user alice", "Token expired for user alice"},
    {"Basic auth failed; missing bearer token", "Basic auth failed; missing bearer token"},
    {"WWW-Authenticate: Bearer realm=\"api\"", "WWW-Authenticate: Bearer realm=\"api\""},
    {"commit 0123456789abcdef0123456789abcdef01234567",
     "commit 0123456789abcdef0123456789abcdef01234567"},
    {"task 123e4567-e89b-12d3-a456-426614174000", "task 123e4567-e89b-12d3-a456-426614174000"},
    {"2024-01-02T03:04:05.123Z 2024-01-02T03:04:05+02:00",
     "2024-01-02T03:04:05.123Z 2024-01-02T03:04:05+02:00"},
    {"from 10.0.0.1:443 and [2001:db8::1]:8080 fe80::1",
     "from 10.0.0.1:443 and [2001:db8::1]:8080 fe80::1"},
    {"user=alice role=admin", "user=alice role=admin"},
    {"max_tokens=100 tokens: 5 author: Jane", "max_tokens=100 tokens: 5 author: Jane"},
    {"authentication failed from 192.168.1.7", "authentication failed from 192.168.1.7"},
    {"GET /v1/tasks?page=2&limit=10", "GET /v1/tasks?page=2&limit=10"},
    {"", ""},
};

#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static size_t redact_str(const char *in, char *out, size_t cap)
{
    return fm_redact(in, strlen(in), out, cap);
}

START_TEST(test_corpus)
{
    const struct redact_case *rc = &cases[_i];
    char out[1024];
    size_t n = redact_str(rc->in, out, sizeof(out));

    ck_assert_msg(strcmp(out, rc->out) == 0, "in:  %s\nout: %s\nexp: %s", rc->in, out, rc->out);
    ck_assert_uint_eq(n, strlen(rc->out));
}
END_TEST

/* Truncated output is a prefix of the full output and stops before a marker, never inside. */
START_TEST(test_corpus_truncation)
{
    const struct redact_case *rc = &cases[_i];
    size_t full = strlen(rc->out);
    char out[1024];

    for (size_t cap = 0; cap <= full + 12; cap++) {
        size_t n;

        memset(out, 'Z', sizeof(out));
        n = redact_str(rc->in, out, cap);
        if (cap == 0) {
            ck_assert_uint_eq(n, 0);
            ck_assert_int_eq(out[0], 'Z');
            continue;
        }
        ck_assert_uint_lt(n, cap);
        ck_assert_int_eq(out[n], '\0');
        ck_assert_int_eq(out[cap], 'Z');
        ck_assert_msg(strncmp(out, rc->out, n) == 0, "cap %zu: %s", cap, out);
        if (full < cap)
            ck_assert_uint_eq(n, full);
        else
            ck_assert_uint_gt(n + sizeof(FM_REDACTED) - 1, cap - 1);
    }
}
END_TEST

static const struct secret_case {
    const char *in;
    const char *secrets[3];
} secret_cases[] = {
    {"Authorization: Bearer tok-AAAA-1234\npassword=pw-BBBB-5678 and " HEX64,
     {"tok-AAAA-1234", "pw-BBBB-5678", HEX64}},
    {"ghp_" ALNUM36 " redis://:rp-CCCC-9@h {\"secret\":\"js-DDDD\\\"x\"}",
     {"ghp_" ALNUM36, "rp-CCCC-9", "js-DDDD"}},
    {"x " JWT " Basic dXNlcjpwYXNzd29yZA== AKIAIOSFODNN7EXAMPLE",
     {JWT, "dXNlcjpwYXNzd29yZA==", "AKIAIOSFODNN7EXAMPLE"}},
};

/* A secret that fits only in part would show its head; every cap must show none of it. */
static void assert_no_secret(const char *out, const char *secret, size_t cap)
{
    size_t n = strlen(out), k = strlen(secret);

    ck_assert_msg(strstr(out, secret) == NULL, "cap %zu leaked: %s", cap, out);
    for (size_t head = 4; head < k && head <= n; head++)
        ck_assert_msg(memcmp(out + n - head, secret, head) != 0, "cap %zu partial: %s", cap, out);
}

START_TEST(test_three_secrets_every_cap)
{
    const struct secret_case *sc = &secret_cases[_i];
    size_t len = strlen(sc->in);
    char out[1024];
    size_t n = redact_str(sc->in, out, sizeof(out));
    size_t markers = 0;

    for (const char *p = out; (p = strstr(p, FM_REDACTED)) != NULL; p++)
        markers++;
    ck_assert_uint_eq(markers, 3);
    ck_assert_uint_eq(n, strlen(out));
    for (size_t cap = 0; cap <= len + 12; cap++) {
        memset(out, 'Z', sizeof(out));
        n = redact_str(sc->in, out, cap);
        if (cap == 0)
            continue;
        ck_assert_int_eq(out[n], '\0');
        for (int s = 0; s < 3; s++)
            assert_no_secret(out, sc->secrets[s], cap);
    }
}
END_TEST

static void teardown_secrets(void)
{
    fm_redact_clear_secrets();
}

START_TEST(test_literal_every_occurrence)
{
    char out[256];

    ck_assert_int_eq(fm_redact_add_secret("Sup3rS3cret"), 0);
    (void)redact_str("connect with Sup3rS3cret, again Sup3rS3cret.", out, sizeof(out));
    ck_assert_str_eq(out, "connect with " R ", again " R ".");
    (void)redact_str("xSup3rS3cretx Sup3rS3cre", out, sizeof(out));
    ck_assert_str_eq(out, "x" R "x Sup3rS3cre");
}
END_TEST

START_TEST(test_literal_overlaps_span)
{
    char out[256];

    /* Runs past the end of the bare value. */
    ck_assert_int_eq(fm_redact_add_secret("hunter2&more"), 0);
    (void)redact_str("password=hunter2&more&a=b", out, sizeof(out));
    ck_assert_str_eq(out, "password=" R "&a=b");

    /* Starts in the key and swallows the separator: the value still goes. */
    ck_assert_int_eq(fm_redact_add_secret("word: ab"), 0);
    (void)redact_str("password: abcdef next", out, sizeof(out));
    ck_assert_str_eq(out, "pass" R " next");

    /* Starts in the kept prefix and runs into the pending value. */
    ck_assert_int_eq(fm_redact_add_secret("  xy"), 0);
    (void)redact_str("token=   xyz rest", out, sizeof(out));
    ck_assert_str_eq(out, "token= " R " rest");

    /* Swallows the separator itself. */
    ck_assert_int_eq(fm_redact_add_secret("=##xy"), 0);
    (void)redact_str("token=##xyz rest", out, sizeof(out));
    ck_assert_str_eq(out, "token" R " rest");

    /* Two literals overlapping. */
    ck_assert_int_eq(fm_redact_add_secret("abcd1234"), 0);
    ck_assert_int_eq(fm_redact_add_secret("1234wxyz"), 0);
    (void)redact_str("[abcd1234wxyz]", out, sizeof(out));
    ck_assert_str_eq(out, "[" R "]");
}
END_TEST

START_TEST(test_literal_longest_wins)
{
    char out[256];

    ck_assert_int_eq(fm_redact_add_secret("s3cr"), 0);
    ck_assert_int_eq(fm_redact_add_secret("s3cr3t-long"), 0);
    (void)redact_str("a s3cr3t-long b s3cr c", out, sizeof(out));
    ck_assert_str_eq(out, "a " R " b " R " c");
}
END_TEST

START_TEST(test_add_secret_errors)
{
    char value[32], out[64];

    errno = 0;
    ck_assert_int_eq(fm_redact_add_secret(NULL), FM_EINVAL);
    ck_assert_int_eq(errno, EINVAL);

    /* Too short: accepted but ignored. */
    ck_assert_int_eq(fm_redact_add_secret("abc"), 0);
    (void)redact_str("abc", out, sizeof(out));
    ck_assert_str_eq(out, "abc");

    for (int k = 0; k < FM_REDACT_MAX_SECRETS; k++) {
        ck_assert_int_gt(snprintf(value, sizeof(value), "lit-%02d", k), 0);
        ck_assert_int_eq(fm_redact_add_secret(value), 0);
    }
    /* A duplicate takes no slot. */
    ck_assert_int_eq(fm_redact_add_secret("lit-00"), 0);
    errno = 0;
    ck_assert_int_eq(fm_redact_add_secret("lit-new"), FM_ESYS);
    ck_assert_int_eq(errno, ENOSPC);
    (void)redact_str("lit-00 lit-15 lit-new", out, sizeof(out));
    ck_assert_str_eq(out, R " " R " lit-new");
}
END_TEST

START_TEST(test_clear_secrets)
{
    char out[64];

    ck_assert_int_eq(fm_redact_add_secret("Sup3rS3cret"), 0);
    (void)redact_str("x Sup3rS3cret", out, sizeof(out));
    ck_assert_str_eq(out, "x " R);
    fm_redact_clear_secrets();
    (void)redact_str("x Sup3rS3cret", out, sizeof(out));
    ck_assert_str_eq(out, "x Sup3rS3cret");
    /* The table is usable again after clearing. */
    ck_assert_int_eq(fm_redact_add_secret("0therS3cret"), 0);
    (void)redact_str("0therS3cret Sup3rS3cret", out, sizeof(out));
    ck_assert_str_eq(out, R " Sup3rS3cret");
}
END_TEST

START_TEST(test_null_and_zero)
{
    char out[8] = "Zzzzzzz";

    ck_assert_uint_eq(fm_redact("password=x", 10, NULL, 10), 0);
    ck_assert_uint_eq(fm_redact("password=x", 10, out, 0), 0);
    ck_assert_str_eq(out, "Zzzzzzz");
    ck_assert_uint_eq(fm_redact(NULL, 10, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    /* len, not NUL, bounds the input. */
    ck_assert_uint_eq(fm_redact("abcdef", 3, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "abc");
}
END_TEST

/* xorshift64*: deterministic across libcs, unlike rand(). */
static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

#define PLANTED "Pl4nted-S3cret"

static const char *const fragments[] = {
    "password", "=",        ":",      " ",         "\"",    "\\",       "'",
    "&",        ",",        "\n",     "://",       "@",     "Bearer ",  "Basic ",
    "token",    "HTTP_",    "Cookie", "x-api-key", HEX16,   "ghp_",     ALNUM36,
    "eyJ",      ".",        "0x",     "AKIA",      "xoxb-", "fetchml_", "github_pat_",
    "glpat-",   "sk_live_", "{",      "}",         "[",     "]",        PLANTED,
    "Pl4nted",  "-S3cret",  "redis",  "https",     "=>",    "\r",
};

#define NFRAGMENTS (sizeof(fragments) / sizeof(fragments[0]))

START_TEST(test_random)
{
    char in[512], full[1024], out[1100];

    rng_state = 0x9E3779B97F4A7C15ULL;
    ck_assert_int_eq(fm_redact_add_secret(PLANTED), 0);
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0, n, fn, cap;
        int mode = (int)(rng() % 3);

        while (len < 400) {
            uint32_t r = rng();

            if (mode == 0 || (mode == 2 && r % 4 == 0)) {
                in[len++] = (char)(rng() & 0xff);
            } else {
                const char *f = fragments[r % NFRAGMENTS];
                size_t fl = strlen(f);

                if (len + fl > 400)
                    break;
                memcpy(in + len, f, fl);
                len += fl;
            }
            if (rng() % 64 == 0)
                break;
        }
        /* Plant the secret whole at a random place, overwriting what was there. */
        if (len >= sizeof(PLANTED) - 1 && rng() % 2 == 0) {
            size_t at = rng() % (len - (sizeof(PLANTED) - 1) + 1);

            memcpy(in + at, PLANTED, sizeof(PLANTED) - 1);
        }

        fn = fm_redact(in, len, full, sizeof(full));
        ck_assert_uint_lt(fn, sizeof(full));
        ck_assert_int_eq(full[fn], '\0');
        ck_assert_ptr_null(memmem(full, fn, PLANTED, sizeof(PLANTED) - 1));

        cap = rng() % (fn + 20);
        memset(out, 'Z', sizeof(out));
        n = fm_redact(in, len, out, cap);
        if (cap == 0) {
            ck_assert_uint_eq(n, 0);
            ck_assert_int_eq(out[0], 'Z');
            continue;
        }
        ck_assert_uint_lt(n, cap);
        ck_assert_int_eq(out[n], '\0');
        ck_assert_int_eq(out[cap], 'Z');
        ck_assert_int_eq(memcmp(out, full, n), 0);
        ck_assert_ptr_null(memmem(out, n, PLANTED, sizeof(PLANTED) - 1));
    }
}
END_TEST

/* ---- configured keys, known by digest ------------------------------------------------ */

#define K_UUID "3f2b8c1e-9a4d-4e6f-b1c2-7d8e9f0a1b2c"
#define K_B64 "q5Jz+u/Wk3bXy9A2mR7tLw=="
#define K_B64_PCT "q5Jz%2Bu%2FWk3bXy9A2mR7tLw%3D%3D"
#define K_URL "Zq3_kP-9xWm2LrT8vBn4Hc"
#define K_HEX32 "0123456789abcdef0123456789abcdef"
/* Base64 keys whose '/' nginx's merge_slashes can swallow, and one ending in "/=". */
#define K_LEAD "/lCz8xq3Vv+0aTQe2n7W9g=="
#define K_LEAD_REST "lCz8xq3Vv+0aTQe2n7W9g=="
#define K_DOUBLE "Xk4r+Tz1//q8WmYc2Pa0Lw=="
#define K_DOUBLE_MERGED "Xk4r+Tz1/q8WmYc2Pa0Lw=="
#define K_TRAIL "Rb7n+Qe3Kd0Zs1Vx5Hc2Mf/"
#define K_SLASH_EQ "Hq9d+Ws2Lp4Ny7Tb0Ke3Gc/="

static void set_keys(void)
{
    static const char *const keys[] = {K_UUID, K_B64,    K_URL,   K_HEX32,
                                       K_LEAD, K_DOUBLE, K_TRAIL, K_SLASH_EQ};
    enum { NKEYS = sizeof(keys) / sizeof(keys[0]) };
    unsigned char d[NKEYS * FM_REDACT_KEY_HASH_BYTES];

    for (size_t i = 0; i < NKEYS; i++)
        crypto_hash_sha256(d + i * FM_REDACT_KEY_HASH_BYTES, (const unsigned char *)keys[i],
                           strlen(keys[i]));
    ck_assert_int_eq(fm_redact_set_key_hashes(d, NKEYS), FM_OK);
}

static const struct redact_case key_cases[] = {
    /* A path segment, a query value, a header value, a JSON field; any format. */
    {"GET /v1/tasks/" K_UUID " HTTP/1.1", "GET /v1/tasks/" R " HTTP/1.1"},
    {"GET /v1/tasks/" K_UUID "/cancel", "GET /v1/tasks/" R "/cancel"},
    {"/v1/tasks?status=" K_B64 "&limit=1", "/v1/tasks?status=" R "&limit=1"},
    {"/v1/tasks?status=" K_B64_PCT, "/v1/tasks?status=" R},
    {"/x/" K_B64 "/y", "/x/" R "/y"},
    {"/v1/tasks/" K_UUID ".json", "/v1/tasks/" R ".json"},
    {"GET /files/" K_HEX32 "~1 HTTP/1.1", "GET /files/" R "~1 HTTP/1.1"},
    {"/x/" K_B64_PCT "/y", "/x/" R "/y"},
    {"q=a+" K_URL "+b", "q=a+" R "+b"},
    {"X-Foo: " K_URL "\r\nX-Bar: " K_HEX32, "X-Foo: " R "\r\nX-Bar: " R},
    {"{\"resource\":\"/v1/" K_HEX32 "\",\"user\":null}",
     "{\"resource\":\"/v1/" R "\",\"user\":null}"},
    {"request: \"GET /" K_UUID "?k=" K_URL " HTTP/1.1\"",
     "request: \"GET /" R "?k=" R " HTTP/1.1\""},
    {K_UUID, R},
    /* Raw request lines (nginx logs them as sent): a '/' of the key next to the path's. */
    {"request: \"GET /v1/tasks/" K_LEAD " HTTP/1.1\"", "request: \"GET /v1/tasks/" R " HTTP/1.1\""},
    {"GET /v1/tasks/" K_DOUBLE "/cancel HTTP/1.1", "GET /v1/tasks/" R "/cancel HTTP/1.1"},
    {"GET /v1/tasks/" K_TRAIL "/cancel", "GET /v1/tasks/" R "/cancel"},
    {"POST /v1/x/" K_SLASH_EQ "?q=" K_SLASH_EQ, "POST /v1/x/" R "?q=" R},
    /* An escape of a byte no key holds ends a run: a key beside many of them is found. */
    {"/v1/tasks/x%C2%85a%E2%80%A8b%E2%80%A9c%E2%80%AEd%E2%81%A6e%0Bh%7F" K_B64 "%1Cj",
     "/v1/tasks/x%C2%85a%E2%80%A8b%E2%80%A9c%E2%80%AEd%E2%81%A6e%0Bh%7F" R "%1Cj"},
    /* ... and those escapes alone are kept, not dropped as one expensive run. */
    {"/v1/tasks/x%C2%85a%E2%80%A8b%E2%80%A9c%E2%80%AEd%E2%81%A6e%E2%81%A9f%E2%80%8Fg%0Bh%0Ci",
     "/v1/tasks/x%C2%85a%E2%80%A8b%E2%80%A9c%E2%80%AEd%E2%81%A6e%E2%81%A9f%E2%80%8Fg%0Bh%0Ci"},
    /* Anything else is kept: other UUIDs, tokens the key is only a part of. */
    {"/v1/tasks/3f2b8c1e-9a4d-4e6f-b1c2-7d8e9f0a1b2d",
     "/v1/tasks/3f2b8c1e-9a4d-4e6f-b1c2-7d8e9f0a1b2d"},
    {"x" K_URL, "x" K_URL},
    {"trace_id=" K_HEX32 "00", "trace_id=" K_HEX32 "00"},
};

START_TEST(test_key_cases)
{
    const struct redact_case *c = &key_cases[_i];
    char out[512], full[512];
    size_t n;

    set_keys();
    n = redact_str(c->in, full, sizeof(full));
    ck_assert_msg(strcmp(full, c->out) == 0, "in: %s\nwant: %s\ngot:  %s", c->in, c->out, full);
    /* Cut anywhere, the output is a prefix of the whole one: never a piece of a key. */
    for (size_t cap = 1; cap <= n + 1; cap++) {
        (void)redact_str(c->in, out, cap);
        ck_assert_msg(strncmp(out, full, strlen(out)) == 0, "cap %zu: %s", cap, out);
    }
}
END_TEST

/* The work per line is bounded; past the bound, long tokens are dropped, never a key shown. */
START_TEST(test_key_budget)
{
    char in[8192], out[8192];
    size_t o = 0;

    set_keys();
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(in + o, sizeof(in) - o, "tok%02d-abcdefghijklmnop ", i);
    (void)snprintf(in + o, sizeof(in) - o, "/" K_UUID);
    (void)redact_str(in, out, sizeof(out));
    ck_assert_ptr_null(strstr(out, K_UUID));
    ck_assert_ptr_nonnull(strstr(out, "tok00-abcdefghijklmnop")); /* within the budget: kept */

    /* More separators in one run than are tried: the run goes whole. */
    o = 0;
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(in + o, sizeof(in) - o, "/a");
    (void)snprintf(in + o, sizeof(in) - o, "/" K_B64 " end");
    (void)redact_str(in, out, sizeof(out));
    ck_assert_str_eq(out, R " end");
}
END_TEST

START_TEST(test_key_set_and_clear)
{
    unsigned char d[FM_REDACT_KEY_HASH_BYTES] = {0};
    char out[256];

    ck_assert_int_eq(fm_redact_set_key_hashes(NULL, 1), FM_EINVAL);
    (void)redact_str("/v1/" K_UUID, out, sizeof(out));
    ck_assert_str_eq(out, "/v1/" K_UUID);
    set_keys();
    (void)redact_str("/v1/" K_UUID, out, sizeof(out));
    ck_assert_str_eq(out, "/v1/" R);
    /* A new set replaces the old one. */
    ck_assert_int_eq(fm_redact_set_key_hashes(d, 1), FM_OK);
    (void)redact_str("/v1/" K_UUID, out, sizeof(out));
    ck_assert_str_eq(out, "/v1/" K_UUID);
    set_keys();
    fm_redact_clear_secrets();
    (void)redact_str("/v1/" K_UUID, out, sizeof(out));
    ck_assert_str_eq(out, "/v1/" K_UUID);
    set_keys();
    ck_assert_int_eq(fm_redact_set_key_hashes(NULL, 0), FM_OK);
    (void)redact_str("/v1/" K_UUID, out, sizeof(out));
    ck_assert_str_eq(out, "/v1/" K_UUID);
}
END_TEST

/*
 * A key in the raw path, and the normalised path nginx hands the app (%XX
 * decoded, "//" merged) in the line the app logs: the key's form there no
 * longer hashes to its digest, so only the held form redacts it.
 */
static const struct norm_case {
    const char *raw, *line, *out;
} norm_cases[] = {
    /* Leading '/': "//k" arrives as "/k", the key all but its first byte, which the app may
       also log as a path parameter on its own (the task id). */
    {"/v1/tasks//" K_LEAD_REST,
     "{\"action\":\"GET /v1/tasks/" K_LEAD_REST "\",\"resource\":\"/v1/tasks/" K_LEAD_REST
     "\",\"task_id\":\"" K_LEAD_REST "\"}",
     "{\"action\":\"GET /v1/tasks/" R "\",\"resource\":\"/v1/tasks/" R "\",\"task_id\":\"" R "\"}"},
    /* "//" inside. */
    {"/v1/tasks/" K_DOUBLE "/cancel", "POST /v1/tasks/" K_DOUBLE_MERGED "/cancel",
     "POST /v1/tasks/" R "/cancel"},
    /* Trailing '/', merged with the path's next one. */
    {"/v1/tasks/" K_TRAIL "/cancel", "/v1/tasks/Rb7n+Qe3Kd0Zs1Vx5Hc2Mf/cancel",
     "/v1/tasks/" R "/cancel"},
    /* %-encoded, decoded and merged by nginx. */
    {"/v1/tasks/Xk4r%2BTz1%2F%2Fq8WmYc2Pa0Lw%3D%3D", "/v1/tasks/" K_DOUBLE_MERGED, "/v1/tasks/" R},
    {"/v1/tasks/%2flCz8xq3Vv%2B0aTQe2n7W9g%3D%3D", "/v1/tasks/" K_LEAD_REST, "/v1/tasks/" R},
    /* "/=" at the end, other slashes merged before it; two keys in one path. */
    {"/v1//tasks/" K_SLASH_EQ "/" K_DOUBLE, "/v1/tasks/" K_SLASH_EQ "/" K_DOUBLE_MERGED,
     "/v1/tasks/" R "/" R},
};

START_TEST(test_key_normalised_path)
{
    const struct norm_case *c = &norm_cases[_i];
    char before[512], out[512];

    set_keys();
    (void)redact_str(c->line, before, sizeof(before));
    ck_assert_int_eq(fm_redact_hold_path(c->raw, strlen(c->raw)), FM_OK);
    (void)redact_str(c->line, out, sizeof(out));
    ck_assert_msg(strcmp(out, c->out) == 0, "raw: %s\nline: %s\nwant: %s\ngot:  %s", c->raw,
                  c->line, c->out, out);
    /* Held for one request only. */
    fm_redact_release();
    (void)redact_str(c->line, out, sizeof(out));
    ck_assert_str_eq(out, before);
}
END_TEST

START_TEST(test_key_hold_path_edges)
{
    char out[256];

    set_keys();
    ck_assert_int_eq(fm_redact_hold_path(NULL, 0), FM_EINVAL);
    /* No key in the raw path: nothing held, the line kept. */
    ck_assert_int_eq(fm_redact_hold_path("/v1//tasks", 10), FM_OK);
    (void)redact_str("/v1/tasks/" K_DOUBLE_MERGED, out, sizeof(out));
    ck_assert_str_eq(out, "/v1/tasks/" K_DOUBLE_MERGED);
    /* Only len bytes are read; a new raw path replaces what was held. */
    ck_assert_int_eq(fm_redact_hold_path("/a/" K_DOUBLE "?q", 3 + strlen(K_DOUBLE)), FM_OK);
    (void)redact_str("/a/" K_DOUBLE_MERGED, out, sizeof(out));
    ck_assert_str_eq(out, "/a/" R);
    ck_assert_int_eq(fm_redact_hold_path("/b", 2), FM_OK);
    (void)redact_str("/a/" K_DOUBLE_MERGED, out, sizeof(out));
    ck_assert_str_eq(out, "/a/" K_DOUBLE_MERGED);
    /* Clearing the secrets forgets held forms too. */
    ck_assert_int_eq(fm_redact_hold_path("/a//" K_LEAD_REST, 4 + strlen(K_LEAD_REST)), FM_OK);
    fm_redact_clear_secrets();
    (void)redact_str("/a/" K_LEAD_REST, out, sizeof(out));
    ck_assert_str_eq(out, "/a/" K_LEAD_REST);
}
END_TEST

/* A registered literal and a key in one line: both go, and spans that touch merge. */
START_TEST(test_key_and_literal)
{
    char out[256];

    set_keys();
    ck_assert_int_eq(fm_redact_add_secret("Sup3rS3cret"), 0);
    (void)redact_str("a Sup3rS3cret /" K_URL " password=" K_UUID, out, sizeof(out));
    ck_assert_str_eq(out, "a " R " /" R " password=" R);
}
END_TEST

static Suite *redact_suite(void)
{
    Suite *s = suite_create("redact");
    TCase *tc = tcase_create("core");
    TCase *lit = tcase_create("literals");
    TCase *keys = tcase_create("keys");

    tcase_add_loop_test(tc, test_corpus, 0, NCASES);
    tcase_add_loop_test(tc, test_corpus_truncation, 0, NCASES);
    tcase_add_loop_test(tc, test_three_secrets_every_cap, 0,
                        (int)(sizeof(secret_cases) / sizeof(secret_cases[0])));
    tcase_add_test(tc, test_null_and_zero);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(lit, NULL, teardown_secrets);
    tcase_add_test(lit, test_literal_every_occurrence);
    tcase_add_test(lit, test_literal_overlaps_span);
    tcase_add_test(lit, test_literal_longest_wins);
    tcase_add_test(lit, test_add_secret_errors);
    tcase_add_test(lit, test_clear_secrets);
    tcase_add_test(lit, test_random);
    tcase_set_timeout(lit, 60);
    suite_add_tcase(s, lit);

    tcase_add_checked_fixture(keys, NULL, teardown_secrets);
    tcase_add_loop_test(keys, test_key_cases, 0, (int)(sizeof(key_cases) / sizeof(key_cases[0])));
    tcase_add_test(keys, test_key_budget);
    tcase_add_test(keys, test_key_set_and_clear);
    tcase_add_test(keys, test_key_and_literal);
    tcase_add_loop_test(keys, test_key_normalised_path, 0,
                        (int)(sizeof(norm_cases) / sizeof(norm_cases[0])));
    tcase_add_test(keys, test_key_hold_path_edges);
    suite_add_tcase(s, keys);
    return s;
}

TH_MAIN(redact_suite)
