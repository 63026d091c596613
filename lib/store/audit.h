/*
 * audit.h - the audit trail: one JSON line per request, hash-chained.
 *
 * Line format (keys in this order):
 *   {"ts":"2026-11-29T06:40:00.123Z","seq":42,"trace_id":"...","user":"alice"|null,
 *    "key_id":"..."|null,"action":"GET /v1/tasks","resource":"/v1/tasks","source_ip":"...",
 *    "result":"success"|"failure","status":200,"reason":"..."|null,
 *    ["task_id":"...",]["worker":"...",]["permission":"experiments:create",]
 *    ["owner":"alice",]["bytes":123,]
 *    ["truncated":["action","resource"],]"prev_hash":"<64 hex>","hash":"<64 hex>"}
 * task_id and worker are present only when the record names them (a request
 * on a task, a job worker's request, a sweep), so a record without them is
 * byte for byte what it was before they existed; they are redacted, escaped,
 * cut (to FM_AUDIT_ID_FIELD_MAX) and hashed like every field. permission,
 * owner and bytes likewise (cut to FM_AUDIT_SHORT_FIELD_MAX): a file
 * operation on experiments names the permission it used, the user whose tree
 * it acted on when that is not the caller's own (an admin's ?user=), and the
 * bytes read, written or removed.
 * A record is at most FM_AUDIT_LINE_MAX bytes: each string field is redacted
 * first, then escaped, then cut to FM_AUDIT_FIELD_MAX bytes (never inside an
 * escape or a UTF-8 sequence, never leaving part of a secret), and the names
 * of the fields that were cut are listed, in record order, in "truncated",
 * which is present only when a field was cut (a marker inside the value, such
 * as a trailing "...", could not be told from text a client sent).
 * hash = SHA-256 of the line's bytes up to and excluding ',"hash":' (that is,
 * the record including prev_hash), hex encoded; prev_hash of the first record
 * ever is 64 zeros. seq counts from 1 and continues across files.
 *
 * Who writes the file (OpenBSD httpd's logger model): only the audit logger
 * process (fcgi-app/auditlog.c) opens it for writing (fm_audit_open). The
 * processes that make records (workers, sweeper, relay) hold a handle from
 * fm_audit_connect: fm_audit_write formats and redacts the record there and
 * sends the fields to the logger over a SOCK_SEQPACKET connection, one send
 * and one acknowledgement received per record; the logger validates them
 * (fm_audit_append), adds ts, seq, prev_hash and hash, writes, syncs as its
 * fm_audit_set_sync says and answers. The logger runs under an account of
 * its own (logging.audit_user), which owns the file; a process of the
 * workers' account holds no descriptor of it and cannot open, truncate,
 * rename or remove it (fm_audit_check_place) or signal the logger, so a
 * compromised worker can only add records. (Started without root, the
 * logger shares the workers' account and only chattr +a protects the file.)
 * The logger also signs the chain head now and then (auditsign.h, a
 * checkpoint record in the trail).
 *
 * Several writers (the trails of two configuration generations during a
 * reload, or writers in several processes, as the unit tests have) may
 * append to one file. The chain state (seq, last hash) lives in a shared
 * memory region (fm_audit_shared_create; the logger keeps one per file,
 * fcgi-app/chains.h) and is guarded by a
 * process-shared robust mutex: a writer that dies while holding it cannot
 * wedge the others, and the next holder re-reads the chain head from the
 * file tail. Each record is written with one write(2) on an O_APPEND
 * descriptor, so lines never interleave.
 *
 * The file at the path: before each record the writer checks that its open
 * file is still the file at the path (dev and inode), and reopens the path
 * (created 0600 when missing) when it is not: a deleted audit file is
 * recreated and a replaced one is followed, and the chain continues there
 * (the first record in the new file links to the last one written before).
 * Reopening rather than failing closed keeps the service up when logrotate
 * or an operator moves the file, and no record is ever written to a deleted
 * file; if the reopen fails, the record is refused like any write error
 * (503). A file only renamed away, with nothing at the path yet, keeps
 * getting records until a file appears there or SIGUSR1 reopens. So after a
 * rotation every process moves to the new file as soon as it exists, the
 * rotated file always holds a prefix of the chain and the new file the rest.
 * Every field passes fm_redact and is JSON-escaped (control characters,
 * U+2028/U+2029 and bidirectional controls as \uXXXX; see fm_jsonstr_char)
 * so that no input can forge a line or reorder one on screen.
 */
