/*
 * test_syslogmsg.c - nginx's syslog datagrams: the header forms nginx sends
 * (with and without a hostname, space-padded days), every malformed header
 * refused, and the rendered line: redacted, escaped, one line, cut safely.
 */
#include "redact.h"
#include "syslogmsg.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define NGINX_ERROR                                                                                \
    "2026/11/29 07:03:23 [error] 21922#21922: *3 client intended to send too large body: 27 "      \
    "bytes, client: 127.0.0.1, server: , request: \"POST /v1/x?token=y HTTP/1.1\""

static void parse_ok(const char *dgram, size_t len, int pri, const char *tag, const char *msg,
                     size_t msg_len)
{
    fm_syslogmsg m;

    ck_assert_int_eq(fm_syslogmsg_parse(dgram, len, &m), 0);
    ck_assert_int_eq(m.pri, pri);
    ck_assert_uint_eq(m.tag_len, strlen(tag));
    ck_assert_int_eq(memcmp(m.tag, tag, m.tag_len), 0);
    ck_assert_uint_eq(m.msg_len, msg_len);
    ck_assert_int_eq(memcmp(m.msg, msg, msg_len), 0);
}

START_TEST(test_nginx_forms)
{
    const char *err = "<187>Nov 29 07:03:23 nginx_error: " NGINX_ERROR;
    const char *acc = "<190>Nov  1 00:00:59 nginx_access: {\"status\":200}";
    const char *host = "<13>Feb 28 23:59:60 web-1.example.org nginx: hi there";
    const char nul[] = "<0>Jan 31 12:30:00 t: a\0b";

    parse_ok(err, strlen(err), 187, "nginx_error", NGINX_ERROR, strlen(NGINX_ERROR));
    parse_ok(acc, strlen(acc), 190, "nginx_access", "{\"status\":200}", 14);
    parse_ok(host, strlen(host), 13, "nginx", "hi there", 8);
    parse_ok(nul, sizeof(nul) - 1, 0, "t", "a\0b", 3);
    parse_ok("<191>Dec 09 09:09:09 a: ", 24, 191, "a", "", 0);
    /* A 32-byte tag is nginx's longest. */
    parse_ok("<1>Jan  1 00:00:00 abcdefghijklmnopqrstuvwxyz_01234: m", 54, 1,
             "abcdefghijklmnopqrstuvwxyz_01234", "m", 1);
}
END_TEST

static const char *const bad[] = {
    "",
    "Nov 29 07:03:23 t: m",         /* no PRI */
    "<>Nov 29 07:03:23 t: m",       /* empty PRI */
    "<192>Nov 29 07:03:23 t: m",    /* PRI out of range */
    "<007>Nov 29 07:03:23 t: m",    /* leading zero */
    "<1000>Nov 29 07:03:23 t: m",   /* four digits */
    "<1x>Nov 29 07:03:23 t: m",     /* not a number */
    "<13 Nov 29 07:03:23 t: m",     /* no '>' */
    "<13>Foo 29 07:03:23 t: m",     /* month */
    "<13>nov 29 07:03:23 t: m",     /* month is case-sensitive */
    "<13>Nov 00 07:03:23 t: m",     /* day 0 */
    "<13>Nov 32 07:03:23 t: m",     /* day 32 */
    "<13>Nov  0 07:03:23 t: m",     /* padded day 0 */
    "<13>Nov 29 24:03:23 t: m",     /* hour */
    "<13>Nov 29 07:60:23 t: m",     /* minute */
    "<13>Nov 29 07:03:61 t: m",     /* second */
    "<13>Nov 29 07-03-23 t: m",     /* separators */
    "<13>Nov 29 07:03:23t: m",      /* no space after the time */
    "<13>Nov 29 07:03:23 t:m",      /* no space after the colon */
    "<13>Nov 29 07:03:23 t m",      /* no colon */
    "<13>Nov 29 07:03:23 : m",      /* empty tag */
    "<13>Nov 29 07:03:23 host : m", /* empty tag after a hostname */
    "<13>Nov 29 07:03:23 a-b: m",   /* '-' is no tag byte, and no tag follows */
    "<13>Nov 29 07:03:23 h x-y: m", /* same after a hostname */
    "<13>Nov 29 07:03:23 abcdefghijklmnopqrstuvwxyz_012345: m", /* 33-byte tag */
    "<13>Nov 29 07:03:23 h\x01 t: m",                           /* control byte in the hostname */
};

