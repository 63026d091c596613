/*
 * metrics.c - the shared counters and their exposition (metrics.h).
 *
 * Layout of the region, all slots zero at creation:
 *   header (nroutes), the FM_MET_* series, the Redis latency histogram, the
 *   pool's worker slots, then one duration histogram per route (+1 for
 *   "unmatched"), then the request counts indexed
 *   [route][method][status - 100] for statuses 100..599.
 * A histogram keeps per-bucket counts (not cumulative) and the sum in
 * nanoseconds; the exposition accumulates them in one pass and prints _count
 * as the last cumulative value, so le="+Inf" and _count always agree even
 * while other processes keep counting during a scrape.
 */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUTES 4096
#define STATUS_MIN 100
#define NSTATUS 500 /* 100..599 */

static const char *const method_names[] = {FM_METRICS_METHODS};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]) + 1) /* + "other" */

static const double bucket_le[FM_METRICS_NBUCKETS] = {FM_METRICS_BUCKETS};

typedef struct hist {
    _Atomic uint64_t bucket[FM_METRICS_NBUCKETS + 1]; /* the last one is +Inf only */
    _Atomic uint64_t sum_ns;
} hist;

typedef struct slot {
    _Atomic int32_t pid; /* 0: free */
    _Atomic int32_t busy;
    _Atomic int32_t transferring; /* fm_metrics_transfer_begin */
} slot;

struct fm_metrics {
    size_t nroutes;
    size_t size; /* bytes mapped */
    _Atomic int64_t series[FM_MET_COUNT];
    hist redis;
    slot slots[FM_METRICS_WORKER_SLOTS];
    hist route[]; /* nroutes + 1, then the request counts */
};

/* One row per fm_metric: the family it belongs to and its one label, if any. */
typedef struct series_row {
    const char *name, *type, *help;
    const char *label, *value; /* NULL: no label */
} series_row;

