/*
 * test_config.c - unit tests for lib/config/: every refusal with its exact
 * "file:line:col: message", the defaults, every key, the key index, the rows
 * engine on a table wider than 32 keys, and the two example configurations in
 * conf/.
 */
#include <check.h>
#include <fcntl.h>
#include <pwd.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "loader.h"

#include "helpers.h"

/* SHA-256 of "alice-example-key-do-not-use" and "bob-example-key-do-not-use". */
#define H_ALICE "f8aa459c8007d5231291de7576da156bd02eccc6810c8ec1e66170c8c617d323"
#define H_BOB "8bbadb884dafed2485a8a9bf7ea6dfec38eac5c139e6c60e6c87c8264526ce80"
#define H_ZERO "0000000000000000000000000000000000000000000000000000000000000000"
#define H_ONE "1111111111111111111111111111111111111111111111111111111111111111"
#define H_TWO "2222222222222222222222222222222222222222222222222222222222222222"
#define H_THREE "3333333333333333333333333333333333333333333333333333333333333333"

/* Four lines: the smallest valid configuration. */
#define USERS "auth:\n  api_keys:\n    alice:\n      hash: \"" H_ALICE "\"\n"

static char tmpdir[64];
static char cfgpath[128];
static char extra[16][192]; /* more files and directories made in tmpdir by a test */
static size_t nextra;

static void setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    (void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    (void)snprintf(cfgpath, sizeof(cfgpath), "%s/config.yaml", tmpdir);
}

static void teardown(void)
{
    for (size_t i = 0; i < nextra; i++)
        (void)remove(extra[i]);
    nextra = 0;
    (void)unlink(cfgpath);
    (void)rmdir(tmpdir);
}

/* A name in tmpdir, removed by teardown. */
static const char *extra_path(const char *name)
{
    ck_assert_uint_lt(nextra, sizeof(extra) / sizeof(extra[0]));
    (void)snprintf(extra[nextra], sizeof(extra[0]), "%s/%s", tmpdir, name);
    return extra[nextra++];
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static fm_config *load(const char *yaml, char err[FM_CONFIG_ERR_MAX])
{
    write_file(cfgpath, yaml, strlen(yaml));
    ck_assert_int_eq(chmod(cfgpath, 0600), 0);
    return fm_config_load(cfgpath, err, FM_CONFIG_ERR_MAX);
}

/* A secret file in tmpdir with the given content and mode; returns its path. */
static const char *secret_file(const char *name, const char *text, size_t len, mode_t mode)
{
    const char *path = extra_path(name);

    write_file(path, text, len);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

/* want is "line:col: message"; the file name is prepended here. */
static void expect_error(const char *yaml, const char *want)
{
    char err[FM_CONFIG_ERR_MAX], full[FM_CONFIG_ERR_MAX + 128];
    fm_config *cfg = load(yaml, err);

    ck_assert_ptr_null(cfg);
    (void)snprintf(full, sizeof(full), "%s:%s", cfgpath, want);
    ck_assert_str_eq(err, full);
}

static fm_config *load_ok(const char *yaml)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = load(yaml, err);

    ck_assert_msg(cfg != NULL, "load failed: %s", err);
    ck_assert_str_eq(err, "");
    return cfg;
}

static const fm_user *user_named(const fm_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        if (strcmp(cfg->auth.users[i].name, name) == 0)
            return &cfg->auth.users[i];
    }
    ck_abort_msg("no user %s", name);
    return NULL;
}

static const fm_role *role_named(const fm_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->auth.nroles; i++) {
        if (strcmp(cfg->auth.roles[i].name, name) == 0)
            return &cfg->auth.roles[i];
    }
    return NULL;
}

static void hex_hash(const char *hex, unsigned char out[FM_KEY_HASH_BYTES])
{
    size_t len;

    ck_assert_int_eq(sodium_hex2bin(out, FM_KEY_HASH_BYTES, hex, strlen(hex), NULL, &len, NULL), 0);
    ck_assert_uint_eq(len, FM_KEY_HASH_BYTES);
}

static fm_perms perm(const char *text)
{
    char err[256];
    fm_perms p;

    ck_assert_int_eq(fm_rbac_parse(text, &p, err, sizeof(err)), FM_OK);
    return p;
}

/* ---- every refusal ------------------------------------------------------------ */

