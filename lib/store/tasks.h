/*
 * tasks.h - the task store in Redis: records, queue, leases, indexes
 * (layout, scripts and how workers use them: docs/redis-layout.md).
 *
 * Keys under the configured prefix P:
 *   P task:<id>                 hash: spec (the immutable fields as created, JSON
 *                               text written here) and the lifecycle fields user,
 *                               priority, seq, status, attempts, worker_id,
 *                               lease_ms, started_ms, ended_ms, progress, metrics
 *                               (JSON text), error, cancel_requested ("1")
 *   P queue                     zset of queued ids, score (10 - priority) * 1e12 + seq
 *   P leases                    zset of running ids, score lease_ms
 *   P tasks, P status:<st>      zsets of every id / every id in status st, by seq
 *   P user:<u>:tasks,
 *   P user:<u>:status:<st>      the same for one user's tasks
 *   P task_seq                  counter
 *   P journal                   zset of unacknowledged transitions (the outbox),
 *                               score the Redis time (ms) it was made, member
 *                               "<ms> <id> <event> <trace_id> <actor>"
 * Every transition is one Lua script; all of them share one prelude that
 * recomputes a task's index entries from its hash, so an index never
 * disagrees with a record. Times in the scripts (lease_ms, started_ms,
 * ended_ms: Unix milliseconds) come from Redis TIME; created_at is the front
 * door's clock. Lua never edits JSON: the spec is JSON text composed here and
 * the lifecycle values are hash fields; the API's task JSON is composed here
 * from both, fields in this order: id, job_name, args, status, priority,
 * user, commit_id, experiment, datasets, metadata, created_at, started_at,
 * ended_at, worker_id, error, attempts, lease_expires_at, progress, metrics,
 * cancel_requested (times RFC 3339 UTC with ms; absent values null).
 *
 * Round trips: get, create, claim, heartbeat, complete, cancel, delete and
 * restore one each; list one per page; sweep and unacked one per call;
 * settle and forget none waited for.
 *
 * Undo tokens (*before): the rev the change left, the change's journal
 * member and the task's hash as it was, as text ("<rev>;" then netstrings of
 * the member and of field, value pairs), for fm_tasks_restore and
 * fm_tasks_settle; heap, the caller frees.
 *
 * The journal (an outbox; at-least-once auditing): every transition script
 * (create, claim, heartbeat, complete, cancel, delete, sweep) also adds, in
 * the same script and so atomically with the change, one member to
 * P journal naming it: "<ms> <task id> <event> <trace_id> <actor>", with
 * trace_id and actor from the store (fm_tasks_store; "-" when none) and the
 * event the change's ("task.created" ... "task.cancel_requested" for a running
 * task's cancel). Whoever writes the change's audit record then acknowledges
 * it (fm_tasks_settle); an undo (fm_tasks_restore) removes it with the change.
 * A member left (the caller died, or its command timed out while Redis ran
 * it later) is a transition nobody audited: the sweeper's reconciler
 * (fm_tasks_unacked) records it after a grace.
 *
 * Keys are built in FM_REDIS_KEY_MAX bytes: a prefix or user name too long
 * for the longest key ("P user:<u>:status:cancelled") is FM_EINVAL from every
 * function, before Redis is asked.
 */
#ifndef FM_TASKS_H
#define FM_TASKS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "redisconn.h"

#define FM_TASKS_LIST_MAX 1000 /* largest page of GET /v1/tasks */
#define FM_TASKS_LIST_DEFAULT 50
#define FM_TASKS_ID_SIZE 37       /* a task id: a UUID (RFC 9562, 36 characters) and its NUL */
#define FM_WORKER_ID_MAX 128      /* "<user>" or "<user>/<worker name>" and NUL */
#define FM_TASKS_ERROR_MAX 4096   /* bytes of a task's error text */
#define FM_TASKS_METRICS_MAX 4096 /* bytes of a task's metrics (JSON text) */
#define FM_TASKS_TRACE_MAX 65     /* a journal member's trace id and its NUL */
#define FM_TASKS_EVENT_MAX 32     /* a journal member's event and its NUL */
/* A journal member: ms, id, event, trace id and actor, four spaces and the NUL. */
#define FM_TASKS_JOURNAL_MAX                                                                       \
    (20 + FM_TASKS_ID_SIZE + FM_TASKS_EVENT_MAX + FM_TASKS_TRACE_MAX + FM_WORKER_ID_MAX + 4)
