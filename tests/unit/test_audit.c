/*
 * test_audit.c - the hash-chained audit trail: line format, escaping, chain
 * verification (and its failure on every kind of tampering), concurrent
 * writers, a writer killed while holding the lock, rotation and write errors.
 */
#include "audit.h"
#include "metrics.h"
#include "clock.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "redact.h"

#define MAX_LINES 4096

static char dir[64];
static char path[128];

static const char zeros[65] = "0000000000000000000000000000000000000000000000000000000000000000";

static void setup(void)
{
    fm_metrics_attach(fm_metrics_create(1)); /* write failures are counted there */
    (void)snprintf(dir, sizeof dir, "/tmp/test_audit.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    (void)snprintf(path, sizeof path, "%s/audit.log", dir);
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        (void)snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        (void)unlink(p);
    }
    (void)closedir(d);
    (void)rmdir(dir);
}

static char *slurp(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY);
    struct stat st;
    char *buf;
    size_t got = 0;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    buf[got] = '\0';
    (void)close(fd);
    *len = got;
    return buf;
}

typedef struct {
    const char *p;
    size_t len; /* without the newline */
} line_t;

/* Splits buf into lines; a final piece without newline counts as a line. */
static size_t split(const char *buf, size_t len, line_t *lines)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            ck_assert_uint_lt(n, MAX_LINES);
            lines[n].p = buf + start;
            lines[n++].len = i - start;
            start = i + 1;
        }
    }
    if (start < len) {
        lines[n].p = buf + start;
        lines[n++].len = len - start;
    }
    return n;
}

/* Verifies lines as one chain; returns 0, or the 1-based number of the first bad line. */
static size_t verify_lines(const line_t *lines, size_t n, char *err, size_t errlen)
{
    char prev[65];
    long long seq = 0;

    memcpy(prev, zeros, sizeof prev);
    for (size_t i = 0; i < n; i++) {
        if (fm_audit_verify_line(lines[i].p, lines[i].len, prev, &seq, err, errlen) != 0)
            return i + 1;
    }
    return 0;
}

static size_t verify_text(const char *buf, size_t len, char *err, size_t errlen)
{
    static line_t lines[MAX_LINES];

    return verify_lines(lines, split(buf, len, lines), err, errlen);
}

/* Concatenates the lines listed in order (count entries, 0-based indexes). */
static char *join(const line_t *lines, const size_t *order, size_t count, size_t *len)
{
    size_t total = 0, o = 0;
    char *buf;

    for (size_t i = 0; i < count; i++)
        total += lines[order[i]].len + 1;
    buf = malloc(total + 1);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < count; i++) {
        memcpy(buf + o, lines[order[i]].p, lines[order[i]].len);
        o += lines[order[i]].len;
        buf[o++] = '\n';
    }
    buf[o] = '\0';
    *len = o;
    return buf;
}

static fm_audit_record record(char *trace, size_t cap, int i)
{
    fm_audit_record r = {.trace_id = trace,
                         .user = "alice",
                         .key_id = "k1a2b3c4",
                         .action = "GET /v1/tasks",
                         .resource = "/v1/tasks",
                         .source_ip = "10.0.0.7",
                         .status = i % 3 == 0 ? 403 : 200,
                         .reason = i % 3 == 0 ? "permission jobs:read missing" : NULL};

    (void)snprintf(trace, cap, "trace-%d", i);
    return r;
}

static void write_n(fm_audit *a, int from, int count)
{
    char trace[32];

    for (int i = from; i < from + count; i++) {
        fm_audit_record r = record(trace, sizeof trace, i);
        ck_assert_int_eq(fm_audit_write(a, &r), 0);
    }
}

/* A fresh chain at path with records 1..count written; *shared gets its region. */
static fm_audit *open_chain(int count, fm_audit_shared **shared)
{
    fm_audit_shared *s = fm_audit_shared_create(path);
    fm_audit *a;

    ck_assert_ptr_nonnull(s);
    a = fm_audit_open(path, s);
    ck_assert_ptr_nonnull(a);
    write_n(a, 1, count);
    *shared = s;
    return a;
}

/* A fresh chain at path and two writers on it; returns its region. */
static fm_audit_shared *open_pair(fm_audit **a, fm_audit **b)
{
    fm_audit_shared *s = fm_audit_shared_create(path);

    ck_assert_ptr_nonnull(s);
    *a = fm_audit_open(path, s);
    *b = fm_audit_open(path, s);
    ck_assert_ptr_nonnull(*a);
    ck_assert_ptr_nonnull(*b);
    return s;
}

/* Writes records first.. (count) to a fresh chain at p and returns the file's text. */
static char *fresh_chain(const char *p, int first, int count, size_t *len)
{
    fm_audit_shared *s = fm_audit_shared_create(p);
    fm_audit *a;

    ck_assert_ptr_nonnull(s);
    a = fm_audit_open(p, s);
    ck_assert_ptr_nonnull(a);
    write_n(a, first, count);
    fm_audit_close(a);
    return slurp(p, len);
}

static cJSON *parse_line(const line_t *l)
{
    cJSON *obj = cJSON_ParseWithLength(l->p, l->len);

    ck_assert_ptr_nonnull(obj);
    return obj;
}

static const char *str_item(const cJSON *obj, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));

    ck_assert_msg(s != NULL, "%s is not a string", key);
    return s;
}

static double num_item(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    ck_assert_msg(cJSON_IsNumber(item), "%s is not a number", key);
    return item->valuedouble;
}

/* Writes one record to a fresh file and returns it parsed (and its raw text). */
static cJSON *one_record(const fm_audit_record *r, char **raw, size_t *len)
{
    fm_audit_shared *s = fm_audit_shared_create(path);
    fm_audit *a;
    char err[256];
    line_t l;

    ck_assert_ptr_nonnull(s);
    a = fm_audit_open(path, s);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(fm_audit_write(a, r), 0);
    fm_audit_close(a);
    *raw = slurp(path, len);
    ck_assert_uint_gt(*len, 0);
    ck_assert_ptr_eq(memchr(*raw, '\n', *len), *raw + *len - 1);
    ck_assert_uint_le(*len, FM_AUDIT_LINE_MAX);
    for (size_t i = 0; i + 1 < *len; i++)
        ck_assert_msg((unsigned char)(*raw)[i] >= 0x20 && (*raw)[i] != 0x7f,
                      "raw control byte at %zu", i);
    ck_assert_uint_eq(verify_text(*raw, *len, err, sizeof err), 0);
    l.p = *raw;
    l.len = *len - 1;
    return parse_line(&l);
}

