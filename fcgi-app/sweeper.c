/*
 * sweeper.c - the sweeper: the one process that ends expired leases (SPEC
 * 4.1), whether or not anybody claims or calls the API.
 *
 * The master runs one per config generation beside the pool's workers,
 * supervised the same way (respawned when it dies, with the same crash-loop
 * backoff; replaced on reload; stopped on TERM). Every
 * jobs.sweep_interval_ms it asks fm_tasks_sweep (one script) for up to
 * SWEEP_BATCH expired leases, and for each transition writes one audit
 * record (user null, action "SWEEP /v1/tasks/<id>", source_ip null: no
 * client; status 200, reason requeued|lease_expired|cancelled, task_id,
 * worker) and then publishes its event. A transition whose record cannot be
 * written is undone (fm_tasks_restore): fail closed as for a request; its
 * lease is still expired, so a later pass tries again. A full batch that was
 * all recorded is followed at once by the next, so a backlog drains at
 * SWEEP_BATCH per round trip, not per interval. A recorded transition is
 * acknowledged (fm_tasks_settle: its journal member goes).
 *
 * The reconciler, in the same pass: a journal member older than
 * JOURNAL_GRACE_MS (Redis's clock) is a transition nobody acknowledged: its
 * request's worker or a sweeper died between the script and the record, or
 * its command timed out (Redis hung) and Redis ran it later. For each (at
 * most RECONCILE_BATCH a pass) it writes one audit record (action
 * "RECONCILE /v1/tasks/<id>", the original trace id and actor as trace_id
 * and worker, user null, status 200, reason "unacknowledged <event>"),
 * publishes the event with the task as it is now (null when gone), then
 * removes the member. Killed between the record and the removal, it
 * records the transition again next time: at-least-once; the original
 * trace id makes such a duplicate recognisable. The grace is far longer
 * than a request's write of its record (redis.timeout_ms and one audit
 * write), so a transition is reconciled only when its own record is not
 * coming.
 *
 * Redis down or hung: the pass fails (at once while the connection's breaker
 * is open), a warning is logged at most every WARN_INTERVAL_MS, and the next
 * pass comes after the interval: never a busy loop.
 *
 * Process: forked by the master with the generation's snapshot and audit
 * chain, it opens its own Redis connection and audit writer after fork
 * (fm_worker_env_open) and waits in ppoll with its signals unblocked only
 * there, like a pool worker: TERM, INT or QUIT let the pass in progress
 * finish, USR1 reopens the logs. Its process name is "fetchml-sweeper"
 * (pgrep -x fetchml-sweeper; the master also logs its pid when it starts it).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "audit.h"
#include "clock.h"
#include "events.h"
#include "log.h"
#include "tasks.h"

#define SWEEP_BATCH 64
#define RECONCILE_BATCH 64
#define JOURNAL_GRACE_MS 10000
#define WARN_INTERVAL_MS 10000

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t reopen_logs;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    reopen_logs = 1;
}

/* What the sweeper holds from start to exit. */
static struct {
    const fm_config *cfg;
    const fm_audit_endpoint *audit_ep;
    fm_env env;
    fm_tasks_store store;
    sigset_t waitmask;
    int64_t warned_ms; /* last "cannot sweep" warning, 0 = none yet */
} s;

/* The audit reason of a sweep's event. */
static const char *reason_of(const char *event)
{
    if (strcmp(event, "task.requeued") == 0)
        return "requeued";
    if (strcmp(event, "task.cancelled") == 0)
        return "cancelled";
    return "lease_expired"; /* task.failed: attempts used up */
}

/*
 * Records one transition, then announces it; or, when the record cannot be
 * written, undoes it. Returns true when the transition stands.
 */
