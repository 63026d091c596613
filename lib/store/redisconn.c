/*
 * redisconn.c - a worker's Redis connection: lazy connect, AUTH, SELECT,
 * timeouts on every operation, drop-and-reconnect on error.
 */
#include "redisconn.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct fm_redis {
    redisContext *ctx;
    char *unix_path; /* set for unix: addresses */
    char *host;      /* set for host:port */
    int port;
    char *password;
    int db;
    struct timeval timeout;
    char err[192];
};

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

fm_redis *fm_redis_new(const char *addr, const char *password, int db, int timeout_ms)
{
    fm_redis *r;

    if (addr == NULL || timeout_ms <= 0 || db < 0) {
        errno = EINVAL;
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (parse_addr(r, addr) != 0)
        goto fail;
    if (password != NULL && (r->password = strdup(password)) == NULL)
        goto fail;
    r->db = db;
    r->timeout.tv_sec = timeout_ms / 1000;
    r->timeout.tv_usec = (timeout_ms % 1000) * 1000;
    return r;
fail:
    fm_redis_free(r);
    errno = EINVAL;
    return NULL;
}

static void drop(fm_redis *r, const char *why)
{
    if (r->ctx != NULL) {
        /* hiredis's errstr carries socket errors only, never command arguments. */
        (void)snprintf(r->err, sizeof(r->err), "%s: %s", why,
                       r->ctx->err ? r->ctx->errstr : "error reply");
        redisFree(r->ctx);
        r->ctx = NULL;
    } else {
        (void)snprintf(r->err, sizeof(r->err), "%s", why);
    }
}

void fm_redis_free(fm_redis *r)
{
    if (r == NULL)
        return;
    if (r->ctx != NULL)
        redisFree(r->ctx);
    if (r->password != NULL) {
        sodium_memzero(r->password, strlen(r->password));
        free(r->password);
    }
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

static int connect_now(fm_redis *r)
{
    char dbs[16];

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
        const char *argv[] = {"AUTH", r->password};
        if (setup_command(r, "AUTH refused", 2, argv) != 0)
            return -1;
    }
    if (r->db != 0) {
        const char *argv[] = {"SELECT", dbs};
        (void)snprintf(dbs, sizeof(dbs), "%d", r->db);
        if (setup_command(r, "SELECT refused", 2, argv) != 0)
            return -1;
    }
    r->err[0] = '\0';
    return 0;
}

redisReply *fm_redis_argv(fm_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    redisReply *reply;

    if (r->ctx == NULL && connect_now(r) != 0)
        return NULL;
    reply = redisCommandArgv(r->ctx, argc, argv, argvlen);
    if (reply == NULL) {
        drop(r, "command");
        return NULL;
    }
    return reply;
}

static int load_script(fm_redis *r, fm_redis_script *script)
{
    const char *argv[] = {"SCRIPT", "LOAD", script->source};
    redisReply *reply = fm_redis_argv(r, 3, argv, NULL);
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
        reply = fm_redis_argv(r, argc + 3, args, NULL);
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
