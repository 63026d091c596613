/*
 * auditlog.c - the audit logger: the one process that holds the audit trail
 * open for writing (OpenBSD httpd's logger process is the model; audit.h,
 * "Who writes the file").
 *
 * The master forks it once, while still root, before anything else; it
 * gives up root for logging.audit_user, an account of its own, so that no
 * process of the pool's account (server.user) can open, truncate or replace
 * the trail, signal the logger or read its memory, and it lives as long as
 * the master. The master tells it each configuration generation's trail over
 * the control socket (auditctl.h): the logger opens the file and the signing
 * key itself, under its own account, checks that the file's directory lets
 * no other account remove or replace it (fm_audit_check_place), and accepts
 * the generation's workers, sweeper and relay on the listening socket the
 * master made and passed. It writes each record they send and answers
 * (fm_audit_serve). It is single-threaded: records are written in the order
 * they are read, one at a time. Two generations writing one file during a
 * reload share the file's chain region (chains.h), so seq and prev_hash
 * continue from one to the other.
 *
 * It is not restarted: the master, under another account, could not start
 * it again. If it dies, the master stops (status 1) and its supervisor
 * (systemd's Restart=) starts everything afresh; a new logger takes the
 * chain head from the file's last record, which only its account can have
 * written. Started by a master that is not root, it runs as the master's own
 * account and says so (conf/README.md, logging.audit_user).
 *
 * Signing: with logging.audit_sign_key set it writes a signed checkpoint
 * (auditsign.h) every logging.audit_sign_interval_ms when records came in,
 * before it reopens the file (SIGUSR1, a rotation), when a generation's
 * trail closes and when it stops.
 *
 * Stopping (the master closes the control socket, or TERM/INT/QUIT): it
 * accepts no new connection, serves the ones it has until their senders
 * close them (they are stopping too, each after its request in flight),
 * signs the heads and exits. It is not dumpable (PR_SET_DUMPABLE 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "audit.h"
#include "auditctl.h"
#include "auditsign.h"
#include "chains.h"
#include "grow.h"
#include "log.h"
#include "unixsock.h"

#define INITIAL 8

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

/* One generation's trail. */
typedef struct trail {
    int generation;
    int listen_fd; /* -1 once a newer generation came or the logger stops */
    uid_t peer;    /* the only uid served */
    fm_audit *audit;
    fm_audit_key *key; /* NULL: no checkpoints */
    int sign_interval_ms;
    long long next_sign_ms;
    size_t conns; /* its open connections */
} trail;

typedef struct conn {
    int fd;
    int generation; /* its trail's */
} conn;

/* What the logger holds from start to exit. */
static struct {
    int ctl; /* the master's control socket, -1 once it closed */
    fm_chains chains;
    trail *trails; /* oldest first */
    size_t ntrails, tcap;
    conn *conns;
    size_t nconns, ccap;
    struct pollfd *fds;
    size_t fcap;
    sigset_t waitmask;
} g = {.ctl = -1};

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A checkpoint in t's file now, if it has a key and records came in since the last one. */
static void sign(trail *t, const char *why)
{
    bool written;

    if (t->key == NULL)
        return;
    if (fm_audit_checkpoint(t->audit, t->key, &written) != FM_OK)
        fm_log_error("audit logger %d: cannot write a signed checkpoint (%s): %s", (int)getpid(),
                     why, strerror(errno));
    t->next_sign_ms = now_ms() + t->sign_interval_ms;
}

/* A reason into why (cap bytes), cut to fit: paths may be long. */
static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static trail *find(int generation)
{
    for (size_t i = 0; i < g.ntrails; i++)
        if (g.trails[i].generation == generation)
            return &g.trails[i];
    return NULL;
}

/* ---- a generation's trail --------------------------------------------------------- */

/*
 * The signing key at path, read under the logger's account (it should be
 * the key's owner): a regular file that group and others may not read, like
 * ssh's private keys. NULL with the reason in why.
 */
