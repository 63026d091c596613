/*
 * main.c - fetchml-fcgi master: parse the config, open the FastCGI socket,
 * fork the worker pool and supervise it (the php-fpm / nginx model).
 *
 *   SIGHUP   load the config again; if valid, fork a new generation of
 *            workers on the same socket and TERM the old one (each old worker
 *            finishes its request in flight); if invalid, log why and keep
 *            serving the old config.
 *   SIGTERM  graceful stop: remove the socket's name (no new connections),
 *   SIGINT   QUIT the workers, which finish their request and serve what is
 *            already queued on the socket, then wait (KILL after a grace period).
 *   SIGUSR1  reopen log files in the master and every worker.
 *   SIGCHLD  a worker of the current generation that dies is respawned;
 *            workers that crash young (a failed start, a crash signal; not
 *            a kill from outside) back off exponentially (crash loop).
 *
 * Counters live in one shared region (metrics.h) mapped here before the
 * first fork and kept for the master's life: workers, sweepers and every
 * generation count into it, so GET /metrics is exact across restarts and
 * reloads; the master counts restarts and reloads and frees reaped workers'
 * pool slots.
 *
 * Beside the pool, each generation has one sweeper (sweeper.c), which ends
 * expired job leases; it is kept in a table of its own and treated like a
 * worker in every respect above: respawned, backed off, replaced on reload,
 * stopped, told to reopen its logs. So is the WebSocket relay (wsrelay.c),
 * one per generation when websocket.publisher is set, in a third table.
 *
 * The audit logger (auditlog.c), the only process that opens the audit
 * trail for writing, is different: forked once, first, while the master is
 * still root, it gives up root for logging.audit_user, an account of its
 * own, and lives as long as the master, serving every generation. The
 * master tells it each generation's trail over a socketpair (auditctl.h),
 * with the listening socket the generation's children send their records to
 * (fm_audit_endpoint_open); the logger opens the file and the signing key
 * itself. No other child keeps the master's end of that socketpair. As the
 * master cannot start it again under that account, a logger that dies stops
 * the master (status 1) for its supervisor to restart.
 *
 * The relay's publisher token (websocket.publisher_token_file) is opened by
 * the master too (open_token, while root at start) and only the relay keeps
 * the descriptor; every other child closes it right after fork, and the
 * logger never has it (it is opened after the logger is forked).
 *
 * Started as root, the master binds the socket (given to server.user, in
 * socket_group, before anyone may connect), opens its logs and pid file,
 * gives the api log it may have created to server.user and the audit trail
 * to logging.audit_user, forks the logger, and then drops to server.user
 * for good (privdrop.h) before it forks anything else: no other child and
 * no later reload ever runs as root. It refuses to start as root without a
 * server.user and a logging.audit_user of its own; started as another user,
 * server.user (and logging.audit_user) must be that user, and the logger
 * shares it (logged as a warning).
 *
 * The master does all its work in the main loop; signal handlers only set
 * flags. The socket is never closed across a reload, so nginx never sees a
 * refused connection. Start-up is a table of steps run in order; the first
 * that fails (after logging why) ends the program with status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "app.h"
#include "audit.h"
#include "auditctl.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "nchan.h"
#include "pool.h"
#include "privdrop.h"
#include "redact.h"
#include "unixsock.h"

#define STOP_GRACE_S 10
#define BACKOFF_MAX_S 30
#define RETRY_S 1 /* a fill that could not finish (fork, memory) is retried this often */

static volatile sig_atomic_t got_hup, got_term, got_usr1, got_chld;

/* Everything the master owns. */
static struct {
    const char *config_path, *pidfile;
    bool test_only;
    bool drop; /* started as root: becomes server.user after binding and opening */
    fm_config *cfg;
    fm_pool *pool;
    fm_pool *sweepers;          /* one per generation: the pool's table, a second instance */
    fm_pool *relays;            /* one per generation with websocket.publisher, a third */
    pid_t audit_pid;            /* the audit logger, -1 = none (not started, or gone) */
    int audit_ctl;              /* the master's end of the socketpair with it, -1 = closed */
    fm_audit_endpoint audit_ep; /* where the current generation's children send records */
    int status;                 /* the exit status: 1 when the audit logger died */
    fm_metrics *metrics;        /* the counters every child adds to; kept across reloads */
    int generation;
    int listen_fd;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int backoff;       /* seconds of the crash-loop backoff in force, 0 = none */
    time_t next_spawn; /* no respawn before this */
    sigset_t waitmask;
    int token_fd; /* the relay's publisher token, -1 = none (websocket.publisher_token_file) */
} m = {.listen_fd = -1, .audit_pid = -1, .audit_ctl = -1, .token_fd = -1};

