/*
 * admin.c - fetchml-admin: operator commands (README.md, "Keys, roles and reload").
 *
 *   keygen [USER [ROLE]]   new 256-bit key from libsodium, printed once, with
 *                          its SHA-256 and a YAML snippet for auth.api_keys
 *                          (ROLE default researcher; worker for a job worker;
 *                          a role that is not built in is noted on stderr: the
 *                          config must define it in auth.roles)
 *   hash                   SHA-256 of a key read from standard input (never argv,
 *                          which other users can read in /proc)
 *   check-config FILE      validate a config like `nginx -t`: exit 0 or 1
 *   rotate -c CONFIG USER [--grace DURATION]
 *                          a new key for USER plus the keys: list that keeps
 *                          the old keys valid for the grace period (default 7d)
 *   rotate -c CONFIG (--all | USER --write) [--grace DURATION]
 *          [--keys-out FILE] [--reload PIDFILE]
 *                          new keys written into CONFIG in place (keyrotate.h):
 *                          every user's with --all (grace 0 by default: after
 *                          a suspected breach every old key stops at the
 *                          reload), USER's with --write (grace 7d by default);
 *                          the keys on stdout once, or in FILE (new, 0600);
 *                          SIGHUP to the process of each PIDFILE (up to 4)
 *   redis-acl CONFIG       the Redis ACL file for CONFIG's redis section: the
 *                          default user off, redis.username allowed exactly
 *                          what the product sends (redisacl.h), its password
 *                          as a SHA-256 (conf/README.md, "Redis")
 *   audit-verify [--partial] [--head SEQ:HASH] [--public-key FILE] FILE...
 *                          check the audit trail's hash chain across files in
 *                          order (oldest first), and with --public-key every
 *                          signed checkpoint: exit 0 intact, 1 with the first
 *                          bad line named
 *   audit-keygen SECRET PUBLIC
 *                          a new Ed25519 key pair for the audit logger's
 *                          checkpoints (auditsign.h): SECRET mode 0600
 *   publisher-token TOKEN NGINX_CONF
 *                          a new token for the WebSocket relay (nchan.h) and
 *                          nginx's check of it, both new files mode 0600
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <cjson/cJSON.h>

#include "audit.h"
#include "auditsign.h"
#include "auth.h"
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "keyrotate.h"
#include "nchan.h"
#include "pidfile.h"
#include "redisacl.h"
#include "sha256.h"

static int usage(void)
{
    (void)fprintf(
        stderr, "usage: fetchml-admin keygen [USER [ROLE]]   (ROLE: researcher by default, worker "
                "for a job worker)\n"
                "       fetchml-admin hash            (reads the key from standard input)\n"
                "       fetchml-admin check-config FILE\n"
                "       fetchml-admin rotate -c CONFIG USER [--grace 7d]   (prints a snippet)\n"
                "       fetchml-admin rotate -c CONFIG (--all | USER --write) [--grace DURATION]\n"
                "                     [--keys-out FILE] [--reload PIDFILE]...\n"
                "                     (rewrites CONFIG in place; --all: every user, grace 0 by\n"
                "                     default, so every old key stops working at the reload)\n"
                "       fetchml-admin redis-acl CONFIG\n"
                "       fetchml-admin audit-verify [--partial] [--head SEQ:HASH] "
                "[--public-key FILE] FILE...   (oldest file first)\n"
                "       fetchml-admin audit-keygen SECRET_FILE PUBLIC_FILE\n"
                "       fetchml-admin publisher-token TOKEN_FILE NGINX_CONF\n");
    return 2;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= FM_NAME_MAX)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static void hash_hex(const char *key, size_t len, char out[2 * FM_KEY_HASH_BYTES + 1])
{
    unsigned char d[FM_KEY_HASH_BYTES];

    (void)fm_auth_hash_key(key, len, d);
    sodium_bin2hex(out, 2 * FM_KEY_HASH_BYTES + 1, d, sizeof(d));
    sodium_memzero(d, sizeof(d));
}

static int keygen(const char *user, const char *role)
{
    char key[FM_AUTH_KEY_GEN_LEN + 1], hex[2 * FM_KEY_HASH_BYTES + 1];
    fm_perms perms;

    if (!valid_name(user) || !valid_name(role)) {
        (void)fprintf(stderr, "fetchml-admin: user and role names are [A-Za-z0-9_.-]{1,63}\n");
        return 2;
    }
    /* A custom role is legitimate, but a typo would load as "unknown role": say so now. */
    if (!fm_rbac_builtin_role(role, &perms))
        (void)fprintf(stderr,
                      "fetchml-admin: note: \"%s\" is not a built-in role (admin, researcher, "
                      "analyst, worker): the config must define it in auth.roles\n",
                      role);
    fm_auth_key_generate(key);
    hash_hex(key, strlen(key), hex);
    (void)printf("# API key for %s: shown once, store it now; only its hash goes in the config.\n"
                 "key: %s\n"
                 "sha256: %s\n"
                 "# YAML for auth.api_keys:\n"
                 "    %s:\n"
                 "      hash: \"%s\"\n"
                 "      roles: [\"%s\"]\n",
                 user, key, hex, user, hex, role);
    sodium_memzero(key, sizeof(key));
    return fflush(stdout) == 0 ? 0 : 1;
}

