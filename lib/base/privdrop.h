/*
 * privdrop.h - giving up root for good, the way OpenBSD's daemons and nginx's
 * workers do (setgroups, setresgid, setresuid, in that order: the group ids
 * can only be changed while the process is still root), and checking that it
 * took: no id of the process is 0 any more, no capability is left, and
 * setuid(0) fails.
 */
#ifndef FM_PRIVDROP_H
#define FM_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/*
 * fm_privdrop - make the calling process, which must be root (effective uid
 * 0), the account user: uid and gid for its real, effective and saved ids,
 * and the supplementary groups the group database gives user (initgroups(3),
 * which includes gid). Then sets PR_SET_NO_NEW_PRIVS (no later execve can
 * gain privileges) and verifies (fm_privdrop_verify). uid must not be 0.
 * Returns FM_OK; FM_EINVAL with a one-line reason in err (errlen bytes) when
 * uid is 0 or the caller is not root; FM_ESYS with errno and the reason
 * when a call fails or the verification does (the process is then in an
 * unknown state and must exit).
 */
FM_MUST_CHECK fm_err fm_privdrop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
    FM_NONNULL(1, 4);

/*
 * fm_privdrop_verify - FM_OK when the calling process cannot act as root:
 * its real, effective and saved uids are all uid and its gids all gid, none
 * of them 0, its permitted and effective capability sets are empty
 * (capget(2)), and setuid(0) and setgid(0) fail. Otherwise FM_ESYS with the
 * first failed condition in err (errlen bytes); errno is EPERM when the
 * process could regain root.
 */
FM_MUST_CHECK fm_err fm_privdrop_verify(uid_t uid, gid_t gid, char *err, size_t errlen)
    FM_NONNULL(3);

#endif
