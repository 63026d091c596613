/*
 * test_pipeline.c - unit tests for lib/app/pipeline.c, driving fm_pipeline_run
 * directly with a hand-made route table whose handlers record that they ran.
 *
 * Each test gets its own private redis-server (see helpers.h), a config
 * loaded from a temporary YAML file, an audit trail in a temporary file and
 * the operational log in another. Every request must leave exactly one audit
 * line, which is parsed back and checked field by field.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "audit.h"
#include "config.h"
#include "events.h"
#include "helpers.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "rbac.h"
#include "redisconn.h"
#include "response.h"

#define K_ALICE "alice-pipeline-key-0001"
#define K_BOB "bob-pipeline-key-0002"
#define K_CAROL "carol-pipeline-key-0003"
#define K_DAVE "dave-pipeline-key-0004"
#define K_ERIN "erin-pipeline-key-0005"
#define K_ROOT "root-pipeline-key-0006"
#define TRACE "0123456789abcdef0123456789abcdef"
#define PW_ENV "FM_TEST_PIPELINE_REDIS_PASSWORD"
#define JOBS_READ FM_PERM(FM_RES_JOBS, FM_ACT_READ)

static th_redis srv;
static char tmpdir[TH_PATH_MAX], audit_path[TH_PATH_MAX], api_path[TH_PATH_MAX];
static fm_config *cfg;
static fm_audit_shared *shared;
static fm_audit *audit;
static fm_redis *redis;
static fm_env env;
static fm_response resp;

/* What the handlers saw. */
static struct {
    int count;
    char user[FM_NAME_MAX];
    char param0[FM_PATH_PARAM_MAX];
    char trace_id[FM_TRACE_ID_MAX + 1];
    int had_rate;
} ran;

static void record(const fm_call *call)
{
    ran.count++;
    (void)snprintf(ran.user, sizeof(ran.user), "%s", call->user->name);
    (void)snprintf(ran.param0, sizeof(ran.param0), "%s", call->params[0]);
    (void)snprintf(ran.trace_id, sizeof(ran.trace_id), "%s", call->trace_id);
    ran.had_rate = call->rate != NULL;
}

static int h_ok(fm_call *call, fm_response *out)
{
    cJSON *o = cJSON_CreateObject();
    int rc;

    record(call);
    if (o == NULL || cJSON_AddStringToObject(o, "handled", call->user->name) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    rc = fm_response_json(out, 200, o);
    cJSON_Delete(o);
    return rc;
}

static int h_fail(fm_call *call, fm_response *out)
{
    (void)out;
    record(call);
    return -1;
}

static int h_no_status(fm_call *call, fm_response *out)
{
    (void)out;
    record(call);
    return 0;
}

/*
 * A handler that "changed state": the pipeline must call its undo if the
 * audit fails, and its settle once the record is written (never both).
 */
static int undone, settled;

static void undo_change(fm_call *call)
{
    ck_assert_str_eq(call->undo_id, "changed");
    ck_assert_str_eq(call->undo_data, "before");
    undone++;
}

static void settle_change(fm_call *call)
{
    ck_assert_str_eq(call->undo_data, "before");
    settled++;
}

static int h_change(fm_call *call, fm_response *out)
{
    (void)snprintf(call->undo_id, sizeof(call->undo_id), "changed");
    call->undo_data = strdup("before");
    call->undo = undo_change;
    call->settle = settle_change;
    return h_ok(call, out);
}

/* A handler that changed a task: names it and its worker for the audit record, arms an event. */
static int h_event(fm_call *call, fm_response *out)
{
    (void)snprintf(call->audit_task_id, sizeof(call->audit_task_id), "task-1");
    (void)snprintf(call->audit_worker, sizeof(call->audit_worker), "alice/gpu0");
    call->event = "task.started";
    call->event_task = cJSON_CreateObject();
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(call->event_task, "id", "task-1"));
    return h_change(call, out);
}

static int h_reason(fm_call *call, fm_response *out)
{
    (void)snprintf(call->reason, sizeof(call->reason), "custom_reason");
    return h_ok(call, out);
}

/* A download of 4096 bytes from bob's tree, audited as the experiments routes do. */
static int h_file(fm_call *call, fm_response *out)
{
    int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

    record(call);
    if (fd < 0)
        return -1;
    call->audit_permission = "experiments:read";
    (void)snprintf(call->audit_owner, sizeof(call->audit_owner), "bob");
    call->audit_has_bytes = true;
    call->audit_bytes = 4096;
    fm_response_file(out, 200, fd, 4096);
    return 0;
}

