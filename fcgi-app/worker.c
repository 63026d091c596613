/*
 * worker.c - one FastCGI worker: accept, adapt params to fm_request, run the
 * pipeline, write the response; repeat until told to stop.
 *
 * A worker serves the config snapshot it was forked with; a reload replaces
 * workers, so no worker ever mixes two configs. Signals are blocked except
 * inside the waits (ppoll(2), epoll_pwait(2)): SIGTERM can only land between
 * requests, so the request in flight always finishes and a TERM that arrives
 * just before the wait is never lost (the classic race of checking a flag and then blocking in accept). The
 * (non-blocking) listen socket is tried first and waited on only when it has
 * nothing: under load a connection is already there, and the wait would be
 * one more system call per request. Before each accept, sigpending(2) says
 * whether a signal is waiting; if one is, a ppoll on no descriptor with a
 * zero timeout lets it in, so a busy worker stops or reopens its logs before
 * its next request (signal_waiting).
 * The wait is epoll_pwait(2) on the worker's own epoll instance with
 * EPOLLEXCLUSIVE (Linux 4.5), so that one connection wakes one idle worker,
 * not all of them (the thundering herd: each woken loser costs two context
 * switches and an accept that fails with EAGAIN, as it still may when two
 * are woken).
 * Start-up is a table of steps (signals, Redis, audit, FastCGI); the first
 * that fails ends the worker with status 1 and the master backs off.
 *
 * Request bodies and downloads move at data.min_transfer_bytes_per_second or
 * are cut off (transfer.c): a slow client cannot hold a worker for hours.
 *
 * The worker accepts connections itself and hands each one to libfcgi
 * (next_request), so that on a unix socket the peer's credentials
 * (SO_PEERCRED) are checked against server.allowed_peers before a byte of
 * it is read: a local process that may reach the socket but is not nginx
 * cannot choose REMOTE_ADDR or any other param. A refused connection is
 * closed unread, counted, and logged at most once per REFUSED_LOG_S per
 * worker with the number refused meanwhile (a flood of them costs no disk).
 */
#include <errno.h>
#include <fcgiapp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "audit.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "params.h"
#include "peercred.h"
#include "redact.h"
#include "routes.h"
#include "transfer.h"

#define DRAIN_MAX_S 5
#define LINGER_MS 1000          /* the most a refused, unread body is waited for in all (finish) */
#define REFUSED_LOG_S 10   /* at most one line per worker this often about refused peers */

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t draining;
static volatile sig_atomic_t reopen_logs;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

/* SIGQUIT: stop, but first serve what is already queued on the socket (shutdown). */
static void on_quit(int sig)
{
    (void)sig;
    stopping = 1;
    draining = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    reopen_logs = 1;
}


/* What one worker holds from start to exit. */
static struct {
    const fm_config *cfg;
    int listen_fd;
    int epfd; /* init_wait */
    const fm_audit_endpoint *audit_ep;
    fm_env env;
    FCGX_Request r;
    sigset_t waitmask;
    bool unix_socket;      /* peers are checked (a TCP peer has no credentials) */
    uid_t self;            /* the worker's own uid, always an allowed peer */
    time_t refused_log_at; /* when a refused peer may be logged again */
    unsigned long refused; /* peers refused since the last line about them */
} w;

#define STATUS_LINE_MAX 64 /* "Status: 503 Service Unavailable\r\n" and the like */
#define LENGTH_LINE_MAX 40 /* "Content-Length: " + 20 digits + CRLF */

/* Appends n bytes to the header block; the block was sized for the largest response. */
static size_t put(char *buf, size_t off, const char *s, size_t n)
{
    memcpy(buf + off, s, n);
    return off + n;
}

/*
 * The status line and headers are assembled in one buffer and handed to
 * libfcgi in one call rather than formatted line by line.
 */
