/*
 * routes.c - the HTTP API as a table: method, path pattern, the permission
 * the pipeline checks, the handler (routes.h). A new route is one row here;
 * a new resource is one routes_<resource>.c.
 */
#include "app.h"
#include "routes.h"

const fm_route fm_app_routes[] = {
    {"GET", "/health", FM_PERM_NONE, fm_route_health},
    {"GET", "/v1/whoami", FM_PERM_NONE, fm_route_whoami},
    {"POST", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_CREATE), fm_route_task_create},
    {"GET", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_READ), fm_route_task_list},
    {"GET", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_READ), fm_route_task_get},
    {"POST", "/v1/tasks/{id}/cancel", FM_PERM(FM_RES_JOBS, FM_ACT_UPDATE), fm_route_task_cancel},
    {"DELETE", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_DELETE), fm_route_task_delete},
};
const size_t fm_app_nroutes = sizeof(fm_app_routes) / sizeof(fm_app_routes[0]);
