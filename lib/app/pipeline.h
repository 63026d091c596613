/*
 * pipeline.h - the one request pipeline every request goes through. The
 * client address is REMOTE_ADDR (never X-Forwarded-For / X-Real-IP). Then,
 * in this order (the step table in pipeline.c):
 *
 *   0 a credential that came over plain HTTP (nginx's HTTP server passes
 *     only those, flagged plain_http)               -> 403 CREDENTIAL_IN_CLEAR
 *   1 global IP allow-list                          -> 403 IP_NOT_ALLOWED
 *   2 brute-force guard: a source address with too many failed
 *     authentications or requests without a key (see bruteforce.h), unless
 *     the key is a known client of it               -> 429 RATE_LIMITED + Retry-After
 *   3 API key (X-API-Key or Authorization: Bearer)  -> 401 UNAUTHORIZED + WWW-Authenticate
 *   4 per-user IP allow-list (counted as a failed
 *     authentication); past it the key becomes a known client of the address
 *                                                   -> 403 IP_NOT_ALLOWED
 *   5 per-user token bucket in Redis                -> 429 RATE_LIMITED + Retry-After
 *   6 route                                         -> 404 NOT_FOUND / 405 + Allow
 *   7 RBAC permission of the route                  -> 403 FORBIDDEN
 *   8 input: a query on a route that reads none     -> 400 BAD_REQUEST
 *     body over server.max_body_bytes (a route that
 *     streams its body: data.max_file_bytes)        -> 413 PAYLOAD_TOO_LARGE
 *     shorter than its CONTENT_LENGTH               -> 400 BAD_REQUEST
 *     a route that takes a JSON body, sent one without
 *     Content-Type application/json (an empty body
 *     needs none)                                   -> 415 UNSUPPORTED_MEDIA_TYPE
 *   9 a request that may change state (not GET or HEAD) needs an audit trail
 *     that can take its record (fm_audit_ready)     -> 503 SERVICE_UNAVAILABLE
 *  10 the route's handler                           -> its answer; 500 INTERNAL on failure
 * and after the last step that ran, one audit record, for refused requests
 * too; if it cannot be written the response becomes 503 SERVICE_UNAVAILABLE
 * and the handler's change is undone (fail closed: such a request changes
 * nothing). Once the record is written, the change is acknowledged
 * (call->settle: its journal member, tasks.h) and the event the handler armed
 * (call->event) is published (fm_events_publish; its failure changes no
 * answer); an undone change publishes nothing.
 *
 * Redis trouble: the guard (2) then blocks nobody; the limiter (5) applies
 * rate_limit.on_redis_error (deny: 503 + Retry-After; allow: admitted, a
 * warning at most every 10 s per worker, counted). A request makes at most
 * one Redis attempt that fails: once the guard's call failed, step 5 does not
 * wait for Redis a second time.
 *
 * Every request is counted in the shared metrics (metrics.h) once its answer
 * is final: its route pattern, method, status and how long the pipeline took;
 * authentication failures by reason, guard blocks, rate-limit refusals and
 * admissions without a decision too.
 *
 * The pipeline is independent of FastCGI: fcgi-app fills an fm_request from
 * FastCGI params and writes out the fm_response; tests can drive it directly.
 */
#ifndef FM_PIPELINE_H
#define FM_PIPELINE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "ratelimit.h"
#include "redisconn.h"
#include "response.h"

#define FM_TRACE_ID_MAX 64    /* characters of a trace id */
#define FM_ROUTE_MAX_PARAMS 2 /* {name} captures per route */
#define FM_PATH_PARAM_MAX 256 /* bytes per captured path segment, NUL included */

/*
 * The body of a request whose route streams it (FM_ROUTE_STREAM_BODY): read
 * reads up to n bytes into buf and returns how many (> 0), 0 at the end of
 * the stream, -1 when it broke, or FM_BODY_SLOW when the client sends it
 * slower than data.min_transfer_bytes_per_second (lib/base/pace.h; the
 * answer is 408). ctx is the reader's.
 */
#define FM_BODY_SLOW (-2)
typedef struct fm_body_stream {
    long (*read)(void *ctx, char *buf, size_t n);
    void *ctx;
} fm_body_stream;

