/*
 * pipeline.c - the request pipeline (order and responses: see pipeline.h).
 *
 * The steps are a table of functions, as nginx's phase handlers are: each
 * either lets the request go on or produces the final response and stops the
 * walk; the audit record is written once, at the end, whatever the outcome. Nothing here reads a
 * header other than the two credential headers, and the client address comes only from REMOTE_ADDR.
 */
#include "pipeline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "bruteforce.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include <sodium.h>

/* Who and why, carried from the steps to the audit record. */
typedef struct outcome {
    const char *user;
    const char *key_id;
    const char *reason;
} outcome;

/* A warning that could repeat on every request is logged at most this often per worker. */
#define WARN_INTERVAL_MS 10000

typedef struct throttle {
    bool armed;
    int64_t last_ms;          /* when the last one was logged */
    unsigned long suppressed; /* dropped since */
} throttle;

/* Per worker process (each is forked before it serves anything). */
static throttle allow_warn, guard_warn;

static double mono_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Logs unless one went out within WARN_INTERVAL_MS; the next says how many were dropped. */
__attribute__((format(printf, 3, 4))) static void warn_throttled(throttle *t, int64_t now_ms,
                                                                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (t->armed && now_ms - t->last_ms < WARN_INTERVAL_MS) {
        t->suppressed++;
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->suppressed > 0)
        fm_log_warn("%s (%lu more like this suppressed since the last one)", msg, t->suppressed);
    else
        fm_log_warn("%s", msg);
    t->armed = true;
    t->last_ms = now_ms;
    t->suppressed = 0;
}

/*
 * nginx's $request_id is 32 hex; accept what a proxy might send, refuse
 * anything odd. Returns the length of an acceptable id, 0 otherwise.
 */
static size_t trace_id_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= FM_TRACE_ID_MAX || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                      (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return 0;
    }
    return n;
}

static void make_trace_id(const fm_request *req, char out[FM_TRACE_ID_MAX + 1])
{
    unsigned char rnd[16];
    size_t n = trace_id_ok(req->request_id);

    if (n > 0) {
        /* n <= FM_TRACE_ID_MAX, checked above: a plain copy, no formatting. */
        memcpy(out, req->request_id, n);
        out[n] = '\0';
        return;
    }
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(out, FM_TRACE_ID_MAX + 1, rnd, sizeof(rnd));
}

bool fm_pipeline_streams(const fm_route *routes, size_t nroutes, const char *method,
                         const char *path)
{
    fm_route_found found;

    fm_route_find(routes, nroutes, method, path, &found);
    return found.route != NULL && (found.route->flags & FM_ROUTE_STREAM_BODY) != 0;
}

/* host: the client address, parsed once (NULL when it is not an IP literal). */
static bool ip_allowed(const fm_ipacl *acl, const fm_cidr *host)
{
    return acl->count == 0 || fm_ipacl_match_host(acl, host);
}

/* 503 with a short Retry-After: the causes (Redis, the audit disk) are usually brief. */
static void unavailable(fm_response *resp, const char *message, const char *trace_id)
{
    (void)fm_response_header(resp, "Retry-After: 1");
    fm_response_error(resp, 503, "SERVICE_UNAVAILABLE", message, trace_id);
}

/* ---- the steps ---------------------------------------------------------------------- */

/*
 * One request on its way through the steps. A step reads what the steps
 * before it left here and either lets the request go on (STEP_NEXT) or has
 * put the final answer in resp (STEP_DONE), with the audit reason in o.
 */
typedef struct req_state {
    const fm_env *env;
    const fm_route *routes;
    size_t nroutes;
    fm_call *call;
    fm_response *resp;
    outcome o;
    fm_rl_result rl;
    fm_auth_result auth;
    const fm_cidr *host;   /* the client address, parsed once; NULL: not an IP literal */
    fm_bf_addr guard_addr; /* the same, as the brute-force guard keys it */
    const fm_route *route; /* set by step_route */
    bool routed;           /* step_route ran: found is its answer */
    fm_route_found found;  /* the route table read once (fm_route_find), by step_route or later */
    int64_t now_ms;        /* CLOCK_MONOTONIC, once per request */
    bool redis_failed;     /* a Redis call of this request failed: do not wait on it again */
    bool auth_done;        /* auth holds the key check's answer (see authenticate) */
} req_state;

