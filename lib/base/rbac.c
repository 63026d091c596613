/*
 * rbac.c - FetchML permission strings as bit masks.
 *
 * Bit (res * FM_ACT_COUNT + act) stands for "<res>:<act>". Parsing splits the
 * string at its first ':' (or takes the lone "*"), turns each side into a set
 * of resources and a set of actions ("*" = all, "write" = create|update), and
 * ORs the bit of every pair that is a permission (run only goes with jobs, so
 * a wildcard drops the other pairs; run named for another resource is
 * refused). Checking a request is then one AND against the effective mask
 * computed at config load.
 */
#include "rbac.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

static const char *const resource_names[FM_RES_COUNT] = {"jobs", "experiments", "metrics"};
static const char *const action_names[FM_ACT_COUNT] = {"read", "create", "update", "delete", "run"};

/* NULL: not a permission (run for anything but jobs). */
static const char *const perm_names[FM_RES_COUNT * FM_ACT_COUNT] = {
    "jobs:read",
    "jobs:create",
    "jobs:update",
    "jobs:delete",
    "jobs:run",
    "experiments:read",
    "experiments:create",
    "experiments:update",
    "experiments:delete",
    NULL,
    "metrics:read",
    "metrics:create",
    "metrics:update",
    "metrics:delete",
    NULL,
};

/* Bit sets of resources and of actions, as indexes into the tables above. */
#define ALL_RESOURCES ((1u << FM_RES_COUNT) - 1u)
#define ALL_ACTIONS ((1u << FM_ACT_COUNT) - 1u)

/* Matches a table name to exactly the len bytes at s; returns a one-bit set or 0. */
static unsigned lookup(const char *s, size_t len, const char *const *names, int count)
{
    for (int i = 0; i < count; i++) {
        if (strlen(names[i]) == len && memcmp(s, names[i], len) == 0)
            return 1u << i;
    }
    return 0;
}

static unsigned parse_resources(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*')
        return ALL_RESOURCES;
    return lookup(s, len, resource_names, FM_RES_COUNT);
}

static unsigned parse_actions(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*')
        return ALL_ACTIONS;
    if (len == 5 && memcmp(s, "write", 5) == 0)
        return (1u << FM_ACT_CREATE) | (1u << FM_ACT_UPDATE);
    return lookup(s, len, action_names, FM_ACT_COUNT);
}

fm_err fm_rbac_parse(const char *perm, fm_perms *out, char *err, size_t errlen)
{
    char shown[FM_LOG_ECHO_BUF];
    const char *colon, *what = "unknown permission",
                       *why = "(expected <resource>:<action>, resources jobs|experiments|metrics, "
                              "actions read|create|update|delete|write|run|*)";
    unsigned resources, actions;
    fm_perms mask = FM_PERM_NONE;

    if (perm == NULL)
        perm = "";
    if (strcmp(perm, "*") == 0) {
        *out = FM_PERM_ALL;
        return FM_OK;
    }
    colon = strchr(perm, ':');
    if (colon == NULL)
        goto fail;
    resources = parse_resources(perm, (size_t)(colon - perm));
    actions = parse_actions(colon + 1, strlen(colon + 1));
    if (resources == 0 || actions == 0)
        goto fail;
    if (actions == 1u << FM_ACT_RUN && (resources & (1u << FM_RES_JOBS)) == 0) {
        what = "permission";
        why = "is refused: the action run exists for jobs only (jobs:run)";
        goto fail;
    }
    for (int r = 0; r < FM_RES_COUNT; r++) {
        for (int a = 0; a < FM_ACT_COUNT; a++) {
            if ((resources & (1u << r)) && (actions & (1u << a)))
                mask |= FM_PERM(r, a);
        }
    }
    *out = mask & FM_PERM_ALL;
    return FM_OK;

fail:
    if (err != NULL && errlen > 0) {
        fm_log_echo(perm, shown);
        (void)snprintf(err, errlen, "%s \"%s\" %s", what, shown, why);
    }
    return FM_EINVAL;
}

bool fm_rbac_builtin_role(const char *name, fm_perms *out)
{
    static const struct {
        const char *name;
        fm_perms perms;
    } roles[] = {
        {"admin", FM_PERM_ALL},
        {"researcher", FM_PERM(FM_RES_JOBS, FM_ACT_READ) | FM_PERM(FM_RES_JOBS, FM_ACT_CREATE) |
                           FM_PERM(FM_RES_JOBS, FM_ACT_UPDATE) |
                           FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_READ) |
                           FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_CREATE) |
                           FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_UPDATE)},
        {"analyst", FM_PERM(FM_RES_JOBS, FM_ACT_READ) | FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_READ) |
                        FM_PERM(FM_RES_METRICS, FM_ACT_READ)},
        {"worker", FM_PERM(FM_RES_JOBS, FM_ACT_RUN) | FM_PERM(FM_RES_JOBS, FM_ACT_READ)},
    };

    if (name == NULL)
        return false;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(name, roles[i].name) == 0) {
            *out = roles[i].perms;
            return true;
        }
    }
    return false;
}

bool fm_rbac_allows(fm_perms effective, fm_perms required)
{
    return (effective & required) == required;
}

bool fm_rbac_reads_all(bool admin, fm_perms effective)
{
    return admin || fm_rbac_allows(effective, FM_PERM(FM_RES_JOBS, FM_ACT_RUN));
}

const char *fm_rbac_name(fm_perms bit)
{
    if (bit == 0 || (bit & (bit - 1)) != 0 || (bit & ~FM_PERM_ALL) != 0)
        return NULL;
    for (int i = 0; i < FM_RES_COUNT * FM_ACT_COUNT; i++) {
        if (bit == (fm_perms)1u << i)
            return perm_names[i];
    }
    return NULL;
}