static bool settle(const fm_tasks_swept *t)
{
    char path[sizeof("/v1/tasks/") + FM_TASKS_ID_SIZE], action[sizeof("SWEEP ") + sizeof(path)];
    fm_audit_record rec;
    fm_err rc;

    (void)snprintf(path, sizeof(path), "/v1/tasks/%.*s", FM_TASKS_ID_SIZE - 1, t->id);
    (void)snprintf(action, sizeof(action), "SWEEP %s", path);
    rec = (fm_audit_record){
        .action = action,
        .resource = path,
        .status = 200,
        .reason = reason_of(t->event),
        .task_id = t->id,
        .worker = t->worker_id,
    };
    if (fm_audit_write(s.env.audit, &rec) == FM_OK) {
        if (fm_tasks_settle(&s.store, t->before) != FM_OK)
            fm_log_warn("sweeper: could not acknowledge the %s of task %s (%s): it is recorded "
                        "again",
                        t->event, t->id, fm_redis_errstr(s.env.redis));
        fm_events_publish(s.env.redis, s.store.prefix, t->event, t->task);
        return true;
    }
    fm_log_error("sweeper: audit record for task %s could not be written (%s); undoing its %s",
                 t->id, strerror(errno), t->event);
    rc = fm_tasks_restore(&s.store, t->id, t->before);
    if (rc != FM_OK)
        fm_log_error("sweeper: could not undo the %s of task %s (%s): it stands unaudited",
                     t->event, t->id, fm_redis_errstr(s.env.redis));
    return false;
}

/* The static event type of a journal member's event (fm_events_publish keeps none); NULL: none. */
static const char *event_of(const char *event)
{
    static const char *const events[] = {
        "task.created", "task.started",   "task.progress", "task.completed",
        "task.failed",  "task.cancelled", "task.deleted",  "task.requeued",
    };

    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(event, events[i]) == 0)
            return events[i];
    return NULL; /* task.cancel_requested: no event, as for its request */
}

/* Records one unacknowledged transition, announces it, then forgets it. */
static void reconcile(const fm_tasks_pending *u)
{
    char path[sizeof("/v1/tasks/") + FM_TASKS_ID_SIZE], action[sizeof("RECONCILE ") + sizeof(path)],
        reason[sizeof("unacknowledged ") + FM_TASKS_EVENT_MAX];
    const char *event;
    fm_audit_record rec;

    if (!u->valid) {
        fm_log_error("sweeper: journal member \"%.64s\" is not a transition; removing it",
                     u->member);
    } else {
        (void)snprintf(path, sizeof(path), "/v1/tasks/%s", u->id);
        (void)snprintf(action, sizeof(action), "RECONCILE %s", path);
        (void)snprintf(reason, sizeof(reason), "unacknowledged %s", u->event);
        rec = (fm_audit_record){
            .trace_id = strcmp(u->trace_id, "-") != 0 ? u->trace_id : NULL,
            .action = action,
            .resource = path,
            .status = 200,
            .reason = reason,
            .task_id = u->id,
            .worker = strcmp(u->actor, "-") != 0 ? u->actor : NULL,
        };
        if (fm_audit_write(s.env.audit, &rec) != FM_OK) {
            fm_log_error("sweeper: audit record of the unacknowledged %s of task %s could not be "
                         "written (%s); retrying later",
                         u->event, u->id, strerror(errno));
            return;
        }
        if ((event = event_of(u->event)) != NULL)
            fm_events_publish(s.env.redis, s.store.prefix, event, u->task);
    }
    if (fm_tasks_forget(&s.store, u->member) != FM_OK)
        fm_log_warn("sweeper: could not remove a reconciled journal member (%s): it is recorded "
                    "again",
                    fm_redis_errstr(s.env.redis));
}

/* The reconciler's part of a pass: at most RECONCILE_BATCH transitions. */
static void reconcile_pass(void)
{
    fm_tasks_pending out[RECONCILE_BATCH];
    size_t n = 0;

    if (fm_tasks_unacked(&s.store, JOURNAL_GRACE_MS, RECONCILE_BATCH, out, &n) != FM_OK)
        return; /* Redis trouble: the sweep's own warning says so */
    for (size_t i = 0; i < n && !stopping; i++)
        reconcile(&out[i]);
    fm_tasks_unacked_free(out, n);
}

static void warn_failed(fm_err rc)
{
    int64_t now = fm_clock_now_ms();

    if (s.warned_ms != 0 && now - s.warned_ms < WARN_INTERVAL_MS && now >= s.warned_ms)
        return;
    s.warned_ms = now;
    fm_log_warn("sweeper: cannot sweep expired leases (%s); retrying every %d ms",
                rc == FM_EREDIS ? fm_redis_errstr(s.env.redis) : fm_err_name(rc),
                s.cfg->jobs.sweep_interval_ms);
}

