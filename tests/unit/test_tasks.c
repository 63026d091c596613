/*
 * test_tasks.c - unit tests for lib/store/tasks.c.
 *
 * "validation" runs without Redis: the handle points at a socket nobody
 * listens on, so an invalid body must be refused before any Redis call (the
 * handle's errstr stays empty), and a valid one ends in FM_EREDIS.
 * "redis" runs against a private redis-server (see helpers.h): the stored
 * hash and index keys, queue order, visibility and listing (status pages,
 * next_offset, max_bytes, O(limit) by Redis' own command counts), quotas and
 * size limits, claim order and exactly-once claims by concurrent processes,
 * holder-only heartbeat and complete, lease expiry by the sweep, cancel of a
 * running task, the undo of every transition, one round trip for each.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "helpers.h"
#include "redisconn.h"
#include "tasks.h"

#define PREFIX "tt:"
#define HASH_TEXT_MAX 1024
#define STATE_TEXT_MAX 2048
#define HEX40 "0123456789abcdef0123456789abcdef01234567"
#define ERR_JOB_NAME "job_name: must be 1-128 characters of A-Z a-z 0-9 _ . : -"
#define ERR_PRIORITY "priority: must be an integer from 1 to 10"
#define ERR_COMMIT "commit_id: must be 40 hex digits"
#define ERR_DATASETS "datasets: must be an array of at most 64 dataset names"
#define ERR_METADATA "metadata: must be an object of at most 64 string, number or boolean values"
#define ERR_ARGS "args: must be a string or an array of at most 64 strings (4096 bytes each)"
#define ERR_EXPERIMENT                                                                             \
    "experiment: must be 1-128 characters of A-Z a-z 0-9 _ . - (not starting with .)"

static th_redis srv;
static char tmpdir[TH_PATH_MAX];
static char down_addr[TH_PATH_MAX + 32];
static fm_redis *r;
static fm_tasks_store st;
static long next_off;
#define STORE(p) (&(fm_tasks_store){.redis = r, .prefix = (p)})

/* ---- validation, Redis unreachable ---------------------------------------------- */

static void setup_down(void)
{
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    th_mkdtemp(tmpdir, "test_tasks");
    ck_assert_int_lt(snprintf(down_addr, sizeof(down_addr), "unix:%s/nobody.sock", tmpdir),
                     (int)sizeof(down_addr));
    r = fm_redis_new(down_addr, NULL, "pw", 0, 200);
    ck_assert_ptr_nonnull(r);
    st = (fm_tasks_store){.redis = r, .prefix = PREFIX, .lease_seconds = 60, .max_attempts = 3};
}

static void teardown_down(void)
{
    fm_redis_free(r);
    r = NULL;
    th_rmtree(tmpdir);
}

static void expect_refused_len(const char *body, size_t len, int want_rc, const char *want_err)
{
    char err[256] = "unset", id[FM_TASKS_ID_SIZE];
    cJSON *task = (cJSON *)&task;

    ck_assert_msg(fm_tasks_create(&st, "alice", body, len, &task, id, NULL, err, sizeof(err)) ==
                      want_rc,
                  "body %s: wrong code (err \"%s\")", body != NULL ? body : "(null)", err);
    ck_assert_ptr_null(task);
    ck_assert_str_eq(err, want_err);
    /* Refused before Redis was asked for anything. */
    ck_assert_str_eq(fm_redis_errstr(r), "");
}

static void expect_refused(const char *body, int want_rc, const char *want_err)
{
    expect_refused_len(body, strlen(body), want_rc, want_err);
}

static void expect_invalid(const char *body, const char *want_err)
{
    expect_refused(body, FM_EINVAL, want_err);
}

/* A valid body gets as far as Redis, which is down. */
static void expect_valid(const char *body)
{
    char err[256] = "", id[FM_TASKS_ID_SIZE];
    cJSON *task = (cJSON *)&task;
    int rc = fm_tasks_create(&st, "alice", body, strlen(body), &task, id, NULL, err, sizeof(err));

    ck_assert_msg(rc == FM_EREDIS, "body %s: rc %d (err \"%s\")", body, rc, err);
    ck_assert_ptr_null(task);
    ck_assert_str_ne(fm_redis_errstr(r), "");
    /* A fresh handle, so the next refusal can show again that Redis was not asked. */
    fm_redis_free(r);
    r = fm_redis_new(down_addr, NULL, "pw", 0, 200);
    ck_assert_ptr_nonnull(r);
    st = (fm_tasks_store){.redis = r, .prefix = PREFIX, .lease_seconds = 60, .max_attempts = 3};
}

#define NOT_JSON "request body is not valid JSON (one object, no NUL characters)"

START_TEST(not_json)
{
    expect_refused("not json", FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":", FM_EPARSE, NOT_JSON);
    expect_refused("{'job_name':'a'}", FM_EPARSE, NOT_JSON);
    /* Exactly one value: nothing but white space may follow it. */
    expect_refused("{\"job_name\":\"a\"}x", FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":\"a\"}{}", FM_EPARSE, NOT_JSON);
    expect_refused_len("{\"job_name\":\"a\"}\0junk", 21, FM_EPARSE, NOT_JSON);
    /* NULs would cut strings short inside cJSON. */
    expect_refused_len("{\"job_name\":\"tr\0unc\"}", 21, FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":\"a\\u0000b\"}", FM_EPARSE, NOT_JSON);
    expect_refused("", FM_EPARSE, "request body is empty");
    expect_refused_len(NULL, 0, FM_EPARSE, "request body is empty");
    /* body_len bounds the parse: the object is cut short. */
    expect_refused_len("{\"job_name\":\"a\"}", 10, FM_EPARSE, NOT_JSON);
}
END_TEST

#define NOT_UTF8 "request body is not valid UTF-8"
#define STR63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* Every string of the body, keys too, is UTF-8 (RFC 3629), raw or as a \u escape. */
START_TEST(not_utf8)
{
    static const char *const bad[] = {
        "\xc0\xaf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xe2\x82",         /* truncated */
        "\x80",             /* lone continuation */
        "\xfe",
    };
    static const struct {
        const char *pre, *post;
    } shapes[] = {
        {"{\"job_name\":\"a\",\"args\":\"x", "\"}"},
        {"{\"job_name\":\"a\",\"args\":[\"ok\",\"x", "\"]}"},
        {"{\"job_name\":\"a\",\"metadata\":{\"note\":\"", "\"}}"},
        {"{\"job_name\":\"a\",\"metadata\":{\"k", "\":1}}"},
        {"{\"job_name\":\"a\",\"x", "\":1}"},
        {"{\"job_name\":\"a\"} ", ""},
    };
    char body[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
            (void)snprintf(body, sizeof(body), "%s%s%s", shapes[k].pre, bad[i], shapes[k].post);
            expect_refused(body, FM_EPARSE, NOT_UTF8);
        }
    /* cJSON decodes \u escapes: unpaired surrogates must not become bytes. */
    expect_refused("{\"job_name\":\"a\",\"args\":\"\\ud800\"}", FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":\"a\",\"args\":\"\\udc00\"}", FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":\"a\",\"args\":\"\\ud800\\u0041\"}", FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":\"a\",\"args\":\"\\ud800x\"}", FM_EPARSE, NOT_JSON);
    expect_refused("{\"job_name\":\"a\",\"metadata\":{\"\\udbff\":1}}", FM_EPARSE, NOT_JSON);
    expect_valid("{\"job_name\":\"a\",\"args\":\"\\ud83d\\ude00 caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
    expect_valid("{\"job_name\":\"a\",\"metadata\":{\"note\":\"\xe2\x82\xac\"}}");
    /* An unknown field's name is echoed cut to 64 bytes, never inside a UTF-8 sequence. */
    expect_invalid("{\"job_name\":\"a\",\"" STR63 "\xc3\xa9x\":1}", "unknown field \"" STR63 "\"");
    expect_invalid("{\"job_name\":\"a\",\"" STR63 "e\xc3\xa9\":1}", "unknown field \"" STR63 "e\"");
}
END_TEST

START_TEST(not_an_object)
{
    expect_invalid("[]", "request body must be a JSON object");
    expect_invalid("[{\"job_name\":\"a\"}]", "request body must be a JSON object");
    expect_invalid("\"job\"", "request body must be a JSON object");
    expect_invalid("42", "request body must be a JSON object");
    expect_invalid("null", "request body must be a JSON object");
}
END_TEST

START_TEST(job_name)
{
    char body[256], name[130];

    expect_invalid("{}", "job_name: is required");
    expect_invalid("{\"priority\":5}", "job_name: is required");
    expect_invalid("{\"job_name\":\"bad name\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":\"rm;-rf\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":\"../x\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":\".hidden\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":\"\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":\"a\\nb\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":\"caf\xc3\xa9\"}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":5}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":null}", ERR_JOB_NAME);
    expect_invalid("{\"job_name\":[\"a\"]}", ERR_JOB_NAME);

    memset(name, 'n', 129);
    name[129] = '\0';
    (void)snprintf(body, sizeof(body), "{\"job_name\":\"%s\"}", name);
    expect_invalid(body, ERR_JOB_NAME);
    name[128] = '\0';
    (void)snprintf(body, sizeof(body), "{\"job_name\":\"%s\"}", name);
    expect_valid(body);
}
END_TEST

START_TEST(priority)
{
    expect_invalid("{\"job_name\":\"a\",\"priority\":0}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":11}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":-1}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":2.5}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":\"5\"}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":true}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":null}", ERR_PRIORITY);
    expect_invalid("{\"job_name\":\"a\",\"priority\":1e300}", ERR_PRIORITY);
    expect_valid("{\"job_name\":\"a\",\"priority\":1}");
    expect_valid("{\"job_name\":\"a\",\"priority\":10}");
}
END_TEST

START_TEST(commit_id)
{
    expect_invalid("{\"job_name\":\"a\",\"commit_id\":\"" HEX40 "0\"}", ERR_COMMIT);
    expect_invalid("{\"job_name\":\"a\",\"commit_id\":\"0123456789abcdef0123456789abcdef0123456\"}",
                   ERR_COMMIT);
    expect_invalid(
        "{\"job_name\":\"a\",\"commit_id\":\"g123456789abcdef0123456789abcdef01234567\"}",
        ERR_COMMIT);
    expect_invalid("{\"job_name\":\"a\",\"commit_id\":\"\"}", ERR_COMMIT);
    expect_invalid("{\"job_name\":\"a\",\"commit_id\":123}", ERR_COMMIT);
    expect_valid("{\"job_name\":\"a\",\"commit_id\":\"" HEX40 "\"}");
}
END_TEST

START_TEST(unknown_and_duplicate_fields)
{
    char body[256], key[101];

    expect_invalid("{\"job_name\":\"a\",\"foo\":1}", "unknown field \"foo\"");
    expect_invalid("{\"job_name\":\"a\",\"status\":\"running\"}", "unknown field \"status\"");
    expect_invalid("{\"job_name\":\"a\",\"user\":\"admin\"}", "unknown field \"user\"");
    expect_invalid("{\"job_name\":\"a\",\"Job_Name\":\"b\"}", "unknown field \"Job_Name\"");
    /* A long name is cut in the message. */
    memset(key, 'k', 100);
    key[100] = '\0';
    (void)snprintf(body, sizeof(body), "{\"job_name\":\"a\",\"%s\":1}", key);
    key[64] = '\0';
    {
        char want[128];
        (void)snprintf(want, sizeof(want), "unknown field \"%s\"", key);
        expect_invalid(body, want);
    }
    expect_invalid("{\"job_name\":\"a\",\"job_name\":\"b\"}", "duplicate field");
    expect_invalid("{\"job_name\":\"a\",\"priority\":1,\"priority\":9}", "duplicate field");
}
END_TEST

