/*
 * config.c - load the YAML configuration into an immutable fm_config snapshot.
 *
 * The file is read into memory and walked twice with libyaml's event parser.
 *
 * Pass 1 checks structure only: YAML syntax, exactly one document, no anchors,
 * aliases or tags, and nesting of at most FM_CONFIG_MAX_DEPTH collections. It
 * stops at the first offending event, so a hostile file never makes libyaml
 * build deep state, and these errors are reported the same wherever they are.
 *
 * Pass 2 is a recursive descent over the events of the one document. Each
 * mapping of the schema has a table of its keys; a bit per key catches
 * duplicates, names missing from the table are unknown keys. Values are
 * type-checked as they arrive (scalars strictly: integers and booleans must
 * be plain, strings must not be YAML null) and written straight into the
 * snapshot, which is always in a state fm_config_free can release. Checks
 * that span sections (role references may precede auth.roles, a key hash may
 * repeat anywhere) run after the document, using marks recorded during the
 * walk so that their errors still point at a line.
 *
 * String values are expanded before they are checked: ${NAME} becomes the
 * environment variable, $${ a literal ${, in one left-to-right scan whose
 * output is not scanned again. Expanded text may be secret, so its buffer is
 * wiped whenever it is moved or freed, and a value that took text from the
 * environment is never echoed: messages show the scalar as written.
 *
 * Roles are resolved by depth-first search over their inherits lists, each
 * role once (memoised), in the order they were defined: a role on the current
 * path met again is a cycle, reported with the path; the search refuses to go
 * deeper than FM_ROLE_INHERIT_MAX links, which also bounds its recursion.
 *
 * Finally the key index: open addressing with linear probing, at least twice
 * as many slots as keys, each key placed at its digest's first 8 bytes modulo
 * the size. Digests are uniformly random, so probes stay short; a probe ends
 * at an empty slot, which the load factor guarantees to exist.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>
#include <yaml.h>

#include "clock.h"

#define CONFIG_FILE_MAX (16u * 1024u * 1024u)
#define KEY_TEXT_MAX 256 /* longest mapping key accepted; every valid one is far shorter */
#define WHERE_MAX 384    /* dotted location of a value, for messages */
#define ECHO_MAX 48      /* how much of an offending name is echoed back */
#define ENV_NAME_MAX 128
#define PERM_TEXT_MAX 32 /* longest valid permission string is "experiments:create" */
#define PERMS_MAX 32     /* more distinct valid permission strings than the grammar allows */
#define KEY_PREFIX_MAX 64
#define LEVEL_COUNT 4
#define EXPANDED_MAX 65536 /* longest string value after ${VAR} expansion */
#define SECRET_NAME "REDIS_PASSWORD"

static const char *const builtin_roles[] = {"admin", "researcher", "analyst"};
#define BUILTIN_COUNT (sizeof(builtin_roles) / sizeof(builtin_roles[0]))

static const char *const level_names[LEVEL_COUNT] = {"debug", "info", "warn", "error"};

/* A name that refers to a role, as read: where it was and what may be echoed of it. */
struct ref {
    yaml_mark_t at;
    bool from_env;          /* the name came from ${VAR}: echo raw, not the name */
    char raw[ECHO_MAX + 4]; /* the scalar as written, echoed */
};

enum { ROLE_NEW, ROLE_ACTIVE, ROLE_DONE };

/* What the file says about a role, kept beside cfg->auth.roles until roles are resolved. */
struct role_src {
    fm_perms grants, denies;
    char (*inherits)[FM_NAME_MAX]; /* auth.roles.<r>.inherits, ninherits of them */
    struct ref *inherit_refs;
    size_t ninherits;
    int state;       /* ROLE_NEW, ROLE_ACTIVE (on the search path) or ROLE_DONE */
    unsigned height; /* longest inherits chain below the role, once ROLE_DONE */
};

struct loader {
    const char *file;
    char *err;
    size_t errlen;
    bool failed;
    yaml_parser_t parser;
    bool parser_live;
    yaml_event_t ev;
    bool ev_live;
    fm_config *cfg;
    char *basedir;             /* absolute directory of the file, for relative paths */
    yaml_mark_t key_at;        /* mark of the key whose value is being read */
    char *value;               /* the current string scalar after expansion, or NULL */
    bool from_env;             /* the current string scalar took text from the environment */
    struct role_src *role_src; /* parallel to cfg->auth.roles */
    size_t nrole_src;
    bool password_seen;         /* redis.password_env or redis.password_file */
    unsigned builtin_redefined; /* bit i: builtin_roles[i] already given in auth.roles */
    bool api_keys_seen;         /* auth.api_keys or auth.apikeys */
    yaml_mark_t *key_marks;     /* one per key, users and keys in snapshot order */
    size_t nkey_marks;
    struct ref *role_refs; /* one per role reference, users in snapshot order */
    size_t nrole_refs;
    yaml_mark_t *user_key_marks; /* keys of the user being read, in user->keys order */
    size_t nuser_key_marks;
};

typedef int (*value_fn)(struct loader *l, const char *where, void *obj);
typedef int (*entry_fn)(struct loader *l, const char *where, const char *key, void *obj);

/* A key of a fixed mapping: parse reads its value, or, for a section, sub lists its keys. */
struct field {
    const char *name;
    value_fn parse;
    const struct field *sub;
    size_t nsub;
};

#define FIELDS(table) (table), (sizeof(table) / sizeof((table)[0]))
#define VALUE(name, fn)                                                                            \
    {                                                                                              \
        (name), (fn), NULL, 0                                                                      \
    }
#define SECTION(name, table)                                                                       \
    {                                                                                              \
        (name), NULL, FIELDS(table)                                                                \
    }

struct fields_walk {
    const struct field *fields;
    size_t n;
    uint32_t seen;
    void *obj;
};

struct perm_acc {
    fm_perms grants, denies;
    char seen[PERMS_MAX][PERM_TEXT_MAX];
    size_t nseen;
};

struct key_item {
    fm_key key;
    bool has_hash;
};

struct role_item {
    fm_role *role;
    struct role_src *src;
    struct perm_acc acc;
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct loader *l, const yaml_mark_t *at,
                                                         const char *fmt, ...)
{
    char msg[FM_CONFIG_ERR_MAX];
    va_list ap;

    if (l->failed)
        return -1;
    l->failed = true;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (l->err == NULL || l->errlen == 0)
        return -1;
    if (at != NULL)
        (void)snprintf(l->err, l->errlen, "%s:%zu:%zu: %s", l->file, at->line + 1, at->column + 1,
                       msg);
    else
        (void)snprintf(l->err, l->errlen, "%s:0:0: %s", l->file, msg);
    return -1;
}

static int out_of_memory(struct loader *l)
{
    return fail_at(l, NULL, "out of memory");
}