START_TEST(test_malformed)
{
    const char *d = bad[_i];
    fm_syslogmsg m;

    ck_assert_msg(fm_syslogmsg_parse(d, strlen(d), &m) == FM_EPARSE, "accepted: %s", d);
}
END_TEST

START_TEST(test_every_truncation)
{
    const char *d = "<187>Nov 29 07:03:23 nginx_error: x";
    size_t header = strlen("<187>Nov 29 07:03:23 nginx_error: ");
    fm_syslogmsg m;

    for (size_t n = 0; n < header; n++)
        ck_assert_msg(fm_syslogmsg_parse(d, n, &m) == FM_EPARSE, "accepted a %zu-byte prefix", n);
    ck_assert_int_eq(fm_syslogmsg_parse(d, header, &m), 0);
    ck_assert_uint_eq(m.msg_len, 0);
    ck_assert_int_eq(fm_syslogmsg_parse(NULL, 10, &m), FM_EPARSE);
    ck_assert_int_eq(fm_syslogmsg_parse(d, strlen(d), NULL), FM_EPARSE);
}
END_TEST

static void line_is(const char *msg, size_t len, const char *want)
{
    char line[FM_SYSLOGMSG_LINE_MAX];
    size_t n = fm_syslogmsg_line(msg, len, line);

    ck_assert_msg(n == strlen(want) && memcmp(line, want, n) == 0, "got %.*s", (int)n, line);
}

START_TEST(test_line_redacts_and_escapes)
{
    const char fwd[] = "a\nb\r\tc\x01\x7f\0d";
    const char *forged = "x\n{\"user\":\"admin\"}";
    const char *query = "request: \"GET /v1/tasks?password=x&api_key=y HTTP/1.1\"";

    line_is(NGINX_ERROR, strlen(NGINX_ERROR),
            "2026/11/29 07:03:23 [error] 21922#21922: *3 client intended to send too large body: "
            "27 bytes, client: 127.0.0.1, server: , request: \"POST /v1/x?token=" FM_REDACTED
            " HTTP/1.1\"\n");
    line_is(query, strlen(query),
            "request: \"GET /v1/tasks?password=" FM_REDACTED "&api_key=" FM_REDACTED
            " HTTP/1.1\"\n");
    line_is(fwd, sizeof(fwd) - 1, "a\\nb\\r\\tc\\x01\\x7f\\x00d\n");
    /* A forged second line stays inside the first. */
    line_is(forged, strlen(forged), "x\\n{\"user\":\"admin\"}\n");
    line_is("", 0, "\n");
}
END_TEST

START_TEST(test_line_decodes_urls)
{
    const char *enc = "request: \"GET /v1/x?user%5Bpassword%5D=pw1&%70assword=pw2&q=Bearer+tok3tok3"
                      "&h=Authorization%3A%20Bearer%20tok4tok4&d=%2570assword%3Dpw5 HTTP/1.1\"";
    char line[FM_SYSLOGMSG_LINE_MAX];
    size_t n = fm_syslogmsg_line(enc, strlen(enc), line);
    const char *secrets[] = {"pw1", "pw2", "tok3tok3", "tok4tok4", "pw5"};

    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        ck_assert_msg(memmem(line, n, secrets[i], strlen(secrets[i])) == NULL, "%s in %.*s",
                      secrets[i], (int)n, line);
    ck_assert_ptr_nonnull(memmem(line, n, "user[password]=" FM_REDACTED, 25));
}
END_TEST