START_TEST(test_format_and_chain)
{
    static const char *keys[] = {"ts",     "seq",       "trace_id",  "user",   "key_id",
                                 "action", "resource",  "source_ip", "result", "status",
                                 "reason", "prev_hash", "hash"};
    static line_t lines[MAX_LINES];
    char err[256], prev[65], hex[65];
    unsigned char digest[crypto_hash_sha256_BYTES];
    size_t len, n, k = 0;
    char *text = fresh_chain(path, 1, 20, &len);
    const char *cut;
    cJSON *obj, *item;
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    n = split(text, len, lines);
    ck_assert_uint_eq(n, 20);
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 0);

    obj = parse_line(&lines[0]);
    cJSON_ArrayForEach(item, obj)
    {
        ck_assert_uint_lt(k, sizeof keys / sizeof keys[0]);
        ck_assert_str_eq(item->string, keys[k]);
        k++;
    }
    ck_assert_uint_eq(k, sizeof keys / sizeof keys[0]);
    ck_assert_uint_eq(strlen(str_item(obj, "ts")), 24);
    ck_assert(num_item(obj, "seq") == 1);
    ck_assert_str_eq(str_item(obj, "trace_id"), "trace-1");
    ck_assert_str_eq(str_item(obj, "user"), "alice");
    ck_assert_str_eq(str_item(obj, "key_id"), "k1a2b3c4");
    ck_assert_str_eq(str_item(obj, "action"), "GET /v1/tasks");
    ck_assert_str_eq(str_item(obj, "resource"), "/v1/tasks");
    ck_assert_str_eq(str_item(obj, "source_ip"), "10.0.0.7");
    ck_assert_str_eq(str_item(obj, "result"), "success");
    ck_assert(num_item(obj, "status") == 200);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "reason")));
    ck_assert_str_eq(str_item(obj, "prev_hash"), zeros);

    /* The hash is SHA-256 over the bytes before ,"hash": - checked independently. */
    cut = strstr(lines[0].p, ",\"hash\":\"");
    ck_assert_ptr_nonnull(cut);
    ck_assert_int_eq(crypto_hash_sha256(digest, (const unsigned char *)lines[0].p,
                                        (unsigned long long)(cut - lines[0].p)),
                     0);
    ck_assert_ptr_nonnull(sodium_bin2hex(hex, sizeof hex, digest, sizeof digest));
    ck_assert_str_eq(str_item(obj, "hash"), hex);
    memcpy(prev, hex, sizeof prev);
    cJSON_Delete(obj);

    for (size_t i = 1; i < n; i++) {
        obj = parse_line(&lines[i]);
        ck_assert(num_item(obj, "seq") == (double)(i + 1));
        ck_assert_str_eq(str_item(obj, "prev_hash"), prev);
        memcpy(prev, str_item(obj, "hash"), sizeof prev);
        if ((i + 1) % 3 == 0) {
            ck_assert_str_eq(str_item(obj, "result"), "failure");
            ck_assert(num_item(obj, "status") == 403);
            ck_assert_str_eq(str_item(obj, "reason"), "permission jobs:read missing");
        }
        cJSON_Delete(obj);
    }
    free(text);
}
END_TEST

START_TEST(test_edit_any_byte)
{
    static line_t lines[MAX_LINES];
    char err[256];
    size_t len, n;
    char *text = fresh_chain(path, 1, 8, &len);

    n = split(text, len, lines);
    ck_assert_uint_eq(n, 8);
    /* Every byte of line 5, its newline included. */
    for (size_t off = 0; off <= lines[4].len; off++) {
        char *copy = strdup(text);
        size_t at = (size_t)(lines[4].p - text) + off;

        ck_assert_ptr_nonnull(copy);
        copy[at] ^= 0x01;
        ck_assert_msg(verify_text(copy, len, err, sizeof err) == 5, "edit at offset %zu of line 5",
                      off);
        free(copy);
    }
    /* One byte of the user field of every line. */
    for (size_t i = 0; i < n; i++) {
        char *copy = strdup(text);
        char *u = strstr(copy + (lines[i].p - text), "\"alice\"");
        char want[64];

        ck_assert_ptr_nonnull(copy);
        ck_assert_ptr_nonnull(u);
        u[1] = 'A';
        ck_assert_uint_eq(verify_text(copy, len, err, sizeof err), i + 1);
        (void)snprintf(want, sizeof want, "seq %zu: hash mismatch (line edited)", i + 1);
        ck_assert_str_eq(err, want);
        free(copy);
    }
    free(text);
}
END_TEST

START_TEST(test_delete_swap_insert)
{
    static line_t lines[MAX_LINES], other[MAX_LINES], mixed[MAX_LINES];
    char err[256], other_path[160];
    size_t len, olen, jlen;
    char *text = fresh_chain(path, 1, 8, &len), *otext, *j;
    size_t deleted[] = {0, 1, 2, 3, 5, 6, 7};
    size_t swapped[] = {0, 1, 2, 4, 3, 5, 6, 7};
    size_t duplicated[] = {0, 1, 2, 2, 3, 4, 5, 6, 7};
    size_t ends_early[] = {0, 1, 2, 3, 4};

    ck_assert_uint_eq(split(text, len, lines), 8);

    j = join(lines, deleted, 7, &jlen);
    ck_assert_uint_eq(verify_text(j, jlen, err, sizeof err), 5);
    ck_assert_str_eq(err, "seq 6: expected seq 5 (line missing, reordered or inserted)");
    free(j);

    j = join(lines, swapped, 8, &jlen);
    ck_assert_uint_eq(verify_text(j, jlen, err, sizeof err), 4);
    free(j);

    j = join(lines, duplicated, 9, &jlen);
    ck_assert_uint_eq(verify_text(j, jlen, err, sizeof err), 4);
    free(j);

    /* Line 7 of another chain (valid there, right seq) inserted after line 6. */
    (void)snprintf(other_path, sizeof other_path, "%s/other.log", dir);
    otext = fresh_chain(other_path, 101, 7, &olen);
    ck_assert_uint_eq(split(otext, olen, other), 7);
    memcpy(mixed, lines, 6 * sizeof *lines);
    mixed[6] = other[6];
    mixed[7] = lines[6];
    mixed[8] = lines[7];
    ck_assert_uint_eq(verify_lines(mixed, 9, err, sizeof err), 7);
    ck_assert_str_eq(err, "seq 7: prev_hash does not match the previous line (line missing, "
                          "reordered or inserted)");
    free(otext);

    /* Truncation at a line boundary is not detectable from the lines alone. */
    j = join(lines, ends_early, 5, &jlen);
    ck_assert_uint_eq(verify_text(j, jlen, err, sizeof err), 0);
    free(j);
    free(text);
}
END_TEST

START_TEST(test_verify_from_middle)
{
    static line_t lines[MAX_LINES];
    char err[256], prev[65];
    long long seq = 0;
    size_t len;
    char *text = fresh_chain(path, 1, 10, &len);

    ck_assert_uint_eq(split(text, len, lines), 10);
    memcpy(prev, zeros, sizeof prev);
    for (size_t i = 3; i < 10; i++)
        ck_assert_int_eq(
            fm_audit_verify_line(lines[i].p, lines[i].len, prev, &seq, err, sizeof err), 0);
    ck_assert_int_eq(seq, 10);
    ck_assert_uint_eq(strlen(prev), 64);

    seq = 0;
    ck_assert_int_eq(fm_audit_verify_line("not json", 8, prev, &seq, err, sizeof err), FM_EPARSE);
    ck_assert_str_eq(err, "line after seq 0: malformed record (no hash at end)");
    ck_assert_int_eq(seq, 0);
}
END_TEST

