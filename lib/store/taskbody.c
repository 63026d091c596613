/*
 * taskbody.c - validation of the task routes' bodies and the spec of a new
 * task (see taskbody.h).
 *
 * Validation is strict and whole-body: cJSON stops at the end of the first
 * value and at a NUL, so trailing bytes and NULs are checked separately, and
 * every field is checked before anything is built.
 */
#include "taskbody.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonstr.h"

#define NAME_MAX_LEN 128
#define ARGS_MAX_LEN 4096
#define LIST_ITEMS_MAX 64

static bool name_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || (c != '\0' && strchr(extra, c) != NULL)))
            return false;
    }
    return s[0] != '.';
}

static void uuid_v4(char out[37])
{
    unsigned char b[16];
    char hex[33];

    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    sodium_bin2hex(hex, sizeof(hex), b, sizeof(b));
    (void)snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                   hex + 20);
}

static int fail(char *err, size_t errlen, int code, const char *msg, const char *field)
{
    if (field != NULL)
        (void)snprintf(err, errlen, "%s: %s", field, msg);
    else
        (void)snprintf(err, errlen, "%s", msg);
    return code;
}

static bool string_array_ok(const cJSON *a, size_t item_max, const char *extra)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsArray(a))
        return false;
    cJSON_ArrayForEach(it, a)
    {
        if (++n > LIST_ITEMS_MAX || !cJSON_IsString(it) ||
            (extra != NULL ? !name_ok(it->valuestring, item_max, extra)
                           : strlen(it->valuestring) > item_max))
            return false;
    }
    return true;
}

/* True when a member before f in obj has f's name. */
static bool named_before(const cJSON *obj, const cJSON *f)
{
    for (const cJSON *g = obj->child; g != f; g = g->next)
        if (strcmp(g->string, f->string) == 0)
            return true;
    return false;
}

/*
 * An object of at most max members, each named by name_ok(name, 64, extra)
 * once, with values value_ok accepts.
 */
static bool map_ok(const cJSON *m, int max, const char *extra, bool (*value_ok)(const cJSON *))
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsObject(m))
        return false;
    cJSON_ArrayForEach(it, m)
    {
        if (++n > max || !name_ok(it->string, 64, extra) || named_before(m, it) || !value_ok(it))
            return false;
    }
    return true;
}

