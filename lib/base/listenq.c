/*
 * listenq.c - accept-queue depth of a listening socket (listenq.h).
 */
#include "listenq.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Asks unix_diag about the one socket that is fd, by its inode. */
static fm_err unix_queue(int fd, unsigned *queued, unsigned *backlog)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } ask;
    union {
        struct nlmsghdr nlh;
        char bytes[8192];
    } answer;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    struct stat st;
    fm_err rc = FM_EINVAL;
    ssize_t n;
    int nl;

    if (fstat(fd, &st) != 0)
        return FM_ESYS;
    nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return FM_ESYS;
    memset(&ask, 0, sizeof(ask));
    ask.nlh.nlmsg_len = sizeof(ask);
    ask.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    ask.nlh.nlmsg_flags = NLM_F_REQUEST;
    ask.req.sdiag_family = AF_UNIX;
    ask.req.udiag_ino = (unsigned)st.st_ino;
    ask.req.udiag_states = ~0u;
    ask.req.udiag_show = UDIAG_SHOW_RQLEN;
    /* No cookie: the inode alone names the socket (sock_diag_check_cookie). */
    ask.req.udiag_cookie[0] = ~0u;
    ask.req.udiag_cookie[1] = ~0u;
    if (sendto(nl, &ask, sizeof(ask), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        rc = FM_ESYS;
        goto done;
    }
    n = recv(nl, &answer, sizeof(answer), 0);
    if (n < 0) {
        rc = FM_ESYS;
        goto done;
    }
    for (struct nlmsghdr *h = &answer.nlh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        struct unix_diag_msg *msg = NLMSG_DATA(h);
        int len;

        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            msg->udiag_ino != st.st_ino)
            continue;
        len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
        for (struct rtattr *a = (struct rtattr *)(msg + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type == UNIX_DIAG_RQLEN &&
                RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                struct unix_diag_rqlen q;
                memcpy(&q, RTA_DATA(a), sizeof(q));
                *queued = q.udiag_rqueue;
                *backlog = q.udiag_wqueue;
                rc = FM_OK;
            }
        }
    }
done:
    (void)close(nl);
    return rc;
}

fm_err fm_listenq_read(int fd, unsigned *queued, unsigned *backlog)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct tcp_info ti;
    socklen_t tilen = sizeof(ti);
    int listening = 0;
    socklen_t len = sizeof(listening);

    if (getsockname(fd, (struct sockaddr *)&sa, &salen) != 0)
        return errno == ENOTSOCK || errno == EBADF ? FM_EINVAL : FM_ESYS;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
        return FM_EINVAL;
    if (sa.ss_family == AF_UNIX)
        return unix_queue(fd, queued, backlog);
    if (sa.ss_family != AF_INET && sa.ss_family != AF_INET6)
        return FM_EINVAL;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tilen) != 0)
        return FM_ESYS;
    *queued = ti.tcpi_unacked;
    *backlog = ti.tcpi_sacked;
    return FM_OK;
}