START_TEST(test_escaping)
{
    const char *user = "a\"b\\c\r\nd\te\x01"
                       "f\x1f\x7fg \xc3\xa9 \xe2\x80\xa8 \xff\xc0\xaf end";
    const char *want = "a\"b\\c\r\nd\te\x01"
                       "f\x1f\x7fg \xc3\xa9 \xe2\x80\xa8 \xc3\xbf\xc3\x80\xc2\xaf end";
    /* NEL, U+2029, RLO, LRI, PDI, RLM: valid UTF-8 that breaks lines or reorders them. */
    const char *uni = "x\xc2\x85y\xe2\x80\xa9z\xe2\x80\xae\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8f";
    fm_audit_record r = {.trace_id = "tr\"ace",
                         .user = user,
                         .key_id = "k\\1",
                         .action = "GET /v1/tasks\r\nX-Injected: 1",
                         .resource = "/v1/\x1b[31mred",
                         .source_ip = uni,
                         .status = 400,
                         .reason = "bad\x01request"};
    size_t len;
    char *raw;
    cJSON *obj = one_record(&r, &raw, &len);

    ck_assert_str_eq(str_item(obj, "user"), want);
    ck_assert_str_eq(str_item(obj, "trace_id"), "tr\"ace");
    ck_assert_str_eq(str_item(obj, "key_id"), "k\\1");
    ck_assert_str_eq(str_item(obj, "action"), "GET /v1/tasks\r\nX-Injected: 1");
    ck_assert_str_eq(str_item(obj, "resource"), "/v1/\x1b[31mred");
    ck_assert_str_eq(str_item(obj, "reason"), "bad\x01request");
    ck_assert_str_eq(str_item(obj, "result"), "failure");
    ck_assert_ptr_nonnull(strstr(raw, "\"action\":\"GET /v1/tasks\\u000d\\u000aX-Injected: 1\""));
    ck_assert_str_eq(str_item(obj, "source_ip"), uni);
    ck_assert_ptr_nonnull(
        strstr(raw, "\"source_ip\":\"x\\u0085y\\u2029z\\u202e\\u2066\\u2069\\u200f\""));
    ck_assert_ptr_nonnull(strstr(raw, "\\u2028"));
    cJSON_Delete(obj);
    free(raw);
}
END_TEST

START_TEST(test_forged_line)
{
    fm_audit_record r = {.trace_id = "t",
                         .user = "x\n{\"user\":\"admin\"}",
                         .key_id = NULL,
                         .action = "GET /",
                         .resource = "/",
                         .source_ip = "10.0.0.7",
                         .status = 200,
                         .reason = "\"},\"user\":\"admin\",\"x\":{\""};
    size_t len;
    char *raw;
    cJSON *obj = one_record(&r, &raw, &len);

    ck_assert_str_eq(str_item(obj, "user"), "x\n{\"user\":\"admin\"}");
    ck_assert_str_eq(str_item(obj, "reason"), "\"},\"user\":\"admin\",\"x\":{\"");
    ck_assert_int_eq(cJSON_GetArraySize(obj), 13);
    cJSON_Delete(obj);
    free(raw);
}
END_TEST

START_TEST(test_null_fields_and_result)
{
    /* The last two: failed (a download that ended short after its 200) is a failure too. */
    static const int status[] = {200, 399, 400, 401, 503, 200, 503};
    static const char *result[] = {"success", "success", "failure", "failure",
                                   "failure", "failure", "failure"};

    for (size_t i = 0; i < sizeof status / sizeof status[0]; i++) {
        fm_audit_record r = {.action = "GET /",
                             .resource = "/",
                             .source_ip = "10.0.0.7",
                             .status = status[i],
                             .failed = i >= 5};
        size_t len;
        char *raw;
        cJSON *obj;

        (void)unlink(path);
        obj = one_record(&r, &raw, &len);
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "trace_id")));
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "user")));
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "key_id")));
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, "reason")));
        ck_assert_str_eq(str_item(obj, "result"), result[i]);
        ck_assert(num_item(obj, "status") == status[i]);
        cJSON_Delete(obj);
        free(raw);
    }
}
END_TEST

/* The record's "truncated" list, printed compactly, is want. */
static void expect_truncated(const cJSON *obj, const char *want)
{
    char *got = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(obj, "truncated"));

    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    cJSON_free(got);
}

/* A value is redacted whole and cut afterwards: a key across the cut leaves nothing of itself. */
START_TEST(test_cut_after_redaction)
{
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char value[FM_AUDIT_FIELD_MAX + 128], *raw;
    fm_audit_record r = {.trace_id = "t", .action = value, .resource = "/", .status = 401};
    size_t len;
    cJSON *obj;

    memset(value, 'x', FM_AUDIT_FIELD_MAX - 5);
    (void)snprintf(value + FM_AUDIT_FIELD_MAX - 5, sizeof value - (FM_AUDIT_FIELD_MAX - 5),
                   "%s tail", key);
    obj = one_record(&r, &raw, &len);
    ck_assert_ptr_null(strstr(raw, "0123456789abcdef"));
    ck_assert_ptr_null(strstr(raw, "01234567"));
    expect_truncated(obj, "[\"action\"]");
    ck_assert_uint_le(strlen(str_item(obj, "action")), FM_AUDIT_FIELD_MAX);
    cJSON_Delete(obj);
    free(raw);
}
END_TEST

