/*
 * tasks.c - task records, queue, leases and indexes in Redis (layout:
 * tasks.h). Each transition is one Lua script (taskscripts.c) and one round
 * trip; the hash it answers becomes the API's task and the undo token in
 * taskrecord.c.
 *
 * Claim pops P queue's lowest score (ZPOPMIN) and drops an id whose hash is
 * not queued (an entry left by an operator's edit); two claimers never get
 * one task because a script runs alone. An expired lease requeues the task
 * with the same hash fields priority and seq, hence the same score: its old
 * place.
 *
 * Listing is one read-only script per page (ZCARD, ZREVRANGE of the page,
 * HGETALL of each id): one round trip, which pipelined HGETALLs after a
 * ZREVRANGE would not give (two), and retried after a lost reply because
 * it only reads. The page stops before its rendered size would pass
 * max_bytes.
 */
#include "tasks.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "taskbody.h"
#include "taskrecord.h"
#include "taskscripts.h"

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

/*
 * FM_OK when every key of task id (NULL: none) and of owner (NULL: none) fits
 * FM_REDIS_KEY_MAX; the task's key then in key. The longest ones:
 * "P user:<owner>:status:cancelled" and "P status:cancelled".
 */
static fm_err keys_fit(const char *prefix, const char *id, const char *owner,
                       char key[FM_REDIS_KEY_MAX])
{
    char k[FM_REDIS_KEY_MAX];

    if (fm_redis_key(k, "%sstatus:cancelled", prefix) != FM_OK ||
        (owner != NULL && fm_redis_key(k, "%suser:%s:status:cancelled", prefix, owner) != FM_OK))
        return FM_EINVAL;
    if (id == NULL)
        return FM_OK;
    return fm_redis_key(key, "%stask:%s", prefix, id);
}

/* A note's word: printable ASCII but space ('_' instead), at most size - 1 bytes, "-" when none. */
static void note_word(char *out, size_t size, const char *in)
{
    size_t i = 0;

    for (; in != NULL && in[i] != '\0' && i + 1 < size; i++)
        out[i] = in[i] > ' ' && in[i] < 0x7f ? in[i] : '_';
    out[i] = '\0';
    if (i == 0)
        (void)snprintf(out, size, "-");
}

/* The journal note of a change: st's trace id and actor (or the given one). */
typedef struct note {
    char trace[FM_TASKS_TRACE_MAX];
    char actor[FM_WORKER_ID_MAX];
} note;

static note note_of(const fm_tasks_store *st, const char *actor)
{
    note n;

    note_word(n.trace, sizeof(n.trace), st->trace_id);
    note_word(n.actor, sizeof(n.actor), actor != NULL ? actor : st->actor);
    return n;
}

/* ---- transitions ----------------------------------------------------------------- */

static fm_err code_of(const redisReply *c)
{
    static const struct {
        const char *code;
        fm_err rc;
    } codes[] = {{"ok", FM_OK},
                 {"notfound", FM_ENOTFOUND},
                 {"empty", FM_ENOTFOUND},
                 {"conflict", FM_ECONFLICT},
                 {"quota", FM_EQUOTA}};

    if (c->type != REDIS_REPLY_STRING)
        return FM_EREDIS;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(c->str, codes[i].code) == 0)
            return codes[i].rc;
    return FM_EREDIS;
}

/*
 * Undoes a change the caller cannot report (out of memory after the script
 * ran): the token, or removal when token is NULL and remove is set.
 */
static void undo(const fm_tasks_store *st, const char *id, const char *token, bool remove)
{
    if ((token != NULL || remove) && fm_tasks_restore(st, id, token) != FM_OK)
        fm_log_error("could not undo the change to task %s after running out of memory", id);
}

/*
 * A transition's answer {code[, before, after[, id, member]]} into the
 * results: *task (when task is non-NULL) from after, for FM_OK and
 * FM_ECONFLICT when given; *before (when before is non-NULL; else the token
 * is dropped) the token of before and member. The reply is freed.
 */