static fm_audit_key *open_key(const char *path, char *why, size_t cap)
{
    char err[256];
    fm_audit_key *key = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0 || fstat(fd, &st) != 0)
        say(why, cap, "logging.audit_sign_key: cannot open %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
        say(why, cap,
            "logging.audit_sign_key: %s must be a regular file that only its owner "
            "may read (mode 0600 or 0400)",
            path);
    else if ((key = fm_audit_key_load(fd, err, sizeof err)) == NULL)
        say(why, cap, "logging.audit_sign_key: %s: %s", path, err);
    if (fd >= 0)
        (void)close(fd);
    return key;
}

/* The trail msg describes, opened into t; false with the reason in why. */
static bool open_trail(trail *t, const fm_auditctl_msg *msg, char *why, size_t cap)
{
    fm_audit_shared *chain;

    if (msg->peer_uid != geteuid() && fm_audit_check_place(msg->file, geteuid(), why, cap) != FM_OK)
        return false;
    if (msg->key[0] != '\0' && (t->key = open_key(msg->key, why, cap)) == NULL)
        return false;
    /* The key's place too: the pool's account must not be able to swap in a key of its own. */
    if (msg->key[0] != '\0' && msg->peer_uid != geteuid()) {
        char place[384];
        if (fm_audit_check_place(msg->key, geteuid(), place, sizeof place) != FM_OK) {
            say(why, cap, "logging.audit_sign_key: %s", place);
            goto fail;
        }
    }
    if ((chain = fm_chains_use(&g.chains, msg->file, msg->generation)) == NULL) {
        say(why, cap, "cannot read the chain head of %s: %s", msg->file,
            errno == EBADMSG ? "its last line is not an audit record" : strerror(errno));
        goto fail;
    }
    if ((t->audit = fm_audit_open(msg->file, chain)) == NULL) {
        say(why, cap, "cannot open %s for appending: %s", msg->file,
            errno == EPERM ? "it is not a regular file of the audit logger's account"
                           : strerror(errno));
        goto fail;
    }
    fm_audit_set_sync(t->audit, (fm_audit_sync)msg->sync, msg->sync_ms);
    t->generation = msg->generation;
    t->peer = (uid_t)msg->peer_uid;
    t->sign_interval_ms = msg->sign_interval_ms;
    t->next_sign_ms = now_ms() + msg->sign_interval_ms;
    return true;

fail:
    fm_audit_key_free(t->key);
    t->key = NULL;
    return false;
}

static void close_trail(trail *t, const char *why)
{
    if (t->listen_fd >= 0)
        (void)close(t->listen_fd);
    t->listen_fd = -1;
    sign(t, why);
    fm_audit_close(t->audit);
    fm_audit_key_free(t->key);
    *t = (trail){.listen_fd = -1};
}

/* Trails retired and left by their last sender are closed; chains no trail writes are released. */
static void close_idle(void)
{
    size_t k = 0;

    for (size_t i = 0; i < g.ntrails; i++) {
        trail *t = &g.trails[i];
        if (t->listen_fd < 0 && t->conns == 0) {
            fm_log_info("audit logger %d: generation %d's trail closed", (int)getpid(),
                        t->generation);
            close_trail(t, "a generation's trail closes");
            continue;
        }
        g.trails[k++] = *t;
    }
    g.ntrails = k;
    fm_chains_release(&g.chains, g.ntrails > 0 ? g.trails[0].generation : INT_MAX);
}

/* GEN: the new generation's trail; the older ones stop accepting. */
static void new_generation(const fm_auditctl_msg *msg, int listen_fd)
{
    fm_auditctl_reply reply = {.generation = msg->generation, .ok = 0};
    trail t = {.listen_fd = -1}, *grown;

    if (listen_fd < 0 || msg->file[0] == '\0' ||
        memchr(msg->file, '\0', sizeof msg->file) == NULL ||
        memchr(msg->key, '\0', sizeof msg->key) == NULL || find(msg->generation) != NULL) {
        say(reply.why, sizeof reply.why, "malformed request from the master");
    } else if (open_trail(&t, msg, reply.why, sizeof reply.why)) {
        grown = fm_grow(g.trails, g.ntrails, &g.tcap, sizeof(*g.trails), INITIAL);
        if (grown == NULL) {
            say(reply.why, sizeof reply.why, "out of memory");
            close_trail(&t, "out of memory");
        } else {
            g.trails = grown;
            for (size_t i = 0; i < g.ntrails; i++) {
                if (g.trails[i].listen_fd >= 0)
                    (void)close(g.trails[i].listen_fd);
                g.trails[i].listen_fd = -1;
            }
            t.listen_fd = listen_fd;
            listen_fd = -1;
            g.trails[g.ntrails++] = t;
            reply.ok = 1;
            fm_log_info("audit logger %d: generation %d writes %s%s", (int)getpid(),
                        msg->generation, msg->file,
                        t.key != NULL ? ", signing its head"
                                      : " (no signing key: checkpoints off)");
        }
    }
    if (listen_fd >= 0)
        (void)close(listen_fd);
    if (!reply.ok)
        fm_log_error("audit logger %d: generation %d refused: %s", (int)getpid(), msg->generation,
                     reply.why);
    if (fm_unixsock_send(g.ctl, &reply, sizeof reply, -1) != FM_OK)
        fm_log_error("audit logger %d: cannot answer the master: %s", (int)getpid(),
                     strerror(errno));
}