START_TEST(test_line_nginx_cut)
{
    static char msg[FM_SYSLOGMSG_NGINX_MAX + 1];
    char line[FM_SYSLOGMSG_LINE_MAX];
    size_t n;

    /* nginx cut its message inside a secret: the partial last token is dropped. */
    memset(msg, 'z', sizeof msg);
    memcpy(msg + 100, " request: \"GET /v1/a?q=", 24);
    memcpy(msg + FM_SYSLOGMSG_NGINX_MAX - 20, "/s3cr3tPartialValue", 19);
    n = fm_syslogmsg_line(msg, FM_SYSLOGMSG_NGINX_MAX - 1, line);
    ck_assert_ptr_null(memmem(line, n, "s3cr3tPartial", 13));
    ck_assert_int_eq(memcmp(line + n - 12, "/" FM_REDACTED "\n", 12), 0);
    /* Shorter messages were not cut, and keep their last token. */
    n = fm_syslogmsg_line("GET /v1/whoami", 14, line);
    ck_assert_int_eq(memcmp(line, "GET /v1/whoami\n", n), 0);
}
END_TEST

START_TEST(test_line_registered_secret)
{
    const char *msg = "upstream: \"redis://h\" auth S3cretRedisPw, again:S3cretRedisPw!";

    ck_assert_int_eq(fm_redact_add_secret("S3cretRedisPw"), 0);
    line_is(msg, strlen(msg),
            "upstream: \"redis://h\" auth " FM_REDACTED ", again:" FM_REDACTED "!\n");
    fm_redact_clear_secrets();
}
END_TEST

START_TEST(test_line_cut)
{
    static char msg[3 * FM_SYSLOGMSG_LINE_MAX], line[FM_SYSLOGMSG_LINE_MAX];
    const char *key = "Bearer "
                      "abcdefghij0123456789abcdefghij0123456789";
    size_t n, fill;

    /* Plain bytes: exactly the line size, newline last and only. */
    memset(msg, 'z', sizeof msg);
    n = fm_syslogmsg_line(msg, sizeof msg, line);
    ck_assert_uint_eq(n, FM_SYSLOGMSG_LINE_MAX);
    ck_assert_int_eq(line[n - 1], '\n');
    ck_assert_ptr_null(memchr(line, '\n', n - 1));

    /* Escapes are never split: 2047 whole "\x01" fit before the newline. */
    memset(msg, 1, sizeof msg);
    n = fm_syslogmsg_line(msg, sizeof msg, line);
    ck_assert_uint_eq(n, 4 * ((FM_SYSLOGMSG_LINE_MAX - 1) / 4) + 1);
    ck_assert_int_eq(memcmp(line + n - 5, "\\x01\n", 5), 0);

    /* A credential across the cut is dropped whole, never shown in part. */
    for (fill = FM_SYSLOGMSG_LINE_MAX - 40; fill < FM_SYSLOGMSG_LINE_MAX; fill++) {
        memset(msg, 'z', fill);
        msg[fill] = ' ';
        memcpy(msg + fill + 1, key, strlen(key));
        n = fm_syslogmsg_line(msg, fill + 1 + strlen(key), line);
        ck_assert_int_eq(line[n - 1], '\n');
        ck_assert_ptr_null(memmem(line, n, "abcdefghij0", 11));
    }
}
END_TEST

static Suite *syslogmsg_suite(void)
{
    Suite *s = suite_create("syslogmsg");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_nginx_forms);
    tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, test_every_truncation);
    tcase_add_test(tc, test_line_redacts_and_escapes);
    tcase_add_test(tc, test_line_registered_secret);
    tcase_add_test(tc, test_line_decodes_urls);
    tcase_add_test(tc, test_line_nginx_cut);
    tcase_add_test(tc, test_line_cut);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(syslogmsg_suite)
