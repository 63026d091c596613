/*
 * wsrelay.c - the WebSocket relay (SPEC 4.2, 9): the one process per config
 * generation that feeds nchan and closes revoked keys' sockets.
 *
 * Events. The workers already PUBLISH every task event on Redis
 * ("<prefix>events", fire and forget: events.h). The relay SUBSCRIBEs to it
 * and POSTs each event to nchan's publisher location over its unix socket
 * (websocket.publisher; nchan.h; one connection kept open), to the channels of the task's owner
 * ("u.<user>"), the admins ("all") and, for task.created and task.requeued,
 * the workers ("queue"). Why a relay rather than a publish from each worker:
 * the request path keeps the one non-blocking write it has (no second
 * connection, no HTTP exchange per request, nothing to wait for while the
 * request is answered), a slow or restarting nginx delays only the relay, and
 * every front-door host's relay hears every host's events on the shared
 * Redis, so a subscriber on any host gets them (SPEC 9). The cost is one
 * more hop (Redis to the relay), well under a millisecond on loopback. An
 * event that cannot be delivered (nginx down, nchan refusing) is counted
 * and logged at most every WARN_INTERVAL_MS; nothing else waits on it.
 * While the subscription is down (Redis restarting) events are missed: Pub/Sub
 * keeps nothing, and the task's state in Redis stays the record.
 *
 * Revocation. Every SCAN_MS the relay reads this host's registry of open
 * sockets (wsconn.h) and checks each against its snapshot: a key that is no
 * longer in the file (removed, or the user gone), that has expired, that
 * lost jobs:read, or whose user now gets another channel, is marked with its
 * reason (key_revoked, key_expired, permission_revoked, channel_changed) and
 * its control channel "c.<id>" is deleted, which closes the socket. The mark
 * stays until nginx's close callback ends the entry, and the delete is sent
 * again on every scan until then: nchan 1.3.6 can lose the deletion of a
 * multiplexed channel when several nginx workers hold it, and its subscriber
 * counts stay stale after one, so the close is taken as done only when nginx
 * itself reports the socket closed. A channel nchan does not know (404) for
 * GONE_MS after the first delete has no socket on this host (the client
 * went away before subscribing, or nginx restarted): the relay ends the entry
 * itself and writes the close's audit record. It also looks for
 * the accepted sockets nginx no longer holds (see collect), GC_BATCH of them a
 * scan in turn, so that the event relay is never held up long by it (2,000
 * sockets are all looked at every 10 s). A reload starts a new relay
 * with the new snapshot, whose first scan runs at once; so a revoked key's
 * sockets close within about SCAN_MS of the new generation, well inside the
 * 2 s the spec allows.
 *
 * Process: as the sweeper (forked by the master, its own Redis connections
 * and audit writer after fork, signals only inside ppoll; TERM, INT, QUIT
 * stop it, USR1 reopens the logs). Process name "fetchml-wsrelay".
 *
 * The publisher token (nchan.h). The master opened websocket.publisher_token_file
 * (root's alone) while it was root; the relay is the one child that keeps the
 * descriptor. It reads the token once, closes the descriptor, registers the
 * token with the redaction filter, and sends it with every request. It runs
 * under the workers' account, so it first makes itself non-dumpable: a
 * compromised worker can then neither ptrace it nor read its memory or its
 * descriptors through /proc (the kernel already does so after the master's
 * drop from root; this holds when the master was started unprivileged too).
 * A 403 from nginx is a token that does not match nginx's verifier; it is
 * logged as an error, naming the file, never the token.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "app.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "nchan.h"
#include "redact.h"
#include "routes.h"
#include "wsauth.h"

#define SCAN_MS 250
#define GONE_MS 2000
#define GC_BATCH 50    /* accepted sockets looked for in nchan per scan, in turn */
#define GC_AGE_MS 5000 /* ... once registered this long (the upgrade is long done) */
#define PUBLISH_TIMEOUT_MS 1000
#define RESUBSCRIBE_MS 1000
#define SUB_IDLE_MS 1000   /* a subscription this quiet gets a PING (fm_redis_sub_ping) */
#define SUB_ANSWER_MS 1000 /* ... and is dropped when nothing came back this long after it */
#define WARN_INTERVAL_MS 10000

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t reopen_logs;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    reopen_logs = 1;
}

