/*
 * websocket.c - the websocket section (SPEC 4.2): the web origins a browser
 * may open /ws from, and the unix socket of nchan's publisher location that
 * the event relay posts to, with the file of the token nginx asks it for.
 *
 * An origin is compared whole, as browsers send it (RFC 6454 section 6.1):
 * "scheme://host" or "scheme://host:port", scheme http or https, lower case,
 * no path, no trailing slash. Anything else could never match and is refused
 * at load rather than silently ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "sections.h"

static bool valid_origin(const char *v)
{
    size_t n = strlen(v), host;
    const char *rest;

    if (n >= FM_ORIGIN_MAX)
        return false;
    if (strncmp(v, "https://", 8) == 0)
        rest = v + 8;
    else if (strncmp(v, "http://", 7) == 0)
        rest = v + 7;
    else
        return false;
    host = strspn(rest, "abcdefghijklmnopqrstuvwxyz0123456789.-[]:");
    return host > 0 && rest[host] == '\0' && rest[0] != ':' && rest[host - 1] != ':';
}

static fm_err allowed_origins(struct loader *l, const char *where, void *obj)
{
    fm_config *cfg = obj;
    char item[LD_WHERE_MAX];
    bool end;
    fm_err rc;

    if (ld_list_start(l, where, "a list of origins (\"https://host[:port]\")") != 0)
        return FM_EINVAL;
    for (size_t i = 0; (rc = ld_list_next(l, where, i, item, sizeof(item), &end)) == 0 && !end;
         i++) {
        const char *v = ld_scalar(l, item, "an origin (\"https://host[:port]\")", false);
        char(*grown)[FM_ORIGIN_MAX];

        if (v == NULL)
            return FM_EINVAL;
        if (!valid_origin(v)) {
            char raw[LD_ECHO_BUF];

            ld_echo_value(l, v, raw);
            return ld_fail(l, &l->ev.start_mark,
                           "%s: \"%s\" is not an origin: scheme://host[:port] with scheme http or "
                           "https, in lower case, without a path",
                           item, raw);
        }
        grown = ld_grow(cfg->websocket.origins, cfg->websocket.norigins, sizeof(*grown));
        if (grown == NULL)
            return ld_oom(l);
        cfg->websocket.origins = grown;
        (void)snprintf(grown[cfg->websocket.norigins++], FM_ORIGIN_MAX, "%s", v);
    }
    return rc;
}

/* Events go to nchan over a unix socket only: a TCP publisher could be reached by others. */
static fm_err check_publisher(struct loader *l, const char *where, const void *field)
{
    const char *v = *(char *const *)field;

    if (strncmp(v, "unix:", 5) == 0)
        return FM_OK;
    return ld_fail(l, &l->ev.start_mark,
                   "%s must be \"unix:<path>\": nchan's publisher location is reached over a "
                   "unix socket, never TCP",
                   where);
}

/*
 * The relay and the workers share an account, so only the token keeps a
 * compromised worker from the publisher (nchan.h): no publisher without one.
 */
fm_err websocket_check(struct loader *l, const char *where, const yaml_mark_t *at, const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->websocket.publisher != NULL && cfg->websocket.publisher_token_file == NULL)
        return ld_fail(l, at,
                       "%s.publisher needs %s.publisher_token_file: nginx's publisher admits "
                       "only the relay's token (fetchml-admin publisher-token)",
                       where, where);
    if (cfg->websocket.publisher == NULL && cfg->websocket.publisher_token_file != NULL)
        return ld_fail(l, at, "%s.publisher_token_file needs %s.publisher", where, where);
    return FM_OK;
}

LD_TABLE(, websocket_table, LD_HANDLER_ROW("allowed_origins", allowed_origins),
         LD_STR_ROW("publisher", LD_ENDPOINT, fm_config, websocket.publisher, NULL, NULL, true,
                    check_publisher),
         LD_STR_ROW("publisher_token_file", LD_PATH, fm_config, websocket.publisher_token_file,
                    NULL, NULL, true, NULL));
