/*
 * roles.c - auth.roles: the built-in roles, the roles the file defines or
 * redefines, their permissions, inheritance and own rate limits.
 *
 * Roles are resolved by depth-first search over their inherits lists, each
 * role once (memoised), in the order they were defined: a role on the current
 * path met again is a cycle, reported with the path; the search refuses to go
 * deeper than FM_ROLE_INHERIT_MAX links, which also bounds its recursion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sections.h"

#define PERM_TEXT_MAX 32 /* longest valid permission string is "experiments:create" */
#define PERMS_MAX 32     /* more distinct valid permission strings than the grammar allows */

static const char *const builtin_roles[] = {"admin", "researcher", "analyst", "worker"};
_Static_assert(sizeof(builtin_roles) / sizeof(builtin_roles[0]) == LD_BUILTIN_ROLES,
               "LD_BUILTIN_ROLES counts builtin_roles");

/* The role name set finds names at the start of each fm_role. */
_Static_assert(offsetof(fm_role, name) == 0, "fm_role starts with its name");

enum { ROLE_NEW, ROLE_ACTIVE, ROLE_DONE };

struct perm_acc {
    fm_perms grants, denies;
    char seen[PERMS_MAX][PERM_TEXT_MAX];
    size_t nseen;
};

struct role_item {
    fm_role *role;
    struct ld_role_src *src;
};

static fm_err perm_entry(struct loader *l, const char *where, const char *key, void *arg)
{
    struct perm_acc *acc = arg;
    char why[FM_CONFIG_ERR_MAX], sub[LD_WHERE_MAX], shown[LD_ECHO_BUF];
    fm_perms bits;
    bool allow;

    if (fm_rbac_parse(key, &bits, why, sizeof(why)) != FM_OK)
        return ld_fail(l, &l->key_at, "%s: %s", where, why);
    for (size_t i = 0; i < acc->nseen; i++) {
        if (strcmp(acc->seen[i], key) == 0) {
            fm_log_echo(key, shown);
            return ld_fail(l, &l->key_at, "duplicate key \"%s\" in %s", shown, where);
        }
    }
    if (acc->nseen == PERMS_MAX || strlen(key) >= PERM_TEXT_MAX)
        return ld_fail(l, &l->key_at, "too many permissions in %s", where);
    (void)snprintf(acc->seen[acc->nseen++], PERM_TEXT_MAX, "%s", key);
    ld_join(sub, sizeof(sub), where, key);
    if (ld_bool(l, sub, &allow) != 0)
        return FM_EINVAL;
    if (allow)
        acc->grants |= bits;
    else
        acc->denies |= bits;
    return FM_OK;
}

fm_err perms_value(struct loader *l, const char *where, fm_perms *grants, fm_perms *denies)
{
    struct perm_acc acc;

    memset(&acc, 0, sizeof(acc));
    if (ld_each_entry(l, where, "a mapping of permissions to true or false", perm_entry, &acc) != 0)
        return FM_EINVAL;
    *grants = acc.grants;
    *denies = acc.denies;
    return FM_OK;
}

static const char *role_name_item(struct loader *l, const char *item,
                                  const char (*seen)[FM_NAME_MAX], size_t nseen)
{
    const char *v = ld_scalar(l, item, "a role name", false);
    char raw[LD_ECHO_BUF];
    size_t dup;

    if (v == NULL)
        return NULL;
    ld_echo_value(l, v, raw);
    if (!ld_valid_name(v)) {
        (void)ld_fail(l, &l->ev.start_mark, "%s: invalid role name \"%s\"", item, raw);
        return NULL;
    }
    if (ld_names_find(&l->list_names, v, (const char *)seen, sizeof(*seen), &dup)) {
        (void)ld_fail(l, &l->ev.start_mark, "%s: role \"%s\" is listed twice", item, raw);
        return NULL;
    }
    return ld_names_add(l, &l->list_names, v, nseen) == 0 ? v : NULL;
}

/*
 * Role names are resolved once the whole file is read (roles may be defined
 * after use); the reference keeps the file:line:col for that later error.
 */
static fm_err push_role_name(struct loader *l, const char *v, char (**names)[FM_NAME_MAX], size_t n,
                             struct ld_ref **refs, size_t nrefs)
{
    char(*grown_names)[FM_NAME_MAX] = ld_grow(*names, n, sizeof(**names));
    struct ld_ref *grown_refs;