/* The snapshot's keys by key id, for the scans. */
typedef struct key_ref {
    const char *id;
    const fm_user *user;
    const fm_key *key;
} key_ref;

/* A connection being closed: when the first delete went out. */
typedef struct closing {
    char id[FM_WSCONN_ID_SIZE];
    int64_t first_ms;
} closing;

/* A warning that could repeat on every event or scan, logged at most every WARN_INTERVAL_MS. */
typedef struct throttle {
    int64_t last_ms; /* 0: never */
    unsigned long suppressed;
    bool error; /* logged as an error, not a warning */
} throttle;

static struct {
    const fm_config *cfg;
    const fm_audit_endpoint *audit_ep;
    fm_env env;
    fm_wsconn_store store;
    fm_redis *sub;
    fm_nchan *publisher; /* the publisher's socket (without "unix:"), its connection kept */
    int token_fd;        /* websocket.publisher_token_file, until init_token has read it */
    char token[FM_NCHAN_TOKEN_SIZE]; /* until init_env has given it to the publisher */
    char channel[FM_REDIS_KEY_MAX];
    sigset_t waitmask;
    key_ref *keys;
    size_t nkeys;
    closing *closing;
    size_t nclosing;
    int64_t next_subscribe_ms, next_scan_ms;
    int64_t sub_heard_ms, sub_ping_ms; /* last reply on the subscription; its PING (0: none) */
    size_t gc_cursor; /* where the next scan's GC_BATCH starts among the accepted sockets */
    unsigned long long delivered, failed;
    throttle publish_warn, scan_warn, subscribe_warn;
    throttle token_refused; /* 403s from nginx, on any request */
} s;

__attribute__((format(printf, 2, 3))) static void warn_throttled(throttle *t, const char *fmt, ...)
{
    int64_t now = fm_clock_now_ms();
    char msg[512];
    va_list ap;

    if (t->last_ms != 0 && now >= t->last_ms && now - t->last_ms < WARN_INTERVAL_MS) {
        t->suppressed++;
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fm_log(t->error ? FM_LOG_ERROR : FM_LOG_WARN,
           "websocket relay: %s (%lu more like this since the last one)", msg, t->suppressed);
    t->last_ms = now;
    t->suppressed = 0;
}

/*
 * Whether a publisher request failed on the token (403): logged as such, with
 * the file to look at. The other failures are left to the caller.
 */
static bool token_refused(int status)
{
    if (status != 403)
        return false;
    warn_throttled(&s.token_refused,
                   "nchan's publisher at %s refused the relay's token (403): the token in "
                   "websocket.publisher_token_file %s does not match the secure_link verifier of "
                   "nginx's publisher server (fetchml-admin publisher-token writes both; restart "
                   "fetchml-fcgi after replacing them)",
                   fm_nchan_path(s.publisher), s.cfg->websocket.publisher_token_file);
    return true;
}

/* ---- events ------------------------------------------------------------------------ */

/* The channels of one event; n of them into ch. */
static size_t channels_of(const cJSON *event, char ch[FM_NCHAN_CHANNELS_MAX][FM_NCHAN_CHANNEL_MAX])
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(event, "type");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(event, "task");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(task, "user");
    size_t n = 0;

    (void)snprintf(ch[n++], FM_NCHAN_CHANNEL_MAX, "all");
    if (cJSON_IsString(user) &&
        snprintf(ch[n], FM_NCHAN_CHANNEL_MAX, "u.%s", user->valuestring) < FM_NCHAN_CHANNEL_MAX &&
        fm_nchan_channel_ok(ch[n]))
        n++;
    if (cJSON_IsString(type) && (strcmp(type->valuestring, "task.created") == 0 ||
                                 strcmp(type->valuestring, "task.requeued") == 0))
        (void)snprintf(ch[n++], FM_NCHAN_CHANNEL_MAX, "queue");
    return n;
}

