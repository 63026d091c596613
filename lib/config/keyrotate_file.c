/*
 * keyrotate_file.c - the file half of keyrotate.h: the configuration read,
 * rewritten by fm_keyrotate_text, written beside itself with its owner,
 * group and mode, loaded again and checked, then renamed over the original
 * after a hard link keeps the original as the backup.
 *
 * The file is read twice (here and by fm_config_load) and may change under
 * the command: its inode, size and modification time are compared after the
 * load and again just before the rename, so that an edit made meanwhile is
 * never overwritten. The keys made for the users are checked in the new
 * file's load, not trusted: a wrong rewrite fails before the rename.
 */
#include "keyrotate.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define BACKUP_TRIES 99 /* CONFIG.bak-<time>.1 .. .99 in one second */

/* A user rotated and the hash its new key has. */
struct rotated {
    char user[FM_NAME_MAX];
    unsigned char hash[FM_KEY_HASH_BYTES];
};

struct fm_keyrotate_job {
    char *path;     /* the real path rewritten */
    char *tmp;      /* the new text, until renamed; NULL once committed */
    struct stat st; /* the original as it was read */
    int64_t now, grace;
    struct rotated *users;
    size_t nusers, capusers;
    const fm_keyrotate_opts *o; /* during prepare only */
};

/* Records each new hash for the check after the load, then asks the caller's callback. */
static fm_err record_hash(void *arg, const char *user, unsigned char hash[FM_KEY_HASH_BYTES])
{
    fm_keyrotate_job *job = arg;
    struct rotated *r;
    fm_err rc;

    if ((rc = job->o->new_hash(job->o->arg, user, hash)) != FM_OK)
        return rc;
    if (job->nusers == job->capusers) {
        size_t cap = job->capusers == 0 ? 16 : job->capusers * 2;

        if (cap > SIZE_MAX / sizeof(*r) || (r = realloc(job->users, cap * sizeof(*r))) == NULL) {
            errno = ENOMEM;
            return FM_ESYS;
        }
        job->users = r;
        job->capusers = cap;
    }
    r = &job->users[job->nusers++];
    (void)snprintf(r->user, sizeof(r->user), "%s", user);
    memcpy(r->hash, hash, FM_KEY_HASH_BYTES);
    return FM_OK;
}

__attribute__((format(printf, 3, 4))) static fm_err sys_fail(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
    int saved = errno;
    char msg[FM_CONFIG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (err != NULL && errlen > 0)
        (void)snprintf(err, errlen, "%s: %s", msg, strerror(saved));
    errno = saved;
    return FM_ESYS;
}

static fm_err read_all(int fd, const char *path, size_t size, char **text, char *err, size_t errlen)
{
    size_t got = 0;

    if ((*text = malloc(size + 1)) == NULL) {
        errno = ENOMEM;
        return sys_fail(err, errlen, "%s", path);
    }
    while (got < size) {
        ssize_t n = read(fd, *text + got, size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sys_fail(err, errlen, "cannot read %s", path);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != size) {
        errno = EAGAIN;
        return sys_fail(err, errlen, "%s changed while it was read", path);
    }
    (*text)[size] = '\0';
    return FM_OK;
}

static fm_err write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FM_ESYS;
        text += n;
        len -= (size_t)n;
    }
    return FM_OK;
}