static const fm_route routes[] = {
    {"GET", "/v1/whoami", FM_PERM_NONE, h_ok, 0},
    {"GET", "/v1/tasks", JOBS_READ, h_ok, FM_ROUTE_QUERY},
    {"POST", "/v1/tasks", FM_PERM(FM_RES_JOBS, FM_ACT_CREATE), h_ok, FM_ROUTE_JSON_BODY},
    {"GET", "/v1/tasks/{id}", JOBS_READ, h_ok, 0},
    {"DELETE", "/v1/tasks/{id}", FM_PERM(FM_RES_JOBS, FM_ACT_DELETE), h_ok, 0},
    {"POST", "/v1/tasks/{id}/cancel", FM_PERM(FM_RES_JOBS, FM_ACT_UPDATE), h_ok, 0},
    {"GET", "/metrics", FM_PERM(FM_RES_METRICS, FM_ACT_READ), h_ok, 0},
    {"GET", "/v1/broken", FM_PERM_NONE, h_fail, 0},
    {"GET", "/v1/silent", FM_PERM_NONE, h_no_status, 0},
    {"GET", "/v1/reason", FM_PERM_NONE, h_reason, 0},
    {"GET", "/v1/change", FM_PERM_NONE, h_change, 0},
    {"POST", "/v1/event", FM_PERM_NONE, h_event, 0},
    {"GET", "/v1/file", FM_PERM_NONE, h_file, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- fixture ---------------------------------------------------------------------- */

/*
 * A config with on_redis_error and the brute-force guard's settings
 * (auth_failures, a YAML flow mapping); the file is named after both.
 */
static fm_config *load_config_guard(const char *on_redis_error, const char *auth_failures)
{
    char path[TH_PATH_MAX], name[64], yaml[4096], err[FM_CONFIG_ERR_MAX];
    char ha[65], hb[65], hc[65], hd[65], he[65], hr[65];

    th_sha256_hex(K_ALICE, ha);
    th_sha256_hex(K_BOB, hb);
    th_sha256_hex(K_CAROL, hc);
    th_sha256_hex(K_DAVE, hd);
    th_sha256_hex(K_ERIN, he);
    th_sha256_hex(K_ROOT, hr);
    ck_assert_int_lt(snprintf(name, sizeof(name), "%s-%08x", on_redis_error, randombytes_random()),
                     (int)sizeof(name));
    th_path(path, tmpdir, name);
    ck_assert_int_lt(snprintf(yaml, sizeof(yaml),
                              "auth:\n"
                              "  ip_whitelist: [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n"
                              "  api_keys:\n"
                              "    alice: { hash: \"%s\", roles: [researcher] }\n"
                              "    bob:\n"
                              "      hash: \"%s\"\n"
                              "      roles: [analyst]\n"
                              "      ip_whitelist: [\"10.1.0.0/16\"]\n"
                              "    carol: { hash: \"%s\" }\n"
                              "    dave:\n"
                              "      keys: [{ hash: \"%s\", expires: \"2001-01-01\" }]\n"
                              "      roles: [researcher]\n"
                              "    erin:\n"
                              "      hash: \"%s\"\n"
                              "      roles: [researcher]\n"
                              "      rate_limit: { requests_per_minute: 60, burst: 2 }\n"
                              "    root: { hash: \"%s\", admin: true }\n"
                              "rate_limit:\n"
                              "  requests_per_minute: 600\n"
                              "  burst: 50\n"
                              "  on_redis_error: %s\n"
                              "  auth_failures: %s\n"
                              "redis:\n"
                              "  addr: \"%s\"\n"
                              "  password_env: " PW_ENV "\n"
                              "  key_prefix: \"pt:\"\n"
                              "  timeout_ms: 300\n"
                              "logging:\n"
                              "  file: \"%s\"\n"
                              "  api_file: \"%s\"\n",
                              ha, hb, hc, hd, he, hr, on_redis_error, auth_failures, srv.addr,
                              audit_path, api_path),
                     (int)sizeof(yaml));
    th_write_file(path, yaml);
    fm_config *c = fm_config_load(path, err, sizeof(err));
    ck_assert_msg(c != NULL, "config: %s", err);
    return c;
}

/* The guard is set loose here so that tests of other steps may fail to authenticate freely. */
static fm_config *load_config(const char *on_redis_error)
{
    return load_config_guard(on_redis_error,
                             "{ max: 1000, window_seconds: 60, block_seconds: 60 }");
}

static void setup(void)
{
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    fm_metrics_attach(fm_metrics_create(NROUTES)); /* as the master maps it; freed at exit */
    memset(&srv, 0, sizeof(srv));
    memset(&ran, 0, sizeof(ran));
    memset(&resp, 0, sizeof(resp));
    th_redis_start(&srv);
    th_mkdtemp(tmpdir, "test_pipeline");
    th_path(audit_path, tmpdir, "audit.log");
    th_path(api_path, tmpdir, "api.log");
    ck_assert_int_eq(setenv(PW_ENV, srv.password, 1), 0);
    cfg = load_config("deny");
    ck_assert_int_eq(fm_log_open(api_path, FM_LOG_DEBUG, 0), 0);
    shared = fm_audit_shared_create(audit_path);
    ck_assert_ptr_nonnull(shared);
    audit = fm_audit_open(audit_path, shared);
    ck_assert_ptr_nonnull(audit);
    redis = fm_redis_new(cfg->redis.addr, cfg->redis.username, cfg->redis.password, cfg->redis.db,
                         cfg->redis.timeout_ms);
    ck_assert_ptr_nonnull(redis);
    env = (fm_env){.cfg = cfg, .redis = redis, .audit = audit};
}

static void teardown(void)
{
    fm_response_reset(&resp);
    fm_redis_free(redis);
    fm_audit_close(audit);
    fm_log_close();
    fm_config_free(cfg);
    redis = NULL;
    audit = NULL;
    cfg = NULL;
    th_rmtree(tmpdir);
    th_redis_stop(&srv);
}

/* ---- helpers ---------------------------------------------------------------------- */

static fm_request request(const char *method, const char *path, const char *key)
{
    return (fm_request){
        .method = method,
        .path = path,
        .remote_addr = "127.0.0.1",
        .request_id = TRACE,
        .x_api_key = key,
    };
}

/* Runs the pipeline in env and checks that exactly one audit line was added. */
static void run_in(const fm_env *e, const fm_request *req)
{
    size_t before = th_count_lines(audit_path);

    fm_response_reset(&resp);
    fm_pipeline_run(e, routes, NROUTES, req, &resp);
    ck_assert_uint_eq(th_count_lines(audit_path), before + 1);
}

static void run(const fm_request *req)
{
    run_in(&env, req);
}

/* The value of header name, or NULL. */
static const char *header(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < resp.nheaders; i++)
        if (strncmp(resp.headers[i], name, n) == 0 && resp.headers[i][n] == ':' &&
            resp.headers[i][n + 1] == ' ')
            return resp.headers[i] + n + 2;
    return NULL;
}

static void expect_header(const char *name, const char *value)
{
    const char *v = header(name);

    ck_assert_msg(v != NULL, "no %s header", name);
    ck_assert_str_eq(v, value);
}

/* Checks status and the JSON error body {error, code, trace_id}; the trace id must be trace. */
static void expect_error(int status, const char *code, const char *trace)
{
    cJSON *j;

    ck_assert_int_eq(resp.status, status);
    ck_assert_ptr_nonnull(resp.body);
    j = cJSON_ParseWithLength(resp.body, resp.body_len);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "code")), code);
    ck_assert_ptr_nonnull(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error")));
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "trace_id")), trace);
    cJSON_Delete(j);
}

static void expect_handled(const char *user)
{
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 1);
    ck_assert_str_eq(ran.user, user);
}

/* Compares a string-or-null field of the audit line. */
static void expect_field(const cJSON *line, const char *name, const char *want)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(line, name);

    ck_assert_msg(f != NULL, "audit line has no %s", name);
    if (want == NULL)
        ck_assert_msg(cJSON_IsNull(f), "audit %s is not null", name);
    else
        ck_assert_str_eq(cJSON_GetStringValue(f), want);
}

/* The last audit line, parsed; caller deletes. */
static cJSON *last_audit(void)
{
    char *text = th_last_line(audit_path);
    cJSON *j = cJSON_Parse(text);

    ck_assert_msg(j != NULL, "audit line is not JSON: %s", text);
    free(text);
    return j;
}

/*
 * Checks the last audit line: status, result, reason, user (NULL = null),
 * trace id, action and source; key_id must be 12 hex when has_key_id.
 */
static void expect_audit(int status, const char *reason, const char *user, int has_key_id,
                         const fm_request *req, const char *trace)
{
    cJSON *j = last_audit();
    char action[160];
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(j, "key_id");

    ck_assert_int_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "status")), status);
    expect_field(j, "result", status < 400 ? "success" : "failure");
    expect_field(j, "reason", reason);
    expect_field(j, "user", user);
    expect_field(j, "trace_id", trace);
    (void)snprintf(action, sizeof(action), "%s %s", req->method, req->path);
    expect_field(j, "action", action);
    expect_field(j, "resource", req->path);
    expect_field(j, "source_ip", req->remote_addr);
    if (has_key_id)
        ck_assert_msg(th_is_lower_hex(cJSON_GetStringValue(kid), 12), "key_id");
    else
        ck_assert(cJSON_IsNull(kid));
    cJSON_Delete(j);
}

