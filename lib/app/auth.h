/*
 * auth.h - API key authentication, the pipeline's key step (pipeline.h).
 *
 * A key arrives in "X-API-Key: <key>" or "Authorization: Bearer <key>" (RFC
 * 6750 section 2.1), never in the query string. It is hashed with SHA-256
 * (FIPS 180-4, libsodium) and looked up in the config's key index; the key
 * itself is never stored, logged or compared. Only a short fingerprint of the
 * hash (fm_config_key_id) may appear in logs.
 */
#ifndef FM_AUTH_H
#define FM_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

#define FM_AUTH_KEY_MAX 256 /* longest key accepted, bytes */

/*
 * Keys made by fetchml-admin look like GitHub's tokens, so secret scanners can
 * spot a leaked one and check it without a database: the prefix, 64 hex
 * digits (256 random bits) and 8 hex digits of checksum, the first 4 bytes of
 * SHA-256("fetchml-key-checksum:" || prefix || 64 hex). A key with the prefix
 * and a wrong checksum is refused as malformed before any lookup (a typo, or a
 * guess). Keys without the prefix (e.g. `openssl rand -hex 32`) stay valid.
 */
#define FM_AUTH_KEY_PREFIX "fetchml_"
#define FM_AUTH_KEY_GEN_LEN (sizeof(FM_AUTH_KEY_PREFIX) - 1 + 64 + 8)

typedef enum {
    FM_AUTH_OK,
    FM_AUTH_MISSING,   /* no credential in either header */
    FM_AUTH_MALFORMED, /* both headers disagree, wrong scheme, empty or oversized key, bad bytes */
    FM_AUTH_UNKNOWN,   /* no such key (includes revoked: removed from the file) */
    FM_AUTH_EXPIRED    /* key found but past its expires time */
} fm_auth_status;

typedef struct fm_auth_result {
    fm_auth_status status;
    const fm_user *user;            /* set for FM_AUTH_OK; points into the config */
    const fm_key *key;              /* set for FM_AUTH_OK and FM_AUTH_EXPIRED */
    char key_id[FM_KEY_ID_LEN + 1]; /* fingerprint when a credential was presented, else "" */
} fm_auth_result;

/*
 * fm_auth_authenticate - authenticate a request from its two header values
 * (FastCGI params HTTP_X_API_KEY and HTTP_AUTHORIZATION; either may be NULL).
 * When both are present they must carry the same key. now is Unix seconds,
 * compared with each key's expires. Always fills *out: the answer (accepted,
 * or why not) is out->status, not the return code.
 * Returns FM_OK when it decided; FM_ESYS when the key could not be hashed
 * (libsodium failed; out->status is then FM_AUTH_MALFORMED); FM_EINVAL for a
 * NULL cfg or out. A caller that gets anything but FM_OK must refuse the
 * request.
 */
FM_MUST_CHECK fm_err fm_auth_authenticate(const fm_config *cfg, const char *x_api_key,
                                          const char *authorization, int64_t now,
                                          fm_auth_result *out);

/*
 * fm_auth_hash_key - SHA-256 (FIPS 180-4) of key (len bytes) into out (32
 * bytes). Returns FM_OK, or FM_ESYS if libsodium fails.
 */
fm_err fm_auth_hash_key(const char *key, size_t len, unsigned char out[FM_KEY_HASH_BYTES]);

/*
 * fm_auth_key_generate - a new key in the format above from libsodium's
 * CSPRNG into out (FM_AUTH_KEY_GEN_LEN + 1 bytes, NUL-terminated). Never fails.
 * The caller should sodium_memzero it when done.
 */
void fm_auth_key_generate(char out[FM_AUTH_KEY_GEN_LEN + 1]);

/*
 * fm_auth_key_checksum_ok - for a key of n bytes with FM_AUTH_KEY_PREFIX:
 * true when its length, hex digits and checksum are right. Keys without the
 * prefix are not checked and return true.
 */
bool fm_auth_key_checksum_ok(const char *key, size_t n);

/* fm_auth_reason - stable audit reason for a status: "ok", "missing_key", "malformed_key",
 * "unknown_key", "expired". */
const char *fm_auth_reason(fm_auth_status status);

#endif
