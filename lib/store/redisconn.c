/*
 * redisconn.c - a worker's Redis connection: lazy connect, AUTH, SELECT,
 * timeouts on every operation, drop-and-reconnect on error.
 *
 * One call (call()):
 *   breaker open, no probe answer yet      -> fail at once (probe())
 *   kept context whose socket shows EOF    -> drop it, connect fresh
 *   append the command, write it out, read the reply
 *   failed after connecting, no timeout,
 *     and (nothing written or idempotent)  -> once more on a fresh context
 *   reply                                  -> breaker closed
 *   timeout                                -> breaker open, first probe FM_REDIS_PROBE_MS later
 *   other failure (refused, EOF)           -> breaker stays closed: Redis is not hung
 * The probe is a separate non-blocking connection that sends PING without
 * AUTH and is only looked at by later calls, so that no call waits on a hung
 * server: while open every call returns at once, whatever the traffic.
 * "Nothing written" is read from hiredis's output buffer: it still holds the
 * whole command when the first write() failed (EPIPE: the peer is gone).
 *
 * Fire and forget (fm_redis_send): the command is written and its reply is
 * counted as owed (pending). Redis answers in order, so the owed replies come
 * before any later one: a send reads those already received without waiting,
 * and the next command waits for and discards the rest before it writes, so
 * it always reads its own reply. A dropped connection drops the debt with it.
 *
 * Through Sentinel (fm_redis_open with sentinels): every connection starts by
 * asking the sentinels for the master (sentinel.h) and ends its setup with
 * ROLE, so a stale answer during a failover is refused rather than written
 * to. Nothing else changes: whatever drops a connection (loss, timeout)
 * makes the next call ask again; READONLY, MASTERDOWN and NOREPLICAS (the
 * server refused before running anything) drop it too and the command is
 * sent once more, as an unsent command is. No +switch-master subscription:
 * Sentinel closes the clients of the servers it reconfigures (CLIENT KILL in
 * its failover), a dead master refuses connections, and a hung one times
 * out; each of those already leads here, and a subscription would be one
 * more connection per process to keep alive.
 */
#include "redisconn.h"

#include "metrics.h"
#include "sentinel.h"

#include <errno.h>
#include <hiredis/sds.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

struct fm_redis {
    redisContext *ctx;
    char *unix_path; /* set for unix: addresses */
    char *host;      /* set for host:port */
    int port;
    char *username; /* NULL: AUTH <password> */
    char *password;
    int db;
    fm_sentinel *sentinel; /* set: host and port come from it, on every connect */
    bool probe_sentinel;   /* the probe in flight (or the next) asks a sentinel */
    struct timeval timeout;
    bool timed_out;      /* the last drop was a timeout */
    bool open;           /* circuit breaker tripped */
    int64_t probe_ms;    /* while open and no probe in flight: when the next may start */
    redisContext *probe; /* non-blocking, unauthenticated: PING sent, reply awaited */
    int64_t probe_sent_ms;
    unsigned long pending; /* replies to fm_redis_send still owed on ctx */
    unsigned corked;       /* fm_redis_cork depth: sends are held in ctx's output buffer */
    int64_t heard_ms;      /* when ctx last gave a reply (monotonic); 0 = not since connect */
    char err[192];
};

/* A connection that gave a reply this recently is not looked at before the next command. */
#define FRESH_MS 50

static int64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_addr(fm_redis *r, const char *addr)
{
    const char *colon;
    char *end;
    long port;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (addr[5] != '/')
            return -1;
        r->unix_path = strdup(addr + 5);
        return r->unix_path != NULL ? 0 : -1;
    }
    colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr)
        return -1;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535)
        return -1;
    r->host = strndup(addr, (size_t)(colon - addr));
    r->port = (int)port;
    return r->host != NULL ? 0 : -1;
}

