/*
 * config.h - the YAML configuration, parsed once into an immutable snapshot.
 *
 * The file format is FetchML's; every key is documented in conf/README.md.
 * Loading is all-or-nothing: any error (unknown or duplicate key, wrong type, bad CIDR, bad hash,
 * YAML alias or anchor, nesting deeper than FM_CONFIG_MAX_DEPTH, an unsafe setting such as
 * auth.enabled: false, an unknown or cyclic role inheritance, an unset ${VAR}) fails the whole load
 * with one message "file:line:col: message", and the caller keeps whatever
 * snapshot it had. The request path only reads a snapshot; a reload builds a
 * new one and swaps it whole.
 */
#ifndef FM_CONFIG_H
#define FM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "bruteforce.h"
#include "err.h"
#include "ipacl.h"
#include "log.h"
#include "ratelimit.h"
#include "rbac.h"
#include "sentinel.h"

#define FM_CONFIG_MAX_DEPTH 8
#define FM_NAME_MAX 64          /* user and role names: [A-Za-z0-9_.-]{1,63} */
#define FM_KEY_HASH_BYTES 32    /* SHA-256 digest */
#define FM_KEY_ID_LEN 12        /* hex characters of a key fingerprint (fm_config_key_id) */
#define FM_CONFIG_ERR_MAX 512   /* enough for any "file:line:col: message" */
#define FM_ROLE_INHERIT_MAX 16  /* longest chain of auth.roles.<r>.inherits links */
#define FM_SECRET_FILE_MAX 4096 /* largest redis.password_file, bytes */
#define FM_ORIGIN_MAX 272       /* websocket.allowed_origins entry: "https://" + host + ":port" */

typedef struct fm_key {
    unsigned char hash[FM_KEY_HASH_BYTES]; /* SHA-256 of the API key */
    char id[FM_KEY_ID_LEN + 1];            /* fm_config_key_id of hash, made once at load */
    int64_t expires;                       /* Unix seconds; 0 = never */
    char label[FM_NAME_MAX];               /* operator's note, may be empty */
} fm_key;

typedef struct fm_role {
    char name[FM_NAME_MAX];
    fm_perms perms; /* effective: inherited roles | grants, & ~denies */
    bool has_rate;  /* rate_limit given for this role (not inherited) */
    fm_rate rate;
} fm_role;

typedef struct fm_user {
    char name[FM_NAME_MAX];
    bool admin;
    char (*roles)[FM_NAME_MAX]; /* role names as written, nroles of them */
    size_t nroles;
    fm_perms grants;       /* permissions: {p: true} */
    fm_perms denies;       /* permissions: {p: false} */
    fm_perms effective;    /* computed at load, see rbac.h */
    fm_ipacl ip_whitelist; /* count == 0: no per-user restriction */
    fm_key *keys;
    size_t nkeys;
    bool has_rate; /* rate_limit given for this user */
    fm_rate rate;
    const fm_rate *rate_eff; /* computed at load, see fm_config_user_rate */
} fm_user;

/* One slot of the open-addressing index from key hash to (user, key). */
typedef struct fm_key_slot {
    const fm_user *user; /* NULL = empty slot */
    const fm_key *key;
} fm_key_slot;

