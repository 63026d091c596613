/*
 * routes_ws.c - GET /ws (SPEC 4.2): the FastCGI side of nginx's WebSocket
 * location (nginx/snippets/fetchml-websocket.conf).
 *
 *   auth      nginx's auth_request, before any 101: the whole pipeline runs
 *             (pipeline.h), then this handler checks the Origin and the
 *             subprotocol offer, picks the channel from the authenticated
 *             user only (wsauth.h), registers the connection (wsconn.h) and
 *             answers 204 with the channel, the connection id (its control
 *             channel is "c.<id>"), user, key id and kind in X-FetchML-WS-*
 *             headers, which nginx turns into nchan_channel_id. A refusal is
 *             reshaped for auth_request by fm_wsauth_answer.
 *   open      nchan_subscribe_request, after the upgrade: one audit record
 *             (action "WS_OPEN /ws", status 101, reason "channel=<kind>")
 *             naming who the registry says opened the connection; only
 *             when it has no entry (Redis down) what nginx's params say,
 *             with "unregistered" added to the reason.
 *   close     nchan_unsubscribe_request: the registry entry ends, and one
 *             audit record (action "WS_CLOSE /ws", status 101, reason
 *             "<why> channel=<kind> duration_ms=<n>"; why is the relay's
 *             mark, key_revoked or key_expired, or "closed": the client or
 *             nginx ended it). A socket nginx's reload or stop ended gets no
 *             callback: the relay notices it is gone (reason "gone").
 * open and close come only from nginx's own locations: FETCHML_WS_EVENT is
 * a param of its config, which no client header can set (headers arrive as
 * HTTP_*), and the values they carry are those auth_request_set took from
 * the auth answer.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "clock.h"
#include "log.h"
#include "routes.h"
#include "wsauth.h"

static char host[FM_WSCONN_HOST_MAX];

fm_wsconn_store fm_route_ws_store(const fm_env *env)
{
    if (host[0] == '\0')
        fm_wsconn_host(host);
    return (fm_wsconn_store){
        .redis = env->redis, .prefix = env->cfg->redis.key_prefix, .host = host};
}

static int refuse(fm_call *call, fm_response *resp, int status, const char *code,
                  const char *reason, const char *message)
{
    (void)snprintf(call->reason, sizeof(call->reason), "%s", reason);
    fm_response_error(resp, status, code, message, call->trace_id);
    return 0;
}

int fm_route_ws(fm_call *call, fm_response *resp)
{
    const fm_request *req = call->req;
    fm_wsconn_store store = fm_route_ws_store(call->env);
    char channel[FM_WSAUTH_CHANNEL_MAX];
    fm_wsauth_offer offer;
    const char *kind;
    fm_wsconn c;

    if (!req->ws_auth || !req->ws_upgrade)
        return refuse(call, resp, 400, "BAD_REQUEST", "not_websocket",
                      "GET /ws is a WebSocket: open it with a WebSocket client");
    if (req->ws_repeated)
        return refuse(call, resp, 400, "BAD_REQUEST", "repeated_header",
                      "send Origin and Sec-WebSocket-Protocol at most once each");
    if (!fm_wsauth_origin_allowed(call->env->cfg, req->origin))
        return refuse(call, resp, 403, "FORBIDDEN", "origin_not_allowed",
                      "origin not allowed (websocket.allowed_origins)");
    fm_wsauth_subprotocols(req->ws_protocol, &offer);
    /* nchan answers only ws+meta.nchan, and only when it comes first (wsauth.h). */
    if (req->ws_protocol != NULL && !offer.meta_first)
        return refuse(call, resp, 400, "BAD_REQUEST", "bad_subprotocol",
                      "offer the subprotocol ws+meta.nchan first (then fetchml.bearer.<key>, if "
                      "the key is not in a header)");
    fm_wsauth_channel(call->user, channel, &kind);
    memset(&c, 0, sizeof(c));
    fm_wsconn_new_id(c.id);
    (void)snprintf(c.user, sizeof(c.user), "%s", call->user->name);
    (void)snprintf(c.key_id, sizeof(c.key_id), "%s", call->key_id);
    (void)snprintf(c.kind, sizeof(c.kind), "%s", kind);
    c.opened_ms = fm_clock_now_ms();
    /* A socket the relay cannot find could not be closed when its key is revoked. */
    if (fm_wsconn_register(&store, &c) != FM_OK) {
        fm_log_error("cannot register a WebSocket (%s); refusing trace_id=%s",
                     fm_redis_errstr(call->env->redis), call->trace_id);
        (void)fm_response_header(resp, "Retry-After: 1");
        return refuse(call, resp, 503, "SERVICE_UNAVAILABLE", "ws_registry_unavailable",
                      "service temporarily unavailable");
    }
    if (fm_response_header(resp, "X-FetchML-WS-Channel: %s", channel) != FM_OK ||
        fm_response_header(resp, "X-FetchML-WS-Conn: %s", c.id) != FM_OK ||
        fm_response_header(resp, "X-FetchML-WS-User: %s", c.user) != FM_OK ||
        fm_response_header(resp, "X-FetchML-WS-Key-Id: %s", c.key_id) != FM_OK ||
        fm_response_header(resp, "X-FetchML-WS-Kind: %s", c.kind) != FM_OK)
        return -1;
    (void)snprintf(call->reason, sizeof(call->reason), "channel=%s", kind);
    resp->status = 204;
    return 0;
}