typedef struct fm_delivery fm_delivery;

typedef struct fm_request {
    const char *method;        /* REQUEST_METHOD */
    const char *path;          /* DOCUMENT_URI: decoded, normalised by nginx, no query */
    const char *query;         /* QUERY_STRING, may be NULL */
    const char *remote_addr;   /* REMOTE_ADDR */
    const char *request_id;    /* REQUEST_ID (nginx $request_id), may be NULL */
    const char *x_api_key;     /* HTTP_X_API_KEY, may be NULL */
    const char *authorization; /* HTTP_AUTHORIZATION, may be NULL */
    const char *content_type;  /* CONTENT_TYPE, may be NULL */
    const char *if_match;      /* HTTP_IF_MATCH, may be NULL */
    const char *if_none_match; /* HTTP_IF_NONE_MATCH, may be NULL */
    const char *body;          /* request body, body_len bytes, not NUL-terminated */
    size_t body_len;
    /* A streaming route's body instead (body is NULL): content_length bytes to read from stream. */
    const fm_body_stream *stream;
    uint64_t content_length;
    bool body_too_large;       /* CONTENT_LENGTH exceeded server.max_body_bytes (a streaming
                                  route: data.max_file_bytes) */
    bool body_incomplete;      /* the stream ended before CONTENT_LENGTH bytes arrived */
    bool body_slow;            /* ... because it came slower than data.min_transfer_bytes_per_second */
    bool length_unknown;       /* a body came without CONTENT_LENGTH (chunked: nginx does not
                                  buffer the streaming routes, Apache passes chunked bodies
                                  so): refused 411 */
    bool credentials_repeated; /* X-API-Key or Authorization sent more than once */
    bool plain_http;           /* FETCHML_PLAIN_HTTP: nginx got it without TLS (not a header) */
    /* GET /ws (wsauth.h): nginx's auth_request for a WebSocket (FETCHML_WS_AUTH, not a header). */
    bool ws_auth;
    bool ws_upgrade;         /* ... asking for the WebSocket upgrade (Upgrade: websocket) */
    const char *origin;      /* HTTP_ORIGIN, may be NULL */
    const char *ws_protocol; /* HTTP_SEC_WEBSOCKET_PROTOCOL, may be NULL */
    bool ws_repeated;        /* Origin or Sec-WebSocket-Protocol sent more than once */
    /* Where fm_pipeline_run leaves what a download's later record needs; NULL: not wanted. */
    fm_delivery *delivery;
} fm_request;

/* What one worker owns: the config snapshot in force and its connections. */
typedef struct fm_env {
    const fm_config *cfg;
    fm_redis *redis;
    fm_audit *audit;
    int listen_fd; /* the FastCGI socket it accepts on (for /metrics); -1 or 0: none */
} fm_env;

typedef struct fm_call fm_call;

/*
 * Reverts what a handler changed; called when the request's audit record
 * could not be written. Must not fail silently: it logs what it could not undo.
 */
typedef void (*fm_undo_fn)(fm_call *call);

/*
 * Acknowledges what a handler changed once the request's audit record is
 * written (never after an undo); logs what it could not acknowledge.
 */
typedef void (*fm_settle_fn)(fm_call *call);

/* One request's state as handlers see it. */
struct fm_call {
    const fm_env *env;
    const fm_request *req;
    const fm_user *user;      /* authenticated user */
    const char *key_id;       /* its key's fingerprint (fm_config_key_id) */
    const fm_rl_result *rate; /* rate-limit decision, for whoami */
    char trace_id[FM_TRACE_ID_MAX + 1];
    char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX]; /* {name} captures in order */
    const char *tail;    /* a {name*} capture: the rest of req->path; NULL if the route has none */
    char reason[128];    /* audit reason a handler may set */
    fm_undo_fn undo;     /* set by a handler that changed state, with: */
    fm_settle_fn settle; /* its acknowledgement (NULL: none) */
    char undo_id[FM_PATH_PARAM_MAX]; /* what it changed */
    char *undo_data;                 /* heap, freed by the pipeline; meaning is the handler's */
    /* What the audit record names besides the request (empty = not named). */
    char audit_task_id[FM_PATH_PARAM_MAX]; /* the task the request acted on */
    char audit_worker[FM_PATH_PARAM_MAX];  /* the worker_id of a job worker's request */
    const char *audit_permission;          /* a file operation's permission (static string) */
    char audit_owner[FM_PATH_PARAM_MAX];   /* the tree it acted on, when not the caller's */
    bool audit_has_bytes;                  /* audit_bytes is named */
    uint64_t audit_bytes;                  /* bytes it read, wrote or removed */
    /*
     * An event the handler's change makes (a task.* type, static string) and
     * its task (heap, owned by the call): published once the audit record is
     * written, never for a change that was undone.
     */
    const char *event;
    cJSON *event_task;
};

