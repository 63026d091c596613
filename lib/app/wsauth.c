/*
 * wsauth.c - GET /ws's own checks and its answer to nginx (wsauth.h).
 */
#include "wsauth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blanks around a token of the list (RFC 9110 OWS). */
static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

void fm_wsauth_subprotocols(const char *header, fm_wsauth_offer *out)
{
    const char *p = header;
    size_t blen = sizeof(FM_WSAUTH_BEARER) - 1;

    memset(out, 0, sizeof(*out));
    for (bool first = true; p != NULL && *p != '\0'; first = false) {
        const char *comma = strchr(p, ','), *end = comma != NULL ? comma : p + strlen(p);
        const char *s = skip_ows(p, end), *e = end;
        size_t n;

        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        n = (size_t)(e - s);
        if (n == sizeof(FM_WSAUTH_META) - 1 && memcmp(s, FM_WSAUTH_META, n) == 0) {
            out->meta_first = out->meta_first || first;
            out->meta = true;
        } else if (n > blen && memcmp(s, FM_WSAUTH_BEARER, blen) == 0) {
            if (out->key[0] != '\0' || n - blen > FM_AUTH_KEY_MAX) {
                out->repeated = true;
                out->key[0] = '\0';
            } else if (!out->repeated) {
                memcpy(out->key, s + blen, n - blen);
                out->key[n - blen] = '\0';
            }
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
}

bool fm_wsauth_origin_allowed(const fm_config *cfg, const char *origin)
{
    char low[FM_ORIGIN_MAX];
    size_t n;

    if (origin == NULL)
        return true;
    n = strlen(origin);
    if (n == 0 || n >= sizeof(low))
        return false;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)origin[i]);
    for (size_t i = 0; i < cfg->websocket.norigins; i++)
        if (strcmp(cfg->websocket.origins[i], low) == 0)
            return true;
    return false;
}

void fm_wsauth_channel(const fm_user *user, char channel[FM_WSAUTH_CHANNEL_MAX], const char **kind)
{
    if (user->admin) {
        *kind = "all";
        (void)snprintf(channel, FM_WSAUTH_CHANNEL_MAX, "all");
    } else if (fm_rbac_allows(user->effective, FM_PERM(FM_RES_JOBS, FM_ACT_RUN))) {
        *kind = "queue";
        (void)snprintf(channel, FM_WSAUTH_CHANNEL_MAX, "queue");
    } else {
        *kind = "user";
        (void)snprintf(channel, FM_WSAUTH_CHANNEL_MAX, "u.%s", user->name);
    }
}

void fm_wsauth_answer(fm_response *resp)
{
    size_t len = resp->body_len, saved = resp->nheaders;
    const char *body = resp->body;

    if (resp->status >= 200 && resp->status < 300)
        return;
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
        len--;
    if (fm_response_header(resp, "X-FetchML-Status: %d", resp->status) != FM_OK ||
        (body != NULL &&
         fm_response_header(resp, "X-FetchML-Error: %.*s", (int)len, body) != FM_OK)) {
        resp->nheaders = saved; /* nginx answers its own 503 without them */
    } else if (resp->status != 401) {
        resp->status = 403;
    }
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