static void deliver(const char *payload, size_t len)
{
    char ch[FM_NCHAN_CHANNELS_MAX][FM_NCHAN_CHANNEL_MAX];
    const char *names[FM_NCHAN_CHANNELS_MAX];
    cJSON *event = cJSON_ParseWithLength(payload, len);
    size_t n;
    int status;

    if (!cJSON_IsObject(event)) {
        s.failed++;
        warn_throttled(&s.publish_warn, "an event on %s is not a JSON object; dropped", s.channel);
        cJSON_Delete(event);
        return;
    }
    n = channels_of(event, ch);
    cJSON_Delete(event);
    for (size_t i = 0; i < n; i++)
        names[i] = ch[i];
    if (fm_nchan_publish(s.publisher, names, n, payload, len, PUBLISH_TIMEOUT_MS, &status) ==
        FM_OK) {
        s.delivered++;
        return;
    }
    s.failed++;
    if (token_refused(status))
        return;
    warn_throttled(&s.publish_warn,
                   "could not deliver an event to nchan at %s (%s, status %d); %llu failed, %llu "
                   "delivered so far",
                   fm_nchan_path(s.publisher), status != 0 ? "unexpected answer" : strerror(errno),
                   status, s.failed, s.delivered);
}

/* Takes every complete message the subscription holds. */
static void drain(void)
{
    redisReply *msg;

    for (;;) {
        if (fm_redis_message(s.sub, &msg) != FM_OK) {
            warn_throttled(&s.subscribe_warn, "lost the subscription to %s (%s); resubscribing",
                           s.channel, fm_redis_errstr(s.sub));
            s.next_subscribe_ms = fm_clock_now_ms() + RESUBSCRIBE_MS;
            return;
        }
        if (msg == NULL)
            return;
        s.sub_heard_ms = fm_clock_now_ms();
        s.sub_ping_ms = 0;
        if (msg->type == REDIS_REPLY_ARRAY && msg->elements == 3 &&
            msg->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(msg->element[0]->str, "message") == 0 &&
            msg->element[2]->type == REDIS_REPLY_STRING)
            deliver(msg->element[2]->str, msg->element[2]->len);
        freeReplyObject(msg);
    }
}

/* Asks nchan about a channel, so that a token nginx refuses is logged before any event. */
static void check_token(void)
{
    bool exists;
    int status;

    if (fm_nchan_exists(s.publisher, "all", PUBLISH_TIMEOUT_MS, &exists, &status) != FM_OK)
        (void)token_refused(status);
}

static void subscribe(void)
{
    int64_t now = fm_clock_now_ms();

    if (fm_redis_fd(s.sub) >= 0 || now < s.next_subscribe_ms)
        return;
    if (fm_redis_subscribe(s.sub, s.channel) == FM_OK) {
        s.sub_heard_ms = now;
        s.sub_ping_ms = 0;
        fm_log_info("websocket relay %d: relaying %s to nchan at %s", (int)getpid(), s.channel,
                    fm_nchan_path(s.publisher));
        check_token();
        return;
    }
    s.next_subscribe_ms = now + RESUBSCRIBE_MS;
    warn_throttled(&s.subscribe_warn, "cannot subscribe to %s (%s); retrying every %d ms",
                   s.channel, fm_redis_errstr(s.sub), RESUBSCRIBE_MS);
}

/*
 * A hung server, or a master a failover left behind while stopped, keeps the
 * subscription open and silent: a quiet subscription is asked (PING) and
 * dropped when that gets no answer, and subscribe() then connects afresh,
 * through the sentinels when there are, so events flow again from the new
 * master about SUB_IDLE_MS + SUB_ANSWER_MS after the old one went quiet.
 */
