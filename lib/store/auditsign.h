/*
 * auditsign.h - signed checkpoints of the audit trail (Ed25519, libsodium).
 *
 * A hash chain shows that no line was edited, removed or inserted, but
 * whoever can write the file can recompute the whole chain. So the audit
 * logger, the one process that writes the trail, signs the chain head now
 * and then with a secret key that only it reads, and writes the signature
 * into the trail as a record of its own, the checkpoint:
 *
 *   {"ts":"...","seq":N,"trace_id":null,"user":null,"key_id":"<16 hex>",
 *    "action":"CHECKPOINT","resource":"audit","source_ip":null,
 *    "result":"success","status":200,"reason":null,
 *    "signature":"<128 hex>","prev_hash":"<hash of record N-1>","hash":"..."}
 *
 * It is chained like every record. signature is the Ed25519 signature
 * (crypto_sign_detached, RFC 8032) of the text
 *   "fetchml-audit-checkpoint-v1\n" <N-1 in decimal> "\n" <prev_hash> "\n"
 * that is, of the head it follows: every record up to N-1 is covered,
 * because each record's hash covers the one before. key_id is the first 8
 * bytes of the SHA-256 of the public key, in hex, to tell keys apart.
 * `fetchml-admin audit-verify --public-key FILE` checks the chain and every
 * checkpoint's signature; records after the last checkpoint are the
 * "unsigned tail" (at most one signing interval's worth).
 *
 * Key files (fetchml-admin audit-keygen), one line each:
 *   secret  "fetchml-audit-ed25519-secret <64 hex: the 32-byte seed>\n", mode 0600
 *   public  "fetchml-audit-ed25519-public <64 hex: the 32-byte key>\n", mode 0644
 */
#ifndef FM_AUDITSIGN_H
#define FM_AUDITSIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"
#include "err.h"

#define FM_AUDIT_PK_BYTES 32 /* crypto_sign_PUBLICKEYBYTES */

typedef struct fm_audit_key fm_audit_key;

/*
 * fm_audit_keygen - a new key pair: the secret key written to secret_path
 * (created 0600, never over an existing file) and the public key to
 * public_path (created 0644, never over an existing file). FM_OK; FM_ESYS
 * with errno and a one-line reason in err (errlen bytes) otherwise, in which
 * case neither file is left behind.
 */
FM_MUST_CHECK fm_err fm_audit_keygen(const char *secret_path, const char *public_path, char *err,
                                     size_t errlen) FM_NONNULL(1, 2);

/*
 * fm_audit_key_load - the secret key read from the start of fd (pread: the
 * offset is not used, so one descriptor serves every load), in guarded
 * memory (sodium_malloc) owned by the caller (fm_audit_key_free). NULL with a
 * one-line reason in err (errlen bytes): not a secret key file, or read
 * error, or out of memory. The bytes read are wiped.
 */
fm_audit_key *fm_audit_key_load(int fd, char *err, size_t errlen);

/* fm_audit_key_free - wipe and free a key. NULL is accepted. */
void fm_audit_key_free(fm_audit_key *key);

/*
 * fm_audit_pubkey_load - the public key of the file at path into pk. FM_OK,
 * or FM_EPARSE (not a public key file: a secret key file is refused too)
 * or FM_ESYS (cannot read it), with a one-line reason in err.
 */
FM_MUST_CHECK fm_err fm_audit_pubkey_load(const char *path, unsigned char pk[FM_AUDIT_PK_BYTES],
                                          char *err, size_t errlen) FM_NONNULL(1, 2);

/*
 * fm_audit_checkpoint - write a checkpoint (the format above) signed with
 * key to the trail of audit (a handle from fm_audit_open), unless no record
 * was added to the chain since the last checkpoint (or the chain is empty):
 * then nothing is written. *written (may be NULL) says which. FM_OK, or the
 * errors of fm_audit_write; the chain then does not advance.
 */
FM_MUST_CHECK fm_err fm_audit_checkpoint(fm_audit *audit, const fm_audit_key *key, bool *written)
    FM_NONNULL(1, 2);

/*
 * fm_audit_checkpoint_check - for a line that fm_audit_verify_line accepted
 * (len bytes, a trailing newline allowed): FM_ENOTFOUND when it is no
 * checkpoint (no "signature"); FM_OK when it is one whose signature pk
 * verifies, with the seq it covers (the line's seq - 1) in *signed_seq;
 * FM_EINVAL with a one-line reason in err when it is one that pk does not
 * verify (signed by another key, or the signature or the head it names was
 * changed); FM_EPARSE for a malformed checkpoint.
 */
FM_MUST_CHECK fm_err fm_audit_checkpoint_check(const char *line, size_t len,
                                               const unsigned char pk[FM_AUDIT_PK_BYTES],
                                               long long *signed_seq, char *err, size_t errlen)
    FM_NONNULL(1, 3, 4);

/*
 * fm_audit_is_checkpoint - whether a record line (len bytes) carries a
 * signature field, without checking it (audit-verify without a key, to say
 * what it did not check).
 */
bool fm_audit_is_checkpoint(const char *line, size_t len) FM_NONNULL(1);

#endif