#ifndef FM_AUDIT_H
#define FM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "err.h"

#define FM_AUDIT_LINE_MAX 8192    /* bytes per record, newline included */
#define FM_AUDIT_FIELD_MAX 1024   /* escaped bytes per string field, quotes excluded */
#define FM_AUDIT_ID_FIELD_MAX 128 /* escaped bytes of task_id and of worker, quotes excluded */
#define FM_AUDIT_SHORT_FIELD_MAX                                                                   \
    64 /* escaped bytes of permission and of owner, quotes excluded                                \
        */
#define FM_AUDIT_RESERVE_BYTES (4 * FM_AUDIT_LINE_MAX) /* free space fm_audit_ready demands */
#define FM_AUDIT_ACK_MS 2000 /* how long a sender waits for the logger's answer, ms */

/* When fm_audit_write makes a record durable (fdatasync(2)); see fm_audit_set_sync. */
typedef enum {
    FM_AUDIT_SYNC_NONE,     /* never: the kernel writes back (default) */
    FM_AUDIT_SYNC_INTERVAL, /* when the last sync, by any writer of the chain, is older than ms */
    FM_AUDIT_SYNC_ALWAYS    /* every record, before fm_audit_write returns */
} fm_audit_sync;

typedef struct fm_audit_shared fm_audit_shared;
typedef struct fm_audit fm_audit;

typedef struct fm_audit_record {
    const char *trace_id;   /* nginx $request_id, may be NULL */
    const char *user;       /* NULL = unauthenticated (JSON null) */
    const char *key_id;     /* short fingerprint, see fm_config_key_id; NULL = none */
    const char *action;     /* "METHOD /path" */
    const char *resource;   /* request path without query */
    const char *source_ip;  /* REMOTE_ADDR; NULL = no client (the sweeper) */
    int status;             /* HTTP status sent */
    const char *reason;     /* why refused or failed, NULL on plain success */
    const char *task_id;    /* the task acted on; NULL or "" = not named (field absent) */
    const char *worker;     /* a job worker's worker_id; NULL or "" = not named (field absent) */
    const char *permission; /* the permission a file operation used; NULL or "" = absent */
    const char *owner;      /* the user whose tree it acted on; NULL or "" = absent */
    bool has_bytes;         /* bytes is present */
    uint64_t bytes;         /* bytes a file operation read, wrote or removed */
    bool failed;            /* result "failure" although status < 400 (see below) */
} fm_audit_record;
/*
 * result is derived: "success" when status < 400 and not failed, else
 * "failure". failed is for what went wrong after the status was sent: a
 * download that ends short of its length gets a second record, with the same
 * trace_id and the 200 that was sent, failed, the reason and the bytes sent
 * (lib/app/pipeline.h, fm_pipeline_delivery_end).
 */

/*
 * fm_audit_shared_create - map the shared chain state (MAP_SHARED|MAP_ANONYMOUS)
 * and initialise it from the last line of the file at path (missing or empty
 * file: seq 0, zero hash). Call in the master before forking workers.
 * Returns the region (lives until process exit, inherited across fork) or
 * NULL with errno.
 */
fm_audit_shared *fm_audit_shared_create(const char *path);

/*
 * fm_audit_shared_free - unmap the caller's view of a region from
 * fm_audit_shared_create, once the caller will neither use it nor fork a
 * process that does (children keep their own mapping). NULL is accepted.
 */
void fm_audit_shared_free(fm_audit_shared *shared);

/*
 * fm_audit_open - open path for appending (created 0600, O_APPEND|O_CLOEXEC).
 * shared must come from fm_audit_shared_create. Returns a handle owned by the
 * caller (fm_audit_close), or NULL with errno.
 */