    if (grown_names == NULL)
        return ld_oom(l);
    *names = grown_names;
    grown_refs = ld_grow(*refs, nrefs, sizeof(**refs));
    if (grown_refs == NULL)
        return ld_oom(l);
    *refs = grown_refs;
    /* v is a valid name (ld_valid_name): shorter than FM_NAME_MAX. */
    memcpy(grown_names[n], v, strlen(v) + 1);
    ld_make_ref(l, &grown_refs[nrefs]);
    return FM_OK;
}

/* A redefined built-in keeps nothing of its built-in grants: the file replaces it whole. */
static fm_err role_permissions(struct loader *l, const char *where, void *obj)
{
    struct ld_role_src *src = ((struct role_item *)obj)->src;

    return perms_value(l, where, &src->grants, &src->denies);
}

fm_err role_names_value(struct loader *l, const char *where, char (**names)[FM_NAME_MAX], size_t *n,
                        struct ld_ref **refs, size_t *nrefs)
{
    char item[LD_WHERE_MAX];
    bool end;
    fm_err rc;

    if (ld_list_start(l, where, "a list of role names") != 0)
        return FM_EINVAL;
    ld_names_clear(&l->list_names);
    for (size_t i = 0; (rc = ld_list_next(l, where, i, item, sizeof(item), &end)) == 0 && !end;
         i++) {
        const char *v = role_name_item(l, item, (const char(*)[FM_NAME_MAX])(*names), *n);

        if (v == NULL || push_role_name(l, v, names, *n, refs, nrefs != NULL ? *nrefs : *n) != 0)
            return FM_EINVAL;
        (*n)++;
        if (nrefs != NULL)
            (*nrefs)++;
    }
    return rc;
}

/* Names are checked against auth.roles once the whole file is read: roles come in any order. */
static fm_err role_inherits(struct loader *l, const char *where, void *obj)
{
    struct ld_role_src *src = ((struct role_item *)obj)->src;

    return role_names_value(l, where, &src->inherits, &src->ninherits, &src->inherit_refs, NULL);
}

/* Fields left out stay 0 and take the global default once the whole file is read. */
static fm_err role_rate_limit(struct loader *l, const char *where, void *obj)
{
    fm_role *role = ((struct role_item *)obj)->role;

    role->has_rate = true;
    return ld_walk(l, where, &bucket_table, &role->rate);
}

LD_TABLE(static, role_table, LD_HANDLER_ROW("permissions", role_permissions),
         LD_HANDLER_ROW("inherits", role_inherits), LD_HANDLER_ROW("rate_limit", role_rate_limit));

/* The index in cfg->auth.roles of the role called name, in *i: false when there is none. */
static bool find_role(const struct loader *l, const char *name, size_t *i)
{
    return ld_names_find(&l->role_names, name, (const char *)l->cfg->auth.roles, sizeof(fm_role),
                         i);
}

/* Appends an empty role named name to cfg->auth.roles and its source to l->role_src. */
static fm_err add_role(struct loader *l, const char *name)
{
    fm_config *cfg = l->cfg;
    struct ld_role_src *src = ld_grow(l->role_src, l->nrole_src, sizeof(*src));
    fm_role *roles;

    if (src == NULL)
        return ld_oom(l);
    l->role_src = src;
    roles = ld_grow(cfg->auth.roles, cfg->auth.nroles, sizeof(*roles));
    if (roles == NULL)
        return ld_oom(l);
    cfg->auth.roles = roles;
    if (ld_names_add(l, &l->role_names, name, cfg->auth.nroles) != 0)
        return FM_EINVAL;
    memset(&src[l->nrole_src++], 0, sizeof(*src));
    memset(&roles[cfg->auth.nroles], 0, sizeof(*roles));
    (void)snprintf(roles[cfg->auth.nroles++].name, FM_NAME_MAX, "%s", name);
    return FM_OK;
}

fm_err roles_add_builtins(struct loader *l)
{
    for (size_t i = 0; i < LD_BUILTIN_ROLES; i++) {
        if (add_role(l, builtin_roles[i]) != 0 ||
            !fm_rbac_builtin_role(builtin_roles[i], &l->role_src[i].grants))
            return FM_EINVAL;
    }
    return FM_OK;
}