static fm_err finish(const fm_tasks_store *st, redisReply *r, cJSON **task, char **before)
{
    fm_err rc = FM_EREDIS;
    const char *id;
    char *token;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        goto done;
    rc = code_of(r->element[0]);
    if (rc == FM_OK && (r->elements < 5 || r->element[3]->type != REDIS_REPLY_STRING ||
                        !is_uuid(r->element[3]->str)))
        rc = FM_EREDIS;
    if ((rc != FM_OK && rc != FM_ECONFLICT) || r->elements < 3)
        goto done;
    /* The task as changed; for a removal (after is empty), as it was. */
    if (task != NULL)
        *task = fm_taskrecord_compose(r->element[2]->elements > 0 ? r->element[2] : r->element[1]);
    if (rc != FM_OK)
        goto done;
    id = r->element[3]->str;
    token = fm_taskrecord_token(r->element[1], r->element[2], r->element[4]);
    if ((task != NULL && *task == NULL) || token == NULL) {
        /* Without a token the undo of a create (before is empty) removes the task. */
        undo(st, id, token, r->element[1]->elements == 0);
        if (task != NULL) {
            cJSON_Delete(*task);
            *task = NULL;
        }
        free(token);
        errno = ENOMEM;
        rc = FM_ESYS;
    } else if (before != NULL) {
        *before = token;
    } else {
        free(token);
    }
done:
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

fm_err fm_tasks_create(const fm_tasks_store *st, const char *user, const char *body,
                       size_t body_len, cJSON **task, char id_out[FM_TASKS_ID_SIZE], char **before,
                       char *err, size_t errlen)
{
    cJSON *spec = NULL;
    const char *id;
    char key[FM_REDIS_KEY_MAX], prio[16], max_open[24];
    char *json = NULL;
    redisReply *reply;
    fm_err rc;

    *task = NULL;
    if (before != NULL)
        *before = NULL;
    if ((rc = fm_taskbody_build(body, body_len, user, &spec, err, errlen)) != FM_OK)
        return rc;
    id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "id"));
    if (keys_fit(st->prefix, id, user, key) != FM_OK) {
        (void)snprintf(err, errlen, "key prefix or user name too long for a Redis key");
        rc = FM_EINVAL;
        goto done;
    }
    if ((json = cJSON_PrintUnformatted(spec)) == NULL) {
        errno = ENOMEM;
        rc = FM_ESYS;
        goto done;
    }
    if (st->max_task_bytes > 0 &&
        strlen(json) + strlen(user) + FM_TASKS_LIFECYCLE_BYTES > st->max_task_bytes) {
        (void)snprintf(err, errlen, "task record over %zu bytes (limits.max_task_bytes)",
                       st->max_task_bytes);
        rc = FM_ETOOBIG;
        goto done;
    }
    /* Both fit: priority is 1..10 (validated), a long at most 20 characters. */
    (void)snprintf(prio, sizeof(prio), "%d",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(spec, "priority")));
    (void)snprintf(max_open, sizeof(max_open), "%ld",
                   st->max_open_tasks > 0 ? st->max_open_tasks : 0);
    {
        note n = note_of(st, NULL);
        const char *argv[] = {key, st->prefix, id, user, prio, json, max_open, n.trace, n.actor};
        reply = fm_redis_eval(st->redis, &fm_taskscript_create, 1, 9, argv);
    }
    rc = finish(st, reply, task, before);
    if (rc == FM_OK)
        memcpy(id_out, id, FM_TASKS_ID_SIZE);
    else if (rc == FM_EQUOTA)
        (void)snprintf(err, errlen, "%ld queued or running tasks already (limits.max_open_tasks)",
                       st->max_open_tasks);
    else if (rc == FM_ECONFLICT || rc == FM_ENOTFOUND)
        rc = FM_EREDIS; /* not answers of create */
done:
    cJSON_free(json);
    cJSON_Delete(spec);
    return rc;
}

