/*
 * routes.c - the HTTP API as a table: method, path pattern, the permission
 * the pipeline checks, the handler (routes.h), flags (FM_ROUTE_JSON_BODY:
 * the route reads a JSON body; FM_ROUTE_QUERY: it reads a query string, which
 * every other route refuses; FM_ROUTE_STREAM_BODY: it reads its body itself,
 * in chunks). A new route is one row here;
 * a new resource is one routes_<resource>.c.
 */
#include "app.h"
#include "routes.h"

const fm_route fm_app_routes[] = {
    {"GET", "/health", FM_PERM_NONE, fm_route_health, 0},
    {"GET", "/v1/whoami", FM_PERM_NONE, fm_route_whoami, 0},
    {"GET", "/metrics", FM_PERM(FM_RES_METRICS, FM_ACT_READ), fm_route_metrics, 0},
    {"POST", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_CREATE), fm_route_task_create,
     FM_ROUTE_JSON_BODY},
    {"GET", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_READ), fm_route_task_list, FM_ROUTE_QUERY},
    {"GET", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_READ), fm_route_task_get, 0},
    {"POST", "/v1/tasks/{id}/cancel", FM_PERM(FM_RES_JOBS, FM_ACT_UPDATE), fm_route_task_cancel, 0},
    {"DELETE", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_DELETE), fm_route_task_delete, 0},
    {"POST", "/v1/worker/claim", FM_PERM(FM_RES_JOBS, FM_ACT_RUN), fm_route_worker_claim,
     FM_ROUTE_JSON_BODY},
    {"POST", "/v1/tasks/{id}/heartbeat", FM_PERM(FM_RES_JOBS, FM_ACT_RUN), fm_route_task_heartbeat,
     FM_ROUTE_JSON_BODY | FM_ROUTE_QUERY},
    {"POST", "/v1/tasks/{id}/complete", FM_PERM(FM_RES_JOBS, FM_ACT_RUN), fm_route_task_complete,
     FM_ROUTE_JSON_BODY | FM_ROUTE_QUERY},
    {"GET", "/ws", FM_PERM(FM_RES_JOBS, FM_ACT_READ), fm_route_ws, 0},
    {"GET", "/v1/experiments", FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_READ), fm_route_exp_list,
     FM_ROUTE_QUERY},
    {"GET", "/v1/experiments/{name}/files", FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_READ),
     fm_route_exp_files, FM_ROUTE_QUERY},
    {"GET", "/v1/experiments/{name}/files/{path*}", FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_READ),
     fm_route_exp_get, FM_ROUTE_QUERY},
    {"PUT", "/v1/experiments/{name}/files/{path*}", FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_CREATE),
     fm_route_exp_put, FM_ROUTE_QUERY | FM_ROUTE_STREAM_BODY},
    {"DELETE", "/v1/experiments/{name}/files/{path*}", FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_DELETE),
     fm_route_exp_delete, FM_ROUTE_QUERY},
};
const size_t fm_app_nroutes = sizeof(fm_app_routes) / sizeof(fm_app_routes[0]);
_Static_assert(sizeof(fm_app_routes) / sizeof(fm_app_routes[0]) <= FM_APP_MAX_ROUTES,
               "FM_APP_MAX_ROUTES (app.h) is too small for the route table");
