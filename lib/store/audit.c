/*
 * audit.c - the hash-chained audit trail.
 *
 * A record is one JSON line built by hand: each string field is passed
 * through fm_redact, then JSON-escaped by fm_jsonstr_quote (quote,
 * backslash, controls, line separators, bidirectional controls and bytes
 * that are not valid UTF-8 escaped) and cut to FIELD_MAX escaped bytes, so
 * no field can break out of its string or its line and a whole line always
 * fits in FM_AUDIT_LINE_MAX. A field that was cut is named in the record's
 * "truncated" list.
 *
 * Hash chain: the line is assembled up to and including "prev_hash" (the
 * previous record's hash), that prefix is hashed with SHA-256, and the line
 * is finished with ,"hash":"<hex>"}. prev_hash and hash are added after
 * redaction and never pass the filter (which would eat 64-hex runs).
 *
 * Writers: only the audit logger process opens the file (fm_audit_open);
 * the others format here and send (audit_remote_write, auditwire.c), and the
 * logger checks what they sent (fields_ok) before it chains it, so a sender
 * that was taken over can add a record but not break a line or the chain.
 *
 * Concurrency: the chain head (seq, last hash) lives in a MAP_SHARED region
 * guarded by a process-shared robust mutex (one logger per configuration
 * generation, and two generations may write one file during a reload). Inside the lock a writer
 * checks whether the file it is about to append to agrees with the head: if the previous holder
 * died, if someone outside the region appended to the same file, or if this descriptor points at a
 * different non-empty file, the head is re-read from the file's last complete line. For the same
 * file the tail wins (it is what a verifier will see); for a different file (a worker that has not
 * reopened yet after rotation) the tail is only taken when it is ahead of the shared head, so the
 * global seq never goes backwards. An empty file (fresh after rotation) continues the shared chain.
 * The line is then appended with one write(2) on an O_APPEND descriptor and the head is advanced
 * only when the whole line was written. Only seq, prev_hash and the hash are produced under the
 * lock; the fields are escaped and formatted, and the record stamped with its ts, before it is
 * taken (a stamp older than the last record's is made again under the lock, so ts order is seq
 * order). A record that must be durable (audit_sync always, or interval when due) is synced under
 * the lock too, so that one that cannot be synced can still be cut off before anyone appends after
 * it.
 *
 * The file at the path: a record never goes to a file that was deleted or
 * replaced. Inside the lock, each writer compares its descriptor's file
 * (statx, which it takes anyway) with the one stat(2) finds at the path
 * (one path lookup: about 2 us on a busy 2-CPU VM, against some 230 us of
 * CPU per request through the whole stack; checked per record because a
 * check every N ms would let a writer append to a replaced file for that
 * long, and the rotation rule below relies on it) and reopens the path when
 * they differ, unless its file was only renamed away and nothing is at the
 * path yet. So the trail is followed at once after a rotation, and SIGUSR1
 * only confirms it.
 *
 * Rotation: each process reopens on its own SIGUSR1, so for a moment some
 * could write to the new file and some to the renamed one. A record must
 * never go to the old file after one went to the new file, or the old file
 * would end with a later seq than the new file starts with and the chain
 * would no longer verify file after file. The path check above sees to it:
 * once a record went to the new file, the path names it, and every later
 * writer reopens before it writes.
 */
#include "audit.h"
#include "auditline.h"
#include "auditsign.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "jsonstr.h"
#include "redact.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define FIELD_MAX FM_AUDIT_FIELD_MAX
#define FIELD_BUF (FIELD_MAX + 3) /* quotes and NUL */
#define STRING_FIELDS 7
#define TAIL_MAX (2 * FM_AUDIT_LINE_MAX) /* always holds the last complete line */

#define ID_FIELD_MAX FM_AUDIT_ID_FIELD_MAX
#define ID_FIELD_BUF (ID_FIELD_MAX + 3)
#define ID_FIELDS 4    /* task_id, worker, permission, owner: present only when set */
#define SHORT_FIELDS 2 /* the last two of them are cut shorter */
#define SHORT_FIELD_BUF (FM_AUDIT_SHORT_FIELD_MAX + 3)