/* Runs a command on the pipeline's connection; it must not fail. */
static void redis_ok(int argc, const char **argv)
{
    redisReply *reply = fm_redis_argv(redis, argc, argv, NULL);

    ck_assert_ptr_nonnull(reply);
    ck_assert_int_ne(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
}

/* Occurrences of needle in api.log. */
static int log_count(const char *needle)
{
    char *text = th_read_file(api_path);
    int n = 0;

    ck_assert_ptr_nonnull(text);
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

static long long bucket_keys(void)
{
    const char *keys[] = {"KEYS", "pt:rl:*"};
    redisReply *reply = fm_redis_argv(redis, 2, keys, NULL);
    long long n;

    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    n = (long long)reply->elements;
    freeReplyObject(reply);
    return n;
}

/* The whole answer (status, headers, body) as text, to compare two answers byte for byte. */
static void answer_text(char *out, size_t cap)
{
    int n = snprintf(out, cap, "%d\n", resp.status);

    for (size_t i = 0; i < resp.nheaders; i++)
        n += snprintf(out + n, cap - (size_t)n, "%s\n", resp.headers[i]);
    ck_assert_uint_lt((size_t)n + resp.body_len, cap);
    memcpy(out + n, resp.body, resp.body_len);
    out[(size_t)n + resp.body_len] = '\0';
}

/* The last audit line without its chain fields and time (which differ from line to line). */
static void audit_text(char *out, size_t cap)
{
    cJSON *j = last_audit();
    char *text;

    cJSON_DeleteItemFromObject(j, "ts");
    cJSON_DeleteItemFromObject(j, "seq");
    cJSON_DeleteItemFromObject(j, "prev_hash");
    cJSON_DeleteItemFromObject(j, "hash");
    text = cJSON_PrintUnformatted(j);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_lt(snprintf(out, cap, "%s", text), (int)cap);
    free(text);
    cJSON_Delete(j);
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(success)
{
    fm_request req = request("GET", "/v1/tasks/abc-123", K_ALICE);

    run(&req);
    expect_handled("alice");
    ck_assert_str_eq(ran.param0, "abc-123");
    ck_assert_str_eq(ran.trace_id, TRACE);
    ck_assert(ran.had_rate);
    ck_assert_str_eq(resp.body, "{\"handled\":\"alice\"}");
    expect_header("RateLimit-Policy", "\"user\";q=600;w=60");
    expect_header("RateLimit", "\"user\";r=49;t=1");
    ck_assert_ptr_null(header("Retry-After"));
    ck_assert_ptr_null(header("WWW-Authenticate"));
    expect_audit(200, NULL, "alice", 1, &req, TRACE);
}
END_TEST

START_TEST(bearer_and_params)
{
    fm_request req = request("POST", "/v1/tasks/xyz/cancel", NULL);

    req.authorization = "Bearer " K_ALICE;
    run(&req);
    expect_handled("alice");
    ck_assert_str_eq(ran.param0, "xyz");
    expect_audit(200, NULL, "alice", 1, &req, TRACE);
}
END_TEST

START_TEST(ip_not_allowed)
{
    fm_request req = request("GET", "/v1/tasks", K_ALICE);

    req.remote_addr = "192.0.2.7";
    run(&req);
    expect_error(403, "IP_NOT_ALLOWED", TRACE);
    ck_assert_int_eq(ran.count, 0);
    expect_audit(403, "ip_not_allowed", NULL, 0, &req, TRACE);
    /* Refused before the rate limiter: no bucket was touched. */
    ck_assert_int_eq(bucket_keys(), 0);

    /* An unparsable address never matches. */
    req.remote_addr = "not-an-ip";
    run(&req);
    expect_error(403, "IP_NOT_ALLOWED", TRACE);

    /* IPv4-mapped IPv6 compares as IPv4. */
    req.remote_addr = "::ffff:127.0.0.1";
    run(&req);
    expect_handled("alice");
}
END_TEST

START_TEST(missing_key)
{
    fm_request req = request("GET", "/v1/tasks", NULL);

    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    expect_header("WWW-Authenticate", "Bearer realm=\"fetchml\"");
    ck_assert_int_eq(ran.count, 0);
    expect_audit(401, "missing_key", NULL, 0, &req, TRACE);
    ck_assert_int_eq(bucket_keys(), 0);

    /* A key in the query string is not a credential. */
    req.query = "api_key=" K_ALICE;
    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    ck_assert_int_eq(ran.count, 0);

    /* Authentication comes before routing: an unknown path is still 401. */
    req = request("GET", "/nowhere", NULL);
    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
}
END_TEST

START_TEST(bad_keys)
{
    fm_request req = request("GET", "/v1/tasks", "no-such-key-at-all");
    char *log;

    req.remote_addr = "10.9.9.9";
    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    expect_header("WWW-Authenticate", "Bearer realm=\"fetchml\"");
    expect_audit(401, "unknown_key", NULL, 1, &req, TRACE);

    req.x_api_key = K_DAVE;
    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    expect_audit(401, "expired", NULL, 1, &req, TRACE);

    req.x_api_key = "bad key";
    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    expect_audit(401, "malformed_key", NULL, 0, &req, TRACE);

    req.x_api_key = K_ALICE;
    req.authorization = "Basic YWxpY2U6cHc=";
    run(&req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    expect_audit(401, "malformed_key", NULL, 0, &req, TRACE);

    ck_assert_int_eq(ran.count, 0);
    ck_assert_int_eq(bucket_keys(), 0);

    /* api.log has a greppable line with the source, and never the key. */
    log = th_read_file(api_path);
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log, "authentication failed"));
    ck_assert_ptr_nonnull(strstr(log, "10.9.9.9"));
    ck_assert_ptr_null(strstr(log, "no-such-key-at-all"));
    ck_assert_ptr_null(strstr(log, K_DAVE));
    free(log);
}
END_TEST

START_TEST(user_ip_not_allowed)
{
    fm_request req = request("GET", "/v1/tasks", K_BOB);

    /* Allowed globally, but not in bob's own list. */
    run(&req);
    expect_error(403, "IP_NOT_ALLOWED", TRACE);
    ck_assert_int_eq(ran.count, 0);
    expect_audit(403, "user_ip_not_allowed", "bob", 1, &req, TRACE);
    ck_assert_int_eq(bucket_keys(), 0);

    req.remote_addr = "10.1.2.3";
    run(&req);
    expect_handled("bob");
    expect_audit(200, NULL, "bob", 1, &req, TRACE);
}
END_TEST

START_TEST(rbac)
{
    fm_request req = request("GET", "/v1/tasks", K_CAROL);

    /* carol has no roles: only routes without a permission. */
    run(&req);
    expect_error(403, "FORBIDDEN", TRACE);
    ck_assert_int_eq(ran.count, 0);
    expect_audit(403, "forbidden", "carol", 1, &req, TRACE);
    req.path = "/v1/whoami";
    run(&req);
    expect_handled("carol");

    /* researcher lacks jobs:delete and metrics:read. */
    req = request("DELETE", "/v1/tasks/t1", K_ALICE);
    run(&req);
    expect_error(403, "FORBIDDEN", TRACE);
    req = request("GET", "/metrics", K_ALICE);
    run(&req);
    expect_error(403, "FORBIDDEN", TRACE);

    /* admin: true has everything. */
    ran.count = 0;
    req = request("DELETE", "/v1/tasks/t1", K_ROOT);
    run(&req);
    expect_handled("root");
    ck_assert_str_eq(ran.param0, "t1");
}
END_TEST

START_TEST(not_found)
{
    static const char *const paths[] = {"/nowhere",  "/v1/tasks/",  "/v1/tasks/a/b",
                                        "/v1/Tasks", "/v1/whoami/", "/"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        fm_request req = request("GET", paths[i], K_ALICE);
        run(&req);
        expect_error(404, "NOT_FOUND", TRACE);
        expect_audit(404, "no_route", "alice", 1, &req, TRACE);
    }
    ck_assert_int_eq(ran.count, 0);
}
END_TEST

START_TEST(method_not_allowed)
{
    fm_request req = request("PUT", "/v1/tasks", K_ALICE);

    run(&req);
    expect_error(405, "METHOD_NOT_ALLOWED", TRACE);
    expect_header("Allow", "GET, POST");
    expect_audit(405, "method_not_allowed", "alice", 1, &req, TRACE);

    req = request("PATCH", "/v1/tasks/abc", K_ALICE);
    run(&req);
    expect_error(405, "METHOD_NOT_ALLOWED", TRACE);
    expect_header("Allow", "GET, DELETE");

    req = request("get", "/v1/whoami", K_ALICE);
    run(&req);
    expect_error(405, "METHOD_NOT_ALLOWED", TRACE);
    expect_header("Allow", "GET");
    ck_assert_int_eq(ran.count, 0);
}
END_TEST

/*
 * A body over the limit, shorter than its CONTENT_LENGTH (even a valid JSON
 * prefix) or cut off because it came too slowly (408, not a bad request)
 * never reaches a handler.
 */
static const struct body_case {
    const char *body;
    bool too_large, incomplete, slow;
    int status;
    const char *code, *reason;
} body_cases[] = {
    {NULL, true, false, false, 413, "PAYLOAD_TOO_LARGE", "body_too_large"},
    {"{}", false, true, false, 400, "BAD_REQUEST", "body_incomplete"},
    {"{", false, true, true, 408, "REQUEST_TIMEOUT", "body_too_slow"},
};

START_TEST(body_refused)
{
    const struct body_case *c = &body_cases[_i];
    fm_request req = request("POST", "/v1/tasks", K_ALICE);

    req.body = c->body;
    req.body_len = c->body != NULL ? strlen(c->body) : 0;
    req.body_too_large = c->too_large;
    req.body_incomplete = c->incomplete;
    req.body_slow = c->slow;
    run(&req);
    expect_error(c->status, c->code, TRACE);
    ck_assert_int_eq(ran.count, 0);
    expect_audit(c->status, c->reason, "alice", 1, &req, TRACE);
}
END_TEST

/* A route that takes a JSON body needs Content-Type application/json, parameters allowed. */
START_TEST(content_type)
{
    static const char *const accepted[] = {"application/json", "Application/JSON",
                                           "application/json; charset=utf-8",
                                           "application/json ;charset=UTF-8"};
    static const char *const refused[] = {"",
                                          "text/plain",
                                          "application/jsonx",
                                          "application/json-seq",
                                          "application/x-www-form-urlencoded",
                                          "json",
                                          "application/json,text/plain"};
    fm_request req = request("POST", "/v1/tasks", K_ALICE);

    req.body = "{}";
    req.body_len = 2;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        req.content_type = accepted[i];
        run(&req);
        ck_assert_msg(resp.status == 200, "%s: %d", accepted[i], resp.status);
    }
    ck_assert_int_eq(ran.count, (int)(sizeof(accepted) / sizeof(accepted[0])));
    req.content_type = NULL;
    run(&req);
    expect_error(415, "UNSUPPORTED_MEDIA_TYPE", TRACE);
    expect_audit(415, "unsupported_media_type", "alice", 1, &req, TRACE);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        req.content_type = refused[i];
        run(&req);
        ck_assert_msg(resp.status == 415, "%s: %d", refused[i], resp.status);
    }
    ck_assert_int_eq(ran.count, (int)(sizeof(accepted) / sizeof(accepted[0])));
    /* An empty body has no media type to declare (a worker's bare claim). */
    req.body = NULL;
    req.body_len = 0;
    req.content_type = NULL;
    run(&req);
    ck_assert_int_eq(resp.status, 200);
    /* A route without a body does not care. */
    req = request("POST", "/v1/tasks/xyz/cancel", K_ALICE);
    run(&req);
    ck_assert_int_eq(resp.status, 200);
}
END_TEST