/*
 * Whether the rest of the handshake is one nchan will answer with a 101
 * (RFC 6455 section 4.1): HTTP/1.1 or later, Sec-WebSocket-Version 13, and a
 * Sec-WebSocket-Key that is the base64 of 16 bytes (24 characters ending
 * "=="). Otherwise the pool refuses it (400) before anything is registered
 * or audited as opened: nchan would refuse it after the auth answer.
 */
static bool handshake_ok(const char *protocol, const char *version, const char *key)
{
    size_t n = key != NULL ? strlen(key) : 0;

    if (protocol == NULL || strcmp(protocol, "HTTP/1.0") == 0 ||
        strncmp(protocol, "HTTP/", 5) != 0 || version == NULL || strcmp(version, "13") != 0 ||
        n != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '+' && key[i] != '/')
            return false;
    return true;
}

/* The key offered as subprotocol, as the request's credential. */
static void take_offered_key(const char *protocols, fm_request *req, fm_wsauth_offer *offer)
{
    fm_wsauth_subprotocols(protocols, offer);
    if (offer->key[0] == '\0' && !offer->repeated)
        return;
    /* One credential only: a key offered as subprotocol and in a header is ambiguous. */
    if (offer->repeated || req->x_api_key != NULL || req->authorization != NULL)
        req->credentials_repeated = true;
    else
        req->x_api_key = offer->key;
}

void fm_route_ws_prepare(const char *const p[P_COUNT], const int count[P_COUNT], fm_request *req,
                         fm_wsauth_offer *offer)
{
    const char *q;

    req->origin = p[P_ORIGIN];
    req->ws_repeated = count[P_ORIGIN] > 1 || count[P_WS_PROTOCOL] > 1;
    if (p[P_WS_AUTH] == NULL) {
        /* A handshake sent in clear: its subprotocol key is refused and recorded like a header's.
         */
        if (req->plain_http && strcmp(req->path, "/ws") == 0)
            take_offered_key(p[P_WS_PROTOCOL], req, offer);
        return;
    }
    /*
     * auth_request's subrequest has its own URI and no query: the client's
     * are in REQUEST_URI, and the query is refused there as on any route
     * that reads none (a key in it is not accepted).
     */
    req->ws_auth = true;
    req->ws_upgrade = p[P_UPGRADE] != NULL && strcasecmp(p[P_UPGRADE], "websocket") == 0 &&
                      handshake_ok(p[P_SERVER_PROTOCOL], p[P_WS_VERSION], p[P_WS_KEY]);
    req->path = "/ws";
    q = p[P_REQUEST_URI] != NULL ? strchr(p[P_REQUEST_URI], '?') : NULL;
    req->query = q != NULL ? q + 1 : NULL;
    req->ws_protocol = p[P_WS_PROTOCOL];
    take_offered_key(req->ws_protocol, req, offer);
}

/* A word nginx passed on (from the auth answer), or NULL when absent or odd. */
static const char *word(const char *s, size_t max)
{
    size_t n = s != NULL ? strnlen(s, max) : 0;

    return n > 0 && n < max &&
                   strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
                       n
               ? s
               : NULL;
}

bool fm_route_ws_audit_close(const fm_env *env, const char *trace_id, const char *source_ip,
                             const fm_wsconn *c, const char *why, int64_t now_ms)
{
    char reason[128], duration[32] = "-";
    fm_audit_record rec;

    if (c->opened_ms > 0)
        (void)snprintf(duration, sizeof(duration), "%" PRId64,
                       now_ms > c->opened_ms ? now_ms - c->opened_ms : 0);
    (void)snprintf(reason, sizeof(reason), "%s channel=%s duration_ms=%s", why,
                   c->kind[0] != '\0' ? c->kind : "-", duration);
    rec = (fm_audit_record){
        .trace_id = trace_id,
        .user = c->user[0] != '\0' ? c->user : NULL,
        .key_id = c->key_id[0] != '\0' ? c->key_id : NULL,
        .action = "WS_CLOSE /ws",
        .resource = "/ws",
        .source_ip = source_ip,
        .status = 101,
        .reason = reason,
    };
    if (fm_audit_write(env->audit, &rec) == FM_OK)
        return true;
    fm_log_error("audit record of a WebSocket close could not be written (%s) user=%s "
                 "key_id=%s trace_id=%s",
                 strerror(errno), c->user, c->key_id, trace_id != NULL ? trace_id : "-");
    return false;
}