/* "7d", "12h", "30m", "45s" into seconds (1 s .. 365 d). */
static int parse_duration(const char *s, long long *out)
{
    char *end;
    long long v, unit;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *s < '0' || *s > '9' || end[0] == '\0' || end[1] != '\0')
        return -1;
    switch (*end) {
    case 'd':
        unit = 86400;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'm':
        unit = 60;
        break;
    case 's':
        unit = 1;
        break;
    default:
        return -1;
    }
    if (v < 1 || v > 365LL * 86400 / unit)
        return -1;
    *out = v * unit;
    return 0;
}

static void rfc3339(int64_t t, char out[FM_RFC3339_MAX])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, FM_RFC3339_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, FM_RFC3339_MAX, "1970-01-01T00:00:00Z");
}

/* A YAML double-quoted scalar's content (YAML 1.1 section 5.7 escapes). */
static void print_yaml_escaped(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            (void)printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            (void)printf("\\x%02x", c);
        else
            (void)putchar(c);
    }
}

/* What rotate was asked for. */
#define RELOAD_MAX 4 /* --reload PIDFILE given at most this often: the pool, the relay */

struct rotate_args {
    const char *config, *user, *keys_out;
    const char *pidfiles[RELOAD_MAX]; /* --reload, in order */
    int npidfiles;
    long long grace; /* seconds; -1 = not given */
    int all, write;
};

/* "-c CONFIG", USER, --all, --write, --grace, --keys-out, --reload: 0, or usage's status. */
static int rotate_args(int argc, char **argv, struct rotate_args *a)
{
    memset(a, 0, sizeof(*a));
    a->grace = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            a->config = argv[++i];
        } else if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
            i++;
            /* 0 only where the file is written: a printed snippet with no grace is just keygen. */
            if (strcmp(argv[i], "0") == 0) {
                a->grace = 0;
            } else if (parse_duration(argv[i], &a->grace) != 0) {
                (void)fprintf(stderr, "fetchml-admin: --grace takes 0 or 1s..365d, e.g. 7d or "
                                      "12h\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--all") == 0) {
            a->all = 1;
        } else if (strcmp(argv[i], "--write") == 0) {
            a->write = 1;
        } else if (strcmp(argv[i], "--keys-out") == 0 && i + 1 < argc) {
            a->keys_out = argv[++i];
        } else if (strcmp(argv[i], "--reload") == 0 && i + 1 < argc && a->npidfiles < RELOAD_MAX) {
            a->pidfiles[a->npidfiles++] = argv[++i];
        } else if (a->user == NULL && argv[i][0] != '-') {
            a->user = argv[i];
        } else {
            return usage();
        }
    }
    if (a->config == NULL || (a->all && a->user != NULL) || (!a->all && a->user == NULL))
        return usage();
    if (!a->all && !a->write && (a->keys_out != NULL || a->npidfiles > 0 || a->grace == 0)) {
        (void)fprintf(stderr, "fetchml-admin: --keys-out, --reload and --grace 0 need --write "
                              "(or --all): without it rotate only prints a snippet\n");
        return 2;
    }
    if (a->grace < 0)
        a->grace = a->all ? 0 : 7 * 86400;
    return 0;
}