START_TEST(test_long_fields)
{
    size_t big = 100000, len;
    char *ctl = malloc(big + 1), *plain = malloc(big + 1), *utf = malloc(big + 1), *raw;
    fm_audit_record r;
    cJSON *obj;
    const char *u;

    ck_assert_ptr_nonnull(ctl);
    ck_assert_ptr_nonnull(plain);
    ck_assert_ptr_nonnull(utf);
    memset(ctl, 0x01, big);
    memset(plain, 'x', big);
    for (size_t i = 0; i < big; i += 2) {
        utf[i] = '\xc3';
        utf[i + 1] = '\xa9';
    }
    ctl[big] = plain[big] = utf[big] = '\0';

    /* Worst case: every field expands sixfold. */
    r = (fm_audit_record){ctl, ctl, ctl, ctl, ctl,  ctl,        500,  ctl,
                          ctl, ctl, ctl, ctl, true, UINT64_MAX, false};
    obj = one_record(&r, &raw, &len);
    ck_assert_uint_eq(strlen(str_item(obj, "user")), 1024 / 6);
    ck_assert_uint_eq(strlen(str_item(obj, "owner")), FM_AUDIT_SHORT_FIELD_MAX / 6);
    ck_assert_double_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, "bytes")),
                        (double)UINT64_MAX);
    expect_truncated(obj, "[\"trace_id\",\"user\",\"key_id\",\"action\",\"resource\",\"source_ip\","
                          "\"reason\",\"task_id\",\"worker\",\"permission\",\"owner\"]");
    cJSON_Delete(obj);
    free(raw);

    (void)unlink(path);
    r = (fm_audit_record){plain, utf,  plain, plain, plain, plain, 200,  plain,
                          NULL,  NULL, NULL,  NULL,  false, 0,     false};
    obj = one_record(&r, &raw, &len);
    ck_assert_uint_eq(strlen(str_item(obj, "trace_id")), 1024);
    ck_assert_int_eq(strncmp(str_item(obj, "trace_id"), plain, 1024), 0);
    u = str_item(obj, "user");
    ck_assert_uint_eq(strlen(u), 1024);
    ck_assert_int_eq(strncmp(u, utf, 1024), 0);
    cJSON_Delete(obj);
    free(raw);

    /* FM_AUDIT_FIELD_MAX bytes fit, one more is cut and marked; short fields are not marked. */
    (void)unlink(path);
    plain[FM_AUDIT_FIELD_MAX] = '\0';
    ctl[FM_AUDIT_FIELD_MAX / 6] = '\0';
    r = (fm_audit_record){plain, "alice", NULL, plain, "/",   "10.0.0.7", 200,  ctl,
                          NULL,  NULL,    NULL, NULL,  false, 0,          false};
    obj = one_record(&r, &raw, &len);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(obj, "truncated"));
    cJSON_Delete(obj);
    free(raw);
    (void)unlink(path);
    plain[FM_AUDIT_FIELD_MAX] = 'x';
    plain[FM_AUDIT_FIELD_MAX + 1] = '\0';
    ctl[FM_AUDIT_FIELD_MAX / 6] = 0x01;
    ctl[FM_AUDIT_FIELD_MAX / 6 + 1] = '\0';
    r = (fm_audit_record){"t",  "alice", NULL, plain, "/",   "10.0.0.7", 200,  ctl,
                          NULL, NULL,    NULL, NULL,  false, 0,          false};
    obj = one_record(&r, &raw, &len);
    ck_assert_uint_eq(strlen(str_item(obj, "action")), FM_AUDIT_FIELD_MAX);
    expect_truncated(obj, "[\"action\",\"reason\"]");
    cJSON_Delete(obj);
    free(raw);
    free(ctl);
    free(plain);
    free(utf);
}
END_TEST

START_TEST(test_concurrent_writers)
{
    enum { CHILDREN = 4, EACH = 500 };
    static line_t lines[MAX_LINES];
    fm_audit_shared *s = fm_audit_shared_create(path);
    pid_t pids[CHILDREN];
    int next[CHILDREN] = {0};
    char err[256], last_ts[FM_RFC3339_MAX] = "";
    size_t len, n;
    char *text;

    ck_assert_ptr_nonnull(s);
    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] == 0) {
            fm_audit *a = fm_audit_open(path, s);
            char trace[32];
            int rc = a == NULL;

            for (int i = 0; i < EACH && rc == 0; i++) {
                fm_audit_record r = record(trace, sizeof trace, i);
                (void)snprintf(trace, sizeof trace, "c%d-%d", c, i);
                rc = fm_audit_write(a, &r) != 0;
            }
            fm_audit_close(a);
            _exit(rc);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    text = slurp(path, &len);
    n = split(text, len, lines);
    ck_assert_uint_eq(n, CHILDREN * EACH);
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        cJSON *obj = parse_line(&lines[i]);
        int c, k;

        ck_assert(num_item(obj, "seq") == (double)(i + 1));
        /* Stamped before the lock, yet never older than the record before (fixed width: strcmp). */
        ck_assert_str_ge(str_item(obj, "ts"), last_ts);
        (void)snprintf(last_ts, sizeof last_ts, "%s", str_item(obj, "ts"));
        /* Each child's records appear in the order it wrote them. */
        ck_assert_int_eq(sscanf(str_item(obj, "trace_id"), "c%d-%d", &c, &k), 2);
        ck_assert_int_ge(c, 0);
        ck_assert_int_lt(c, CHILDREN);
        ck_assert_int_eq(k, next[c]);
        next[c]++;
        cJSON_Delete(obj);
    }
    free(text);
}
END_TEST

/*
 * A child blocks in write(2) on a full FIFO while holding the lock, and is
 * killed. The next writer must get through and continue the chain.
 */
START_TEST(test_owner_killed_holding_lock)
{
    static line_t lines[MAX_LINES], flines[MAX_LINES];
    char fifo[160], err[256], pipe_text[65536];
    fm_audit_shared *s;
    fm_audit *a = open_chain(3, &s);
    size_t len, n, fn, got = 0;
    int rfd, prev = -1, stable = 0, status;
    char *text;
    cJSON *obj;
    line_t l;
    pid_t pid;

    (void)snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(rfd, 0);
    ck_assert_int_ge(fcntl(rfd, F_SETPIPE_SZ, 4096), 0);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fm_audit *c = fm_audit_open(fifo, s);
        char trace[32];

        for (int i = 0; c != NULL; i++) {
            fm_audit_record r = record(trace, sizeof trace, 100 + i);
            if (fm_audit_write(c, &r) != 0)
                break;
        }
        _exit(2);
    }
    /* Wait until the pipe stops filling: the child is blocked inside the lock. */
    for (int i = 0; i < 200 && stable < 6; i++) {
        int avail = 0;
        struct timespec ts = {0, 50 * 1000 * 1000};

        ck_assert_int_eq(ioctl(rfd, FIONREAD, &avail), 0);
        stable = avail > 0 && avail == prev ? stable + 1 : 0;
        prev = avail;
        (void)nanosleep(&ts, NULL);
    }
    ck_assert_int_ge(stable, 6);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    (void)alarm(10); /* a wedged lock fails the test instead of hanging it */
    write_n(a, 4, 2);
    (void)alarm(0);
    fm_audit_close(a);

    for (;;) {
        ssize_t r = read(rfd, pipe_text + got, sizeof pipe_text - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    (void)close(rfd);
    fn = split(pipe_text, got, flines);
    ck_assert_uint_gt(fn, 0);
    ck_assert_int_eq(pipe_text[got - 1], '\n');

    /* Chain order: file lines 1-3, the child's lines, the two written after the kill. */
    text = slurp(path, &len);
    n = split(text, len, lines);
    ck_assert_uint_eq(n, 5);
    l = lines[3];
    obj = parse_line(&l);
    ck_assert(num_item(obj, "seq") == (double)(3 + fn + 1));
    cJSON_Delete(obj);
    memmove(lines + 3 + fn, lines + 3, 2 * sizeof *lines);
    memcpy(lines + 3, flines, fn * sizeof *lines);
    ck_assert_uint_eq(verify_lines(lines, 3 + fn + 2, err, sizeof err), 0);
    free(text);
}
END_TEST

START_TEST(test_reopen_after_rename)
{
    static line_t olines[MAX_LINES], nlines[MAX_LINES], all[MAX_LINES];
    fm_audit *a, *b;
    char old[160], err[256];
    size_t olen, nlen, on, nn;
    char *otext, *ntext;

    (void)open_pair(&a, &b);

    write_n(a, 1, 5);
    (void)snprintf(old, sizeof old, "%s.1", path);
    ck_assert_int_eq(rename(path, old), 0);
    ck_assert_int_eq(fm_audit_reopen(a), 0);
    write_n(a, 6, 1);
    /*
     * b has not reopened yet, but a has written to the new file: b follows it
     * there, so the old file stays a prefix of the chain (audit-verify old new).
     */
    write_n(b, 7, 1);
    ck_assert_int_eq(fm_audit_reopen(b), 0);
    write_n(b, 8, 1);
    write_n(a, 9, 1);
    fm_audit_close(a);
    fm_audit_close(b);

    otext = slurp(old, &olen);
    ntext = slurp(path, &nlen);
    on = split(otext, olen, olines);
    nn = split(ntext, nlen, nlines);
    ck_assert_uint_eq(on, 5);
    ck_assert_uint_eq(nn, 4);

    /* File after file, the two form one chain: 1-5 old, 6-9 new. */
    memcpy(all, olines, 5 * sizeof *all);
    memcpy(all + 5, nlines, 4 * sizeof *all);
    ck_assert_uint_eq(verify_lines(all, 9, err, sizeof err), 0);
    free(otext);
    free(ntext);
}
END_TEST

/* Lines in the file at p. */
static size_t file_lines(const char *p)
{
    static line_t lines[MAX_LINES];
    size_t len, n;
    char *text = slurp(p, &len);

    n = split(text, len, lines);
    free(text);
    return n;
}

/* The file at p (np lines) followed by the one at q (nq lines) verify as one chain. */
static void expect_chain(const char *p, size_t np, const char *q, size_t nq)
{
    static line_t lines[MAX_LINES];
    size_t plen, qlen;
    char *pt = slurp(p, &plen), *qt = slurp(q, &qlen), *all = malloc(plen + qlen + 1), err[256];

    ck_assert_ptr_nonnull(all);
    memcpy(all, pt, plen);
    memcpy(all + plen, qt, qlen + 1);
    ck_assert_uint_eq(file_lines(p), np);
    ck_assert_uint_eq(file_lines(q), nq);
    ck_assert_uint_eq(split(all, plen + qlen, lines), np + nq);
    ck_assert_msg(verify_lines(lines, np + nq, err, sizeof err) == 0, "%s", err);
    free(pt);
    free(qt);
    free(all);
}

/* Copies what the open file fd holds to a new file at to. */
static void copy_out(int fd, const char *to)
{
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char buf[8192];
    ssize_t r;

    ck_assert_int_ge(out, 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    while ((r = read(fd, buf, sizeof buf)) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)r), r);
    (void)close(out);
}

