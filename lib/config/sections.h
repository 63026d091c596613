/*
 * sections.h - the section tables of the configuration and what the auth
 * sections share (internal to lib/config/).
 *
 * Each section file defines its table (server_table, auth_table, ...); the
 * root table in config.c names them. After the document, config.c runs the
 * cross-section steps declared here, in this order: roles_resolve,
 * users_resolve, keyindex_build.
 */
#ifndef FM_CONFIG_SECTIONS_H
#define FM_CONFIG_SECTIONS_H

#include "loader.h"

extern const struct ld_table server_table;      /* server.c */
extern const struct ld_table auth_table;        /* users.c */
extern const struct ld_table limits_table;      /* limits.c: rate_limit */
extern const struct ld_table redis_table;       /* redis.c */
extern const struct ld_table logging_table;     /* logging.c */
extern const struct ld_table data_table;        /* data.c */
extern const struct ld_table jobs_table;        /* jobs.c */
extern const struct ld_table task_limits_table; /* jobs.c: limits */
extern const struct ld_table websocket_table;   /* websocket.c */

/* redis.c: after the redis section, redis.username needs a password, and sentinels and
 * master_name go together. */
fm_err redis_check(struct loader *l, const char *where, const yaml_mark_t *at, const void *obj);
/* server.c: after the server section, allowed_peers needs a unix server.listen. */
fm_err server_check_peers(struct loader *l, const char *where, const yaml_mark_t *at,
                          const void *obj);

/* logging.c: after the logging section, logging.file and logging.api_file must differ. */
fm_err logging_check_files(struct loader *l, const char *where, const yaml_mark_t *at,
                           const void *obj);

/* jobs.c: after the limits section, a response page must hold the largest task. */
fm_err jobs_check_limits(struct loader *l, const char *where, const yaml_mark_t *at,
                         const void *obj);

/* websocket.c: after the websocket section, publisher and publisher_token_file go together. */
fm_err websocket_check(struct loader *l, const char *where, const yaml_mark_t *at, const void *obj);

/* limits.c: the rows of a user's or role's own rate_limit, into an fm_rate. */
extern const struct ld_table bucket_table;
/* limits.c: a bucket field left out of a rate_limit takes the global value. */
void limits_complete_rate(const fm_config *cfg, bool has_rate, fm_rate *rate);

/* roles.c: appends the built-in roles to cfg->auth.roles (before the document). */
fm_err roles_add_builtins(struct loader *l);
/* roles.c: reads auth.roles. */
fm_err roles_section(struct loader *l, const char *where, void *obj);
/* roles.c: the effective permissions of every role, after the document. */
fm_err roles_resolve(struct loader *l);
/* roles.c: frees what l keeps about roles and role names. */
void roles_forget(struct loader *l);

/* roles.c: a permissions mapping {perm: true|false} into grants and denies. */
fm_err perms_value(struct loader *l, const char *where, fm_perms *grants, fm_perms *denies);
/*
 * roles.c: a list of role names at where, appended to (*names)[*n...] with
 * where each was written in (*refs)[...] for the errors of the checks after
 * the document (*nrefs counts refs; NULL: refs run parallel to names). A
 * name listed twice in the list is refused.
 */
fm_err role_names_value(struct loader *l, const char *where, char (**names)[FM_NAME_MAX], size_t *n,
                        struct ld_ref **refs, size_t *nrefs);
/* roles.c: the role of l->cfg called name, or NULL; O(1). */
const fm_role *roles_find(const struct loader *l, const char *name);

/* users.c: effective permissions and rate of every user, after roles_resolve. */
fm_err users_resolve(struct loader *l);

/* keyindex.c: the key index of cfg, refusing a key hash given twice. */
fm_err keyindex_build(struct loader *l);

#endif
