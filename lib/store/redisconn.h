/*
 * redisconn.h - one worker's Redis connection (hiredis), made after fork.
 *
 * The connection is opened lazily on first use with redis.timeout_ms bounding
 * connect and every command, then AUTH (with redis.username, "AUTH user
 * password", which Debian's hiredis 0.14 sends as any command) and SELECT.
 * On any I/O or protocol error the context is dropped and the next call
 * makes a fresh one: Debian's
 * hiredis 0.14 does not keep timeouts across redisReconnect, so it is never
 * used. Scripts are run with EVALSHA and reloaded on NOSCRIPT (after SCRIPT
 * FLUSH or a Redis restart).
 *
 * Redis restarted (a dead connection): before a command is sent on a kept
 * connection, the socket is checked without blocking; one the peer has
 * closed is replaced by a fresh one first, so nothing is lost. When a command
 * still fails once connected, it is sent once more on a fresh connection if
 * that is safe: nothing of it was written (the write failed at once), or it
 * is idempotent (the read-only commands listed at fm_redis_argv, scripts
 * marked idempotent). A command that may have run (INCR, the token bucket)
 * is never sent twice; its call fails instead.
 *
 * Redis hung (stopped, stalled, unreachable): a circuit breaker, per handle
 * and so per worker process. One timeout (timeout_ms without an answer, on
 * connect, AUTH or a command) opens it: from then on every call fails at once
 * with no reply and fm_redis_errstr "circuit open: ...", without waiting and
 * without sending anything. While open, a probe runs beside the calls: a
 * non-blocking connection that sends PING (no AUTH, so no secret) and that
 * later calls only look at. The first probe starts FM_REDIS_PROBE_MS after
 * the timeout, and again FM_REDIS_PROBE_MS after a probe got no answer within
 * timeout_ms. The first call that finds an answer (any reply, even NOAUTH) or
 * a failed probe connection (Redis down: not hung) closes the breaker and is
 * itself a real attempt; so the breaker closes with the first call after
 * Redis answers, at most about FM_REDIS_PROBE_MS later. Only timeouts open
 * it: a refused connection or an error reply already fails fast. Why one
 * timeout and not several: a request makes several calls, and under
 * on_redis_error: allow each would wait in turn; a false trip (one slow
 * reply) costs one worker about FM_REDIS_PROBE_MS of fast failures (the
 * first probe is answered at once).
 */
#ifndef FM_REDISCONN_H
#define FM_REDISCONN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/*
 * FM_REDIS_KEY_MAX - bytes for any key lib/ builds, NUL included. What goes
 * into a key is bounded by the config: redis.key_prefix is 1 to 64 bytes,
 * user names are shorter than FM_NAME_MAX (at most 63 bytes), task ids are
 * 36-character UUIDs and client addresses at most 45 characters
 * (INET6_ADDRSTRLEN - 1). The longest key,
 * "<prefix>user:<name>:status:cancelled", takes 64 + 5 + 63 + 17 = 149
 * bytes; the rest is room for a new key kind.
 * fm_redis_key refuses a key that would not fit, so a value past these
 * bounds is an error, never a cut (and so wrong, or shared) key.
 */
#define FM_REDIS_KEY_MAX 160

typedef struct fm_redis fm_redis;

/* While the breaker is open, a probe starts at most this often (ms). */
#define FM_REDIS_PROBE_MS 250

/*
 * A Lua script; sha is filled by SCRIPT LOAD on first use (41 bytes with NUL).
 * idempotent: running it twice leaves the same data and gives the same reply
 * as running it once, so a call whose reply was lost may be sent again.
 * Leave it false (the default) for anything that counts, spends or
 * check-and-sets.
 */
typedef struct fm_redis_script {
    const char *source;
    char sha[41];
    bool idempotent;
} fm_redis_script;

/*
 * fm_redis_new - a direct handle (no sentinels) for addr ("unix:/path" or
 * "host:port"), username (an ACL user: "AUTH username password", Redis 6+;
 * NULL = "AUTH password", the default user; copied), password (NULL = no
 * AUTH, only with a NULL username; copied), db (0..15) and timeout_ms (> 0,
 * milliseconds). Does not connect. Returns a handle owned by the caller
 * (fm_redis_free), or NULL with errno EINVAL (bad addr, a username without a
 * password) or ENOMEM.
 */