/*
 * A deleted audit file is recreated at the path and the chain continues
 * there; if the path cannot be created, the record is refused. Nothing ever
 * goes to the deleted file.
 */
START_TEST(test_deleted_file)
{
    fm_audit_shared *s;
    fm_audit *a = open_chain(3, &s);
    char old[160], moved[160], trace[32];
    fm_audit_record r = record(trace, sizeof trace, 6);
    struct stat before, after;
    int fd = open(path, O_RDONLY);

    (void)snprintf(old, sizeof old, "%s.old", path);
    (void)snprintf(moved, sizeof moved, "%s.moved", dir);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &before), 0);
    ck_assert_int_eq(unlink(path), 0);
    write_n(a, 4, 2);
    ck_assert_int_eq(fstat(fd, &after), 0);
    ck_assert_int_eq(after.st_size, before.st_size);
    copy_out(fd, old);
    expect_chain(old, 3, path, 2);
    (void)close(fd);

    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &before), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rename(dir, moved), 0); /* the path's directory is gone */
    errno = 0;
    ck_assert_int_eq(fm_audit_write(a, &r), FM_ESYS);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(rename(moved, dir), 0);
    ck_assert_int_eq(fstat(fd, &after), 0);
    ck_assert_int_eq(after.st_size, before.st_size);
    (void)close(fd);
    fm_audit_close(a);
    fm_audit_shared_free(s);
}
END_TEST

/*
 * A file at the path that is not the open one (a rotation's new file, or
 * another file renamed over it) is followed at once, before SIGUSR1. Renamed
 * away with nothing at the path yet: the renamed file keeps the records and
 * the path is not created (logrotate creates it).
 */
START_TEST(test_replaced_file)
{
    fm_audit_shared *s;
    fm_audit *a = open_chain(2, &s);
    char other[160], rotated[160];
    int fd;

    (void)snprintf(other, sizeof other, "%s.other", path);
    (void)snprintf(rotated, sizeof rotated, "%s.1", path);
    ck_assert_int_eq(rename(path, rotated), 0);
    write_n(a, 3, 1);
    ck_assert_int_eq(access(path, F_OK), -1);

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600); /* logrotate's create */
    ck_assert_int_ge(fd, 0);
    (void)close(fd);
    write_n(a, 4, 2);
    expect_chain(rotated, 3, path, 2);

    fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    (void)close(fd);
    ck_assert_int_eq(rename(other, path), 0); /* replaces the file holding 4 and 5 */
    write_n(a, 6, 1);
    ck_assert_uint_eq(file_lines(path), 1);
    fm_audit_close(a);
    fm_audit_shared_free(s);
}
END_TEST

/* fdatasync calls by mode: counted in the shared region, the same for every writer of a chain. */
START_TEST(test_sync_modes)
{
    static const struct {
        fm_audit_sync mode;
        int ms;
        unsigned long long after_writes, after_close;
    } cases[] = {
        {FM_AUDIT_SYNC_NONE, 1000, 0, 0},
        {FM_AUDIT_SYNC_ALWAYS, 1000, 5, 6},
        {FM_AUDIT_SYNC_INTERVAL, 3600000, 0, 1}, /* not due yet: only the clean exit syncs */
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fm_audit *a, *watch;
        fm_audit_shared *s;

        (void)unlink(path);
        s = open_pair(&a, &watch);
        fm_audit_set_sync(a, cases[i].mode, cases[i].ms);
        write_n(a, 1, 5);
        ck_assert_uint_eq(fm_audit_syncs(watch), cases[i].after_writes);
        fm_audit_close(a);
        ck_assert_uint_eq(fm_audit_syncs(watch), cases[i].after_close);
        fm_audit_close(watch);
        fm_audit_shared_free(s);
    }
}
END_TEST

/*
 * interval (1 s, so that a slow machine cannot stretch the test past it):
 * a record written when the last sync is older than the interval
 * is synced; the time of the last sync is shared, so a second writer right
 * after does not sync again.
 */