static const struct {
    const char *yaml;
    const char *want;
} bad[] = {
    /* YAML syntax */
    {"server:\n  workers: [1, 2\n" USERS,
     "3:5: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence "
     "at line 2)"},
    {"server:\n\tworkers: 4\n",
     "2:1: YAML syntax error: found character that cannot start any token (while scanning for "
     "the next token at line 2)"},
    {"a: \xff\n", "1:4: YAML syntax error: invalid leading UTF-8 octet at byte 3"},
    /* unknown keys at every level */
    {"raet_limit: {}\n" USERS, "1:1: unknown key \"raet_limit\" at top level"},
    {USERS "rate_limit:\n  raet_limit: 5\n", "6:3: unknown key \"raet_limit\" in rate_limit"},
    {USERS "server:\n  tls:\n    enable: true\n", "7:5: unknown key \"enable\" in server.tls"},
    {USERS "      hashh: x\n", "5:7: unknown key \"hashh\" in auth.api_keys.alice"},
    {USERS "      keys: [{hash: \"" H_BOB "\", lable: x}]\n",
     "5:89: unknown key \"lable\" in auth.api_keys.alice.keys[0]"},
    {USERS "      rate_limit: {rpm: 1}\n",
     "5:20: unknown key \"rpm\" in auth.api_keys.alice.rate_limit"},
    {USERS "  roles:\n    ops: {perms: {}}\n", "6:11: unknown key \"perms\" in auth.roles.ops"},
    {USERS "redis:\n  password: hunter2\n", "6:3: unknown key \"password\" in redis"},
    {USERS "  roles:\n    ops:\n      permissions:\n        ? [a]\n        : true\n",
     "8:11: keys in auth.roles.ops.permissions must be strings"},
    /* duplicate keys at every level */
    {"server: {}\nserver: {}\n" USERS, "2:1: duplicate key \"server\" at top level"},
    {USERS "  roles: {}\n  roles: {}\n", "6:3: duplicate key \"roles\" in auth"},
    {USERS "    alice:\n      hash: \"" H_BOB "\"\n",
     "5:5: duplicate key \"alice\" in auth.api_keys"},
    {USERS "      hash: \"" H_BOB "\"\n", "5:7: duplicate key \"hash\" in auth.api_keys.alice"},
    {USERS "      permissions: {\"jobs:read\": true, \"jobs:read\": false}\n",
     "5:40: duplicate key \"jobs:read\" in auth.api_keys.alice.permissions"},
    {USERS "  roles:\n    ops: {}\n    ops: {}\n", "7:5: duplicate key \"ops\" in auth.roles"},
    {USERS "  roles:\n    analyst: {}\n    analyst: {}\n",
     "7:5: duplicate key \"analyst\" in auth.roles"},
    {USERS "logging: {level: info, level: warn}\n", "5:24: duplicate key \"level\" in logging"},
    /* anchors, aliases, tags */
    {"server: &s {workers: 2}\n" USERS, "1:9: YAML anchors and aliases are not allowed"},
    {"server: *s\n" USERS, "1:9: YAML anchors and aliases are not allowed"},
    {USERS "data:\n  experiments_dir: &d /x\n", "6:20: YAML anchors and aliases are not allowed"},
    {"server: !!map {}\n" USERS, "1:9: YAML tags are not allowed"},
    /* a structure error anywhere wins over a schema error before it */
    {"raet_limit: {}\n" USERS "data: {experiments_dir: &d /x}\n",
     "6:25: YAML anchors and aliases are not allowed"},
    {"server: 5\n" USERS "data:\n  a: [[[[[[[[1]]]]]]]]\n", "7:12: nesting deeper than 8 levels"},
    {"server: 5\n" USERS "---\nserver: {}\n", "6:1: more than one YAML document"},
    {"server: 5\n" USERS "data: [1, 2\n", "7:1: YAML syntax error: did not find expected ',' or "
                                          "']' (while parsing a flow sequence at line 6)"},
    /* nesting */
    {"server: [[[[[[[[1]]]]]]]]\n", "1:16: nesting deeper than 8 levels"},
    {"a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        i: 1\n",
     "9:9: nesting deeper than 8 levels"},
    /* wrong types */
    {"- server\n", "1:1: the top level must be a mapping"},
    {"hello\n", "1:1: the top level must be a mapping"},
    {"server: 5\n" USERS, "1:9: server must be a mapping"},
    {USERS "  ip_whitelist: \"10.0.0.0/8\"\n",
     "5:17: auth.ip_whitelist must be a list of CIDR blocks"},
    {USERS "  ip_whitelist: [[\"10.0.0.0/8\"]]\n",
     "5:18: auth.ip_whitelist[0] must be a CIDR block"},
    {USERS "server:\n  workers: {a: 1}\n",
     "6:12: server.workers must be an integer between 1 and 256"},
    {USERS "      roles: researcher\n",
     "5:14: auth.api_keys.alice.roles must be a list of role names"},
    {USERS "      permissions: [\"jobs:read\"]\n",
     "5:20: auth.api_keys.alice.permissions must be a mapping of permissions to true or false"},
    {"auth:\n  api_keys: [alice]\n", "2:13: auth.api_keys must be a mapping of user names"},
    {USERS "data:\n  experiments_dir: ~\n", "6:20: data.experiments_dir must be a path"},
    {USERS "data:\n  experiments_dir: [/x]\n", "6:20: data.experiments_dir must be a path"},
    {"? [a]\n: 1\n", "1:3: keys at top level must be strings"},
    /* integers */
    {USERS "server: {workers: 4x}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: 0x10}\n",
     "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: +4}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: 010}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: 257}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: 0}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: -1}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: \"4\"}\n",
     "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {workers: 4.0}\n", "5:19: server.workers must be an integer between 1 and 256"},
    {USERS "server: {max_body_bytes: 99999999999999999999}\n",
     "5:26: server.max_body_bytes must be an integer between 1 and 67108864"},
    {USERS "redis: {db: 16}\n", "5:13: redis.db must be an integer between 0 and 15"},
    {USERS "redis: {timeout_ms: 60001}\n",
     "5:21: redis.timeout_ms must be an integer between 1 and 60000"},
    {USERS "rate_limit: {burst: 1000001}\n",
     "5:21: rate_limit.burst must be an integer between 1 and 1000000"},
    {USERS "      rate_limit: {requests_per_minute: 0}\n",
     "5:41: auth.api_keys.alice.rate_limit.requests_per_minute must be an integer between 1 and "
     "1000000"},
    /* booleans */
    {USERS "      admin: yes\n", "5:14: auth.api_keys.alice.admin must be true or false"},
    {USERS "      admin: True\n", "5:14: auth.api_keys.alice.admin must be true or false"},
    {USERS "      admin: \"true\"\n", "5:14: auth.api_keys.alice.admin must be true or false"},
    {USERS "server: {tls: {enabled: 1}}\n", "5:25: server.tls.enabled must be true or false"},
    /* hashes */
    {"auth:\n  api_keys:\n    alice:\n      hash: \"" H_ALICE "0\"\n",
     "4:13: auth.api_keys.alice.hash must be exactly 64 hex digits (the SHA-256 of the key)"},
    {"auth:\n  api_keys:\n    alice:\n      hash: \"f8aa459c\"\n",
     "4:13: auth.api_keys.alice.hash must be exactly 64 hex digits (the SHA-256 of the key)"},
    {"auth:\n  api_keys:\n    alice:\n      hash: "
     "g8aa459c8007d5231291de7576da156bd02eccc6810c8ec1e66170c8c617d323\n",
     "4:13: auth.api_keys.alice.hash must be exactly 64 hex digits (the SHA-256 of the key)"},
    {"auth:\n  api_keys:\n    alice:\n      hash: "
     "\"f8aa459c8007d5231291de7576da156bd02eccc6810c8ec1e66170c8c617d32:\"\n",
     "4:13: auth.api_keys.alice.hash must be exactly 64 hex digits (the SHA-256 of the key)"},
    {"auth:\n  api_keys:\n    alice:\n      hash: \"\"\n",
     "4:13: auth.api_keys.alice.hash must be exactly 64 hex digits (the SHA-256 of the key)"},
    {"auth:\n  api_keys:\n    alice:\n      keys:\n        - hash: 1234\n",
     "5:17: auth.api_keys.alice.keys[0].hash must be exactly 64 hex digits (the SHA-256 of the "
     "key)"},
    /* CIDR blocks */
    {USERS "  ip_whitelist: [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n",
     "5:32: auth.ip_whitelist[1]: invalid CIDR \"10.0.0.1/8\": host bits set below /8"},
    {USERS "      ip_whitelist: [\"10.0.0.0/33\"]\n",
     "5:22: auth.api_keys.alice.ip_whitelist[0]: invalid CIDR \"10.0.0.0/33\": prefix must be "
     "0..32"},
    {USERS "  ip_whitelist: []\n",
     "5:17: auth.ip_whitelist is empty; omit it to allow every address, or list the allowed "
     "networks"},
    {USERS "      ip_whitelist: []\n",
     "5:21: auth.api_keys.alice.ip_whitelist is empty; omit it to allow every address, or list "
     "the allowed networks"},
    /* names */
    {"auth:\n  api_keys:\n    \"al ice\":\n      hash: \"" H_ALICE "\"\n",
     "3:5: invalid user name \"al ice\" in auth.api_keys: use 1 to 63 characters [A-Za-z0-9_.-], "
     "not \".\" or \"..\""},
    {"auth:\n  api_keys:\n    ..:\n      hash: \"" H_ALICE "\"\n",
     "3:5: invalid user name \"..\" in auth.api_keys: use 1 to 63 characters [A-Za-z0-9_.-], not "
     "\".\" or \"..\""},
    {"auth:\n  api_keys:\n    "
     "a123456789b123456789c123456789d123456789e123456789f123456789abcd:\n      hash: "
     "\"" H_ALICE "\"\n",
     "3:5: invalid user name \"a123456789b123456789c123456789d123456789e1234567...\" in "
     "auth.api_keys: use 1 to 63 characters [A-Za-z0-9_.-], not \".\" or \"..\""},
    {USERS "  roles:\n    \"ops/x\": {}\n",
     "6:5: invalid role name \"ops/x\" in auth.roles: use 1 to 63 characters [A-Za-z0-9_.-], not "
     "\".\" or \"..\""},
    {USERS "      roles: [\"a b\"]\n", "5:15: auth.api_keys.alice.roles[0]: invalid role name "
                                       "\"a b\""},
    {USERS "      roles: [analyst, analyst]\n",
     "5:24: auth.api_keys.alice.roles[1]: role \"analyst\" is listed twice"},
    {USERS "server: {socket_group: \"www data\"}\n",
     "5:24: server.socket_group must be a group name of 1 to 63 characters [A-Za-z0-9_.-]"},
    {USERS "server: {user: root}\n",
     "5:16: server.user: \"root\" has uid 0; the pool never serves as root"},
    {USERS "server: {user: no-such-user-fm}\n",
     "5:16: server.user: no user \"no-such-user-fm\" on this host"},
    {USERS "logging: {audit_user: root}\n",
     "5:23: logging.audit_user: \"root\" has uid 0; the pool never serves as root"},
    {USERS "logging: {audit_user: no-such-user-fm}\n",
     "5:23: logging.audit_user: no user \"no-such-user-fm\" on this host"},
    {USERS "server: {user: \"a b\"}\n",
     "5:16: server.user must be a user name of 1 to 63 characters [A-Za-z0-9_.-]"},
    {USERS "server: {allowed_peers: [nobody, no-such-user-fm]}\n",
     "5:34: server.allowed_peers[1]: no user \"no-such-user-fm\" on this host"},
    {USERS "server: {allowed_peers: [\"4294967295\"]}\n",
     "5:26: server.allowed_peers[0] must be a user name or a uid (0..4294967294)"},
    {USERS "server: {allowed_peers: [\"012\"]}\n",
     "5:26: server.allowed_peers[0] must be a user name or a uid (0..4294967294)"},
    {USERS "server: {allowed_peers: nobody}\n",
     "5:25: server.allowed_peers must be a list of user names and uids"},
    {USERS "server: {listen: \"127.0.0.1:9000\", allowed_peers: [nobody]}\n",
     "5:9: server.allowed_peers needs a unix server.listen: the peer of a TCP connection cannot "
     "be known"},
    /* roles and permissions */
    {USERS "      roles: [analyst, reseacher]\n",
     "5:24: user \"alice\" has unknown role \"reseacher\""},
    {USERS "      permissions: {\"jobs:fly\": true}\n",
     "5:21: auth.api_keys.alice.permissions: unknown permission \"jobs:fly\" (expected "
     "<resource>:<action>, resources jobs|experiments|metrics, actions "
     "read|create|update|delete|write|run|*)"},
    {USERS "  roles:\n    ops: {permissions: {\"metrics\": true}}\n",
     "6:25: auth.roles.ops.permissions: unknown permission \"metrics\" (expected "
     "<resource>:<action>, resources jobs|experiments|metrics, actions "
     "read|create|update|delete|write|run|*)"},
    {USERS "      permissions: {\"jobs:read\": yes}\n",
     "5:34: auth.api_keys.alice.permissions.jobs:read must be true or false"},
    /* keys */
    {USERS "    bob:\n      admin: true\n", "5:5: user \"bob\" has no key: give hash or keys"},
    {USERS "    bob:\n      keys: []\n", "5:5: user \"bob\" has no key: give hash or keys"},
    {USERS "    bob: {}\n", "5:5: user \"bob\" has no key: give hash or keys"},
    {USERS "    bob:\n      keys:\n        - label: laptop\n",
     "7:11: auth.api_keys.bob.keys[0].hash is required"},
    {USERS "    bob:\n      hash: \"" H_ALICE "\"\n",
     "6:13: key hash of user \"bob\" is already used by user \"alice\""},
    {USERS "      keys: [{hash: \"" H_ALICE "\"}]\n",
     "5:14: key hash of user \"alice\" is already used by user \"alice\""},
    {USERS "    bob:\n      hash: \"" H_BOB "\"\n    carol:\n      keys:\n        - hash: "
           "\"" H_BOB "\"\n",
     "9:11: key hash of user \"carol\" is already used by user \"bob\""},
    {USERS "      keys: [{hash: \"" H_BOB "\", expires: tomorrow}]\n",
     "5:98: auth.api_keys.alice.keys[0].expires must be an RFC 3339 time (2026-01-31T12:00:00Z) "
     "or a date (2026-01-31) after 1970"},
    {USERS "      keys: [{hash: \"" H_BOB "\", expires: \"2026-02-30\"}]\n",
     "5:98: auth.api_keys.alice.keys[0].expires must be an RFC 3339 time (2026-01-31T12:00:00Z) "
     "or a date (2026-01-31) after 1970"},
    {USERS "      keys: [{hash: \"" H_BOB "\", label: "
           "\"0123456789012345678901234567890123456789012345678901234567890123\"}]\n",
     "5:96: auth.api_keys.alice.keys[0].label must be at most 63 characters without control "
     "characters"},
    {USERS "      keys: [{hash: \"" H_BOB "\", label: \"a\\nb\"}]\n",
     "5:96: auth.api_keys.alice.keys[0].label must be at most 63 characters without control "
     "characters"},
    /* unsafe settings */
    {USERS "  enabled: false\n",
     "5:12: auth.enabled: false is refused: anonymous access is not supported"},
    {USERS "  apikeys:\n    bob:\n      hash: \"" H_BOB "\"\n",
     "5:3: auth.api_keys and auth.apikeys are the same setting: give only one"},
    {USERS "logging:\n  audit: false\n",
     "6:10: logging.audit: false is refused: the audit trail is mandatory"},
    {USERS "server: {socket_mode: \"0666\"}\n",
     "5:23: server.socket_mode must not grant any permission to other users"},
    {USERS "server: {socket_mode: \"0x60\"}\n",
     "5:23: server.socket_mode must be octal digits like \"0660\""},
    {USERS "server: {socket_mode: \"4660\"}\n",
     "5:23: server.socket_mode must be octal digits like \"0660\""},
    {USERS "server: {socket_mode: \"66\"}\n",
     "5:23: server.socket_mode must be octal digits like \"0660\""},
    {USERS "server:\n  tls:\n    enabled: true\n    cert_file: /c.pem\n",
     "7:5: server.tls.cert_file and server.tls.key_file are required when server.tls.enabled is "
     "true"},
    /* documents */
    {USERS "---\nserver: {}\n", "5:1: more than one YAML document"},
    {"", "0:0: configuration file is empty"},
    {"# only a comment\n", "0:0: configuration file is empty"},
    {"server: {}\n", "0:0: auth.api_keys is required: define at least one user"},
    {"auth:\n  api_keys: {}\n", "2:13: auth.api_keys must define at least one user"},
    /* redis */
    {USERS "redis:\n  password_env: FM_TEST_UNSET_VARIABLE\n",
     "6:17: redis.password_env: environment variable FM_TEST_UNSET_VARIABLE is not set"},
    {USERS "redis:\n  password_env: FM_TEST_EMPTY_VARIABLE\n",
     "6:17: redis.password_env: environment variable FM_TEST_EMPTY_VARIABLE is empty"},
    {USERS "redis:\n  password_env: ${FM_TEST_VAR_NAME}\n",
     "6:17: redis.password_env: environment variable ${FM_TEST_VAR_NAME} is not set"},
    {USERS "redis:\n  password_env: FM_TEST_ROLE\n  password_file: /x\n",
     "7:3: redis.password_env and redis.password_file are alternatives: give only one"},
    {USERS "redis:\n  password_file: ~\n", "6:18: redis.password_file must be a path"},
    {USERS "redis:\n  password_file: \"\"\n", "6:18: redis.password_file must be a non-empty path"},
    {USERS "redis:\n  password_file: /nonexistent/fm-test/redis.env\n",
     "6:18: redis.password_file: /nonexistent/fm-test/redis.env: cannot open: No such file or "
     "directory"},
    {USERS "redis:\n  password_file: ${FM_TEST_MISSING_FILE}\n",
     "6:18: redis.password_file: ${FM_TEST_MISSING_FILE}: cannot open: No such file or "
     "directory"},
    {USERS "redis:\n  password_env: \"1PASS\"\n",
     "6:17: redis.password_env must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"},
    {USERS "redis: {addr: \"localhost\"}\n",
     "5:15: redis.addr must be \"unix:/path\" or \"host:port\" with port 1..65535"},
    {USERS "redis: {addr: \"localhost:0\"}\n",
     "5:15: redis.addr must be \"unix:/path\" or \"host:port\" with port 1..65535"},
    {USERS "redis: {addr: \"localhost:65536\"}\n",
     "5:15: redis.addr must be \"unix:/path\" or \"host:port\" with port 1..65535"},
    {USERS "redis: {addr: \"local host:6379\"}\n",
     "5:15: redis.addr must be \"unix:/path\" or \"host:port\" with port 1..65535"},
    {USERS "redis: {addr: \"unix:\"}\n", "5:15: redis.addr must be a non-empty path"},
    {USERS "redis: {sentinels: [\"127.0.0.1:26379\"]}\n",
     "5:8: redis.sentinels needs redis.master_name: the name they monitor"},
    {USERS "redis: {master_name: m}\n", "5:8: redis.master_name needs redis.sentinels"},
    {USERS "redis: {sentinels: [], master_name: m}\n",
     "5:21: redis.sentinels must not be empty (leave it out for no sentinels)"},
    {USERS "redis: {sentinels: \"127.0.0.1:26379\", master_name: m}\n",
     "5:20: redis.sentinels must be a list of \"host:port\""},
    {USERS "redis: {sentinels: [\"unix:/run/s.sock\"], master_name: m}\n",
     "5:21: redis.sentinels[0] must be \"host:port\" with port 1..65535"},
    {USERS "redis: {sentinels: [\"h:1\", \"h:1\"], master_name: m}\n",
     "5:28: redis.sentinels[1] repeats redis.sentinels[0]"},
    {USERS "redis: {sentinels: [\"h:1\"], master_name: \"my master\"}\n",
     "5:42: redis.master_name must be 1 to 63 characters [A-Za-z0-9._-]"},
    {USERS "redis:\n  sentinels: [\"h:1\"]\n  master_name: m\n"
           "  sentinel_password_env: FM_TEST_ROLE\n  sentinel_password_file: /x\n",
     "9:3: redis.sentinel_password_env and redis.sentinel_password_file are alternatives: give "
     "only one"},
    {USERS "redis:\n  sentinel_password_env: FM_TEST_ROLE\n",
     "6:3: redis.sentinel_password_env/_file need redis.sentinels"},
    {USERS "server: {listen: \"unix:/run/"
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "aaaaaaaaaaaaaaaaaaaa.sock\"}\n",
     "5:18: server.listen: unix socket path longer than 107 bytes"},
    {USERS "redis: {key_prefix: \"fetch ml:\"}\n",
     "5:21: redis.key_prefix must be 1 to 64 characters [A-Za-z0-9:_.-]"},
    {USERS "redis: {key_prefix: \"\"}\n",
     "5:21: redis.key_prefix must be 1 to 64 characters [A-Za-z0-9:_.-]"},
    {USERS "redis: {username: \"fetch ml\", password_env: FM_TEST_ROLE}\n",
     "5:19: redis.username must be 1 to 64 characters [A-Za-z0-9_.-]"},
    {USERS "redis: {username: fetchml}\n",
     "5:8: redis.username needs redis.password_env or redis.password_file"},
    /* role inheritance */
    {USERS "  roles:\n    ops: {inherits: [nope]}\n",
     "6:22: role \"ops\" inherits from unknown role \"nope\""},
    {USERS "  roles:\n    ops: {inherits: [\"${FM_TEST_ROLE}\"]}\n",
     "6:22: role \"ops\" inherits from unknown role \"${FM_TEST_ROLE}\""},
    {USERS "  roles:\n    a: {inherits: [b]}\n    b: {inherits: [a]}\n",
     "7:20: role inheritance cycle: a -> b -> a"},
    {USERS "  roles:\n    a: {inherits: [a]}\n", "6:20: role inheritance cycle: a -> a"},
    {USERS "  roles:\n    a: {inherits: [analyst, c]}\n    b: {inherits: [a]}\n"
           "    c: {inherits: [b]}\n",
     "7:20: role inheritance cycle: a -> c -> b -> a"},
    {USERS "  roles:\n    researcher: {inherits: [ops]}\n    ops: {inherits: [researcher]}\n",
     "7:22: role inheritance cycle: researcher -> ops -> researcher"},
    {USERS "  roles:\n    ops: {inherits: [analyst, analyst]}\n",
     "6:31: auth.roles.ops.inherits[1]: role \"analyst\" is listed twice"},
    {USERS "  roles:\n    ops: {inherits: [\"a b\"]}\n",
     "6:22: auth.roles.ops.inherits[0]: invalid role name \"a b\""},
    {USERS "  roles:\n    ops: {inherits: analyst}\n",
     "6:21: auth.roles.ops.inherits must be a list of role names"},
    {USERS "  roles:\n    ops: {inherits: [[analyst]]}\n",
     "6:22: auth.roles.ops.inherits[0] must be a role name"},
    {USERS "  roles:\n    ops: {rate_limit: {requests_per_minute: 1000001}}\n",
     "6:45: auth.roles.ops.rate_limit.requests_per_minute must be an integer between 1 and "
     "1000000"},
    {USERS "  roles:\n    ops: {rate_limit: {burst: 0}}\n",
     "6:31: auth.roles.ops.rate_limit.burst must be an integer between 1 and 1000000"},
    {USERS "  roles:\n    ops: {rate_limit: {rpm: 5}}\n",
     "6:24: unknown key \"rpm\" in auth.roles.ops.rate_limit"},
    {USERS "  roles:\n    ops: {rate_limit: {}, rate_limit: {}}\n",
     "6:27: duplicate key \"rate_limit\" in auth.roles.ops"},
    /* ${VAR} expansion */
    {USERS "data: {experiments_dir: \"${FM_TEST_UNSET_VARIABLE}/x\"}\n",
     "5:25: data.experiments_dir: environment variable FM_TEST_UNSET_VARIABLE is not set"},
    {USERS "data: {experiments_dir: \"/x/${FM_TEST_DIR\"}\n",
     "5:25: data.experiments_dir: unterminated \"${\""},
    {USERS "data: {experiments_dir: \"/x/${\"}\n",
     "5:25: data.experiments_dir: unterminated \"${\""},
    {USERS "data: {experiments_dir: \"/x/${}\"}\n",
     "5:25: data.experiments_dir: \"${\" must be followed by a variable name "
     "[A-Za-z_][A-Za-z0-9_]* and \"}\""},
    {USERS "data: {experiments_dir: \"/x/${1A}\"}\n",
     "5:25: data.experiments_dir: \"${\" must be followed by a variable name "
     "[A-Za-z_][A-Za-z0-9_]* and \"}\""},
    {USERS "data: {experiments_dir: \"/x/${A B}\"}\n",
     "5:25: data.experiments_dir: \"${\" must be followed by a variable name "
     "[A-Za-z_][A-Za-z0-9_]* and \"}\""},
    {USERS "data: {experiments_dir: \"${FM_TEST_EMPTY_VARIABLE}\"}\n",
     "5:25: data.experiments_dir must be a non-empty path"},
    {USERS "  ip_whitelist: [\"${FM_TEST_BAD_CIDR}\"]\n",
     "5:18: auth.ip_whitelist[0]: \"${FM_TEST_BAD_CIDR}\" is not a valid CIDR block"},
    {USERS "      roles: [\"${FM_TEST_ROLE}\"]\n",
     "5:15: user \"alice\" has unknown role \"${FM_TEST_ROLE}\""},
    {USERS "      roles: [\"x${FM_TEST_BAD_CIDR}\"]\n",
     "5:15: auth.api_keys.alice.roles[0]: invalid role name \"x${FM_TEST_BAD_CIDR}\""},
    {USERS "      roles: [analyst, \"${FM_TEST_ANALYST}\"]\n",
     "5:24: auth.api_keys.alice.roles[1]: role \"${FM_TEST_ANALYST}\" is listed twice"},
    {USERS "    bob: {hash: \"${FM_TEST_BAD_CIDR}\"}\n",
     "5:17: auth.api_keys.bob.hash must be exactly 64 hex digits (the SHA-256 of the key)"},
    /* integers and booleans are not expanded, nor are keys */
    {USERS "server:\n  workers: ${FM_TEST_FOUR}\n",
     "6:12: server.workers must be an integer between 1 and 256"},
    {USERS "      admin: ${FM_TEST_TRUE}\n",
     "5:14: auth.api_keys.alice.admin must be true or false"},
    {USERS "${FM_TEST_FOUR}: 1\n", "5:1: unknown key \"${FM_TEST_FOUR}\" at top level"},
    /* auth_failures */
    {USERS "rate_limit: {auth_failures: {max: 0}}\n",
     "5:35: rate_limit.auth_failures.max must be an integer between 1 and 1000000"},
    {USERS "rate_limit: {auth_failures: {max: 1000001}}\n",
     "5:35: rate_limit.auth_failures.max must be an integer between 1 and 1000000"},
    {USERS "rate_limit: {auth_failures: {window_seconds: 86401}}\n",
     "5:46: rate_limit.auth_failures.window_seconds must be an integer between 1 and 86400"},
    {USERS "rate_limit: {auth_failures: {block_seconds: 604801}}\n",
     "5:45: rate_limit.auth_failures.block_seconds must be an integer between 1 and 604800"},
    {USERS "rate_limit: {auth_failures: {block_seconds: 0}}\n",
     "5:45: rate_limit.auth_failures.block_seconds must be an integer between 1 and 604800"},
    {USERS "rate_limit: {auth_failures: {blocks: 5}}\n",
     "5:30: unknown key \"blocks\" in rate_limit.auth_failures"},
    {USERS "rate_limit: {auth_failures: 10}\n", "5:29: rate_limit.auth_failures must be a mapping"},
    {USERS "rate_limit: {requests_per_minute: 1000001}\n",
     "5:35: rate_limit.requests_per_minute must be an integer between 1 and 1000000"},
    /* jobs and limits */
    {USERS "jobs: {lease_seconds: 0}\n",
     "5:23: jobs.lease_seconds must be an integer between 1 and 86400"},
    {USERS "jobs: {lease_seconds: 86401}\n",
     "5:23: jobs.lease_seconds must be an integer between 1 and 86400"},
    {USERS "jobs: {max_attempts: 0}\n",
     "5:22: jobs.max_attempts must be an integer between 1 and 100"},
    {USERS "jobs: {max_attempts: 101}\n",
     "5:22: jobs.max_attempts must be an integer between 1 and 100"},
    {USERS "jobs: {sweep_interval_ms: 99}\n",
     "5:27: jobs.sweep_interval_ms must be an integer between 100 and 60000"},
    {USERS "jobs: {sweep_interval_ms: 60001}\n",
     "5:27: jobs.sweep_interval_ms must be an integer between 100 and 60000"},
    {USERS "jobs: {lease_second: 60}\n", "5:8: unknown key \"lease_second\" in jobs"},
    {USERS "jobs: 60\n", "5:7: jobs must be a mapping"},
    {USERS "limits: {max_task_bytes: 1023}\n",
     "5:26: limits.max_task_bytes must be an integer between 1024 and 16777216"},
    {USERS "limits: {max_task_bytes: 16777217}\n",
     "5:26: limits.max_task_bytes must be an integer between 1024 and 16777216"},
    {USERS "limits: {max_open_tasks: 0}\n",
     "5:26: limits.max_open_tasks must be an integer between 1 and 10000000"},
    {USERS "limits: {max_open_tasks: 10000001}\n",
     "5:26: limits.max_open_tasks must be an integer between 1 and 10000000"},
    {USERS "limits: {max_response_bytes: 65535}\n",
     "5:30: limits.max_response_bytes must be an integer between 65536 and 268435456"},
    {USERS "limits: {max_response_bytes: 268435457}\n",
     "5:30: limits.max_response_bytes must be an integer between 65536 and 268435456"},
    {USERS "limits: {max_tasks: 5}\n", "5:10: unknown key \"max_tasks\" in limits"},
    {USERS "limits: {max_task_bytes: 1024, max_task_bytes: 2048}\n",
     "5:32: duplicate key \"max_task_bytes\" in limits"},
    /* A page of GET /v1/tasks must hold the largest task: checked once the section is read. */
    {USERS "limits: {max_task_bytes: 1048576, max_response_bytes: 1048576}\n",
     "5:9: limits.max_response_bytes (1048576) must be at least limits.max_task_bytes + 65536 "
     "(1114112): a page of tasks must hold at least one task"},
    {USERS "limits: {max_task_bytes: 131073, max_response_bytes: 196608}\n",
     "5:9: limits.max_response_bytes (196608) must be at least limits.max_task_bytes + 65536 "
     "(196609): a page of tasks must hold at least one task"},
    {USERS "limits:\n  max_task_bytes: 16777216\n",
     "6:3: limits.max_response_bytes (4194304) must be at least limits.max_task_bytes + 65536 "
     "(16842752): a page of tasks must hold at least one task"},
    /* run is an action of jobs only */
    {USERS "      permissions: {\"experiments:run\": true}\n",
     "5:21: auth.api_keys.alice.permissions: permission \"experiments:run\" is refused: the action "
     "run exists for jobs only (jobs:run)"},
    {USERS "  roles:\n    ops: {permissions: {\"metrics:run\": false}}\n",
     "6:25: auth.roles.ops.permissions: permission \"metrics:run\" is refused: the action run "
     "exists for jobs only (jobs:run)"},
    /* logging, rate_limit, data */
    {USERS "logging: {level: verbose}\n", "5:18: logging.level must be debug, info, warn or error"},
    /* The two logs are two files, after path resolution; the later key is named. */
    {USERS "logging: {file: /l/x.log, api_file: /l/x.log}\n",
     "5:27: logging.api_file: the operational log and the audit trail must be different files"},
    {USERS "logging:\n  api_file: /l/./x.log\n  file: /l/y//../x.log\n",
     "7:3: logging.file: the operational log and the audit trail must be different files"},
    {USERS "logging:\n  level: info\n  file: /var/log/fetch_ml/api.log\n",
     "7:3: logging.file: the operational log and the audit trail must be different files"},
    {USERS "logging:\n  api_file: /var/log/fetch_ml/audit.log\n",
     "6:3: logging.api_file: the operational log and the audit trail must be different files"},
    {USERS "logging: {audit_sync: sometimes}\n",
     "5:23: logging.audit_sync must be none, interval or always"},
    {USERS "logging: {audit_sync_ms: 0}\n",
     "5:26: logging.audit_sync_ms must be an integer between 1 and 3600000"},
    {USERS "rate_limit: {on_redis_error: maybe}\n",
     "5:30: rate_limit.on_redis_error must be deny or allow"},
    {USERS "data:\n  experiments_dir: \"/srv/a\\0b\"\n",
     "6:20: data.experiments_dir contains a NUL byte"},
    {USERS "data:\n  experiments_dir: \"\"\n",
     "6:20: data.experiments_dir must be a non-empty path"},
};

