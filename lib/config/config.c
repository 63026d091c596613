/*
 * config.c - fm_config_load: the root table of sections, the order of the
 * load, the checks that span sections, and fm_config_free.
 *
 * A load reads the file (loader.c), applies every row's default to a fresh
 * snapshot, walks the document with the root table (each section's rows live
 * in its own file, see sections.h), then runs the checks that span sections:
 * role references may precede auth.roles and a key hash may repeat anywhere,
 * so they run after the document, using marks recorded during the walk so
 * that their errors still point at a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sections.h"

/* Adding a section: one file with its table, one row here. */
LD_TABLE(static, root_table, LD_SECTION_ROW("server", server_table, server_check_peers),
         LD_SECTION_ROW("auth", auth_table, NULL), LD_SECTION_ROW("rate_limit", limits_table, NULL),
         LD_SECTION_ROW("redis", redis_table, redis_check),
         LD_SECTION_ROW("logging", logging_table, logging_check_files),
         LD_SECTION_ROW("data", data_table, NULL), LD_SECTION_ROW("jobs", jobs_table, NULL),
         LD_SECTION_ROW("limits", task_limits_table, jobs_check_limits),
         LD_SECTION_ROW("websocket", websocket_table, websocket_check));

static fm_config *new_config(struct loader *l)
{
    fm_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    l->cfg = cfg;
    if (ld_set_string(l, &cfg->path, l->file) != 0 || ld_defaults(l, &root_table, cfg) != 0 ||
        roles_add_builtins(l) != 0)
        return NULL;
    return cfg;
}

static fm_err parse_document(struct loader *l, const unsigned char *text, size_t len)
{
    if (ld_read_document(l, text, len, &root_table, l->cfg) != 0)
        return FM_EINVAL;
    if (!l->api_keys_seen)
        return ld_fail(l, NULL, "auth.api_keys is required: define at least one user");
    return FM_OK;
}

fm_config *fm_config_load(const char *path, char *err, size_t errlen)
{
    struct loader l;
    unsigned char *text = NULL;
    size_t len = 0;
    fm_config *cfg = NULL;

    memset(&l, 0, sizeof(l));
    l.file = path != NULL ? path : "(null)";
    l.err = err;
    l.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL) {
        (void)ld_fail(&l, NULL, "no configuration file given");
        goto out;
    }
    /* The name sets and the key index draw their SipHash keys from libsodium. */
    if (sodium_init() < 0) {
        (void)ld_fail(&l, NULL, "cannot initialise libsodium");
        goto out;
    }
    if (new_config(&l) == NULL) {
        (void)ld_oom(&l);
        goto out;
    }
    if (ld_read_file(&l, &text, &len) != 0 || parse_document(&l, text, len) != 0 ||
        roles_resolve(&l) != 0 || users_resolve(&l) != 0 || keyindex_build(&l) != 0)
        goto out;
    cfg = l.cfg;
    l.cfg = NULL;
out:
    ld_stop_parser(&l);
    fm_config_free(l.cfg);
    free(text);
    free(l.basedir);
    ld_forget_value(&l);
    free(l.key_marks);
    free(l.role_refs);
    free(l.user_key_marks);
    ld_names_free(&l.user_names);
    roles_forget(&l);
    return cfg;
}

void fm_config_free(fm_config *cfg)
{
    if (cfg == NULL)
        return;
    if (cfg->redis.password != NULL) {
        sodium_memzero(cfg->redis.password, strlen(cfg->redis.password));
        free(cfg->redis.password);
    }
    if (cfg->redis.sentinel_password != NULL) {
        sodium_memzero(cfg->redis.sentinel_password, strlen(cfg->redis.sentinel_password));
        free(cfg->redis.sentinel_password);
    }
    for (size_t i = 0; i < cfg->redis.nsentinels; i++)
        free(cfg->redis.sentinels[i]);
    free(cfg->redis.sentinels);
    free(cfg->redis.sentinel_password_source);
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        fm_user *user = &cfg->auth.users[i];

        free(user->roles);
        fm_ipacl_free(&user->ip_whitelist);
        free(user->keys);
    }
    free(cfg->auth.users);
    free(cfg->auth.roles);
    free(cfg->websocket.origins);
    free(cfg->server.peers);
    for (size_t i = 0; i < cfg->nwarnings; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    free(cfg->redis.password_source);
    ld_release(&root_table, cfg);
    free(cfg->path);
    free(cfg->key_index);
    free(cfg);
}

const fm_rate *fm_config_user_rate(const fm_config *cfg, const fm_user *user)
{
    if (user == NULL)
        return &cfg->rate_limit.rate;
    /* A user not made by fm_config_load has no rate_eff: its own rate or the default. */
    if (user->rate_eff != NULL)
        return user->rate_eff;
    return user->has_rate ? &user->rate : &cfg->rate_limit.rate;
}
