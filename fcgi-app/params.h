/*
 * params.h - the FastCGI params a worker reads, found in one pass over the
 * request's environment (FCGX_Request.envp: "NAME=value" strings, as libfcgi
 * decodes them from the FCGI_PARAMS records, FastCGI 1.0 section 5.2), and
 * the strict reading of CONTENT_LENGTH. Both see what nginx was sent, so
 * tests/fuzz/fuzz_params.c fuzzes them.
 */
#ifndef FM_PARAMS_H
#define FM_PARAMS_H

#include <stddef.h>

#include "err.h"

/* The params serve reads, as indexes into the arrays fm_params_scan fills. */
enum {
    P_METHOD,
    P_DOCUMENT_URI,
    P_REQUEST_URI,
    P_SCRIPT_NAME,
    P_QUERY,
    P_REMOTE_ADDR,
    P_REQUEST_ID,
    P_X_API_KEY,
    P_AUTHORIZATION,
    P_CONTENT_LENGTH,
    P_CONTENT_TYPE,
    P_TRANSFER_ENCODING,
    P_IF_MATCH,
    P_IF_NONE_MATCH,
    P_PLAIN_HTTP,
    P_ORIGIN,
    P_WS_PROTOCOL,
    P_WS_KEY,
    P_WS_VERSION,
    P_SERVER_PROTOCOL,
    P_UPGRADE,
    P_WS_AUTH,
    P_WS_EVENT,
    P_WS_CONN,
    P_WS_USER,
    P_WS_KEY_ID,
    P_WS_KIND,
    P_COUNT
};

/*
 * fm_params_scan - fills value[i] (pointing into envp's strings, just after
 * the '='; NULL when absent) and count[i] (occurrences) for each name above.
 * envp is a NULL-terminated array (envp itself may be NULL); a string without
 * '=' is skipped. As with FCGX_GetParam, the first occurrence of a name wins;
 * the count lets the caller refuse a repeated credential header (nginx passes
 * a repeated header as repeated params, and two credentials are ambiguous;
 * Apache merges them into one value with ", ", which the key check refuses
 * as malformed: a key holds no space).
 */
void fm_params_scan(char **envp, const char *value[P_COUNT], int count[P_COUNT]);

/*
 * fm_params_content_length - CONTENT_LENGTH s (may be NULL) as a byte count
 * in *out: absent or empty is 0. FM_EINVAL (*out 0) for anything but decimal
 * digits, or a value above SIZE_MAX / 2.
 */
fm_err fm_params_content_length(const char *s, size_t *out);

#endif
