/*
 * fuzz_audit.c - libFuzzer target for audit-verify's line parser
 * (fm_audit_verify_line, lib/store/audit.c): what `fetchml-admin
 * audit-verify` reads from a trail that may have been tampered with.
 *
 * Input: a trail, lines separated by '\n', verified in order as
 * audit-verify does (the chain state carried from line to line, stopping at
 * the first bad line). Each line is verified twice: as given, and with its
 * hash rewritten to the right SHA-256 of its prefix when it ends in
 * ,"hash":"<64 bytes>"}, so that the fuzzer also reaches the seq and
 * prev_hash checks. Checks:
 *   - a refusal changes neither prev_hex nor seq and gives a one-line reason;
 *   - an acceptance sets seq to the line's "seq", one more than before (or
 *     anything at the start), prev_hex to its "hash", which is the SHA-256 of
 *     the line up to ,"hash":", and the line's "prev_hash" was the previous
 *     line's hash (unless the chain started here);
 *   - an accepted line read as a checkpoint (fm_audit_checkpoint_check, with
 *     a fixed public key) is one, or is refused with a one-line reason; one
 *     whose signature verifies covers exactly the seq before it.
 */
#include "audit.h"
#include "auditsign.h"
#include "fuzz.h"

#include <cjson/cJSON.h>
#include <sodium.h>

static const char hash_key[] = ",\"hash\":\"";
#define HEX_LEN 64
#define SUFFIX_LEN (sizeof(hash_key) - 1 + HEX_LEN + 2)

static unsigned char pk[crypto_sign_PUBLICKEYBYTES]; /* of the all-zero seed */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    {
        unsigned char seed[crypto_sign_SEEDBYTES] = {0}, sk[crypto_sign_SECRETKEYBYTES];
        if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
            abort();
    }
    return 0;
}

static void sha256_hex(const char *s, size_t n, char hex[HEX_LEN + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];

    (void)crypto_hash_sha256(d, (const unsigned char *)s, n);
    (void)sodium_bin2hex(hex, HEX_LEN + 1, d, sizeof(d));
}

/* Writes the right hash into a line of the record's shape; false when it has not that shape. */
static bool fix_hash(char *line, size_t len)
{
    char hex[HEX_LEN + 1];

    if (len <= SUFFIX_LEN || memcmp(line + len - SUFFIX_LEN, hash_key, sizeof(hash_key) - 1) != 0 ||
        memcmp(line + len - 2, "\"}", 2) != 0)
        return false;
    sha256_hex(line, len - SUFFIX_LEN, hex);
    memcpy(line + len - 2 - HEX_LEN, hex, HEX_LEN);
    return true;
}

static const char *json_string(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void check_accepted(const char *line, size_t len, const char *prev_before,
                           long long seq_before, const char *prev_hex, long long seq)
{
    cJSON *o = cJSON_ParseWithLength(line, len);
    const cJSON *jseq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    const char *hash = json_string(o, "hash"), *prev = json_string(o, "prev_hash");
    char want[HEX_LEN + 1];

    if (!cJSON_IsNumber(jseq) || jseq->valuedouble != (double)seq || hash == NULL || prev == NULL)
        fuzz_fail("audit: accepted a line whose seq, hash or prev_hash is missing or differs");
    if (seq_before != 0 && (seq != seq_before + 1 || strcmp(prev, prev_before) != 0))
        fuzz_fail("audit: accepted seq %lld after %lld, or a prev_hash that is not the last hash",
                  seq, seq_before);
    if (strlen(prev_hex) != HEX_LEN || strcmp(prev_hex, hash) != 0)
        fuzz_fail("audit: the chain head is not the accepted line's hash");
    sha256_hex(line, len - SUFFIX_LEN, want);
    if (strcmp(want, hash) != 0)
        fuzz_fail("audit: accepted a line whose hash is not the SHA-256 of its prefix");
    cJSON_Delete(o);
}

/* An accepted line as a checkpoint: none, a refused one with its reason, or a good one. */
static void check_checkpoint(const char *line, size_t len, long long seq)
{
    char err[256] = "";
    long long covered = -1;
    fm_err rc = fm_audit_checkpoint_check(line, len, pk, &covered, err, sizeof(err));

    if (rc == FM_OK && covered != seq - 1)
        fuzz_fail("audit: a checkpoint at seq %lld covers seq %lld", seq, covered);
    if (rc == FM_EINVAL || rc == FM_EPARSE)
        fuzz_check_message("audit checkpoint", err, sizeof(err));
    else if (rc != FM_OK && rc != FM_ENOTFOUND)
        fuzz_fail("audit: checkpoint check returned %d", (int)rc);
}

/* Verifies one line against the chain state; false when it is refused. */
static bool verify(const char *line, size_t len, char prev_hex[HEX_LEN + 1], long long *seq)
{
    char before[HEX_LEN + 1], err[256];
    long long seq_before = *seq;

    memcpy(before, prev_hex, sizeof(before));
    err[0] = '\0';
    if (fm_audit_verify_line(line, len, prev_hex, seq, err, sizeof(err)) != FM_OK) {
        if (*seq != seq_before || memcmp(before, prev_hex, sizeof(before)) != 0)
            fuzz_fail("audit: a refused line changed the chain state");
        fuzz_check_message("audit", err, sizeof(err));
        return false;
    }
    check_accepted(line, len, before, seq_before, prev_hex, *seq);
    check_checkpoint(line, len, *seq);
    return true;
}

/* The trail's lines in order, until one is refused; fix: rewrite each hash first. */
static void verify_trail(char *text, size_t size, bool fix)
{
    char prev_hex[HEX_LEN + 1];
    long long seq = 0;

    memset(prev_hex, '0', HEX_LEN);
    prev_hex[HEX_LEN] = '\0';
    for (size_t at = 0; at < size;) {
        char *nl = memchr(text + at, '\n', size - at);
        size_t len = nl != NULL ? (size_t)(nl - (text + at)) : size - at;

        if (len > FM_AUDIT_LINE_MAX)
            return; /* audit-verify refuses such a line before parsing it */
        if (fix && !fix_hash(text + at, len))
            return;
        if (!verify(text + at, len, prev_hex, &seq))
            return;
        at += len + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);

    if (text == NULL)
        abort();
    memcpy(text, data, size);
    verify_trail(text, size, false);
    verify_trail(text, size, true);
    free(text);
    return 0;
}
