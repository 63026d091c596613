/*
 * log.c - the operational log.
 *
 * A message goes through four steps, in this order: format (vsnprintf, to
 * the full length, so that the filter sees every secret whole), redact
 * (fm_redact, which also cuts the text to the line size without splitting a
 * secret), escape (CR, LF, TAB become \r, \n, \t; other controls, NEL,
 * U+2028/U+2029, bidirectional controls and bytes that are not UTF-8 become
 * \xNN per byte, so a message is always exactly one line, for splitlines()
 * readers too, and shows in order) and write (one write(2) of the whole
 * line on an O_APPEND descriptor, so lines of concurrent workers never
 * interleave). A line that cannot be written is counted, and the count is
 * reported in a line of its own once writing works again.
 *
 * The state is per process; workers inherit the descriptor across fork and
 * reopen it themselves on SIGUSR1.
 */
#include "log.h"

#include "clock.h"
#include "jsonstr.h"
#include "redact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_STACK (2 * FM_LOG_LINE_MAX) /* most messages format without malloc */

static struct {
    int fd; /* -1: stderr only */
    char *path;
    fm_log_level level;
    int also_stderr;
    unsigned long lost; /* lines the file did not take since the last report */
} g = {-1, NULL, FM_LOG_INFO, 0, 0};

static const char *level_name(fm_log_level level)
{
    switch (level) {
    case FM_LOG_DEBUG:
        return "debug";
    case FM_LOG_INFO:
        return "info";
    case FM_LOG_WARN:
        return "warn";
    case FM_LOG_ERROR:
        return "error";
    }
    return "error";
}

/*
 * Never through a symbolic link, never blocking (a FIFO put at the path), and
 * only a regular file: the master opens it as root at start, in a directory
 * the pool's account may be able to create files in (EINVAL otherwise).
 */
static int open_file(const char *path)
{
    int fd = open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0640);
    struct stat st;

    if (fd < 0)
        return -1;
    errno = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = errno;
        (void)close(fd);
        errno = err != 0 ? err : EINVAL;
        return -1;
    }
    return fd;
}

fm_err fm_log_open(const char *path, fm_log_level level, int also_stderr)
{
    int fd = -1, err;
    char *copy = NULL;

    if (path != NULL) {
        fd = open_file(path);
        if (fd < 0)
            return FM_ESYS;
        copy = strdup(path);
        if (copy == NULL) {
            err = errno;
            (void)close(fd);
            errno = err;
            return FM_ESYS;
        }
    }
    fm_log_close();
    g.fd = fd;
    g.path = copy;
    g.level = level;
    g.also_stderr = also_stderr;
    g.lost = 0;
    return FM_OK;
}

fm_err fm_log_replace_fd(int fd, int newfd)
{
    int err;

    if (dup3(newfd, fd, O_CLOEXEC) < 0) {
        err = errno;
        (void)close(newfd);
        errno = err;
        return FM_ESYS;
    }
    (void)close(newfd);
    return FM_OK;
}

fm_err fm_log_reopen(void)
{
    int fd;

    if (g.path == NULL)
        return FM_OK;
    fd = open_file(g.path);
    if (fd < 0)
        return FM_ESYS;
    return fm_log_replace_fd(g.fd, fd);
}

fm_err fm_log_use_fd(int newfd)
{
    if (g.fd < 0) {
        if (fcntl(newfd, F_SETFD, FD_CLOEXEC) != 0) {
            int err = errno;
            (void)close(newfd);
            errno = err;
            return FM_ESYS;
        }
        g.fd = newfd;
        return FM_OK;
    }
    return fm_log_replace_fd(g.fd, newfd);
}

