/*
 * tasks.c - task records and queue in Redis (layout: tasks.h).
 *
 * A new task is validated and built by taskbody.c and stored by one script.
 * Listing reads the per-user (or global) index newest first and fetches
 * records with MGET in bounded chunks. Changes are check-and-set: see
 * change_script.
 */
#include "tasks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "taskbody.h"

#define MGET_CHUNK 256
#define CAS_RETRY 1    /* not an fm_err: the record changed under a check-and-set, read again */
#define CAS_ATTEMPTS 5 /* reads before giving up on a task that keeps changing */

static fm_redis_script create_script = {
    .source = "local seq = redis.call('INCR', KEYS[1])\n"
              "if redis.call('SET', KEYS[2], ARGV[1], 'NX') == false then\n"
              "  return redis.error_reply('task id exists')\n"
              "end\n"
              "redis.call('ZADD', KEYS[3], (10 - tonumber(ARGV[2])) * 1e12 + seq, ARGV[3])\n"
              "redis.call('ZADD', KEYS[4], seq, ARGV[3])\n"
              "redis.call('ZADD', KEYS[5], seq, ARGV[3])\n"
              "return seq\n",
};

/*
 * Puts a record back (undo of a cancel or delete): like create, but
 * overwrites, and with the task's original seq (ARGV[5]) when known, so that
 * it keeps its place in the queue and in listings.
 */
static fm_redis_script restore_script = {
    .source = "local seq = tonumber(ARGV[5])\n"
              "if seq == nil or seq < 1 then seq = redis.call('INCR', KEYS[1]) end\n"
              "redis.call('SET', KEYS[2], ARGV[1])\n"
              "if ARGV[4] == 'queued' then\n"
              "  redis.call('ZADD', KEYS[3], (10 - tonumber(ARGV[2])) * 1e12 + seq, ARGV[3])\n"
              "end\n"
              "redis.call('ZADD', KEYS[4], seq, ARGV[3])\n"
              "redis.call('ZADD', KEYS[5], seq, ARGV[3])\n"
              "return seq\n",
};

static const char *const statuses[] = {"queued", "running", "completed", "failed", "cancelled"};

bool fm_tasks_status_valid(const char *status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(status, statuses[i]) == 0)
            return true;
    return false;
}

static bool is_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char c = s[i];
        if (shape[i] == '-' ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* The five keys of one task (layout: tasks.h), each checked to fit. */
typedef struct task_keys {
    char seq[FM_REDIS_KEY_MAX], task[FM_REDIS_KEY_MAX], queue[FM_REDIS_KEY_MAX];
    char user[FM_REDIS_KEY_MAX], all[FM_REDIS_KEY_MAX];
} task_keys;

/* Returns FM_OK, or FM_EINVAL when prefix, id or owner make a key too long. */
static fm_err task_keys_make(task_keys *k, const char *prefix, const char *id, const char *owner)
{
    if (fm_redis_key(k->seq, "%stask_seq", prefix) != FM_OK ||
        fm_redis_key(k->task, "%stask:%s", prefix, id) != FM_OK ||
        fm_redis_key(k->queue, "%squeue", prefix) != FM_OK ||
        fm_redis_key(k->user, "%suser:%s:tasks", prefix, owner) != FM_OK ||
        fm_redis_key(k->all, "%stasks", prefix) != FM_OK)
        return FM_EINVAL;
    return FM_OK;
}

fm_err fm_tasks_create(fm_redis *redis, const char *prefix, const char *user, const char *body,
                       size_t body_len, cJSON **task, char id_out[FM_TASKS_ID_SIZE], char *err,
                       size_t errlen)
{
    cJSON *t = NULL;
    const char *id;
    char prio[16];
    task_keys k;
    char *json = NULL;
    redisReply *reply = NULL;
    fm_err rc;

    *task = NULL;
    if ((rc = fm_taskbody_build(body, body_len, user, &t, err, errlen)) != FM_OK)
        return rc;
    id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id"));
    if (id == NULL || strlen(id) != FM_TASKS_ID_SIZE - 1) {
        errno = EINVAL; /* fm_taskbody_build always sets one: a broken invariant */
        rc = FM_ESYS;
        goto done;
    }
    if (task_keys_make(&k, prefix, id, user) != FM_OK) {
        (void)snprintf(err, errlen, "key prefix or user name too long for a Redis key");
        rc = FM_EINVAL;
        goto done;
    }
    rc = FM_EREDIS;
    if ((json = cJSON_PrintUnformatted(t)) == NULL)
        goto done;
    /* 1..10 (validated): fits. */
    (void)snprintf(prio, sizeof(prio), "%d",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "priority")));
    {
        const char *argv[] = {k.seq, k.task, k.queue, k.user, k.all, json, prio, id};
        reply = fm_redis_eval(redis, &create_script, 5, 8, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
        goto done;
    *task = t;
    t = NULL;
    memcpy(id_out, id, FM_TASKS_ID_SIZE);
    rc = FM_OK;
done:
    if (reply != NULL)
        freeReplyObject(reply);
    cJSON_free(json);
    cJSON_Delete(t);
    return rc;
}

/* Parses a stored record; a record that is not an object is treated as missing. */
static cJSON *parse_record(const redisReply *r)
{
    cJSON *t;

    if (r->type != REDIS_REPLY_STRING)
        return NULL;
    t = cJSON_ParseWithLength(r->str, r->len);
    if (t != NULL && !cJSON_IsObject(t)) {
        cJSON_Delete(t);
        t = NULL;
    }
    return t;
}

static bool owned_by(const cJSON *t, const char *user)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(t, "user");

    return user == NULL || (cJSON_IsString(u) && strcmp(u->valuestring, user) == 0);
}