START_TEST(datasets)
{
    char body[1024];
    size_t n;

    expect_invalid("{\"job_name\":\"a\",\"datasets\":\"imagenet\"}", ERR_DATASETS);
    expect_invalid("{\"job_name\":\"a\",\"datasets\":[1]}", ERR_DATASETS);
    expect_invalid("{\"job_name\":\"a\",\"datasets\":[\"a b\"]}", ERR_DATASETS);
    expect_invalid("{\"job_name\":\"a\",\"datasets\":[\"\"]}", ERR_DATASETS);

    n = (size_t)snprintf(body, sizeof(body), "{\"job_name\":\"a\",\"datasets\":[\"d\"");
    for (int i = 1; i < 64; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"d\"");
    (void)snprintf(body + n, sizeof(body) - n, "]}");
    expect_valid(body);
    (void)snprintf(body + n, sizeof(body) - n, ",\"d\"]}");
    expect_invalid(body, ERR_DATASETS);

    expect_valid("{\"job_name\":\"a\",\"datasets\":[\"imagenet\",\"s3:/bucket/set-1\"]}");
}
END_TEST

START_TEST(metadata)
{
    expect_invalid("{\"job_name\":\"a\",\"metadata\":{\"nested\":{\"x\":1}}}", ERR_METADATA);
    expect_invalid("{\"job_name\":\"a\",\"metadata\":{\"list\":[1]}}", ERR_METADATA);
    expect_invalid("{\"job_name\":\"a\",\"metadata\":{\"n\":null}}", ERR_METADATA);
    expect_invalid("{\"job_name\":\"a\",\"metadata\":[\"x\"]}", ERR_METADATA);
    expect_invalid("{\"job_name\":\"a\",\"metadata\":\"x\"}", ERR_METADATA);
    expect_invalid("{\"job_name\":\"a\",\"metadata\":{\"bad key\":1}}", ERR_METADATA);
    expect_valid("{\"job_name\":\"a\",\"metadata\":{\"seed\":42,\"note\":\"hi\",\"gpu\":true}}");
    expect_valid("{\"job_name\":\"a\",\"metadata\":{}}");
}
END_TEST

START_TEST(args_and_experiment)
{
    expect_invalid("{\"job_name\":\"a\",\"args\":5}", ERR_ARGS);
    expect_invalid("{\"job_name\":\"a\",\"args\":[\"--lr\",1]}", ERR_ARGS);
    expect_invalid("{\"job_name\":\"a\",\"args\":{\"lr\":1}}", ERR_ARGS);
    expect_valid("{\"job_name\":\"a\",\"args\":\"--lr 0.1\"}");
    expect_valid("{\"job_name\":\"a\",\"args\":[\"--lr\",\"0.1\"]}");

    expect_invalid("{\"job_name\":\"a\",\"experiment\":\".x\"}", ERR_EXPERIMENT);
    expect_invalid("{\"job_name\":\"a\",\"experiment\":\"a/b\"}", ERR_EXPERIMENT);
    expect_invalid("{\"job_name\":\"a\",\"experiment\":\"a:b\"}", ERR_EXPERIMENT);
    expect_valid("{\"job_name\":\"a\",\"experiment\":\"exp-1.v2\"}");
}
END_TEST

START_TEST(err_buffer_bounded)
{
    char err[8], id[FM_TASKS_ID_SIZE];
    cJSON *task;

    ck_assert_int_eq(fm_tasks_create(&st, "alice", "{}", 2, &task, id, NULL, err, sizeof(err)),
                     FM_EINVAL);
    ck_assert_str_eq(err, "job_nam");
}
END_TEST

START_TEST(get_and_list_without_redis)
{
    cJSON *t = (cJSON *)&t;
    long total = -1;

    /* Not a UUID: not found, without asking Redis. */
    ck_assert_int_eq(fm_tasks_get(&st, "alice", "not-a-uuid", &t), FM_ENOTFOUND);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(fm_redis_errstr(r), "");
    /* A UUID has to be looked up. */
    t = (cJSON *)&t;
    ck_assert_int_eq(fm_tasks_get(&st, "alice", "0b8a3f5e-3c1d-4e2a-9f00-123456789abc", &t),
                     FM_EREDIS);
    ck_assert_ptr_null(t);
    t = (cJSON *)&t;
    ck_assert_int_eq(fm_tasks_list(&st, "alice", NULL, 0, 50, 0, &t, &total, &next_off), FM_EREDIS);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(total, 0);
}
END_TEST

START_TEST(status_names)
{
    ck_assert(fm_tasks_status_valid("queued"));
    ck_assert(fm_tasks_status_valid("running"));
    ck_assert(fm_tasks_status_valid("completed"));
    ck_assert(fm_tasks_status_valid("failed"));
    ck_assert(fm_tasks_status_valid("cancelled"));
    ck_assert(!fm_tasks_status_valid("Queued"));
    ck_assert(!fm_tasks_status_valid("canceled"));
    ck_assert(!fm_tasks_status_valid("queued "));
    ck_assert(!fm_tasks_status_valid(""));
    ck_assert(!fm_tasks_status_valid("done"));
}
END_TEST

/* ---- with Redis ------------------------------------------------------------------ */

static void setup_up(void)
{
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    memset(&srv, 0, sizeof(srv));
    th_redis_start(&srv);
    r = fm_redis_new(srv.addr, NULL, srv.password, 0, 500);
    ck_assert_ptr_nonnull(r);
    st = (fm_tasks_store){.redis = r, .prefix = PREFIX, .lease_seconds = 60, .max_attempts = 3};
}

static void teardown_up(void)
{
    fm_redis_free(r);
    r = NULL;
    th_redis_stop(&srv);
}

static cJSON *create(const char *user, const char *body)
{
    char err[256] = "", id[FM_TASKS_ID_SIZE] = "";
    cJSON *task = NULL;
    int rc = fm_tasks_create(&st, user, body, strlen(body), &task, id, NULL, err, sizeof(err));

    ck_assert_msg(rc == FM_OK, "create %s: rc %d err \"%s\" redis \"%s\"", body, rc, err,
                  fm_redis_errstr(r));
    ck_assert_ptr_nonnull(task);
    /* The id handed back is the stored task's. */
    ck_assert_str_eq(id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id")));
    return task;
}

/* Creates, and checks that the answer is the task as stored (GET reads it back). */
static void create_matches_stored(const char *user, const char *body)
{
    cJSON *task = create(user, body), *stored = NULL;
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id"));

    ck_assert_int_eq(fm_tasks_get(&st, NULL, id, &stored), FM_OK);
    ck_assert_msg(cJSON_Compare(task, stored, 1), "create answered %s, stored is %s",
                  cJSON_PrintUnformatted(task), cJSON_PrintUnformatted(stored));
    cJSON_Delete(stored);
    cJSON_Delete(task);
}

/* Creates and returns the new id (copied into id, 37 bytes). */
static void create_id(const char *user, const char *body, char id[37])
{
    cJSON *t = create(user, body);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id"));

    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), 36);
    memcpy(id, s, 37);
    cJSON_Delete(t);
}

/* Runs a command and returns its string reply as a new string (NULL for nil). */
static char *string_command(int argc, const char **argv)
{
    redisReply *reply = fm_redis_argv(r, argc, argv, NULL);
    char *s = NULL;

    ck_assert_ptr_nonnull(reply);
    ck_assert_msg(reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL,
                  "reply type %d", reply->type);
    if (reply->type == REDIS_REPLY_STRING) {
        s = strndup(reply->str, reply->len);
        ck_assert_ptr_nonnull(s);
    }
    freeReplyObject(reply);
    return s;
}

static void expect_string_command(int argc, const char **argv, const char *want)
{
    char *s = string_command(argc, argv);

    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, want);
    free(s);
}

static const char *str_field(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));

    ck_assert_msg(s != NULL, "field %s is not a string", name);
    return s;
}

static void expect_null_field(const cJSON *o, const char *name)
{
    ck_assert_msg(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, name)), "field %s not null",
                  name);
}

static int is_uuid_v4(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx";

    if (strlen(s) != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if ((shape[i] == '-' && c != '-') || (shape[i] == '4' && c != '4') ||
            (shape[i] == 'V' && strchr("89ab", c) == NULL) || (shape[i] == 'x' && !hex))
            return 0;
    }
    return 1;
}

/* The API's task: these fields, in this order (tasks.h). */
static const char *const task_fields[] = {
    "id",         "job_name",         "args",       "status",    "priority",
    "user",       "commit_id",        "experiment", "datasets",  "metadata",
    "created_at", "started_at",       "ended_at",   "worker_id", "error",
    "attempts",   "lease_expires_at", "progress",   "metrics",   "cancel_requested"};

static void expect_task_shape(const cJSON *t)
{
    const cJSON *f = t->child;

    for (size_t i = 0; i < sizeof(task_fields) / sizeof(task_fields[0]); i++, f = f->next) {
        ck_assert_msg(f != NULL, "task ends before %s", task_fields[i]);
        ck_assert_str_eq(f->string, task_fields[i]);
    }
    ck_assert_ptr_null(f);
}

START_TEST(create_full_record)
{
    cJSON *t = create("alice", "{\"job_name\":\"train:resnet\",\"args\":[\"--lr\",\"0.1\"],"
                               "\"priority\":7,\"commit_id\":\"" HEX40 "\","
                               "\"experiment\":\"exp-1\",\"datasets\":[\"imagenet\"],"
                               "\"metadata\":{\"seed\":42,\"note\":\"hi\",\"gpu\":true}}");
    cJSON *want_args = cJSON_Parse("[\"--lr\",\"0.1\"]");
    cJSON *want_meta = cJSON_Parse("{\"seed\":42,\"note\":\"hi\",\"gpu\":true}");
    int64_t created;
    time_t now = time(NULL);

    expect_task_shape(t);
    ck_assert_msg(is_uuid_v4(str_field(t, "id")), "id \"%s\"", str_field(t, "id"));
    ck_assert_str_eq(str_field(t, "job_name"), "train:resnet");
    ck_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(t, "args"), want_args, 1));
    ck_assert_str_eq(str_field(t, "status"), "queued");
    ck_assert_int_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "priority")), 7);
    ck_assert_str_eq(str_field(t, "user"), "alice");
    ck_assert_str_eq(str_field(t, "commit_id"), HEX40);
    ck_assert_str_eq(str_field(t, "experiment"), "exp-1");
    ck_assert_str_eq(cJSON_GetStringValue(
                         cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "datasets"), 0)),
                     "imagenet");
    ck_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(t, "metadata"), want_meta, 1));
    ck_assert_int_eq(fm_clock_parse_rfc3339(str_field(t, "created_at"), &created), 0);
    ck_assert_uint_eq(strlen(str_field(t, "created_at")), 24); /* with ms */
    ck_assert_int_ge(created, (int64_t)now - 5);
    ck_assert_int_le(created, (int64_t)now + 5);
    expect_null_field(t, "started_at");
    expect_null_field(t, "ended_at");
    expect_null_field(t, "worker_id");
    expect_null_field(t, "error");
    ck_assert_int_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "attempts")), 0);
    expect_null_field(t, "lease_expires_at");
    expect_null_field(t, "progress");
    expect_null_field(t, "metrics");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(t, "cancel_requested")));
    cJSON_Delete(want_args);
    cJSON_Delete(want_meta);
    cJSON_Delete(t);
}
END_TEST

