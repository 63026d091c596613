/*
 * sentinel.c - asking Redis Sentinel where the master is (sentinel.h).
 *
 * Each question is a connection of its own, closed after the answer: a
 * worker asks only when it makes a Redis connection (at start, after losing
 * one, after a READONLY), so keeping sentinel connections open would save
 * little and cost a descriptor per sentinel per process. The list is tried
 * from the last sentinel that answered, so a dead sentinel costs its timeout
 * once, not on every question.
 */
#include "sentinel.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

typedef struct endpoint {
    char host[FM_SENTINEL_HOST_MAX]; /* without the brackets of "[v6]" */
    int port;
} endpoint;

struct fm_sentinel {
    endpoint list[FM_SENTINEL_MAX];
    size_t n;
    size_t last; /* the sentinel that answered last (or is to be asked next) */
    char master_name[FM_SENTINEL_NAME_MAX];
    char *username; /* NULL: AUTH <password> */
    char *password; /* NULL: no AUTH */
    struct timeval timeout;
    bool probe_authed; /* the probe in flight has had its AUTH answered */
};

/* Strict "1..65535". */
static int parse_port(const char *s, size_t len)
{
    long port = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? (int)port : -1;
}

static int parse_endpoint(endpoint *e, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    const char *host = addr;
    size_t hlen;

    if (colon == NULL || (e->port = parse_port(colon + 1, strlen(colon + 1))) < 0)
        return -1;
    hlen = (size_t)(colon - addr);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(e->host) || memchr(host, '\0', hlen) != NULL)
        return -1;
    memcpy(e->host, host, hlen);
    e->host[hlen] = '\0';
    return 0;
}