static void on_signal(int sig)
{
    switch (sig) {
    case SIGHUP:
        got_hup = 1;
        break;
    case SIGTERM:
    case SIGINT:
        got_term = 1;
        break;
    case SIGUSR1:
        got_usr1 = 1;
        break;
    case SIGCHLD:
        got_chld = 1;
        break;
    }
}

static const char usage[] = "usage: fetchml-fcgi -c CONFIG [-t] [-p PIDFILE]\n"
                            "  -c CONFIG   YAML configuration file\n"
                            "  -t          check the configuration and exit (0 = valid)\n"
                            "  -p PIDFILE  write the master's pid here\n";

/*
 * Secrets of the snapshot (the Redis password, every key's digest) go to the
 * redaction filter before anything is logged; workers inherit them at fork.
 */
static void register_secrets(const fm_config *cfg)
{
    (void)fm_daemon_secrets(cfg); /* logged; what it did register still protects */
}

/* What an operator should know about a snapshot; never its secrets. */
static void log_config(const fm_config *cfg)
{
    for (size_t i = 0; i < cfg->nwarnings; i++)
        fm_log_warn("%s", cfg->warnings[i]);
    if (cfg->redis.nsentinels > 0)
        fm_log_info(
            "config %s: %zu users, redis master \"%s\" from %zu sentinels (first %s), "
            "password from %s, sentinels' password from %s",
            cfg->path, cfg->auth.nusers, cfg->redis.master_name, cfg->redis.nsentinels,
            cfg->redis.sentinels[0],
            cfg->redis.password_source != NULL ? cfg->redis.password_source : "nowhere (none)",
            cfg->redis.sentinel_password_source != NULL ? cfg->redis.sentinel_password_source
                                                        : "nowhere (none)");
    else
        fm_log_info("config %s: %zu users, redis %s, password from %s", cfg->path, cfg->auth.nusers,
                    cfg->redis.addr,
                    cfg->redis.password_source != NULL ? cfg->redis.password_source
                                                       : "nowhere (none)");
}

/*
 * In a child that sends audit records, right after fork: the master's end
 * of the logger's control socket goes before the child runs any code that
 * reads input (through it, a worker could name the trail's file).
 */
static void drop_audit_privileges(void)
{
    if (m.audit_ctl >= 0)
        (void)close(m.audit_ctl);
    m.audit_ctl = -1;
}

/* In every child but the relay, right after fork: the publisher token is the relay's alone. */
static void drop_token(void)
{
    if (m.token_fd >= 0)
        (void)close(m.token_fd);
    m.token_fd = -1;
}

/* fm_pool_spawn_fn: a worker of the current generation, with the current snapshot. */
static fm_err spawn(void *ctx, pid_t *pid)
{
    (void)ctx;
    *pid = fork();
    if (*pid < 0)
        return FM_ESYS;
    if (*pid == 0) {
        drop_token();
        drop_audit_privileges();
        fm_worker_main(m.cfg, m.listen_fd, &m.audit_ep);
    }
    return FM_OK;
}

/* A child of the generation beside its workers: its name for the log, and its main. */
typedef struct side_child {
    const char *what;
    void (*main)(const fm_config *cfg, const fm_audit_endpoint *audit_ep) __attribute__((noreturn));
} side_child;

static void relay_main(const fm_config *cfg, const fm_audit_endpoint *audit_ep)
    __attribute__((noreturn));

static void relay_main(const fm_config *cfg, const fm_audit_endpoint *audit_ep)
{
    fm_wsrelay_main(cfg, audit_ep, m.token_fd);
}

static const side_child sweeper_child = {"sweeper", fm_sweeper_main};
static const side_child relay_child = {"websocket relay", relay_main};

/* fm_pool_spawn_fn: the current generation's sweeper or relay (ctx: its side_child). */
static fm_err spawn_side(void *ctx, pid_t *pid)
{
    const side_child *c = ctx;

    *pid = fork();
    if (*pid < 0)
        return FM_ESYS;
    if (*pid == 0) {
        /* It serves no requests: it must not hold the FastCGI socket (nor could it accept). */
        if (m.listen_fd >= 0)
            (void)close(m.listen_fd);
        if (c != &relay_child)
            drop_token();
        drop_audit_privileges();
        c->main(m.cfg, &m.audit_ep);
    }
    fm_log_info("%s %d started (generation %d)", c->what, (int)*pid, m.generation);
    return FM_OK;
}

