/*
 * query.h - the query string of a request URI (RFC 3986 section 3.4), decoded
 * as application/x-www-form-urlencoded (WHATWG URL standard): pairs split on
 * '&', name and value on the first '=', "%XX" and '+' decoded.
 *
 * Parsing is strict, since every value feeds a filter or a limit: a malformed
 * escape, a decoded NUL or control character, a decoded part that is not
 * UTF-8 (RFC 3629), a name not in the route's
 * allowed list, a name given twice, an empty name or an oversized part are
 * all errors, never silently dropped or overridden.
 */
#ifndef FM_QUERY_H
#define FM_QUERY_H

#include <stddef.h>

#include "err.h"

#define FM_QUERY_MAX 8         /* pairs */
#define FM_QUERY_NAME_MAX 32   /* bytes per decoded name, with NUL */
#define FM_QUERY_VALUE_MAX 256 /* bytes per decoded value, with NUL */

typedef struct fm_query {
    size_t n;
    char names[FM_QUERY_MAX][FM_QUERY_NAME_MAX];
    char values[FM_QUERY_MAX][FM_QUERY_VALUE_MAX];
} fm_query;

/*
 * fm_query_parse - parse qs (QUERY_STRING without '?', may be NULL or empty)
 * accepting only the names in allowed (a NULL-terminated array). Returns
 * FM_OK with *out filled, or FM_EINVAL with a one-line message for the
 * client in err (errlen bytes), e.g. `unknown query parameter "x" (allowed:
 * status, limit)`: a malformed escape, a control character, bytes that are
 * not UTF-8, an unknown,
 * repeated or empty name, too many pairs or an oversized part.
 */
fm_err fm_query_parse(const char *qs, const char *const *allowed, fm_query *out, char *err,
                      size_t errlen);

/* fm_query_get - the decoded value of name, or NULL when it was not given. */
const char *fm_query_get(const fm_query *q, const char *name);

#endif
