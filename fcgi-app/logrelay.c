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
 * of that configuration is registered with the filter as a literal secret,
 * and every key's digest, so that a key is redacted in any format, as
 * fetchml-fcgi does; SIGHUP reads them again. Messages with an unknown tag, a malformed header or
 * that were cut by the socket are dropped and counted; the counts are logged
 * on exit.
 *
 *   SIGUSR1           reopen the output files (logrotate)
 *   SIGHUP            the same, and read the secrets of -c CONFIG again
 *   SIGTERM, SIGINT   read what is queued, remove the socket and exit
 *
 * The main loop waits in ppoll with signals unblocked only there, so a
 * signal is handled between messages, never in the middle of a write.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "redact.h"
#include "syslogmsg.h"

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

static volatile sig_atomic_t got_term, got_reopen, got_reload;

static output outputs[MAX_OUTPUTS];
static size_t noutputs;
static unsigned long long dropped_tag, dropped_malformed, dropped_truncated;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void on_signal(int sig)
{
    if (sig == SIGTERM || sig == SIGINT)
        got_term = 1;
    else if (sig == SIGHUP)
        got_reload = 1;
    else
        got_reopen = 1;
}

static const char usage[] =
    "usage: fetchml-logrelay -s SOCKET -o TAG=FILE [-o TAG=FILE...] [-c CONFIG]\n"
    "                        [-g GROUP] [-p PIDFILE]\n"
    "  -s SOCKET    unix datagram socket nginx sends syslog messages to\n"
    "  -o TAG=FILE  append messages tagged TAG (nginx's tag=) to FILE\n"
    "  -c CONFIG    fetchml-fcgi YAML: its Redis password is redacted too\n"
    "  -g GROUP     group of the socket (mode 0660): nginx's workers' group\n"
    "  -p PIDFILE   write the pid here\n";

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

/*
 * The secrets of the configuration (the Redis password, every key's digest),
 * registered with the filter in place of the previous ones; nothing else is
 * kept. A config that does not load leaves the previous secrets in force.
 */
static int load_secrets(const char *path)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = fm_config_load(path, err, sizeof(err));
    int rc;

    if (cfg == NULL) {
        fm_log_error("%s", err);
        return -1;
    }
    rc = fm_daemon_secrets(cfg) == FM_OK ? 0 : -1;
    fm_config_free(cfg);
    return rc;
}

static int open_socket(const char *path, const char *group)
{
    int fd, size = RCVBUF_BYTES;

    if (fm_daemon_unix_socket(path, SOCK_DGRAM | SOCK_NONBLOCK, group, SOCKET_MODE, "-s", &fd) !=
        FM_OK)
        return -1;
    (void)snprintf(sock_path, sizeof(sock_path), "%s", path);
    /* Best effort: the kernel caps it at net.core.rmem_max. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0)
        fm_log_warn("SO_RCVBUF: %s", strerror(errno));
    return fd;
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

/* -o: an fm_daemon_opt hook. */
static bool option_output(const char *spec)
{
    if (add_output(spec) == 0)
        return true;
    (void)fprintf(stderr,
                  "fetchml-logrelay: -o %s: want TAG=FILE, TAG 1-32 of [A-Za-z0-9_], each TAG "
                  "once, at most 16\n",
                  spec);
    return false;
}

/* Everything the relay holds from start to exit. */
static struct {
    const char *socket_path, *config, *group, *pidfile;
    int fd;
    sigset_t waitmask;
} r = {.fd = -1};

/* ---- start-up steps, in order; each logs its own failure ------------------------- */

static fm_err init_secrets(void)
{
    return r.config == NULL || load_secrets(r.config) == 0 ? FM_OK : FM_ESYS;
}

static fm_err init_pidfile_free(void)
{
    return fm_daemon_pidfile_free(r.pidfile);
}

static fm_err init_files(void)
{
    if (open_outputs() != 0 || (r.fd = open_socket(r.socket_path, r.group)) < 0)
        return FM_ESYS;
    return FM_OK;
}

static fm_err init_pidfile_write(void)
{
    return fm_daemon_pidfile_write(r.pidfile);
}

static fm_err init_signals(void)
{
    static const fm_daemon_signal sigs[] = {
        {SIGTERM, on_signal}, {SIGINT, on_signal}, {SIGUSR1, on_signal}, {SIGHUP, on_signal}};

    return fm_daemon_signals(sigs, sizeof(sigs) / sizeof(sigs[0]), &r.waitmask);
}

static fm_err (*const init_steps[])(void) = {
    init_secrets, init_pidfile_free, init_files, init_pidfile_write, init_signals,
};

/* Relays until SIGTERM or SIGINT; FM_ESYS when waiting on the socket fails (logged). */
static fm_err relay(void)
{
    while (!got_term) {
        struct pollfd pfd = {r.fd, POLLIN, 0};

        if (got_reload) {
            /* The keys may have changed with the pool's config: read its secrets again. */
            got_reload = 0;
            got_reopen = 1;
            if (r.config != NULL && load_secrets(r.config) != 0)
                fm_log_error("reload: keeping the secrets registered before");
            else if (r.config != NULL)
                fm_log_info("reload: secrets of %s registered", r.config);
        }
        if (got_reopen) {
            got_reopen = 0;
            reopen_outputs();
        }
        if (ppoll(&pfd, 1, NULL, &r.waitmask) < 0) {
            if (errno != EINTR) {
                fm_log_error("ppoll: %s", strerror(errno));
                return FM_ESYS;
            }
            continue;
        }
        (void)drain(r.fd);
    }
    /* nginx is stopped first (run-local.sh, systemd ordering): keep what it sent last. */
    while (drain(r.fd) == BATCH)
        ;
    return FM_OK;
}

static void cleanup(void)
{
    if (sock_path[0] != '\0')
        (void)unlink(sock_path);
    if (r.fd >= 0)
        (void)close(r.fd);
    fm_daemon_pidfile_remove();
    for (size_t i = 0; i < noutputs; i++)
        if (outputs[i].fd >= 0)
            (void)close(outputs[i].fd);
}

int main(int argc, char **argv)
{
    const fm_daemon_opt opts[] = {
        {.letter = 's', .arg = &r.socket_path, .required = true},
        {.letter = 'o', .add = option_output, .required = true},
        {.letter = 'c', .arg = &r.config},
        {.letter = 'g', .arg = &r.group},
        {.letter = 'p', .arg = &r.pidfile},
    };
    int status;
    size_t i = 0;
    fm_err rc = FM_ESYS;

    if (!fm_daemon_options(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), usage, &status))
        return status;
    if (fm_daemon_sodium("fetchml-logrelay") != FM_OK)
        return 1;
    /* The relay's own messages go to stderr, through the same filter. */
    if (fm_log_open(NULL, FM_LOG_INFO, 0) != 0)
        return 1;
    while (i < sizeof(init_steps) / sizeof(init_steps[0]) && init_steps[i]() == FM_OK)
        i++;
    if (i == sizeof(init_steps) / sizeof(init_steps[0])) {
        fm_log_info("fetchml-logrelay started on %s, %zu outputs", r.socket_path, noutputs);
        rc = relay();
    }
    cleanup();
    if (rc == FM_OK)
        report();
    fm_redact_clear_secrets();
    fm_log_close();
    return rc == FM_OK ? 0 : 1;
}