typedef enum step_rc { STEP_NEXT, STEP_DONE } step_rc;

typedef step_rc (*step_fn)(req_state *st);

/* Ends the request with an error response and its audit reason. */
static step_rc refuse(req_state *st, const char *reason, int status, const char *code,
                      const char *message)
{
    st->o.reason = reason;
    fm_response_error(st->resp, status, code, message, st->call->trace_id);
    return STEP_DONE;
}

static step_rc step_ip_allow(req_state *st)
{
    if (ip_allowed(&st->env->cfg->auth.ip_whitelist, st->host))
        return STEP_NEXT;
    return refuse(st, "ip_not_allowed", 403, "IP_NOT_ALLOWED", "client address not allowed");
}

/* Is this address blocked? FM_EREDIS (or FM_EINVAL) when the guard could not say. */
static fm_err guard_check(const req_state *st, bool *blocked, uint32_t *block_s)
{
    const fm_config *cfg = st->env->cfg;

    return fm_bruteforce_check(st->env->redis, cfg->redis.key_prefix,
                               &cfg->rate_limit.auth_failures, &st->guard_addr, st->now_ms, blocked,
                               block_s);
}

/* Counts one request without a valid key; *blocked when the address is blocked now. */
static fm_err guard_count_failure(const req_state *st, bool *blocked, uint32_t *block_s)
{
    const fm_config *cfg = st->env->cfg;

    if (st->redis_failed)
        return FM_EREDIS; /* this request already waited on Redis once */
    return fm_bruteforce_fail(st->env->redis, cfg->redis.key_prefix, &cfg->rate_limit.auth_failures,
                              &st->guard_addr, st->auth.status != FM_AUTH_MISSING, st->now_ms,
                              blocked, block_s);
}

/* The key check, once per request: the guard may need the key's fingerprint before its step. */
static void authenticate(req_state *st)
{
    const fm_request *req = st->call->req;
    fm_auth_result *auth = &st->auth;

    if (st->auth_done)
        return;
    st->auth_done = true;
    if (req->credentials_repeated) {
        memset(auth, 0, sizeof(*auth));
        auth->status = FM_AUTH_MALFORMED;
    } else if (fm_auth_authenticate(st->env->cfg, req->x_api_key, req->authorization,
                                    (int64_t)time(NULL), auth) != FM_OK) {
        auth->status = FM_AUTH_MALFORMED; /* could not decide: refused, as a bad key */
    }
}

/*
 * nginx's plain-HTTP server passes a request on only when it carries a
 * credential (it redirects the rest to HTTPS): that key has crossed the
 * network in clear. It is refused rather than redirected (a client following
 * the redirect would only send it again), and its key id goes to the audit
 * trail and api.log so that the operator rotates it. First of all the steps:
 * the key is exposed whatever the address says, and every key, valid or not,
 * gets the same answer, so the sender learns nothing. It counts as a failed
 * authentication, and an address the guard blocks gets the guard's 429
 * instead, so that a flood of keys in clear cannot grow the logs without
 * bound (the request never goes on to the later steps either way).
 */
