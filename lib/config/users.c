/*
 * users.c - the auth section: auth.enabled (must stay true), the global
 * allow-list, and the users of auth.api_keys with their keys, roles,
 * permissions, allow-lists and rate limits. Roles are in roles.c, the key
 * index in keyindex.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clock.h"
#include "sections.h"

/* The user name set finds names at the start of each fm_user. */
_Static_assert(offsetof(fm_user, name) == 0, "fm_user starts with its name");

struct key_item {
    fm_key key;
    bool has_hash;
};

static fm_err auth_enabled(struct loader *l, const char *where, void *obj)
{
    bool enabled;

    (void)obj;
    if (ld_bool(l, where, &enabled) != 0)
        return FM_EINVAL;
    if (!enabled)
        return ld_fail(l, &l->ev.start_mark,
                       "%s: false is refused: anonymous access is not supported", where);
    return FM_OK;
}

static fm_err hash_value(struct loader *l, const char *where, unsigned char out[FM_KEY_HASH_BYTES])
{
    const char *v = ld_scalar(l, where, "exactly 64 hex digits (the SHA-256 of the key)", false);
    size_t len = 0;

    if (v == NULL)
        return FM_EINVAL;
    /*
     * Never echo the value: a raw key pasted here by mistake must not reach a
     * log. Without hex_end, sodium_hex2bin refuses any character but a hex digit.
     */
    if (strlen(v) != 2 * FM_KEY_HASH_BYTES ||
        sodium_hex2bin(out, FM_KEY_HASH_BYTES, v, 2 * FM_KEY_HASH_BYTES, NULL, &len, NULL) != 0 ||
        len != FM_KEY_HASH_BYTES)
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be exactly 64 hex digits (the SHA-256 of the key)", where);
    return FM_OK;
}

/* Appends key (first: in front) to user->keys and its mark to l->user_key_marks. */
static fm_err add_key(struct loader *l, fm_user *user, const fm_key *key, const yaml_mark_t *at,
                      bool first)
{
    fm_key *keys = ld_grow(user->keys, user->nkeys, sizeof(*keys));
    yaml_mark_t *marks;

    if (keys == NULL)
        return ld_oom(l);
    user->keys = keys;
    marks = ld_grow(l->user_key_marks, l->nuser_key_marks, sizeof(*marks));
    if (marks == NULL)
        return ld_oom(l);
    l->user_key_marks = marks;
    if (first) {
        memmove(&keys[1], &keys[0], user->nkeys * sizeof(*keys));
        memmove(&marks[1], &marks[0], l->nuser_key_marks * sizeof(*marks));
        keys[0] = *key;
        marks[0] = *at;
    } else {
        keys[user->nkeys] = *key;
        marks[l->nuser_key_marks] = *at;
    }
    user->nkeys++;
    l->nuser_key_marks++;
    return FM_OK;
}

static fm_err user_hash(struct loader *l, const char *where, void *obj)
{
    yaml_mark_t at = l->ev.start_mark;
    fm_key key;

    memset(&key, 0, sizeof(key));
    if (hash_value(l, where, key.hash) != 0)
        return FM_EINVAL;
    /* A user's own hash comes first, whichever order the file gives hash and keys in. */
    return add_key(l, obj, &key, &at, true);
}

static fm_err key_hash(struct loader *l, const char *where, void *obj)
{
    struct key_item *item = obj;

    item->has_hash = true;
    return hash_value(l, where, item->key.hash);
}

static fm_err key_expires(struct loader *l, const char *where, void *obj)
{
    struct key_item *item = obj;
    const char *v = ld_scalar(l, where, "an RFC 3339 time or a YYYY-MM-DD date", false);

    if (v == NULL)
        return FM_EINVAL;
    if (fm_clock_parse_rfc3339(v, &item->key.expires) != 0 || item->key.expires <= 0)
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31) "
                       "after 1970",
                       where);
    return FM_OK;
}

static fm_err key_label(struct loader *l, const char *where, void *obj)
{
    struct key_item *item = obj;
    const char *v = ld_scalar(l, where, "a string", false);
    bool ok;

    if (v == NULL)
        return FM_EINVAL;
    ok = strlen(v) < sizeof(item->key.label);
    for (size_t i = 0; ok && v[i] != '\0'; i++)
        ok = (unsigned char)v[i] >= 0x20 && v[i] != 0x7f;
    if (!ok)
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be at most %zu characters without control characters", where,
                       sizeof(item->key.label) - 1);
    (void)snprintf(item->key.label, sizeof(item->key.label), "%s", v);
    return FM_OK;
}

LD_TABLE(static, key_table, LD_HANDLER_ROW("hash", key_hash),
         LD_HANDLER_ROW("expires", key_expires), LD_HANDLER_ROW("label", key_label));

static fm_err user_keys(struct loader *l, const char *where, void *obj)
{
    char item[LD_WHERE_MAX];
    bool end;
    fm_err rc;

    if (ld_list_start(l, where, "a list of keys") != 0)
        return FM_EINVAL;
    for (size_t i = 0; (rc = ld_list_next(l, where, i, item, sizeof(item), &end)) == 0 && !end;
         i++) {
        yaml_mark_t at = l->ev.start_mark;
        struct key_item k;

        memset(&k, 0, sizeof(k));
        if (ld_walk(l, item, &key_table, &k) != 0)
            return FM_EINVAL;
        if (!k.has_hash)
            return ld_fail(l, &at, "%s.hash is required", item);
        if (add_key(l, obj, &k.key, &at, false) != 0)
            return FM_EINVAL;
    }
    return rc;
}

