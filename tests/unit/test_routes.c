/*
 * test_routes.c - the route table against RBAC: for every route and a set of
 * users (built-in roles, custom roles with inheritance, per-user grants and
 * denies, wildcards, no roles at all), whether the pipeline's permission check
 * lets the user through. Users come from a real YAML file through
 * fm_config_load, so the table checks the whole chain config -> rbac -> route.
 * Then, against a private Redis, which tasks each user may see (their own; an
 * admin and a job worker every one; another user's task is 404 on get, cancel
 * and delete, except to an admin), the bounds of GET /v1/tasks's limit, the
 * worker routes (only the lease holder; a 409 leaks nothing), and that every
 * transition names its task, worker and event and arms an undo that works;
 * and that an upload whose body stops (too slow: 408; short: 400) stores
 * nothing.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "helpers.h"

/* The users, one a line; "#c" stands for a key hash of 64 c's (expanded by users_yaml). */
static const char yaml_lines[] =
    "auth:\n"
    "  roles:\n"
    "    operator: { inherits: [analyst], permissions: { \"jobs:update\": true } }\n"
    "    janitor: { inherits: [operator],\n"
    "               permissions: { \"jobs:delete\": true, \"metrics:read\": false } }\n"
    "    writer: { permissions: { \"jobs:write\": true } }\n"
    "  api_keys:\n"
    "    root: { hash: #0, admin: true }\n"
    "    res: { hash: #1, roles: [researcher] }\n"
    "    ana: { hash: #2, roles: [analyst] }\n"
    "    nobody: { hash: #3 }\n"
    "    res_del: { hash: #4, roles: [researcher], permissions: { \"jobs:delete\": true } }\n"
    "    res_nocreate: { hash: #5, roles: [researcher], permissions: { \"jobs:create\": false } }\n"
    "    jobs_all: { hash: #6, permissions: { \"jobs:*\": true } }\n"
    "    readall: { hash: #7, permissions: { \"*:read\": true } }\n"
    "    writer: { hash: #8, roles: [writer] }\n"
    "    janitor: { hash: #9, roles: [janitor] }\n"
    "    admin_denied: { hash: #a, admin: true, permissions: { \"jobs:create\": false } }\n"
    "    all_but_delete: { hash: #b, permissions: { \"*\": true, \"*:delete\": false } }\n"
    "    worker: { hash: #c, roles: [worker] }\n"
    "    worker2: { hash: #d, roles: [worker] }\n"
    "    runner: { hash: #e, permissions: { \"*:run\": true } }\n";

/* yaml_lines with each "#c" expanded; static storage. */
static const char *users_yaml(void)
{
    static char out[sizeof(yaml_lines) * 2 + 64 * 32];
    size_t n = 0;

    for (const char *p = yaml_lines; *p != '\0'; p++) {
        ck_assert_uint_lt(n + 67, sizeof(out));
        if (*p != '#') {
            out[n++] = *p;
            continue;
        }
        p++;
        out[n++] = '"';
        memset(out + n, *p, 64);
        n += 64;
        out[n++] = '"';
    }
    out[n] = '\0';
    return out;
}

/*
 * Columns: health, whoami, create, list, get, cancel, delete, claim, heartbeat, complete, ws;
 * experiments: list, files, get, put, delete; metrics.
 */