static void keepalive(void)
{
    int64_t now = fm_clock_now_ms();

    if (fm_redis_fd(s.sub) < 0)
        return;
    if (s.sub_ping_ms != 0 && now - s.sub_ping_ms >= SUB_ANSWER_MS) {
        warn_throttled(&s.subscribe_warn,
                       "no answer on the subscription to %s within %d ms; "
                       "resubscribing",
                       s.channel, SUB_ANSWER_MS);
        fm_redis_sub_drop(s.sub);
        s.sub_ping_ms = 0;
        s.next_subscribe_ms = now;
        return;
    }
    if (s.sub_ping_ms != 0 || now - s.sub_heard_ms < SUB_IDLE_MS)
        return;
    if (fm_redis_sub_ping(s.sub) != FM_OK) {
        warn_throttled(&s.subscribe_warn, "lost the subscription to %s (%s); resubscribing",
                       s.channel, fm_redis_errstr(s.sub));
        s.next_subscribe_ms = now + RESUBSCRIBE_MS;
        return;
    }
    s.sub_ping_ms = now;
}

/* ---- revocation ---------------------------------------------------------------------- */

static int key_ref_cmp(const void *a, const void *b)
{
    return strcmp(((const key_ref *)a)->id, ((const key_ref *)b)->id);
}

/* Why the snapshot no longer accepts c's socket, or NULL when it does. */
static const char *refusal(const fm_wsconn *c, int64_t now_s)
{
    key_ref probe = {.id = c->key_id};
    const key_ref *k = bsearch(&probe, s.keys, s.nkeys, sizeof(*s.keys), key_ref_cmp);
    char channel[FM_WSAUTH_CHANNEL_MAX];
    const char *kind;

    if (k == NULL || strcmp(k->user->name, c->user) != 0)
        return "key_revoked";
    if (k->key->expires != 0 && k->key->expires <= now_s)
        return "key_expired";
    if (!fm_rbac_allows(k->user->effective, FM_PERM(FM_RES_JOBS, FM_ACT_READ)))
        return "permission_revoked";
    fm_wsauth_channel(k->user, channel, &kind);
    return strcmp(kind, c->kind) == 0 ? NULL : "channel_changed";
}

/* When the first delete of id went out, from the last scan's table; 0: none yet. */
static int64_t first_delete(const char *id)
{
    for (size_t i = 0; i < s.nclosing; i++)
        if (strcmp(s.closing[i].id, id) == 0)
            return s.closing[i].first_ms;
    return 0;
}

/* Asks nchan to close c; returns when the first delete went out (for the next scan's table). */
static int64_t close_socket(const fm_wsconn *c, const char *why, int64_t now_ms)
{
    char channel[FM_NCHAN_CHANNEL_MAX];
    int64_t first = first_delete(c->id);
    bool found;
    fm_wsconn ended;
    int status;

    if (c->reason[0] == '\0' && fm_wsconn_mark(&s.store, c->id, why) != FM_OK)
        warn_throttled(&s.scan_warn, "cannot mark a socket for closing (%s)",
                       fm_redis_errstr(s.env.redis));
    (void)snprintf(channel, sizeof(channel), "c.%s", c->id);
    if (fm_nchan_delete(s.publisher, channel, PUBLISH_TIMEOUT_MS, &status) != FM_OK) {
        if (!token_refused(status))
            warn_throttled(&s.scan_warn, "cannot ask nchan at %s to close a socket (%s, status %d)",
                           fm_nchan_path(s.publisher),
                           status != 0 ? "unexpected answer" : strerror(errno), status);
        return first != 0 ? first : now_ms;
    }
    if (first == 0)
        fm_log_info("websocket relay: closing a socket of user %s key_id %s: %s", c->user,
                    c->key_id, why);
    if (status != 404 || first == 0 || now_ms - first < GONE_MS)
        return first != 0 ? first : now_ms;
    /* Nothing on this host subscribes to it: no socket to wait for. */
    if (fm_wsconn_end(&s.store, c->id, &ended, &found) == FM_OK && found)
        (void)fm_route_ws_audit_close(&s.env, NULL, NULL, &ended, why, now_ms);
    return 0;
}

/*
 * An accepted socket whose control channel nchan does not hold is gone from
 * this nginx without a close callback: nginx's workers do not make one when a
 * reload or a stop ends their sockets. Its entry ends here, with the close's
 * audit record (reason "gone"; the duration runs to when it was noticed).
 */
