/*
 * tasks.h - the task queue in Redis (layout and scripts: docs/redis-layout.md).
 *
 * Keys under the configured prefix P:
 *   P task:<id>        string: the task as JSON
 *   P queue            sorted set of ids; score = (10 - priority) * 1e12 + seq,
 *                      so ZRANGE/ZPOPMIN yield higher priority first, FIFO within one
 *   P tasks            sorted set of every id by seq (admin listing)
 *   P user:<u>:tasks   sorted set of the user's ids by seq
 *   P task_seq         counter
 * Every change is one Lua script, so a record and its index entries change
 * together or not at all. Create stores a new record and its three index
 * entries. Cancel, delete and the undo of a create read the record (GET),
 * check owner and status here, and hand the change to one check-and-set
 * script that applies it only if the record is still the one read (a
 * worker's update in between is never overwritten; the read is then
 * repeated, a few times at most) and returns the task's seq for the undo
 * token: two round trips. The JSON is edited here and not in Lua, where
 * cjson would reorder the fields and turn an empty array into an object.
 * Restore (undo of a cancel or delete) is one script.
 *
 * Keys are built in FM_REDIS_KEY_MAX bytes: a prefix or user name too long
 * for that is FM_EINVAL from every function, before Redis is asked.
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
#define FM_TASKS_ID_SIZE 37 /* a task id: a UUID (RFC 9562, 36 characters) and its NUL */

/*
 * fm_tasks_create - validate body (body_len bytes of JSON; the fields and
 * their bounds: taskbody.h) and store a new queued task owned by user. On
 * success *task is the stored task (caller owns it, cJSON_Delete) and id
 * holds the id it was given. Errors: FM_EPARSE, FM_EINVAL (reason in err,
 * errlen bytes, safe to return to the client; also for a prefix or user too
 * long for a key), FM_ESYS (out of memory), FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_create(fm_redis *redis, const char *prefix, const char *user,
                                     const char *body, size_t body_len, cJSON **task,
                                     char id[FM_TASKS_ID_SIZE], char *err, size_t errlen);

/*
 * fm_tasks_get - load task id. When user is non-NULL, a task owned by someone
 * else is FM_ENOTFOUND (no existence leak); NULL user = admin view.
 * An id that is not a UUID is FM_ENOTFOUND without asking Redis.
 * On success *task is owned by the caller. Errors: FM_ENOTFOUND, FM_EINVAL
 * (prefix too long for a key), FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_get(fm_redis *redis, const char *prefix, const char *user,
                                  const char *id, cJSON **task);

/*
 * fm_tasks_list - newest first, the tasks of user (NULL = everyone's, for
 * admins), optionally only those whose status equals status (NULL = all),
 * skipping offset and returning at most limit (1..FM_TASKS_LIST_MAX).
 * *tasks is a new JSON array owned by the caller; *total is the number of
 * tasks matching before offset/limit. Errors: FM_EINVAL (prefix or user
 * too long for a key), FM_EREDIS.
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
 * (already completed, failed or cancelled; *task is then the unchanged task),
 * FM_EINVAL (prefix or owner too long for a key), FM_EREDIS (also when the
 * task kept changing under every attempt).
 */
FM_MUST_CHECK fm_err fm_tasks_cancel(fm_redis *redis, const char *prefix, const char *user,
                                     const char *id, cJSON **task, char **before);

/*
 * fm_tasks_delete - remove a task record and every index entry. A running
 * task must be cancelled first (FM_ECONFLICT). user as in
 * fm_tasks_get. On success *before is an undo token as for fm_tasks_cancel
 * (caller frees).
 * Errors: FM_ENOTFOUND, FM_ECONFLICT, FM_EINVAL, FM_EREDIS as for cancel.
 */
FM_MUST_CHECK fm_err fm_tasks_delete(fm_redis *redis, const char *prefix, const char *user,
                                     const char *id, char **before);

/*
 * fm_tasks_restore - undo a change whose audit record could not be written:
 * before == NULL removes task id and its index entries (undo of a create);
 * otherwise before (the token fm_tasks_cancel or fm_tasks_delete returned) is
 * put back with its index entries, in its original place, queued again if it
 * was queued. Returns FM_OK (also when a task to remove is already gone),
 * FM_ENOTFOUND for a malformed id, FM_EINVAL (prefix or owner too long for
 * a key), or FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_tasks_restore(fm_redis *redis, const char *prefix, const char *id,
                                      const char *before);

/* fm_tasks_status_valid - true for queued, running, completed, failed, cancelled. */
bool fm_tasks_status_valid(const char *status);

#endif
