/*
 * unixsock.h - unix domain sockets (unix(7)) for the daemons: claiming the
 * path of fetchml-fcgi's FastCGI socket and fetchml-logrelay's datagram
 * socket, and messages that carry a descriptor (SCM_RIGHTS) between the
 * master and its audit logger.
 */
#ifndef FM_UNIXSOCK_H
#define FM_UNIXSOCK_H

#include <stddef.h>
#include <sys/un.h>

#include "err.h"

/*
 * fm_unixsock_claim - fill *sa for path and make the path free to bind: a
 * stale socket left by a crash is removed, but never a live one (something
 * accepts connections or datagrams of this type there: a second instance
 * must not steal a running one's socket) and never any other kind of file.
 * type is SOCK_STREAM or SOCK_DGRAM. Returns FM_OK, or with a one-line
 * reason in err (errlen bytes): FM_EINVAL when the path is too long
 * (sun_path holds 107 bytes); FM_ECONFLICT when something other than a
 * socket is there, or a live socket; FM_ESYS (errno) when the stale socket
 * cannot be removed (unlink(2)).
 */
fm_err fm_unixsock_claim(const char *path, int type, struct sockaddr_un *sa, char *err,
                         size_t errlen);

/*
 * fm_unixsock_send - send one message of len bytes (1..the socket's limit)
 * on s, a connected SOCK_SEQPACKET or SOCK_DGRAM socket, with the
 * descriptor fd attached (SCM_RIGHTS; the receiver gets its own descriptor
 * of the same open file) or none when fd is -1. The caller keeps fd.
 * MSG_NOSIGNAL: a closed peer is EPIPE, not SIGPIPE. Returns FM_OK, or
 * FM_ESYS with errno from sendmsg(2) (EAGAIN on a non-blocking socket that
 * is full; a short send cannot happen on these socket types).
 */
FM_MUST_CHECK fm_err fm_unixsock_send(int s, const void *msg, size_t len, int fd) FM_NONNULL(2);

/*
 * fm_unixsock_recv - receive one message on s into msg (cap bytes) and the
 * descriptor attached to it, if any, in *fd (-1 when none; O_CLOEXEC; the
 * caller owns it). A message longer than cap, or one carrying more than one
 * descriptor, is refused: EMSGSIZE, and every descriptor it carried is
 * closed. Returns the message's length in *len and FM_OK; FM_ENOTFOUND when
 * the peer closed its end (no message); FM_ESYS with errno from recvmsg(2)
 * (EAGAIN, EINTR) or EMSGSIZE.
 */
FM_MUST_CHECK fm_err fm_unixsock_recv(int s, void *msg, size_t cap, size_t *len, int *fd)
    FM_NONNULL(2, 4, 5);

#endif
