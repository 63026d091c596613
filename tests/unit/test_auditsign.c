/*
 * test_auditsign.c - signed checkpoints: the key files, the checkpoint
 * record's format and chaining, and its check with good, bad, foreign and
 * missing signatures, and a trail recomputed without the key.
 */
#include "audit.h"
#include "auditsign.h"
#include "metrics.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[64], path[128], sk_path[128], pk_path[128];

static void setup(void)
{
    fm_metrics_attach(fm_metrics_create(1));
    (void)snprintf(dir, sizeof dir, "/tmp/test_auditsign.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    (void)snprintf(path, sizeof path, "%s/audit.log", dir);
    (void)snprintf(sk_path, sizeof sk_path, "%s/sign.key", dir);
    (void)snprintf(pk_path, sizeof pk_path, "%s/sign.pub", dir);
    ck_assert_int_eq(fm_audit_keygen(sk_path, pk_path, NULL, 0), FM_OK);
}

static void teardown(void)
{
    char cmd[128];

    (void)snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static fm_audit_key *load_key(const char *p)
{
    int fd = open(p, O_RDONLY);
    fm_audit_key *k;
    char err[256];

    ck_assert_int_ge(fd, 0);
    k = fm_audit_key_load(fd, err, sizeof err);
    (void)close(fd);
    return k;
}

static void records(fm_audit *a, int n)
{
    fm_audit_record r = {.trace_id = "t",
                         .user = "alice",
                         .action = "GET /x",
                         .resource = "/x",
                         .source_ip = "10.0.0.1",
                         .status = 200};

    for (int i = 0; i < n; i++)
        ck_assert_int_eq(fm_audit_write(a, &r), FM_OK);
}

/* n records and then a checkpoint, through one writer; returns whether it was written. */
static bool records_then_checkpoint(fm_audit *a, const fm_audit_key *k, int n)
{
    bool written;

    records(a, n);
    ck_assert_int_eq(fm_audit_checkpoint(a, k, &written), FM_OK);
    return written;
}

/* The file's lines, NUL-separated in one buffer (free it); *n lines. */
static char **read_lines(size_t *n)
{
    static char *lines[64];
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    ck_assert_ptr_nonnull(f);
    *n = 0;
    while ((len = getline(&line, &cap, f)) > 0 && *n < 64) {
        line[len - 1] = '\0';
        lines[(*n)++] = strdup(line);
    }
    free(line);
    (void)fclose(f);
    return lines;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
}

/* Verifies the lines as one chain from seq 1 and checks their checkpoints with pk. */
static fm_err verify(char **lines, size_t n, const unsigned char *pk, long long *signed_seq,
                     int *checkpoints)
{
    char prev[65] = "", err[256];
    long long seq = 0, covered;

    *checkpoints = 0;
    for (size_t i = 0; i < n; i++) {
        fm_err rc = fm_audit_verify_line(lines[i], strlen(lines[i]), prev, &seq, err, sizeof err);
        if (rc != FM_OK)
            return rc;
        rc = fm_audit_checkpoint_check(lines[i], strlen(lines[i]), pk, &covered, err, sizeof err);
        if (rc == FM_OK) {
            *signed_seq = covered;
            (*checkpoints)++;
        } else if (rc != FM_ENOTFOUND) {
            return rc;
        }
    }
    return FM_OK;
}

/* Rewrites each line's prev_hash and hash as a writer without the key could. */
static void recompute(char **lines, size_t n)
{
    static const char prev_key[] = "\"prev_hash\":\"";
    char prev[65];

    memset(prev, '0', 64);
    prev[64] = '\0';
    for (size_t i = 0; i < n; i++) {
        char *at = strstr(lines[i], prev_key), *out;
        unsigned char d[32];
        size_t head;

        ck_assert_ptr_nonnull(at);
        head = (size_t)(at - lines[i]) + sizeof prev_key - 1;
        out = malloc(head + 65 + sizeof ",\"hash\":\"\"}" + 64);
        ck_assert_ptr_nonnull(out);
        memcpy(out, lines[i], head);
        memcpy(out + head, prev, 64);
        out[head + 64] = '"';
        crypto_hash_sha256(d, (const unsigned char *)out, head + 65);
        (void)sodium_bin2hex(prev, sizeof prev, d, sizeof d);
        (void)snprintf(out + head + 65, sizeof ",\"hash\":\"\"}" + 64, ",\"hash\":\"%s\"}", prev);
        free(lines[i]);
        lines[i] = out;
    }
}

START_TEST(test_key_files)
{
    struct stat st;
    unsigned char pk[FM_AUDIT_PK_BYTES];
    char err[256];
    fm_audit_key *k;

    ck_assert_int_eq(stat(sk_path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(pk_path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    /* Never over an existing file, and nothing left behind by the refusal. */
    ck_assert_int_eq(fm_audit_keygen(sk_path, "/nonexistent/x.pub", err, sizeof err), FM_ESYS);
    ck_assert_int_eq(access(sk_path, F_OK), 0);
    {
        char other[160];
        (void)snprintf(other, sizeof other, "%s/other.key", dir);
        ck_assert_int_eq(fm_audit_keygen(other, pk_path, err, sizeof err), FM_ESYS);
        ck_assert_int_ne(access(other, F_OK), 0);
    }
    k = load_key(sk_path);
    ck_assert_ptr_nonnull(k);
    fm_audit_key_free(k);
    /* Each file is only what it says it is. */
    ck_assert_ptr_null(load_key(pk_path));
    ck_assert_int_eq(fm_audit_pubkey_load(sk_path, pk, err, sizeof err), FM_EPARSE);
    ck_assert_int_eq(fm_audit_pubkey_load(pk_path, pk, err, sizeof err), FM_OK);
    ck_assert_int_eq(fm_audit_pubkey_load("/nonexistent", pk, err, sizeof err), FM_ESYS);
}
END_TEST

START_TEST(test_checkpoint_format)
{
    fm_audit_shared *s = fm_audit_shared_create(path);
    fm_audit *a = fm_audit_open(path, s);
    fm_audit_key *k = load_key(sk_path);
    unsigned char pk[FM_AUDIT_PK_BYTES];
    long long signed_seq = 0;
    int checkpoints;
    size_t n;
    char **lines, err[256];
    cJSON *o;

    ck_assert_int_eq(fm_audit_pubkey_load(pk_path, pk, err, sizeof err), FM_OK);
    ck_assert(!records_then_checkpoint(a, k, 0)); /* an empty chain: nothing to sign */
    ck_assert(records_then_checkpoint(a, k, 3));
    ck_assert(!records_then_checkpoint(a, k, 0)); /* nothing new since */
    ck_assert(records_then_checkpoint(a, k, 2));
    lines = read_lines(&n);
    ck_assert_uint_eq(n, 7);
    o = cJSON_Parse(lines[3]);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "action")), "CHECKPOINT");
    ck_assert_int_eq(cJSON_GetObjectItem(o, "seq")->valueint, 4);
    ck_assert_uint_eq(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(o, "signature"))), 128);
    ck_assert_uint_eq(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(o, "key_id"))), 16);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "user")));
    cJSON_Delete(o);
    ck_assert(fm_audit_is_checkpoint(lines[3], strlen(lines[3])));
    ck_assert(!fm_audit_is_checkpoint(lines[2], strlen(lines[2])));
    ck_assert_int_eq(verify(lines, n, pk, &signed_seq, &checkpoints), FM_OK);
    ck_assert_int_eq(checkpoints, 2);
    ck_assert_int_eq(signed_seq, 6);
    free_lines(lines, n);
    fm_audit_key_free(k);
    fm_audit_close(a);
    fm_audit_shared_free(s);
}
END_TEST

