/*
 * peercred.c - a unix socket peer's credentials and the allowed-peers rule
 * (see peercred.h). The credentials are those of the process that called
 * connect(2), fixed then: a peer that changes its uid afterwards, or hands
 * the descriptor to another process, is still judged by who connected.
 */
#include "peercred.h"

#include <sys/socket.h>

fm_err fm_peercred_get(int fd, fm_peercred *out)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return FM_ESYS;
    out->pid = cred.pid;
    out->uid = cred.uid;
    out->gid = cred.gid;
    return FM_OK;
}

bool fm_peercred_allowed(uid_t uid, uid_t self, const uid_t *allowed, size_t n)
{
    if (uid == self)
        return true;
    for (size_t i = 0; i < n; i++)
        if (allowed[i] == uid)
            return true;
    return false;
}