static const struct {
    const char *method, *pattern;
} cols[] = {
    {"GET", "/health"},
    {"GET", "/v1/whoami"},
    {"POST", "/v1/tasks"},
    {"GET", "/v1/tasks"},
    {"GET", "/v1/tasks/{id}"},
    {"POST", "/v1/tasks/{id}/cancel"},
    {"DELETE", "/v1/tasks/{id}"},
    {"POST", "/v1/worker/claim"},
    {"POST", "/v1/tasks/{id}/heartbeat"},
    {"POST", "/v1/tasks/{id}/complete"},
    {"GET", "/ws"},
    {"GET", "/v1/experiments"},
    {"GET", "/v1/experiments/{name}/files"},
    {"GET", "/v1/experiments/{name}/files/{path*}"},
    {"PUT", "/v1/experiments/{name}/files/{path*}"},
    {"DELETE", "/v1/experiments/{name}/files/{path*}"},
    {"GET", "/metrics"},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static const struct {
    const char *user;
    const char *allowed; /* one character per column: Y allowed, . denied */
} rows[] = {
    {"root", "YYYYYYYYYYYYYYYYY"},         /* admin: everything */
    {"res", "YYYYYY....YYYYY.."},          /* researcher: create/read/update own jobs */
    {"ana", "YY.YY.....YYYY..Y"},          /* analyst: read only, cannot claim */
    {"nobody", "YY..............."},       /* least privilege: only whoami (and health) */
    {"res_del", "YYYYYYY...YYYYY.."},      /* a per-user grant on top of the role */
    {"res_nocreate", "YY.YYY....YYYYY.."}, /* a per-user deny wins over the role */
    {"jobs_all", "YYYYYYYYYYY......"},     /* jobs:* includes jobs:run */
    {"readall", "YY.YY.....YYYY..Y"},      /* *:read */
    {"writer", "YYY..Y..........."},       /* jobs:write = create + update, no read */
    {"janitor", "YY.YYYY...YYYY..."}, /* via operator from analyst, + update/delete, - metrics */
    {"admin_denied", "YYYYYYYYYYYYYYYYY"}, /* admin: true ignores denies */
    {"all_but_delete", "YYYYYY.YYYYYYYY.Y"},
    {"worker", "YY.YY..YYYY......"}, /* worker: jobs:run + jobs:read, no create, cancel or delete */
    {"runner", "YY.....YYY......."}, /* *:run is jobs:run alone */
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
    th_write_file(path, users_yaml());
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

/* The reference: whoami's body rendered whole by cJSON, as the handler did before it cached. */
static char *whoami_reference(const fm_config *cfg, const fm_user *u, const fm_rl_result *rl)
{
    const fm_rate *rate = fm_config_user_rate(cfg, u);
    cJSON *o = cJSON_CreateObject(), *roles, *perms, *lim;
    char *text;

    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(o, "user", u->name));
    ck_assert_ptr_nonnull(cJSON_AddBoolToObject(o, "admin", u->admin));
    ck_assert_ptr_nonnull(roles = cJSON_AddArrayToObject(o, "roles"));
    ck_assert_ptr_nonnull(perms = cJSON_AddArrayToObject(o, "permissions"));
    ck_assert_ptr_nonnull(lim = cJSON_AddObjectToObject(o, "rate_limit"));
    ck_assert_ptr_nonnull(
        cJSON_AddNumberToObject(lim, "requests_per_minute", rate->requests_per_minute));
    ck_assert_ptr_nonnull(cJSON_AddNumberToObject(lim, "burst", rate->burst));
    for (size_t i = 0; i < u->nroles; i++)
        ck_assert(cJSON_AddItemToArray(roles, cJSON_CreateString(u->roles[i])));
    for (unsigned b = 0; b < FM_RES_COUNT * FM_ACT_COUNT; b++)
        if (u->effective & ((fm_perms)1u << b))
            ck_assert(
                cJSON_AddItemToArray(perms, cJSON_CreateString(fm_rbac_name((fm_perms)1u << b))));
    if (rl != NULL)
        ck_assert_ptr_nonnull(cJSON_AddNumberToObject(lim, "remaining", rl->remaining));
    text = cJSON_PrintUnformatted(o);
    ck_assert_ptr_nonnull(text);
    cJSON_Delete(o);
    return text;
}

static void expect_whoami(const fm_config *cfg, const fm_user *u, const fm_rl_result *rl)
{
    const fm_route *route = route_for("GET", "/v1/whoami");
    fm_env env = {.cfg = cfg};
    fm_call call;
    fm_response resp;
    char *want = whoami_reference(cfg, u, rl);

    ck_assert_ptr_nonnull(route);
    memset(&call, 0, sizeof(call));
    memset(&resp, 0, sizeof(resp));
    call.env = &env;
    call.user = u;
    call.rate = rl;
    ck_assert_int_eq(route->handler(&call, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_ptr_nonnull(resp.body);
    ck_assert_uint_eq(resp.body_len, strlen(want));
    ck_assert_str_eq(resp.body, want);
    fm_response_reset(&resp);
    free(want);
}

static const char whoami_yaml[] =
    "rate_limit: { requests_per_minute: 120, burst: 30 }\n"
    "auth:\n"
    "  api_keys:\n"
    "    ann:\n"
    "      hash: \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"\n"
    "      roles: [researcher, analyst]\n"
    "      rate_limit: { requests_per_minute: 600, burst: 45 }\n"
    "    root: { admin: true, hash: "
    "\"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\" }\n"
    "    bare: { hash: \"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\" }\n";

/*
 * whoami renders most of its body once per user and reuses it: the bytes must
 * stay those of the whole object rendered by cJSON, on the first call and on
 * later ones, and must follow a user whose settings differ at the same address.
 */
START_TEST(whoami_body)
{
    static const char *const names[] = {"ann", "root", "bare"};
    char dir[TH_PATH_MAX], path[TH_PATH_MAX], err[FM_CONFIG_ERR_MAX];
    fm_rl_result rl;
    fm_config *cfg;
    fm_user *u;

    th_mkdtemp(dir, "whoami");
    th_path(path, dir, "config.yaml");
    th_write_file(path, whoami_yaml);
    cfg = fm_config_load(path, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "%s", err);
    memset(&rl, 0, sizeof(rl));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            const fm_user *cu = user_named(cfg, names[i]);
            ck_assert_ptr_nonnull(cu);
            expect_whoami(cfg, cu, NULL); /* rate limiter bypassed: no "remaining" */
            rl.remaining = 0;
            expect_whoami(cfg, cu, &rl);
            rl.remaining = 44;
            expect_whoami(cfg, cu, &rl);
            rl.remaining = UINT32_MAX;
            expect_whoami(cfg, cu, &rl);
        }
    }

    /* The same user structures with other contents, as a new config at a freed one's address. */
    u = (fm_user *)user_named(cfg, "ann");
    ck_assert_ptr_nonnull(u);
    (void)snprintf(u->roles[1], FM_NAME_MAX, "%s", "operator");
    expect_whoami(cfg, u, &rl);
    u->nroles = 1;
    expect_whoami(cfg, u, &rl);
    u->effective &= ~FM_PERM(FM_RES_JOBS, FM_ACT_CREATE);
    expect_whoami(cfg, u, &rl);
    (void)snprintf(u->name, FM_NAME_MAX, "%s", "anne");
    expect_whoami(cfg, u, &rl);
    u = (fm_user *)user_named(cfg, "bare");
    ck_assert_ptr_nonnull(u);
    cfg->rate_limit.rate.burst = 31;
    expect_whoami(cfg, u, &rl);
    u->admin = true;
    expect_whoami(cfg, u, &rl);
    fm_config_free(cfg);
    th_rmtree(dir);
}
END_TEST

/* ---- which tasks a user may see, against a private Redis ---------------------------- */

static th_redis srv;

typedef struct route_run {
    const fm_config *cfg;
    fm_env env;
} route_run;

static route_run rr;
static char rr_dir[TH_PATH_MAX];

/* The users of yaml_lines above, a private Redis, and a connection to it. */
static void visibility_setup(void)
{
    char path[TH_PATH_MAX], err[FM_CONFIG_ERR_MAX];
    char text[sizeof(yaml_lines) * 2 + 64 * 32 + TH_PATH_MAX + 128];

    th_mkdtemp(rr_dir, "visible");
    th_path(path, rr_dir, "config.yaml");
    (void)snprintf(text, sizeof(text), "%sdata:\n  experiments_dir: \"%s/exp\"\n", users_yaml(),
                   rr_dir);
    th_write_file(path, text);
    memset(&rr, 0, sizeof(rr));
    rr.cfg = fm_config_load(path, err, sizeof(err));
    ck_assert_msg(rr.cfg != NULL, "%s", err);
    rr.env.cfg = rr.cfg;
    th_redis_start(&srv);
    rr.env.redis = fm_redis_new(srv.addr, NULL, srv.password, 0, 2000);
    ck_assert_ptr_nonnull(rr.env.redis);
}

static void visibility_teardown(void)
{
    fm_redis_free(rr.env.redis);
    th_redis_stop(&srv);
    fm_config_free((fm_config *)rr.cfg);
    th_rmtree(rr_dir);
}

/* What the last run_route's handler left for the audit record and the event. */
static struct {
    char task_id[FM_PATH_PARAM_MAX];
    char worker[FM_PATH_PARAM_MAX];
    const char *event;
    bool undo;
} last;

/* Set: the next run_route runs the undo its handler armed, as after a failed audit write. */
static bool undo_next;

/*
 * Runs the handler of method pattern for user directly (the pipeline's
 * checks are tested in test_pipeline.c), with id as {id}, query and body.
 * Returns the status; the JSON body, if any, in *json (caller frees).
 */
static int run_route(const char *user, const char *method, const char *pattern, const char *id,
                     const char *query, const char *body, cJSON **json)
{
    const fm_route *route = route_for(method, pattern);
    fm_request req = {.method = method,
                      .path = pattern,
                      .query = query,
                      .body = body,
                      .body_len = body != NULL ? strlen(body) : 0};
    fm_response resp;
    fm_call call;
    int status;

    ck_assert_ptr_nonnull(route);
    memset(&call, 0, sizeof(call));
    memset(&resp, 0, sizeof(resp));
    call.env = &rr.env;
    call.req = &req;
    call.user = user_named(rr.cfg, user);
    ck_assert_ptr_nonnull(call.user);
    if (id != NULL)
        (void)snprintf(call.params[0], sizeof(call.params[0]), "%s", id);
    ck_assert_int_eq(route->handler(&call, &resp), 0);
    status = resp.status;
    *json = resp.body != NULL ? cJSON_ParseWithLength(resp.body, resp.body_len) : NULL;
    memcpy(last.task_id, call.audit_task_id, sizeof(last.task_id));
    memcpy(last.worker, call.audit_worker, sizeof(last.worker));
    last.event = call.event;
    last.undo = call.undo != NULL;
    if (call.event != NULL)
        ck_assert_ptr_nonnull(call.event_task);
    if (undo_next && call.undo != NULL)
        call.undo(&call);
    undo_next = false;
    cJSON_Delete(call.event_task);
    free(call.undo_data);
    fm_response_reset(&resp);
    return status;
}

/* Creates a task as user and copies its id into id. */
static void create_task(const char *user, char id[FM_PATH_PARAM_MAX])
{
    cJSON *t;

    ck_assert_int_eq(run_route(user, "POST", "/v1/tasks", NULL, NULL, "{\"job_name\":\"j\"}", &t),
                     201);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "user")), user);
    (void)snprintf(id, FM_PATH_PARAM_MAX, "%s",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id")));
    cJSON_Delete(t);
}