/* Relays the current generation runs: one when nchan's publisher is configured. */
static size_t relays_wanted(void)
{
    return m.cfg->websocket.publisher != NULL ? 1 : 0;
}

/*
 * Brings the current generation up to its count of workers, its one sweeper
 * and its relay; a fill cut short is retried after RETRY_S.
 */
static void fill_pool(void)
{
    if ((fm_pool_fill(m.pool, m.generation, (size_t)m.cfg->server.workers, spawn, NULL) != FM_OK ||
         fm_pool_fill(m.sweepers, m.generation, 1, spawn_side, (void *)&sweeper_child) != FM_OK ||
         fm_pool_fill(m.relays, m.generation, relays_wanted(), spawn_side, (void *)&relay_child) !=
             FM_OK) &&
        m.next_spawn < time(NULL) + RETRY_S)
        m.next_spawn = time(NULL) + RETRY_S;
}

/* Every child of generations below below gets sig: workers and sweepers. */
static void kill_children(int sig, int below)
{
    fm_pool_kill(m.pool, sig, below);
    fm_pool_kill(m.sweepers, sig, below);
    fm_pool_kill(m.relays, sig, below);
}

/* Live children of every generation, and the audit logger. */
static size_t children(void)
{
    return fm_pool_count(m.pool, FM_POOL_ALL) + fm_pool_count(m.sweepers, FM_POOL_ALL) +
           fm_pool_count(m.relays, FM_POOL_ALL) + (m.audit_pid > 0 ? 1 : 0);
}

/* Whether the current generation lacks a worker or its sweeper. */
static bool short_of_children(void)
{
    return fm_pool_count(m.pool, m.generation) < (size_t)m.cfg->server.workers ||
           fm_pool_count(m.sweepers, m.generation) < 1 ||
           fm_pool_count(m.relays, m.generation) < relays_wanted();
}

/*
 * Whether a worker ended by its own doing: a failed start-up (it exits
 * non-zero) or a crash signal (SEGV, ABRT, BUS...). SIGKILL, TERM, INT, QUIT
 * and HUP come from outside (an operator, a supervisor, the OOM killer): a
 * worker killed young that way is no sign of a crash loop, and backing off
 * would only leave the pool short.
 */
static bool died_of_itself(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status) != 0;
    if (!WIFSIGNALED(status))
        return false;
    switch (WTERMSIG(status)) {
    case SIGKILL:
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
    case SIGHUP:
        return false;
    default:
        return true;
    }
}

/*
 * The audit logger is gone: nothing can be audited any more, and the master
 * cannot start another under its account. Unless stopping anyway, the
 * master stops (status 1) for its supervisor to start everything again.
 */
