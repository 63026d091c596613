/*
 * routes.h - the handlers of the HTTP API, one file per resource
 * (routes_meta.c: health and whoami; routes_tasks.c: tasks), and what they
 * share. The table that maps each method and path to a handler and its
 * permission is routes.c. Each handler runs after the pipeline has
 * authenticated, rate-limited and authorized the caller (see pipeline.h); it
 * only validates its own input and talks to the store. Handlers follow
 * fm_handler: 0 with resp filled, or -1 for a failure the pipeline answers
 * with 500.
 */
#ifndef FM_ROUTES_H
#define FM_ROUTES_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "pipeline.h"

/* routes_meta.c */
int fm_route_health(fm_call *call, fm_response *resp);
int fm_route_whoami(fm_call *call, fm_response *resp);

/* routes_tasks.c */
int fm_route_task_create(fm_call *call, fm_response *resp);
int fm_route_task_list(fm_call *call, fm_response *resp);
int fm_route_task_get(fm_call *call, fm_response *resp);
int fm_route_task_cancel(fm_call *call, fm_response *resp);
int fm_route_task_delete(fm_call *call, fm_response *resp);

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