START_TEST(test_sync_interval_shared)
{
    const struct timespec pause = {1, 50 * 1000 * 1000};
    fm_audit *a, *b;
    fm_audit_shared *s = open_pair(&a, &b);

    fm_audit_set_sync(a, FM_AUDIT_SYNC_INTERVAL, 1000);
    fm_audit_set_sync(b, FM_AUDIT_SYNC_INTERVAL, 1000);
    write_n(a, 1, 1);
    ck_assert_uint_eq(fm_audit_syncs(a), 0);
    ck_assert_int_eq(nanosleep(&pause, NULL), 0);
    write_n(a, 2, 1);
    ck_assert_uint_eq(fm_audit_syncs(a), 1);
    write_n(b, 3, 2);
    ck_assert_uint_eq(fm_audit_syncs(b), 1);
    ck_assert_int_eq(nanosleep(&pause, NULL), 0);
    write_n(b, 5, 1);
    ck_assert_uint_eq(fm_audit_syncs(a), 2);
    fm_audit_close(a);
    fm_audit_close(b);
    fm_audit_shared_free(s);
}
END_TEST

/*
 * A record that cannot be synced fails like a write that failed: the chain
 * does not advance. A FIFO takes the write but refuses fdatasync (EINVAL).
 */
START_TEST(test_sync_failure)
{
    fm_audit_shared *s = fm_audit_shared_create(path);
    char fifo[160], trace[32], err[256];
    fm_audit_record r = record(trace, sizeof trace, 1);
    fm_audit *bad, *good;
    size_t len;
    char *text;

    (void)snprintf(fifo, sizeof fifo, "%s.fifo", path);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    bad = fm_audit_open(fifo, s);
    ck_assert_ptr_nonnull(bad);
    fm_audit_set_sync(bad, FM_AUDIT_SYNC_ALWAYS, 1000);
    ck_assert_int_eq(fm_audit_write(bad, &r), FM_ESYS);
    ck_assert_int_eq(fm_metrics_get(FM_MET_AUDIT_WRITE_FAILURES), 1);
    ck_assert_uint_eq(fm_audit_syncs(bad), 0);
    good = fm_audit_open(path, s);
    ck_assert_ptr_nonnull(good);
    write_n(good, 1, 1);
    fm_audit_close(good);
    text = slurp(path, &len);
    ck_assert_ptr_nonnull(strstr(text, "\"seq\":1,"));
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 0);
    free(text);
    fm_audit_close(bad);
    fm_audit_shared_free(s);
}
END_TEST

START_TEST(test_restart_and_foreign_writer)
{
    fm_audit_shared *s1 = fm_audit_shared_create(path), *s2;
    fm_audit *a1, *a2;
    char err[256], junk[] = "{\"ts\":\"2026-";
    size_t len;
    char *text;
    int fd;

    ck_assert_ptr_nonnull(s1);
    a1 = fm_audit_open(path, s1);
    ck_assert_ptr_nonnull(a1);
    write_n(a1, 1, 4);

    /* A second master (its own region) picks the chain up from the file. */
    s2 = fm_audit_shared_create(path);
    ck_assert_ptr_nonnull(s2);
    a2 = fm_audit_open(path, s2);
    ck_assert_ptr_nonnull(a2);
    for (int i = 0; i < 6; i++)
        write_n(i % 2 ? a1 : a2, 5 + i, 1);
    text = slurp(path, &len);
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 0);
    free(text);

    /* A torn last line: the next record starts on a line of its own and links past it. */
    fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, junk, strlen(junk)), (ssize_t)strlen(junk));
    (void)close(fd);
    write_n(a1, 11, 1);
    fm_audit_close(a1);
    fm_audit_close(a2);
    text = slurp(path, &len);
    {
        static line_t lines[MAX_LINES];
        size_t n = split(text, len, lines);

        ck_assert_uint_eq(n, 12);
        ck_assert_uint_eq(lines[10].len, strlen(junk));
        ck_assert_uint_eq(verify_lines(lines, 12, err, sizeof err), 11);
        lines[10] = lines[11];
        ck_assert_uint_eq(verify_lines(lines, 11, err, sizeof err), 0);
    }
    free(text);

    /* A last line nobody can link to is refused at startup. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "garbage\n", 8), 8);
    (void)close(fd);
    errno = 0;
    ck_assert_ptr_null(fm_audit_shared_create(path));
    ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(test_write_error)
{
    fm_audit_shared *s = fm_audit_shared_create(path);
    fm_audit *full, *a;
    char trace[32], err[256];
    fm_audit_record r = record(trace, sizeof trace, 1);
    size_t len;
    char *text;
    cJSON *obj;
    line_t l;

    ck_assert_ptr_nonnull(s);
    full = fm_audit_open("/dev/full", s);
    ck_assert_ptr_nonnull(full);
    errno = 0;
    ck_assert_int_eq(fm_audit_write(full, &r), FM_ESYS);
    ck_assert_int_eq(errno, ENOSPC);
    fm_audit_close(full);

    /* The failed record did not advance the chain. */
    a = fm_audit_open(path, s);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(fm_audit_write(a, &r), 0);
    fm_audit_close(a);
    text = slurp(path, &len);
    l = (line_t){text, len - 1};
    obj = parse_line(&l);
    ck_assert(num_item(obj, "seq") == 1);
    ck_assert_str_eq(str_item(obj, "prev_hash"), zeros);
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 0);
    cJSON_Delete(obj);
    free(text);

    errno = 0;
    ck_assert_int_eq(fm_audit_write(NULL, &r), FM_EINVAL);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fm_audit_open(NULL, s));
    ck_assert_ptr_null(fm_audit_open("/nonexistent-dir/audit.log", s));
    ck_assert_int_eq(errno, ENOENT);
    fm_audit_close(NULL);
}
END_TEST

/*
 * A write(2) cut short (here by RLIMIT_FSIZE in a child, SIGXFSZ ignored, so
 * that write returns the bytes that fitted) must fail the record, leave only
 * whole lines behind and not advance the chain: the next record, written
 * without the limit, links to the last whole line.
 */
START_TEST(test_torn_write)
{
    static line_t lines[MAX_LINES];
    fm_audit_shared *s;
    fm_audit *a = open_chain(3, &s);
    char err[256];
    struct stat st;
    size_t len, n;
    char *text;
    int status;
    pid_t pid;

    ck_assert_int_eq(stat(path, &st), 0);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl;
        char trace[32];
        fm_audit_record r = record(trace, sizeof trace, 4);
        struct stat after;

        /* Exit codes name the check that failed. */
        if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || getrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(10);
        rl.rlim_cur = (rlim_t)st.st_size + 100; /* a record is longer than 100 bytes */
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        errno = 0;
        if (fm_audit_write(a, &r) != FM_ESYS)
            _exit(12);
        if (errno != EIO)
            _exit(13);
        if (stat(path, &after) != 0 || after.st_size != st.st_size)
            _exit(14); /* the fragment was not cut off */
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check %d failed",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* No limit here: the chain goes on from record 3. */
    write_n(a, 5, 1);
    fm_audit_close(a);
    text = slurp(path, &len);
    ck_assert_int_eq(text[len - 1], '\n');
    n = split(text, len, lines);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(verify_lines(lines, n, err, sizeof err), 0);
    {
        cJSON *obj = parse_line(&lines[3]);

        ck_assert(num_item(obj, "seq") == 4);
        ck_assert_str_eq(str_item(obj, "trace_id"), "trace-5");
        cJSON_Delete(obj);
    }
    free(text);
}
END_TEST

