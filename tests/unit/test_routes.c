/*
 * test_routes.c - the route table against RBAC: for every route and a set of
 * users (built-in roles, custom roles with inheritance, per-user grants and
 * denies, wildcards, no roles at all), whether the pipeline's permission check
 * lets the user through. Users come from a real YAML file through
 * fm_config_load, so the table checks the whole chain config -> rbac -> route.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "helpers.h"

#define H(c)                                                                                       \
    "\"" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
        c c c c c c c c c c c c c c c c c c c "\""

static const char yaml[] =
    "auth:\n"
    "  roles:\n"
    "    operator: { inherits: [analyst], permissions: { \"jobs:update\": true } }\n"
    "    janitor: { inherits: [operator], permissions: { \"jobs:delete\": true, \"metrics:read\": "
    "false } }\n"
    "    writer: { permissions: { \"jobs:write\": true } }\n"
    "  api_keys:\n"
    "    root: { hash: " H(
        "0") ", admin: true }\n"
             "    res: { hash: " H(
                 "1") ", roles: [researcher] }\n"
                      "    ana: { hash: " H(
                          "2") ", roles: [analyst] }\n"
                               "    nobody: { hash: " H(
                                   "3") " }\n"
                                        "    res_del: { hash: " H(
                                            "4") ", roles: [researcher], permissions: { "
                                                 "\"jobs:delete\": true } }\n"
                                                 "    res_nocreate: { hash: " H(
                                                     "5") ", roles: [researcher], permissions: { "
                                                          "\"jobs:create\": false } }\n"
                                                          "    jobs_all: { hash: " H(
                                                              "6") ", permissions: { \"jobs:*\": "
                                                                   "true } }\n"
                                                                   "    readall: { hash: " H(
                                                                       "7") ", permissions: { "
                                                                            "\"*:read\": true } }\n"
                                                                            "    writer: { "
                                                                            "hash: " H(
                                                                                "8") ", roles: "
                                                                                     "[writer] }\n"
                                                                                     "    janitor: "
                                                                                     "{ hash: " H(
                                                                                         "9") ", "
                                                                                              "role"
                                                                                              "s: "
                                                                                              "[jan"
                                                                                              "itor"
                                                                                              "] "
                                                                                              "}\n"
                                                                                              "    "
                                                                                              "admi"
                                                                                              "n_"
                                                                                              "deni"
                                                                                              "ed: "
                                                                                              "{ "
                                                                                              "hash"
                                                                                              ":"
                                                                                              " " H(
                                                                                                  "a") ", admin: true, permissions: { \"jobs:create\": false } }\n"
                                                                                                       "    all_but_delete: { hash: " H(
                                                                                                           "b") ", permissions: { \"*\": true, \"*:delete\": false } }\n";

/* Columns: health, whoami, create, list, get, cancel, delete. */
static const struct {
    const char *method, *pattern;
} cols[] = {
    {"GET", "/health"},           {"GET", "/v1/whoami"},     {"POST", "/v1/tasks"},
    {"GET", "/v1/tasks"},         {"GET", "/v1/tasks/{id}"}, {"POST", "/v1/tasks/{id}/cancel"},
    {"DELETE", "/v1/tasks/{id}"},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static const struct {
    const char *user;
    const char *allowed; /* one character per column: Y allowed, . denied */
} rows[] = {
    {"root", "YYYYYYY"},         /* admin: everything */
    {"res", "YYYYYY."},          /* researcher: create/read/update own jobs */
    {"ana", "YY.YY.."},          /* analyst: read only */
    {"nobody", "YY....."},       /* least privilege: only whoami (and health) */
    {"res_del", "YYYYYYY"},      /* a per-user grant on top of the role */
    {"res_nocreate", "YY.YYY."}, /* a per-user deny wins over the role */
    {"jobs_all", "YYYYYYY"},     /* jobs:* */
    {"readall", "YY.YY.."},      /* *:read */
    {"writer", "YYY..Y."},       /* jobs:write = create + update, no read */
    {"janitor", "YY.YYYY"},      /* inherits analyst via operator, adds update and delete */
    {"admin_denied", "YYYYYYY"}, /* admin: true ignores denies */
    {"all_but_delete", "YYYYYY."},
};

static const fm_route *route_for(const char *method, const char *pattern)
{
    for (size_t i = 0; i < fm_app_nroutes; i++)
        if (strcmp(fm_app_routes[i].method, method) == 0 &&
            strcmp(fm_app_routes[i].pattern, pattern) == 0)
            return &fm_app_routes[i];
    return NULL;
}

static const fm_user *user_named(const fm_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        if (strcmp(cfg->auth.users[i].name, name) == 0)
            return &cfg->auth.users[i];
    return NULL;
}

START_TEST(every_route_is_in_the_table)
{
    for (size_t i = 0; i < fm_app_nroutes; i++) {
        int found = 0;
        for (size_t c = 0; c < NCOLS; c++)
            found |= strcmp(fm_app_routes[i].method, cols[c].method) == 0 &&
                     strcmp(fm_app_routes[i].pattern, cols[c].pattern) == 0;
        ck_assert_msg(found, "route %s %s has no column in the RBAC table: add one",
                      fm_app_routes[i].method, fm_app_routes[i].pattern);
    }
}
END_TEST

START_TEST(users_by_routes)
{
    char dir[TH_PATH_MAX], path[TH_PATH_MAX], err[FM_CONFIG_ERR_MAX];
    fm_config *cfg;

    th_mkdtemp(dir, "routes");
    th_path(path, dir, "config.yaml");
    th_write_file(path, yaml);
    cfg = fm_config_load(path, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "%s", err);
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        const fm_user *u = user_named(cfg, rows[r].user);
        ck_assert_msg(u != NULL, "user %s", rows[r].user);
        for (size_t c = 0; c < NCOLS; c++) {
            const fm_route *route = route_for(cols[c].method, cols[c].pattern);
            int want = rows[r].allowed[c] == 'Y';
            ck_assert_msg(route != NULL, "no route %s %s", cols[c].method, cols[c].pattern);
            ck_assert_msg(fm_rbac_allows(u->effective, route->required) == want,
                          "%s %s %s: expected %s", rows[r].user, cols[c].method, cols[c].pattern,
                          want ? "allowed" : "denied");
        }
    }
    fm_config_free(cfg);
    th_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("rbac");
    SRunner *sr;
    int failed;

    if (th_run_begin("test_routes") != 0)
        return EXIT_FAILURE;
    tcase_add_test(tc, every_route_is_in_the_table);
    tcase_add_test(tc, users_by_routes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    th_run_end();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
