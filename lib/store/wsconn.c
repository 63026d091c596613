/*
 * wsconn.c - the registry of open WebSockets (wsconn.h).
 *
 * Ending an entry reads and deletes it in one script, so that of nginx's
 * close callback and the relay's clean-up exactly one gets it (and writes the
 * close's audit record). Listing is one HGETALL of each hash: a host holds
 * as many entries as it has open sockets, which nginx bounds
 * (worker_connections).
 */
#include "wsconn.h"
#include "scripts.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char id_chars[] = "0123456789abcdef";
static const char word_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

fm_redis_script fm_wsconn_end_script = {
    .source = "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
              "local why = redis.call('HGET', KEYS[2], ARGV[1])\n"
              "redis.call('HDEL', KEYS[1], ARGV[1])\n"
              "redis.call('HDEL', KEYS[2], ARGV[1])\n"
              "return {v or '', why or ''}\n",
};

/* Only a registered connection is marked: a late mark must not outlive its entry. */
fm_redis_script fm_wsconn_mark_script = {
    .source = "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then\n"
              "  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
              "end\n"
              "return 1\n",
    .idempotent = true,
};

void fm_wsconn_host(char out[FM_WSCONN_HOST_MAX])
{
    size_t n;

    if (gethostname(out, FM_WSCONN_HOST_MAX) != 0 || out[0] == '\0') {
        (void)snprintf(out, FM_WSCONN_HOST_MAX, "localhost");
        return;
    }
    out[FM_WSCONN_HOST_MAX - 1] = '\0';
    n = strlen(out);
    for (size_t i = 0; i < n; i++)
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-", out[i]) ==
            NULL)
            out[i] = '_';
}

void fm_wsconn_new_id(char id[FM_WSCONN_ID_SIZE])
{
    unsigned char rnd[16];

    randombytes_buf(rnd, sizeof(rnd));
    (void)sodium_bin2hex(id, FM_WSCONN_ID_SIZE, rnd, sizeof(rnd));
}

static bool id_ok(const char *id)
{
    return id != NULL && strlen(id) == FM_WSCONN_ID_SIZE - 1 &&
           strspn(id, id_chars) == FM_WSCONN_ID_SIZE - 1;
}

/* A non-empty word of [A-Za-z0-9_.-] shorter than max. */
static bool word_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max);

    return n > 0 && n < max && strspn(s, word_chars) == n;
}

static fm_err keys(const fm_wsconn_store *s, char open[FM_REDIS_KEY_MAX],
                   char closing[FM_REDIS_KEY_MAX])
{
    if (fm_redis_key(open, "%sws:%s", s->prefix, s->host) != FM_OK ||
        fm_redis_key(closing, "%sws:%s:closing", s->prefix, s->host) != FM_OK)
        return FM_EINVAL;
    return FM_OK;
}

/* "<user> <key_id> <kind> <opened_ms>" into c (id and reason untouched); false if malformed. */
static bool parse_value(const char *v, fm_wsconn *c)
{
    char user[FM_WSCONN_USER_MAX], key_id[FM_WSCONN_KEY_ID_MAX], kind[FM_WSCONN_KIND_MAX];
    int64_t opened;
    char tail;

    if (sscanf(v, "%63s %15s %7s %" SCNd64 "%c", user, key_id, kind, &opened, &tail) != 4 ||
        !word_ok(user, sizeof(user)) || !word_ok(key_id, sizeof(key_id)) ||
        !word_ok(kind, sizeof(kind)) || opened < 0)
        return false;
    memcpy(c->user, user, sizeof(user));
    memcpy(c->key_id, key_id, sizeof(key_id));
    memcpy(c->kind, kind, sizeof(kind));
    c->opened_ms = opened;
    return true;
}

static void set_reason(fm_wsconn *c, const char *why, size_t len)
{
    c->reason[0] = '\0';
    if (len > 0 && len < sizeof(c->reason))
        (void)snprintf(c->reason, sizeof(c->reason), "%.*s", (int)len, why);
}

