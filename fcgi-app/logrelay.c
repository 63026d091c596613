/*
 * logrelay.c - fetchml-logrelay: nginx's error and access logs through the
 * product's redaction filter.
 *
 * nginx cannot filter what it logs, and its error lines carry the request
 * line (query string, path) of the request that caused them. So nginx logs
 * to syslog on a unix datagram socket, and this program is that syslog:
 *
 *   error_log  syslog:server=unix:SOCKET,tag=nginx_error,nohostname warn;
 *   access_log syslog:server=unix:SOCKET,tag=nginx_access,nohostname fetchml;
 *
 * Each datagram is one message. It is parsed (fm_syslogmsg_parse: RFC 3164
 * header stripped), matched by tag to an output file (-o TAG=FILE), redacted
 * and escaped into one line (fm_syslogmsg_line) and appended with a single
 * write(2) on an O_APPEND descriptor, so each message is one whole line even
 * if another process appends to the same file. With -c, the Redis password
 * of that configuration is registered with the filter as a literal secret, as
 * fetchml-fcgi does. Messages with an unknown tag, a malformed header or
 * that were cut by the socket are dropped and counted; the counts are logged
 * on exit.
 *
 *   SIGUSR1, SIGHUP   reopen the output files (logrotate)
 *   SIGTERM, SIGINT   read what is queued, remove the socket and exit
 *
 * The main loop waits in ppoll with signals unblocked only there, so a
 * signal is handled between messages, never in the middle of a write.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "log.h"
#include "pidfile.h"
#include "redact.h"
#include "syslogmsg.h"
#include "unixsock.h"

#define MAX_OUTPUTS 16
#define DGRAM_MAX 65536            /* larger than any nginx message (about 2.3 KiB) */
#define RCVBUF_BYTES (1024 * 1024) /* room for bursts while a write is slow */
#define BATCH 256                  /* datagrams per wake-up before signals are looked at */
#define SOCKET_MODE 0660

typedef struct output {
    char tag[FM_SYSLOGMSG_TAG_MAX + 1];
    size_t tag_len;
    const char *path;
    int fd;
    unsigned long long lines;
    unsigned long long lost; /* lines the file did not take */
} output;

static volatile sig_atomic_t got_term, got_reopen;

static output outputs[MAX_OUTPUTS];
static size_t noutputs;
static unsigned long long dropped_tag, dropped_malformed, dropped_truncated;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void on_signal(int sig)
{
    if (sig == SIGTERM || sig == SIGINT)
        got_term = 1;
    else
        got_reopen = 1;
}

static void usage(void)
{
    (void)fprintf(stderr,
                  "usage: fetchml-logrelay -s SOCKET -o TAG=FILE [-o TAG=FILE...] [-c CONFIG]\n"
                  "                        [-g GROUP] [-p PIDFILE]\n"
                  "  -s SOCKET    unix datagram socket nginx sends syslog messages to\n"
                  "  -o TAG=FILE  append messages tagged TAG (nginx's tag=) to FILE\n"
                  "  -c CONFIG    fetchml-fcgi YAML: its Redis password is redacted too\n"
                  "  -g GROUP     group of the socket (mode 0660): nginx's workers' group\n"
                  "  -p PIDFILE   write the pid here\n");
}

/* "TAG=FILE" with TAG as nginx allows it: 1..32 of [A-Za-z0-9_]. */
static int add_output(const char *spec)
{
    const char *eq = strchr(spec, '=');
    size_t n = eq != NULL ? (size_t)(eq - spec) : 0;

    if (n == 0 || n > FM_SYSLOGMSG_TAG_MAX || eq[1] == '\0' || noutputs == MAX_OUTPUTS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)spec[i];

        if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_'))
            return -1;
    }
    for (size_t i = 0; i < noutputs; i++)
        if (outputs[i].tag_len == n && memcmp(outputs[i].tag, spec, n) == 0)
            return -1;
    memcpy(outputs[noutputs].tag, spec, n);
    outputs[noutputs].tag[n] = '\0';
    outputs[noutputs].tag_len = n;
    outputs[noutputs].path = eq + 1;
    outputs[noutputs].fd = -1;
    noutputs++;
    return 0;
}

