/*
 * auditline.h - what the audit writer (audit.c) and the reader of records
 * (auditverify.c) and its checks (auditcheck.c) share about a record line
 * (internal to lib/store/).
 */
#ifndef FM_AUDITLINE_H
#define FM_AUDITLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"

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

/*
 * A writer: the file (fm_audit_open; fd is the O_APPEND descriptor, shared
 * the chain region) or a sender (fm_audit_connect; fd is the connection to
 * the logger or -1, dirfd an O_PATH descriptor of the file's directory for
 * fm_audit_ready, shared NULL).
 */
struct fm_audit {
    int fd;
    char *path;
    fm_audit_shared *shared;
    fm_audit_sync sync;
    long long sync_ms;
    bool remote;
    int dirfd;
    fm_audit_endpoint ep;
};

/*
 * audit_handle_new - a handle for path with no descriptor yet (fd and dirfd
 * -1), or NULL with errno ENOMEM. audit_handle_drop closes what it holds and
 * frees it, keeping errno; returns NULL, for a constructor's failure exit.
 */
fm_audit *audit_handle_new(const char *path);
fm_audit *audit_handle_drop(fm_audit *audit);

/* CLOCK_MONOTONIC in milliseconds (the same clock in every process of the host). */
long long audit_mono_ms(void);

/*
 * audit_remote_write - a sender's fm_audit_write of formatted fields (len
 * bytes): one message to the logger, one answer back (auditwire.c).
 * Returns and errors as fm_audit_write.
 */
fm_err audit_remote_write(fm_audit *audit, const char *fields, size_t len);

/*
 * audit_sign_head - the checkpoint's signature of the chain head (seq, hash:
 * HEX_LEN hex) with key, as 128 hex + NUL into sig, and the key's id (16
 * hex + NUL) into id (auditsign.c). Returns 0, or -1 (cannot happen with a
 * loaded key).
 */
struct fm_audit_key;
int audit_sign_head(const struct fm_audit_key *key, long long seq, const char *hash, char sig[129],
                    char id[17]);

/*
 * audit_fields_ok - whether fields (len bytes), a sender's record from
 * "trace_id" to the opening quote of prev_hash's value, are what
 * format_fields makes (auditcheck.c): safe characters only, the record's
 * fields in order, each once and of its type, no CHECKPOINT. The logger
 * writes nothing else (fm_audit_append).
 */
bool audit_fields_ok(const char *fields, size_t len);

#endif
