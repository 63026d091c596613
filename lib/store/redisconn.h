/*
 * redisconn.h - one worker's Redis connection (hiredis), made after fork.
 *
 * The connection is opened lazily on first use with redis.timeout_ms bounding
 * connect and every command, then AUTH and SELECT. On any I/O or protocol
 * error the context is dropped and the next call makes a fresh one: Debian's
 * hiredis 0.14 does not keep timeouts across redisReconnect, so it is never
 * used. Scripts are run with EVALSHA and reloaded on NOSCRIPT (after SCRIPT
 * FLUSH or a Redis restart).
 */
#ifndef FM_REDISCONN_H
#define FM_REDISCONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct fm_redis fm_redis;

/* A Lua script; sha is filled by SCRIPT LOAD on first use (41 bytes with NUL). */
typedef struct fm_redis_script {
    const char *source;
    char sha[41];
} fm_redis_script;

/*
 * fm_redis_new - a handle for addr ("unix:/path" or "host:port"), password
 * (NULL = no AUTH; copied), db (0..15) and timeout_ms (> 0, milliseconds).
 * Does not connect. Returns a handle owned by the caller (fm_redis_free), or
 * NULL with errno EINVAL (bad addr) or ENOMEM.
 */
fm_redis *fm_redis_new(const char *addr, const char *password, int db, int timeout_ms);

/* fm_redis_free - close, wipe the password copy, free. NULL is accepted. */
void fm_redis_free(fm_redis *r);

/*
 * fm_redis_argv - run one command given as argc arguments (argv[i] is
 * argvlen[i] bytes, binary safe). Returns the reply, owned by the caller
 * (freeReplyObject), which may be a REDIS_REPLY_ERROR; or NULL when the
 * command could not be sent or answered (connect failure, timeout, I/O error,
 * AUTH refused), in which case the context has been dropped. The reason is
 * available from fm_redis_errstr.
 */
redisReply *fm_redis_argv(fm_redis *r, int argc, const char **argv, const size_t *argvlen);

/*
 * fm_redis_eval - EVALSHA script with numkeys keys then arguments, all in
 * argv (argc entries, NUL-terminated strings). Loads the script on first use
 * and again on NOSCRIPT, retrying once. Returns as fm_redis_argv.
 */
redisReply *fm_redis_eval(fm_redis *r, fm_redis_script *script, int numkeys, int argc,
                          const char **argv);

/* fm_redis_ping - 0 when PING answers PONG, -1 otherwise. */
int fm_redis_ping(fm_redis *r);

/* fm_redis_errstr - last error as a short message without secrets ("" when none). Static storage in
 * r. */
const char *fm_redis_errstr(const fm_redis *r);

#endif