/* GET /v1/tasks?query as user: 200, and every listed task's owner is want_owner (NULL: any). */
static int list_count(const char *user, const char *query, const char *want_owner)
{
    const cJSON *tasks, *t;
    cJSON *o;
    int n = 0;

    ck_assert_int_eq(run_route(user, "GET", "/v1/tasks", NULL, query, NULL, &o), 200);
    tasks = cJSON_GetObjectItemCaseSensitive(o, "tasks");
    ck_assert(cJSON_IsArray(tasks));
    cJSON_ArrayForEach(t, tasks)
    {
        const char *owner = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "user"));
        ck_assert_ptr_nonnull(owner);
        if (want_owner != NULL)
            ck_assert_str_eq(owner, want_owner);
        n++;
    }
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(o, "total")->valueint, n);
    cJSON_Delete(o);
    return n;
}

static int status_of(const char *user, const char *method, const char *pattern, const char *id,
                     const char *query)
{
    cJSON *o;
    int status = run_route(user, method, pattern, id, query, NULL, &o);

    cJSON_Delete(o);
    return status;
}

/* POST pattern with body as user: the status (the body is dropped). */
static int posted(const char *user, const char *pattern, const char *id, const char *body)
{
    cJSON *o;
    int status = run_route(user, "POST", pattern, id, NULL, body, &o);

    cJSON_Delete(o);
    return status;
}

