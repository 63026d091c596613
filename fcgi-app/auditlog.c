/*
 * auditlog.c - the audit logger: the one process that holds the audit trail
 * open for writing (OpenBSD httpd's logger process is the model; audit.h,
 * "Who writes the file").
 *
 * The master forks one per configuration generation, before the workers,
 * and restarts it like any child. It accepts the connections of the
 * generation's workers, sweeper and relay on the listening socket the master
 * made (fm_audit_endpoint_open), writes each record they send and answers
 * (fm_audit_serve). It is single-threaded: records are written in the order
 * they are read, one at a time, so the chain needs no lock between senders
 * (the chain region's lock still orders it with the logger of another
 * generation writing the same file during a reload).
 *
 * Signing: with logging.audit_sign_key set it reads the secret key from the
 * descriptor the master opened (the key file may be readable by root only;
 * no other child keeps that descriptor, and the master itself never reads
 * the key but to check it), and writes a signed checkpoint
 * (auditsign.h) every logging.audit_sign_interval_ms when records came in,
 * before it reopens the file (SIGUSR1, a rotation) and when it stops.
 *
 * Stopping (TERM, INT, QUIT): it accepts no new connection, serves the ones
 * it has until their senders close them (they are stopping too, each after
 * its request in flight), signs the head and exits. It is not dumpable
 * (PR_SET_DUMPABLE 0), so another process of the same user cannot ptrace it
 * or open its descriptors through /proc.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "audit.h"
#include "auditsign.h"
#include "grow.h"
#include "log.h"

#define CONN_INITIAL 16

static volatile sig_atomic_t stopping, reopen_logs;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    reopen_logs = 1;
}

/* What the logger holds from start to exit. */
static struct {
    const fm_config *cfg;
    fm_audit_shared *chain;
    int listen_fd, key_fd;
    fm_audit *audit;
    fm_audit_key *key;
    struct pollfd *fds; /* [0] the listening socket (fd -1 once stopping), then connections */
    size_t nfds, cap;
    long long next_sign_ms;
    sigset_t waitmask;
} g = {.listen_fd = -1, .key_fd = -1};

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A checkpoint now, if a key is set and records came in since the last one. */
static void sign(const char *why)
{
    bool written;

    if (g.key == NULL)
        return;
    if (fm_audit_checkpoint(g.audit, g.key, &written) != FM_OK)
        fm_log_error("audit logger %d: cannot write a signed checkpoint (%s): %s", (int)getpid(),
                     why, strerror(errno));
    g.next_sign_ms = now_ms() + g.cfg->logging.audit_sign_interval_ms;
}

/* ---- start-up steps, in order; each logs its own failure ------------------------- */

static fm_err init_signals(void)
{
    static const fm_daemon_signal sigs[] = {
        {SIGTERM, on_stop}, {SIGINT, on_stop},  {SIGQUIT, on_stop}, {SIGUSR1, on_usr1},
        {SIGHUP, SIG_IGN},  {SIGPIPE, SIG_IGN}, {SIGCHLD, SIG_DFL},
    };

    (void)prctl(PR_SET_NAME, "fetchml-audit");
    if (prctl(PR_SET_DUMPABLE, 0) != 0) {
        fm_log_error("audit logger %d: cannot start: PR_SET_DUMPABLE: %s", (int)getpid(),
                     strerror(errno));
        return FM_ESYS;
    }
    return fm_worker_signals(sigs, sizeof(sigs) / sizeof(sigs[0]), &g.waitmask);
}

static fm_err init_key(void)
{
    char err[256];

    if (g.key_fd < 0)
        return FM_OK;
    g.key = fm_audit_key_load(g.key_fd, err, sizeof err);
    (void)close(g.key_fd);
    g.key_fd = -1;
    if (g.key == NULL) {
        fm_log_error("audit logger %d: cannot start: %s: %s", (int)getpid(),
                     g.cfg->logging.audit_sign_key, err);
        return FM_ESYS;
    }
    g.next_sign_ms = now_ms() + g.cfg->logging.audit_sign_interval_ms;
    return FM_OK;
}

static fm_err init_file(void)
{
    g.audit = fm_audit_open(g.cfg->logging.file, g.chain);
    if (g.audit == NULL) {
        fm_log_error("audit logger %d: cannot start: cannot open %s: %s", (int)getpid(),
                     g.cfg->logging.file, strerror(errno));
        return FM_ESYS;
    }
    fm_audit_set_sync(g.audit, g.cfg->logging.audit_sync, g.cfg->logging.audit_sync_ms);
    return FM_OK;
}

static fm_err init_poll(void)
{
    g.fds = fm_grow(NULL, 0, &g.cap, sizeof(*g.fds), CONN_INITIAL);
    if (g.fds == NULL) {
        fm_log_error("audit logger %d: cannot start: out of memory", (int)getpid());
        return FM_ESYS;
    }
    g.fds[0] = (struct pollfd){.fd = g.listen_fd, .events = POLLIN};
    g.nfds = 1;
    return FM_OK;
}