/* The create script builds its answer from what it wrote; it is exactly what a GET reads back. */
START_TEST(create_answer_is_the_stored_task)
{
    create_matches_stored("alice", "{\"job_name\":\"x\"}");
    create_matches_stored("bob", "{\"job_name\":\"train:resnet\",\"args\":[\"--lr\",\"0.1\"],"
                                 "\"priority\":9,\"experiment\":\"e\",\"datasets\":[\"d\"],"
                                 "\"metadata\":{\"seed\":42}}");
    create_matches_stored("alice", "{\"job_name\":\"y\",\"priority\":1}");
}
END_TEST

START_TEST(create_defaults)
{
    cJSON *t = create("bob", "{\"job_name\":\"x\"}");

    ck_assert_int_eq(cJSON_GetArraySize(t), 20);
    ck_assert_int_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "priority")), 5);
    ck_assert_str_eq(str_field(t, "user"), "bob");
    expect_null_field(t, "args");
    expect_null_field(t, "commit_id");
    expect_null_field(t, "experiment");
    expect_null_field(t, "datasets");
    expect_null_field(t, "metadata");
    cJSON_Delete(t);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The task's hash as "field=value ..." sorted by field, spec shown as "*" ("" when gone),
 * without rev (every change and every restore raises it: see rev_of).
 */
static void hash_text(const char *id, char out[HASH_TEXT_MAX])
{
    char key[128], *pairs[32];
    const char *argv[] = {"HGETALL", key};
    redisReply *reply;
    size_t n = 0;

    (void)snprintf(key, sizeof(key), PREFIX "task:%s", id);
    reply = th_redis_cmd(r, 2, argv);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *v = reply->element[i + 1]->str;

        if (strcmp(reply->element[i]->str, "rev") == 0)
            continue;
        ck_assert_uint_lt(n, 32);
        ck_assert_int_ge(asprintf(&pairs[n++], "%s=%s", reply->element[i]->str,
                                  strcmp(reply->element[i]->str, "spec") == 0 ? "*" : v),
                         0);
    }
    freeReplyObject(reply);
    qsort(pairs, n, sizeof(pairs[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(out);

        ck_assert_int_lt(snprintf(out + used, HASH_TEXT_MAX - used, "%s%s", i ? " " : "", pairs[i]),
                         (int)(HASH_TEXT_MAX - used));
        free(pairs[i]);
    }
}

static void expect_hash(const char *id, const char *want)
{
    char got[HASH_TEXT_MAX];

    hash_text(id, got);
    ck_assert_str_eq(got, want);
}

/* The score of id in P<key> as text, or NULL. */
static char *zscore(const char *key, const char *id)
{
    char k[128];
    const char *argv[] = {"ZSCORE", k, id};

    (void)snprintf(k, sizeof(k), PREFIX "%s", key);
    return string_command(3, argv);
}

static void expect_zscore(const char *key, const char *id, const char *want)
{
    char *got = zscore(key, id);

    if (want == NULL)
        ck_assert_msg(got == NULL, "%s holds %s (score %s)", key, id, got);
    else
        ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s: score of %s is %s, not %s", key,
                      id, got != NULL ? got : "(none)", want);
    free(got);
}

/*
 * Every trace of a task, as text: its hash and its score in every index of
 * the layout (alice's and bob's), so that a restore can be compared with the
 * state before.
 */
static void task_state(const char *id, char out[STATE_TEXT_MAX])
{
    static const char *const indexes[] = {"queue",
                                          "leases",
                                          "tasks",
                                          "user:alice:tasks",
                                          "user:bob:tasks",
                                          "status:queued",
                                          "status:running",
                                          "status:completed",
                                          "status:failed",
                                          "status:cancelled",
                                          "user:alice:status:queued",
                                          "user:alice:status:running",
                                          "user:alice:status:completed",
                                          "user:alice:status:failed",
                                          "user:alice:status:cancelled",
                                          "user:bob:status:queued",
                                          "user:bob:status:running"};
    size_t used;

    hash_text(id, out);
    for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
        char *s = zscore(indexes[i], id);

        used = strlen(out);
        if (s != NULL)
            ck_assert_int_lt(snprintf(out + used, STATE_TEXT_MAX - used, " %s:%s", indexes[i], s),
                             (int)(STATE_TEXT_MAX - used));
        free(s);
    }
}

/* Claims as worker and checks that the task claimed is want (an id), or that none is (NULL). */
static cJSON *claim_expect(const char *worker, const char *want)
{
    cJSON *t = (cJSON *)&t;
    char *before = (char *)&before;
    fm_err rc = fm_tasks_claim(&st, worker, &t, &before);

    if (want == NULL) {
        ck_assert_int_eq(rc, FM_ENOTFOUND);
        ck_assert_ptr_null(t);
        ck_assert_ptr_null(before);
        return NULL;
    }
    ck_assert_msg(rc == FM_OK, "claim: rc %d %s", rc, fm_redis_errstr(r));
    ck_assert_str_eq(str_field(t, "id"), want);
    ck_assert_ptr_nonnull(before);
    free(before);
    return t;
}

static void claim_id(const char *worker, const char *want)
{
    cJSON_Delete(claim_expect(worker, want));
}

/* Sets the lease of running task id to have expired a second ago (hash and P leases). */
static void expire_lease(const char *id)
{
    char key[128];
    const char *t[] = {"TIME"};
    redisReply *now = th_redis_cmd(r, 1, t);
    char ms[32];

    (void)snprintf(ms, sizeof(ms), "%lld", strtoll(now->element[0]->str, NULL, 10) * 1000 - 1000);
    freeReplyObject(now);
    (void)snprintf(key, sizeof(key), PREFIX "task:%s", id);
    {
        const char *hset[] = {"HSET", key, "lease_ms", ms};
        const char *zadd[] = {"ZADD", PREFIX "leases", ms, id};
        freeReplyObject(th_redis_cmd(r, 4, hset));
        freeReplyObject(th_redis_cmd(r, 4, zadd));
    }
}

static double num_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    ck_assert_msg(cJSON_IsNumber(v), "field %s is not a number", name);
    return v->valuedouble;
}

/* Milliseconds of an RFC 3339 time with ms ("...T12:00:00.123Z"). */
static int64_t time_ms(const char *s)
{
    int64_t secs;

    ck_assert_uint_eq(strlen(s), 24);
    ck_assert_int_eq(fm_clock_parse_rfc3339(s, &secs), 0);
    return secs * 1000 + strtol(s + 20, NULL, 10);
}

START_TEST(stored_under_prefix)
{
    cJSON *t = create("alice", "{\"job_name\":\"a\",\"priority\":7,\"datasets\":[]}");
    const char *id = str_field(t, "id");
    char k_task[128], *spec;
    const char *seq[] = {"GET", PREFIX "task_seq"};
    const char *spec_get[] = {"HGET", k_task, "spec"};
    const char *keys[] = {"KEYS", "*"};
    redisReply *reply;

    (void)snprintf(k_task, sizeof(k_task), PREFIX "task:%s", id);
    /* The spec is the immutable fields as JSON text, an empty array kept as one. */
    spec = string_command(3, spec_get);
    ck_assert_ptr_nonnull(spec);
    ck_assert_ptr_nonnull(strstr(spec, "\"datasets\":[]"));
    ck_assert_ptr_null(strstr(spec, "\"status\""));
    free(spec);
    expect_hash(id, "attempts=0 priority=7 seq=1 spec=* status=queued user=alice");

    expect_string_command(2, seq, "1");
    /* (10 - 7) * 1e12 + seq 1 */
    expect_zscore("queue", id, "3000000000001");
    expect_zscore("tasks", id, "1");
    expect_zscore("user:alice:tasks", id, "1");
    expect_zscore("status:queued", id, "1");
    expect_zscore("user:alice:status:queued", id, "1");

    /* Nothing outside the prefix, and exactly these seven keys and the journal. */
    reply = fm_redis_argv(r, 2, keys, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(reply->elements, 8);
    for (size_t i = 0; i < reply->elements; i++)
        ck_assert_msg(strncmp(reply->element[i]->str, PREFIX, strlen(PREFIX)) == 0, "key %s",
                      reply->element[i]->str);
    freeReplyObject(reply);
    cJSON_Delete(t);
}
END_TEST

/* The queue's ids in order, as one space-separated string. */
static void queue_is(const char *want)
{
    const char *zr[] = {"ZRANGE", PREFIX "queue", "0", "-1"};
    redisReply *reply = fm_redis_argv(r, 4, zr, NULL);
    char got[512] = "";

    ck_assert_ptr_nonnull(reply);
    for (size_t i = 0; i < reply->elements; i++)
        (void)snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
                       reply->element[i]->str);
    freeReplyObject(reply);
    ck_assert_str_eq(got, want);
}

START_TEST(cancel_delete_and_undo)
{
    char a[37], b[37], c[37], want[256];
    char *before = NULL;
    cJSON *t = NULL;

    create_id("alice", "{\"job_name\":\"a\",\"datasets\":[]}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    create_id("bob", "{\"job_name\":\"c\"}", c);

    /* Others' tasks are not found; admins (NULL) see all. */
    ck_assert_int_eq(fm_tasks_cancel(&st, "bob", a, &t, &before), FM_ENOTFOUND);
    ck_assert_ptr_null(before);
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", a, &t, &before), FM_OK);
    ck_assert_str_eq(str_field(t, "status"), "cancelled");
    ck_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t, "datasets")));
    ck_assert_ptr_nonnull(before);
    cJSON_Delete(t);
    (void)snprintf(want, sizeof(want), "%s %s", b, c);
    queue_is(want);
    /* Cancelled already: a conflict, and no undo token. */
    char *again = NULL;
    ck_assert_int_eq(fm_tasks_cancel(&st, NULL, a, &t, &again), FM_ECONFLICT);
    ck_assert_ptr_null(again);
    cJSON_Delete(t);

    /* Undo of the cancel: queued again, in its original place (before b). */
    char *undo = NULL;
    ck_assert_int_eq(fm_tasks_cancel(&st, NULL, b, &t, &undo), FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_restore(&st, b, undo), FM_OK);
    free(undo);
    ck_assert_int_eq(fm_tasks_restore(&st, a, before), FM_OK);
    free(before);
    (void)snprintf(want, sizeof(want), "%s %s %s", a, b, c);
    queue_is(want);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", a, &t), FM_OK);
    ck_assert_str_eq(str_field(t, "status"), "queued");
    cJSON_Delete(t);

    /* Delete (answering the task as it was), then undo: the record and its index entries come back.
     */
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", b, &t, &before), FM_OK);
    ck_assert_str_eq(str_field(t, "id"), b);
    ck_assert_str_eq(str_field(t, "status"), "queued");
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, b, &t), FM_ENOTFOUND);
    (void)snprintf(want, sizeof(want), "%s %s", a, c);
    queue_is(want);
    ck_assert_int_eq(fm_tasks_restore(&st, b, before), FM_OK);
    free(before);
    (void)snprintf(want, sizeof(want), "%s %s %s", a, b, c);
    queue_is(want);

    /* Undo of a create (NULL): gone from the record and every index. */
    ck_assert_int_eq(fm_tasks_restore(&st, c, NULL), FM_OK);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, c, &t), FM_ENOTFOUND);
    (void)snprintf(want, sizeof(want), "%s %s", a, b);
    queue_is(want);
    ck_assert_int_eq(fm_tasks_restore(&st, "not-a-uuid", NULL), FM_ENOTFOUND);
}
END_TEST