/* worker heartbeats task id: 200, and whether the answer asks it to stop. */
static bool heartbeat_says_cancel(const char *id)
{
    cJSON *o;
    bool cancel;

    ck_assert_int_eq(run_route("worker", "POST", "/v1/tasks/{id}/heartbeat", id, NULL, NULL, &o),
                     200);
    cancel = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "cancel_requested"));
    ck_assert(cancel || cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "cancel_requested")));
    cJSON_Delete(o);
    return cancel;
}

START_TEST(tasks_visible_to_their_owner_and_admins_only)
{
    char a1[FM_PATH_PARAM_MAX], a2[FM_PATH_PARAM_MAX], b1[FM_PATH_PARAM_MAX];

    /* res_del may create, read, cancel and delete; res all but delete; root is an admin. */
    create_task("res_del", a1);
    create_task("res_del", a2);
    create_task("res", b1);
    ck_assert_int_eq(list_count("res_del", NULL, "res_del"), 2);
    ck_assert_int_eq(list_count("res", NULL, "res"), 1);
    ck_assert_int_eq(list_count("root", NULL, NULL), 3);
    ck_assert_int_eq(list_count("ana", NULL, NULL), 0);

    /* Another user's task does not exist for the caller, whatever the verb. */
    ck_assert_int_eq(status_of("res_del", "GET", "/v1/tasks/{id}", b1, NULL), 404);
    ck_assert_int_eq(status_of("res_del", "POST", "/v1/tasks/{id}/cancel", b1, NULL), 404);
    ck_assert_int_eq(status_of("res_del", "DELETE", "/v1/tasks/{id}", b1, NULL), 404);
    ck_assert_int_eq(status_of("res", "GET", "/v1/tasks/{id}", a1, NULL), 404);
    ck_assert_int_eq(list_count("res", "status=queued", "res"), 1);
    /* ... and is untouched by those attempts. */
    ck_assert_int_eq(list_count("root", "status=queued", NULL), 3);

    /* A job worker (jobs:run) reads every user's tasks; only an admin changes another's. */
    ck_assert_int_eq(list_count("worker", NULL, NULL), 3);
    ck_assert_int_eq(list_count("worker", "status=queued", NULL), 3);
    ck_assert_int_eq(status_of("worker", "GET", "/v1/tasks/{id}", a1, NULL), 200);
    ck_assert_int_eq(status_of("worker", "GET", "/v1/tasks/{id}", b1, NULL), 200);
    ck_assert_int_eq(list_count("jobs_all", NULL, NULL), 3);
    ck_assert_int_eq(status_of("jobs_all", "GET", "/v1/tasks/{id}", b1, NULL), 200);
    ck_assert_int_eq(status_of("jobs_all", "POST", "/v1/tasks/{id}/cancel", b1, NULL), 404);
    ck_assert_int_eq(status_of("jobs_all", "DELETE", "/v1/tasks/{id}", a1, NULL), 404);
    ck_assert_int_eq(list_count("root", "status=queued", NULL), 3);

    /* The owner and an admin may. */
    ck_assert_int_eq(status_of("res_del", "GET", "/v1/tasks/{id}", a1, NULL), 200);
    ck_assert_int_eq(status_of("root", "GET", "/v1/tasks/{id}", b1, NULL), 200);
    ck_assert_int_eq(status_of("res_del", "POST", "/v1/tasks/{id}/cancel", a1, NULL), 200);
    ck_assert_int_eq(status_of("root", "POST", "/v1/tasks/{id}/cancel", b1, NULL), 200);
    ck_assert_int_eq(status_of("root", "DELETE", "/v1/tasks/{id}", a1, NULL), 204);
    ck_assert_int_eq(status_of("res_del", "DELETE", "/v1/tasks/{id}", a2, NULL), 204);
    ck_assert_int_eq(list_count("res_del", NULL, NULL), 0);
    ck_assert_int_eq(list_count("root", NULL, NULL), 1);
}
END_TEST