/* Only a route that reads a query accepts one (it checks the names); any other refuses it. */
START_TEST(query_only_where_read)
{
    fm_request req = request("GET", "/v1/whoami", K_ALICE);

    req.query = "x=%C0%AF";
    run(&req);
    expect_error(400, "BAD_REQUEST", TRACE);
    ck_assert_int_eq(ran.count, 0);
    expect_audit(400, "bad_query", "alice", 1, &req, TRACE);
    req = request("GET", "/v1/tasks", K_ALICE);
    req.query = "status=queued";
    run(&req);
    expect_handled("alice");
    req = request("GET", "/v1/whoami", K_ALICE);
    req.query = "";
    run(&req);
    ck_assert_int_eq(resp.status, 200);
}
END_TEST

START_TEST(rate_limited)
{
    fm_request req = request("GET", "/v1/tasks", K_ERIN);

    run(&req);
    ck_assert_int_eq(resp.status, 200);
    expect_header("RateLimit", "\"user\";r=1;t=1");
    run(&req);
    ck_assert_int_eq(resp.status, 200);
    expect_header("RateLimit", "\"user\";r=0;t=2");
    run(&req);
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_header("Retry-After", "1");
    expect_header("RateLimit-Policy", "\"user\";q=60;w=60");
    expect_header("RateLimit", "\"user\";r=0;t=2");
    ck_assert_int_eq(ran.count, 2);
    expect_audit(429, "rate_limited", "erin", 1, &req, TRACE);
    ck_assert_int_eq(fm_metrics_get(FM_MET_RATE_LIMITED), 1);

    /* Another user's bucket is untouched. */
    req.x_api_key = K_ALICE;
    run(&req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 3);
}
END_TEST

START_TEST(redis_down_deny)
{
    char addr[TH_PATH_MAX + 32];
    fm_redis *down;
    fm_env e = env;
    fm_request req = request("GET", "/v1/tasks", K_ALICE);

    ck_assert_int_lt(snprintf(addr, sizeof(addr), "unix:%s/nobody.sock", tmpdir),
                     (int)sizeof(addr));
    down = fm_redis_new(addr, NULL, "pw", 0, 200);
    ck_assert_ptr_nonnull(down);
    e.redis = down;
    run_in(&e, &req);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_int_eq(ran.count, 0);
    ck_assert_ptr_null(header("RateLimit"));
    /* Refused before the key was looked at: no user, and 503 whether the key is right or not. */
    expect_audit(503, "rate_limiter_unavailable", NULL, 0, &req, TRACE);
    req.x_api_key = "no-such-key-at-all";
    run_in(&e, &req);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_int_eq(log_count("authentication failed"), 0);
    fm_redis_free(down);
    req.x_api_key = K_ALICE;

    /*
     * The server dying under a live connection is the same (one request
     * reserves nothing beyond its own token: see ratelimit.h).
     */
    run(&req);
    expect_handled("alice");
    th_redis_kill(&srv);
    run(&req);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_int_eq(ran.count, 1);
}
END_TEST

