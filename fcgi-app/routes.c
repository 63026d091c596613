/*
 * routes.c - the HTTP API (SPEC section 4). Each handler runs after the
 * pipeline has authenticated, rate-limited and authorized the caller; it only
 * validates its own input and talks to the task store.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "query.h"
#include "tasks.h"

static int internal(fm_call *call, fm_response *resp, const char *why)
{
    (void)snprintf(call->reason, sizeof(call->reason), "%s", why);
    fm_response_error(resp, 503, "SERVICE_UNAVAILABLE", "task store unavailable", call->trace_id);
    return 0;
}

static int send_json(fm_response *resp, int status, cJSON *json)
{
    int rc = json != NULL ? fm_response_json(resp, status, json) : -1;

    cJSON_Delete(json);
    return rc;
}

static int health(fm_call *call, fm_response *resp)
{
    int redis_ok = fm_redis_ping(call->env->redis) == FM_OK;
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "status", redis_ok ? "ok" : "degraded") == NULL ||
        cJSON_AddStringToObject(o, "redis", redis_ok ? "ok" : "unavailable") == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    if (!redis_ok)
        (void)snprintf(call->reason, sizeof(call->reason), "redis_unavailable");
    return send_json(resp, redis_ok ? 200 : 503, o);
}

/*
 * whoami's body is the same on every request of a user but for
 * rate_limit.remaining, and rendering it with cJSON each time was most of the
 * handler's cost (a dozen allocations; numbers printed with %g and read back
 * with sscanf). So cJSON renders the rest once per user, into a small table
 * per process, and a request only appends ',"remaining":N}}' to it. cJSON
 * prints a uint32 as its plain decimal digits, so the bytes are those of the
 * whole object rendered at once. A slot is reused only while every input it
 * was rendered from is unchanged: a user pointer alone could name a user of a
 * newer config that landed at a freed one's address.
 */
#define WHOAMI_SLOTS 64

typedef struct whoami_slot {
    const fm_user *user; /* NULL: empty */
    char name[FM_NAME_MAX];
    bool admin;
    fm_perms effective;
    fm_rate rate;
    size_t nroles;
    char (*roles)[FM_NAME_MAX]; /* copies, heap */
    char *text;                 /* the body without "remaining" and the closing "}}", heap */
    size_t len;
} whoami_slot;

static whoami_slot whoami_cache[WHOAMI_SLOTS];

static bool whoami_slot_matches(const whoami_slot *s, const fm_user *u, const fm_rate *rate)
{
    if (s->user != u || s->admin != u->admin || s->effective != u->effective ||
        s->rate.requests_per_minute != rate->requests_per_minute || s->rate.burst != rate->burst ||
        s->nroles != u->nroles || strcmp(s->name, u->name) != 0)
        return false;
    for (size_t i = 0; i < u->nroles; i++)
        if (strcmp(s->roles[i], u->roles[i]) != 0)
            return false;
    return true;
}