static step_rc step_plain_http(req_state *st)
{
    const fm_request *req = st->call->req;
    fm_auth_result *auth = &st->auth;
    uint32_t block_s;
    bool blocked;

    if (!req->plain_http)
        return STEP_NEXT;
    if (guard_check(st, &blocked, &block_s) != FM_OK) {
        st->redis_failed = true; /* recorded all the same, not counted */
    } else if (blocked) {
        (void)fm_response_header(st->resp, "Retry-After: %u", (unsigned)block_s);
        return refuse(st, "ip_blocked", 429, "RATE_LIMITED",
                      "too many failed authentications from this address");
    }
    authenticate(st);
    st->o.key_id = auth->key_id[0] != '\0' ? auth->key_id : NULL;
    st->o.user = auth->status == FM_AUTH_OK ? auth->user->name : NULL;
    fm_log_warn("credential sent over plain HTTP, rotate it: source=%s key_id=%s user=%s "
                "trace_id=%s",
                req->remote_addr, st->o.key_id != NULL ? st->o.key_id : "-",
                st->o.user != NULL ? st->o.user : "-", st->call->trace_id);
    if (guard_count_failure(st, &blocked, &block_s) == FM_OK && blocked)
        fm_log_warn("brute-force guard: source=%s blocked for %u s after credentials sent in clear "
                    "trace_id=%s",
                    req->remote_addr, (unsigned)block_s, st->call->trace_id);
    return refuse(st, "credential_in_clear", 403, "CREDENTIAL_IN_CLEAR",
                  "credential sent over plain HTTP: use HTTPS, and rotate this key");
}

/*
 * From a blocked address, only a known client goes on. Every key that can be
 * fingerprinted, valid or not, costs the same work here (hash, in-memory
 * lookup, one EXISTS unless this worker knows the pair), and all but a known
 * one get the same 429: neither the answer nor its timing says whether a key
 * is valid. A key_id is public (it is in the audit trail), but matching one
 * only lets a request reach the key check, where a wrong key still fails.
 */
static bool known_client(req_state *st)
{
    const fm_config *cfg = st->env->cfg;
    bool known = false;

    if (cfg->rate_limit.auth_failures.known_days == 0)
        return false;
    authenticate(st);
    if (st->auth.key_id[0] == '\0')
        return false;
    if (fm_bruteforce_known(st->env->redis, cfg->redis.key_prefix, &cfg->rate_limit.auth_failures,
                            &st->guard_addr, st->auth.key_id, st->now_ms, &known) == FM_EREDIS)
        st->redis_failed = true;
    return known;
}

static step_rc step_guard(req_state *st)
{
    const fm_env *env = st->env;
    uint32_t block_s;
    bool blocked;

    if (guard_check(st, &blocked, &block_s) == FM_OK) {
        if (!blocked || known_client(st))
            return STEP_NEXT;
        /*
         * A block this worker knows of while Redis cannot say whether the key
         * is a known client: under "deny" that is Redis being unavailable (503,
         * retry soon), not the client's fault; under "allow" the block holds.
         * Either way the answer does not depend on the key.
         */
        if (!st->redis_failed || env->cfg->rate_limit.on_redis_error_allow) {
            (void)fm_response_header(st->resp, "Retry-After: %u", (unsigned)block_s);
            fm_metrics_inc(FM_MET_GUARD_BLOCKS);
            return refuse(st, "ip_blocked", 429, "RATE_LIMITED",
                          "too many failed authentications from this address");
        }
    }
    st->redis_failed = true;
    /*
     * Under "deny" nothing can be admitted without Redis anyway; refusing
     * before the key is checked also keeps 401-versus-503 from telling a
     * guesser, uncounted, which keys are right.
     */
    if (!env->cfg->rate_limit.on_redis_error_allow) {
        st->o.reason = "rate_limiter_unavailable";
        warn_throttled(&guard_warn, st->now_ms,
                       "Redis unavailable (%s); refusing (on_redis_error: deny) trace_id=%s",
                       fm_redis_errstr(env->redis), st->call->trace_id);
        unavailable(st->resp, "service temporarily unavailable", st->call->trace_id);
        return STEP_DONE;
    }
    warn_throttled(&guard_warn, st->now_ms,
                   "brute-force guard unavailable (%s); not blocking source=%s trace_id=%s",
                   fm_redis_errstr(env->redis), st->call->req->remote_addr, st->call->trace_id);
    return STEP_NEXT;
}

/*
 * A request that ends without a valid key counts against its source
 * address: a presented credential that failed (or a valid key used outside
 * its own networks) as a failed authentication, a request without any
 * credential (a health probe, a forgotten header, a flood) against the
 * looser anonymous limit. The api.log line names the source, for fail2ban.
 */
