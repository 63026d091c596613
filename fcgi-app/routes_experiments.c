/*
 * routes_experiments.c - the experiments routes (SPEC section 6): the
 * caller's experiments, a paged listing of one experiment's files, and GET,
 * PUT and DELETE of a file, in data.experiments_dir/<user>/<experiment>/<path>
 * (lib/store/exptree.h holds the rules; this file maps them to HTTP).
 *
 * Whose tree: the caller's own; an admin may name another user's with
 * ?user=<name> (a configured user), and the audit record then names that
 * owner. For anyone else ?user= naming another user is 404, as for a task of
 * another user: nothing tells whether that user or experiment exists.
 *
 * An upload streams: its body is read from FastCGI in STREAM_CHUNK pieces
 * into the unnamed temporary file (fm_exptree_put_*), never held whole;
 * CONTENT_LENGTH was checked against data.max_file_bytes by the pipeline
 * (413), a body that ends early is 400 and one sent slower than
 * data.min_transfer_bytes_per_second is 408 (the worker's reader says which),
 * and neither leaves anything. Streamed uploads and downloads larger than
 * what nginx buffers (NGINX_BUFFERED_BYTES) hold their worker for as long as
 * the client takes: together they take at most data.concurrent_transfers
 * workers (fm_metrics_transfer_begin); one past it is 503. The upload rate
 * (data.uploads_per_minute) is a token bucket like the request rate limit
 * (lib/store/ratelimit.h) under "<prefix>up:rl:<user>"; the quotas are
 * checked under the user's lock at commit (exptree.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exptree.h"
#include "log.h"
#include "query.h"
#include "ratelimit.h"
#include "metrics.h"
#include "routes.h"

#define STREAM_CHUNK 65536
/*
 * What nginx takes of a download at once, so that a smaller one never holds
 * its worker: the download location's fastcgi_buffers (16 64k), with
 * fastcgi_max_temp_file_size 0 (nginx/local/nginx.conf.in,
 * nginx/fetchml-site.conf): change them together.
 */
#define NGINX_BUFFERED_BYTES (1 << 20)
#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define LIST_ITEM_BYTES 1200 /* a listed file at most: its path (1024) and the rest */

static const char perm_read[] = "experiments:read";
static const char perm_create[] = "experiments:create";
static const char perm_delete[] = "experiments:delete";

/* A change that waits for its audit record: the tree (its lock) and what to settle or undo. */
typedef struct pending {
    fm_exptree tree;
    fm_exp_change change;
} pending;

static int not_found(fm_call *call, fm_response *resp)
{
    return fm_route_refuse(call, resp, 404, "NOT_FOUND", "not found", "not_found");
}

static int internal(fm_call *call, fm_response *resp, const char *what)
{
    fm_log_error("experiments: %s failed: %s trace_id=%s", what, strerror(errno), call->trace_id);
    if (errno == ENOSPC || errno == EDQUOT) {
        (void)fm_response_header(resp, "Retry-After: 60");
        return fm_route_refuse(call, resp, 503, "SERVICE_UNAVAILABLE",
                               "no space left for experiment files", "no_space");
    }
    return fm_route_refuse(call, resp, 500, "INTERNAL", "internal error", "storage_error");
}

/* Strict non-negative decimal, at most max. */
static bool parse_count(const char *s, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL)
        return true;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

/*
 * The user whose tree the request acts on (see the top of the file), after
 * the query was parsed with allowed names. NULL when the answer is already in
 * resp (400 for a bad query, 404 for a tree the caller may not see).
 */
