/*
 * fuzz_config.c - libFuzzer target for the whole configuration load
 * (fm_config_load, lib/config/): the YAML parse, every section's rows and
 * handlers, ${VAR} expansion, the secret file and the checks that span
 * sections.
 *
 * Each input is written to config.yaml in a private temporary directory and
 * loaded from there, as fetchml-fcgi and fetchml-admin check-config load a
 * file (relative paths resolve against that directory). The directory also
 * holds redis.secret (mode 0600, an environment file), and the environment
 * has FUZZ_SECRET and REDIS_PASSWORD, so an input can reach
 * redis.password_file, redis.password_env and ${VAR} (see the dictionary).
 * Checks:
 *   - a refusal has one message "<file>:..." on one line;
 *   - neither a refusal nor a warning of a loaded config ever shows text that
 *     came from the environment or the secret file (unless the input holds
 *     it too: libFuzzer learns strings from the comparisons it sees);
 *   - what loads grants no bit outside FM_PERM_ALL (experiments:run and
 *     metrics:run are not permissions) to any role or user, and its response
 *     limit holds the largest task (limits.max_response_bytes);
 *   - what loads also frees (LeakSanitizer checks every run).
 */
#include "config.h"
#include "fuzz.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char env_secret[] = "envsecret-Kq3w9Zp";
static const char file_secret[] = "filesecret-Hy7Lm2R";

static char dir[64], path[96], secret_path[96];

static void cleanup(void)
{
    (void)unlink(path);
    (void)unlink(secret_path);
    (void)rmdir(dir);
}

static void write_file(const char *p, const void *data, size_t size, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        fuzz_fail("config: cannot write %s", p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char secret_text[64];
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    (void)snprintf(dir, sizeof(dir), "%s/fuzz_config.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        fuzz_fail("config: mkdtemp failed");
    (void)snprintf(path, sizeof(path), "%s/config.yaml", dir);
    (void)snprintf(secret_path, sizeof(secret_path), "%s/redis.secret", dir);
    (void)snprintf(secret_text, sizeof(secret_text), "REDIS_PASSWORD=%s\n", file_secret);
    write_file(secret_path, secret_text, strlen(secret_text), 0600);
    if (setenv("FUZZ_SECRET", env_secret, 1) != 0 || setenv("REDIS_PASSWORD", env_secret, 1) != 0)
        abort();
    (void)atexit(cleanup);
    return 0;
}

/* A secret the input wrote itself (libFuzzer learns strings from comparisons) may be echoed. */
static void check_secret_free(const char *what, const char *text, const uint8_t *data, size_t size)
{
    static const char *const secrets[] = {env_secret, file_secret};

    for (size_t i = 0; i < 2; i++)
        if (strstr(text, secrets[i]) != NULL &&
            memmem(data, size, secrets[i], strlen(secrets[i])) == NULL)
            fuzz_fail("config: a secret reached %s: %s", what, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    fm_config *cfg;

    write_file(path, data, size, 0600);
    err[0] = '\0';
    cfg = fm_config_load(path, err, sizeof(err));
    if (cfg == NULL) {
        fuzz_check_message("config", err, sizeof(err));
        if (strncmp(err, path, strlen(path)) != 0 || err[strlen(path)] != ':')
            fuzz_fail("config: message does not start with the file name: %s", err);
        check_secret_free("the error message", err, data, size);
        return 0;
    }
    for (size_t i = 0; i < cfg->auth.nroles; i++)
        if ((cfg->auth.roles[i].perms & ~FM_PERM_ALL) != 0)
            fuzz_fail("config: role %s has a bit that is no permission", cfg->auth.roles[i].name);
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        if ((cfg->auth.users[i].effective & ~FM_PERM_ALL) != 0)
            fuzz_fail("config: user %s has a bit that is no permission", cfg->auth.users[i].name);
    if (cfg->limits.max_response_bytes < cfg->limits.max_task_bytes + 65536)
        fuzz_fail("config: max_response_bytes %zu cannot hold a task of %zu bytes",
                  cfg->limits.max_response_bytes, cfg->limits.max_task_bytes);
    for (size_t i = 0; i < cfg->nwarnings; i++) {
        fuzz_check_message("config warning", cfg->warnings[i], strlen(cfg->warnings[i]) + 1);
        check_secret_free("a warning", cfg->warnings[i], data, size);
    }
    fm_config_free(cfg);
    return 0;
}
