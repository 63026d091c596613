/*
 * test_peercred.c - a unix socket peer's credentials, and which peers the
 * FastCGI socket serves.
 */
#include <check.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "peercred.h"

START_TEST(test_get)
{
    int sv[2], p[2];
    fm_peercred c;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fm_peercred_get(sv[0], &c), FM_OK);
    ck_assert_int_eq(c.pid, getpid());
    ck_assert_uint_eq(c.uid, geteuid());
    ck_assert_uint_eq(c.gid, getegid());
    (void)close(sv[0]);
    (void)close(sv[1]);
    /* Not a socket: no credentials. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fm_peercred_get(p[0], &c), FM_ESYS);
    ck_assert_int_eq(errno, ENOTSOCK);
    (void)close(p[0]);
    (void)close(p[1]);
}
END_TEST

START_TEST(test_allowed)
{
    const uid_t list[] = {33, 1000};

    /* The pool's own uid, with or without a list. */
    ck_assert(fm_peercred_allowed(65534, 65534, NULL, 0));
    ck_assert(fm_peercred_allowed(65534, 65534, list, 2));
    /* The listed uids, and nobody else: not root, not a neighbour. */
    ck_assert(fm_peercred_allowed(33, 65534, list, 2));
    ck_assert(fm_peercred_allowed(1000, 65534, list, 2));
    ck_assert(!fm_peercred_allowed(0, 65534, list, 2));
    ck_assert(!fm_peercred_allowed(1001, 65534, list, 2));
    ck_assert(!fm_peercred_allowed(33, 65534, NULL, 0));
    ck_assert(!fm_peercred_allowed(1000, 65534, list, 1));
}
END_TEST

static Suite *peercred_suite(void)
{
    Suite *s = suite_create("peercred");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_get);
    tcase_add_test(tc, test_allowed);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(peercred_suite)
