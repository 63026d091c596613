/*
 * route.h - which route of a table a request's method and path select
 * (pipeline step 6, pipeline.h), and the {name} captures of its pattern.
 * The route table's types (fm_route, its flags, the capture sizes) are
 * pipeline.h's.
 */
#ifndef FM_ROUTE_H
#define FM_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

#define FM_ROUTE_ALLOW_MAX 64 /* bytes of an Allow list, NUL included */

/* What fm_route_find found for one method and path. */
typedef struct fm_route_found {
    const fm_route *route; /* the route selected; NULL: none */
    size_t first;          /* index of the first route whose pattern matches the path, whatever
                              its method; nroutes when none does */
    char allow[FM_ROUTE_ALLOW_MAX]; /* route NULL: the methods of the routes the path matches,
                                       "GET, PUT" (RFC 9110 section 10.2.1), cut to fit */
    char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX]; /* route's {name} captures in order */
    const char *tail; /* route's {name*} capture, in path; NULL if its pattern has none */
} fm_route_found;

/*
 * fm_route_match - true when path matches pattern (fm_route.pattern:
 * literal bytes, and {name} for one non-empty segment of fewer than
 * FM_PATH_PARAM_MAX bytes, at most FM_ROUTE_MAX_PARAMS of them; a last
 * {name*} matches the non-empty rest of the path, '/' included, and is not
 * copied: *tail points to it in path, when tail is not NULL); the segments
 * are copied, NUL-terminated, into params in order. params may be partly
 * written when false is returned. fm_route_find uses it; public for the fuzz
 * target.
 */
bool fm_route_match(const char *pattern, const char *path,
                    char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX], const char **tail);

/*
 * fm_route_find - the route of method and path in routes (nroutes of them):
 * the first whose pattern matches path (fm_route_match) and whose method is
 * method, a GET route answering HEAD too (RFC 9110 section 9.3.2). Fills
 * every field of *out (route NULL when none is; path and routes must outlive
 * out->route and out->tail). Never fails.
 */
void fm_route_find(const fm_route *routes, size_t nroutes, const char *method, const char *path,
                   fm_route_found *out);

#endif