/* The new text into a temporary file beside the original, with its owner, group and mode. */
static fm_err write_tmp(fm_keyrotate_job *job, const char *text, size_t len, char *err,
                        size_t errlen)
{
    char *dir = strdup(job->path), *base = strdup(job->path), *tmp = NULL;
    int fd = -1;
    fm_err rc = FM_ESYS;

    if (dir == NULL || base == NULL ||
        asprintf(&tmp, "%s/.%s.rotate-XXXXXX", dirname(dir), basename(base)) < 0) {
        tmp = NULL;
        errno = ENOMEM;
        (void)sys_fail(err, errlen, "%s", job->path);
        goto out;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        (void)sys_fail(err, errlen, "cannot create a file beside %s", job->path);
        goto out;
    }
    job->tmp = tmp;
    /* fchown first: it may clear set-id bits that fchmod then restores. */
    if (fchown(fd, job->st.st_uid, job->st.st_gid) != 0) {
        (void)sys_fail(err, errlen, "cannot give the new %s the owner and group of the old one",
                       job->path);
        goto out;
    }
    if (fchmod(fd, job->st.st_mode & 07777) != 0) {
        (void)sys_fail(err, errlen, "cannot give the new %s the mode of the old one", job->path);
        goto out;
    }
    if (write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        (void)sys_fail(err, errlen, "cannot write the new %s", job->path);
        goto out;
    }
    rc = close(fd) == 0 ? FM_OK : sys_fail(err, errlen, "cannot write the new %s", job->path);
    fd = -1;
out:
    if (fd >= 0)
        (void)close(fd);
    if (job->tmp == NULL)
        free(tmp);
    free(dir);
    free(base);
    return rc;
}

/* The new file loads, and each rotated user has the new key first and only the keys intended. */
static fm_err check_new(fm_keyrotate_job *job, char *err, size_t errlen)
{
    char lerr[FM_CONFIG_ERR_MAX];
    fm_config *cfg = fm_config_load(job->tmp, lerr, sizeof(lerr));
    const char *why = NULL;
    size_t r = 0;

    if (cfg == NULL) {
        (void)snprintf(err, errlen, "%s: internal error: the rewritten file does not load (%s)",
                       job->path, lerr);
        return FM_EINVAL;
    }
    for (size_t i = 0; why == NULL && i < cfg->auth.nusers && r < job->nusers; i++) {
        const fm_user *u = &cfg->auth.users[i];

        if (strcmp(u->name, job->users[r].user) != 0)
            continue;
        if (u->nkeys == 0 ||
            sodium_memcmp(u->keys[0].hash, job->users[r].hash, FM_KEY_HASH_BYTES) != 0)
            why = "a user's first key is not the new one";
        for (size_t k = 1; why == NULL && k < u->nkeys; k++)
            if (job->grace == 0 || u->keys[k].expires == 0 ||
                u->keys[k].expires > job->now + job->grace)
                why = "an old key outlives the grace period";
        r++;
    }
    if (why == NULL && r != job->nusers)
        why = "a rotated user is missing";
    fm_config_free(cfg);
    if (why != NULL) {
        (void)snprintf(err, errlen, "%s: internal error: the rewritten file is wrong (%s)",
                       job->path, why);
        return FM_EINVAL;
    }
    return FM_OK;
}

static fm_err load_original(fm_keyrotate_job *job, const char *shown, char **text, fm_config **cfg,
                            char *err, size_t errlen)
{
    int fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat again;
    fm_err rc;

    if (fd < 0)
        return sys_fail(err, errlen, "cannot open %s", shown);
    if (fstat(fd, &job->st) != 0)
        rc = sys_fail(err, errlen, "cannot stat %s", shown);
    else if (!S_ISREG(job->st.st_mode))
        rc = (errno = EINVAL, sys_fail(err, errlen, "%s is not a regular file", shown));
    else
        rc = read_all(fd, shown, (size_t)job->st.st_size, text, err, errlen);
    (void)close(fd);
    if (rc != 0)
        return rc;
    if ((*cfg = fm_config_load(shown, err, errlen)) == NULL)
        return FM_EINVAL;
    /* The loader read the file again: it must have seen the same bytes. */
    if (stat(job->path, &again) != 0 || again.st_ino != job->st.st_ino ||
        again.st_size != job->st.st_size || again.st_mtim.tv_sec != job->st.st_mtim.tv_sec ||
        again.st_mtim.tv_nsec != job->st.st_mtim.tv_nsec) {
        (void)snprintf(err, errlen, "%s changed while it was read: try again", shown);
        return FM_ECONFLICT;
    }
    return FM_OK;
}