fm_redis *fm_redis_open(const fm_redis_opts *o)
{
    fm_redis *r;
    int saved = EINVAL;

    if (o == NULL || o->timeout_ms <= 0 || o->db < 0 ||
        (o->username != NULL && o->password == NULL) || (o->nsentinels == 0 && o->addr == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (o->nsentinels > 0) {
        r->sentinel = fm_sentinel_new(o->sentinels, o->nsentinels, o->master_name,
                                      o->sentinel_username, o->sentinel_password, o->timeout_ms);
        if (r->sentinel == NULL) {
            saved = errno;
            goto fail;
        }
    } else if (parse_addr(r, o->addr) != 0) {
        goto fail;
    }
    if ((o->password != NULL && (r->password = strdup(o->password)) == NULL) ||
        (o->username != NULL && (r->username = strdup(o->username)) == NULL)) {
        saved = ENOMEM;
        goto fail;
    }
    r->db = o->db;
    r->timeout.tv_sec = o->timeout_ms / 1000;
    r->timeout.tv_usec = (o->timeout_ms % 1000) * 1000;
    return r;
fail:
    fm_redis_free(r);
    errno = saved;
    return NULL;
}

fm_redis *fm_redis_new(const char *addr, const char *username, const char *password, int db,
                       int timeout_ms)
{
    fm_redis_opts o = {.addr = addr,
                       .username = username,
                       .password = password,
                       .db = db,
                       .timeout_ms = timeout_ms};

    if (addr == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return fm_redis_open(&o);
}

static void drop(fm_redis *r, const char *why)
{
    int saved = errno;

    /* hiredis reports a socket timeout (SO_RCVTIMEO, poll on connect) as an I/O error with errno.
     */
    r->timed_out = r->ctx != NULL && r->ctx->err == REDIS_ERR_IO &&
                   (saved == EAGAIN || saved == EWOULDBLOCK || saved == ETIMEDOUT);
    if (r->ctx != NULL) {
        /* hiredis's errstr carries socket errors only, never command arguments. */
        (void)snprintf(r->err, sizeof(r->err), "%s: %s", why,
                       r->ctx->err ? r->ctx->errstr : "error reply");
        redisFree(r->ctx);
        r->ctx = NULL;
    } else {
        (void)snprintf(r->err, sizeof(r->err), "%s", why);
    }
    r->pending = 0;
}

void fm_redis_free(fm_redis *r)
{
    if (r == NULL)
        return;
    if (r->ctx != NULL)
        redisFree(r->ctx);
    if (r->probe != NULL)
        redisFree(r->probe);
    if (r->password != NULL) {
        sodium_memzero(r->password, strlen(r->password));
        free(r->password);
    }
    if (r->username != NULL) {
        sodium_memzero(r->username, strlen(r->username));
        free(r->username);
    }
    fm_sentinel_free(r->sentinel);
    free(r->unix_path);
    free(r->host);
    free(r);
}

/* A command during setup; any failure or error reply drops the context. */
static int setup_command(fm_redis *r, const char *what, int argc, const char **argv)
{
    redisReply *reply = redisCommandArgv(r->ctx, argc, argv, NULL);
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;

    if (reply != NULL)
        freeReplyObject(reply);
    if (!ok)
        drop(r, what);
    return ok ? 0 : -1;
}

/* Where the master is now, from the sentinels, into host and port. */
static int discover(fm_redis *r)
{
    char host[FM_SENTINEL_HOST_MAX], why[160];
    int port;

    errno = 0;
    if (fm_sentinel_master(r->sentinel, host, &port, why, sizeof(why)) != FM_OK) {
        /* Hung sentinels open the breaker as a hung Redis would: calls must not wait on each. */
        r->timed_out = errno == ETIMEDOUT;
        (void)snprintf(r->err, sizeof(r->err), "no master from the sentinels: %s", why);
        return -1;
    }
    if (r->host == NULL || strcmp(r->host, host) != 0) {
        char *copy = strdup(host);

        if (copy == NULL) {
            (void)snprintf(r->err, sizeof(r->err), "connect: out of memory");
            return -1;
        }
        free(r->host);
        r->host = copy;
    }
    r->port = port;
    return 0;
}

/* The sentinels' answer may be stale (a failover under way): only a master is used. */
static int check_role(fm_redis *r)
{
    const char *argv[] = {"ROLE"};
    redisReply *reply = redisCommandArgv(r->ctx, 1, argv, NULL);
    bool answered = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                    reply->element[0]->type == REDIS_REPLY_STRING;
    bool master = answered && strcmp(reply->element[0]->str, "master") == 0;

    if (reply != NULL)
        freeReplyObject(reply);
    if (master)
        return 0;
    drop(r, "ROLE refused");
    if (answered)
        (void)snprintf(r->err, sizeof(r->err), "not the master: %s:%d (asking the sentinels again)",
                       r->host, r->port);
    return -1;
}

static int connect_now(fm_redis *r)
{
    char dbs[16];

    r->heard_ms = 0;
    if (r->sentinel != NULL && discover(r) != 0)
        return -1;
    if (r->unix_path != NULL)
        r->ctx = redisConnectUnixWithTimeout(r->unix_path, r->timeout);
    else
        r->ctx = redisConnectWithTimeout(r->host, r->port, r->timeout);
    if (r->ctx == NULL) {
        (void)snprintf(r->err, sizeof(r->err), "connect: out of memory");
        return -1;
    }
    if (r->ctx->err) {
        drop(r, "connect");
        return -1;
    }
    if (redisSetTimeout(r->ctx, r->timeout) != REDIS_OK) {
        drop(r, "set timeout");
        return -1;
    }
    if (r->password != NULL) {
        const char *argv[] = {"AUTH", r->username != NULL ? r->username : r->password, r->password};
        if (setup_command(r, "AUTH refused", r->username != NULL ? 3 : 2, argv) != 0)
            return -1;
    }
    if (r->db != 0) {
        const char *argv[] = {"SELECT", dbs};
        (void)snprintf(dbs, sizeof(dbs), "%d", r->db);
        if (setup_command(r, "SELECT refused", 2, argv) != 0)
            return -1;
    }
    if (r->sentinel != NULL && check_role(r) != 0)
        return -1;
    r->err[0] = '\0';
    return 0;
}

/*
 * Is the kept connection still open? A peer that closed it (Redis exited)
 * shows as EOF; pending bytes nobody asked for mean the stream is out of step.
 * Either way it is dropped before anything is sent on it.
 */
static bool still_open(const fm_redis *r)
{
    char c;
    ssize_t n;

    /*
     * A connection that answered a moment ago is taken as open without a look: a busy
     * worker saves a system call per command. Redis closing it within that moment (a
     * restart) shows on the next exchange instead, which fails as a lost connection
     * would a moment later (on a unix socket the write fails, so it is retried).
     */
    if (r->heard_ms != 0 && mono_ms() - r->heard_ms < FRESH_MS)
        return true;
    n = recv(r->ctx->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* How an attempt failed: what a second one could gain. */
typedef enum { FAIL_CONNECT, FAIL_UNSENT, FAIL_LOST } fail_kind;

/* Sends one command and reads its reply; on failure *how says whether any of it left. */
static redisReply *exchange(fm_redis *r, int argc, const char **argv, const size_t *argvlen,
                            fail_kind *how)
{
    void *reply = NULL;
    size_t len;
    int done = 0;

    *how = FAIL_UNSENT;
    if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK) {
        drop(r, "command");
        return NULL;
    }
    len = sdslen(r->ctx->obuf);
    errno = 0;
    while (!done) {
        if (redisBufferWrite(r->ctx, &done) != REDIS_OK) {
            *how = sdslen(r->ctx->obuf) == len ? FAIL_UNSENT : FAIL_LOST;
            drop(r, "command");
            return NULL;
        }
    }
    *how = FAIL_LOST;
    errno = 0;
    if (redisGetReply(r->ctx, &reply) != REDIS_OK || reply == NULL) {
        drop(r, "command");
        return NULL;
    }
    r->heard_ms = mono_ms();
    return reply;
}

/*
 * Reads and discards the replies owed to fm_redis_send on the kept connection:
 * with wait, all of them (each read bounded by timeout_ms); without, only those
 * already received. Returns 0, or -1 when the connection failed and was
 * dropped (r->timed_out tells whether by a timeout).
 */
/* Writes what sends left in the output buffer (see fm_redis_cork); -1 when the write fails (dropped). */
static int write_held(fm_redis *r)
{
    int done = 0;

    errno = 0;
    while (!done) {
        if (redisBufferWrite(r->ctx, &done) != REDIS_OK) {
            drop(r, "send");
            return -1;
        }
    }
    return 0;
}

static int drain(fm_redis *r, bool wait)
{
    /* A reply is only waited for once its command is on the wire. */
    if (wait && write_held(r) != 0)
        return -1;
    while (r->pending > 0) {
        struct pollfd pfd = {.fd = r->ctx->fd, .events = POLLIN};
        void *reply = NULL;

        if (redisGetReplyFromReader(r->ctx, &reply) != REDIS_OK)
            goto fail;
        if (reply != NULL) {
            freeReplyObject(reply);
            r->pending--;
            continue;
        }
        if (!wait && poll(&pfd, 1, 0) <= 0)
            return 0;
        errno = 0;
        if (redisBufferRead(r->ctx) != REDIS_OK)
            goto fail;
    }
    return 0;
fail:
    drop(r, "reading a sent command's reply");
    return -1;
}

/* One attempt, on the kept connection if it is still open, else on a fresh one. */
static redisReply *attempt(fm_redis *r, int argc, const char **argv, const size_t *argvlen,
                           fail_kind *how)
{
    *how = FAIL_CONNECT;
    r->timed_out = false;
    if (r->ctx != NULL && drain(r, true) != 0 && r->timed_out)
        return NULL;
    if (r->ctx != NULL && !still_open(r)) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    if (r->ctx == NULL && connect_now(r) != 0)
        return NULL;
    return exchange(r, argc, argv, argvlen, how);
}

static int64_t timeout_ms(const fm_redis *r)
{
    return (int64_t)r->timeout.tv_sec * 1000 + r->timeout.tv_usec / 1000;
}

static void probe_end(fm_redis *r, int64_t next_ms)
{
    redisFree(r->probe);
    r->probe = NULL;
    r->probe_ms = next_ms;
    /* Through Sentinel the probes take turns: the master known, then a sentinel. */
    r->probe_sentinel = r->sentinel != NULL && (!r->probe_sentinel || r->host == NULL);
}

/*
 * The sentinel's answer to a probe: a master other than the one known means
 * a failover, and the breaker closes (the next call asks the sentinels).
 */
static bool probe_sentinel(fm_redis *r, int64_t now)
{
    char host[FM_SENTINEL_HOST_MAX];
    int port = 0;
    int rc = fm_sentinel_probe_answer(r->sentinel, r->probe, host, &port);

    if (rc == 0) {
        if (now - r->probe_sent_ms >= timeout_ms(r))
            probe_end(r, now + FM_REDIS_PROBE_MS);
        return false;
    }
    if (rc == 1 && (r->host == NULL || strcmp(host, r->host) != 0 || port != r->port)) {
        probe_end(r, now);
        return true;
    }
    probe_end(r, now + FM_REDIS_PROBE_MS);
    return false;
}

/*
 * While the breaker is open: starts a probe when it is time, or looks (never
 * waits) for the answer of the one in flight. Any reply, even NOAUTH, shows
 * that Redis answers again; a probe whose connection fails (Redis down or
 * restarting) shows that it is not hung: either closes the breaker, and
 * real attempts say the rest. No answer within timeout_ms: the probe failed,
 * the next starts FM_REDIS_PROBE_MS later. Returns true when closed.
 */
static bool probe(fm_redis *r, int64_t now)
{
    void *reply = NULL;
    int done;

    if (r->probe == NULL) {
        if (now < r->probe_ms)
            return false;
        if (r->sentinel != NULL && r->host == NULL)
            r->probe_sentinel = true;
        if (r->probe_sentinel)
            r->probe = fm_sentinel_probe_start(r->sentinel);
        else
            r->probe = r->unix_path != NULL ? redisConnectUnixNonBlock(r->unix_path)
                                            : redisConnectNonBlock(r->host, r->port);
        if (r->probe == NULL)
            return false;
        r->probe_sent_ms = now;
        if (!r->probe_sentinel && r->probe->err == 0 &&
            redisAppendCommand(r->probe, "PING") != REDIS_OK) {
            probe_end(r, now + FM_REDIS_PROBE_MS);
            return false;
        }
    }
    if (r->probe_sentinel)
        return probe_sentinel(r, now);
    if (r->probe->err != 0 || redisBufferWrite(r->probe, &done) != REDIS_OK ||
        redisBufferRead(r->probe) != REDIS_OK ||
        redisGetReplyFromReader(r->probe, &reply) != REDIS_OK || reply != NULL) {
        if (reply != NULL)
            freeReplyObject(reply);
        probe_end(r, now);
        return true;
    }
    if (now - r->probe_sent_ms >= timeout_ms(r))
        probe_end(r, now + FM_REDIS_PROBE_MS);
    return false;
}

/* Whether a call may go ahead: the breaker is closed, or a probe just closed it. */
static bool breaker_allows(fm_redis *r)
{
    if (r->open && !probe(r, mono_ms())) {
        (void)snprintf(r->err, sizeof(r->err),
                       "circuit open: Redis timed out, waiting for it to answer a probe");
        return false;
    }
    r->open = false;
    return true;
}

/* After a failed call: a timeout opens the breaker, the first probe FM_REDIS_PROBE_MS later. */
static void breaker_note(fm_redis *r)
{
    if (r->timed_out) {
        r->open = true;
        r->probe_ms = mono_ms() + FM_REDIS_PROBE_MS;
    }
}

/*
 * A failed connect is not repeated (the server is down: a second try gains
 * nothing), nor a timeout (the server is hung: it would wait again).
 */
static double mono_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A command that got no reply, for /metrics: why. */
static void count_failure(const fm_redis *r)
{
    fm_metrics_inc(r->timed_out ? FM_MET_REDIS_ERR_TIMEOUT : FM_MET_REDIS_ERR_CONNECTION);
}

/*
 * Through Sentinel: an error reply a server gives instead of running the
 * command because it is not (or no longer safely) the master. The connection
 * is dropped so that the next attempt asks the sentinels; the reply is freed
 * and NULL returned, as for an unsent command. Anything else is returned.
 */
static redisReply *unless_moved(fm_redis *r, redisReply *reply, fail_kind *how)
{
    static const char *const codes[] = {"READONLY ", "MASTERDOWN ", "NOREPLICAS "};

    if (r->sentinel == NULL || reply == NULL || reply->type != REDIS_REPLY_ERROR ||
        reply->str == NULL)
        return reply;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strncmp(reply->str, codes[i], strlen(codes[i])) == 0) {
            freeReplyObject(reply);
            drop(r, "master moved");
            (void)snprintf(r->err, sizeof(r->err), "%.*s from %s:%d: asking the sentinels again",
                           (int)strlen(codes[i]) - 1, codes[i], r->host, r->port);
            r->timed_out = false;
            *how = FAIL_UNSENT;
            return NULL;
        }
    }
    return reply;
}

static redisReply *call(fm_redis *r, int argc, const char **argv, const size_t *argvlen,
                        bool idempotent)
{
    redisReply *reply;
    fail_kind how;
    double t0;

    if (!breaker_allows(r)) {
        fm_metrics_inc(FM_MET_REDIS_ERR_CIRCUIT);
        return NULL;
    }
    t0 = mono_s();
    reply = unless_moved(r, attempt(r, argc, argv, argvlen, &how), &how);
    if (reply == NULL && !r->timed_out && (how == FAIL_UNSENT || (how == FAIL_LOST && idempotent)))
        reply = unless_moved(r, attempt(r, argc, argv, argvlen, &how), &how);
    fm_metrics_redis_latency(mono_s() - t0);
    if (reply == NULL) {
        count_failure(r);
        breaker_note(r);
    } else if (reply->type == REDIS_REPLY_ERROR &&
               (reply->str == NULL || strncmp(reply->str, "NOSCRIPT", 8) != 0)) {
        /* NOSCRIPT is expected after a Redis restart: fm_redis_eval loads the script again. */
        fm_metrics_inc(FM_MET_REDIS_ERR_REPLY);
    }
    return reply;
}

/* Commands that only read: sending one twice changes nothing. */
static bool read_only(int argc, const char **argv, const size_t *argvlen)
{
    static const char *const names[] = {
        "GET",      "MGET",   "EXISTS",    "TYPE",          "STRLEN",
        "TTL",      "PTTL",   "HGET",      "HMGET",         "HGETALL",
        "HLEN",     "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
        "ZCARD",    "ZSCORE", "ZRANK",     "SCARD",         "SISMEMBER",
        "SMEMBERS", "LRANGE", "LLEN",      "PING",          "TIME",
        "INFO",     "DBSIZE", "ROLE",
    };
    size_t len;

    if (argc < 1)
        return false;
    len = argvlen != NULL ? argvlen[0] : strlen(argv[0]);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(argv[0], names[i], len) == 0)
            return true;
    return false;
}

redisReply *fm_redis_argv(fm_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    return call(r, argc, argv, argvlen, read_only(argc, argv, argvlen));
}

fm_err fm_redis_send(fm_redis *r, int argc, const char **argv)
{
    if (argc < 1 || argv == NULL) {
        (void)snprintf(r->err, sizeof(r->err), "send: no command");
        return FM_EINVAL;
    }
    if (!breaker_allows(r)) {
        fm_metrics_inc(FM_MET_REDIS_ERR_CIRCUIT);
        return FM_EREDIS;
    }
    r->timed_out = false;
    /* Owed replies that already came are read so they do not pile up; a closed peer shows here. */
    if (r->ctx != NULL && r->pending > 0)
        (void)drain(r, false);
    if (r->ctx != NULL && r->pending == 0 && !still_open(r)) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    if (r->ctx == NULL && connect_now(r) != 0)
        goto fail;
    if (redisAppendCommandArgv(r->ctx, argc, argv, NULL) != REDIS_OK) {
        drop(r, "send");
        goto fail;
    }
    r->pending++;
    if (r->corked == 0 && write_held(r) != 0)
        goto fail;
    return FM_OK;
fail:
    count_failure(r);
    breaker_note(r);
    return FM_EREDIS;
}

void fm_redis_cork(fm_redis *r)
{
    if (r != NULL)
        r->corked++;
}

fm_err fm_redis_uncork(fm_redis *r)
{
    if (r == NULL || r->corked == 0 || --r->corked > 0 || r->ctx == NULL)
        return FM_OK;
    if (write_held(r) == 0)
        return FM_OK;
    count_failure(r);
    breaker_note(r);
    return FM_EREDIS;
}

static int load_script(fm_redis *r, fm_redis_script *script)
{
    const char *argv[] = {"SCRIPT", "LOAD", script->source};
    redisReply *reply = call(r, 3, argv, NULL, true);
    int rc = -1;

    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(script->sha, reply->str, 40);
        script->sha[40] = '\0';
        rc = 0;
    } else {
        (void)snprintf(r->err, sizeof(r->err), "SCRIPT LOAD failed");
    }
    freeReplyObject(reply);
    return rc;
}