static const char *str_of(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* user claims (body may be NULL): 200 and the task's id is want_id. */
static void claim(const char *user, const char *body, const char *want_id, const char *want_worker)
{
    cJSON *t;

    ck_assert_int_eq(run_route(user, "POST", "/v1/worker/claim", NULL, NULL, body, &t), 200);
    ck_assert_str_eq(str_of(t, "id"), want_id);
    ck_assert_str_eq(str_of(t, "status"), "running");
    ck_assert_str_eq(str_of(t, "worker_id"), want_worker);
    ck_assert_ptr_nonnull(str_of(t, "lease_expires_at"));
    ck_assert_str_eq(last.task_id, want_id);
    ck_assert_str_eq(last.worker, want_worker);
    ck_assert_str_eq(last.event, "task.started");
    cJSON_Delete(t);
}

/* A 409 names no task: nothing of a task the caller does not hold leaks. */
static void refused_as_not_held(const char *user, const char *pattern, const char *id,
                                const char *query, const char *body)
{
    cJSON *o;

    ck_assert_int_eq(run_route(user, "POST", pattern, id, query, body, &o), 409);
    ck_assert_str_eq(str_of(o, "code"), "CONFLICT");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(o, "task"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(o, "id"));
    ck_assert_ptr_null(last.event);
    ck_assert(!last.undo);
    cJSON_Delete(o);
}

START_TEST(worker_claims_heartbeats_completes)
{
    char id[FM_PATH_PARAM_MAX], id2[FM_PATH_PARAM_MAX];
    cJSON *o;

    create_task("res", id);
    ck_assert_str_eq(last.event, "task.created");
    claim("worker", NULL, id, "worker");
    ck_assert_int_eq(run_route("worker", "POST", "/v1/worker/claim", NULL, NULL, NULL, &o), 204);
    ck_assert_ptr_null(o);
    ck_assert_str_eq(last.worker, "worker");

    /* Only the holder. */
    refused_as_not_held("worker2", "/v1/tasks/{id}/heartbeat", id, NULL, NULL);
    refused_as_not_held("worker2", "/v1/tasks/{id}/complete", id, NULL,
                        "{\"status\":\"completed\"}");
    ck_assert_str_eq(last.task_id, id);
    ck_assert_str_eq(last.worker, "worker2");

    ck_assert_int_eq(run_route("worker", "POST", "/v1/tasks/{id}/heartbeat", id, NULL,
                               "{\"progress\":50,\"metrics\":{\"loss\":0.25}}", &o),
                     200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "cancel_requested")));
    ck_assert_ptr_nonnull(str_of(o, "lease_expires_at"));
    ck_assert_str_eq(str_of(cJSON_GetObjectItemCaseSensitive(o, "task"), "id"), id);
    ck_assert_str_eq(last.event, "task.progress");
    cJSON_Delete(o);

    /* Cancel of a running task: the next heartbeat says so; the worker ends it cancelled. */
    ck_assert_int_eq(run_route("res", "POST", "/v1/tasks/{id}/cancel", id, NULL, NULL, &o), 200);
    ck_assert_str_eq(str_of(o, "status"), "running");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "cancel_requested")));
    ck_assert_ptr_null(last.event);
    cJSON_Delete(o);
    ck_assert(heartbeat_says_cancel(id));
    ck_assert_int_eq(posted("worker", "/v1/tasks/{id}/complete", id, "{\"status\":\"bogus\"}"),
                     422);
    ck_assert_int_eq(run_route("worker", "POST", "/v1/tasks/{id}/complete", id, NULL,
                               "{\"status\":\"cancelled\"}", &o),
                     200);
    ck_assert_str_eq(str_of(o, "status"), "cancelled");
    ck_assert_str_eq(last.event, "task.cancelled");
    cJSON_Delete(o);

    /* A named worker names itself on its heartbeats and completion too. */
    create_task("res", id2);
    claim("worker", "{\"worker\":\"gpu-1\"}", id2, "worker/gpu-1");
    refused_as_not_held("worker", "/v1/tasks/{id}/heartbeat", id2, NULL, NULL);
    ck_assert_int_eq(
        run_route("worker", "POST", "/v1/tasks/{id}/heartbeat", id2, "worker=gpu 1", NULL, &o),
        400);
    cJSON_Delete(o);
    ck_assert_int_eq(
        run_route("worker", "POST", "/v1/tasks/{id}/heartbeat", id2, "worker=gpu-1", NULL, &o),
        200);
    cJSON_Delete(o);
    ck_assert_int_eq(run_route("worker", "POST", "/v1/tasks/{id}/complete", id2, "worker=gpu-1",
                               "{\"status\":\"failed\",\"error\":\"exit status 3\"}", &o),
                     200);
    ck_assert_str_eq(str_of(o, "error"), "exit status 3");
    ck_assert_str_eq(last.event, "task.failed");
    ck_assert_str_eq(last.worker, "worker/gpu-1");
    cJSON_Delete(o);
    ck_assert_int_eq(status_of("worker", "POST", "/v1/tasks/{id}/heartbeat",
                               "00000000-0000-4000-8000-000000000000", NULL),
                     404);
}
END_TEST