static void collect(const fm_wsconn *c, int64_t now_ms)
{
    char channel[FM_NCHAN_CHANNEL_MAX];
    fm_wsconn ended;
    bool exists = true, found;
    int status;

    (void)snprintf(channel, sizeof(channel), "c.%s", c->id);
    if (fm_nchan_exists(s.publisher, channel, PUBLISH_TIMEOUT_MS, &exists, &status) != FM_OK) {
        (void)token_refused(status);
        return;
    }
    if (exists)
        return;
    if (fm_wsconn_end(&s.store, c->id, &ended, &found) == FM_OK && found)
        (void)fm_route_ws_audit_close(&s.env, NULL, NULL, &ended, "gone", now_ms);
}

static void scan(void)
{
    int64_t now_ms = fm_clock_now_ms(), now_s = (int64_t)time(NULL);
    closing *next = NULL;
    size_t n = 0, nnext = 0;
    fm_wsconn *list;
    size_t old = 0;  /* accepted sockets old enough to be looked for */
    size_t open = 0; /* registered and not being closed: the open-WebSockets gauge */

    if (fm_wsconn_list(&s.store, &list, &n) != FM_OK) {
        warn_throttled(&s.scan_warn, "cannot read the socket registry (%s)",
                       fm_redis_errstr(s.env.redis));
        return;
    }
    for (size_t i = 0; i < n && !stopping; i++) {
        const char *why = list[i].reason[0] != '\0' ? list[i].reason : refusal(&list[i], now_s);
        int64_t first;

        if (why == NULL) {
            open++;
            if (now_ms - list[i].opened_ms >= GC_AGE_MS) {
                size_t turn = old++;

                if (turn >= s.gc_cursor && turn < s.gc_cursor + GC_BATCH)
                    collect(&list[i], now_ms);
            }
            continue;
        }
        first = close_socket(&list[i], why, now_ms);
        if (first == 0)
            continue;
        if (next == NULL && (next = calloc(n, sizeof(*next))) == NULL)
            break; /* out of memory: the next scan starts the count again */
        memcpy(next[nnext].id, list[i].id, FM_WSCONN_ID_SIZE);
        next[nnext++].first_ms = first;
    }
    free(list);
    if (!stopping)
        fm_metrics_set(FM_MET_WEBSOCKETS_OPEN, (int64_t)open);
    s.gc_cursor = s.gc_cursor + GC_BATCH < old ? s.gc_cursor + GC_BATCH : 0;
    free(s.closing);
    s.closing = next;
    s.nclosing = nnext;
}

/* ---- start-up steps, in order; each logs its own failure ------------------------- */

static fm_err init_signals(void)
{
    static const fm_daemon_signal sigs[] = {
        {SIGTERM, on_stop}, {SIGINT, on_stop},  {SIGQUIT, on_stop}, {SIGUSR1, on_usr1},
        {SIGHUP, SIG_IGN},  {SIGPIPE, SIG_IGN}, {SIGCHLD, SIG_DFL},
    };

    (void)prctl(PR_SET_NAME, "fetchml-wsrelay");
    return fm_worker_signals(sigs, sizeof(sigs) / sizeof(sigs[0]), &s.waitmask);
}

static fm_err init_token(void)
{
    const char *path = s.cfg->websocket.publisher_token_file;
    char err[256] = "not opened by the master";
    fm_err rc = FM_ESYS;

    s.token_refused.error = true;
    if (prctl(PR_SET_DUMPABLE, 0) != 0) {
        fm_log_error("websocket relay %d: cannot start: cannot make itself non-dumpable: %s",
                     (int)getpid(), strerror(errno));
        return FM_ESYS;
    }
    if (s.token_fd >= 0) {
        rc = fm_nchan_token_read(s.token_fd, s.token, err, sizeof(err));
        (void)close(s.token_fd);
        s.token_fd = -1;
    }
    if (rc != FM_OK) {
        fm_log_error("websocket relay %d: cannot start: websocket.publisher_token_file %s: %s",
                     (int)getpid(), path != NULL ? path : "(not set)", err);
        return rc;
    }
    if (fm_redact_add_secret(s.token) != FM_OK) {
        fm_log_error("websocket relay %d: cannot start: cannot register the publisher token "
                     "with the redaction filter: %s",
                     (int)getpid(), strerror(errno));
        return FM_ESYS;
    }
    return FM_OK;
}

