/*
 * test_rbac.c - permission strings to masks (every accepted form, refused
 * forms with the exact message), built-in roles, allows() and names.
 */
#include "rbac.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define P(r, a) FM_PERM(FM_RES_##r, FM_ACT_##a)
#define RES_ALL(r) (P(r, READ) | P(r, CREATE) | P(r, UPDATE) | P(r, DELETE))
#define ACT_ALL(a) (P(JOBS, a) | P(EXPERIMENTS, a) | P(METRICS, a))

static const struct good_case {
    const char *text;
    fm_perms mask;
} good_cases[] = {
    {"*", 0xfffu},
    {"jobs:read", 1u << 0},
    {"jobs:create", 1u << 1},
    {"jobs:update", 1u << 2},
    {"jobs:delete", 1u << 3},
    {"experiments:read", 1u << 4},
    {"experiments:create", 1u << 5},
    {"experiments:update", 1u << 6},
    {"experiments:delete", 1u << 7},
    {"metrics:read", 1u << 8},
    {"metrics:create", 1u << 9},
    {"metrics:update", 1u << 10},
    {"metrics:delete", 1u << 11},
    {"jobs:write", P(JOBS, CREATE) | P(JOBS, UPDATE)},
    {"experiments:write", P(EXPERIMENTS, CREATE) | P(EXPERIMENTS, UPDATE)},
    {"metrics:write", P(METRICS, CREATE) | P(METRICS, UPDATE)},
    {"jobs:*", RES_ALL(JOBS)},
    {"experiments:*", RES_ALL(EXPERIMENTS)},
    {"metrics:*", RES_ALL(METRICS)},
    {"*:read", ACT_ALL(READ)},
    {"*:create", ACT_ALL(CREATE)},
    {"*:update", ACT_ALL(UPDATE)},
    {"*:delete", ACT_ALL(DELETE)},
    {"*:write", ACT_ALL(CREATE) | ACT_ALL(UPDATE)},
    {"*:*", FM_PERM_ALL},
};

START_TEST(test_parse_good)
{
    const struct good_case *gc = &good_cases[_i];
    fm_perms got = 0xdeadbeefu;
    char err[256] = "";

    ck_assert_msg(fm_rbac_parse(gc->text, &got, err, sizeof(err)) == FM_OK, "%s: %s", gc->text,
                  err);
    ck_assert_uint_eq(got, gc->mask);
}
END_TEST

#define EXPECTED                                                                                   \
    "(expected <resource>:<action>, resources jobs|experiments|metrics, actions "                  \
    "read|create|update|delete|write|*)"

static const struct bad_case {
    const char *text;
    const char *shown;
} bad_cases[] = {
    {"", ""},
    {"jobs:fly", "jobs:fly"},
    {"JOBS:READ", "JOBS:READ"},
    {"Jobs:read", "Jobs:read"},
    {"jobs:Read", "jobs:Read"},
    {"jobs: read", "jobs: read"},
    {" jobs:read", " jobs:read"},
    {"jobs:read ", "jobs:read "},
    {"jobs", "jobs"},
    {"jobs:", "jobs:"},
    {":read", ":read"},
    {":", ":"},
    {"jobs:read:x", "jobs:read:x"},
    {"jobs::read", "jobs::read"},
    {"job:read", "job:read"},
    {"jobss:read", "jobss:read"},
    {"jobs:reads", "jobs:reads"},
    {"users:read", "users:read"},
    {"**", "**"},
    {"*:**", "*:**"},
    {"write", "write"},
    {"read", "read"},
    {"jobs:writ", "jobs:writ"},
    {"jobs:*,read", "jobs:*,read"},
    {"jobs:read\n", "jobs:read?"},
    {"jobs\":read", "jobs?:read"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:read",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."},
};

START_TEST(test_parse_bad)
{
    const struct bad_case *bc = &bad_cases[_i];
    fm_perms got = 0x5au;
    char err[512], want[512];

    ck_assert_int_eq(fm_rbac_parse(bc->text, &got, err, sizeof(err)), FM_EINVAL);
    (void)snprintf(want, sizeof(want), "unknown permission \"%s\" " EXPECTED, bc->shown);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(got, 0x5au);
}
END_TEST

START_TEST(test_parse_message_exact)
{
    fm_perms got;
    char err[256], small[10];

    ck_assert_int_eq(fm_rbac_parse("jobs:fly", &got, err, sizeof(err)), FM_EINVAL);
    ck_assert_str_eq(err, "unknown permission \"jobs:fly\" (expected <resource>:<action>, "
                          "resources jobs|experiments|metrics, actions "
                          "read|create|update|delete|write|*)");
    ck_assert_int_eq(fm_rbac_parse("jobs:fly", &got, small, sizeof(small)), FM_EINVAL);
    ck_assert_str_eq(small, "unknown p");
    ck_assert_int_eq(fm_rbac_parse("jobs:fly", &got, NULL, 0), FM_EINVAL);
    ck_assert_int_eq(fm_rbac_parse(NULL, &got, err, sizeof(err)), FM_EINVAL);
}
END_TEST