fm_err fm_tasks_get(const fm_tasks_store *st, const char *user, const char *id, cJSON **task)
{
    char key[FM_REDIS_KEY_MAX];
    const char *argv[2] = {"HGETALL", key};
    redisReply *reply;
    fm_err rc = FM_ENOTFOUND;

    *task = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (fm_redis_key(key, "%stask:%s", st->prefix, id) != FM_OK)
        return FM_EINVAL;
    reply = fm_redis_argv(st->redis, 2, argv, NULL);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "WRONGTYPE", 9) == 0) {
        rc = FM_ENOTFOUND; /* not a hash: not a task (see below) */
    } else if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        rc = FM_EREDIS;
    } else if (user == NULL || fm_taskrecord_is(fm_taskrecord_field(reply, "user"), user)) {
        /* A record that is not a task (an operator's edit) is treated as missing. */
        if ((*task = fm_taskrecord_compose(reply)) != NULL)
            rc = FM_OK;
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

/*
 * Appends the page's tasks (reply elements 1..) to out while the rendered
 * array stays within max_bytes (0 = no limit). Returns how many index entries
 * were consumed (an entry whose record is gone counts, and is skipped), or
 * -1 on ENOMEM.
 */
static long fill_page(const redisReply *reply, size_t max_bytes, cJSON *out)
{
    size_t used = 2; /* "[]" */
    long n = 0;

    for (size_t i = 1; i < reply->elements; i++, n++) {
        cJSON *t = fm_taskrecord_compose(reply->element[i]);

        if (t == NULL) {
            if (reply->element[i]->elements > 0 &&
                fm_taskrecord_field(reply->element[i], "spec") != NULL)
                return -1; /* a task, not composed: out of memory */
            continue;
        }
        if (max_bytes > 0) {
            char *text = cJSON_PrintUnformatted(t);
            size_t need = text != NULL ? used + strlen(text) + (cJSON_GetArraySize(out) > 0) : 0;

            cJSON_free(text);
            if (text == NULL || need > max_bytes) {
                cJSON_Delete(t);
                return text == NULL ? -1 : n;
            }
            used = need;
        }
        cJSON_AddItemToArray(out, t);
    }
    return n;
}

fm_err fm_tasks_list(const fm_tasks_store *st, const char *user, const char *status, long offset,
                     long limit, size_t max_bytes, cJSON **tasks, long *total, long *next_offset)
{
    char key[FM_REDIS_KEY_MAX], off[24], lim[24];
    redisReply *reply;
    cJSON *out;
    long n;
    fm_err rc = FM_EREDIS, k;

    *tasks = NULL;
    *total = 0;
    *next_offset = -1;
    if (offset < 0 || limit < 1 || limit > FM_TASKS_LIST_MAX ||
        (status != NULL && !fm_tasks_status_valid(status)))
        return FM_EINVAL;
    if (user != NULL)
        k = status != NULL ? fm_redis_key(key, "%suser:%s:status:%s", st->prefix, user, status)
                           : fm_redis_key(key, "%suser:%s:tasks", st->prefix, user);
    else
        k = status != NULL ? fm_redis_key(key, "%sstatus:%s", st->prefix, status)
                           : fm_redis_key(key, "%stasks", st->prefix);
    if (k != FM_OK || keys_fit(st->prefix, NULL, user, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(off, sizeof(off), "%ld", offset);
    (void)snprintf(lim, sizeof(lim), "%ld", limit);
    {
        const char *argv[] = {key, st->prefix, off, lim};
        reply = fm_redis_eval(st->redis, &fm_taskscript_list, 1, 4, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        goto done;
    rc = FM_ESYS;
    errno = ENOMEM;
    if ((out = cJSON_CreateArray()) == NULL)
        goto done;
    if ((n = fill_page(reply, max_bytes, out)) < 0) {
        cJSON_Delete(out);
        goto done;
    }
    *tasks = out;
    *total = (long)reply->element[0]->integer;
    *next_offset = offset + n < *total ? offset + n : -1;
    rc = FM_OK;
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

/* Cancel and delete: one script on KEYS task, ARGV P, id, owner ('' = anyone's). */
static fm_err owner_change(const fm_tasks_store *st, fm_redis_script *script, const char *user,
                           const char *id, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX];

    if (task != NULL)
        *task = NULL;
    *before = NULL;
    if (!is_uuid(id) || (user != NULL && user[0] == '\0'))
        return FM_ENOTFOUND;
    if (keys_fit(st->prefix, id, user, key) != FM_OK)
        return FM_EINVAL;
    note n = note_of(st, NULL);
    const char *argv[] = {key, st->prefix, id, user != NULL ? user : "", n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, script, 1, 6, argv), task, before);
}

fm_err fm_tasks_cancel(const fm_tasks_store *st, const char *user, const char *id, cJSON **task,
                       char **before)
{
    return owner_change(st, &fm_taskscript_cancel, user, id, task, before);
}

fm_err fm_tasks_delete(const fm_tasks_store *st, const char *user, const char *id, cJSON **task,
                       char **before)
{
    return owner_change(st, &fm_taskscript_delete, user, id, task, before);
}

static bool worker_ok(const char *worker_id)
{
    size_t n = strlen(worker_id);

    return n > 0 && n < FM_WORKER_ID_MAX;
}

fm_err fm_tasks_claim(const fm_tasks_store *st, const char *worker_id, cJSON **task, char **before)
{
    char lease[16];

    *task = NULL;
    *before = NULL;
    if (!worker_ok(worker_id) || st->lease_seconds < 1 ||
        keys_fit(st->prefix, NULL, NULL, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(lease, sizeof(lease), "%d", st->lease_seconds);
    note n = note_of(st, worker_id);
    const char *argv[] = {st->prefix, worker_id, lease, n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, &fm_taskscript_claim, 0, 5, argv), task, before);
}

fm_err fm_tasks_heartbeat(const fm_tasks_store *st, const char *worker_id, const char *id,
                          double progress, const char *metrics, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX], lease[16], prog[32] = "";

    *task = NULL;
    *before = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (!worker_ok(worker_id) || st->lease_seconds < 1 || progress > 100 ||
        (metrics != NULL && (metrics[0] == '\0' || strlen(metrics) > FM_TASKS_METRICS_MAX)) ||
        keys_fit(st->prefix, id, NULL, key) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(lease, sizeof(lease), "%d", st->lease_seconds);
    if (progress >= 0)
        (void)snprintf(prog, sizeof(prog), "%.17g", progress);
    note n = note_of(st, worker_id);
    const char *argv[] = {key,     st->prefix, id, worker_id, lease, prog, metrics ? metrics : "",
                          n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, &fm_taskscript_heartbeat, 1, 9, argv), task, before);
}

fm_err fm_tasks_complete(const fm_tasks_store *st, const char *worker_id, const char *id,
                         const char *status, const char *error, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX];

    *task = NULL;
    *before = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (!worker_ok(worker_id) ||
        (strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0 &&
         strcmp(status, "cancelled") != 0) ||
        (error != NULL && (error[0] == '\0' || strlen(error) > FM_TASKS_ERROR_MAX)) ||
        keys_fit(st->prefix, id, NULL, key) != FM_OK)
        return FM_EINVAL;
    note n = note_of(st, worker_id);
    const char *argv[] = {key,     st->prefix, id, worker_id, status, error != NULL ? error : "",
                          n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, &fm_taskscript_complete, 1, 8, argv), task, before);
}

/* Frees what out[0..n) hold. */
static void swept_free(fm_tasks_swept *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(out[i].task);
        free(out[i].before);
        out[i].task = NULL;
        out[i].before = NULL;
    }
}

/* A sweep answer {event, before, after, id, member} into *s; false if it is not one, or ENOMEM. */
static bool swept_of(const redisReply *e, fm_tasks_swept *s)
{
    static const char *const events[] = {"task.requeued", "task.failed", "task.cancelled"};
    const redisReply *w;

    memset(s, 0, sizeof(*s));
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 5 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[3]->type != REDIS_REPLY_STRING ||
        !is_uuid(e->element[3]->str))
        return false;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(e->element[0]->str, events[i]) == 0)
            s->event = events[i];
    memcpy(s->id, e->element[3]->str, FM_TASKS_ID_SIZE);
    if ((w = fm_taskrecord_field(e->element[1], "worker_id")) != NULL)
        (void)snprintf(s->worker_id, sizeof(s->worker_id), "%s", w->str);
    s->task = fm_taskrecord_compose(e->element[2]);
    s->before = fm_taskrecord_token(e->element[1], e->element[2], e->element[4]);
    return s->event != NULL && s->task != NULL && s->before != NULL;
}

