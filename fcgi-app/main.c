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
 *            workers that die young back off exponentially (crash loop).
 *
 * The master does all its work in the main loop; signal handlers only set
 * flags. The socket is never closed across a reload, so nginx never sees a
 * refused connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/select.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netdb.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "app.h"
#include "audit.h"
#include "log.h"
#include "pidfile.h"
#include "redact.h"
#include "unixsock.h"

#define MAX_WORKERS 256
#define STOP_GRACE_S 10
#define BACKOFF_MAX_S 30

typedef struct worker {
    pid_t pid; /* 0 = free slot */
    int generation;
    time_t started;
} worker;

static volatile sig_atomic_t got_hup, got_term, got_usr1, got_chld;

static worker workers[MAX_WORKERS * 2];
static int generation;
static int listen_fd = -1;
static char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static fm_audit_shared *audit_shared;

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

static void usage(void)
{
    (void)fprintf(stderr, "usage: fetchml-fcgi -c CONFIG [-t] [-p PIDFILE]\n"
                          "  -c CONFIG   YAML configuration file\n"
                          "  -t          check the configuration and exit (0 = valid)\n"
                          "  -p PIDFILE  write the master's pid here\n");
}

/* Secrets of the snapshot go to the redaction filter before anything is logged. */
static void register_secrets(const fm_config *cfg)
{
    fm_redact_clear_secrets();
    if (cfg->redis.password != NULL && fm_redact_add_secret(cfg->redis.password) != FM_OK)
        fm_log_error("cannot register the Redis password with the filter: %s", strerror(errno));
}

/* What an operator should know about a snapshot; never its secrets. */
static void log_config(const fm_config *cfg)
{
    for (size_t i = 0; i < cfg->nwarnings; i++)
        fm_log_warn("%s", cfg->warnings[i]);
    fm_log_info("config %s: %zu users, redis %s, password from %s", cfg->path, cfg->auth.nusers,
                cfg->redis.addr,
                cfg->redis.password_source != NULL ? cfg->redis.password_source : "nowhere (none)");
}

static int open_unix(const char *path, const fm_config *cfg)
{
    struct sockaddr_un sa;
    char why[256 + PATH_MAX];
    int fd;

    /* A second master must not steal a running pool's socket (fm_unixsock_claim). */
    if (fm_unixsock_claim(path, SOCK_STREAM, &sa, why, sizeof(why)) != 0) {
        fm_log_error("server.listen: %s", why);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Created with no access; the configured mode is applied before listen(). */
    mode_t old = umask(0777);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    (void)umask(old);
    if (rc != 0) {
        fm_log_error("server.listen: bind %s: %s", path, strerror(errno));
        goto fail;
    }
    (void)snprintf(unix_path, sizeof(unix_path), "%s", path);
    if (cfg->server.socket_group != NULL) {
        struct group *gr = getgrnam(cfg->server.socket_group);
        if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) != 0) {
            fm_log_error("server.socket_group: cannot use group %s", cfg->server.socket_group);
            goto fail;
        }
    }
    if (chmod(path, cfg->server.socket_mode) != 0) {
        fm_log_error("server.socket_mode: chmod %s: %s", path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    (void)close(fd);
    return -1;
}

static int open_tcp(const char *listen_spec)
{
    char host[256];
    const char *colon = strrchr(listen_spec, ':');
    struct addrinfo hints, *ai = NULL;
    int fd = -1, one = 1;

    if (colon == NULL || (size_t)(colon - listen_spec) >= sizeof(host))
        return -1;
    (void)snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_spec), listen_spec);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        fm_log_error("server.listen: %s is not a numeric host:port", listen_spec);
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fm_log_error("server.listen: bind %s: %s", listen_spec, strerror(errno));
        if (fd >= 0)
            (void)close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int open_listener(const fm_config *cfg)
{
    int fd;

    if (strncmp(cfg->server.listen, "unix:", 5) == 0)
        fd = open_unix(cfg->server.listen + 5, cfg);
    else
        fd = open_tcp(cfg->server.listen);
    if (fd < 0)
        return -1;
    /* Non-blocking: workers wait in ppoll, and a lost accept race must not block. */
    if (listen(fd, 1024) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        fm_log_error("server.listen: listen: %s", strerror(errno));
        (void)close(fd);
        return -1;
    }
    return fd;
}

