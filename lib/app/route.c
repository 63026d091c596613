/*
 * route.c - route selection (route.h).
 *
 * The table is read in order and the first route whose pattern matches the
 * path and whose method is the request's wins, so a literal segment placed
 * before a {name} at the same position takes precedence. A pattern is
 * matched byte by byte against the path (nginx has decoded and normalised
 * it); {name} takes the bytes up to the next '/', a last {name*} the rest.
 * While looking, the methods of the routes whose pattern matches are gathered
 * for a 405's Allow, and the first such route is remembered: a request that
 * has no route is still counted under a pattern (metrics.h), never under its
 * path.
 */
#include "route.h"

#include <stdio.h>
#include <string.h>

bool fm_route_match(const char *pattern, const char *path,
                    char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX], const char **tail)
{
    size_t np = 0;

    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            size_t n = strcspn(path, "/");
            if (close != NULL && close[-1] == '*' && close[1] == '\0') {
                if (tail != NULL)
                    *tail = path;
                return true; /* *path != '\0': the rest is not empty */
            }
            if (close == NULL || n == 0 || n >= FM_PATH_PARAM_MAX || np >= FM_ROUTE_MAX_PARAMS)
                return false;
            memcpy(params[np], path, n);
            params[np++][n] = '\0';
            pattern = close + 1;
            path += n;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

void fm_route_find(const fm_route *routes, size_t nroutes, const char *method, const char *path,
                   fm_route_found *out)
{
    char *allow = out->allow;

    out->route = NULL;
    out->first = nroutes;
    allow[0] = '\0';
    for (size_t i = 0; i < nroutes; i++) {
        const fm_route *r = &routes[i];

        out->tail = NULL;
        if (!fm_route_match(r->pattern, path, out->params, &out->tail))
            continue;
        if (out->first == nroutes)
            out->first = i;
        if (method_matches(r->method, method)) {
            out->route = r;
            return;
        }
        if (strstr(allow, r->method) == NULL)
            (void)snprintf(allow + strlen(allow), sizeof(out->allow) - strlen(allow), "%s%s",
                           allow[0] ? ", " : "", r->method);
    }
    out->tail = NULL;
}
