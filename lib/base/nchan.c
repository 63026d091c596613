/*
 * nchan.c - HTTP/1.1 exchanges with nchan's publisher location over a unix
 * socket, on a kept connection (nchan.h).
 *
 * The request is written whole, then the answer's head read and its body
 * (Content-Length bytes) read and dropped; only the status line and the
 * framing headers (Content-Length, Connection, Transfer-Encoding) are looked
 * at: the peer is this product's own nginx, and anything unexpected ends the
 * connection rather than being interpreted. Every wait is a poll(2) bounded
 * by what is left of the one deadline, so a stalled nginx costs the caller
 * at most timeout_ms.
 */
#include "nchan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 512    /* the request line and headers */
#define ANSWER_MAX 4096 /* the answer's head, at most */
#define BODY_MAX                                                                                   \
    65536 /* an answer's body read and dropped to keep the connection; longer: closed */

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

/* Whether the header line [p, e) is "name:" (any letter case) followed by a value. */
static const char *header_value(const char *p, const char *e, const char *name)
{
    size_t n = strlen(name);

    if ((size_t)(e - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
        return NULL;
    p += n + 1;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Whether the comma-separated list [v, e) holds token (any letter case; RFC 9110 section 5.6.1). */
static bool has_token(const char *v, const char *e, const char *token)
{
    size_t n = strlen(token);

    while (v < e) {
        const char *t;

        while (v < e && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        t = v;
        while (v < e && *v != ',' && *v != ' ' && *v != '\t')
            v++;
        if ((size_t)(v - t) == n && strncasecmp(t, token, n) == 0)
            return true;
    }
    return false;
}

/* A Content-Length value: digits only, at most BODY_MAX. -1 when it is not one. */
static long long content_length(const char *v, const char *e)
{
    long long n = 0;

    if (v == e)
        return -1;
    for (; v < e && *v != ' ' && *v != '\t'; v++) {
        if (*v < '0' || *v > '9' || n > BODY_MAX)
            return -1;
        n = n * 10 + (*v - '0');
    }
    return n <= BODY_MAX ? n : -1;
}

/*
 * Reads one answer: its head, then as much body as its Content-Length says
 * (discarded). *status from "HTTP/1.x NNN "; *keep whether the connection
 * may carry the next request; *got the bytes read. -1 with errno on failure.
 */
static int read_answer(int fd, long long deadline, int *status, bool *keep, size_t *got)
{
    char buf[ANSWER_MAX + 1], *head_end = NULL;
    size_t have = 0;
    long long length = -1, left;
    unsigned a, b, code;
    char sp;

    *keep = false;
    *got = 0;
    while (head_end == NULL) {
        ssize_t r;

        if (have == ANSWER_MAX) {
            errno = EPROTO;
            return -1;
        }
        r = recv(fd, buf + have, ANSWER_MAX - have, 0);
        if (r == 0) {
            errno = have == 0 ? ECONNRESET : EPROTO; /* closed before (or inside) a head */
            return -1;
        }
        if (r < 0) {
            if ((errno != EAGAIN && errno != EINTR) || wait_fd(fd, POLLIN, deadline) != 0)
                return -1;
            continue;
        }
        have += (size_t)r;
        *got = have;
        buf[have] = '\0';
        head_end = strstr(buf, "\r\n\r\n");
    }
    if (sscanf(buf, "HTTP/%1u.%1u %3u%c", &a, &b, &code, &sp) != 4 || sp != ' ' || code < 100 ||
        code > 599) {
        errno = EPROTO;
        return -1;
    }
    *status = (int)code;
    *keep = a == 1 && b == 1;
    for (char *p = strstr(buf, "\r\n") + 2; p < head_end + 2;) {
        char *e = strstr(p, "\r\n");
        const char *v;

        if ((v = header_value(p, e, "content-length")) != NULL) {
            if (length >= 0 || (length = content_length(v, e)) < 0)
                *keep = false; /* repeated or not a length: the connection ends here */
        } else if ((v = header_value(p, e, "connection")) != NULL) {
            if (has_token(v, e, "close"))
                *keep = false;
        } else if (header_value(p, e, "transfer-encoding") != NULL) {
            *keep = false;
        }
        p = e + 2;
    }
    if (length < 0 && code != 204 && code != 304 && code >= 200)
        *keep = false; /* the body runs to the close: only the head was wanted */
    if (!*keep)
        return 0;
    /* The body, read and dropped, so that the next answer starts where it should. */
    left = length - (long long)(have - (size_t)(head_end + 4 - buf));
    if (left < 0) {
        *keep = false; /* more than one answer's bytes: out of step */
        return 0;
    }
    while (left > 0) {
        char sink[1024];
        ssize_t r = recv(fd, sink, left < (long long)sizeof(sink) ? (size_t)left : sizeof(sink), 0);

        if (r == 0) {
            errno = EPROTO;
            return -1;
        }
        if (r < 0) {
            if ((errno != EAGAIN && errno != EINTR) || wait_fd(fd, POLLIN, deadline) != 0)
                return -1;
            continue;
        }
        left -= r;
    }
    return 0;
}

struct fm_nchan {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd; /* the kept connection, or -1 */
};

fm_nchan *fm_nchan_open(const char *socket_path)
{
    fm_nchan *c;

    if (socket_path == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(socket_path) >= sizeof(c->path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    memcpy(c->path, socket_path, strlen(socket_path) + 1);
    c->fd = -1;
    return c;
}

static void hang_up(fm_nchan *c)
{
    int err = errno;

    if (c->fd >= 0)
        (void)close(c->fd);
    c->fd = -1;
    errno = err;
}

void fm_nchan_close(fm_nchan *c)
{
    if (c == NULL)
        return;
    hang_up(c);
    free(c);
}

const char *fm_nchan_path(const fm_nchan *c)
{
    return c->path;
}

/* One exchange: method on "/" + the channels joined by ','. */
static fm_err exchange(fm_nchan *c, const char *method, const char *const *channels, size_t n,
                       const char *body, size_t len, int timeout_ms, int *status)
{
    char head[HEAD_MAX + FM_NCHAN_CHANNELS_MAX * FM_NCHAN_CHANNEL_MAX];
    size_t off, got;
    long long deadline;
    bool keep;
    int hn;

    *status = 0;
    if (c == NULL || n == 0 || n > FM_NCHAN_CHANNELS_MAX || timeout_ms <= 0)
        return FM_EINVAL;
    off = (size_t)snprintf(head, sizeof(head), "%s /", method);
    for (size_t i = 0; i < n; i++) {
        if (!fm_nchan_channel_ok(channels[i]))
            return FM_EINVAL;
        off +=
            (size_t)snprintf(head + off, sizeof(head) - off, "%s%s", i > 0 ? "," : "", channels[i]);
    }
    hn = snprintf(head + off, sizeof(head) - off,
                  " HTTP/1.1\r\nHost: nchan\r\n"
                  "Accept: text/json\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  len);
    if (hn < 0 || (size_t)hn >= sizeof(head) - off)
        return FM_EINVAL;
    off += (size_t)hn;
    deadline = now_ms() + timeout_ms;
    for (int round = 0;; round++) {
        bool reused = c->fd >= 0;

        if (!reused && (c->fd = connect_unix(c->path, deadline)) < 0)
            return FM_ESYS;
        got = 0;
        if (write_all(c->fd, head, off, deadline) == 0 &&
            (len == 0 || write_all(c->fd, body, len, deadline) == 0) &&
            read_answer(c->fd, deadline, status, &keep, &got) == 0) {
            if (!keep)
                hang_up(c);
            return FM_OK;
        }
        hang_up(c);
        /* A kept connection the server had closed while idle: once more, on a new one. */
        if (!reused || got > 0 || round > 0 || errno == ETIMEDOUT ||
            (errno != EPIPE && errno != ECONNRESET))
            return FM_ESYS;
    }
}

fm_err fm_nchan_publish(fm_nchan *c, const char *const *channels, size_t n, const char *body,
                        size_t len, int timeout_ms, int *status)
{
    fm_err rc = exchange(c, "POST", channels, n, body, len, timeout_ms, status);

    if (rc != FM_OK)
        return rc;
    return *status == 201 || *status == 202 ? FM_OK : FM_ECONFLICT;
}

fm_err fm_nchan_delete(fm_nchan *c, const char *channel, int timeout_ms, int *status)
{
    fm_err rc = exchange(c, "DELETE", &channel, 1, NULL, 0, timeout_ms, status);

    if (rc != FM_OK)
        return rc;
    return *status == 200 || *status == 404 ? FM_OK : FM_ECONFLICT;
}

fm_err fm_nchan_exists(fm_nchan *c, const char *channel, int timeout_ms, bool *exists)
{
    int status;
    fm_err rc = exchange(c, "GET", &channel, 1, NULL, 0, timeout_ms, &status);

    *exists = false;
    if (rc != FM_OK)
        return rc;
    *exists = status == 200;
    return status == 200 || status == 404 ? FM_OK : FM_ECONFLICT;
}
