/*
 * fuzz_redact.c - libFuzzer target for the redaction filter (lib/base/redact.c).
 *
 * Input: byte 0 chooses a smaller output capacity, byte 1 a place to plant a
 * registered secret, the rest is the text to redact. Every input is redacted
 * three ways (as is, cut to the smaller capacity, with a secret planted), and
 * each result must satisfy what redact.h promises:
 *
 *   - the result is NUL-terminated at the returned length, which is below
 *     the capacity, and nothing past the capacity is written;
 *   - no registered secret appears in any output (the secrets hold neither
 *     '[' nor ']', so one can only appear if it was copied, never by joining
 *     copied bytes to the marker);
 *   - the filter only replaces: the output is pieces of the input, in input
 *     order and without overlap, separated by markers;
 *   - an output cut to a smaller capacity is a prefix of the uncut one.
 *
 * Redacting an output again is not required to change nothing, and is not
 * checked: a redaction may remove a delimiter ("pwd=a#b," loses its '#'), so
 * a second pass may see a larger structure (a URL userinfo) and redact more.
 *
 * A violation aborts, which libFuzzer reports with the input that caused it.
 */
#include "redact.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keep in step with tests/fuzz/corpus_redact/ seeds that contain them. */
static const char *const secrets[] = {"Zq7-canary-Xv2", "hunter2#Redis/pw"};

#define NSECRETS (sizeof(secrets) / sizeof(secrets[0]))

/* A base64 key: corpus_redact/ has seeds with it in a path and a query. */
static const char fuzz_key[] = "Kf9+zQ/3kLmN8pR2tV5w==";
static unsigned char key_digest[FM_REDACT_KEY_HASH_BYTES];
#define GUARD 16 /* bytes past the capacity that must stay untouched */
#define GUARD_BYTE 0xA5
#define MARKER_LEN (sizeof(FM_REDACTED) - 1)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *in, size_t len)
{
    (void)fprintf(stderr, "fuzz_redact: %s; input (%zu bytes): %.*s\n", what, len, (int)len, in);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t k = 0; k < NSECRETS; k++)
        if (fm_redact_add_secret(secrets[k]) != 0)
            abort();
    /*
     * A configured key known by digest, so that the key search runs too; it
     * is not among the secrets checked above, as a key glued to other key
     * bytes is (by design) not recognised.
     */
    if (crypto_hash_sha256(key_digest, (const unsigned char *)fuzz_key, strlen(fuzz_key)) != 0 ||
        fm_redact_set_key_hashes(key_digest, 1) != FM_OK)
        abort();
    return 0;
}

/* Redacts in into a fresh buffer of cap bytes plus a guard; checks the size promises. */
static char *redact_checked(const char *in, size_t len, size_t cap, size_t *outlen)
{
    char *out = malloc(cap + GUARD);
    size_t n;

    if (out == NULL)
        abort();
    memset(out, GUARD_BYTE, cap + GUARD);
    n = fm_redact(in, len, out, cap);
    if (cap == 0) {
        if (n != 0 || (unsigned char)out[0] != GUARD_BYTE)
            fail("wrote into a zero-capacity buffer", in, len);
    } else if (n >= cap || out[n] != '\0') {
        fail("result not NUL-terminated below the capacity", in, len);
    }
    for (size_t k = cap; k < cap + GUARD; k++)
        if ((unsigned char)out[k] != GUARD_BYTE)
            fail("wrote past the capacity", in, len);
    for (size_t k = 0; k < NSECRETS; k++)
        if (memmem(out, n, secrets[k], strlen(secrets[k])) != NULL)
            fail("a registered secret survived", in, len);
    *outlen = n;
    return out;
}

/*
 * True when out (n bytes) is pieces of in, in order, separated by markers.
 * Taking the earliest match of each piece is enough: a later piece can only
 * fit better after an earlier end.
 */
static int only_replaces(const char *in, size_t len, const char *out, size_t n)
{
    size_t pos = 0, o = 0;

    while (o < n) {
        const char *m = memmem(out + o, n - o, FM_REDACTED, MARKER_LEN);
        size_t piece = m != NULL ? (size_t)(m - (out + o)) : n - o;

        if (piece > 0) {
            const char *at = memmem(in + pos, len - pos, out + o, piece);

            if (at == NULL)
                return 0;
            pos = (size_t)(at - in) + piece;
        }
        o += piece + (m != NULL ? MARKER_LEN : 0);
    }
    return 1;
}

/* Room for any result: every input byte could become a whole marker. */
static size_t full_cap(size_t len)
{
    return len * MARKER_LEN + MARKER_LEN + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data + 2;
    const char *secret;
    size_t len, full_n, cut_n, planted_n, slen, at, cut_cap;
    char *full, *cut, *planted, *planted_out;

    if (size < 2)
        return 0;
    len = size - 2;

    full = redact_checked(text, len, full_cap(len), &full_n);
    if (!only_replaces(text, len, full, full_n))
        fail("the output holds bytes that are not copied from the input", text, len);

    /* Cut: any capacity up to the full length plus a little. */
    cut_cap = data[0] % (full_n + 3);
    cut = redact_checked(text, len, cut_cap, &cut_n);
    if (cut_cap > 0 && memcmp(cut, full, cut_n) != 0)
        fail("a cut output is not a prefix of the uncut one", text, len);

    /* The same text with a registered secret written over it at a chosen place. */
    secret = secrets[data[1] & 1];
    slen = strlen(secret);
    at = len > 0 ? (size_t)data[1] % (len + 1) : 0;
    planted = malloc(len + slen);
    if (planted == NULL)
        abort();
    memcpy(planted, text, at);
    memcpy(planted + at, secret, slen);
    memcpy(planted + at + slen, text + at, len - at);
    planted_out = redact_checked(planted, len + slen, full_cap(len + slen), &planted_n);

    free(planted_out);
    free(planted);
    free(cut);
    free(full);
    return 0;
}
