/*
 * app.h - the FastCGI program's internal interfaces: the master (main.c)
 * opens the socket (listener.c) and forks workers (worker.c, tracked in
 * pool.c, their audit chain state in chains.c) that serve the routes
 * (routes.c and one routes_<resource>.c per resource) through the library
 * pipeline.
 */
#ifndef FM_APP_H
#define FM_APP_H

#include <stddef.h>

#include <signal.h>

#include "audit.h"
#include "config.h"
#include "daemon.h"
#include "err.h"
#include "pipeline.h"

/* The route table, in match order; at most FM_APP_MAX_ROUTES rows. */
#define FM_APP_MAX_ROUTES 64
extern const fm_route fm_app_routes[];
extern const size_t fm_app_nroutes;

/*
 * fm_listener_open - open, bind and listen on cfg->server.listen ("unix:PATH"
 * or a numeric "host:port"), non-blocking and close-on-exec, into *fd. For a
 * unix socket its path is copied to unix_path (unix_len bytes; "" for TCP),
 * for the caller to remove at shutdown. FM_OK, or FM_ESYS after logging why
 * (the socket is in use, bind, group, mode, listen).
 */
FM_MUST_CHECK fm_err fm_listener_open(const fm_config *cfg, int *fd, char *unix_path,
                                      size_t unix_len);

/*
 * fm_worker_main - serve FastCGI requests on listen_fd with the snapshot cfg
 * until SIGTERM (finishing the request in flight) and exit the process.
 * audit_ep is where the generation's audit logger listens. Never returns.
 */
void fm_worker_main(const fm_config *cfg, int listen_fd, const fm_audit_endpoint *audit_ep)
    __attribute__((noreturn));

/*
 * What every child of the master (pool worker, sweeper) sets up after fork,
 * in worker.c:
 * fm_worker_signals - fm_daemon_signals with the n rows of sigs (delivered
 * only where the child waits with *waitmask), and SIGTERM when the master
 * dies. FM_ESYS (logged) on failure or when the master is already gone.
 * fm_worker_redis - a Redis handle for cfg's redis section (direct, or through
 * its sentinels), not connected; NULL out of memory or on a bad address.
 * fm_worker_env_open - the child's own Redis handle (connected on first use)
 * and audit sender to the logger at audit_ep (fm_audit_connect on
 * cfg->logging.file), into env with env->cfg = cfg. FM_OK, or FM_ESYS after logging why
 * as "<who> <pid>: cannot start: ...". fm_worker_env_close frees what was
 * opened, after either outcome.
 */
FM_MUST_CHECK fm_err fm_worker_signals(const fm_daemon_signal *sigs, size_t n, sigset_t *waitmask);
fm_redis *fm_worker_redis(const fm_config *cfg);
FM_MUST_CHECK fm_err fm_worker_env_open(const fm_config *cfg, const fm_audit_endpoint *audit_ep,
                                        const char *who, fm_env *env);
void fm_worker_env_close(fm_env *env);

/*
 * fm_sweeper_main - the sweeper (sweeper.c): end expired leases every
 * cfg->jobs.sweep_interval_ms with the snapshot cfg, auditing each
 * transition through the audit logger at audit_ep, until SIGTERM/SIGINT/SIGQUIT
 * (the pass in progress finishes), then exit the process. Never returns.
 */
void fm_sweeper_main(const fm_config *cfg, const fm_audit_endpoint *audit_ep)
    __attribute__((noreturn));

/*
 * fm_wsrelay_main - the WebSocket relay (wsrelay.c): deliver the task events
 * published on Redis to nchan's publisher at cfg->websocket.publisher, and
 * close the sockets of keys that cfg no longer accepts, with the snapshot
 * cfg, auditing through the audit logger at audit_ep, until
 * SIGTERM/SIGINT/SIGQUIT; then exit the process. Never returns. token_fd is
 * the open websocket.publisher_token_file (the master's descriptor, which
 * only the relay inherits): read once at start (fm_nchan_token_read), sent
 * with every request, then closed.
 */
void fm_wsrelay_main(const fm_config *cfg, const fm_audit_endpoint *audit_ep, int token_fd)
    __attribute__((noreturn));

/*
 * fm_auditlog_main - the audit logger (auditlog.c): the only process that
 * writes the audit trail, under the account the caller already has (the
 * master forks it and drops it to logging.audit_user first). Every
 * generation's trail, listening socket and signing key come over ctl, its
 * end of the socketpair with the master (auditctl.h), which it owns. Until
 * the master closes ctl (or SIGTERM/SIGINT/SIGQUIT) and every sender has
 * gone; then it exits the process, status 0 (1 when it could not start).
 * Never returns.
 */
void fm_auditlog_main(int ctl) __attribute__((noreturn));

#endif