static const char *owner_of(fm_call *call, fm_response *resp, const char *const *allowed,
                            fm_query *q, const char *permission)
{
    const fm_config *cfg = call->env->cfg;
    char err[160];
    const char *u;

    call->audit_permission = permission;
    if (fm_query_parse(call->req->query, allowed, q, err, sizeof(err)) != FM_OK) {
        (void)fm_route_refuse(call, resp, 400, "BAD_REQUEST", err, "bad_query");
        return NULL;
    }
    u = fm_query_get(q, "user");
    if (u == NULL || strcmp(u, call->user->name) == 0)
        return call->user->name;
    if (!call->user->admin) {
        (void)not_found(call, resp);
        return NULL;
    }
    /* An admin's request, once per request: a scan is cheaper than an index kept for it. */
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        if (strcmp(cfg->auth.users[i].name, u) == 0) {
            (void)snprintf(call->audit_owner, sizeof(call->audit_owner), "%s", u);
            return cfg->auth.users[i].name;
        }
    (void)not_found(call, resp);
    return NULL;
}

/* 400 unless the experiment (and the path, when the route has one) are valid names. */
static bool names_ok(fm_call *call, fm_response *resp)
{
    const char *exp = call->params[0];

    if (!fm_beneath_name_valid(exp, strlen(exp))) {
        (void)fm_route_refuse(call, resp, 400, "BAD_REQUEST",
                              "invalid experiment name (UTF-8, no control characters, no '/', "
                              "not . or .., at most 255 bytes)",
                              "bad_name");
        return false;
    }
    if (call->tail != NULL && !fm_beneath_path_valid(call->tail, NULL)) {
        (void)fm_route_refuse(call, resp, 400, "BAD_REQUEST",
                              "invalid file path (names of UTF-8 without control characters, "
                              "joined by single '/', no . or .. component, at most 255 bytes "
                              "a name and 1024 a path)",
                              "bad_path");
        return false;
    }
    return true;
}

/* Opens owner's tree; FM_OK, or the answer is in resp (*answered). */
static fm_err open_tree(fm_call *call, fm_response *resp, const char *owner, bool create,
                        fm_exptree *t, int *answered)
{
    const char *dir = call->env->cfg->data.experiments_dir;
    fm_err rc = fm_exptree_open(dir, owner, create, t);
    char what[PATH_MAX + 64];

    if (rc == FM_ENOTFOUND) {
        *answered = not_found(call, resp);
    } else if (rc != FM_OK) {
        /* Named, as the pool sees it: a directory it may not make is the usual cause. */
        int e = errno;

        (void)snprintf(what, sizeof(what), "opening the user's directory in %s", dir);
        errno = e;
        *answered = internal(call, resp, what);
    }
    return rc;
}

/*
 * For a route on {name} (and {path}): the query and the names checked, the
 * tree of the user the request acts on opened (made when create). FM_OK with
 * *t open, or the answer is in resp (*answered).
 */
static fm_err open_named(fm_call *call, fm_response *resp, const char *const *allowed, fm_query *q,
                         const char *permission, bool create, fm_exptree *t, int *answered)
{
    const char *owner = owner_of(call, resp, allowed, q, permission);

    *answered = 0;
    if (owner == NULL || !names_ok(call, resp))
        return FM_EINVAL;
    return open_tree(call, resp, owner, create, t, answered);
}

/* Workers slow transfers may take at once: data.concurrent_transfers, or half the pool. */
static unsigned transfer_share(const fm_config *cfg)
{
    if (cfg->data.concurrent_transfers > 0)
        return (unsigned)cfg->data.concurrent_transfers;
    return cfg->server.workers > 1 ? (unsigned)cfg->server.workers / 2 : 1;
}

static int transfers_busy(fm_call *call, fm_response *resp)
{
    (void)fm_response_header(resp, "Retry-After: 1");
    return fm_route_refuse(call, resp, 503, "SERVICE_UNAVAILABLE",
                           "too many transfers in progress on this server; try again shortly",
                           "transfers_busy");
}

/* A change's state, with owner's tree open; NULL when the answer is in resp (*answered: -1 = 500).
 */
