/*
 * routes_metrics.c - GET /metrics: the shared counters (lib/base/metrics.h)
 * in the Prometheus text format 0.0.4, with what only this worker can measure
 * at scrape time: the FastCGI socket's accept queue (listenq.h).
 */
#include <stdio.h>

#include "app.h"
#include "listenq.h"
#include "metrics.h"
#include "routes.h"

#ifndef FM_VERSION
#define FM_VERSION "unknown"
#endif

#define EXPOSITION_TYPE "text/plain; version=0.0.4; charset=utf-8"

int fm_route_metrics(fm_call *call, fm_response *resp)
{
    /* The route table is static: its patterns are gathered once per process. */
    static const char *patterns[FM_APP_MAX_ROUTES];
    fm_metrics_view view = {.routes = patterns, .nroutes = fm_app_nroutes, .version = FM_VERSION};
    char *text;
    size_t len;

    for (size_t i = 0; i < fm_app_nroutes && i < FM_APP_MAX_ROUTES; i++)
        patterns[i] = fm_app_routes[i].pattern;
    view.have_queue =
        call->env->listen_fd > 0 &&
        fm_listenq_read(call->env->listen_fd, &view.queue_len, &view.queue_max) == FM_OK;
    if (fm_metrics_render(&view, &text, &len) != FM_OK)
        return -1;
    fm_response_text_take(resp, 200, EXPOSITION_TYPE, text, len);
    return 0;
}
