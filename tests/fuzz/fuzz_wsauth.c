/*
 * fuzz_wsauth.c - libFuzzer target for the Sec-WebSocket-Protocol offer of
 * GET /ws (fm_wsauth_subprotocols, lib/app/wsauth.c), a header any client
 * sends: any bytes but NUL.
 *
 * Input: the header value (up to the first NUL). The parse must agree with a
 * reference that splits at ',' and trims blanks: meta when some token is
 * ws+meta.nchan; a key only when exactly one token is fetchml.bearer.<k> with
 * k non-empty and at most FM_AUTH_KEY_MAX bytes, and then it is k; repeated
 * when there are several such tokens (or an oversized one); meta_first when
 * the list's first element (up to the first ',', blanks trimmed; an empty one
 * counts) is ws+meta.nchan, the only list nchan answers.
 */
#include "fuzz.h"
#include "wsauth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size), *copy = strdup(s), *tok, *save = NULL;
    size_t blen = strlen(FM_WSAUTH_BEARER), bearers = 0, meta_at = SIZE_MAX;
    const char *key = NULL;
    bool oversized = false;
    fm_wsauth_offer o;

    if (copy == NULL)
        abort();
    fm_wsauth_subprotocols(s, &o);
    /* strtok_r would merge empty tokens, which the parse skips as well. */
    tok = strtok_r(copy, ",", &save);
    for (size_t i = 0; tok != NULL; i++, tok = strtok_r(NULL, ",", &save)) {
        char *e;
        while (*tok == ' ' || *tok == '\t')
            tok++;
        e = tok + strlen(tok);
        while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (strcmp(tok, FM_WSAUTH_META) == 0 && meta_at == SIZE_MAX)
            meta_at = i;
        else if (strlen(tok) > blen && strncmp(tok, FM_WSAUTH_BEARER, blen) == 0) {
            if (bearers++ == 0)
                key = tok + blen;
            oversized |= strlen(tok) - blen > FM_AUTH_KEY_MAX;
        }
    }
    if (o.meta != (meta_at != SIZE_MAX))
        fuzz_fail("meta %d, reference %d", o.meta, meta_at != SIZE_MAX);
    if (o.repeated != (bearers > 1 || oversized))
        fuzz_fail("repeated %d, reference %zu bearers, oversized %d", o.repeated, bearers,
                  oversized);
    if (!o.repeated && bearers == 1 && strcmp(o.key, key) != 0)
        fuzz_fail("key \"%s\", reference \"%s\"", o.key, key);
    if ((o.repeated || bearers == 0) && o.key[0] != '\0')
        fuzz_fail("key \"%s\" where there is none", o.key);
    {
        const char *a = s, *e = strchr(s, ',');
        size_t n;

        if (e == NULL)
            e = s + strlen(s);
        while (a < e && (*a == ' ' || *a == '\t'))
            a++;
        while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        n = (size_t)(e - a);
        if (o.meta_first != (n == strlen(FM_WSAUTH_META) && memcmp(a, FM_WSAUTH_META, n) == 0))
            fuzz_fail("meta_first %d, first element \"%.*s\"", o.meta_first, (int)n, a);
    }
    free(copy);
    free(s);
    return 0;
}