/* A new trail: 3 records, a checkpoint (line 4), 1 record. */
static char **signed_trail(size_t *n, unsigned char pk[FM_AUDIT_PK_BYTES])
{
    fm_audit_shared *s;
    fm_audit *a;
    fm_audit_key *k = load_key(sk_path);
    char err[256];

    (void)unlink(path);
    s = fm_audit_shared_create(path);
    a = fm_audit_open(path, s);
    ck_assert(records_then_checkpoint(a, k, 3));
    records(a, 1);
    fm_audit_key_free(k);
    fm_audit_close(a);
    fm_audit_shared_free(s);
    ck_assert_int_eq(fm_audit_pubkey_load(pk_path, pk, err, sizeof err), FM_OK);
    return read_lines(n);
}

START_TEST(test_bad_signature)
{
    unsigned char pk[FM_AUDIT_PK_BYTES];
    long long signed_seq;
    int checkpoints;
    size_t n;
    char **lines = signed_trail(&n, pk), *sig;

    /* One hex digit of the signature changed, and the chain made right again. */
    sig = strstr(lines[3], "\"signature\":\"") + 13;
    *sig = *sig == '0' ? '1' : '0';
    recompute(lines, n);
    ck_assert_int_eq(verify(lines, n, pk, &signed_seq, &checkpoints), FM_EINVAL);
    free_lines(lines, n);
}
END_TEST

