/*
 * taskrecord.h - a task's Redis hash (a flat HGETALL reply: field, value,
 * ...) read as the API's task, and the undo token of a change. Internal to
 * lib/store: tasks.c is the one user.
 */
#ifndef FM_TASKRECORD_H
#define FM_TASKRECORD_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>

/*
 * fm_taskrecord_compose - the API's task (field order: tasks.h) from a flat
 * HGETALL reply; times in the hash (Unix ms) become RFC 3339 UTC with ms.
 * NULL when it is not a task (missing, no spec, spec not a JSON object) or
 * on ENOMEM. The caller owns the result (cJSON_Delete).
 */
cJSON *fm_taskrecord_compose(const redisReply *flat);

/* fm_taskrecord_field - the value of field name in a flat HGETALL reply, or NULL. */
const redisReply *fm_taskrecord_field(const redisReply *flat, const char *name);

/* fm_taskrecord_is - true when v (may be NULL) is the string s. */
bool fm_taskrecord_is(const redisReply *v, const char *s);

/*
 * fm_taskrecord_token - the undo token of a change from the hash before it
 * and after it (flat HGETALL replies; before empty for a create, after empty
 * for a delete) and its journal member: "<rev after>;" then netstrings
 * ("<len>:<bytes>,") of the member and of before's elements, as the restore
 * script reads it. Heap (caller frees), or NULL when the replies are not
 * those of a change or on ENOMEM.
 */
char *fm_taskrecord_token(const redisReply *flat, const redisReply *after,
                          const redisReply *member);

#endif