/* Names end up in one-line messages and logs: printable ASCII only, bounded. */
static void echo(const char *text, char out[ECHO_MAX + 4])
{
    size_t i;

    for (i = 0; i < ECHO_MAX && text[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)text[i];
        out[i] = (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\') ? '?' : (char)ch;
    }
    if (text[i] != '\0') {
        (void)snprintf(out + i, 4, "...");
        return;
    }
    out[i] = '\0';
}

/* What may be echoed of the current scalar: never text that the environment supplied. */
static void echo_value(const struct loader *l, const char *value, char out[ECHO_MAX + 4])
{
    echo(l->from_env ? (const char *)l->ev.data.scalar.value : value, out);
}

static void make_ref(const struct loader *l, struct ref *ref)
{
    ref->at = l->ev.start_mark;
    ref->from_env = l->from_env;
    echo((const char *)l->ev.data.scalar.value, ref->raw);
}

/*
 * Room for element n of an array whose capacity is implied by its length: the
 * next power of two >= max(n, 4). Returns the (maybe moved) array or NULL.
 */
static void *grow(void *arr, size_t n, size_t size)
{
    size_t cap;

    if (arr != NULL && (n < 4 || (n & (n - 1)) != 0))
        return arr;
    cap = n < 4 ? 4 : n * 2;
    if (cap > SIZE_MAX / size)
        return NULL;
    return realloc(arr, cap * size);
}

static int push_mark(struct loader *l, yaml_mark_t **arr, size_t *n, const yaml_mark_t *m)
{
    yaml_mark_t *p = grow(*arr, *n, sizeof(*p));

    if (p == NULL)
        return out_of_memory(l);
    *arr = p;
    p[(*n)++] = *m;
    return 0;
}

__attribute__((format(printf, 2, 3))) static int add_warning(struct loader *l, const char *fmt, ...)
{
    fm_config *cfg = l->cfg;
    char msg[FM_CONFIG_ERR_MAX];
    char **warnings = grow(cfg->warnings, cfg->nwarnings, sizeof(*warnings));
    va_list ap;

    if (warnings == NULL)
        return out_of_memory(l);
    cfg->warnings = warnings;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    warnings[cfg->nwarnings] = strdup(msg);
    if (warnings[cfg->nwarnings] == NULL)
        return out_of_memory(l);
    cfg->nwarnings++;
    return 0;
}

static int set_string(struct loader *l, char **slot, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return out_of_memory(l);
    free(*slot);
    *slot = copy;
    return 0;
}

static void join(char *out, size_t outlen, const char *where, const char *key)
{
    if (where[0] == '\0')
        (void)snprintf(out, outlen, "%s", key);
    else
        (void)snprintf(out, outlen, "%s.%s", where, key);
}

/* "[A-Za-z0-9_.-]{1,63}", and never "." or "..", since user names become directories. */
static bool valid_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len >= FM_NAME_MAX ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789_.-") != len)
        return false;
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* ---- events ---------------------------------------------------------------- */

static int syntax_error(struct loader *l)
{
    const yaml_parser_t *p = &l->parser;
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";

    if (p->error == YAML_MEMORY_ERROR)
        return out_of_memory(l);
    if (p->error == YAML_READER_ERROR)
        return fail_at(l, NULL, "YAML syntax error: %s at byte %zu", problem, p->problem_offset);
    if (p->context != NULL)
        return fail_at(l, &p->problem_mark, "YAML syntax error: %s (%s at line %zu)", problem,
                       p->context, p->context_mark.line + 1);
    return fail_at(l, &p->problem_mark, "YAML syntax error: %s", problem);
}

static int next(struct loader *l)
{
    if (l->ev_live) {
        yaml_event_delete(&l->ev);
        l->ev_live = false;
    }
    if (!yaml_parser_parse(&l->parser, &l->ev))
        return syntax_error(l);
    l->ev_live = true;
    return 0;
}

static void stop_parser(struct loader *l)
{
    if (l->ev_live) {
        yaml_event_delete(&l->ev);
        l->ev_live = false;
    }
    if (l->parser_live) {
        yaml_parser_delete(&l->parser);
        l->parser_live = false;
    }
}

static int start_parser(struct loader *l, const unsigned char *text, size_t len)
{
    stop_parser(l);
    if (!yaml_parser_initialize(&l->parser))
        return out_of_memory(l);
    l->parser_live = true;
    yaml_parser_set_input_string(&l->parser, text, len);
    return 0;
}

static int check_node(struct loader *l, const yaml_char_t *anchor, const yaml_char_t *tag)
{
    if (anchor != NULL)
        return fail_at(l, &l->ev.start_mark, "YAML anchors and aliases are not allowed");
    if (tag != NULL)
        return fail_at(l, &l->ev.start_mark, "YAML tags are not allowed");
    return 0;
}

static int enter(struct loader *l, int *depth)
{
    if (++*depth > FM_CONFIG_MAX_DEPTH)
        return fail_at(l, &l->ev.start_mark, "nesting deeper than %d levels", FM_CONFIG_MAX_DEPTH);
    return 0;
}

static int check_structure(struct loader *l, const unsigned char *text, size_t len)
{
    int depth = 0, docs = 0;

    if (start_parser(l, text, len) != 0)
        return -1;
    for (;;) {
        const yaml_event_t *e = &l->ev;

        if (next(l) != 0)
            return -1;
        switch (e->type) {
        case YAML_STREAM_END_EVENT:
            return docs == 0 ? fail_at(l, NULL, "configuration file is empty") : 0;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                return fail_at(l, &e->start_mark, "more than one YAML document");
            break;
        case YAML_ALIAS_EVENT:
            return fail_at(l, &e->start_mark, "YAML anchors and aliases are not allowed");
        case YAML_SCALAR_EVENT:
            if (check_node(l, e->data.scalar.anchor, e->data.scalar.tag) != 0)
                return -1;
            break;
        case YAML_SEQUENCE_START_EVENT:
            if (check_node(l, e->data.sequence_start.anchor, e->data.sequence_start.tag) != 0 ||
                enter(l, &depth) != 0)
                return -1;
            break;
        case YAML_MAPPING_START_EVENT:
            if (check_node(l, e->data.mapping_start.anchor, e->data.mapping_start.tag) != 0 ||
                enter(l, &depth) != 0)
                return -1;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
    }
}

/* ---- scalars --------------------------------------------------------------- */

static bool is_null(const yaml_event_t *e)
{
    const char *v = (const char *)e->data.scalar.value;

    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* An expanded value may hold a secret (a hash from the environment): wipe it. */
static void forget_value(struct loader *l)
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
static int append(struct loader *l, char **buf, size_t *len, size_t *cap, const char *piece,
                  size_t plen)
{
    char *bigger;
    size_t want;

    if (*len + plen + 1 <= *cap) {
        memcpy(*buf + *len, piece, plen);
        *len += plen;
        return 0;
    }
    want = 2 * (*len + plen + 1);
    bigger = malloc(want);
    if (bigger == NULL)
        return out_of_memory(l);
    if (*len > 0)
        memcpy(bigger, *buf, *len);
    memcpy(bigger + *len, piece, plen);
    wipe(*buf, *cap);
    *buf = bigger;
    *cap = want;
    *len += plen;
    return 0;
}

/*
 * raw with ${NAME} replaced into l->value. Errors name the variable at most,
 * never a value.
 */
static int expand(struct loader *l, const char *where, const char *raw)
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
            char var[ENV_NAME_MAX];

            if (strchr(name, '}') == NULL) {
                (void)fail_at(l, at, "%s: unterminated \"${\"", where);
                goto fail;
            }
            if (name[nlen] != '}' || nlen == 0 || nlen >= sizeof(var) ||
                (name[0] >= '0' && name[0] <= '9')) {
                (void)fail_at(l, at,
                              "%s: \"${\" must be followed by a variable name "
                              "[A-Za-z_][A-Za-z0-9_]* and \"}\"",
                              where);
                goto fail;
            }
            memcpy(var, name, nlen);
            var[nlen] = '\0';
            piece = getenv(var);
            if (piece == NULL) {
                (void)fail_at(l, at, "%s: environment variable %s is not set", where, var);
                goto fail;
            }
            plen = strlen(piece);
            p = name + nlen + 1;
            l->from_env = true;
        } else {
            p++;
        }
        if (plen > EXPANDED_MAX - len) {
            (void)fail_at(l, at, "%s is longer than %d bytes after expansion", where, EXPANDED_MAX);
            goto fail;
        }
        if (append(l, &buf, &len, &cap, piece, plen) != 0)
            goto fail;
    }
    if (append(l, &buf, &len, &cap, "", 0) != 0)
        goto fail;
    buf[len] = '\0';
    l->value = buf;
    return 0;
fail:
    wipe(buf, cap);
    return -1;
}

/*
 * The current event as a non-null scalar, or NULL after failing with "<where> must be <what>".
 * plain is for integers and booleans, which must be unquoted and are not expanded; every other
 * value is a string and is expanded.
 */
