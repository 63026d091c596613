/*
 * auditverify.c - reading records back: the chain head from a line (for the
 * writer, after a restart or a foreign writer) and the check of one line
 * against the previous one (fetchml-admin audit-verify). A line is checked
 * as written: its bytes up to ,"hash": hash to its hash, and the parsed
 * record's seq and prev_hash link it to the line before.
 */
#include "audit.h"
#include "auditline.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include "sha256.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char audit_hash_key[] = ",\"hash\":\"";
_Static_assert(sizeof audit_hash_key - 1 == AUDIT_HASH_KEY_LEN, "AUDIT_HASH_KEY_LEN");

int audit_sha256_hex(const char *data, size_t len, char hex[HEX_LEN + 1])
{
    unsigned char digest[FM_SHA256_BYTES];

    if (fm_sha256(digest, data, len) != FM_OK)
        return -1;
    (void)sodium_bin2hex(hex, HEX_LEN + 1, digest, sizeof digest);
    return 0;
}

static bool is_hex64(const char *s)
{
    size_t i;

    for (i = 0; i < HEX_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return s[i] == '\0';
}

static int json_seq(const cJSON *obj, long long *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "seq");
    double v;

    if (!cJSON_IsNumber(item))
        return -1;
    v = item->valuedouble;
    if (!(v >= 1 && v <= (double)SEQ_MAX) || v != (double)(long long)v)
        return -1;
    *out = (long long)v;
    return 0;
}

static int json_hex(const cJSON *obj, const char *key, char out[HEX_LEN + 1])
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));

    if (s == NULL || !is_hex64(s))
        return -1;
    memcpy(out, s, HEX_LEN + 1);
    return 0;
}

int audit_parse_head(const char *line, size_t len, long long *seq, char hash[HEX_LEN + 1])
{
    cJSON *obj = cJSON_ParseWithLength(line, len);
    int rc = -1;

    if (cJSON_IsObject(obj) && json_seq(obj, seq) == 0 && json_hex(obj, "hash", hash) == 0)
        rc = 0;
    cJSON_Delete(obj);
    return rc;
}

static fm_err verify_fail(fm_err code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static fm_err verify_fail(fm_err code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/*
 * The chain link of a line that hashes right: seq must follow after (unless
 * verification starts here, after == 0) and prev_hash must be prev_hex.
 */
static fm_err verify_link(long long rseq, const char *prev, long long after, const char *prev_hex,
                          char *err, size_t errlen)
{
    /* Verification may start in the middle of a chain (a rotated file). */
    if (after == 0)
        return FM_OK;
    if (rseq != after + 1)
        return verify_fail(FM_EINVAL, err, errlen,
                           "seq %lld: expected seq %lld (line missing, reordered or inserted)",
                           rseq, after + 1);
    if (memcmp(prev, prev_hex, HEX_LEN) != 0)
        return verify_fail(FM_EINVAL, err, errlen,
                           "seq %lld: prev_hash does not match the previous line (line missing, "
                           "reordered or inserted)",
                           rseq);
    return FM_OK;
}

fm_err fm_audit_verify_line(const char *line, size_t len, char prev_hex[65], long long *seq,
                            char *err, size_t errlen)
{
    cJSON *obj = NULL;
    const char *parse_end = NULL, *stored;
    char prev[HEX_LEN + 1], hash[HEX_LEN + 1], computed[HEX_LEN + 1];
    long long rseq = 0, after;
    fm_err rc;

    if (line == NULL || prev_hex == NULL || seq == NULL || *seq < 0 || *seq >= SEQ_MAX)
        return verify_fail(FM_EINVAL, err, errlen, "invalid arguments");
    after = *seq;
    if (sodium_init() < 0)
        return verify_fail(FM_ESYS, err, errlen, "libsodium failed to initialise");
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len <= HASH_SUFFIX_LEN ||
        memcmp(line + len - HASH_SUFFIX_LEN, audit_hash_key, AUDIT_HASH_KEY_LEN) != 0 ||
        memcmp(line + len - 2, "\"}", 2) != 0)
        return verify_fail(FM_EPARSE, err, errlen,
                           "line after seq %lld: malformed record (no hash at end)", after);
    stored = line + len - 2 - HEX_LEN;

    obj = cJSON_ParseWithLengthOpts(line, len, &parse_end, 0);
    if (!cJSON_IsObject(obj) || parse_end != line + len) {
        rc = verify_fail(FM_EPARSE, err, errlen, "line after seq %lld: malformed JSON", after);
    } else if (json_seq(obj, &rseq) != 0 || json_hex(obj, "prev_hash", prev) != 0 ||
               json_hex(obj, "hash", hash) != 0 || sodium_memcmp(hash, stored, HEX_LEN) != 0) {
        rc = verify_fail(FM_EPARSE, err, errlen,
                         "line after seq %lld: missing or invalid seq/prev_hash/hash", after);
    } else {
        if (audit_sha256_hex(line, len - HASH_SUFFIX_LEN, computed) != 0)
            rc = verify_fail(FM_ESYS, err, errlen, "seq %lld: cannot hash the line", rseq);
        else if (sodium_memcmp(computed, hash, HEX_LEN) != 0)
            rc = verify_fail(FM_EINVAL, err, errlen, "seq %lld: hash mismatch (line edited)", rseq);
        else
            rc = verify_link(rseq, prev, after, prev_hex, err, errlen);
    }
    cJSON_Delete(obj);
    if (rc == FM_OK) {
        memcpy(prev_hex, hash, HEX_LEN + 1);
        *seq = rseq;
    }
    return rc;
}