/* The number of keys in the database. */
static long long key_count(void)
{
    const char *dbsize[] = {"DBSIZE"};
    redisReply *reply = fm_redis_argv(r, 1, dbsize, NULL);
    long long n;

    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    n = reply->integer;
    freeReplyObject(reply);
    return n;
}

/*
 * Keys are built in FM_REDIS_KEY_MAX bytes, which the config's bounds fit (a
 * 64-byte prefix, a 63-byte user name). Past them, a key is refused
 * (FM_EINVAL), never cut to a shorter key that could name another's data.
 */
START_TEST(keys_too_long)
{
    char prefix[241], longest[65], user[64], huge_user[151], err[256] = "", id[37];
    const char *body = "{\"job_name\":\"a\"}";
    cJSON *t = NULL;
    char *before = NULL;
    long total = -1;

    memset(longest, 'p', 64);
    longest[64] = '\0';
    memset(user, 'u', 63);
    user[63] = '\0';
    ck_assert_int_eq(
        fm_tasks_create(STORE(longest), user, body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_OK);
    ck_assert_str_eq(id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id")));
    cJSON_Delete(t);
    ck_assert_int_eq(key_count(), 8);
    ck_assert_int_eq(fm_tasks_delete(STORE(longest), user, id, NULL, &before), FM_OK);
    free(before);
    before = NULL;
    ck_assert_int_eq(key_count(), 2); /* task_seq, journal (nothing settled here) */

    memset(prefix, 'p', 240);
    prefix[240] = '\0';
    t = (cJSON *)&t;
    ck_assert_int_eq(
        fm_tasks_create(STORE(prefix), "alice", body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, "key prefix or user name too long for a Redis key");
    memset(huge_user, 'u', 150);
    huge_user[150] = '\0';
    ck_assert_int_eq(
        fm_tasks_create(&st, huge_user, body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_EINVAL);
    ck_assert_int_eq(key_count(), 2); /* nothing written under a cut name */

    ck_assert_int_eq(fm_tasks_get(STORE(prefix), NULL, id, &t), FM_EINVAL);
    ck_assert_int_eq(fm_tasks_list(STORE(prefix), NULL, NULL, 0, 50, 0, &t, &total, &next_off),
                     FM_EINVAL);
    ck_assert_int_eq(fm_tasks_list(&st, huge_user, NULL, 0, 50, 0, &t, &total, &next_off),
                     FM_EINVAL);
    ck_assert_int_eq(fm_tasks_cancel(STORE(prefix), NULL, id, &t, &before), FM_EINVAL);
    ck_assert_int_eq(fm_tasks_delete(STORE(prefix), NULL, id, NULL, &before), FM_EINVAL);
    ck_assert_int_eq(fm_tasks_restore(STORE(prefix), id, NULL), FM_EINVAL);
    ck_assert_ptr_null(before);
}
END_TEST

START_TEST(queue_order)
{
    char a[37], b[37], c[37], d[37], e[37];
    const char *zr[] = {"ZRANGE", PREFIX "queue", "0", "-1"};
    const char *want[5];
    redisReply *reply;

    create_id("alice", "{\"job_name\":\"a\",\"priority\":1}", a);
    create_id("bob", "{\"job_name\":\"b\",\"priority\":9}", b);
    create_id("alice", "{\"job_name\":\"c\"}", c);
    create_id("alice", "{\"job_name\":\"d\",\"priority\":9}", d);
    create_id("bob", "{\"job_name\":\"e\",\"priority\":1}", e);
    want[0] = b;
    want[1] = d;
    want[2] = c;
    want[3] = a;
    want[4] = e;

    reply = fm_redis_argv(r, 4, zr, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(reply->elements, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(reply->element[i]->str, want[i]);
    freeReplyObject(reply);
}
END_TEST

START_TEST(get_visibility)
{
    cJSON *t = create("alice", "{\"job_name\":\"a\"}");
    char id[37], upper[37];
    cJSON *got = NULL;

    memcpy(id, str_field(t, "id"), 37);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", id, &got), FM_OK);
    ck_assert(cJSON_Compare(got, t, 1));
    cJSON_Delete(got);

    /* Admin view. */
    ck_assert_int_eq(fm_tasks_get(&st, NULL, id, &got), FM_OK);
    ck_assert(cJSON_Compare(got, t, 1));
    cJSON_Delete(got);

    /* Someone else's task does not exist for bob. */
    got = (cJSON *)&got;
    ck_assert_int_eq(fm_tasks_get(&st, "bob", id, &got), FM_ENOTFOUND);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(fm_tasks_get(&st, "alicex", id, &got), FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_get(&st, "ALICE", id, &got), FM_ENOTFOUND);

    /* Other prefixes are other stores. */
    ck_assert_int_eq(fm_tasks_get(STORE("other:"), "alice", id, &got), FM_ENOTFOUND);

    /* Not UUIDs. */
    for (size_t i = 0; i < 36; i++)
        upper[i] = (id[i] >= 'a' && id[i] <= 'f') ? (char)(id[i] - 'a' + 'A') : id[i];
    upper[36] = '\0';
    if (strcmp(upper, id) != 0)
        ck_assert_int_eq(fm_tasks_get(&st, "alice", upper, &got), FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", "", &got), FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", "not-a-uuid", &got), FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", "*", &got), FM_ENOTFOUND);
    {
        char longer[40];
        (void)snprintf(longer, sizeof(longer), "%s0", id);
        ck_assert_int_eq(fm_tasks_get(&st, "alice", longer, &got), FM_ENOTFOUND);
        longer[35] = '\0';
        ck_assert_int_eq(fm_tasks_get(&st, "alice", longer, &got), FM_ENOTFOUND);
    }
    /* A UUID that was never created. */
    ck_assert_int_eq(fm_tasks_get(&st, "alice", "00000000-0000-4000-8000-000000000000", &got),
                     FM_ENOTFOUND);
    ck_assert_ptr_null(got);
    cJSON_Delete(t);
}
END_TEST

START_TEST(get_corrupt_record)
{
    const char *set[] = {"SET", PREFIX "task:11111111-2222-4333-8444-555555555555", "not json"};
    const char *set2[] = {"SET", PREFIX "task:11111111-2222-4333-8444-666666666666", "[1,2]"};
    cJSON *got = (cJSON *)&got;
    redisReply *reply;

    reply = fm_redis_argv(r, 3, set, NULL);
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
    reply = fm_redis_argv(r, 3, set2, NULL);
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, "11111111-2222-4333-8444-555555555555", &got),
                     FM_ENOTFOUND);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, "11111111-2222-4333-8444-666666666666", &got),
                     FM_ENOTFOUND);
    /* A hash without a spec, or whose spec is not a JSON object. */
    {
        const char *h1[] = {"HSET", PREFIX "task:11111111-2222-4333-8444-777777777777", "status",
                            "queued"};
        const char *h2[] = {"HSET", PREFIX "task:11111111-2222-4333-8444-888888888888", "spec",
                            "[1]"};
        freeReplyObject(th_redis_cmd(r, 4, h1));
        freeReplyObject(th_redis_cmd(r, 4, h2));
    }
    ck_assert_int_eq(fm_tasks_get(&st, NULL, "11111111-2222-4333-8444-777777777777", &got),
                     FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, "11111111-2222-4333-8444-888888888888", &got),
                     FM_ENOTFOUND);
    ck_assert_ptr_null(got);
}
END_TEST

/* Lists and checks the total and the exact ids in order. */
static void expect_list(const char *user, const char *status, long offset, long limit,
                        long want_total, size_t nwant, const char *const *want)
{
    cJSON *tasks = NULL;
    long total = -1;
    int rc = fm_tasks_list(&st, user, status, offset, limit, 0, &tasks, &total, &next_off);

    ck_assert_msg(rc == FM_OK, "list rc %d: %s", rc, fm_redis_errstr(r));
    ck_assert(cJSON_IsArray(tasks));
    ck_assert_int_eq(total, want_total);
    ck_assert_int_eq(cJSON_GetArraySize(tasks), (int)nwant);
    for (size_t i = 0; i < nwant; i++) {
        const cJSON *t = cJSON_GetArrayItem(tasks, (int)i);
        ck_assert_str_eq(str_field(t, "id"), want[i]);
        if (user != NULL)
            ck_assert_str_eq(str_field(t, "user"), user);
        if (status != NULL)
            ck_assert_str_eq(str_field(t, "status"), status);
    }
    cJSON_Delete(tasks);
}

START_TEST(list_filters_and_pages)
{
    char a0[37], a1[37], a2[37], a3[37], a4[37], b0[37], b1[37];

    create_id("alice", "{\"job_name\":\"a0\"}", a0);
    create_id("bob", "{\"job_name\":\"b0\"}", b0);
    create_id("alice", "{\"job_name\":\"a1\",\"priority\":9}", a1);
    create_id("alice", "{\"job_name\":\"a2\"}", a2);
    create_id("bob", "{\"job_name\":\"b1\"}", b1);
    create_id("alice", "{\"job_name\":\"a3\"}", a3);
    create_id("alice", "{\"job_name\":\"a4\"}", a4);
    claim_id("w", a1);

    {
        const char *want[] = {a4, a3, a2, a1, a0};
        expect_list("alice", NULL, 0, 50, 5, 5, want);
    }
    {
        const char *want[] = {a3, a2};
        expect_list("alice", NULL, 1, 2, 5, 2, want);
    }
    {
        const char *want[] = {a0};
        expect_list("alice", NULL, 4, 10, 5, 1, want);
    }
    expect_list("alice", NULL, 10, 50, 5, 0, NULL);
    {
        const char *want[] = {a1};
        expect_list("alice", "running", 0, 50, 1, 1, want);
    }
    {
        const char *want[] = {a3, a2};
        expect_list("alice", "queued", 1, 2, 4, 2, want);
    }
    {
        const char *want[] = {a4};
        expect_list("alice", "queued", 0, 1, 4, 1, want);
    }
    expect_list("alice", "completed", 0, 50, 0, 0, NULL);
    expect_list("alice", "queued", 10, 50, 4, 0, NULL);
    {
        const char *want[] = {b1, b0};
        expect_list("bob", NULL, 0, 50, 2, 2, want);
    }
    expect_list("carol", NULL, 0, 50, 0, 0, NULL);
    {
        const char *want[] = {a4, a3, b1, a2, a1, b0, a0};
        expect_list(NULL, NULL, 0, FM_TASKS_LIST_MAX, 7, 7, want);
    }
    {
        const char *want[] = {b1, a2};
        expect_list(NULL, NULL, 2, 2, 7, 2, want);
    }
    {
        const char *want[] = {a4, a3, b1, a2, b0, a0};
        expect_list(NULL, "queued", 0, 50, 6, 6, want);
    }
}
END_TEST

START_TEST(redis_goes_down)
{
    char id[37];
    cJSON *t = (cJSON *)&t;
    long total = -1;
    char err[64] = "";

    create_id("alice", "{\"job_name\":\"a\"}", id);
    th_redis_kill(&srv);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", id, &t), FM_EREDIS);
    ck_assert_ptr_null(t);
    t = (cJSON *)&t;
    ck_assert_int_eq(fm_tasks_list(&st, "alice", NULL, 0, 50, 0, &t, &total, &next_off), FM_EREDIS);
    ck_assert_ptr_null(t);
    t = (cJSON *)&t;
    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", "{\"job_name\":\"a\"}", 16, &t, id, NULL, err, sizeof(err)),
        FM_EREDIS);
    ck_assert_ptr_null(t);
}
END_TEST

