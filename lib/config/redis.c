/*
 * redis.c - the redis section: the server's address, database, key prefix and
 * timeout, the ACL user (redis.username: Redis 6+'s AUTH user password) and
 * its password, resolved at load time so that a missing secret stops the
 * load, not the first request: redis.password_env names an environment
 * variable, redis.password_file a file only its owner may read (a bare
 * password, or the REDIS_PASSWORD= line of an environment file; under
 * systemd, "${CREDENTIALS_DIRECTORY}/redis-password" of LoadCredential=).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "sections.h"

#define KEY_PREFIX_MAX 64 /* bytes */
#define USERNAME_MAX 64   /* bytes */
#define SECRET_NAME "REDIS_PASSWORD"

#define WORD_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/* field holds 1 to max characters of WORD_CHARS plus extra; shown as [A-Za-z0-9<extra>_.-]. */
static fm_err check_word(struct loader *l, const char *where, const void *field, size_t max,
                         const char *extra)
{
    const char *v = *(char *const *)field;
    size_t len = strlen(v), n = 0;

    while (n < len && (strchr(WORD_CHARS, v[n]) != NULL || strchr(extra, v[n]) != NULL))
        n++;
    if (len == 0 || len > max || n != len)
        return ld_fail(l, &l->ev.start_mark, "%s must be 1 to %zu characters [A-Za-z0-9%s_.-]",
                       where, max, extra);
    return FM_OK;
}

static fm_err check_key_prefix(struct loader *l, const char *where, const void *field)
{
    return check_word(l, where, field, KEY_PREFIX_MAX, ":");
}

/* An ACL user name that needs no quoting in an ACL file or a redis-cli line. */
static fm_err check_username(struct loader *l, const char *where, const void *field)
{
    return check_word(l, where, field, USERNAME_MAX, "");
}

/* The two ways of giving the password exclude each other, whichever comes first. */
static fm_err password_once(struct loader *l)
{
    if (l->password_seen)
        return ld_fail(
            l, &l->key_at,
            "redis.password_env and redis.password_file are alternatives: give only one");
    l->password_seen = true;
    return FM_OK;
}

static fm_err set_password(struct loader *l, const char *value, size_t len, const char *kind,
                           const char *source)
{
    fm_config *cfg = l->cfg;
    char desc[PATH_MAX + 16];

    cfg->redis.password = malloc(len + 1);
    if (cfg->redis.password == NULL)
        return ld_oom(l);
    memcpy(cfg->redis.password, value, len);
    cfg->redis.password[len] = '\0';
    (void)snprintf(desc, sizeof(desc), "%s %s", kind, source);
    return ld_set_string(l, &cfg->redis.password_source, desc);
}

