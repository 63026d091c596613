/*
 * redisacl.c - the ACL rules of the product's Redis user (redisacl.h).
 *
 * The allowed commands are the union of two lists: SENT, what lib/store
 * sends itself (each row names its sender), and the names found in the
 * sources of the scripts, where every call is written
 * redis.call('NAME', ...) or redis.pcall('NAME', ...). A call written any
 * other way cannot be read here, so it fails the whole line rather than
 * leave its command out. The integration suite runs against a Redis with
 * these rules, so a command missing from SENT fails it.
 */
#include "redisacl.h"

#include "scripts.h"
#include "taskscripts.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_MAX 64   /* redis.key_prefix's bound, bytes */
#define NAME_MAX_LEN 32 /* longest command name read from a script, bytes */
#define NAMES_MAX 64    /* distinct commands at most */

/* Commands lib/store sends outside scripts; AUTH needs no rule. */
static const char *const SENT[] = {
    "ping",        /* fm_redis_ping: GET /health */
    "hgetall",     /* tasks.c: one task; wsconn.c: one connection */
    "zrem",        /* tasks.c: fm_tasks_settle, a journal member */
    "pttl",        /* bruteforce.c: how long a block lasts */
    "exists",      /* bruteforce.c: a known client */
    "set",         /* bruteforce.c: remember a client */
    "hset",        /* wsconn.c: a connection opens */
    "publish",     /* events.c: task events */
    "subscribe",   /* fm_redis_subscribe: the WebSocket relay (PING keeps it alive) */
    "role",        /* redisconn.c: a master found through the sentinels is checked */
    "script|load", /* fm_redis_eval: after a Redis restart forgot the scripts */
};

static fm_redis_script *const SCRIPTS[] = {
    &fm_taskscript_create,   &fm_taskscript_claim,       &fm_taskscript_heartbeat,
    &fm_taskscript_complete, &fm_taskscript_cancel,      &fm_taskscript_delete,
    &fm_taskscript_restore,  &fm_taskscript_sweep,       &fm_taskscript_unacked,
    &fm_taskscript_list,     &fm_bruteforce_fail_script, &fm_ratelimit_bucket_script,
    &fm_wsconn_end_script,   &fm_wsconn_mark_script,
};

struct names {
    char v[NAMES_MAX][NAME_MAX_LEN + 1];
    size_t n;
};

static fm_err add_name(struct names *ns, const char *name, size_t len)
{
    char lower[NAME_MAX_LEN + 1];

    if (len == 0 || len > NAME_MAX_LEN)
        return FM_EINVAL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[len] = '\0';
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], lower) == 0)
            return FM_OK;
    if (ns->n == NAMES_MAX)
        return FM_ETOOBIG;
    memcpy(ns->v[ns->n++], lower, len + 1);
    return FM_OK;
}

/* The command names of every redis.call / redis.pcall in source. */
static fm_err script_names(struct names *ns, const char *source)
{
    static const char *const calls[] = {"redis.call(", "redis.pcall("};

    for (size_t c = 0; c < 2; c++) {
        for (const char *p = strstr(source, calls[c]); p != NULL; p = strstr(p, calls[c])) {
            size_t len;
            char quote;
            fm_err rc;

            p += strlen(calls[c]);
            p += strspn(p, " ");
            quote = *p;
            if (quote != '\'' && quote != '"')
                return FM_EINVAL;
            p++;
            len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
            if (p[len] != quote)
                return FM_EINVAL;
            if ((rc = add_name(ns, p, len)) != FM_OK)
                return rc;
        }
    }
    return FM_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Appends printf text at *at of out (len bytes); FM_ETOOBIG when it does not fit. */
__attribute__((format(printf, 4, 5))) static fm_err put(char *out, size_t len, size_t *at,
                                                        const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len - *at)
        return FM_ETOOBIG;
    *at += (size_t)n;
    return FM_OK;
}

/* The SHA-1 of source in lower-case hex, as Redis names a script. */
static fm_err sha1_hex(const char *source, char hex[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(source, strlen(source), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return FM_ESYS;
    for (unsigned int i = 0; i < mdlen; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return FM_OK;
}

static fm_err write_rules(const char *prefix, int db, char *out, size_t len)
{
    struct names *ns = calloc(1, sizeof(*ns));
    size_t at = 0;
    char hex[41];
    fm_err rc = FM_OK;

    if (ns == NULL)
        return FM_ESYS;
    for (size_t i = 0; i < sizeof(SENT) / sizeof(SENT[0]) && rc == FM_OK; i++)
        rc = add_name(ns, SENT[i], strlen(SENT[i]));
    for (size_t i = 0; i < sizeof(SCRIPTS) / sizeof(SCRIPTS[0]) && rc == FM_OK; i++)
        rc = script_names(ns, SCRIPTS[i]->source);
    if (rc != FM_OK)
        goto out;
    qsort(ns->v, ns->n, sizeof(ns->v[0]), by_name);
    rc = put(out, len, &at, "resetkeys ~%s* resetchannels &%sevents -@all", prefix, prefix);
    for (size_t i = 0; i < ns->n && rc == FM_OK; i++)
        rc = put(out, len, &at, " +%s", ns->v[i]);
    if (rc == FM_OK && db > 0)
        rc = put(out, len, &at, " +select|%d", db);
    for (size_t i = 0; i < sizeof(SCRIPTS) / sizeof(SCRIPTS[0]) && rc == FM_OK; i++)
        if ((rc = sha1_hex(SCRIPTS[i]->source, hex)) == FM_OK)
            rc = put(out, len, &at, " +evalsha|%s", hex);
out:
    free(ns);
    return rc;
}

fm_err fm_redisacl_rules(const char *prefix, int db, char *out, size_t len)
{
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    fm_err rc;

    if (out == NULL || len == 0)
        return FM_ETOOBIG;
    out[0] = '\0';
    if (plen == 0 || plen > PREFIX_MAX ||
        strspn(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.-") !=
            plen ||
        db < 0 || db > 15)
        return FM_EINVAL;
    rc = write_rules(prefix, db, out, len);
    if (rc != FM_OK)
        out[0] = '\0';
    return rc;
}