static void wipe_free(char *secret)
{
    if (secret != NULL) {
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
}

fm_sentinel *fm_sentinel_new(const char *const *addrs, size_t n, const char *master_name,
                             const char *username, const char *password, int timeout_ms)
{
    fm_sentinel *s;
    size_t nlen = master_name != NULL ? strlen(master_name) : 0;

    if (addrs == NULL || n == 0 || n > FM_SENTINEL_MAX || nlen == 0 ||
        nlen >= FM_SENTINEL_NAME_MAX || timeout_ms <= 0 || (username != NULL && password == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (addrs[i] == NULL || parse_endpoint(&s->list[i], addrs[i]) != 0) {
            free(s);
            errno = EINVAL;
            return NULL;
        }
    }
    s->n = n;
    memcpy(s->master_name, master_name, nlen + 1);
    s->timeout.tv_sec = timeout_ms / 1000;
    s->timeout.tv_usec = (timeout_ms % 1000) * 1000;
    if ((username != NULL && (s->username = strdup(username)) == NULL) ||
        (password != NULL && (s->password = strdup(password)) == NULL)) {
        fm_sentinel_free(s);
        errno = ENOMEM;
        return NULL;
    }
    return s;
}

void fm_sentinel_free(fm_sentinel *s)
{
    if (s == NULL)
        return;
    wipe_free(s->username);
    wipe_free(s->password);
    free(s);
}

/* Queues [AUTH] and the question on c (blocking or not). 0, or -1 out of memory. */
static int append_question(const fm_sentinel *s, redisContext *c)
{
    const char *q[] = {"SENTINEL", "get-master-addr-by-name", s->master_name};

    if (s->password != NULL) {
        const char *auth[] = {"AUTH", s->username != NULL ? s->username : s->password, s->password};
        int argc = s->username != NULL ? 3 : 2;

        if (redisAppendCommandArgv(c, argc, auth, NULL) != REDIS_OK)
            return -1;
    }
    return redisAppendCommandArgv(c, 3, q, NULL) == REDIS_OK ? 0 : -1;
}

/* The answer to the question: ["host", "port"]; nil when the sentinel does not know the name. */
static const char *parse_answer(const redisReply *a, char host[FM_SENTINEL_HOST_MAX], int *port)
{
    if (a->type == REDIS_REPLY_NIL)
        return "does not know master_name";
    if (a->type == REDIS_REPLY_ERROR)
        return "refused the question";
    if (a->type != REDIS_REPLY_ARRAY || a->elements != 2 ||
        a->element[0]->type != REDIS_REPLY_STRING || a->element[1]->type != REDIS_REPLY_STRING ||
        a->element[0]->len == 0 || a->element[0]->len >= FM_SENTINEL_HOST_MAX ||
        memchr(a->element[0]->str, '\0', a->element[0]->len) != NULL ||
        (*port = parse_port(a->element[1]->str, a->element[1]->len)) < 0)
        return "gave a malformed answer";
    memcpy(host, a->element[0]->str, a->element[0]->len + 1);
    return NULL;
}

/* Reads one reply on blocking c; NULL with *why (and *timed_out) on failure. */
static redisReply *next_reply(redisContext *c, const char **why, bool *timed_out)
{
    void *reply = NULL;

    errno = 0;
    if (redisGetReply(c, &reply) != REDIS_OK || reply == NULL) {
        *timed_out = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
        *why = *timed_out ? "timed out" : "closed the connection";
        return NULL;
    }
    return reply;
}

/* Asks sentinel e; NULL on success, else why not (*timed_out: by a timeout). */
static const char *ask(const fm_sentinel *s, const endpoint *e, char host[FM_SENTINEL_HOST_MAX],
                       int *port, bool *timed_out)
{
    redisContext *c;
    redisReply *reply = NULL;
    const char *why = NULL;

    errno = 0;
    c = redisConnectWithTimeout(e->host, e->port, s->timeout);
    if (c == NULL)
        return "out of memory";
    if (c->err != 0) {
        *timed_out = errno == ETIMEDOUT || errno == EINPROGRESS;
        why = *timed_out ? "timed out" : "cannot be reached";
        goto out;
    }
    if (redisSetTimeout(c, s->timeout) != REDIS_OK || append_question(s, c) != 0) {
        why = "cannot be reached";
        goto out;
    }
    if (s->password != NULL) {
        if ((reply = next_reply(c, &why, timed_out)) == NULL)
            goto out;
        if (reply->type == REDIS_REPLY_ERROR) {
            why = "refused the AUTH";
            goto out;
        }
        freeReplyObject(reply);
    }
    if ((reply = next_reply(c, &why, timed_out)) != NULL)
        why = parse_answer(reply, host, port);
out:
    if (reply != NULL)
        freeReplyObject(reply);
    redisFree(c);
    return why;
}

fm_err fm_sentinel_master(fm_sentinel *s, char host[FM_SENTINEL_HOST_MAX], int *port, char *err,
                          size_t errlen)
{
    bool any_timeout = false;

    for (size_t k = 0; k < s->n; k++) {
        size_t i = (s->last + k) % s->n;
        bool timed_out = false;
        const char *why = ask(s, &s->list[i], host, port, &timed_out);

        if (why == NULL) {
            s->last = i;
            return FM_OK;
        }
        any_timeout = any_timeout || timed_out;
        (void)snprintf(err, errlen, "sentinel %s:%d %s", s->list[i].host, s->list[i].port, why);
    }
    errno = any_timeout ? ETIMEDOUT : ECONNREFUSED;
    return FM_EREDIS;
}

redisContext *fm_sentinel_probe_start(fm_sentinel *s)
{
    const endpoint *e = &s->list[s->last];
    redisContext *c = redisConnectNonBlock(e->host, e->port);

    s->probe_authed = false;
    if (c != NULL && c->err == 0 && append_question(s, c) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int fm_sentinel_probe_answer(fm_sentinel *s, redisContext *c, char host[FM_SENTINEL_HOST_MAX],
                             int *port)
{
    void *reply = NULL;
    int done, rc = -1;

    if (c->err != 0 || redisBufferWrite(c, &done) != REDIS_OK || redisBufferRead(c) != REDIS_OK ||
        redisGetReplyFromReader(c, &reply) != REDIS_OK)
        goto fail;
    if (reply == NULL)
        return 0;
    /* The AUTH's reply comes first; the question's may still be on its way. */
    if (s->password != NULL && !s->probe_authed) {
        bool refused = ((redisReply *)reply)->type == REDIS_REPLY_ERROR;

        freeReplyObject(reply);
        reply = NULL;
        if (refused)
            goto fail;
        s->probe_authed = true;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
            goto fail;
        if (reply == NULL)
            return 0;
    }
    if (parse_answer(reply, host, port) == NULL)
        rc = 1;
    freeReplyObject(reply);
    if (rc == 1)
        return 1;
fail:
    s->last = (s->last + 1) % s->n;
    return -1;
}
