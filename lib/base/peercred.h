/*
 * peercred.h - who is at the other end of a unix stream socket: the
 * credentials the kernel recorded when the peer connected (SO_PEERCRED,
 * unix(7)), which the peer cannot choose, and the rule deciding which peers
 * the FastCGI socket serves (server.allowed_peers).
 */
#ifndef FM_PEERCRED_H
#define FM_PEERCRED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* A peer process as the kernel saw it at connect(2). */
typedef struct fm_peercred {
    pid_t pid;
    uid_t uid; /* effective uid */
    gid_t gid; /* effective gid */
} fm_peercred;

/*
 * fm_peercred_get - the credentials of the peer of fd, a connected AF_UNIX
 * socket, into *out (getsockopt SO_PEERCRED). FM_OK; FM_ESYS with errno
 * (ENOTSOCK, ENOTCONN...) when the kernel has none to give.
 */
FM_MUST_CHECK fm_err fm_peercred_get(int fd, fm_peercred *out) FM_NONNULL(2);

/*
 * fm_peercred_allowed - whether a peer with effective uid uid may be served:
 * it is self (the pool's own uid: a process of that uid can already read and
 * change the workers' memory, so refusing it would protect nothing) or one of
 * the n uids of allowed (n may be 0; allowed may then be NULL).
 */
bool fm_peercred_allowed(uid_t uid, uid_t self, const uid_t *allowed, size_t n);

#endif