START_TEST(test_other_key)
{
    unsigned char pk[FM_AUDIT_PK_BYTES], other[FM_AUDIT_PK_BYTES];
    char osk[160], opk[160], err[256];
    long long signed_seq;
    int checkpoints;
    size_t n;
    char **lines = signed_trail(&n, pk);

    (void)snprintf(osk, sizeof osk, "%s/o.key", dir);
    (void)snprintf(opk, sizeof opk, "%s/o.pub", dir);
    ck_assert_int_eq(fm_audit_keygen(osk, opk, err, sizeof err), FM_OK);
    ck_assert_int_eq(fm_audit_pubkey_load(opk, other, err, sizeof err), FM_OK);
    ck_assert_int_eq(verify(lines, n, other, &signed_seq, &checkpoints), FM_EINVAL);
    ck_assert_int_eq(
        fm_audit_checkpoint_check(lines[3], strlen(lines[3]), other, &signed_seq, err, sizeof err),
        FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "another key"));
    free_lines(lines, n);
}
END_TEST

START_TEST(test_recomputed_chain)
{
    unsigned char pk[FM_AUDIT_PK_BYTES];
    long long signed_seq = 0;
    int checkpoints;
    size_t n;
    char **lines = signed_trail(&n, pk), *user;

    ck_assert_int_eq(verify(lines, n, pk, &signed_seq, &checkpoints), FM_OK);
    /* A record before the checkpoint rewritten, the chain recomputed: it verifies as a chain... */
    user = strstr(lines[1], "\"user\":\"alice\"");
    ck_assert_ptr_nonnull(user);
    memcpy(user + 8, "mally", 5);
    recompute(lines, n);
    {
        char prev[65] = "", err[256];
        long long seq = 0;
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(
                fm_audit_verify_line(lines[i], strlen(lines[i]), prev, &seq, err, sizeof err),
                FM_OK);
    }
    /* ...but not with its signature. */
    ck_assert_int_eq(verify(lines, n, pk, &signed_seq, &checkpoints), FM_EINVAL);
    free_lines(lines, n);
}
END_TEST

START_TEST(test_missing_and_malformed_signature)
{
    unsigned char pk[FM_AUDIT_PK_BYTES];
    long long signed_seq = 0;
    int checkpoints;
    char err[256];
    size_t n;
    char **lines = signed_trail(&n, pk), *sig, *seq;

    /* Without its checkpoint, a recomputed trail has no signature at all. */
    free(lines[3]);
    lines[3] = lines[4];
    n--;
    seq = strstr(lines[3], "\"seq\":5,");
    ck_assert_ptr_nonnull(seq);
    seq[6] = '4'; /* renumbered, as one who removes a line must */
    recompute(lines, n);
    ck_assert_int_eq(verify(lines, n, pk, &signed_seq, &checkpoints), FM_OK);
    ck_assert_int_eq(checkpoints, 0);
    free_lines(lines, n);

    lines = signed_trail(&n, pk);
    sig = strstr(lines[3], "\"signature\":\"") + 13;
    memmove(sig, sig + 2, strlen(sig + 2) + 1); /* one byte of the signature short */
    ck_assert_int_eq(
        fm_audit_checkpoint_check(lines[3], strlen(lines[3]), pk, &signed_seq, err, sizeof err),
        FM_EPARSE);
    ck_assert_int_eq(
        fm_audit_checkpoint_check(lines[2], strlen(lines[2]), pk, &signed_seq, err, sizeof err),
        FM_ENOTFOUND);
    free_lines(lines, n);
}
END_TEST

static Suite *auditsign_suite(void)
{
    Suite *s = suite_create("auditsign");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_key_files);
    tcase_add_test(tc, test_checkpoint_format);
    tcase_add_test(tc, test_bad_signature);
    tcase_add_test(tc, test_other_key);
    tcase_add_test(tc, test_recomputed_chain);
    tcase_add_test(tc, test_missing_and_malformed_signature);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(auditsign_suite)