/* Every request is counted under its route's pattern, also one refused before routing. */
START_TEST(requests_are_counted_by_route_pattern)
{
    fm_request req = request("GET", "/v1/tasks/abc", K_ALICE);
    int64_t missing = fm_metrics_get(FM_MET_AUTH_MISSING_KEY);

    run(&req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_uint_eq(fm_metrics_request_count(3, "GET", 200), 1);
    req = request("DELETE", "/v1/tasks/abc", NULL);
    run(&req);
    ck_assert_int_eq(resp.status, 401);
    ck_assert_uint_eq(fm_metrics_request_count(3, "DELETE", 401), 1); /* the path's first pattern */
    ck_assert_int_eq(fm_metrics_get(FM_MET_AUTH_MISSING_KEY), missing + 1);
    req = request("PUT", "/v1/whoami", K_ALICE);
    run(&req);
    ck_assert_int_eq(resp.status, 405);
    ck_assert_uint_eq(fm_metrics_request_count(0, "PUT", 405), 1);
    req = request("GET", "/v1/nowhere", K_ALICE);
    run(&req);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_uint_eq(fm_metrics_request_count(NROUTES, "GET", 404), 1); /* "unmatched" */
}
END_TEST

START_TEST(redis_down_allow)
{
    fm_config *allow = load_config("allow");
    fm_env e = env;
    fm_request req = request("GET", "/v1/tasks", K_ALICE);
    unsigned long long before = (unsigned long long)fm_metrics_get(FM_MET_RATE_UNCHECKED);

    ck_assert(allow->rate_limit.on_redis_error_allow);
    e.cfg = allow;
    th_redis_kill(&srv);
    run_in(&e, &req);
    expect_handled("alice");
    ck_assert(!ran.had_rate);
    ck_assert_ptr_null(header("RateLimit"));
    ck_assert_ptr_null(header("RateLimit-Policy"));
    expect_audit(200, NULL, "alice", 1, &req, TRACE);

    /* Every one is counted; the warning is logged once per 10 s, not per request. */
    for (int i = 0; i < 4; i++) {
        run_in(&e, &req);
        ck_assert_int_eq(resp.status, 200);
    }
    ck_assert_int_eq(ran.count, 5);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_RATE_UNCHECKED), before + 5);
    ck_assert_int_eq(log_count("rate limiter unavailable"), 1);
    ck_assert_int_eq(log_count("admitting (on_redis_error: allow)"), 1);
    /* The guard could not ask Redis either: it blocked nobody, and said so once. */
    ck_assert_int_eq(log_count("brute-force guard unavailable"), 1);

    /* A failed authentication is still 401 (not counted, and not a 503). */
    req.x_api_key = "no-such-key-at-all";
    run_in(&e, &req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_RATE_UNCHECKED), before + 5);
    fm_config_free(allow);
}
END_TEST

START_TEST(ip_blocked_before_auth)
{
    const char *block[] = {"SET", "pt:authblock:127.0.0.1", "1", "EX", "30"};
    const char *exists[] = {"EXISTS", "pt:authfail:127.0.0.1"};
    fm_request req = request("GET", "/v1/tasks", K_ALICE);
    redisReply *reply;

    /* Blocked (as another worker would have done), then a valid key. */
    redis_ok(5, block);
    run(&req);
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_header("Retry-After", "30");
    ck_assert_ptr_null(header("RateLimit"));
    ck_assert_ptr_null(header("WWW-Authenticate"));
    ck_assert_int_eq(ran.count, 0);
    /* Refused before the key was looked at: no user, no key id; no bucket touched. */
    expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    ck_assert_int_eq(bucket_keys(), 0);

    /* A bad key is refused the same way: not looked at, not logged, not counted. */
    req.x_api_key = "no-such-key-at-all";
    run(&req);
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    ck_assert_int_eq(log_count("authentication failed"), 0);
    ck_assert_int_eq(fm_metrics_get(FM_MET_GUARD_BLOCKS), 2);
    ck_assert_int_eq(fm_metrics_get(FM_MET_AUTH_UNKNOWN_KEY), 0); /* not looked at */
    reply = fm_redis_argv(redis, 2, exists, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->integer, 0);
    freeReplyObject(reply);

    /* The IPv4-mapped form is the same address. */
    req.remote_addr = "::ffff:127.0.0.1";
    run(&req);
    expect_error(429, "RATE_LIMITED", TRACE);

    /* Other addresses are served. */
    req = request("GET", "/v1/tasks", K_ALICE);
    req.remote_addr = "10.4.4.4";
    run(&req);
    expect_handled("alice");
}
END_TEST

START_TEST(failures_block_address)
{
    fm_config *strict =
        load_config_guard("deny", "{ max: 3, window_seconds: 60, block_seconds: 1 }");
    const char *get[] = {"GET", "pt:authfail:10.5.5.5"};
    fm_env e = env;
    fm_request req = request("GET", "/v1/whoami", "no-such-key-at-all");
    redisReply *reply;

    e.cfg = strict;
    req.remote_addr = "10.5.5.5";
    /* Requests without any key guess nothing and are not counted. */
    req.x_api_key = NULL;
    for (int i = 0; i < 5; i++) {
        run_in(&e, &req);
        expect_error(401, "UNAUTHORIZED", TRACE);
    }
    reply = fm_redis_argv(redis, 2, get, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);
    req.x_api_key = "no-such-key-at-all";
    for (int i = 0; i < 3; i++) {
        run_in(&e, &req);
        expect_error(401, "UNAUTHORIZED", TRACE);
        expect_audit(401, "unknown_key", NULL, 1, &req, TRACE);
    }
    reply = fm_redis_argv(redis, 2, get, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_str_eq(reply->str, "3");
    freeReplyObject(reply);
    ck_assert_int_eq(log_count("authentication failed: reason=unknown_key source=10.5.5.5"), 3);
    ck_assert_int_eq(log_count("brute-force guard: source=10.5.5.5 blocked for 1 s"), 1);

    /* The third reached max: the next request is refused, even with a valid key. */
    req.x_api_key = K_ALICE;
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_header("Retry-After", "1");
    expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    ck_assert_int_eq(ran.count, 0);

    /* Another address is not affected. */
    req.remote_addr = "10.6.6.6";
    run_in(&e, &req);
    expect_handled("alice");

    /* When the block has ended, the valid key works again. */
    th_sleep_ms(1100);
    req.remote_addr = "10.5.5.5";
    run_in(&e, &req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 2);
    fm_config_free(strict);
}
END_TEST

/* The known-client rule: a blocked address stays open to the keys that worked from it. */
START_TEST(known_client_passes_block)
{
    fm_config *strict =
        load_config_guard("deny", "{ max: 3, window_seconds: 60, block_seconds: 30 }");
    fm_config *off = load_config_guard(
        "deny", "{ max: 3, window_seconds: 60, block_seconds: 30, known_days: 0 }");
    fm_env e = env;
    fm_request req = request("GET", "/v1/whoami", K_ALICE);
    char valid[4096], invalid[4096], valid_audit[4096], invalid_audit[4096];
    long long exists;

    ck_assert_uint_eq(strict->rate_limit.auth_failures.known_days, 30);
    e.cfg = strict;
    req.remote_addr = "10.5.5.5";
    run_in(&e, &req);
    expect_handled("alice");
    req.x_api_key = "no-such-key-at-all";
    for (int i = 0; i < 3; i++) {
        run_in(&e, &req);
        expect_error(401, "UNAUTHORIZED", TRACE);
    }
    ck_assert_int_eq(log_count("brute-force guard: source=10.5.5.5 blocked for 30 s"), 1);

    /* alice worked from here before the block: she goes on, as herself. */
    req.x_api_key = K_ALICE;
    run_in(&e, &req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 2);
    expect_audit(200, NULL, "alice", 1, &req, TRACE);
    req.remote_addr = "::ffff:10.5.5.5";
    run_in(&e, &req);
    ck_assert_int_eq(ran.count, 3);
    req.remote_addr = "10.5.5.5";

    /* A valid key never used from here and a wrong one: the same answer, the same record, the same
     * work. */
    req.x_api_key = K_ROOT;
    exists = th_redis_calls(redis, "exists");
    run_in(&e, &req);
    ck_assert_int_eq(th_redis_calls(redis, "exists"), exists + 1);
    answer_text(valid, sizeof(valid));
    audit_text(valid_audit, sizeof(valid_audit));
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    req.x_api_key = "no-such-key-at-all";
    run_in(&e, &req);
    ck_assert_int_eq(th_redis_calls(redis, "exists"), exists + 2);
    answer_text(invalid, sizeof(invalid));
    audit_text(invalid_audit, sizeof(invalid_audit));
    ck_assert_str_eq(valid, invalid);
    ck_assert_str_eq(valid_audit, invalid_audit);
    ck_assert_int_eq(ran.count, 3);
    /* Neither is logged or counted as a failed authentication. */
    ck_assert_int_eq(log_count("authentication failed"), 3);

    /* No key at all: refused too. */
    req.x_api_key = NULL;
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);

    /* known_days: 0 switches the rule off: everyone from the address is refused. */
    e.cfg = off;
    req.x_api_key = K_ALICE;
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);
    ck_assert_int_eq(ran.count, 3);

    /*
     * Redis gone while this worker still knows the block: whether a key is
     * known cannot be asked, so under deny it is a 503 for every key (retry
     * soon), not a 429 that tells a known client to wait out the block.
     */
    e.cfg = strict;
    th_redis_kill(&srv);
    req.x_api_key = K_ALICE;
    run_in(&e, &req);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    expect_header("Retry-After", "1");
    req.x_api_key = "no-such-key-at-all";
    run_in(&e, &req);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_int_eq(ran.count, 3);
    fm_config_free(off);
    fm_config_free(strict);
}
END_TEST

