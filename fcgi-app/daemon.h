/*
 * daemon.h - the start-up pieces fetchml-fcgi, fetchml-logrelay and
 * fetchml-admin share: command-line options as a table of rows, libsodium
 * initialisation, the pid file (nginx and php-fpm convention: a second
 * instance does not take over a running one's files) and signal set-up for a
 * program that waits in ppoll/pselect with its signals unblocked only there.
 */
#ifndef FM_DAEMON_H
#define FM_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "err.h"

/*
 * One command-line option. Exactly one of arg, flag and add is set:
 *   arg   the option takes an argument, stored here (the last one wins);
 *   flag  it takes none and sets *flag to true;
 *   add   it takes an argument, handed to add for each occurrence; add
 *         returns false to refuse it, after printing why on stderr.
 * required: the program does not start without it (usage, exit status 2).
 */
typedef struct fm_daemon_opt {
    char letter;
    const char **arg;
    bool *flag;
    bool (*add)(const char *arg);
    bool required;
} fm_daemon_opt;

/*
 * fm_daemon_options - getopt(3) over argv with the nopts rows of opts, plus
 * -h. usage is printed on stderr for -h, an unknown option, a missing
 * required one or a stray operand. Returns true when the program should go
 * on; false when it should exit with *exit_status: 0 after -h, 2 on misuse
 * (the usual exit status of a command-line error).
 */
bool fm_daemon_options(int argc, char **argv, const fm_daemon_opt *opts, size_t nopts,
                       const char *usage, int *exit_status) FM_NONNULL(2, 3, 5, 6);

/*
 * fm_daemon_sodium - initialise libsodium (its RNG and SHA-256). On failure
 * prints "PROG: libsodium initialisation failed" on stderr and returns
 * FM_ESYS.
 */
FM_MUST_CHECK fm_err fm_daemon_sodium(const char *prog) FM_NONNULL(1);

/*
 * fm_daemon_pidfile_free - FM_OK when path (NULL: no pid file) names no
 * running process other than the caller; FM_ECONFLICT, logged with the pid
 * found, when it does.
 */
FM_MUST_CHECK fm_err fm_daemon_pidfile_free(const char *path);

/*
 * fm_daemon_pidfile_write - write the caller's pid to path (NULL: nothing to
 * do) and remember it for fm_daemon_pidfile_remove; path must stay valid
 * until then. FM_OK, or FM_ESYS with errno after logging why.
 */
FM_MUST_CHECK fm_err fm_daemon_pidfile_write(const char *path);

/* fm_daemon_pidfile_remove - unlink the pid file this process wrote, if any. */
void fm_daemon_pidfile_remove(void);

/* A signal and what it gets: a handler, SIG_IGN or SIG_DFL. */
typedef struct fm_daemon_signal {
    int sig;
    void (*handler)(int);
} fm_daemon_signal;

/*
 * fm_daemon_signals - install the n rows of sigs (sigaction, no SA_RESTART)
 * and make the signals with a real handler the only blocked ones, so they are
 * delivered only where the program waits with *waitmask (ppoll, pselect),
 * which is set to the empty set. FM_OK, or FM_ESYS with errno after logging it.
 */
FM_MUST_CHECK fm_err fm_daemon_signals(const fm_daemon_signal *sigs, size_t n, sigset_t *waitmask)
    FM_NONNULL(1, 3);

/*
 * fm_daemon_unix_socket - a unix socket of type (SOCK_STREAM or SOCK_DGRAM,
 * optionally ORed with SOCK_NONBLOCK; always close-on-exec) bound at path
 * and put in *fd. The path is claimed first (fm_unixsock_claim: a live
 * socket there is refused, a stale one removed); the socket is created with
 * no access and given group (NULL: the process's) and mode before anyone may
 * connect. FM_OK, or FM_ESYS after logging why, each message starting with
 * what (the setting or option that named the path); nothing is left at path.
 */
FM_MUST_CHECK fm_err fm_daemon_unix_socket(const char *path, int type, const char *group,
                                           mode_t mode, const char *what, int *fd)
    FM_NONNULL(1, 5, 6);

/*
 * fm_daemon_secrets - register with the redaction filter what of cfg no log
 * may show, replacing what was registered before: the Redis password (a
 * literal) and the SHA-256 digest of every configured key, so that a key is
 * redacted in any format and wherever a client put it. Logs what it could
 * not register. FM_OK; FM_ESYS (errno ENOMEM or ENOSPC) when some part could
 * not be registered (the rest is).
 */
fm_err fm_daemon_secrets(const fm_config *cfg) FM_NONNULL(1);

#endif