static void write_response(FCGX_Request *r, const fm_response *resp, int head)
{
    static const char json_type[] = "Content-Type: application/json\r\n";
    static const char no_store[] = "Cache-Control: no-store\r\n";
    char block[STATUS_LINE_MAX + sizeof(json_type) + FM_RESPONSE_TYPE_MAX + LENGTH_LINE_MAX +
               sizeof(no_store) +
               FM_RESPONSE_MAX_HEADERS * (FM_RESPONSE_HEADER_MAX + 2) + 2];
    const char *reason = fm_response_reason(resp->status);
    int n = snprintf(block, sizeof(block), "Status: %d ", resp->status);
    size_t off, rlen = strlen(reason);

    /* Cannot fail ("Status: " + an int + the longest reason phrase is under 50 bytes). */
    if (n < 0 || (size_t)n + rlen + 2 > STATUS_LINE_MAX)
        return;
    off = put(block, (size_t)n, reason, rlen);
    off = put(block, off, "\r\n", 2);
    if (resp->body != NULL && resp->content_type != NULL) {
        int m =
            snprintf(block + off, sizeof(block) - off, "Content-Type: %s\r\n", resp->content_type);
        if (m > 0 && (size_t)m < sizeof(block) - off)
            off += (size_t)m;
    } else if (resp->body != NULL) {
        off = put(block, off, json_type, sizeof(json_type) - 1);
    }
    /* A buffered body's length, so that nginx need not chunk it (RFC 9112 section 6.3). */
    if (resp->body != NULL) {
        int m = snprintf(block + off, sizeof(block) - off, "Content-Length: %zu\r\n",
                         resp->body_len);
        if (m > 0 && (size_t)m < sizeof(block) - off)
            off += (size_t)m;
    }
    off = put(block, off, no_store, sizeof(no_store) - 1);
    for (size_t i = 0; i < resp->nheaders; i++) {
        off = put(block, off, resp->headers[i], strnlen(resp->headers[i], FM_RESPONSE_HEADER_MAX));
        off = put(block, off, "\r\n", 2);
    }
    off = put(block, off, "\r\n", 2);
    (void)FCGX_PutStr(block, (int)off, r->out);
    if (resp->body != NULL && !head)
        (void)FCGX_PutStr(resp->body, (int)resp->body_len, r->out);
}

/*
 * nginx routes and hands over the normalised path (%XX decoded, "//" merged),
 * in which a key a client put in the path may no longer be the key ("//k"
 * arrives as "/k"). When the raw path differs, the redaction filter holds the
 * normalised forms of the keys it finds in it for this request's log lines.
 * If it cannot, a key is in the path: the request goes on under a path that
 * names nothing, and that is what gets logged.
 */
static void hold_raw_path(const char *request_uri, fm_request *req)
{
    size_t n;

    if (request_uri == NULL)
        return;
    n = strcspn(request_uri, "?");
    if ((strlen(req->path) != n || memcmp(request_uri, req->path, n) != 0) &&
        fm_redact_hold_path(request_uri, n) != FM_OK)
        req->path = "/" FM_REDACTED;
}

/*
 * Serves one request; returns whether its body (if any) was read whole (see
 * finish): for a streaming route, whether the handler read all of it (an
 * upload refused before its end was not).
 */
static bool serve(FCGX_Request *r)
{
    fm_transfer_stream bs = {0};
    const fm_body_stream stream = {fm_transfer_stream_read, &bs};
    const char *p[P_COUNT];
    int count[P_COUNT];
    fm_wsauth_offer offer;
    fm_delivery delivery = {0};
    fm_request req;
    fm_response resp;
    char *body;
    bool head;

    fm_params_scan(r->envp, p, count);
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    if (p[P_WS_EVENT] != NULL) {
        /* nginx sends these without a body (fastcgi_pass_request_body off). */
        fm_route_ws_event(&w.env, p, &resp);
        write_response(r, &resp, 0);
        fm_response_reset(&resp);
        return true;
    }
    req.method = p[P_METHOD] != NULL ? p[P_METHOD] : "GET";
    req.path = p[P_DOCUMENT_URI] != NULL  ? p[P_DOCUMENT_URI]
               : p[P_SCRIPT_NAME] != NULL ? p[P_SCRIPT_NAME]
                                          : "/";
    hold_raw_path(p[P_REQUEST_URI], &req);
    req.query = p[P_QUERY];
    req.remote_addr = p[P_REMOTE_ADDR] != NULL ? p[P_REMOTE_ADDR] : "";
    req.request_id = p[P_REQUEST_ID];
    req.x_api_key = p[P_X_API_KEY];
    req.authorization = p[P_AUTHORIZATION];
    req.content_type = p[P_CONTENT_TYPE];
    req.credentials_repeated = count[P_X_API_KEY] > 1 || count[P_AUTHORIZATION] > 1;
    req.plain_http = p[P_PLAIN_HTTP] != NULL;
    fm_route_ws_prepare(p, count, &req, &offer);
    req.if_match = p[P_IF_MATCH];
    req.if_none_match = p[P_IF_NONE_MATCH];
    req.delivery = &delivery;
    if (fm_pipeline_streams(fm_app_routes, fm_app_nroutes, req.method, req.path)) {
        req.stream = &stream;
        fm_transfer_stream_start(&bs, r, w.cfg->data.min_transfer_rate);
    }
    fm_transfer_read_body(r, w.cfg, p[P_CONTENT_LENGTH], p[P_TRANSFER_ENCODING], &req, &body);
    fm_metrics_worker_busy(true);
    fm_pipeline_run(&w.env, fm_app_routes, fm_app_nroutes, &req, &resp);
    if (req.ws_auth)
        fm_wsauth_answer(&resp);
    head = strcmp(req.method, "HEAD") == 0;
    write_response(r, &resp, head);
    if (resp.has_file && !head)
        fm_transfer_deliver(r, &w.env, &resp, &delivery);
    fm_metrics_transfer_end(); /* a download's share (routes_experiments.c) ends with its sending */
    fm_redact_release();
    fm_response_reset(&resp);
    free(body);
    fm_metrics_worker_busy(false);
    if (req.stream != NULL)
        return !req.body_too_large && !req.length_unknown && bs.got == req.content_length;
    return !req.body_too_large && !req.body_incomplete && !req.length_unknown;
}