/* An unblocked address costs what it did: one SET per key and address per hour on top. */
START_TEST(unblocked_redis_cost)
{
    fm_request req = request("GET", "/v1/whoami", K_ALICE);
    long long pttl = th_redis_calls(redis, "pttl"), set = th_redis_calls(redis, "set"),
              exists = th_redis_calls(redis, "exists");

    req.remote_addr = "10.8.8.8";
    for (int i = 0; i < 20; i++) {
        run(&req);
        ck_assert_int_eq(resp.status, 200);
    }
    req.x_api_key = K_ROOT;
    for (int i = 0; i < 20; i++) {
        run(&req);
        ck_assert_int_eq(resp.status, 200);
    }
    ck_assert_int_le(th_redis_calls(redis, "pttl"),
                     pttl + 2); /* once per FM_BF_RECHECK_MS, as before */
    ck_assert_int_eq(th_redis_calls(redis, "set"),
                     set + 2); /* alice and root became known, once each */
    ck_assert_int_eq(th_redis_calls(redis, "exists"),
                     exists); /* known-ness is asked only while blocked */
}
END_TEST

/* A valid key from outside its own networks is a failed authentication for the guard. */
START_TEST(user_ip_refusal_counts)
{
    fm_config *strict =
        load_config_guard("deny", "{ max: 3, window_seconds: 60, block_seconds: 30 }");
    const char *get[] = {"GET", "pt:authfail:127.0.0.1"};
    fm_env e = env;
    fm_request req = request("GET", "/v1/tasks", K_BOB);
    redisReply *reply;

    e.cfg = strict;
    for (int i = 0; i < 3; i++) {
        run_in(&e, &req);
        expect_error(403, "IP_NOT_ALLOWED", TRACE);
        expect_audit(403, "user_ip_not_allowed", "bob", 1, &req, TRACE);
    }
    reply = fm_redis_argv(redis, 2, get, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_str_eq(reply->str, "3");
    freeReplyObject(reply);
    ck_assert_int_eq(
        log_count("authentication failed: reason=user_ip_not_allowed source=127.0.0.1 key_id="), 3);
    ck_assert_int_eq(log_count("brute-force guard: source=127.0.0.1 blocked for 30 s"), 1);
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    /* bob never worked from here, and a refused request never makes a key known. */
    const char *known[] = {"KEYS", "pt:authknown:*"};
    reply = fm_redis_argv(redis, 2, known, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_uint_eq(reply->elements, 0);
    freeReplyObject(reply);
    fm_config_free(strict);
}
END_TEST

/* Requests without a key are bounded per address: over rate_limit.anonymous.max, 429 at the guard.
 */
START_TEST(anonymous_flood_throttled)
{
    fm_config *strict =
        load_config_guard("deny", "{ max: 3, window_seconds: 60, block_seconds: 30 }\n"
                                  "  anonymous: { max: 4, window_seconds: 60 }");
    fm_env e = env;
    fm_request req = request("GET", "/v1/whoami", K_ALICE);
    long long evalsha, pttl;

    e.cfg = strict;
    req.remote_addr = "10.5.5.5";
    run_in(&e, &req);
    expect_handled("alice");
    req.x_api_key = NULL;
    for (int i = 0; i < 4; i++) {
        run_in(&e, &req);
        expect_error(401, "UNAUTHORIZED", TRACE);
    }
    ck_assert_int_eq(log_count("brute-force guard: source=10.5.5.5 blocked for 60 s after too "
                               "many requests without a key"),
                     1);
    /* Past the bound: 429 at the guard, no key check, no log line, no Redis call (cached). */
    evalsha = th_redis_calls(redis, "evalsha");
    pttl = th_redis_calls(redis, "pttl");
    for (int i = 0; i < 5; i++) {
        run_in(&e, &req);
        expect_error(429, "RATE_LIMITED", TRACE);
        ck_assert_ptr_nonnull(header("Retry-After"));
        ck_assert_int_ge(atoi(header("Retry-After")), 59);
        expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    }
    ck_assert_int_eq(th_redis_calls(redis, "evalsha"), evalsha);
    ck_assert_int_eq(th_redis_calls(redis, "pttl"), pttl);
    ck_assert_int_eq(log_count("authentication failed: reason=missing_key"), 4);
    /* Wrong keys are refused the same way; a known client still gets in. */
    req.x_api_key = "no-such-key-at-all";
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);
    req.x_api_key = K_ALICE;
    run_in(&e, &req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 2);
    /* Another address is not affected. */
    req.x_api_key = NULL;
    req.remote_addr = "10.6.6.6";
    run_in(&e, &req);
    expect_error(401, "UNAUTHORIZED", TRACE);
    fm_config_free(strict);
}
END_TEST

/* Redis stalled: the guard's timeout is the request's only wait, not one per step. */
START_TEST(stalled_redis_one_timeout)
{
    fm_request req = request("GET", "/v1/tasks", K_ALICE);
    double t0, elapsed;

    req.remote_addr = "10.7.7.7";
    ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
    t0 = th_now();
    run(&req);
    elapsed = th_now() - t0;
    ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    expect_audit(503, "rate_limiter_unavailable", NULL, 0, &req, TRACE);
    ck_assert_int_eq(ran.count, 0);
    /* timeout_ms is 300. */
    ck_assert_msg(elapsed >= 0.25 && elapsed < 0.55, "took %.3f s", elapsed);
    ck_assert_int_eq(log_count("Redis unavailable"), 1);
}
END_TEST

START_TEST(handler_failures)
{
    fm_request req = request("GET", "/v1/broken", K_ALICE);

    run(&req);
    expect_error(500, "INTERNAL", TRACE);
    ck_assert_int_eq(ran.count, 1);
    expect_audit(500, "handler_error", "alice", 1, &req, TRACE);

    /* Returning 0 without setting a status is a handler bug, not a 200. */
    req.path = "/v1/silent";
    run(&req);
    expect_error(500, "INTERNAL", TRACE);
    ck_assert_int_eq(ran.count, 2);

    req.path = "/v1/reason";
    run(&req);
    ck_assert_int_eq(resp.status, 200);
    expect_audit(200, "custom_reason", "alice", 1, &req, TRACE);
}
END_TEST

START_TEST(trace_ids)
{
    fm_request req = request("GET", "/nowhere", NULL);
    char long_id[FM_TRACE_ID_MAX + 2], first[FM_TRACE_ID_MAX + 1];
    cJSON *line;

    req.request_id = "abc-DEF_123";
    run(&req);
    expect_error(401, "UNAUTHORIZED", "abc-DEF_123");
    expect_audit(401, "missing_key", NULL, 0, &req, "abc-DEF_123");

    memset(long_id, 'a', FM_TRACE_ID_MAX);
    long_id[FM_TRACE_ID_MAX] = '\0';
    req.request_id = long_id;
    run(&req);
    expect_error(401, "UNAUTHORIZED", long_id);

    /* Anything odd (here: one character too long) is replaced by a fresh 32-hex id. */
    long_id[FM_TRACE_ID_MAX] = 'a';
    long_id[FM_TRACE_ID_MAX + 1] = '\0';
    const char *const odd[] = {"bad\nid", "", "a b", "x\"y", "id;rm", "caf\xc3\xa9", NULL, long_id};
    first[0] = '\0';
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        const char *trace;

        req.request_id = odd[i];
        run(&req);
        line = last_audit();
        trace = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(line, "trace_id"));
        ck_assert_msg(th_is_lower_hex(trace, 32), "trace id \"%s\"", trace);
        expect_error(401, "UNAUTHORIZED", trace);
        ck_assert_str_ne(trace, first);
        (void)snprintf(first, sizeof(first), "%s", trace);
        cJSON_Delete(line);
    }
}
END_TEST

