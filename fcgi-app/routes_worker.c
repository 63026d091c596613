/*
 * routes_worker.c - the job workers' side of the task resource (SPEC 4.1):
 * POST /v1/worker/claim, POST /v1/tasks/{id}/heartbeat,
 * POST /v1/tasks/{id}/complete, all jobs:run.
 *
 * A worker is a user with its own key (the built-in role `worker`). Its
 * worker_id is its user name, or "<user>/<worker>" when it names itself
 * (several processes sharing one key): in the claim's body ({"worker":
 * NAME}), then in the query of its heartbeats and completion (?worker=NAME),
 * whose bodies are the task's news. Only the holder of a task's lease may
 * heartbeat or complete it; for any other caller the task is a 409 without
 * the task in the body, so a worker learns nothing of tasks it does not
 * hold. Every request names its worker in the audit record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "routes.h"
#include "taskbody.h"
#include "tasks.h"

/* The worker_id of the caller, naming worker (may be empty); also the audit record's worker. */
static const char *worker_id(fm_call *call, const char *worker)
{
    if (worker[0] == '\0')
        (void)snprintf(call->audit_worker, sizeof(call->audit_worker), "%s", call->user->name);
    else
        (void)snprintf(call->audit_worker, sizeof(call->audit_worker), "%s/%s", call->user->name,
                       worker);
    return call->audit_worker;
}

/*
 * The worker_id of a heartbeat or completion, from ?worker=NAME (a name as
 * fm_taskbody_claim takes it). NULL, or why the query is refused (err).
 */
static const char *holder_id(fm_call *call, char *err, size_t errlen)
{
    static const char *const allowed[] = {"worker", NULL};
    static const char chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
    const char *name;
    fm_query q;

    (void)worker_id(call, "");
    if (fm_query_parse(call->req->query, allowed, &q, err, errlen) != FM_OK)
        return err;
    if ((name = fm_query_get(&q, "worker")) == NULL)
        return NULL;
    if (name[0] == '\0' || strlen(name) >= FM_TASKBODY_WORKER_MAX ||
        strspn(name, chars) != strlen(name))
        return "worker must be 1-63 of A-Z a-z 0-9 _ . : -";
    (void)worker_id(call, name);
    return NULL;
}

/* A refused body: FM_EPARSE is not JSON (400), FM_EINVAL a field refused (422). */
static int bad_body(fm_call *call, fm_response *resp, fm_err rc, const char *err)
{
    if (rc == FM_ESYS)
        return -1;
    if (rc == FM_EPARSE)
        return fm_route_refuse(call, resp, 400, "BAD_REQUEST", err, "bad_json");
    return fm_route_refuse(call, resp, 422, "VALIDATION_ERROR", err, "validation_error");
}

static int bad_query(fm_call *call, fm_response *resp, const char *msg)
{
    return fm_route_refuse(call, resp, 400, "BAD_REQUEST", msg, "bad_query");
}

static int not_held(fm_call *call, fm_response *resp, const char *msg)
{
    return fm_route_refuse(call, resp, 409, "CONFLICT", msg, "not_lease_holder");
}

int fm_route_worker_claim(fm_call *call, fm_response *resp)
{
    char name[FM_TASKBODY_WORKER_MAX], err[160];
    const char *id;
    cJSON *task = NULL;
    char *before = NULL;
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc = fm_taskbody_claim(call->req->body, call->req->body_len, name, err, sizeof(err));

    if (rc != FM_OK) {
        (void)worker_id(call, "");
        return bad_body(call, resp, rc, err);
    }
    rc = fm_tasks_claim(&st, worker_id(call, name), &task, &before);
    switch (rc) {
    case FM_OK:
        id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id"));
        return fm_route_task_answer(call, resp, 200, id != NULL ? id : "", before, "task.started",
                                    task);
    case FM_ENOTFOUND:
        (void)snprintf(call->reason, sizeof(call->reason), "queue_empty");
        resp->status = 204;
        return 0;
    default:
        return fm_route_task_unavailable(call, resp);
    }
}

/*
 * The answer {"lease_expires_at", "cancel_requested", "task"}: the first two
 * copied from the task to the top, where a worker's loop looks.
 */
static cJSON *heartbeat_answer(const cJSON *task)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *lease = cJSON_GetObjectItemCaseSensitive(task, "lease_expires_at");

    if (o == NULL ||
        !cJSON_AddItemToObject(o, "lease_expires_at",
                               cJSON_IsString(lease) ? cJSON_CreateString(lease->valuestring)
                                                     : cJSON_CreateNull()) ||
        cJSON_AddBoolToObject(
            o, "cancel_requested",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(task, "cancel_requested"))) == NULL ||
        !cJSON_AddItemReferenceToObject(o, "task", (cJSON *)task)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int fm_route_task_heartbeat(fm_call *call, fm_response *resp)
{
    char err[160];
    char *metrics = NULL, *before = NULL;
    const char *refused;
    double progress;
    cJSON *task = NULL, *answer;
    const char *id = fm_route_task_param(call);
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc;

    if ((refused = holder_id(call, err, sizeof(err))) != NULL)
        return bad_query(call, resp, refused);
    rc = fm_taskbody_heartbeat(call->req->body, call->req->body_len, &progress, &metrics, err,
                               sizeof(err));
    if (rc != FM_OK)
        return bad_body(call, resp, rc, err);
    rc = fm_tasks_heartbeat(&st, call->audit_worker, id, progress, metrics, &task, &before);
    free(metrics);
    switch (rc) {
    case FM_OK:
        answer = heartbeat_answer(task);
        rc = answer != NULL ? fm_response_json(resp, 200, answer) : FM_ESYS;
        cJSON_Delete(answer); /* holds task by reference only */
        fm_route_task_changed(call, id, before, "task.progress", task);
        return rc == FM_OK ? 0 : -1;
    case FM_ENOTFOUND:
        return fm_route_task_not_found(call, resp);
    case FM_ECONFLICT:
        return not_held(call, resp, "task is not held by this worker");
    default:
        return fm_route_task_unavailable(call, resp);
    }
}

/* The event of a task that ended as status (completed, failed or cancelled). */
static const char *ended_event(const char *status)
{
    if (strcmp(status, "completed") == 0)
        return "task.completed";
    if (strcmp(status, "failed") == 0)
        return "task.failed";
    return "task.cancelled";
}

int fm_route_task_complete(fm_call *call, fm_response *resp)
{
    char err[160];
    char *error = NULL, *before = NULL;
    const char *status, *refused;
    cJSON *task = NULL;
    const char *id = fm_route_task_param(call);
    fm_tasks_store st = fm_route_tasks_store(call);
    fm_err rc;

    if ((refused = holder_id(call, err, sizeof(err))) != NULL)
        return bad_query(call, resp, refused);
    rc = fm_taskbody_complete(call->req->body, call->req->body_len, &status, &error, err,
                              sizeof(err));
    if (rc != FM_OK)
        return bad_body(call, resp, rc, err);
    rc = fm_tasks_complete(&st, call->audit_worker, id, status, error, &task, &before);
    free(error);
    switch (rc) {
    case FM_OK:
        return fm_route_task_answer(call, resp, 200, id, before, ended_event(status), task);
    case FM_ENOTFOUND:
        return fm_route_task_not_found(call, resp);
    case FM_ECONFLICT:
        return not_held(call, resp,
                        strcmp(status, "cancelled") == 0
                            ? "task is not held by this worker, or its cancellation was not "
                              "requested"
                            : "task is not held by this worker");
    default:
        return fm_route_task_unavailable(call, resp);
    }
}
