/*
 * test_tasks.c - unit tests for lib/store/tasks.c.
 *
 * "validation" runs without Redis: the handle points at a socket nobody
 * listens on, so an invalid body must be refused before any Redis call (the
 * handle's errstr stays empty), and a valid one ends in FM_EREDIS.
 * "redis" runs against a private redis-server (see helpers.h): the stored
 * record and index keys, queue order, visibility and listing.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "helpers.h"
#include "redisconn.h"
#include "tasks.h"

#define PREFIX "tt:"
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
    r = fm_redis_new(down_addr, "pw", 0, 200);
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

    ck_assert_msg(fm_tasks_create(&st, "alice", body, len, &task, id, err, sizeof(err)) == want_rc,
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
    int rc = fm_tasks_create(&st, "alice", body, strlen(body), &task, id, err, sizeof(err));

    ck_assert_msg(rc == FM_EREDIS, "body %s: rc %d (err \"%s\")", body, rc, err);
    ck_assert_ptr_null(task);
    ck_assert_str_ne(fm_redis_errstr(r), "");
    /* A fresh handle, so the next refusal can show again that Redis was not asked. */
    fm_redis_free(r);
    r = fm_redis_new(down_addr, "pw", 0, 200);
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

    ck_assert_int_eq(fm_tasks_create(&st, "alice", "{}", 2, &task, id, err, sizeof(err)),
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
    r = fm_redis_new(srv.addr, srv.password, 0, 500);
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
    int rc = fm_tasks_create(&st, user, body, strlen(body), &task, id, err, sizeof(err));

    ck_assert_msg(rc == FM_OK, "create %s: rc %d err \"%s\" redis \"%s\"", body, rc, err,
                  fm_redis_errstr(r));
    ck_assert_ptr_nonnull(task);
    /* The id handed back is the stored task's. */
    ck_assert_str_eq(id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id")));
    return task;
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

    ck_assert_int_eq(cJSON_GetArraySize(t), 20);
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
    ck_assert_uint_eq(strlen(str_field(t, "created_at")), 20);
    ck_assert_int_ge(created, (int64_t)now - 5);
    ck_assert_int_le(created, (int64_t)now + 5);
    expect_null_field(t, "started_at");
    expect_null_field(t, "ended_at");
    expect_null_field(t, "worker_id");
    expect_null_field(t, "error");
    cJSON_Delete(want_args);
    cJSON_Delete(want_meta);
    cJSON_Delete(t);
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

START_TEST(stored_under_prefix)
{
    cJSON *t = create("alice", "{\"job_name\":\"a\",\"priority\":7}");
    const char *id = str_field(t, "id");
    char k_task[128];
    const char *get[] = {"GET", k_task};
    const char *seq[] = {"GET", PREFIX "task_seq"};
    const char *zq[] = {"ZSCORE", PREFIX "queue", id};
    const char *zall[] = {"ZSCORE", PREFIX "tasks", id};
    const char *zuser[] = {"ZSCORE", PREFIX "user:alice:tasks", id};
    const char *keys[] = {"KEYS", "*"};
    redisReply *reply;
    char *raw;
    cJSON *stored;

    (void)snprintf(k_task, sizeof(k_task), PREFIX "task:%s", id);
    raw = string_command(2, get);
    ck_assert_ptr_nonnull(raw);
    stored = cJSON_Parse(raw);
    ck_assert_ptr_nonnull(stored);
    ck_assert(cJSON_Compare(stored, t, 1));
    cJSON_Delete(stored);
    free(raw);

    expect_string_command(2, seq, "1");
    /* (10 - 7) * 1e12 + seq 1 */
    expect_string_command(3, zq, "3000000000001");
    expect_string_command(3, zall, "1");
    expect_string_command(3, zuser, "1");

    /* Nothing outside the prefix, and exactly these five keys. */
    reply = fm_redis_argv(r, 2, keys, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(reply->elements, 5);
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

    /* Delete, then undo: the record and its index entries come back. */
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", b, &before), FM_OK);
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
/* Calls of command name so far (INFO commandstats), 0 when never called. */
static long long command_calls(const char *name)
{
    const char *info[] = {"INFO", "commandstats"};
    redisReply *reply = fm_redis_argv(r, 2, info, NULL);
    long long calls;

    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    calls = th_cmdstat_calls(reply->str, name);
    freeReplyObject(reply);
    return calls;
}

/*
 * Cancel, delete and the undo of a create each run one script after one GET:
 * no WATCH/MULTI/EXEC transaction, whose retries cost 7-9 round trips.
 */
START_TEST(changes_are_one_script)
{
    static const char *const tx[] = {"watch", "multi", "exec", "discard"};
    char a[37], b[37], c[37];
    char *before = NULL;
    cJSON *t = NULL;
    long long evalsha, get;

    create_id("alice", "{\"job_name\":\"a\"}", a);
    create_id("alice", "{\"job_name\":\"b\"}", b);
    create_id("alice", "{\"job_name\":\"c\"}", c);
    evalsha = command_calls("evalsha");
    get = command_calls("get");

    ck_assert_int_eq(fm_tasks_cancel(&st, "alice", a, &t, &before), FM_OK);
    cJSON_Delete(t);
    free(before);
    ck_assert_int_eq(fm_tasks_delete(&st, "alice", b, &before), FM_OK);
    free(before);
    ck_assert_int_eq(fm_tasks_restore(&st, c, NULL), FM_OK);

    /* Three changes: three scripts (the script's own GET counts too), no transaction. */
    ck_assert_int_eq(command_calls("evalsha") - evalsha, 3);
    ck_assert_int_eq(command_calls("get") - get, 3 + 3);
    for (size_t i = 0; i < sizeof(tx) / sizeof(tx[0]); i++)
        ck_assert_msg(command_calls(tx[i]) == 0, "%s was called", tx[i]);
}
END_TEST

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
        fm_tasks_create(STORE(longest), user, body, strlen(body), &t, id, err, sizeof(err)), FM_OK);
    ck_assert_str_eq(id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id")));
    cJSON_Delete(t);
    ck_assert_int_eq(key_count(), 5);
    ck_assert_int_eq(fm_tasks_delete(STORE(longest), user, id, &before), FM_OK);
    free(before);
    before = NULL;
    ck_assert_int_eq(key_count(), 1); /* task_seq */

    memset(prefix, 'p', 240);
    prefix[240] = '\0';
    t = (cJSON *)&t;
    ck_assert_int_eq(
        fm_tasks_create(STORE(prefix), "alice", body, strlen(body), &t, id, err, sizeof(err)),
        FM_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(err, "key prefix or user name too long for a Redis key");
    memset(huge_user, 'u', 150);
    huge_user[150] = '\0';
    ck_assert_int_eq(fm_tasks_create(&st, huge_user, body, strlen(body), &t, id, err, sizeof(err)),
                     FM_EINVAL);
    ck_assert_int_eq(key_count(), 1); /* nothing written under a cut name */

    ck_assert_int_eq(fm_tasks_get(STORE(prefix), NULL, id, &t), FM_EINVAL);
    ck_assert_int_eq(fm_tasks_list(STORE(prefix), NULL, NULL, 0, 50, 0, &t, &total, &next_off),
                     FM_EINVAL);
    ck_assert_int_eq(fm_tasks_list(&st, huge_user, NULL, 0, 50, 0, &t, &total, &next_off),
                     FM_EINVAL);
    ck_assert_int_eq(fm_tasks_cancel(STORE(prefix), NULL, id, &t, &before), FM_EINVAL);
    ck_assert_int_eq(fm_tasks_delete(STORE(prefix), NULL, id, &before), FM_EINVAL);
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

/* Rewrites a stored record's status, as a worker would. */
static void set_status(const char *id, const char *status)
{
    char key[128];
    const char *get[] = {"GET", key};
    char *raw, *json;
    cJSON *t;
    redisReply *reply;

    (void)snprintf(key, sizeof(key), PREFIX "task:%s", id);
    raw = string_command(2, get);
    ck_assert_ptr_nonnull(raw);
    t = cJSON_Parse(raw);
    ck_assert_ptr_nonnull(t);
    ck_assert(cJSON_ReplaceItemInObjectCaseSensitive(t, "status", cJSON_CreateString(status)));
    json = cJSON_PrintUnformatted(t);
    ck_assert_ptr_nonnull(json);
    {
        const char *set[] = {"SET", key, json};
        reply = fm_redis_argv(r, 3, set, NULL);
    }
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    cJSON_free(json);
    cJSON_Delete(t);
    free(raw);
}

START_TEST(list_filters_and_pages)
{
    char a0[37], a1[37], a2[37], a3[37], a4[37], b0[37], b1[37];

    create_id("alice", "{\"job_name\":\"a0\"}", a0);
    create_id("bob", "{\"job_name\":\"b0\"}", b0);
    create_id("alice", "{\"job_name\":\"a1\"}", a1);
    create_id("alice", "{\"job_name\":\"a2\"}", a2);
    create_id("bob", "{\"job_name\":\"b1\"}", b1);
    create_id("alice", "{\"job_name\":\"a3\"}", a3);
    create_id("alice", "{\"job_name\":\"a4\"}", a4);
    set_status(a1, "running");

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
        fm_tasks_create(&st, "alice", "{\"job_name\":\"a\"}", 16, &t, id, err, sizeof(err)),
        FM_EREDIS);
    ck_assert_ptr_null(t);
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
    tcase_add_test(db, create_full_record);
    tcase_add_test(db, create_defaults);
    tcase_add_test(db, stored_under_prefix);
    tcase_add_test(db, queue_order);
    tcase_add_test(db, cancel_delete_and_undo);
    tcase_add_test(db, keys_too_long);
    tcase_add_test(db, changes_are_one_script);
    tcase_add_test(db, get_visibility);
    tcase_add_test(db, get_corrupt_record);
    tcase_add_test(db, list_filters_and_pages);
    tcase_add_test(db, redis_goes_down);
    suite_add_tcase(s, db);
    return s;
}

TH_MAIN(tasks_suite)