static pending *pending_open(fm_call *call, fm_response *resp, const char *owner, bool create,
                             int *answered)
{
    pending *p = malloc(sizeof(*p));

    *answered = -1;
    if (p != NULL && open_tree(call, resp, owner, create, &p->tree, answered) != FM_OK) {
        free(p);
        p = NULL;
    }
    return p;
}

static void pending_free(pending *p)
{
    fm_exptree_close(&p->tree);
    free(p);
}

static void audit_bytes(fm_call *call, uint64_t bytes)
{
    call->audit_has_bytes = true;
    call->audit_bytes = bytes;
}

/* ---- GET /v1/experiments ------------------------------------------------------------ */

int fm_route_exp_list(fm_call *call, fm_response *resp)
{
    static const char *const allowed[] = {"user", NULL};
    const fm_config *cfg = call->env->cfg;
    fm_exp_usage use = {0};
    cJSON *list = NULL, *o, *u;
    fm_exptree t;
    fm_query q;
    fm_err rc;
    const char *owner = owner_of(call, resp, allowed, &q, perm_read);

    if (owner == NULL)
        return 0;
    rc = fm_exptree_open(cfg->data.experiments_dir, owner, false, &t);
    if (rc == FM_OK) {
        rc = fm_exptree_experiments(&t, &list, &use);
        fm_exptree_close(&t);
    } else if (rc == FM_ENOTFOUND) { /* nothing uploaded yet */
        rc = (list = cJSON_CreateArray()) != NULL ? FM_OK : FM_ESYS;
    }
    if (rc != FM_OK)
        return internal(call, resp, "listing experiments");
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "user", owner) == NULL ||
        !cJSON_AddItemToObject(o, "experiments", list)) {
        cJSON_Delete(list);
        cJSON_Delete(o);
        return -1;
    }
    u = cJSON_AddObjectToObject(o, "usage");
    if (u == NULL || cJSON_AddNumberToObject(u, "bytes", (double)use.bytes) == NULL ||
        cJSON_AddNumberToObject(u, "files", (double)use.files) == NULL ||
        cJSON_AddNumberToObject(u, "directories", (double)use.dirs) == NULL ||
        cJSON_AddNumberToObject(u, "quota_bytes", (double)cfg->data.quota_bytes) == NULL ||
        cJSON_AddNumberToObject(u, "quota_files", (double)cfg->data.quota_files) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    return fm_route_json(resp, 200, o);
}

/* ---- GET /v1/experiments/{name}/files ----------------------------------------------- */

int fm_route_exp_files(fm_call *call, fm_response *resp)
{
    static const char *const allowed[] = {"user", "limit", "offset", NULL};
    size_t cap = call->env->cfg->limits.max_response_bytes / LIST_ITEM_BYTES, total;
    long limit = LIST_DEFAULT, offset = 0;
    cJSON *files, *o;
    fm_exptree t;
    fm_query q;
    fm_err rc;
    int answered;

    if (open_named(call, resp, allowed, &q, perm_read, false, &t, &answered) != FM_OK)
        return answered;
    if (!parse_count(fm_query_get(&q, "limit"), LIST_MAX, &limit) || limit < 1 ||
        !parse_count(fm_query_get(&q, "offset"), 100000000, &offset)) {
        fm_exptree_close(&t);
        return fm_route_refuse(call, resp, 400, "BAD_REQUEST",
                               "limit must be 1 to 1000 and offset a whole number", "bad_query");
    }
    /* The page must fit limits.max_response_bytes, whatever the paths' lengths. */
    if ((size_t)limit > cap)
        limit = cap > 0 ? (long)cap : 1;
    rc = fm_exptree_files(&t, call->params[0], (size_t)offset, (size_t)limit, &files, &total);
    fm_exptree_close(&t);
    if (rc == FM_ENOTFOUND)
        return not_found(call, resp);
    if (rc != FM_OK)
        return internal(call, resp, "listing files");
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "experiment", call->params[0]) == NULL ||
        !cJSON_AddItemToObject(o, "files", files)) {
        cJSON_Delete(files);
        cJSON_Delete(o);
        return -1;
    }
    if (cJSON_AddNumberToObject(o, "total", (double)total) == NULL ||
        cJSON_AddNumberToObject(o, "limit", (double)limit) == NULL ||
        cJSON_AddNumberToObject(o, "offset", (double)offset) == NULL ||
        ((size_t)(offset + limit) < total
             ? cJSON_AddNumberToObject(o, "next_offset", (double)(offset + limit))
             : cJSON_AddNullToObject(o, "next_offset")) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    return fm_route_json(resp, 200, o);
}

