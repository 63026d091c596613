/*
 * server.c - the server section: where the FastCGI pool listens, how many
 * workers, the request body limit, the socket's mode and group, the account
 * the master drops to (server.user) and the peers the socket serves
 * (server.allowed_peers), and the (informational) TLS files nginx uses.
 *
 * Account names are resolved once, at load (getpwnam(3), as nginx resolves
 * its `user`): a name unknown to this host is an error that points at its
 * line, and the snapshot holds only numbers, which a worker compares with the
 * SO_PEERCRED uid of each connection without a look-up.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sections.h"

static fm_err check_group(struct loader *l, const char *where, const void *field)
{
    const char *group = *(char *const *)field;

    if (group != NULL && !ld_valid_name(group))
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be a group name of 1 to 63 characters [A-Za-z0-9_.-]", where);
    return FM_OK;
}

fm_err ld_account(struct loader *l, const char *where, const char *name, uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    if (!ld_valid_name(name))
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be a user name of 1 to 63 characters [A-Za-z0-9_.-]", where);
    errno = 0;
    pw = getpwnam(name);
    if (pw == NULL)
        return ld_fail(l, &l->ev.start_mark, "%s: no user \"%s\" on this host", where, name);
    if (pw->pw_uid == 0)
        return ld_fail(l, &l->ev.start_mark, "%s: \"%s\" has uid 0; the pool never serves as root",
                       where, name);
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return FM_OK;
}

/* server.user: an account of this host other than root, whose uid and group the master takes. */
static fm_err check_user(struct loader *l, const char *where, const void *field)
{
    return ld_account(l, where, *(char *const *)field, &l->cfg->server.uid, &l->cfg->server.gid);
}

/* One entry of allowed_peers, a user name or a decimal uid, as a uid; -1 after ld_fail. */
static fm_err peer_uid(struct loader *l, const char *item, const char *v, uid_t *uid)
{
    struct passwd *pw;
    char raw[LD_ECHO_BUF];

    if (v[0] >= '0' && v[0] <= '9') {
        char *end;
        unsigned long long n;

        errno = 0;
        n = strtoull(v, &end, 10);
        /* (uid_t)-1 is no uid: chown(2) and setresuid(2) read it as "unchanged". */
        if (errno == 0 && *end == '\0' && n < (uid_t)-1 && (v[0] != '0' || v[1] == '\0')) {
            *uid = (uid_t)n;
            return FM_OK;
        }
        return ld_fail(l, &l->ev.start_mark, "%s must be a user name or a uid (0..%u)", item,
                       (unsigned)((uid_t)-1 - 1));
    }
    ld_echo_value(l, v, raw);
    if (!ld_valid_name(v))
        return ld_fail(l, &l->ev.start_mark,
                       "%s: \"%s\" is not a user name of 1 to 63 characters [A-Za-z0-9_.-]", item,
                       raw);
    pw = getpwnam(v);
    if (pw == NULL)
        return ld_fail(l, &l->ev.start_mark, "%s: no user \"%s\" on this host", item, raw);
    *uid = pw->pw_uid;
    return FM_OK;
}

static fm_err allowed_peers(struct loader *l, const char *where, void *obj)
{
    fm_config *cfg = obj;
    char item[LD_WHERE_MAX];
    bool end;
    fm_err rc;

    if (ld_list_start(l, where, "a list of user names and uids") != 0)
        return FM_EINVAL;
    for (size_t i = 0; (rc = ld_list_next(l, where, i, item, sizeof(item), &end)) == 0 && !end;
         i++) {
        const char *v = ld_scalar(l, item, "a user name or a uid", false);
        uid_t *grown;

        if (v == NULL)
            return FM_EINVAL;
        grown = ld_grow(cfg->server.peers, cfg->server.npeers, sizeof(*grown));
        if (grown == NULL)
            return ld_oom(l);
        cfg->server.peers = grown;
        if (peer_uid(l, item, v, &grown[cfg->server.npeers]) != FM_OK)
            return FM_EINVAL;
        cfg->server.npeers++;
    }
    return rc;
}

/* SO_PEERCRED names the process at the other end of a unix socket only. */
fm_err server_check_peers(struct loader *l, const char *where, const yaml_mark_t *at,
                          const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->server.npeers > 0 && strncmp(cfg->server.listen, "unix:", 5) != 0)
        return ld_fail(l, at,
                       "%s.allowed_peers needs a unix %s.listen: the peer of a TCP connection "
                       "cannot be known",
                       where, where);
    return FM_OK;
}

static fm_err check_tls(struct loader *l, const char *where, const yaml_mark_t *at, const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->server.tls_enabled &&
        (cfg->server.tls_cert_file == NULL || cfg->server.tls_key_file == NULL))
        return ld_fail(l, at, "%s.cert_file and %s.key_file are required when %s.enabled is true",
                       where, where, where);
    return FM_OK;
}

LD_TABLE(static, tls_table, LD_BOOL_ROW("enabled", fm_config, server.tls_enabled, false, NULL),
         LD_STR_ROW("cert_file", LD_PATH, fm_config, server.tls_cert_file, NULL, NULL, false, NULL),
         LD_STR_ROW("key_file", LD_PATH, fm_config, server.tls_key_file, NULL, NULL, false, NULL));

LD_TABLE(, server_table,
         LD_STR_ROW("listen", LD_ENDPOINT, fm_config, server.listen, NULL,
                    "unix:/run/fetch_ml/fcgi.sock", false, NULL),
         LD_INT_ROW("workers", fm_config, server.workers, 1, 256, 4),
         LD_INT_ROW("max_body_bytes", fm_config, server.max_body_bytes, 1, 64 * 1024 * 1024,
                    1048576),
         LD_MODE_ROW("socket_mode", fm_config, server.socket_mode, 0660),
         LD_STR_ROW("socket_group", LD_STRING, fm_config, server.socket_group, "a group name", NULL,
                    true, check_group),
         LD_STR_ROW("user", LD_STRING, fm_config, server.user, "a user name", NULL, true,
                    check_user),
         LD_HANDLER_ROW("allowed_peers", allowed_peers),
         LD_SECTION_ROW("tls", tls_table, check_tls));