START_TEST(test_errors)
{
    ck_assert_int_eq(setenv("FM_TEST_EMPTY_VARIABLE", "", 1), 0);
    ck_assert_int_eq(unsetenv("FM_TEST_UNSET_VARIABLE"), 0);
    ck_assert_int_eq(unsetenv("FM_TEST_MISSING_FILE_X"), 0);
    ck_assert_int_eq(setenv("FM_TEST_MISSING_FILE", "/nonexistent/secret-dir/redis.env", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_VAR_NAME", "FM_TEST_UNSET_VARIABLE", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_ROLE", "secret-role", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_ANALYST", "analyst", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_BAD_CIDR", "10.0.0.1/8", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_FOUR", "4", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_TRUE", "true", 1), 0);
    expect_error(bad[_i].yaml, bad[_i].want);
}
END_TEST

/*
 * libyaml's reader errors (bytes that are not UTF-8, NUL and other control
 * characters) come as a byte offset: reported as line:col like every error,
 * the column counting characters as libyaml's marks do.
 */
START_TEST(test_reader_errors)
{
    static const struct {
        const char *text;
        size_t len;
        const char *want;
    } cases[] = {
        /* A file that ends in raw bytes: NUL, then 0xff. */
        {USERS "x: \"\xc3\xa9\" \x00\xff", sizeof(USERS "x: \"\xc3\xa9\" \x00\xff") - 1,
         "5:8: YAML syntax error: control characters are not allowed"},
        {USERS "\xff", sizeof(USERS "\xff") - 1,
         "5:1: YAML syntax error: invalid leading UTF-8 octet"},
        /* A byte order mark is no character; a sequence cut by the end of the file. */
        {"\xef\xbb\xbf" USERS "a: \xc3", sizeof("\xef\xbb\xbf" USERS "a: \xc3") - 1,
         "5:4: YAML syntax error: incomplete UTF-8 octet sequence"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[FM_CONFIG_ERR_MAX], want[FM_CONFIG_ERR_MAX + 128];
        const char *nul = memchr(cases[i].text, '\0', cases[i].len);
        size_t at = nul != NULL ? (size_t)(nul - cases[i].text) : cases[i].len - 1;

        write_file(cfgpath, cases[i].text, cases[i].len);
        ck_assert_int_eq(chmod(cfgpath, 0600), 0);
        ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
        (void)snprintf(want, sizeof(want), "%s:%s at byte %zu", cfgpath, cases[i].want, at);
        ck_assert_str_eq(err, want);
    }
}
END_TEST

START_TEST(test_unreadable)
{
    char err[FM_CONFIG_ERR_MAX], want[FM_CONFIG_ERR_MAX];

    ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
    (void)snprintf(want, sizeof(want), "%s:0:0: cannot open: No such file or directory", cfgpath);
    ck_assert_str_eq(err, want);

    ck_assert_ptr_null(fm_config_load(tmpdir, err, sizeof(err)));
    (void)snprintf(want, sizeof(want), "%s:0:0: not a regular file", tmpdir);
    ck_assert_str_eq(err, want);

    ck_assert_ptr_null(fm_config_load(NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "(null):0:0: no configuration file given");
}
END_TEST

/* The password is resolved before a later error: it must not leak into the message. */
START_TEST(test_error_never_shows_secret)
{
    char err[FM_CONFIG_ERR_MAX];

    ck_assert_int_eq(setenv("FM_TEST_SECRET", "s3cret-value", 1), 0);
    ck_assert_ptr_null(load(USERS "redis: {password_env: FM_TEST_SECRET, db: 99}\n", err));
    ck_assert_ptr_null(strstr(err, "s3cret"));
    ck_assert_ptr_nonnull(strstr(err, "redis.db must be an integer between 0 and 15"));
}
END_TEST

START_TEST(test_error_truncated_to_errlen)
{
    char err[16];

    write_file(cfgpath, "", 0);
    ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
    ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
    ck_assert_ptr_null(fm_config_load(cfgpath, NULL, 0));
}
END_TEST

/* ---- what loads ----------------------------------------------------------------- */

/* jobs: lease_seconds, max_attempts, sweep_interval_ms; limits: task, open tasks, response. */
static void expect_jobs_limits(const fm_config *cfg, const int jobs[3], const long limits[3])
{
    ck_assert_int_eq(cfg->jobs.lease_seconds, jobs[0]);
    ck_assert_int_eq(cfg->jobs.max_attempts, jobs[1]);
    ck_assert_int_eq(cfg->jobs.sweep_interval_ms, jobs[2]);
    ck_assert_uint_eq(cfg->limits.max_task_bytes, (size_t)limits[0]);
    ck_assert_int_eq(cfg->limits.max_open_tasks, limits[1]);
    ck_assert_uint_eq(cfg->limits.max_response_bytes, (size_t)limits[2]);
}

START_TEST(test_defaults)
{
    fm_config *cfg = load_ok(USERS);
    const fm_user *alice;

    ck_assert_str_eq(cfg->path, cfgpath);
    ck_assert_str_eq(cfg->server.listen, "unix:/run/fetch_ml/fcgi.sock");
    ck_assert_int_eq(cfg->server.workers, 4);
    ck_assert_uint_eq(cfg->server.max_body_bytes, 1048576);
    ck_assert_uint_eq(cfg->server.socket_mode, 0660);
    ck_assert_ptr_null(cfg->server.socket_group);
    ck_assert(!cfg->server.tls_enabled);
    ck_assert_ptr_null(cfg->server.tls_cert_file);
    ck_assert_ptr_null(cfg->server.tls_key_file);
    ck_assert_uint_eq(cfg->auth.ip_whitelist.count, 0);
    ck_assert_uint_eq(cfg->auth.nroles, 4);
    ck_assert_str_eq(cfg->auth.roles[0].name, "admin");
    ck_assert_uint_eq(cfg->auth.roles[0].perms, FM_PERM_ALL);
    ck_assert_str_eq(cfg->auth.roles[1].name, "researcher");
    ck_assert_uint_eq(cfg->auth.roles[1].perms, perm("jobs:read") | perm("jobs:create") |
                                                    perm("jobs:update") | perm("experiments:read") |
                                                    perm("experiments:create") |
                                                    perm("experiments:update"));
    ck_assert_str_eq(cfg->auth.roles[2].name, "analyst");
    ck_assert_uint_eq(cfg->auth.roles[2].perms,
                      perm("jobs:read") | perm("experiments:read") | perm("metrics:read"));
    ck_assert_str_eq(cfg->auth.roles[3].name, "worker");
    ck_assert_uint_eq(cfg->auth.roles[3].perms, perm("jobs:run") | perm("jobs:read"));
    ck_assert_uint_eq(cfg->rate_limit.rate.requests_per_minute, 30);
    ck_assert_uint_eq(cfg->rate_limit.rate.burst, 10);
    ck_assert(!cfg->rate_limit.on_redis_error_allow);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.max, 10);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.window_seconds, 300);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.block_seconds, 900);
    ck_assert_str_eq(cfg->redis.addr, "unix:/run/fetch_ml/redis.sock");
    ck_assert_ptr_null(cfg->redis.username);
    ck_assert_ptr_null(cfg->redis.password);
    ck_assert_ptr_null(cfg->redis.password_source);
    ck_assert_uint_eq(cfg->nwarnings, 0);
    ck_assert_ptr_null(cfg->warnings);
    for (size_t i = 0; i < LD_BUILTIN_ROLES; i++)
        ck_assert(!cfg->auth.roles[i].has_rate);
    ck_assert_int_eq(cfg->redis.db, 0);
    ck_assert_str_eq(cfg->redis.key_prefix, "fetchml:");
    ck_assert_int_eq(cfg->redis.timeout_ms, 100);
    ck_assert_int_eq(cfg->logging.level, FM_LOG_INFO);
    ck_assert(cfg->logging.audit);
    ck_assert_str_eq(cfg->logging.file, "/var/log/fetch_ml/audit.log");
    ck_assert_str_eq(cfg->logging.api_file, "/var/log/fetch_ml/api.log");
    ck_assert_int_eq(cfg->logging.audit_sync, FM_AUDIT_SYNC_NONE);
    ck_assert_int_eq(cfg->logging.audit_sync_ms, 1000);
    ck_assert_str_eq(cfg->data.experiments_dir, "/var/lib/fetch_ml/experiments");
    expect_jobs_limits(cfg, (const int[3]){60, 3, 1000}, (const long[3]){65536, 1000, 4194304});

    ck_assert_uint_eq(cfg->auth.nusers, 1);
    alice = &cfg->auth.users[0];
    ck_assert_str_eq(alice->name, "alice");
    ck_assert(!alice->admin);
    ck_assert_uint_eq(alice->nroles, 0);
    /* Least privilege: no roles and no permissions is nothing at all. */
    ck_assert_uint_eq(alice->effective, FM_PERM_NONE);
    ck_assert_uint_eq(alice->ip_whitelist.count, 0);
    ck_assert(!alice->has_rate);
    ck_assert_ptr_eq(alice->rate_eff, &cfg->rate_limit.rate);
    ck_assert_uint_eq(alice->nkeys, 1);
    ck_assert_int_eq(alice->keys[0].expires, 0);
    ck_assert_str_eq(alice->keys[0].label, "");
    ck_assert_uint_eq(cfg->key_index_size, 8);
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_every_key)
{
    static const char yaml[] =
        "server:\n"
        "  listen: \"127.0.0.1:9000\"\n"
        "  workers: 256\n"
        "  max_body_bytes: 67108864\n"
        "  socket_mode: 0640\n"
        "  socket_group: www-data\n"
        "  tls: {enabled: true, cert_file: /secrets/cert.pem, key_file: /secrets/key.pem}\n"
        "auth:\n"
        "  enabled: true\n"
        "  ip_whitelist: [\"10.0.0.0/8\", \"::1\"]\n"
        "  apikeys:\n"
        "    alice:\n"
        "      hash: \"" H_ALICE "\"\n"
        "      admin: true\n"
        "      roles: []\n"
        "      permissions: {}\n"
        "      ip_whitelist: [\"10.1.0.0/16\"]\n"
        "      rate_limit: {requests_per_minute: 1000000, burst: 1}\n"
        "  roles:\n"
        "    ops:\n"
        "      permissions: {\"jobs:read\": true}\n"
        "      inherits: [analyst]\n"
        "      rate_limit: {requests_per_minute: 1000000, burst: 1000000}\n"
        "rate_limit:\n"
        "  requests_per_minute: 1\n"
        "  burst: 1000000\n"
        "  on_redis_error: allow\n"
        "  auth_failures: {max: 1000000, window_seconds: 86400, block_seconds: 604800}\n"
        "redis:\n"
        "  addr: \"[::1]:6379\"\n"
        "  username: fetchml-app.1\n"
        "  password_env: FM_TEST_PASSWORD\n"
        "  db: 15\n"
        "  key_prefix: \"fm-test.1:\"\n"
        "  timeout_ms: 60000\n"
        "logging: {level: \"warn\", audit: true, file: /l/a.log, api_file: /l/api.log,\n"
        "          audit_sync: interval, audit_sync_ms: 250}\n"
        "data: {experiments_dir: /srv/experiments}\n"
        "jobs: {lease_seconds: 86400, max_attempts: 100, sweep_interval_ms: 100}\n"
        "limits: {max_task_bytes: 16777216, max_open_tasks: 10000000, max_response_bytes: "
        "268435456}\n";
    fm_config *cfg;
    const fm_user *alice;

    ck_assert_int_eq(setenv("FM_TEST_PASSWORD", "pw-for-test", 1), 0);
    cfg = load_ok(yaml);
    ck_assert_str_eq(cfg->server.listen, "127.0.0.1:9000");
    ck_assert_int_eq(cfg->server.workers, 256);
    ck_assert_uint_eq(cfg->server.max_body_bytes, 67108864);
    ck_assert_uint_eq(cfg->server.socket_mode, 0640);
    ck_assert_str_eq(cfg->server.socket_group, "www-data");
    ck_assert(cfg->server.tls_enabled);
    ck_assert_str_eq(cfg->server.tls_cert_file, "/secrets/cert.pem");
    ck_assert_str_eq(cfg->server.tls_key_file, "/secrets/key.pem");
    ck_assert_uint_eq(cfg->auth.ip_whitelist.count, 2);
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "10.9.8.7"));
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "::1"));
    ck_assert(!fm_ipacl_match(&cfg->auth.ip_whitelist, "11.0.0.1"));
    alice = user_named(cfg, "alice");
    ck_assert(alice->admin);
    ck_assert_uint_eq(alice->effective, FM_PERM_ALL);
    ck_assert_uint_eq(alice->ip_whitelist.count, 1);
    ck_assert(fm_ipacl_match(&alice->ip_whitelist, "10.1.2.3"));
    ck_assert(!fm_ipacl_match(&alice->ip_whitelist, "10.2.2.3"));
    ck_assert(alice->has_rate);
    ck_assert_uint_eq(alice->rate.requests_per_minute, 1000000);
    ck_assert_uint_eq(alice->rate.burst, 1);
    ck_assert_uint_eq(cfg->rate_limit.rate.requests_per_minute, 1);
    ck_assert_uint_eq(cfg->rate_limit.rate.burst, 1000000);
    ck_assert(cfg->rate_limit.on_redis_error_allow);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.max, 1000000);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.window_seconds, 86400);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.block_seconds, 604800);
    ck_assert_uint_eq(role_named(cfg, "ops")->perms, role_named(cfg, "analyst")->perms);
    ck_assert(role_named(cfg, "ops")->has_rate);
    ck_assert_uint_eq(role_named(cfg, "ops")->rate.requests_per_minute, 1000000);
    ck_assert_uint_eq(role_named(cfg, "ops")->rate.burst, 1000000);
    ck_assert_str_eq(cfg->redis.addr, "[::1]:6379");
    ck_assert_str_eq(cfg->redis.username, "fetchml-app.1");
    ck_assert_str_eq(cfg->redis.password, "pw-for-test");
    ck_assert_str_eq(cfg->redis.password_source, "env FM_TEST_PASSWORD");
    ck_assert_int_eq(cfg->redis.db, 15);
    ck_assert_str_eq(cfg->redis.key_prefix, "fm-test.1:");
    ck_assert_int_eq(cfg->redis.timeout_ms, 60000);
    ck_assert_int_eq(cfg->logging.level, FM_LOG_WARN);
    ck_assert_str_eq(cfg->logging.file, "/l/a.log");
    ck_assert_str_eq(cfg->logging.api_file, "/l/api.log");
    ck_assert_int_eq(cfg->logging.audit_sync, FM_AUDIT_SYNC_INTERVAL);
    ck_assert_int_eq(cfg->logging.audit_sync_ms, 250);
    ck_assert_str_eq(cfg->data.experiments_dir, "/srv/experiments");
    expect_jobs_limits(cfg, (const int[3]){86400, 100, 100},
                       (const long[3]){16777216, 10000000, 268435456});
    fm_config_free(cfg);
}
END_TEST

