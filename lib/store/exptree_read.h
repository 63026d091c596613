/*
 * exptree_read.h - the lookups, ETags and preconditions of one user's
 * experiment tree (exptree_read.c) that exptree.c's write protocol shares
 * with the reads. Not a public header: exptree.h is the contract.
 */
#ifndef FM_EXPTREE_READ_H
#define FM_EXPTREE_READ_H

#include <stdbool.h>
#include <sys/stat.h>

#include "exptree.h"

/*
 * fm_exptree_join - "exp/path" (exp alone when path is NULL) into buf, NUL
 * terminated; false when exp is no valid name or the two do not form a valid
 * path of at most FM_BENEATH_PATH_MAX bytes (beneath.h).
 */
bool fm_exptree_join(char buf[FM_BENEATH_PATH_MAX + 1], const char *exp, const char *path);

/*
 * fm_exptree_etag_hex - end sha (consumed) into its hex form out, NUL
 * terminated. FM_OK; FM_ESYS (errno) when the digest cannot be made.
 */
fm_err fm_exptree_etag_hex(fm_sha256_stream *sha, char out[FM_EXP_ETAG_LEN + 1]);

/*
 * fm_exptree_etag_note - cache etag on the open file fd for the size and
 * mtime of st (its fstat) in the file's extended attribute. Only a cache: a
 * file system without user xattrs is ignored (reads then hash the file).
 */
void fm_exptree_etag_note(int fd, const char etag[FM_EXP_ETAG_LEN + 1], const struct stat *st);

/*
 * fm_exptree_current - what is at rel beneath dirfd, which an upload would
 * replace: FM_OK with *exists and *st (its fstat); FM_EINVAL when something
 * other than a regular, singly linked file is there; FM_ESYS with errno.
 * etag (NUL terminated, empty when not computed) is computed only when a
 * precondition of cond needs it, and cached on the file when note.
 */
fm_err fm_exptree_current(int dirfd, const char *rel, const fm_exp_cond *cond, bool note,
                          bool *exists, struct stat *st, char etag[FM_EXP_ETAG_LEN + 1]);

/*
 * fm_exptree_preconditions_hold - whether cond's If-Match and If-None-Match
 * (RFC 9110 sections 13.1.1-13.1.2, evaluated in section 13.2.2's order)
 * hold for a file that exists (or not) with etag (fm_exptree_current's).
 */
bool fm_exptree_preconditions_hold(const fm_exp_cond *cond, bool exists, const char *etag);

#endif