static void reopen(void)
{
    for (size_t i = 0; i < g.ntrails; i++) {
        sign(&g.trails[i], "before reopening");
        if (fm_audit_reopen(g.trails[i].audit) != FM_OK)
            fm_log_error("audit logger %d: reopening generation %d's trail failed: %s",
                         (int)getpid(), g.trails[i].generation, strerror(errno));
    }
}

/* A message on the control socket; the master closing it is the stop. */
static void control(void)
{
    fm_auditctl_msg msg;
    size_t len;
    int fd;
    fm_err rc = fm_unixsock_recv(g.ctl, &msg, sizeof msg, &len, &fd);

    if (rc == FM_ESYS && (errno == EINTR || errno == EAGAIN))
        return;
    if (rc != FM_OK) {
        if (rc != FM_ENOTFOUND)
            fm_log_error("audit logger %d: the control socket failed: %s", (int)getpid(),
                         strerror(errno));
        (void)close(g.ctl);
        g.ctl = -1;
        stopping = 1;
        return;
    }
    if (len == sizeof msg && msg.type == FM_AUDITCTL_GEN) {
        new_generation(&msg, fd);
    } else if (len == sizeof msg && msg.type == FM_AUDITCTL_REOPEN) {
        if (fd >= 0 && fm_log_use_fd(fd) != FM_OK)
            fm_log_error("audit logger %d: cannot take the new api log: %s", (int)getpid(),
                         strerror(errno));
        reopen();
    } else {
        if (fd >= 0)
            (void)close(fd);
        fm_log_error("audit logger %d: ignored a malformed control message (%zu bytes)",
                     (int)getpid(), len);
    }
}

/* ---- serving ------------------------------------------------------------------------ */

/* A new sender on t's socket: only a process of t's peer uid, anyone else is hung up on. */
static void accept_one(trail *t)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    conn *grown;
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return; /* EAGAIN, or the sender gave up: nothing to do */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != t->peer) {
        fm_log_warn("audit logger: refused a connection from uid %d (pid %d)",
                    len == sizeof cred ? (int)cred.uid : -1, len == sizeof cred ? cred.pid : -1);
        (void)close(fd);
        return;
    }
    grown = fm_grow(g.conns, g.nconns, &g.ccap, sizeof(*g.conns), INITIAL);
    if (grown == NULL) {
        fm_log_error("audit logger: out of memory: refused a connection (pid %d)", cred.pid);
        (void)close(fd);
        return;
    }
    g.conns = grown;
    g.conns[g.nconns++] = (conn){.fd = fd, .generation = t->generation};
    t->conns++;
}

/* Serves what waits on connection c; false when it ended (closed here). */
static bool serve_one(conn *c)
{
    trail *t = find(c->generation);
    fm_err rc = t != NULL ? fm_audit_serve(t->audit, c->fd) : FM_ENOTFOUND;

    if (rc == FM_OK)
        return true;
    if (rc == FM_EPARSE)
        fm_log_warn("audit logger: a sender sent something that is not a record; hung up");
    else if (rc == FM_ESYS)
        fm_log_warn("audit logger: a connection failed: %s", strerror(errno));
    (void)close(c->fd);
    if (t != NULL)
        t->conns--;
    return false;
}