typedef struct fm_config {
    char *path;      /* file it was loaded from */
    char **warnings; /* "file: warning: ..." lines for the log */
    size_t nwarnings;

    struct {
        char *listen;          /* "unix:/path" or "host:port" */
        int workers;           /* 1..256 */
        size_t max_body_bytes; /* request body limit, bytes */
        mode_t socket_mode;    /* unix socket mode, default 0660 */
        char *socket_group;    /* group name or NULL */
        char *user;            /* account the master drops to when started as root; NULL = none */
        uid_t uid;             /* server.user's uid (getpwnam at load) */
        gid_t gid;             /* and its primary group */
        uid_t *peers;          /* server.allowed_peers as uids (names resolved at load) */
        size_t npeers;         /* how many; the pool's own uid is always allowed besides */
        bool tls_enabled;      /* informational: nginx terminates TLS */
        char *tls_cert_file, *tls_key_file;
    } server;

    struct {
        fm_ipacl ip_whitelist; /* count == 0: every address allowed */
        fm_role *roles;        /* built-in roles plus auth.roles */
        size_t nroles;
        fm_user *users;
        size_t nusers;
    } auth;

    struct {
        fm_rate rate;               /* default per-user bucket */
        bool on_redis_error_allow;  /* false (default): deny with 503 */
        fm_bf_policy auth_failures; /* brute-force guard, per client address (and anonymous) */
    } rate_limit;

    struct {
        char *addr;            /* "unix:/path" or "host:port" */
        char *username;        /* ACL user (AUTH username password), NULL = AUTH password */
        char *password;        /* resolved secret, NULL = none */
        char *password_source; /* "env NAME" or "file /path", NULL = none */
        int db;                /* 0..15 */
        char *key_prefix;      /* e.g. "fetchml:" */
        int timeout_ms;        /* connect and command timeout, ms */
        char **sentinels;      /* "host:port" each, nsentinels (0..FM_SENTINEL_MAX); 0: addr */
        size_t nsentinels;
        char *master_name;              /* the name the sentinels monitor; NULL without them */
        char *sentinel_password;        /* resolved secret for the sentinels, NULL = none */
        char *sentinel_password_source; /* "env NAME" or "file /path", NULL = none */
    } redis;

    struct {
        fm_log_level level;
        bool audit;     /* must be true: the audit trail is not optional */
        char *file;     /* audit log path */
        char *api_file; /* operational log path, NULL = stderr only */

        fm_audit_sync audit_sync;   /* when audit records are fdatasync'ed */
        int audit_sync_ms;          /* interval: at most this often, ms (1..3600000) */
        char *audit_sign_key;       /* Ed25519 secret key file of the audit logger, NULL = none */
        int audit_sign_interval_ms; /* checkpoint at most this often, ms (100..86400000) */
        char *audit_user; /* the audit logger's own account, NULL = none (see conf/README.md) */
        uid_t audit_uid;  /* audit_user's uid and primary group, set with it */
        gid_t audit_gid;
    } logging;

    struct {
        char *experiments_dir;      /* <dir>/<user>/<experiment>/<path>, see exptree.h */
        uint64_t max_file_bytes;    /* largest uploaded file, bytes (1..2^40, 1 GiB) */
        uint64_t quota_bytes;       /* bytes of files per user (1..2^50, 10 GiB) */
        long quota_files;           /* files + directories per user (1..10000000, 10000) */
        int uploads_per_minute;     /* PUTs per user per minute, token bucket (1..100000, 10) */
        int concurrent_transfers;   /* streamed uploads and large downloads the pool serves at
                                       once (0..256; 0, the default: half of server.workers, at
                                       least 1) */
        uint64_t min_transfer_rate; /* bytes a second a transfer must keep up, with 10 s of
                                       credit (1..2^30, 65536; lib/base/pace.h) */
    } data;
    struct {
        int lease_seconds;     /* a claim's lease, extended by each heartbeat (1..86400, 60) */
        int max_attempts;      /* claims before an expired lease fails the task (1..100, 3) */
        int sweep_interval_ms; /* how often the sweeper looks for expired leases (100..60000, 1000)
                                */
    } jobs;
    struct {
        size_t max_task_bytes;     /* largest task record, bytes (65536) */
        long max_open_tasks;       /* queued + running tasks per user (1000) */
        size_t max_response_bytes; /* largest response body, bytes (4194304) */
    } limits;

    struct {
        char (*origins)[FM_ORIGIN_MAX]; /* allowed_origins, norigins of them, lower case */
        size_t norigins;
        char *publisher; /* "unix:<path>" of nchan's publisher location; NULL = no relay */
        char *publisher_token_file; /* the relay's token for it (nchan.h); set with publisher */
    } websocket;

    fm_key_slot *key_index; /* power-of-two sized, see fm_config_find_key */
    size_t key_index_size;
    unsigned char key_index_key[16]; /* the index's SipHash key, drawn at load */
} fm_config;

/*
 * fm_config_load - read and validate the YAML file at path.
 *
 * Every string value may use ${NAME}, replaced by that environment variable
 * before the value is checked ($${ is a literal ${). Secrets are resolved at
 * load time: redis.password_env names a variable, or redis.password_file a
 * mode-0600 file (a bare password or a REDIS_PASSWORD= line), whose value
 * becomes redis.password. The process keeps, for its life, a descriptor of
 * the last password file read for each of redis.password_file and
 * redis.sentinel_password_file (close-on-exec); a later load of the same
 * path that cannot open it (EACCES: the process gave up root) reads the file
 * through that descriptor, and its *_source then says "(kept open: it cannot
 * be opened again)". Returns a new snapshot owned by the caller (free
 * with fm_config_free), with non-fatal findings (a world-readable file) in
 * cfg->warnings; or NULL with "file:line:col: message" in err (errlen bytes,
 * always NUL-terminated; use FM_CONFIG_ERR_MAX). Errors not tied to a position
 * (unreadable file, empty file) use line and column 0. Never puts a secret,
 * or any text that came from the environment, in err.
 */
FM_MUST_CHECK fm_config *fm_config_load(const char *path, char *err, size_t errlen);

/* fm_config_free - release a snapshot and everything it owns. NULL is accepted. */
void fm_config_free(fm_config *cfg);

/*
 * fm_config_find_key - O(1) lookup of a SHA-256 key hash (32 bytes).
 * The index is keyed by a keyed SipHash of the digest, so O(1) holds for any
 * hashes a file gives; the final comparison of the full digest is
 * constant-time (sodium_memcmp).
 * Returns true and sets *user and *key when found, false otherwise. Expiry
 * is not checked here: see fm_auth_authenticate.
 */
FM_MUST_CHECK bool fm_config_find_key(const fm_config *cfg,
                                      const unsigned char hash[FM_KEY_HASH_BYTES],
                                      const fm_user **user, const fm_key **key);

/*
 * fm_config_key_id - non-secret fingerprint of a key hash for logs and the
 * audit trail: the first FM_KEY_ID_LEN hex digits of SHA-256("fetchml-key-id:"
 * || hash). Knowing it reveals neither the key nor its hash. out gets
 * FM_KEY_ID_LEN + 1 bytes, NUL-terminated. A loaded key has its own in id.
 */
void fm_config_key_id(const unsigned char hash[FM_KEY_HASH_BYTES], char out[FM_KEY_ID_LEN + 1]);

/*
 * fm_config_user_rate - the bucket for user, in O(1) (chosen at load): its own
 * rate_limit if given; else, among its roles that give a rate_limit, the one
 * with the highest requests_per_minute (ties: the higher burst); else the
 * default rate_limit. user NULL yields the default. The pointer is into cfg.
 */
const fm_rate *fm_config_user_rate(const fm_config *cfg, const fm_user *user);

/* fm_config_level_name - "debug", "info", "warn" or "error". */
const char *fm_config_level_name(fm_log_level level);

#endif