/* The lower bounds load, and a page exactly one largest task plus 65536 bytes is enough. */
START_TEST(test_jobs_limits_low)
{
    fm_config *cfg =
        load_ok(USERS "jobs: {lease_seconds: 1, max_attempts: 1, sweep_interval_ms: 100}\n"
                      "limits:\n  max_task_bytes: 1024\n  max_open_tasks: 1\n"
                      "  max_response_bytes: 66560\n");

    expect_jobs_limits(cfg, (const int[3]){1, 1, 100}, (const long[3]){1024, 1, 66560});
    fm_config_free(cfg);
    cfg = load_ok(USERS "limits: {max_task_bytes: 131072, max_response_bytes: 196608}\n");
    ck_assert_uint_eq(cfg->limits.max_response_bytes, 196608);
    fm_config_free(cfg);
}
END_TEST

/* The built-in worker role is jobs:run and jobs:read, nothing else; "*:run" is jobs:run. */
START_TEST(test_worker_role)
{
    fm_config *cfg = load_ok(USERS "      roles: [worker]\n"
                                   "    bob:\n      hash: \"" H_BOB "\"\n"
                                   "      permissions: {\"*:run\": true}\n"
                                   "    carol:\n      hash: \"" H_ZERO "\"\n"
                                   "      roles: [researcher]\n"
                                   "      permissions: {\"jobs:*\": true}\n");

    ck_assert_uint_eq(user_named(cfg, "alice")->effective, perm("jobs:run") | perm("jobs:read"));
    ck_assert_uint_eq(perm("jobs:run") | perm("jobs:read"),
                      FM_PERM(FM_RES_JOBS, FM_ACT_RUN) | FM_PERM(FM_RES_JOBS, FM_ACT_READ));
    ck_assert(fm_rbac_reads_all(false, user_named(cfg, "alice")->effective));
    ck_assert_uint_eq(user_named(cfg, "bob")->effective, FM_PERM(FM_RES_JOBS, FM_ACT_RUN));
    ck_assert(fm_rbac_allows(user_named(cfg, "carol")->effective, perm("jobs:run")));
    ck_assert_uint_eq(role_named(cfg, "worker")->perms, perm("jobs:run") | perm("jobs:read"));
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_nullable_settings)
{
    fm_config *cfg =
        load_ok(USERS "server: {socket_group: ~}\nredis: {password_env: null}\nlogging:\n"
                      "  api_file:\n");

    ck_assert_ptr_null(cfg->server.socket_group);
    ck_assert_ptr_null(cfg->redis.password);
    ck_assert_ptr_null(cfg->logging.api_file);
    fm_config_free(cfg);
}
END_TEST

/* server.user and server.allowed_peers are resolved to ids at load. */
START_TEST(test_server_accounts)
{
    fm_config *cfg = load_ok(USERS "server: {user: nobody, allowed_peers: [nobody, 0, \"33\"]}\n");
    struct passwd *pw = getpwnam("nobody");

    ck_assert_ptr_nonnull(pw);
    ck_assert_str_eq(cfg->server.user, "nobody");
    ck_assert_uint_eq(cfg->server.uid, pw->pw_uid);
    ck_assert_uint_eq(cfg->server.gid, pw->pw_gid);
    ck_assert_uint_eq(cfg->server.npeers, 3);
    ck_assert_uint_eq(cfg->server.peers[0], pw->pw_uid);
    ck_assert_uint_eq(cfg->server.peers[1], 0);
    ck_assert_uint_eq(cfg->server.peers[2], 33);
    ck_assert_ptr_null(cfg->logging.audit_user);
    fm_config_free(cfg);
    cfg = load_ok(USERS "logging: {audit_user: daemon}\n");
    pw = getpwnam("daemon");
    ck_assert_ptr_nonnull(pw);
    ck_assert_str_eq(cfg->logging.audit_user, "daemon");
    ck_assert_uint_eq(cfg->logging.audit_uid, pw->pw_uid);
    ck_assert_uint_eq(cfg->logging.audit_gid, pw->pw_gid);
    fm_config_free(cfg);
    /* Unset: no drop, and only the pool's own uid is served. */
    cfg = load_ok(USERS);
    ck_assert_ptr_null(cfg->server.user);
    ck_assert_uint_eq(cfg->server.npeers, 0);
    fm_config_free(cfg);
}
END_TEST

/* A relative path and a symbolic link that name the audit trail are the audit trail. */
START_TEST(test_log_files_same_inode)
{
    const char *audit = extra_path("audit.log"), *link_path = extra_path("api-link.log");
    FILE *f = fopen(audit, "w");
    char yaml[1024];

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(symlink(audit, link_path), 0);
    (void)snprintf(yaml, sizeof yaml, USERS "logging:\n  file: audit.log\n  api_file: %s\n",
                   link_path);
    expect_error(yaml,
                 "7:3: logging.api_file: the operational log and the audit trail must be different "
                 "files");
    expect_error(USERS "logging:\n  file: audit.log\n  api_file: ./sub/../audit.log\n",
                 "7:3: logging.api_file: the operational log and the audit trail must be different "
                 "files");
}
END_TEST

/*
 * Every path setting, relative, against the file's directory: the one rule
 * (ld_resolve_path) whoever loads the file and wherever it runs from. The
 * secret files are read at load, so they must be there (beside the file).
 */
START_TEST(test_relative_paths)
{
    char *base = realpath(tmpdir, NULL);
    char want[PATH_MAX + 64];
    fm_config *cfg;

    ck_assert_ptr_nonnull(base);
    (void)secret_file("redis.env", "pw-main\n", 8, 0600);
    (void)secret_file("sentinel.env", "pw-sentinel\n", 12, 0600);
    cfg = load_ok(USERS "server:\n  listen: \"unix:../run/fcgi.sock\"\n"
                        "  tls: {enabled: true, cert_file: tls/c.pem, key_file: /k.pem}\n"
                        "logging: {file: ../log/audit.log, api_file: api.log, "
                        "audit_sign_key: keys/sign.key}\n"
                        "data: {experiments_dir: ./experiments}\n"
                        "websocket: {publisher: \"unix:nchan/pub.sock\", "
                        "publisher_token_file: keys/publisher-token}\n"
                        "redis: {addr: \"unix:/abs/redis.sock\", password_file: redis.env,\n"
                        "        sentinels: [\"h:1\"], master_name: m,\n"
                        "        sentinel_password_file: ./sentinel.env}\n");
    (void)snprintf(want, sizeof(want), "unix:%s/../run/fcgi.sock", base);
    ck_assert_str_eq(cfg->server.listen, want);
    (void)snprintf(want, sizeof(want), "%s/tls/c.pem", base);
    ck_assert_str_eq(cfg->server.tls_cert_file, want);
    ck_assert_str_eq(cfg->server.tls_key_file, "/k.pem");
    (void)snprintf(want, sizeof(want), "%s/../log/audit.log", base);
    ck_assert_str_eq(cfg->logging.file, want);
    (void)snprintf(want, sizeof(want), "%s/api.log", base);
    ck_assert_str_eq(cfg->logging.api_file, want);
    (void)snprintf(want, sizeof(want), "%s/./experiments", base);
    ck_assert_str_eq(cfg->data.experiments_dir, want);
    (void)snprintf(want, sizeof(want), "%s/keys/sign.key", base);
    ck_assert_str_eq(cfg->logging.audit_sign_key, want);
    (void)snprintf(want, sizeof(want), "unix:%s/nchan/pub.sock", base);
    ck_assert_str_eq(cfg->websocket.publisher, want);
    (void)snprintf(want, sizeof(want), "%s/keys/publisher-token", base);
    ck_assert_str_eq(cfg->websocket.publisher_token_file, want);
    ck_assert_str_eq(cfg->redis.addr, "unix:/abs/redis.sock");
    ck_assert_str_eq(cfg->redis.password, "pw-main");
    ck_assert_str_eq(cfg->redis.sentinel_password, "pw-sentinel");
    fm_config_free(cfg);

    /* The same file named relatively from its own directory: the same paths (-c config.yaml). */
    int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char err[FM_CONFIG_ERR_MAX];

    ck_assert_int_ge(here, 0);
    ck_assert_int_eq(chdir(tmpdir), 0);
    cfg = fm_config_load("config.yaml", err, sizeof(err));
    ck_assert_int_eq(fchdir(here), 0);
    (void)close(here);
    ck_assert_msg(cfg != NULL, "%s", err);
    (void)snprintf(want, sizeof(want), "%s/./experiments", base);
    ck_assert_str_eq(cfg->data.experiments_dir, want);
    fm_config_free(cfg);
    free(base);
}
END_TEST

