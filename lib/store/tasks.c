/*
 * tasks.c - task records and queue in Redis (layout: tasks.h).
 *
 * Validation is strict and whole-body: the JSON must be one object, every
 * field known, no field twice, each value of its type and bounds. Only then is
 * a task built, with a random UUID v4 (RFC 9562 section 5.4) and RFC 3339
 * UTC times, and stored by one script. Listing reads the per-user (or global)
 * index newest first and fetches records with MGET in bounded chunks.
 */
#include "tasks.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define NAME_MAX_LEN 128
#define ARGS_MAX_LEN 4096
#define LIST_ITEMS_MAX 64
#define MGET_CHUNK 256

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

int fm_tasks_status_valid(const char *status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(status, statuses[i]) == 0)
            return 1;
    return 0;
}

static int name_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || (c != '\0' && strchr(extra, c) != NULL)))
            return 0;
    }
    return s[0] != '.';
}

static int is_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (strlen(s) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char c = s[i];
        if (shape[i] == '-' ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static void uuid_v4(char out[37])
{
    unsigned char b[16];
    char hex[33];

    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    sodium_bin2hex(hex, sizeof(hex), b, sizeof(b));
    (void)snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                   hex + 20);
}

static int fail(char *err, size_t errlen, int code, const char *msg, const char *field)
{
    if (field != NULL)
        (void)snprintf(err, errlen, "%s: %s", field, msg);
    else
        (void)snprintf(err, errlen, "%s", msg);
    return code;
}

static int string_array_ok(const cJSON *a, size_t item_max, const char *extra)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsArray(a))
        return 0;
    cJSON_ArrayForEach(it, a)
    {
        if (++n > LIST_ITEMS_MAX || !cJSON_IsString(it) ||
            (extra != NULL ? !name_ok(it->valuestring, item_max, extra)
                           : strlen(it->valuestring) > item_max))
            return 0;
    }
    return 1;
}

static int metadata_ok(const cJSON *m)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsObject(m))
        return 0;
    cJSON_ArrayForEach(it, m)
    {
        if (++n > LIST_ITEMS_MAX || !name_ok(it->string, 64, "") ||
            !(cJSON_IsString(it) || cJSON_IsNumber(it) || cJSON_IsBool(it)) ||
            (cJSON_IsString(it) && strlen(it->valuestring) > ARGS_MAX_LEN))
            return 0;
    }
    return 1;
}