static const char *scalar(struct loader *l, const char *where, const char *what, bool plain)
{
    const yaml_event_t *e = &l->ev;

    l->from_env = false;
    if (e->type != YAML_SCALAR_EVENT || is_null(e) ||
        (plain && e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)) {
        (void)fail_at(l, &e->start_mark, "%s must be %s", where, what);
        return NULL;
    }
    if (strlen((const char *)e->data.scalar.value) != e->data.scalar.length) {
        (void)fail_at(l, &e->start_mark, "%s contains a NUL byte", where);
        return NULL;
    }
    forget_value(l);
    if (plain || strstr((const char *)e->data.scalar.value, "${") == NULL)
        return (const char *)e->data.scalar.value;
    return expand(l, where, (const char *)e->data.scalar.value) != 0 ? NULL : l->value;
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

static int int_value(struct loader *l, const char *where, long long min, long long max,
                     long long *out)
{
    char what[96];
    const char *v;

    (void)snprintf(what, sizeof(what), "an integer between %lld and %lld", min, max);
    v = scalar(l, where, what, true);
    if (v == NULL)
        return -1;
    if (!parse_integer(v, min, max, out))
        return fail_at(l, &l->ev.start_mark, "%s must be %s", where, what);
    return 0;
}

static int bool_value(struct loader *l, const char *where, bool *out)
{
    const char *v = scalar(l, where, "true or false", true);

    if (v == NULL)
        return -1;
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return fail_at(l, &l->ev.start_mark, "%s must be true or false", where);
    return 0;
}

/* Sets *isnull for YAML null (a setting that may be switched off), else behaves as scalar. */
static const char *nullable(struct loader *l, const char *where, const char *what, bool *isnull)
{
    *isnull = l->ev.type == YAML_SCALAR_EVENT && is_null(&l->ev);
    return *isnull ? "" : scalar(l, where, what, false);
}

/* Absolute as given, or relative to the configuration file's directory. */
static int resolve_path(struct loader *l, const char *where, const char *text, const char *prefix,
                        char **out)
{
    char buf[PATH_MAX + 8];
    int n;

    if (text[0] == '\0')
        return fail_at(l, &l->ev.start_mark, "%s must be a non-empty path", where);
    if (text[0] == '/')
        n = snprintf(buf, sizeof(buf), "%s%s", prefix, text);
    else
        n = snprintf(buf, sizeof(buf), "%s%s%s%s", prefix, l->basedir,
                     strcmp(l->basedir, "/") == 0 ? "" : "/", text);
    if (n < 0 || (size_t)n >= sizeof(buf) || (size_t)n - strlen(prefix) >= PATH_MAX)
        return fail_at(l, &l->ev.start_mark, "%s is too long", where);
    return set_string(l, out, buf);
}

static int path_value(struct loader *l, const char *where, char **out)
{
    const char *v = scalar(l, where, "a path", false);

    return v == NULL ? -1 : resolve_path(l, where, v, "", out);
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
static int endpoint_value(struct loader *l, const char *where, char **out)
{
    struct sockaddr_un sa;
    const char *v = scalar(l, where, "\"unix:/path\" or \"host:port\"", false);
    const char *colon;

    if (v == NULL)
        return -1;
    if (strncmp(v, "unix:", 5) == 0) {
        if (resolve_path(l, where, v + 5, "unix:", out) != 0)
            return -1;
        if (strlen(*out) - 5 >= sizeof(sa.sun_path))
            return fail_at(l, &l->ev.start_mark, "%s: unix socket path longer than %zu bytes",
                           where, sizeof(sa.sun_path) - 1);
        return 0;
    }
    colon = strrchr(v, ':');
    if (colon == NULL || !valid_host(v, (size_t)(colon - v)) || !valid_port(colon + 1))
        return fail_at(l, &l->ev.start_mark,
                       "%s must be \"unix:/path\" or \"host:port\" with port 1..65535", where);
    return set_string(l, out, v);
}

static int hash_value(struct loader *l, const char *where, unsigned char out[FM_KEY_HASH_BYTES])
{
    const char *v = scalar(l, where, "exactly 64 hex digits (the SHA-256 of the key)", false);
    size_t len = 0;

    if (v == NULL)
        return -1;
    /* Never echo the value: a raw key pasted here by mistake must not reach a log. */
    if (strlen(v) != 2 * FM_KEY_HASH_BYTES ||
        strspn(v, "0123456789abcdefABCDEF") != 2 * FM_KEY_HASH_BYTES ||
        sodium_hex2bin(out, FM_KEY_HASH_BYTES, v, 2 * FM_KEY_HASH_BYTES, NULL, &len, NULL) != 0 ||
        len != FM_KEY_HASH_BYTES)
        return fail_at(l, &l->ev.start_mark,
                       "%s must be exactly 64 hex digits (the SHA-256 of the key)", where);
    return 0;
}

/* ---- collections ------------------------------------------------------------ */

/* Completes "... %s%s" with "in <where>", or "at top level" for the root mapping. */
static const char *in(const char *where)
{
    return where[0] != '\0' ? "in " : "at top level";
}

/* The current event must start a mapping; fn gets each key with its value event read. */
static int each_entry(struct loader *l, const char *where, const char *what, entry_fn fn, void *obj)
{
    char key[KEY_TEXT_MAX];

    if (l->ev.type != YAML_MAPPING_START_EVENT)
        return fail_at(l, &l->ev.start_mark, "%s must be %s", where[0] ? where : "the top level",
                       what);
    for (;;) {
        const yaml_event_t *e = &l->ev;

        if (next(l) != 0)
            return -1;
        if (e->type == YAML_MAPPING_END_EVENT)
            return 0;
        if (e->type != YAML_SCALAR_EVENT || is_null(e) ||
            strlen((const char *)e->data.scalar.value) != e->data.scalar.length)
            return fail_at(l, &e->start_mark, "keys %s%s must be strings", in(where), where);
        if (e->data.scalar.length >= sizeof(key))
            return fail_at(l, &e->start_mark, "key too long %s%s", in(where), where);
        memcpy(key, e->data.scalar.value, e->data.scalar.length + 1);
        l->key_at = e->start_mark;
        if (next(l) != 0 || fn(l, where, key, obj) != 0)
            return -1;
    }
}

static int fields_value(struct loader *l, const char *where, const struct field *fields, size_t n,
                        void *obj);

static int field_entry(struct loader *l, const char *where, const char *key, void *arg)
{
    struct fields_walk *w = arg;
    char sub[WHERE_MAX], shown[ECHO_MAX + 4];
    size_t i;

    for (i = 0; i < w->n && strcmp(w->fields[i].name, key) != 0; i++)
        ;
    echo(key, shown);
    if (i == w->n)
        return fail_at(l, &l->key_at, "unknown key \"%s\" %s%s", shown, in(where), where);
    if (w->seen & (1u << i))
        return fail_at(l, &l->key_at, "duplicate key \"%s\" %s%s", shown, in(where), where);
    w->seen |= 1u << i;
    join(sub, sizeof(sub), where, key);
    if (w->fields[i].parse == NULL)
        return fields_value(l, sub, w->fields[i].sub, w->fields[i].nsub, w->obj);
    return w->fields[i].parse(l, sub, w->obj);
}

static int fields_value(struct loader *l, const char *where, const struct field *fields, size_t n,
                        void *obj)
{
    struct fields_walk w = {fields, n, 0, obj};

    return each_entry(l, where, "a mapping", field_entry, &w);
}

static int list_start(struct loader *l, const char *where, const char *what)
{
    if (l->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail_at(l, &l->ev.start_mark, "%s must be %s", where, what);
    return 0;
}

/* Reads the next list item; 1 at the end of the list. */
static int list_next(struct loader *l, const char *where, size_t i, char *item, size_t itemlen)
{
    if (next(l) != 0)
        return -1;
    if (l->ev.type == YAML_SEQUENCE_END_EVENT)
        return 1;
    (void)snprintf(item, itemlen, "%s[%zu]", where, i);
    return 0;
}

static int cidr_list_value(struct loader *l, const char *where, fm_ipacl *acl)
{
    char item[WHERE_MAX], why[FM_CONFIG_ERR_MAX];
    yaml_mark_t at = l->ev.start_mark;
    int rc;

    if (list_start(l, where, "a list of CIDR blocks") != 0)
        return -1;
    for (size_t i = 0; (rc = list_next(l, where, i, item, sizeof(item))) == 0; i++) {
        const char *v = scalar(l, item, "a CIDR block", false);
        fm_cidr cidr;

        if (v == NULL)
            return -1;
        if (fm_ipacl_parse_cidr(v, &cidr, why, sizeof(why)) != 0) {
            char raw[ECHO_MAX + 4];

            /* why quotes the value, which here came from the environment. */
            echo_value(l, v, raw);
            if (l->from_env)
                return fail_at(l, &l->ev.start_mark, "%s: \"%s\" is not a valid CIDR block", item,
                               raw);
            return fail_at(l, &l->ev.start_mark, "%s: %s", item, why);
        }
        if (fm_ipacl_add(acl, &cidr) != 0)
            return out_of_memory(l);
    }
    /* An empty list would mean "no restriction": say so by omitting the key, not by accident. */
    if (rc >= 0 && acl->count == 0)
        return fail_at(l, &at,
                       "%s is empty; omit it to allow every address, or list the allowed networks",
                       where);
    return rc < 0 ? -1 : 0;
}

static int perm_entry(struct loader *l, const char *where, const char *key, void *arg)
{
    struct perm_acc *acc = arg;
    char why[FM_CONFIG_ERR_MAX], sub[WHERE_MAX], shown[ECHO_MAX + 4];
    fm_perms bits;
    bool allow;

    if (fm_rbac_parse(key, &bits, why, sizeof(why)) != 0)
        return fail_at(l, &l->key_at, "%s: %s", where, why);
    for (size_t i = 0; i < acc->nseen; i++) {
        if (strcmp(acc->seen[i], key) == 0) {
            echo(key, shown);
            return fail_at(l, &l->key_at, "duplicate key \"%s\" in %s", shown, where);
        }
    }
    if (acc->nseen == PERMS_MAX || strlen(key) >= PERM_TEXT_MAX)
        return fail_at(l, &l->key_at, "too many permissions in %s", where);
    (void)snprintf(acc->seen[acc->nseen++], PERM_TEXT_MAX, "%s", key);
    join(sub, sizeof(sub), where, key);
    if (bool_value(l, sub, &allow) != 0)
        return -1;
    if (allow)
        acc->grants |= bits;
    else
        acc->denies |= bits;
    return 0;
}

static int perms_value(struct loader *l, const char *where, struct perm_acc *acc)
{
    return each_entry(l, where, "a mapping of permissions to true or false", perm_entry, acc);
}

/* ---- server ------------------------------------------------------------------ */

static int server_listen(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return endpoint_value(l, where, &l->cfg->server.listen);
}

static int server_workers(struct loader *l, const char *where, void *obj)
{
    long long v;

    (void)obj;
    if (int_value(l, where, 1, 256, &v) != 0)
        return -1;
    l->cfg->server.workers = (int)v;
    return 0;
}

static int server_max_body(struct loader *l, const char *where, void *obj)
{
    long long v;

    (void)obj;
    if (int_value(l, where, 1, 64 * 1024 * 1024, &v) != 0)
        return -1;
    l->cfg->server.max_body_bytes = (size_t)v;
    return 0;
}

/* Octal text, plain or quoted: YAML would read a plain 0660 as 432 or 660 depending on version. */
static int server_socket_mode(struct loader *l, const char *where, void *obj)
{
    const char *v = scalar(l, where, "octal digits like \"0660\"", false);
    size_t len;
    unsigned mode = 0;

    (void)obj;
    if (v == NULL)
        return -1;
    len = strlen(v);
    if ((len != 3 && len != 4) || strspn(v, "01234567") != len || (len == 4 && v[0] != '0'))
        return fail_at(l, &l->ev.start_mark, "%s must be octal digits like \"0660\"", where);
    for (size_t i = 0; i < len; i++)
        mode = mode * 8 + (unsigned)(v[i] - '0');
    if ((mode & 07) != 0)
        return fail_at(l, &l->ev.start_mark, "%s must not grant any permission to other users",
                       where);
    l->cfg->server.socket_mode = (mode_t)mode;
    return 0;
}

static int server_socket_group(struct loader *l, const char *where, void *obj)
{
    bool isnull;
    const char *v = nullable(l, where, "a group name", &isnull);

    (void)obj;
    if (v == NULL)
        return -1;
    if (isnull) {
        free(l->cfg->server.socket_group);
        l->cfg->server.socket_group = NULL;
        return 0;
    }
    if (!valid_name(v))
        return fail_at(l, &l->ev.start_mark,
                       "%s must be a group name of 1 to 63 characters [A-Za-z0-9_.-]", where);
    return set_string(l, &l->cfg->server.socket_group, v);
}

static int tls_enabled(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return bool_value(l, where, &l->cfg->server.tls_enabled);
}

static int tls_cert_file(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return path_value(l, where, &l->cfg->server.tls_cert_file);
}

static int tls_key_file(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return path_value(l, where, &l->cfg->server.tls_key_file);
}

static const struct field tls_fields[] = {
    VALUE("enabled", tls_enabled),
    VALUE("cert_file", tls_cert_file),
    VALUE("key_file", tls_key_file),
};

static int server_tls(struct loader *l, const char *where, void *obj)
{
    const fm_config *cfg = l->cfg;
    yaml_mark_t at = l->ev.start_mark;

    if (fields_value(l, where, FIELDS(tls_fields), obj) != 0)
        return -1;
    if (cfg->server.tls_enabled &&
        (cfg->server.tls_cert_file == NULL || cfg->server.tls_key_file == NULL))
        return fail_at(l, &at, "%s.cert_file and %s.key_file are required when %s.enabled is true",
                       where, where, where);
    return 0;
}

static const struct field server_fields[] = {
    VALUE("listen", server_listen),
    VALUE("workers", server_workers),
    VALUE("max_body_bytes", server_max_body),
    VALUE("socket_mode", server_socket_mode),
    VALUE("socket_group", server_socket_group),
    VALUE("tls", server_tls),
};

/* ---- rates ------------------------------------------------------------------- */

/* obj is a user's or a role's bucket, or NULL inside the top-level rate_limit section. */
static int rate_rpm(struct loader *l, const char *where, void *obj)
{
    fm_rate *rate = obj != NULL ? obj : &l->cfg->rate_limit.rate;
    long long v;

    if (int_value(l, where, 1, 1000000, &v) != 0)
        return -1;
    rate->requests_per_minute = (uint32_t)v;
    return 0;
}

static int rate_burst(struct loader *l, const char *where, void *obj)
{
    fm_rate *rate = obj != NULL ? obj : &l->cfg->rate_limit.rate;
    long long v;

    if (int_value(l, where, 1, 1000000, &v) != 0)
        return -1;
    rate->burst = (uint32_t)v;
    return 0;
}

static const struct field bucket_fields[] = {
    VALUE("requests_per_minute", rate_rpm),
    VALUE("burst", rate_burst),
};

/* ---- auth -------------------------------------------------------------------- */

static int auth_enabled(struct loader *l, const char *where, void *obj)
{
    bool enabled;

    (void)obj;
    if (bool_value(l, where, &enabled) != 0)
        return -1;
    if (!enabled)
        return fail_at(l, &l->ev.start_mark,
                       "%s: false is refused: anonymous access is not supported", where);
    return 0;
}

static int auth_ip_whitelist(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return cidr_list_value(l, where, &l->cfg->auth.ip_whitelist);
}

/* A role name from a list, checked against the names already in that list. */
static const char *role_name_item(struct loader *l, const char *item,
                                  const char (*seen)[FM_NAME_MAX], size_t nseen)
{
    const char *v = scalar(l, item, "a role name", false);
    char raw[ECHO_MAX + 4];

    if (v == NULL)
        return NULL;
    echo_value(l, v, raw);
    if (!valid_name(v)) {
        (void)fail_at(l, &l->ev.start_mark, "%s: invalid role name \"%s\"", item, raw);
        return NULL;
    }
    for (size_t j = 0; j < nseen; j++) {
        if (strcmp(seen[j], v) == 0) {
            (void)fail_at(l, &l->ev.start_mark, "%s: role \"%s\" is listed twice", item, raw);
            return NULL;
        }
    }
    return v;
}

static int role_permissions(struct loader *l, const char *where, void *obj)
{
    struct role_item *item = obj;

    return perms_value(l, where, &item->acc);
}

/*
 * Appends role name v as (*names)[n] and a reference to where it was written
 * as (*refs)[nrefs], growing both arrays; the caller counts. Role names are
 * resolved once the whole file is read (roles may be defined after use), and
 * the reference keeps the file:line:col for that later error.
 */
static int push_role_name(struct loader *l, const char *v, char (**names)[FM_NAME_MAX], size_t n,
                          struct ref **refs, size_t nrefs)
{
    char(*grown_names)[FM_NAME_MAX] = grow(*names, n, sizeof(**names));
    struct ref *grown_refs;

    if (grown_names == NULL)
        return out_of_memory(l);
    *names = grown_names;
    grown_refs = grow(*refs, nrefs, sizeof(**refs));
    if (grown_refs == NULL)
        return out_of_memory(l);
    *refs = grown_refs;
    (void)snprintf(grown_names[n], FM_NAME_MAX, "%s", v);
    make_ref(l, &grown_refs[nrefs]);
    return 0;
}

/* Names are checked against auth.roles once the whole file is read: roles come in any order. */
static int role_inherits(struct loader *l, const char *where, void *obj)
{
    struct role_src *src = ((struct role_item *)obj)->src;
    char item[WHERE_MAX];
    int rc;

    if (list_start(l, where, "a list of role names") != 0)
        return -1;
    for (size_t i = 0; (rc = list_next(l, where, i, item, sizeof(item))) == 0; i++) {
        const char *v =
            role_name_item(l, item, (const char(*)[FM_NAME_MAX])src->inherits, src->ninherits);

        if (v == NULL || push_role_name(l, v, &src->inherits, src->ninherits, &src->inherit_refs,
                                        src->ninherits) != 0)
            return -1;
        src->ninherits++;
    }
    return rc < 0 ? -1 : 0;
}

/* Fields left out stay 0 and take the global default once the whole file is read. */
static int role_rate_limit(struct loader *l, const char *where, void *obj)
{
    fm_role *role = ((struct role_item *)obj)->role;

    role->has_rate = true;
    return fields_value(l, where, FIELDS(bucket_fields), &role->rate);
}

static const struct field role_fields[] = {
    VALUE("permissions", role_permissions),
    VALUE("inherits", role_inherits),
    VALUE("rate_limit", role_rate_limit),
};

/* Appends an empty role named name to cfg->auth.roles and its source to l->role_src. */
static int add_role(struct loader *l, const char *name)
{
    fm_config *cfg = l->cfg;
    struct role_src *src = grow(l->role_src, l->nrole_src, sizeof(*src));
    fm_role *roles;

    if (src == NULL)
        return out_of_memory(l);
    l->role_src = src;
    roles = grow(cfg->auth.roles, cfg->auth.nroles, sizeof(*roles));
    if (roles == NULL)
        return out_of_memory(l);
    cfg->auth.roles = roles;
    memset(&src[l->nrole_src++], 0, sizeof(*src));
    memset(&roles[cfg->auth.nroles], 0, sizeof(*roles));
    (void)snprintf(roles[cfg->auth.nroles++].name, FM_NAME_MAX, "%s", name);
    return 0;
}

static int role_entry(struct loader *l, const char *where, const char *key, void *obj)
{
    fm_config *cfg = l->cfg;
    char sub[WHERE_MAX], shown[ECHO_MAX + 4];
    struct role_item item;
    size_t i;

    (void)obj;
    echo(key, shown);
    if (!valid_name(key))
        return fail_at(l, &l->key_at,
                       "invalid role name \"%s\" in %s: use 1 to 63 characters [A-Za-z0-9_.-], "
                       "not \".\" or \"..\"",
                       shown, where);
    for (i = 0; i < cfg->auth.nroles && strcmp(cfg->auth.roles[i].name, key) != 0; i++)
        ;
    if (i < BUILTIN_COUNT && !(l->builtin_redefined & (1u << i))) {
        l->builtin_redefined |= 1u << i;
    } else if (i < cfg->auth.nroles) {
        return fail_at(l, &l->key_at, "duplicate key \"%s\" in %s", shown, where);
    } else if (add_role(l, key) != 0) {
        return -1;
    }
    memset(&item, 0, sizeof(item));
    item.role = &cfg->auth.roles[i];
    item.src = &l->role_src[i];
    join(sub, sizeof(sub), where, key);
    if (fields_value(l, sub, FIELDS(role_fields), &item) != 0)
        return -1;
    /* A redefined built-in keeps nothing of its built-in grants: the file replaces it whole. */
    item.src->grants = item.acc.grants;
    item.src->denies = item.acc.denies;
    return 0;
}

static int auth_roles(struct loader *l, const char *where, void *obj)
{
    return each_entry(l, where, "a mapping of role names", role_entry, obj);
}

/* ---- users ------------------------------------------------------------------- */

static int add_key(struct loader *l, fm_user *user, const fm_key *key, const yaml_mark_t *at,
                   bool first)
{
    fm_key *keys = grow(user->keys, user->nkeys, sizeof(*keys));
    yaml_mark_t *marks;

    if (keys == NULL)
        return out_of_memory(l);
    user->keys = keys;
    marks = grow(l->user_key_marks, l->nuser_key_marks, sizeof(*marks));
    if (marks == NULL)
        return out_of_memory(l);
    l->user_key_marks = marks;
    if (first) {
        memmove(&keys[1], &keys[0], user->nkeys * sizeof(*keys));
        memmove(&marks[1], &marks[0], l->nuser_key_marks * sizeof(*marks));
        keys[0] = *key;
        marks[0] = *at;
    } else {
        keys[user->nkeys] = *key;
        marks[l->nuser_key_marks] = *at;
    }
    user->nkeys++;
    l->nuser_key_marks++;
    return 0;
}

static int user_hash(struct loader *l, const char *where, void *obj)
{
    yaml_mark_t at = l->ev.start_mark;
    fm_key key;

    memset(&key, 0, sizeof(key));
    if (hash_value(l, where, key.hash) != 0)
        return -1;
    /* A user's own hash comes first, whichever order the file gives hash and keys in. */
    return add_key(l, obj, &key, &at, true);
}

static int key_hash(struct loader *l, const char *where, void *obj)
{
    struct key_item *item = obj;

    item->has_hash = true;
    return hash_value(l, where, item->key.hash);
}

static int key_expires(struct loader *l, const char *where, void *obj)
{
    struct key_item *item = obj;
    const char *v = scalar(l, where, "an RFC 3339 time or a YYYY-MM-DD date", false);

    if (v == NULL)
        return -1;
    if (fm_clock_parse_rfc3339(v, &item->key.expires) != 0 || item->key.expires <= 0)
        return fail_at(l, &l->ev.start_mark,
                       "%s must be an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31) "
                       "after 1970",
                       where);
    return 0;
}

static int key_label(struct loader *l, const char *where, void *obj)
{
    struct key_item *item = obj;
    const char *v = scalar(l, where, "a string", false);
    bool ok;

    if (v == NULL)
        return -1;
    ok = strlen(v) < sizeof(item->key.label);
    for (size_t i = 0; ok && v[i] != '\0'; i++)
        ok = (unsigned char)v[i] >= 0x20 && v[i] != 0x7f;
    if (!ok)
        return fail_at(l, &l->ev.start_mark,
                       "%s must be at most %zu characters without control characters", where,
                       sizeof(item->key.label) - 1);
    (void)snprintf(item->key.label, sizeof(item->key.label), "%s", v);
    return 0;
}

static const struct field key_fields[] = {
    VALUE("hash", key_hash),
    VALUE("expires", key_expires),
    VALUE("label", key_label),
};

static int user_keys(struct loader *l, const char *where, void *obj)
{
    char item[WHERE_MAX];
    int rc;

    if (list_start(l, where, "a list of keys") != 0)
        return -1;
    for (size_t i = 0; (rc = list_next(l, where, i, item, sizeof(item))) == 0; i++) {
        yaml_mark_t at = l->ev.start_mark;
        struct key_item k;

        memset(&k, 0, sizeof(k));
        if (fields_value(l, item, FIELDS(key_fields), &k) != 0)
            return -1;
        if (!k.has_hash)
            return fail_at(l, &at, "%s.hash is required", item);
        if (add_key(l, obj, &k.key, &at, false) != 0)
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

static int user_admin(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;

    return bool_value(l, where, &user->admin);
}

static int user_roles(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;
    char item[WHERE_MAX];
    int rc;

    if (list_start(l, where, "a list of role names") != 0)
        return -1;
    for (size_t i = 0; (rc = list_next(l, where, i, item, sizeof(item))) == 0; i++) {
        const char *v =
            role_name_item(l, item, (const char(*)[FM_NAME_MAX])user->roles, user->nroles);

        if (v == NULL ||
            push_role_name(l, v, &user->roles, user->nroles, &l->role_refs, l->nrole_refs) != 0)
            return -1;
        user->nroles++;
        l->nrole_refs++;
    }
    return rc < 0 ? -1 : 0;
}

static int user_permissions(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;
    struct perm_acc acc;

    memset(&acc, 0, sizeof(acc));
    if (perms_value(l, where, &acc) != 0)
        return -1;
    user->grants = acc.grants;
    user->denies = acc.denies;
    return 0;
}

static int user_ip_whitelist(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;

    return cidr_list_value(l, where, &user->ip_whitelist);
}

/* Fields left out stay 0 and take the global default once the whole file is read. */
static int user_rate_limit(struct loader *l, const char *where, void *obj)
{
    fm_user *user = obj;

    user->has_rate = true;
    return fields_value(l, where, FIELDS(bucket_fields), &user->rate);
}

static const struct field user_fields[] = {
    VALUE("hash", user_hash),
    VALUE("keys", user_keys),
    VALUE("admin", user_admin),
    VALUE("roles", user_roles),
    VALUE("permissions", user_permissions),
    VALUE("ip_whitelist", user_ip_whitelist),
    VALUE("rate_limit", user_rate_limit),
};

static int user_entry(struct loader *l, const char *where, const char *key, void *obj)
{
    fm_config *cfg = l->cfg;
    yaml_mark_t at = l->key_at;
    char sub[WHERE_MAX], shown[ECHO_MAX + 4];
    fm_user *users, *user;

    (void)obj;
    echo(key, shown);
    if (!valid_name(key))
        return fail_at(l, &at,
                       "invalid user name \"%s\" in %s: use 1 to 63 characters [A-Za-z0-9_.-], "
                       "not \".\" or \"..\"",
                       shown, where);
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        if (strcmp(cfg->auth.users[i].name, key) == 0)
            return fail_at(l, &at, "duplicate key \"%s\" in %s", shown, where);
    }
    users = grow(cfg->auth.users, cfg->auth.nusers, sizeof(*users));
    if (users == NULL)
        return out_of_memory(l);
    cfg->auth.users = users;
    user = &users[cfg->auth.nusers++];
    memset(user, 0, sizeof(*user));
    (void)snprintf(user->name, sizeof(user->name), "%s", key);
    l->nuser_key_marks = 0;
    join(sub, sizeof(sub), where, key);
    if (fields_value(l, sub, FIELDS(user_fields), user) != 0)
        return -1;
    if (user->nkeys == 0)
        return fail_at(l, &at, "user \"%s\" has no key: give hash or keys", shown);
    for (size_t i = 0; i < l->nuser_key_marks; i++) {
        if (push_mark(l, &l->key_marks, &l->nkey_marks, &l->user_key_marks[i]) != 0)
            return -1;
    }
    return 0;
}

static int auth_api_keys(struct loader *l, const char *where, void *obj)
{
    yaml_mark_t at = l->ev.start_mark;

    if (l->api_keys_seen)
        return fail_at(l, &l->key_at,
                       "auth.api_keys and auth.apikeys are the same setting: give only one");
    l->api_keys_seen = true;
    if (each_entry(l, where, "a mapping of user names", user_entry, obj) != 0)
        return -1;
    if (l->cfg->auth.nusers == 0)
        return fail_at(l, &at, "%s must define at least one user", where);
    return 0;
}

static const struct field auth_fields[] = {
    VALUE("enabled", auth_enabled),  VALUE("ip_whitelist", auth_ip_whitelist),
    VALUE("roles", auth_roles),      VALUE("api_keys", auth_api_keys),
    VALUE("apikeys", auth_api_keys),
};

/* ---- rate_limit, redis, logging, data ---------------------------------------- */

static int rate_on_redis_error(struct loader *l, const char *where, void *obj)
{
    const char *v = scalar(l, where, "deny or allow", false);

    (void)obj;
    if (v == NULL)
        return -1;
    if (strcmp(v, "deny") == 0)
        l->cfg->rate_limit.on_redis_error_allow = false;
    else if (strcmp(v, "allow") == 0)
        l->cfg->rate_limit.on_redis_error_allow = true;
    else
        return fail_at(l, &l->ev.start_mark, "%s must be deny or allow", where);
    return 0;
}

static int uint_value(struct loader *l, const char *where, long long max, uint32_t *out)
{
    long long v;

    if (int_value(l, where, 1, max, &v) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int failures_max(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return uint_value(l, where, 1000000, &l->cfg->rate_limit.auth_failures.max);
}

static int failures_window(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return uint_value(l, where, 86400, &l->cfg->rate_limit.auth_failures.window_seconds);
}

static int failures_block(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return uint_value(l, where, 604800, &l->cfg->rate_limit.auth_failures.block_seconds);
}

static const struct field auth_failures_fields[] = {
    VALUE("max", failures_max),
    VALUE("window_seconds", failures_window),
    VALUE("block_seconds", failures_block),
};

static const struct field rate_fields[] = {
    VALUE("requests_per_minute", rate_rpm),
    VALUE("burst", rate_burst),
    VALUE("on_redis_error", rate_on_redis_error),
    SECTION("auth_failures", auth_failures_fields),
};

static int redis_addr(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return endpoint_value(l, where, &l->cfg->redis.addr);
}

/* The two ways of giving the password exclude each other, whichever comes first. */
static int password_once(struct loader *l)
{
    if (l->password_seen)
        return fail_at(
            l, &l->key_at,
            "redis.password_env and redis.password_file are alternatives: give only one");
    l->password_seen = true;
    return 0;
}

static int set_password(struct loader *l, const char *value, size_t len, const char *kind,
                        const char *source)
{
    fm_config *cfg = l->cfg;
    char desc[PATH_MAX + 16];

    cfg->redis.password = malloc(len + 1);
    if (cfg->redis.password == NULL)
        return out_of_memory(l);
    memcpy(cfg->redis.password, value, len);
    cfg->redis.password[len] = '\0';
    (void)snprintf(desc, sizeof(desc), "%s %s", kind, source);
    return set_string(l, &cfg->redis.password_source, desc);
}

/* The value is resolved now, so a missing secret stops the load, not the first request. */
static int redis_password_env(struct loader *l, const char *where, void *obj)
{
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    bool isnull;
    const char *name;
    const char *value;
    char raw[ECHO_MAX + 4];
    size_t len;

    (void)obj;
    if (password_once(l) != 0)
        return -1;
    name = nullable(l, where, "an environment variable name", &isnull);
    if (name == NULL)
        return -1;
    if (isnull)
        return 0;
    len = strlen(name);
    if (len == 0 || len >= ENV_NAME_MAX || strchr(first, name[0]) == NULL ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") != len)
        return fail_at(l, &l->ev.start_mark,
                       "%s must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", where);
    echo_value(l, name, raw);
    value = getenv(name);
    if (value == NULL)
        return fail_at(l, &l->ev.start_mark, "%s: environment variable %s is not set", where,
                       l->from_env ? raw : name);
    if (value[0] == '\0')
        return fail_at(l, &l->ev.start_mark, "%s: environment variable %s is empty", where,
                       l->from_env ? raw : name);
    return set_password(l, value, strlen(value), "env", name);
}

/* Strips one pair of matching quotes, as systemd's EnvironmentFile= does. */
static void unquote(const char **value, size_t *len)
{
    const char *v = *value;

    if (*len >= 2 && (v[0] == '"' || v[0] == '\'') && v[*len - 1] == v[0]) {
        (*value)++;
        *len -= 2;
    }
}

/*
 * The password in text (len bytes, one trailing newline already removed): the
 * whole text when it is one line without '=', else the value of the one
 * REDIS_PASSWORD= line of an environment file. NULL with *why set otherwise.
 */
static const char *secret_in(const char *text, size_t len, size_t *vlen, const char **why)
{
    static const char key[] = SECRET_NAME "=";
    const char *found = NULL;
    size_t flen = 0;

    if (memchr(text, '\n', len) == NULL && memchr(text, '=', len) == NULL) {
        *vlen = len > 0 && text[len - 1] == '\r' ? len - 1 : len;
        return text;
    }
    for (const char *line = text; line < text + len;) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t llen = nl != NULL ? (size_t)(nl - line) : (size_t)(text + len - line);

        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen >= sizeof(key) - 1 && memcmp(line, key, sizeof(key) - 1) == 0) {
            if (found != NULL) {
                *why = "has more than one " SECRET_NAME "= line";
                return NULL;
            }
            found = line + sizeof(key) - 1;
            flen = llen - (sizeof(key) - 1);
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    if (found == NULL) {
        *why = "has no " SECRET_NAME "= line (a bare password must be one line without '=')";
        return NULL;
    }
    unquote(&found, &flen);
    *vlen = flen;
    return found;
}

/*
 * Reads the secret file at path. A file others may read or replace is refused
 * outright: the password would not be secret. Messages name the file (as
 * written, when its name came from the environment) and never its content.
 */
static int read_secret(struct loader *l, const yaml_mark_t *at, const char *where, const char *path,
                       const char *name)
{
    unsigned char buf[FM_SECRET_FILE_MAX + 1];
    const char *why = NULL, *value;
    struct stat st;
    size_t got = 0, vlen = 0;
    int fd, rc = -1;

    /* O_NONBLOCK: a FIFO planted at the path must not hang the load; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return fail_at(l, at, "%s: %s: cannot open: %s", where, name, strerror(errno));
    if (fstat(fd, &st) != 0) {
        (void)fail_at(l, at, "%s: %s: cannot stat: %s", where, name, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        (void)fail_at(l, at, "%s: %s is not a regular file", where, name);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        (void)fail_at(l, at,
                      "%s: %s is accessible by group or other users (mode %04o): make it 0600 "
                      "or 0400",
                      where, name, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            (void)fail_at(l, at, "%s: %s: cannot read: %s", where, name, strerror(errno));
            goto out;
        }
        if (n == 0 || (got += (size_t)n) == sizeof(buf))
            break;
    }
    if (got > FM_SECRET_FILE_MAX) {
        (void)fail_at(l, at, "%s: %s is larger than %d bytes", where, name, FM_SECRET_FILE_MAX);
        goto out;
    }
    if (got == 0) {
        (void)fail_at(l, at, "%s: %s is empty", where, name);
        goto out;
    }
    if (memchr(buf, '\0', got) != NULL) {
        (void)fail_at(l, at, "%s: %s contains a NUL byte", where, name);
        goto out;
    }
    if (buf[got - 1] == '\n')
        got--;
    value = secret_in((const char *)buf, got, &vlen, &why);
    if (value == NULL)
        (void)fail_at(l, at, "%s: %s %s", where, name, why);
    else if (vlen == 0)
        (void)fail_at(l, at, "%s: %s holds an empty password", where, name);
    else
        rc = set_password(l, value, vlen, "file", path);
out:
    sodium_memzero(buf, sizeof(buf));
    (void)close(fd);
    return rc;
}

static int redis_password_file(struct loader *l, const char *where, void *obj)
{
    yaml_mark_t at = l->ev.start_mark;
    char raw[ECHO_MAX + 4];
    const char *v;
    char *path = NULL;
    int rc;

    (void)obj;
    if (password_once(l) != 0)
        return -1;
    v = scalar(l, where, "a path", false);
    if (v == NULL || resolve_path(l, where, v, "", &path) != 0)
        return -1;
    echo_value(l, v, raw);
    rc = read_secret(l, &at, where, path, l->from_env ? raw : path);
    free(path);
    return rc;
}

static int redis_db(struct loader *l, const char *where, void *obj)
{
    long long v;

    (void)obj;
    if (int_value(l, where, 0, 15, &v) != 0)
        return -1;
    l->cfg->redis.db = (int)v;
    return 0;
}

static int redis_key_prefix(struct loader *l, const char *where, void *obj)
{
    const char *v = scalar(l, where, "a string", false);
    size_t len;

    (void)obj;
    if (v == NULL)
        return -1;
    len = strlen(v);
    if (len == 0 || len > KEY_PREFIX_MAX ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.-") != len)
        return fail_at(l, &l->ev.start_mark, "%s must be 1 to %d characters [A-Za-z0-9:_.-]", where,
                       KEY_PREFIX_MAX);
    return set_string(l, &l->cfg->redis.key_prefix, v);
}

static int redis_timeout(struct loader *l, const char *where, void *obj)
{
    long long v;

    (void)obj;
    if (int_value(l, where, 1, 60000, &v) != 0)
        return -1;
    l->cfg->redis.timeout_ms = (int)v;
    return 0;
}

static const struct field redis_fields[] = {
    VALUE("addr", redis_addr),
    VALUE("password_env", redis_password_env),
    VALUE("password_file", redis_password_file),
    VALUE("db", redis_db),
    VALUE("key_prefix", redis_key_prefix),
    VALUE("timeout_ms", redis_timeout),
};

static int logging_level(struct loader *l, const char *where, void *obj)
{
    const char *v = scalar(l, where, "debug, info, warn or error", false);

    (void)obj;
    if (v == NULL)
        return -1;
    for (int i = 0; i < LEVEL_COUNT; i++) {
        if (strcmp(v, level_names[i]) == 0) {
            l->cfg->logging.level = (fm_log_level)i;
            return 0;
        }
    }
    return fail_at(l, &l->ev.start_mark, "%s must be debug, info, warn or error", where);
}

static int logging_audit(struct loader *l, const char *where, void *obj)
{
    bool audit;

    (void)obj;
    if (bool_value(l, where, &audit) != 0)
        return -1;
    if (!audit)
        return fail_at(l, &l->ev.start_mark, "%s: false is refused: the audit trail is mandatory",
                       where);
    return 0;
}

static int logging_file(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return path_value(l, where, &l->cfg->logging.file);
}

static int logging_api_file(struct loader *l, const char *where, void *obj)
{
    bool isnull;
    const char *v = nullable(l, where, "a path", &isnull);

    (void)obj;
    if (v == NULL)
        return -1;
    if (isnull) {
        free(l->cfg->logging.api_file);
        l->cfg->logging.api_file = NULL;
        return 0;
    }
    return resolve_path(l, where, v, "", &l->cfg->logging.api_file);
}

static const struct field logging_fields[] = {
    VALUE("level", logging_level),
    VALUE("audit", logging_audit),
    VALUE("file", logging_file),
    VALUE("api_file", logging_api_file),
};

static int data_experiments_dir(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return path_value(l, where, &l->cfg->data.experiments_dir);
}

static const struct field data_fields[] = {
    VALUE("experiments_dir", data_experiments_dir),
};

static const struct field root_fields[] = {
    SECTION("server", server_fields),   SECTION("auth", auth_fields),
    SECTION("rate_limit", rate_fields), SECTION("redis", redis_fields),
    SECTION("logging", logging_fields), SECTION("data", data_fields),
};

/* ---- whole file ---------------------------------------------------------------- */

static int parse_document(struct loader *l, const unsigned char *text, size_t len)
{
    if (start_parser(l, text, len) != 0)
        return -1;
    /* Pass 1 guarantees the stream starts with exactly one document. */
    if (next(l) != 0 || next(l) != 0 || next(l) != 0)
        return -1;
    if (fields_value(l, "", FIELDS(root_fields), NULL) != 0)
        return -1;
    if (!l->api_keys_seen)
        return fail_at(l, NULL, "auth.api_keys is required: define at least one user");
    return 0;
}

static const fm_role *find_role(const fm_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->auth.nroles; i++) {
        if (strcmp(cfg->auth.roles[i].name, name) == 0)
            return &cfg->auth.roles[i];
    }
    return NULL;
}

/* A bucket field left out of a rate_limit takes the global value, given before or after it. */
static void complete_rate(const fm_config *cfg, bool has_rate, fm_rate *rate)
{
    if (has_rate && rate->requests_per_minute == 0)
        rate->requests_per_minute = cfg->rate_limit.rate.requests_per_minute;
    if (has_rate && rate->burst == 0)
        rate->burst = cfg->rate_limit.rate.burst;
}

/* "a -> b -> a": the search path from the role that was met again, and that role. */
static void cycle_text(const fm_config *cfg, const size_t *path, size_t depth, size_t again,
                       char *out, size_t outlen)
{
    size_t from = 0, used = 0;

    while (path[from] != again)
        from++;
    out[0] = '\0';
    for (size_t i = from; i <= depth + 1 && used < outlen; i++) {
        const char *name = cfg->auth.roles[i <= depth ? path[i] : again].name;
        int n = snprintf(out + used, outlen - used, "%s%s", i == from ? "" : " -> ", name);

        if (n < 0)
            return;
        used += (size_t)n;
    }
}

/* Sets role r's effective permissions; path[0..depth-1] inherit r on this search. */
static int resolve_role(struct loader *l, size_t r, size_t *path, size_t depth)
{
    fm_config *cfg = l->cfg;
    struct role_src *src = &l->role_src[r];
    fm_perms inherited = FM_PERM_NONE;

    src->state = ROLE_ACTIVE;
    path[depth] = r;
    for (size_t i = 0; i < src->ninherits; i++) {
        const struct ref *ref = &src->inherit_refs[i];
        const char *name = src->inherits[i];
        size_t p;

        for (p = 0; p < cfg->auth.nroles && strcmp(cfg->auth.roles[p].name, name) != 0; p++)
            ;
        if (p == cfg->auth.nroles)
            return fail_at(l, &ref->at, "role \"%s\" inherits from unknown role \"%s\"",
                           cfg->auth.roles[r].name, ref->from_env ? ref->raw : name);
        if (l->role_src[p].state == ROLE_ACTIVE) {
            char cycle[FM_CONFIG_ERR_MAX];

            cycle_text(cfg, path, depth, p, cycle, sizeof(cycle));
            return fail_at(l, &ref->at, "role inheritance cycle: %s", cycle);
        }
        if (l->role_src[p].state == ROLE_NEW && depth < FM_ROLE_INHERIT_MAX &&
            resolve_role(l, p, path, depth + 1) != 0)
            return -1;
        /* Not searched (too deep already) or searched and too high: path[0]'s chain is long. */
        if (l->role_src[p].state != ROLE_DONE || l->role_src[p].height >= FM_ROLE_INHERIT_MAX)
            return fail_at(l, &ref->at, "role \"%s\": inheritance chain longer than %d links",
                           cfg->auth.roles[path[0]].name, FM_ROLE_INHERIT_MAX);
        if (l->role_src[p].height + 1 > src->height)
            src->height = l->role_src[p].height + 1;
        inherited |= cfg->auth.roles[p].perms;
    }
    cfg->auth.roles[r].perms = (inherited | src->grants) & ~src->denies;
    src->state = ROLE_DONE;
    return 0;
}

static int resolve_roles(struct loader *l)
{
    fm_config *cfg = l->cfg;
    size_t path[FM_ROLE_INHERIT_MAX + 1];

    for (size_t r = 0; r < cfg->auth.nroles; r++) {
        complete_rate(cfg, cfg->auth.roles[r].has_rate, &cfg->auth.roles[r].rate);
        if (l->role_src[r].state == ROLE_NEW && resolve_role(l, r, path, 0) != 0)
            return -1;
    }
    return 0;
}

/* Highest requests_per_minute wins, then the higher burst: the most generous role applies. */
static bool better_rate(const fm_rate *a, const fm_rate *b)
{
    return b == NULL || a->requests_per_minute > b->requests_per_minute ||
           (a->requests_per_minute == b->requests_per_minute && a->burst > b->burst);
}

static int resolve_users(struct loader *l)
{
    fm_config *cfg = l->cfg;
    size_t ref = 0;

    for (size_t u = 0; u < cfg->auth.nusers; u++) {
        fm_user *user = &cfg->auth.users[u];
        fm_perms perms = FM_PERM_NONE;
        const fm_rate *best = NULL;

        for (size_t r = 0; r < user->nroles; r++, ref++) {
            const fm_role *role = find_role(cfg, user->roles[r]);
            const struct ref *at = &l->role_refs[ref];

            if (role == NULL)
                return fail_at(l, &at->at, "user \"%s\" has unknown role \"%s\"", user->name,
                               at->from_env ? at->raw : user->roles[r]);
            perms |= role->perms;
            if (role->has_rate && better_rate(&role->rate, best))
                best = &role->rate;
        }
        user->effective = user->admin ? FM_PERM_ALL : (perms | user->grants) & ~user->denies;
        complete_rate(cfg, user->has_rate, &user->rate);
        if (user->has_rate)
            user->rate_eff = &user->rate;
        else
            user->rate_eff = best != NULL ? best : &cfg->rate_limit.rate;
    }
    return 0;
}

static size_t slot_of(const unsigned char hash[FM_KEY_HASH_BYTES], size_t size)
{
    uint64_t lead;

    memcpy(&lead, hash, sizeof(lead));
    return (size_t)(lead & (uint64_t)(size - 1));
}

static int build_index(struct loader *l)
{
    fm_config *cfg = l->cfg;
    size_t total = 0, size = 8, g = 0;

    for (size_t u = 0; u < cfg->auth.nusers; u++)
        total += cfg->auth.users[u].nkeys;
    while (size < 2 * total) {
        if (size > SIZE_MAX / 4)
            return out_of_memory(l);
        size *= 2;
    }
    cfg->key_index = calloc(size, sizeof(*cfg->key_index));
    if (cfg->key_index == NULL)
        return out_of_memory(l);
    cfg->key_index_size = size;
    for (size_t u = 0; u < cfg->auth.nusers; u++) {
        const fm_user *user = &cfg->auth.users[u];

        for (size_t k = 0; k < user->nkeys; k++, g++) {
            const fm_key *key = &user->keys[k];
            size_t i = slot_of(key->hash, size);

            while (cfg->key_index[i].user != NULL) {
                if (sodium_memcmp(cfg->key_index[i].key->hash, key->hash, FM_KEY_HASH_BYTES) == 0)
                    return fail_at(l, &l->key_marks[g],
                                   "key hash of user \"%s\" is already used by user \"%s\"",
                                   user->name, cfg->key_index[i].user->name);
                i = (i + 1) & (size - 1);
            }
            cfg->key_index[i].user = user;
            cfg->key_index[i].key = key;
        }
    }
    return 0;
}

static int read_file(struct loader *l, const char *path, unsigned char **text, size_t *len)
{
    struct stat st;
    size_t got = 0;
    /* O_NONBLOCK: opening a FIFO at the path must not hang; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int rc = -1;

    if (fd < 0)
        return fail_at(l, NULL, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        (void)fail_at(l, NULL, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        (void)fail_at(l, NULL, "not a regular file");
        goto out;
    }
    if ((uintmax_t)st.st_size > CONFIG_FILE_MAX) {
        (void)fail_at(l, NULL, "larger than %u bytes", CONFIG_FILE_MAX);
        goto out;
    }
    if ((st.st_mode & S_IROTH) != 0 &&
        add_warning(l,
                    "%s: warning: configuration file is readable by other users (mode %04o); it "
                    "names key hashes and roles",
                    l->file, (unsigned)(st.st_mode & 07777)) != 0)
        goto out;
    *text = malloc((size_t)st.st_size + 1);
    if (*text == NULL) {
        (void)out_of_memory(l);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, *text + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            (void)fail_at(l, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *len = got;
    rc = 0;
out:
    (void)close(fd);
    return rc;
}

static int find_basedir(struct loader *l, const char *path)
{
    char *slash;

    l->basedir = realpath(path, NULL);
    if (l->basedir == NULL)
        return fail_at(l, NULL, "cannot resolve path: %s", strerror(errno));
    slash = strrchr(l->basedir, '/');
    if (slash != NULL)
        slash[slash == l->basedir ? 1 : 0] = '\0';
    return 0;
}

static fm_config *new_config(struct loader *l)
{
    fm_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    l->cfg = cfg;
    cfg->server.workers = 4;
    cfg->server.max_body_bytes = 1048576;
    cfg->server.socket_mode = 0660;
    cfg->rate_limit.rate.requests_per_minute = 30;
    cfg->rate_limit.rate.burst = 10;
    cfg->rate_limit.auth_failures.max = 10;
    cfg->rate_limit.auth_failures.window_seconds = 300;
    cfg->rate_limit.auth_failures.block_seconds = 900;
    cfg->redis.db = 0;
    cfg->redis.timeout_ms = 100;
    cfg->logging.level = FM_LOG_INFO;
    cfg->logging.audit = true;
    if (set_string(l, &cfg->path, l->file) != 0 ||
        set_string(l, &cfg->server.listen, "unix:/run/fetch_ml/fcgi.sock") != 0 ||
        set_string(l, &cfg->redis.addr, "unix:/run/fetch_ml/redis.sock") != 0 ||
        set_string(l, &cfg->redis.key_prefix, "fetchml:") != 0 ||
        set_string(l, &cfg->logging.file, "/var/log/fetch_ml/audit.log") != 0 ||
        set_string(l, &cfg->logging.api_file, "/var/log/fetch_ml/api.log") != 0 ||
        set_string(l, &cfg->data.experiments_dir, "/var/lib/fetch_ml/experiments") != 0)
        return NULL;
    for (size_t i = 0; i < BUILTIN_COUNT; i++) {
        if (add_role(l, builtin_roles[i]) != 0 ||
            !fm_rbac_builtin_role(builtin_roles[i], &l->role_src[i].grants))
            return NULL;
    }
    return cfg;
}

fm_config *fm_config_load(const char *path, char *err, size_t errlen)
{
    struct loader l;
    unsigned char *text = NULL;
    size_t len = 0;
    fm_config *cfg = NULL;

    memset(&l, 0, sizeof(l));
    l.file = path != NULL ? path : "(null)";
    l.err = err;
    l.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL) {
        (void)fail_at(&l, NULL, "no configuration file given");
        goto out;
    }
    if (new_config(&l) == NULL) {
        (void)out_of_memory(&l);
        goto out;
    }
    if (read_file(&l, path, &text, &len) != 0 || find_basedir(&l, path) != 0 ||
        check_structure(&l, text, len) != 0 || parse_document(&l, text, len) != 0 ||
        resolve_roles(&l) != 0 || resolve_users(&l) != 0 || build_index(&l) != 0)
        goto out;
    cfg = l.cfg;
    l.cfg = NULL;
out:
    stop_parser(&l);
    fm_config_free(l.cfg);
    free(text);
    free(l.basedir);
    forget_value(&l);
    free(l.key_marks);
    free(l.role_refs);
    free(l.user_key_marks);
    for (size_t i = 0; i < l.nrole_src; i++) {
        free(l.role_src[i].inherits);
        free(l.role_src[i].inherit_refs);
    }
    free(l.role_src);
    return cfg;
}

void fm_config_free(fm_config *cfg)
{
    if (cfg == NULL)
        return;
    if (cfg->redis.password != NULL) {
        sodium_memzero(cfg->redis.password, strlen(cfg->redis.password));
        free(cfg->redis.password);
    }
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        fm_user *user = &cfg->auth.users[i];

        free(user->roles);
        fm_ipacl_free(&user->ip_whitelist);
        free(user->keys);
    }
    free(cfg->auth.users);
    free(cfg->auth.roles);
    for (size_t i = 0; i < cfg->nwarnings; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    free(cfg->redis.password_source);
    fm_ipacl_free(&cfg->auth.ip_whitelist);
    free(cfg->path);
    free(cfg->server.listen);
    free(cfg->server.socket_group);
    free(cfg->server.tls_cert_file);
    free(cfg->server.tls_key_file);
    free(cfg->redis.addr);
    free(cfg->redis.key_prefix);
    free(cfg->logging.file);
    free(cfg->logging.api_file);
    free(cfg->data.experiments_dir);
    free(cfg->key_index);
    free(cfg);
}

bool fm_config_find_key(const fm_config *cfg, const unsigned char hash[FM_KEY_HASH_BYTES],
                        const fm_user **user, const fm_key **key)
{
    size_t i;

    if (cfg == NULL || hash == NULL || cfg->key_index == NULL)
        return false;
    i = slot_of(hash, cfg->key_index_size);
    for (size_t probes = 0; probes < cfg->key_index_size; probes++) {
        const fm_key_slot *slot = &cfg->key_index[i];

        if (slot->user == NULL)
            return false;
        if (sodium_memcmp(slot->key->hash, hash, FM_KEY_HASH_BYTES) == 0) {
            if (user != NULL)
                *user = slot->user;
            if (key != NULL)
                *key = slot->key;
            return true;
        }
        i = (i + 1) & (cfg->key_index_size - 1);
    }
    return false;
}

const fm_rate *fm_config_user_rate(const fm_config *cfg, const fm_user *user)
{
    if (user == NULL)
        return &cfg->rate_limit.rate;
    /* A user not made by fm_config_load has no rate_eff: its own rate or the default. */
    if (user->rate_eff != NULL)
        return user->rate_eff;
    return user->has_rate ? &user->rate : &cfg->rate_limit.rate;
}

const char *fm_config_level_name(fm_log_level level)
{
    if ((int)level < 0 || (int)level >= LEVEL_COUNT)
        return "info";
    return level_names[level];
}
