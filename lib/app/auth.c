/*
 * auth.c - API key authentication.
 *
 * The key is hashed before anything else looks at it, so timing and memory
 * only ever depend on the digest: the index lookup is keyed by digest bytes
 * (uniformly random, so probing reveals nothing about the key) and the final
 * comparison of the full digest is sodium_memcmp (constant time). The plain
 * key lives only on the stack of fm_auth_authenticate and is wiped on return.
 */
#include "auth.h"
#include "sha256.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

static const char checksum_domain[] = "fetchml-key-checksum:";

#define PREFIX_LEN (sizeof(FM_AUTH_KEY_PREFIX) - 1)
#define BODY_HEX 64
#define SUM_HEX 8

/* 8 lowercase hex digits of SHA-256(domain || prefix || body) into out (9 bytes). */
static void checksum(const char *prefixed_body, char out[SUM_HEX + 1])
{
    crypto_hash_sha256_state st;
    unsigned char d[crypto_hash_sha256_BYTES];

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)checksum_domain,
                              sizeof(checksum_domain) - 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)prefixed_body, PREFIX_LEN + BODY_HEX);
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(out, SUM_HEX + 1, d, SUM_HEX / 2);
}

void fm_auth_key_generate(char out[FM_AUTH_KEY_GEN_LEN + 1])
{
    unsigned char raw[BODY_HEX / 2];

    randombytes_buf(raw, sizeof(raw));
    memcpy(out, FM_AUTH_KEY_PREFIX, PREFIX_LEN);
    sodium_bin2hex(out + PREFIX_LEN, BODY_HEX + 1, raw, sizeof(raw));
    checksum(out, out + PREFIX_LEN + BODY_HEX);
    sodium_memzero(raw, sizeof(raw));
}

bool fm_auth_key_checksum_ok(const char *key, size_t n)
{
    char want[SUM_HEX + 1];

    if (n < PREFIX_LEN || sodium_memcmp(key, FM_AUTH_KEY_PREFIX, PREFIX_LEN) != 0)
        return true;
    if (n != FM_AUTH_KEY_GEN_LEN)
        return false;
    for (size_t i = PREFIX_LEN; i < n; i++)
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
            return false;
    checksum(key, want);
    /* Not secret (derivable from the key's visible part), but compared like one anyway. */
    return sodium_memcmp(want, key + PREFIX_LEN + BODY_HEX, SUM_HEX) == 0;
}

fm_err fm_auth_hash_key(const char *key, size_t len, unsigned char out[FM_KEY_HASH_BYTES])
{
    return fm_sha256(out, key, len);
}

const char *fm_auth_reason(fm_auth_status status)
{
    switch (status) {
    case FM_AUTH_OK:
        return "ok";
    case FM_AUTH_MISSING:
        return "missing_key";
    case FM_AUTH_MALFORMED:
        return "malformed_key";
    case FM_AUTH_UNKNOWN:
        return "unknown_key";
    case FM_AUTH_EXPIRED:
        return "expired";
    }
    return "unknown_key";
}

/* Keys are printable ASCII without spaces; anything else is refused before hashing. */
static bool key_chars_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] > '~')
            return false;
    return true;
}

/* Strip optional white space around a header value (RFC 9110 section 5.5). */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* Extract the token of "Bearer <token>" (scheme case-insensitive, RFC 9110 section 11.1). */
static int bearer_token(const char *auth, const char **tok, size_t *n)
{
    static const char scheme[] = "Bearer";
    const char *p = auth;
    size_t len = strlen(auth);

    trim(&p, &len);
    if (len <= sizeof(scheme) - 1 || strncasecmp(p, scheme, sizeof(scheme) - 1) != 0 ||
        (p[sizeof(scheme) - 1] != ' ' && p[sizeof(scheme) - 1] != '\t'))
        return -1;
    p += sizeof(scheme) - 1;
    len -= sizeof(scheme) - 1;
    trim(&p, &len);
    *tok = p;
    *n = len;
    return 0;
}

/*
 * The one key the request presents, or NULL with *status: MISSING when
 * neither header carries one, MALFORMED when the Authorization scheme is
 * wrong or the two headers disagree.
 */
static const char *presented_key(const char *x_api_key, const char *authorization, size_t *n,
                                 fm_auth_status *status)
{
    const char *k1 = NULL, *k2 = NULL;
    size_t n1 = 0, n2 = 0;

    if (x_api_key != NULL && *x_api_key != '\0') {
        k1 = x_api_key;
        n1 = strlen(x_api_key);
        trim(&k1, &n1);
    }
    if (authorization != NULL && *authorization != '\0' &&
        bearer_token(authorization, &k2, &n2) != 0) {
        *status = FM_AUTH_MALFORMED;
        return NULL;
    }
    if (k1 == NULL && k2 == NULL) {
        *status = FM_AUTH_MISSING;
        return NULL;
    }
    if (k1 != NULL && k2 != NULL && (n1 != n2 || sodium_memcmp(k1, k2, n1) != 0)) {
        *status = FM_AUTH_MALFORMED;
        return NULL;
    }
    *n = k1 != NULL ? n1 : n2;
    return k1 != NULL ? k1 : k2;
}

fm_err fm_auth_authenticate(const fm_config *cfg, const char *x_api_key, const char *authorization,
                            int64_t now, fm_auth_result *out)
{
    const char *key;
    size_t n = 0;
    unsigned char digest[FM_KEY_HASH_BYTES];

    if (out == NULL)
        return FM_EINVAL;
    memset(out, 0, sizeof(*out));
    out->status = FM_AUTH_MALFORMED;
    if (cfg == NULL)
        return FM_EINVAL;
    key = presented_key(x_api_key, authorization, &n, &out->status);
    if (key == NULL)
        return FM_OK;
    if (n == 0 || n > FM_AUTH_KEY_MAX || !key_chars_ok(key, n))
        return FM_OK;
    if (fm_auth_hash_key(key, n, digest) != FM_OK)
        return FM_ESYS;
    if (!fm_auth_key_checksum_ok(key, n)) {
        out->status = FM_AUTH_MALFORMED;
    } else if (!fm_config_find_key(cfg, digest, &out->user, &out->key)) {
        out->user = NULL;
        out->status = FM_AUTH_UNKNOWN;
    } else if (out->key->expires != 0 && now >= out->key->expires) {
        out->user = NULL;
        out->status = FM_AUTH_EXPIRED;
    } else {
        out->status = FM_AUTH_OK;
    }
    /* A configured key's fingerprint was made at load; any other's is made here. */
    if (out->key != NULL)
        memcpy(out->key_id, out->key->id, sizeof(out->key_id));
    else
        fm_config_key_id(digest, out->key_id);
    sodium_memzero(digest, sizeof(digest));
    return FM_OK;
}
