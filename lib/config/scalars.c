/*
 * scalars.c - typed values of the loader and the row kinds built on them.
 *
 * Scalars are checked strictly: integers and booleans must be plain (an
 * unquoted 010 or yes is refused rather than read as YAML 1.1 would), strings
 * must not be YAML null unless the row allows it.
 *
 * String values are expanded before they are checked: ${NAME} becomes the
 * environment variable, $${ a literal ${, in one left-to-right scan whose
 * output is not scanned again. Expanded text may be secret, so its buffer is
 * wiped whenever it is moved or freed, and a value that took text from the
 * environment is never echoed: messages show the scalar as written.
 */
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <sodium.h>

#define EXPANDED_MAX 65536 /* longest string value after ${VAR} expansion */

void ld_forget_value(struct loader *l)
{
    if (l->value != NULL) {
        sodium_memzero(l->value, strlen(l->value));
        free(l->value);
        l->value = NULL;
    }
}

static void wipe(char *buf, size_t len)
{
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
}

/* Appends piece to the buffer of an expansion, moving (and wiping) it when it grows. */
static fm_err append(struct loader *l, char **buf, size_t *len, size_t *cap, const char *piece,
                     size_t plen)
{
    char *bigger;
    size_t want;

    if (*len + plen + 1 <= *cap) {
        memcpy(*buf + *len, piece, plen);
        *len += plen;
        return FM_OK;
    }
    want = 2 * (*len + plen + 1);
    bigger = malloc(want);
    if (bigger == NULL)
        return ld_oom(l);
    if (*len > 0)
        memcpy(bigger, *buf, *len);
    memcpy(bigger + *len, piece, plen);
    wipe(*buf, *cap);
    *buf = bigger;
    *cap = want;
    *len += plen;
    return FM_OK;
}

/*
 * raw with ${NAME} replaced into l->value. Errors name the variable at most,
 * never a value.
 */
static fm_err expand(struct loader *l, const char *where, const char *raw)
{
    static const char name_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_";
    const yaml_mark_t *at = &l->ev.start_mark;
    char *buf = NULL;
    size_t len = 0, cap = 0;

    for (const char *p = raw; *p != '\0';) {
        const char *piece = p;
        size_t plen = 1;

        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            piece = "${";
            plen = 2;
            p += 3;
        } else if (p[0] == '$' && p[1] == '{') {
            const char *name = p + 2;
            size_t nlen = strspn(name, name_chars);
            char var[LD_ENV_NAME_MAX];

            if (strchr(name, '}') == NULL) {
                (void)ld_fail(l, at, "%s: unterminated \"${\"", where);
                goto fail;
            }
            if (name[nlen] != '}' || nlen == 0 || nlen >= sizeof(var) ||
                (name[0] >= '0' && name[0] <= '9')) {
                (void)ld_fail(l, at,
                              "%s: \"${\" must be followed by a variable name "
                              "[A-Za-z_][A-Za-z0-9_]* and \"}\"",
                              where);
                goto fail;
            }
            memcpy(var, name, nlen);
            var[nlen] = '\0';
            piece = getenv(var);
            if (piece == NULL) {
                (void)ld_fail(l, at, "%s: environment variable %s is not set", where, var);
                goto fail;
            }
            plen = strlen(piece);
            p = name + nlen + 1;
            l->from_env = true;
        } else {
            p++;
        }
        if (plen > EXPANDED_MAX - len) {
            (void)ld_fail(l, at, "%s is longer than %d bytes after expansion", where, EXPANDED_MAX);
            goto fail;
        }
        if (append(l, &buf, &len, &cap, piece, plen) != 0)
            goto fail;
    }
    if (append(l, &buf, &len, &cap, "", 0) != 0)
        goto fail;
    buf[len] = '\0';
    l->value = buf;
    return FM_OK;
fail:
    wipe(buf, cap);
    return FM_EINVAL;
}

