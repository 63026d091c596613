/*
 * beneath.h - names of files a client chooses, and opening them so that the
 * kernel keeps every lookup beneath one directory (SPEC section 6).
 *
 * A name (one path component) is 1 to FM_BENEATH_NAME_MAX bytes of UTF-8
 * (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF),
 * without '/', without any character fm_jsonstr_char calls unsafe (NUL and
 * the other C0 controls, DEL, C1 controls, U+2028/U+2029, bidirectional
 * controls), not "." or "..", and not starting with FM_BENEATH_RESERVED (the
 * prefix of the tree's own hidden entries: temporary files of uploads in
 * flight). A path is 1 to FM_BENEATH_DEPTH_MAX names joined by single '/'
 * (no leading, trailing or doubled '/'), at most FM_BENEATH_PATH_MAX bytes.
 * Names are compared byte for byte: "a" and "A", or a name in NFC and the
 * same in NFD, are different files (the kernel's rule on Linux file systems).
 *
 * fm_beneath_open resolves with openat2(2) and RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV: the kernel
 * refuses, atomically with the lookup, any symbolic link (also in the last
 * component), any /proc magic link, any ".." or absolute path that would
 * leave the directory, and any mount point crossing, so neither a link a
 * user with shell access planted nor a rename racing the lookup leads
 * outside. What the open finds is the caller's to check (fstat: a regular
 * file with one link, see fm_beneath_regular); the open itself is
 * O_NONBLOCK, so a FIFO planted in the tree never blocks the opener.
 */
#ifndef FM_BENEATH_H
#define FM_BENEATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"

#define FM_BENEATH_NAME_MAX 255         /* bytes of one name (NAME_MAX) */
#define FM_BENEATH_PATH_MAX 1024        /* bytes of a path */
#define FM_BENEATH_DEPTH_MAX 64         /* names in a path */
#define FM_BENEATH_RESERVED ".fetchml-" /* prefix of the tree's own hidden entries */

/* fm_beneath_name_valid - whether s (n bytes, need not be NUL-terminated) is a valid name. */
bool fm_beneath_name_valid(const char *s, size_t n);

/*
 * fm_beneath_path_valid - whether the NUL-terminated path is a valid path
 * (see above). When it is and depth is not NULL, *depth is its number of names.
 */
bool fm_beneath_path_valid(const char *path, size_t *depth);

/*
 * fm_beneath_open - openat2(dirfd, path, flags | O_CLOEXEC | O_NOFOLLOW |
 * O_NONBLOCK (not with O_PATH, which openat2 only takes alone), mode) resolved as described above.
 * path is relative (an absolute one fails with EXDEV). Returns a descriptor owned by the caller, or
 * -1 with errno: ELOOP (a symbolic link on the way or at the end), EXDEV (it would leave dirfd's
 * tree or cross a mount), ENOENT, ENOTDIR, EAGAIN (a rename raced the lookup; the kernel asks for a
 * retry, which is done here a few times first), ENOSYS (a kernel before 5.6), or any open(2) error.
 * O_NONBLOCK stays set on the descriptor; regular files and directories ignore it.
 */
int fm_beneath_open(int dirfd, const char *path, int flags, mode_t mode);

/*
 * fm_beneath_regular - whether st describes a regular file with exactly one
 * link: a hard link to a file elsewhere (a second name of an inode outside
 * the tree, or in another user's tree) is refused like a symbolic link.
 */
bool fm_beneath_regular(const struct stat *st);

#endif