/* ---- GET /v1/experiments/{name}/files/{path} ---------------------------------------- */

int fm_route_exp_get(fm_call *call, fm_response *resp)
{
    static const char *const allowed[] = {"user", NULL};
    fm_exp_file f;
    fm_exptree t;
    fm_query q;
    fm_err rc;
    int answered;

    if (open_named(call, resp, allowed, &q, perm_read, false, &t, &answered) != FM_OK)
        return answered;
    rc = fm_exptree_read(&t, call->params[0], call->tail, &f);
    fm_exptree_close(&t);
    if (rc == FM_ENOTFOUND)
        return not_found(call, resp);
    if (rc != FM_OK)
        return internal(call, resp, "opening a file");
    /* The share ends when the worker has sent the file (worker.c). */
    if (f.size > NGINX_BUFFERED_BYTES && strcmp(call->req->method, "HEAD") != 0 &&
        !fm_metrics_transfer_begin(transfer_share(call->env->cfg))) {
        (void)close(f.fd);
        return transfers_busy(call, resp);
    }
    fm_response_file(resp, 200, f.fd, f.size);
    audit_bytes(call, f.size);
    if (fm_response_header(resp, "Content-Type: application/octet-stream") != FM_OK ||
        fm_response_header(resp, "Content-Length: %llu", (unsigned long long)f.size) != FM_OK ||
        fm_response_header(resp, "ETag: \"%s\"", f.etag) != FM_OK)
        return -1;
    return 0;
}

/* ---- PUT /v1/experiments/{name}/files/{path} ---------------------------------------- */

static void settle_change(fm_call *call)
{
    pending *p = (pending *)call->undo_data;

    fm_exptree_settle(&p->tree, &p->change);
    fm_exptree_close(&p->tree);
}

static void undo_change(fm_call *call)
{
    pending *p = (pending *)call->undo_data;

    fm_exptree_undo(&p->tree, &p->change);
    fm_exptree_close(&p->tree);
}

