/*
 * log.h - the operational log (api.log) and stderr.
 *
 * Each message becomes one line "<RFC 3339 UTC ms> <level> [<pid>] <message>"
 * written with a single write(2) to an O_APPEND file, so lines from several
 * workers never interleave. Every line passes fm_redact first; CR, LF and TAB
 * in the message are escaped as \r, \n, \t, and every other character that
 * a reader may take for a line break or that reorders text on screen (see
 * fm_jsonstr_char: controls, NEL, U+2028/U+2029, bidirectional controls) and
 * every byte that is not UTF-8 as \xNN per byte, so that no input can forge
 * a line, for str.splitlines() readers too. A line is valid UTF-8.
 */
#ifndef FM_LOG_H
#define FM_LOG_H

#include <stddef.h>

#include "err.h"

/* Levels, lowest first; messages below the configured one are dropped. */
typedef enum { FM_LOG_DEBUG, FM_LOG_INFO, FM_LOG_WARN, FM_LOG_ERROR } fm_log_level;

#define FM_LOG_LINE_MAX 4096     /* bytes per line; longer messages are truncated */
#define FM_LOG_SANITIZE_MAX 8192 /* longest message fm_log_sanitize reads, bytes */

/*
 * fm_log_open - direct the log to path (created 0640 when missing, opened
 * O_APPEND|O_CLOEXEC, never through a symbolic link: O_NOFOLLOW, and only a
 * regular file, also on fm_log_reopen), or to stderr alone when path is
 * NULL, and set the level below which messages are dropped. Lines go to
 * stderr as well when also_stderr is true. Replaces any earlier target.
 * Returns FM_OK, or FM_ESYS with errno from open(2) (ELOOP for a link,
 * ENXIO for a FIFO nobody reads) or EINVAL (not a regular file) or ENOMEM;
 * the earlier target stays in place on failure.
 */
fm_err fm_log_open(const char *path, fm_log_level level, int also_stderr);

/*
 * fm_log_reopen - reopen the same path (after logrotate moved it; SIGUSR1)
 * under the same descriptor. FM_OK (also when no file is open), or FM_ESYS
 * with errno from open(2) or dup3(2); the old file stays in use on failure.
 */
fm_err fm_log_reopen(void);

/*
 * fm_log_replace_fd - put the file open on newfd under descriptor fd
 * (dup3(2), O_CLOEXEC), then close newfd, so that a log reopened after
 * rotation changes file in one step for everyone writing to fd. newfd is
 * closed in every case. FM_OK, or FM_ESYS with errno from dup3(2); fd still
 * names its old file then.
 */
FM_MUST_CHECK fm_err fm_log_replace_fd(int fd, int newfd);

/*
 * fm_log_use_fd - the log's file becomes the one open on newfd, a
 * descriptor another process opened and passed (SCM_RIGHTS): the audit
 * logger, which may not open api.log itself, gets the master's after each
 * rotation. The path and level stay; newfd is taken over (closed on
 * failure). FM_OK, or FM_ESYS with errno from dup3(2) or fcntl(2).
 */
FM_MUST_CHECK fm_err fm_log_use_fd(int newfd);

/* fm_log_close - close the file; later messages go to stderr. */
void fm_log_close(void);

/*
 * fm_log_sanitize - the bytes of one log line's message: msg (len bytes)
 * through fm_redact, then CR, LF and TAB escaped as \r \n \t and the bytes
 * of every other unsafe character (fm_jsonstr_char) or non-UTF-8 byte as
 * \xNN, then a newline. Written to out (cap bytes, cap >= 2);
 * at most FM_LOG_SANITIZE_MAX - 1 bytes of msg are read;
 * a message that does not fit is cut (never inside an escape or a secret)
 * and the newline always fits. Returns the bytes written (no NUL is added).
 */
size_t fm_log_sanitize(const char *msg, size_t len, char *out, size_t cap);

/*
 * fm_log_echo - text made safe to quote in a one-line message (a config
 * error, a log line): bytes outside printable ASCII, '"' and '\\' become
 * '?', and text longer than FM_LOG_ECHO_MAX characters is cut there and ends
 * in "...". out is FM_LOG_ECHO_BUF bytes, always NUL-terminated.
 */
#define FM_LOG_ECHO_MAX 48
#define FM_LOG_ECHO_BUF (FM_LOG_ECHO_MAX + 4)
void fm_log_echo(const char *text, char out[FM_LOG_ECHO_BUF]);

/* fm_log - printf-style message at level. Never fails; write errors are counted, not raised. */
void fm_log(fm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fm_log_debug(...) fm_log(FM_LOG_DEBUG, __VA_ARGS__)
#define fm_log_info(...) fm_log(FM_LOG_INFO, __VA_ARGS__)
#define fm_log_warn(...) fm_log(FM_LOG_WARN, __VA_ARGS__)
#define fm_log_error(...) fm_log(FM_LOG_ERROR, __VA_ARGS__)

#endif
