/*
 * auditwire.c - records from the processes that make them to the one that
 * writes them, the audit logger (audit.h, "Who writes the file").
 *
 * One SOCK_SEQPACKET connection per sender: a message keeps its boundaries
 * and arrives whole or not at all, and each connection has its own order, so
 * an answer is always the one to the sender's last record. A record is one
 * message, a header and the formatted fields; the answer is one message,
 * the outcome and its errno. Per record that is one sendmsg(2) and one
 * recv(2) for the sender.
 *
 * Deadline: a sender waits FM_AUDIT_ACK_MS for the answer, then fails closed
 * and drops the connection (a late answer must never be taken for the next
 * record's). The record carries the deadline, and the logger does not write
 * one that it reads after it, so a record that waited in a queue while no
 * logger ran (the master restarts a dead one, which then accepts what was
 * queued) does not appear for a request that was refused. A logger that
 * reads it in time but answers late can still leave a record of a refused
 * request: a record too many, never one missing.
 *
 * A sender whose logger was replaced finds out on the next send (EPIPE, the
 * old connection's peer is gone): the logger never read that record, so it
 * is sent once more on a new connection. After a send that went through,
 * nothing is sent again: the record may have been written.
 */
#include "audit.h"
#include "auditline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define WIRE_MAGIC 0x31414d46u /* "FMA1" */
#define ACK_SLACK_MS 250       /* the sender waits this much past the deadline it sends */

typedef struct wire_record {
    uint32_t magic;
    uint32_t len;        /* bytes of fields after the header */
    int64_t deadline_ms; /* CLOCK_MONOTONIC: not written when read after it */
} wire_record;

typedef struct wire_answer {
    int32_t rc;  /* fm_err */
    int32_t err; /* errno when rc != FM_OK */
} wire_answer;

fm_err fm_audit_endpoint_open(int *fd, fm_audit_endpoint *ep)
{
    struct sockaddr_un autobind = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err;

    *fd = -1;
    if (s < 0)
        return FM_ESYS;
    /* An address of just the family: the kernel picks a unique abstract name. */
    ep->len = sizeof ep->addr;
    if (bind(s, (const struct sockaddr *)&autobind, sizeof(sa_family_t)) != 0 ||
        listen(s, SOMAXCONN) != 0 || getsockname(s, (struct sockaddr *)&ep->addr, &ep->len) != 0)
        goto fail;
    *fd = s;
    return FM_OK;

fail:
    err = errno;
    (void)close(s);
    errno = err;
    return FM_ESYS;
}

/* A new connection to the logger, or -1 with errno. */
static int dial(const fm_audit *a)
{
    const long wait_ms = FM_AUDIT_ACK_MS + ACK_SLACK_MS;
    const struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), rc, err;

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        goto fail;
    do {
        rc = connect(fd, (const struct sockaddr *)&a->ep.addr, a->ep.len);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0)
        goto fail;
    return fd;

fail:
    err = errno;
    (void)close(fd);
    errno = err;
    return -1;
}

static void hang_up(fm_audit *a)
{
    if (a->fd >= 0)
        (void)close(a->fd);
    a->fd = -1;
}

/* The directory of path, as an O_PATH descriptor (fstatvfs for fm_audit_ready). */
static int open_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash == NULL ? 0 : (size_t)(slash - path);

    if (n >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (slash == NULL)
        memcpy(dir, ".", 2);
    else if (n == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

fm_audit *fm_audit_connect(const char *path, const fm_audit_endpoint *ep)
{
    fm_audit *a = audit_handle_new(path);

    if (a == NULL)
        return NULL;
    a->remote = true;
    a->ep = *ep;
    if ((a->dirfd = open_dir(path)) < 0)
        return audit_handle_drop(a);
    a->fd = dial(a); /* else at the first record */
    return a;
}

/* Whether a send failed because the connection's logger is gone (it read nothing). */
static bool gone(int err)
{
    return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNREFUSED;
}

/* Sends the record; a connection whose logger was replaced is made again, once. */
static fm_err send_record(fm_audit *a, struct msghdr *mh, size_t total)
{
    for (int tries = 0; tries < 2; tries++) {
        ssize_t n;
        int err;

        if (a->fd < 0 && (a->fd = dial(a)) < 0)
            return FM_ESYS;
        do {
            n = sendmsg(a->fd, mh, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n >= 0 && (size_t)n == total)
            return FM_OK;
        err = n < 0 ? errno : EIO;
        hang_up(a);
        if (!gone(err)) {
            errno = err == EAGAIN ? ETIMEDOUT : err;
            return FM_ESYS;
        }
    }
    errno = EPIPE;
    return FM_ESYS;
}

fm_err audit_remote_write(fm_audit *a, const char *fields, size_t len)
{
    wire_record h = {WIRE_MAGIC, (uint32_t)len, audit_mono_ms() + FM_AUDIT_ACK_MS};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)fields, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    wire_answer ans;
    ssize_t n;

    if (send_record(a, &mh, sizeof h + len) != FM_OK)
        return FM_ESYS;
    do {
        n = recv(a->fd, &ans, sizeof ans, 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof ans) {
        int err = n < 0 ? (errno == EAGAIN ? ETIMEDOUT : errno) : EIO;
        hang_up(a);
        errno = err;
        return FM_ESYS;
    }
    if (ans.rc != FM_OK) {
        errno = ans.err != 0 ? ans.err : EIO;
        return FM_ESYS;
    }
    return FM_OK;
}

fm_err fm_audit_serve(fm_audit *audit, int conn)
{
    static char buf[sizeof(wire_record) + FM_AUDIT_LINE_MAX];
    wire_record h;
    wire_answer ans = {FM_OK, 0};
    fm_err parsed = FM_OK;
    ssize_t n;

    do {
        n = recv(conn, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return FM_ENOTFOUND;
    if (n < 0)
        return errno == EAGAIN ? FM_OK : FM_ESYS;
    if ((size_t)n >= sizeof h)
        memcpy(&h, buf, sizeof h);
    if ((size_t)n < sizeof h || (size_t)n > sizeof buf || h.magic != WIRE_MAGIC ||
        h.len != (size_t)n - sizeof h) {
        parsed = FM_EPARSE;
        ans = (wire_answer){FM_EPARSE, EINVAL};
    } else if (audit_mono_ms() > h.deadline_ms) {
        ans = (wire_answer){FM_ESYS, ETIMEDOUT};
    } else if ((ans.rc = fm_audit_append(audit, buf + sizeof h, h.len)) != FM_OK) {
        ans.err = errno;
    }
    do {
        n = send(conn, &ans, sizeof ans, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof ans)
        return FM_ESYS;
    return parsed;
}
