/*
 * tasks.h - the task queue in Redis (SPEC section 4; layout in docs/redis-layout.md).
 *
 * Keys under the configured prefix P:
 *   P task:<id>        string: the task as JSON
 *   P queue            sorted set of ids; score = (10 - priority) * 1e12 + seq,
 *                      so ZRANGE/ZPOPMIN yield higher priority first, FIFO within one
 *   P tasks            sorted set of every id by seq (admin listing)
 *   P user:<u>:tasks   sorted set of the user's ids by seq
 *   P task_seq         counter
 * A task is created by one Lua script, so the record and its three index
 * entries appear together or not at all. Cancel and delete are
 * check-and-set transactions (WATCH the record, check owner and status,
 * MULTI/EXEC), retried a few times if a worker changed the task meanwhile.
 */
#ifndef FM_TASKS_H
#define FM_TASKS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"
#include "redisconn.h"

#define FM_TASKS_LIST_MAX 1000 /* largest page of GET /v1/tasks */
#define FM_TASKS_LIST_DEFAULT 50
#define FM_TASKS_ID_SIZE 37 /* a task id: a UUID (RFC 9562, 36 characters) and its NUL */

/*
 * fm_tasks_create - validate body (body_len bytes of JSON: {job_name,
 * args?, priority? 1-10 default 5, commit_id? 40 hex, experiment?,
 * datasets?, metadata?}; unknown fields are refused) and store a new queued
 * task owned by user. On success *task is the stored task (caller owns it,
 * cJSON_Delete) and id holds the id it was given. Errors: FM_EPARSE,
 * FM_EINVAL (reason in err, errlen bytes, safe to return to the client),
 * FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_create(fm_redis *redis, const char *prefix, const char *user,
                                     const char *body, size_t body_len, cJSON **task,
                                     char id[FM_TASKS_ID_SIZE], char *err, size_t errlen);

/*
 * fm_tasks_get - load task id. When user is non-NULL, a task owned by someone
 * else is FM_ENOTFOUND (no existence leak); NULL user = admin view.
 * An id that is not a UUID is FM_ENOTFOUND without asking Redis.
 * On success *task is owned by the caller.
 */
FM_MUST_CHECK fm_err fm_tasks_get(fm_redis *redis, const char *prefix, const char *user,
                                  const char *id, cJSON **task);

/*
 * fm_tasks_list - newest first, the tasks of user (NULL = everyone's, for
 * admins), optionally only those whose status equals status (NULL = all),
 * skipping offset and returning at most limit (1..FM_TASKS_LIST_MAX).
 * *tasks is a new JSON array owned by the caller; *total is the number of
 * tasks matching before offset/limit. Errors: FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_list(fm_redis *redis, const char *prefix, const char *user,
                                   const char *status, long offset, long limit, cJSON **tasks,
                                   long *total);

/*
 * fm_tasks_cancel - mark a queued or running task cancelled (ended_at = now)
 * and take it off the queue. user as in fm_tasks_get (NULL = admin).
 * On success *task is the updated task and *before an undo token for
 * fm_tasks_restore (the record as it was and its place in the queue, as text);
 * the caller owns both (cJSON_Delete, free). Errors: FM_ENOTFOUND, FM_ECONFLICT
 * (already completed, failed or cancelled; *task is then the unchanged task), FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_cancel(fm_redis *redis, const char *prefix, const char *user,
                                     const char *id, cJSON **task, char **before);

/*
 * fm_tasks_delete - remove a task record and every index entry. A running
 * task must be cancelled first (FM_ECONFLICT). user as in
 * fm_tasks_get. On success *before is an undo token as for fm_tasks_cancel
 * (caller frees).
 * Errors: FM_ENOTFOUND, FM_ECONFLICT, FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_delete(fm_redis *redis, const char *prefix, const char *user,
                                     const char *id, char **before);

/*
 * fm_tasks_restore - undo a change whose audit record could not be written:
 * before == NULL removes task id and its index entries (undo of a create);
 * otherwise before (the token fm_tasks_cancel or fm_tasks_delete returned) is
 * put back with its index entries, in its original place, queued again if it
 * was queued. Returns FM_OK, FM_ENOTFOUND for a malformed id,
 * or FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_restore(fm_redis *redis, const char *prefix, const char *id,
                                      const char *before);

/* fm_tasks_status_valid - true for queued, running, completed, failed, cancelled. */
int fm_tasks_status_valid(const char *status);

#endif
