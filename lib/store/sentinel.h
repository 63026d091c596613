/*
 * sentinel.h - where the Redis master is, asked of Redis Sentinel (SPEC 9).
 *
 * hiredis has no Sentinel support; this is the little of the Sentinel client
 * protocol (https://redis.io/docs/reference/sentinel-clients/) a worker needs:
 * ask the sentinels in turn, starting with the last one that answered,
 * "SENTINEL get-master-addr-by-name <master_name>" (after AUTH [username]
 * password when the sentinels want one), each exchange bounded by timeout_ms;
 * the first that names a master wins and is remembered. Checking that the
 * address really is the master (ROLE) is the caller's part: redisconn.c does
 * it on every connection it makes through here.
 *
 * The same question can be asked without blocking (fm_sentinel_probe_*),
 * for redisconn's circuit breaker: while the master it knows does not
 * answer, its probe asks a sentinel whether another one took over.
 */
#ifndef FM_SENTINEL_H
#define FM_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "err.h"

#define FM_SENTINEL_MAX 16       /* sentinels in one list */
#define FM_SENTINEL_HOST_MAX 256 /* a master's host as a sentinel names it, NUL included */
#define FM_SENTINEL_NAME_MAX 64  /* master_name: 1..63 bytes */

typedef struct fm_sentinel fm_sentinel;

/*
 * fm_sentinel_new - a list of n (1..FM_SENTINEL_MAX) sentinels, addrs[i]
 * "host:port" or "[v6]:port" (copied), watching master_name (1..63 bytes,
 * copied), with username (NULL: none; AUTH <password> alone) and password
 * (NULL: no AUTH at all) for the sentinels, both copied; timeout_ms (> 0)
 * bounds connect and each command. Connects to nothing yet. Returns a list
 * owned by the caller (fm_sentinel_free), or NULL with errno EINVAL (a bad
 * address, name or count; a username without a password) or ENOMEM.
 */
fm_sentinel *fm_sentinel_new(const char *const *addrs, size_t n, const char *master_name,
                             const char *username, const char *password, int timeout_ms);

/* fm_sentinel_free - wipe the password copy, free. NULL is accepted. */
void fm_sentinel_free(fm_sentinel *s);

/*
 * fm_sentinel_master - ask the sentinels, in turn from the last one that
 * answered, for the master's address: host (FM_SENTINEL_HOST_MAX bytes,
 * NUL-terminated) and *port (1..65535). Each sentinel costs at most about
 * 3 x timeout_ms (connect, AUTH, the question); a sentinel that cannot be
 * reached, refuses the AUTH, does not know master_name or answers something
 * else is skipped. Returns FM_OK, or FM_EREDIS when none named a master,
 * with the last reason in err (errlen bytes; never a password) and errno
 * ETIMEDOUT when at least one sentinel timed out (else ECONNREFUSED).
 */
FM_MUST_CHECK fm_err fm_sentinel_master(fm_sentinel *s, char host[FM_SENTINEL_HOST_MAX], int *port,
                                        char *err, size_t errlen);

/*
 * fm_sentinel_probe_start - the same question without blocking, to the
 * sentinel that answered last: a non-blocking connection with the commands
 * queued (the caller owns it: redisFree), or NULL (out of memory).
 * fm_sentinel_probe_answer - looks, without waiting, at what probe c has
 * received: 1 with host and *port when the sentinel named the master, 0 when
 * nothing complete came yet, -1 when the probe failed (connection refused or
 * lost, AUTH refused, master unknown); the next probe then goes to the next
 * sentinel in the list.
 */
redisContext *fm_sentinel_probe_start(fm_sentinel *s);
int fm_sentinel_probe_answer(fm_sentinel *s, redisContext *c, char host[FM_SENTINEL_HOST_MAX],
                             int *port);

#endif
