/*
 * exptree.h - one user's experiment files (SPEC section 6):
 * data.experiments_dir/<user>/<experiment>/<path>, directories 0700, files
 * 0600 whatever the process umask, every lookup below the user's directory
 * made by the kernel (beneath.h: no symbolic link, /proc magic link, ".."
 * or mount crossing is ever followed; what is found must be a regular file
 * with one link, or a directory).
 *
 * Ownership: when the process runs as root and experiments_dir belongs to
 * another user, every entry made here is given experiments_dir's owner and
 * group, so the service account can still use the tree after the process
 * drops its privileges (SPEC section 7) and nothing of it is root's.
 *
 * Writes (an upload, a delete) follow one protocol:
 *   begin   an upload writes into an unnamed O_TMPFILE in the user's
 *           directory (no name exists while it streams, and no directory is
 *           made for it yet: a client that goes away or a worker killed
 *           mid-upload leaves nothing behind), and hashes what it writes
 *           (SHA-256, the ETag);
 *   commit  under the user's lock (flock(2) on the user's directory, shared
 *           by every worker process), the preconditions (If-Match,
 *           If-None-Match) and the quotas are checked against the tree as
 *           it is then, the file is made durable (fdatasync), the missing
 *           directories of its way are made, it is given a hidden name
 *           (FM_BENEATH_RESERVED...) there and swapped into place with
 *           renameat2 (RENAME_NOREPLACE for a new file, RENAME_EXCHANGE for a
 *           replaced one, whose old content keeps the hidden name); a delete
 *           renames the file to a hidden name. A reader sees the old file or
 *           the new one, never part of one and never no file;
 *   settle  (the audit record is written) removes the hidden name, and after
 *           a delete every directory of the way (the experiment's included)
 *           the delete left empty, then releases the lock; or
 *   undo    (it could not be) puts the old state back (removing the
 *           directories the commit made) and releases the lock.
 * Directories are made and removed only under the lock, so an upload into a
 * directory that a delete empties concurrently finds it again (or makes it
 * anew) at its commit; a directory that is not empty (a shell user's entry)
 * is left alone (unlinkat AT_REMOVEDIR fails with ENOTEMPTY).
 * The lock is held from commit to settle or undo, so two changes of one
 * user's tree never interleave: an If-Match compare-and-swap cannot lose an
 * update, and concurrent uploads, overwrites and deletes cannot together
 * pass a quota. Hidden names are never listed or counted, and no client
 * name can denote one; a hidden name left by a worker killed between commit
 * and settle is removed by the next commit in that user's tree (under the
 * lock, no hidden name belongs to a change in flight).
 *
 * Quotas count the regular, singly linked files of the user's whole tree
 * (what listings show), by their size in bytes; data.quota_files counts the
 * files and the directories (each experiment's and those below: every
 * directory costs an inode, and a delete removes the ones it empties), walked
 * at each commit under
 * the lock: the disk is the only record, so files removed or added with shell
 * access count at once, at a cost of O(files of the user) per upload (bounded
 * by data.quota_files). The lock is flock(2): it holds across the worker
 * processes of one host, and across hosts only on a shared file system whose
 * flock works between clients.
 *
 * ETag cache: the user.fetchml.etag extended attribute holds the digest with
 * the size and mtime it was made for; a change of the same size within the
 * file system's timestamp granularity (made with shell access) would keep the
 * old ETag.
 */
#ifndef FM_EXPTREE_H
#define FM_EXPTREE_H

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "beneath.h"
#include "err.h"
#include "sha256.h"

#define FM_EXP_ETAG_LEN 64 /* hex digits of an ETag (SHA-256), without the quotes */

typedef struct fm_exptree {
    int fd;     /* the user's directory; -1 when closed */
    bool chown; /* give new entries uid:gid (see above) */
    uid_t uid;
    gid_t gid;
} fm_exptree;

typedef struct fm_exp_usage {
    uint64_t bytes;
    uint64_t files;
    uint64_t dirs; /* directories below the user's directory, the experiments' included */
} fm_exp_usage;

