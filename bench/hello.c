/*
 * hello.c - the baseline for scripts/bench.sh: the cheapest FastCGI responder
 * libfcgi allows, so that "full pipeline / hello" measures what fetchml-fcgi
 * adds on top of nginx, TLS and the FastCGI protocol themselves.
 *
 *   hello SOCKET_PATH WORKERS
 *
 * The parent binds SOCKET_PATH once (FCGX_OpenSocket) and forks WORKERS
 * children that share the listening socket, like fetchml-fcgi's pool. Each
 * child runs the plain blocking loop FCGX_Accept_r -> fixed reply ->
 * FCGX_Finish_r: the kernel wakes one blocked accept(2) per connection. Every
 * request gets "200 {"status":"ok"}" whatever it asks. The parent waits for
 * SIGTERM or SIGINT, then terminates the children, reaps them and removes the
 * socket. Children also die with the parent (PR_SET_PDEATHSIG), so a killed
 * benchmark leaves no process behind.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define BACKLOG 1024

static const char reply[] = "Status: 200 OK\r\n"
                            "Content-Type: application/json\r\n"
                            "\r\n"
                            "{\"status\":\"ok\"}";

/* Strict 1..MAX_WORKERS. Returns the count, or -1. */
static int parse_workers(const char *s)
{
    char *end;
    long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > MAX_WORKERS)
        return -1;
    return (int)v;
}

static void serve(int listen_fd) __attribute__((noreturn));
static void serve(int listen_fd)
{
    FCGX_Request r;

    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1 || FCGX_InitRequest(&r, listen_fd, 0) != 0)
        _exit(1);
    while (FCGX_Accept_r(&r) >= 0) {
        (void)FCGX_PutStr(reply, (int)sizeof(reply) - 1, r.out);
        FCGX_Finish_r(&r);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    pid_t pids[MAX_WORKERS];
    sigset_t stop;
    int nworkers, fd, sig, started = 0, status = 1;

    nworkers = argc == 3 ? parse_workers(argv[2]) : -1;
    if (nworkers < 0) {
        fprintf(stderr, "usage: hello SOCKET_PATH WORKERS (1..%d)\n", MAX_WORKERS);
        return 2;
    }
    /* Blocked before forking, so a TERM that arrives early is waited for, not fatal. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0 || FCGX_Init() != 0) {
        fprintf(stderr, "hello: initialisation failed\n");
        return 1;
    }
    /* A socket left by an earlier, killed run would make bind fail. */
    if (unlink(argv[1]) != 0 && errno != ENOENT) {
        fprintf(stderr, "hello: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    fd = FCGX_OpenSocket(argv[1], BACKLOG);
    if (fd < 0) {
        fprintf(stderr, "hello: cannot listen on %s\n", argv[1]);
        return 1;
    }
    for (; started < nworkers; started++) {
        pids[started] = fork();
        if (pids[started] < 0) {
            fprintf(stderr, "hello: fork: %s\n", strerror(errno));
            goto done;
        }
        if (pids[started] == 0) {
            sigset_t none;
            sigemptyset(&none);
            (void)sigprocmask(SIG_SETMASK, &none, NULL);
            serve(fd);
        }
    }
    if (sigwait(&stop, &sig) != 0)
        goto done;
    status = 0;
done:
    for (int i = 0; i < started; i++)
        (void)kill(pids[i], SIGTERM);
    for (int i = 0; i < started; i++)
        (void)waitpid(pids[i], NULL, 0);
    (void)unlink(argv[1]);
    return status;
}
