/*
 * sha256.h - SHA-256 (FIPS 180-4) for the request path, through OpenSSL's
 * libcrypto (EVP), which uses the CPU's SHA extensions where it has them.
 *
 * Every request hashes several times: the key lookup, the candidates of the
 * redaction filter's digest search, and the audit record's chain hash over a
 * whole line. libsodium's SHA-256 is portable C: on this project's build
 * machine (SHA-NI) it took 555 ns for 48 bytes and 7.0 us for 560, against
 * 233 ns and 1.0 us here. libsodium stays for everything else (random bytes,
 * constant-time comparison, hex).
 *
 * Not thread-safe: one digest context per process, reused (every process of
 * the pool is single-threaded; fork is fine, the child has its own copy).
 */
#ifndef FM_SHA256_H
#define FM_SHA256_H

#include <stddef.h>

#include "err.h"

#define FM_SHA256_BYTES 32

/* One piece of the message: len bytes at p. */
typedef struct fm_sha256_part {
    const void *p;
    size_t len;
} fm_sha256_part;

/*
 * fm_sha256 - out = SHA-256 of the n parts concatenated in order (n >= 1;
 * a part may be empty). Returns FM_OK; FM_ESYS (errno ENOMEM) when
 * libcrypto cannot set up or run the digest: out is then zeroed, and the
 * caller must treat the hash as not made.
 */
FM_MUST_CHECK fm_err fm_sha256_parts(unsigned char out[FM_SHA256_BYTES], const fm_sha256_part *parts,
                                     size_t n);

/* fm_sha256 - out = SHA-256 of len bytes at in. Errors as fm_sha256_parts. */
FM_MUST_CHECK fm_err fm_sha256(unsigned char out[FM_SHA256_BYTES], const void *in, size_t len);

/*
 * An incremental digest, for a message that comes in pieces (a streamed
 * upload): fm_sha256_begin, any number of fm_sha256_add, then fm_sha256_end.
 * A zeroed stream ({0}) is "not begun". Each stream has its own context (a
 * heap allocation of libcrypto's) until it is ended or dropped.
 */
typedef struct fm_sha256_stream {
    void *ctx; /* libcrypto's EVP_MD_CTX, or NULL */
} fm_sha256_stream;

/* fm_sha256_begin - start s (not begun, or ended). FM_OK; FM_ESYS (ENOMEM): s stays not begun. */
FM_MUST_CHECK fm_err fm_sha256_begin(fm_sha256_stream *s);

/* fm_sha256_add - hash len more bytes at p into a begun s. FM_OK; FM_ESYS (EINVAL: not begun). */
FM_MUST_CHECK fm_err fm_sha256_add(fm_sha256_stream *s, const void *p, size_t len);

/*
 * fm_sha256_end - out = the digest of all that was added, and s is no longer
 * begun (its context freed), also on failure. FM_OK; FM_ESYS (EINVAL: not
 * begun; ENOMEM): out zeroed.
 */
FM_MUST_CHECK fm_err fm_sha256_end(fm_sha256_stream *s, unsigned char out[FM_SHA256_BYTES]);

/* fm_sha256_drop - forget s without a digest (frees its context); a no-op when not begun. */
void fm_sha256_drop(fm_sha256_stream *s);

#endif
