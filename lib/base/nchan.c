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
 *
 * The token check is nginx's (secure_link): it hashes the header and
 * compares 16 bytes of MD5 with memcmp, which is not constant-time. What a
 * timing could tell is how many leading bytes of MD5(guess) match the
 * verifier, MD5(token): at most the verifier, from which the token is a
 * preimage away (MD5's known weakness is collisions, not preimages, and the
 * token is 256 random bits). A direct string compare of the header would
 * instead give the token away byte by byte to whoever can time it.
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
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

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

/* Writes all of p (n bytes) to the file fd; 0, or -1 with errno. */
static int write_file(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
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
    char token[FM_NCHAN_TOKEN_SIZE]; /* "" = none sent */
    int fd;                          /* the kept connection, or -1 */
};

bool fm_nchan_token_ok(const char *s)
{
    return strnlen(s, FM_NCHAN_TOKEN_SIZE) == FM_NCHAN_TOKEN_LEN &&
           strspn(s, "0123456789abcdef") == FM_NCHAN_TOKEN_LEN;
}

fm_nchan *fm_nchan_open(const char *socket_path, const char *token)
{
    fm_nchan *c;

    if (socket_path == NULL || (token != NULL && !fm_nchan_token_ok(token))) {
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
    if (token != NULL)
        memcpy(c->token, token, FM_NCHAN_TOKEN_SIZE);
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
    sodium_memzero(c->token, sizeof(c->token));
    free(c);
}

const char *fm_nchan_path(const fm_nchan *c)
{
    return c->path;
}

/*
 * The request's head into head (cap bytes): method on "/" + the channels
 * joined by ','; its length, or 0 for a bad channel or a head that does not fit.
 */
static size_t request_head(const fm_nchan *c, char *head, size_t cap, const char *method,
                           const char *const *channels, size_t n, size_t len)
{
    size_t off = (size_t)snprintf(head, cap, "%s /", method);
    int hn;

    for (size_t i = 0; i < n; i++) {
        if (!fm_nchan_channel_ok(channels[i]))
            return 0;
        off += (size_t)snprintf(head + off, cap - off, "%s%s", i > 0 ? "," : "", channels[i]);
    }
    hn = snprintf(head + off, cap - off,
                  " HTTP/1.1\r\nHost: nchan\r\n%s%s%s"
                  "Accept: text/json\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  c->token[0] != '\0' ? FM_NCHAN_TOKEN_HEADER ": " : "", c->token,
                  c->token[0] != '\0' ? "\r\n" : "", len);
    if (hn < 0 || (size_t)hn >= cap - off)
        return 0;
    return off + (size_t)hn;
}

/* One exchange of the head (off bytes) and body; *status from the answer. */
static fm_err send_request(fm_nchan *c, const char *head, size_t off, const char *body, size_t len,
                           int timeout_ms, int *status)
{
    long long deadline = now_ms() + timeout_ms;
    size_t got;
    bool keep;

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

static fm_err exchange(fm_nchan *c, const char *method, const char *const *channels, size_t n,
                       const char *body, size_t len, int timeout_ms, int *status)
{
    char head[HEAD_MAX + FM_NCHAN_CHANNELS_MAX * FM_NCHAN_CHANNEL_MAX + FM_NCHAN_TOKEN_SIZE];
    size_t off;
    fm_err rc;
    int err;

    *status = 0;
    if (c == NULL || n == 0 || n > FM_NCHAN_CHANNELS_MAX || timeout_ms <= 0)
        return FM_EINVAL;
    off = request_head(c, head, sizeof(head), method, channels, n, len);
    rc = off > 0 ? send_request(c, head, off, body, len, timeout_ms, status) : FM_EINVAL;
    err = errno;
    sodium_memzero(head, sizeof(head)); /* it holds the token */
    errno = err;
    return rc;
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

fm_err fm_nchan_exists(fm_nchan *c, const char *channel, int timeout_ms, bool *exists, int *status)
{
    fm_err rc = exchange(c, "GET", &channel, 1, NULL, 0, timeout_ms, status);

    *exists = false;
    if (rc != FM_OK)
        return rc;
    *exists = *status == 200;
    return *status == 200 || *status == 404 ? FM_OK : FM_ECONFLICT;
}

/* ---- the publisher token ------------------------------------------------------------ */

fm_err fm_nchan_token_read(int fd, char token[FM_NCHAN_TOKEN_SIZE], char *err, size_t errlen)
{
    char text[FM_NCHAN_TOKEN_LEN + 2];
    struct stat st;
    ssize_t n;
    fm_err rc = FM_ESYS;

    memset(token, 0, FM_NCHAN_TOKEN_SIZE);
    if (fstat(fd, &st) != 0) {
        (void)snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        return FM_ESYS;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        (void)snprintf(err, errlen,
                       "must be a regular file that only its owner may read (mode "
                       "0600 or 0400)");
        return FM_EINVAL;
    }
    do {
        n = pread(fd, text, sizeof(text), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        (void)snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        goto out;
    }
    rc = FM_EPARSE;
    if ((n == FM_NCHAN_TOKEN_LEN || (n == FM_NCHAN_TOKEN_LEN + 1 && text[n - 1] == '\n'))) {
        memcpy(token, text, FM_NCHAN_TOKEN_LEN);
        if (fm_nchan_token_ok(token))
            rc = FM_OK;
    }
    if (rc != FM_OK) {
        sodium_memzero(token, FM_NCHAN_TOKEN_SIZE);
        (void)snprintf(err, errlen,
                       "not a publisher token: %d lower-case hex digits and a newline "
                       "(fetchml-admin publisher-token writes one)",
                       FM_NCHAN_TOKEN_LEN);
    }
out:
    sodium_memzero(text, sizeof(text));
    return rc;
}

/* Writes text to a new file at path, mode 0600; 0, or -1 with errno and no file left. */
static int create_secret(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    size_t len = strlen(text);
    int e = 0;

    if (fd < 0)
        return -1;
    if (write_file(fd, text, len) != 0 || fchmod(fd, 0600) != 0 || fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0)
        return 0;
    (void)unlink(path);
    errno = e;
    return -1;
}

fm_err fm_nchan_token_new(const char *token_path, const char *nginx_path, char *err, size_t errlen)
{
    unsigned char raw[FM_NCHAN_TOKEN_LEN / 2], md5[16];
    char token[FM_NCHAN_TOKEN_LEN + 2],
        verifier[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char conf[256];
    unsigned int mdlen = 0;
    fm_err rc = FM_ESYS;

    randombytes_buf(raw, sizeof(raw));
    (void)sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
    if (EVP_Digest(token, FM_NCHAN_TOKEN_LEN, md5, &mdlen, EVP_md5(), NULL) != 1 ||
        mdlen != sizeof(md5)) {
        errno = EINVAL;
        (void)snprintf(err, errlen, "libcrypto cannot compute MD5");
        goto out;
    }
    (void)sodium_bin2base64(verifier, sizeof(verifier), md5, sizeof(md5),
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    (void)snprintf(conf, sizeof(conf),
                   "# nginx's check of the WebSocket relay's publisher token (fetchml-admin "
                   "publisher-token):\n# the MD5 of the token, base64url; include it in nchan's "
                   "publisher server.\nsecure_link \"%s\";\n",
                   verifier);
    token[FM_NCHAN_TOKEN_LEN] = '\n';
    token[FM_NCHAN_TOKEN_LEN + 1] = '\0';
    if (create_secret(token_path, token) != 0) {
        (void)snprintf(err, errlen, "%s: %s", token_path, strerror(errno));
        goto out;
    }
    if (create_secret(nginx_path, conf) != 0) {
        int e = errno;

        (void)snprintf(err, errlen, "%s: %s", nginx_path, strerror(e));
        (void)unlink(token_path);
        errno = e;
        goto out;
    }
    rc = FM_OK;
out:
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(token, sizeof(token));
    return rc;
}