/* The bytes of a record from "trace_id" to the opening quote of prev_hash. */
static void expect_mid(const char *raw, const char *want)
{
    const char *from = strstr(raw, "\"trace_id\":"), *to = strstr(raw, "\"prev_hash\":\"");

    ck_assert_ptr_nonnull(from);
    ck_assert_ptr_nonnull(to);
    ck_assert_msg(strlen(want) == (size_t)(to - from) && strncmp(from, want, strlen(want)) == 0,
                  "record is %.*s", (int)(to - from), from);
}

/*
 * task_id and worker: absent (NULL or "") leaves the record exactly as it was
 * before they existed; present, they follow reason, are escaped, redacted,
 * cut to FM_AUDIT_ID_FIELD_MAX (and named in truncated) and hashed.
 */
START_TEST(test_task_fields)
{
    static const char *keys[] = {
        "ts",     "seq",    "trace_id", "user",    "key_id", "action",    "resource",  "source_ip",
        "result", "status", "reason",   "task_id", "worker", "truncated", "prev_hash", "hash"};
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char worker[300], task_id[200];
    fm_audit_record r = {.trace_id = "t",
                         .user = "alice",
                         .action = "GET /",
                         .resource = "/",
                         .source_ip = "10.0.0.7",
                         .status = 200};
    size_t len, k = 0;
    char *raw;
    cJSON *obj, *item;

    obj = one_record(&r, &raw, &len);
    expect_mid(raw, "\"trace_id\":\"t\",\"user\":\"alice\",\"key_id\":null,\"action\":\"GET /\","
                    "\"resource\":\"/\",\"source_ip\":\"10.0.0.7\",\"result\":\"success\","
                    "\"status\":200,\"reason\":null,");
    cJSON_Delete(obj);
    free(raw);
    (void)unlink(path);
    r.task_id = "";
    r.worker = "";
    obj = one_record(&r, &raw, &len);
    ck_assert_ptr_null(strstr(raw, "task_id"));
    ck_assert_ptr_null(strstr(raw, "worker"));
    cJSON_Delete(obj);
    free(raw);

    (void)unlink(path);
    r.task_id = "0b9d2c52-8c3e-4c1e-9a7f-2f0f6c1d9e11";
    r.worker = "gpu\n\"box\"";
    obj = one_record(&r, &raw, &len);
    expect_mid(raw, "\"trace_id\":\"t\",\"user\":\"alice\",\"key_id\":null,\"action\":\"GET /\","
                    "\"resource\":\"/\",\"source_ip\":\"10.0.0.7\",\"result\":\"success\","
                    "\"status\":200,\"reason\":null,\"task_id\":\"0b9d2c52-8c3e-4c1e-9a7f-"
                    "2f0f6c1d9e11\",\"worker\":\"gpu\\u000a\\\"box\\\"\",");
    ck_assert_str_eq(str_item(obj, "worker"), "gpu\n\"box\"");
    cJSON_Delete(obj);
    free(raw);

    /* Only worker; a secret in task_id is redacted; a long worker is cut and marked. */
    (void)unlink(path);
    memset(worker, 'w', sizeof worker - 1);
    worker[sizeof worker - 1] = '\0';
    (void)snprintf(task_id, sizeof task_id, "id-%s", key);
    r.task_id = task_id;
    r.worker = worker;
    obj = one_record(&r, &raw, &len);
    ck_assert_ptr_null(strstr(raw, key));
    ck_assert_ptr_nonnull(strstr(str_item(obj, "task_id"), "[REDACTED]"));
    ck_assert_uint_eq(strlen(str_item(obj, "worker")), FM_AUDIT_ID_FIELD_MAX);
    expect_truncated(obj, "[\"worker\"]");
    cJSON_ArrayForEach(item, obj)
    {
        ck_assert_uint_lt(k, sizeof keys / sizeof keys[0]);
        ck_assert_str_eq(item->string, keys[k]);
        k++;
    }
    ck_assert_uint_eq(k, sizeof keys / sizeof keys[0]);
    cJSON_Delete(obj);
    free(raw);
}
END_TEST

/* A chain mixing records with and without the task fields verifies; an edited worker does not. */
START_TEST(test_task_fields_chain)
{
    fm_audit_shared *s = fm_audit_shared_create(path);
    fm_audit *a = fm_audit_open(path, s);
    fm_audit_record r = {.action = "SWEEP /v1/tasks/x", .resource = "/v1/tasks/x", .status = 200};
    char err[256], *text, *at;
    size_t len;

    ck_assert_ptr_nonnull(a);
    write_n(a, 1, 2);
    r.task_id = "x";
    r.worker = "bob/gpu1";
    r.reason = "requeued";
    ck_assert_int_eq(fm_audit_write(a, &r), FM_OK);
    write_n(a, 3, 2);
    fm_audit_close(a);
    text = slurp(path, &len);
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 0);
    at = strstr(text, "\"worker\":\"bob/gpu1\"");
    ck_assert_ptr_nonnull(at);
    at[strlen("\"worker\":\"bob/gpu")] = '2';
    ck_assert_uint_eq(verify_text(text, len, err, sizeof err), 3);
    ck_assert_ptr_nonnull(strstr(err, "hash mismatch"));
    free(text);
}
END_TEST

START_TEST(test_fields_redacted)
{
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    fm_audit_record r = {.trace_id = "t1",
                         .user = "alice",
                         .key_id = key,
                         .action = "GET /v1/tasks?token=s3cr3tvalue",
                         .resource = "/v1/tasks",
                         .source_ip = "10.0.0.7",
                         .status = 401,
                         .reason = "Authorization: Bearer abcdefXYZ123"};
    size_t len;
    char *raw;
    cJSON *obj = one_record(&r, &raw, &len);

    ck_assert_ptr_null(strstr(raw, key));
    ck_assert_ptr_null(strstr(raw, "abcdefXYZ123"));
    ck_assert_ptr_null(strstr(raw, "s3cr3tvalue"));
    ck_assert_ptr_nonnull(strstr(str_item(obj, "reason"), "[REDACTED]"));
    ck_assert_str_eq(str_item(obj, "user"), "alice");
    ck_assert_uint_eq(strlen(str_item(obj, "hash")), 64);
    cJSON_Delete(obj);
    free(raw);
}
END_TEST

/*
 * action is made from the redacted resource when it is "<METHOD> <resource>"
 * (the path is redacted once): it is still exactly the whole action redacted,
 * for paths with a configured key (whole, %-escaped, base64 split by '/'), a
 * registered secret, bytes that need escaping, and a path too long to fit.
 */