/* The longest "truncated" marker: every string field named. */
#define TRUNCATED_MAX                                                                              \
    ",\"truncated\":[\"trace_id\",\"user\",\"key_id\",\"action\",\"resource\",\"source_ip\","      \
    "\"reason\",\"task_id\",\"worker\",\"permission\",\"owner\"]"

/* The longest optional bytes field. */
#define BYTES_MAX ",\"bytes\":18446744073709551615"

/*
 * Keys, ts, seq, result, status, both hashes and the newline need well under
 * 400 bytes (325 at most); the optional fields bring their keys (under 64 bytes).
 */
_Static_assert((FIELD_MAX + 2) * STRING_FIELDS + (ID_FIELD_MAX + 2) * (ID_FIELDS - SHORT_FIELDS) +
                       (FM_AUDIT_SHORT_FIELD_MAX + 2) * SHORT_FIELDS + sizeof TRUNCATED_MAX +
                       sizeof BYTES_MAX + 400 + 64 <=
                   FM_AUDIT_LINE_MAX,
               "audit fields cannot overflow a line");

struct fm_audit_shared {
    pthread_mutex_t mu;
    long long seq;
    char hash[HEX_LEN + 1];
    off_t size; /* size of the file last written, right after the write */
    dev_t dev;
    ino_t ino;
    long long last_sync_ms;   /* CLOCK_MONOTONIC of the last fdatasync by any writer */
    unsigned long long syncs; /* fdatasync calls by all writers, atomic */
    int64_t last_ts_ms;       /* ts of the record last written (0: none yet) */
    long long signed_seq;     /* seq of the last checkpoint written (0: none yet) */
};

