/*
 * redact.h - the one redaction filter every log byte passes through.
 *
 * Replaces credentials with "[REDACTED]" before anything reaches api.log, the
 * audit log or stderr: values of Authorization, X-API-Key,
 * Cookie, Proxy-Authorization headers; Bearer/Basic/Token credentials in any
 * letter case; password/passwd/secret/token/api_key/apikey/access_key/
 * private_key fields in key=value, key: value, JSON ("key":"v", with escaped
 * quotes) and URL-encoded forms; URL userinfo (scheme://user:pw@host keeps
 * scheme and host); runs of 64 hex digits (API keys and SHA-256 key hashes);
 * well-known token formats (ghp_, github_pat_, glpat-, sk_live_, AKIA..., xox?-, JWTs);
 * the literal values registered with fm_redact_add_secret; every token
 * that hashes to a key registered with fm_redact_set_key_hashes, whatever
 * its format (redact_keys.c says which tokens are tried); and the
 * normalised forms of the keys the current request's raw path holds
 * (fm_redact_hold_path). Every occurrence
 * is replaced, not just the first. UUIDs, 40-hex commit ids, timestamps, IP
 * addresses, user names and ordinary words are kept.
 *
 * The filter is a single left-to-right scan, after a search for key tokens
 * when key digests are registered (at most 64 SHA-256 computations per call);
 * it never allocates on the heap.
 */
#ifndef FM_REDACT_H
#define FM_REDACT_H

#include <stddef.h>

#include "err.h"

#define FM_REDACTED "[REDACTED]"
#define FM_REDACT_MAX_SECRETS 16
#define FM_REDACT_MIN_SECRET 4      /* shorter literals are not registered (too many false hits) */
#define FM_REDACT_KEY_HASH_BYTES 32 /* a SHA-256 digest */

/*
 * fm_redact - copy src (len bytes, need not be NUL-terminated) to dst (cap
 * bytes) with every credential replaced. dst is always NUL-terminated when
 * cap > 0. When the result does not fit, it is truncated at cap - 1 bytes, and
 * never in the middle of a secret: a secret that does not fit is dropped whole.
 * Returns the number of bytes written, not counting the NUL.
 */
size_t fm_redact(const char *src, size_t len, char *dst, size_t cap);

/*
 * fm_redact_add_secret - register a literal secret value (copied) that must
 * never appear in output, e.g. the Redis password. Process-wide; call at
 * config load, before the request path runs. Values shorter than
 * FM_REDACT_MIN_SECRET bytes are ignored.
 * Returns FM_OK (also for a value ignored or registered already); FM_ESYS
 * with errno ENOSPC when FM_REDACT_MAX_SECRETS are registered, or ENOMEM;
 * FM_EINVAL for NULL.
 */
FM_MUST_CHECK fm_err fm_redact_add_secret(const char *value);

/*
 * fm_redact_set_key_hashes - the keys that must never appear in output,
 * known only by digest: hashes is n SHA-256 digests of FM_REDACT_KEY_HASH_BYTES
 * bytes each, back to back (copied; the caller keeps its array). A token of
 * 16 to 256 bytes, delimited as a path segment, query or header value, whose
 * digest (after %XX decoding) is among them is redacted. Replaces the
 * previous set; n == 0 clears it. Process-wide, like fm_redact_add_secret.
 * Returns FM_OK; FM_EINVAL for NULL with n > 0; FM_ESYS (ENOMEM), the
 * previous set then kept.
 */
FM_MUST_CHECK fm_err fm_redact_set_key_hashes(const unsigned char *hashes, size_t n);

/*
 * fm_redact_hold_path - for the request being served: raw is its path as the
 * client sent it (nginx's REQUEST_URI up to the '?', len bytes, need not be
 * NUL-terminated). Every configured key (fm_redact_set_key_hashes) found in
 * it is held as a literal, in the form nginx's path normalisation gives it
 * (%XX decoded, runs of '/' merged, as with merge_slashes on; without a
 * '/' at either end, which may be the path's separator as well), until
 * fm_redact_release. The normalised path (DOCUMENT_URI) the app routes and
 * logs can carry a key in a form no longer hashing to its digest ("//k"
 * arrives as "/k", "a//b" as "a/b"); only the raw path shows the key whole.
 * Call it when the two differ, before anything about the request is logged.
 * Replaces what was held. Returns FM_OK (also when nothing is held);
 * FM_EINVAL for NULL; FM_ESYS (ENOMEM), nothing then held: the caller must
 * not log the normalised path.
 */
FM_MUST_CHECK fm_err fm_redact_hold_path(const char *raw, size_t len);

/* fm_redact_release - forget the forms fm_redact_hold_path holds (wiped). */
void fm_redact_release(void);

/*
 * fm_redact_clear_secrets - forget all registered literals (wiped with
 * sodium_memzero), key digests and held forms.
 */
void fm_redact_clear_secrets(void);

#endif