static int spawn(const fm_config *cfg, int slot)
{
    pid_t pid = fork();

    if (pid < 0) {
        fm_log_error("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        fm_worker_main(cfg, listen_fd, audit_shared);
    workers[slot] = (worker){pid, generation, time(NULL)};
    return 0;
}

static int live_workers(int gen_only)
{
    int n = 0;

    for (size_t i = 0; i < sizeof(workers) / sizeof(workers[0]); i++)
        if (workers[i].pid != 0 && (gen_only < 0 || workers[i].generation == gen_only))
            n++;
    return n;
}

/* Fills every free slot up to cfg->server.workers for the current generation. */
static void fill_pool(const fm_config *cfg)
{
    int want = cfg->server.workers - live_workers(generation);

    for (size_t i = 0; want > 0 && i < sizeof(workers) / sizeof(workers[0]); i++) {
        if (workers[i].pid != 0)
            continue;
        if (spawn(cfg, (int)i) != 0)
            return;
        want--;
    }
}

static void signal_generation(int sig, int gen_below)
{
    for (size_t i = 0; i < sizeof(workers) / sizeof(workers[0]); i++)
        if (workers[i].pid != 0 && workers[i].generation < gen_below)
            (void)kill(workers[i].pid, sig);
}

/* Reaps children; returns how many of the current generation died young. */
static int reap(void)
{
    int status, young = 0;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < sizeof(workers) / sizeof(workers[0]); i++) {
            if (workers[i].pid != pid)
                continue;
            if (workers[i].generation == generation && !got_term) {
                if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
                    fm_log_error("worker %d exited unexpectedly (%s %d); respawning", (int)pid,
                                 WIFSIGNALED(status) ? "signal" : "status",
                                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                if (time(NULL) - workers[i].started < 2)
                    young++;
            }
            workers[i].pid = 0;
        }
    }
    return young;
}

/*
 * What a valid file cannot promise: that the workers will be able to open
 * their logs. Checked before a snapshot is used, so that a reload naming an
 * unwritable audit trail is refused like a syntax error instead of leaving a
 * pool of workers that exit at start. Logs each problem; true when usable.
 */
static int usable(const fm_config *cfg)
{
    const char *paths[] = {cfg->logging.file, cfg->logging.api_file};
    int ok = 1;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int fd;
        if (paths[i] == NULL)
            continue;
        fd = open(paths[i], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0) {
            fm_log_error("%s: cannot open %s for appending: %s", cfg->path, paths[i],
                         strerror(errno));
            ok = 0;
            continue;
        }
        (void)close(fd);
    }
    return ok;
}

static void reload(fm_config **cfg)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *next = fm_config_load((*cfg)->path, err, sizeof(err));

    if (next == NULL) {
        fm_log_error("reload refused, keeping the running configuration: %s", err);
        return;
    }
    if (!usable(next)) {
        fm_log_error("reload refused, keeping the running configuration: %s names files the "
                     "workers cannot open",
                     next->path);
        fm_config_free(next);
        return;
    }
    if (strcmp(next->server.listen, (*cfg)->server.listen) != 0)
        fm_log_warn("reload: server.listen changed; the new address takes effect on restart");
    if (next->server.workers > MAX_WORKERS)
        next->server.workers = MAX_WORKERS;
    register_secrets(next);
    if (fm_log_open(next->logging.api_file, next->logging.level, 1) != 0)
        fm_log_error("reload: cannot open %s: %s", next->logging.api_file, strerror(errno));
    log_config(next);
    generation++;
    fill_pool(next);
    signal_generation(SIGTERM, generation);
    /*
     * The old snapshot may only be freed once no worker of its generation is
     * forked from it again; workers have their own copy after fork, so the
     * master can free it now.
     */
    fm_config_free(*cfg);
    *cfg = next;
    fm_log_info("configuration reloaded from %s (generation %d)", next->path, generation);
}