static fm_err redis_password_env(struct loader *l, const char *where, void *obj)
{
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    bool isnull;
    const char *name;
    const char *value;
    char raw[LD_ECHO_BUF];
    size_t len;

    (void)obj;
    if (password_once(l) != 0)
        return FM_EINVAL;
    name = ld_nullable(l, where, "an environment variable name", &isnull);
    if (name == NULL)
        return FM_EINVAL;
    if (isnull)
        return FM_OK;
    len = strlen(name);
    if (len == 0 || len >= LD_ENV_NAME_MAX || strchr(first, name[0]) == NULL ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") != len)
        return ld_fail(l, &l->ev.start_mark,
                       "%s must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", where);
    ld_echo_value(l, name, raw);
    value = getenv(name);
    if (value == NULL)
        return ld_fail(l, &l->ev.start_mark, "%s: environment variable %s is not set", where,
                       l->from_env ? raw : name);
    if (value[0] == '\0')
        return ld_fail(l, &l->ev.start_mark, "%s: environment variable %s is empty", where,
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
 * Reads up to FM_SECRET_FILE_MAX + 1 bytes of the regular file fd into buf
 * (*got bytes). A file others may read or replace is refused outright: the
 * password would not be secret.
 */
static fm_err read_secret_fd(struct loader *l, const yaml_mark_t *at, const char *where,
                             const char *name, int fd, unsigned char *buf, size_t *got)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return ld_fail(l, at, "%s: %s: cannot stat: %s", where, name, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ld_fail(l, at, "%s: %s is not a regular file", where, name);
    if ((st.st_mode & 077) != 0)
        return ld_fail(l, at,
                       "%s: %s is accessible by group or other users (mode %04o): make it 0600 "
                       "or 0400",
                       where, name, (unsigned)(st.st_mode & 07777));
    for (;;) {
        ssize_t n = read(fd, buf + *got, FM_SECRET_FILE_MAX + 1 - *got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ld_fail(l, at, "%s: %s: cannot read: %s", where, name, strerror(errno));
        if (n == 0 || (*got += (size_t)n) == FM_SECRET_FILE_MAX + 1)
            return FM_OK;
    }
}

/*
 * Reads the secret file at path. Messages name the file (as written, when its
 * name came from the environment) and never its content.
 */
static fm_err read_secret(struct loader *l, const yaml_mark_t *at, const char *where,
                          const char *path, const char *name)
{
    unsigned char buf[FM_SECRET_FILE_MAX + 1];
    const char *why = NULL, *value;
    size_t got = 0, vlen = 0;
    int fd, rc = -1;

    /* O_NONBLOCK: a FIFO planted at the path must not hang the load; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return ld_fail(l, at, "%s: %s: cannot open: %s", where, name, strerror(errno));
    if (read_secret_fd(l, at, where, name, fd, buf, &got) != 0)
        goto out;
    if (got > FM_SECRET_FILE_MAX) {
        (void)ld_fail(l, at, "%s: %s is larger than %d bytes", where, name, FM_SECRET_FILE_MAX);
        goto out;
    }
    if (got == 0) {
        (void)ld_fail(l, at, "%s: %s is empty", where, name);
        goto out;
    }
    if (memchr(buf, '\0', got) != NULL) {
        (void)ld_fail(l, at, "%s: %s contains a NUL byte", where, name);
        goto out;
    }
    if (buf[got - 1] == '\n')
        got--;
    value = secret_in((const char *)buf, got, &vlen, &why);
    if (value == NULL)
        (void)ld_fail(l, at, "%s: %s %s", where, name, why);
    else if (vlen == 0)
        (void)ld_fail(l, at, "%s: %s holds an empty password", where, name);
    else
        rc = set_password(l, value, vlen, "file", path);
out:
    sodium_memzero(buf, sizeof(buf));
    (void)close(fd);
    return rc;
}

static fm_err redis_password_file(struct loader *l, const char *where, void *obj)
{
    yaml_mark_t at = l->ev.start_mark;
    char raw[LD_ECHO_BUF];
    const char *v;
    char *path = NULL;
    fm_err rc;

    (void)obj;
    if (password_once(l) != 0)
        return FM_EINVAL;
    v = ld_scalar(l, where, "a path", false);
    if (v == NULL || ld_resolve_path(l, where, v, "", &path) != 0)
        return FM_EINVAL;
    ld_echo_value(l, v, raw);
    rc = read_secret(l, &at, where, path, l->from_env ? raw : path);
    free(path);
    return rc;
}

/* AUTH user password needs both: a user without a password could never log in. */
fm_err redis_check_user(struct loader *l, const char *where, const yaml_mark_t *at, const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->redis.username != NULL && cfg->redis.password == NULL)
        return ld_fail(l, at, "%s.username needs redis.password_env or redis.password_file", where);
    return FM_OK;
}

LD_TABLE(, redis_table,
         LD_STR_ROW("addr", LD_ENDPOINT, fm_config, redis.addr, NULL,
                    "unix:/run/fetch_ml/redis.sock", false, NULL),
         LD_STR_ROW("username", LD_STRING, fm_config, redis.username, "a string", NULL, true,
                    check_username),
         LD_HANDLER_ROW("password_env", redis_password_env),
         LD_HANDLER_ROW("password_file", redis_password_file),
         LD_INT_ROW("db", fm_config, redis.db, 0, 15, 0),
         LD_STR_ROW("key_prefix", LD_STRING, fm_config, redis.key_prefix, "a string",
                    "fetchml:", false, check_key_prefix),
         LD_INT_ROW("timeout_ms", fm_config, redis.timeout_ms, 1, 60000, 100));