START_TEST(audit_failure_undoes_change)
{
    fm_audit *full = fm_audit_open("/dev/full", shared);
    fm_env e = env;
    fm_request req = request("GET", "/v1/change", K_ALICE);

    ck_assert_ptr_nonnull(full);
    undone = settled = 0;
    fm_pipeline_run(&env, routes, NROUTES, &req, &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(undone, 0);
    ck_assert_int_eq(settled, 1);

    fm_response_reset(&resp);
    e.audit = full;
    fm_pipeline_run(&e, routes, NROUTES, &req, &resp);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_int_eq(undone, 1);
    ck_assert_int_eq(settled, 1); /* not after an undo */
    fm_audit_close(full);
}
END_TEST

/*
 * The audit record names the task and worker the handler gave; the armed
 * event is published after it, and not at all when the audit write fails
 * and the change is undone. The event's task is freed either way (LSan).
 */
START_TEST(event_published_only_after_audit)
{
    redisContext *sub = th_redis_subscribe(&srv, "pt:events", 500);
    fm_audit *full = fm_audit_open("/dev/full", shared);
    fm_request req = request("POST", "/v1/event", K_ALICE);
    unsigned long long published = (unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED);
    fm_env e = env;
    cJSON *line, *event;
    char *text;

    ck_assert_ptr_nonnull(full);
    run(&req);
    ck_assert_int_eq(resp.status, 200);
    line = last_audit();
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(line, "task_id")), "task-1");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(line, "worker")), "alice/gpu0");
    cJSON_Delete(line);
    text = th_redis_message(sub, "pt:events");
    ck_assert_ptr_nonnull(text);
    event = cJSON_Parse(text);
    ck_assert_ptr_nonnull(event);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(event, "type")), "task.started");
    ck_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(event, "task"), "id")),
        "task-1");
    cJSON_Delete(event);
    free(text);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED), published + 1);

    /* Other requests name no task: their records have neither field. */
    req = request("GET", "/v1/whoami", K_ALICE);
    run(&req);
    text = th_last_line(audit_path);
    ck_assert_ptr_null(strstr(text, "task_id"));
    ck_assert_ptr_null(strstr(text, "\"worker\""));
    free(text);

    undone = 0;
    e.audit = full;
    req = request("POST", "/v1/event", K_ALICE);
    fm_response_reset(&resp);
    fm_pipeline_run(&e, routes, NROUTES, &req, &resp);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_int_eq(undone, 1);
    ck_assert_uint_eq((unsigned long long)fm_metrics_get(FM_MET_EVENTS_PUBLISHED), published + 1);
    ck_assert_ptr_null(th_redis_message(sub, "pt:events"));
    fm_audit_close(full);
    redisFree(sub);
}
END_TEST

/*
 * A torn audit write (write(2) cut short by RLIMIT_FSIZE in a child, SIGXFSZ
 * ignored) fails the request like any other audit failure: 503, and the
 * handler's change undone.
 */
START_TEST(audit_torn_write_undoes_change)
{
    fm_request req = request("GET", "/v1/change", K_ALICE);
    struct stat st;
    int status;
    pid_t pid;

    run(&req); /* a whole line first: the cut must keep it */
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(stat(audit_path, &st), 0);
    undone = 0;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl;
        struct stat after;

        /* Exit codes name the check that failed. */
        if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || getrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(10);
        rl.rlim_cur = (rlim_t)st.st_size + 100; /* an audit line is longer than 100 bytes */
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        fm_response_reset(&resp);
        fm_pipeline_run(&env, routes, NROUTES, &req, &resp);
        if (resp.status != 503 || resp.nheaders != 1)
            _exit(12);
        if (undone != 1)
            _exit(13);
        if (stat(audit_path, &after) != 0 || after.st_size != st.st_size)
            _exit(14);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check %d failed",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ck_assert_uint_eq(th_count_lines(audit_path), 1);
}
END_TEST

START_TEST(head_is_get_without_body)
{
    fm_request req = request("HEAD", "/v1/whoami", K_ALICE);

    fm_pipeline_run(&env, routes, NROUTES, &req, &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 1);
}
END_TEST

/*
 * A download is audited whole before it is sent; when it ends short, the
 * second record keeps the first one's request and names the end: the same
 * trace id, user, key, action, permission and owner, the 200 that was sent,
 * result failure, the reason and the bytes sent. Only an answer with a file
 * whose record was written arms the delivery.
 */
START_TEST(download_ended_short)
{
    fm_request req = request("GET", "/v1/file", K_ALICE);
    fm_audit *full = fm_audit_open("/dev/full", shared);
    fm_env e = env;
    fm_delivery d;
    cJSON *first, *second;

    ck_assert_ptr_nonnull(full);
    memset(&d, 0, sizeof(d));
    req.delivery = &d;
    run(&req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert(resp.has_file);
    ck_assert(d.armed);
    first = last_audit();
    ck_assert_int_eq(fm_pipeline_delivery_end(&env, &d, 1000, "transfer_cut_off"), FM_OK);
    second = last_audit();
    ck_assert_int_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(second, "status")), 200);
    expect_field(second, "result", "failure");
    expect_field(second, "reason", "transfer_cut_off");
    expect_field(second, "user", "alice");
    expect_field(second, "trace_id", TRACE);
    expect_field(second, "action", "GET /v1/file");
    expect_field(second, "resource", "/v1/file");
    ck_assert_double_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(first, "bytes")),
                        4096);
    ck_assert_double_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(second, "bytes")),
                        1000);
    for (size_t i = 0; i < 4; i++) {
        static const char *const same[] = {"key_id", "permission", "owner", "source_ip"};

        expect_field(second, same[i],
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, same[i])));
    }
    expect_field(first, "result", "success");
    expect_field(second, "owner", "bob");
    cJSON_Delete(first);
    cJSON_Delete(second);

    /* A record that cannot be written is logged with the trace id; nothing else can be done. */
    e.audit = full;
    ck_assert_int_ne(fm_pipeline_delivery_end(&e, &d, 7, "connection_closed"), FM_OK);
    ck_assert_int_eq(log_count("ended short (connection_closed, 7 bytes sent) could not be "
                               "written"),
                     1);
    ck_assert_int_eq(log_count("trace_id=" TRACE), 1);

    /* No file, or a file whose record failed (503, nothing sent): nothing armed. */
    memset(&d, 0, sizeof(d));
    req.path = "/v1/whoami";
    run(&req);
    ck_assert(!d.armed);
    ck_assert_int_eq(fm_pipeline_delivery_end(&env, &d, 0, "connection_closed"), FM_EINVAL);
    req.path = "/v1/file";
    fm_response_reset(&resp);
    fm_pipeline_run(&e, routes, NROUTES, &req, &resp);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert(!resp.has_file);
    ck_assert(!d.armed);
    fm_audit_close(full);
}
END_TEST