fm_err fm_tasks_get(fm_redis *redis, const char *prefix, const char *user, const char *id,
                    cJSON **task)
{
    char key[FM_REDIS_KEY_MAX];
    const char *argv[2] = {"GET", key};
    redisReply *reply;
    cJSON *t;

    *task = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (fm_redis_key(key, "%stask:%s", prefix, id) != FM_OK)
        return FM_EINVAL;
    reply = fm_redis_argv(redis, 2, argv, NULL);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply != NULL)
            freeReplyObject(reply);
        return FM_EREDIS;
    }
    t = parse_record(reply);
    freeReplyObject(reply);
    if (t == NULL || !owned_by(t, user)) {
        cJSON_Delete(t);
        return FM_ENOTFOUND;
    }
    *task = t;
    return FM_OK;
}

static bool status_is(const cJSON *t, const char *status)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "status");

    return status == NULL || (cJSON_IsString(s) && strcmp(s->valuestring, status) == 0);
}

/*
 * MGETs ids[0..n) and appends the records that pass the status filter,
 * counting matches in *matched and keeping those at positions
 * [offset, offset + limit).
 */
static int fetch_chunk(fm_redis *redis, const char *prefix, const char *status, redisReply **ids,
                       size_t n, long offset, long limit, long *matched, cJSON *out)
{
    const char *argv[MGET_CHUNK + 1];
    char keys[MGET_CHUNK][FM_REDIS_KEY_MAX];
    redisReply *reply;

    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        if (ids[i]->len > FM_REDIS_KEY_MAX ||
            fm_redis_key(keys[i], "%stask:%.*s", prefix, (int)ids[i]->len, ids[i]->str) != FM_OK)
            return FM_EINVAL;
        argv[i + 1] = keys[i];
    }
    reply = fm_redis_argv(redis, (int)n + 1, argv, NULL);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        if (reply != NULL)
            freeReplyObject(reply);
        return FM_EREDIS;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *t = parse_record(reply->element[i]);
        if (t == NULL || !status_is(t, status)) {
            cJSON_Delete(t);
            continue;
        }
        if (*matched >= offset && *matched < offset + limit)
            cJSON_AddItemToArray(out, t);
        else
            cJSON_Delete(t);
        (*matched)++;
    }
    freeReplyObject(reply);
    return FM_OK;
}

fm_err fm_tasks_list(fm_redis *redis, const char *prefix, const char *user, const char *status,
                     long offset, long limit, cJSON **tasks, long *total)
{
    char key[FM_REDIS_KEY_MAX], start[24], stop[24];
    redisReply *ids = NULL;
    cJSON *out;
    long matched = 0;
    int rc = FM_EREDIS;

    *tasks = NULL;
    *total = 0;
    if ((user != NULL ? fm_redis_key(key, "%suser:%s:tasks", prefix, user)
                      : fm_redis_key(key, "%stasks", prefix)) != FM_OK)
        return FM_EINVAL;
    if ((out = cJSON_CreateArray()) == NULL)
        return FM_EREDIS;

    /* Without a status filter only the page is fetched; with one, every id is scanned. */
    (void)snprintf(start, sizeof(start), "%ld", status == NULL ? offset : 0);
    (void)snprintf(stop, sizeof(stop), "%ld", status == NULL ? offset + limit - 1 : -1);
    {
        const char *argv[] = {"ZREVRANGE", key, start, stop};
        ids = fm_redis_argv(redis, 4, argv, NULL);
    }
    if (ids == NULL || ids->type != REDIS_REPLY_ARRAY)
        goto done;
    for (size_t i = 0; i < ids->elements; i++)
        if (ids->element[i]->type != REDIS_REPLY_STRING)
            goto done;
    for (size_t i = 0; i < ids->elements; i += MGET_CHUNK) {
        size_t n = ids->elements - i < MGET_CHUNK ? ids->elements - i : MGET_CHUNK;
        rc = fetch_chunk(redis, prefix, status, ids->element + i, n, status == NULL ? 0 : offset,
                         limit, &matched, out);
        if (rc != FM_OK)
            goto done;
        rc = FM_EREDIS;
    }
    if (status == NULL) {
        const char *argv[] = {"ZCARD", key};
        redisReply *card = fm_redis_argv(redis, 2, argv, NULL);
        int ok = card != NULL && card->type == REDIS_REPLY_INTEGER;
        if (ok)
            matched = card->integer;
        if (card != NULL)
            freeReplyObject(card);
        if (!ok)
            goto done;
    }
    *tasks = out;
    out = NULL;
    *total = matched;
    rc = FM_OK;
done:
    if (ids != NULL)
        freeReplyObject(ids);
    cJSON_Delete(out);
    return rc;
}

