/*
 * routes_tasks.c - the task resource: POST /v1/tasks, GET /v1/tasks,
 * GET /v1/tasks/{id}, POST /v1/tasks/{id}/cancel, DELETE /v1/tasks/{id};
 * and what the worker routes (routes_worker.c) share with them.
 *
 * A user sees only the tasks they own; an admin, and a job worker (jobs:run),
 * sees every task (fm_rbac_reads_all). Only an admin changes another user's
 * task. A task the caller may not see is "not found" (404), never
 * "forbidden", so that ids do not leak. Each change arms an undo, which the
 * pipeline runs when the request's audit record cannot be written, and the
 * event the pipeline publishes once the record is written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rbac.h"
#include "query.h"
#include "routes.h"
#include "tasks.h"

#define OFFSET_MAX 1000000000L

/* Bytes a list's body holds besides its tasks: {"tasks":[...],"total":N,...,"next_offset":N}. */
#define LIST_ENVELOPE_BYTES 128

fm_tasks_store fm_route_tasks_store(const fm_call *call)
{
    const fm_config *cfg = call->env->cfg;

    return (fm_tasks_store){
        .redis = call->env->redis,
        .prefix = cfg->redis.key_prefix,
        .max_task_bytes = cfg->limits.max_task_bytes,
        .max_open_tasks = cfg->limits.max_open_tasks,
        .lease_seconds = cfg->jobs.lease_seconds,
        .max_attempts = cfg->jobs.max_attempts,
        .trace_id = call->trace_id,
        .actor = call->user != NULL ? call->user->name : NULL,
    };
}

const char *fm_route_task_param(fm_call *call)
{
    (void)snprintf(call->audit_task_id, sizeof(call->audit_task_id), "%s", call->params[0]);
    return call->params[0];
}

int fm_route_task_unavailable(fm_call *call, fm_response *resp)
{
    return fm_route_refuse(call, resp, 503, "SERVICE_UNAVAILABLE", "task store unavailable",
                           "redis_error");
}

int fm_route_task_not_found(fm_call *call, fm_response *resp)
{
    return fm_route_refuse(call, resp, 404, "NOT_FOUND", "task not found", "task_not_found");
}

static int conflict(fm_call *call, fm_response *resp, const char *msg)
{
    return fm_route_refuse(call, resp, 409, "CONFLICT", msg, "conflict");
}

static int bad_query(fm_call *call, fm_response *resp, const char *msg)
{
    return fm_route_refuse(call, resp, 400, "BAD_REQUEST", msg, "bad_query");
}

/* Undo of a change whose audit record could not be written (see pipeline.h). */
static void undo_task_change(fm_call *call)
{
    fm_tasks_store st = fm_route_tasks_store(call);

    if (fm_tasks_restore(&st, call->undo_id, call->undo_data) != FM_OK)
        fm_log_error("could not undo the change to task %s after an audit failure trace_id=%s",
                     call->undo_id, call->trace_id);
}

/* Acknowledges the change once its audit record is written (its journal member, tasks.h). */
static void settle_task_change(fm_call *call)
{
    fm_tasks_store st = fm_route_tasks_store(call);

    if (fm_tasks_settle(&st, call->undo_data) != FM_OK)
        fm_log_warn("could not acknowledge the change to task %s (%s): the sweeper records it "
                    "again trace_id=%s",
                    call->undo_id, fm_redis_errstr(call->env->redis), call->trace_id);
}

void fm_route_task_changed(fm_call *call, const char *id, char *before, const char *event,
                           cJSON *task)
{
    (void)snprintf(call->undo_id, sizeof(call->undo_id), "%s", id);
    (void)snprintf(call->audit_task_id, sizeof(call->audit_task_id), "%s", id);
    call->undo_data = before;
    call->undo = undo_task_change;
    call->settle = settle_task_change;
    if (event == NULL) {
        cJSON_Delete(task);
        return;
    }
    call->event = event;
    call->event_task = task;
}

int fm_route_task_answer(fm_call *call, fm_response *resp, int status, const char *id, char *before,
                         const char *event, cJSON *task)
{
    fm_err rc = fm_response_json(resp, status, task);

    fm_route_task_changed(call, id, before, event, task);
    return rc == FM_OK ? 0 : -1;
}

/* The owner whose tasks the caller may read: NULL (everyone's) for an admin or a job worker. */
static const char *readable_user(const fm_call *call)
{
    return fm_rbac_reads_all(call->user->admin, call->user->effective) ? NULL : call->user->name;
}

/* The owner whose tasks the caller may change: NULL (everyone's) for an admin only. */
static const char *writable_user(const fm_call *call)
{
    return call->user->admin ? NULL : call->user->name;
}

int fm_route_task_create(fm_call *call, fm_response *resp)
{
    char err[256], id[FM_TASKS_ID_SIZE], *before;
    cJSON *task;
    const fm_request *req = call->req;
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc = fm_tasks_create(&st, call->user->name, req->body, req->body_len, &task, id, &before,
                                err, sizeof(err));

    switch (rc) {
    case FM_OK:
        return fm_route_task_answer(call, resp, 201, id, before, "task.created", task);
    case FM_EPARSE:
        return fm_route_refuse(call, resp, 400, "BAD_REQUEST", err, "bad_json");
    case FM_EINVAL:
        return fm_route_refuse(call, resp, 422, "VALIDATION_ERROR", err, "validation_error");
    case FM_ETOOBIG:
        return fm_route_refuse(call, resp, 413, "PAYLOAD_TOO_LARGE", err, "task_too_large");
    case FM_EQUOTA:
        return fm_route_refuse(call, resp, 429, "QUOTA_EXCEEDED", err, "quota_exceeded");
    default:
        return fm_route_task_unavailable(call, resp);
    }
}