redisReply *fm_redis_eval(fm_redis *r, fm_redis_script *script, int numkeys, int argc,
                          const char **argv)
{
    const char *args[32];
    char nk[16];
    redisReply *reply = NULL;

    if (argc < 0 || argc > 29 || numkeys < 0 || numkeys > argc) {
        (void)snprintf(r->err, sizeof(r->err), "eval: bad argument count");
        return NULL;
    }
    (void)snprintf(nk, sizeof(nk), "%d", numkeys);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (script->sha[0] == '\0' && load_script(r, script) != 0)
            return NULL;
        args[0] = "EVALSHA";
        args[1] = script->sha;
        args[2] = nk;
        for (int i = 0; i < argc; i++)
            args[3 + i] = argv[i];
        reply = call(r, argc + 3, args, NULL, script->idempotent);
        if (reply == NULL || reply->type != REDIS_REPLY_ERROR ||
            strncmp(reply->str, "NOSCRIPT", 8) != 0)
            return reply;
        freeReplyObject(reply);
        reply = NULL;
        script->sha[0] = '\0';
    }
    (void)snprintf(r->err, sizeof(r->err), "script missing after reload");
    return NULL;
}

fm_err fm_redis_key(char key[FM_REDIS_KEY_MAX], const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(key, FM_REDIS_KEY_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= FM_REDIS_KEY_MAX) {
        key[0] = '\0';
        return FM_EINVAL;
    }
    return FM_OK;
}

