/*
 * pipeline.c - the request pipeline (order and responses: see pipeline.h).
 *
 * Each step either lets the request through or produces the final response
 * and stops; the audit record is written once, at the end, whatever the
 * outcome. Nothing here reads a header other than the two credential headers,
 * and the client address comes only from REMOTE_ADDR.
 */
#include "pipeline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "bruteforce.h"
#include "log.h"
#include <sodium.h>

/* Outcome of the pre-handler steps, carried to the audit record. */
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
static unsigned long long admitted_unlimited;

unsigned long long fm_pipeline_unlimited_admits(void)
{
    return admitted_unlimited;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/*
 * Match path against pattern; {name} captures one non-empty segment into
 * params. Returns 1 on a match.
 */
static int route_match(const char *pattern, const char *path,
                       char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX])
{
    size_t np = 0;

    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            size_t n = strcspn(path, "/");
            if (close == NULL || n == 0 || n >= FM_PATH_PARAM_MAX || np >= FM_ROUTE_MAX_PARAMS)
                return 0;
            memcpy(params[np], path, n);
            params[np++][n] = '\0';
            pattern = close + 1;
            path += n;
            continue;
        }
        if (*pattern++ != *path++)
            return 0;
    }
    return *pattern == '\0' && *path == '\0';
}

static int ip_allowed(const fm_ipacl *acl, const char *addr)
{
    return acl->count == 0 || fm_ipacl_match(acl, addr);
}

/* 503 with a short Retry-After: the causes (Redis, the audit disk) are usually brief. */
static void unavailable(fm_response *resp, const char *message, const char *trace_id)
{
    (void)fm_response_header(resp, "Retry-After: 1");
    fm_response_error(resp, 503, "SERVICE_UNAVAILABLE", message, trace_id);
}

static void add_rate_headers(fm_response *resp, const fm_rl_result *rl)
{
    char policy[FM_RESPONSE_HEADER_MAX], state[FM_RESPONSE_HEADER_MAX];

    fm_ratelimit_headers(rl, policy, state, sizeof(policy));
    (void)fm_response_header(resp, "%s", policy);
    (void)fm_response_header(resp, "%s", state);
}

