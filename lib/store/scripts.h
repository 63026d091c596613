/*
 * scripts.h - the Lua scripts of lib/store outside the task store, internal to
 * lib/store: each is defined by its module (its one user) and listed here for
 * redisacl.c, whose ACL allows EVALSHA of exactly these and taskscripts.h's.
 * A new script is declared here and added to redisacl.c's list.
 */
#ifndef FM_SCRIPTS_H
#define FM_SCRIPTS_H

#include "redisconn.h"

extern fm_redis_script fm_bruteforce_fail_script;                   /* bruteforce.c */
extern fm_redis_script fm_ratelimit_bucket_script;                  /* ratelimit.c */
extern fm_redis_script fm_wsconn_end_script, fm_wsconn_mark_script; /* wsconn.c */

#endif
