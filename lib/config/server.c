/*
 * server.c - the server section: where the FastCGI pool listens, how many
 * workers, the request body limit, the socket's mode and group, and the
 * (informational) TLS files nginx uses.
 */
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
         LD_SECTION_ROW("tls", tls_table, check_tls));