fm_err fm_tasks_sweep(const fm_tasks_store *st, size_t max, fm_tasks_swept *out, size_t *n)
{
    char maxs[24], attempts[16];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    *n = 0;
    if (max == 0 || st->max_attempts < 1 || keys_fit(st->prefix, NULL, NULL, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(maxs, sizeof(maxs), "%zu", max);
    (void)snprintf(attempts, sizeof(attempts), "%d", st->max_attempts);
    {
        note nt = note_of(st, NULL);
        const char *argv[] = {st->prefix, maxs, attempts, nt.trace, nt.actor};
        reply = fm_redis_eval(st->redis, &fm_taskscript_sweep, 0, 5, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements > max)
        goto done;
    rc = FM_OK;
    for (size_t i = 0; i < reply->elements; i++)
        if (!swept_of(reply->element[i], &out[i]))
            rc = FM_ESYS;
    if (rc == FM_OK) {
        *n = reply->elements;
        goto done;
    }
    /* Not all can be reported: undo those that can, so none goes unaudited. */
    for (size_t i = 0; i < reply->elements; i++)
        if (out[i].before != NULL)
            undo(st, out[i].id, out[i].before, false);
    swept_free(out, reply->elements);
    errno = ENOMEM;
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

fm_err fm_tasks_restore(const fm_tasks_store *st, const char *id, const char *before)
{
    char key[FM_REDIS_KEY_MAX];
    redisReply *reply;
    fm_err rc;

    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (keys_fit(st->prefix, id, NULL, key) != FM_OK || (before != NULL && before[0] == '\0'))
        return FM_EINVAL;
    {
        const char *argv[] = {key, st->prefix, id, before != NULL ? before : ""};
        reply = fm_redis_eval(st->redis, &fm_taskscript_restore, 1, 4, argv);
    }
    if (reply == NULL)
        return FM_EREDIS;
    if (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING)
        rc = strcmp(reply->str, "changed") == 0 ? FM_ECONFLICT : FM_OK;
    else if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "bad undo token") != NULL)
        rc = FM_EINVAL;
    else
        rc = FM_EREDIS;
    freeReplyObject(reply);
    return rc;
}

fm_err fm_tasks_forget(const fm_tasks_store *st, const char *member)
{
    char key[FM_REDIS_KEY_MAX];

    if (fm_redis_key(key, "%sjournal", st->prefix) != FM_OK)
        return FM_EINVAL;
    const char *argv[] = {"ZREM", key, member};
    return fm_redis_send(st->redis, 3, argv);
}

fm_err fm_tasks_settle(const fm_tasks_store *st, const char *token)
{
    char member[FM_TASKS_JOURNAL_MAX], *end;
    const char *semi, *m;
    unsigned long n;

    if (token == NULL)
        return FM_OK;
    /* "<rev>;<len>:<member>," (token_of) */
    if ((semi = strchr(token, ';')) == NULL)
        return FM_EINVAL;
    errno = 0;
    n = strtoul(semi + 1, &end, 10);
    if (errno != 0 || end == semi + 1 || *end != ':' || n == 0 || n >= sizeof(member) ||
        strnlen(end + 1, n + 1) < n + 1 || end[1 + n] != ',')
        return FM_EINVAL;
    m = end + 1;
    memcpy(member, m, n);
    member[n] = '\0';
    return fm_tasks_forget(st, member);
}

void fm_tasks_unacked_free(fm_tasks_pending *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(out[i].member);
        cJSON_Delete(out[i].task);
        out[i].member = NULL;
        out[i].task = NULL;
    }
}

/* Copies the next space-separated word of *s (at most size - 1 bytes) into out; false if none. */
static bool next_word(const char **s, char *out, size_t size)
{
    size_t n = strcspn(*s, " ");

    if (n == 0 || n >= size)
        return false;
    memcpy(out, *s, n);
    out[n] = '\0';
    *s += n + ((*s)[n] == ' ');
    return true;
}

/* Reads member "<ms> <id> <event> <trace_id> <actor>" (journal()) into u; false if not one. */
static bool unacked_of(const char *member, fm_tasks_pending *u)
{
    char ms[24];
    const char *s = member;

    return next_word(&s, ms, sizeof(ms)) && strspn(ms, "0123456789") == strlen(ms) &&
           next_word(&s, u->id, sizeof(u->id)) && is_uuid(u->id) &&
           next_word(&s, u->event, sizeof(u->event)) && strncmp(u->event, "task.", 5) == 0 &&
           next_word(&s, u->trace_id, sizeof(u->trace_id)) &&
           next_word(&s, u->actor, sizeof(u->actor)) && *s == '\0';
}

fm_err fm_tasks_unacked(const fm_tasks_store *st, long grace_ms, size_t max, fm_tasks_pending *out,
                        size_t *n)
{
    char graces[24], maxs[24];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    *n = 0;
    if (max == 0 || grace_ms < 0 || keys_fit(st->prefix, NULL, NULL, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(graces, sizeof(graces), "%ld", grace_ms);
    (void)snprintf(maxs, sizeof(maxs), "%zu", max);
    {
        const char *argv[] = {st->prefix, graces, maxs};
        reply = fm_redis_eval(st->redis, &fm_taskscript_unacked, 0, 3, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements > max)
        goto done;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            goto done;
    }
    rc = FM_OK;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        fm_tasks_pending *u = &out[i];

        memset(u, 0, sizeof(*u));
        if ((u->member = strdup(e->element[0]->str)) == NULL)
            rc = FM_ESYS;
        u->valid = unacked_of(e->element[0]->str, u);
        if (!u->valid)
            u->id[0] = u->event[0] = u->trace_id[0] = u->actor[0] = '\0';
        else if (e->element[1]->elements > 0 &&
                 (u->task = fm_taskrecord_compose(e->element[1])) == NULL &&
                 fm_taskrecord_field(e->element[1], "spec") != NULL)
            rc = FM_ESYS; /* a task, not composed: out of memory */
    }
    if (rc == FM_OK) {
        *n = reply->elements;
    } else {
        fm_tasks_unacked_free(out, reply->elements);
        errno = ENOMEM;
    }
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}
