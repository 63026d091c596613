/*
 * wsconn.h - the registry of open WebSockets, in Redis (SPEC 4.2).
 *
 * Each /ws connection that passed the pipeline is registered before nginx
 * upgrades it, under its connection id (32 hex: its control channel is
 * "c.<id>"), with who opened it: user, key id, channel kind and when. The
 * event relay reads the registry to find the sockets of a key that a reload
 * removed or that expired, marks each with its close reason and has nchan
 * close it; nginx's unsubscribe callback then ends the entry, which gives the
 * audit record of the close its duration and reason. An entry that is still
 * there after a close was asked for is how the relay knows that nchan did not
 * close the socket (nchan 1.3.6 loses deletions of multiplexed channels
 * across nginx workers), and asks again.
 *
 * Layout: one hash per front-door host, "<prefix>ws:<host>", field the
 * connection id, value "<user> <key_id> <kind> <opened_ms>"; and
 * "<prefix>ws:<host>:closing", field the connection id, value the close
 * reason the relay gave. Per host, because a socket lives in one host's nginx
 * and only that host's relay can close it.
 */
#ifndef FM_WSCONN_H
#define FM_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "redisconn.h"

#define FM_WSCONN_ID_SIZE 33    /* 32 hex and NUL */
#define FM_WSCONN_USER_MAX 64   /* a user name (config.h FM_NAME_MAX) */
#define FM_WSCONN_KEY_ID_MAX 16 /* a key id (config.h FM_KEY_ID_LEN + 1) */
#define FM_WSCONN_KIND_MAX 8    /* "user", "all", "queue" */
#define FM_WSCONN_REASON_MAX 32 /* a close reason: [a-z_]+ */
#define FM_WSCONN_HOST_MAX 64   /* the host part of the keys */

typedef struct fm_wsconn {
    char id[FM_WSCONN_ID_SIZE];
    char user[FM_WSCONN_USER_MAX];
    char key_id[FM_WSCONN_KEY_ID_MAX];
    char kind[FM_WSCONN_KIND_MAX];
    int64_t opened_ms;                 /* Unix time, ms */
    char reason[FM_WSCONN_REASON_MAX]; /* close reason given by fm_wsconn_mark; "" = none */
} fm_wsconn;

/* Where the registry lives: one handle, the key prefix and this host's name. */
typedef struct fm_wsconn_store {
    fm_redis *redis;
    const char *prefix;
    const char *host; /* fm_wsconn_host */
} fm_wsconn_store;

/*
 * fm_wsconn_host - this host's name for the registry keys: gethostname(2)
 * with every byte outside [A-Za-z0-9.-] replaced by '_', cut to
 * FM_WSCONN_HOST_MAX - 1 bytes; "localhost" when it cannot be read. out gets
 * FM_WSCONN_HOST_MAX bytes, NUL-terminated.
 */
void fm_wsconn_host(char out[FM_WSCONN_HOST_MAX]);

/*
 * fm_wsconn_new_id - 128 random bits (libsodium), as 32 hex digits, into id.
 */
void fm_wsconn_new_id(char id[FM_WSCONN_ID_SIZE]);

/*
 * fm_wsconn_register - add c (id, user, key_id, kind, opened_ms; each string
 * without spaces) to the registry. FM_OK; FM_EINVAL for a field that is
 * empty, holds a space or does not fit a key; FM_EREDIS when Redis did not
 * take it (fm_redis_errstr).
 */
FM_MUST_CHECK fm_err fm_wsconn_register(const fm_wsconn_store *s, const fm_wsconn *c);

/*
 * fm_wsconn_end - remove connection id from the registry, atomically (one
 * script), and give what it held in *out with the close reason the relay
 * marked it with (or ""). *found false when it was not registered (out is
 * then zeroed but for id). FM_OK, FM_EINVAL (bad id), FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_wsconn_end(const fm_wsconn_store *s, const char *id, fm_wsconn *out,
                                   bool *found);

/*
 * fm_wsconn_get - what the registry holds for connection id (user, key_id,
 * kind, opened_ms; not its mark: reason is ""), into *out, leaving it
 * registered. *found
 * false when it is not registered (out is then zeroed but for id). FM_OK,
 * FM_EINVAL (bad id), FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_wsconn_get(const fm_wsconn_store *s, const char *id, fm_wsconn *out,
                                   bool *found);

/*
 * fm_wsconn_mark - record reason ([a-z_]+, shorter than FM_WSCONN_REASON_MAX)
 * as the close reason of connection id, which is about to be closed.
 * Marking an id that is not registered does nothing. FM_OK, FM_EINVAL,
 * FM_EREDIS.
 */
FM_MUST_CHECK fm_err fm_wsconn_mark(const fm_wsconn_store *s, const char *id, const char *reason);

/*
 * fm_wsconn_list - every registered connection of this host with its mark,
 * into *out (heap, the caller frees it with free(); NULL when none) and *n.
 * Entries that cannot be read (written by something else) are skipped.
 * FM_OK; FM_EREDIS; FM_ESYS (ENOMEM).
 */
FM_MUST_CHECK fm_err fm_wsconn_list(const fm_wsconn_store *s, fm_wsconn **out, size_t *n);

#endif
