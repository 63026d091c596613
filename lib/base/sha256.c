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

fm_err fm_sha256_begin(fm_sha256_stream *s)
{
    EVP_MD_CTX *c;

    fm_sha256_drop(s);
    if (md == NULL)
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md == NULL || (c = EVP_MD_CTX_new()) == NULL) {
        errno = ENOMEM;
        return FM_ESYS;
    }
    if (EVP_DigestInit_ex(c, md, NULL) != 1) {
        EVP_MD_CTX_free(c);
        errno = ENOMEM;
        return FM_ESYS;
    }
    s->ctx = c;
    return FM_OK;
}

fm_err fm_sha256_add(fm_sha256_stream *s, const void *p, size_t len)
{
    if (s->ctx == NULL) {
        errno = EINVAL;
        return FM_ESYS;
    }
    if (len > 0 && EVP_DigestUpdate(s->ctx, p, len) != 1) {
        errno = ENOMEM;
        return FM_ESYS;
    }
    return FM_OK;
}

fm_err fm_sha256_end(fm_sha256_stream *s, unsigned char out[FM_SHA256_BYTES])
{
    unsigned int outlen = 0;
    int ok = s->ctx != NULL && EVP_DigestFinal_ex(s->ctx, out, &outlen) == 1 &&
             outlen == FM_SHA256_BYTES;
    int e = s->ctx == NULL ? EINVAL : ENOMEM;

    fm_sha256_drop(s);
    if (ok)
        return FM_OK;
    memset(out, 0, FM_SHA256_BYTES);
    errno = e;
    return FM_ESYS;
}

void fm_sha256_drop(fm_sha256_stream *s)
{
    EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
}
