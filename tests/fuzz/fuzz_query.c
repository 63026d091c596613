/*
 * fuzz_query.c - libFuzzer target for the query string (lib/base/query.c),
 * with the names GET /v1/tasks accepts.
 *
 * Input: QUERY_STRING (up to the first NUL, as FastCGI hands it over).
 * Checks:
 *   - a refusal carries a one-line message;
 *   - an accepted query has at most FM_QUERY_MAX pairs, one per non-empty
 *     '&' piece, each name allowed and given once, every name and value
 *     NUL-terminated in its slot and free of control bytes, and
 *     fm_query_get finds each value;
 *   - the pairs percent-encoded again (every byte as %XX) parse to the same.
 */
#include "fuzz.h"
#include "query.h"

static const char *const allowed[] = {"status", "limit", "offset", NULL};

static size_t pieces(const char *qs)
{
    size_t n = 0;

    for (const char *p = qs; *p != '\0'; p += strcspn(p, "&"), p += *p == '&')
        n += *p != '&';
    return n;
}

static void check_text(const char *what, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);

    if (n == cap)
        fuzz_fail("query: a %s fills its slot without a NUL", what);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            fuzz_fail("query: a %s holds the control byte 0x%02x", what, (unsigned char)s[i]);
}

/* Every byte as %XX: what a client that escapes everything sends. */
static size_t encode(const char *s, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s != '\0'; s++) {
        out[o++] = '%';
        out[o++] = hex[(unsigned char)*s >> 4];
        out[o++] = hex[(unsigned char)*s & 15];
    }
    return o;
}

static void check_round_trip(const fm_query *q)
{
    char qs[FM_QUERY_MAX * 3 * (FM_QUERY_NAME_MAX + FM_QUERY_VALUE_MAX + 2)], err[256];
    size_t o = 0;
    fm_query again;

    for (size_t i = 0; i < q->n; i++) {
        if (i > 0)
            qs[o++] = '&';
        o += encode(q->names[i], qs + o);
        qs[o++] = '=';
        o += encode(q->values[i], qs + o);
    }
    qs[o] = '\0';
    if (fm_query_parse(qs, allowed, &again, err, sizeof(err)) != FM_OK)
        fuzz_fail("query: the pairs encoded again are refused: %s", err);
    if (again.n != q->n)
        fuzz_fail("query: the pairs encoded again give %zu pairs, not %zu", again.n, q->n);
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(again.names[i], q->names[i]) != 0 || strcmp(again.values[i], q->values[i]) != 0)
            fuzz_fail("query: pair %zu differs once encoded again", i);
}

static void check_accepted(const char *qs, const fm_query *q)
{
    if (q->n > FM_QUERY_MAX || q->n != pieces(qs))
        fuzz_fail("query: %zu pairs from %zu pieces", q->n, pieces(qs));
    for (size_t i = 0; i < q->n; i++) {
        size_t k = 0;

        check_text("name", q->names[i], FM_QUERY_NAME_MAX);
        check_text("value", q->values[i], FM_QUERY_VALUE_MAX);
        while (allowed[k] != NULL && strcmp(allowed[k], q->names[i]) != 0)
            k++;
        if (allowed[k] == NULL)
            fuzz_fail("query: accepted the name \"%s\", which is not allowed", q->names[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(q->names[j], q->names[i]) == 0)
                fuzz_fail("query: accepted \"%s\" twice", q->names[i]);
        if (fm_query_get(q, q->names[i]) != q->values[i])
            fuzz_fail("query: fm_query_get does not find \"%s\"", q->names[i]);
    }
    check_round_trip(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *qs = fuzz_cstr(data, size), err[256];
    fm_query *q = malloc(sizeof(*q));

    if (q == NULL)
        abort();
    err[0] = '\0';
    if (fm_query_parse(qs, allowed, q, err, sizeof(err)) == FM_OK)
        check_accepted(qs, q);
    else
        fuzz_check_message("query", err, sizeof(err));
    free(q);
    free(qs);
    return 0;
}