static const char zero_hash[HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/*
 * Redacts, escapes and quotes one record field into dst (cap bytes: the
 * field's maximum escaped length plus quotes and NUL, at most FIELD_BUF);
 * NULL becomes JSON null. Returns whether the value had to be cut.
 */
static bool json_field(char *dst, size_t cap, const char *value)
{
    /*
     * The filter sees the whole value (a cut secret would no longer be
     * recognised) and its output is cut to red: with room for FIELD_MAX + 1
     * bytes plus a marker, a cut output is longer than FIELD_MAX, and since
     * escaping never shrinks, "cut" is exactly "the escaped text does not fit".
     */
    char red[FIELD_MAX + 2 + sizeof FM_REDACTED];
    char full[6 * sizeof red + 3]; /* every byte escaped: \u00XX */
    size_t n, len;

    if (value == NULL) {
        (void)snprintf(dst, cap, "null");
        return false;
    }
    n = fm_redact(value, strlen(value), red, sizeof red);
    len = fm_jsonstr_quote(full, sizeof full, red, n);
    if (len < cap) {
        memcpy(dst, full, len + 1);
        return false;
    }
    (void)fm_jsonstr_quote(dst, cap, red, n);
    return true;
}

/*
 * The action field into dst (FIELD_BUF bytes) when action is "<METHOD>
 * <resource>", as every request's is: the redacted method, a space and the
 * resource's field (res_field, already made), so the path is redacted once,
 * not twice. The result is what json_field(action) gives: no key, secret or
 * rule the filter knows can straddle the space (it is no key byte, and a
 * method is one short token). Returns false, dst untouched, when action is not
 * of that form or the field would not fit uncut (the caller then makes it
 * from action).
 */
static bool action_field(char *dst, const char *action, const char *resource, const char *res_field)
{
    char method[16], mfield[sizeof method + 2];
    size_t ml, rl;

    if (action == NULL || resource == NULL)
        return false;
    ml = strspn(action, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (ml == 0 || ml >= sizeof method || action[ml] != ' ' ||
        strcmp(action + ml + 1, resource) != 0)
        return false;
    memcpy(method, action, ml);
    method[ml] = '\0';
    (void)json_field(mfield, sizeof mfield, method);
    ml = strlen(mfield) - 1; /* without its closing quote */
    rl = strlen(res_field);
    if (rl < 2 || ml + 1 + rl - 1 >= FIELD_BUF || ml + 1 + rl - 1 > FIELD_MAX + 2)
        return false;
    memcpy(dst, mfield, ml);
    dst[ml] = ' ';
    memcpy(dst + ml + 1, res_field + 1, rl); /* after its opening quote, with the NUL */
    return true;
}

/*
 * An optional field (task_id, worker) as ,"name":"value" into out (cap
 * bytes), or "" when value is NULL or empty: records that do not name one
 * stay as they were before the field existed. Returns whether it was cut.
 */
static bool id_field(char *out, size_t cap, const char *name, const char *value, size_t buf)
{
    char quoted[ID_FIELD_BUF];
    bool cut;

    out[0] = '\0';
    if (value == NULL || value[0] == '\0')
        return false;
    cut = json_field(quoted, buf < sizeof quoted ? buf : sizeof quoted, value);
    (void)snprintf(out, cap, ",\"%s\":%s", name, quoted);
    return cut;
}

long long audit_mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads the chain head from the last complete line of the file (size bytes).
 * *ends_nl tells whether the file ends with a newline, i.e. whether a torn
 * write left a partial line behind. Returns 0, or -1 when no record can be
 * read (I/O error, no complete line, unparsable line).
 */
static int read_tail(int fd, off_t size, long long *seq, char hash[HEX_LEN + 1], int *ends_nl)
{
    char buf[TAIL_MAX];
    off_t off = size > TAIL_MAX ? size - TAIL_MAX : 0;
    size_t want = (size_t)(size - off), got = 0;
    const char *end, *start;

    *ends_nl = 1;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    if (got == 0)
        return -1;
    *ends_nl = buf[got - 1] == '\n';
    end = memrchr(buf, '\n', got);
    if (end == NULL)
        return -1;
    start = memrchr(buf, '\n', (size_t)(end - buf));
    if (start != NULL)
        start++;
    else if (off == 0)
        start = buf;
    else
        return -1;
    return audit_parse_head(start, (size_t)(end - start), seq, hash);
}

fm_audit_shared *fm_audit_shared_create(const char *path)
{
    fm_audit_shared *s = MAP_FAILED;
    pthread_mutexattr_t attr;
    int fd = -1, attr_init = 0, err, ends_nl;
    struct stat st;

    if (path == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (sodium_init() < 0) {
        errno = ENOSYS;
        return NULL;
    }
    s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        return NULL;
    s->seq = 0;
    memcpy(s->hash, zero_hash, sizeof s->hash);
    s->size = 0;
    s->dev = 0;
    s->ino = 0;
    s->last_sync_ms = audit_mono_ms(); /* an interval starts with the chain, not at boot */
    s->syncs = 0;
    s->last_ts_ms = 0;
    s->signed_seq = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        goto fail;
    if (fd >= 0) {
        if (fstat(fd, &st) != 0)
            goto fail;
        if (st.st_size > 0 && read_tail(fd, st.st_size, &s->seq, s->hash, &ends_nl) != 0) {
            /* Refuse to start a chain on top of a record nobody can link to. */
            errno = EBADMSG;
            goto fail;
        }
        s->size = st.st_size;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        (void)close(fd);
        fd = -1;
    }

    if ((err = pthread_mutexattr_init(&attr)) != 0)
        goto fail_err;
    attr_init = 1;
    if ((err = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) != 0 ||
        (err = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) != 0 ||
        (err = pthread_mutex_init(&s->mu, &attr)) != 0)
        goto fail_err;
    (void)pthread_mutexattr_destroy(&attr);
    return s;

fail_err:
    errno = err;
fail:
    err = errno;
    if (attr_init)
        (void)pthread_mutexattr_destroy(&attr);
    if (fd >= 0)
        (void)close(fd);
    if (s != MAP_FAILED)
        (void)munmap(s, sizeof *s);
    errno = err;
    return NULL;
}

void fm_audit_shared_free(fm_audit_shared *shared)
{
    /* The mutex is not destroyed: other processes may still map the region. */
    if (shared != NULL)
        (void)munmap(shared, sizeof *shared);
}

/*
 * O_RDWR rather than O_WRONLY: the chain head may have to be re-read from
 * the tail. Never through a symbolic link, and only a file owned by the
 * writer (or root): a file someone else put at the path (another
 * account could, where the directory lets it, between a rotation and the
 * reopen) is refused with EPERM, and the record with it (fail closed).
 */
static int open_log(const char *path)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    struct stat st;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        (void)close(fd);
        errno = err;
        return -1;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        (void)close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

fm_audit *audit_handle_new(const char *path)
{
    fm_audit *a = calloc(1, sizeof *a);

    if (a == NULL)
        return NULL;
    a->fd = -1;
    a->dirfd = -1;
    a->path = strdup(path);
    if (a->path == NULL) {
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

fm_audit *audit_handle_drop(fm_audit *a)
{
    int err = errno;

    if (a->fd >= 0)
        (void)close(a->fd);
    if (a->dirfd >= 0)
        (void)close(a->dirfd);
    free(a->path);
    free(a);
    errno = err;
    return NULL;
}

fm_audit *fm_audit_open(const char *path, fm_audit_shared *shared)
{
    fm_audit *a;

    if (path == NULL || shared == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if ((a = audit_handle_new(path)) == NULL)
        return NULL;
    a->shared = shared;
    a->fd = open_log(path);
    return a->fd >= 0 ? a : audit_handle_drop(a);
}

fm_err fm_audit_reopen(fm_audit *audit)
{
    int fd;

    if (audit == NULL) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    if (audit->remote)
        return FM_OK; /* the logger reopens the file on its own SIGUSR1 */
    fd = open_log(audit->path);
    if (fd < 0)
        return FM_ESYS;
    return fm_log_replace_fd(audit->fd, fd);
}

void fm_audit_set_sync(fm_audit *audit, fm_audit_sync mode, int interval_ms)
{
    audit->sync = mode;
    audit->sync_ms = interval_ms > 0 ? interval_ms : 1;
}

unsigned long long fm_audit_syncs(const fm_audit *audit)
{
    if (audit->shared == NULL)
        return 0;
    return __atomic_load_n(&audit->shared->syncs, __ATOMIC_RELAXED);
}

/* fdatasync(2), counted in the region. */
static int sync_file(fm_audit *audit)
{
    if (fdatasync(audit->fd) != 0)
        return -1;
    (void)__atomic_add_fetch(&audit->shared->syncs, 1, __ATOMIC_RELAXED);
    return 0;
}

/*
 * Whether the record just written must be synced (lock held): always, or
 * (interval) when no writer of the chain has synced for sync_ms. The interval
 * is shared, so N workers still sync once per interval, not N times.
 */
static bool sync_due(fm_audit *audit)
{
    fm_audit_shared *s = audit->shared;
    long long now;

    if (audit->sync == FM_AUDIT_SYNC_ALWAYS)
        return true;
    if (audit->sync != FM_AUDIT_SYNC_INTERVAL)
        return false;
    now = audit_mono_ms();
    if (now - s->last_sync_ms < audit->sync_ms)
        return false;
    s->last_sync_ms = now;
    return true;
}

void fm_audit_close(fm_audit *audit)
{
    if (audit == NULL)
        return;
    /* A clean exit leaves nothing of this writer's unsynced behind (interval, always). */
    if (!audit->remote && audit->sync != FM_AUDIT_SYNC_NONE)
        (void)sync_file(audit);
    (void)audit_handle_drop(audit);
}

/*
 * Device, inode, link count and size of the descriptor's file, the only
 * fields the writer uses (the rest of *st is zeroed). statx(2) asks for just those: a
 * full fstat(2) also reads the change time, which on file systems with
 * multigrain timestamps (ext4, xfs, btrfs since Linux 6.13) makes the next
 * write update the inode's times at full resolution, i.e. dirty the inode on
 * every record instead of once per clock tick. Falls back to fstat when the
 * file system cannot answer for these alone.
 */
static int file_id(int fd, struct stat *st)
{
    const unsigned int want = STATX_INO | STATX_NLINK | STATX_SIZE;
    struct statx sx;

    memset(st, 0, sizeof *st);
    if (statx(fd, "", AT_EMPTY_PATH, want, &sx) != 0 || (sx.stx_mask & want) != want)
        return fstat(fd, st);
    st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    st->st_ino = (ino_t)sx.stx_ino;
    st->st_nlink = (nlink_t)sx.stx_nlink;
    st->st_size = (off_t)sx.stx_size;
    return 0;
}

/*
 * Brings the shared head in line with the file about to be written (lock
 * held; see the top of the file). Sets *need_nl when the file ends in a torn
 * line, so the next record starts on a line of its own.
 */
static void sync_head(fm_audit_shared *s, int fd, const struct stat *st, int owner_died,
                      int *need_nl)
{
    int same_file = st->st_dev == s->dev && st->st_ino == s->ino;
    long long seq;
    char hash[HEX_LEN + 1];
    int ends_nl;

    *need_nl = 0;
    if (st->st_size == 0 || (same_file && st->st_size == s->size && !owner_died))
        return;
    if (read_tail(fd, st->st_size, &seq, hash, &ends_nl) == 0 && (same_file || seq >= s->seq)) {
        s->seq = seq;
        memcpy(s->hash, hash, sizeof s->hash);
    }
    *need_nl = !ends_nl;
}

/*
 * Records go to the file at the path (lock held; see the top of the file).
 * The descriptor is reopened at the path when its file is no longer there:
 * deleted (no link left: the file would vanish with its records) or
 * replaced (another file at the path: a rotation's new file, or one put in
 * its place). A file renamed away while nothing is at the path yet (a
 * rotation between its rename and its create, or before SIGUSR1 with
 * nocreate) keeps its records: creating the path here could make logrotate's
 * own create fail. Returns 0 with *st updated to the descriptor's file, or -1
 * with errno when reopening fails, and the record is refused (never written
 * to a deleted file).
 */
static int follow_path(fm_audit *audit, struct stat *st)
{
    struct stat at_path;
    int found = stat(audit->path, &at_path) == 0;

    if (found && at_path.st_dev == st->st_dev && at_path.st_ino == st->st_ino)
        return 0;
    if (!found && st->st_nlink > 0)
        return 0;
    if (fm_audit_reopen(audit) != FM_OK)
        return -1;
    /* A deleted trail is worth a warning; a rotation's new file is routine. */
    if (st->st_nlink == 0)
        fm_log_warn("audit: the open %s was deleted (or replaced); reopened the path, the chain "
                    "continues there",
                    audit->path);
    else
        fm_log_info("audit: %s is a new file; records continue there", audit->path);
    return file_id(audit->fd, st);
}

/*
 * Formats the part of a record that does not depend on the chain head, from
 * "trace_id" to the opening quote of prev_hash, into mid (FM_AUDIT_LINE_MAX
 * bytes). Done before the lock, which is contended. Returns its length, or 0
 * with errno EOVERFLOW (cannot happen: see the _Static_assert above).
 */
static size_t format_fields(const fm_audit_record *rec, char mid[FM_AUDIT_LINE_MAX])
{
    static const char *const names[STRING_FIELDS + ID_FIELDS] = {
        "trace_id", "user",    "key_id", "action",     "resource", "source_ip",
        "reason",   "task_id", "worker", "permission", "owner"};
    const char *const values[STRING_FIELDS + ID_FIELDS] = {
        rec->trace_id, rec->user,    rec->key_id, rec->action,     rec->resource, rec->source_ip,
        rec->reason,   rec->task_id, rec->worker, rec->permission, rec->owner};
    char fields[STRING_FIELDS][FIELD_BUF];
    char ids[ID_FIELDS][sizeof ",\"permission\":" + ID_FIELD_BUF];
    char bytes[sizeof BYTES_MAX] = "";
    char cut[sizeof TRUNCATED_MAX] = "";
    size_t cutlen = 0;
    int n;

    bool was_cut[STRING_FIELDS + ID_FIELDS];

    /* resource (4) first: action (3) is made from it when it can be (action_field). */
    was_cut[4] = json_field(fields[4], FIELD_BUF, values[4]);
    for (size_t i = 0; i < STRING_FIELDS + ID_FIELDS; i++) {
        size_t buf = i >= STRING_FIELDS + ID_FIELDS - SHORT_FIELDS ? SHORT_FIELD_BUF : ID_FIELD_BUF;

        if (i == 4 || (i == 3 && action_field(fields[3], values[3], values[4], fields[4])))
            was_cut[i] = i == 4 && was_cut[4];
        else
            was_cut[i] = i < STRING_FIELDS ? json_field(fields[i], FIELD_BUF, values[i])
                                           : id_field(ids[i - STRING_FIELDS], sizeof ids[0],
                                                      names[i], values[i], buf);
        if (was_cut[i])
            cutlen += (size_t)snprintf(cut + cutlen, sizeof cut - cutlen, "%s\"%s\"",
                                       cutlen == 0 ? ",\"truncated\":[" : ",", names[i]);
    }
    if (cutlen > 0)
        (void)snprintf(cut + cutlen, sizeof cut - cutlen, "]");
    if (rec->has_bytes)
        (void)snprintf(bytes, sizeof bytes, ",\"bytes\":%llu", (unsigned long long)rec->bytes);
    n = snprintf(mid, FM_AUDIT_LINE_MAX,
                 "\"trace_id\":%s,\"user\":%s,\"key_id\":%s,\"action\":%s,\"resource\":%s,"
                 "\"source_ip\":%s,\"result\":\"%s\",\"status\":%d,\"reason\":%s%s%s%s%s%s%s,"
                 "\"prev_hash\":\"",
                 fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
                 rec->status < 400 && !rec->failed ? "success" : "failure", rec->status, fields[6],
                 ids[0], ids[1], ids[2], ids[3], bytes, cut);
    if (n < 0 || (size_t)n >= FM_AUDIT_LINE_MAX) {
        errno = EOVERFLOW;
        return 0;
    }
    return (size_t)n;
}

/*
 * Takes the chain lock and brings the shared head in line with the file the
 * record is about to go to (see the top of the file). On FM_OK the lock is
 * held, *st describes the descriptor's file and *need_nl says whether that
 * file ends in a torn line. On FM_ESYS (errno set) the lock is not held.
 */
static fm_err lock_and_sync(fm_audit *audit, struct stat *st, int *need_nl)
{
    fm_audit_shared *s = audit->shared;
    int rc = pthread_mutex_lock(&s->mu), owner_died = 0, err;

    if (rc == EOWNERDEAD) {
        owner_died = 1;
        rc = pthread_mutex_consistent(&s->mu);
    }
    if (rc != 0) {
        errno = rc;
        return FM_ESYS;
    }
    if (file_id(audit->fd, st) != 0 || follow_path(audit, st) != 0)
        goto fail;
    sync_head(s, audit->fd, st, owner_died, need_nl);
    if (s->seq >= SEQ_MAX) {
        errno = EOVERFLOW;
        goto fail;
    }
    return FM_OK;

fail:
    err = errno;
    (void)pthread_mutex_unlock(&s->mu);
    errno = err;
    return FM_ESYS;
}

/* A line's start up to its seq, {"ts":"<RFC 3339, ms>","seq":, and the time it names. */
typedef struct stamp {
    int64_t ms;
    char text[FM_RFC3339_MAX + 16];
    size_t len; /* 0: could not be formatted (cannot happen) */
} stamp;

static void stamp_at(stamp *t, int64_t ms)
{
    char ts[FM_RFC3339_MAX];
    int n =
        snprintf(t->text, sizeof t->text, "{\"ts\":\"%s\",\"seq\":", fm_clock_rfc3339_ms(ts, ms));

    t->ms = ms;
    t->len = n > 0 && (size_t)n < sizeof t->text ? (size_t)n : 0;
}

/*
 * Completes the record (lock held): the stamp t and seq (> 0) in front of mid
 * (midlen bytes), the head's hash as prev_hash, then the hash of all that.
 * out has FM_AUDIT_LINE_MAX bytes. Returns the line's length with its newline,
 * or 0 with errno (EOVERFLOW, or ENOMEM when the hash cannot be made); *hex
 * gets the record's hash.
 */
static size_t finish_line(const fm_audit_shared *s, const stamp *t, long long seq, const char *mid,
                          size_t midlen, char out[FM_AUDIT_LINE_MAX], char hex[HEX_LEN + 1])
{
    char digits[24];
    size_t nd = 0, len;

    /* seq is the one thing formatted under the lock: by hand, it is a few digits. */
    do {
        digits[nd++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq > 0 && nd < sizeof digits);
    if (t->len == 0 ||
        t->len + nd + 1 + midlen + HEX_LEN + 1 + HASH_SUFFIX_LEN + 1 >= FM_AUDIT_LINE_MAX) {
        errno = EOVERFLOW;
        return 0;
    }
    memcpy(out, t->text, t->len);
    len = t->len;
    while (nd > 0)
        out[len++] = digits[--nd];
    out[len++] = ',';
    memcpy(out + len, mid, midlen);
    len += midlen;
    memcpy(out + len, s->hash, HEX_LEN);
    len += HEX_LEN;
    out[len++] = '"';
    if (audit_sha256_hex(out, len, hex) != 0)
        return 0; /* errno set */
    memcpy(out + len, audit_hash_key, AUDIT_HASH_KEY_LEN);
    len += AUDIT_HASH_KEY_LEN;
    memcpy(out + len, hex, HEX_LEN);
    len += HEX_LEN;
    memcpy(out + len, "\"}\n", 3);
    return len + 3;
}

/*
 * Appends the record (lock held, head synced by lock_and_sync) with one
 * write(2), and advances the head only when the whole line reached the file.
 * A torn line is cut off again. Returns FM_OK or FM_ESYS with errno (EIO
 * for a short write).
 */
static fm_err append_line(fm_audit *audit, const struct stat *st, int need_nl, stamp *t,
                          const char *mid, size_t midlen)
{
    fm_audit_shared *s = audit->shared;
    char line[1 + FM_AUDIT_LINE_MAX]; /* line[0] holds a newline that ends a torn line */
    char hex[HEX_LEN + 1];
    const char *from = need_nl ? line : line + 1;
    size_t len;
    ssize_t w;

    /*
     * Stamped before the lock; a stamp older than the record before this one
     * (whose writer came later but waited less) is made again now, under the
     * lock, so that ts order stays seq order.
     */
    if (t->ms < s->last_ts_ms)
        stamp_at(t, fm_clock_now_ms());
    len = finish_line(s, t, s->seq + 1, mid, midlen, line + 1, hex);
    if (len == 0)
        return FM_ESYS;
    line[0] = '\n';
    len += need_nl ? 1 : 0;
    do {
        w = write(audit->fd, from, len);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        return FM_ESYS;
    if ((size_t)w != len || (sync_due(audit) && sync_file(audit) != 0)) {
        /*
         * A torn record would break every JSON reader of the file, and one
         * that could not be synced may be lost although the request was
         * answered: cut it off, and the request fails closed. If even that
         * fails, sync_head starts the next record on a line of its own.
         */
        int err = (size_t)w != len ? EIO : errno, cut = ftruncate(audit->fd, st->st_size);
        errno = cut == 0 ? err : errno;
        return FM_ESYS;
    }
    /*
     * O_APPEND put the line at the end file_id saw (nobody in the region wrote
     * since: we hold the lock), so no lseek is needed for the new size. A
     * writer outside the region that slipped in between only makes the next
     * writer re-read the tail, as it would anyway for such a writer.
     */
    s->size = st->st_size + w;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    memcpy(s->hash, hex, sizeof s->hash);
    s->seq++;
    s->last_ts_ms = t->ms;
    return FM_OK;
}

/* Stamps, chains and appends formatted fields (a handle from fm_audit_open). */
static fm_err write_fields(fm_audit *audit, const char *mid, size_t midlen)
{
    struct stat st;
    stamp t;
    int need_nl, err;
    fm_err rc;

    stamp_at(&t, fm_clock_now_ms());
    if ((rc = lock_and_sync(audit, &st, &need_nl)) != FM_OK)
        return rc;
    rc = append_line(audit, &st, need_nl, &t, mid, midlen);
    err = errno;
    (void)pthread_mutex_unlock(&audit->shared->mu);
    errno = err;
    return rc;
}

static fm_err write_record(fm_audit *audit, const fm_audit_record *rec)
{
    char mid[FM_AUDIT_LINE_MAX]; /* "trace_id" ... "prev_hash":" (no chain state) */
    size_t midlen;

    if (audit == NULL || rec == NULL) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    if ((midlen = format_fields(rec, mid)) == 0)
        return FM_ESYS;
    if (audit->remote)
        return audit_remote_write(audit, mid, midlen);
    return write_fields(audit, mid, midlen);
}

/* Every failure is counted for /metrics, whoever writes (a worker, the sweeper). */
fm_err fm_audit_write(fm_audit *audit, const fm_audit_record *rec)
{
    fm_err rc = write_record(audit, rec);
    int err = errno;

    if (rc != FM_OK)
        fm_metrics_inc(FM_MET_AUDIT_WRITE_FAILURES);
    errno = err;
    return rc;
}

fm_err fm_audit_ready(const fm_audit *audit)
{
    struct statvfs vfs;

    if (audit == NULL || (audit->remote ? audit->dirfd : audit->fd) < 0) {
        errno = EBADF;
        return FM_ESYS;
    }
    if (fstatvfs(audit->remote ? audit->dirfd : audit->fd, &vfs) != 0)
        return FM_ESYS;
    if (vfs.f_flag & ST_RDONLY) {
        errno = EROFS;
        return FM_ESYS;
    }
    if ((unsigned long long)vfs.f_bavail * vfs.f_frsize < FM_AUDIT_RESERVE_BYTES) {
        errno = ENOSPC;
        return FM_ESYS;
    }
    return FM_OK;
}

/* ---- the logger's side: records formatted elsewhere, checkpoints ------------------ */

fm_err fm_audit_append(fm_audit *audit, const char *fields, size_t len)
{
    if (audit->remote || !audit_fields_ok(fields, len)) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    return write_fields(audit, fields, len);
}

fm_err fm_audit_checkpoint(fm_audit *audit, const fm_audit_key *key, bool *written)
{
    fm_audit_shared *s = audit->shared;
    char mid[512], sig[129], id[17];
    struct stat st;
    stamp t;
    int need_nl, n, err;
    fm_err rc;

    if (written != NULL)
        *written = false;
    if (audit->remote) {
        errno = EINVAL;
        return FM_EINVAL;
    }
    stamp_at(&t, fm_clock_now_ms());
    if ((rc = lock_and_sync(audit, &st, &need_nl)) != FM_OK)
        return rc;
    /* Signed under the lock: the head signed is the one the checkpoint follows. */
    if (s->seq == 0 || s->seq == s->signed_seq) {
        rc = FM_OK;
    } else if (audit_sign_head(key, s->seq, s->hash, sig, id) != 0 ||
               (n = snprintf(mid, sizeof mid,
                             "\"trace_id\":null,\"user\":null,\"key_id\":\"%s\",\"action\":"
                             "\"CHECKPOINT\",\"resource\":\"audit\",\"source_ip\":null,"
                             "\"result\":\"success\",\"status\":200,\"reason\":null,"
                             "\"signature\":\"%s\",\"prev_hash\":\"",
                             id, sig)) < 0 ||
               (size_t)n >= sizeof mid) {
        errno = EOVERFLOW;
        rc = FM_ESYS;
    } else if ((rc = append_line(audit, &st, need_nl, &t, mid, (size_t)n)) == FM_OK) {
        s->signed_seq = s->seq;
        if (written != NULL)
            *written = true;
    }
    err = errno;
    (void)pthread_mutex_unlock(&s->mu);
    errno = err;
    return rc;
}