static fm_err user_roles(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;

    return role_names_value(l, where, &user->roles, &user->nroles, &l->role_refs, &l->nrole_refs);
}

static fm_err user_permissions(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;

    return perms_value(l, where, &user->grants, &user->denies);
}

/* Fields left out stay 0 and take the global default once the whole file is read. */
static fm_err user_rate_limit(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;

    user->has_rate = true;
    return ld_walk(l, where, &bucket_table, &user->rate);
}

LD_TABLE(static, user_table, LD_HANDLER_ROW("hash", user_hash), LD_HANDLER_ROW("keys", user_keys),
         LD_BOOL_ROW("admin", fm_user, admin, false, NULL), LD_HANDLER_ROW("roles", user_roles),
         LD_HANDLER_ROW("permissions", user_permissions),
         LD_CIDRS_ROW("ip_whitelist", fm_user, ip_whitelist),
         LD_HANDLER_ROW("rate_limit", user_rate_limit));

static fm_err user_entry(struct loader *l, const char *where, const char *key, void *obj)
{
    fm_config *cfg = l->cfg;
    yaml_mark_t at = l->key_at;
    char sub[LD_WHERE_MAX], shown[LD_ECHO_BUF];
    fm_user *users, *user;
    size_t dup;

    (void)obj;
    fm_log_echo(key, shown);
    if (!ld_valid_name(key))
        return ld_fail(l, &at,
                       "invalid user name \"%s\" in %s: use 1 to 63 characters [A-Za-z0-9_.-], "
                       "not \".\" or \"..\"",
                       shown, where);
    if (ld_names_find(&l->user_names, key, (const char *)cfg->auth.users, sizeof(*users), &dup))
        return ld_fail(l, &at, "duplicate key \"%s\" in %s", shown, where);
    users = ld_grow(cfg->auth.users, cfg->auth.nusers, sizeof(*users));
    if (users == NULL)
        return ld_oom(l);
    cfg->auth.users = users;
    if (ld_names_add(l, &l->user_names, key, cfg->auth.nusers) != 0)
        return FM_EINVAL;
    user = &users[cfg->auth.nusers++];
    memset(user, 0, sizeof(*user));
    (void)snprintf(user->name, sizeof(user->name), "%s", key);
    l->nuser_key_marks = 0;
    ld_join(sub, sizeof(sub), where, key);
    if (ld_defaults(l, &user_table, user) != 0 || ld_walk(l, sub, &user_table, user) != 0)
        return FM_EINVAL;
    if (user->nkeys == 0)
        return ld_fail(l, &at, "user \"%s\" has no key: give hash or keys", shown);
    for (size_t i = 0; i < l->nuser_key_marks; i++) {
        if (ld_push_mark(l, &l->key_marks, &l->nkey_marks, &l->user_key_marks[i]) != 0)
            return FM_EINVAL;
    }
    return FM_OK;
}

static fm_err auth_api_keys(struct loader *l, const char *where, void *obj)
{
    yaml_mark_t at = l->ev.start_mark;

    if (l->api_keys_seen)
        return ld_fail(l, &l->key_at,
                       "auth.api_keys and auth.apikeys are the same setting: give only one");
    l->api_keys_seen = true;
    if (ld_each_entry(l, where, "a mapping of user names", user_entry, obj) != 0)
        return FM_EINVAL;
    if (l->cfg->auth.nusers == 0)
        return ld_fail(l, &at, "%s must define at least one user", where);
    return FM_OK;
}

LD_TABLE(, auth_table, LD_HANDLER_ROW("enabled", auth_enabled),
         LD_CIDRS_ROW("ip_whitelist", fm_config, auth.ip_whitelist),
         LD_HANDLER_ROW("roles", roles_section), LD_HANDLER_ROW("api_keys", auth_api_keys),
         LD_HANDLER_ROW("apikeys", auth_api_keys));

/* Highest requests_per_minute wins, then the higher burst: the most generous role applies. */
static bool better_rate(const fm_rate *a, const fm_rate *b)
{
    return b == NULL || a->requests_per_minute > b->requests_per_minute ||
           (a->requests_per_minute == b->requests_per_minute && a->burst > b->burst);
}

fm_err users_resolve(struct loader *l)
{
    fm_config *cfg = l->cfg;
    size_t ref = 0;

    for (size_t u = 0; u < cfg->auth.nusers; u++) {
        fm_user *user = &cfg->auth.users[u];
        fm_perms perms = FM_PERM_NONE;
        const fm_rate *best = NULL;

        for (size_t r = 0; r < user->nroles; r++, ref++) {
            const fm_role *role = roles_find(l, user->roles[r]);
            const struct ld_ref *at = &l->role_refs[ref];

            if (role == NULL)
                return ld_fail(l, &at->at, "user \"%s\" has unknown role \"%s\"", user->name,
                               at->from_env ? at->raw : user->roles[r]);
            perms |= role->perms;
            if (role->has_rate && better_rate(&role->rate, best))
                best = &role->rate;
        }
        user->effective = user->admin ? FM_PERM_ALL : (perms | user->grants) & ~user->denies;
        limits_complete_rate(cfg, user->has_rate, &user->rate);
        if (user->has_rate)
            user->rate_eff = &user->rate;
        else
            user->rate_eff = best != NULL ? best : &cfg->rate_limit.rate;
    }
    return FM_OK;
}
