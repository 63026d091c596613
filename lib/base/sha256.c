/*
 * sha256.c - SHA-256 through libcrypto's EVP interface (sha256.h says why).
 *
 * The algorithm is fetched and the context made once per process: in
 * OpenSSL 3 both are allocations and a provider lookup that cost more than
 * hashing a short input, and EVP_DigestInit_ex on a kept context resets it.
 */
#include "sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

static EVP_MD *md;
static EVP_MD_CTX *ctx;

fm_err fm_sha256_parts(unsigned char out[FM_SHA256_BYTES], const fm_sha256_part *parts, size_t n)
{
    unsigned int outlen = 0;

    if (md == NULL)
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (ctx == NULL)
        ctx = EVP_MD_CTX_new();
    if (md == NULL || ctx == NULL || parts == NULL || n == 0 || EVP_DigestInit_ex(ctx, md, NULL) != 1)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && EVP_DigestUpdate(ctx, parts[i].p, parts[i].len) != 1)
            goto fail;
    if (EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == FM_SHA256_BYTES)
        return FM_OK;
fail:
    memset(out, 0, FM_SHA256_BYTES);
    errno = ENOMEM;
    return FM_ESYS;
}

fm_err fm_sha256(unsigned char out[FM_SHA256_BYTES], const void *in, size_t len)
{
    const fm_sha256_part part = {in, len};

    return fm_sha256_parts(out, &part, 1);
}