static void ws_open(const fm_env *env, const char *const p[P_COUNT], const char *trace_id)
{
    fm_wsconn_store store = fm_route_ws_store(env);
    const char *id = word(p[P_WS_CONN], FM_WSCONN_ID_SIZE + 1);
    const char *user, *key_id, *kind;
    char reason[64];
    fm_audit_record rec;
    fm_wsconn c;
    bool found = false;

    if (id != NULL && fm_wsconn_get(&store, id, &c, &found) != FM_OK)
        fm_log_warn("cannot read a WebSocket's registry entry (%s) trace_id=%s",
                    fm_redis_errstr(env->redis), trace_id != NULL ? trace_id : "-");
    if (found) {
        user = c.user;
        key_id = c.key_id;
        kind = c.kind;
    } else {
        user = word(p[P_WS_USER], FM_WSCONN_USER_MAX);
        key_id = word(p[P_WS_KEY_ID], FM_WSCONN_KEY_ID_MAX);
        kind = word(p[P_WS_KIND], FM_WSCONN_KIND_MAX);
    }
    (void)snprintf(reason, sizeof(reason), "channel=%s%s", kind != NULL ? kind : "-",
                   found ? "" : " unregistered");
    rec = (fm_audit_record){
        .trace_id = trace_id,
        .user = user,
        .key_id = key_id,
        .action = "WS_OPEN /ws",
        .resource = "/ws",
        .source_ip = p[P_REMOTE_ADDR],
        .status = 101,
        .reason = reason,
    };
    /* The socket is open already: nothing to refuse, but the operator must know. */
    if (fm_audit_write(env->audit, &rec) != FM_OK)
        fm_log_error("audit record of a WebSocket open could not be written (%s) trace_id=%s",
                     strerror(errno), trace_id != NULL ? trace_id : "-");
}

static void ws_close(const fm_env *env, const char *const p[P_COUNT], const char *trace_id)
{
    fm_wsconn_store store = fm_route_ws_store(env);
    const char *id = word(p[P_WS_CONN], FM_WSCONN_ID_SIZE + 1);
    fm_wsconn c;
    bool found = false;

    memset(&c, 0, sizeof(c));
    if (id != NULL && fm_wsconn_end(&store, id, &c, &found) != FM_OK)
        fm_log_warn("cannot end a WebSocket's registry entry (%s) trace_id=%s",
                    fm_redis_errstr(env->redis), trace_id != NULL ? trace_id : "-");
    if (!found) {
        /* Redis could not say, or the relay ended it: what nginx knows still names it. */
        const char *user = word(p[P_WS_USER], FM_WSCONN_USER_MAX),
                   *key_id = word(p[P_WS_KEY_ID], FM_WSCONN_KEY_ID_MAX),
                   *kind = word(p[P_WS_KIND], FM_WSCONN_KIND_MAX);

        memset(&c, 0, sizeof(c));
        (void)snprintf(c.user, sizeof(c.user), "%s", user != NULL ? user : "");
        (void)snprintf(c.key_id, sizeof(c.key_id), "%s", key_id != NULL ? key_id : "");
        (void)snprintf(c.kind, sizeof(c.kind), "%s", kind != NULL ? kind : "");
    }
    (void)fm_route_ws_audit_close(env, trace_id, p[P_REMOTE_ADDR], &c,
                                  c.reason[0] != '\0' ? c.reason : "closed", fm_clock_now_ms());
}

void fm_route_ws_event(const fm_env *env, const char *const p[P_COUNT], fm_response *resp)
{
    const char *trace_id = word(p[P_REQUEST_ID], 65);

    if (strcmp(p[P_WS_EVENT], "open") == 0)
        ws_open(env, p, trace_id);
    else if (strcmp(p[P_WS_EVENT], "close") == 0)
        ws_close(env, p, trace_id);
    else
        fm_log_warn("unknown FETCHML_WS_EVENT (nginx configuration) trace_id=%s",
                    trace_id != NULL ? trace_id : "-");
    resp->status = 204;
}
