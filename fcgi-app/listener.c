/*
 * listener.c - the FastCGI socket the master opens once and every worker
 * generation inherits: a unix socket (fm_daemon_unix_socket: a second master
 * cannot steal a running pool's; it has its configured group and mode before
 * listen) or a numeric TCP host:port.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "daemon.h"
#include "log.h"

#define BACKLOG 1024

/*
 * A master started as root (which then becomes server.user) gives the socket
 * to server.user, and to that user's group unless socket_group names one:
 * the pool can remove its name at stop, and root's group never grants nginx
 * access by accident.
 */
static int open_unix(const char *path, const fm_config *cfg, char *unix_path, size_t unix_len)
{
    int fd;

    if (fm_daemon_unix_socket(path, SOCK_STREAM, cfg->server.socket_group, cfg->server.socket_mode,
                              "server.listen", &fd) != FM_OK)
        return -1;
    if (geteuid() == 0 && cfg->server.user != NULL &&
        chown(path, cfg->server.uid,
              cfg->server.socket_group != NULL ? (gid_t)-1 : cfg->server.gid) != 0) {
        fm_log_error("server.listen: cannot give %s to server.user: %s", path, strerror(errno));
        (void)unlink(path);
        (void)close(fd);
        return -1;
    }
    (void)snprintf(unix_path, unix_len, "%s", path);
    return fd;
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

fm_err fm_listener_open(const fm_config *cfg, int *fd, char *unix_path, size_t unix_len)
{
    int s;

    unix_path[0] = '\0';
    if (strncmp(cfg->server.listen, "unix:", 5) == 0)
        s = open_unix(cfg->server.listen + 5, cfg, unix_path, unix_len);
    else
        s = open_tcp(cfg->server.listen);
    if (s < 0)
        return FM_ESYS;
    /* Non-blocking: workers wait in ppoll, and a lost accept race must not block. */
    if (listen(s, BACKLOG) != 0 || fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) != 0) {
        fm_log_error("server.listen: listen: %s", strerror(errno));
        (void)close(s);
        return FM_ESYS;
    }
    *fd = s;
    return FM_OK;
}