/* INFO stats total_reads_processed: each request read from a client, so each round trip. */
static long long reads_processed(void)
{
    const char *info[] = {"INFO", "stats"};
    redisReply *reply = th_redis_cmd(r, 2, info);
    const char *at = strstr(reply->str, "total_reads_processed:");
    long long n;

    ck_assert_ptr_nonnull(at);
    n = strtoll(at + strlen("total_reads_processed:"), NULL, 10);
    freeReplyObject(reply);
    return n;
}

/* Round trips since the last call (the INFO that counts them is not one). */
static long long round_trips(void)
{
    static long long last;
    long long now = reads_processed(), n = now - last - 1;

    last = now;
    return n;
}

/*
 * Get, create, claim, heartbeat, complete, cancel, delete and restore: one
 * round trip each (scripts loaded already), and never a transaction.
 */
START_TEST(one_round_trip_each)
{
    static const char *const tx[] = {"watch", "multi", "exec", "discard"};
    char a[37], b[37], *before;
    cJSON *t;

    /* Load every script once. */
    create_id("alice", "{\"job_name\":\"a\"}", a);
    claim_id("w", a);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w", a, -1, NULL, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_complete(&st, "w", a, "completed", NULL, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_cancel(&st, NULL, a, &t, &before), FM_ECONFLICT);
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_delete(&st, NULL, a, NULL, &before), FM_OK);
    ck_assert_int_eq(fm_tasks_restore(&st, a, before), FM_OK);
    free(before);

    (void)round_trips();
    create_id("alice", "{\"job_name\":\"b\"}", b);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_get(&st, "alice", b, &t), FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(round_trips(), 1);
    claim_id("w", b);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w", b, 50, "{\"loss\":0.5}", &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", b, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_complete(&st, "w", b, "cancelled", NULL, &t, &before), FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_restore(&st, b, before), FM_OK);
    free(before);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", a, NULL, &before), FM_OK);
    free(before);
    ck_assert_int_eq(round_trips(), 1);
    ck_assert_int_eq(fm_tasks_restore(&st, b, NULL), FM_ECONFLICT); /* b changed since */
    ck_assert_int_eq(round_trips(), 1);
    for (size_t i = 0; i < sizeof(tx) / sizeof(tx[0]); i++)
        ck_assert_msg(th_redis_calls(r, tx[i]) == 0, "%s was called", tx[i]);
}
END_TEST

START_TEST(quota)
{
    char a[37], b[37], c[37], err[256] = "", id[37];
    const char *body = "{\"job_name\":\"x\"}";
    cJSON *t = (cJSON *)&t;
    char *before;

    st.max_open_tasks = 2;
    create_id("alice", body, a);
    create_id("alice", body, b);
    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_EQUOTA);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, "2 queued or running tasks already (limits.max_open_tasks)");
    /* Per user. */
    create_id("bob", body, c);
    /* Running counts too; an ended task frees its place. */
    claim_id("w", a);
    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_EQUOTA);
    ck_assert_int_eq(fm_tasks_complete(&st, "w", a, "completed", NULL, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    create_id("alice", body, c);
    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_EQUOTA);
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", b, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    create_id("alice", body, b);
    /* 0: no limit. */
    st.max_open_tasks = 0;
    create_id("alice", body, a);
}
END_TEST

START_TEST(too_big)
{
    char body[4096], err[256] = "", id[37];
    cJSON *t = (cJSON *)&t;
    long long keys;
    int n;

    /* Room for the lifecycle fields, the owner and about 1000 bytes of spec. */
    st.max_task_bytes = FM_TASKS_LIFECYCLE_BYTES + 5 + 1000;
    create_id("alice", "{\"job_name\":\"small\"}", id);
    keys = key_count();
    n = snprintf(body, sizeof(body), "{\"job_name\":\"big\",\"args\":\"%01000d\"}", 0);
    ck_assert_int_lt(n, (int)sizeof(body));
    ck_assert_int_eq(fm_tasks_create(&st, "alice", body, (size_t)n, &t, id, NULL, err, sizeof(err)),
                     FM_ETOOBIG);
    ck_assert_ptr_null(t);
    {
        char want[128];
        (void)snprintf(want, sizeof(want), "task record over %zu bytes (limits.max_task_bytes)",
                       st.max_task_bytes);
        ck_assert_str_eq(err, want);
    }
    ck_assert_int_eq(key_count(), keys);
    st.max_task_bytes = 0;
    create_id("alice", body, id);
}
END_TEST

/* Redis full (maxmemory, noeviction): a clean FM_EREDIS, and nothing written, not even seq. */
START_TEST(redis_full)
{
    char id[37], err[256] = "";
    const char *full[] = {"CONFIG", "SET", "maxmemory", "1"};
    const char *room[] = {"CONFIG", "SET", "maxmemory", "0"};
    const char *seq[] = {"GET", PREFIX "task_seq"};
    const char *body = "{\"job_name\":\"x\"}";
    cJSON *t = (cJSON *)&t;
    long long keys;

    create_id("alice", body, id);
    keys = key_count();
    freeReplyObject(th_redis_cmd(r, 4, full));
    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, id, NULL, err, sizeof(err)),
        FM_EREDIS);
    ck_assert_ptr_null(t);
    /* Reads still work. */
    ck_assert_int_eq(fm_tasks_get(&st, "alice", id, &t), FM_OK);
    cJSON_Delete(t);
    freeReplyObject(th_redis_cmd(r, 4, room));
    ck_assert_int_eq(key_count(), keys);
    expect_string_command(2, seq, "1");
    create_id("alice", body, id);

    /*
     * Only a create is refused: what changes, moves or removes tasks runs
     * (allow-oom), so workers finish theirs and users free memory by deleting.
     */
    {
        char other[37], *before;

        create_id("alice", body, other);
        freeReplyObject(th_redis_cmd(r, 4, full));
        ck_assert_int_eq(fm_tasks_claim(&st, "w", &t, &before), FM_OK);
        (void)snprintf(id, sizeof(id), "%s", str_field(t, "id"));
        cJSON_Delete(t);
        free(before);
        ck_assert_int_eq(fm_tasks_heartbeat(&st, "w", id, 10, NULL, &t, &before), FM_OK);
        cJSON_Delete(t);
        free(before);
        ck_assert_int_eq(fm_tasks_complete(&st, "w", id, "completed", NULL, &t, &before), FM_OK);
        cJSON_Delete(t);
        free(before);
        ck_assert_int_eq(fm_tasks_cancel(&st, "alice", other, &t, &before), FM_OK);
        cJSON_Delete(t);
        ck_assert_int_eq(fm_tasks_restore(&st, other, before), FM_OK);
        free(before);
        ck_assert_int_eq(fm_tasks_delete(&st, "alice", other, NULL, &before), FM_OK);
        free(before);
        ck_assert_int_eq(
            fm_tasks_create(&st, "alice", body, strlen(body), &t, other, NULL, err, sizeof(err)),
            FM_EREDIS);
        freeReplyObject(th_redis_cmd(r, 4, room));
    }
}
END_TEST

START_TEST(claim_order_and_fields)
{
    char a[37], b[37], c[37], d[37], e[37];
    const char *stale[] = {"ZADD", PREFIX "queue", "0", "00000000-0000-4000-8000-000000000000"};
    cJSON *t;
    int64_t now = fm_clock_now_ms(), lease;

    create_id("alice", "{\"job_name\":\"a\",\"priority\":1}", a);
    create_id("bob", "{\"job_name\":\"b\",\"priority\":9}", b);
    create_id("alice", "{\"job_name\":\"c\"}", c);
    create_id("alice", "{\"job_name\":\"d\",\"priority\":9}", d);
    create_id("bob", "{\"job_name\":\"e\"}", e);
    /* An entry whose record is gone (an operator's DEL) is skipped, and dropped. */
    freeReplyObject(th_redis_cmd(r, 4, stale));

    t = claim_expect("bob/gpu-1", b);
    expect_task_shape(t);
    ck_assert_str_eq(str_field(t, "status"), "running");
    ck_assert_str_eq(str_field(t, "worker_id"), "bob/gpu-1");
    ck_assert_int_eq(num_field(t, "attempts"), 1);
    ck_assert_int_ge(time_ms(str_field(t, "started_at")), now - 2000);
    lease = time_ms(str_field(t, "lease_expires_at"));
    ck_assert_int_ge(lease, now + 60000 - 2000);
    ck_assert_int_le(lease, now + 60000 + 2000);
    expect_null_field(t, "ended_at");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(t, "cancel_requested")));
    cJSON_Delete(t);
    expect_zscore("queue", "00000000-0000-4000-8000-000000000000", NULL);
    expect_zscore("queue", b, NULL);
    expect_zscore("status:queued", b, NULL);
    expect_zscore("status:running", b, "2");
    expect_zscore("user:bob:status:running", b, "2");
    {
        char ms[32];
        (void)snprintf(ms, sizeof(ms), "%lld", (long long)lease);
        expect_zscore("leases", b, ms);
    }

    claim_id("w", d);
    claim_id("w", c);
    claim_id("w", e);
    claim_id("w", a);
    (void)claim_expect("w", NULL);
    {
        cJSON *x = (cJSON *)&x;
        char *before = (char *)&before;
        char worker[FM_WORKER_ID_MAX + 1];

        memset(worker, 'w', FM_WORKER_ID_MAX);
        worker[FM_WORKER_ID_MAX] = '\0';
        ck_assert_int_eq(fm_tasks_claim(&st, worker, &x, &before), FM_EINVAL);
        ck_assert_int_eq(fm_tasks_claim(&st, "", &x, &before), FM_EINVAL);
        ck_assert_ptr_null(x);
        ck_assert_ptr_null(before);
    }
}
END_TEST

#define CLAIMERS 4
#define CLAIM_TASKS 200