/* ---- what every child of the master sets up after fork (app.h) ------------------- */

fm_err fm_worker_signals(const fm_daemon_signal *sigs, size_t n, sigset_t *waitmask)
{
    if (fm_daemon_signals(sigs, n, waitmask) != FM_OK)
        return FM_ESYS;
    /* A child whose master is gone must not go on: it would never be replaced. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    return getppid() == 1 ? FM_ESYS : FM_OK;
}

fm_redis *fm_worker_redis(const fm_config *cfg)
{
    fm_redis_opts o = {
        .addr = cfg->redis.addr,
        .sentinels = (const char *const *)cfg->redis.sentinels,
        .nsentinels = cfg->redis.nsentinels,
        .master_name = cfg->redis.master_name,
        .username = cfg->redis.username,
        .password = cfg->redis.password,
        .sentinel_password = cfg->redis.sentinel_password,
        .db = cfg->redis.db,
        .timeout_ms = cfg->redis.timeout_ms,
    };

    return fm_redis_open(&o);
}

fm_err fm_worker_env_open(const fm_config *cfg, const fm_audit_endpoint *audit_ep, const char *who,
                          fm_env *env)
{
    env->cfg = cfg;
    env->redis = fm_worker_redis(cfg);
    if (env->redis == NULL) {
        fm_log_error("%s %d: cannot start: bad redis.addr or redis.sentinels", who, (int)getpid());
        return FM_ESYS;
    }
    env->audit = fm_audit_connect(cfg->logging.file, audit_ep);
    if (env->audit == NULL) {
        fm_log_error("%s %d: cannot start: cannot reach the audit trail's directory: %s", who,
                     (int)getpid(), strerror(errno));
        return FM_ESYS;
    }
    return FM_OK;
}

void fm_worker_env_close(fm_env *env)
{
    fm_audit_close(env->audit);
    fm_redis_free(env->redis);
    env->audit = NULL;
    env->redis = NULL;
}

/* ---- start-up steps, in order; each logs its own failure ------------------------- */

/* TERM, INT, QUIT and USR1 are delivered only inside the waits, ALRM also inside paced calls. */
static fm_err init_signals(void)
{
    static const fm_daemon_signal sigs[] = {
        {SIGTERM, on_term}, {SIGINT, on_term},  {SIGQUIT, on_quit}, {SIGUSR1, on_usr1},
        {SIGHUP, SIG_IGN},  {SIGPIPE, SIG_IGN}, {SIGCHLD, SIG_DFL}, {SIGALRM, fm_transfer_on_alarm},
    };

    if (fm_transfer_init() != FM_OK)
        return FM_ESYS;
    return fm_worker_signals(sigs, sizeof(sigs) / sizeof(sigs[0]), &w.waitmask);
}

static fm_err init_env(void)
{
    w.env.listen_fd = w.listen_fd;
    return fm_worker_env_open(w.cfg, w.audit_ep, "worker", &w.env);
}

/* The master refuses to start as root; this is the last line should that ever change. */
static fm_err init_identity(void)
{
    if (getuid() == 0 || geteuid() == 0) {
        fm_log_error("worker %d: running as root; refusing to serve (set server.user)",
                     (int)getpid());
        return FM_ESYS;
    }
    w.self = geteuid();
    w.unix_socket = strncmp(w.cfg->server.listen, "unix:", 5) == 0;
    return FM_OK;
}

/*
 * libfcgi gets no listen socket (-1): it reads only the connections
 * next_request gives it, and if it gives one up (a malformed begin record)
 * it cannot accept another behind the peer check; its accept fails (EBADF).
 */
static fm_err init_fastcgi(void)
{
    if (FCGX_Init() != 0 || FCGX_InitRequest(&w.r, -1, 0) != 0) {
        fm_log_error("worker %d: FastCGI initialisation failed", (int)getpid());
        return FM_ESYS;
    }
    return FM_OK;
}

/* The worker's own epoll instance (made after the fork: an inherited one would be shared). */
static fm_err init_wait(void)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = w.listen_fd};

    if ((w.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.listen_fd, &ev) != 0) {
        fm_log_error("worker %d: cannot wait on the FastCGI socket: %s", (int)getpid(),
                     strerror(errno));
        return FM_ESYS;
    }
    return FM_OK;
}