static int open_output(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static int open_outputs(void)
{
    for (size_t i = 0; i < noutputs; i++) {
        outputs[i].fd = open_output(outputs[i].path);
        if (outputs[i].fd < 0) {
            fm_log_error("cannot open %s: %s", outputs[i].path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* After logrotate moved the files: same descriptor numbers, new files (dup3, as log.c). */
static void reopen_outputs(void)
{
    for (size_t i = 0; i < noutputs; i++) {
        int fd = open_output(outputs[i].path);

        if (fd < 0 || dup3(fd, outputs[i].fd, O_CLOEXEC) < 0)
            fm_log_error("reopening %s failed, still writing the old file: %s", outputs[i].path,
                         strerror(errno));
        if (fd >= 0)
            (void)close(fd);
        if (outputs[i].lost > 0) {
            fm_log_warn("%s: %llu lines could not be written", outputs[i].path, outputs[i].lost);
            outputs[i].lost = 0;
        }
    }
}

/* The secrets of the configuration, registered with the filter; nothing else is kept. */
static int load_secrets(const char *path)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = fm_config_load(path, err, sizeof(err));
    int rc = 0;

    if (cfg == NULL) {
        fm_log_error("%s", err);
        return -1;
    }
    if (cfg->redis.password != NULL && fm_redact_add_secret(cfg->redis.password) != 0) {
        fm_log_error("cannot register the Redis password with the filter: %s", strerror(errno));
        rc = -1;
    }
    fm_config_free(cfg);
    return rc;
}

static int open_socket(const char *path, const char *group)
{
    struct sockaddr_un sa;
    char why[256 + PATH_MAX];
    int fd = -1, size = RCVBUF_BYTES, rc;
    mode_t old;

    if (fm_unixsock_claim(path, SOCK_DGRAM, &sa, why, sizeof(why)) != 0) {
        fm_log_error("%s", why);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fm_log_error("socket: %s", strerror(errno));
        return -1;
    }
    /* Created with no access; group and mode are set before anyone may send. */
    old = umask(0777);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    (void)umask(old);
    if (rc != 0) {
        fm_log_error("bind %s: %s", path, strerror(errno));
        goto fail;
    }
    (void)snprintf(sock_path, sizeof(sock_path), "%s", path);
    if (group != NULL) {
        struct group *gr = getgrnam(group);

        if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) != 0) {
            fm_log_error("cannot give %s to group %s", path, group);
            goto fail;
        }
    }
    if (chmod(path, SOCKET_MODE) != 0) {
        fm_log_error("chmod %s: %s", path, strerror(errno));
        goto fail;
    }
    /* Best effort: the kernel caps it at net.core.rmem_max. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0)
        fm_log_warn("SO_RCVBUF: %s", strerror(errno));
    return fd;
fail:
    (void)close(fd);
    if (sock_path[0] != '\0')
        (void)unlink(sock_path);
    sock_path[0] = '\0';
    return -1;
}

static output *output_for(const char *tag, size_t n)
{
    for (size_t i = 0; i < noutputs; i++)
        if (outputs[i].tag_len == n && memcmp(outputs[i].tag, tag, n) == 0)
            return &outputs[i];
    return NULL;
}

static void relay_one(const char *dgram, size_t len)
{
    char line[FM_SYSLOGMSG_LINE_MAX];
    fm_syslogmsg m;
    output *out;
    size_t n;
    ssize_t w;

    if (fm_syslogmsg_parse(dgram, len, &m) != 0) {
        dropped_malformed++;
        return;
    }
    out = output_for(m.tag, m.tag_len);
    if (out == NULL) {
        dropped_tag++;
        return;
    }
    n = fm_syslogmsg_line(m.msg, m.msg_len, line);
    do {
        w = write(out->fd, line, n);
    } while (w < 0 && errno == EINTR);
    if (w >= 0 && (size_t)w == n)
        out->lines++;
    else
        out->lost++;
}

/* Reads every queued datagram, at most BATCH of them. Returns how many were read. */
static int drain(int fd)
{
    static char dgram[DGRAM_MAX];
    int k;

    for (k = 0; k < BATCH; k++) {
        ssize_t n = recv(fd, dgram, sizeof(dgram), MSG_DONTWAIT | MSG_TRUNC);

        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fm_log_error("recv: %s", strerror(errno));
            break;
        }
        /* A cut message could end in half a secret the filter no longer recognises. */
        if ((size_t)n > sizeof(dgram))
            dropped_truncated++;
        else
            relay_one(dgram, (size_t)n);
    }
    return k;
}

static void report(void)
{
    unsigned long long lines = 0, lost = 0;

    for (size_t i = 0; i < noutputs; i++) {
        lines += outputs[i].lines;
        lost += outputs[i].lost;
    }
    fm_log_info("fetchml-logrelay stopped: %llu lines written, %llu not written; dropped: %llu "
                "unknown tag, %llu malformed, %llu truncated",
                lines, lost, dropped_tag, dropped_malformed, dropped_truncated);
}

int main(int argc, char **argv)
{
    const char *socket_arg = NULL, *config = NULL, *group = NULL, *pidfile = NULL;
    int opt, fd = -1, rc = 1, wrote_pid = 0;
    struct sigaction sa;
    sigset_t block, waitmask;
    pid_t other;

    while ((opt = getopt(argc, argv, "s:o:c:g:p:h")) != -1) {
        switch (opt) {
        case 's':
            socket_arg = optarg;
            break;
        case 'o':
            if (add_output(optarg) != 0) {
                (void)fprintf(stderr,
                              "fetchml-logrelay: -o %s: want TAG=FILE, TAG 1-32 of "
                              "[A-Za-z0-9_], each TAG once, at most 16\n",
                              optarg);
                return 2;
            }
            break;
        case 'c':
            config = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 'p':
            pidfile = optarg;
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (socket_arg == NULL || noutputs == 0 || optind != argc) {
        usage();
        return 2;
    }
    if (sodium_init() < 0) {
        (void)fprintf(stderr, "fetchml-logrelay: libsodium initialisation failed\n");
        return 1;
    }
    /* The relay's own messages go to stderr, through the same filter. */
    if (fm_log_open(NULL, FM_LOG_INFO, 0) != 0)
        return 1;
    if (config != NULL && load_secrets(config) != 0)
        goto out;
    if (pidfile != NULL && (other = fm_pidfile_running(pidfile)) != 0) {
        fm_log_error("already running (pid %d in %s); not starting", (int)other, pidfile);
        goto out;
    }
    if (open_outputs() != 0 || (fd = open_socket(socket_arg, group)) < 0)
        goto out;
    if (pidfile != NULL) {
        if (fm_pidfile_write(pidfile) != 0) {
            fm_log_error("cannot write pid file %s: %s", pidfile, strerror(errno));
            goto out;
        }
        wrote_pid = 1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &block, &waitmask) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0) {
        fm_log_error("signals: %s", strerror(errno));
        goto out;
    }
    fm_log_info("fetchml-logrelay started on %s, %zu outputs", socket_arg, noutputs);

    while (!got_term) {
        struct pollfd pfd = {fd, POLLIN, 0};

        if (got_reopen) {
            got_reopen = 0;
            reopen_outputs();
        }
        if (ppoll(&pfd, 1, NULL, &waitmask) < 0) {
            if (errno != EINTR) {
                fm_log_error("ppoll: %s", strerror(errno));
                goto out;
            }
            continue;
        }
        (void)drain(fd);
    }
    /* nginx is stopped first (run-local.sh, systemd ordering): keep what it sent last. */
    while (drain(fd) == BATCH)
        ;
    rc = 0;
out:
    if (sock_path[0] != '\0')
        (void)unlink(sock_path);
    if (fd >= 0)
        (void)close(fd);
    if (wrote_pid)
        (void)unlink(pidfile);
    for (size_t i = 0; i < noutputs; i++)
        if (outputs[i].fd >= 0)
            (void)close(outputs[i].fd);
    if (rc == 0)
        report();
    fm_redact_clear_secrets();
    fm_log_close();
    return rc;
}
