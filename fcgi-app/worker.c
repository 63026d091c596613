/*
 * worker.c - one FastCGI worker: accept, adapt params to fm_request, run the
 * pipeline, write the response; repeat until told to stop.
 *
 * A worker serves the config snapshot it was forked with; a reload replaces
 * workers, so no worker ever mixes two configs. Signals are blocked except
 * inside ppoll(2) on the (non-blocking) listen socket: SIGTERM can only land
 * while the worker is idle, so the request in flight always finishes and a
 * TERM that arrives just before the wait is never lost (the classic race of
 * checking a flag and then blocking in accept). When several workers wake for
 * one connection, the losers' accept fails with EAGAIN and they wait again.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "audit.h"
#include "log.h"
#include "redact.h"

#define DRAIN_MAX_S 5

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

/* Blocks TERM, INT and USR1 outside the wait; *waitmask is the mask to wait with. */
static void install_signals(sigset_t *waitmask)
{
    struct sigaction sa;
    sigset_t blocked;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_quit;
    (void)sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_usr1;
    (void)sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGHUP, &sa, NULL);
    (void)sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    (void)sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGQUIT);
    sigaddset(&blocked, SIGUSR1);
    (void)sigprocmask(SIG_SETMASK, &blocked, NULL);
    sigemptyset(waitmask);
}

/* Strict CONTENT_LENGTH: absent or empty = 0; anything but digits is refused. */
static int content_length(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    *out = 0;
    if (s == NULL || *s == '\0')
        return 0;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > (unsigned long long)SIZE_MAX / 2)
        return -1;
    *out = (size_t)v;
    return 0;
}

static const char *param(FCGX_Request *r, const char *name, const char *dflt)
{
    const char *v = FCGX_GetParam(name, r->envp);

    return v != NULL ? v : dflt;
}

/*
 * nginx passes a repeated header as repeated params; FCGX_GetParam would
 * silently take the first. Two credentials are ambiguous, so they are counted.
 */
static int repeated(char **envp, const char *name)
{
    size_t n = strlen(name);
    int count = 0;

    for (; *envp != NULL; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            count++;
    return count > 1;
}

static void write_response(FCGX_Request *r, const fm_response *resp, int head)
{
    FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp->status, fm_response_reason(resp->status));
    if (resp->body != NULL)
        FCGX_FPrintF(r->out, "Content-Type: application/json\r\n");
    FCGX_FPrintF(r->out, "Cache-Control: no-store\r\n");
    for (size_t i = 0; i < resp->nheaders; i++)
        FCGX_FPrintF(r->out, "%s\r\n", resp->headers[i]);
    FCGX_FPrintF(r->out, "\r\n");
    if (resp->body != NULL && !head)
        (void)FCGX_PutStr(resp->body, (int)resp->body_len, r->out);
}

static void serve(const fm_env *env, FCGX_Request *r)
{
    const fm_config *cfg = env->cfg;
    fm_request req;
    fm_response resp;
    size_t clen;
    char *body = NULL;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.method = param(r, "REQUEST_METHOD", "GET");
    req.path = param(r, "DOCUMENT_URI", param(r, "SCRIPT_NAME", "/"));
    req.query = param(r, "QUERY_STRING", NULL);
    req.remote_addr = param(r, "REMOTE_ADDR", "");
    req.request_id = param(r, "REQUEST_ID", NULL);
    req.x_api_key = param(r, "HTTP_X_API_KEY", NULL);
    req.authorization = param(r, "HTTP_AUTHORIZATION", NULL);
    req.credentials_repeated =
        repeated(r->envp, "HTTP_X_API_KEY") || repeated(r->envp, "HTTP_AUTHORIZATION");

    if (content_length(param(r, "CONTENT_LENGTH", NULL), &clen) != 0 ||
        clen > cfg->server.max_body_bytes) {
        req.body_too_large = 1;
    } else if (clen > 0) {
        body = malloc(clen);
        if (body == NULL) {
            req.body_too_large = 1;
        } else {
            int got = FCGX_GetStr(body, (int)clen, r->in);
            req.body = body;
            req.body_len = got > 0 ? (size_t)got : 0;
        }
    }
    fm_pipeline_run(env, fm_app_routes, fm_app_nroutes, &req, &resp);
    write_response(r, &resp, strcmp(req.method, "HEAD") == 0);
    fm_response_reset(&resp);
    free(body);
}

void fm_worker_main(const fm_config *cfg, int listen_fd, fm_audit_shared *audit_shared)
{
    FCGX_Request r;
    fm_env env = {cfg, NULL, NULL};
    struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
    sigset_t waitmask;
    int status = 1;

    install_signals(&waitmask);
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        _exit(1);

    env.redis =
        fm_redis_new(cfg->redis.addr, cfg->redis.password, cfg->redis.db, cfg->redis.timeout_ms);
    env.audit = fm_audit_open(cfg->logging.file, audit_shared);
    if (env.redis == NULL || env.audit == NULL) {
        fm_log_error("worker %d: cannot start: %s", (int)getpid(),
                     env.redis == NULL ? "bad redis.addr" : "cannot open the audit log");
        goto done;
    }
    if (FCGX_Init() != 0 || FCGX_InitRequest(&r, listen_fd, 0) != 0) {
        fm_log_error("worker %d: FastCGI initialisation failed", (int)getpid());
        goto done;
    }
    while (!stopping) {
        if (reopen_logs) {
            reopen_logs = 0;
            if (fm_log_reopen() != 0 || fm_audit_reopen(env.audit) != 0)
                fm_log_error("worker %d: reopening logs failed: %s", (int)getpid(),
                             strerror(errno));
        }
        if (ppoll(&pfd, 1, NULL, &waitmask) < 0) {
            if (errno == EINTR)
                continue;
            fm_log_error("worker %d: poll failed: %s", (int)getpid(), strerror(errno));
            break;
        }
        if (FCGX_Accept_r(&r) < 0)
            continue; /* EAGAIN: another worker took it; or a broken connection */
        serve(&env, &r);
        FCGX_Finish_r(&r);
    }
    /*
     * Shutdown: the master has removed the socket's name, so nothing new
     * arrives; connections nginx already made wait in the backlog and are
     * served rather than reset. Bounded, in case of a flood of old ones.
     */
    for (time_t until = time(NULL) + DRAIN_MAX_S; draining && time(NULL) < until;) {
        if (FCGX_Accept_r(&r) < 0)
            break; /* EAGAIN: the backlog is empty */
        serve(&env, &r);
        FCGX_Finish_r(&r);
    }
    status = 0;
done:
    fm_audit_close(env.audit);
    fm_redis_free(env.redis);
    exit(status); /* exit, not _exit: LeakSanitizer checks at exit in sanitizer builds */
}