static fm_metric failure_metric(fm_auth_status status)
{
    switch (status) {
    case FM_AUTH_OK:
        return FM_MET_AUTH_USER_IP; /* a valid key, outside its networks */
    case FM_AUTH_MISSING:
        return FM_MET_AUTH_MISSING_KEY;
    case FM_AUTH_MALFORMED:
        return FM_MET_AUTH_MALFORMED_KEY;
    case FM_AUTH_EXPIRED:
        return FM_MET_AUTH_EXPIRED;
    case FM_AUTH_UNKNOWN:
        break;
    }
    return FM_MET_AUTH_UNKNOWN_KEY;
}

static void count_failure(req_state *st)
{
    const char *addr = st->call->req->remote_addr;
    bool presented = st->auth.status != FM_AUTH_MISSING;
    const char *reason =
        st->auth.status == FM_AUTH_OK ? "user_ip_not_allowed" : fm_auth_reason(st->auth.status);
    uint32_t block_s;
    bool blocked;

    fm_metrics_inc(failure_metric(st->auth.status));
    fm_log_warn("authentication failed: reason=%s source=%s key_id=%s trace_id=%s", reason, addr,
                st->auth.key_id[0] ? st->auth.key_id : "-", st->call->trace_id);
    if (guard_count_failure(st, &blocked, &block_s) != FM_OK)
        warn_throttled(&guard_warn, st->now_ms,
                       "brute-force guard unavailable (%s); failure not counted source=%s "
                       "trace_id=%s",
                       fm_redis_errstr(st->env->redis), addr, st->call->trace_id);
    else if (blocked)
        fm_log_warn("brute-force guard: source=%s blocked for %u s after %s trace_id=%s", addr,
                    (unsigned)block_s,
                    presented ? "repeated failed authentications"
                              : "too many requests without a key",
                    st->call->trace_id);
}

static step_rc step_authenticate(req_state *st)
{
    fm_auth_result *auth = &st->auth;

    authenticate(st);
    if (auth->status == FM_AUTH_OK) {
        st->call->user = auth->user;
        st->call->key_id = auth->key_id;
        st->o.user = auth->user->name;
        st->o.key_id = auth->key_id;
        return STEP_NEXT;
    }
    st->o.key_id = auth->key_id[0] != '\0' ? auth->key_id : NULL;
    count_failure(st);
    (void)fm_response_header(st->resp, "WWW-Authenticate: Bearer realm=\"fetchml\"");
    return refuse(st, fm_auth_reason(auth->status), 401, "UNAUTHORIZED",
                  auth->status == FM_AUTH_MISSING ? "API key required"
                                                  : "invalid or expired API key");
}

/* A valid key from outside its own networks is a misuse signal: counted as a failure. */
static step_rc step_user_ip_allow(req_state *st)
{
    if (ip_allowed(&st->auth.user->ip_whitelist, st->host))
        return STEP_NEXT;
    count_failure(st);
    return refuse(st, "user_ip_not_allowed", 403, "IP_NOT_ALLOWED",
                  "client address not allowed for this key");
}

/* The key has authenticated from this address: it is a known client of it from now on. */
static step_rc step_remember_client(req_state *st)
{
    const fm_config *cfg = st->env->cfg;

    if (!st->redis_failed && fm_bruteforce_remember(st->env->redis, cfg->redis.key_prefix,
                                                    &cfg->rate_limit.auth_failures, &st->guard_addr,
                                                    st->auth.key_id, st->now_ms) == FM_EREDIS)
        st->redis_failed = true;
    return STEP_NEXT;
}

/* Redis could not decide: rate_limit.on_redis_error says whether to admit. */
static step_rc rate_unknown(req_state *st)
{
    const fm_env *env = st->env;

    if (!env->cfg->rate_limit.on_redis_error_allow) {
        st->o.reason = "rate_limiter_unavailable";
        fm_log_error("rate limiter unavailable (%s); refusing (on_redis_error: deny) "
                     "trace_id=%s",
                     fm_redis_errstr(env->redis), st->call->trace_id);
        unavailable(st->resp, "service temporarily unavailable", st->call->trace_id);
        return STEP_DONE;
    }
    fm_metrics_inc(FM_MET_RATE_UNCHECKED);
    warn_throttled(&allow_warn, st->now_ms,
                   "rate limiter unavailable (%s); admitting (on_redis_error: allow) "
                   "trace_id=%s",
                   fm_redis_errstr(env->redis), st->call->trace_id);
    return STEP_NEXT;
}

