/*
 * auditctl.h - what the master and the audit logger say to each other, over
 * the SOCK_SEQPACKET socketpair made before the logger was forked (one
 * fixed-size message each way, fm_unixsock_send/recv).
 *
 * The logger runs under an account of its own (logging.audit_user) and the
 * master under server.user: the master cannot signal it, open its files or
 * start another one. So it tells it what a configuration generation needs:
 *
 *   GEN     master -> logger, with the generation's listening socket
 *           attached (fm_audit_endpoint_open, made by the master, whose
 *           address the generation's workers connect to): write
 *           generation's records to file, synced as sync says, signed with
 *           the key at key (none when ""), from connections of peer_uid
 *           alone. The logger opens the file and the key itself and answers
 *           one fm_auditctl_reply: ok, or why not (the reload is then
 *           refused). Once it said ok, the older generations' sockets are
 *           closed: their workers' connections are served until they end.
 *   REOPEN  master -> logger, after SIGUSR1 (logrotate): reopen every
 *           trail's path; the master's newly opened api.log is attached,
 *           as the logger cannot open it (no answer).
 *
 * The master closing its end is the stop: no new connection is accepted,
 * the open ones are served until their senders have gone, the heads are
 * signed, and the logger exits.
 */
#ifndef FM_AUDITCTL_H
#define FM_AUDITCTL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "config.h"

#define FM_AUDITCTL_GEN 1u
#define FM_AUDITCTL_REOPEN 2u
#define FM_AUDITCTL_REPLY_MS 5000 /* how long the master waits for the answer to GEN */

typedef struct fm_auditctl_msg {
    uint32_t type;            /* FM_AUDITCTL_GEN or FM_AUDITCTL_REOPEN */
    int32_t generation;       /* GEN: the request's number, from 0, never reused */
    int32_t sync;             /* GEN: fm_audit_sync */
    int32_t sync_ms;          /* GEN: logging.audit_sync_ms */
    int32_t sign_interval_ms; /* GEN: logging.audit_sign_interval_ms */
    uint32_t peer_uid;        /* GEN: the one uid whose connections are served */
    char file[PATH_MAX];      /* GEN: logging.file, NUL-terminated */
    char key[PATH_MAX];       /* GEN: logging.audit_sign_key, "" = none */
} fm_auditctl_msg;

typedef struct fm_auditctl_reply {
    int32_t generation; /* the GEN answered */
    int32_t ok;         /* 1: the generation's records will be written */
    char why[512];      /* otherwise: one line, no secret */
} fm_auditctl_reply;

/*
 * fm_auditctl_generation - the master tells the logger at ctl (its end of
 * the socketpair) the next generation's trail: a new listening socket
 * (fm_audit_endpoint_open) for the generation's children, whose address
 * goes in *ep, cfg's logging settings, and peer, the only uid whose
 * connections it serves. The logger opens the file and the key itself and
 * answers within FM_AUDITCTL_REPLY_MS; a late answer to an earlier request
 * is dropped. True when it took the trail; false after logging why (the
 * logger's own reason when it refused, or: a path too long for the message,
 * no logger, socket(2)/sendmsg(2) errors, no answer in time); the trails in
 * force are unchanged then.
 */
bool fm_auditctl_generation(int ctl, const fm_config *cfg, uid_t peer, fm_audit_endpoint *ep);

#endif