fm_audit *fm_audit_open(const char *path, fm_audit_shared *shared);

/*
 * fm_audit_check_place - whether path (an audit trail's path) is a place
 * where only writer (the audit logger's uid) and root can change the trail:
 * its directory belongs to root or writer and is not writable by group or
 * others unless sticky (S_ISVTX: then only a file's owner may remove or
 * rename it, as in /tmp), and the file, if it exists, is a regular file
 * (not a link) of writer's that group and others may not write. Otherwise
 * another account, such as the pool's, could delete the trail or put a file
 * of its own in its place. Call as the writer. FM_OK; FM_EINVAL with the
 * reason in err (errlen bytes) when the place is unsafe; FM_ESYS (errno)
 * when the directory or file cannot be examined (stat(2)).
 */
FM_MUST_CHECK fm_err fm_audit_check_place(const char *path, uid_t writer, char *err,
                                          size_t errlen) FM_NONNULL(1, 3);

/*
 * Where the audit logger listens: an abstract-namespace unix address
 * (autobound, so nothing in the file system names it), copied by value.
 */
typedef struct fm_audit_endpoint {
    struct sockaddr_un addr;
    socklen_t len;
} fm_audit_endpoint;

/*
 * fm_audit_endpoint_open - a listening SOCK_SEQPACKET socket for one audit
 * logger, made by the master before forking the logger and its clients: its
 * descriptor in *fd (the logger accepts on it; a restarted logger inherits it
 * again from the master, and connections queued meanwhile wait for it) and
 * the address clients connect to in *ep. Anyone on the host may connect to an
 * abstract address: the logger checks each peer's uid (SO_PEERCRED).
 * FM_OK, or FM_ESYS with errno (socket(2), bind(2), listen(2)).
 */
FM_MUST_CHECK fm_err fm_audit_endpoint_open(int *fd, fm_audit_endpoint *ep) FM_NONNULL(1, 2);

/*
 * fm_audit_connect - a sending handle: records written with fm_audit_write
 * go to the logger at ep, which writes them to path (the logger's
 * logging.file; the sender only checks its file system, fm_audit_ready).
 * The connection is made now if it can be, else at the next write, and made
 * again after the logger went away. Returns a handle owned by the caller
 * (fm_audit_close), or NULL with errno (ENOMEM, or open(2) of path's
 * directory). fm_audit_reopen and fm_audit_set_sync do nothing on it (the
 * logger reopens and syncs).
 */
fm_audit *fm_audit_connect(const char *path, const fm_audit_endpoint *ep) FM_NONNULL(1, 2);

/*
 * fm_audit_write - append one record. Returns FM_OK when the whole line
 * reached the file (write(2) completed; synced as fm_audit_set_sync asks); FM_ESYS with errno
 * otherwise (EIO for a short write, whose fragment is cut off again so that
 * the file holds whole lines only; ENOSPC, EFBIG, EBADF, EOVERFLOW when seq
 * would pass 2^53 ...); FM_EINVAL (errno EINVAL) for a NULL argument. The
 * chain does not advance on failure. The caller must treat any failure as
 * "fail closed": answer 503 and undo any change.
 * On a handle from fm_audit_connect, FM_OK means the logger acknowledged the
 * record as written (and synced as its policy says); FM_ESYS carries the
 * logger's errno, or ETIMEDOUT when no answer came within FM_AUDIT_ACK_MS
 * (the record carries that deadline, and a logger that reads it later does
 * not write it), EPIPE/ECONNREFUSED when no logger could be reached, or EIO
 * when the logger went away after the record was sent (it may then be in
 * the trail although the caller fails closed: a record too many, never one
 * too few).
 */
FM_MUST_CHECK fm_err fm_audit_write(fm_audit *audit, const fm_audit_record *rec);