/* A claimer process: its own connection; writes each id it claims to fd. */
__attribute__((noreturn)) static void claimer(int fd)
{
    fm_redis *mine = fm_redis_new(srv.addr, NULL, srv.password, 0, 5000);
    fm_tasks_store s = st;
    fm_err rc;

    if (mine == NULL)
        _exit(2);
    s.redis = mine;
    for (;;) {
        cJSON *t = NULL;
        char *before = NULL;

        rc = fm_tasks_claim(&s, "w", &t, &before);
        if (rc != FM_OK)
            break;
        if (write(fd, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id")), 36) != 36)
            _exit(3);
        cJSON_Delete(t);
        free(before);
    }
    fm_redis_free(mine);
    _exit(rc == FM_ENOTFOUND ? 0 : 4);
}

START_TEST(concurrent_claim_exactly_once)
{
    static char ids[CLAIM_TASKS][37];
    int claimed[CLAIM_TASKS] = {0}, fds[2], total = 0;
    pid_t pids[CLAIMERS];
    char got[37];

    for (int i = 0; i < CLAIM_TASKS; i++)
        create_id(i % 2 ? "alice" : "bob", "{\"job_name\":\"x\"}", ids[i]);
    ck_assert_int_eq(pipe(fds), 0);
    for (int i = 0; i < CLAIMERS; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            (void)close(fds[0]);
            claimer(fds[1]);
        }
    }
    (void)close(fds[1]);
    got[36] = '\0';
    while (read(fds[0], got, 36) == 36) {
        int i = 0;

        while (i < CLAIM_TASKS && strcmp(ids[i], got) != 0)
            i++;
        ck_assert_msg(i < CLAIM_TASKS, "claimed an unknown id %s", got);
        ck_assert_msg(++claimed[i] == 1, "task %s claimed twice", got);
        total++;
    }
    (void)close(fds[0]);
    for (int i = 0; i < CLAIMERS; i++) {
        int status;

        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "claimer %d: status %d", i,
                      status);
    }
    ck_assert_int_eq(total, CLAIM_TASKS);
}
END_TEST

START_TEST(heartbeat_holder_only)
{
    char a[37], b[37], *before = NULL;
    cJSON *t = NULL;
    int64_t lease1, lease2;

    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    t = claim_expect("w1", a);
    lease1 = time_ms(str_field(t, "lease_expires_at"));
    cJSON_Delete(t);

    st.lease_seconds = 600;
    ck_assert_int_eq(
        fm_tasks_heartbeat(&st, "w1", a, 42.5, "{\"loss\":0.25,\"acc\":1}", &t, &before), FM_OK);
    ck_assert_ptr_nonnull(before);
    free(before);
    lease2 = time_ms(str_field(t, "lease_expires_at"));
    ck_assert_int_ge(lease2, lease1 + 540000);
    ck_assert(num_field(t, "progress") == 42.5);
    ck_assert(num_field(cJSON_GetObjectItemCaseSensitive(t, "metrics"), "loss") == 0.25);
    ck_assert_str_eq(str_field(t, "status"), "running");
    cJSON_Delete(t);
    {
        char ms[32];
        (void)snprintf(ms, sizeof(ms), "%lld", (long long)lease2);
        expect_zscore("leases", a, ms);
    }
    /* Nothing given: progress and metrics stay. */
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w1", a, -1, NULL, &t, &before), FM_OK);
    ck_assert(num_field(t, "progress") == 42.5);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(t, "metrics")));
    cJSON_Delete(t);
    free(before);

    /* Not the holder, not running, no such task: nothing of the task comes back. */
    t = (cJSON *)&t;
    before = (char *)&before;
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w2", a, 1, NULL, &t, &before), FM_ECONFLICT);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(before);
    ck_assert_int_eq(fm_tasks_complete(&st, "w2", a, "completed", NULL, &t, &before), FM_ECONFLICT);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w1", b, 1, NULL, &t, &before), FM_ECONFLICT);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(
        fm_tasks_heartbeat(&st, "w1", "00000000-0000-4000-8000-000000000000", 1, NULL, &t, &before),
        FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w1", "nope", 1, NULL, &t, &before), FM_ENOTFOUND);
    ck_assert_ptr_null(t);
    /* The refused calls changed nothing. */
    expect_zscore("status:running", a, "1");
    /* An expired lease, not yet swept, is no longer held. */
    expire_lease(a);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w1", a, 1, NULL, &t, &before), FM_ECONFLICT);
    ck_assert_int_eq(fm_tasks_complete(&st, "w1", a, "completed", NULL, &t, &before), FM_ECONFLICT);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(complete_and_cancel_running)
{
    char a[37], b[37], c[37], *before = NULL;
    cJSON *t = NULL;

    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    create_id("alice", "{\"job_name\":\"c\"}", c);
    claim_id("w", a);
    claim_id("w", b);
    claim_id("w", c);

    /* cancelled only when asked for. */
    ck_assert_int_eq(fm_tasks_complete(&st, "w", a, "cancelled", NULL, &t, &before), FM_ECONFLICT);
    ck_assert_ptr_null(t);
    /* A running task: cancel_requested, still running; asking again is fine. */
    ck_assert_int_eq(fm_tasks_cancel(&st, "bob", a, &t, &before), FM_ENOTFOUND);
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", a, &t, &before), FM_OK);
    ck_assert_str_eq(str_field(t, "status"), "running");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "cancel_requested")));
    expect_null_field(t, "ended_at");
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_cancel(&st, NULL, a, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", a, NULL, &before), FM_ECONFLICT);
    ck_assert_ptr_null(before);
    /* The worker learns it from its heartbeat and ends the task. */
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w", a, -1, NULL, &t, &before), FM_OK);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "cancel_requested")));
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_complete(&st, "w", a, "cancelled", "stopped", &t, &before), FM_OK);
    ck_assert_str_eq(str_field(t, "status"), "cancelled");
    ck_assert_str_eq(str_field(t, "error"), "stopped");
    ck_assert_str_eq(str_field(t, "worker_id"), "w");
    ck_assert_int_ge(time_ms(str_field(t, "ended_at")), time_ms(str_field(t, "started_at")));
    expect_null_field(t, "lease_expires_at");
    cJSON_Delete(t);
    free(before);
    expect_zscore("leases", a, NULL);
    expect_zscore("status:running", a, NULL);
    expect_zscore("user:alice:status:cancelled", a, "1");

    ck_assert_int_eq(fm_tasks_complete(&st, "w", b, "failed", "exit status 2", &t, &before), FM_OK);
    ck_assert_str_eq(str_field(t, "status"), "failed");
    ck_assert_str_eq(str_field(t, "error"), "exit status 2");
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_complete(&st, "w", c, "completed", NULL, &t, &before), FM_OK);
    expect_null_field(t, "error");
    cJSON_Delete(t);
    free(before);
    expect_zscore("status:completed", c, "3");
    /* Ended: no second completion, no cancel (the unchanged task comes back). */
    ck_assert_int_eq(fm_tasks_complete(&st, "w", c, "failed", NULL, &t, &before), FM_ECONFLICT);
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", c, &t, &before), FM_ECONFLICT);
    ck_assert_str_eq(str_field(t, "status"), "completed");
    ck_assert_ptr_null(before);
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_complete(&st, "w", c, "done", NULL, &t, &before), FM_EINVAL);
    /* Ended tasks can be deleted. */
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", c, NULL, &before), FM_OK);
    free(before);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, c, &t), FM_ENOTFOUND);
    expect_zscore("status:completed", c, NULL);
    expect_zscore("tasks", c, NULL);
}
END_TEST

/* Sweeps and checks the number of transitions; the caller frees out[]. */
static size_t sweep(fm_tasks_swept *out, size_t max)
{
    size_t n = 99;
    fm_err rc = fm_tasks_sweep(&st, max, out, &n);

    ck_assert_msg(rc == FM_OK, "sweep: rc %d %s", rc, fm_redis_errstr(r));
    return n;
}

static void swept_free(fm_tasks_swept *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(out[i].task);
        free(out[i].before);
    }
}

/* Real leases of 1 s: the task goes back to its old place with attempts counted. */
START_TEST(sweep_requeues_at_old_place)
{
    char a[37], b[37], c[37], want[200], started[32];
    fm_tasks_swept out[4];
    cJSON *t;

    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    create_id("alice", "{\"job_name\":\"c\"}", c);
    st.lease_seconds = 1;
    t = claim_expect("alice/w1", a);
    (void)snprintf(started, sizeof(started), "%s", str_field(t, "started_at"));
    cJSON_Delete(t);
    ck_assert_uint_eq(sweep(out, 4), 0); /* not expired yet */
    th_sleep_ms(1100);
    ck_assert_uint_eq(sweep(out, 4), 1);
    ck_assert_str_eq(out[0].id, a);
    ck_assert_str_eq(out[0].worker_id, "alice/w1");
    ck_assert_str_eq(out[0].event, "task.requeued");
    ck_assert_str_eq(str_field(out[0].task, "status"), "queued");
    ck_assert_int_eq(num_field(out[0].task, "attempts"), 1);
    expect_null_field(out[0].task, "worker_id");
    expect_null_field(out[0].task, "lease_expires_at");
    ck_assert_ptr_nonnull(out[0].before);
    swept_free(out, 1);
    (void)snprintf(want, sizeof(want), "%s %s %s", a, b, c);
    queue_is(want);
    expect_zscore("queue", a, "5000000000001");
    expect_zscore("leases", a, NULL);
    /* Claimed again: the second attempt; started_at is the first claim's. */
    t = claim_expect("alice/w2", a);
    ck_assert_int_eq(num_field(t, "attempts"), 2);
    ck_assert_str_eq(str_field(t, "started_at"), started);
    cJSON_Delete(t);
    ck_assert_uint_eq(sweep(out, 4), 0);
}
END_TEST

START_TEST(sweep_fails_cancels_and_bounds)
{
    char a[37], b[37], c[37], d[37];
    fm_tasks_swept out[4];
    size_t n;

    st.max_attempts = 2;
    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    create_id("alice", "{\"job_name\":\"c\"}", c);
    create_id("alice", "{\"job_name\":\"d\"}", d);
    /* a: second attempt expires -> failed. */
    claim_id("w", a);
    expire_lease(a);
    ck_assert_uint_eq(sweep(out, 4), 1);
    ck_assert_str_eq(out[0].event, "task.requeued");
    swept_free(out, 1);
    claim_id("w", a);
    expire_lease(a);
    ck_assert_uint_eq(sweep(out, 4), 1);
    ck_assert_str_eq(out[0].event, "task.failed");
    ck_assert_str_eq(str_field(out[0].task, "status"), "failed");
    ck_assert_str_eq(str_field(out[0].task, "error"), "lease expired");
    ck_assert_str_eq(str_field(out[0].task, "worker_id"), "w");
    ck_assert_int_eq(num_field(out[0].task, "attempts"), 2);
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(out[0].task, "ended_at")));
    swept_free(out, 1);
    expect_zscore("queue", a, NULL);
    expect_zscore("leases", a, NULL);
    expect_zscore("status:failed", a, "1");

    /* b: cancel requested, then the worker died -> cancelled. */
    {
        cJSON *t;
        char *before;

        claim_id("w", b);
        ck_assert_int_eq(fm_tasks_cancel(&st, NULL, b, &t, &before), FM_OK);
        cJSON_Delete(t);
        free(before);
    }
    expire_lease(b);
    ck_assert_uint_eq(sweep(out, 4), 1);
    ck_assert_str_eq(out[0].event, "task.cancelled");
    ck_assert_str_eq(str_field(out[0].task, "status"), "cancelled");
    swept_free(out, 1);

    /* At most max per call. */
    claim_id("w", c);
    claim_id("w", d);
    expire_lease(c);
    expire_lease(d);
    n = sweep(out, 1);
    ck_assert_uint_eq(n, 1);
    swept_free(out, n);
    ck_assert_uint_eq(sweep(out, 4), 1);
    swept_free(out, 1);
    ck_assert_uint_eq(sweep(out, 4), 0);
    ck_assert_int_eq(fm_tasks_sweep(&st, 0, out, &n), FM_EINVAL);
}
END_TEST