START_TEST(test_permissions)
{
    static const char yaml[] =
        "auth:\n"
        "  api_keys:\n"
        "    alice:\n"
        "      hash: \"" H_ALICE "\"\n"
        "      roles: [researcher, ops]\n"
        "      permissions: {\"jobs:delete\": true, \"experiments:create\": false}\n"
        "    bob:\n"
        "      hash: \"" H_BOB "\"\n"
        "      admin: true\n"
        "      permissions: {\"*\": false}\n"
        "    carol:\n"
        "      hash: \"" H_ZERO "\"\n"
        "      roles: [analyst, admin]\n"
        "      permissions: {\"metrics:*\": false}\n"
        "  roles:\n"
        "    researcher:\n"
        "      permissions: {\"jobs:*\": true, \"jobs:delete\": false}\n"
        "    ops:\n"
        "      permissions: {\"*:read\": true, \"experiments:write\": true}\n"
        "    empty: {}\n";
    fm_config *cfg = load_ok(yaml);
    const fm_user *alice = user_named(cfg, "alice"), *bob = user_named(cfg, "bob");
    const fm_user *carol = user_named(cfg, "carol");

    ck_assert_uint_eq(cfg->auth.nroles, 6);
    /* jobs:* includes jobs:run. */
    ck_assert_uint_eq(role_named(cfg, "researcher")->perms,
                      perm("jobs:read") | perm("jobs:create") | perm("jobs:update") |
                          perm("jobs:run"));
    ck_assert_uint_eq(role_named(cfg, "ops")->perms,
                      perm("*:read") | perm("experiments:create") | perm("experiments:update"));
    ck_assert_uint_eq(role_named(cfg, "empty")->perms, FM_PERM_NONE);
    ck_assert_uint_eq(role_named(cfg, "admin")->perms, FM_PERM_ALL);

    ck_assert_uint_eq(alice->nroles, 2);
    ck_assert_str_eq(alice->roles[0], "researcher");
    ck_assert_str_eq(alice->roles[1], "ops");
    ck_assert_uint_eq(alice->grants, perm("jobs:delete"));
    ck_assert_uint_eq(alice->denies, perm("experiments:create"));
    ck_assert_uint_eq(alice->effective,
                      perm("jobs:*") | perm("*:read") | perm("experiments:update"));
    /* admin: true is everything, whatever is denied. */
    ck_assert_uint_eq(bob->denies, FM_PERM_ALL);
    ck_assert_uint_eq(bob->effective, FM_PERM_ALL);
    /* The admin role is not the admin flag: denies still apply. */
    ck_assert(!carol->admin);
    ck_assert_uint_eq(carol->effective, FM_PERM_ALL & ~perm("metrics:*"));
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_keys_and_index)
{
    static const char yaml[] =
        "auth:\n"
        "  api_keys:\n"
        "    alice:\n"
        "      keys:\n"
        "        - {hash: \"0000000000000000aa00000000000000000000000000000000000000000000"
        "00\", label: \"new laptop\", expires: \"2026-03-31T12:00:00Z\"}\n"
        "        - hash: \"0000000000000000bb000000000000000000000000000000000000000000000"
        "0\"\n"
        "          expires: 2026-03-31\n"
        "      hash: \"" H_ALICE "\"\n"
        "    bob:\n"
        "      hash: \"0000000000000000cc000000000000000000000000000000000000000000000"
        "0\"\n";
    fm_config *cfg = load_ok(yaml);
    const fm_user *alice = user_named(cfg, "alice"), *u = NULL;
    const fm_key *k = NULL;
    unsigned char h[FM_KEY_HASH_BYTES];

    /* The user's own hash comes first, even when written after keys. */
    ck_assert_uint_eq(alice->nkeys, 3);
    hex_hash(H_ALICE, h);
    ck_assert_mem_eq(alice->keys[0].hash, h, FM_KEY_HASH_BYTES);
    ck_assert_int_eq(alice->keys[0].expires, 0);
    ck_assert_str_eq(alice->keys[1].label, "new laptop");
    ck_assert_int_eq(alice->keys[1].expires, 1774958400);
    ck_assert_str_eq(alice->keys[2].label, "");
    ck_assert_int_eq(alice->keys[2].expires, 1774915200);
    ck_assert_uint_eq(cfg->key_index_size, 8);

    ck_assert(fm_config_find_key(cfg, h, &u, &k));
    ck_assert_ptr_eq(u, alice);
    ck_assert_ptr_eq(k, &alice->keys[0]);
    /* Three digests share the slot 0: found by probing past each other. */
    hex_hash("0000000000000000bb0000000000000000000000000000000000000000000000", h);
    ck_assert(fm_config_find_key(cfg, h, &u, &k));
    ck_assert_ptr_eq(k, &alice->keys[2]);
    hex_hash("0000000000000000cc0000000000000000000000000000000000000000000000", h);
    ck_assert(fm_config_find_key(cfg, h, &u, &k));
    ck_assert_str_eq(u->name, "bob");
    ck_assert_ptr_eq(k, &u->keys[0]);
    hex_hash("0000000000000000dd0000000000000000000000000000000000000000000000", h);
    ck_assert(!fm_config_find_key(cfg, h, &u, &k));
    hex_hash("0000000000000000aa0000000000000000000000000000000000000000000001", h);
    ck_assert(!fm_config_find_key(cfg, h, &u, &k));
    ck_assert(!fm_config_find_key(NULL, h, &u, &k));
    fm_config_free(cfg);
}
END_TEST

/* Enough keys to grow the index well past its minimum; every one is found from its key. */
START_TEST(test_index_many_keys)
{
    enum { USERS_N = 300 };
    size_t cap = 64 + USERS_N * 120, len;
    char *yaml = malloc(cap);
    unsigned char h[FM_KEY_HASH_BYTES];
    char hex[2 * FM_KEY_HASH_BYTES + 1], key[32];
    fm_config *cfg;

    ck_assert_ptr_nonnull(yaml);
    len = (size_t)snprintf(yaml, cap, "auth:\n  api_keys:\n");
    for (int i = 0; i < USERS_N; i++) {
        (void)snprintf(key, sizeof(key), "key-%d", i);
        crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
        (void)sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        len += (size_t)snprintf(yaml + len, cap - len, "    u%d: {hash: \"%s\"}\n", i, hex);
        ck_assert_uint_lt(len, cap);
    }
    cfg = load_ok(yaml);
    free(yaml);
    ck_assert_uint_eq(cfg->key_index_size, 1024);
    for (int i = 0; i < USERS_N; i++) {
        const fm_user *u;
        const fm_key *k;
        char name[16];

        (void)snprintf(key, sizeof(key), "key-%d", i);
        crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
        ck_assert(fm_config_find_key(cfg, h, &u, &k));
        (void)snprintf(name, sizeof(name), "u%d", i);
        ck_assert_str_eq(u->name, name);
    }
    crypto_hash_sha256(h, (const unsigned char *)"not-a-key", 9);
    ck_assert(!fm_config_find_key(cfg, h, NULL, NULL));
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_user_rate)
{
    static const char yaml[] =
        "auth:\n"
        "  api_keys:\n"
        "    alice: {hash: \"" H_ALICE "\", rate_limit: {requests_per_minute: 120}}\n"
        "    bob: {hash: \"" H_BOB "\", rate_limit: {burst: 3, requests_per_minute: 7}}\n"
        "    carol: {hash: \"" H_ZERO "\"}\n"
        "rate_limit: {requests_per_minute: 50, burst: 25}\n";
    fm_config *cfg = load_ok(yaml);
    const fm_user *alice = user_named(cfg, "alice"), *bob = user_named(cfg, "bob");
    const fm_user *carol = user_named(cfg, "carol");

    /* A field left out takes the global default, even when that is given later. */
    ck_assert_uint_eq(fm_config_user_rate(cfg, alice)->requests_per_minute, 120);
    ck_assert_uint_eq(fm_config_user_rate(cfg, alice)->burst, 25);
    ck_assert_uint_eq(fm_config_user_rate(cfg, bob)->requests_per_minute, 7);
    ck_assert_uint_eq(fm_config_user_rate(cfg, bob)->burst, 3);
    ck_assert_ptr_eq(fm_config_user_rate(cfg, carol), &cfg->rate_limit.rate);
    ck_assert_uint_eq(fm_config_user_rate(cfg, carol)->requests_per_minute, 50);
    ck_assert_ptr_eq(fm_config_user_rate(cfg, NULL), &cfg->rate_limit.rate);
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_level_names)
{
    fm_config *cfg = load_ok(USERS "logging: {level: debug}\n");

    ck_assert_int_eq(cfg->logging.level, FM_LOG_DEBUG);
    fm_config_free(cfg);
    ck_assert_str_eq(fm_config_level_name(FM_LOG_DEBUG), "debug");
    ck_assert_str_eq(fm_config_level_name(FM_LOG_INFO), "info");
    ck_assert_str_eq(fm_config_level_name(FM_LOG_WARN), "warn");
    ck_assert_str_eq(fm_config_level_name(FM_LOG_ERROR), "error");
    fm_config_free(NULL);
}
END_TEST

/* ---- roles: inheritance and rates ------------------------------------------------- */

START_TEST(test_role_inheritance)
{
    static const char yaml[] =
        "auth:\n"
        "  api_keys:\n"
        "    alice: {hash: \"" H_ALICE "\", roles: [senior]}\n"
        "    bob: {hash: \"" H_BOB "\", roles: [analyst]}\n"
        "    carol: {hash: \"" H_ZERO "\", roles: [diamond], permissions: {\"jobs:read\": false}}\n"
        "  roles:\n"
        "    senior:\n" /* defined before the roles it inherits */
        "      inherits: [junior, analyst]\n"
        "      permissions: {\"jobs:delete\": true, \"metrics:read\": false}\n"
        "    junior:\n"
        "      inherits: [base]\n"
        "      permissions: {\"jobs:create\": true}\n"
        "    base:\n"
        "      permissions: {\"jobs:read\": true, \"experiments:read\": true}\n"
        "    analyst:\n" /* a redefined built-in may inherit a custom role */
        "      inherits: [base]\n"
        "      permissions: {\"metrics:read\": true}\n"
        "    diamond: {inherits: [junior, base, senior, admin], permissions: {\"*:delete\": "
        "false}}\n";
    fm_config *cfg = load_ok(yaml);
    const fm_perms base = perm("jobs:read") | perm("experiments:read");
    const fm_perms senior = base | perm("jobs:create") | perm("jobs:delete");

    ck_assert_uint_eq(cfg->auth.nroles, 8);
    ck_assert_uint_eq(role_named(cfg, "base")->perms, base);
    ck_assert_uint_eq(role_named(cfg, "junior")->perms, base | perm("jobs:create"));
    ck_assert_uint_eq(role_named(cfg, "analyst")->perms, base | perm("metrics:read"));
    /* An inherited permission is removed by the role's own denial. */
    ck_assert_uint_eq(role_named(cfg, "senior")->perms, senior);
    ck_assert_uint_eq(role_named(cfg, "diamond")->perms, FM_PERM_ALL & ~perm("*:delete"));
    ck_assert_uint_eq(user_named(cfg, "alice")->effective, senior);
    ck_assert_uint_eq(user_named(cfg, "bob")->effective, base | perm("metrics:read"));
    ck_assert_uint_eq(user_named(cfg, "carol")->effective,
                      FM_PERM_ALL & ~perm("*:delete") & ~perm("jobs:read"));
    /* Roles are not users: no role inherits a rate_limit. */
    ck_assert(!role_named(cfg, "senior")->has_rate);
    fm_config_free(cfg);
}
END_TEST

/* roles r0 -> r1 -> ... -> r<links>, written from r0 down or from r<links> up. */
static char *chain_yaml(int links, bool deepest_first)
{
    size_t cap = 256 + (size_t)links * 64, len;
    char *yaml = malloc(cap);

    ck_assert_ptr_nonnull(yaml);
    len = (size_t)snprintf(yaml, cap, USERS "      roles: [r0]\n  roles:\n");
    for (int k = 0; k <= links; k++) {
        int r = deepest_first ? links - k : k;

        if (r == links)
            len += (size_t)snprintf(yaml + len, cap - len,
                                    "    r%d: {permissions: {\"metrics:read\": true}}\n", r);
        else
            len +=
                (size_t)snprintf(yaml + len, cap - len, "    r%d: {inherits: [r%d]}\n", r, r + 1);
        ck_assert_uint_lt(len, cap);
    }
    return yaml;
}

START_TEST(test_inheritance_depth)
{
    char *yaml = chain_yaml(FM_ROLE_INHERIT_MAX, false);
    fm_config *cfg = load_ok(yaml);

    ck_assert_uint_eq(role_named(cfg, "r0")->perms, perm("metrics:read"));
    ck_assert_uint_eq(user_named(cfg, "alice")->effective, perm("metrics:read"));
    fm_config_free(cfg);
    free(yaml);

    yaml = chain_yaml(FM_ROLE_INHERIT_MAX, true);
    cfg = load_ok(yaml);
    ck_assert_uint_eq(role_named(cfg, "r0")->perms, perm("metrics:read"));
    fm_config_free(cfg);
    free(yaml);

    /* Searched from r0: refused at the entry that would be the 17th link. */
    yaml = chain_yaml(FM_ROLE_INHERIT_MAX + 1, false);
    expect_error(yaml, "23:22: role \"r0\": inheritance chain longer than 16 links");
    free(yaml);
    /* Searched from r17 up: refused at r0, whose chain is the one too long. */
    yaml = chain_yaml(FM_ROLE_INHERIT_MAX + 1, true);
    expect_error(yaml, "24:21: role \"r0\": inheritance chain longer than 16 links");
    free(yaml);
}
END_TEST

