/*
 * redis.c - the redis section: the server's address (or the sentinels that
 * know it, and the master's name), database, key prefix and timeout, the ACL
 * user (redis.username: Redis 6+'s AUTH user password), and the passwords of
 * Redis and of the sentinels, resolved at load time so that a missing secret
 * stops the load, not the first request: redis.password_env names an
 * environment variable, redis.password_file a file only its owner may read (a
 * bare password, or the REDIS_PASSWORD= line of an environment file; under
 * systemd, "${CREDENTIALS_DIRECTORY}/redis-password" of LoadCredential=);
 * redis.sentinel_password_env and _file the same for the sentinels
 * (SENTINEL_PASSWORD= in an environment file).
 *
 * A password file stays open: the descriptor of the last file read for each
 * of the two secrets is kept for the process's life (the next file read
 * replaces it). A master started as root reads root's files, then gives up
 * root; when a reload finds the same path no longer opens (EACCES), it reads
 * the file through that descriptor. That is how the pool's unit, which starts
 * as root, reads its systemd credential (root's, mode 0400) again on reload:
 * a credential is the same file for the unit's whole life.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "sections.h"

#define KEY_PREFIX_MAX 64 /* bytes */
#define USERNAME_MAX 64   /* bytes */

/* A secret of the section: where it goes and how the file and messages name it. */
typedef struct secret_kind {
    const char *line;     /* its line in an environment file: "<line>=value" */
    const char *pair;     /* the two settings that give it, for messages */
    size_t value, source; /* offsetof its char * fields in fm_config */
    size_t seen;          /* offsetof its flag in struct loader */
} secret_kind;

static const secret_kind redis_secret = {
    "REDIS_PASSWORD", "redis.password_env and redis.password_file",
    offsetof(fm_config, redis.password), offsetof(fm_config, redis.password_source),
    offsetof(struct loader, password_seen)};
static const secret_kind sentinel_secret = {
    "SENTINEL_PASSWORD", "redis.sentinel_password_env and redis.sentinel_password_file",
    offsetof(fm_config, redis.sentinel_password),
    offsetof(fm_config, redis.sentinel_password_source),
    offsetof(struct loader, sentinel_password_seen)};

/* The last password file read for each secret: its resolved path and a descriptor, -1 = none. */
static struct kept_file {
    char path[PATH_MAX];
    int fd;
} kept[2] = {{"", -1}, {"", -1}};

static struct kept_file *kept_for(const secret_kind *k)
{
    return &kept[k == &sentinel_secret ? 1 : 0];
}

static char **secret_slot(struct loader *l, size_t off)
{
    return (char **)(void *)((char *)l->cfg + off);
}

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

/* The two ways of giving a password exclude each other, whichever comes first. */
static fm_err password_once(struct loader *l, const secret_kind *k)
{
    bool *seen = (bool *)(void *)((char *)l + k->seen);

    if (*seen)
        return ld_fail(l, &l->key_at, "%s are alternatives: give only one", k->pair);
    *seen = true;
    return FM_OK;
}

static fm_err set_password(struct loader *l, const secret_kind *k, const char *value, size_t len,
                           const char *kind, const char *source)
{
    char **slot = secret_slot(l, k->value);
    char desc[PATH_MAX + 16];

    *slot = malloc(len + 1);
    if (*slot == NULL)
        return ld_oom(l);
    memcpy(*slot, value, len);
    (*slot)[len] = '\0';
    if (snprintf(desc, sizeof(desc), "%s %s", kind, source) >= (int)sizeof(desc))
        desc[sizeof(desc) - 1] = '\0'; /* a description only: cut, the secret itself is whole */
    return ld_set_string(l, secret_slot(l, k->source), desc);
}

static fm_err secret_env(struct loader *l, const char *where, const secret_kind *k)
{
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    bool isnull;
    const char *name;
    const char *value;
    char raw[LD_ECHO_BUF];
    size_t len;

    if (password_once(l, k) != 0)
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
    return set_password(l, k, value, strlen(value), "env", name);
}

static fm_err redis_password_env(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return secret_env(l, where, &redis_secret);
}