static void logger_gone(int status)
{
    m.audit_pid = -1;
    if (m.audit_ctl >= 0)
        (void)close(m.audit_ctl);
    m.audit_ctl = -1;
    if (got_term && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    fm_log_error("the audit logger exited unexpectedly (%s %d): no record can be written and it "
                 "cannot be restarted under its account; stopping",
                 WIFSIGNALED(status) ? "signal" : "status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    m.status = 1;
    got_term = 1;
}

/* Reaps children; returns how many of the current generation crashed young. */
static int reap(void)
{
    int status, young = 0;
    fm_pool_worker w;
    const char *what;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == m.audit_pid) {
            logger_gone(status);
            continue;
        }
        if (fm_pool_remove(m.pool, pid, &w)) {
            what = "worker";
            fm_metrics_worker_gone(pid); /* it may have died mid-request, marked busy */
        } else if (fm_pool_remove(m.sweepers, pid, &w))
            what = "sweeper";
        else if (fm_pool_remove(m.relays, pid, &w))
            what = "websocket relay";
        else
            continue;
        if (w.generation != m.generation || got_term)
            continue;
        if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
            fm_metrics_inc(FM_MET_WORKER_RESTARTS);
            fm_log_error("%s %d exited unexpectedly (%s %d); respawning", what, (int)pid,
                         WIFSIGNALED(status) ? "signal" : "status",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
        if (time(NULL) - w.started < 2 && died_of_itself(status))
            young++;
    }
    return young;
}

/* The uid of the pool's processes under cfg: the one the audit logger serves. */
static uid_t peer_uid(const fm_config *cfg)
{
    return m.drop ? cfg->server.uid : geteuid();
}

/*
 * What a valid file cannot promise: that the master and its workers will be
 * able to open the api log. Checked before a snapshot is used, so that a
 * reload naming an unwritable one is refused like a syntax error (the audit
 * logger checks the audit trail's, fm_auditctl_generation). Logs the problem;
 * true when usable.
 */
static bool usable(const fm_config *cfg)
{
    int fd;

    if (cfg->logging.api_file == NULL)
        return true;
    fd = open(cfg->logging.api_file,
              O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0640);
    if (fd < 0) {
        fm_log_error("%s: cannot open %s for appending: %s", cfg->path, cfg->logging.api_file,
                     strerror(errno));
        return false;
    }
    (void)close(fd);
    return true;
}

/*
 * The relay's publisher token of cfg (websocket.publisher_token_file),
 * opened here (while root at start): checked (read, then wiped: no child
 * forked later holds its bytes), refused when group or others may read it,
 * kept in force on a reload that names the same file when it can no longer
 * be opened. *fd is -1 when none is set. Returns false after logging why,
 * never with the token.
 */
static bool open_token(const fm_config *cfg, int *fd)
{
    const char *path = cfg->websocket.publisher_token_file;
    char token[FM_NCHAN_TOKEN_SIZE], err[256];
    struct stat st;
    fm_err rc;

    *fd = -1;
    if (path == NULL)
        return true;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (*fd < 0 && m.token_fd >= 0 && m.cfg != cfg &&
        m.cfg->websocket.publisher_token_file != NULL &&
        strcmp(m.cfg->websocket.publisher_token_file, path) == 0) {
        fm_log_warn("%s: cannot open %s again (%s); the relay keeps the token in force", cfg->path,
                    path, strerror(errno));
        *fd = dup(m.token_fd);
    }
    if (*fd < 0) {
        fm_log_error("%s: websocket.publisher_token_file: cannot open %s: %s", cfg->path, path,
                     strerror(errno));
        return false;
    }
    rc = fm_nchan_token_read(*fd, token, err, sizeof(err));
    sodium_memzero(token, sizeof(token));
    if (rc != FM_OK) {
        fm_log_error("%s: websocket.publisher_token_file: %s: %s", cfg->path, path, err);
        (void)close(*fd);
        *fd = -1;
        return false;
    }
    if (fstat(*fd, &st) == 0 && st.st_uid == (m.drop ? cfg->server.uid : geteuid()))
        fm_log_warn("%s: websocket.publisher_token_file %s belongs to the pool's own account: a "
                    "compromised worker could read it and publish as the relay; start "
                    "fetchml-fcgi as root with the file root's (mode 0600)",
                    cfg->path, path);
    return true;
}

/* A reload that keeps the running configuration, for /metrics. */
static void reload_refused(void)
{
    fm_metrics_inc(FM_MET_RELOADS_REFUSED);
    fm_metrics_set(FM_MET_CONFIG_LAST_RELOAD_OK, 0);
}

static void reload(void)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *next = fm_config_load(m.cfg->path, err, sizeof(err));
    fm_audit_endpoint ep;
    int token;

    if (next == NULL) {
        fm_log_error("reload refused, keeping the running configuration: %s", err);
        reload_refused();
        return;
    }
    if ((next->logging.audit_user == NULL) != (m.cfg->logging.audit_user == NULL) ||
        (next->logging.audit_user != NULL &&
         strcmp(next->logging.audit_user, m.cfg->logging.audit_user) != 0))
        fm_log_warn("reload: logging.audit_user changed; the audit logger keeps its account until "
                    "a restart");
    if (!open_token(next, &token)) {
        fm_log_error("reload refused, keeping the running configuration: %s names a publisher "
                     "token the websocket relay cannot use",
                     next->path);
        fm_config_free(next);
        reload_refused();
        return;
    }
    /* The logger's answer is the last thing that can refuse the reload. */
    if (!usable(next) || !fm_auditctl_generation(m.audit_ctl, next, peer_uid(next), &ep)) {
        fm_log_error("reload refused, keeping the running configuration: %s names files the "
                     "workers or the audit logger cannot open",
                     next->path);
        if (token >= 0)
            (void)close(token);
        fm_config_free(next);
        reload_refused();
        return;
    }
    if (strcmp(next->server.listen, m.cfg->server.listen) != 0)
        fm_log_warn("reload: server.listen changed; the new address takes effect on restart");
    if ((next->server.user == NULL) != (m.cfg->server.user == NULL) ||
        (next->server.user != NULL && strcmp(next->server.user, m.cfg->server.user) != 0))
        fm_log_warn("reload: server.user changed; the master gave up root at start, so the pool "
                    "keeps running as uid %u until a restart",
                    (unsigned)geteuid());
    register_secrets(next);
    if (fm_log_open(next->logging.api_file, next->logging.level, 1) != 0)
        fm_log_error("reload: cannot open %s: %s", next->logging.api_file, strerror(errno));
    log_config(next);
    /*
     * Workers have their own copy of the old snapshot after fork, and none of
     * the old generation is forked again, so the master can free it now. Its
     * many small blocks (keys and roles of every user) stay in the heap once
     * freed, and every worker forked next would carry them as resident
     * memory: with 100,000 users, twice the snapshot's size. malloc_trim
     * gives the free pages back first.
     */
    fm_config_free(m.cfg);
    (void)malloc_trim(0);
    m.cfg = next;
    m.audit_ep = ep;
    drop_token();
    m.token_fd = token;
    m.generation++;
    fm_metrics_inc(FM_MET_RELOADS_OK);
    fm_metrics_set(FM_MET_CONFIG_LAST_RELOAD_OK, 1);
    fm_metrics_set(FM_MET_CONFIG_LOADED_AT, (int64_t)time(NULL));
    fill_pool();
    kill_children(SIGTERM, m.generation);
    fm_log_info("configuration reloaded from %s (generation %d)", next->path, m.generation);
}

