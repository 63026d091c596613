/*
 * listenq.h - how many connections wait on a listening socket to be
 * accepted, and its backlog, for the pool's listen-queue gauge.
 *
 * A unix stream socket (the FastCGI socket) is asked through sock_diag(7)
 * (NETLINK_SOCK_DIAG, unix_diag: UNIX_DIAG_RQLEN, which for a listening
 * socket carries the accept queue's length and its maximum, as ss -x shows
 * them), found by the socket's inode; a TCP socket through getsockopt
 * TCP_INFO (tcpi_unacked and tcpi_sacked hold the same two numbers for a
 * listener, as tcp(7)'s ss -lt shows them). Needs no privilege.
 */
#ifndef FM_LISTENQ_H
#define FM_LISTENQ_H

#include "err.h"

/*
 * fm_listenq_read - the accept queue of the listening socket fd into *queued
 * (connections waiting) and *backlog (the listen(2) backlog in force).
 * FM_OK; FM_EINVAL when fd is not a listening unix stream or TCP socket;
 * FM_ESYS (errno) when the kernel could not be asked.
 */
FM_MUST_CHECK fm_err fm_listenq_read(int fd, unsigned *queued, unsigned *backlog);

#endif