static const series_row rows[FM_MET_COUNT] = {
    [FM_MET_AUTH_MISSING_KEY] = {"fetchml_auth_failures_total", "counter",
                                 "Requests refused for want of a valid API key, by reason.",
                                 "reason", "missing_key"},
    [FM_MET_AUTH_MALFORMED_KEY] = {"fetchml_auth_failures_total", NULL, NULL, "reason",
                                   "malformed_key"},
    [FM_MET_AUTH_UNKNOWN_KEY] = {"fetchml_auth_failures_total", NULL, NULL, "reason",
                                 "unknown_key"},
    [FM_MET_AUTH_EXPIRED] = {"fetchml_auth_failures_total", NULL, NULL, "reason", "expired"},
    [FM_MET_AUTH_USER_IP] = {"fetchml_auth_failures_total", NULL, NULL, "reason",
                             "user_ip_not_allowed"},
    [FM_MET_GUARD_BLOCKS] = {"fetchml_guard_blocks_total", "counter",
                             "Requests refused by the brute-force guard (source address blocked).",
                             NULL, NULL},
    [FM_MET_RATE_LIMITED] = {"fetchml_rate_limited_total", "counter",
                             "Requests refused by the per-user token bucket.", NULL, NULL},
    [FM_MET_RATE_UNCHECKED] = {"fetchml_rate_limit_unchecked_total", "counter",
                               "Requests admitted without a rate-limit decision (Redis "
                               "unavailable, rate_limit.on_redis_error: allow).",
                               NULL, NULL},
    [FM_MET_REDIS_ERR_CONNECTION] = {"fetchml_redis_errors_total", "counter",
                                     "Redis commands that failed, by kind.", "kind", "connection"},
    [FM_MET_REDIS_ERR_TIMEOUT] = {"fetchml_redis_errors_total", NULL, NULL, "kind", "timeout"},
    [FM_MET_REDIS_ERR_CIRCUIT] = {"fetchml_redis_errors_total", NULL, NULL, "kind", "circuit_open"},
    [FM_MET_REDIS_ERR_REPLY] = {"fetchml_redis_errors_total", NULL, NULL, "kind", "reply"},
    [FM_MET_AUDIT_WRITE_FAILURES] = {"fetchml_audit_write_failures_total", "counter",
                                     "Audit records that could not be written (the request got "
                                     "503 and changed nothing).",
                                     NULL, NULL},
    [FM_MET_EVENTS_PUBLISHED] = {"fetchml_events_published_total", "counter",
                                 "Task events handed to the event channel.", NULL, NULL},
    [FM_MET_EVENTS_FAILED] = {"fetchml_events_failed_total", "counter",
                              "Task events that could not be published.", NULL, NULL},
    [FM_MET_WEBSOCKETS_OPEN] = {"fetchml_websockets_open", "gauge", "WebSocket connections open.",
                                NULL, NULL},
    [FM_MET_WORKER_RESTARTS] = {"fetchml_pool_worker_restarts_total", "counter",
                                "Pool workers and sweepers that died unexpectedly and were "
                                "respawned.",
                                NULL, NULL},
    [FM_MET_PEERS_REFUSED] = {"fetchml_fastcgi_peers_refused_total", "counter",
                              "FastCGI connections closed unread: their peer process's uid is "
                              "not in server.allowed_peers.",
                              NULL, NULL},
    [FM_MET_RELOADS_OK] = {"fetchml_config_reloads_total", "counter",
                           "Configuration reloads (SIGHUP), by result.", "result", "ok"},
    [FM_MET_RELOADS_REFUSED] = {"fetchml_config_reloads_total", NULL, NULL, "result", "refused"},
    [FM_MET_CONFIG_LAST_RELOAD_OK] = {"fetchml_config_last_reload_successful", "gauge",
                                      "1 when the last reload was applied (or none was tried), 0 "
                                      "when it was refused and an older configuration serves.",
                                      NULL, NULL},
    [FM_MET_CONFIG_LOADED_AT] = {"fetchml_config_loaded_timestamp_seconds", "gauge",
                                 "Unix time the configuration in force was loaded.", NULL, NULL},
};

static fm_metrics *cur; /* this process's region */
static slot *own_slot;  /* this worker's pool slot */

static size_t region_size(size_t nroutes)
{
    return sizeof(fm_metrics) + (nroutes + 1) * sizeof(hist) +
           (nroutes + 1) * NMETHODS * NSTATUS * sizeof(_Atomic uint64_t);
}

static _Atomic uint64_t *request_slot(fm_metrics *m, size_t route, size_t method, size_t status)
{
    _Atomic uint64_t *base = (_Atomic uint64_t *)(void *)(m->route + m->nroutes + 1);

    return &base[(route * NMETHODS + method) * NSTATUS + status];
}

fm_metrics *fm_metrics_create(size_t nroutes)
{
    fm_metrics *m;
    size_t size;

    if (nroutes == 0 || nroutes > MAX_ROUTES) {
        errno = EINVAL;
        return NULL;
    }
    size = region_size(nroutes);
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* Anonymous memory is zero, which is every atomic's initial value here. */
    m->nroutes = nroutes;
    m->size = size;
    atomic_store_explicit(&m->series[FM_MET_CONFIG_LAST_RELOAD_OK], 1, memory_order_relaxed);
    return m;
}

void fm_metrics_free(fm_metrics *m)
{
    if (m == NULL)
        return;
    if (cur == m) {
        cur = NULL;
        own_slot = NULL;
    }
    (void)munmap(m, m->size);
}

void fm_metrics_attach(fm_metrics *m)
{
    cur = m;
    own_slot = NULL;
}

void fm_metrics_add(fm_metric id, int64_t n)
{
    if (cur != NULL && (unsigned)id < FM_MET_COUNT)
        (void)atomic_fetch_add_explicit(&cur->series[id], n, memory_order_relaxed);
}

void fm_metrics_inc(fm_metric id)
{
    fm_metrics_add(id, 1);
}