/*
 * nginx's plain-HTTP server flags what it passes on: refused first of all,
 * whatever the address, the same answer for any key, and recorded by key id.
 */
START_TEST(plain_http_credential)
{
    fm_request req = request("GET", "/v1/whoami", K_ALICE);
    char *log;

    req.plain_http = true;
    req.remote_addr = "192.0.2.7"; /* outside the allow-list: refused for the leak all the same */
    run(&req);
    expect_error(403, "CREDENTIAL_IN_CLEAR", TRACE);
    ck_assert_int_eq(ran.count, 0);
    expect_audit(403, "credential_in_clear", "alice", 1, &req, TRACE);
    log = th_read_file(api_path);
    ck_assert_ptr_nonnull(strstr(log, "credential sent over plain HTTP"));
    ck_assert_ptr_null(strstr(log, K_ALICE));
    free(log);

    req.x_api_key = NULL;
    req.authorization = "Bearer not-a-configured-key";
    run(&req);
    expect_error(403, "CREDENTIAL_IN_CLEAR", TRACE);
    expect_audit(403, "credential_in_clear", NULL, 1, &req, TRACE);
}
END_TEST

/*
 * Keys in clear count as failed authentications: a flood of them is blocked
 * like any guesser, with the guard's 429 (no more api.log lines), also on
 * the HTTPS side, and a known key in clear never gets further than that.
 */
START_TEST(plain_http_flood_blocked)
{
    fm_config *strict =
        load_config_guard("deny", "{ max: 3, window_seconds: 60, block_seconds: 30 }");
    fm_env e = env;
    fm_request req = request("GET", "/v1/whoami", K_ALICE);

    e.cfg = strict;
    req.remote_addr = "10.6.6.6";
    run_in(&e, &req); /* alice is a known client of 10.6.6.6 */
    expect_handled("alice");
    req.plain_http = true;
    for (int i = 0; i < 3; i++) {
        run_in(&e, &req);
        expect_error(403, "CREDENTIAL_IN_CLEAR", TRACE);
    }
    ck_assert_int_eq(log_count("blocked for 30 s after credentials sent in clear"), 1);
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);
    expect_audit(429, "ip_blocked", NULL, 0, &req, TRACE);
    ck_assert_int_eq(log_count("credential sent over plain HTTP"), 3);
    ck_assert_int_eq(ran.count, 1);
    /* Over HTTPS the address is blocked too; alice, known here, goes on. */
    req.plain_http = false;
    req.x_api_key = "no-such-key-at-all";
    run_in(&e, &req);
    expect_error(429, "RATE_LIMITED", TRACE);
    req.x_api_key = K_ALICE;
    run_in(&e, &req);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(ran.count, 2);
    fm_config_free(strict);
}
END_TEST

START_TEST(repeated_credentials)
{
    fm_request req = request("GET", "/v1/whoami", K_ALICE);

    req.credentials_repeated = true;
    fm_pipeline_run(&env, routes, NROUTES, &req, &resp);
    expect_error(401, "UNAUTHORIZED", TRACE);
    ck_assert_int_eq(ran.count, 0);
}
END_TEST

START_TEST(audit_unwritable)
{
    fm_audit *full = fm_audit_open("/dev/full", shared);
    fm_env e = env;
    fm_request req = request("GET", "/v1/tasks", K_ALICE);

    ck_assert_ptr_nonnull(full);
    e.audit = full;

    fm_pipeline_run(&e, routes, NROUTES, &req, &resp);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    /* The whole response is replaced: only the 503's own Retry-After remains. */
    ck_assert_uint_eq(resp.nheaders, 1);
    expect_header("Retry-After", "1");

    fm_response_reset(&resp);
    req.x_api_key = NULL;
    fm_pipeline_run(&e, routes, NROUTES, &req, &resp);
    expect_error(503, "SERVICE_UNAVAILABLE", TRACE);
    ck_assert_ptr_null(header("WWW-Authenticate"));

    fm_audit_close(full);
    ck_assert_uint_eq(th_count_lines(audit_path), 0);
}
END_TEST

START_TEST(audit_chain_continues)
{
    fm_request req = request("GET", "/v1/whoami", K_ALICE);
    char *text;
    char prev[65];
    long long seq = 0;
    char err[256];
    int lines = 0;

    memset(prev, '0', 64);
    prev[64] = '\0';
    for (int i = 0; i < 3; i++)
        run(&req);
    req.x_api_key = NULL;
    run(&req);

    /* Every line verifies against the one before it. */
    text = th_read_file(audit_path);
    ck_assert_ptr_nonnull(text);
    for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1, lines++)
        ck_assert_msg(fm_audit_verify_line(p, (size_t)(nl - p), prev, &seq, err, sizeof(err)) == 0,
                      "line %d: %s", lines + 1, err);
    ck_assert_int_eq(lines, 4);
    ck_assert_int_eq(seq, 4);
    free(text);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, success);
    tcase_add_test(tc, bearer_and_params);
    tcase_add_test(tc, ip_not_allowed);
    tcase_add_test(tc, missing_key);
    tcase_add_test(tc, bad_keys);
    tcase_add_test(tc, user_ip_not_allowed);
    tcase_add_test(tc, rbac);
    tcase_add_test(tc, not_found);
    tcase_add_test(tc, method_not_allowed);
    tcase_add_loop_test(tc, body_refused, 0, (int)(sizeof(body_cases) / sizeof(body_cases[0])));
    tcase_add_test(tc, query_only_where_read);
    tcase_add_test(tc, content_type);
    tcase_add_test(tc, rate_limited);
    tcase_add_test(tc, redis_down_deny);
    tcase_add_test(tc, requests_are_counted_by_route_pattern);
    tcase_add_test(tc, redis_down_allow);
    tcase_add_test(tc, ip_blocked_before_auth);
    tcase_add_test(tc, failures_block_address);
    tcase_add_test(tc, known_client_passes_block);
    tcase_add_test(tc, unblocked_redis_cost);
    tcase_add_test(tc, user_ip_refusal_counts);
    tcase_add_test(tc, anonymous_flood_throttled);
    tcase_add_test(tc, stalled_redis_one_timeout);
    tcase_add_test(tc, handler_failures);
    tcase_add_test(tc, trace_ids);
    tcase_add_test(tc, audit_unwritable);
    tcase_add_test(tc, audit_failure_undoes_change);
    tcase_add_test(tc, audit_torn_write_undoes_change);
    tcase_add_test(tc, event_published_only_after_audit);
    tcase_add_test(tc, head_is_get_without_body);
    tcase_add_test(tc, download_ended_short);
    tcase_add_test(tc, repeated_credentials);
    tcase_add_test(tc, plain_http_credential);
    tcase_add_test(tc, plain_http_flood_blocked);
    tcase_add_test(tc, audit_chain_continues);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(pipeline_suite)
