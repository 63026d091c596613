/*
 * routes_meta.c - GET /health (is Redis answering) and GET /v1/whoami (the
 * caller's identity, roles, effective permissions and rate limit).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"

int fm_route_health(fm_call *call, fm_response *resp)
{
    int redis_ok = fm_redis_ping(call->env->redis) == FM_OK;
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "status", redis_ok ? "ok" : "degraded") == NULL ||
        cJSON_AddStringToObject(o, "redis", redis_ok ? "ok" : "unavailable") == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    if (!redis_ok)
        (void)snprintf(call->reason, sizeof(call->reason), "redis_unavailable");
    return fm_route_json(resp, redis_ok ? 200 : 503, o);
}

/*
 * whoami's body is the same on every request of a user but for
 * rate_limit.remaining, and rendering it with cJSON each time was most of the
 * handler's cost (a dozen allocations; numbers printed with %g and read back
 * with sscanf). So cJSON renders the rest once per user, into a small table
 * per process, and a request only appends ',"remaining":N}}' to it. cJSON
 * prints a uint32 as its plain decimal digits, so the bytes are those of the
 * whole object rendered at once. A slot is reused only while every input it
 * was rendered from is unchanged: a user pointer alone could name a user of a
 * newer config that landed at a freed one's address.
 */
#define WHOAMI_SLOTS 64

typedef struct whoami_slot {
    const fm_user *user; /* NULL: empty */
    char name[FM_NAME_MAX];
    bool admin;
    fm_perms effective;
    fm_rate rate;
    size_t nroles;
    char (*roles)[FM_NAME_MAX]; /* copies, heap */
    char *text;                 /* the body without "remaining" and the closing "}}", heap */
    size_t len;
} whoami_slot;

static whoami_slot whoami_cache[WHOAMI_SLOTS];

static bool whoami_slot_matches(const whoami_slot *s, const fm_user *u, const fm_rate *rate)
{
    if (s->user != u || s->admin != u->admin || s->effective != u->effective ||
        s->rate.requests_per_minute != rate->requests_per_minute || s->rate.burst != rate->burst ||
        s->nroles != u->nroles || strcmp(s->name, u->name) != 0)
        return false;
    for (size_t i = 0; i < u->nroles; i++)
        if (strcmp(s->roles[i], u->roles[i]) != 0)
            return false;
    return true;
}

/* cJSON's rendering of everything but "remaining"; NULL on allocation failure. */
static char *whoami_render(const fm_user *u, const fm_rate *rate)
{
    cJSON *o = cJSON_CreateObject(), *roles, *perms, *rl;
    int ok = o != NULL;
    char *text = NULL;

    ok = ok && cJSON_AddStringToObject(o, "user", u->name) != NULL &&
         cJSON_AddBoolToObject(o, "admin", u->admin) != NULL &&
         (roles = cJSON_AddArrayToObject(o, "roles")) != NULL &&
         (perms = cJSON_AddArrayToObject(o, "permissions")) != NULL &&
         (rl = cJSON_AddObjectToObject(o, "rate_limit")) != NULL &&
         cJSON_AddNumberToObject(rl, "requests_per_minute", rate->requests_per_minute) != NULL &&
         cJSON_AddNumberToObject(rl, "burst", rate->burst) != NULL;
    for (size_t i = 0; ok && i < u->nroles; i++)
        ok = cJSON_AddItemToArray(roles, cJSON_CreateString(u->roles[i]));
    for (unsigned b = 0; ok && b < FM_RES_COUNT * FM_ACT_COUNT; b++) {
        fm_perms bit = (fm_perms)1u << b;
        if (u->effective & bit)
            ok = cJSON_AddItemToArray(perms, cJSON_CreateString(fm_rbac_name(bit)));
    }
    if (ok)
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/*
 * The slot holding u's rendering, filled on a miss; NULL on allocation
 * failure. Users are consecutive elements of one array, so consecutive users
 * get consecutive slots.
 */
static const whoami_slot *whoami_slot_for(const fm_user *u, const fm_rate *rate)
{
    whoami_slot *s = &whoami_cache[(uintptr_t)u / sizeof(*u) % WHOAMI_SLOTS];
    char *text, (*roles)[FM_NAME_MAX] = NULL;
    size_t len;

    if (whoami_slot_matches(s, u, rate))
        return s;
    text = whoami_render(u, rate);
    if (text == NULL)
        return NULL;
    len = strlen(text);
    if (u->nroles > 0)
        roles = malloc(u->nroles * sizeof(*roles));
    /* The object ends with rate_limit's "}" and its own; "remaining" goes before them. */
    if ((u->nroles > 0 && roles == NULL) || len < 2 || strcmp(text + len - 2, "}}") != 0) {
        free(text);
        free(roles);
        return NULL;
    }
    for (size_t r = 0; r < u->nroles; r++)
        (void)snprintf(roles[r], FM_NAME_MAX, "%s", u->roles[r]);
    free(s->text);
    free(s->roles);
    *s = (whoami_slot){.user = u,
                       .admin = u->admin,
                       .effective = u->effective,
                       .rate = *rate,
                       .nroles = u->nroles,
                       .roles = roles,
                       .text = text,
                       .len = len - 2};
    (void)snprintf(s->name, sizeof(s->name), "%s", u->name);
    return s;
}

int fm_route_whoami(fm_call *call, fm_response *resp)
{
    static const char remaining[] = ",\"remaining\":";
    const fm_user *u = call->user;
    const whoami_slot *s = whoami_slot_for(u, fm_config_user_rate(call->env->cfg, u));
    size_t cap;
    char *body;
    int n;

    if (s == NULL)
        return -1;
    cap = s->len + sizeof(remaining) + 10 + 2; /* 10: digits of the largest uint32 */
    body = malloc(cap);
    if (body == NULL)
        return -1;
    memcpy(body, s->text, s->len);
    n = call->rate != NULL ? snprintf(body + s->len, cap - s->len, "%s%" PRIu32 "}}", remaining,
                                      call->rate->remaining)
                           : snprintf(body + s->len, cap - s->len, "}}");
    if (n < 0 || (size_t)n >= cap - s->len) {
        free(body);
        return -1;
    }
    fm_response_json_take(resp, 200, body, s->len + (size_t)n);
    return 0;
}