fm_err fm_wsconn_register(const fm_wsconn_store *s, const fm_wsconn *c)
{
    char open[FM_REDIS_KEY_MAX], closing[FM_REDIS_KEY_MAX], value[160];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    if (!id_ok(c->id) || !word_ok(c->user, sizeof(c->user)) ||
        !word_ok(c->key_id, sizeof(c->key_id)) || !word_ok(c->kind, sizeof(c->kind)) ||
        c->opened_ms < 0 || keys(s, open, closing) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(value, sizeof(value), "%s %s %s %" PRId64, c->user, c->key_id, c->kind,
                   c->opened_ms);
    {
        const char *argv[] = {"HSET", open, c->id, value};
        reply = fm_redis_argv(s->redis, 4, argv, NULL);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        rc = FM_OK;
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

/*
 * What a read of connection id starts with: *out empty but for the id,
 * *found false, the two hashes' keys. FM_EINVAL when id is no connection id
 * or a key does not fit.
 */
static fm_err read_begin(const fm_wsconn_store *s, const char *id, fm_wsconn *out, bool *found,
                         char open[FM_REDIS_KEY_MAX], char closing[FM_REDIS_KEY_MAX])
{
    memset(out, 0, sizeof(*out));
    *found = false;
    if (!id_ok(id) || keys(s, open, closing) != FM_OK)
        return FM_EINVAL;
    memcpy(out->id, id, FM_WSCONN_ID_SIZE);
    return FM_OK;
}

fm_err fm_wsconn_end(const fm_wsconn_store *s, const char *id, fm_wsconn *out, bool *found)
{
    char open[FM_REDIS_KEY_MAX], closing[FM_REDIS_KEY_MAX];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    if (read_begin(s, id, out, found, open, closing) != FM_OK)
        return FM_EINVAL;
    {
        const char *argv[] = {open, closing, id};
        reply = fm_redis_eval(s->redis, &fm_wsconn_end_script, 2, 3, argv);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        rc = FM_OK;
        if (reply->element[0]->len > 0 && parse_value(reply->element[0]->str, out)) {
            *found = true;
            set_reason(out, reply->element[1]->str, reply->element[1]->len);
        }
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

fm_err fm_wsconn_get(const fm_wsconn_store *s, const char *id, fm_wsconn *out, bool *found)
{
    char open[FM_REDIS_KEY_MAX], closing[FM_REDIS_KEY_MAX];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    if (read_begin(s, id, out, found, open, closing) != FM_OK)
        return FM_EINVAL;
    {
        const char *argv[] = {"HGET", open, id};
        reply = fm_redis_argv(s->redis, 3, argv, NULL);
    }
    if (reply != NULL && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL)) {
        rc = FM_OK;
        *found = reply->type == REDIS_REPLY_STRING && parse_value(reply->str, out);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

fm_err fm_wsconn_mark(const fm_wsconn_store *s, const char *id, const char *reason)
{
    char open[FM_REDIS_KEY_MAX], closing[FM_REDIS_KEY_MAX];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    if (!id_ok(id) || reason == NULL || strnlen(reason, FM_WSCONN_REASON_MAX) == 0 ||
        strnlen(reason, FM_WSCONN_REASON_MAX) >= FM_WSCONN_REASON_MAX ||
        strspn(reason, "abcdefghijklmnopqrstuvwxyz_") != strlen(reason) ||
        keys(s, open, closing) != FM_OK)
        return FM_EINVAL;
    {
        const char *argv[] = {open, closing, id, reason};
        reply = fm_redis_eval(s->redis, &fm_wsconn_mark_script, 2, 4, argv);
    }
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        rc = FM_OK;
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

/* HGETALL key into a fresh reply; NULL on failure. */
static redisReply *hgetall(fm_redis *r, const char *key)
{
    const char *argv[] = {"HGETALL", key};
    redisReply *reply = fm_redis_argv(r, 2, argv, NULL);

    if (reply != NULL && (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0)) {
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* The mark of id in the closing hash's reply, or NULL. */
static const redisReply *mark_of(const redisReply *closing, const char *id)
{
    for (size_t i = 0; closing != NULL && i + 1 < closing->elements; i += 2)
        if (closing->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(closing->element[i]->str, id) == 0)
            return closing->element[i + 1];
    return NULL;
}

fm_err fm_wsconn_list(const fm_wsconn_store *s, fm_wsconn **out, size_t *n)
{
    char open[FM_REDIS_KEY_MAX], closing[FM_REDIS_KEY_MAX];
    redisReply *all = NULL, *marks = NULL;
    fm_wsconn *list = NULL;
    size_t count = 0;
    fm_err rc = FM_EREDIS;

    *out = NULL;
    *n = 0;
    if (keys(s, open, closing) != FM_OK)
        return FM_EINVAL;
    if ((all = hgetall(s->redis, open)) == NULL || (marks = hgetall(s->redis, closing)) == NULL)
        goto done;
    if (all->elements > 0 && (list = calloc(all->elements / 2, sizeof(*list))) == NULL) {
        errno = ENOMEM;
        rc = FM_ESYS;
        goto done;
    }
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        const redisReply *f = all->element[i], *v = all->element[i + 1], *m;
        fm_wsconn *c = &list[count];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || !id_ok(f->str) ||
            !parse_value(v->str, c))
            continue;
        memcpy(c->id, f->str, FM_WSCONN_ID_SIZE);
        m = mark_of(marks, f->str);
        if (m != NULL && m->type == REDIS_REPLY_STRING)
            set_reason(c, m->str, m->len);
        count++;
    }
    *out = list;
    *n = count;
    list = NULL;
    rc = FM_OK;
done:
    free(list);
    if (all != NULL)
        freeReplyObject(all);
    if (marks != NULL)
        freeReplyObject(marks);
    return rc;
}
