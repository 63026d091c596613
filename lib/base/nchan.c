/*
 * nchan.c - one HTTP/1.1 exchange with nchan's publisher location over a
 * unix socket (nchan.h).
 *
 * The request is written whole, then the answer read until the server
 * closes (Connection: close); only its status line is looked at. Every wait
 * is a poll(2) bounded by what is left of the one deadline, so a stalled
 * nginx costs the caller at most timeout_ms.
 */
#include "nchan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 512   /* the request line and headers */
#define ANSWER_MAX 512 /* what is kept of the answer: the status line is in it */

bool fm_nchan_channel_ok(const char *s)
{
    size_t n = strnlen(s, FM_NCHAN_CHANNEL_MAX);

    return n > 0 && n < FM_NCHAN_CHANNEL_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 0 when ready, -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    long long left;
    int rc;

    for (;;) {
        left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_unix(const char *path, long long deadline)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, err = 0;
    socklen_t elen = sizeof(err);

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    /* A unix socket whose backlog is full answers EAGAIN: wait for room, as for EINPROGRESS. */
    if ((errno != EINPROGRESS && errno != EAGAIN) || wait_fd(fd, POLLOUT, deadline) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
        if (err != 0)
            errno = err;
        err = errno;
        (void)close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_fd(fd, POLLOUT, deadline) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads the answer to its end; *status from "HTTP/1.x NNN ". -1 with errno on failure. */
static int read_status(int fd, long long deadline, int *status)
{
    char buf[ANSWER_MAX + 1];
    size_t have = 0;
    unsigned a, b, code;
    char sp;

    for (;;) {
        char sink[1024];
        char *dst = have < ANSWER_MAX ? buf + have : sink;
        size_t room = have < ANSWER_MAX ? ANSWER_MAX - have : sizeof(sink);
        ssize_t r = recv(fd, dst, room, 0);

        if (r == 0)
            break;
        if (r > 0) {
            if (dst != sink)
                have += (size_t)r;
            continue;
        }
        if ((errno != EAGAIN && errno != EINTR) || wait_fd(fd, POLLIN, deadline) != 0)
            return -1;
    }
    buf[have] = '\0';
    if (sscanf(buf, "HTTP/%1u.%1u %3u%c", &a, &b, &code, &sp) != 4 || sp != ' ' || code < 100 ||
        code > 599) {
        errno = EPROTO;
        return -1;
    }
    *status = (int)code;
    return 0;
}

/* One exchange: method on "/" + the channels joined by ','. */
static fm_err exchange(const char *socket_path, const char *method, const char *const *channels,
                       size_t n, const char *body, size_t len, int timeout_ms, int *status)
{
    char head[HEAD_MAX + FM_NCHAN_CHANNELS_MAX * FM_NCHAN_CHANNEL_MAX];
    size_t off;
    long long deadline;
    int fd, hn, err;

    *status = 0;
    if (socket_path == NULL || n == 0 || n > FM_NCHAN_CHANNELS_MAX || timeout_ms <= 0)
        return FM_EINVAL;
    off = (size_t)snprintf(head, sizeof(head), "%s /", method);
    for (size_t i = 0; i < n; i++) {
        if (!fm_nchan_channel_ok(channels[i]))
            return FM_EINVAL;
        off +=
            (size_t)snprintf(head + off, sizeof(head) - off, "%s%s", i > 0 ? "," : "", channels[i]);
    }
    hn = snprintf(head + off, sizeof(head) - off,
                  " HTTP/1.1\r\nHost: nchan\r\nConnection: close\r\n"
                  "Accept: text/json\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  len);
    if (hn < 0 || (size_t)hn >= sizeof(head) - off)
        return FM_EINVAL;
    off += (size_t)hn;
    deadline = now_ms() + timeout_ms;
    fd = connect_unix(socket_path, deadline);
    if (fd < 0)
        return FM_ESYS;
    if (write_all(fd, head, off, deadline) != 0 ||
        (len > 0 && write_all(fd, body, len, deadline) != 0) ||
        read_status(fd, deadline, status) != 0) {
        err = errno;
        (void)close(fd);
        errno = err;
        return FM_ESYS;
    }
    (void)close(fd);
    return FM_OK;
}

fm_err fm_nchan_publish(const char *socket_path, const char *const *channels, size_t n,
                        const char *body, size_t len, int timeout_ms, int *status)
{
    fm_err rc = exchange(socket_path, "POST", channels, n, body, len, timeout_ms, status);

    if (rc != FM_OK)
        return rc;
    return *status == 201 || *status == 202 ? FM_OK : FM_ECONFLICT;
}

fm_err fm_nchan_delete(const char *socket_path, const char *channel, int timeout_ms, int *status)
{
    fm_err rc = exchange(socket_path, "DELETE", &channel, 1, NULL, 0, timeout_ms, status);

    if (rc != FM_OK)
        return rc;
    return *status == 200 || *status == 404 ? FM_OK : FM_ECONFLICT;
}

fm_err fm_nchan_exists(const char *socket_path, const char *channel, int timeout_ms, bool *exists)
{
    int status;
    fm_err rc = exchange(socket_path, "GET", &channel, 1, NULL, 0, timeout_ms, &status);

    *exists = false;
    if (rc != FM_OK)
        return rc;
    *exists = status == 200;
    return status == 200 || status == 404 ? FM_OK : FM_ECONFLICT;
}