START_TEST(test_action_made_from_resource)
{
    static const char *key = "Zm9vYmFyYmF6cXV4/nicekey1234567890+/abcdefghijk";
    static const char *secret = "hunter2-very-secret";
    unsigned char d[FM_REDACT_KEY_HASH_BYTES];
    char longpath[FM_AUDIT_FIELD_MAX + 64];
    const char *methods[] = {"GET", "POST", "DELETE", "PATCH"};
    char paths[6][FM_AUDIT_FIELD_MAX + 64];

    crypto_hash_sha256(d, (const unsigned char *)key, strlen(key));
    ck_assert_int_eq(fm_redact_set_key_hashes(d, 1), FM_OK);
    ck_assert_int_eq(fm_redact_add_secret(secret), FM_OK);
    /* Short words: no run the filter would hash or drop whole (see redact_keys.c). */
    for (size_t i = 0; i + 1 < sizeof longpath; i++)
        longpath[i] = i % 4 == 0 ? '/' : i % 4 == 3 ? ' ' : 'a';
    longpath[sizeof longpath - 1] = '\0';
    (void)snprintf(paths[0], sizeof paths[0], "/v1/tasks/%s", key);
    (void)snprintf(paths[1], sizeof paths[1],
                   "/v1/tasks/Zm9vYmFyYmF6cXV4%%2Fnicekey1234567890+/abcdefghijk");
    (void)snprintf(paths[2], sizeof paths[2], "/v1/x/%s/y", secret);
    (void)snprintf(paths[3], sizeof paths[3], "/v1/\"q\\\x01\x7f/\xc3\xa9");
    (void)snprintf(paths[4], sizeof paths[4], "/v1/tasks/0b8a3f5e-3c1d-4e2a-9f00-123456789abc");
    (void)snprintf(paths[5], sizeof paths[5], "%s", longpath);
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            char action[sizeof paths[0] + 16], want[FM_AUDIT_FIELD_MAX + 64],
                got[FM_AUDIT_FIELD_MAX + 64];
            fm_audit_record r = {
                .trace_id = "t", .action = action, .resource = paths[i], .status = 200};
            size_t len;
            char *raw;
            cJSON *obj;

            (void)snprintf(action, sizeof action, "%.8s %.*s", methods[m], (int)sizeof paths[0] - 1,
                           paths[i]);
            (void)fm_redact(action, strlen(action), want, sizeof want);
            (void)unlink(path);
            obj = one_record(&r, &raw, &len);
            ck_assert_ptr_null(strstr(raw, key));
            ck_assert_ptr_null(strstr(raw, secret));
            (void)snprintf(got, sizeof got, "%s", str_item(obj, "action"));
            if (i == 5) {
                /* Cut: a prefix of the whole action redacted, and marked. */
                ck_assert_uint_eq(strncmp(got, want, strlen(got)), 0);
                ck_assert_ptr_nonnull(strstr(raw, "\"truncated\":[\"action\",\"resource\"]"));
            } else {
                ck_assert_str_eq(got, want);
            }
            cJSON_Delete(obj);
            free(raw);
        }
    }
    ck_assert_int_eq(fm_redact_set_key_hashes(NULL, 0), FM_OK);
}
END_TEST

/*
 * Where the trail may live when the pool runs under another account
 * (65534 here): a directory that account could change, or a file of
 * its, is refused; the logger opens no file of another account's.
 */
START_TEST(test_place)
{
    const uid_t me = geteuid(), other = 65534;
    char err[512], sub[160], file[200];
    fm_audit_shared *s;
    int fd;

    if (me != 0)
        return; /* chown(2) to another account needs root */
    (void)snprintf(sub, sizeof sub, "%s/logs", dir);
    (void)snprintf(file, sizeof file, "%s/audit.log", sub);
    ck_assert_int_eq(mkdir(sub, 0750), 0);
    /* Root's or the writer's, not writable by others: fine, with or without the file. */
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_OK);
    ck_assert_int_eq(chmod(sub, 0770), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "writable by its group (mode 0770) and not sticky"));
    ck_assert_int_eq(chmod(sub, 0777), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "writable by everyone"));
    ck_assert_int_eq(chmod(sub, 01770), 0); /* sticky: only a file's owner may remove it */
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_OK);
    ck_assert_int_eq(chown(sub, other, (gid_t)-1), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "belongs to uid 65534"));
    ck_assert_int_eq(fm_audit_check_place(file, other, err, sizeof err), FM_OK);
    ck_assert_int_eq(chown(sub, 0, (gid_t)-1), 0);
    /* A directory above it that another account could change (rename sub away, link one in). */
    ck_assert_int_eq(chown(dir, other, (gid_t)-1), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, dir));
    ck_assert_ptr_nonnull(strstr(err, "a directory of the audit trail's path belongs to uid 65534"));
    ck_assert_int_eq(chown(dir, 0, (gid_t)-1), 0);
    ck_assert_int_eq(chmod(dir, 0770), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_int_eq(chmod(dir, 0700), 0);

    /* The file: a regular file of the writer's that only it may write. */
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    (void)close(fd);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_OK);
    ck_assert_int_eq(chmod(file, 0620), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "mode 0620"));
    ck_assert_int_eq(chmod(file, 0600), 0);
    ck_assert_int_eq(chown(file, other, (gid_t)-1), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "of uid 65534"));

    /* Put there by another account: not opened, also when it lets anyone write (EPERM). */
    ck_assert_int_eq(chmod(file, 0666), 0);
    s = fm_audit_shared_create(file);
    ck_assert_ptr_nonnull(s);
    errno = 0;
    ck_assert_ptr_null(fm_audit_open(file, s));
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(unlink(file), 0);

    /* A symbolic link is refused by both. */
    ck_assert_int_eq(symlink(path, file), 0);
    ck_assert_int_eq(fm_audit_check_place(file, me, err, sizeof err), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a plain file"));
    errno = 0;
    ck_assert_ptr_null(fm_audit_open(file, s));
    ck_assert_int_eq(errno, ELOOP);
    ck_assert_int_eq(unlink(file), 0);
    fm_audit_shared_free(s);
    ck_assert_int_eq(rmdir(sub), 0);
}
END_TEST

static Suite *audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_format_and_chain);
    tcase_add_test(tc, test_place);
    tcase_add_test(tc, test_edit_any_byte);
    tcase_add_test(tc, test_delete_swap_insert);
    tcase_add_test(tc, test_verify_from_middle);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_forged_line);
    tcase_add_test(tc, test_null_fields_and_result);
    tcase_add_test(tc, test_long_fields);
    tcase_add_test(tc, test_cut_after_redaction);
    tcase_add_test(tc, test_concurrent_writers);
    tcase_add_test(tc, test_owner_killed_holding_lock);
    tcase_add_test(tc, test_reopen_after_rename);
    tcase_add_test(tc, test_restart_and_foreign_writer);
    tcase_add_test(tc, test_deleted_file);
    tcase_add_test(tc, test_replaced_file);
    tcase_add_test(tc, test_sync_modes);
    tcase_add_test(tc, test_sync_interval_shared);
    tcase_add_test(tc, test_sync_failure);
    tcase_add_test(tc, test_write_error);
    tcase_add_test(tc, test_torn_write);
    tcase_add_test(tc, test_fields_redacted);
    tcase_add_test(tc, test_action_made_from_resource);
    tcase_add_test(tc, test_task_fields);
    tcase_add_test(tc, test_task_fields_chain);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(audit_suite)
