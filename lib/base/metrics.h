/*
 * metrics.h - the product's counters, gauges and histograms (SPEC 4.3), kept
 * in one shared memory region so that GET /metrics shows exact sums over
 * every process of the pool, and rendered in the Prometheus text exposition
 * format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * The region is mapped by the master before it forks anything
 * (fm_metrics_create: MAP_SHARED|MAP_ANONYMOUS) and attached in every process
 * (fm_metrics_attach); each slot is a C11 atomic updated lock-free
 * (memory_order_relaxed: a scrape needs each value, not an order between
 * them). A worker that dies or is replaced takes nothing with it: its counts
 * are in the region. The region lives as long as the master: a reload (a new
 * generation of workers, a new config snapshot) keeps it, so counters never
 * go back to zero while the master runs. Its size is fixed at creation from
 * compile-time bounds (the route table's length, FM_METRICS_WORKER_SLOTS), so
 * no reload ever needs to resize it.
 *
 * Counting is a no-op in a process with no region attached (fetchml-admin,
 * unit tests of other modules), so every layer may count without carrying a
 * handle: lib/store counts Redis errors, audit write failures and events;
 * lib/app the requests, authentication failures, guard blocks and limits;
 * the master its restarts and reloads.
 *
 * Families (names follow the Prometheus naming conventions: fetchml_ prefix,
 * base units, _total for counters, _seconds for durations):
 *   fetchml_http_requests_total{route,method,status}       counter
 *   fetchml_http_request_duration_seconds{route}           histogram
 *   fetchml_auth_failures_total{reason}                    counter
 *   fetchml_guard_blocks_total                             counter
 *   fetchml_rate_limited_total                             counter
 *   fetchml_rate_limit_unchecked_total                     counter
 *   fetchml_redis_errors_total{kind}                       counter
 *   fetchml_redis_command_duration_seconds                 histogram
 *   fetchml_audit_write_failures_total                     counter
 *   fetchml_events_published_total, _failed_total          counter
 *   fetchml_websockets_open                                gauge (set by /ws)
 *   fetchml_pool_workers{state="busy|idle"}                gauge
 *   fetchml_pool_worker_restarts_total                     counter
 *   fetchml_fastcgi_peers_refused_total                    counter
 *   fetchml_pool_listen_queue_length, _max                 gauge
 *   fetchml_config_reloads_total{result="ok|refused"}      counter
 *   fetchml_config_last_reload_successful                  gauge
 *   fetchml_config_loaded_timestamp_seconds                gauge
 *   fetchml_config_age_seconds                             gauge
 *   fetchml_build_info{version}                            gauge, always 1
 * A new series is one fm_metric value below and one row of metrics.c's
 * rows[] (family name, type and help on the family's first row, label name
 * and value); a new label value of a family is a row next to its siblings.
 * FM_MET_WEBSOCKETS_OPEN is for the /ws code: fm_metrics_add(+1 / -1) where
 * a socket opens and closes, or fm_metrics_set with a count it reads (from
 * nchan); the events counters are already counted by fm_events_publish.
 *
 * route is the route table's pattern ("/v1/tasks/{id}"), never the path a
 * client sent; a request no route's pattern matches is route="unmatched".
 * method is one of FM_METRICS_METHODS or "other"; status the HTTP status
 * (100-599). So every label's values are bounded.
 */
#ifndef FM_METRICS_H
#define FM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Workers (of every live generation together) the pool gauges can follow. */
#define FM_METRICS_WORKER_SLOTS 1024
/* Histogram bucket bounds, seconds: the defaults of the Prometheus client libraries, finer at 1 ms.
 */
#define FM_METRICS_BUCKETS                                                                         \
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
#define FM_METRICS_NBUCKETS 14
/* Methods counted by name; any other is "other". */
#define FM_METRICS_METHODS "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"

/* The series that have no route label: one row each (metrics.c names them). */
typedef enum fm_metric {
    FM_MET_AUTH_MISSING_KEY,   /* fetchml_auth_failures_total{reason="missing_key"} */
    FM_MET_AUTH_MALFORMED_KEY, /* reason="malformed_key" */
    FM_MET_AUTH_UNKNOWN_KEY,   /* reason="unknown_key" (includes revoked keys) */
    FM_MET_AUTH_EXPIRED,       /* reason="expired" */
    FM_MET_AUTH_USER_IP,       /* reason="user_ip_not_allowed" */
    FM_MET_GUARD_BLOCKS,
    FM_MET_RATE_LIMITED,
    FM_MET_RATE_UNCHECKED, /* admitted without a decision (Redis down, on_redis_error: allow) */
    FM_MET_REDIS_ERR_CONNECTION, /* fetchml_redis_errors_total{kind="connection"}: connect/I/O */
    FM_MET_REDIS_ERR_TIMEOUT,    /* kind="timeout" */
    FM_MET_REDIS_ERR_CIRCUIT,    /* kind="circuit_open": refused without trying (breaker) */
    FM_MET_REDIS_ERR_REPLY,      /* kind="reply": an error reply (OOM, WRONGTYPE, ...) */
    FM_MET_AUDIT_WRITE_FAILURES,
    FM_MET_EVENTS_PUBLISHED,
    FM_MET_EVENTS_FAILED,
    FM_MET_WEBSOCKETS_OPEN, /* gauge */
    FM_MET_WORKER_RESTARTS,
    FM_MET_PEERS_REFUSED, /* FastCGI connections from a peer not in server.allowed_peers */
    FM_MET_RELOADS_OK,
    FM_MET_RELOADS_REFUSED,
    FM_MET_CONFIG_LAST_RELOAD_OK, /* gauge, 0 or 1 */
    FM_MET_CONFIG_LOADED_AT,      /* gauge, Unix time (s) the snapshot in force was loaded */
    FM_MET_COUNT
} fm_metric;

