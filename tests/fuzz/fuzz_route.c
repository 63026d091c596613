/*
 * fuzz_route.c - libFuzzer target for request path routing
 * (fm_route_match, lib/app/route.c) over the real route table
 * (fcgi-app/routes.c). The path is DOCUMENT_URI, which nginx has decoded: any
 * bytes but NUL.
 *
 * Input: the path (up to the first NUL). For each route, the matcher must
 * agree with a reference that splits pattern and path at '/': as many
 * segments, a literal segment equal, a {name} segment any non-empty text of
 * fewer than FM_PATH_PARAM_MAX bytes, which is the capture, in order; a last
 * {name*} segment is the non-empty rest of the path, '/' included.
 */
#include "app.h"
#include "fuzz.h"
#include "route.h"

/* Segment i of s (split at '/') into *seg, *n; false when s has fewer segments. */
static bool segment(const char *s, size_t i, const char **seg, size_t *n)
{
    for (; i > 0; i--) {
        s = strchr(s, '/');
        if (s == NULL)
            return false;
        s++;
    }
    *seg = s;
    *n = strcspn(s, "/");
    return true;
}

static size_t segments(const char *s)
{
    size_t n = 1;

    for (; (s = strchr(s, '/')) != NULL; s++)
        n++;
    return n;
}

static bool ref_match(const char *pattern, const char *path,
                      char params[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX], const char **tail)
{
    size_t np = 0, nseg = segments(pattern);
    const char *last = strrchr(pattern, '/');
    bool rest = last != NULL && last[1] == '{' && last[strlen(last) - 2] == '*';

    *tail = NULL;
    if (rest ? segments(path) < nseg : segments(path) != nseg)
        return false;
    for (size_t i = 0; i < nseg; i++) {
        const char *p, *s;
        size_t pn, sn;

        (void)segment(pattern, i, &p, &pn);
        (void)segment(path, i, &s, &sn);
        if (rest && i == nseg - 1) {
            *tail = s;
            return *s != '\0';
        }
        if (pn > 0 && p[0] == '{') {
            if (sn == 0 || sn >= FM_PATH_PARAM_MAX || np == FM_ROUTE_MAX_PARAMS)
                return false;
            memcpy(params[np], s, sn);
            params[np++][sn] = '\0';
        } else if (pn != sn || memcmp(p, s, pn) != 0) {
            return false;
        }
    }
    return true;
}

static size_t captures(const char *pattern)
{
    size_t n = 0;

    for (; (pattern = strchr(pattern, '{')) != NULL; pattern++)
        n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_cstr(data, size);

    for (size_t i = 0; i < fm_app_nroutes; i++) {
        char got[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX];
        char want[FM_ROUTE_MAX_PARAMS][FM_PATH_PARAM_MAX];
        const char *pattern = fm_app_routes[i].pattern, *tail = NULL, *want_tail;
        bool m = fm_route_match(pattern, path, got, &tail);

        if (m != ref_match(pattern, path, want, &want_tail))
            fuzz_fail("route: %s matches \"%s\": %d, the reference says %d", pattern, path, m, !m);
        if (m && tail != want_tail)
            fuzz_fail("route: %s on \"%s\": the rest is not where the reference says", pattern,
                      path);
        for (size_t k = 0; m && k < captures(pattern) - (tail != NULL); k++)
            if (strcmp(got[k], want[k]) != 0)
                fuzz_fail("route: %s on \"%s\" captured \"%s\", not \"%s\"", pattern, path, got[k],
                          want[k]);
    }
    free(path);
    return 0;
}