/* The caller's upload bucket: FM_OK with *rl, or the answer is in resp (*answered). */
static fm_err take_upload_token(fm_call *call, fm_response *resp, int *answered)
{
    const fm_config *cfg = call->env->cfg;
    fm_rate rate = {(uint32_t)cfg->data.uploads_per_minute, (uint32_t)cfg->data.uploads_per_minute};
    char prefix[160];
    struct timespec ts;
    fm_rl_result rl;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    (void)snprintf(prefix, sizeof(prefix), "%sup:", cfg->redis.key_prefix);
    if (fm_ratelimit_take(call->env->redis, prefix, call->user->name, &rate,
                          (uint32_t)cfg->server.workers,
                          (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &rl) != FM_OK) {
        if (cfg->rate_limit.on_redis_error_allow)
            return FM_OK;
        (void)fm_response_header(resp, "Retry-After: 1");
        *answered = fm_route_refuse(call, resp, 503, "SERVICE_UNAVAILABLE",
                                    "service temporarily unavailable", "rate_limiter_unavailable");
        return FM_EREDIS;
    }
    if (rl.allowed)
        return FM_OK;
    (void)fm_response_header(resp, "Retry-After: %u", (unsigned)rl.retry_after_s);
    *answered = fm_route_refuse(call, resp, 429, "RATE_LIMITED",
                                "upload rate exceeded (data.uploads_per_minute)", "upload_rate");
    return FM_EQUOTA;
}

typedef enum { RECEIVED, RECEIVE_SHORT, RECEIVE_SLOW, RECEIVE_STORE_FAILED } received;

/* Streams the body into c. */
static received receive(const fm_request *req, fm_exp_change *c)
{
    static char chunk[STREAM_CHUNK];
    uint64_t left = req->content_length;

    if (req->stream == NULL) /* a whole body (tests drive the pipeline so) */
        return fm_exptree_put_write(c, req->body, req->body_len) == FM_OK ? RECEIVED
                                                                          : RECEIVE_STORE_FAILED;
    while (left > 0) {
        long n = req->stream->read(req->stream->ctx, chunk,
                                   left < sizeof(chunk) ? (size_t)left : sizeof(chunk));
        if (n == FM_BODY_SLOW)
            return RECEIVE_SLOW;
        if (n <= 0)
            return RECEIVE_SHORT;
        if (fm_exptree_put_write(c, chunk, (size_t)n) != FM_OK)
            return RECEIVE_STORE_FAILED;
        left -= (uint64_t)n;
    }
    return RECEIVED;
}

/* An upload whose body did not arrive whole: nothing was stored. */
static int receive_failed(fm_call *call, fm_response *resp, received how)
{
    if (how == RECEIVE_SLOW)
        return fm_route_refuse(call, resp, 408, "REQUEST_TIMEOUT",
                               "the body arrived slower than data.min_transfer_bytes_per_second",
                               "body_too_slow");
    if (how == RECEIVE_SHORT)
        return fm_route_refuse(call, resp, 400, "BAD_REQUEST", "request body incomplete",
                               "body_incomplete");
    return internal(call, resp, "storing an upload");
}

/*
 * A committed change waits for its audit record (settle, or undo when the
 * record fails). The answer is rendered first: a change whose answer cannot
 * be made is undone at once, and the pipeline answers 500.
 */
static int arm(fm_call *call, fm_response *resp, pending *p, int status, cJSON *o)
{
    audit_bytes(call, p->change.bytes);
    call->undo_data = (char *)p;
    if (o == NULL || fm_route_json(resp, status, o) != 0) {
        undo_change(call);
        free(call->undo_data);
        call->undo_data = NULL;
        return -1;
    }
    call->undo = undo_change;
    call->settle = settle_change;
    return 0;
}

/* The answer to a committed upload. */
static int put_done(fm_call *call, fm_response *resp, pending *p)
{
    bool created = p->change.kind == FM_EXP_NEW;
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "experiment", call->params[0]) == NULL ||
        cJSON_AddStringToObject(o, "path", call->tail) == NULL ||
        cJSON_AddNumberToObject(o, "bytes", (double)p->change.bytes) == NULL ||
        cJSON_AddStringToObject(o, "etag", p->change.etag) == NULL ||
        cJSON_AddBoolToObject(o, "created", created) == NULL ||
        fm_response_header(resp, "ETag: \"%s\"", p->change.etag) != FM_OK) {
        cJSON_Delete(o);
        o = NULL;
    }
    return arm(call, resp, p, created ? 201 : 200, o);
}

static int put_refused(fm_call *call, fm_response *resp, fm_err rc, const char *why)
{
    char msg[128];

    switch (rc) {
    case FM_ECONFLICT:
        return fm_route_refuse(call, resp, 412, "PRECONDITION_FAILED",
                               "the file's current ETag does not satisfy If-Match / If-None-Match",
                               "precondition_failed");
    case FM_EQUOTA:
        (void)snprintf(msg, sizeof(msg), "the upload would exceed data.%s", why);
        return fm_route_refuse(call, resp, 429, "QUOTA_EXCEEDED", msg, why);
    case FM_EINVAL:
        if (why != NULL && strcmp(why, "not_directory") == 0)
            return fm_route_refuse(call, resp, 409, "CONFLICT",
                                   "a component of the path is not a directory", "not_directory");
        return fm_route_refuse(call, resp, 409, "CONFLICT",
                               "what is at this path is not a regular file", "not_regular");
    default:
        return internal(call, resp, "storing an upload");
    }
}