/* Steps 2-8. Returns with resp filled; o says who and why for the audit. */
static void run_steps(const fm_env *env, const fm_route *routes, size_t nroutes, fm_call *call,
                      fm_response *resp, outcome *o, fm_rl_result *rl, fm_auth_result *auth)
{
    const fm_config *cfg = env->cfg;
    const fm_request *req = call->req;
    const fm_route *route = NULL;
    char allow[64] = "";
    int path_matched = 0;
    int64_t now_ms = mono_ms();
    int redis_failed = 0; /* a Redis call of this request failed: do not wait on it again */
    uint32_t block_s;
    bool blocked;
    int guard;

    if (!ip_allowed(&cfg->auth.ip_whitelist, req->remote_addr)) {
        o->reason = "ip_not_allowed";
        fm_response_error(resp, 403, "IP_NOT_ALLOWED", "client address not allowed",
                          call->trace_id);
        return;
    }

    guard = fm_bruteforce_check(env->redis, cfg->redis.key_prefix, &cfg->rate_limit.auth_failures,
                                req->remote_addr, now_ms, &blocked, &block_s) != FM_OK
                ? -1
                : blocked;
    if (guard < 0) {
        redis_failed = 1;
        /*
         * Under "deny" nothing can be admitted without Redis anyway; refusing
         * before the key is checked also keeps 401-versus-503 from telling a
         * guesser, uncounted, which keys are right.
         */
        if (!cfg->rate_limit.on_redis_error_allow) {
            o->reason = "rate_limiter_unavailable";
            warn_throttled(&guard_warn, now_ms,
                           "Redis unavailable (%s); refusing (on_redis_error: deny) trace_id=%s",
                           fm_redis_errstr(env->redis), call->trace_id);
            unavailable(resp, "service temporarily unavailable", call->trace_id);
            return;
        }
        warn_throttled(&guard_warn, now_ms,
                       "brute-force guard unavailable (%s); not blocking source=%s trace_id=%s",
                       fm_redis_errstr(env->redis), req->remote_addr, call->trace_id);
    } else if (guard == 1) {
        o->reason = "ip_blocked";
        (void)fm_response_header(resp, "Retry-After: %u", (unsigned)block_s);
        fm_response_error(resp, 429, "RATE_LIMITED",
                          "too many failed authentications from this address", call->trace_id);
        return;
    }

    if (req->credentials_repeated) {
        memset(auth, 0, sizeof(*auth));
        auth->status = FM_AUTH_MALFORMED;
    } else {
        (void)fm_auth_authenticate(cfg, req->x_api_key, req->authorization, (int64_t)time(NULL),
                                   auth);
    }
    if (auth->status != FM_AUTH_OK) {
        o->reason = fm_auth_reason(auth->status);
        o->key_id = auth->key_id[0] != '\0' ? auth->key_id : NULL;
        fm_log_warn("authentication failed: reason=%s source=%s key_id=%s trace_id=%s", o->reason,
                    req->remote_addr, auth->key_id[0] ? auth->key_id : "-", call->trace_id);
        /*
         * A request without any key guesses nothing (health probes, a
         * forgotten header): only presented credentials count as attempts.
         */
        if (auth->status == FM_AUTH_MISSING)
            guard = 0;
        else if (redis_failed)
            guard = -1;
        else
            guard = fm_bruteforce_fail(env->redis, cfg->redis.key_prefix,
                                       &cfg->rate_limit.auth_failures, req->remote_addr, now_ms,
                                       &blocked, &block_s) != FM_OK
                        ? -1
                        : blocked;
        if (guard < 0)
            warn_throttled(&guard_warn, now_ms,
                           "brute-force guard unavailable (%s); failure not counted source=%s "
                           "trace_id=%s",
                           fm_redis_errstr(env->redis), req->remote_addr, call->trace_id);
        else if (guard == 1)
            fm_log_warn("brute-force guard: source=%s blocked for %u s after repeated failed "
                        "authentications trace_id=%s",
                        req->remote_addr, (unsigned)block_s, call->trace_id);
        (void)fm_response_header(resp, "WWW-Authenticate: Bearer realm=\"fetchml\"");
        fm_response_error(resp, 401, "UNAUTHORIZED",
                          auth->status == FM_AUTH_MISSING ? "API key required"
                                                          : "invalid or expired API key",
                          call->trace_id);
        return;
    }
    call->user = auth->user;
    o->user = auth->user->name;
    o->key_id = auth->key_id;

    if (!ip_allowed(&auth->user->ip_whitelist, req->remote_addr)) {
        o->reason = "user_ip_not_allowed";
        fm_response_error(resp, 403, "IP_NOT_ALLOWED", "client address not allowed for this key",
                          call->trace_id);
        return;
    }

    if (redis_failed || fm_ratelimit_take(env->redis, cfg->redis.key_prefix, auth->user->name,
                                          fm_config_user_rate(cfg, auth->user), cfg->server.workers,
                                          now_ms, rl) != FM_OK) {
        if (!cfg->rate_limit.on_redis_error_allow) {
            o->reason = "rate_limiter_unavailable";
            fm_log_error("rate limiter unavailable (%s); refusing (on_redis_error: deny) "
                         "trace_id=%s",
                         fm_redis_errstr(env->redis), call->trace_id);
            unavailable(resp, "service temporarily unavailable", call->trace_id);
            return;
        }
        admitted_unlimited++;
        warn_throttled(&allow_warn, now_ms,
                       "rate limiter unavailable (%s); admitting (on_redis_error: allow) "
                       "trace_id=%s",
                       fm_redis_errstr(env->redis), call->trace_id);
    } else {
        add_rate_headers(resp, rl);
        if (!rl->allowed) {
            o->reason = "rate_limited";
            (void)fm_response_header(resp, "Retry-After: %u", (unsigned)rl->retry_after_s);
            fm_response_error(resp, 429, "RATE_LIMITED", "rate limit exceeded", call->trace_id);
            return;
        }
        call->rate = rl;
    }

    for (size_t i = 0; i < nroutes; i++) {
        if (!route_match(routes[i].pattern, req->path, call->params))
            continue;
        path_matched = 1;
        if (strcmp(routes[i].method, req->method) == 0 ||
            (strcmp(req->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            route = &routes[i];
            break;
        }
        if (strstr(allow, routes[i].method) == NULL)
            (void)snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                           allow[0] ? ", " : "", routes[i].method);
    }
    if (route == NULL) {
        if (path_matched) {
            o->reason = "method_not_allowed";
            (void)fm_response_header(resp, "Allow: %s", allow);
            fm_response_error(resp, 405, "METHOD_NOT_ALLOWED", "method not allowed",
                              call->trace_id);
        } else {
            o->reason = "no_route";
            fm_response_error(resp, 404, "NOT_FOUND", "not found", call->trace_id);
        }
        return;
    }
    if (!fm_rbac_allows(auth->user->effective, route->required)) {
        o->reason = "forbidden";
        fm_response_error(resp, 403, "FORBIDDEN", "permission denied", call->trace_id);
        return;
    }
    if (req->body_too_large) {
        o->reason = "body_too_large";
        fm_response_error(resp, 413, "PAYLOAD_TOO_LARGE", "request body too large", call->trace_id);
        return;
    }
    /* Only a request that may change state needs the check; reads are refused at the write. */
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
        fm_audit_ready(env->audit) != 0) {
        o->reason = "audit_unavailable";
        fm_log_error("audit trail not writable (%s); refusing before any change trace_id=%s",
                     strerror(errno), call->trace_id);
        unavailable(resp, "audit trail unavailable", call->trace_id);
        return;
    }
    if (route->handler(call, resp) != 0 || resp->status == 0) {
        o->reason = "handler_error";
        fm_response_error(resp, 500, "INTERNAL", "internal error", call->trace_id);
        return;
    }
    if (call->reason[0] != '\0')
        o->reason = call->reason;
}

