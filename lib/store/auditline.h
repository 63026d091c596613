/*
 * auditline.h - what the audit writer (audit.c) and the reader of records
 * (auditverify.c) share about a record line (internal to lib/store/).
 */
#ifndef FM_AUDITLINE_H
#define FM_AUDITLINE_H

#include <stddef.h>

#define HEX_LEN 64
#define SEQ_MAX 9007199254740992LL /* 2^53: the largest integer a JSON double keeps exact */

/* The text between a record's prev_hash and its hash: ,"hash":" */
extern const char audit_hash_key[];
#define AUDIT_HASH_KEY_LEN 9
#define HASH_SUFFIX_LEN (AUDIT_HASH_KEY_LEN + HEX_LEN + 2) /* ,"hash":"<hex>"} */

/*
 * SHA-256 of data (len bytes) as lower-case hex into hex (HEX_LEN + 1 bytes,
 * NUL-terminated). Returns 0, or -1 with errno when it could not be made
 * (fm_sha256: out of memory); hex is then not a hash and must not be used.
 */
int audit_sha256_hex(const char *data, size_t len, char hex[HEX_LEN + 1]);

/*
 * audit_parse_head - seq and hash of one record line (len bytes, no newline)
 * into *seq and hash. Returns 0, or -1 when the line is not a record.
 */
int audit_parse_head(const char *line, size_t len, long long *seq, char hash[HEX_LEN + 1]);

#endif
