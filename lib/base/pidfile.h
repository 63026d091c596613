/*
 * pidfile.h - pid files for the long-running programs (fetchml-fcgi,
 * fetchml-logrelay): written at start, checked so that a second instance does
 * not take over a running one's files (the nginx and php-fpm convention).
 */
#ifndef FM_PIDFILE_H
#define FM_PIDFILE_H

#include <sys/types.h>

#include "err.h"

/*
 * fm_pidfile_running - the pid recorded in path if that process still exists
 * (kill(pid, 0) succeeds or fails with EPERM) and is not the caller; 0 when
 * the file is missing, unreadable, malformed or stale.
 */
pid_t fm_pidfile_running(const char *path);

/*
 * fm_pidfile_write - write the caller's pid and a newline to path (created
 * 0644, replacing what was there). Returns FM_OK, or FM_ESYS with errno.
 */
fm_err fm_pidfile_write(const char *path);

#endif
