/*
 * keyrotate.h - new keys for one user or every user of a configuration file,
 * written back into the file in place (fetchml-admin rotate; docs/operations.md,
 * "Keys").
 *
 * Only the byte ranges of the users' hash: and keys: values change; every
 * comment, the order of keys and sections and the layout around them stay as
 * the operator wrote them. The file is replaced atomically (a temporary file
 * beside it with its owner, group and mode, fsync, rename(2)) after the new
 * text has loaded with fm_config_load, and the old file is kept as
 * CONFIG.bak-YYYYMMDDTHHMMSSZ (a hard link: the same inode, owner and mode).
 *
 * The keys themselves never reach this module: the caller's callback makes
 * each new key and hands back only its SHA-256. keyrotate.c rewrites the
 * text, keyrotate_file.c replaces the file.
 */
#ifndef FM_KEYROTATE_H
#define FM_KEYROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define FM_KEYROTATE_BACKUP_MAX 4200 /* PATH_MAX + ".bak-YYYYMMDDTHHMMSSZ", with room */

/*
 * fm_keyrotate_fn - called once per user rotated, in file order: writes the
 * SHA-256 of user's new key into hash. Any result but FM_OK stops the
 * rotation with that result (nothing is written).
 */
typedef fm_err (*fm_keyrotate_fn)(void *arg, const char *user,
                                  unsigned char hash[FM_KEY_HASH_BYTES]);

typedef struct fm_keyrotate_opts {
    const char *user; /* the one user to rotate; NULL = every user of auth.api_keys */
    int64_t now;      /* Unix seconds: keys with an expires at or before it are dropped */
    /*
     * Seconds the old keys keep working (0..365 days). 0: the user's only key
     * is the new one, every old key stops at the reload. Otherwise each old
     * key still in force stays in keys: with expires = min(its own, now + grace).
     */
    int64_t grace;
    fm_keyrotate_fn new_hash;
    void *arg;
} fm_keyrotate_opts;

/*
 * fm_keyrotate_text - the text of a configuration (text, len bytes, as loaded
 * into cfg by fm_config_load; file names it in messages) with the keys of
 * o->user, or of every user, replaced. *out (NUL-terminated, *outlen bytes
 * without the NUL) is the caller's to free.
 *
 * Each user's hash: value becomes the new hash; its keys: value (or a keys:
 * entry added after hash:, when grace keeps an old key) becomes the list of
 * the old keys still in force, or, for a user with keys: only, the new key
 * (label "rotated YYYY-MM-DD") followed by them. A block keys: list is
 * written in block style at its own indentation, a flow one in flow style.
 *
 * Refused with FM_EINVAL and "file:line:col: message" in err (errlen bytes),
 * nothing in *out: a value that takes text from the environment (${NAME})
 * among the keys rotated, a block scalar (| or >) as a hash, a layout whose
 * indentation is not spaces, o->user not in the file, o->grace out of range,
 * text that is not the document cfg was loaded from. FM_ESYS (ENOMEM) when
 * out of memory; the callback's error as it returned it. Never names a key
 * or a hash in err.
 */
fm_err fm_keyrotate_text(const fm_config *cfg, const char *file, const char *text, size_t len,
                         const fm_keyrotate_opts *o, char **out, size_t *outlen, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

typedef struct fm_keyrotate_job fm_keyrotate_job;

/*
 * fm_keyrotate_prepare - the first half of rotating the file at path (a
 * symbolic link is followed: its target is rewritten): loads it, rewrites
 * the text (fm_keyrotate_text), writes it to a temporary file in the same
 * directory with the file's owner, group and mode, fsyncs it, loads it again
 * with fm_config_load and checks that every rotated user has exactly the keys
 * intended (the new one first). *job (the caller's; fm_keyrotate_free) holds
 * the temporary file until fm_keyrotate_commit. The original is not touched.
 *
 * Errors, with the message in err: the loader's "file:line:col: message" when
 * path does not load; those of fm_keyrotate_text; FM_ESYS with errno when a
 * file operation fails (the message names it). Nothing is left behind.
 */
fm_err fm_keyrotate_prepare(const char *path, const fm_keyrotate_opts *o, fm_keyrotate_job **job,
                            char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * fm_keyrotate_commit - the second half: links the original to
 * "<path>.bak-YYYYMMDDTHHMMSSZ" (".1", ".2"... appended when that exists;
 * its name into backup, backuplen bytes), checks
 * that the file was not changed since fm_keyrotate_prepare read it, renames
 * the temporary file over it and fsyncs the directory. FM_OK, or FM_ECONFLICT
 * (the file changed meanwhile, or 100 backups in one second) or FM_ESYS
 * with errno, the message in err; on error the original is left as it was.
 */
fm_err fm_keyrotate_commit(fm_keyrotate_job *job, char *backup, size_t backuplen, char *err,
                           size_t errlen) __attribute__((warn_unused_result));

/* fm_keyrotate_free - removes the temporary file unless committed, and frees job (NULL: no-op). */
void fm_keyrotate_free(fm_keyrotate_job *job);

#endif