/*
 * A handler fills resp (status, body) and returns 0; on a failure it cannot
 * describe it returns -1 and the pipeline answers 500 INTERNAL.
 */
typedef int (*fm_handler)(fm_call *call, fm_response *resp);

/* fm_route flags */
#define FM_ROUTE_JSON_BODY 1u /* takes a JSON body: Content-Type application/json, if not empty */
#define FM_ROUTE_QUERY                                                                             \
    2u /* reads a query string (strictly, lib/base/query.h); any other                             \
          route refuses one: 400 */
#define FM_ROUTE_STREAM_BODY                                                                       \
    4u /* reads its body itself, in chunks (fm_request.stream), up to                              \
          data.max_file_bytes: the worker does not read it first */

typedef struct fm_route {
    const char *method;  /* "GET", "POST", ...; a GET route answers HEAD too */
    const char *pattern; /* "/v1/tasks/{id}": a {name} matches one non-empty segment */
    fm_perms required;   /* FM_PERM_NONE = any authenticated user */
    fm_handler handler;
    unsigned flags; /* FM_ROUTE_* */
} fm_route;

/*
 * fm_pipeline_streams - whether the route of method and path (as step 6
 * finds it in routes: fm_route_find, route.h) is flagged
 * FM_ROUTE_STREAM_BODY: the worker then leaves the body to the handler
 * instead of reading it first.
 */
bool fm_pipeline_streams(const fm_route *routes, size_t nroutes, const char *method,
                         const char *path);

/*
 * fm_pipeline_run - run every step above for req and leave the answer in
 * resp (which must be zeroed or reset; the caller frees it with
 * fm_response_reset). Never fails: every outcome is a response.
 */
void fm_pipeline_run(const fm_env *env, const fm_route *routes, size_t nroutes,
                     const fm_request *req, fm_response *resp);

/*
 * A download's answer (fm_response_file) is audited before it is sent, as
 * every answer is, so that a read whose record cannot be written gets 503 and
 * no byte of the file; that record names the whole file. Whoever sends the
 * file tells the trail when it did not get all of it to the web server: what
 * fm_pipeline_run keeps of the request for that is an fm_delivery (the
 * caller's, named in fm_request.delivery). armed is set when the answer
 * carries a file and its record was written; the rest is the record's, kept
 * by value, and req (which must outlive the delivery).
 */
struct fm_delivery {
    bool armed;
    const fm_request *req;
    int status;
    const char *user;       /* the configuration's (env->cfg), or NULL */
    const char *permission; /* static, or NULL */
    char trace_id[FM_TRACE_ID_MAX + 1];
    char key_id[FM_KEY_ID_LEN + 1]; /* "" = none */
    char owner[FM_PATH_PARAM_MAX];  /* "" = the caller's own tree */
};

/*
 * fm_pipeline_delivery_end - the second audit record of a download that
 * ended short (d armed by fm_pipeline_run, in the same env): the first one's
 * trace id, user, key, action, resource, source, status (the one sent),
 * permission and owner, result "failure" (fm_audit_record.failed), reason
 * (a static word: transfer_cut_off, connection_closed, file_shortened,
 * file_read_error) and bytes = sent, what was handed on before the end (the
 * client got at most that). It cannot fail closed, the answer having gone:
 * a record that cannot be written is logged with the trace id. Returns
 * FM_OK, FM_EINVAL when d is not armed, or fm_audit_write's error.
 */
fm_err fm_pipeline_delivery_end(const fm_env *env, const fm_delivery *d, uint64_t sent,
                                const char *reason);

#endif