START_TEST(test_role_rates)
{
    static const char yaml[] =
        "auth:\n"
        "  api_keys:\n"
        "    alice: {hash: \"" H_ALICE "\", roles: [fast], rate_limit: {requests_per_minute: 5}}\n"
        "    bob: {hash: \"" H_BOB "\", roles: [slow, fast, tie, analyst]}\n"
        "    carol: {hash: \"" H_ZERO "\", roles: [analyst, slow]}\n"
        "    dave: {hash: \"" H_ONE "\", roles: [child]}\n"
        "    erin: {hash: \"" H_TWO "\", roles: [tie, fast]}\n"
        "    frank: {hash: \"" H_THREE "\"}\n"
        "  roles:\n"
        "    fast: {rate_limit: {requests_per_minute: 600, burst: 10}}\n"
        "    slow: {rate_limit: {requests_per_minute: 60}}\n"
        "    tie: {rate_limit: {burst: 50, requests_per_minute: 600}}\n"
        "    child: {inherits: [fast]}\n"
        "rate_limit: {requests_per_minute: 30, burst: 7}\n";
    fm_config *cfg = load_ok(yaml);
    const fm_user *alice = user_named(cfg, "alice"), *bob = user_named(cfg, "bob");
    const fm_user *carol = user_named(cfg, "carol"), *dave = user_named(cfg, "dave");
    const fm_user *erin = user_named(cfg, "erin"), *frank = user_named(cfg, "frank");
    const fm_role *tie = role_named(cfg, "tie"), *slow = role_named(cfg, "slow");

    /* A role's field left out takes the global value, given after it. */
    ck_assert(slow->has_rate);
    ck_assert_uint_eq(slow->rate.requests_per_minute, 60);
    ck_assert_uint_eq(slow->rate.burst, 7);
    ck_assert(!role_named(cfg, "child")->has_rate);
    ck_assert(!role_named(cfg, "analyst")->has_rate);

    /* The user's own rate_limit wins over every role. */
    ck_assert_ptr_eq(fm_config_user_rate(cfg, alice), &alice->rate);
    ck_assert_uint_eq(fm_config_user_rate(cfg, alice)->requests_per_minute, 5);
    ck_assert_uint_eq(fm_config_user_rate(cfg, alice)->burst, 7);
    /* Highest requests_per_minute, ties broken by the higher burst, in either order. */
    ck_assert_ptr_eq(fm_config_user_rate(cfg, bob), &tie->rate);
    ck_assert_uint_eq(fm_config_user_rate(cfg, bob)->requests_per_minute, 600);
    ck_assert_uint_eq(fm_config_user_rate(cfg, bob)->burst, 50);
    ck_assert_ptr_eq(fm_config_user_rate(cfg, erin), &tie->rate);
    ck_assert_ptr_eq(fm_config_user_rate(cfg, carol), &slow->rate);
    /* A role that only inherits one with a rate_limit gives none: the default applies. */
    ck_assert_ptr_eq(fm_config_user_rate(cfg, dave), &cfg->rate_limit.rate);
    ck_assert_ptr_eq(fm_config_user_rate(cfg, frank), &cfg->rate_limit.rate);
    ck_assert_uint_eq(fm_config_user_rate(cfg, frank)->requests_per_minute, 30);
    fm_config_free(cfg);
}
END_TEST

/* A user built by hand (as other modules' tests do) has no rate_eff. */
START_TEST(test_user_rate_without_load)
{
    fm_config *cfg = load_ok(USERS);
    fm_user u;

    memset(&u, 0, sizeof(u));
    ck_assert_ptr_eq(fm_config_user_rate(cfg, &u), &cfg->rate_limit.rate);
    u.has_rate = true;
    ck_assert_ptr_eq(fm_config_user_rate(cfg, &u), &u.rate);
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_auth_failures)
{
    fm_config *cfg = load_ok(USERS "rate_limit:\n  auth_failures:\n    max: 1\n"
                                   "    window_seconds: 1\n    block_seconds: 1\n");

    ck_assert_uint_eq(cfg->rate_limit.auth_failures.max, 1);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.window_seconds, 1);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.block_seconds, 1);
    fm_config_free(cfg);
    /* Fields left out keep their defaults. */
    cfg = load_ok(USERS "rate_limit: {auth_failures: {window_seconds: 60}}\n");
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.max, 10);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.window_seconds, 60);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.block_seconds, 900);
    fm_config_free(cfg);
}
END_TEST

/* ---- ${VAR} expansion ---------------------------------------------------------------- */

START_TEST(test_expansion)
{
    static const char yaml[] =
        "server:\n"
        "  listen: \"${FM_TEST_HOST}:${FM_TEST_PORT}\"\n"
        "  socket_group: ${FM_TEST_GROUP}\n"
        "auth:\n"
        "  ip_whitelist: [\"${FM_TEST_NET}\"]\n"
        "  api_keys:\n"
        "    alice:\n"
        "      hash: \"${FM_TEST_HASH}\"\n"
        "      roles: [\"${FM_TEST_ROLE2}\"]\n"
        "      keys:\n"
        "        - {hash: \"" H_BOB "\", label: \"cost $5, ${FM_TEST_EMPTY}$${HOME} $HOME $\"}\n"
        "        - {hash: \"" H_ZERO "\", label: \"${FM_TEST_NESTED}\", expires: "
        "\"${FM_TEST_DATE}\"}\n"
        "redis: {key_prefix: '${FM_TEST_PREFIX}'}\n"
        "logging: {level: \"${FM_TEST_LEVEL}\", api_file: \"${FM_TEST_REL}\"}\n"
        "data: {experiments_dir: \"${FM_TEST_DIR}/experiments\"}\n";
    char *base = realpath(tmpdir, NULL);
    char want[PATH_MAX + 64];
    unsigned char h[FM_KEY_HASH_BYTES];
    fm_config *cfg;
    const fm_user *alice;

    ck_assert_ptr_nonnull(base);
    ck_assert_int_eq(setenv("FM_TEST_HOST", "127.0.0.1", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_PORT", "9000", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_GROUP", "www-data", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_NET", "10.0.0.0/8", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_HASH", H_ALICE, 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_ROLE2", "analyst", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_EMPTY", "", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_NESTED", "${FM_TEST_DIR}", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_DATE", "2026-03-31", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_PREFIX", "fm:", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_LEVEL", "warn", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_REL", "logs/api.log", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_DIR", "/srv/x", 1), 0);
    cfg = load_ok(yaml);
    ck_assert_str_eq(cfg->server.listen, "127.0.0.1:9000");
    ck_assert_str_eq(cfg->server.socket_group, "www-data");
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "10.1.2.3"));
    ck_assert(!fm_ipacl_match(&cfg->auth.ip_whitelist, "11.1.2.3"));
    alice = user_named(cfg, "alice");
    hex_hash(H_ALICE, h);
    ck_assert_mem_eq(alice->keys[0].hash, h, FM_KEY_HASH_BYTES);
    ck_assert_str_eq(alice->roles[0], "analyst");
    ck_assert_uint_eq(alice->effective, role_named(cfg, "analyst")->perms);
    /* $${ is a literal ${; any other $ is literal; an empty variable expands to nothing. */
    ck_assert_str_eq(alice->keys[1].label, "cost $5, ${HOME} $HOME $");
    /* What a variable holds is not expanded again. */
    ck_assert_str_eq(alice->keys[2].label, "${FM_TEST_DIR}");
    ck_assert_int_eq(alice->keys[2].expires, 1774915200);
    ck_assert_str_eq(cfg->redis.key_prefix, "fm:");
    ck_assert_int_eq(cfg->logging.level, FM_LOG_WARN);
    /* A relative path from the environment is resolved like any other. */
    (void)snprintf(want, sizeof(want), "%s/logs/api.log", base);
    ck_assert_str_eq(cfg->logging.api_file, want);
    ck_assert_str_eq(cfg->data.experiments_dir, "/srv/x/experiments");
    fm_config_free(cfg);
    free(base);
}
END_TEST

/* Whatever the environment supplied never appears in an error, wherever it is refused. */
START_TEST(test_expansion_never_echoed)
{
    static const char *const yamls[] = {
        USERS "  ip_whitelist: [\"${FM_TEST_SECRET2}\"]\n",
        USERS "      roles: [\"${FM_TEST_SECRET2}\"]\n",
        USERS "      roles: [\"${FM_TEST_SECRET3}\"]\n",
        USERS "  roles:\n    ops: {inherits: [\"${FM_TEST_SECRET3}\"]}\n",
        USERS "      hash: \"${FM_TEST_SECRET2}\"\n",
        USERS "      keys: [{hash: \"" H_BOB "\", expires: \"${FM_TEST_SECRET2}\"}]\n",
        USERS "      keys: [{hash: \"" H_BOB "\", label: \"${FM_TEST_SECRET2}\\n\"}]\n",
        USERS "redis: {password_env: \"${FM_TEST_SECRET2}\"}\n",
        USERS "redis: {password_env: \"${FM_TEST_SECRET3}\"}\n",
        USERS "redis: {password_file: \"${FM_TEST_SECRET2}\"}\n",
        USERS "redis: {addr: \"${FM_TEST_SECRET2}\"}\n",
        USERS "redis: {key_prefix: \"${FM_TEST_SECRET2} \"}\n",
        USERS "server: {socket_group: \"${FM_TEST_SECRET2}\"}\n",
        USERS "logging: {level: \"${FM_TEST_SECRET2}\"}\n",
    };
    char err[FM_CONFIG_ERR_MAX];

    ck_assert_int_eq(setenv("FM_TEST_SECRET2", "hunter2 secret", 1), 0);
    ck_assert_int_eq(setenv("FM_TEST_SECRET3", "hunter2-secret", 1), 0);
    for (size_t i = 0; i < sizeof(yamls) / sizeof(yamls[0]); i++) {
        ck_assert_ptr_null(load(yamls[i], err));
        ck_assert_msg(strstr(err, "hunter2") == NULL, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, cfgpath) == err, "case %zu: %s", i, err);
    }
}
END_TEST

/* ---- redis.password_file --------------------------------------------------------------- */

/* Loads a config whose redis.password_file is path; returns the password or NULL and err. */
static fm_config *load_password_file(const char *path, char err[FM_CONFIG_ERR_MAX])
{
    char yaml[512];

    (void)snprintf(yaml, sizeof(yaml), USERS "redis:\n  password_file: \"%s\"\n", path);
    return load(yaml, err);
}

static void expect_password(const char *name, const char *text, const char *want)
{
    char err[FM_CONFIG_ERR_MAX], source[256];
    const char *path = secret_file(name, text, strlen(text), 0600);
    fm_config *cfg = load_password_file(path, err);

    ck_assert_msg(cfg != NULL, "%s: %s", name, err);
    ck_assert_str_eq(cfg->redis.password, want);
    (void)snprintf(source, sizeof(source), "file %s", path);
    ck_assert_str_eq(cfg->redis.password_source, source);
    fm_config_free(cfg);
}

/* message follows "<line:col>: redis.password_file: <path>"; the content never shows. */
static void expect_file_error(const char *path, const char *message)
{
    char err[FM_CONFIG_ERR_MAX], want[FM_CONFIG_ERR_MAX + 256];

    ck_assert_ptr_null(load_password_file(path, err));
    (void)snprintf(want, sizeof(want), "%s:6:18: redis.password_file: %s%s", cfgpath, path,
                   message);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(strstr(err, "TOPSECRET"));
}

START_TEST(test_password_file)
{
    static char big[FM_SECRET_FILE_MAX + 1];

    expect_password("bare", "TOPSECRET-1\n", "TOPSECRET-1");
    expect_password("bare-crlf", "TOPSECRET 2\r\n", "TOPSECRET 2");
    expect_password("bare-no-newline", "TOPSECRET", "TOPSECRET");
    expect_password("envfile", "# Redis\n\nOTHER=1\r\nREDIS_PASSWORD=\"pw with = sign\"\r\nLAST=2",
                    "pw with = sign");
    expect_password("envfile-single", "REDIS_PASSWORD='x'\n", "x");
    expect_password("envfile-plain", "REDIS_PASSWORD=a=b\n", "a=b");
    expect_password("envfile-one-quote", "REDIS_PASSWORD=\"ab\n", "\"ab");
    memset(big, 'p', FM_SECRET_FILE_MAX);
    big[FM_SECRET_FILE_MAX] = '\0';
    expect_password("largest", big, big);
}
END_TEST

/* Sentinels, the master's name and the sentinels' password from an environment file. */
START_TEST(test_sentinels)
{
    char yaml[1024];
    const char *path =
        secret_file("sentinel.env", "REDIS_PASSWORD=r\nSENTINEL_PASSWORD=s-pw\n", 40, 0600);
    fm_config *cfg;

    (void)snprintf(yaml, sizeof(yaml),
                   USERS "redis:\n  sentinels: [\"10.0.0.1:26379\", \"[::1]:26380\", "
                         "\"s3.example:26381\"]\n  master_name: fetchml-main\n"
                         "  sentinel_password_file: %s\n  password_file: %s\n",
                   path, path);
    cfg = load_ok(yaml);
    ck_assert_uint_eq(cfg->redis.nsentinels, 3);
    ck_assert_str_eq(cfg->redis.sentinels[0], "10.0.0.1:26379");
    ck_assert_str_eq(cfg->redis.sentinels[1], "[::1]:26380");
    ck_assert_str_eq(cfg->redis.sentinels[2], "s3.example:26381");
    ck_assert_str_eq(cfg->redis.master_name, "fetchml-main");
    ck_assert_str_eq(cfg->redis.sentinel_password, "s-pw");
    ck_assert_str_eq(cfg->redis.password, "r");
    ck_assert_ptr_nonnull(strstr(cfg->redis.sentinel_password_source, "sentinel.env"));
    fm_config_free(cfg);
    cfg = load_ok(USERS "redis: {addr: \"127.0.0.1:6379\"}\n");
    ck_assert_uint_eq(cfg->redis.nsentinels, 0);
    ck_assert_ptr_null(cfg->redis.master_name);
    ck_assert_ptr_null(cfg->redis.sentinel_password);
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_password_file_refused)
{
    static char big[FM_SECRET_FILE_MAX + 2];
    const char *path;

    path = secret_file("group-readable", "TOPSECRET\n", 10, 0640);
    expect_file_error(path,
                      " is accessible by group or other users (mode 0640): make it 0600 or 0400");
    path = secret_file("other-readable", "TOPSECRET\n", 10, 0604);
    expect_file_error(path,
                      " is accessible by group or other users (mode 0604): make it 0600 or 0400");
    path = secret_file("group-writable", "TOPSECRET\n", 10, 0620);
    expect_file_error(path,
                      " is accessible by group or other users (mode 0620): make it 0600 or 0400");
    path = secret_file("empty", "", 0, 0600);
    expect_file_error(path, " is empty");
    path = secret_file("newline", "\n", 1, 0600);
    expect_file_error(path, " holds an empty password");
    path = secret_file("empty-value", "REDIS_PASSWORD=\n", 16, 0600);
    expect_file_error(path, " holds an empty password");
    path = secret_file("empty-quoted", "REDIS_PASSWORD=\"\"\n", 18, 0600);
    expect_file_error(path, " holds an empty password");
    path = secret_file("other-vars", "OTHER=TOPSECRET\nREDIS_PASSWORDX=TOPSECRET\n", 42, 0600);
    expect_file_error(
        path, " has no REDIS_PASSWORD= line (a bare password must be one line without '=')");
    path = secret_file("two-lines", "TOPSECRET\nTOPSECRET\n", 20, 0600);
    expect_file_error(
        path, " has no REDIS_PASSWORD= line (a bare password must be one line without '=')");
    path = secret_file("bare-with-equals", "TOPSECRET==\n", 12, 0600);
    expect_file_error(
        path, " has no REDIS_PASSWORD= line (a bare password must be one line without '=')");
    path = secret_file("twice", "REDIS_PASSWORD=TOPSECRET\nREDIS_PASSWORD=TOPSECRET\n", 50, 0600);
    expect_file_error(path, " has more than one REDIS_PASSWORD= line");
    path = secret_file("nul", "TOPSECRET\0x\n", 12, 0600);
    expect_file_error(path, " contains a NUL byte");
    memset(big, 'p', sizeof(big) - 1);
    path = secret_file("too-large", big, FM_SECRET_FILE_MAX + 1, 0600);
    expect_file_error(path, " is larger than 4096 bytes");
    path = extra_path("dir");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    expect_file_error(path, " is not a regular file");
    /* A FIFO would block a plain open: it is refused without waiting for a writer. */
    path = extra_path("fifo");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    expect_file_error(path, " is not a regular file");
}
END_TEST

