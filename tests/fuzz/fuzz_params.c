/*
 * fuzz_params.c - libFuzzer target for the FastCGI parameter scan and
 * CONTENT_LENGTH (fcgi-app/params.c): the params nginx forwards, some of
 * which (HTTP_* headers, QUERY_STRING, DOCUMENT_URI) the client chooses.
 *
 * Input: the params, one "NAME=value" per line ('\n'; a NUL ends a
 * param's text, as it would in the C string libfcgi builds). Checks:
 *   - fm_params_scan agrees with a naive scan of its own (the first
 *     occurrence of each name wins, and the occurrences are counted);
 *   - fm_params_content_length accepts exactly the strings of digits (and
 *     the empty or absent value) whose value is at most SIZE_MAX / 2, and
 *     gives that value.
 */
#include "fuzz.h"
#include "params.h"

#include <stdint.h>

#define MAX_PARAMS 64

static const char *const names[P_COUNT] = {
    [P_METHOD] = "REQUEST_METHOD",
    [P_DOCUMENT_URI] = "DOCUMENT_URI",
    [P_REQUEST_URI] = "REQUEST_URI",
    [P_SCRIPT_NAME] = "SCRIPT_NAME",
    [P_QUERY] = "QUERY_STRING",
    [P_REMOTE_ADDR] = "REMOTE_ADDR",
    [P_REQUEST_ID] = "REQUEST_ID",
    [P_X_API_KEY] = "HTTP_X_API_KEY",
    [P_AUTHORIZATION] = "HTTP_AUTHORIZATION",
    [P_CONTENT_LENGTH] = "CONTENT_LENGTH",
    [P_CONTENT_TYPE] = "CONTENT_TYPE",
    [P_TRANSFER_ENCODING] = "HTTP_TRANSFER_ENCODING",
    [P_IF_MATCH] = "HTTP_IF_MATCH",
    [P_IF_NONE_MATCH] = "HTTP_IF_NONE_MATCH",
    [P_PLAIN_HTTP] = "FETCHML_PLAIN_HTTP",
    [P_ORIGIN] = "HTTP_ORIGIN",
    [P_WS_PROTOCOL] = "HTTP_SEC_WEBSOCKET_PROTOCOL",
    [P_WS_KEY] = "HTTP_SEC_WEBSOCKET_KEY",
    [P_WS_VERSION] = "HTTP_SEC_WEBSOCKET_VERSION",
    [P_SERVER_PROTOCOL] = "SERVER_PROTOCOL",
    [P_UPGRADE] = "HTTP_UPGRADE",
    [P_WS_AUTH] = "FETCHML_WS_AUTH",
    [P_WS_EVENT] = "FETCHML_WS_EVENT",
    [P_WS_CONN] = "FETCHML_WS_CONN",
    [P_WS_USER] = "FETCHML_WS_USER",
    [P_WS_KEY_ID] = "FETCHML_WS_KEY_ID",
    [P_WS_KIND] = "FETCHML_WS_KIND",
};

/* The value of "NAME=value" when NAME is name, else NULL. */
static const char *value_of(const char *param, const char *name)
{
    size_t n = strlen(name);

    return strncmp(param, name, n) == 0 && param[n] == '=' ? param + n + 1 : NULL;
}

/* The reference for fm_params_content_length: digits only, compared as decimal text. */
static void check_length(const char *s)
{
    char max[32];
    size_t got, n = s != NULL ? strlen(s) : 0, want = 0;
    bool ok = n == 0 || strspn(s, "0123456789") == n;
    fm_err rc = fm_params_content_length(s, &got);

    if (ok && n > 0) {
        size_t digits = n - strspn(s, "0"), mlen;

        (void)snprintf(max, sizeof(max), "%zu", SIZE_MAX / 2);
        mlen = strlen(max);
        /* Leading zeros do not count; past them, a longer or larger text is too large. */
        ok = digits < mlen || (digits == mlen && strcmp(s + n - digits, max) <= 0);
        for (size_t i = 0; ok && i < n; i++)
            want = want * 10 + (size_t)(s[i] - '0');
    }
    if ((rc == FM_OK) != ok || (rc == FM_OK && got != want) || (rc != FM_OK && got != 0))
        fuzz_fail("params: CONTENT_LENGTH \"%s\": rc %d value %zu, the reference says %s %zu",
                  s != NULL ? s : "(absent)", (int)rc, got, ok ? "ok" : "refused", want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size), *envp[MAX_PARAMS + 1];
    const char *value[P_COUNT];
    int count[P_COUNT];
    size_t n = 0;

    /* Split on '\n' over the whole input; a NUL inside a line ends that param's text early. */
    for (size_t at = 0; at <= size && n < MAX_PARAMS;) {
        char *nl = memchr(text + at, '\n', size - at);
        size_t len = nl != NULL ? (size_t)(nl - (text + at)) : size - at;

        text[at + len] = '\0';
        envp[n++] = text + at;
        at += len + 1;
    }
    envp[n] = NULL;
    fm_params_scan(envp, value, count);
    for (size_t i = 0; i < P_COUNT; i++) {
        const char *first = NULL;
        int c = 0;

        if (names[i] == NULL)
            fuzz_fail("params: param %zu of params.h has no name in fuzz_params.c's names[]", i);
        for (size_t k = 0; k < n; k++) {
            const char *v = value_of(envp[k], names[i]);

            if (v != NULL && c++ == 0)
                first = v;
        }
        if (value[i] != first || count[i] != c)
            fuzz_fail("params: %s: found %d times, first at %p; the reference says %d, %p",
                      names[i], count[i], (const void *)value[i], c, (const void *)first);
    }
    check_length(value[P_CONTENT_LENGTH]);
    free(text);
    return 0;
}