void fm_pipeline_run(const fm_env *env, const fm_route *routes, size_t nroutes,
                     const fm_request *req, fm_response *resp)
{
    fm_call call;
    fm_rl_result rl;
    fm_auth_result auth;
    outcome o = {NULL, NULL, NULL};
    fm_audit_record rec;

    memset(&call, 0, sizeof(call));
    call.env = env;
    call.req = req;
    make_trace_id(req, call.trace_id);

    run_steps(env, routes, nroutes, &call, resp, &o, &rl, &auth);

    /*
     * The whole "METHOD path", never a cut one: the audit record redacts each
     * field before it shortens it, and a secret cut here first would slip past
     * the filter in part. nginx's request lines fit the stack buffer.
     */
    char stack_action[8448], *action = stack_action;
    size_t need = strlen(req->method) + strlen(req->path) + 2;
    if (need > sizeof(stack_action) && (action = malloc(need)) == NULL)
        action = (char *)req->method; /* out of memory: the path is still in "resource" */
    else
        (void)snprintf(action, need, "%s %s", req->method, req->path);
    rec = (fm_audit_record){
        .trace_id = call.trace_id,
        .user = o.user,
        .key_id = o.key_id,
        .action = action,
        .resource = req->path,
        .source_ip = req->remote_addr,
        .status = resp->status,
        .reason = o.reason,
    };
    if (fm_audit_write(env->audit, &rec) != 0) {
        fm_log_error("audit record could not be written (%s); refusing request%s trace_id=%s",
                     strerror(errno), call.undo != NULL ? " and undoing its change" : "",
                     call.trace_id);
        if (call.undo != NULL)
            call.undo(&call);
        fm_response_reset(resp);
        unavailable(resp, "audit trail unavailable", call.trace_id);
    }
    free(call.undo_data);
    if (action != stack_action && action != req->method)
        free(action);
}