fm_err fm_redis_ping(fm_redis *r)
{
    const char *argv[] = {"PING"};
    redisReply *reply = fm_redis_argv(r, 1, argv, NULL);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;

    if (reply != NULL)
        freeReplyObject(reply);
    return ok ? FM_OK : FM_EREDIS;
}

const char *fm_redis_errstr(const fm_redis *r)
{
    return r->err;
}

/* ---- Pub/Sub: a handle given over to one subscription ------------------------------ */

fm_err fm_redis_subscribe(fm_redis *r, const char *channel)
{
    const char *argv[] = {"SUBSCRIBE", channel};
    redisReply *reply;
    bool ok;

    if (r->ctx != NULL)
        drop(r, "resubscribe");
    if (connect_now(r) != 0)
        return FM_EREDIS;
    reply = redisCommandArgv(r->ctx, 2, argv, NULL);
    ok = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
         reply->element[0]->type == REDIS_REPLY_STRING &&
         strcasecmp(reply->element[0]->str, "subscribe") == 0;
    if (reply != NULL)
        freeReplyObject(reply);
    if (!ok) {
        drop(r, "SUBSCRIBE refused");
        return FM_EREDIS;
    }
    return FM_OK;
}

fm_err fm_redis_sub_ping(fm_redis *r)
{
    if (r->ctx == NULL)
        return FM_EREDIS;
    if (redisAppendCommand(r->ctx, "PING") != REDIS_OK) {
        drop(r, "subscription ping");
        return FM_EREDIS;
    }
    return write_held(r) == 0 ? FM_OK : FM_EREDIS;
}

void fm_redis_sub_drop(fm_redis *r)
{
    if (r->ctx != NULL)
        drop(r, "subscription: no answer to a ping");
}

int fm_redis_fd(const fm_redis *r)
{
    return r->ctx != NULL ? r->ctx->fd : -1;
}

fm_err fm_redis_message(fm_redis *r, redisReply **msg)
{
    struct pollfd p;
    void *reply = NULL;

    *msg = NULL;
    if (r->ctx == NULL)
        return FM_EREDIS;
    /* One read may have brought several messages: take those first, never block. */
    if (redisGetReplyFromReader(r->ctx, &reply) != REDIS_OK)
        goto lost;
    if (reply == NULL) {
        p = (struct pollfd){.fd = r->ctx->fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            return FM_OK;
        if (redisBufferRead(r->ctx) != REDIS_OK ||
            redisGetReplyFromReader(r->ctx, &reply) != REDIS_OK)
            goto lost;
    }
    *msg = reply;
    return FM_OK;
lost:
    drop(r, "subscription");
    return FM_EREDIS;
}