static fm_err init_env(void)
{
    const fm_config *cfg = s.cfg;

    if (fm_worker_env_open(cfg, s.audit_ep, "websocket relay", &s.env) != FM_OK)
        return FM_ESYS;
    s.store = fm_route_ws_store(&s.env);
    /* After "unix:", checked at load. */
    s.publisher = fm_nchan_open(cfg->websocket.publisher + 5, s.token);
    sodium_memzero(s.token, sizeof(s.token));
    s.sub = fm_worker_redis(cfg);
    if (s.publisher == NULL || s.sub == NULL ||
        fm_redis_key(s.channel, "%sevents", cfg->redis.key_prefix) != FM_OK) {
        fm_log_error("websocket relay %d: cannot start: out of memory", (int)getpid());
        return FM_ESYS;
    }
    return FM_OK;
}

/* Every key of the snapshot, sorted by key id: O(n log n) once, O(log n) per socket. */
static fm_err init_keys(void)
{
    const fm_config *cfg = s.cfg;
    size_t total = 0;

    for (size_t i = 0; i < cfg->auth.nusers; i++)
        total += cfg->auth.users[i].nkeys;
    if (total > 0 && (s.keys = calloc(total, sizeof(*s.keys))) == NULL) {
        fm_log_error("websocket relay %d: cannot start: out of memory", (int)getpid());
        return FM_ESYS;
    }
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        for (size_t j = 0; j < cfg->auth.users[i].nkeys; j++)
            s.keys[s.nkeys++] = (key_ref){.id = cfg->auth.users[i].keys[j].id,
                                          .user = &cfg->auth.users[i],
                                          .key = &cfg->auth.users[i].keys[j]};
    if (s.nkeys > 1)
        qsort(s.keys, s.nkeys, sizeof(*s.keys), key_ref_cmp);
    return FM_OK;
}

static fm_err (*const init_steps[])(void) = {
    init_signals,
    init_token,
    init_env,
    init_keys,
};

static void relay_loop(void)
{
    while (!stopping) {
        struct pollfd p = {.fd = -1, .events = POLLIN};
        int64_t now = fm_clock_now_ms(), wait_ms;
        struct timespec ts;

        if (reopen_logs) {
            reopen_logs = 0;
            if (fm_log_reopen() != 0 || fm_audit_reopen(s.env.audit) != 0)
                fm_log_error("websocket relay %d: reopening logs failed: %s", (int)getpid(),
                             strerror(errno));
        }
        if (now >= s.next_scan_ms) {
            scan();
            s.next_scan_ms = now + SCAN_MS;
        }
        subscribe();
        keepalive();
        p.fd = fm_redis_fd(s.sub);
        wait_ms = s.next_scan_ms - fm_clock_now_ms();
        if (wait_ms < 0)
            wait_ms = 0;
        ts = (struct timespec){wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
        if (ppoll(&p, 1, &ts, &s.waitmask) < 0 && errno != EINTR) {
            fm_log_error("websocket relay %d: ppoll failed: %s", (int)getpid(), strerror(errno));
            return;
        }
        if (p.fd >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0)
            drain();
    }
}

void fm_wsrelay_main(const fm_config *cfg, const fm_audit_endpoint *audit_ep, int token_fd)
{
    int status = 1;
    size_t i = 0;

    s.cfg = cfg;
    s.audit_ep = audit_ep;
    s.token_fd = token_fd;
    while (i < sizeof(init_steps) / sizeof(init_steps[0]) && init_steps[i]() == FM_OK)
        i++;
    if (i == sizeof(init_steps) / sizeof(init_steps[0])) {
        relay_loop();
        status = 0;
    }
    fm_redis_free(s.sub);
    fm_nchan_close(s.publisher);
    sodium_memzero(s.token, sizeof(s.token));
    if (s.token_fd >= 0)
        (void)close(s.token_fd);
    free(s.keys);
    free(s.closing);
    fm_worker_env_close(&s.env);
    exit(status);
}