/*
 * Changes a task only if its record is still the one read before (so a
 * worker's update in between is never overwritten): SET the new record
 * (ARGV[2]), or DEL it and its index entries when ARGV[2] is empty, and take
 * it off the queue. Returns the task's seq (its score in P tasks, "0" when
 * unknown) for the undo token, or nil when the record changed (read again).
 * KEYS: task, queue, tasks, user's tasks; ARGV: record read, new record, id.
 */
static fm_redis_script change_script = {
    .source = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end\n"
              "local seq = redis.call('ZSCORE', KEYS[3], ARGV[3])\n"
              "if ARGV[2] == '' then\n"
              "  redis.call('DEL', KEYS[1])\n"
              "  redis.call('ZREM', KEYS[3], ARGV[3])\n"
              "  redis.call('ZREM', KEYS[4], ARGV[3])\n"
              "else\n"
              "  redis.call('SET', KEYS[1], ARGV[2])\n"
              "end\n"
              "redis.call('ZREM', KEYS[2], ARGV[3])\n"
              "return seq or '0'\n",
};

/*
 * The undo token of a change: "<seq> <record JSON>", seq being the task's
 * creation order (0 when unknown), so that fm_tasks_restore can put it back
 * in its place. Heap, or NULL.
 */
static char *undo_token(const char *seq_text, const char *json, size_t len)
{
    long long seq = strtoll(seq_text, NULL, 10);
    char *out = malloc(len + 24);
    int n;

    if (out == NULL)
        return NULL;
    n = snprintf(out, 24, "%lld ", seq > 0 ? seq : 0); /* at most 20 digits, a space, NUL */
    memcpy(out + n, json, len);
    out[n + len] = '\0';
    return out;
}

/* The change a decide function picks; NULL new_json deletes. */
typedef struct change {
    const char *new_json;
    const char *owner;
} change;

/*
 * Checks the task and picks the change: FM_OK, or FM_ECONFLICT when the
 * task's status forbids it. *buf is freed by the caller (cJSON_free).
 */
typedef int (*decide_fn)(cJSON *task, change *c, char **buf);

/* Runs change_script for the record read (old, len bytes): FM_OK, CAS_RETRY or an error. */
static int apply_change(fm_redis *redis, const char *prefix, const char *id, const char *old,
                        size_t len, const change *c, char **before)
{
    task_keys k;
    redisReply *r;
    int rc = FM_EREDIS;

    if (task_keys_make(&k, prefix, id, c->owner) != FM_OK)
        return FM_EINVAL;
    {
        const char *argv[] = {
            k.task, k.queue, k.all, k.user, old, c->new_json != NULL ? c->new_json : "", id};
        r = fm_redis_eval(redis, &change_script, 4, 7, argv);
    }
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        rc = CAS_RETRY;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        rc = (*before = undo_token(r->str, old, len)) != NULL ? FM_OK : FM_EREDIS;
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

/*
 * One check-and-set attempt: GET the record, let decide() check it and pick
 * the change, then apply it with change_script, which refuses it if the
 * record changed since the GET. Two round trips. Returns FM_OK, an error,
 * or CAS_RETRY when the task changed meanwhile.
 */
static int cas_once(fm_redis *redis, const char *prefix, const char *user, const char *id,
                    decide_fn decide, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX];
    const char *get[] = {"GET", key};
    redisReply *r;
    cJSON *t;
    change c = {NULL, NULL};
    char *buf = NULL;
    int rc;

    if (fm_redis_key(key, "%stask:%s", prefix, id) != FM_OK)
        return FM_EINVAL;
    r = fm_redis_argv(redis, 2, get, NULL);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL)
            freeReplyObject(r);
        return FM_EREDIS;
    }
    t = parse_record(r);
    if (t == NULL || !owned_by(t, user))
        rc = FM_ENOTFOUND;
    else if ((rc = decide(t, &c, &buf)) == FM_OK)
        rc = apply_change(redis, prefix, id, r->str, r->len, &c, before);
    freeReplyObject(r);
    cJSON_free(buf);
    /* The task as changed, or as it stands when its status forbade the change. */
    if (rc == FM_OK || rc == FM_ECONFLICT)
        *task = t;
    else
        cJSON_Delete(t);
    return rc;
}