/* The task's status as an admin sees it now. */
static const char *status_now(const char *id)
{
    static char st[32];
    cJSON *t;

    ck_assert_int_eq(run_route("root", "GET", "/v1/tasks/{id}", id, NULL, NULL, &t), 200);
    (void)snprintf(st, sizeof(st), "%s", str_of(t, "status"));
    cJSON_Delete(t);
    return st;
}

/* Every transition arms an undo that puts the task back as it was (a failed audit write). */
START_TEST(every_transition_is_undone)
{
    char id[FM_PATH_PARAM_MAX];
    cJSON *o;

    create_task("res", id);
    undo_next = true;
    claim("worker", NULL, id, "worker");
    ck_assert_str_eq(status_now(id), "queued");
    claim("worker", NULL, id, "worker");
    undo_next = true;
    ck_assert_int_eq(posted("worker", "/v1/tasks/{id}/complete", id, "{\"status\":\"completed\"}"),
                     200);
    ck_assert_str_eq(status_now(id), "running");
    undo_next = true;
    ck_assert_int_eq(run_route("res", "POST", "/v1/tasks/{id}/cancel", id, NULL, NULL, &o), 200);
    cJSON_Delete(o);
    ck_assert(!heartbeat_says_cancel(id));
    ck_assert_int_eq(posted("worker", "/v1/tasks/{id}/complete", id, "{\"status\":\"completed\"}"),
                     200);
    undo_next = true;
    ck_assert_int_eq(status_of("root", "DELETE", "/v1/tasks/{id}", id, NULL), 204);
    ck_assert_str_eq(last.event, "task.deleted");
    ck_assert_str_eq(status_now(id), "completed");
    undo_next = true;
    create_task("res", id);
    ck_assert_int_eq(status_of("root", "GET", "/v1/tasks/{id}", id, NULL), 404);
}
END_TEST

