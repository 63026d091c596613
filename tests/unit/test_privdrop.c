/*
 * test_privdrop.c - giving up root: the drop itself (in a child, when the
 * test runs as root), a drop that leaves a saved uid of 0 is caught, and the
 * refusals (to uid 0, and when not root).
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "privdrop.h"

/* The account the drop goes to: nobody, which every Debian system has. */
static struct passwd *target(void)
{
    struct passwd *pw = getpwnam("nobody");

    ck_assert_ptr_nonnull(pw);
    ck_assert_uint_ne(pw->pw_uid, 0);
    return pw;
}

/* Runs fn in a child; returns its exit status (fn returns 0 on success). */
static int in_child(int (*fn)(void))
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn());
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int drop_child(void)
{
    struct passwd *pw = target();
    uid_t uid = pw->pw_uid, ru, eu, su;
    gid_t gid = pw->pw_gid, rg, eg, sg, groups[64];
    char err[256];
    int n;

    if (fm_privdrop("nobody", uid, gid, err, sizeof(err)) != FM_OK)
        return 1;
    if (getresuid(&ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid)
        return 2;
    if (getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
        return 3;
    /* initgroups: the account's groups only, root's supplementary groups are gone. */
    n = getgroups(64, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == 0)
            return 4;
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return 5;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return 6;
    /* Already dropped: a second drop is refused, the verification still passes. */
    if (fm_privdrop("nobody", uid, gid, err, sizeof(err)) != FM_EINVAL ||
        fm_privdrop_verify(uid, gid, err, sizeof(err)) != FM_OK)
        return 7;
    return 0;
}

/* A drop that keeps root as the saved uid could setuid(0) back: the check says so. */
static int partial_child(void)
{
    struct passwd *pw = target();
    char err[256];

    if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, 0) != 0)
        return 1;
    if (fm_privdrop_verify(pw->pw_uid, pw->pw_gid, err, sizeof(err)) != FM_ESYS ||
        strstr(err, "saved id") == NULL)
        return 2;
    return 0;
}

START_TEST(test_drop_as_root)
{
    if (geteuid() != 0) {
        (void)fprintf(stderr, "test_privdrop: not root, the drop itself is not exercised\n");
        return;
    }
    ck_assert_int_eq(in_child(drop_child), 0);
    ck_assert_int_eq(in_child(partial_child), 0);
}
END_TEST

START_TEST(test_refusals)
{
    struct passwd *pw = target();
    char err[256];

    /* Never to root. */
    ck_assert_int_eq(fm_privdrop("root", 0, 0, err, sizeof(err)), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "root"));
    /* The test process itself: not the account, so the verification fails. */
    ck_assert_int_eq(fm_privdrop_verify(pw->pw_uid, pw->pw_gid, err, sizeof(err)), FM_ESYS);
    if (geteuid() != 0) {
        ck_assert_int_eq(fm_privdrop("nobody", pw->pw_uid, pw->pw_gid, err, sizeof(err)),
                         FM_EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "not running as root"));
    } else {
        /* Root's ids are 0: never a dropped process. */
        ck_assert_int_eq(fm_privdrop_verify(0, 0, err, sizeof(err)), FM_ESYS);
    }
}
END_TEST

static Suite *privdrop_suite(void)
{
    Suite *s = suite_create("privdrop");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_drop_as_root);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(privdrop_suite)