fm_redis *fm_redis_new(const char *addr, const char *username, const char *password, int db,
                       int timeout_ms);

/*
 * fm_redis_open - a handle from options (fm_redis_new is the direct case).
 * With nsentinels > 0 (at most FM_SENTINEL_MAX), the master is found through
 * the sentinels ("host:port" each; master_name, 1..63 bytes; see sentinel.h)
 * on every connection the handle makes, and addr is not used: after connect
 * and AUTH the handle checks ROLE and refuses a server that is not the
 * master ("not the master: ..."; the call fails, the next one asks again).
 * It asks again on connection loss or a timeout (the connection is dropped,
 * so the next call connects afresh), and on an error reply READONLY,
 * MASTERDOWN or NOREPLICAS, which a server gives without running the command:
 * the connection is dropped and the command sent once more through a fresh
 * discovery. While the breaker is open the probe alternates between PING to
 * the master it knows and asking a sentinel: a sentinel naming another master
 * closes the breaker too, so a failover away from a hung master is seen
 * within about 2 x FM_REDIS_PROBE_MS.
 * username / password: AUTH [username] password to Redis (NULL password: no
 * AUTH; a username needs a password); sentinel_username / sentinel_password
 * the same for the sentinels. All strings are copied. db 0..15, timeout_ms >
 * 0 (bounds every connect and command, sentinels' included). Returns a handle
 * owned by the caller (fm_redis_free), or NULL with errno EINVAL (bad
 * address, sentinel list or name) or ENOMEM. Connects to nothing yet.
 */
typedef struct fm_redis_opts {
    const char *addr; /* "unix:/path" or "host:port"; ignored with sentinels */
    const char *const *sentinels;
    size_t nsentinels;
    const char *master_name;
    const char *username, *password;
    const char *sentinel_username, *sentinel_password;
    int db;
    int timeout_ms;
} fm_redis_opts;

fm_redis *fm_redis_open(const fm_redis_opts *o);

/* fm_redis_free - close, wipe the password copies, free. NULL is accepted. */
void fm_redis_free(fm_redis *r);

/*
 * fm_redis_argv - run one command given as argc arguments (argv[i] is
 * argvlen[i] bytes, binary safe). Returns the reply, owned by the caller
 * (freeReplyObject), which may be a REDIS_REPLY_ERROR; or NULL when the
 * command could not be sent or answered (connect failure, timeout, I/O error,
 * AUTH refused, circuit open), in which case the context has been dropped.
 * The reason is available from fm_redis_errstr. Retried once on a fresh
 * connection when the exchange fails (not the connect, not by a timeout) and
 * either nothing was written or the command is read-only (argv[0], any case):
 * GET MGET EXISTS TYPE STRLEN TTL PTTL HGET HMGET HGETALL HLEN ZRANGE
 * ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZCARD ZSCORE ZRANK SCARD SISMEMBER
 * SMEMBERS LRANGE LLEN PING TIME INFO DBSIZE ROLE. A timeout is never retried
 * (it opens the breaker).
 */
redisReply *fm_redis_argv(fm_redis *r, int argc, const char **argv, const size_t *argvlen);

/*
 * fm_redis_send - fire and forget: write one command (argc NUL-terminated
 * arguments, argc >= 1) without waiting for its reply, for commands whose
 * answer nobody needs (PUBLISH). The reply is read and discarded later: by
 * the next fm_redis_send, as far as it has arrived, and in full before the
 * next command on the handle is written, so that command still gets its own
 * reply (it waits, within timeout_ms per read, for the owed ones first; a
 * timeout there fails it like any timeout). Dropping the connection drops
 * the owed replies with it. Connects first when there is no connection, as
 * any call does (connect, AUTH and SELECT each bounded by timeout_ms); the
 * write itself is bounded by timeout_ms (send timeout) and a timeout opens
 * the breaker. While the breaker is open nothing is sent.
 * Returns FM_OK when the whole command was handed to the kernel (not proof
 * that Redis ran it); FM_EREDIS when it was not sent (breaker open, connect
 * or write failure; reason in fm_redis_errstr); FM_EINVAL for argc < 1.
 */
