/*
 * test_rbac.c - permission strings to masks (every accepted form, refused
 * forms with the exact message, run for jobs only), built-in roles, allows(),
 * reads_all() and names.
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
/* Every valid bit: 15 bits of the grid less experiments:run (bit 9) and metrics:run (bit 14). */
#define ALL_BITS 0x3dffu

static const struct good_case {
    const char *text;
    fm_perms mask;
} good_cases[] = {
    {"*", ALL_BITS},
    {"jobs:read", 1u << 0},
    {"jobs:create", 1u << 1},
    {"jobs:update", 1u << 2},
    {"jobs:delete", 1u << 3},
    {"jobs:run", 1u << 4},
    {"experiments:read", 1u << 5},
    {"experiments:create", 1u << 6},
    {"experiments:update", 1u << 7},
    {"experiments:delete", 1u << 8},
    {"metrics:read", 1u << 10},
    {"metrics:create", 1u << 11},
    {"metrics:update", 1u << 12},
    {"metrics:delete", 1u << 13},
    {"jobs:write", P(JOBS, CREATE) | P(JOBS, UPDATE)},
    {"experiments:write", P(EXPERIMENTS, CREATE) | P(EXPERIMENTS, UPDATE)},
    {"metrics:write", P(METRICS, CREATE) | P(METRICS, UPDATE)},
    {"jobs:*", RES_ALL(JOBS) | P(JOBS, RUN)},
    {"experiments:*", RES_ALL(EXPERIMENTS)},
    {"metrics:*", RES_ALL(METRICS)},
    {"*:read", ACT_ALL(READ)},
    {"*:create", ACT_ALL(CREATE)},
    {"*:update", ACT_ALL(UPDATE)},
    {"*:delete", ACT_ALL(DELETE)},
    {"*:write", ACT_ALL(CREATE) | ACT_ALL(UPDATE)},
    {"*:run", P(JOBS, RUN)},
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
    "read|create|update|delete|write|run|*)"

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
    {"jobs:runs", "jobs:runs"},
    {"run", "run"},
    {"run:jobs", "run:jobs"},
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

/* run is an action of jobs only: naming it for another resource is refused, not dropped. */
START_TEST(test_parse_run_other_resource)
{
    static const char *const refused[] = {"experiments:run", "metrics:run"};
    fm_perms got = 0x5au;
    char err[256], want[256];

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ck_assert_int_eq(fm_rbac_parse(refused[i], &got, err, sizeof(err)), FM_EINVAL);
        (void)snprintf(want, sizeof(want),
                       "permission \"%s\" is refused: the action run exists for jobs only "
                       "(jobs:run)",
                       refused[i]);
        ck_assert_str_eq(err, want);
        ck_assert_uint_eq(got, 0x5au);
    }
}
END_TEST

/* No wildcard yields a bit outside FM_PERM_ALL, and FM_PERM_ALL is exactly the named bits. */
START_TEST(test_no_invalid_bits)
{
    static const char *const wild[] = {"*", "*:*", "*:run", "experiments:*", "metrics:*"};
    fm_perms named = FM_PERM_NONE;
    char err[256];

    for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
        fm_perms got;

        ck_assert_int_eq(fm_rbac_parse(wild[i], &got, err, sizeof(err)), FM_OK);
        ck_assert_uint_eq(got & ~FM_PERM_ALL, 0);
        ck_assert_uint_eq(got & (P(EXPERIMENTS, RUN) | P(METRICS, RUN)), 0);
    }
    for (unsigned b = 0; b < 32; b++)
        if (fm_rbac_name((fm_perms)1u << b) != NULL)
            named |= (fm_perms)1u << b;
    ck_assert_uint_eq(named, FM_PERM_ALL);
    ck_assert_uint_eq(FM_PERM_ALL, ALL_BITS);
}
END_TEST

START_TEST(test_parse_message_exact)
{
    fm_perms got;
    char err[256], small[10];

    ck_assert_int_eq(fm_rbac_parse("jobs:fly", &got, err, sizeof(err)), FM_EINVAL);
    ck_assert_str_eq(err, "unknown permission \"jobs:fly\" (expected <resource>:<action>, "
                          "resources jobs|experiments|metrics, actions "
                          "read|create|update|delete|write|run|*)");
    ck_assert_int_eq(fm_rbac_parse("jobs:fly", &got, small, sizeof(small)), FM_EINVAL);
    ck_assert_str_eq(small, "unknown p");
    ck_assert_int_eq(fm_rbac_parse("jobs:fly", &got, NULL, 0), FM_EINVAL);
    ck_assert_int_eq(fm_rbac_parse(NULL, &got, err, sizeof(err)), FM_EINVAL);
}
END_TEST