/*
 * rotate USER: a new key for USER and the keys: list that replaces the user's
 * hash/keys in the config. Keys in force keep working until the grace period
 * ends (Stripe's rolling keys): they get an expires that far ahead, unless
 * they already expire sooner.
 */
static int rotate_snippet(const struct rotate_args *a)
{
    char err[FM_CONFIG_ERR_MAX], key[FM_AUTH_KEY_GEN_LEN + 1], hex[2 * FM_KEY_HASH_BYTES + 1];
    char until[FM_RFC3339_MAX], today[FM_RFC3339_MAX];
    const fm_user *u = NULL;
    fm_config *cfg;
    int64_t now = (int64_t)time(NULL);

    if ((cfg = fm_config_load(a->config, err, sizeof(err))) == NULL) {
        (void)fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        if (strcmp(cfg->auth.users[i].name, a->user) == 0)
            u = &cfg->auth.users[i];
    if (u == NULL) {
        (void)fprintf(stderr, "fetchml-admin: no user \"%s\" in %s\n", a->user, a->config);
        fm_config_free(cfg);
        return 1;
    }
    fm_auth_key_generate(key);
    hash_hex(key, strlen(key), hex);
    rfc3339(now + a->grace, until);
    fm_clock_rfc3339(today, 0);
    (void)printf("# New API key for %s: shown once, give it to the user now.\n"
                 "key: %s\n"
                 "# In %s, replace %s's hash:/keys: with the list below, then reload\n"
                 "# (or let fetchml-admin rotate -c %s %s --write do it).\n"
                 "# The old keys keep working until %s; remove them after that.\n"
                 "    %s:\n"
                 "      keys:\n"
                 "        - hash: \"%s\"\n"
                 "          label: \"rotated %.10s\"\n",
                 a->user, key, a->config, a->user, a->config, a->user, until, a->user, hex, today);
    for (size_t i = 0; i < u->nkeys; i++) {
        const fm_key *k = &u->keys[i];
        char old[2 * FM_KEY_HASH_BYTES + 1], when[FM_RFC3339_MAX];
        if (k->expires != 0 && k->expires <= now)
            continue; /* already dead: leave it out */
        sodium_bin2hex(old, sizeof(old), k->hash, sizeof(k->hash));
        rfc3339(k->expires != 0 && k->expires < now + a->grace ? k->expires : now + a->grace, when);
        (void)printf("        - hash: \"%s\"\n"
                     "          expires: \"%s\"\n",
                     old, when);
        if (k->label[0] != '\0') {
            (void)printf("          label: \"");
            print_yaml_escaped(k->label);
            (void)printf("\"\n");
        }
    }
    sodium_memzero(key, sizeof(key));
    fm_config_free(cfg);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* The keys made during a rotation, until they are given out. */
struct new_key {
    char user[FM_NAME_MAX];
    char key[FM_AUTH_KEY_GEN_LEN + 1];
};

struct new_keys {
    struct new_key *v;
    size_t n, cap;
};

/* fm_keyrotate_fn: a new key for user, kept in arg (a struct new_keys); its hash out. */
static fm_err make_key(void *arg, const char *user, unsigned char hash[FM_KEY_HASH_BYTES])
{
    struct new_keys *keys = arg;
    struct new_key *k;

    if (keys->n == keys->cap) {
        size_t cap = keys->cap == 0 ? 16 : keys->cap * 2;

        /* Not realloc: the old block would be freed with keys in it. */
        if (cap > SIZE_MAX / sizeof(*k) || (k = calloc(cap, sizeof(*k))) == NULL) {
            errno = ENOMEM;
            return FM_ESYS;
        }
        if (keys->n > 0) {
            memcpy(k, keys->v, keys->n * sizeof(*k));
            sodium_memzero(keys->v, keys->n * sizeof(*k));
        }
        free(keys->v);
        keys->v = k;
        keys->cap = cap;
    }
    k = &keys->v[keys->n];
    (void)snprintf(k->user, sizeof(k->user), "%s", user);
    fm_auth_key_generate(k->key);
    if (fm_auth_hash_key(k->key, strlen(k->key), hash) != FM_OK) {
        sodium_memzero(k, sizeof(*k));
        return FM_ESYS;
    }
    keys->n++;
    return FM_OK;
}

static void forget_keys(struct new_keys *keys)
{
    if (keys->v != NULL)
        sodium_memzero(keys->v, keys->cap * sizeof(*keys->v));
    free(keys->v);
    keys->v = NULL;
    keys->n = keys->cap = 0;
}

/* The keys as "USER KEY" lines under one comment; 0, or -1 when f fails. */
static int print_keys(FILE *f, const struct new_keys *keys, const char *config)
{
    char now[FM_RFC3339_MAX];

    (void)fprintf(f, "# New API keys for %s, %s: shown once; give each user theirs (USER KEY).\n",
                  config, fm_clock_rfc3339(now, 0));
    for (size_t i = 0; i < keys->n; i++)
        (void)fprintf(f, "%s %s\n", keys->v[i].user, keys->v[i].key);
    return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

/* --keys-out: a new file, 0600, never an existing one or a symbolic link. */
static FILE *open_keys_out(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f;

    if (fd < 0) {
        (void)fprintf(stderr, "fetchml-admin: --keys-out %s: %s (it must not exist yet)\n", path,
                      strerror(errno));
        return NULL;
    }
    if ((f = fdopen(fd, "w")) == NULL) {
        (void)fprintf(stderr, "fetchml-admin: --keys-out %s: %s\n", path, strerror(errno));
        (void)close(fd);
        (void)unlink(path);
    }
    return f;
}

/* The keys into --keys-out, on disk before the config names them: 0, or -1 (said why). */
static int write_keys_out(FILE *f, const char *path, const struct new_keys *keys,
                          const char *config)
{
    int rc = print_keys(f, keys, config) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;

    if (rc != 0)
        (void)fprintf(stderr, "fetchml-admin: --keys-out %s: %s\n", path, strerror(errno));
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* --reload: SIGHUP to the process whose pid is in pidfile (the pool's master, the relay). */
static int send_reload(const char *pidfile)
{
    pid_t pid = fm_pidfile_running(pidfile);

    if (pid <= 0) {
        (void)fprintf(stderr,
                      "fetchml-admin: no running process in %s: reload it yourself "
                      "(systemctl reload fetchml-fcgi fetchml-logrelay)\n",
                      pidfile);
        return 1;
    }
    if (kill(pid, SIGHUP) != 0) {
        (void)fprintf(stderr, "fetchml-admin: cannot signal pid %ld: %s\n", (long)pid,
                      strerror(errno));
        return 1;
    }
    (void)fprintf(stderr, "fetchml-admin: sent SIGHUP to pid %ld (%s): it reloads now\n", (long)pid,
                  pidfile);
    return 0;
}

/*
 * rotate --all / USER --write: new keys written into the config in place.
 * The order makes a lost key impossible: --keys-out is created first, the
 * rewritten config is checked beside the old one, the keys reach --keys-out's
 * disk, and only then does the config change; stdout gets them after it did.
 */
static int rotate_write(const struct rotate_args *a)
{
    char err[FM_CONFIG_ERR_MAX], backup[FM_KEYROTATE_BACKUP_MAX], until[FM_RFC3339_MAX];
    struct new_keys keys = {0};
    fm_keyrotate_opts o = {a->all ? NULL : a->user, (int64_t)time(NULL), a->grace, make_key, &keys};
    fm_keyrotate_job *job = NULL;
    FILE *out = NULL;
    int rc = 1;

    /* A --reload that cannot work is found before anything changes. */
    for (int i = 0; i < a->npidfiles; i++)
        if (fm_pidfile_running(a->pidfiles[i]) <= 0) {
            (void)fprintf(stderr,
                          "fetchml-admin: --reload %s: no running process: nothing rotated\n",
                          a->pidfiles[i]);
            return 1;
        }
    if (a->keys_out != NULL && (out = open_keys_out(a->keys_out)) == NULL)
        return 1;
    if (fm_keyrotate_prepare(a->config, &o, &job, err, sizeof(err)) != FM_OK) {
        (void)fprintf(stderr, "%s\n", err);
        (void)fprintf(stderr, "fetchml-admin: %s left as it was\n", a->config);
        goto fail;
    }
    if (out != NULL) {
        FILE *f = out;

        out = NULL;
        if (write_keys_out(f, a->keys_out, &keys, a->config) != 0)
            goto fail;
    }
    if (fm_keyrotate_commit(job, backup, sizeof(backup), err, sizeof(err)) != FM_OK) {
        (void)fprintf(stderr, "%s\n", err);
        (void)fprintf(stderr, "fetchml-admin: %s left as it was\n", a->config);
        goto fail;
    }
    if (a->keys_out == NULL && print_keys(stdout, &keys, a->config) != 0) {
        (void)fprintf(stderr,
                      "fetchml-admin: the new keys could not be printed, but %s names them "
                      "now: put back %s over it, or rotate again\n",
                      a->config, backup);
        goto done;
    }
    rfc3339(o.now + a->grace, until);
    (void)fprintf(stderr, "fetchml-admin: %zu user%s rotated in %s (the old file is %s); %s%s\n",
                  keys.n, keys.n == 1 ? "" : "s", a->config, backup,
                  a->grace == 0 ? "every old key stops working at the reload"
                                : "the old keys keep working until ",
                  a->grace == 0 ? "" : until);
    rc = 0;
    for (int i = 0; i < a->npidfiles; i++)
        if (send_reload(a->pidfiles[i]) != 0)
            rc = 1;
    if (a->npidfiles == 0)
        (void)fprintf(stderr, "fetchml-admin: reload now: systemctl reload fetchml-fcgi "
                              "fetchml-logrelay (or kill -HUP each master)\n");
    goto done;
fail:
    if (a->keys_out != NULL)
        (void)unlink(a->keys_out);
done:
    if (out != NULL)
        (void)fclose(out);
    fm_keyrotate_free(job);
    forget_keys(&keys);
    return rc;
}

static int rotate(int argc, char **argv)
{
    struct rotate_args a;
    int rc = rotate_args(argc, argv, &a);

    if (rc != 0)
        return rc;
    return a.all || a.write ? rotate_write(&a) : rotate_snippet(&a);
}

/*
 * Reads one key from standard input (a trailing newline is dropped) and
 * prints its SHA-256. Refuses what the server could never accept, so an
 * operator does not configure a hash no client can match: bytes outside
 * printable ASCII or spaces (the server refuses those), a NUL, more than
 * FM_AUTH_KEY_MAX bytes, or a fetchml_ key whose checksum is wrong (a typo).
 */
static int hash_stdin(void)
{
    char buf[FM_AUTH_KEY_MAX + 3], hex[2 * FM_KEY_HASH_BYTES + 1];
    size_t n = fread(buf, 1, sizeof(buf), stdin);
    const char *why = NULL;

    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0)
        why = "no key on standard input";
    else if (n > FM_AUTH_KEY_MAX || memchr(buf, '\n', n) != NULL)
        why = "expected one key of at most 256 bytes on one line";
    for (size_t i = 0; why == NULL && i < n; i++)
        if (buf[i] <= ' ' || buf[i] > '~')
            why = "a key is printable ASCII without spaces (the server refuses anything else)";
    if (why == NULL && !fm_auth_key_checksum_ok(buf, n))
        why = "this fetchml_ key's checksum is wrong (a typo?)";
    if (why != NULL) {
        (void)fprintf(stderr, "fetchml-admin: %s\n", why);
        sodium_memzero(buf, sizeof(buf));
        return 1;
    }
    hash_hex(buf, n, hex);
    sodium_memzero(buf, sizeof(buf));
    (void)printf("%s\n", hex);
    return 0;
}

static int check_config(const char *path)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = fm_config_load(path, err, sizeof(err));

    if (cfg == NULL) {
        (void)fprintf(stderr, "%s\n", err);
        (void)fprintf(stderr, "fetchml-admin: configuration file %s test failed\n", path);
        return 1;
    }
    fm_config_free(cfg);
    (void)printf("fetchml-admin: configuration file %s syntax is ok\n"
                 "fetchml-admin: configuration file %s test is successful\n",
                 path, path);
    return 0;
}

/*
 * The default user is off and has no password: no client can log in as it,
 * even if someone turns it on. It keeps the write commands on the product's
 * keys for one reader only: Redis replays the AOF as the default user, and
 * Redis 7.0 re-checks the ACL of each command of a MULTI/EXEC there (script
 * effects are written as MULTI/EXEC); without them a restart silently drops
 * every task a script wrote (redis/redis#14541, fixed by #14545 after 7.0).
 * The product's password is given as its SHA-256 (Redis's "#<hash>"), never
 * in the clear.
 */
static int redis_acl(const char *path)
{
    char err[FM_CONFIG_ERR_MAX], rules[4096], hex[2 * FM_SHA256_BYTES + 1];
    unsigned char d[FM_SHA256_BYTES];
    fm_config *cfg = fm_config_load(path, err, sizeof(err));
    int rc = 1;

    if (cfg == NULL) {
        (void)fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (cfg->redis.username == NULL) {
        (void)fprintf(stderr,
                      "fetchml-admin: %s: redis.username is not set: the product would "
                      "log in as Redis's default user\n",
                      path);
        goto out;
    }
    if (fm_redisacl_rules(cfg->redis.key_prefix, cfg->redis.db, rules, sizeof(rules)) != FM_OK ||
        fm_sha256(d, cfg->redis.password, strlen(cfg->redis.password)) != FM_OK) {
        (void)fprintf(stderr, "fetchml-admin: cannot make the ACL rules\n");
        goto out;
    }
    sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
    (void)printf("user default off resetpass resetkeys ~%s* resetchannels -@all +@write "
                 "-@dangerous\n"
                 "user %s on resetpass #%s %s\n",
                 cfg->redis.key_prefix, cfg->redis.username, hex, rules);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    sodium_memzero(d, sizeof(d));
    fm_config_free(cfg);
    return rc;
}

/* The genesis rule of a whole trail: seq 1, prev_hash of 64 zeros. */
static int is_genesis(const char *line, size_t len)
{
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    cJSON *o = cJSON_ParseWithLength(line, len);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "prev_hash");
    int ok = cJSON_IsNumber(seq) && seq->valuedouble == 1 && cJSON_IsString(prev) &&
             strcmp(prev->valuestring, zeros) == 0;

    cJSON_Delete(o);
    return ok;
}

/*
 * Verifies one file, continuing the chain state (prev, seq; seq 0 = start).
 * Returns 0, or 1 after printing "file:line: reason" for the first bad line.
 */
/* A chain head recorded earlier, outside the host (--head SEQ:HASH). */
typedef struct anchor {
    long long seq;
    char hash[65];
} anchor;

/* What audit-verify found about checkpoints, across files. */
typedef struct signing {
    const unsigned char *pk; /* --public-key, NULL = none given */
    long long signed_seq;    /* the last seq a good checkpoint covers, 0 = none */
    long long checkpoints;   /* checkpoints seen (checked when pk is set) */
} signing;

/* A line the chain accepted, as a checkpoint: 0, or 1 with the reason in err. */
static int check_signature(const char *line, size_t len, signing *sg, char *err, size_t errlen)
{
    long long covered;
    fm_err rc;

    if (sg->pk == NULL) {
        sg->checkpoints += fm_audit_is_checkpoint(line, len);
        return 0;
    }
    rc = fm_audit_checkpoint_check(line, len, sg->pk, &covered, err, errlen);
    if (rc == FM_ENOTFOUND)
        return 0;
    if (rc != FM_OK)
        return 1;
    sg->checkpoints++;
    sg->signed_seq = covered;
    return 0;
}

static int verify_file(const char *path, int partial, const anchor *head, signing *sg,
                       char prev[65], long long *seq, long long *records)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    FILE *f;
    char *line = NULL, err[256];
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;

    if (fd < 0) {
        (void)fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    /* A FIFO or a device (/dev/zero) is not an audit file: refuse it rather than hang. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        (void)fprintf(stderr, "%s: not a regular file\n", path);
        (void)close(fd);
        return 1;
    }
    if ((f = fdopen(fd, "r")) == NULL) {
        (void)fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
        (void)close(fd);
        return 1;
    }
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] != '\n') {
            (void)snprintf(err, sizeof(err), "last line is incomplete (file truncated)");
            rc = 1;
        } else if ((size_t)n > FM_AUDIT_LINE_MAX + 1) {
            (void)snprintf(err, sizeof(err), "line too long");
            rc = 1;
        } else if (*seq == 0 && !partial && !is_genesis(line, (size_t)n - 1)) {
            (void)snprintf(err, sizeof(err),
                           "the trail does not start at seq 1 (older records missing? "
                           "use --partial for a trail whose first files were rotated away)");
            rc = 1;
        } else if (fm_audit_verify_line(line, (size_t)n - 1, prev, seq, err, sizeof(err)) != 0) {
            rc = 1;
        } else if (check_signature(line, (size_t)n - 1, sg, err, sizeof(err)) != 0) {
            rc = 1;
        } else if (head != NULL && *seq == head->seq && sodium_memcmp(prev, head->hash, 64) != 0) {
            (void)snprintf(err, sizeof(err),
                           "seq %lld: hash differs from the recorded head (the trail was "
                           "rewritten up to here)",
                           *seq);
            rc = 1;
        } else {
            (*records)++;
        }
        if (rc != 0)
            (void)fprintf(stderr, "%s:%zu: %s\n", path, lineno, err);
    }
    if (rc == 0 && ferror(f)) {
        (void)fprintf(stderr, "%s: read error\n", path);
        rc = 1;
    }
    free(line);
    (void)fclose(f);
    return rc;
}

/* "SEQ:HASH" as audit-verify prints it: 0, or -1 when malformed. */
static int parse_anchor(const char *text, anchor *out)
{
    char *end;

    errno = 0;
    out->seq = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *text < '1' || *text > '9' || *end != ':' ||
        strlen(end + 1) != 64 || strspn(end + 1, "0123456789abcdef") != 64)
        return -1;
    memcpy(out->hash, end + 1, 65);
    return 0;
}

/*
 * A hash chain kept beside the log proves order and detects edits, but whoever
 * can rewrite the file can recompute the chain or cut its end. Recording the
 * head this command prints somewhere else (another host, a ticket) and
 * passing it back with --head closes both gaps up to that record.
 */
/* The signing part of audit-verify's report; its exit status. */
static int report_signing(const signing *sg, long long seq)
{
    if (sg->pk == NULL) {
        if (sg->checkpoints > 0)
            (void)printf("note: %lld signed checkpoints not checked (pass --public-key FILE to "
                         "prove the trail was not recomputed)\n",
                         sg->checkpoints);
        else
            (void)printf("note: no signed checkpoints: the hash chain alone cannot show that the "
                         "trail was not recomputed\n");
        return 0;
    }
    if (sg->checkpoints == 0) {
        (void)fprintf(stderr, "audit trail has no checkpoint signed by this key: nothing in it is "
                              "proven (recomputed, or written without logging.audit_sign_key)\n");
        return 1;
    }
    (void)printf("signatures good: %lld checkpoints, signed through seq %lld; unsigned tail: %lld "
                 "records after it\n",
                 sg->checkpoints, sg->signed_seq, seq - sg->signed_seq);
    return 0;
}

/*
 * A signed checkpoint closes the same gaps without a head kept elsewhere:
 * with --public-key, a trail recomputed by someone who could write the file
 * but not read the logger's key fails at its first checkpoint, and the
 * records after the last one are reported as the unsigned tail.
 */
static int audit_verify(int argc, char **argv)
{
    char prev[65] = "", err[256];
    unsigned char pk[FM_AUDIT_PK_BYTES];
    long long seq = 0, records = 0;
    int partial = 0, i = 0;
    anchor head, *hp = NULL;
    signing sg = {0};

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--partial") == 0) {
            partial = 1;
        } else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc &&
                   parse_anchor(argv[i + 1], &head) == 0) {
            hp = &head;
            i++;
        } else if (strcmp(argv[i], "--public-key") == 0 && i + 1 < argc) {
            if (fm_audit_pubkey_load(argv[++i], pk, err, sizeof(err)) != FM_OK) {
                (void)fprintf(stderr, "fetchml-admin: %s\n", err);
                return 2;
            }
            sg.pk = pk;
        } else {
            (void)fprintf(stderr, "fetchml-admin: audit-verify takes [--partial] [--head "
                                  "SEQ:HASH] [--public-key FILE] FILE... (--head as printed by "
                                  "audit-verify)\n");
            return 2;
        }
    }
    if (i >= argc)
        return usage();
    for (; i < argc; i++)
        if (verify_file(argv[i], partial, hp, &sg, prev, &seq, &records) != 0)
            return 1;
    if (hp != NULL && seq < hp->seq) {
        (void)fprintf(stderr,
                      "audit trail ends at seq %lld, before the recorded head %lld: records "
                      "were removed from its end\n",
                      seq, hp->seq);
        return 1;
    }
    (void)printf("audit trail intact: %lld records, seq %lld..%lld, head %lld:%s\n", records,
                 records > 0 ? seq - records + 1 : 0, seq, seq, records > 0 ? prev : "-");
    return report_signing(&sg, seq);
}