/* A pool slot in the shared metrics, for the busy/idle gauges (a full table is no failure). */
static fm_err init_metrics(void)
{
    if (!fm_metrics_worker_start(getpid()))
        fm_log_warn("worker %d: no pool slot in the metrics; the pool gauges miss it",
                    (int)getpid());
    return FM_OK;
}

static fm_err (*const init_steps[])(void) = {
    init_identity,
    init_signals,
    init_metrics,
    init_env,
    init_fastcgi,
    init_wait,
};

/*
 * Ends a request. libfcgi closes a connection with a lingering close:
 * shutdown(SHUT_WR), then a wait (up to 2 s) reading until the web server
 * closes its end, so that input the application never read cannot make the
 * peer lose the answer (the TCP reset the comment in libfcgi's os_unix.c
 * describes). When the request's input has been read to its end (the empty
 * FCGI_STDIN record that ends it, which nginx and Apache send right behind
 * the body, or at once for a request without one) nothing is left to read:
 * the connection is detached from libfcgi's linger and simply closed, which
 * saves a wait, a wake-up and three system calls per request. A request whose
 * input was not read to the end (a body refused unread: body_read false)
 * gets a linger bounded in all (LINGER_MS), not libfcgi's.
 */
static void finish(FCGX_Request *r, bool body_read)
{
    int keep;

    if (body_read && FCGX_GetChar(r->in) == EOF && FCGX_HasSeenEOF(r->in) &&
        FCGX_GetError(r->in) == 0) {
        (void)FCGX_Detach(r);
        FCGX_Finish_r(r);
        return;
    }
    /*
     * libfcgi's linger waits up to 2 s for each read, so input that keeps
     * trickling in (a refused upload's body, which nginx passes on as the client
     * sends it) would hold the worker as long as the client likes. The same
     * linger here has one deadline for all of it: the answer is written and the
     * connection shut for writing, then what comes is read and dropped for at
     * most LINGER_MS in all.
     */
    keep = r->ipcFd >= 0 ? dup(r->ipcFd) : -1;
    if (keep >= 0)
        (void)FCGX_Detach(r);
    FCGX_Finish_r(r);
    if (keep < 0)
        return;
    if (shutdown(keep, SHUT_WR) == 0) {
        int64_t end = fm_transfer_now_ms() + LINGER_MS;
        char sink[4096];

        for (int64_t now = fm_transfer_now_ms(); now < end; now = fm_transfer_now_ms()) {
            struct pollfd pfd = {.fd = keep, .events = POLLIN};

            if (poll(&pfd, 1, (int)(end - now)) <= 0 || read(keep, sink, sizeof(sink)) <= 0)
                break;
        }
    }
    (void)close(keep);
}

/*
 * Whether a signal the worker handles is pending (blocked outside the waits).
 * A wait that returns with a connection ready does not deliver a signal that
 * came at the same moment, and under load a worker may not wait for a long
 * time: the check before each accept is what makes a worker of a replaced
 * generation (SIGTERM on reload) take no request after the signal, so that a
 * revoked key is never served by an old worker once the new ones are up.
 */
static bool signal_waiting(void)
{
    static const int handled[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1};
    sigset_t set;

    if (sigpending(&set) != 0)
        return true; /* cannot tell: let them in (a wait with no descriptor costs little) */
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        if (sigismember(&set, handled[i]) == 1)
            return true;
    return false;
}

/*
 * Counts a refused peer and logs it, or only counts it within REFUSED_LOG_S
 * of the last line; unknown: 0, or the errno of SO_PEERCRED (p unset).
 */
