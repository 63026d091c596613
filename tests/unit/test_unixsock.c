/*
 * test_unixsock.c - claiming a unix socket path: free, stale, live, not a socket.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "unixsock.h"

static int bound(const char *path, int type, int do_listen)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, type, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (do_listen)
        ck_assert_int_eq(listen(fd, 1), 0);
    return fd;
}

START_TEST(claims)
{
    char dir[TH_PATH_MAX], path[TH_PATH_MAX], err[512], longp[200];
    struct sockaddr_un sa;
    int fd;

    th_mkdtemp(dir, "unixsock");
    th_path(path, dir, "s.sock");

    /* Free: nothing to do, sa filled. */
    ck_assert_int_eq(fm_unixsock_claim(path, SOCK_STREAM, &sa, err, sizeof(err)), 0);
    ck_assert_str_eq(sa.sun_path, path);

    /* Live stream and datagram sockets are never taken over. */
    fd = bound(path, SOCK_STREAM, 1);
    ck_assert_int_eq(fm_unixsock_claim(path, SOCK_STREAM, &sa, err, sizeof(err)), FM_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(err, "in use by another process"));
    ck_assert_int_eq(access(path, F_OK), 0);
    /* Stale (its owner gone): removed. */
    (void)close(fd);
    ck_assert_int_eq(fm_unixsock_claim(path, SOCK_STREAM, &sa, err, sizeof(err)), 0);
    ck_assert_int_eq(access(path, F_OK), -1);

    fd = bound(path, SOCK_DGRAM, 0);
    ck_assert_int_eq(fm_unixsock_claim(path, SOCK_DGRAM, &sa, err, sizeof(err)), FM_ECONFLICT);
    (void)close(fd);
    ck_assert_int_eq(fm_unixsock_claim(path, SOCK_DGRAM, &sa, err, sizeof(err)), 0);

    /* Any other file is refused and left alone. */
    th_write_file(path, "not a socket");
    ck_assert_int_eq(fm_unixsock_claim(path, SOCK_STREAM, &sa, err, sizeof(err)), FM_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(err, "exists and is not a socket"));
    ck_assert_int_eq(access(path, F_OK), 0);

    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    ck_assert_int_eq(fm_unixsock_claim(longp, SOCK_STREAM, &sa, err, sizeof(err)), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "socket path too long"));
    th_rmtree(dir);
}
END_TEST

/* A message and a descriptor cross a socketpair; bad messages are refused, EOF is told apart. */
START_TEST(passes_descriptors)
{
    char buf[64], big[256];
    int sv[2], p[2], fd, big_fd;
    size_t len;
    struct stat a, b;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fm_unixsock_send(sv[0], "hello", 5, p[1]), FM_OK);
    ck_assert_int_eq(fm_unixsock_recv(sv[1], buf, sizeof buf, &len, &fd), FM_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ne(fd, p[1]);
    ck_assert_int_eq(fstat(fd, &a), 0);
    ck_assert_int_eq(fstat(p[1], &b), 0);
    ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev); /* the same open file */
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    ck_assert_int_eq(read(p[0], buf, 1), 1);
    (void)close(fd);

    /* Without a descriptor: -1. */
    ck_assert_int_eq(fm_unixsock_send(sv[0], "plain", 5, -1), FM_OK);
    ck_assert_int_eq(fm_unixsock_recv(sv[1], buf, sizeof buf, &len, &fd), FM_OK);
    ck_assert_int_eq(fd, -1);
    ck_assert_uint_eq(len, 5);

    /* Longer than the buffer: refused, and the descriptor it carried is not leaked. */
    memset(big, 'b', sizeof big);
    ck_assert_int_eq(fm_unixsock_send(sv[0], big, sizeof big, p[1]), FM_OK);
    big_fd = dup(0); /* the lowest free descriptor: where a leaked one would land */
    ck_assert_int_ge(big_fd, 0);
    (void)close(big_fd);
    errno = 0;
    ck_assert_int_eq(fm_unixsock_recv(sv[1], buf, sizeof buf, &len, &fd), FM_ESYS);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(fcntl(big_fd, F_GETFD), -1); /* closed again */

    /* The peer's close is FM_ENOTFOUND; a send to a closed peer is EPIPE, not SIGPIPE. */
    (void)close(sv[0]);
    ck_assert_int_eq(fm_unixsock_recv(sv[1], buf, sizeof buf, &len, &fd), FM_ENOTFOUND);
    ck_assert_int_eq(fm_unixsock_send(sv[1], "x", 1, -1), FM_ESYS);
    ck_assert_int_eq(errno, EPIPE);
    (void)close(sv[1]);
    (void)close(p[0]);
    (void)close(p[1]);
}
END_TEST

static Suite *unixsock_suite(void)
{
    Suite *s = suite_create("unixsock");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, claims);
    tcase_add_test(tc, passes_descriptors);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(unixsock_suite)