static fm_err (*const init_steps[])(void) = {
    init_signals,
    init_key,
    init_file,
    init_poll,
};

/* ---- serving ------------------------------------------------------------------------ */

/* A new sender: only a process of this user (the pool's), anyone else is hung up on. */
static void accept_one(void)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    struct pollfd *grown;
    int fd = accept4(g.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return; /* EAGAIN, or the sender gave up: nothing to do */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
        fm_log_warn("audit logger: refused a connection from uid %d (pid %d)",
                    len == sizeof cred ? (int)cred.uid : -1, len == sizeof cred ? cred.pid : -1);
        (void)close(fd);
        return;
    }
    grown = fm_grow(g.fds, g.nfds, &g.cap, sizeof(*g.fds), CONN_INITIAL);
    if (grown == NULL) {
        fm_log_error("audit logger: out of memory: refused a connection (pid %d)", cred.pid);
        (void)close(fd);
        return;
    }
    g.fds = grown;
    g.fds[g.nfds++] = (struct pollfd){.fd = fd, .events = POLLIN};
}

/* Serves what waits on connection i; a connection that ended is closed and dropped. */
static void serve_one(size_t i)
{
    fm_err rc = fm_audit_serve(g.audit, g.fds[i].fd);

    if (rc == FM_OK)
        return;
    if (rc == FM_EPARSE)
        fm_log_warn("audit logger: a sender sent something that is not a record; hung up");
    else if (rc == FM_ESYS)
        fm_log_warn("audit logger: a connection failed: %s", strerror(errno));
    (void)close(g.fds[i].fd);
    g.fds[i].fd = -1; /* compacted after the pass */
}

static void compact(void)
{
    size_t k = 1;

    for (size_t i = 1; i < g.nfds; i++)
        if (g.fds[i].fd >= 0)
            g.fds[k++] = g.fds[i];
    g.nfds = k;
}

static void reopen(void)
{
    sign("before reopening");
    if (fm_log_reopen() != 0 || fm_audit_reopen(g.audit) != FM_OK)
        fm_log_error("audit logger %d: reopening logs failed: %s", (int)getpid(), strerror(errno));
}

/* Until stopped and every sender has gone. */
static void serve_loop(void)
{
    for (;;) {
        long long wait = -1;
        struct timespec ts;
        int n;

        if (reopen_logs) {
            reopen_logs = 0;
            reopen();
        }
        if (stopping && g.fds[0].fd >= 0) {
            g.fds[0].fd = -1; /* the master keeps the socket for the next logger */
            fm_log_info("audit logger %d: stopping once its %zu senders have", (int)getpid(),
                        g.nfds - 1);
        }
        if (stopping && g.nfds == 1)
            return;
        if (g.key != NULL) {
            if (now_ms() >= g.next_sign_ms)
                sign("interval");
            wait = g.next_sign_ms - now_ms();
            if (wait < 0)
                wait = 0;
        }
        ts = (struct timespec){wait / 1000, (long)(wait % 1000) * 1000000L};
        n = ppoll(g.fds, g.nfds, wait >= 0 ? &ts : NULL, &g.waitmask);
        if (n < 0 && errno != EINTR) {
            fm_log_error("audit logger %d: ppoll failed: %s", (int)getpid(), strerror(errno));
            return;
        }
        if (n <= 0)
            continue;
        for (size_t i = 1; i < g.nfds; i++)
            if (g.fds[i].revents != 0)
                serve_one(i);
        compact();
        if (g.fds[0].fd >= 0 && (g.fds[0].revents & POLLIN) != 0)
            accept_one();
    }
}

void fm_auditlog_main(const fm_config *cfg, fm_audit_shared *chain, int listen_fd, int key_fd)
{
    int status = 1;
    size_t i = 0;

    g.cfg = cfg;
    g.chain = chain;
    g.listen_fd = listen_fd;
    g.key_fd = key_fd;
    while (i < sizeof(init_steps) / sizeof(init_steps[0]) && init_steps[i]() == FM_OK)
        i++;
    if (i == sizeof(init_steps) / sizeof(init_steps[0])) {
        fm_log_info("audit logger %d: writing %s%s", (int)getpid(), cfg->logging.file,
                    g.key != NULL ? ", signing its head" : " (no signing key: checkpoints off)");
        serve_loop();
        sign("stopping");
        status = 0;
    }
    for (size_t k = 1; k < g.nfds; k++)
        (void)close(g.fds[k].fd);
    free(g.fds);
    fm_audit_close(g.audit);
    fm_audit_key_free(g.key);
    exit(status); /* exit, not _exit: LeakSanitizer checks at exit in sanitizer builds */
}