/* limit is 1..1000: 0 would be read by Redis as "no limit" and fetch every record. */
START_TEST(list_limit_bounds)
{
    static const char *const refused[] = {"limit=0",  "limit=-1", "limit=1001", "limit=",
                                          "limit=+5", "limit= 5", "limit=5x",   "offset=-1"};
    char id[FM_PATH_PARAM_MAX];
    cJSON *o;

    create_task("res", id);
    create_task("res", id);

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ck_assert_msg(run_route("root", "GET", "/v1/tasks", NULL, refused[i], NULL, &o) == 400,
                      "%s was not refused", refused[i]);
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "code")),
                         "BAD_REQUEST");
        cJSON_Delete(o);
    }
    ck_assert_int_eq(run_route("root", "GET", "/v1/tasks", NULL, "limit=1", NULL, &o), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "tasks")), 1);
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(o, "total")->valueint, 2);
    cJSON_Delete(o);
    ck_assert_int_eq(status_of("root", "GET", "/v1/tasks", NULL, "limit=1000&offset=0"), 200);
}
END_TEST

/* An upload body that gives `stop` bytes of text, then what the worker's reader says (`then`). */
typedef struct fake_body {
    const char *text;
    size_t off, stop;
    long then; /* 0 (the stream ended), -1 (it broke) or FM_BODY_SLOW */
} fake_body;