/*
 * fm_exptree_open - open user's tree under experiments_dir (an absolute
 * path from the config; the tree is created 0700 when create is true and it
 * does not exist yet). user must be a valid name (fm_beneath_name_valid).
 * Returns FM_OK with *t filled (close with fm_exptree_close); FM_ENOTFOUND
 * when the tree does not exist and create is false (or user's entry is not
 * a directory); FM_EINVAL for an invalid user name; FM_ESYS with errno.
 */
FM_MUST_CHECK fm_err fm_exptree_open(const char *experiments_dir, const char *user, bool create,
                                     fm_exptree *t);

/* fm_exptree_close - close t (releases the lock if held). Accepts a closed t. */
void fm_exptree_close(fm_exptree *t);

/*
 * fm_exptree_experiments - the experiments (top-level directories with valid
 * names) as a new JSON array, sorted by name, of {"name", "files", "bytes"};
 * *total gets the whole tree's usage (dirs: the experiments and what is below them).
 * *out is the caller's (cJSON_Delete).
 * FM_OK, or FM_ESYS with errno (ENOMEM, a read error).
 */
fm_err fm_exptree_experiments(const fm_exptree *t, cJSON **out, fm_exp_usage *total);

/*
 * fm_exptree_files - the files of experiment exp (a valid name), sorted by
 * path (byte order), as a new JSON array of {"path", "bytes", "modified_at"
 * (RFC 3339 UTC)}: the entries offset .. offset + limit - 1 of *total.
 * FM_OK; FM_ENOTFOUND when exp is no directory of the tree; FM_EINVAL for an
 * invalid exp; FM_ESYS with errno.
 */
fm_err fm_exptree_files(const fm_exptree *t, const char *exp, size_t offset, size_t limit,
                        cJSON **out, size_t *total);

/* A file opened for reading. */
typedef struct fm_exp_file {
    int fd; /* the caller's to close */
    uint64_t size;
    char etag[FM_EXP_ETAG_LEN + 1]; /* hex SHA-256 of the content */
} fm_exp_file;

/*
 * fm_exptree_read - open exp/path (valid names and path) for reading. The
 * ETag comes from the file's cached digest (the user.fetchml.etag extended
 * attribute written at upload, trusted only while size and mtime match) or
 * is computed by reading the file once. FM_OK; FM_ENOTFOUND when there is no
 * regular, singly linked file there (a directory, a symbolic link anywhere on
 * the way, a FIFO, a device, a hard link, nothing); FM_EINVAL for invalid
 * names; FM_ESYS with errno. A file replaced or deleted while it is opened
 * (found, then unlinked before it could be checked) is looked up again, a
 * few times: a concurrent replace never makes a reader see no file.
 */
fm_err fm_exptree_read(const fm_exptree *t, const char *exp, const char *path, fm_exp_file *f);

/* One change in flight (an upload or a delete); the caller only keeps it and passes it back. */
typedef struct fm_exp_change {
    int dirfd; /* the file's directory (after commit, for an upload), or -1 */
    int fd;    /* an upload's O_TMPFILE, or -1 */
    bool locked;
    enum { FM_EXP_NEW, FM_EXP_REPLACE, FM_EXP_DELETE } kind; /* what commit did */
    unsigned made;                      /* directories the commit made for a new file */
    char rel[FM_BENEATH_PATH_MAX + 1];  /* "exp/path" */
    char leaf[FM_BENEATH_NAME_MAX + 1];
    char hidden[sizeof FM_BENEATH_RESERVED + 16]; /* the hidden name commit made */
    uint64_t bytes;                               /* written so far; a deleted file's size */
    uint64_t old_bytes;                           /* a replaced file's size */
    fm_sha256_stream sha;           /* the content's, as it is written */
    char etag[FM_EXP_ETAG_LEN + 1]; /* after commit: the new content's */
} fm_exp_change;