/* The poll set: the control socket, each accepting trail's socket, then the connections. */
static size_t poll_set(void)
{
    size_t n = 0, want = 1 + g.ntrails + g.nconns;
    struct pollfd *grown;

    if (want > g.fcap) {
        grown = realloc(g.fds, want * sizeof(*g.fds));
        if (grown == NULL)
            return 0;
        g.fds = grown;
        g.fcap = want;
    }
    g.fds[n++] = (struct pollfd){.fd = g.ctl, .events = POLLIN};
    for (size_t i = 0; i < g.ntrails; i++)
        g.fds[n++] = (struct pollfd){.fd = g.trails[i].listen_fd, .events = POLLIN};
    for (size_t i = 0; i < g.nconns; i++)
        g.fds[n++] = (struct pollfd){.fd = g.conns[i].fd, .events = POLLIN};
    return n;
}

/* How long ppoll may wait, ms (-1: no checkpoint due), after writing the ones due now. */
static long long sign_due(void)
{
    long long wait = -1, now = now_ms();

    for (size_t i = 0; i < g.ntrails; i++) {
        trail *t = &g.trails[i];
        if (t->key == NULL)
            continue;
        if (now >= t->next_sign_ms)
            sign(t, "interval");
        if (wait < 0 || t->next_sign_ms - now < wait)
            wait = t->next_sign_ms - now;
    }
    return wait < 0 ? -1 : wait;
}

static void stop_accepting(void)
{
    for (size_t i = 0; i < g.ntrails; i++) {
        if (g.trails[i].listen_fd >= 0)
            (void)close(g.trails[i].listen_fd);
        g.trails[i].listen_fd = -1;
    }
}

/*
 * One pass over what ppoll reported, in the order of poll_set (ntrails: the
 * trails it listed; a GEN read here appends one, which waits for the next).
 */
static void handle(size_t ntrails)
{
    size_t k = 0;

    if (g.fds[0].revents != 0)
        control(); /* may add a trail (appended: indexes below stay) and close sockets */
    /* The connections first: a trail's count must be right before it is closed. */
    for (size_t i = 0; i < g.nconns; i++) {
        struct pollfd *p = &g.fds[1 + ntrails + i];
        if (p->fd != g.conns[i].fd || p->revents == 0 || serve_one(&g.conns[i]))
            g.conns[k++] = g.conns[i];
    }
    g.nconns = k;
    for (size_t i = 0; i < ntrails && i < g.ntrails; i++) {
        struct pollfd *p = &g.fds[1 + i];
        trail *t = &g.trails[i];
        if (t->listen_fd >= 0 && p->fd == t->listen_fd && (p->revents & POLLIN) != 0)
            accept_one(t);
    }
}

/* Until stopped and every sender has gone. */
static void serve_loop(void)
{
    for (;;) {
        long long wait;
        struct timespec ts;
        size_t n;
        int r;

        if (reopen_logs) {
            reopen_logs = 0;
            reopen();
        }
        if (stopping)
            stop_accepting();
        close_idle();
        if (stopping && g.nconns == 0)
            return;
        wait = sign_due();
        if ((n = poll_set()) == 0) {
            fm_log_error("audit logger %d: out of memory", (int)getpid());
            return;
        }
        ts = (struct timespec){wait / 1000, (long)(wait % 1000) * 1000000L};
        r = ppoll(g.fds, n, wait >= 0 ? &ts : NULL, &g.waitmask);
        if (r < 0 && errno != EINTR) {
            fm_log_error("audit logger %d: ppoll failed: %s", (int)getpid(), strerror(errno));
            return;
        }
        if (r > 0)
            handle(g.ntrails);
    }
}

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

void fm_auditlog_main(int ctl)
{
    int status = 1;

    g.ctl = ctl;
    if (init_signals() == FM_OK) {
        serve_loop();
        status = 0;
    }
    stop_accepting();
    for (size_t i = 0; i < g.nconns; i++)
        (void)close(g.conns[i].fd);
    for (size_t i = 0; i < g.ntrails; i++)
        close_trail(&g.trails[i], "stopping");
    fm_chains_clear(&g.chains);
    free(g.trails);
    free(g.conns);
    free(g.fds);
    if (g.ctl >= 0)
        (void)close(g.ctl);
    exit(status); /* exit, not _exit: LeakSanitizer checks at exit in sanitizer builds */
}