static step_rc step_rate_limit(req_state *st)
{
    const fm_config *cfg = st->env->cfg;
    const fm_user *user = st->auth.user;

    if (st->redis_failed || fm_ratelimit_take(st->env->redis, cfg->redis.key_prefix, user->name,
                                              fm_config_user_rate(cfg, user), cfg->server.workers,
                                              st->now_ms, &st->rl) != FM_OK)
        return rate_unknown(st);
    fm_ratelimit_headers(&st->rl, st->resp);
    if (!st->rl.allowed) {
        (void)fm_response_header(st->resp, "Retry-After: %u", (unsigned)st->rl.retry_after_s);
        fm_metrics_inc(FM_MET_RATE_LIMITED);
        return refuse(st, "rate_limited", 429, "RATE_LIMITED", "rate limit exceeded");
    }
    st->call->rate = &st->rl;
    return STEP_NEXT;
}

/* 404 when no pattern matches the path, 405 with Allow when only the method is wrong. */
static step_rc step_route(req_state *st)
{
    const fm_request *req = st->call->req;
    const fm_route_found *f = &st->found;

    fm_route_find(st->routes, st->nroutes, req->method, req->path, &st->found);
    st->routed = true;
    if (f->route != NULL) {
        st->route = f->route;
        memcpy(st->call->params, f->params, sizeof(st->call->params));
        st->call->tail = f->tail;
        return STEP_NEXT;
    }
    if (f->first == st->nroutes)
        return refuse(st, "no_route", 404, "NOT_FOUND", "not found");
    (void)fm_response_header(st->resp, "Allow: %s", f->allow);
    return refuse(st, "method_not_allowed", 405, "METHOD_NOT_ALLOWED", "method not allowed");
}

static step_rc step_rbac(req_state *st)
{
    if (fm_rbac_allows(st->auth.user->effective, st->route->required))
        return STEP_NEXT;
    return refuse(st, "forbidden", 403, "FORBIDDEN", "permission denied");
}

/* A handler only ever sees a whole body, within the configured size. */
/*
 * "application/json", any letter case, optionally followed by parameters
 * ("; charset=utf-8"): the media type of RFC 9110 section 8.3.1, where
 * optional white space may precede the ';'.
 */
