/*
 * unixsock.c - claiming a unix socket path (see unixsock.h). A socket file
 * whose owner died stays behind; connecting to it tells a stale one (refused)
 * from a live one, as nginx and php-fpm do before binding.
 */
#include "unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <unistd.h>

static int alive(const struct sockaddr_un *sa, int type)
{
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), ok;

    if (fd < 0)
        return 0;
    ok = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    (void)close(fd);
    return ok;
}

fm_err fm_unixsock_claim(const char *path, int type, struct sockaddr_un *sa, char *err,
                         size_t errlen)
{
    struct stat st;
    size_t n = strlen(path);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n >= sizeof(sa->sun_path)) {
        (void)snprintf(err, errlen, "socket path too long: %s", path);
        return FM_EINVAL;
    }
    memcpy(sa->sun_path, path, n + 1);
    if (lstat(path, &st) != 0)
        return FM_OK;
    if (!S_ISSOCK(st.st_mode)) {
        (void)snprintf(err, errlen, "%s exists and is not a socket", path);
        return FM_ECONFLICT;
    }
    if (alive(sa, type)) {
        (void)snprintf(err, errlen, "%s is in use by another process; not starting", path);
        return FM_ECONFLICT;
    }
    if (unlink(path) != 0) {
        int e = errno;

        (void)snprintf(err, errlen, "cannot remove stale %s: %s", path, strerror(e));
        errno = e;
        return FM_ESYS;
    }
    return FM_OK;
}

/* Room for one descriptor in a control message, aligned as cmsg(3) wants. */
typedef union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
} one_fd;

fm_err fm_unixsock_send(int s, const void *msg, size_t len, int fd)
{
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    one_fd ctl;

    if (fd >= 0) {
        struct cmsghdr *c;
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(s, &mh, MSG_NOSIGNAL) < 0 ? FM_ESYS : FM_OK;
}

/* Every descriptor the control messages of mh carry, closed. */
static void close_passed(struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        size_t n;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            (void)close(fd);
        }
    }
}

fm_err fm_unixsock_recv(int s, void *msg, size_t cap, size_t *len, int *fd)
{
    struct iovec iov = {.iov_base = msg, .iov_len = cap};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *c;
    one_fd ctl;
    ssize_t n;

    *fd = -1;
    *len = 0;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return FM_ESYS;
    if (n == 0 && mh.msg_controllen == 0)
        return FM_ENOTFOUND;
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
        close_passed(&mh);
        errno = EMSGSIZE;
        return FM_ESYS;
    }
    c = CMSG_FIRSTHDR(&mh);
    if (c != NULL) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR(&mh, c) != NULL) {
            close_passed(&mh);
            errno = EMSGSIZE;
            return FM_ESYS;
        }
        memcpy(fd, CMSG_DATA(c), sizeof *fd);
    }
    *len = (size_t)n;
    return FM_OK;
}