/* Checks one field of the request body; returns 0 or an FM_EINVAL with err set. */
static int check_field(const cJSON *f, char *err, size_t errlen)
{
    const char *k = f->string;

    if (strcmp(k, "job_name") == 0) {
        if (!cJSON_IsString(f) || !name_ok(f->valuestring, NAME_MAX_LEN, ":"))
            return fail(err, errlen, FM_EINVAL, "must be 1-128 characters of A-Z a-z 0-9 _ . : -",
                        k);
    } else if (strcmp(k, "args") == 0) {
        if (!(cJSON_IsString(f) && strlen(f->valuestring) <= ARGS_MAX_LEN) &&
            !string_array_ok(f, ARGS_MAX_LEN, NULL))
            return fail(err, errlen, FM_EINVAL,
                        "must be a string or an array of at most 64 strings (4096 bytes each)", k);
    } else if (strcmp(k, "priority") == 0) {
        double v = cJSON_IsNumber(f) ? f->valuedouble : 0;
        if (!cJSON_IsNumber(f) || v != floor(v) || v < 1 || v > 10)
            return fail(err, errlen, FM_EINVAL, "must be an integer from 1 to 10", k);
    } else if (strcmp(k, "commit_id") == 0) {
        int ok = cJSON_IsString(f) && strlen(f->valuestring) == 40;
        for (size_t i = 0; ok && i < 40; i++) {
            char c = f->valuestring[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        }
        if (!ok)
            return fail(err, errlen, FM_EINVAL, "must be 40 hex digits", k);
    } else if (strcmp(k, "experiment") == 0) {
        if (!cJSON_IsString(f) || !name_ok(f->valuestring, NAME_MAX_LEN, ""))
            return fail(err, errlen, FM_EINVAL,
                        "must be 1-128 characters of A-Z a-z 0-9 _ . - (not starting with .)", k);
    } else if (strcmp(k, "datasets") == 0) {
        if (!string_array_ok(f, 256, ":/"))
            return fail(err, errlen, FM_EINVAL, "must be an array of at most 64 dataset names", k);
    } else if (strcmp(k, "metadata") == 0) {
        if (!metadata_ok(f))
            return fail(err, errlen, FM_EINVAL,
                        "must be an object of at most 64 string, number or boolean values", k);
    } else {
        (void)snprintf(err, errlen, "unknown field \"%.64s\"", k);
        return FM_EINVAL;
    }
    return 0;
}

static int validate(const cJSON *body, char *err, size_t errlen)
{
    const cJSON *f, *g;

    if (!cJSON_IsObject(body))
        return fail(err, errlen, FM_EINVAL, "request body must be a JSON object", NULL);
    cJSON_ArrayForEach(f, body)
    {
        for (g = body->child; g != f; g = g->next)
            if (strcmp(g->string, f->string) == 0)
                return fail(err, errlen, FM_EINVAL, "duplicate field", NULL);
        int rc = check_field(f, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (cJSON_GetObjectItemCaseSensitive(body, "job_name") == NULL)
        return fail(err, errlen, FM_EINVAL, "is required", "job_name");
    return 0;
}

/*
 * The whole body must be one JSON value: cJSON stops at the end of the first
 * value and at a NUL, so trailing bytes and NULs (raw or as \u0000, which
 * cJSON would silently cut a string at) are checked here.
 */
static cJSON *parse_body(const char *body, size_t len)
{
    const char *end = NULL;
    cJSON *v;

    if (memchr(body, '\0', len) != NULL)
        return NULL;
    for (const char *p = body; (p = memchr(p, '\\', len - (size_t)(p - body))) != NULL; p += 2) {
        if ((size_t)(body + len - p) >= 6 && p[1] == 'u' && strncmp(p + 2, "0000", 4) == 0)
            return NULL;
        if (p + 1 >= body + len)
            break;
    }
    v = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (v == NULL)
        return NULL;
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != body + len) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Copies an optional body field into task, or sets JSON null. */
static int copy_or_null(cJSON *task, const cJSON *body, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    cJSON *c = v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();

    if (c == NULL)
        return -1;
    if (!cJSON_AddItemToObject(task, name, c)) {
        cJSON_Delete(c);
        return -1;
    }
    return 0;
}

static cJSON *build_task(const cJSON *body, const char *user, const char *id, int priority)
{
    cJSON *t = cJSON_CreateObject();
    char now[FM_RFC3339_MAX];
    int ok;

    if (t == NULL)
        return NULL;
    fm_clock_rfc3339(now, 0);
    ok = cJSON_AddStringToObject(t, "id", id) != NULL && copy_or_null(t, body, "job_name") == 0 &&
         copy_or_null(t, body, "args") == 0 &&
         cJSON_AddStringToObject(t, "status", "queued") != NULL &&
         cJSON_AddNumberToObject(t, "priority", priority) != NULL &&
         cJSON_AddStringToObject(t, "user", user) != NULL &&
         copy_or_null(t, body, "commit_id") == 0 && copy_or_null(t, body, "experiment") == 0 &&
         copy_or_null(t, body, "datasets") == 0 && copy_or_null(t, body, "metadata") == 0 &&
         cJSON_AddStringToObject(t, "created_at", now) != NULL &&
         cJSON_AddNullToObject(t, "started_at") != NULL &&
         cJSON_AddNullToObject(t, "ended_at") != NULL &&
         cJSON_AddNullToObject(t, "worker_id") != NULL && cJSON_AddNullToObject(t, "error") != NULL;
    if (!ok) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

fm_err fm_tasks_create(fm_redis *redis, const char *prefix, const char *user, const char *body,
                       size_t body_len, cJSON **task, char id_out[FM_TASKS_ID_SIZE], char *err,
                       size_t errlen)
{
    cJSON *in = NULL, *t = NULL;
    char id[37], prio[4], k_seq[256], k_task[256], k_queue[256], k_user[256], k_all[256];
    char *json = NULL;
    const cJSON *p;
    redisReply *reply = NULL;
    int priority = 5, rc;

    *task = NULL;
    if (body == NULL || body_len == 0)
        return fail(err, errlen, FM_EPARSE, "request body is empty", NULL);
    in = parse_body(body, body_len);
    if (in == NULL)
        return fail(err, errlen, FM_EPARSE,
                    "request body is not valid JSON (one object, no NUL characters)", NULL);
    if ((rc = validate(in, err, errlen)) != 0)
        goto done;
    p = cJSON_GetObjectItemCaseSensitive(in, "priority");
    if (p != NULL)
        priority = (int)p->valuedouble;

    rc = FM_EREDIS;
    uuid_v4(id);
    if ((t = build_task(in, user, id, priority)) == NULL ||
        (json = cJSON_PrintUnformatted(t)) == NULL)
        goto done;
    (void)snprintf(prio, sizeof(prio), "%d", priority);
    (void)snprintf(k_seq, sizeof(k_seq), "%stask_seq", prefix);
    (void)snprintf(k_task, sizeof(k_task), "%stask:%s", prefix, id);
    (void)snprintf(k_queue, sizeof(k_queue), "%squeue", prefix);
    (void)snprintf(k_user, sizeof(k_user), "%suser:%s:tasks", prefix, user);
    (void)snprintf(k_all, sizeof(k_all), "%stasks", prefix);
    {
        const char *argv[] = {k_seq, k_task, k_queue, k_user, k_all, json, prio, id};
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
    cJSON_Delete(in);
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

static int owned_by(const cJSON *t, const char *user)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(t, "user");

    return user == NULL || (cJSON_IsString(u) && strcmp(u->valuestring, user) == 0);
}

/* Runs a command whose reply only needs to be "not an error"; returns 0 or -1. */
static int simple(fm_redis *redis, int argc, const char **argv)
{
    redisReply *r = fm_redis_argv(redis, argc, argv, NULL);
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;

    if (r != NULL)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

fm_err fm_tasks_get(fm_redis *redis, const char *prefix, const char *user, const char *id,
                    cJSON **task)
{
    char key[256];
    const char *argv[2] = {"GET", key};
    redisReply *reply;
    cJSON *t;

    *task = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    (void)snprintf(key, sizeof(key), "%stask:%s", prefix, id);
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

static int status_is(const cJSON *t, const char *status)
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
    char keys[MGET_CHUNK][256];
    redisReply *reply;

    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(keys[i], sizeof(keys[i]), "%stask:%.*s", prefix, (int)ids[i]->len,
                       ids[i]->str);
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
    char key[256], start[24], stop[24];
    redisReply *ids = NULL;
    cJSON *out;
    long matched = 0;
    int rc = FM_EREDIS;

    *tasks = NULL;
    *total = 0;
    if (user != NULL)
        (void)snprintf(key, sizeof(key), "%suser:%s:tasks", prefix, user);
    else
        (void)snprintf(key, sizeof(key), "%stasks", prefix);
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
        if (fetch_chunk(redis, prefix, status, ids->element + i, n, status == NULL ? 0 : offset,
                        limit, &matched, out) != FM_OK)
            goto done;
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
 * The undo token of a change: "<seq> <record JSON>", seq being the task's
 * creation order (its score in P tasks; 0 when unknown), so that
 * fm_tasks_restore can put it back in its place. Heap, or NULL.
 */
static char *snapshot(fm_redis *redis, const char *all, const char *id, const char *json,
                      size_t len)
{
    const char *argv[] = {"ZSCORE", all, id};
    redisReply *r = fm_redis_argv(redis, 3, argv, NULL);
    long long seq = 0;
    char *out;

    if (r == NULL)
        return NULL;
    if (r->type == REDIS_REPLY_STRING)
        seq = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    out = malloc(len + 24);
    if (out == NULL)
        return NULL;
    int n = snprintf(out, 24, "%lld ", seq > 0 ? seq : 0);
    memcpy(out + n, json, len);
    out[n + len] = '\0';
    return out;
}

/* The change a check-and-set transaction makes; NULL new_json deletes. */
typedef struct change {
    const char *new_json;
    const char *owner;
} change;

/*
 * One check-and-set attempt: WATCH, read, let decide() check the task and
 * pick the change, then MULTI/EXEC. Returns FM_OK, an error, or 1 when
 * EXEC was aborted because the task changed meanwhile (try again).
 */
typedef int (*decide_fn)(cJSON *task, change *c, char **buf);

static int cas_once(fm_redis *redis, const char *prefix, const char *user, const char *id,
                    decide_fn decide, cJSON **task, char **before)
{
    char key[256], queue[256], all[256], own[256];
    const char *watch[] = {"WATCH", key};
    const char *get[] = {"GET", key};
    const char *unwatch[] = {"UNWATCH"};
    redisReply *r;
    cJSON *t;
    change c = {NULL, NULL};
    char *buf = NULL;
    int rc;

    (void)snprintf(key, sizeof(key), "%stask:%s", prefix, id);
    if (simple(redis, 2, watch) != 0)
        return FM_EREDIS;
    r = fm_redis_argv(redis, 2, get, NULL);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL)
            freeReplyObject(r);
        (void)simple(redis, 1, unwatch);
        return FM_EREDIS;
    }
    t = parse_record(r);
    if (t == NULL || !owned_by(t, user)) {
        freeReplyObject(r);
        cJSON_Delete(t);
        (void)simple(redis, 1, unwatch);
        return FM_ENOTFOUND;
    }
    (void)snprintf(all, sizeof(all), "%stasks", prefix);
    *before = snapshot(redis, all, id, r->str, r->len);
    freeReplyObject(r);
    if (*before == NULL) {
        cJSON_Delete(t);
        (void)simple(redis, 1, unwatch);
        return FM_EREDIS;
    }
    rc = decide(t, &c, &buf);
    if (rc != FM_OK) {
        (void)simple(redis, 1, unwatch);
        *task = t;
        cJSON_free(buf);
        free(*before);
        *before = NULL;
        return rc;
    }
    (void)snprintf(queue, sizeof(queue), "%squeue", prefix);
    (void)snprintf(own, sizeof(own), "%suser:%s:tasks", prefix, c.owner);
    {
        const char *multi[] = {"MULTI"};
        const char *set[] = {"SET", key, c.new_json};
        const char *del[] = {"DEL", key};
        const char *zq[] = {"ZREM", queue, id};
        const char *za[] = {"ZREM", all, id};
        const char *zo[] = {"ZREM", own, id};
        const char *exec[] = {"EXEC"};
        rc = FM_EREDIS;
        if (simple(redis, 1, multi) != 0)
            goto done;
        if (c.new_json != NULL ? simple(redis, 3, set) : simple(redis, 2, del))
            goto done;
        if (simple(redis, 3, zq) != 0)
            goto done;
        if (c.new_json == NULL && (simple(redis, 3, za) != 0 || simple(redis, 3, zo) != 0))
            goto done;
        r = fm_redis_argv(redis, 1, exec, NULL);
        if (r != NULL && r->type == REDIS_REPLY_NIL)
            rc = 1;
        else if (r != NULL && r->type == REDIS_REPLY_ARRAY)
            rc = FM_OK;
        if (r != NULL)
            freeReplyObject(r);
    }
done:
    if (rc == FM_EREDIS) {
        const char *discard[] = {"DISCARD"};
        (void)simple(redis, 1, discard);
    }
    cJSON_free(buf);
    if (rc == FM_OK) {
        *task = t;
    } else {
        cJSON_Delete(t);
        free(*before);
        *before = NULL;
    }
    return rc;
}

static int cas(fm_redis *redis, const char *prefix, const char *user, const char *id,
               decide_fn decide, cJSON **task, char **before)
{
    *task = NULL;
    *before = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc = cas_once(redis, prefix, user, id, decide, task, before);
        if (rc != 1)
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
    char k_seq[256], k_task[256], k_queue[256], k_user[256], k_all[256], prio[8];
    redisReply *reply;
    int rc = FM_EREDIS;

    if (t == NULL || !cJSON_IsNumber(p))
        goto done;
    (void)snprintf(prio, sizeof(prio), "%d", p->valueint);
    (void)snprintf(k_seq, sizeof(k_seq), "%stask_seq", prefix);
    (void)snprintf(k_task, sizeof(k_task), "%stask:%s", prefix, id);
    (void)snprintf(k_queue, sizeof(k_queue), "%squeue", prefix);
    (void)snprintf(k_user, sizeof(k_user), "%suser:%s:tasks", prefix, owner_of(t));
    (void)snprintf(k_all, sizeof(k_all), "%stasks", prefix);
    {
        const char *argv[] = {k_seq, k_task, k_queue, k_user,       k_all,
                              json,  prio,   id,      status_of(t), seq};
        (void)snprintf(seq, sizeof(seq), "%lld", *end == ' ' && n > 0 ? n : 0);
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