void fm_log_echo(const char *text, char out[FM_LOG_ECHO_BUF])
{
    size_t i;

    for (i = 0; i < FM_LOG_ECHO_MAX && text[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)text[i];
        out[i] = (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\') ? '?' : (char)ch;
    }
    if (text[i] != '\0') {
        (void)snprintf(out + i, 4, "...");
        return;
    }
    out[i] = '\0';
}

void fm_log_close(void)
{
    if (g.fd >= 0)
        (void)close(g.fd);
    g.fd = -1;
    free(g.path);
    g.path = NULL;
}

/*
 * The escape of one character: CR, LF and TAB as \r \n \t, every other
 * character fm_jsonstr_char flags (controls, NEL, U+2028/U+2029, the
 * bidirectional controls, bytes that are not UTF-8) as \xNN per byte, so
 * the line stays one line, in order, valid UTF-8 and plain to grep. Returns
 * the escape's length in esc (at most 16 bytes) and the bytes it consumed in
 * *adv.
 */
static size_t escape_char(const char *p, size_t n, char esc[16], size_t *adv)
{
    uint32_t cp;
    bool unsafe;
    size_t len = fm_jsonstr_char(p, n, &unsafe, &cp), o = 0;

    *adv = len > 0 ? len : 1;
    if (!unsafe) {
        memcpy(esc, p, len);
        return len;
    }
    if (cp == '\r' || cp == '\n' || cp == '\t') {
        esc[0] = '\\';
        esc[1] = cp == '\r' ? 'r' : cp == '\n' ? 'n' : 't';
        return 2;
    }
    for (size_t i = 0; i < *adv; i++, o += 4)
        (void)snprintf(esc + o, 5, "\\x%02x", (unsigned)(unsigned char)p[i]);
    return o;
}

size_t fm_log_sanitize(const char *msg, size_t len, char *out, size_t cap)
{
    char red[FM_LOG_SANITIZE_MAX];
    size_t rn = fm_redact(msg, len, red, sizeof red), o = 0;

    for (size_t i = 0, adv; i < rn; i += adv) {
        char esc[16];
        size_t elen = escape_char(red + i, rn - i, esc, &adv);

        if (o + elen > cap - 1) /* the newline always fits */
            break;
        memcpy(out + o, esc, elen);
        o += elen;
    }
    out[o++] = '\n';
    return o;
}

static size_t build_line(char line[FM_LOG_LINE_MAX], fm_log_level level, const char *msg, size_t n)
{
    char ts[FM_RFC3339_MAX];
    int pre = snprintf(line, FM_LOG_LINE_MAX, "%s %s [%ld] ", fm_clock_rfc3339(ts, 1),
                       level_name(level), (long)getpid());
    size_t o = pre < 0 || pre >= FM_LOG_LINE_MAX - 2 ? 0 : (size_t)pre;

    return o + fm_log_sanitize(msg, n, line + o, FM_LOG_LINE_MAX - o);
}

static int write_all(int fd, const char *buf, size_t len)
{
    ssize_t w;

    do {
        w = write(fd, buf, len);
    } while (w < 0 && errno == EINTR);
    return w >= 0 && (size_t)w == len ? 0 : -1;
}

static void emit(const char *line, size_t len)
{
    if (g.fd >= 0) {
        if (write_all(g.fd, line, len) != 0)
            g.lost++;
    }
    if (g.fd < 0 || g.also_stderr)
        (void)write_all(STDERR_FILENO, line, len);
}

void fm_log(fm_log_level level, const char *fmt, ...)
{
    char stack[FORMAT_STACK], line[FM_LOG_LINE_MAX];
    char *msg = stack, *heap = NULL;
    unsigned long lost = g.lost;
    int saved = errno, n;
    va_list ap;

    if (level < g.level)
        return;
    va_start(ap, fmt);
    n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof stack) {
        heap = malloc((size_t)n + 1);
        if (heap != NULL) {
            va_start(ap, fmt);
            n = vsnprintf(heap, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = heap;
        }
    }
    if (n < 0 || (heap == NULL && n >= (int)sizeof stack)) {
        /* A cut message could end in half a secret the filter no longer recognises. */
        n = snprintf(stack, sizeof stack, "(message dropped: %s)",
                     n < 0 ? "format error" : "out of memory");
        msg = stack;
    }
    emit(line, build_line(line, level, msg, n < 0 ? 0 : (size_t)n));
    free(heap);

    if (lost > 0 && g.lost == lost) {
        n = snprintf(stack, sizeof stack, "log: %lu earlier lines could not be written", lost);
        g.lost = 0;
        emit(line, build_line(line, FM_LOG_WARN, stack, n < 0 ? 0 : (size_t)n));
    }
    errno = saved;
}