void fm_metrics_set(fm_metric id, int64_t v)
{
    if (cur != NULL && (unsigned)id < FM_MET_COUNT)
        atomic_store_explicit(&cur->series[id], v, memory_order_relaxed);
}

int64_t fm_metrics_get(fm_metric id)
{
    if (cur == NULL || (unsigned)id >= FM_MET_COUNT)
        return 0;
    return atomic_load_explicit(&cur->series[id], memory_order_relaxed);
}

static size_t method_index(const char *method)
{
    size_t i = 0;

    for (; method != NULL && i < NMETHODS - 1; i++)
        if (strcmp(method, method_names[i]) == 0)
            return i;
    return NMETHODS - 1;
}

static void observe(hist *h, double seconds)
{
    size_t i = 0;

    if (!(seconds >= 0)) /* NaN too */
        seconds = 0;
    while (i < FM_METRICS_NBUCKETS && seconds > bucket_le[i])
        i++;
    (void)atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    (void)atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

void fm_metrics_request(size_t route, const char *method, int status, double seconds)
{
    if (cur == NULL)
        return;
    if (route > cur->nroutes)
        route = cur->nroutes;
    if (status < STATUS_MIN || status >= STATUS_MIN + NSTATUS)
        status = 500;
    (void)atomic_fetch_add_explicit(
        request_slot(cur, route, method_index(method), (size_t)(status - STATUS_MIN)), 1,
        memory_order_relaxed);
    observe(&cur->route[route], seconds);
}

uint64_t fm_metrics_request_count(size_t route, const char *method, int status)
{
    if (cur == NULL || route > cur->nroutes || status < STATUS_MIN ||
        status >= STATUS_MIN + NSTATUS)
        return 0;
    return atomic_load_explicit(
        request_slot(cur, route, method_index(method), (size_t)(status - STATUS_MIN)),
        memory_order_relaxed);
}

void fm_metrics_redis_latency(double seconds)
{
    if (cur != NULL)
        observe(&cur->redis, seconds);
}

bool fm_metrics_worker_start(pid_t pid)
{
    if (cur == NULL)
        return false;
    for (size_t i = 0; i < FM_METRICS_WORKER_SLOTS; i++) {
        int32_t free_pid = 0;

        if (atomic_compare_exchange_strong(&cur->slots[i].pid, &free_pid, (int32_t)pid)) {
            atomic_store(&cur->slots[i].busy, 0);
            own_slot = &cur->slots[i];
            return true;
        }
    }
    return false;
}

void fm_metrics_worker_busy(bool busy)
{
    if (own_slot != NULL)
        atomic_store_explicit(&own_slot->busy, busy ? 1 : 0, memory_order_relaxed);
}

bool fm_metrics_transfer_begin(unsigned max)
{
    unsigned n = 0;

    if (own_slot == NULL || cur == NULL)
        return true;
    /* Marked first, counted after: two at the limit both refuse, none passes it. */
    atomic_store(&own_slot->transferring, 1);
    for (size_t i = 0; i < FM_METRICS_WORKER_SLOTS; i++)
        n += atomic_load(&cur->slots[i].transferring) != 0;
    if (n <= max)
        return true;
    atomic_store(&own_slot->transferring, 0);
    return false;
}

void fm_metrics_transfer_end(void)
{
    if (own_slot != NULL)
        atomic_store(&own_slot->transferring, 0);
}

void fm_metrics_worker_gone(pid_t pid)
{
    if (cur == NULL || pid <= 0)
        return;
    for (size_t i = 0; i < FM_METRICS_WORKER_SLOTS; i++) {
        int32_t want = (int32_t)pid;

        if (atomic_load_explicit(&cur->slots[i].pid, memory_order_relaxed) != want)
            continue;
        atomic_store(&cur->slots[i].busy, 0);
        atomic_store(&cur->slots[i].transferring, 0);
        (void)atomic_compare_exchange_strong(&cur->slots[i].pid, &want, 0);
    }
}

/* ---- exposition ------------------------------------------------------------------- */

typedef struct out {
    char *buf;
    size_t len, cap;
    bool failed;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *grown = realloc(o->buf, cap);
        if (grown == NULL) {
            o->failed = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
}

/* A label value in the exposition's escaping: \\, \" and \n. */
static void put_value(out *o, const char *v)
{
    put(o, "\"");
    for (; *v != '\0'; v++) {
        if (*v == '\\')
            put(o, "\\\\");
        else if (*v == '"')
            put(o, "\\\"");
        else if (*v == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *v);
    }
    put(o, "\"");
}

static void put_family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prints a bound as Prometheus clients do ("0.005", "1", "10"). */
static void put_le(out *o, double le)
{
    put(o, "%g", le);
}

/* One histogram's series; route NULL: no route label. */
static void put_hist(out *o, const char *name, const char *route, hist *h)
{
    uint64_t cum = 0;

    for (size_t i = 0; i <= FM_METRICS_NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        put(o, "%s_bucket{", name);
        if (route != NULL) {
            put(o, "route=");
            put_value(o, route);
            put(o, ",");
        }
        put(o, "le=\"");
        if (i < FM_METRICS_NBUCKETS)
            put_le(o, bucket_le[i]);
        else
            put(o, "+Inf");
        put(o, "\"} %llu\n", (unsigned long long)cum);
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    if (route != NULL) {
        put(o, "%s_sum{route=", name);
        put_value(o, route);
        put(o, "} %.9f\n%s_count{route=", sum, name);
        put_value(o, route);
        put(o, "} %llu\n", (unsigned long long)cum);
    } else {
        put(o, "%s_sum %.9f\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
    }
}

static const char *route_name(const fm_metrics_view *v, size_t i)
{
    return i < v->nroutes ? v->routes[i] : "unmatched";
}

/*
 * Several rows of the route table share a pattern (GET and POST /v1/tasks);
 * each pattern is one route label, so its rows are summed: first[r] is the
 * first row with r's pattern.
 */
static size_t *pattern_groups(const fm_metrics *m, const fm_metrics_view *v)
{
    size_t *first = malloc((m->nroutes + 1) * sizeof(*first));

    if (first == NULL)
        return NULL;
    for (size_t r = 0; r <= m->nroutes; r++) {
        first[r] = r;
        for (size_t q = 0; q < r && r < v->nroutes; q++)
            if (first[q] == q && strcmp(v->routes[q], v->routes[r]) == 0) {
                first[r] = q;
                break;
            }
    }
    return first;
}

static void put_requests(out *o, fm_metrics *m, const fm_metrics_view *v, const size_t *first)
{
    put_family(o, "fetchml_http_requests_total", "counter",
               "HTTP requests answered, by route pattern, method and status.");
    for (size_t c = 0; c <= m->nroutes; c++)
        for (size_t k = 0; first[c] == c && k < NMETHODS; k++)
            for (size_t s = 0; s < NSTATUS; s++) {
                uint64_t n = 0;
                for (size_t r = c; r <= m->nroutes; r++)
                    if (first[r] == c)
                        n += atomic_load_explicit(request_slot(m, r, k, s), memory_order_relaxed);
                if (n == 0)
                    continue;
                put(o, "fetchml_http_requests_total{route=");
                put_value(o, route_name(v, c));
                put(o, ",method=");
                put_value(o, k < NMETHODS - 1 ? method_names[k] : "other");
                put(o, ",status=\"%zu\"} %llu\n", s + STATUS_MIN, (unsigned long long)n);
            }
    put_family(o, "fetchml_http_request_duration_seconds", "histogram",
               "Time the request pipeline took, by route pattern.");
    for (size_t c = 0; c <= m->nroutes; c++) {
        hist sum = {0};
        if (first[c] != c)
            continue;
        for (size_t r = c; r <= m->nroutes; r++) {
            if (first[r] != c)
                continue;
            for (size_t i = 0; i <= FM_METRICS_NBUCKETS; i++)
                sum.bucket[i] += atomic_load_explicit(&m->route[r].bucket[i], memory_order_relaxed);
            sum.sum_ns += atomic_load_explicit(&m->route[r].sum_ns, memory_order_relaxed);
        }
        put_hist(o, "fetchml_http_request_duration_seconds", route_name(v, c), &sum);
    }
}

static void put_series(out *o, fm_metrics *m)
{
    for (size_t i = 0; i < FM_MET_COUNT; i++) {
        const series_row *row = &rows[i];

        if (row->type != NULL)
            put_family(o, row->name, row->type, row->help);
        put(o, "%s", row->name);
        if (row->label != NULL) {
            put(o, "{%s=", row->label);
            put_value(o, row->value);
            put(o, "}");
        }
        put(o, " %lld\n", (long long)atomic_load_explicit(&m->series[i], memory_order_relaxed));
    }
}

static void put_pool(out *o, fm_metrics *m, const fm_metrics_view *v)
{
    long long live = 0, busy = 0;
    int64_t loaded;

    for (size_t i = 0; i < FM_METRICS_WORKER_SLOTS; i++) {
        if (atomic_load_explicit(&m->slots[i].pid, memory_order_relaxed) == 0)
            continue;
        live++;
        busy += atomic_load_explicit(&m->slots[i].busy, memory_order_relaxed) != 0;
    }
    put_family(o, "fetchml_pool_workers", "gauge", "Live pool workers, by state.");
    put(o, "fetchml_pool_workers{state=\"busy\"} %lld\n", busy);
    put(o, "fetchml_pool_workers{state=\"idle\"} %lld\n", live - busy);
    if (v->have_queue) {
        put_family(o, "fetchml_pool_listen_queue_length", "gauge",
                   "Connections waiting on the FastCGI socket to be accepted.");
        put(o, "fetchml_pool_listen_queue_length %u\n", v->queue_len);
        put_family(o, "fetchml_pool_listen_queue_max", "gauge",
                   "The FastCGI socket's listen backlog.");
        put(o, "fetchml_pool_listen_queue_max %u\n", v->queue_max);
    }
    loaded = atomic_load_explicit(&m->series[FM_MET_CONFIG_LOADED_AT], memory_order_relaxed);
    if (loaded > 0) {
        time_t now = time(NULL);
        put_family(o, "fetchml_config_age_seconds", "gauge",
                   "Seconds since the configuration in force was loaded.");
        put(o, "fetchml_config_age_seconds %lld\n",
            (long long)(now > loaded ? (int64_t)now - loaded : 0));
    }
    put_family(o, "fetchml_build_info", "gauge", "Always 1; the labels name the build.");
    put(o, "fetchml_build_info{version=");
    put_value(o, v->version != NULL ? v->version : "unknown");
    put(o, "} 1\n");
}

fm_err fm_metrics_render(const fm_metrics_view *view, char **text, size_t *len)
{
    out o = {.cap = 16384};
    size_t *first;

    if (cur == NULL || view == NULL || view->nroutes != cur->nroutes) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    if ((o.buf = malloc(o.cap)) == NULL)
        return FM_ESYS;
    o.buf[0] = '\0';
    if ((first = pattern_groups(cur, view)) == NULL) {
        free(o.buf);
        return FM_ESYS;
    }
    put_requests(&o, cur, view, first);
    free(first);
    put_series(&o, cur);
    put_family(&o, "fetchml_redis_command_duration_seconds", "histogram",
               "Redis command round trips (connect included when one was made).");
    put_hist(&o, "fetchml_redis_command_duration_seconds", NULL, &cur->redis);
    put_pool(&o, cur, view);
    if (o.failed) {
        free(o.buf);
        errno = ENOMEM;
        return FM_ESYS;
    }
    *text = o.buf;
    *len = o.len;
    return FM_OK;
}
