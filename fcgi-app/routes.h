/*
 * routes.h - the handlers of the HTTP API, one file per resource
 * (routes_meta.c: health and whoami; routes_tasks.c: tasks; routes_worker.c:
 * the job workers' claim, heartbeat and complete; routes_experiments.c: the
 * experiment files), and what they share. The table that maps each
 * method and path to a handler and its permission is routes.c. Each handler runs after the pipeline
 * has authenticated, rate-limited and authorized the caller (see pipeline.h); it only validates its
 * own input and talks to the store. Handlers follow fm_handler: 0 with resp filled, or -1 for a
 * failure the pipeline answers with 500.
 */
#ifndef FM_ROUTES_H
#define FM_ROUTES_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "params.h"
#include "pipeline.h"
#include "tasks.h"
#include "wsauth.h"
#include "wsconn.h"

/* routes_meta.c */
int fm_route_health(fm_call *call, fm_response *resp);
int fm_route_whoami(fm_call *call, fm_response *resp);

/* routes_metrics.c */
int fm_route_metrics(fm_call *call, fm_response *resp);

/* routes_tasks.c */
int fm_route_task_create(fm_call *call, fm_response *resp);
int fm_route_task_list(fm_call *call, fm_response *resp);
int fm_route_task_get(fm_call *call, fm_response *resp);
int fm_route_task_cancel(fm_call *call, fm_response *resp);
int fm_route_task_delete(fm_call *call, fm_response *resp);

/* routes_worker.c */
int fm_route_worker_claim(fm_call *call, fm_response *resp);
int fm_route_task_heartbeat(fm_call *call, fm_response *resp);
int fm_route_task_complete(fm_call *call, fm_response *resp);

/* routes_ws.c: GET /ws (see the top of routes_ws.c) */
int fm_route_ws(fm_call *call, fm_response *resp);

/*
 * fm_route_ws_prepare - the /ws parts of req from the params p: Origin, and
 * for nginx's auth_request (FETCHML_WS_AUTH) the client's path and query and
 * the key offered as subprotocol (offer, which must outlive req: req points
 * into it). A key there and in a header, or two there, make the request's
 * credentials ambiguous (refused as a repeated credential); count (how
 * often each param came, fm_params_scan) marks a repeated Origin or
 * Sec-WebSocket-Protocol (req->ws_repeated, refused by GET /ws: which one
 * nchan or a browser's check would read is not this product's to guess).
 */
void fm_route_ws_prepare(const char *const p[P_COUNT], const int count[P_COUNT], fm_request *req,
                         fm_wsauth_offer *offer);

/*
 * fm_route_ws_event - nchan's open or close callback (FETCHML_WS_EVENT set;
 * see routes_ws.c), answered 204 into resp. Outside the pipeline: no key is
 * sent, and the request is nginx's own.
 */
void fm_route_ws_event(const fm_env *env, const char *const p[P_COUNT], fm_response *resp);

/* fm_route_ws_store - the WebSocket registry of this host over env's Redis (wsconn.h). */
fm_wsconn_store fm_route_ws_store(const fm_env *env);

/*
 * fm_route_ws_audit_close - the audit record of the close of c (user, key id,
 * kind, opened_ms; fields may be empty) for why ("closed", "key_revoked", ...)
 * at now_ms (Unix ms). trace_id and source_ip may be NULL. Returns whether it
 * was written (a failure is logged).
 */
bool fm_route_ws_audit_close(const fm_env *env, const char *trace_id, const char *source_ip,
                             const fm_wsconn *c, const char *why, int64_t now_ms);
/* routes_experiments.c */
int fm_route_exp_list(fm_call *call, fm_response *resp);
int fm_route_exp_files(fm_call *call, fm_response *resp);
int fm_route_exp_get(fm_call *call, fm_response *resp);
int fm_route_exp_put(fm_call *call, fm_response *resp);
int fm_route_exp_delete(fm_call *call, fm_response *resp);

/* routes_tasks.c, shared with routes_worker.c */

/* fm_route_tasks_store - the task store as the config in force sets it, over the worker's Redis. */
fm_tasks_store fm_route_tasks_store(const fm_call *call);

/* fm_route_task_param - the path's {id}, also named as the task of the request's audit record. */
const char *fm_route_task_param(fm_call *call);

/*
 * fm_route_task_changed - after a change to task id: arms its undo
 * (fm_tasks_restore with before; the call owns before from now on) and its
 * settle (fm_tasks_settle with before, once the audit record is written), names the task in the
 * audit record, and hands task (the call owns it from now on) to event (a task.* type; NULL: no
 * event, task is freed).
 */
void fm_route_task_changed(fm_call *call, const char *id, char *before, const char *event,
                           cJSON *task);

/*
 * fm_route_task_answer - answer status with task, then fm_route_task_changed.
 * 0, or -1 when the task cannot be rendered (the change stays armed).
 */
int fm_route_task_answer(fm_call *call, fm_response *resp, int status, const char *id, char *before,
                         const char *event, cJSON *task);

/* 503 SERVICE_UNAVAILABLE: Redis could not answer (or is full). Returns 0. */
int fm_route_task_unavailable(fm_call *call, fm_response *resp);

/* 404 NOT_FOUND: no such task, or not one the caller may see. Returns 0. */
int fm_route_task_not_found(fm_call *call, fm_response *resp);

/*
 * fm_route_json - answer status with json (rendered unformatted; the
 * response owns the text) and free json. NULL json is an allocation that
 * failed upstream. 0, or -1 when json is NULL or cannot be rendered.
 */
static inline int fm_route_json(fm_response *resp, int status, cJSON *json)
{
    int rc = json != NULL ? fm_response_json(resp, status, json) : -1;

    cJSON_Delete(json);
    return rc;
}

/*
 * fm_route_refuse - answer status with the JSON error (code, msg) and record
 * reason as the request's audit reason. Returns 0, the handler's result.
 */
static inline int fm_route_refuse(fm_call *call, fm_response *resp, int status, const char *code,
                                  const char *msg, const char *reason)
{
    (void)snprintf(call->reason, sizeof(call->reason), "%s", reason);
    fm_response_error(resp, status, code, msg, call->trace_id);
    return 0;
}

#endif