/* Runs a transition, checks the state changed, restores before and checks the state is back. */
#define EXPECT_RESTORED(id, call)                                                                  \
    do {                                                                                           \
        char was[STATE_TEXT_MAX], is[STATE_TEXT_MAX];                                              \
        task_state(id, was);                                                                       \
        before = NULL;                                                                             \
        ck_assert_int_eq(call, FM_OK);                                                             \
        task_state(id, is);                                                                        \
        ck_assert_str_ne(is, was);                                                                 \
        ck_assert_int_eq(fm_tasks_restore(&st, id, before), FM_OK);                                \
        free(before);                                                                              \
        task_state(id, is);                                                                        \
        ck_assert_str_eq(is, was);                                                                 \
    } while (0)

START_TEST(restore_every_transition)
{
    char a[37], b[37], *before;
    char gone[STATE_TEXT_MAX], now[STATE_TEXT_MAX];
    cJSON *t = NULL;
    fm_tasks_swept out[2];
    size_t n;

    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    EXPECT_RESTORED(a, fm_tasks_cancel(&st, "alice", a, &t, &before)); /* queued -> cancelled */
    cJSON_Delete(t);
    EXPECT_RESTORED(a, fm_tasks_delete(&st, "alice", a, NULL, &before));
    EXPECT_RESTORED(a, fm_tasks_claim(&st, "w", &t, &before));
    cJSON_Delete(t);
    claim_id("w", a);
    EXPECT_RESTORED(a, fm_tasks_heartbeat(&st, "w", a, 10, "{\"x\":1}", &t, &before));
    cJSON_Delete(t);
    EXPECT_RESTORED(a, fm_tasks_cancel(&st, "alice", a, &t, &before)); /* cancel_requested */
    cJSON_Delete(t);
    EXPECT_RESTORED(a, fm_tasks_complete(&st, "w", a, "failed", "boom", &t, &before));
    cJSON_Delete(t);
    expire_lease(a);
    EXPECT_RESTORED(a, (n = sweep(out, 2)) == 1 ? ((before = out[0].before), FM_OK) : FM_EREDIS);
    cJSON_Delete(out[0].task);
    /* The undo of a create: gone, from every index. */
    task_state("00000000-0000-4000-8000-000000000000", gone);
    ck_assert_int_eq(fm_tasks_restore(&st, b, NULL), FM_OK);
    task_state(b, now);
    ck_assert_str_eq(now, gone);
    ck_assert_int_eq(fm_tasks_restore(&st, b, NULL), FM_OK); /* already gone: fine */
    ck_assert_int_eq(fm_tasks_restore(&st, b, "garbage"), FM_EINVAL);
    ck_assert_int_eq(fm_tasks_restore(&st, "not-a-uuid", NULL), FM_ENOTFOUND);
}
END_TEST

/* The task's rev (0 when gone). */
static long rev_of(const char *id)
{
    char key[128];
    const char *argv[] = {"HGET", key, "rev"};
    redisReply *reply;
    long rev;

    (void)snprintf(key, sizeof(key), PREFIX "task:%s", id);
    reply = th_redis_cmd(r, 3, argv);
    rev = reply->type == REDIS_REPLY_STRING ? strtol(reply->str, NULL, 10) : 0;
    freeReplyObject(reply);
    return rev;
}

/*
 * An undo puts a task back only if nothing changed it since the change it
 * undoes: a worker's claim or heartbeat in between stands (it was audited by
 * its own request). Each change and each restore raises rev.
 */
START_TEST(restore_leaves_a_later_change)
{
    char a[37], b[37], c[37], was[STATE_TEXT_MAX], is[STATE_TEXT_MAX], *undo1, *undo2;
    cJSON *t;
    long rev;

    /* A create's undo after a worker claimed the task: the claim stands. */
    create_id("alice", "{\"job_name\":\"a\"}", a);
    ck_assert_int_eq(rev_of(a), 1);
    claim_id("w", a);
    task_state(a, was);
    ck_assert_int_eq(fm_tasks_restore(&st, a, NULL), FM_ECONFLICT);
    task_state(a, is);
    ck_assert_str_eq(is, was);

    /* A cancel undone once, never twice; a claim's undo after a heartbeat: the heartbeat stands. */
    create_id("alice", "{\"job_name\":\"b\"}", b);
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", b, &t, &undo1), FM_OK);
    cJSON_Delete(t);
    rev = rev_of(b);
    ck_assert_int_eq(fm_tasks_restore(&st, b, undo1), FM_OK); /* queued again */
    ck_assert_int_gt(rev_of(b), rev);                         /* a restore raises rev */
    ck_assert_int_eq(fm_tasks_restore(&st, b, undo1), FM_ECONFLICT);
    free(undo1);
    ck_assert_int_eq(fm_tasks_claim(&st, "w", &t, &undo1), FM_OK);
    ck_assert_str_eq(str_field(t, "id"), b);
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w", b, 50, NULL, &t, &undo2), FM_OK);
    cJSON_Delete(t);
    free(undo2);
    task_state(b, was);
    ck_assert_int_eq(fm_tasks_restore(&st, b, undo1), FM_ECONFLICT);
    free(undo1);
    task_state(b, is);
    ck_assert_str_eq(is, was);

    /* A delete's undo while the task is still gone puts it back, once. */
    create_id("alice", "{\"job_name\":\"c\"}", c);
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", c, NULL, &undo1), FM_OK);
    ck_assert_int_eq(rev_of(c), 0);
    ck_assert_int_eq(fm_tasks_restore(&st, c, undo1), FM_OK);
    ck_assert_int_eq(fm_tasks_restore(&st, c, undo1), FM_ECONFLICT);
    free(undo1);
    ck_assert_int_gt(rev_of(c), 1);
}
END_TEST

/* Lists one page; returns the number of tasks and checks total and next_offset. */
static int list_page(const char *user, const char *status, long offset, long limit,
                     size_t max_bytes, long want_total, long want_next)
{
    cJSON *tasks = NULL;
    long total = -1, next = -2;
    int n;

    ck_assert_int_eq(
        fm_tasks_list(&st, user, status, offset, limit, max_bytes, &tasks, &total, &next), FM_OK);
    ck_assert_int_eq(total, want_total);
    ck_assert_int_eq(next, want_next);
    n = cJSON_GetArraySize(tasks);
    if (max_bytes > 0) {
        char *text = cJSON_PrintUnformatted(tasks);
        ck_assert_uint_le(strlen(text), max_bytes);
        cJSON_free(text);
    }
    cJSON_Delete(tasks);
    return n;
}

START_TEST(list_next_offset_and_max_bytes)
{
    char id[37];
    cJSON *t;
    char *text;
    size_t one;

    for (int i = 0; i < 5; i++)
        create_id("alice", "{\"job_name\":\"same-size\"}", id);
    ck_assert_int_eq(fm_tasks_get(&st, NULL, id, &t), FM_OK);
    text = cJSON_PrintUnformatted(t);
    one = strlen(text);
    cJSON_free(text);
    cJSON_Delete(t);

    ck_assert_int_eq(list_page("alice", NULL, 0, 2, 0, 5, 2), 2);
    ck_assert_int_eq(list_page("alice", "queued", 2, 2, 0, 5, 4), 2);
    ck_assert_int_eq(list_page("alice", "queued", 3, 2, 0, 5, -1), 2);
    ck_assert_int_eq(list_page("alice", NULL, 4, 50, 0, 5, -1), 1);
    ck_assert_int_eq(list_page("alice", NULL, 9, 50, 0, 5, -1), 0);
    /* "[" two tasks, a comma, "]": exactly two fit; one byte less, one. */
    ck_assert_int_eq(list_page("alice", NULL, 0, 50, 2 + 2 * one + 1, 5, 2), 2);
    ck_assert_int_eq(list_page("alice", NULL, 0, 50, 2 + 2 * one, 5, 1), 1);
    ck_assert_int_eq(list_page(NULL, "queued", 1, 50, 2 + one, 5, 2), 1);
    ck_assert_int_eq(list_page(NULL, "queued", 1, 50, 1 + one, 5, 1), 0);
}
END_TEST

/*
 * A page of ?status= reads the status index, not the history: with 5000
 * cancelled tasks and 3 queued, listing queued reads 3 records, and a page
 * of the cancelled ones reads that page only (Redis' own command counts).
 */
START_TEST(status_page_is_o_limit)
{
    char id[37], q[3][37], *before;
    long long hgetall, zrevrange;
    cJSON *t;

    for (int i = 0; i < 5000; i++) {
        create_id("alice", "{\"job_name\":\"old\"}", id);
        ck_assert_int_eq(fm_tasks_cancel(&st, "alice", id, &t, &before), FM_OK);
        cJSON_Delete(t);
        free(before);
    }
    for (int i = 0; i < 3; i++)
        create_id("alice", "{\"job_name\":\"new\"}", q[i]);
    hgetall = th_redis_calls(r, "hgetall");
    zrevrange = th_redis_calls(r, "zrevrange");
    ck_assert_int_eq(list_page("alice", "queued", 0, 50, 0, 3, -1), 3);
    ck_assert_int_eq(th_redis_calls(r, "hgetall") - hgetall, 3);
    ck_assert_int_eq(th_redis_calls(r, "zrevrange") - zrevrange, 1);
    hgetall = th_redis_calls(r, "hgetall");
    ck_assert_int_eq(list_page("alice", "cancelled", 100, 50, 0, 5000, 150), 50);
    ck_assert_int_eq(list_page(NULL, "cancelled", 4990, 50, 0, 5000, -1), 10);
    ck_assert_int_eq(th_redis_calls(r, "hgetall") - hgetall, 60);
}
END_TEST

/* ---- the journal (outbox) ------------------------------------------------------- */

/* The journal's members, oldest first, as one "|"-separated string (ms stripped). */
static void journal_text(char out[STATE_TEXT_MAX])
{
    const char *zr[] = {"ZRANGE", PREFIX "journal", "0", "-1"};
    redisReply *reply = fm_redis_argv(r, 4, zr, NULL);

    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    out[0] = '\0';
    for (size_t i = 0; i < reply->elements; i++) {
        const char *m = strchr(reply->element[i]->str, ' ');

        ck_assert_ptr_nonnull(m);
        (void)snprintf(out + strlen(out), STATE_TEXT_MAX - strlen(out), "%s%s", i ? "|" : "",
                       m + 1);
    }
    freeReplyObject(reply);
}

static long long journal_size(void)
{
    const char *zc[] = {"ZCARD", PREFIX "journal"};
    redisReply *reply = fm_redis_argv(r, 2, zc, NULL);
    long long n;

    ck_assert_ptr_nonnull(reply);
    n = reply->integer;
    freeReplyObject(reply);
    return n;
}

/* The journal holds exactly want (journal_text), then settling token empties it. */
static void expect_journal_settled(const char *want, char *token)
{
    char got[STATE_TEXT_MAX];

    journal_text(got);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(fm_tasks_settle(&st, token), FM_OK);
    free(token);
    ck_assert_int_eq(journal_size(), 0);
}

/*
 * Every transition journals itself in its own script (one member: id, event,
 * trace id and actor), and fm_tasks_settle with its token removes it.
 */