/*
 * Room max_task_bytes keeps for the lifecycle fields beside the spec and the
 * owner's name: error and metrics at their maximum, a worker id, the field
 * names and numbers (at most 20 digits each).
 */
#define FM_TASKS_LIFECYCLE_BYTES                                                                   \
    (FM_TASKS_ERROR_MAX + FM_TASKS_METRICS_MAX + FM_WORKER_ID_MAX + 512)

/*
 * What the functions need, filled per request from the config (lib/config is
 * above lib/store, so the routes build it: routes_tasks.c store_of).
 * max_task_bytes: a task record (spec, owner name and FM_TASKS_LIFECYCLE_BYTES)
 * is at most this many bytes, 0 = no limit. max_open_tasks: queued + running
 * tasks per user, 0 = no limit. lease_seconds (>= 1) and max_attempts (>= 1):
 * see fm_tasks_claim and fm_tasks_sweep. trace_id and actor (NULL or "" =
 * "-") name the request in the journal member of its changes: trace_id the
 * request's, actor who asked (a user name; claim, heartbeat and complete use
 * their worker_id instead, a sweep the expired lease's worker). Bytes other
 * than printable ASCII (spaces too) become '_', and they are cut at
 * FM_TASKS_TRACE_MAX - 1 and FM_WORKER_ID_MAX - 1 bytes, so a member is one
 * line of at most FM_TASKS_JOURNAL_MAX bytes.
 */
typedef struct fm_tasks_store {
    fm_redis *redis;
    const char *prefix;
    size_t max_task_bytes;
    long max_open_tasks;
    int lease_seconds;
    int max_attempts;
    const char *trace_id;
    const char *actor;
} fm_tasks_store;

/*
 * fm_tasks_create - validate body (body_len bytes of JSON; the fields and
 * their bounds: taskbody.h) and store a new queued task owned by user. On
 * success *task is the stored task (caller owns it, cJSON_Delete) and id
 * holds its id; *before (when before is non-NULL) its undo token, caller
 * frees (with before NULL nobody can settle the journal member: the
 * reconciler records the create later). Errors: FM_EPARSE, FM_EINVAL (reason in err, errlen bytes,
 * safe to return to the client; also for a prefix or user too long for a
 * key), FM_ETOOBIG (the record would pass max_task_bytes; message in err),
 * FM_EQUOTA (user already has max_open_tasks queued or running; message in
 * err; checked in the script, so concurrent creates cannot pass it), FM_ESYS
 * (out of memory), FM_EREDIS (also Redis full: an OOM reply, nothing stored).
 */
FM_MUST_CHECK fm_err fm_tasks_create(const fm_tasks_store *st, const char *user, const char *body,
                                     size_t body_len, cJSON **task, char id[FM_TASKS_ID_SIZE],
                                     char **before, char *err, size_t errlen);

