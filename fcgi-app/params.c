/*
 * params.c - FastCGI params in one pass, and CONTENT_LENGTH (see params.h).
 *
 * FCGX_GetParam scans the whole envp array for each name it is asked for;
 * one pass that matches every name we need is cheaper and lets us count
 * repeats, which FCGX_GetParam cannot.
 */
#include "params.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME_AND_LEN(s) s, sizeof(s) - 1
static const struct {
    const char *name;
    size_t len;
} param_names[P_COUNT] = {
    [P_METHOD] = {NAME_AND_LEN("REQUEST_METHOD")},
    [P_DOCUMENT_URI] = {NAME_AND_LEN("DOCUMENT_URI")},
    [P_REQUEST_URI] = {NAME_AND_LEN("REQUEST_URI")},
    [P_SCRIPT_NAME] = {NAME_AND_LEN("SCRIPT_NAME")},
    [P_QUERY] = {NAME_AND_LEN("QUERY_STRING")},
    [P_REMOTE_ADDR] = {NAME_AND_LEN("REMOTE_ADDR")},
    [P_REQUEST_ID] = {NAME_AND_LEN("REQUEST_ID")},
    [P_X_API_KEY] = {NAME_AND_LEN("HTTP_X_API_KEY")},
    [P_AUTHORIZATION] = {NAME_AND_LEN("HTTP_AUTHORIZATION")},
    [P_CONTENT_LENGTH] = {NAME_AND_LEN("CONTENT_LENGTH")},
    [P_CONTENT_TYPE] = {NAME_AND_LEN("CONTENT_TYPE")},
    [P_TRANSFER_ENCODING] = {NAME_AND_LEN("HTTP_TRANSFER_ENCODING")},
    [P_ORIGIN] = {NAME_AND_LEN("HTTP_ORIGIN")},
    [P_WS_PROTOCOL] = {NAME_AND_LEN("HTTP_SEC_WEBSOCKET_PROTOCOL")},
    [P_WS_KEY] = {NAME_AND_LEN("HTTP_SEC_WEBSOCKET_KEY")},
    [P_WS_VERSION] = {NAME_AND_LEN("HTTP_SEC_WEBSOCKET_VERSION")},
    [P_SERVER_PROTOCOL] = {NAME_AND_LEN("SERVER_PROTOCOL")},
    [P_UPGRADE] = {NAME_AND_LEN("HTTP_UPGRADE")},
    [P_IF_MATCH] = {NAME_AND_LEN("HTTP_IF_MATCH")},
    [P_IF_NONE_MATCH] = {NAME_AND_LEN("HTTP_IF_NONE_MATCH")},
    /* Set by nginx's config, never from a header: those all become HTTP_* params. */
    [P_PLAIN_HTTP] = {NAME_AND_LEN("FETCHML_PLAIN_HTTP")},
    /* GET /ws's auth_request, and nchan's open and close callbacks
       (nginx/snippets/fetchml-websocket.conf). */
    [P_WS_AUTH] = {NAME_AND_LEN("FETCHML_WS_AUTH")},
    [P_WS_EVENT] = {NAME_AND_LEN("FETCHML_WS_EVENT")},
    [P_WS_CONN] = {NAME_AND_LEN("FETCHML_WS_CONN")},
    [P_WS_USER] = {NAME_AND_LEN("FETCHML_WS_USER")},
    [P_WS_KEY_ID] = {NAME_AND_LEN("FETCHML_WS_KEY_ID")},
    [P_WS_KIND] = {NAME_AND_LEN("FETCHML_WS_KIND")},
};
#undef NAME_AND_LEN

/* Strict CONTENT_LENGTH: absent or empty = 0; anything but digits is refused. */
fm_err fm_params_content_length(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    *out = 0;
    if (s == NULL || *s == '\0')
        return FM_OK;
    if (*s < '0' || *s > '9')
        return FM_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > (unsigned long long)SIZE_MAX / 2)
        return FM_EINVAL;
    *out = (size_t)v;
    return FM_OK;
}

void fm_params_scan(char **envp, const char *value[P_COUNT], int count[P_COUNT])
{
    for (size_t i = 0; i < P_COUNT; i++) {
        value[i] = NULL;
        count[i] = 0;
    }
    for (; envp != NULL && *envp != NULL; envp++) {
        const char *eq = strchr(*envp, '=');
        size_t n;

        if (eq == NULL)
            continue;
        n = (size_t)(eq - *envp);
        for (size_t i = 0; i < P_COUNT; i++) {
            if (n == param_names[i].len && memcmp(*envp, param_names[i].name, n) == 0) {
                if (count[i]++ == 0)
                    value[i] = eq + 1;
                break;
            }
        }
    }
}