START_TEST(test_password_file_paths)
{
    char err[FM_CONFIG_ERR_MAX], want[FM_CONFIG_ERR_MAX + 256], *base = realpath(tmpdir, NULL);
    const char *path = secret_file("redis.env", "REDIS_PASSWORD=pw\n", 18, 0400);
    fm_config *cfg;

    ck_assert_ptr_nonnull(base);
    /* Relative to the configuration file, like every path. */
    cfg = load(USERS "redis: {password_file: redis.env}\n", err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->redis.password, "pw");
    (void)snprintf(want, sizeof(want), "file %s/redis.env", base);
    ck_assert_str_eq(cfg->redis.password_source, want);
    fm_config_free(cfg);
    /* From the environment; an error then names the file as written. */
    ck_assert_int_eq(setenv("FM_TEST_SECRET_FILE", path, 1), 0);
    cfg = load(USERS "redis: {password_file: \"${FM_TEST_SECRET_FILE}\"}\n", err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->redis.password, "pw");
    fm_config_free(cfg);
    ck_assert_int_eq(chmod(path, 0440), 0);
    ck_assert_ptr_null(load(USERS "redis: {password_file: \"${FM_TEST_SECRET_FILE}\"}\n", err));
    (void)snprintf(want, sizeof(want),
                   "%s:5:24: redis.password_file: ${FM_TEST_SECRET_FILE} is accessible by group "
                   "or other users (mode 0440): make it 0600 or 0400",
                   cfgpath);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(chmod(path, 0600), 0);
    /* password_env after a password_file that was read: still only one of them. */
    expect_error(USERS "redis:\n  password_file: redis.env\n  password_env: ~\n",
                 "7:3: redis.password_env and redis.password_file are alternatives: give only "
                 "one");
    /* A later error frees the password read from the file. */
    expect_error(USERS "redis:\n  password_file: redis.env\n  db: 16\n",
                 "7:7: redis.db must be an integer between 0 and 15");
    free(base);
}
END_TEST

/*
 * Takes away the caller's right to open path: root loses the capabilities that let it read
 * another user's file (the file is nobody's), anyone else the file's mode. 0 on success.
 */
static int lose_access(const char *path)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    if (geteuid() != 0)
        return chmod(path, 0);
    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    data[0].effective &= ~((1U << CAP_DAC_OVERRIDE) | (1U << CAP_DAC_READ_SEARCH));
    return (int)syscall(SYS_capset, &hdr, data);
}

/* In a child: what the master of a root unit does on reload after giving up root. */
static bool kept_after_drop(const char *path, const char *other)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = load_password_file(path, err);
    bool ok = cfg != NULL && strcmp(cfg->redis.password, "TOPSECRET-K") == 0;

    fm_config_free(cfg);
    ok = ok && lose_access(path) == 0 && lose_access(other) == 0;
    /* Twice: the first read through the kept descriptor leaves its offset at the end. */
    for (int i = 0; ok && i < 2; i++) {
        cfg = load_password_file(path, err);
        ok = cfg != NULL && strcmp(cfg->redis.password, "TOPSECRET-K") == 0 &&
             strstr(cfg->redis.password_source, " (kept open: it cannot be opened again)") != NULL;
        if (!ok)
            (void)fprintf(stderr, "reload %d: %s\n", i,
                          cfg != NULL ? cfg->redis.password_source : err);
        fm_config_free(cfg);
    }
    /* A file never read before gets nothing from it. */
    cfg = load_password_file(other, err);
    ok = ok && cfg == NULL && strstr(err, ": cannot open: Permission denied") != NULL;
    fm_config_free(cfg);
    return ok;
}

/*
 * A password file that can no longer be opened (the master gave up root) is read again
 * through the descriptor kept from the last read of that path; any other file is refused.
 */
START_TEST(test_password_file_kept)
{
    const char *path = secret_file("kept.pw", "TOPSECRET-K\n", 12, 0400);
    const char *other = secret_file("other.pw", "TOPSECRET-O\n", 12, 0400);
    int status;
    pid_t pid;

    if (geteuid() == 0)
        ck_assert_int_eq(chown(path, 65534, 65534) | chown(other, 65534, 65534), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(kept_after_drop(path, other) ? 0 : 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status %d)",
                  status);
}
END_TEST

/* ---- warnings ------------------------------------------------------------------------- */

START_TEST(test_warnings)
{
    char err[FM_CONFIG_ERR_MAX], want[FM_CONFIG_ERR_MAX];
    fm_config *cfg;

    write_file(cfgpath, USERS, strlen(USERS));
    ck_assert_int_eq(chmod(cfgpath, 0644), 0);
    cfg = fm_config_load(cfgpath, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_uint_eq(cfg->nwarnings, 1);
    (void)snprintf(want, sizeof(want),
                   "%s: warning: configuration file is readable by other users (mode 0644); it "
                   "names key hashes and roles",
                   cfgpath);
    ck_assert_str_eq(cfg->warnings[0], want);
    fm_config_free(cfg);
    /* Group-readable is the recommended mode (root:fetchml 0640): no warning. */
    ck_assert_int_eq(chmod(cfgpath, 0640), 0);
    cfg = fm_config_load(cfgpath, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_uint_eq(cfg->nwarnings, 0);
    fm_config_free(cfg);
    /* A failed load has no snapshot, so its warnings go with it. */
    write_file(cfgpath, "server: {}\n", 11);
    ck_assert_int_eq(chmod(cfgpath, 0604), 0);
    ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
}
END_TEST

/* ---- the shipped examples ---------------------------------------------------------- */

/* The examples live in the source tree; tests run from the build directory. */
static void source_file(char *out, size_t outlen, const char *rel)
{
    const char *self = __FILE__;
    const char *tail = strstr(self, "tests/unit/test_config.c");

    ck_assert_ptr_nonnull(tail);
    (void)snprintf(out, outlen, "%.*s%s", (int)(tail - self), self, rel);
}

START_TEST(test_example_local)
{
    char path[PATH_MAX], err[FM_CONFIG_ERR_MAX];
    fm_config *cfg;
    const fm_user *alice, *bob;

    ck_assert_int_eq(setenv("REDIS_PASSWORD", "example-redis-password", 1), 0);
    source_file(path, sizeof(path), "conf/config-local.yaml");
    cfg = fm_config_load(path, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->redis.password, "example-redis-password");
    ck_assert_str_eq(cfg->server.listen, "unix:/run/fetch_ml/fcgi.sock");
    ck_assert(!cfg->server.tls_enabled);
    ck_assert_uint_eq(cfg->auth.ip_whitelist.count, 2);
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "127.0.0.1"));
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "::1"));
    ck_assert(!fm_ipacl_match(&cfg->auth.ip_whitelist, "10.0.0.1"));
    ck_assert_uint_eq(cfg->auth.nusers, 2);
    alice = user_named(cfg, "alice");
    bob = user_named(cfg, "bob");
    ck_assert_uint_eq(alice->effective, role_named(cfg, "researcher")->perms | perm("jobs:delete"));
    ck_assert_uint_eq(bob->effective, role_named(cfg, "analyst")->perms);
    ck_assert_uint_eq(fm_config_user_rate(cfg, bob)->requests_per_minute, 120);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.max, 20);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.block_seconds, 60);
    ck_assert_str_eq(cfg->redis.password_source, "env REDIS_PASSWORD");
    ck_assert_int_eq(cfg->logging.level, FM_LOG_DEBUG);
    expect_jobs_limits(cfg, (const int[3]){30, 3, 1000}, (const long[3]){65536, 1000, 4194304});
    fm_config_free(cfg);
}
END_TEST

START_TEST(test_example_prod)
{
    char path[PATH_MAX], err[FM_CONFIG_ERR_MAX], creds[TH_PATH_MAX], secret[TH_PATH_MAX];
    fm_config *cfg;
    const fm_user *carol, *dave, *erin;
    const fm_role *senior;

    /* Its accounts exist where the suite runs as root (scripts/test.sh makes them). */
    if (getpwnam("fetchml") == NULL || getpwnam("fetchml-audit") == NULL) {
        ck_assert_msg(geteuid() != 0, "run as root, scripts/test.sh makes fetchml and fetchml-audit");
        fprintf(stderr, "test_example_prod: no fetchml/fetchml-audit accounts here; skipped\n");
        return;
    }
    /* The password as systemd's LoadCredential= hands it over (conf/systemd/). */
    th_mkdtemp(creds, "fm-creds");
    th_path(secret, creds, "redis-password");
    th_write_file(secret, "example-redis-password\n");
    ck_assert_int_eq(chmod(secret, 0400), 0);
    ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
    source_file(path, sizeof(path), "conf/config-prod.yaml");
    cfg = fm_config_load(path, err, sizeof(err));
    th_rmtree(creds);
    ck_assert_int_eq(unsetenv("CREDENTIALS_DIRECTORY"), 0);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->redis.username, "fetchml");
    ck_assert_str_eq(cfg->redis.password, "example-redis-password");
    ck_assert_str_eq(cfg->server.user, "fetchml");
    ck_assert_str_eq(cfg->logging.audit_user, "fetchml-audit");
    ck_assert(cfg->server.tls_enabled);
    ck_assert_str_eq(cfg->server.tls_cert_file, "/secrets/cert.pem");
    ck_assert_str_eq(cfg->server.tls_key_file, "/secrets/key.pem");
    ck_assert_str_eq(cfg->server.socket_group, "www-data");
    ck_assert_uint_eq(cfg->auth.ip_whitelist.count, 3);
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "10.20.30.40"));
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "192.168.1.1"));
    ck_assert(fm_ipacl_match(&cfg->auth.ip_whitelist, "127.0.0.1"));
    ck_assert(!fm_ipacl_match(&cfg->auth.ip_whitelist, "8.8.8.8"));
    carol = user_named(cfg, "carol");
    dave = user_named(cfg, "dave");
    ck_assert_uint_eq(carol->nkeys, 2);
    ck_assert_int_eq(carol->keys[1].expires, 1774915200);
    ck_assert_uint_eq(carol->effective, perm("jobs:read") | perm("jobs:create") |
                                            perm("jobs:update") | perm("experiments:read") |
                                            perm("experiments:create"));
    ck_assert_uint_eq(dave->effective,
                      perm("jobs:read") | perm("experiments:read") | perm("metrics:read"));
    ck_assert_ptr_eq(fm_config_user_rate(cfg, dave), &cfg->rate_limit.rate);
    erin = user_named(cfg, "erin");
    senior = role_named(cfg, "senior-researcher");
    ck_assert_ptr_nonnull(senior);
    ck_assert_uint_eq(erin->effective, carol->effective | perm("jobs:delete"));
    ck_assert_ptr_eq(fm_config_user_rate(cfg, erin), &senior->rate);
    ck_assert_uint_eq(senior->rate.requests_per_minute, 300);
    ck_assert_uint_eq(senior->rate.burst, 50);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.max, 10);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.window_seconds, 300);
    ck_assert_uint_eq(cfg->rate_limit.auth_failures.block_seconds, 900);
    ck_assert_int_eq(strncmp(cfg->redis.password_source, "file ", 5), 0);
    ck_assert_str_eq(cfg->redis.password_source + 5, secret);
    ck_assert_uint_eq(user_named(cfg, "gpu-node-1")->effective,
                      perm("jobs:run") | perm("jobs:read"));
    expect_jobs_limits(cfg, (const int[3]){60, 3, 1000}, (const long[3]){65536, 1000, 4194304});
    fm_config_free(cfg);
}
END_TEST

/* ---- at scale -------------------------------------------------------------------- */

/*
 * A load is O(n) in the size of the file: a check that scanned every user
 * per user (or every role per role reference) took minutes here. These
 * tests assert what loads, never how fast; a return to a scan per entry
 * shows as the test case's timeout (CK_DEFAULT_TIMEOUT).
 */
enum { SCALE_USERS = 100000, SCALE_ROLES = 10000 };

/*
 * Loops over the generated users count what went wrong and assert once at the
 * end: Check records every assertion that passes, and a million of those cost
 * more than the load itself.
 */
static size_t scale_lines; /* lines written by emit so far */
static size_t scale_bad;   /* emit calls that failed */

__attribute__((format(printf, 2, 3))) static void emit(FILE *f, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof(line) || fputs(line, f) < 0)
        scale_bad++;
    for (const char *c = line; *c != '\0'; c++)
        scale_lines += *c == '\n';
}

/*
 * The hash of key k of the generated users: SHA-256 of a known key for odd
 * k; for even k, k + 1 in 64 hex digits, hashes that share all their leading
 * bytes (an index placed by leading bytes put them all in one run of slots).
 */
static void scale_hash(size_t k, char hex[2 * FM_KEY_HASH_BYTES + 1])
{
    unsigned char h[FM_KEY_HASH_BYTES];
    char key[32];

    if (k % 2 == 0) {
        (void)snprintf(hex, 2 * FM_KEY_HASH_BYTES + 1, "%064zx", k + 1);
        return;
    }
    (void)snprintf(key, sizeof(key), "scale-key-%zu", k);
    crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
    (void)sodium_bin2hex(hex, 2 * FM_KEY_HASH_BYTES + 1, h, sizeof(h));
}

