/*
 * unixsock.h - claiming the path of a unix domain socket (unix(7)) for a
 * daemon: fetchml-fcgi's FastCGI socket and fetchml-logrelay's datagram socket.
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

#endif