static bool is_json_type(const char *ct)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;

    if (ct == NULL || strncasecmp(ct, json, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static step_rc step_body(req_state *st)
{
    const fm_request *req = st->call->req;

    /* A route that reads no query refuses one, as the ones that read it refuse unknown names. */
    if (req->query != NULL && req->query[0] != '\0' && (st->route->flags & FM_ROUTE_QUERY) == 0)
        return refuse(st, "bad_query", 400, "BAD_REQUEST", "this route takes no query parameters");
    if (req->body_too_large)
        return refuse(st, "body_too_large", 413, "PAYLOAD_TOO_LARGE", "request body too large");
    if (req->body_slow)
        return refuse(st, "body_too_slow", 408, "REQUEST_TIMEOUT",
                      "request body sent slower than data.min_transfer_bytes_per_second");
    if (req->body_incomplete)
        return refuse(st, "body_incomplete", 400, "BAD_REQUEST", "request body incomplete");
    /* A body is read to its announced length: without one it would be cut to nothing. */
    if (req->length_unknown)
        return refuse(st, "length_required", 411, "LENGTH_REQUIRED",
                      "Content-Length required (a body of unknown length, such as a chunked one, "
                      "is not taken here)");
    /* No body has no media type: a worker's bare POST /v1/worker/claim needs none. */
    if ((st->route->flags & FM_ROUTE_JSON_BODY) != 0 && req->body_len > 0 &&
        !is_json_type(req->content_type))
        return refuse(st, "unsupported_media_type", 415, "UNSUPPORTED_MEDIA_TYPE",
                      "request body must be sent as Content-Type: application/json");
    return STEP_NEXT;
}

/* Only a request that may change state needs the check; reads are refused at the write. */
static step_rc step_audit_ready(req_state *st)
{
    const char *method = st->call->req->method;

    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
        fm_audit_ready(st->env->audit) == FM_OK)
        return STEP_NEXT;
    st->o.reason = "audit_unavailable";
    fm_log_error("audit trail not writable (%s); refusing before any change trace_id=%s",
                 strerror(errno), st->call->trace_id);
    unavailable(st->resp, "audit trail unavailable", st->call->trace_id);
    return STEP_DONE;
}

static step_rc step_handler(req_state *st)
{
    if (st->route->handler(st->call, st->resp) != 0 || st->resp->status == 0)
        return refuse(st, "handler_error", 500, "INTERNAL", "internal error");
    if (st->call->reason[0] != '\0')
        st->o.reason = st->call->reason;
    return STEP_DONE;
}

/*
 * The pipeline, in order (pipeline.h says what each step answers). A new
 * check is one function above and one row here; the audit record is written
 * after the last step that ran, whatever it answered.
 */
static const step_fn steps[] = {
    step_plain_http,      /* a credential sent in clear */
    step_ip_allow,        /* global IP allow-list */
    step_guard,           /* brute-force guard */
    step_authenticate,    /* API key */
    step_user_ip_allow,   /* per-user IP allow-list */
    step_remember_client, /* known client of this address, for the guard */
    step_rate_limit,      /* per-user token bucket */
    step_route,           /* 404 / 405 */
    step_rbac,            /* permission of the route */
    step_body,            /* 413, 400, 415 */
    step_audit_ready,     /* a change needs a writable audit trail */
    step_handler,         /* the route's handler */
};

/* Room for the "METHOD path" of an audit record; nginx's request lines fit it. */
typedef struct action_text {
    char stack[8448];
    char *text;
} action_text;

/*
 * The whole "METHOD path", never a cut one: the audit record redacts each
 * field before it shortens it, and a secret cut here first would slip past
 * the filter in part. Out of memory, the method alone (the path is still in
 * "resource"). action_free releases it.
 */
static const char *action_of(const fm_request *req, action_text *a)
{
    size_t need = strlen(req->method) + strlen(req->path) + 2;

    a->text = a->stack;
    if (need > sizeof(a->stack) && (a->text = malloc(need)) == NULL)
        return req->method;
    (void)snprintf(a->text, need, "%s %s", req->method, req->path);
    return a->text;
}

static void action_free(action_text *a)
{
    if (a->text != a->stack)
        free(a->text);
}

/* What fm_pipeline_delivery_end will need of a download whose record was just written. */
static void arm_delivery(const req_state *st, const fm_audit_record *rec)
{
    fm_delivery *d = st->call->req->delivery;

    if (d == NULL || !st->resp->has_file)
        return;
    *d = (fm_delivery){
        .armed = true,
        .req = st->call->req,
        .status = rec->status,
        .user = rec->user,
        .permission = rec->permission,
    };
    (void)snprintf(d->trace_id, sizeof(d->trace_id), "%s", rec->trace_id);
    (void)snprintf(d->key_id, sizeof(d->key_id), "%s", rec->key_id != NULL ? rec->key_id : "");
    (void)snprintf(d->owner, sizeof(d->owner), "%s", rec->owner);
}

/*
 * The audit record of the request, whatever its outcome. If it cannot be
 * written, the request must change nothing: its change is undone and the
 * answer becomes 503 (fail closed).
 */
static void audit_request(req_state *st)
{
    const fm_request *req = st->call->req;
    fm_call *call = st->call;
    fm_response *resp = st->resp;
    action_text action;
    fm_audit_record rec = {
        .trace_id = call->trace_id,
        .user = st->o.user,
        .key_id = st->o.key_id,
        .action = action_of(req, &action),
        .resource = req->path,
        .source_ip = req->remote_addr,
        .status = resp->status,
        .reason = st->o.reason,
        .task_id = call->audit_task_id,
        .worker = call->audit_worker,
        .permission = call->audit_permission,
        .owner = call->audit_owner,
        .has_bytes = call->audit_has_bytes,
        .bytes = call->audit_bytes,
    };

    if (fm_audit_write(st->env->audit, &rec) != FM_OK) {
        fm_log_error("audit record could not be written (%s); refusing request%s trace_id=%s",
                     strerror(errno), call->undo != NULL ? " and undoing its change" : "",
                     call->trace_id);
        if (call->undo != NULL)
            call->undo(call);
        fm_response_reset(resp);
        unavailable(resp, "audit trail unavailable", call->trace_id);
    } else {
        arm_delivery(st, &rec);
        /* The acknowledgement and the event leave in one write (fm_redis_cork). */
        fm_redis_cork(st->env->redis);
        if (call->settle != NULL)
            call->settle(call);
        /* Only a change that stands is announced: after its record, never once undone. */
        if (call->event != NULL)
            fm_events_publish(st->env->redis, st->env->cfg->redis.key_prefix, call->event,
                              call->event_task);
        if (fm_redis_uncork(st->env->redis) != FM_OK)
            fm_log_warn("redis: journal acknowledgement or event not sent (%s) trace_id=%s",
                        fm_redis_errstr(st->env->redis), call->trace_id);
    }
    action_free(&action);
}

fm_err fm_pipeline_delivery_end(const fm_env *env, const fm_delivery *d, uint64_t sent,
                                const char *reason)
{
    action_text action;
    fm_audit_record rec;
    fm_err rc;

    if (d == NULL || !d->armed) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    rec = (fm_audit_record){
        .trace_id = d->trace_id,
        .user = d->user,
        .key_id = d->key_id[0] != '\0' ? d->key_id : NULL,
        .action = action_of(d->req, &action),
        .resource = d->req->path,
        .source_ip = d->req->remote_addr,
        .status = d->status,
        .reason = reason,
        .permission = d->permission,
        .owner = d->owner,
        .has_bytes = true,
        .bytes = sent,
        .failed = true,
    };
    rc = fm_audit_write(env->audit, &rec);
    if (rc != FM_OK)
        fm_log_error("audit record of a download that ended short (%s, %llu bytes sent) could "
                     "not be written (%s) trace_id=%s",
                     reason, (unsigned long long)sent, strerror(errno), d->trace_id);
    action_free(&action);
    return rc;
}

/*
 * The route the request is counted under: the one it was routed to, or for a
 * request refused before routing (or a 405) the first pattern its path
 * matches; nroutes ("unmatched") when none does. Never the path itself.
 */
static size_t metrics_route(req_state *st)
{
    const fm_request *req = st->call->req;

    if (st->route != NULL)
        return (size_t)(st->route - st->routes);
    if (!st->routed) /* refused before routing: the table is read here, once */
        fm_route_find(st->routes, st->nroutes, req->method, req->path, &st->found);
    return st->found.first;
}

void fm_pipeline_run(const fm_env *env, const fm_route *routes, size_t nroutes,
                     const fm_request *req, fm_response *resp)
{
    double t0 = mono_s();
    fm_call call;
    fm_cidr host;
    req_state st;

    memset(&call, 0, sizeof(call));
    call.env = env;
    call.req = req;
    make_trace_id(req, call.trace_id);
    st = (req_state){
        .env = env,
        .routes = routes,
        .nroutes = nroutes,
        .call = &call,
        .resp = resp,
        .host = fm_ipacl_parse_host(req->remote_addr, &host) == FM_OK ? &host : NULL,
        .now_ms = (int64_t)(t0 * 1000.0),
    };
    fm_bruteforce_addr(req->remote_addr, st.host, &st.guard_addr);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i](&st) == STEP_DONE)
            break;
    audit_request(&st);
    fm_metrics_request(metrics_route(&st), req->method, resp->status, mono_s() - t0);
    free(call.undo_data);
    cJSON_Delete(call.event_task);
}
