/*
 * unixsock.c - claiming a unix socket path (see unixsock.h). A socket file
 * whose owner died stays behind; connecting to it tells a stale one (refused)
 * from a live one, as nginx and php-fpm do before binding.
 */
#include "unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int alive(const struct sockaddr_un *sa, int type)
{
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), ok;

    if (fd < 0)
        return 0;
    ok = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    (void)close(fd);
    return ok;
}

fm_err fm_unixsock_claim(const char *path, int type, struct sockaddr_un *sa, char *err,
                         size_t errlen)
{
    struct stat st;
    size_t n = strlen(path);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n >= sizeof(sa->sun_path)) {
        (void)snprintf(err, errlen, "socket path too long: %s", path);
        return FM_EINVAL;
    }
    memcpy(sa->sun_path, path, n + 1);
    if (lstat(path, &st) != 0)
        return FM_OK;
    if (!S_ISSOCK(st.st_mode)) {
        (void)snprintf(err, errlen, "%s exists and is not a socket", path);
        return FM_ECONFLICT;
    }
    if (alive(sa, type)) {
        (void)snprintf(err, errlen, "%s is in use by another process; not starting", path);
        return FM_ECONFLICT;
    }
    if (unlink(path) != 0) {
        int e = errno;

        (void)snprintf(err, errlen, "cannot remove stale %s: %s", path, strerror(e));
        errno = e;
        return FM_ESYS;
    }
    return FM_OK;
}