const char *ld_scalar(struct loader *l, const char *where, const char *what, bool plain)
{
    const yaml_event_t *e = &l->ev;

    l->from_env = false;
    if (e->type != YAML_SCALAR_EVENT || ld_is_null(e) ||
        (plain && e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)) {
        (void)ld_fail(l, &e->start_mark, "%s must be %s", where, what);
        return NULL;
    }
    if (strlen((const char *)e->data.scalar.value) != e->data.scalar.length) {
        (void)ld_fail(l, &e->start_mark, "%s contains a NUL byte", where);
        return NULL;
    }
    ld_forget_value(l);
    if (plain || strstr((const char *)e->data.scalar.value, "${") == NULL)
        return (const char *)e->data.scalar.value;
    return expand(l, where, (const char *)e->data.scalar.value) != 0 ? NULL : l->value;
}

const char *ld_nullable(struct loader *l, const char *where, const char *what, bool *isnull)
{
    *isnull = l->ev.type == YAML_SCALAR_EVENT && ld_is_null(&l->ev);
    return *isnull ? "" : ld_scalar(l, where, what, false);
}

/* Decimal only: no sign but '-', no leading zeros (YAML 1.1 would read 010 as octal). */
static bool parse_integer(const char *s, long long min, long long max, long long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    char *end;
    long long v;

    if (digits[0] < '0' || digits[0] > '9' || (digits[0] == '0' && digits[1] != '\0'))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

fm_err ld_int(struct loader *l, const char *where, long long min, long long max, long long *out)
{
    char what[96];
    const char *v;

    (void)snprintf(what, sizeof(what), "an integer between %lld and %lld", min, max);
    v = ld_scalar(l, where, what, true);
    if (v == NULL)
        return FM_EINVAL;
    if (!parse_integer(v, min, max, out))
        return ld_fail(l, &l->ev.start_mark, "%s must be %s", where, what);
    return FM_OK;
}

fm_err ld_bool(struct loader *l, const char *where, bool *out)
{
    const char *v = ld_scalar(l, where, "true or false", true);

    if (v == NULL)
        return FM_EINVAL;
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return ld_fail(l, &l->ev.start_mark, "%s must be true or false", where);
    return FM_OK;
}

fm_err ld_resolve_path(struct loader *l, const char *where, const char *text, const char *prefix,
                       char **out)
{
    char buf[PATH_MAX + 8];
    int n;

    if (text[0] == '\0')
        return ld_fail(l, &l->ev.start_mark, "%s must be a non-empty path", where);
    if (text[0] == '/')
        n = snprintf(buf, sizeof(buf), "%s%s", prefix, text);
    else
        n = snprintf(buf, sizeof(buf), "%s%s%s%s", prefix, l->basedir,
                     strcmp(l->basedir, "/") == 0 ? "" : "/", text);
    if (n < 0 || (size_t)n >= sizeof(buf) || (size_t)n - strlen(prefix) >= PATH_MAX)
        return ld_fail(l, &l->ev.start_mark, "%s is too long", where);
    return ld_set_string(l, out, buf);
}

static bool valid_port(const char *s)
{
    long long port;

    return strspn(s, "0123456789") == strlen(s) && parse_integer(s, 1, 65535, &port);
}

static bool valid_host(const char *host, size_t len)
{
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        size_t inner = len - 2;
        char buf[64];

        if (inner == 0 || inner >= sizeof(buf))
            return false;
        memcpy(buf, host + 1, inner);
        buf[inner] = '\0';
        return strspn(buf, "0123456789abcdefABCDEF:.") == inner && strchr(buf, ':') != NULL;
    }
    /* host is followed by ':', which is outside the set, so strspn stops at len at most. */
    return len > 0 &&
           strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") == len;
}

