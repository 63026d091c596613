/*
 * admin.c - fetchml-admin: operator commands (SPEC section 7).
 *
 *   keygen [USER [ROLE]]   new 256-bit key from libsodium, printed once, with
 *                          its SHA-256 and a YAML snippet for auth.api_keys
 *   hash                   SHA-256 of a key read from standard input (never argv,
 *                          which other users can read in /proc)
 *   check-config FILE      validate a config like `nginx -t`: exit 0 or 1
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "config.h"

#define KEY_BYTES 32

static int usage(void)
{
    (void)fprintf(stderr,
                  "usage: fetchml-admin keygen [USER [ROLE]]\n"
                  "       fetchml-admin hash            (reads the key from standard input)\n"
                  "       fetchml-admin check-config FILE\n");
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
    unsigned char raw[KEY_BYTES];
    char key[2 * KEY_BYTES + 1], hex[2 * FM_KEY_HASH_BYTES + 1];

    if (!valid_name(user) || !valid_name(role)) {
        (void)fprintf(stderr, "fetchml-admin: user and role names are [A-Za-z0-9_.-]{1,63}\n");
        return 2;
    }
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(key, sizeof(key), raw, sizeof(raw));
    hash_hex(key, strlen(key), hex);
    (void)printf("# API key for %s: shown once, store it now; only its hash goes in the config.\n"
                 "key: %s\n"
                 "sha256: %s\n"
                 "# YAML for auth.api_keys:\n"
                 "    %s:\n"
                 "      hash: \"%s\"\n"
                 "      roles: [\"%s\"]\n",
                 user, key, hex, user, hex, role);
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(key, sizeof(key));
    return fflush(stdout) == 0 ? 0 : 1;
}

static int hash_stdin(void)
{
    char buf[FM_AUTH_KEY_MAX + 2], hex[2 * FM_KEY_HASH_BYTES + 1];
    size_t n;

    if (fgets(buf, sizeof(buf), stdin) == NULL) {
        (void)fprintf(stderr, "fetchml-admin: no key on standard input\n");
        return 1;
    }
    n = strcspn(buf, "\r\n");
    if (n == strlen(buf) && !feof(stdin)) {
        (void)fprintf(stderr, "fetchml-admin: key longer than %d bytes\n", FM_AUTH_KEY_MAX);
        sodium_memzero(buf, sizeof(buf));
        return 1;
    }
    buf[n] = '\0';
    if (n == 0) {
        (void)fprintf(stderr, "fetchml-admin: empty key\n");
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

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        (void)fprintf(stderr, "fetchml-admin: libsodium initialisation failed\n");
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0 && argc <= 4)
        return keygen(argc > 2 ? argv[2] : "user", argc > 3 ? argv[3] : "researcher");
    if (argc == 2 && strcmp(argv[1], "hash") == 0)
        return hash_stdin();
    if (argc == 3 && strcmp(argv[1], "check-config") == 0)
        return check_config(argv[2]);
    return usage();
}
