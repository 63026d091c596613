/*
 * redisacl.h - the Redis ACL rules of the product's own user: exactly what
 * lib/store sends, and nothing else (Redis 7 ACL, redis.io/docs "ACL").
 *
 * The rules are derived from the code, never written by hand: the commands
 * lib/store and the relay send themselves (a table in redisacl.c), the
 * commands its Lua scripts call (read from the scripts' sources), the keys
 * and the one Pub/Sub channel under redis.key_prefix, and EVALSHA of the
 * SHA-1 digests of its scripts alone. Redis 7 checks the commands and keys
 * a script calls against the caller's rules too, so a script cannot reach
 * past them.
 *
 * New code is refused: EVAL, FUNCTION and FCALL are not allowed, and EVALSHA
 * only with a digest of one of the product's scripts as its first argument
 * (ACL "+evalsha|<sha1>"; Redis 7.0 warns that this first-argument form is
 * deprecated, see conf/README.md). SCRIPT LOAD stays allowed: Redis forgets
 * its script cache when it restarts, and each worker loads its scripts again
 * on NOSCRIPT. Whoever holds the password can thus make Redis compile (never
 * run) Lua text of their own; what that leaves open is written in
 * conf/README.md ("Redis").
 */
#ifndef FM_REDISACL_H
#define FM_REDISACL_H

#include <stddef.h>

#include "err.h"

/*
 * fm_redisacl_rules - the rules for key prefix prefix (redis.key_prefix: 1 to
 * 64 characters of [A-Za-z0-9:_.-], which need no quoting) and database db
 * (redis.db, 0..15: for db > 0, "+select|<db>" is added, the one SELECT the
 * product sends) as one line of ACL SETUSER / ACL file words, without the
 * user name or a password:
 *   "resetkeys ~<prefix>* resetchannels &<prefix>events -@all +<cmd>...
 *    +evalsha|<sha1>..."
 * commands in lower case and sorted, so the line is stable. Written to out
 * (len bytes, NUL-terminated). Returns FM_OK; FM_EINVAL for a prefix with
 * other characters, a db out of range, or a script that calls a command by
 * anything but a literal name (the line would miss it); FM_ETOOBIG when out
 * is too small (4096 bytes are ample); FM_ESYS when libcrypto cannot compute
 * a SHA-1. On error out holds "".
 */
FM_MUST_CHECK fm_err fm_redisacl_rules(const char *prefix, int db, char *out, size_t len);

#endif