static void stop_all(void)
{
    time_t deadline = time(NULL) + STOP_GRACE_S;

    /* No new connections from here on; workers drain what is queued (SIGQUIT). */
    if (unix_path[0] != '\0')
        (void)unlink(unix_path);
    signal_generation(SIGQUIT, generation + 1);
    while (live_workers(-1) > 0 && time(NULL) < deadline) {
        (void)reap();
        if (live_workers(-1) > 0)
            (void)usleep(50 * 1000);
    }
    if (live_workers(-1) > 0) {
        fm_log_warn("workers did not stop within %d s; killing them", STOP_GRACE_S);
        signal_generation(SIGKILL, generation + 1);
        while (live_workers(-1) > 0) {
            (void)reap();
            if (live_workers(-1) > 0)
                (void)usleep(10 * 1000);
        }
    }
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *pidfile = NULL;
    int test_only = 0, opt, backoff = 0;
    time_t next_spawn = 0;
    pid_t other;
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg;
    struct sigaction sa;
    sigset_t block, waitmask;

    while ((opt = getopt(argc, argv, "c:tp:h")) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'p':
            pidfile = optarg;
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (config_path == NULL || optind != argc) {
        usage();
        return 2;
    }
    if (sodium_init() < 0) {
        (void)fprintf(stderr, "fetchml-fcgi: libsodium initialisation failed\n");
        return 1;
    }
    cfg = fm_config_load(config_path, err, sizeof(err));
    if (cfg == NULL) {
        (void)fprintf(stderr, "fetchml-fcgi: %s\n", err);
        return 1;
    }
    if (test_only) {
        (void)printf("fetchml-fcgi: configuration file %s test is successful\n", config_path);
        fm_config_free(cfg);
        return 0;
    }
    if (cfg->server.workers > MAX_WORKERS)
        cfg->server.workers = MAX_WORKERS;
    register_secrets(cfg);
    if (fm_log_open(cfg->logging.api_file, cfg->logging.level, 1) != 0) {
        (void)fprintf(stderr, "fetchml-fcgi: cannot open %s: %s\n", cfg->logging.api_file,
                      strerror(errno));
        goto fail;
    }
    log_config(cfg);
    if (!usable(cfg))
        goto fail;
    audit_shared = fm_audit_shared_create(cfg->logging.file);
    if (audit_shared == NULL) {
        fm_log_error("cannot initialise the audit trail %s: %s", cfg->logging.file,
                     strerror(errno));
        goto fail;
    }
    if (pidfile != NULL && (other = fm_pidfile_running(pidfile)) != 0) {
        fm_log_error("already running (pid %d in %s); not starting", (int)other, pidfile);
        goto fail;
    }
    if ((listen_fd = open_listener(cfg)) < 0)
        goto fail;
    if (pidfile != NULL && fm_pidfile_write(pidfile) != 0) {
        fm_log_error("cannot write pid file %s: %s", pidfile, strerror(errno));
        goto fail;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGHUP, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGUSR1, &sa, NULL);
    (void)sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGCHLD);
    (void)sigprocmask(SIG_BLOCK, &block, &waitmask);

    fill_pool(cfg);
    fm_log_info("fetchml-fcgi started: %d workers on %s", cfg->server.workers, cfg->server.listen);

    while (!got_term) {
        time_t now = time(NULL);

        if (got_chld) {
            got_chld = 0;
            if (reap() > 0) {
                backoff = backoff == 0 ? 1 : backoff * 2;
                if (backoff > BACKOFF_MAX_S)
                    backoff = BACKOFF_MAX_S;
                next_spawn = now + backoff;
                fm_log_warn("workers are crashing at start; next respawn in %d s", backoff);
            } else if (now >= next_spawn) {
                backoff = 0;
            }
        }
        if (got_hup) {
            got_hup = 0;
            reload(&cfg);
        }
        if (got_usr1) {
            got_usr1 = 0;
            if (fm_log_reopen() != 0)
                fm_log_error("reopening api log failed: %s", strerror(errno));
            signal_generation(SIGUSR1, generation + 1);
        }
        if (now >= next_spawn)
            fill_pool(cfg);
        if (got_term || got_chld || got_hup || got_usr1)
            continue;
        /* Wait for a signal, or for the end of a crash-loop backoff. */
        struct timespec ts = {next_spawn > now ? next_spawn - now : 0, 0};
        int waiting = next_spawn > now && live_workers(generation) < cfg->server.workers;
        (void)pselect(0, NULL, NULL, NULL, waiting ? &ts : NULL, &waitmask);
    }

    fm_log_info("stopping: waiting for workers to finish");
    stop_all();
    if (pidfile != NULL)
        (void)unlink(pidfile);
    fm_config_free(cfg);
    fm_log_info("stopped");
    fm_log_close();
    return 0;
fail:
    fm_config_free(cfg);
    fm_log_close();
    return 1;
}