static fm_err sentinel_password_env(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return secret_env(l, where, &sentinel_secret);
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
 * <k->line>= line of an environment file. NULL with why (whylen bytes) set
 * otherwise.
 */
static const char *secret_in(const secret_kind *k, const char *text, size_t len, size_t *vlen,
                             char *why, size_t whylen)
{
    char key[32];
    size_t keylen = (size_t)snprintf(key, sizeof(key), "%s=", k->line);
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
        if (llen >= keylen && memcmp(line, key, keylen) == 0) {
            if (found != NULL) {
                (void)snprintf(why, whylen, "has more than one %s line", key);
                return NULL;
            }
            found = line + keylen;
            flen = llen - keylen;
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    if (found == NULL) {
        (void)snprintf(why, whylen, "has no %s line (a bare password must be one line without '=')",
                       key);
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
 * A descriptor for reading k's file at path from its start: path opened, and
 * kept as k's (*reopened false); or, when path cannot be opened for want of
 * the right (EACCES) and is the file kept for k, a new descriptor of the kept
 * one (*reopened true). -1 with errno set otherwise.
 */
static int open_secret(const secret_kind *k, const char *path, bool *reopened)
{
    struct kept_file *kf = kept_for(k);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), copy;

    *reopened = false;
    if (fd < 0) {
        if (errno != EACCES || kf->fd < 0 || strcmp(kf->path, path) != 0)
            return -1;
        fd = fcntl(kf->fd, F_DUPFD_CLOEXEC, 0);
        /* The copy shares the kept one's offset, which the last read left at the end. */
        if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0) {
            if (fd >= 0)
                (void)close(fd);
            errno = EACCES;
            return -1;
        }
        *reopened = true;
        return fd;
    }
    /* A path too long to keep, or no descriptor to spare: read it all the same. */
    if (strlen(path) >= sizeof(kf->path) || (copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return fd;
    if (kf->fd >= 0)
        (void)close(kf->fd);
    kf->fd = copy;
    (void)snprintf(kf->path, sizeof(kf->path), "%s", path);
    return fd;
}

/*
 * Reads the secret file at path. Messages name the file (as written, when its
 * name came from the environment) and never its content.
 */
static fm_err read_secret(struct loader *l, const secret_kind *k, const yaml_mark_t *at,
                          const char *where, const char *path, const char *name)
{
    unsigned char buf[FM_SECRET_FILE_MAX + 1];
    char why[128] = "";
    const char *value;
    size_t got = 0, vlen = 0;
    bool reopened;
    int fd, rc = -1;

    /* O_NONBLOCK: a FIFO planted at the path must not hang the load; it is refused below. */
    fd = open_secret(k, path, &reopened);
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
    value = secret_in(k, (const char *)buf, got, &vlen, why, sizeof(why));
    if (value == NULL)
        (void)ld_fail(l, at, "%s: %s %s", where, name, why);
    else if (vlen == 0)
        (void)ld_fail(l, at, "%s: %s holds an empty password", where, name);
    else if (!reopened)
        rc = set_password(l, k, value, vlen, "file", path);
    else {
        char source[PATH_MAX + 64];

        (void)snprintf(source, sizeof(source), "%s (kept open: it cannot be opened again)", path);
        rc = set_password(l, k, value, vlen, "file", source);
    }
out:
    sodium_memzero(buf, sizeof(buf));
    (void)close(fd);
    return rc;
}

static fm_err secret_file(struct loader *l, const char *where, const secret_kind *k)
{
    yaml_mark_t at = l->ev.start_mark;
    char raw[LD_ECHO_BUF];
    const char *v;
    char *path = NULL;
    fm_err rc;

    if (password_once(l, k) != 0)
        return FM_EINVAL;
    v = ld_scalar(l, where, "a path", false);
    if (v == NULL || ld_resolve_path(l, where, v, "", &path) != 0)
        return FM_EINVAL;
    ld_echo_value(l, v, raw);
    rc = read_secret(l, k, &at, where, path, l->from_env ? raw : path);
    free(path);
    return rc;
}

static fm_err redis_password_file(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return secret_file(l, where, &redis_secret);
}

static fm_err sentinel_password_file(struct loader *l, const char *where, void *obj)
{
    (void)obj;
    return secret_file(l, where, &sentinel_secret);
}

/* A list of 1..FM_SENTINEL_MAX "host:port", each given once. */
static fm_err redis_sentinels(struct loader *l, const char *where, void *obj)
{
    fm_config *cfg = obj;
    char item[LD_WHERE_MAX];
    bool end;
    fm_err rc;

    if (ld_list_start(l, where, "a list of \"host:port\"") != 0)
        return FM_EINVAL;
    for (size_t i = 0; (rc = ld_list_next(l, where, i, item, sizeof(item), &end)) == 0 && !end;
         i++) {
        char **grown, *v = NULL;

        if (i == FM_SENTINEL_MAX)
            return ld_fail(l, &l->ev.start_mark, "%s: at most %d sentinels", where,
                           FM_SENTINEL_MAX);
        if (ld_host_port(l, item, &v) != 0)
            return FM_EINVAL;
        for (size_t j = 0; j < cfg->redis.nsentinels; j++) {
            if (strcmp(cfg->redis.sentinels[j], v) == 0) {
                free(v);
                return ld_fail(l, &l->ev.start_mark, "%s repeats %s[%zu]", item, where, j);
            }
        }
        grown = ld_grow(cfg->redis.sentinels, cfg->redis.nsentinels, sizeof(*grown));
        if (grown == NULL) {
            free(v);
            return ld_oom(l);
        }
        cfg->redis.sentinels = grown;
        grown[cfg->redis.nsentinels++] = v;
    }
    if (rc == 0 && cfg->redis.nsentinels == 0)
        return ld_fail(l, &l->ev.start_mark, "%s must not be empty (leave it out for no sentinels)",
                       where);
    return rc;
}

/* A name as redis-sentinel accepts in "sentinel monitor <name>": no spaces or quotes. */
static fm_err check_master_name(struct loader *l, const char *where, const void *field)
{
    const char *v = *(char *const *)field;
    size_t len = strlen(v);

    if (len == 0 || len >= FM_SENTINEL_NAME_MAX ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len)
        return ld_fail(l, &l->ev.start_mark, "%s must be 1 to %d characters [A-Za-z0-9._-]", where,
                       FM_SENTINEL_NAME_MAX - 1);
    return FM_OK;
}

static fm_err check_sentinels(struct loader *l, const char *where, const yaml_mark_t *at,
                              const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->redis.nsentinels > 0 && cfg->redis.master_name == NULL)
        return ld_fail(l, at, "%s.sentinels needs %s.master_name: the name they monitor", where,
                       where);
    if (cfg->redis.nsentinels == 0 && cfg->redis.master_name != NULL)
        return ld_fail(l, at, "%s.master_name needs %s.sentinels", where, where);
    if (cfg->redis.nsentinels == 0 && cfg->redis.sentinel_password != NULL)
        return ld_fail(l, at, "%s.sentinel_password_env/_file need %s.sentinels", where, where);
    return FM_OK;
}

/* AUTH user password needs both: a user without a password could never log in. */
static fm_err check_user(struct loader *l, const char *where, const yaml_mark_t *at,
                         const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->redis.username != NULL && cfg->redis.password == NULL)
        return ld_fail(l, at, "%s.username needs redis.password_env or redis.password_file", where);
    return FM_OK;
}

fm_err redis_check(struct loader *l, const char *where, const yaml_mark_t *at, const void *obj)
{
    fm_err rc = check_user(l, where, at, obj);

    return rc != FM_OK ? rc : check_sentinels(l, where, at, obj);
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
         LD_INT_ROW("timeout_ms", fm_config, redis.timeout_ms, 1, 60000, 100),
         LD_HANDLER_ROW("sentinels", redis_sentinels),
         LD_STR_ROW("master_name", LD_STRING, fm_config, redis.master_name, "a string", NULL, true,
                    check_master_name),
         LD_HANDLER_ROW("sentinel_password_env", sentinel_password_env),
         LD_HANDLER_ROW("sentinel_password_file", sentinel_password_file));
