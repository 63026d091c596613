/*
 * test_unixsock.c - claiming a unix socket path: free, stale, live, not a socket.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static Suite *unixsock_suite(void)
{
    Suite *s = suite_create("unixsock");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, claims);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(unixsock_suite)
