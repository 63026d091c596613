/*
 * app.h - the FastCGI program's internal interfaces: the master (main.c)
 * forks workers (worker.c) that serve the routes (routes.c) through the
 * library pipeline.
 */
#ifndef FM_APP_H
#define FM_APP_H

#include <stddef.h>

#include "config.h"
#include "pipeline.h"

/* The route table, in match order. */
extern const fm_route fm_app_routes[];
extern const size_t fm_app_nroutes;

/*
 * fm_worker_main - serve FastCGI requests on listen_fd with the snapshot cfg
 * until SIGTERM (finishing the request in flight) and exit the process.
 * audit_shared is the master's chain state. Never returns.
 */
void fm_worker_main(const fm_config *cfg, int listen_fd, fm_audit_shared *audit_shared)
    __attribute__((noreturn));

#endif