typedef struct fm_metrics fm_metrics;

/* What only the process that renders knows, measured at scrape time. */
typedef struct fm_metrics_view {
    const char *const *routes; /* nroutes patterns, the order the counts were made in */
    size_t nroutes;
    bool have_queue;     /* false: the listen queue could not be measured (not shown) */
    unsigned queue_len;  /* connections waiting to be accepted */
    unsigned queue_max;  /* the listen backlog */
    const char *version; /* build version label */
} fm_metrics_view;

/*
 * fm_metrics_create - map a zeroed region for a route table of nroutes
 * routes (before any fork; children inherit it). Returns it, owned by the
 * caller (fm_metrics_free), or NULL with errno (EINVAL for nroutes 0 or over
 * 4096; mmap's ENOMEM).
 */
fm_metrics *fm_metrics_create(size_t nroutes);

/* fm_metrics_free - unmap the caller's view (NULL accepted); detaches it if attached. */
void fm_metrics_free(fm_metrics *m);

/* fm_metrics_attach - make m (may be NULL: counting off) the region this process counts into. */
void fm_metrics_attach(fm_metrics *m);

/* fm_metrics_inc / fm_metrics_add - add 1 / n to the series id. A no-op without a region. */
void fm_metrics_inc(fm_metric id);
void fm_metrics_add(fm_metric id, int64_t n);

/* fm_metrics_set - set the gauge id to v (FM_MET_WEBSOCKETS_OPEN, FM_MET_CONFIG_*). */
void fm_metrics_set(fm_metric id, int64_t v);

/* fm_metrics_get - the value of id now (tests; 0 without a region). */
int64_t fm_metrics_get(fm_metric id);

/*
 * fm_metrics_request - count one answered request: route is its index in the
 * route table, or nroutes (or more) for "unmatched"; method the request
 * method (any string; NULL is "other"); status its HTTP status (outside
 * 100-599 is counted as 500); seconds how long the pipeline took.
 */
void fm_metrics_request(size_t route, const char *method, int status, double seconds);

/* fm_metrics_redis_latency - observe one Redis command round trip of seconds. */
void fm_metrics_redis_latency(double seconds);

/* fm_metrics_request_count - the requests counted for (route, method, status) (tests). */
uint64_t fm_metrics_request_count(size_t route, const char *method, int status);

/*
 * fm_metrics_worker_start - take a pool slot for worker pid (idle), in the
 * worker after fork. false when every FM_METRICS_WORKER_SLOTS slot is taken
 * (the pool gauges then miss it) or there is no region.
 * fm_metrics_worker_busy - mark the calling worker's slot busy or idle.
 * fm_metrics_worker_gone - free pid's slot, in the master once it is reaped
 * (a worker killed mid-request never frees its own).
 */
bool fm_metrics_worker_start(pid_t pid);
void fm_metrics_worker_busy(bool busy);
void fm_metrics_worker_gone(pid_t pid);

/*
 * fm_metrics_transfer_begin / fm_metrics_transfer_end - the pool's share for
 * slow transfers (SPEC section 10): a streamed upload holds its worker for as
 * long as the client takes to send it, and a download larger than nginx
 * buffers for as long as the client takes to read it, so together they must
 * not take every worker. begin marks the calling worker's slot as busy with a
 * transfer, then counts the marked slots of the pool: true when they are at
 * most max; otherwise it clears its mark and returns false (the caller
 * refuses the request). Two workers at the limit may both refuse; none passes
 * it. end clears the mark (a worker without one may call it), and
 * fm_metrics_worker_gone clears a killed worker's. Without a region or a slot
 * (a unit test, a full table) begin returns true.
 */
bool fm_metrics_transfer_begin(unsigned max);
void fm_metrics_transfer_end(void);

/*
 * fm_metrics_render - the exposition of every family, text format 0.0.4,
 * into *out (heap, NUL-terminated, *len bytes; the caller frees it). Label
 * values are escaped (backslash, double quote, line feed). Histograms are
 * cumulative, end in le="+Inf" and their _count equals that bucket. Rows of
 * the route table that share a pattern (one per method) are summed into one
 * route label. FM_OK; FM_EINVAL without a region or when view->nroutes is
 * not the region's; FM_ESYS (ENOMEM).
 */
FM_MUST_CHECK fm_err fm_metrics_render(const fm_metrics_view *view, char **out, size_t *len);

#endif