fm_err fm_keyrotate_prepare(const char *path, const fm_keyrotate_opts *o, fm_keyrotate_job **out,
                            char *err, size_t errlen)
{
    fm_keyrotate_job *job = calloc(1, sizeof(*job));
    fm_keyrotate_opts mine = *o;
    fm_config *cfg = NULL;
    char *text = NULL, *next_text = NULL;
    size_t next_len = 0;
    fm_err rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (job == NULL) {
        errno = ENOMEM;
        return sys_fail(err, errlen, "%s", path);
    }
    job->now = o->now;
    job->grace = o->grace;
    job->o = o;
    if ((job->path = realpath(path, NULL)) == NULL) {
        rc = sys_fail(err, errlen, "%s", path);
        goto out;
    }
    if ((rc = load_original(job, path, &text, &cfg, err, errlen)) != 0)
        goto out;
    mine.new_hash = record_hash;
    mine.arg = job;
    rc = fm_keyrotate_text(cfg, path, text, (size_t)job->st.st_size, &mine, &next_text, &next_len,
                           err, errlen);
    if (rc == 0)
        rc = write_tmp(job, next_text, next_len, err, errlen);
    if (rc == 0)
        rc = check_new(job, err, errlen);
out:
    fm_config_free(cfg);
    free(text);
    free(next_text);
    job->o = NULL;
    if (rc != 0) {
        fm_keyrotate_free(job);
        return rc;
    }
    *out = job;
    return FM_OK;
}

fm_err fm_keyrotate_commit(fm_keyrotate_job *job, char *backup, size_t backuplen, char *err,
                           size_t errlen)
{
    char stamp[32], *dir, *slash;
    time_t now = (time_t)job->now;
    struct tm tm;
    struct stat st;
    int dfd;
    fm_err rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (job->tmp == NULL) {
        (void)snprintf(err, errlen, "%s: already rotated", job->path);
        return FM_EINVAL;
    }
    if (gmtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0) {
        (void)snprintf(err, errlen, "%s: cannot format the time", job->path);
        return FM_EINVAL;
    }
    /*
     * A hard link keeps the old inode, so the backup has its owner, group and
     * mode exactly. Two rotations in one second: ".1", ".2"... after the first.
     */
    for (int n = 0;; n++) {
        int len = n == 0 ? snprintf(backup, backuplen, "%s.bak-%s", job->path, stamp)
                         : snprintf(backup, backuplen, "%s.bak-%s.%d", job->path, stamp, n);

        if (len < 0 || (size_t)len >= backuplen) {
            (void)snprintf(err, errlen, "%s: the backup's name is too long", job->path);
            return FM_EINVAL;
        }
        if (link(job->path, backup) == 0)
            break;
        if (errno != EEXIST)
            return sys_fail(err, errlen, "cannot keep %s as %s", job->path, backup);
        if (n == BACKUP_TRIES) {
            (void)snprintf(err, errlen, "%s exists: try again in a second", backup);
            return FM_ECONFLICT;
        }
    }
    if (stat(job->path, &st) != 0 || st.st_ino != job->st.st_ino ||
        st.st_mtim.tv_sec != job->st.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != job->st.st_mtim.tv_nsec || st.st_size != job->st.st_size) {
        (void)unlink(backup);
        (void)snprintf(err, errlen, "%s was changed by someone else meanwhile: nothing written",
                       job->path);
        return FM_ECONFLICT;
    }
    if (rename(job->tmp, job->path) != 0) {
        rc = sys_fail(err, errlen, "cannot replace %s", job->path);
        (void)unlink(backup);
        return rc;
    }
    free(job->tmp);
    job->tmp = NULL;
    /*
     * The rename is durable once the directory is on disk; the new keys must
     * be given out whatever happens now, so a failure here is not an error.
     */
    if ((dir = strdup(job->path)) == NULL)
        return FM_OK;
    slash = strrchr(dir, '/');
    if (slash != NULL)
        slash[slash == dir ? 1 : 0] = '\0';
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        (void)close(dfd);
    }
    free(dir);
    return FM_OK;
}

void fm_keyrotate_free(fm_keyrotate_job *job)
{
    if (job == NULL)
        return;
    if (job->tmp != NULL)
        (void)unlink(job->tmp);
    free(job->tmp);
    free(job->path);
    if (job->users != NULL)
        sodium_memzero(job->users, job->nusers * sizeof(*job->users));
    free(job->users);
    free(job);
}