FM_MUST_CHECK fm_err fm_redis_send(fm_redis *r, int argc, const char **argv);

/*
 * fm_redis_cork / fm_redis_uncork - hold fm_redis_send's writes, as TCP_CORK
 * holds a socket's: between a cork and its uncork (they nest; r may be NULL)
 * a send appends its command to the handle's output buffer instead of
 * writing it, and the last uncork writes everything held at once, so that
 * the fire-and-forget commands of one request (a journal acknowledgement and
 * an event, say) cost one write(2) here and one read in Redis. Order is kept:
 * a command that waits for its reply writes what is held before it. While
 * corked, fm_redis_send's FM_OK means "queued"; a failure to write shows at
 * the uncork.
 * fm_redis_uncork returns FM_OK when the held commands were handed to the
 * kernel (or nothing was held, or an outer cork still holds them);
 * FM_EREDIS when the write failed: the connection is dropped with what it
 * held (reason in fm_redis_errstr; a timeout opens the breaker).
 */
void fm_redis_cork(fm_redis *r);
FM_MUST_CHECK fm_err fm_redis_uncork(fm_redis *r);

/*
 * fm_redis_eval - EVALSHA script with numkeys keys then arguments, all in
 * argv (argc entries, NUL-terminated strings). Loads the script on first use
 * and again on NOSCRIPT, retrying once. Returns as fm_redis_argv; the
 * EVALSHA is retried after a lost reply only when script->idempotent.
 */
redisReply *fm_redis_eval(fm_redis *r, fm_redis_script *script, int numkeys, int argc,
                          const char **argv);

/*
 * fm_redis_key - format a key (printf-style, e.g. "%stask:%s", prefix, id)
 * into key (FM_REDIS_KEY_MAX bytes). Returns FM_OK, or FM_EINVAL when the key
 * would not fit (key is then ""): the caller must not use it.
 */
FM_MUST_CHECK fm_err fm_redis_key(char key[FM_REDIS_KEY_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * fm_redis_ping - FM_OK when PING answers PONG; FM_EREDIS when Redis cannot
 * be reached or answers anything else (reason in fm_redis_errstr).
 */
fm_err fm_redis_ping(fm_redis *r);

/*
 * Pub/Sub (Redis's SUBSCRIBE): a handle given over to one subscription, for
 * nothing else afterwards.
 * fm_redis_subscribe - connect (AUTH as any call; an existing connection is
 * dropped first), SUBSCRIBE to channel and wait (timeout_ms) for Redis's
 * confirmation. FM_OK, or FM_EREDIS (fm_redis_errstr).
 * fm_redis_fd - the subscribed connection's descriptor, to poll(2) for
 * POLLIN; -1 when there is none.
 * fm_redis_message - the next complete reply on the subscription without
 * blocking: FM_OK with *msg a reply the caller frees (freeReplyObject); for a
 * message ["message", channel, payload]), or *msg NULL when none is complete
 * yet. FM_EREDIS when the connection was lost or sent garbage: it is dropped,
 * subscribe again.
 */
FM_MUST_CHECK fm_err fm_redis_subscribe(fm_redis *r, const char *channel);
int fm_redis_fd(const fm_redis *r);
FM_MUST_CHECK fm_err fm_redis_message(fm_redis *r, redisReply **msg);

/*
 * A subscribed connection says nothing while no message comes, so a server
 * that hangs (or a master that a failover left behind, stopped) cannot be
 * told from a quiet channel without asking. fm_redis_sub_ping writes PING on
 * the subscription (Redis allows it there; the answer, ["pong", ""], comes
 * through fm_redis_message like a message), bounded by timeout_ms: FM_OK
 * when written; FM_EREDIS when there is no subscription or the write failed
 * (the connection is then dropped: subscribe again). fm_redis_sub_drop
 * drops the subscription's connection (its keepalive got no answer):
 * fm_redis_fd is -1 afterwards, and the next fm_redis_subscribe connects
 * afresh (through the sentinels, when the handle has them).
 */
FM_MUST_CHECK fm_err fm_redis_sub_ping(fm_redis *r);
void fm_redis_sub_drop(fm_redis *r);

/* fm_redis_errstr - last error as a short message without secrets ("" when none). Static storage in
 * r. */
const char *fm_redis_errstr(const fm_redis *r);

#endif