static int cas(fm_redis *redis, const char *prefix, const char *user, const char *id,
               decide_fn decide, cJSON **task, char **before)
{
    *task = NULL;
    *before = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        int rc = cas_once(redis, prefix, user, id, decide, task, before);
        if (rc != CAS_RETRY)
            return rc;
    }
    return FM_EREDIS;
}

static const char *status_of(const cJSON *t)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "status");

    return cJSON_IsString(s) ? s->valuestring : "";
}

static const char *owner_of(const cJSON *t)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(t, "user");

    return cJSON_IsString(u) ? u->valuestring : "";
}

static int decide_cancel(cJSON *t, change *c, char **buf)
{
    char now[FM_RFC3339_MAX];
    const char *st = status_of(t);

    if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
        return FM_ECONFLICT;
    fm_clock_rfc3339(now, 0);
    if (!cJSON_ReplaceItemInObjectCaseSensitive(t, "status", cJSON_CreateString("cancelled")) ||
        !cJSON_ReplaceItemInObjectCaseSensitive(t, "ended_at", cJSON_CreateString(now)) ||
        (*buf = cJSON_PrintUnformatted(t)) == NULL)
        return FM_EREDIS;
    c->new_json = *buf;
    c->owner = owner_of(t);
    return FM_OK;
}

static int decide_delete(cJSON *t, change *c, char **buf)
{
    (void)buf;
    if (strcmp(status_of(t), "running") == 0)
        return FM_ECONFLICT;
    c->new_json = NULL;
    c->owner = owner_of(t);
    return FM_OK;
}

static int decide_purge(cJSON *t, change *c, char **buf)
{
    (void)buf;
    c->new_json = NULL;
    c->owner = owner_of(t);
    return FM_OK;
}

fm_err fm_tasks_cancel(fm_redis *redis, const char *prefix, const char *user, const char *id,
                       cJSON **task, char **before)
{
    return cas(redis, prefix, user, id, decide_cancel, task, before);
}

fm_err fm_tasks_delete(fm_redis *redis, const char *prefix, const char *user, const char *id,
                       char **before)
{
    cJSON *t = NULL;
    int rc = cas(redis, prefix, user, id, decide_delete, &t, before);

    cJSON_Delete(t);
    return rc;
}

/* Puts a record and its index entries back, as after a fresh create (new seq). */
static int put_back(fm_redis *redis, const char *prefix, const char *id, const char *token)
{
    char seq[24], *end;
    long long n = strtoll(token, &end, 10);
    const char *json = *end == ' ' ? end + 1 : token;
    cJSON *t = cJSON_Parse(json);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "priority");
    char prio[16];
    task_keys k;
    redisReply *reply;
    int rc = FM_EREDIS;

    if (t == NULL || !cJSON_IsNumber(p))
        goto done;
    if (task_keys_make(&k, prefix, id, owner_of(t)) != FM_OK) {
        rc = FM_EINVAL;
        goto done;
    }
    /* Both fit: an int has at most 11 characters, a long long 20. */
    (void)snprintf(prio, sizeof(prio), "%d", p->valueint);
    (void)snprintf(seq, sizeof(seq), "%lld", *end == ' ' && n > 0 ? n : 0);
    {
        const char *argv[] = {k.seq, k.task, k.queue, k.user,       k.all,
                              json,  prio,   id,      status_of(t), seq};
        reply = fm_redis_eval(redis, &restore_script, 5, 10, argv);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        rc = FM_OK;
    if (reply != NULL)
        freeReplyObject(reply);
done:
    cJSON_Delete(t);
    return rc;
}

/* Removes a record and every index entry, whatever its status. */
static int purge(fm_redis *redis, const char *prefix, const char *id)
{
    cJSON *t = NULL;
    char *before = NULL;
    int rc = cas(redis, prefix, NULL, id, decide_purge, &t, &before);

    cJSON_Delete(t);
    free(before);
    return rc == FM_ENOTFOUND ? FM_OK : rc;
}

fm_err fm_tasks_restore(fm_redis *redis, const char *prefix, const char *id, const char *before)
{
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    return before == NULL ? purge(redis, prefix, id) : put_back(redis, prefix, id, before);
}