static fm_err role_entry(struct loader *l, const char *where, const char *key, void *obj)
{
    fm_config *cfg = l->cfg;
    char sub[LD_WHERE_MAX], shown[LD_ECHO_BUF];
    struct role_item item;
    size_t i;

    (void)obj;
    fm_log_echo(key, shown);
    if (!ld_valid_name(key))
        return ld_fail(l, &l->key_at,
                       "invalid role name \"%s\" in %s: use 1 to 63 characters [A-Za-z0-9_.-], "
                       "not \".\" or \"..\"",
                       shown, where);
    if (!find_role(l, key, &i))
        i = cfg->auth.nroles;
    if (i < LD_BUILTIN_ROLES && !l->builtin_redefined[i]) {
        l->builtin_redefined[i] = true;
    } else if (i < cfg->auth.nroles) {
        return ld_fail(l, &l->key_at, "duplicate key \"%s\" in %s", shown, where);
    } else if (add_role(l, key) != 0) {
        return FM_EINVAL;
    }
    item.role = &cfg->auth.roles[i];
    item.src = &l->role_src[i];
    item.src->grants = FM_PERM_NONE;
    item.src->denies = FM_PERM_NONE;
    ld_join(sub, sizeof(sub), where, key);
    return ld_walk(l, sub, &role_table, &item);
}

fm_err roles_section(struct loader *l, const char *where, void *obj)
{
    return ld_each_entry(l, where, "a mapping of role names", role_entry, obj);
}

const fm_role *roles_find(const struct loader *l, const char *name)
{
    size_t i;

    return find_role(l, name, &i) ? &l->cfg->auth.roles[i] : NULL;
}

/* "a -> b -> a": the search path from the role that was met again, and that role. */
static void cycle_text(const fm_config *cfg, const size_t *path, size_t depth, size_t again,
                       char *out, size_t outlen)
{
    size_t from = 0, used = 0;

    while (path[from] != again)
        from++;
    out[0] = '\0';
    for (size_t i = from; i <= depth + 1 && used < outlen; i++) {
        const char *name = cfg->auth.roles[i <= depth ? path[i] : again].name;
        int n = snprintf(out + used, outlen - used, "%s%s", i == from ? "" : " -> ", name);

        if (n < 0)
            return;
        used += (size_t)n;
    }
}

/* Sets role r's effective permissions; path[0..depth-1] inherit r on this search. */
static fm_err resolve_role(struct loader *l, size_t r, size_t *path, size_t depth)
{
    fm_config *cfg = l->cfg;
    struct ld_role_src *src = &l->role_src[r];
    fm_perms inherited = FM_PERM_NONE;

    src->state = ROLE_ACTIVE;
    path[depth] = r;
    for (size_t i = 0; i < src->ninherits; i++) {
        const struct ld_ref *ref = &src->inherit_refs[i];
        const char *name = src->inherits[i];
        size_t p;

        if (!find_role(l, name, &p))
            return ld_fail(l, &ref->at, "role \"%s\" inherits from unknown role \"%s\"",
                           cfg->auth.roles[r].name, ref->from_env ? ref->raw : name);
        if (l->role_src[p].state == ROLE_ACTIVE) {
            char cycle[FM_CONFIG_ERR_MAX];

            cycle_text(cfg, path, depth, p, cycle, sizeof(cycle));
            return ld_fail(l, &ref->at, "role inheritance cycle: %s", cycle);
        }
        if (l->role_src[p].state == ROLE_NEW && depth < FM_ROLE_INHERIT_MAX &&
            resolve_role(l, p, path, depth + 1) != 0)
            return FM_EINVAL;
        /* Not searched (too deep already) or searched and too high: path[0]'s chain is long. */
        if (l->role_src[p].state != ROLE_DONE || l->role_src[p].height >= FM_ROLE_INHERIT_MAX)
            return ld_fail(l, &ref->at, "role \"%s\": inheritance chain longer than %d links",
                           cfg->auth.roles[path[0]].name, FM_ROLE_INHERIT_MAX);
        if (l->role_src[p].height + 1 > src->height)
            src->height = l->role_src[p].height + 1;
        inherited |= cfg->auth.roles[p].perms;
    }
    cfg->auth.roles[r].perms = (inherited | src->grants) & ~src->denies;
    src->state = ROLE_DONE;
    return FM_OK;
}

fm_err roles_resolve(struct loader *l)
{
    fm_config *cfg = l->cfg;
    size_t path[FM_ROLE_INHERIT_MAX + 1];

    for (size_t r = 0; r < cfg->auth.nroles; r++) {
        limits_complete_rate(cfg, cfg->auth.roles[r].has_rate, &cfg->auth.roles[r].rate);
        if (l->role_src[r].state == ROLE_NEW && resolve_role(l, r, path, 0) != 0)
            return FM_EINVAL;
    }
    return FM_OK;
}

void roles_forget(struct loader *l)
{
    for (size_t i = 0; i < l->nrole_src; i++) {
        free(l->role_src[i].inherits);
        free(l->role_src[i].inherit_refs);
    }
    free(l->role_src);
    l->role_src = NULL;
    l->nrole_src = 0;
    ld_names_free(&l->role_names);
    ld_names_free(&l->list_names);
}