/*
 * fm_tasks_get - load task id. When user is non-NULL, a task owned by someone
 * else is FM_ENOTFOUND (no existence leak); NULL = every user's. An id that
 * is not a UUID is FM_ENOTFOUND without asking Redis. On success *task is
 * owned by the caller. Errors: FM_ENOTFOUND, FM_EINVAL (prefix too long),
 * FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_get(const fm_tasks_store *st, const char *user, const char *id,
                                  cJSON **task);

/*
 * fm_tasks_list - newest first, the tasks of user (NULL = everyone's),
 * optionally only those in status (NULL = all), skipping offset and
 * returning at most limit (1..FM_TASKS_LIST_MAX). Reads P [user:<u>:]status:<st>
 * (or P [user:<u>:]tasks) with one read-only script, so a page costs
 * O(limit) whatever the history. Stops adding tasks before the rendered
 * array (cJSON_PrintUnformatted) would pass max_bytes (0 = no limit).
 * *tasks is a new JSON array owned by the caller; *total the number of
 * matching tasks; *next_offset the offset of the first matching task not
 * returned, or -1 when the page reached the end. Errors: FM_EINVAL (prefix or
 * user too long, limit or offset out of range), FM_ESYS (out of memory),
 * FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_list(const fm_tasks_store *st, const char *user, const char *status,
                                   long offset, long limit, size_t max_bytes, cJSON **tasks,
                                   long *total, long *next_offset);

/*
 * fm_tasks_cancel - user as in fm_tasks_get (NULL = admin). A queued task
 * becomes cancelled (ended_at now, off the queue); a running one stays
 * running with cancel_requested true, for its worker to end (asking again is
 * FM_OK). On FM_OK *task is the task as changed and *before its undo token
 * (caller owns both). Errors: FM_ENOTFOUND, FM_ECONFLICT (already ended;
 * *task is then the unchanged task, *before NULL), FM_EINVAL, FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_cancel(const fm_tasks_store *st, const char *user, const char *id,
                                     cJSON **task, char **before);

/*
 * fm_tasks_delete - remove a task and every index entry; user as in
 * fm_tasks_get. On FM_OK *task (when task is non-NULL) is the task as it was
 * and *before the undo token (caller owns both); one round trip. Errors:
 * FM_ENOTFOUND, FM_ECONFLICT (running: cancel it first), FM_EINVAL, FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_delete(const fm_tasks_store *st, const char *user, const char *id,
                                     cJSON **task, char **before);

/*
 * fm_tasks_claim - atomically take the highest-priority queued task (FIFO
 * within a priority) for worker_id (< FM_WORKER_ID_MAX bytes): it becomes
 * running with worker_id, attempts + 1, started_at (set on the first claim
 * only) and lease_expires_at = now + lease_seconds. Exactly one claimer gets
 * a task, however many claim at once. On FM_OK *task and *before as for
 * cancel. Errors: FM_ENOTFOUND (nothing queued), FM_EINVAL (worker_id empty
 * or too long, lease_seconds < 1), FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_claim(const fm_tasks_store *st, const char *worker_id, cJSON **task,
                                    char **before);

/*
 * fm_tasks_heartbeat - the holder worker_id extends task id's lease to now +
 * lease_seconds and optionally records progress (0..100; < 0: unchanged) and
 * metrics (JSON object text of at most FM_TASKS_METRICS_MAX bytes, as
 * fm_taskbody_heartbeat gives it; NULL: unchanged). On FM_OK *task and
 * *before as for cancel (task.cancel_requested tells the worker to stop).
 * Errors: FM_ENOTFOUND (no such task), FM_ECONFLICT (not running, held by
 * another worker_id, or its lease already expired; *task stays NULL, so
 * nothing of another's task leaks), FM_EINVAL, FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_heartbeat(const fm_tasks_store *st, const char *worker_id,
                                        const char *id, double progress, const char *metrics,
                                        cJSON **task, char **before);

/*
 * fm_tasks_complete - the holder (as for heartbeat) ends task id as status
 * ("completed", "failed" or "cancelled"; cancelled only when cancellation was
 * requested, else FM_ECONFLICT) with ended_at now and error (NULL = none; at
 * most FM_TASKS_ERROR_MAX bytes). worker_id stays, the lease goes. On FM_OK
 * *task and *before as for cancel. Errors as for heartbeat; FM_EINVAL also
 * for another status.
 */
FM_MUST_CHECK fm_err fm_tasks_complete(const fm_tasks_store *st, const char *worker_id,
                                       const char *id, const char *status, const char *error,
                                       cJSON **task, char **before);

/* One transition made by fm_tasks_sweep; the caller frees task (cJSON_Delete) and before. */
typedef struct fm_tasks_swept {
    char id[FM_TASKS_ID_SIZE];
    char worker_id[FM_WORKER_ID_MAX]; /* the worker whose lease expired */
    const char *event;                /* "task.requeued", "task.failed" or "task.cancelled" */
    cJSON *task;                      /* the task after the transition */
    char *before;                     /* undo token for fm_tasks_restore and fm_tasks_settle */
} fm_tasks_swept;