static long fake_read(void *ctx, char *buf, size_t n)
{
    fake_body *b = ctx;
    size_t k = b->stop - b->off < n ? b->stop - b->off : n;

    if (k == 0)
        return b->then;
    memcpy(buf, b->text + b->off, k);
    b->off += k;
    return (long)k;
}

/* PUT exp/path as root with body b (10 bytes announced): the status and the error code. */
static int run_upload(const char *exp, const char *path, fake_body *b, char code[32])
{
    const fm_route *route = route_for("PUT", "/v1/experiments/{name}/files/{path*}");
    const fm_body_stream stream = {fake_read, b};
    fm_request req = {.method = "PUT", .path = "/", .stream = &stream, .content_length = 10};
    fm_response resp;
    fm_call call;
    cJSON *json;
    int status;

    memset(&call, 0, sizeof(call));
    memset(&resp, 0, sizeof(resp));
    call.env = &rr.env;
    call.req = &req;
    call.user = user_named(rr.cfg, "root");
    call.tail = path;
    (void)snprintf(call.params[0], sizeof(call.params[0]), "%s", exp);
    ck_assert_int_eq(route->handler(&call, &resp), 0);
    status = resp.status;
    json = cJSON_ParseWithLength(resp.body, resp.body_len);
    (void)snprintf(code, 32, "%s",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "code")) != NULL
                       ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "code"))
                       : "");
    cJSON_Delete(json);
    if (call.settle != NULL)
        call.settle(&call);
    free(call.undo_data);
    fm_response_reset(&resp);
    return status;
}

/* A body sent too slowly is 408, one that ends early 400; neither leaves a file or a directory. */
START_TEST(uploads_whose_body_stops_store_nothing)
{
    fake_body slow = {"0123456789", 0, 4, FM_BODY_SLOW}, broken = {"0123456789", 0, 4, -1},
              whole = {"0123456789", 0, 10, 0};
    char p[TH_PATH_MAX], code[32];

    th_path(p, rr_dir, "exp/root/e");
    ck_assert_int_eq(run_upload("e", "d/f", &slow, code), 408);
    ck_assert_str_eq(code, "REQUEST_TIMEOUT");
    ck_assert_int_ne(access(p, F_OK), 0);
    ck_assert_int_eq(run_upload("e", "d/f", &broken, code), 400);
    ck_assert_str_eq(code, "BAD_REQUEST");
    ck_assert_int_ne(access(p, F_OK), 0);
    ck_assert_int_eq(run_upload("e", "d/f", &whole, code), 201);
    th_path(p, rr_dir, "exp/root/e/d/f");
    ck_assert_int_eq(access(p, F_OK), 0);
}
END_TEST

static Suite *routes_suite(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("rbac");

    tcase_add_test(tc, every_route_is_in_the_table);
    tcase_add_test(tc, users_by_routes);
    tcase_add_test(tc, whoami_body);
    suite_add_tcase(s, tc);
    tc = tcase_create("visibility");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, visibility_setup, visibility_teardown);
    tcase_add_test(tc, tasks_visible_to_their_owner_and_admins_only);
    tcase_add_test(tc, list_limit_bounds);
    tcase_add_test(tc, worker_claims_heartbeats_completes);
    tcase_add_test(tc, every_transition_is_undone);
    tcase_add_test(tc, uploads_whose_body_stops_store_nothing);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(routes_suite)
