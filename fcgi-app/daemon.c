/*
 * daemon.c - start-up pieces shared by the programs (see daemon.h).
 */
#include "daemon.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "pidfile.h"
#include "redact.h"
#include "unixsock.h"

#define OPTS_MAX 32

/* The getopt(3) string of the rows, "h" first. false when it does not fit. */
static bool optstring(const fm_daemon_opt *opts, size_t nopts, char out[2 * OPTS_MAX + 2])
{
    size_t k = 0;

    if (nopts > OPTS_MAX)
        return false;
    out[k++] = 'h';
    for (size_t i = 0; i < nopts; i++) {
        out[k++] = opts[i].letter;
        if (opts[i].flag == NULL)
            out[k++] = ':';
    }
    out[k] = '\0';
    return true;
}

/* Applies one occurrence of row o; false when its hook refused the argument. */
static bool apply(const fm_daemon_opt *o, const char *arg)
{
    if (o->flag != NULL)
        *o->flag = true;
    else if (o->arg != NULL)
        *o->arg = arg;
    else if (!o->add(arg))
        return false;
    return true;
}

bool fm_daemon_options(int argc, char **argv, const fm_daemon_opt *opts, size_t nopts,
                       const char *usage, int *exit_status)
{
    char spec[2 * OPTS_MAX + 2];
    bool seen[OPTS_MAX] = {false};
    bool missing = false;
    int opt;

    *exit_status = 2;
    if (!optstring(opts, nopts, spec))
        return false;
    while ((opt = getopt(argc, argv, spec)) != -1) {
        size_t i = 0;

        while (i < nopts && opts[i].letter != opt)
            i++;
        if (i == nopts) { /* -h or an unknown option */
            (void)fputs(usage, stderr);
            *exit_status = opt == 'h' ? 0 : 2;
            return false;
        }
        if (!apply(&opts[i], optarg))
            return false;
        seen[i] = true;
    }
    for (size_t i = 0; i < nopts; i++)
        missing = missing || (opts[i].required && !seen[i]);
    if (missing || optind != argc) {
        (void)fputs(usage, stderr);
        return false;
    }
    return true;
}

fm_err fm_daemon_sodium(const char *prog)
{
    if (sodium_init() < 0) {
        (void)fprintf(stderr, "%s: libsodium initialisation failed\n", prog);
        return FM_ESYS;
    }
    return FM_OK;
}

fm_err fm_daemon_pidfile_free(const char *path)
{
    pid_t other = path != NULL ? fm_pidfile_running(path) : 0;

    if (other == 0)
        return FM_OK;
    fm_log_error("already running (pid %d in %s); not starting", (int)other, path);
    return FM_ECONFLICT;
}

static const char *pidfile_written;

fm_err fm_daemon_pidfile_write(const char *path)
{
    if (path == NULL)
        return FM_OK;
    if (fm_pidfile_write(path) != 0) {
        fm_log_error("cannot write pid file %s: %s", path, strerror(errno));
        return FM_ESYS;
    }
    pidfile_written = path;
    return FM_OK;
}

void fm_daemon_pidfile_remove(void)
{
    if (pidfile_written != NULL)
        (void)unlink(pidfile_written);
    pidfile_written = NULL;
}

fm_err fm_daemon_signals(const fm_daemon_signal *sigs, size_t n, sigset_t *waitmask)
{
    struct sigaction sa;
    sigset_t blocked;
    bool ok;

    memset(&sa, 0, sizeof(sa));
    ok = sigemptyset(&sa.sa_mask) == 0 && sigemptyset(&blocked) == 0 && sigemptyset(waitmask) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        sa.sa_handler = sigs[i].handler;
        ok = sigaction(sigs[i].sig, &sa, NULL) == 0 &&
             (sigs[i].handler == SIG_IGN || sigs[i].handler == SIG_DFL ||
              sigaddset(&blocked, sigs[i].sig) == 0);
    }
    if (ok && sigprocmask(SIG_SETMASK, &blocked, NULL) == 0)
        return FM_OK;
    fm_log_error("signals: %s", strerror(errno));
    return FM_ESYS;
}

/* Gives the socket's name its group and mode; false after logging why. */
static bool set_access(const char *path, const char *group, mode_t mode, const char *what)
{
    if (group != NULL) {
        struct group *gr = getgrnam(group);

        if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) != 0) {
            fm_log_error("%s: cannot give %s to group %s", what, path, group);
            return false;
        }
    }
    if (chmod(path, mode) != 0) {
        fm_log_error("%s: chmod %s: %s", what, path, strerror(errno));
        return false;
    }
    return true;
}

fm_err fm_daemon_unix_socket(const char *path, int type, const char *group, mode_t mode,
                             const char *what, int *fd)
{
    struct sockaddr_un sa;
    char why[256 + PATH_MAX];
    mode_t old;
    int s, rc;

    if (fm_unixsock_claim(path, type & ~SOCK_NONBLOCK, &sa, why, sizeof(why)) != 0) {
        fm_log_error("%s: %s", what, why);
        return FM_ESYS;
    }
    s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (s < 0) {
        fm_log_error("%s: socket: %s", what, strerror(errno));
        return FM_ESYS;
    }
    old = umask(0777);
    rc = bind(s, (struct sockaddr *)&sa, sizeof(sa));
    (void)umask(old);
    if (rc != 0) {
        fm_log_error("%s: bind %s: %s", what, path, strerror(errno));
        (void)close(s);
        return FM_ESYS;
    }
    if (!set_access(path, group, mode, what)) {
        (void)unlink(path);
        (void)close(s);
        return FM_ESYS;
    }
    *fd = s;
    return FM_OK;
}

fm_err fm_daemon_secrets(const fm_config *cfg)
{
    size_t n = 0, o = 0;
    unsigned char *digests;
    fm_err rc = FM_OK;

    for (size_t u = 0; u < cfg->auth.nusers; u++)
        n += cfg->auth.users[u].nkeys;
    fm_redact_clear_secrets();
    if (cfg->redis.password != NULL && fm_redact_add_secret(cfg->redis.password) != FM_OK) {
        fm_log_error("cannot register the Redis password with the filter: %s", strerror(errno));
        rc = FM_ESYS;
    }
    if (cfg->redis.sentinel_password != NULL &&
        fm_redact_add_secret(cfg->redis.sentinel_password) != FM_OK) {
        fm_log_error("cannot register the sentinels' password with the filter: %s",
                     strerror(errno));
        rc = FM_ESYS;
    }
    if (n == 0)
        return rc;
    digests =
        n <= SIZE_MAX / FM_REDACT_KEY_HASH_BYTES ? malloc(n * FM_REDACT_KEY_HASH_BYTES) : NULL;
    for (size_t u = 0; digests != NULL && u < cfg->auth.nusers; u++)
        for (size_t k = 0; k < cfg->auth.users[u].nkeys; k++, o++)
            memcpy(digests + o * FM_REDACT_KEY_HASH_BYTES, cfg->auth.users[u].keys[k].hash,
                   FM_REDACT_KEY_HASH_BYTES);
    if (digests == NULL || fm_redact_set_key_hashes(digests, n) != FM_OK) {
        errno = ENOMEM;
        fm_log_error("cannot register the %zu key digests with the filter: %s", n, strerror(errno));
        rc = FM_ESYS;
    }
    free(digests);
    return rc;
}
