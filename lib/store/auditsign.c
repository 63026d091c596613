/*
 * auditsign.c - the key files and the signature of checkpoints (auditsign.h
 * has the format). The checkpoint record itself is written by audit.c,
 * under the chain lock, so that the head it signs is the one it follows.
 *
 * The secret key lives in memory from sodium_malloc (guard pages, no swap
 * where mlock is allowed) and every buffer that held its text is wiped.
 */
#include "auditsign.h"
#include "auditline.h"

#include "sha256.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_TAG "fetchml-audit-ed25519-secret "
#define PUBLIC_TAG "fetchml-audit-ed25519-public "
#define TAG_LEN (sizeof SECRET_TAG - 1)
#define KEY_LINE_LEN (TAG_LEN + 2 * crypto_sign_SEEDBYTES + 1) /* with the newline */
#define SIGNED_PREFIX "fetchml-audit-checkpoint-v1\n"
#define ID_BYTES 8

_Static_assert(sizeof SECRET_TAG == sizeof PUBLIC_TAG, "one length for both tags");
_Static_assert(crypto_sign_SEEDBYTES == FM_AUDIT_PK_BYTES, "seed and public key: 32 bytes");
_Static_assert(FM_AUDIT_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "FM_AUDIT_PK_BYTES");

struct fm_audit_key {
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    char id[2 * ID_BYTES + 1];
};

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The key id of a public key: the first 8 bytes of its SHA-256, hex. */
static int key_id(const unsigned char pk[FM_AUDIT_PK_BYTES], char id[2 * ID_BYTES + 1])
{
    unsigned char d[FM_SHA256_BYTES];

    if (fm_sha256(d, pk, FM_AUDIT_PK_BYTES) != FM_OK)
        return -1;
    (void)sodium_bin2hex(id, 2 * ID_BYTES + 1, d, ID_BYTES);
    return 0;
}

/* The 32 bytes of a key line "<tag><64 hex>\n" (len bytes) into out: 0, or -1. */
static int parse_line(const char *text, size_t len, const char *tag, unsigned char out[32])
{
    size_t bin_len = 0;

    if (len != KEY_LINE_LEN || memcmp(text, tag, TAG_LEN) != 0 || text[len - 1] != '\n')
        return -1;
    if (sodium_hex2bin(out, 32, text + TAG_LEN, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
        return -1;
    return 0;
}

/* Writes the whole of a key line to a new file at path (mode); 0, or -1 with errno. */
static int write_new(const char *path, mode_t mode, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode), err;
    ssize_t n;

    if (fd < 0)
        return -1;
    /* The umask may have taken bits away (0644 public); the secret is never wider than 0600. */
    do {
        n = write(fd, text, len);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        err = n >= 0 && (size_t)n != len ? EIO : errno;
        (void)close(fd);
        (void)unlink(path);
        errno = err;
        return -1;
    }
    if (close(fd) != 0) {
        err = errno;
        (void)unlink(path);
        errno = err;
        return -1;
    }
    return 0;
}

fm_err fm_audit_keygen(const char *secret_path, const char *public_path, char *err, size_t errlen)
{
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES],
        sk[crypto_sign_SECRETKEYBYTES];
    char line[KEY_LINE_LEN + 1];
    fm_err rc = FM_ESYS;

    if (sodium_init() < 0) {
        errno = ENOSYS;
        say(err, errlen, "libsodium failed to initialise");
        return FM_ESYS;
    }
    randombytes_buf(seed, sizeof seed);
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        errno = EINVAL;
        say(err, errlen, "cannot derive the key pair");
        goto out;
    }
    memcpy(line, SECRET_TAG, TAG_LEN);
    (void)sodium_bin2hex(line + TAG_LEN, sizeof line - TAG_LEN, seed, sizeof seed);
    line[KEY_LINE_LEN - 1] = '\n';
    if (write_new(secret_path, 0600, line, KEY_LINE_LEN) != 0) {
        say(err, errlen, "%s: %s", secret_path, strerror(errno));
        goto out;
    }
    memcpy(line, PUBLIC_TAG, TAG_LEN);
    (void)sodium_bin2hex(line + TAG_LEN, sizeof line - TAG_LEN, pk, sizeof pk);
    line[KEY_LINE_LEN - 1] = '\n';
    if (write_new(public_path, 0644, line, KEY_LINE_LEN) != 0) {
        int e = errno;
        say(err, errlen, "%s: %s", public_path, strerror(e));
        (void)unlink(secret_path);
        errno = e;
        goto out;
    }
    rc = FM_OK;
out:
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(line, sizeof line);
    return rc;
}