START_TEST(test_builtin_roles)
{
    fm_perms got;

    ck_assert(FM_PERM_ALL == ALL_BITS);
    ck_assert(fm_rbac_builtin_role("admin", &got));
    ck_assert_uint_eq(got, ALL_BITS);
    ck_assert(fm_rbac_builtin_role("researcher", &got));
    ck_assert_uint_eq(got, 0x0e7u);
    ck_assert_uint_eq(got, P(JOBS, READ) | P(JOBS, CREATE) | P(JOBS, UPDATE) |
                               P(EXPERIMENTS, READ) | P(EXPERIMENTS, CREATE) |
                               P(EXPERIMENTS, UPDATE));
    ck_assert(fm_rbac_builtin_role("analyst", &got));
    ck_assert_uint_eq(got, 0x421u);
    ck_assert_uint_eq(got, P(JOBS, READ) | P(EXPERIMENTS, READ) | P(METRICS, READ));
    ck_assert(fm_rbac_builtin_role("worker", &got));
    ck_assert_uint_eq(got, 0x011u);
    ck_assert_uint_eq(got, P(JOBS, RUN) | P(JOBS, READ));

    got = 0x5au;
    ck_assert(!fm_rbac_builtin_role("Admin", &got));
    ck_assert(!fm_rbac_builtin_role("admin ", &got));
    ck_assert(!fm_rbac_builtin_role("", &got));
    ck_assert(!fm_rbac_builtin_role("viewer", &got));
    ck_assert(!fm_rbac_builtin_role("workers", &got));
    ck_assert(!fm_rbac_builtin_role(NULL, &got));
    ck_assert_uint_eq(got, 0x5au);
}
END_TEST

START_TEST(test_allows)
{
    fm_perms researcher, analyst, admin, worker;

    ck_assert(fm_rbac_builtin_role("researcher", &researcher));
    ck_assert(fm_rbac_builtin_role("analyst", &analyst));
    ck_assert(fm_rbac_builtin_role("admin", &admin));
    ck_assert(fm_rbac_builtin_role("worker", &worker));

    /* Every single permission against every built-in role. */
    for (int r = 0; r < FM_RES_COUNT; r++) {
        for (int a = 0; a < FM_ACT_COUNT; a++) {
            fm_perms bit = FM_PERM(r, a);
            bool want_researcher = r != FM_RES_METRICS && a != FM_ACT_DELETE && a != FM_ACT_RUN;
            bool want_analyst = a == FM_ACT_READ;
            bool want_worker = r == FM_RES_JOBS && (a == FM_ACT_READ || a == FM_ACT_RUN);

            if (a == FM_ACT_RUN && r != FM_RES_JOBS) {
                ck_assert(!fm_rbac_allows(admin, bit)); /* not a permission: never granted */
                continue;
            }
            ck_assert(fm_rbac_allows(admin, bit));
            ck_assert(fm_rbac_allows(researcher, bit) == want_researcher);
            ck_assert(fm_rbac_allows(analyst, bit) == want_analyst);
            ck_assert(fm_rbac_allows(worker, bit) == want_worker);
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

/* Admins and holders of jobs:run read every user's tasks; nobody else does. */
START_TEST(test_reads_all)
{
    fm_perms researcher, analyst, worker;

    ck_assert(fm_rbac_builtin_role("researcher", &researcher));
    ck_assert(fm_rbac_builtin_role("analyst", &analyst));
    ck_assert(fm_rbac_builtin_role("worker", &worker));
    ck_assert(fm_rbac_reads_all(true, FM_PERM_NONE));
    ck_assert(fm_rbac_reads_all(false, worker));
    ck_assert(fm_rbac_reads_all(false, P(JOBS, RUN)));
    ck_assert(!fm_rbac_reads_all(false, researcher));
    ck_assert(!fm_rbac_reads_all(false, analyst));
    ck_assert(!fm_rbac_reads_all(false, FM_PERM_ALL & ~P(JOBS, RUN)));
    ck_assert(!fm_rbac_reads_all(false, FM_PERM_NONE));
}
END_TEST

/* Each name is "<resource>:<action>" of its bit, parses back to it; run only for jobs. */
START_TEST(test_names)
{
    static const char *const res[] = {"jobs", "experiments", "metrics"};
    static const char *const act[] = {"read", "create", "update", "delete", "run"};
    char err[256], want[64];

    for (unsigned r = 0; r < FM_RES_COUNT; r++) {
        for (unsigned a = 0; a < FM_ACT_COUNT; a++) {
            fm_perms bit = FM_PERM(r, a), back;

            if (a == FM_ACT_RUN && r != FM_RES_JOBS) {
                ck_assert_ptr_null(fm_rbac_name(bit));
                continue;
            }
            (void)snprintf(want, sizeof(want), "%s:%s", res[r], act[a]);
            ck_assert_str_eq(fm_rbac_name(bit), want);
            ck_assert_int_eq(fm_rbac_parse(fm_rbac_name(bit), &back, err, sizeof(err)), FM_OK);
            ck_assert_uint_eq(back, bit);
        }
    }
    ck_assert_str_eq(fm_rbac_name(1u << 4), "jobs:run");
    ck_assert_str_eq(fm_rbac_name(1u << 13), "metrics:delete");
    ck_assert_ptr_null(fm_rbac_name(FM_PERM_NONE));
    ck_assert_ptr_null(fm_rbac_name(0x3u));
    ck_assert_ptr_null(fm_rbac_name(FM_PERM_ALL));
    ck_assert_ptr_null(fm_rbac_name(1u << 15));
    ck_assert_ptr_null(fm_rbac_name(1u << 31));
}
END_TEST

static Suite *rbac_suite(void)
{
    Suite *s = suite_create("rbac");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_parse_good, 0, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
    tcase_add_loop_test(tc, test_parse_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_parse_run_other_resource);
    tcase_add_test(tc, test_no_invalid_bits);
    tcase_add_test(tc, test_parse_message_exact);
    tcase_add_test(tc, test_builtin_roles);
    tcase_add_test(tc, test_allows);
    tcase_add_test(tc, test_effective_formula);
    tcase_add_test(tc, test_reads_all);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(rbac_suite)