/* "unix:<path>" (path resolved like any other) or "host:port" / "[v6]:port". */
static fm_err endpoint_value(struct loader *l, const char *where, char **out)
{
    struct sockaddr_un sa;
    const char *v = ld_scalar(l, where, "\"unix:/path\" or \"host:port\"", false);
    const char *colon;

    if (v == NULL)
        return FM_EINVAL;
    if (strncmp(v, "unix:", 5) == 0) {
        if (ld_resolve_path(l, where, v + 5, "unix:", out) != 0)
            return FM_EINVAL;
        if (strlen(*out) - 5 >= sizeof(sa.sun_path))
            return ld_fail(l, &l->ev.start_mark, "%s: unix socket path longer than %zu bytes",
                           where, sizeof(sa.sun_path) - 1);
        return FM_OK;
    }
    colon = strrchr(v, ':');
    if (colon == NULL || !valid_host(v, (size_t)(colon - v)) || !valid_port(colon + 1))
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be \"unix:/path\" or \"host:port\" with port 1..65535", where);
    return ld_set_string(l, out, v);
}

fm_err ld_host_port(struct loader *l, const char *where, char **out)
{
    const char *v = ld_scalar(l, where, "\"host:port\"", false);
    const char *colon;

    if (v == NULL)
        return FM_EINVAL;
    colon = strrchr(v, ':');
    if (colon == NULL || !valid_host(v, (size_t)(colon - v)) || !valid_port(colon + 1))
        return ld_fail(l, &l->ev.start_mark, "%s must be \"host:port\" with port 1..65535", where);
    return ld_set_string(l, out, v);
}

/* Octal text, plain or quoted: YAML would read a plain 0660 as 432 or 660 depending on version. */
static fm_err mode_value(struct loader *l, const char *where, long long *out)
{
    const char *v = ld_scalar(l, where, "octal digits like \"0660\"", false);
    size_t len;
    unsigned mode = 0;

    if (v == NULL)
        return FM_EINVAL;
    len = strlen(v);
    if ((len != 3 && len != 4) || strspn(v, "01234567") != len || (len == 4 && v[0] != '0'))
        return ld_fail(l, &l->ev.start_mark, "%s must be octal digits like \"0660\"", where);
    for (size_t i = 0; i < len; i++)
        mode = mode * 8 + (unsigned)(v[i] - '0');
    if ((mode & 07) != 0)
        return ld_fail(l, &l->ev.start_mark, "%s must not grant any permission to other users",
                       where);
    *out = (long long)mode;
    return FM_OK;
}

fm_err ld_cidrs(struct loader *l, const char *where, fm_ipacl *acl)
{
    char item[LD_WHERE_MAX], why[FM_CONFIG_ERR_MAX];
    yaml_mark_t at = l->ev.start_mark;
    bool end;
    fm_err rc;

    if (ld_list_start(l, where, "a list of CIDR blocks") != 0)
        return FM_EINVAL;
    for (size_t i = 0; (rc = ld_list_next(l, where, i, item, sizeof(item), &end)) == 0 && !end;
         i++) {
        const char *v = ld_scalar(l, item, "a CIDR block", false);
        fm_cidr cidr;

        if (v == NULL)
            return FM_EINVAL;
        if (fm_ipacl_parse_cidr(v, &cidr, why, sizeof(why)) != FM_OK) {
            char raw[LD_ECHO_BUF];

            /* why quotes the value, which here came from the environment. */
            ld_echo_value(l, v, raw);
            if (l->from_env)
                return ld_fail(l, &l->ev.start_mark, "%s: \"%s\" is not a valid CIDR block", item,
                               raw);
            return ld_fail(l, &l->ev.start_mark, "%s: %s", item, why);
        }
        if (fm_ipacl_add(acl, &cidr) != FM_OK)
            return ld_oom(l);
    }
    /* An empty list would mean "no restriction": say so by omitting the key, not by accident. */
    if (rc >= 0 && acl->count == 0)
        return ld_fail(l, &at,
                       "%s is empty; omit it to allow every address, or list the allowed networks",
                       where);
    return rc;
}

/* Integer settings are non-negative and stored by the width of their field. */
static void store_int(void *field, size_t size, long long v)
{
    if (size == sizeof(int8_t)) {
        int8_t x = (int8_t)v;
        memcpy(field, &x, sizeof(x));
    } else if (size == sizeof(int16_t)) {
        int16_t x = (int16_t)v;
        memcpy(field, &x, sizeof(x));
    } else if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(field, &x, sizeof(x));
    } else {
        int64_t x = (int64_t)v;
        memcpy(field, &x, sizeof(x));
    }
}