/* Waits for every child, up to deadline; true when none is left. */
static bool wait_all(time_t deadline, useconds_t poll_us)
{
    while (children() > 0 && (deadline == 0 || time(NULL) < deadline)) {
        (void)reap();
        if (children() > 0)
            (void)usleep(poll_us);
    }
    return children() == 0;
}

/* Removes the socket's name, once: no new connection can be made from then on. */
static void remove_socket(void)
{
    if (m.unix_path[0] != '\0')
        (void)unlink(m.unix_path);
    m.unix_path[0] = '\0';
}

static void stop_all(void)
{
    /* No new connections from here on; workers drain what is queued (SIGQUIT). */
    remove_socket();
    kill_children(SIGQUIT, m.generation + 1);
    /* The logger stops once the last sender has gone (it may run as another user: no signal). */
    if (m.audit_ctl >= 0)
        (void)close(m.audit_ctl);
    m.audit_ctl = -1;
    if (!wait_all(time(NULL) + STOP_GRACE_S, 50 * 1000)) {
        fm_log_warn("workers did not stop within %d s; killing them", STOP_GRACE_S);
        kill_children(SIGKILL, m.generation + 1);
        /* Their connections close with them, and the logger ends; it gets as long again. */
        if (!wait_all(time(NULL) + STOP_GRACE_S, 10 * 1000) && m.audit_pid > 0)
            fm_log_error("the audit logger %d did not stop within %d s of its last sender; "
                         "leaving it",
                         (int)m.audit_pid, STOP_GRACE_S);
    }
}

/* ---- start-up steps, in order; each logs its own failure ------------------------- */

static fm_err open_api_log(void)
{
    register_secrets(m.cfg);
    if (fm_log_open(m.cfg->logging.api_file, m.cfg->logging.level, 1) != 0) {
        (void)fprintf(stderr, "fetchml-fcgi: cannot open %s: %s\n", m.cfg->logging.api_file,
                      strerror(errno));
        return FM_ESYS;
    }
    log_config(m.cfg);
    return FM_OK;
}