int fm_route_task_get(fm_call *call, fm_response *resp)
{
    cJSON *task;
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc = fm_tasks_get(&st, readable_user(call), fm_route_task_param(call), &task);

    if (rc == FM_OK)
        return fm_route_json(resp, 200, task);
    if (rc == FM_ENOTFOUND)
        return fm_route_task_not_found(call, resp);
    return fm_route_task_unavailable(call, resp);
}

/*
 * A queued task ends cancelled; a running one stays running with
 * cancel_requested until its worker completes it, which makes the event.
 */
int fm_route_task_cancel(fm_call *call, fm_response *resp)
{
    cJSON *task = NULL;
    char *before = NULL;
    const char *status;
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc =
        fm_tasks_cancel(&st, writable_user(call), fm_route_task_param(call), &task, &before);

    switch (rc) {
    case FM_OK:
        status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "status"));
        return fm_route_task_answer(
            call, resp, 200, call->params[0], before,
            status != NULL && strcmp(status, "cancelled") == 0 ? "task.cancelled" : NULL, task);
    case FM_ENOTFOUND:
        return fm_route_task_not_found(call, resp);
    case FM_ECONFLICT:
        cJSON_Delete(task);
        return conflict(call, resp, "only a queued or running task can be cancelled");
    default:
        cJSON_Delete(task);
        return fm_route_task_unavailable(call, resp);
    }
}

/* The event carries the task as it was, read first: the undo token is not JSON. */
int fm_route_task_delete(fm_call *call, fm_response *resp)
{
    char *before = NULL;
    cJSON *gone = NULL;
    const char *id = fm_route_task_param(call);
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc = fm_tasks_delete(&st, writable_user(call), id, &gone, &before);

    switch (rc) {
    case FM_OK:
        fm_route_task_changed(call, id, before, "task.deleted", gone);
        resp->status = 204;
        return 0;
    case FM_ENOTFOUND:
        cJSON_Delete(gone);
        return fm_route_task_not_found(call, resp);
    case FM_ECONFLICT:
        cJSON_Delete(gone);
        return conflict(call, resp, "a running task must be cancelled before it is deleted");
    default:
        cJSON_Delete(gone);
        return fm_route_task_unavailable(call, resp);
    }
}

/* Strict non-negative decimal within [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (s[0] < '0' || s[0] > '9' || strlen(s) >= 24)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/*
 * The list's query into *status, *limit (1..FM_TASKS_LIST_MAX) and *offset.
 * NULL, or why it is refused (err, errlen bytes, or a constant).
 */
static const char *list_query(const fm_request *req, const char **status, long *limit, long *offset,
                              char *err, size_t errlen)
{
    static const char *const allowed[] = {"status", "limit", "offset", NULL};
    const char *v;
    fm_query q;

    if (fm_query_parse(req->query, allowed, &q, err, errlen) != 0)
        return err;
    *status = fm_query_get(&q, "status");
    if (*status != NULL && !fm_tasks_status_valid(*status))
        return "status must be one of queued, running, completed, failed, cancelled";
    if ((v = fm_query_get(&q, "limit")) != NULL && parse_long(v, 1, FM_TASKS_LIST_MAX, limit) != 0)
        return "limit must be an integer from 1 to 1000";
    if ((v = fm_query_get(&q, "offset")) != NULL && parse_long(v, 0, OFFSET_MAX, offset) != 0)
        return "offset must be an integer from 0 to 1000000000";
    return NULL;
}

int fm_route_task_list(fm_call *call, fm_response *resp)
{
    const char *status, *refused;
    char err[160];
    long limit = FM_TASKS_LIST_DEFAULT, offset = 0, total, next_offset;
    size_t max = call->env->cfg->limits.max_response_bytes;
    fm_tasks_store st = fm_route_tasks_store(call);
    cJSON *tasks, *o;

    refused = list_query(call->req, &status, &limit, &offset, err, sizeof(err));
    if (refused != NULL)
        return bad_query(call, resp, refused);
    if (fm_tasks_list(&st, readable_user(call), status, offset, limit, max - LIST_ENVELOPE_BYTES,
                      &tasks, &total, &next_offset) != FM_OK)
        return fm_route_task_unavailable(call, resp);
    o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToObject(o, "tasks", tasks)) {
        cJSON_Delete(tasks);
        cJSON_Delete(o);
        return -1;
    }
    if (cJSON_AddNumberToObject(o, "total", (double)total) == NULL ||
        cJSON_AddNumberToObject(o, "limit", (double)limit) == NULL ||
        cJSON_AddNumberToObject(o, "offset", (double)offset) == NULL ||
        (next_offset >= 0 ? cJSON_AddNumberToObject(o, "next_offset", (double)next_offset)
                          : cJSON_AddNullToObject(o, "next_offset")) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    return fm_route_json(resp, 200, o);
}
