/*
 * privdrop.c - giving up root for good (see privdrop.h).
 *
 * Order matters: the supplementary groups and the gids first, while the
 * process may still change them, then the uids with setresuid, so that the
 * saved uid goes too (a plain seteuid would leave a way back). When every uid
 * of a process that had uid 0 becomes non-zero, the kernel clears its
 * permitted, effective and ambient capabilities (capabilities(7)), unless
 * SECBIT_KEEP_CAPS was set by whoever started it: the check after the drop
 * looks at the capability sets themselves instead of trusting that rule.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Records why in err and returns rc, errno kept. */
static fm_err fail(fm_err rc, char *err, size_t errlen, const char *what)
{
    int e = errno;

    if (rc == FM_ESYS)
        (void)snprintf(err, errlen, "%s: %s", what, strerror(e));
    else
        (void)snprintf(err, errlen, "%s", what);
    errno = e;
    return rc;
}

/* Whether the permitted or effective capability set holds anything (capget(2); no libcap). */
static int has_caps(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].permitted != 0 || data[i].effective != 0)
            return 1;
    return 0;
}

fm_err fm_privdrop_verify(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    int caps;

    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return fail(FM_ESYS, err, errlen, "getresuid");
    if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid || uid == 0 ||
        gid == 0) {
        errno = EPERM;
        return fail(FM_ESYS, err, errlen, "a real, effective or saved id is not the account's");
    }
    caps = has_caps();
    if (caps != 0) {
        if (caps > 0)
            errno = EPERM;
        return fail(FM_ESYS, err, errlen, "capabilities are left after the drop");
    }
    if (setuid(0) == 0 || setgid(0) == 0) {
        errno = EPERM;
        return fail(FM_ESYS, err, errlen, "the process could become root again");
    }
    return FM_OK;
}

fm_err fm_privdrop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (uid == 0)
        return fail(FM_EINVAL, err, errlen, "the account to drop to is root (uid 0)");
    if (geteuid() != 0)
        return fail(FM_EINVAL, err, errlen, "not running as root: nothing to drop");
    if (initgroups(user, gid) != 0)
        return fail(FM_ESYS, err, errlen, "initgroups");
    if (setresgid(gid, gid, gid) != 0)
        return fail(FM_ESYS, err, errlen, "setresgid");
    if (setresuid(uid, uid, uid) != 0)
        return fail(FM_ESYS, err, errlen, "setresuid");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(FM_ESYS, err, errlen, "prctl(PR_SET_NO_NEW_PRIVS)");
    return fm_privdrop_verify(uid, gid, err, errlen);
}