/* Started as a user that is not root: server.user and logging.audit_user must be that user. */
static fm_err check_unprivileged(void)
{
    const char *user = m.cfg->server.user, *audit = m.cfg->logging.audit_user;

    if (user != NULL && m.cfg->server.uid != geteuid()) {
        fm_log_error("server.user is %s (uid %u), but fetchml-fcgi was started as uid %u, not "
                     "root: it cannot become %s; start it as root or as %s",
                     user, (unsigned)m.cfg->server.uid, (unsigned)geteuid(), user, user);
        return FM_EINVAL;
    }
    if (audit != NULL && m.cfg->logging.audit_uid != geteuid()) {
        fm_log_error("logging.audit_user is %s (uid %u), but fetchml-fcgi was started as uid %u, "
                     "not root: it cannot start the audit logger as %s; start it as root",
                     audit, (unsigned)m.cfg->logging.audit_uid, (unsigned)geteuid(), audit);
        return FM_EINVAL;
    }
    fm_log_warn("started as uid %u, not root: the audit logger runs under the pool's own account, "
                "so a compromised worker could rewrite the audit trail; start as root with "
                "logging.audit_user, or make the trail append-only (chattr +a)",
                (unsigned)geteuid());
    return FM_OK;
}

/*
 * Whether the start would serve as root, or as a user other than
 * server.user, or leave the audit trail to the pool's account: refused.
 */
static fm_err check_identity(void)
{
    const char *user = m.cfg->server.user, *audit = m.cfg->logging.audit_user;

    if (getuid() != 0 && geteuid() != 0)
        return check_unprivileged();
    if (user == NULL) {
        fm_log_error("started as root and server.user is not set: the pool never serves as "
                     "root; set server.user to the account it should run as (e.g. fetchml)");
        return FM_EINVAL;
    }
    if (audit == NULL || m.cfg->logging.audit_uid == m.cfg->server.uid) {
        fm_log_error("started as root and logging.audit_user is %s: the audit logger needs an "
                     "account of its own (e.g. fetchml-audit), or a compromised worker could "
                     "rewrite the audit trail",
                     audit == NULL ? "not set" : "server.user's account");
        return FM_EINVAL;
    }
    m.drop = true;
    return FM_OK;
}

/*
 * Gives a log file the master opened as root (and may have created) to uid:
 * the api log to server.user, who reopens it on SIGUSR1 (nginx gives its
 * reopened logs to its worker user the same way), the audit trail to
 * logging.audit_user (created 0600 when missing and create is set: the
 * logger may not be able to create it in a directory of root's, such as
 * /var/log/fetch_ml 0755). Only a file that is root's (or already uid's) is
 * given, never through a symbolic link and only a regular file with one
 * name: a file another account made may still be open for writing in one of
 * its processes (a pool process that raced a rotation to create the trail
 * could then rewrite it once it is the logger's), and a root chown must not
 * land on a file someone else pointed the path at. The group and mode of an
 * existing file stay as they are.
 */
