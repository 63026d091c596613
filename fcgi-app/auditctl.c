/*
 * auditctl.c - the master's side of its conversation with the audit logger
 * (auditctl.h): one GEN request per configuration generation, and its answer.
 */
#include "auditctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unixsock.h"

/* Copies a path setting into a control message's field; false when it does not fit. */
static bool put_path(char *dst, size_t cap, const char *path)
{
    int n = snprintf(dst, cap, "%s", path != NULL ? path : "");

    return n >= 0 && (size_t)n < cap;
}

bool fm_auditctl_generation(int ctl, const fm_config *cfg, uid_t peer, fm_audit_endpoint *ep)
{
    static int32_t requests; /* never reused: a refused request's number does not come back */
    const int32_t generation = requests++;
    fm_auditctl_msg msg = {
        .type = FM_AUDITCTL_GEN,
        .generation = generation,
        .sync = (int32_t)cfg->logging.audit_sync,
        .sync_ms = cfg->logging.audit_sync_ms,
        .sign_interval_ms = cfg->logging.audit_sign_interval_ms,
        .peer_uid = (uint32_t)peer,
    };
    fm_auditctl_reply reply;
    struct pollfd pfd = {.fd = ctl, .events = POLLIN};
    size_t len;
    int sock, fd;
    fm_err rc;

    if (!put_path(msg.file, sizeof msg.file, cfg->logging.file) ||
        !put_path(msg.key, sizeof msg.key, cfg->logging.audit_sign_key)) {
        fm_log_error("%s: an audit path is longer than %zu bytes", cfg->path, sizeof msg.file - 1);
        return false;
    }
    if (ctl < 0) {
        fm_log_error("the audit logger is gone");
        return false;
    }
    if (fm_audit_endpoint_open(&sock, ep) != FM_OK) {
        fm_log_error("cannot make the audit logger's socket: %s", strerror(errno));
        return false;
    }
    rc = fm_unixsock_send(ctl, &msg, sizeof msg, sock);
    (void)close(sock); /* the logger has its own descriptor of it now */
    if (rc != FM_OK) {
        fm_log_error("cannot reach the audit logger: %s", strerror(errno));
        return false;
    }
    /* Until the answer to this request (a late answer to an earlier one is dropped). */
    for (;;) {
        int r = poll(&pfd, 1, FM_AUDITCTL_REPLY_MS);
        if (r < 0 && errno == EINTR)
            continue;
        rc = r > 0 ? fm_unixsock_recv(ctl, &reply, sizeof reply, &len, &fd) : FM_ENOTFOUND;
        if (rc == FM_ESYS && errno == EINTR)
            continue;
        if (rc == FM_OK && fd >= 0)
            (void)close(fd);
        if (rc != FM_OK || len != sizeof reply || reply.generation == generation)
            break;
    }
    if (rc != FM_OK || len != sizeof reply) {
        fm_log_error("the audit logger did not answer within %d ms", FM_AUDITCTL_REPLY_MS);
        return false;
    }
    if (!reply.ok) {
        reply.why[sizeof reply.why - 1] = '\0';
        fm_log_error("%s: the audit logger cannot write this trail: %s", cfg->path, reply.why);
        return false;
    }
    return true;
}
