/*
 * logging.c - the logging section: the operational log's level and file and
 * the audit log's file. The audit trail cannot be switched off.
 */
#include "sections.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};
#define LEVEL_COUNT (sizeof(level_names) / sizeof(level_names[0]))
_Static_assert(LEVEL_COUNT == FM_LOG_ERROR + 1, "one name per fm_log_level");

static fm_err check_audit(struct loader *l, const char *where, const void *field)
{
    if (!*(const bool *)field)
        return ld_fail(l, &l->ev.start_mark, "%s: false is refused: the audit trail is mandatory",
                       where);
    return FM_OK;
}

LD_TABLE(, logging_table,
         LD_ENUM_ROW("level", fm_config, logging.level, level_names, "debug, info, warn or error",
                     FM_LOG_INFO),
         LD_BOOL_ROW("audit", fm_config, logging.audit, true, check_audit),
         LD_STR_ROW("file", LD_PATH, fm_config, logging.file, NULL, "/var/log/fetch_ml/audit.log",
                    false, NULL),
         LD_STR_ROW("api_file", LD_PATH, fm_config, logging.api_file, NULL,
                    "/var/log/fetch_ml/api.log", true, NULL));

const char *fm_config_level_name(fm_log_level level)
{
    if ((int)level < 0 || (size_t)level >= LEVEL_COUNT)
        return "info";
    return level_names[level];
}