START_TEST(journal_every_transition)
{
    char id[FM_TASKS_ID_SIZE], err[256], want[STATE_TEXT_MAX], *before = NULL;
    const char *body = "{\"job_name\":\"a\"}";
    cJSON *t = NULL;

    st.trace_id = "trace-1";
    st.actor = "alice";
    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, id, &before, err, sizeof(err)),
        FM_OK);
    cJSON_Delete(t);
    (void)snprintf(want, sizeof(want), "%s task.created trace-1 alice", id);
    expect_journal_settled(want, before);

    ck_assert_int_eq(fm_tasks_claim(&st, "alice/w1", &t, &before), FM_OK);
    cJSON_Delete(t);
    (void)snprintf(want, sizeof(want), "%s task.started trace-1 alice/w1", id);
    expect_journal_settled(want, before);

    ck_assert_int_eq(fm_tasks_heartbeat(&st, "alice/w1", id, 5, NULL, &t, &before), FM_OK);
    cJSON_Delete(t);
    (void)snprintf(want, sizeof(want), "%s task.progress trace-1 alice/w1", id);
    expect_journal_settled(want, before);

    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", id, &t, &before), FM_OK);
    cJSON_Delete(t);
    (void)snprintf(want, sizeof(want), "%s task.cancel_requested trace-1 alice", id);
    expect_journal_settled(want, before);

    ck_assert_int_eq(fm_tasks_complete(&st, "alice/w1", id, "cancelled", NULL, &t, &before), FM_OK);
    cJSON_Delete(t);
    (void)snprintf(want, sizeof(want), "%s task.cancelled trace-1 alice/w1", id);
    expect_journal_settled(want, before);

    ck_assert_int_eq(fm_tasks_delete(&st, "alice", id, NULL, &before), FM_OK);
    (void)snprintf(want, sizeof(want), "%s task.deleted trace-1 alice", id);
    expect_journal_settled(want, before);

    /* A queued task's cancel; a trace id and actor outside printable ASCII, or none. */
    create_id("alice", body, id);
    ck_assert_int_eq(fm_tasks_settle(&st, NULL), FM_OK);
    ck_assert_int_eq(journal_size(), 1); /* create() kept no token: nobody settles it */
    st.trace_id = "a b\nc";
    st.actor = NULL;
    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", id, &t, &before), FM_OK);
    cJSON_Delete(t);
    journal_text(want);
    ck_assert_ptr_nonnull(strstr(want, " task.cancelled a_b_c -"));
    ck_assert_int_eq(fm_tasks_settle(&st, before), FM_OK);
    free(before);
    ck_assert_int_eq(journal_size(), 1);
    ck_assert_int_eq(fm_tasks_settle(&st, "garbage"), FM_EINVAL);
}
END_TEST

/* An undo removes its change's member; one refused (changed since) keeps it for the reconciler. */
START_TEST(journal_restore)
{
    char a[FM_TASKS_ID_SIZE], err[256], *created, *claimed, *later;
    const char *body = "{\"job_name\":\"a\"}";
    cJSON *t = NULL;

    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, a, &created, err, sizeof(err)),
        FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(journal_size(), 1);
    ck_assert_int_eq(fm_tasks_restore(&st, a, created), FM_OK); /* the create undone */
    free(created);
    ck_assert_int_eq(journal_size(), 0);
    ck_assert_int_eq(rev_of(a), 0);

    ck_assert_int_eq(
        fm_tasks_create(&st, "alice", body, strlen(body), &t, a, &created, err, sizeof(err)),
        FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_claim(&st, "w", &t, &claimed), FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(journal_size(), 2);
    /* The create's undo is refused (claimed since): both members stay. */
    ck_assert_int_eq(fm_tasks_restore(&st, a, created), FM_ECONFLICT);
    ck_assert_int_eq(journal_size(), 2);
    ck_assert_int_eq(fm_tasks_heartbeat(&st, "w", a, -1, NULL, &t, &later), FM_OK);
    cJSON_Delete(t);
    ck_assert_int_eq(fm_tasks_restore(&st, a, claimed), FM_ECONFLICT);
    ck_assert_int_eq(journal_size(), 3);
    ck_assert_int_eq(fm_tasks_restore(&st, a, later), FM_OK); /* the heartbeat undone */
    ck_assert_int_eq(journal_size(), 2);
    ck_assert_int_eq(fm_tasks_settle(&st, created), FM_OK);
    ck_assert_int_eq(fm_tasks_settle(&st, claimed), FM_OK);
    ck_assert_int_eq(journal_size(), 0);
    free(created);
    free(claimed);
    free(later);
}
END_TEST

/* A sweep journals each transition (actor: the expired lease's worker); settle removes each. */
START_TEST(journal_sweep)
{
    char a[FM_TASKS_ID_SIZE], b[FM_TASKS_ID_SIZE], want[512], got[STATE_TEXT_MAX];
    fm_tasks_swept out[4];
    size_t n;

    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    claim_id("w1", a);
    claim_id("w2", b);
    expire_lease(a);
    expire_lease(b);
    {
        const char *del[] = {"DEL", PREFIX "journal"};
        freeReplyObject(fm_redis_argv(r, 2, del, NULL));
    }
    n = sweep(out, 4);
    ck_assert_uint_eq(n, 2);
    journal_text(got);
    (void)snprintf(want, sizeof(want), "%s %s - w1", a, out[0].event);
    ck_assert_ptr_nonnull(strstr(got, want));
    (void)snprintf(want, sizeof(want), "%s %s - w2", b, out[1].event);
    ck_assert_ptr_nonnull(strstr(got, want));
    ck_assert_int_eq(journal_size(), 2);
    ck_assert_int_eq(fm_tasks_settle(&st, out[0].before), FM_OK);
    ck_assert_int_eq(journal_size(), 1);
    ck_assert_int_eq(fm_tasks_restore(&st, b, out[1].before), FM_OK);
    ck_assert_int_eq(journal_size(), 0);
    swept_free(out, n);
}
END_TEST

/*
 * The reconciler's read: members older than the grace, with their tasks
 * (NULL when gone); a member this code does not write is not valid.
 */
START_TEST(journal_unacked)
{
    char a[FM_TASKS_ID_SIZE], old[256];
    const char *gone = "00000000-0000-4000-8000-000000000000";
    fm_tasks_pending out[8];
    size_t n = 99;

    st.trace_id = "t-9";
    st.actor = "alice";
    create_id("alice", "{\"job_name\":\"a\"}", a);
    ck_assert_int_eq(fm_tasks_unacked(&st, 10000, 8, out, &n), FM_OK);
    ck_assert_uint_eq(n, 0); /* fresh: within the grace */
    ck_assert_int_eq(fm_tasks_unacked(&st, 10000, 0, out, &n), FM_EINVAL);
    (void)snprintf(old, sizeof(old), "1000 %s task.deleted t-1 bob", gone);
    {
        const char *za[] = {"ZADD", PREFIX "journal", "1000", old};
        const char *zb[] = {"ZADD", PREFIX "journal", "1001", "1001 nonsense"};
        freeReplyObject(fm_redis_argv(r, 4, za, NULL));
        freeReplyObject(fm_redis_argv(r, 4, zb, NULL));
    }
    ck_assert_int_eq(fm_tasks_unacked(&st, 10000, 8, out, &n), FM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert(out[0].valid);
    ck_assert_str_eq(out[0].member, old);
    ck_assert_str_eq(out[0].id, gone);
    ck_assert_str_eq(out[0].event, "task.deleted");
    ck_assert_str_eq(out[0].trace_id, "t-1");
    ck_assert_str_eq(out[0].actor, "bob");
    ck_assert_ptr_null(out[0].task);
    ck_assert(!out[1].valid);
    ck_assert_str_eq(out[1].member, "1001 nonsense");
    fm_tasks_unacked_free(out, n);
    ck_assert_int_eq(fm_tasks_unacked(&st, 0, 1, out, &n), FM_OK);
    ck_assert_uint_eq(n, 1); /* oldest first, at most max */
    fm_tasks_unacked_free(out, n);
    ck_assert_int_eq(fm_tasks_unacked(&st, -10000, 8, out, &n), FM_EINVAL);
    /* Grace 0: the create too, with its task. */
    usleep(2000);
    ck_assert_int_eq(fm_tasks_unacked(&st, 0, 8, out, &n), FM_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(out[2].id, a);
    ck_assert_str_eq(out[2].event, "task.created");
    ck_assert_str_eq(out[2].trace_id, "t-9");
    ck_assert_str_eq(str_field(out[2].task, "id"), a);
    ck_assert_int_eq(fm_tasks_forget(&st, out[0].member), FM_OK);
    fm_tasks_unacked_free(out, n);
    ck_assert_int_eq(journal_size(), 2);
}
END_TEST

static Suite *tasks_suite(void)
{
    Suite *s = suite_create("tasks");
    TCase *v = tcase_create("validation");
    TCase *db = tcase_create("redis");

    tcase_add_checked_fixture(v, setup_down, teardown_down);
    tcase_add_test(v, not_json);
    tcase_add_test(v, not_utf8);
    tcase_add_test(v, not_an_object);
    tcase_add_test(v, job_name);
    tcase_add_test(v, priority);
    tcase_add_test(v, commit_id);
    tcase_add_test(v, unknown_and_duplicate_fields);
    tcase_add_test(v, datasets);
    tcase_add_test(v, metadata);
    tcase_add_test(v, args_and_experiment);
    tcase_add_test(v, err_buffer_bounded);
    tcase_add_test(v, get_and_list_without_redis);
    tcase_add_test(v, status_names);
    suite_add_tcase(s, v);

    tcase_add_checked_fixture(db, setup_up, teardown_up);
    tcase_set_timeout(db, 120);
    tcase_add_test(db, create_full_record);
    tcase_add_test(db, create_defaults);
    tcase_add_test(db, create_answer_is_the_stored_task);
    tcase_add_test(db, stored_under_prefix);
    tcase_add_test(db, queue_order);
    tcase_add_test(db, cancel_delete_and_undo);
    tcase_add_test(db, keys_too_long);
    tcase_add_test(db, one_round_trip_each);
    tcase_add_test(db, quota);
    tcase_add_test(db, too_big);
    tcase_add_test(db, redis_full);
    tcase_add_test(db, claim_order_and_fields);
    tcase_add_test(db, concurrent_claim_exactly_once);
    tcase_add_test(db, heartbeat_holder_only);
    tcase_add_test(db, complete_and_cancel_running);
    tcase_add_test(db, sweep_requeues_at_old_place);
    tcase_add_test(db, sweep_fails_cancels_and_bounds);
    tcase_add_test(db, restore_every_transition);
    tcase_add_test(db, restore_leaves_a_later_change);
    tcase_add_test(db, journal_every_transition);
    tcase_add_test(db, journal_restore);
    tcase_add_test(db, journal_sweep);
    tcase_add_test(db, journal_unacked);
    tcase_add_test(db, list_next_offset_and_max_bytes);
    tcase_add_test(db, status_page_is_o_limit);
    tcase_add_test(db, get_visibility);
    tcase_add_test(db, get_corrupt_record);
    tcase_add_test(db, list_filters_and_pages);
    tcase_add_test(db, redis_goes_down);
    suite_add_tcase(s, db);
    return s;
}

TH_MAIN(tasks_suite)