static fm_err give_file(const char *path, uid_t uid, const char *to, bool create)
{
    const char *why = NULL;
    struct stat st;
    int fd;

    if (path == NULL)
        return FM_OK;
    fd = open(path,
              O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                  (create ? O_CREAT : 0),
              0600);
    if (fd < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (st.st_uid != uid && (!S_ISREG(st.st_mode) || st.st_nlink != 1))
        why = "not a regular file with one link";
    else if (st.st_uid != uid && st.st_uid != 0)
        why = "it belongs to another account, which may hold it open: check it, then give it to "
              "the right account yourself (chown) or move it away";
    else if (st.st_uid != uid && fchown(fd, uid, (gid_t)-1) != 0)
        why = strerror(errno);
    if (fd >= 0)
        (void)close(fd);
    if (why == NULL)
        return FM_OK;
    fm_log_error("cannot give %s to %s: %s", path, to, why);
    return FM_ESYS;
}

/* Started as root: the files to server.user, then root given up for good. */
static fm_err drop_privileges(void)
{
    char err[256];

    if (!m.drop)
        return FM_OK;
    if (give_file(m.cfg->logging.api_file, m.cfg->server.uid, "server.user", false) != FM_OK)
        return FM_ESYS;
    if (fm_privdrop(m.cfg->server.user, m.cfg->server.uid, m.cfg->server.gid, err, sizeof(err)) !=
        FM_OK) {
        fm_log_error("cannot become server.user %s: %s", m.cfg->server.user, err);
        return FM_ESYS;
    }
    fm_log_info("running as %s (uid %u, gid %u)", m.cfg->server.user, (unsigned)getuid(),
                (unsigned)getgid());
    return FM_OK;
}

static fm_err check_files(void)
{
    return usable(m.cfg) ? FM_OK : FM_ESYS;
}

static fm_err make_tables(void)
{
    m.pool = fm_pool_new();
    m.sweepers = fm_pool_new();
    m.relays = fm_pool_new();
    if (m.pool == NULL || m.sweepers == NULL || m.relays == NULL) {
        fm_log_error("out of memory");
        return FM_ESYS;
    }
    /* Before any fork: every child inherits the mapping and counts into it. */
    m.metrics = fm_metrics_create(fm_app_nroutes);
    if (m.metrics == NULL) {
        fm_log_error("cannot map the metrics region: %s", strerror(errno));
        return FM_ESYS;
    }
    fm_metrics_attach(m.metrics);
    fm_metrics_set(FM_MET_CONFIG_LOADED_AT, (int64_t)time(NULL));
    return FM_OK;
}

/* In the audit logger, right after fork: only its end of the socketpair, and its own account. */
static void logger_child(int ctl) __attribute__((noreturn));

static void logger_child(int ctl)
{
    char err[256];

    if (m.listen_fd >= 0)
        (void)close(m.listen_fd);
    (void)close(m.audit_ctl);
    if (m.drop && fm_privdrop(m.cfg->logging.audit_user, m.cfg->logging.audit_uid,
                              m.cfg->logging.audit_gid, err, sizeof(err)) != FM_OK) {
        fm_log_error("audit logger %d: cannot become logging.audit_user %s: %s", (int)getpid(),
                     m.cfg->logging.audit_user, err);
        _exit(1);
    }
    /* It needs nothing of the configuration: the master sends each trail's settings. */
    fm_config_free(m.cfg);
    m.cfg = NULL;
    fm_pool_free(m.pool);
    fm_pool_free(m.sweepers);
    fm_pool_free(m.relays);
    m.pool = m.sweepers = m.relays = NULL;
    fm_auditlog_main(ctl);
}

/*
 * Forks the audit logger (as root: it becomes logging.audit_user) and
 * hands it the first generation's trail, which is given to
 * logging.audit_user first (made if missing; an older install gave it to
 * server.user).
 */
static fm_err start_audit_logger(void)
{
    int sv[2];

    if (m.drop && give_file(m.cfg->logging.file, m.cfg->logging.audit_uid, "logging.audit_user",
                            true) != FM_OK)
        return FM_ESYS;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        fm_log_error("cannot make the audit logger's control socket: %s", strerror(errno));
        return FM_ESYS;
    }
    m.audit_ctl = sv[0];
    m.audit_pid = fork();
    if (m.audit_pid < 0) {
        fm_log_error("cannot start the audit logger: fork: %s", strerror(errno));
        (void)close(sv[1]);
        return FM_ESYS;
    }
    if (m.audit_pid == 0)
        logger_child(sv[1]);
    (void)close(sv[1]);
    fm_log_info("audit logger %d started as %s", (int)m.audit_pid,
                m.drop ? m.cfg->logging.audit_user : "the master's account");
    return fm_auditctl_generation(m.audit_ctl, m.cfg, peer_uid(m.cfg), &m.audit_ep) ? FM_OK
                                                                                    : FM_ESYS;
}

/* After the logger's fork: it never has the relay's token. */
static fm_err open_publisher_token(void)
{
    return open_token(m.cfg, &m.token_fd) ? FM_OK : FM_ESYS;
}

static fm_err check_pidfile(void)
{
    return fm_daemon_pidfile_free(m.pidfile);
}

static fm_err open_socket(void)
{
    return fm_listener_open(m.cfg, &m.listen_fd, m.unix_path, sizeof(m.unix_path));
}

static fm_err write_pidfile(void)
{
    return fm_daemon_pidfile_write(m.pidfile);
}

static fm_err install_signals(void)
{
    static const fm_daemon_signal sigs[] = {
        {SIGHUP, on_signal},  {SIGTERM, on_signal}, {SIGINT, on_signal},
        {SIGUSR1, on_signal}, {SIGCHLD, on_signal}, {SIGPIPE, SIG_IGN},
    };

    return fm_daemon_signals(sigs, sizeof(sigs) / sizeof(sigs[0]), &m.waitmask);
}

static fm_err start_pool(void)
{
    fill_pool();
    fm_log_info("fetchml-fcgi started: %d workers on %s", m.cfg->server.workers,
                m.cfg->server.listen);
    return FM_OK;
}

static fm_err (*const start_steps[])(void) = {
    open_api_log,         check_identity,  check_files,     make_tables,
    check_pidfile,        install_signals, open_socket,     start_audit_logger,
    open_publisher_token, write_pidfile,   drop_privileges, start_pool,
};