int fm_route_exp_put(fm_call *call, fm_response *resp)
{
    static const char *const allowed[] = {"user", NULL};
    const fm_config *cfg = call->env->cfg;
    const fm_exp_cond cond = {call->req->if_match, call->req->if_none_match};
    const fm_exp_limits lim = {cfg->data.quota_bytes, (uint64_t)cfg->data.quota_files};
    const char *why = NULL, *owner;
    int answered = 0;
    received how;
    pending *p;
    fm_query q;
    fm_err rc;

    owner = owner_of(call, resp, allowed, &q, perm_create);
    if (owner == NULL || !names_ok(call, resp) || take_upload_token(call, resp, &answered) != FM_OK)
        return answered;
    if (call->req->content_length > cfg->data.quota_bytes)
        return put_refused(call, resp, FM_EQUOTA, "quota_bytes");
    if ((p = pending_open(call, resp, owner, true, &answered)) == NULL)
        return answered;
    rc = fm_exptree_put_check(&p->tree, call->params[0], call->tail, &cond);
    if (rc != FM_OK) {
        pending_free(p);
        return put_refused(call, resp, rc, NULL);
    }
    if (!fm_metrics_transfer_begin(transfer_share(cfg))) {
        pending_free(p);
        return transfers_busy(call, resp);
    }
    rc = fm_exptree_put_begin(&p->tree, call->params[0], call->tail, &p->change);
    if (rc != FM_OK) {
        fm_metrics_transfer_end();
        pending_free(p);
        if (rc == FM_ECONFLICT)
            return put_refused(call, resp, FM_EINVAL, "not_directory");
        return rc == FM_EINVAL ? put_refused(call, resp, rc, NULL)
                               : internal(call, resp, "starting an upload");
    }
    how = receive(call->req, &p->change);
    fm_metrics_transfer_end();
    if (how != RECEIVED) {
        fm_exptree_abort(&p->change);
        pending_free(p);
        return receive_failed(call, resp, how);
    }
    rc = fm_exptree_put_commit(&p->tree, &p->change, &cond, &lim, &why);
    if (rc == FM_OK)
        return put_done(call, resp, p);
    fm_exptree_abort(&p->change);
    pending_free(p);
    return put_refused(call, resp, rc, why);
}

/* ---- DELETE /v1/experiments/{name}/files/{path} ------------------------------------- */

int fm_route_exp_delete(fm_call *call, fm_response *resp)
{
    static const char *const allowed[] = {"user", NULL};
    const char *owner;
    int answered = 0;
    pending *p;
    cJSON *o;
    fm_query q;
    fm_err rc;

    owner = owner_of(call, resp, allowed, &q, perm_delete);
    if (owner == NULL || !names_ok(call, resp))
        return 0;
    if ((p = pending_open(call, resp, owner, false, &answered)) == NULL)
        return answered;
    rc = fm_exptree_delete(&p->tree, call->params[0], call->tail, &p->change);
    if (rc != FM_OK) {
        pending_free(p);
        return rc == FM_ENOTFOUND ? not_found(call, resp) : internal(call, resp, "a delete");
    }
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "experiment", call->params[0]) == NULL ||
        cJSON_AddStringToObject(o, "path", call->tail) == NULL ||
        cJSON_AddNumberToObject(o, "bytes", (double)p->change.bytes) == NULL ||
        cJSON_AddBoolToObject(o, "deleted", true) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    return arm(call, resp, p, 200, o);
}
