/*
 * pidfile.c - pid files (see pidfile.h).
 */
#include "pidfile.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

pid_t fm_pidfile_running(const char *path)
{
    FILE *f = fopen(path, "re");
    long pid = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1 || pid > INT_MAX)
        pid = 0;
    (void)fclose(f);
    if (pid != 0 && (pid_t)pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
        return (pid_t)pid;
    return 0;
}

fm_err fm_pidfile_write(const char *path)
{
    FILE *f = fopen(path, "we");
    int err;

    if (f == NULL)
        return FM_ESYS;
    if (fprintf(f, "%d\n", (int)getpid()) < 0) {
        err = errno;
        (void)fclose(f);
        errno = err;
        return FM_ESYS;
    }
    return fclose(f) == 0 ? FM_OK : FM_ESYS;
}
