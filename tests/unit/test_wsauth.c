/*
 * test_wsauth.c - lib/app/wsauth.c and the websocket section
 * (lib/config/websocket.c): subprotocol offers, the Origin check against
 * websocket.allowed_origins, the channel each kind of user gets, and the
 * answer reshaped for nginx's auth_request; the section's defaults and its
 * refusals (origins that could never match, a TCP publisher, a publisher
 * without its token file or a token file without a publisher).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "wsauth.h"

START_TEST(subprotocol_offers)
{
    fm_wsauth_offer o;
    char longer[FM_AUTH_KEY_MAX + 64];

    fm_wsauth_subprotocols(NULL, &o);
    ck_assert_str_eq(o.key, "");
    ck_assert(!o.meta && !o.meta_first && !o.repeated);
    fm_wsauth_subprotocols("ws+meta.nchan, fetchml.bearer.abc123", &o);
    ck_assert_str_eq(o.key, "abc123");
    ck_assert(o.meta && o.meta_first && !o.repeated);
    fm_wsauth_subprotocols(" ws+meta.nchan ,\tfetchml.bearer.k2 ", &o);
    ck_assert_str_eq(o.key, "k2");
    ck_assert(o.meta_first);
    fm_wsauth_subprotocols("fetchml.bearer.abc, ws+meta.nchan", &o);
    ck_assert_str_eq(o.key, "abc");
    ck_assert(o.meta && !o.meta_first);
    fm_wsauth_subprotocols("fetchml.bearer.abc", &o);
    ck_assert(!o.meta && !o.meta_first);
    fm_wsauth_subprotocols("ws+meta.nchan", &o);
    ck_assert(o.meta && o.meta_first);
    ck_assert_str_eq(o.key, "");
    /* First means the list's first token: nchan answers nothing else (wsauth.h). */
    fm_wsauth_subprotocols("chat, ws+meta.nchan", &o);
    ck_assert(o.meta && !o.meta_first);
    fm_wsauth_subprotocols("ws+meta.nchan, chat, ws+meta.nchan", &o);
    ck_assert(o.meta && o.meta_first);
    fm_wsauth_subprotocols("", &o);
    ck_assert(!o.meta && !o.meta_first);
    fm_wsauth_subprotocols(" , ws+meta.nchan", &o);
    ck_assert(o.meta && !o.meta_first);
    fm_wsauth_subprotocols("ws+meta.nchan, fetchml.bearer.a, fetchml.bearer.b", &o);
    ck_assert(o.repeated);
    ck_assert_str_eq(o.key, "");
    fm_wsauth_subprotocols("ws+meta.nchan, fetchml.bearer.", &o);
    ck_assert_str_eq(o.key, "");
    ck_assert(!o.repeated);
    memset(longer, 'k', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    memcpy(longer, "fetchml.bearer.", 15);
    fm_wsauth_subprotocols(longer, &o);
    ck_assert(o.repeated);
    ck_assert_str_eq(o.key, "");
}
END_TEST

/* A config with the given websocket section body ("" = none). */
static fm_config *load_ws(th_config *c, const char *body)
{
    th_config_init(c, "test_wsauth");
    if (body[0] != '\0')
        th_config_set(c, "websocket", "%s", body);
    return th_config_load(c);
}

START_TEST(section_defaults)
{
    th_config c;
    fm_config *cfg = load_ws(&c, "");

    ck_assert_uint_eq(cfg->websocket.norigins, 0);
    ck_assert_ptr_null(cfg->websocket.publisher);
    ck_assert(fm_wsauth_origin_allowed(cfg, NULL));
    ck_assert(!fm_wsauth_origin_allowed(cfg, "https://a.example"));
    fm_config_free(cfg);
    th_config_free(&c);
}
END_TEST

START_TEST(origins_compared_whole)
{
    th_config c;
    fm_config *cfg = load_ws(&c, "  allowed_origins: [\"https://app.example.org\", "
                                 "\"http://localhost:8080\", \"https://[::1]:9101\"]\n"
                                 "  publisher: \"unix:/run/fetch_ml/nchan.sock\"\n"
                                 "  publisher_token_file: \"/etc/fetch_ml/publisher-token\"\n");

    ck_assert_uint_eq(cfg->websocket.norigins, 3);
    ck_assert_str_eq(cfg->websocket.publisher, "unix:/run/fetch_ml/nchan.sock");
    ck_assert_str_eq(cfg->websocket.publisher_token_file, "/etc/fetch_ml/publisher-token");
    ck_assert(fm_wsauth_origin_allowed(cfg, "https://app.example.org"));
    ck_assert(fm_wsauth_origin_allowed(cfg, "HTTPS://App.Example.ORG"));
    ck_assert(fm_wsauth_origin_allowed(cfg, "http://localhost:8080"));
    ck_assert(fm_wsauth_origin_allowed(cfg, "https://[::1]:9101"));
    ck_assert(!fm_wsauth_origin_allowed(cfg, "http://app.example.org"));
    ck_assert(!fm_wsauth_origin_allowed(cfg, "https://app.example.org:443"));
    ck_assert(!fm_wsauth_origin_allowed(cfg, "https://app.example.org.evil.example"));
    ck_assert(!fm_wsauth_origin_allowed(cfg, "https://evil.example/https://app.example.org"));
    ck_assert(!fm_wsauth_origin_allowed(cfg, "null"));
    ck_assert(!fm_wsauth_origin_allowed(cfg, ""));
    fm_config_free(cfg);
    th_config_free(&c);
}
END_TEST