/* ---- supervision ------------------------------------------------------------------ */

/* SIGCHLD: reap, and back off when the current generation dies at start. */
static void children_changed(time_t now)
{
    if (reap() > 0) {
        m.backoff = m.backoff == 0 ? 1 : m.backoff * 2;
        if (m.backoff > BACKOFF_MAX_S)
            m.backoff = BACKOFF_MAX_S;
        m.next_spawn = now + m.backoff;
        fm_log_warn("workers are crashing at start; next respawn in %d s", m.backoff);
    } else if (now >= m.next_spawn) {
        m.backoff = 0;
    }
}

/*
 * SIGUSR1: the api log reopened here, in every child, and in the audit
 * logger, which reopens its trails and takes the api log from the master
 * (it may not open it itself).
 */
static void reopen_logs(void)
{
    fm_auditctl_msg msg = {.type = FM_AUDITCTL_REOPEN};
    int fd = -1;

    if (fm_log_reopen() != 0)
        fm_log_error("reopening api log failed: %s", strerror(errno));
    kill_children(SIGUSR1, m.generation + 1);
    if (m.audit_ctl < 0)
        return;
    if (m.cfg->logging.api_file != NULL)
        fd = open(m.cfg->logging.api_file, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
    if (fm_unixsock_send(m.audit_ctl, &msg, sizeof msg, fd) != FM_OK)
        fm_log_error("cannot tell the audit logger to reopen its logs: %s", strerror(errno));
    if (fd >= 0)
        (void)close(fd);
}

/* Until SIGTERM or SIGINT: handle the flags the signals set, then wait for the next. */
static void supervise(void)
{
    while (!got_term) {
        time_t now = time(NULL);

        if (got_chld) {
            got_chld = 0;
            children_changed(now);
        }
        if (got_hup) {
            got_hup = 0;
            reload();
        }
        if (got_usr1) {
            got_usr1 = 0;
            reopen_logs();
        }
        if (now >= m.next_spawn)
            fill_pool();
        if (got_term || got_chld || got_hup || got_usr1)
            continue;
        /* Wait for a signal, or for the end of a backoff or a retry. */
        struct timespec ts = {m.next_spawn > now ? m.next_spawn - now : 0, 0};
        bool waiting = m.next_spawn > now && short_of_children();
        (void)pselect(0, NULL, NULL, NULL, waiting ? &ts : NULL, &m.waitmask);
    }
}

/* Loads the configuration named with -c; NULL after printing why on stderr. */
static fm_config *load_config(void)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = fm_config_load(m.config_path, err, sizeof(err));

    if (cfg == NULL)
        (void)fprintf(stderr, "fetchml-fcgi: %s\n", err);
    return cfg;
}

static void cleanup(void)
{
    fm_daemon_pidfile_remove();
    fm_pool_free(m.pool);
    fm_pool_free(m.sweepers);
    fm_pool_free(m.relays);
    if (m.audit_ctl >= 0)
        (void)close(m.audit_ctl);
    m.audit_ctl = -1;
    drop_token();
    fm_metrics_free(m.metrics);
    fm_config_free(m.cfg);
}

int main(int argc, char **argv)
{
    const fm_daemon_opt opts[] = {
        {.letter = 'c', .arg = &m.config_path, .required = true},
        {.letter = 't', .flag = &m.test_only},
        {.letter = 'p', .arg = &m.pidfile},
    };
    int status;

    if (!fm_daemon_options(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), usage, &status))
        return status;
    /* Whatever started it: nothing the pool creates is ever open to other users. */
    (void)umask(027);
    if (fm_daemon_sodium("fetchml-fcgi") != FM_OK || (m.cfg = load_config()) == NULL)
        return 1;
    if (m.test_only) {
        (void)printf("fetchml-fcgi: configuration file %s test is successful\n", m.config_path);
        fm_config_free(m.cfg);
        return 0;
    }
    for (size_t i = 0; i < sizeof(start_steps) / sizeof(start_steps[0]); i++) {
        if (start_steps[i]() != FM_OK) {
            remove_socket(); /* a start that fails after binding (the drop) leaves no name */
            cleanup();
            fm_log_close();
            return 1;
        }
    }
    supervise();
    fm_log_info("stopping: waiting for workers to finish");
    stop_all();
    cleanup();
    fm_log_info(m.status == 0 ? "stopped" : "stopped (the audit logger had gone)");
    fm_log_close();
    return m.status;
}