/*
 * fm_exptree_put_begin - start an upload of exp/path: an unnamed temporary
 * file (0600) in the user's directory; no directory is made before commit.
 * FM_OK with *c ready for fm_exptree_put_write (finish with _put_commit or
 * _abort); FM_EINVAL for invalid names; FM_ECONFLICT when an existing
 * component of the way is not a directory of the tree (a file, a symbolic
 * link, a special file); FM_ESYS with errno (EOPNOTSUPP: the file system has
 * no O_TMPFILE). On an error nothing is left to abort.
 */
fm_err fm_exptree_put_begin(const fm_exptree *t, const char *exp, const char *path,
                            fm_exp_change *c);

/* fm_exptree_put_write - append n bytes. FM_OK, or FM_ESYS with errno (ENOSPC, EIO...). */
fm_err fm_exptree_put_write(fm_exp_change *c, const void *buf, size_t n);

/* Preconditions (RFC 9110 section 13.1), the raw header values; NULL = not sent. */
typedef struct fm_exp_cond {
    const char *if_match;      /* "*" or a list of entity tags, strong comparison */
    const char *if_none_match; /* "*" or a list of entity tags, weak comparison */
} fm_exp_cond;

typedef struct fm_exp_limits {
    uint64_t quota_bytes; /* bytes per user */
    uint64_t quota_files; /* files per user */
} fm_exp_limits;

/*
 * fm_exptree_put_check - the preconditions against exp/path as it is now,
 * before an upload streams (a client told 412 at once need not send a large
 * body for nothing); commit checks them again under the lock, which is what
 * counts. FM_OK (also when cond names none); FM_ECONFLICT (a precondition
 * fails); FM_EINVAL (invalid names, or what is there is not a regular,
 * singly linked file); FM_ESYS with errno.
 */
fm_err fm_exptree_put_check(const fm_exptree *t, const char *exp, const char *path,
                            const fm_exp_cond *cond);

/*
 * fm_exptree_put_commit - put the upload in place (see the protocol above).
 * FM_OK: the file is there, c->kind says whether it is new or replaced one,
 * c->etag is its ETag; the lock is held until fm_exptree_settle or
 * fm_exptree_undo, one of which must follow. Otherwise nothing changed, the
 * lock is released, no directory was left made, and the caller calls
 * fm_exptree_abort: FM_ECONFLICT (a precondition failed: 412); FM_EQUOTA
 * (*why is "quota_bytes" or "quota_files"; a new file costs one entry and one
 * more per directory it needs made); FM_EINVAL (*why is "not_regular": what
 * is at the path is not a regular, singly linked file, it is never replaced;
 * or "not_directory": a component of the way is not a directory, e.g. a file
 * a concurrent upload put there); FM_ESYS with errno.
 */
fm_err fm_exptree_put_commit(const fm_exptree *t, fm_exp_change *c, const fm_exp_cond *cond,
                             const fm_exp_limits *lim, const char **why);

/*
 * fm_exptree_delete - remove exp/path (commits at once: the lock is held
 * until fm_exptree_settle or _undo, one of which must follow FM_OK; c->bytes
 * is the file's size). FM_ENOTFOUND when there is no regular, singly linked
 * file there (nothing is held then); FM_EINVAL for invalid names; FM_ESYS
 * with errno.
 */
fm_err fm_exptree_delete(const fm_exptree *t, const char *exp, const char *path, fm_exp_change *c);

/*
 * fm_exptree_settle - the change stands: drop the hidden name, remove the
 * directories a delete left empty (not one holding anything), release the
 * lock. Logs failures.
 */
void fm_exptree_settle(const fm_exptree *t, fm_exp_change *c);

/*
 * fm_exptree_undo - put back what the change replaced or removed (a new
 * file's directories made by its commit are removed again), release the
 * lock. Logs failures.
 */
void fm_exptree_undo(const fm_exptree *t, fm_exp_change *c);

/* fm_exptree_abort - end a change that did not commit (or already settled): close what it holds. */
void fm_exptree_abort(fm_exp_change *c);

/*
 * fm_exptree_usage - the user's usage: every regular, singly linked file of
 * the tree, and its directories. FM_OK or FM_ESYS with errno.
 */
fm_err fm_exptree_usage(const fm_exptree *t, fm_exp_usage *use);

#endif