/*
 * One pass, when the audit trail can take records: batches until one is
 * short, fails, is partly undone, or a stop is asked for.
 */
static void sweep_pass(void)
{
    fm_tasks_swept out[SWEEP_BATCH];
    bool all_stand;
    size_t n;
    fm_err rc;

    /* As a request's step 9: no change is made that could not be recorded (disk full). */
    if (fm_audit_ready(s.env.audit) != FM_OK)
        return;
    do {
        n = 0;
        rc = fm_tasks_sweep(&s.store, SWEEP_BATCH, out, &n);
        if (rc != FM_OK) {
            warn_failed(rc);
            return;
        }
        all_stand = true;
        for (size_t i = 0; i < n; i++) {
            all_stand = settle(&out[i]) && all_stand;
            cJSON_Delete(out[i].task);
            free(out[i].before);
        }
    } while (n == SWEEP_BATCH && all_stand && !stopping);
    if (!stopping)
        reconcile_pass();
}

/* ---- start-up steps, in order; each logs its own failure ------------------------- */

static fm_err init_signals(void)
{
    static const fm_daemon_signal sigs[] = {
        {SIGTERM, on_stop}, {SIGINT, on_stop},  {SIGQUIT, on_stop}, {SIGUSR1, on_usr1},
        {SIGHUP, SIG_IGN},  {SIGPIPE, SIG_IGN}, {SIGCHLD, SIG_DFL},
    };

    /* The name operators find it by (ps -C, pgrep -x); 15 characters, the most comm holds. */
    (void)prctl(PR_SET_NAME, "fetchml-sweeper");
    return fm_worker_signals(sigs, sizeof(sigs) / sizeof(sigs[0]), &s.waitmask);
}

static fm_err init_env(void)
{
    const fm_config *cfg = s.cfg;

    if (fm_worker_env_open(cfg, s.audit_ep, "sweeper", &s.env) != FM_OK)
        return FM_ESYS;
    s.store = (fm_tasks_store){
        .redis = s.env.redis,
        .prefix = cfg->redis.key_prefix,
        .max_task_bytes = cfg->limits.max_task_bytes,
        .max_open_tasks = cfg->limits.max_open_tasks,
        .lease_seconds = cfg->jobs.lease_seconds,
        .max_attempts = cfg->jobs.max_attempts,
    };
    return FM_OK;
}

static fm_err (*const init_steps[])(void) = {
    init_signals,
    init_env,
};

static void sweep_loop(void)
{
    const int ms = s.cfg->jobs.sweep_interval_ms;
    const struct timespec interval = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (!stopping) {
        if (reopen_logs) {
            reopen_logs = 0;
            if (fm_log_reopen() != 0 || fm_audit_reopen(s.env.audit) != 0)
                fm_log_error("sweeper %d: reopening logs failed: %s", (int)getpid(),
                             strerror(errno));
        }
        sweep_pass();
        if (!stopping && ppoll(NULL, 0, &interval, &s.waitmask) < 0 && errno != EINTR) {
            fm_log_error("sweeper %d: ppoll failed: %s", (int)getpid(), strerror(errno));
            return;
        }
    }
}

void fm_sweeper_main(const fm_config *cfg, const fm_audit_endpoint *audit_ep)
{
    int status = 1;
    size_t i = 0;

    s.cfg = cfg;
    s.audit_ep = audit_ep;
    while (i < sizeof(init_steps) / sizeof(init_steps[0]) && init_steps[i]() == FM_OK)
        i++;
    if (i == sizeof(init_steps) / sizeof(init_steps[0])) {
        fm_log_info("sweeper %d: ending expired leases every %d ms", (int)getpid(),
                    cfg->jobs.sweep_interval_ms);
        sweep_loop();
        status = 0;
    }
    fm_worker_env_close(&s.env);
    exit(status); /* exit, not _exit: LeakSanitizer checks at exit in sanitizer builds */
}