/* The digest of key k; false when its hex does not decode. */
static bool scale_digest(size_t k, unsigned char h[FM_KEY_HASH_BYTES])
{
    char hex[2 * FM_KEY_HASH_BYTES + 1];
    size_t len = 0;

    scale_hash(k, hex);
    return sodium_hex2bin(h, FM_KEY_HASH_BYTES, hex, strlen(hex), NULL, &len, NULL) == 0 &&
           len == FM_KEY_HASH_BYTES;
}

/*
 * cfgpath gets SCALE_ROLES roles r<j> (each inherits r<j-1>, every eighth
 * analyst) and n (even) users u<i> with roles r<i % SCALE_ROLES> and
 * researcher and key i; every tenth user gives a keys: list with key n + i as
 * well. tail ends auth.api_keys; scale_lines counts the lines before it.
 */
static void write_scale_config(size_t n, const char *tail)
{
    FILE *f = fopen(cfgpath, "w");
    char hex[2 * FM_KEY_HASH_BYTES + 1], hex2[2 * FM_KEY_HASH_BYTES + 1];

    ck_assert_ptr_nonnull(f);
    scale_lines = 0;
    scale_bad = 0;
    emit(f, "auth:\n  roles:\n");
    for (size_t j = 0; j < SCALE_ROLES; j++) {
        if (j % 8 == 0)
            emit(f, "    r%zu: {inherits: [analyst], permissions: {\"jobs:delete\": true}}\n", j);
        else
            emit(f, "    r%zu: {inherits: [r%zu]}\n", j, j - 1);
    }
    emit(f, "  api_keys:\n");
    for (size_t i = 0; i < n; i++) {
        scale_hash(i, hex);
        emit(f, "    u%06zu:\n      roles: [r%zu, researcher]\n", i, i % SCALE_ROLES);
        if (i % 10 != 0) {
            emit(f, "      hash: \"%s\"\n", hex);
            continue;
        }
        scale_hash(n + i, hex2);
        emit(f, "      keys:\n        - {hash: \"%s\", label: main}\n        - {hash: \"%s\"}\n",
             hex, hex2);
    }
    ck_assert_uint_eq(scale_bad, 0);
    ck_assert_int_ge(fputs(tail, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(cfgpath, 0600), 0);
}

/* Whether key k finds the user called name (NULL: finds none). */
static bool scale_finds(const fm_config *cfg, size_t k, const char *name)
{
    unsigned char h[FM_KEY_HASH_BYTES];
    const fm_user *u = NULL;

    if (!scale_digest(k, h))
        return false;
    if (!fm_config_find_key(cfg, h, &u, NULL))
        return name == NULL;
    return name != NULL && strcmp(u->name, name) == 0;
}

/* Every key of the n generated users finds its user; a key not in the file finds none. */
static void check_scale_keys(const fm_config *cfg, size_t n)
{
    size_t wrong = 0;
    char name[32];

    for (size_t i = 0; i < n; i++) {
        (void)snprintf(name, sizeof(name), "u%06zu", i);
        wrong += !scale_finds(cfg, i, name);
        if (i % 10 == 0)
            wrong += !scale_finds(cfg, n + i, name);
    }
    ck_assert_uint_eq(wrong, 0);
    ck_assert(scale_finds(cfg, 2 * n, NULL));
    ck_assert(scale_finds(cfg, 2 * n + 1, NULL));
}

START_TEST(test_scale_load)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg;
    const fm_user *u;
    size_t keys = 0;

    write_scale_config(SCALE_USERS, "");
    cfg = fm_config_load(cfgpath, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "load failed: %s", err);
    ck_assert_uint_eq(cfg->auth.nusers, SCALE_USERS);
    ck_assert_uint_eq(cfg->auth.nroles, 4 + SCALE_ROLES);
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        keys += cfg->auth.users[i].nkeys;
    ck_assert_uint_eq(keys, SCALE_USERS + SCALE_USERS / 10);
    check_scale_keys(cfg, SCALE_USERS);
    /* Roles resolve through their chains: u000009 has r9, which inherits r8. */
    u = &cfg->auth.users[9];
    ck_assert_str_eq(u->name, "u000009");
    ck_assert(u->effective & perm("jobs:delete"));
    ck_assert(u->effective & perm("jobs:create"));
    ck_assert_str_eq(cfg->auth.users[SCALE_USERS - 1].name, "u099999");
    fm_config_free(cfg);
}
END_TEST

/*
 * The last entry of a big file repeats the first user, the first key, or a
 * role of its own list: refused at its line.
 */
START_TEST(test_scale_duplicates_at_end)
{
    char err[FM_CONFIG_ERR_MAX], tail[256], hex[2 * FM_KEY_HASH_BYTES + 1], want[FM_CONFIG_ERR_MAX];

    (void)snprintf(tail, sizeof(tail), "    u000000:\n      hash: \"%s\"\n", H_ONE);
    write_scale_config(SCALE_USERS, tail);
    ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
    (void)snprintf(want, sizeof(want), "%s:%zu:5: duplicate key \"u000000\" in auth.api_keys",
                   cfgpath, scale_lines + 1);
    ck_assert_str_eq(err, want);

    scale_hash(0, hex);
    (void)snprintf(tail, sizeof(tail), "    late:\n      hash: \"%s\"\n", hex);
    write_scale_config(SCALE_USERS / 10, tail);
    ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
    (void)snprintf(want, sizeof(want),
                   "%s:%zu:13: key hash of user \"late\" is already used by user \"u000000\"",
                   cfgpath, scale_lines + 2);
    ck_assert_str_eq(err, want);

    (void)snprintf(tail, sizeof(tail), "    late:\n      hash: \"%s\"\n      roles: [r%d, r%d]\n",
                   H_ONE, SCALE_ROLES - 1, SCALE_ROLES - 1);
    write_scale_config(SCALE_USERS / 10, tail);
    ck_assert_ptr_null(fm_config_load(cfgpath, err, sizeof(err)));
    (void)snprintf(want, sizeof(want),
                   "%s:%zu:22: auth.api_keys.late.roles[1]: role \"r%d\" is listed twice", cfgpath,
                   scale_lines + 3, SCALE_ROLES - 1);
    ck_assert_str_eq(err, want);
}
END_TEST

/* The name sets behind those checks: found by name only, emptied in O(1), across growth. */
START_TEST(test_name_sets)
{
    enum { N = 1000 };
    static char names[N][FM_NAME_MAX];
    struct ld_names set;
    struct loader l;
    size_t at, wrong = 0;

    memset(&set, 0, sizeof(set));
    memset(&l, 0, sizeof(l));
    ck_assert(!ld_names_find(&set, "n0", names[0], sizeof(names[0]), &at));
    for (size_t i = 0; i < N; i++) {
        (void)snprintf(names[i], sizeof(names[i]), "n%zu", i);
        wrong += ld_names_add(&l, &set, names[i], i) != FM_OK;
    }
    for (size_t i = 0; i < N; i++)
        wrong += !ld_names_find(&set, names[i], names[0], sizeof(names[0]), &at) || at != i;
    ck_assert_uint_eq(wrong, 0);
    ck_assert(!ld_names_find(&set, "n1000", names[0], sizeof(names[0]), &at));
    ck_assert(!ld_names_find(&set, "n", names[0], sizeof(names[0]), &at));

    ld_names_clear(&set);
    ck_assert(!ld_names_find(&set, "n7", names[0], sizeof(names[0]), &at));
    ck_assert_int_eq(ld_names_add(&l, &set, names[7], 7), FM_OK);
    ck_assert(ld_names_find(&set, "n7", names[0], sizeof(names[0]), &at));
    ck_assert_uint_eq(at, 7);
    ck_assert(!ld_names_find(&set, "n8", names[0], sizeof(names[0]), &at));

    /* The last generation before the counter wraps: the clear wipes the table instead. */
    set.gen = UINT32_MAX;
    ld_names_clear(&set);
    ck_assert(!ld_names_find(&set, "n7", names[0], sizeof(names[0]), &at));
    ck_assert_int_eq(ld_names_add(&l, &set, names[3], 3), FM_OK);
    ck_assert(ld_names_find(&set, "n3", names[0], sizeof(names[0]), &at));
    ck_assert_uint_eq(at, 3);
    ld_names_free(&set);
    ck_assert_ptr_null(set.slots);
}
END_TEST

/* ---- the rows engine past 32 keys ------------------------------------------------ */

#define WIDE_ROWS 40
struct wide {
    int v[WIDE_ROWS];
};
#define W(i) LD_INT_ROW("k" #i, struct wide, v[i - 1], 0, 1000, 0)
LD_TABLE(static, wide_table, W(1), W(2), W(3), W(4), W(5), W(6), W(7), W(8), W(9), W(10), W(11),
         W(12), W(13), W(14), W(15), W(16), W(17), W(18), W(19), W(20), W(21), W(22), W(23), W(24),
         W(25), W(26), W(27), W(28), W(29), W(30), W(31), W(32), W(33), W(34), W(35), W(36), W(37),
         W(38), W(39), W(40));

/* "k1: 101\nk2: 102\n...k40: 140\n" then extra. */
static void wide_yaml(char *out, size_t cap, const char *extra_lines)
{
    size_t used = 0;

    for (int i = 1; i <= WIDE_ROWS; i++) {
        int n = snprintf(out + used, cap - used, "k%d: %d\n", i, 100 + i);

        ck_assert(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
    ck_assert_int_lt(snprintf(out + used, cap - used, "%s", extra_lines), (int)(cap - used));
}

/* Defect: a 32-bit "seen" mask made the 33rd key alias the 1st (undefined behaviour). */
START_TEST(test_rows_past_32_keys)
{
    char yaml[1024], err[FM_CONFIG_ERR_MAX];
    struct wide w;

    ck_assert_uint_eq(wide_table.n, WIDE_ROWS);
    memset(&w, 0, sizeof(w));
    wide_yaml(yaml, sizeof(yaml), "");
    ck_assert_msg(ld_load_text("wide", yaml, strlen(yaml), &wide_table, &w, err, sizeof(err)) ==
                      FM_OK,
                  "%s", err);
    for (int i = 0; i < WIDE_ROWS; i++)
        ck_assert_int_eq(w.v[i], 101 + i);

    wide_yaml(yaml, sizeof(yaml), "k40: 7\n");
    ck_assert_int_eq(ld_load_text("wide", yaml, strlen(yaml), &wide_table, &w, err, sizeof(err)),
                     FM_EINVAL);
    ck_assert_str_eq(err, "wide:41:1: duplicate key \"k40\" at top level");

    wide_yaml(yaml, sizeof(yaml), "k33: 7\n");
    ck_assert_int_eq(ld_load_text("wide", yaml, strlen(yaml), &wide_table, &w, err, sizeof(err)),
                     FM_EINVAL);
    ck_assert_str_eq(err, "wide:41:1: duplicate key \"k33\" at top level");
}
END_TEST

/* A table not made by LD_TABLE (which refuses it at compile time) is refused, not overrun. */
START_TEST(test_rows_table_too_wide)
{
    static struct ld_row rows[LD_ROWS_MAX + 1];
    const struct ld_table t = {rows, LD_ROWS_MAX + 1};
    char err[FM_CONFIG_ERR_MAX];
    struct wide w;

    ck_assert_int_eq(ld_load_text("wide", "k1: 1\n", 6, &t, &w, err, sizeof(err)), FM_EINVAL);
    ck_assert_str_eq(err, "wide:1:1: top level: more than 64 settings in one table");
}
END_TEST

/* The shared config builder: a section override replaces it, an addition extends it. */
START_TEST(test_builder_overrides)
{
    char err[FM_CONFIG_ERR_MAX], want[FM_CONFIG_ERR_MAX + TH_PATH_MAX];
    th_config c;
    fm_config *cfg;

    th_config_init(&c, "test_config_builder");
    th_config_set(&c, "rate_limit", "  requests_per_minute: %d\n", 77);
    th_config_add(&c, "rate_limit", "  burst: 3\n");
    th_config_add(&c, "auth", "  ip_whitelist: [\"127.0.0.1\"]\n");
    cfg = th_config_load(&c);
    ck_assert_uint_eq(cfg->rate_limit.rate.requests_per_minute, 77);
    ck_assert_uint_eq(cfg->rate_limit.rate.burst, 3);
    ck_assert_uint_eq(cfg->auth.nusers, 2);
    ck_assert_uint_eq(cfg->auth.ip_whitelist.count, 1);
    fm_config_free(cfg);

    th_config_set(&c, "server", "  workers: 0\n");
    (void)th_config_load_err(&c, err);
    /* auth (5 lines with the addition) comes first, then logging (3), data (2), rate_limit (3). */
    (void)snprintf(want, sizeof(want),
                   "%s:15:12: server.workers must be an integer between 1 and 256", c.path);
    ck_assert_str_eq(err, want);
    th_config_drop(&c, "server");
    cfg = th_config_load(&c);
    ck_assert_int_eq(cfg->server.workers, 4);
    fm_config_free(cfg);
    th_config_free(&c);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, test_reader_errors);
    tcase_add_test(tc, test_log_files_same_inode);
    tcase_add_test(tc, test_unreadable);
    tcase_add_test(tc, test_error_never_shows_secret);
    tcase_add_test(tc, test_error_truncated_to_errlen);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_sentinels);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_jobs_limits_low);
    tcase_add_test(tc, test_worker_role);
    tcase_add_test(tc, test_nullable_settings);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_test(tc, test_permissions);
    tcase_add_test(tc, test_keys_and_index);
    tcase_add_test(tc, test_index_many_keys);
    tcase_add_test(tc, test_user_rate);
    tcase_add_test(tc, test_level_names);
    tcase_add_test(tc, test_role_inheritance);
    tcase_add_test(tc, test_inheritance_depth);
    tcase_add_test(tc, test_role_rates);
    tcase_add_test(tc, test_user_rate_without_load);
    tcase_add_test(tc, test_auth_failures);
    tcase_add_test(tc, test_expansion);
    tcase_add_test(tc, test_expansion_never_echoed);
    tcase_add_test(tc, test_password_file);
    tcase_add_test(tc, test_password_file_refused);
    tcase_add_test(tc, test_password_file_paths);
    tcase_add_test(tc, test_password_file_kept);
    tcase_add_test(tc, test_warnings);
    tcase_add_test(tc, test_example_local);
    tcase_add_test(tc, test_example_prod);
    tcase_add_test(tc, test_rows_past_32_keys);
    tcase_add_test(tc, test_rows_table_too_wide);
    tcase_add_test(tc, test_builder_overrides);
    tcase_add_test(tc, test_scale_load);
    tcase_add_test(tc, test_scale_duplicates_at_end);
    tcase_add_test(tc, test_name_sets);
    tcase_add_test(tc, test_server_accounts);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(config_suite)