/* audit-keygen: the logger's signing key pair, each file created new. */
static int audit_keygen(const char *secret_path, const char *public_path)
{
    char err[512];

    if (fm_audit_keygen(secret_path, public_path, err, sizeof(err)) != FM_OK) {
        (void)fprintf(stderr, "fetchml-admin: audit-keygen: %s\n", err);
        return 1;
    }
    (void)printf("# audit signing key in %s (mode 0600: only the audit logger may read it), "
                 "public key in %s\n"
                 "# config:  logging:\n#             audit_sign_key: \"%s\"\n"
                 "# verify:  fetchml-admin audit-verify --public-key %s AUDIT_FILE...\n",
                 secret_path, public_path, secret_path, public_path);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* publisher-token: the relay's token and nginx's check of it, each file created new. */
static int publisher_token(const char *token_path, const char *nginx_path)
{
    char err[512];

    if (fm_nchan_token_new(token_path, nginx_path, err, sizeof(err)) != FM_OK) {
        (void)fprintf(stderr, "fetchml-admin: publisher-token: %s\n", err);
        return 1;
    }
    (void)printf("# publisher token in %s, nginx's check of it in %s (both mode 0600, root's)\n"
                 "# config:  websocket:\n#             publisher_token_file: \"%s\"\n"
                 "# nginx:   include %s;   (in nchan's publisher server)\n",
                 token_path, nginx_path, token_path, nginx_path);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (fm_daemon_sodium("fetchml-admin") != FM_OK)
        return 1;
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0 && argc <= 4)
        return keygen(argc > 2 ? argv[2] : "user", argc > 3 ? argv[3] : "researcher");
    if (argc == 2 && strcmp(argv[1], "hash") == 0)
        return hash_stdin();
    if (argc == 3 && strcmp(argv[1], "check-config") == 0)
        return check_config(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "rotate") == 0)
        return rotate(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "redis-acl") == 0)
        return redis_acl(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "audit-verify") == 0)
        return audit_verify(argc - 2, argv + 2);
    if (argc == 4 && strcmp(argv[1], "audit-keygen") == 0)
        return audit_keygen(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "publisher-token") == 0)
        return publisher_token(argv[2], argv[3]);
    return usage();
}
