/*
 * logging.c - the logging section: the operational log's level and file and
 * the audit log's file, durability and signing key. The audit trail cannot be
 * switched off, and it cannot share its file with the operational log (its lines
 * would break the hash chain, and a reader could not tell them apart).
 */
#include "sections.h"

#include <string.h>
#include <sys/stat.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
#define LEVEL_COUNT (sizeof(level_names) / sizeof(level_names[0]))
_Static_assert(LEVEL_COUNT == FM_LOG_ERROR + 1, "one name per fm_log_level");

static const char *const sync_names[] = {"none", "interval", "always"};
_Static_assert(sizeof(sync_names) / sizeof(sync_names[0]) == FM_AUDIT_SYNC_ALWAYS + 1,
               "one name per fm_audit_sync");

static fm_err check_audit(struct loader *l, const char *where, const void *field)
{
    if (!*(const bool *)field)
        return ld_fail(l, &l->ev.start_mark, "%s: false is refused: the audit trail is mandatory",
                       where);
    return FM_OK;
}

/* Where logging.file and logging.api_file were given, for the check after the section. */
static fm_err note_path(struct loader *l, const char *where, const void *field)
{
    size_t i = strcmp(where, "logging.api_file") == 0;

    (void)field;
    l->log_path_at[i] = l->key_at;
    l->log_path_seen[i] = true;
    return FM_OK;
}

/*
 * The path with "." and empty components dropped and ".." taken lexically,
 * into out (len bytes; the path is absolute and shorter). The files need not
 * exist yet, so realpath(3) cannot do this.
 */
static void normal_path(const char *path, char *out, size_t len)
{
    size_t o = 0;

    for (const char *p = path; *p != '\0';) {
        size_t n;

        while (*p == '/')
            p++;
        n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[--o] != '/')
                ;
        } else if (n > 0 && !(n == 1 && p[0] == '.') && o + 1 + n < len) {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
}

/* The same file: the same path once normalised, or the same inode (links, symlinks). */
static bool same_file(const char *a, const char *b)
{
    char na[PATH_MAX], nb[PATH_MAX];
    struct stat sa, sb;

    normal_path(a, na, sizeof na);
    normal_path(b, nb, sizeof nb);
    if (strcmp(na, nb) == 0)
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

fm_err logging_check_files(struct loader *l, const char *where, const yaml_mark_t *at,
                           const void *obj)
{
    const fm_config *cfg = obj;
    int second = l->log_path_seen[1] &&
                 (!l->log_path_seen[0] || l->log_path_at[1].index > l->log_path_at[0].index);

    (void)at;
    if (cfg->logging.api_file == NULL || !same_file(cfg->logging.file, cfg->logging.api_file))
        return FM_OK;
    return ld_fail(l, &l->log_path_at[second],
                   "%s.%s: the operational log and the audit trail must be different files", where,
                   second ? "api_file" : "file");
}

/* logging.audit_user: an account of its own for the audit logger (not root). */
static fm_err check_audit_user(struct loader *l, const char *where, const void *field)
{
    return ld_account(l, where, *(char *const *)field, &l->cfg->logging.audit_uid,
                      &l->cfg->logging.audit_gid);
}

LD_TABLE(, logging_table,
         LD_ENUM_ROW("level", fm_config, logging.level, level_names, "debug, info, warn or error",
                     FM_LOG_INFO),
         LD_BOOL_ROW("audit", fm_config, logging.audit, true, check_audit),
         LD_STR_ROW("file", LD_PATH, fm_config, logging.file, NULL, "/var/log/fetch_ml/audit.log",
                    false, note_path),
         LD_STR_ROW("api_file", LD_PATH, fm_config, logging.api_file, NULL,
                    "/var/log/fetch_ml/api.log", true, note_path),
         LD_ENUM_ROW("audit_sync", fm_config, logging.audit_sync, sync_names,
                     "none, interval or always", FM_AUDIT_SYNC_NONE),
         LD_INT_ROW("audit_sync_ms", fm_config, logging.audit_sync_ms, 1, 3600000, 1000),
         LD_STR_ROW("audit_sign_key", LD_PATH, fm_config, logging.audit_sign_key, NULL, NULL, true,
                    NULL),
         LD_INT_ROW("audit_sign_interval_ms", fm_config, logging.audit_sign_interval_ms, 100,
                    86400000, 60000),
         LD_STR_ROW("audit_user", LD_STRING, fm_config, logging.audit_user, "a user name", NULL,
                    true, check_audit_user));

const char *fm_config_level_name(fm_log_level level)
{
    if ((int)level < 0 || (size_t)level >= LEVEL_COUNT)
        return "info";
    return level_names[level];
}