static fm_err enum_value(struct loader *l, const char *where, const struct ld_row *row,
                         long long *out)
{
    const char *v = ld_scalar(l, where, row->what, false);

    if (v == NULL)
        return FM_EINVAL;
    for (size_t i = 0; i < row->nnames; i++) {
        if (strcmp(v, row->names[i]) == 0) {
            *out = (long long)i;
            return FM_OK;
        }
    }
    return ld_fail(l, &l->ev.start_mark, "%s must be %s", where, row->what);
}

/* LD_STRING, LD_PATH, LD_ENDPOINT: 1 when the value was YAML null and the field is unset. */
static fm_err string_value(struct loader *l, const char *where, const struct ld_row *row,
                           char **out, bool *isnull)
{
    const char *what = row->kind == LD_STRING ? row->what : "a path";
    const char *v;

    *isnull = false;
    if (row->kind == LD_ENDPOINT)
        return endpoint_value(l, where, out);
    v = row->nullable ? ld_nullable(l, where, what, isnull) : ld_scalar(l, where, what, false);
    if (v == NULL)
        return FM_EINVAL;
    if (*isnull) {
        free(*out);
        *out = NULL;
        return FM_OK;
    }
    if (row->kind == LD_PATH)
        return ld_resolve_path(l, where, v, "", out);
    return ld_set_string(l, out, v);
}

fm_err ld_row_value(struct loader *l, const char *where, const struct ld_row *row, void *obj)
{
    void *field = (char *)obj + row->offset;
    long long v = 0;
    bool isnull;
    fm_err rc;

    switch (row->kind) {
    case LD_INT:
        rc = ld_int(l, where, row->min, row->max, &v);
        break;
    case LD_ENUM:
        rc = enum_value(l, where, row, &v);
        break;
    case LD_MODE:
        rc = mode_value(l, where, &v);
        break;
    case LD_BOOL:
        rc = ld_bool(l, where, field);
        break;
    case LD_STRING:
    case LD_PATH:
    case LD_ENDPOINT:
        rc = string_value(l, where, row, field, &isnull);
        if (rc == 0 && isnull)
            return FM_OK; /* switched off: nothing to check */
        break;
    case LD_CIDRS:
        rc = ld_cidrs(l, where, field);
        break;
    default:
        return ld_fail(l, &l->ev.start_mark, "%s: no parser for this setting", where);
    }
    if (rc != 0)
        return FM_EINVAL;
    if (row->kind == LD_INT || row->kind == LD_ENUM || row->kind == LD_MODE)
        store_int(field, row->size, v);
    return row->check != NULL ? row->check(l, where, field) : 0;
}

fm_err ld_defaults(struct loader *l, const struct ld_table *t, void *obj)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct ld_row *row = &t->rows[i];
        void *field = (char *)obj + row->offset;

        switch (row->kind) {
        case LD_INT:
        case LD_ENUM:
        case LD_MODE:
            store_int(field, row->size, row->def);
            break;
        case LD_BOOL:
            *(bool *)field = row->def != 0;
            break;
        case LD_STRING:
        case LD_PATH:
        case LD_ENDPOINT:
            if (row->sdef != NULL && ld_set_string(l, field, row->sdef) != 0)
                return FM_EINVAL;
            break;
        case LD_SECTION:
            if (ld_defaults(l, row->sub, obj) != 0)
                return FM_EINVAL;
            break;
        default:
            break;
        }
    }
    return FM_OK;
}

void ld_release(const struct ld_table *t, void *obj)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct ld_row *row = &t->rows[i];
        void *field = (char *)obj + row->offset;

        if (row->kind == LD_STRING || row->kind == LD_PATH || row->kind == LD_ENDPOINT) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (row->kind == LD_CIDRS) {
            fm_ipacl_free(field);
        } else if (row->kind == LD_SECTION) {
            ld_release(row->sub, obj);
        }
    }
}