START_TEST(section_refusals)
{
    static const char *const bad[] = {
        "  allowed_origins: [\"https://app.example.org/\"]\n",
        "  allowed_origins: [\"https://app.example.org/path\"]\n",
        "  allowed_origins: [\"ftp://app.example.org\"]\n",
        "  allowed_origins: [\"https://App.example.org\"]\n",
        "  allowed_origins: [\"*\"]\n",
        "  allowed_origins: \"https://app.example.org\"\n",
        "  publisher: \"127.0.0.1:8080\"\n",
        "  publisher: \"unix:/run/fetch_ml/nchan.sock\"\n", /* no token: anyone could publish */
        "  publisher_token_file: \"/etc/fetch_ml/publisher-token\"\n",
        "  unknown: 1\n",
    };
    char err[FM_CONFIG_ERR_MAX];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        th_config c;

        th_config_init(&c, "test_wsauth");
        th_config_set(&c, "websocket", "%s", bad[i]);
        (void)th_config_load_err(&c, err);
        ck_assert_msg(strstr(err, "websocket") != NULL, "%s: %s", bad[i], err);
        th_config_free(&c);
    }
}
END_TEST

START_TEST(channels_by_identity)
{
    fm_user u;
    char ch[FM_WSAUTH_CHANNEL_MAX];
    const char *kind;

    memset(&u, 0, sizeof(u));
    (void)snprintf(u.name, sizeof(u.name), "alice");
    u.effective = FM_PERM(FM_RES_JOBS, FM_ACT_READ) | FM_PERM(FM_RES_JOBS, FM_ACT_CREATE);
    fm_wsauth_channel(&u, ch, &kind);
    ck_assert_str_eq(ch, "u.alice");
    ck_assert_str_eq(kind, "user");
    u.effective |= FM_PERM(FM_RES_JOBS, FM_ACT_RUN);
    fm_wsauth_channel(&u, ch, &kind);
    ck_assert_str_eq(ch, "queue");
    ck_assert_str_eq(kind, "queue");
    u.admin = true;
    u.effective = FM_PERM_ALL;
    fm_wsauth_channel(&u, ch, &kind);
    ck_assert_str_eq(ch, "all");
    ck_assert_str_eq(kind, "all");
}
END_TEST

START_TEST(answer_for_auth_request)
{
    fm_response r;

    memset(&r, 0, sizeof(r));
    (void)fm_response_header(&r, "Retry-After: 3");
    fm_response_error(&r, 429, "RATE_LIMITED", "rate limit exceeded", "trace1");
    fm_wsauth_answer(&r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_ptr_null(r.body);
    ck_assert_uint_eq(r.nheaders, 3);
    ck_assert_str_eq(r.headers[0], "Retry-After: 3");
    ck_assert_str_eq(r.headers[1], "X-FetchML-Status: 429");
    ck_assert_str_eq(r.headers[2], "X-FetchML-Error: {\"error\":\"rate limit exceeded\",\"code\":"
                                   "\"RATE_LIMITED\",\"trace_id\":\"trace1\"}");
    fm_response_reset(&r);

    fm_response_error(&r, 401, "UNAUTHORIZED", "API key required", "t2");
    fm_wsauth_answer(&r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(r.headers[0], "X-FetchML-Status: 401");
    fm_response_reset(&r);

    r.status = 204;
    (void)fm_response_header(&r, "X-FetchML-WS-Channel: u.alice");
    fm_wsauth_answer(&r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.nheaders, 1);
    fm_response_reset(&r);

    /* No room for the two headers: left for nginx to answer its own 503. */
    for (int i = 0; i < FM_RESPONSE_MAX_HEADERS - 1; i++)
        (void)fm_response_header(&r, "X-Filler-%d: 1", i);
    fm_response_error(&r, 503, "SERVICE_UNAVAILABLE", "down", "t3");
    fm_wsauth_answer(&r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_uint_eq(r.nheaders, FM_RESPONSE_MAX_HEADERS - 1);
    fm_response_reset(&r);
}
END_TEST

static Suite *wsauth_suite(void)
{
    Suite *s = suite_create("wsauth");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, subprotocol_offers);
    tcase_add_test(tc, section_defaults);
    tcase_add_test(tc, origins_compared_whole);
    tcase_add_test(tc, section_refusals);
    tcase_add_test(tc, channels_by_identity);
    tcase_add_test(tc, answer_for_auth_request);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(wsauth_suite)