START_TEST(test_builtin_roles)
{
    fm_perms got;

    ck_assert(FM_PERM_ALL == 0xfffu);
    ck_assert(fm_rbac_builtin_role("admin", &got));
    ck_assert_uint_eq(got, 0xfffu);
    ck_assert(fm_rbac_builtin_role("researcher", &got));
    ck_assert_uint_eq(got, 0x077u);
    ck_assert_uint_eq(got, P(JOBS, READ) | P(JOBS, CREATE) | P(JOBS, UPDATE) |
                               P(EXPERIMENTS, READ) | P(EXPERIMENTS, CREATE) |
                               P(EXPERIMENTS, UPDATE));
    ck_assert(fm_rbac_builtin_role("analyst", &got));
    ck_assert_uint_eq(got, 0x111u);
    ck_assert_uint_eq(got, P(JOBS, READ) | P(EXPERIMENTS, READ) | P(METRICS, READ));

    got = 0x5au;
    ck_assert(!fm_rbac_builtin_role("Admin", &got));
    ck_assert(!fm_rbac_builtin_role("admin ", &got));
    ck_assert(!fm_rbac_builtin_role("", &got));
    ck_assert(!fm_rbac_builtin_role("viewer", &got));
    ck_assert(!fm_rbac_builtin_role(NULL, &got));
    ck_assert_uint_eq(got, 0x5au);
}
END_TEST

START_TEST(test_allows)
{
    fm_perms researcher, analyst, admin;

    ck_assert(fm_rbac_builtin_role("researcher", &researcher));
    ck_assert(fm_rbac_builtin_role("analyst", &analyst));
    ck_assert(fm_rbac_builtin_role("admin", &admin));

    /* Every single permission against every built-in role. */
    for (int r = 0; r < FM_RES_COUNT; r++) {
        for (int a = 0; a < FM_ACT_COUNT; a++) {
            fm_perms bit = FM_PERM(r, a);
            bool want_researcher = r != FM_RES_METRICS && a != FM_ACT_DELETE;
            bool want_analyst = a == FM_ACT_READ;

            ck_assert(fm_rbac_allows(admin, bit));
            ck_assert(fm_rbac_allows(researcher, bit) == want_researcher);
            ck_assert(fm_rbac_allows(analyst, bit) == want_analyst);
            ck_assert(!fm_rbac_allows(FM_PERM_NONE, bit));
            ck_assert(fm_rbac_allows(bit, bit));
            ck_assert(!fm_rbac_allows(FM_PERM_ALL & ~bit, bit));
        }
    }
    /* A compound requirement needs every bit. */
    ck_assert(fm_rbac_allows(researcher, P(JOBS, CREATE) | P(JOBS, UPDATE)));
    ck_assert(!fm_rbac_allows(researcher, P(JOBS, READ) | P(JOBS, DELETE)));
    ck_assert(!fm_rbac_allows(analyst, ACT_ALL(READ) | P(METRICS, CREATE)));
    ck_assert(fm_rbac_allows(analyst, ACT_ALL(READ)));
    /* Nothing required is always allowed. */
    ck_assert(fm_rbac_allows(FM_PERM_NONE, FM_PERM_NONE));
}
END_TEST

START_TEST(test_effective_formula)
{
    fm_perms role, grant, deny, effective;
    char err[256];

    /* The spec's alice: researcher + jobs:delete, with a deny of jobs:update. */
    ck_assert(fm_rbac_builtin_role("researcher", &role));
    ck_assert_int_eq(fm_rbac_parse("jobs:delete", &grant, err, sizeof(err)), FM_OK);
    ck_assert_int_eq(fm_rbac_parse("jobs:update", &deny, err, sizeof(err)), FM_OK);
    effective = (role | grant) & ~deny;
    ck_assert(fm_rbac_allows(effective, P(JOBS, DELETE)));
    ck_assert(!fm_rbac_allows(effective, P(JOBS, UPDATE)));
    ck_assert(fm_rbac_allows(effective, P(JOBS, CREATE)));
    ck_assert(!fm_rbac_allows(effective, P(METRICS, READ)));
}
END_TEST

START_TEST(test_names)
{
    static const char *const names[] = {
        "jobs:read",        "jobs:create",        "jobs:update",        "jobs:delete",
        "experiments:read", "experiments:create", "experiments:update", "experiments:delete",
        "metrics:read",     "metrics:create",     "metrics:update",     "metrics:delete",
    };
    char err[256];

    for (unsigned i = 0; i < 12; i++) {
        fm_perms back;

        ck_assert_str_eq(fm_rbac_name((fm_perms)1u << i), names[i]);
        ck_assert_int_eq(fm_rbac_parse(fm_rbac_name((fm_perms)1u << i), &back, err, sizeof(err)),
                         FM_OK);
        ck_assert_uint_eq(back, (fm_perms)1u << i);
    }
    ck_assert_ptr_null(fm_rbac_name(FM_PERM_NONE));
    ck_assert_ptr_null(fm_rbac_name(0x3u));
    ck_assert_ptr_null(fm_rbac_name(FM_PERM_ALL));
    ck_assert_ptr_null(fm_rbac_name(1u << 12));
    ck_assert_ptr_null(fm_rbac_name(1u << 31));
}
END_TEST

static Suite *rbac_suite(void)
{
    Suite *s = suite_create("rbac");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_parse_good, 0, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
    tcase_add_loop_test(tc, test_parse_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_parse_message_exact);
    tcase_add_test(tc, test_builtin_roles);
    tcase_add_test(tc, test_allows);
    tcase_add_test(tc, test_effective_formula);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(rbac_suite)