/* cJSON's rendering of everything but "remaining"; NULL on allocation failure. */
static char *whoami_render(const fm_user *u, const fm_rate *rate)
{
    cJSON *o = cJSON_CreateObject(), *roles, *perms, *rl;
    int ok = o != NULL;
    char *text = NULL;

    ok = ok && cJSON_AddStringToObject(o, "user", u->name) != NULL &&
         cJSON_AddBoolToObject(o, "admin", u->admin) != NULL &&
         (roles = cJSON_AddArrayToObject(o, "roles")) != NULL &&
         (perms = cJSON_AddArrayToObject(o, "permissions")) != NULL &&
         (rl = cJSON_AddObjectToObject(o, "rate_limit")) != NULL &&
         cJSON_AddNumberToObject(rl, "requests_per_minute", rate->requests_per_minute) != NULL &&
         cJSON_AddNumberToObject(rl, "burst", rate->burst) != NULL;
    for (size_t i = 0; ok && i < u->nroles; i++)
        ok = cJSON_AddItemToArray(roles, cJSON_CreateString(u->roles[i]));
    for (unsigned b = 0; ok && b < FM_RES_COUNT * FM_ACT_COUNT; b++) {
        fm_perms bit = (fm_perms)1u << b;
        if (u->effective & bit)
            ok = cJSON_AddItemToArray(perms, cJSON_CreateString(fm_rbac_name(bit)));
    }
    if (ok)
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/*
 * The slot holding u's rendering, filled on a miss; NULL on allocation
 * failure. Users are consecutive elements of one array, so consecutive users
 * get consecutive slots.
 */
static const whoami_slot *whoami_slot_for(const fm_user *u, const fm_rate *rate)
{
    whoami_slot *s = &whoami_cache[(uintptr_t)u / sizeof(*u) % WHOAMI_SLOTS];
    char *text, (*roles)[FM_NAME_MAX] = NULL;
    size_t len;

    if (whoami_slot_matches(s, u, rate))
        return s;
    text = whoami_render(u, rate);
    if (text == NULL)
        return NULL;
    len = strlen(text);
    if (u->nroles > 0)
        roles = malloc(u->nroles * sizeof(*roles));
    /* The object ends with rate_limit's "}" and its own; "remaining" goes before them. */
    if ((u->nroles > 0 && roles == NULL) || len < 2 || strcmp(text + len - 2, "}}") != 0) {
        free(text);
        free(roles);
        return NULL;
    }
    for (size_t r = 0; r < u->nroles; r++)
        (void)snprintf(roles[r], FM_NAME_MAX, "%s", u->roles[r]);
    free(s->text);
    free(s->roles);
    *s = (whoami_slot){.user = u,
                       .admin = u->admin,
                       .effective = u->effective,
                       .rate = *rate,
                       .nroles = u->nroles,
                       .roles = roles,
                       .text = text,
                       .len = len - 2};
    (void)snprintf(s->name, sizeof(s->name), "%s", u->name);
    return s;
}

static int whoami(fm_call *call, fm_response *resp)
{
    static const char remaining[] = ",\"remaining\":";
    const fm_user *u = call->user;
    const whoami_slot *s = whoami_slot_for(u, fm_config_user_rate(call->env->cfg, u));
    size_t cap;
    char *body;
    int n;

    if (s == NULL)
        return -1;
    cap = s->len + sizeof(remaining) + 10 + 2; /* 10: digits of the largest uint32 */
    body = malloc(cap);
    if (body == NULL)
        return -1;
    memcpy(body, s->text, s->len);
    n = call->rate != NULL ? snprintf(body + s->len, cap - s->len, "%s%" PRIu32 "}}", remaining,
                                      call->rate->remaining)
                           : snprintf(body + s->len, cap - s->len, "}}");
    if (n < 0 || (size_t)n >= cap - s->len) {
        free(body);
        return -1;
    }
    fm_response_json_take(resp, 200, body, s->len + (size_t)n);
    return 0;
}

/* Undo of a change whose audit record could not be written (see pipeline.h). */
static void undo_task_change(fm_call *call)
{
    if (fm_tasks_restore(call->env->redis, call->env->cfg->redis.key_prefix, call->undo_id,
                         call->undo_data) != FM_OK)
        fm_log_error("could not undo the change to task %s after an audit failure trace_id=%s",
                     call->undo_id, call->trace_id);
}

/* Arms the undo: before is the task's previous JSON (owned by the call), NULL after a create. */
static void arm_undo(fm_call *call, const char *id, char *before)
{
    (void)snprintf(call->undo_id, sizeof(call->undo_id), "%s", id);
    call->undo_data = before;
    call->undo = undo_task_change;
}

static const char *visible_user(const fm_call *call)
{
    return call->user->admin ? NULL : call->user->name;
}

static int task_create(fm_call *call, fm_response *resp)
{
    char err[256];
    cJSON *task;
    const fm_request *req = call->req;
    int rc = fm_tasks_create(call->env->redis, call->env->cfg->redis.key_prefix, call->user->name,
                             req->body, req->body_len, &task, err, sizeof(err));

    switch (rc) {
    case FM_OK:
        arm_undo(call, cJSON_GetObjectItemCaseSensitive(task, "id")->valuestring, NULL);
        return send_json(resp, 201, task);
    case FM_EPARSE:
        (void)snprintf(call->reason, sizeof(call->reason), "bad_json");
        fm_response_error(resp, 400, "BAD_REQUEST", err, call->trace_id);
        return 0;
    case FM_EINVAL:
        (void)snprintf(call->reason, sizeof(call->reason), "validation_error");
        fm_response_error(resp, 422, "VALIDATION_ERROR", err, call->trace_id);
        return 0;
    default:
        return internal(call, resp, "redis_error");
    }
}

static int not_found(fm_call *call, fm_response *resp)
{
    (void)snprintf(call->reason, sizeof(call->reason), "task_not_found");
    fm_response_error(resp, 404, "NOT_FOUND", "task not found", call->trace_id);
    return 0;
}

static int task_get(fm_call *call, fm_response *resp)
{
    cJSON *task;
    int rc = fm_tasks_get(call->env->redis, call->env->cfg->redis.key_prefix, visible_user(call),
                          call->params[0], &task);

    if (rc == FM_OK)
        return send_json(resp, 200, task);
    if (rc == FM_ENOTFOUND)
        return not_found(call, resp);
    return internal(call, resp, "redis_error");
}

static int conflict(fm_call *call, fm_response *resp, const char *msg)
{
    (void)snprintf(call->reason, sizeof(call->reason), "conflict");
    fm_response_error(resp, 409, "CONFLICT", msg, call->trace_id);
    return 0;
}

static int task_cancel(fm_call *call, fm_response *resp)
{
    cJSON *task = NULL;
    char *before = NULL;
    int rc = fm_tasks_cancel(call->env->redis, call->env->cfg->redis.key_prefix, visible_user(call),
                             call->params[0], &task, &before);

    switch (rc) {
    case FM_OK:
        arm_undo(call, call->params[0], before);
        return send_json(resp, 200, task);
    case FM_ENOTFOUND:
        return not_found(call, resp);
    case FM_ECONFLICT:
        cJSON_Delete(task);
        return conflict(call, resp, "only a queued or running task can be cancelled");
    default:
        cJSON_Delete(task);
        return internal(call, resp, "redis_error");
    }
}

static int task_delete(fm_call *call, fm_response *resp)
{
    char *before = NULL;
    int rc = fm_tasks_delete(call->env->redis, call->env->cfg->redis.key_prefix, visible_user(call),
                             call->params[0], &before);

    switch (rc) {
    case FM_OK:
        arm_undo(call, call->params[0], before);
        resp->status = 204;
        return 0;
    case FM_ENOTFOUND:
        return not_found(call, resp);
    case FM_ECONFLICT:
        return conflict(call, resp, "a running task must be cancelled before it is deleted");
    default:
        return internal(call, resp, "redis_error");
    }
}

/* Strict non-negative decimal within [lo, hi]. */
static int parse_long(const char *s, size_t n, long lo, long hi, long *out)
{
    char buf[24], *end;
    long v;

    if (n == 0 || n >= sizeof(buf) || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int bad_query(fm_call *call, fm_response *resp, const char *msg)
{
    (void)snprintf(call->reason, sizeof(call->reason), "bad_query");
    fm_response_error(resp, 400, "BAD_REQUEST", msg, call->trace_id);
    return 0;
}

static int task_list(fm_call *call, fm_response *resp)
{
    static const char *const allowed[] = {"status", "limit", "offset", NULL};
    const char *status, *v;
    char err[160];
    long limit = FM_TASKS_LIST_DEFAULT, offset = 0, total;
    fm_query q;
    cJSON *tasks, *o;

    if (fm_query_parse(call->req->query, allowed, &q, err, sizeof(err)) != 0)
        return bad_query(call, resp, err);
    status = fm_query_get(&q, "status");
    if (status != NULL && !fm_tasks_status_valid(status))
        return bad_query(call, resp,
                         "status must be one of queued, running, completed, failed, cancelled");
    if ((v = fm_query_get(&q, "limit")) != NULL &&
        parse_long(v, strlen(v), 1, FM_TASKS_LIST_MAX, &limit) != 0)
        return bad_query(call, resp, "limit must be an integer from 1 to 1000");
    if ((v = fm_query_get(&q, "offset")) != NULL &&
        parse_long(v, strlen(v), 0, 1000000000L, &offset) != 0)
        return bad_query(call, resp, "offset must be an integer from 0 to 1000000000");
    if (fm_tasks_list(call->env->redis, call->env->cfg->redis.key_prefix, visible_user(call),
                      status, offset, limit, &tasks, &total) != FM_OK)
        return internal(call, resp, "redis_error");
    o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToObject(o, "tasks", tasks)) {
        cJSON_Delete(tasks);
        cJSON_Delete(o);
        return -1;
    }
    if (cJSON_AddNumberToObject(o, "total", (double)total) == NULL ||
        cJSON_AddNumberToObject(o, "limit", (double)limit) == NULL ||
        cJSON_AddNumberToObject(o, "offset", (double)offset) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    return send_json(resp, 200, o);
}

const fm_route fm_app_routes[] = {
    {"GET", "/health", FM_PERM_NONE, health},
    {"GET", "/v1/whoami", FM_PERM_NONE, whoami},
    {"POST", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_CREATE), task_create},
    {"GET", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_READ), task_list},
    {"GET", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_READ), task_get},
    {"POST", "/v1/tasks/{id}/cancel", FM_PERM(FM_RES_JOBS, FM_ACT_UPDATE), task_cancel},
    {"DELETE", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_DELETE), task_delete},
};
const size_t fm_app_nroutes = sizeof(fm_app_routes) / sizeof(fm_app_routes[0]);