/*
 * fm_audit_append - the logger's write of a record a client formatted:
 * fields (len bytes) is what fm_audit_write sends, from "trace_id" to the
 * opening quote of prev_hash's value. It is refused with FM_EINVAL (errno
 * EINVAL), nothing written, unless it is exactly that: no control byte or
 * newline, the fields of a record in JSON with none that the logger adds
 * itself (ts, seq, hash, signature) and prev_hash last, short enough for a
 * line. Otherwise as fm_audit_write on a handle from fm_audit_open.
 */
FM_MUST_CHECK fm_err fm_audit_append(fm_audit *audit, const char *fields, size_t len)
    FM_NONNULL(1, 2);

/*
 * fm_audit_serve - the logger's answer to one message waiting on conn (a
 * connection accepted on fm_audit_endpoint_open's socket): the record is
 * appended with fm_audit_append unless its deadline has passed, and the
 * outcome is sent back. FM_OK when the connection stays usable (also after a
 * record that was refused, and when nothing was waiting); FM_ENOTFOUND when
 * the peer closed it; FM_EPARSE for a message that is not a record
 * (answered EINVAL); FM_ESYS with errno for a socket error. The caller
 * closes conn on anything but FM_OK.
 */
FM_MUST_CHECK fm_err fm_audit_serve(fm_audit *audit, int conn) FM_NONNULL(1);

/*
 * fm_audit_ready - cheap check, before a request changes anything, that its
 * record can be written: the file system holding the log is writable and has
 * at least FM_AUDIT_RESERVE_BYTES free for unprivileged writers. Returns
 * FM_OK, or FM_ESYS with errno ENOSPC, EROFS, EBADF or an fstatvfs(2) error.
 * A write can still fail afterwards (a race with another writer of the disk);
 * callers undo their change then.
 */
FM_MUST_CHECK fm_err fm_audit_ready(const fm_audit *audit);

/*
 * fm_audit_reopen - reopen the same path (SIGUSR1 after rotation); the chain
 * continues. Returns FM_OK, FM_ESYS with errno (open(2), dup3(2)), or
 * FM_EINVAL for NULL.
 */
fm_err fm_audit_reopen(fm_audit *audit);

/*
 * fm_audit_set_sync - when the records of this writer (audit: non-NULL)
 * are made durable with fdatasync(2) before fm_audit_write returns: never
 * (FM_AUDIT_SYNC_NONE, the default after fm_audit_open: the kernel writes
 * back, a crash of the host can lose the last seconds), every record
 * (ALWAYS), or (INTERVAL) a record written when no writer of the chain has
 * synced for interval_ms milliseconds (>= 1; the time of the last sync is
 * kept in the shared region, so several workers together still sync once
 * per interval). A record that cannot be synced is cut off again and
 * fm_audit_write fails with the fdatasync error, like a failed write.
 * fm_audit_close syncs once more unless the mode is NONE.
 */
void fm_audit_set_sync(fm_audit *audit, fm_audit_sync mode, int interval_ms);

/*
 * fm_audit_syncs - how many fdatasync(2) calls all writers of audit's chain
 * have made since fm_audit_shared_create (tests and metrics).
 */
unsigned long long fm_audit_syncs(const fm_audit *audit);

/* fm_audit_close - sync (see fm_audit_set_sync), close and free. NULL is accepted. */
void fm_audit_close(fm_audit *audit);

/*
 * fm_audit_verify_line - check one line (len bytes, a trailing newline is
 * allowed) against the expected previous hash and sequence (prev_hex: 64 hex
 * + NUL; *seq: the previous seq, 0 before the first line of a chain). On
 * FM_OK, prev_hex and *seq are updated to this line's. Otherwise a one-line
 * reason is in err (errlen bytes) and nothing is updated: FM_EPARSE for a
 * line that is not a record (malformed JSON, missing or invalid
 * seq/prev_hash/hash); FM_EINVAL for a wrong hash (line edited), a seq that
 * is not *seq + 1 or a prev_hash that is not prev_hex (line missing,
 * reordered or inserted), or bad arguments; FM_ESYS when libsodium cannot
 * start. Used by `fetchml-admin audit-verify`.
 */
fm_err fm_audit_verify_line(const char *line, size_t len, char prev_hex[65], long long *seq,
                            char *err, size_t errlen);

#endif
