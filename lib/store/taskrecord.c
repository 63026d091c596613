/*
 * taskrecord.c - a task's Redis hash as the API's task JSON, and the undo
 * token of a change (internal to lib/store; tasks.c is their user).
 */
#include "taskrecord.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "tasks.h"

enum field {
    F_SPEC,
    F_USER,
    F_STATUS,
    F_ATTEMPTS,
    F_WORKER,
    F_LEASE,
    F_STARTED,
    F_ENDED,
    F_PROGRESS,
    F_METRICS,
    F_ERROR,
    F_CANCEL,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "spec",       "user",     "status",   "attempts", "worker_id", "lease_ms",
    "started_ms", "ended_ms", "progress", "metrics",  "error",     "cancel_requested"};

/* The values of a flat HGETALL reply by field (NULL: absent). False when it is not one. */
static bool fields_of(const redisReply *flat, const redisReply *v[F_COUNT])
{
    memset(v, 0, sizeof(*v) * F_COUNT);
    if (flat == NULL || flat->type != REDIS_REPLY_ARRAY || flat->elements % 2 != 0)
        return false;
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const redisReply *name = flat->element[i], *value = flat->element[i + 1];

        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            return false;
        for (size_t f = 0; f < F_COUNT; f++)
            if (strcmp(name->str, field_names[f]) == 0)
                v[f] = value;
    }
    return true;
}

bool fm_taskrecord_is(const redisReply *v, const char *s)
{
    return v != NULL && strcmp(v->str, s) == 0;
}

/* Adds item to t under name, or null when item is NULL. */
static bool add_item(cJSON *t, const char *name, cJSON *item)
{
    if (item == NULL && (item = cJSON_CreateNull()) == NULL)
        return false;
    if (!cJSON_AddItemToObject(t, name, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Moves member name of spec into t (null when spec lacks it). */
static bool move(cJSON *t, cJSON *spec, const char *name)
{
    return add_item(t, name, cJSON_DetachItemFromObjectCaseSensitive(spec, name));
}

static bool add_string(cJSON *t, const char *name, const redisReply *v)
{
    return (v != NULL ? cJSON_AddStringToObject(t, name, v->str)
                      : cJSON_AddNullToObject(t, name)) != NULL;
}

/* A Unix-ms field as RFC 3339 (null when absent or not a number). */
static bool add_time(cJSON *t, const char *name, const redisReply *v)
{
    char buf[FM_RFC3339_MAX], *end;
    long long ms;

    if (v == NULL)
        return cJSON_AddNullToObject(t, name) != NULL;
    errno = 0;
    ms = strtoll(v->str, &end, 10);
    if (errno != 0 || end == v->str || *end != '\0')
        return cJSON_AddNullToObject(t, name) != NULL;
    return cJSON_AddStringToObject(t, name, fm_clock_rfc3339_ms(buf, ms)) != NULL;
}

/* A number field; absent (or not a number): dflt, or null when dflt is NaN. */
static bool add_number(cJSON *t, const char *name, const redisReply *v, double dflt)
{
    char *end;
    double d = v != NULL ? strtod(v->str, &end) : dflt;

    if (v != NULL && (end == v->str || *end != '\0' || !isfinite(d)))
        d = dflt;
    return (isnan(d) ? cJSON_AddNullToObject(t, name) : cJSON_AddNumberToObject(t, name, d)) !=
           NULL;
}

/* JSON text (null when absent or not JSON). */
static bool add_json(cJSON *t, const char *name, const redisReply *v)
{
    return add_item(t, name, v != NULL ? cJSON_ParseWithLength(v->str, v->len) : NULL);
}

/*
 * The API's task (field order: tasks.h) from a flat HGETALL reply; NULL when
 * it is not a task (missing, no spec, spec not a JSON object) or on ENOMEM.
 */
cJSON *fm_taskrecord_compose(const redisReply *flat)
{
    const redisReply *v[F_COUNT];
    cJSON *spec, *t;
    bool ok;

    if (!fields_of(flat, v) || v[F_SPEC] == NULL)
        return NULL;
    spec = cJSON_ParseWithLength(v[F_SPEC]->str, v[F_SPEC]->len);
    if (!cJSON_IsObject(spec) || (t = cJSON_CreateObject()) == NULL) {
        cJSON_Delete(spec);
        return NULL;
    }
    ok = move(t, spec, "id") && move(t, spec, "job_name") && move(t, spec, "args") &&
         add_string(t, "status", v[F_STATUS]) && move(t, spec, "priority") &&
         move(t, spec, "user") && move(t, spec, "commit_id") && move(t, spec, "experiment") &&
         move(t, spec, "datasets") && move(t, spec, "metadata") && move(t, spec, "created_at") &&
         add_time(t, "started_at", v[F_STARTED]) && add_time(t, "ended_at", v[F_ENDED]) &&
         add_string(t, "worker_id", v[F_WORKER]) && add_string(t, "error", v[F_ERROR]) &&
         add_number(t, "attempts", v[F_ATTEMPTS], 0) &&
         add_time(t, "lease_expires_at", v[F_LEASE]) &&
         add_number(t, "progress", v[F_PROGRESS], NAN) && add_json(t, "metrics", v[F_METRICS]) &&
         cJSON_AddBoolToObject(t, "cancel_requested", fm_taskrecord_is(v[F_CANCEL], "1")) != NULL;
    cJSON_Delete(spec);
    if (!ok) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* The value of field name in a flat HGETALL reply, or NULL. */
const redisReply *fm_taskrecord_field(const redisReply *flat, const char *name)
{
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(flat->element[i]->str, name) == 0 &&
            flat->element[i + 1]->type == REDIS_REPLY_STRING)
            return flat->element[i + 1];
    return NULL;
}

/* Appends netstring "<len>:<bytes>," of e to out (room checked by the caller). */
static size_t netstring(char *out, size_t used, size_t cap, const redisReply *e)
{
    used += (size_t)snprintf(out + used, cap - used, "%zu:", e->len);
    memcpy(out + used, e->str, e->len);
    used += e->len;
    out[used++] = ',';
    return used;
}

/*
 * The undo token of a change from the hash before it and after it (flat
 * HGETALL replies; before empty for a create, after empty for a delete) and
 * its journal member: "<rev after>;" and netstrings of member and of before's
 * elements (restore_script). Heap, or NULL.
 */
char *fm_taskrecord_token(const redisReply *flat, const redisReply *after, const redisReply *member)
{
    size_t cap = 24 + 22, used;
    const redisReply *rev;
    char *out;

    if (flat == NULL || flat->type != REDIS_REPLY_ARRAY || after == NULL ||
        after->type != REDIS_REPLY_ARRAY || (flat->elements == 0 && after->elements == 0) ||
        member == NULL || member->type != REDIS_REPLY_STRING || member->len == 0 ||
        member->len >= FM_TASKS_JOURNAL_MAX)
        return NULL;
    rev = fm_taskrecord_field(after, "rev");
    if (after->elements > 0 && (rev == NULL || rev->len > 20))
        return NULL; /* every change leaves a rev (reindex) */
    cap += member->len;
    for (size_t i = 0; i < flat->elements; i++)
        cap += flat->element[i]->len + 22; /* 20 digits, ':' and ',' */
    if ((out = malloc(cap)) == NULL)
        return NULL;
    used = (size_t)snprintf(out, cap, "%s;", rev != NULL ? rev->str : "0");
    used = netstring(out, used, cap, member);
    for (size_t i = 0; i < flat->elements; i++)
        used = netstring(out, used, cap, flat->element[i]);
    out[used] = '\0';
    return out;
}