static void refuse_peer(const fm_peercred *p, int unknown)
{
    time_t now = time(NULL);

    fm_metrics_inc(FM_MET_PEERS_REFUSED);
    w.refused++;
    if (now < w.refused_log_at)
        return;
    if (unknown == 0)
        fm_log_warn("worker %d: refused a FastCGI connection from uid %u (gid %u, pid %d): not in "
                    "server.allowed_peers (%lu refused by this worker since its last such line)",
                    (int)getpid(), (unsigned)p->uid, (unsigned)p->gid, (int)p->pid, w.refused);
    else
        fm_log_warn("worker %d: refused a FastCGI connection whose peer is unknown (SO_PEERCRED: "
                    "%s) (%lu refused by this worker since its last such line)",
                    (int)getpid(), strerror(unknown), w.refused);
    w.refused = 0;
    w.refused_log_at = now + REFUSED_LOG_S;
}

/*
 * A new connection whose peer may be served: its descriptor (blocking, as
 * libfcgi reads it); -1 when none is waiting or accept failed (wait on the
 * socket); -2 when one was refused (try the next at once).
 */
static int accept_peer(void)
{
    int fd = accept4(w.listen_fd, NULL, NULL, SOCK_CLOEXEC), one = 1;
    fm_peercred p;
    int unknown = 0;

    if (fd < 0)
        return errno == ECONNABORTED || errno == EINTR ? -2 : -1;
    if (!w.unix_socket) {
        /* What libfcgi's own accept sets on a TCP connection. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
    }
    if (fm_peercred_get(fd, &p) != FM_OK)
        unknown = errno;
    else if (fm_peercred_allowed(p.uid, w.self, w.cfg->server.peers, w.cfg->server.npeers))
        return fd;
    refuse_peer(&p, unknown);
    (void)close(fd);
    return -2;
}

/*
 * The next request: FCGX_Accept_r on the connection libfcgi kept open
 * (FCGI_KEEP_CONN, same peer), or on a new one accept_peer admitted. The
 * descriptor goes into the request as libfcgi's own accept would put it;
 * keepConnection makes the finish at the start of FCGX_Accept_r leave it
 * open (the begin record then sets it as the web server asks). 0 when a
 * request is ready; -1 when there is nothing to serve now (wait), -2 when
 * the next connection should be tried at once.
 */
static int next_request(void)
{
    if (w.r.ipcFd < 0) {
        int fd = accept_peer();

        if (fd < 0)
            return fd;
        w.r.ipcFd = fd;
        w.r.keepConnection = 1;
    }
    return FCGX_Accept_r(&w.r) == 0 ? 0 : -2;
}

/* Serves until told to stop, or until waiting on the socket fails (logged). */
static void serve_loop(void)
{
    static const struct timespec now = {0, 0};
    struct epoll_event ev;

    while (!stopping) {
        if (reopen_logs) {
            reopen_logs = 0;
            if (fm_log_reopen() != 0 || fm_audit_reopen(w.env.audit) != 0)
                fm_log_error("worker %d: reopening logs failed: %s", (int)getpid(),
                             strerror(errno));
        }
        if (signal_waiting()) {
            /* No descriptor to be ready: EINTR exactly when a pending signal's handler ran. */
            (void)ppoll(NULL, 0, &now, &w.waitmask);
            continue;
        }
        switch (next_request()) {
        case 0:
            finish(&w.r, serve(&w.r));
            break;
        case -1:
            /* EAGAIN: nothing waiting, or another worker took it. */
            if (epoll_pwait(w.epfd, &ev, 1, -1, &w.waitmask) < 0 && errno != EINTR) {
                fm_log_error("worker %d: poll failed: %s", (int)getpid(), strerror(errno));
                return;
            }
            break;
        default: /* refused, or a connection that brought no request */
            break;
        }
    }
}

/*
 * Shutdown: the master has removed the socket's name, so nothing new
 * arrives; connections nginx already made wait in the backlog and are
 * served rather than reset. Bounded, in case of a flood of old ones.
 */
static void drain(void)
{
    for (time_t until = time(NULL) + DRAIN_MAX_S; draining && time(NULL) < until;) {
        int rc = next_request();

        if (rc == -1)
            break; /* EAGAIN: the backlog is empty */
        if (rc == 0)
            finish(&w.r, serve(&w.r));
    }
}

void fm_worker_main(const fm_config *cfg, int listen_fd, const fm_audit_endpoint *audit_ep)
{
    int status = 1;
    size_t i = 0;

    w.cfg = cfg;
    w.listen_fd = listen_fd;
    w.audit_ep = audit_ep;
    while (i < sizeof(init_steps) / sizeof(init_steps[0]) && init_steps[i]() == FM_OK)
        i++;
    if (i == sizeof(init_steps) / sizeof(init_steps[0])) {
        serve_loop();
        drain();
        status = 0;
    }
    fm_worker_env_close(&w.env);
    exit(status); /* exit, not _exit: LeakSanitizer checks at exit in sanitizer builds */
}