/*
 * fm_tasks_sweep - end at most max (>= 1) expired leases (lease_ms before
 * Redis's now), oldest first, in one script: a task whose cancellation was
 * requested becomes cancelled; one with attempts < max_attempts is queued
 * again at its old place (same score: priority and seq), worker_id and lease
 * cleared, attempts kept; any other becomes failed with error "lease
 * expired". out[0..*n) describe them. Errors: FM_EINVAL (max 0,
 * max_attempts < 1, prefix too long), FM_ESYS (out of memory), FM_EREDIS;
 * *n is 0 then.
 */
FM_MUST_CHECK fm_err fm_tasks_sweep(const fm_tasks_store *st, size_t max, fm_tasks_swept *out,
                                    size_t *n);

/*
 * fm_tasks_restore - undo a change whose audit record could not be written:
 * before == NULL removes task id and its index entries (undo of a create);
 * otherwise before (a token from any function above) puts the hash back
 * exactly and recomputes its index entries (a queued task is queued again at
 * its old place). Only a task unchanged since the change being undone is
 * put back (each change raises the hash's rev; the token holds the rev it
 * left): one changed since, by a worker or its owner, is left as it is and
 * FM_ECONFLICT returned (the later change was audited by its own request).
 * Returns FM_OK (also when a task to remove is already gone), FM_ECONFLICT,
 * FM_ENOTFOUND for a malformed id, FM_EINVAL (prefix too long, or a token
 * that is not one), FM_EREDIS. A restore that puts the task back removes the
 * change's journal member with it (the change is gone); one refused
 * (FM_ECONFLICT) leaves it, so that the reconciler records the change that
 * stands. A NULL before names no member.
 */
FM_MUST_CHECK fm_err fm_tasks_restore(const fm_tasks_store *st, const char *id, const char *before);

/*
 * fm_tasks_settle - acknowledge the change of token (its *before) once its
 * audit record is written: ZREM of its journal member, fire and forget
 * (fm_redis_send: no round trip waited for). NULL token: nothing, FM_OK.
 * Errors: FM_EINVAL (not a token, prefix too long), FM_EREDIS (not sent:
 * the reconciler records the change again later, a duplicate record).
 */
FM_MUST_CHECK fm_err fm_tasks_settle(const fm_tasks_store *st, const char *token);

/* fm_tasks_forget - fm_tasks_settle by the journal member itself (the reconciler's). */
FM_MUST_CHECK fm_err fm_tasks_forget(const fm_tasks_store *st, const char *member);

/* One unacknowledged transition, as fm_tasks_unacked reads it. */
typedef struct fm_tasks_pending {
    char *member; /* heap: the journal member, for fm_tasks_forget */
    bool valid;   /* false: not a member this code writes (the fields below are empty) */
    char id[FM_TASKS_ID_SIZE];
    char event[FM_TASKS_EVENT_MAX];
    char trace_id[FM_TASKS_TRACE_MAX];
    char actor[FM_WORKER_ID_MAX];
    cJSON *task; /* the task now, NULL when it is gone */
} fm_tasks_pending;

/*
 * fm_tasks_unacked - at most max (>= 1) journal members older than grace_ms
 * (by Redis's clock), oldest first, each with its task as it is now; one
 * read-only script. out[0..*n); free with fm_tasks_unacked_free. Errors:
 * FM_EINVAL (max 0, prefix too long), FM_ESYS (out of memory), FM_EREDIS;
 * *n is 0 then.
 */
FM_MUST_CHECK fm_err fm_tasks_unacked(const fm_tasks_store *st, long grace_ms, size_t max,
                                      fm_tasks_pending *out, size_t *n);

/* fm_tasks_unacked_free - frees what out[0..n) hold. */
void fm_tasks_unacked_free(fm_tasks_pending *out, size_t n);

/* fm_tasks_status_valid - true for queued, running, completed, failed, cancelled. */
bool fm_tasks_status_valid(const char *status);

#endif