/* 1e999 parses as infinity, which no JSON can hold: it would be stored as null. */
static bool finite_number(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

static bool metadata_value(const cJSON *v)
{
    return (cJSON_IsString(v) && strlen(v->valuestring) <= ARGS_MAX_LEN) || finite_number(v) ||
           cJSON_IsBool(v);
}

static bool metadata_ok(const cJSON *m)
{
    return map_ok(m, LIST_ITEMS_MAX, "", metadata_value);
}

/* FM_EINVAL naming field k: at most 64 bytes of it, cut between UTF-8 sequences (served as JSON).
 */
static int unknown_field(const char *k, char *err, size_t errlen)
{
    size_t n = strlen(k);

    if (n > 64)
        for (n = 64; n > 0 && ((unsigned char)k[n] & 0xc0) == 0x80; n--)
            ;
    (void)snprintf(err, errlen, "unknown field \"%.*s\"", (int)n, k);
    return FM_EINVAL;
}

/* Checks one field of the request body; returns 0 or an FM_EINVAL with err set. */
static int check_field(const cJSON *f, char *err, size_t errlen)
{
    const char *k = f->string;

    if (strcmp(k, "job_name") == 0) {
        if (!cJSON_IsString(f) || !name_ok(f->valuestring, NAME_MAX_LEN, ":"))
            return fail(err, errlen, FM_EINVAL, "must be 1-128 characters of A-Z a-z 0-9 _ . : -",
                        k);
    } else if (strcmp(k, "args") == 0) {
        if (!(cJSON_IsString(f) && strlen(f->valuestring) <= ARGS_MAX_LEN) &&
            !string_array_ok(f, ARGS_MAX_LEN, NULL))
            return fail(err, errlen, FM_EINVAL,
                        "must be a string or an array of at most 64 strings (4096 bytes each)", k);
    } else if (strcmp(k, "priority") == 0) {
        double v = cJSON_IsNumber(f) ? f->valuedouble : 0;
        if (!cJSON_IsNumber(f) || v != floor(v) || v < 1 || v > 10)
            return fail(err, errlen, FM_EINVAL, "must be an integer from 1 to 10", k);
    } else if (strcmp(k, "commit_id") == 0) {
        int ok = cJSON_IsString(f) && strlen(f->valuestring) == 40;
        for (size_t i = 0; ok && i < 40; i++) {
            char c = f->valuestring[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        }
        if (!ok)
            return fail(err, errlen, FM_EINVAL, "must be 40 hex digits", k);
    } else if (strcmp(k, "experiment") == 0) {
        if (!cJSON_IsString(f) || !name_ok(f->valuestring, NAME_MAX_LEN, ""))
            return fail(err, errlen, FM_EINVAL,
                        "must be 1-128 characters of A-Z a-z 0-9 _ . - (not starting with .)", k);
    } else if (strcmp(k, "datasets") == 0) {
        if (!string_array_ok(f, 256, ":/"))
            return fail(err, errlen, FM_EINVAL, "must be an array of at most 64 dataset names", k);
    } else if (strcmp(k, "metadata") == 0) {
        if (!metadata_ok(f))
            return fail(err, errlen, FM_EINVAL,
                        "must be an object of at most 64 string, number or boolean values", k);
    } else {
        return unknown_field(k, err, errlen);
    }
    return 0;
}

static int validate(const cJSON *body, char *err, size_t errlen)
{
    const cJSON *f;

    if (!cJSON_IsObject(body))
        return fail(err, errlen, FM_EINVAL, "request body must be a JSON object", NULL);
    cJSON_ArrayForEach(f, body)
    {
        if (named_before(body, f))
            return fail(err, errlen, FM_EINVAL, "duplicate field", NULL);
        int rc = check_field(f, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (cJSON_GetObjectItemCaseSensitive(body, "job_name") == NULL)
        return fail(err, errlen, FM_EINVAL, "is required", "job_name");
    return 0;
}

/*
 * What cJSON lets through but RFC 8259 does not, refused before parsing:
 * bytes that are not UTF-8 (section 8.1), a control character raw inside a
 * string (section 7) or between tokens other than the four white-space
 * characters (section 2; cJSON skips any byte up to 0x20 there), and NUL,
 * raw or as \u0000, at which cJSON would silently cut a string. Such a body
 * could otherwise be stored, and would make the answers that return it (and
 * the error that echoes a field name) invalid JSON.
 */
static bool json_text_ok(const char *body, size_t len)
{
    bool in_string = false;

    /* UTF-8 is checked before (fm_taskbody_build), with a message of its own. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)body[i];

        if (c == '"') {
            in_string = !in_string;
        } else if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r'))) {
            return false;
        } else if (in_string && c == '\\') {
            if (len - i >= 6 && memcmp(body + i + 1, "u0000", 5) == 0)
                return false;
            i++; /* the escaped byte: a quote there does not end the string */
        }
    }
    return true;
}

/* The whole body must be one JSON value: cJSON stops at the end of the first one. */
static cJSON *parse_body(const char *body, size_t len)
{
    const char *end = NULL;
    cJSON *v;

    if (!json_text_ok(body, len))
        return NULL;
    v = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (v == NULL)
        return NULL;
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != body + len) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Copies an optional body field into task, or sets JSON null. */
static int copy_or_null(cJSON *task, const cJSON *body, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    cJSON *c = v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();

    if (c == NULL)
        return -1;
    if (!cJSON_AddItemToObject(task, name, c)) {
        cJSON_Delete(c);
        return -1;
    }
    return 0;
}

static cJSON *build_spec(const cJSON *body, const char *user, const char *id, int priority)
{
    cJSON *t = cJSON_CreateObject();
    char now[FM_RFC3339_MAX];
    int ok;

    if (t == NULL)
        return NULL;
    fm_clock_rfc3339(now, 1);
    ok = cJSON_AddStringToObject(t, "id", id) != NULL && copy_or_null(t, body, "job_name") == 0 &&
         copy_or_null(t, body, "args") == 0 &&
         cJSON_AddNumberToObject(t, "priority", priority) != NULL &&
         cJSON_AddStringToObject(t, "user", user) != NULL &&
         copy_or_null(t, body, "commit_id") == 0 && copy_or_null(t, body, "experiment") == 0 &&
         copy_or_null(t, body, "datasets") == 0 && copy_or_null(t, body, "metadata") == 0 &&
         cJSON_AddStringToObject(t, "created_at", now) != NULL;
    if (!ok) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/*
 * The body as one JSON object into *out: FM_OK, or FM_EPARSE with err set.
 * An empty body (len 0) is *out NULL and FM_OK when empty_ok.
 */
static fm_err parse_object(const char *body, size_t len, bool empty_ok, cJSON **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (body == NULL || len == 0)
        return empty_ok ? FM_OK : fail(err, errlen, FM_EPARSE, "request body is empty", NULL);
    /*
     * JSON text is UTF-8 (RFC 8259 section 8.1), so every string, key and
     * value, is too once the raw body is: cJSON copies raw bytes, and decodes
     * \u escapes to valid UTF-8 only (it refuses unpaired surrogate escapes).
     */
    if (!fm_jsonstr_utf8_valid(body, len))
        return fail(err, errlen, FM_EPARSE, "request body is not valid UTF-8", NULL);
    if ((*out = parse_body(body, len)) == NULL)
        return fail(err, errlen, FM_EPARSE,
                    "request body is not valid JSON (one object, no NUL characters)", NULL);
    return FM_OK;
}

fm_err fm_taskbody_build(const char *body, size_t len, const char *user, cJSON **spec, char *err,
                         size_t errlen)
{
    cJSON *in, *t;
    const cJSON *p;
    char id[37];
    int priority = 5, rc;

    *spec = NULL;
    if ((rc = parse_object(body, len, false, &in, err, errlen)) != FM_OK)
        return rc;
    if ((rc = validate(in, err, errlen)) != 0) {
        cJSON_Delete(in);
        return rc;
    }
    p = cJSON_GetObjectItemCaseSensitive(in, "priority");
    if (p != NULL)
        priority = (int)p->valuedouble;
    uuid_v4(id);
    t = build_spec(in, user, id, priority);
    cJSON_Delete(in);
    if (t == NULL) {
        errno = ENOMEM;
        return FM_ESYS;
    }
    *spec = t;
    return FM_OK;
}

/*
 * A worker body: parsed as one object whose every field is one of names
 * (NULL-terminated), each once. *out is NULL for an empty body when empty_ok.
 */
static fm_err worker_body(const char *body, size_t len, bool empty_ok, const char *const *names,
                          cJSON **out, char *err, size_t errlen)
{
    const cJSON *f;
    fm_err rc = parse_object(body, len, empty_ok, out, err, errlen);

    if (rc != FM_OK || *out == NULL)
        return rc;
    rc = FM_EINVAL;
    if (!cJSON_IsObject(*out)) {
        (void)fail(err, errlen, rc, "request body must be a JSON object", NULL);
        goto refused;
    }
    cJSON_ArrayForEach(f, *out)
    {
        size_t i = 0;

        while (names[i] != NULL && strcmp(names[i], f->string) != 0)
            i++;
        if (named_before(*out, f)) {
            (void)fail(err, errlen, rc, "duplicate field", NULL);
            goto refused;
        }
        if (names[i] == NULL) {
            (void)unknown_field(f->string, err, errlen);
            goto refused;
        }
    }
    return FM_OK;
refused:
    cJSON_Delete(*out);
    *out = NULL;
    return rc;
}

fm_err fm_taskbody_claim(const char *body, size_t len, char name[FM_TASKBODY_WORKER_MAX], char *err,
                         size_t errlen)
{
    static const char *const names[] = {"worker", NULL};
    const cJSON *w;
    cJSON *in;
    fm_err rc = worker_body(body, len, true, names, &in, err, errlen);

    name[0] = '\0';
    if (rc != FM_OK)
        return rc;
    w = cJSON_GetObjectItemCaseSensitive(in, "worker");
    if (w != NULL &&
        (!cJSON_IsString(w) || !name_ok(w->valuestring, FM_TASKBODY_WORKER_MAX - 1, ":"))) {
        cJSON_Delete(in);
        return fail(err, errlen, FM_EINVAL, "must be 1-63 characters of A-Z a-z 0-9 _ . : -",
                    "worker");
    }
    if (w != NULL)
        (void)snprintf(name, FM_TASKBODY_WORKER_MAX, "%s", w->valuestring);
    cJSON_Delete(in);
    return FM_OK;
}

#define METRICS_MAX 32
/*
 * Rendered, metrics fit in 4096 bytes by their bounds alone: a name needs no
 * escape (64 bytes, quotes, colon), cJSON prints a finite number in at most
 * 24 characters ("-2.2250738585072014e-308"), a comma, and the braces.
 */
_Static_assert(METRICS_MAX *(64 + 3 + 24 + 1) + 2 <= 4096, "metrics fit in 4096 bytes");

static bool metrics_ok(const cJSON *m)
{
    return map_ok(m, METRICS_MAX, ":/", finite_number);
}

fm_err fm_taskbody_heartbeat(const char *body, size_t len, double *progress, char **metrics,
                             char *err, size_t errlen)
{
    static const char *const names[] = {"progress", "metrics", NULL};
    const cJSON *p, *m;
    cJSON *in;
    fm_err rc = worker_body(body, len, true, names, &in, err, errlen);

    *progress = -1;
    *metrics = NULL;
    if (rc != FM_OK || in == NULL)
        return rc;
    p = cJSON_GetObjectItemCaseSensitive(in, "progress");
    m = cJSON_GetObjectItemCaseSensitive(in, "metrics");
    rc = FM_EINVAL;
    if (p != NULL && (!cJSON_IsNumber(p) || !(p->valuedouble >= 0 && p->valuedouble <= 100))) {
        (void)fail(err, errlen, rc, "must be a number from 0 to 100", "progress");
        goto done;
    }
    if (m != NULL && !metrics_ok(m)) {
        (void)fail(err, errlen, rc,
                   "must be an object of at most 32 names (A-Z a-z 0-9 _ . : / -) to numbers",
                   "metrics");
        goto done;
    }
    if (m != NULL) {
        char *text = cJSON_PrintUnformatted(m);

        if (text == NULL) {
            errno = ENOMEM;
            rc = FM_ESYS;
            goto done;
        }
        *metrics = text;
    }
    if (p != NULL)
        *progress = p->valuedouble;
    rc = FM_OK;
done:
    cJSON_Delete(in);
    return rc;
}

fm_err fm_taskbody_complete(const char *body, size_t len, const char **status, char **error,
                            char *err, size_t errlen)
{
    static const char *const names[] = {"status", "error", NULL};
    static const char *const ends[] = {"completed", "failed", "cancelled"};
    const cJSON *s, *e;
    cJSON *in;
    fm_err rc = worker_body(body, len, false, names, &in, err, errlen);

    *status = NULL;
    *error = NULL;
    if (rc != FM_OK)
        return rc;
    s = cJSON_GetObjectItemCaseSensitive(in, "status");
    e = cJSON_GetObjectItemCaseSensitive(in, "error");
    rc = FM_EINVAL;
    for (size_t i = 0; cJSON_IsString(s) && i < sizeof(ends) / sizeof(ends[0]); i++)
        if (strcmp(s->valuestring, ends[i]) == 0)
            *status = ends[i];
    if (*status == NULL) {
        (void)fail(err, errlen, rc, "must be completed, failed or cancelled", "status");
        goto done;
    }
    if (e != NULL &&
        (!cJSON_IsString(e) || strlen(e->valuestring) > ARGS_MAX_LEN || *status == ends[0])) {
        *status = NULL;
        (void)fail(err, errlen, rc,
                   "must be a string of at most 4096 bytes, with failed or cancelled", "error");
        goto done;
    }
    if (e != NULL && (*error = strdup(e->valuestring)) == NULL) {
        *status = NULL;
        errno = ENOMEM;
        rc = FM_ESYS;
        goto done;
    }
    rc = FM_OK;
done:
    cJSON_Delete(in);
    return rc;
}