fm_audit_key *fm_audit_key_load(int fd, char *err, size_t errlen)
{
    char text[KEY_LINE_LEN + 2];
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    fm_audit_key *key = NULL;
    ssize_t n;

    if (sodium_init() < 0) {
        say(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    do {
        n = pread(fd, text, sizeof text, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        say(err, errlen, "cannot read the audit signing key: %s", strerror(errno));
        goto out;
    }
    if (parse_line(text, (size_t)n, SECRET_TAG, seed) != 0) {
        say(err, errlen, "not an audit signing key (fetchml-admin audit-keygen writes one)");
        goto out;
    }
    if ((key = sodium_malloc(sizeof *key)) == NULL) {
        say(err, errlen, "out of memory");
        goto out;
    }
    if (crypto_sign_seed_keypair(pk, key->sk, seed) != 0 || key_id(pk, key->id) != 0) {
        say(err, errlen, "cannot derive the audit signing key");
        fm_audit_key_free(key);
        key = NULL;
    }
out:
    sodium_memzero(text, sizeof text);
    sodium_memzero(seed, sizeof seed);
    return key;
}

void fm_audit_key_free(fm_audit_key *key)
{
    if (key != NULL)
        sodium_free(key); /* wipes it */
}

fm_err fm_audit_pubkey_load(const char *path, unsigned char pk[FM_AUDIT_PK_BYTES], char *err,
                            size_t errlen)
{
    char text[KEY_LINE_LEN + 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    ssize_t n;

    if (fd < 0) {
        say(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return FM_ESYS;
    }
    n = read(fd, text, sizeof text);
    (void)close(fd);
    if (n < 0) {
        say(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return FM_ESYS;
    }
    if (parse_line(text, (size_t)n, PUBLIC_TAG, pk) != 0) {
        sodium_memzero(text, sizeof text);
        say(err, errlen, "%s: not an audit public key (fetchml-admin audit-keygen writes one)",
            path);
        return FM_EPARSE;
    }
    return FM_OK;
}

/* The signed text of head (seq, hash) into out (len bytes); its length, or 0. */
static size_t signed_text(char *out, size_t len, long long seq, const char *hash)
{
    int n = snprintf(out, len, SIGNED_PREFIX "%lld\n%.64s\n", seq, hash);

    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

int audit_sign_head(const fm_audit_key *key, long long seq, const char *hash, char sig[129],
                    char id[17])
{
    unsigned char s[crypto_sign_BYTES];
    char text[sizeof SIGNED_PREFIX + 24 + HEX_LEN + 2];
    size_t n = signed_text(text, sizeof text, seq, hash);

    if (n == 0 || crypto_sign_detached(s, NULL, (const unsigned char *)text, n, key->sk) != 0)
        return -1;
    (void)sodium_bin2hex(sig, 129, s, sizeof s);
    memcpy(id, key->id, sizeof key->id);
    return 0;
}

static const char sig_key[] = ",\"signature\":\"";

bool fm_audit_is_checkpoint(const char *line, size_t len)
{
    return memmem(line, len, sig_key, sizeof sig_key - 1) != NULL;
}

fm_err fm_audit_checkpoint_check(const char *line, size_t len,
                                 const unsigned char pk[FM_AUDIT_PK_BYTES], long long *signed_seq,
                                 char *err, size_t errlen)
{
    cJSON *obj;
    const char *sig_hex, *prev, *kid;
    const cJSON *seq;
    unsigned char sig[crypto_sign_BYTES];
    char text[sizeof SIGNED_PREFIX + 24 + HEX_LEN + 2], want_id[2 * ID_BYTES + 1];
    size_t bin_len = 0, n;
    fm_err rc;

    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (!fm_audit_is_checkpoint(line, len))
        return FM_ENOTFOUND;
    obj = cJSON_ParseWithLength(line, len);
    seq = cJSON_GetObjectItemCaseSensitive(obj, "seq");
    sig_hex = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "signature"));
    prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "prev_hash"));
    kid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "key_id"));
    if (sig_hex == NULL) {
        rc = FM_ENOTFOUND; /* the text ,"signature":" was inside another value */
    } else if (!cJSON_IsNumber(seq) || seq->valuedouble < 2 || seq->valuedouble > (double)SEQ_MAX ||
               prev == NULL || strlen(prev) != HEX_LEN || kid == NULL ||
               strlen(kid) != 2 * ID_BYTES || strspn(kid, "0123456789abcdef") != 2 * ID_BYTES ||
               sodium_hex2bin(sig, sizeof sig, sig_hex, strlen(sig_hex), NULL, &bin_len, NULL) !=
                   0 ||
               bin_len != sizeof sig || strlen(sig_hex) != 2 * sizeof sig) {
        say(err, errlen, "malformed checkpoint");
        rc = FM_EPARSE;
    } else if (key_id(pk, want_id) != 0) {
        say(err, errlen, "cannot hash the public key");
        rc = FM_ESYS;
    } else if (strcmp(kid, want_id) != 0) {
        say(err, errlen,
            "seq %lld: checkpoint signed by another key (key_id %.16s, this public key is %s)",
            (long long)seq->valuedouble, kid, want_id);
        rc = FM_EINVAL;
    } else if ((n = signed_text(text, sizeof text, (long long)seq->valuedouble - 1, prev)) == 0 ||
               crypto_sign_verify_detached(sig, (const unsigned char *)text, n, pk) != 0) {
        say(err, errlen,
            "seq %lld: bad checkpoint signature (the trail up to here was recomputed, or the "
            "checkpoint edited)",
            (long long)seq->valuedouble);
        rc = FM_EINVAL;
    } else {
        *signed_seq = (long long)seq->valuedouble - 1;
        rc = FM_OK;
    }
    cJSON_Delete(obj);
    return rc;
}
