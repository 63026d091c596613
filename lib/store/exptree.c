/*
 * exptree.c - one user's experiment files: the tree and the write protocol
 * (the rules: exptree.h).
 *
 * The directories of a new file's way are made at its commit, one name at a
 * time (mkdirat, then a beneath open of that one name), and removed again one
 * name at a time (unlinkat AT_REMOVEDIR from a beneath-opened parent, which
 * never follows the last name and refuses a directory that is not empty).
 * The lookups, reads, ETags and preconditions are in exptree_read.c, the
 * walks (listings, quotas) in exptree_walk.c.
 */
#include "exptree.h"
#include "exptree_read.h"
#include "exptree_walk.h"
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define DIR_MODE 0700
#define FILE_MODE 0600

/* ---- small helpers ------------------------------------------------------------------ */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        (void)close(*fd);
    *fd = -1;
}

/* Mode and owner of an entry just made, whatever the umask was. */
static fm_err own(const fm_exptree *t, int fd, mode_t mode)
{
    if (fchmod(fd, mode) != 0)
        return FM_ESYS;
    if (t->chown && fchown(fd, t->uid, t->gid) != 0)
        return FM_ESYS;
    return FM_OK;
}

/*
 * Opens directory name beneath dirfd, making it (0700) when missing and made
 * is not NULL (then counted in *made). -1 with errno otherwise.
 */
static int open_dir(const fm_exptree *t, int dirfd, const char *name, unsigned *made)
{
    int fd = fm_beneath_open(dirfd, name, O_RDONLY | O_DIRECTORY, 0);

    if (fd >= 0 || errno != ENOENT || made == NULL)
        return fd;
    if (mkdirat(dirfd, name, DIR_MODE) == 0)
        (*made)++;
    else if (errno != EEXIST)
        return -1;
    fd = fm_beneath_open(dirfd, name, O_RDONLY | O_DIRECTORY, 0);
    if (fd >= 0 && own(t, fd, DIR_MODE) != FM_OK) {
        int e = errno;
        (void)close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- the tree ----------------------------------------------------------------------- */

fm_err fm_exptree_open(const char *experiments_dir, const char *user, bool create, fm_exptree *t)
{
    unsigned made = 0;
    struct stat st;
    int root, e;

    t->fd = -1;
    t->chown = false;
    if (!fm_beneath_name_valid(user, strlen(user)))
        return FM_EINVAL;
    root = open(experiments_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 && errno == ENOENT && create) {
        if (mkdir(experiments_dir, DIR_MODE) != 0 && errno != EEXIST)
            return FM_ESYS;
        root = open(experiments_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (root < 0)
        return errno == ENOENT && !create ? FM_ENOTFOUND : FM_ESYS;
    if (fstat(root, &st) != 0) {
        e = errno;
        (void)close(root);
        errno = e;
        return FM_ESYS;
    }
    t->chown = geteuid() == 0 && st.st_uid != 0;
    t->uid = st.st_uid;
    t->gid = st.st_gid;
    t->fd = open_dir(t, root, user, create ? &made : NULL);
    e = errno;
    (void)close(root);
    if (t->fd >= 0)
        return FM_OK;
    errno = e;
    return e == ENOENT || e == ENOTDIR || e == ELOOP || e == EXDEV ? FM_ENOTFOUND : FM_ESYS;
}

void fm_exptree_close(fm_exptree *t)
{
    close_fd(&t->fd);
}

static fm_err lock_tree(const fm_exptree *t)
{
    while (flock(t->fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return FM_ESYS;
    return FM_OK;
}

static void unlock_tree(const fm_exptree *t, fm_exp_change *c)
{
    if (c->locked)
        (void)flock(t->fd, LOCK_UN);
    c->locked = false;
}

/* ---- changes ------------------------------------------------------------------------ */

static void change_init(fm_exp_change *c)
{
    memset(c, 0, sizeof(*c));
    c->dirfd = -1;
    c->fd = -1;
}

/* Sets c->rel ("exp/path") and c->leaf; false when they do not form a valid path. */
static bool set_rel(fm_exp_change *c, const char *exp, const char *path)
{
    const char *leaf;

    if (path == NULL || !fm_exptree_join(c->rel, exp, path))
        return false;
    leaf = strrchr(c->rel, '/') + 1;
    memcpy(c->leaf, leaf, strlen(leaf) + 1); /* a valid name: at most FM_BENEATH_NAME_MAX bytes */
    return true;
}

/*
 * Opens the directories of c->rel into c->dirfd, one name at a time, making
 * the missing ones when made is not NULL (counted in *made). FM_OK;
 * FM_ENOTFOUND when one is missing (and *missing, if not NULL, is how many:
 * that one and those below it); FM_ECONFLICT when one is not a directory;
 * FM_ESYS with errno.
 */
static fm_err open_parent(const fm_exptree *t, fm_exp_change *c, unsigned *made, unsigned *missing)
{
    const char *p = c->rel, *slash;
    int fd = fm_beneath_open(t->fd, ".", O_RDONLY | O_DIRECTORY, 0), e;

    while (fd >= 0 && (slash = strchr(p, '/')) != NULL) {
        char name[FM_BENEATH_NAME_MAX + 1];
        int next;

        memcpy(name, p, (size_t)(slash - p));
        name[slash - p] = '\0';
        next = open_dir(t, fd, name, made);
        e = errno;
        (void)close(fd);
        errno = e;
        if ((fd = next) >= 0)
            p = slash + 1;
    }
    if (fd >= 0) {
        c->dirfd = fd;
        return FM_OK;
    }
    if (errno == ENOENT && missing != NULL)
        for (*missing = 0; (slash = strchr(p, '/')) != NULL; p = slash + 1)
            (*missing)++;
    return errno == ENOTDIR || errno == ELOOP || errno == EXDEV || errno == EEXIST ? FM_ECONFLICT
           : errno == ENOENT                                                       ? FM_ENOTFOUND
                                                                                   : FM_ESYS;
}

/*
 * Removes the directories of rel's way, the deepest first, at most levels of
 * them, while they are empty; stops at the first that is not (a shell user's
 * entry, a hidden name left by a killed worker), is gone or is no directory.
 * Called under the lock, so no upload of this tree is between the lookup of
 * its directories and its rename into them.
 */
static void prune(const fm_exptree *t, const char *rel, unsigned levels)
{
    char dir[FM_BENEATH_PATH_MAX + 1], *slash;

    (void)snprintf(dir, sizeof(dir), "%s", rel);
    for (; levels > 0 && (slash = strrchr(dir, '/')) != NULL; levels--) {
        char *up;
        int pfd = t->fd, rc, e;

        *slash = '\0'; /* dir: the directory to remove */
        if ((up = strrchr(dir, '/')) != NULL) {
            *up = '\0';
            pfd = fm_beneath_open(t->fd, dir, O_RDONLY | O_DIRECTORY, 0);
            *up = '/';
            if (pfd < 0)
                return;
        }
        rc = unlinkat(pfd, up != NULL ? up + 1 : dir, AT_REMOVEDIR);
        e = errno;
        if (pfd != t->fd)
            (void)close(pfd);
        if (rc == 0)
            continue;
        if (e != ENOTEMPTY && e != EEXIST && e != ENOENT && e != ENOTDIR)
            fm_log_warn("experiments: cannot remove an emptied directory: %s", strerror(e));
        return;
    }
}

fm_err fm_exptree_put_begin(const fm_exptree *t, const char *exp, const char *path,
                            fm_exp_change *c)
{
    fm_err rc;

    change_init(c);
    if (!set_rel(c, exp, path))
        return FM_EINVAL;
    /* Refuse at once a way that cannot be made; the commit makes it, under the lock. */
    rc = open_parent(t, c, NULL, NULL);
    close_fd(&c->dirfd);
    if (rc != FM_OK && rc != FM_ENOTFOUND)
        return rc;
    c->fd = fm_beneath_open(t->fd, ".", O_TMPFILE | O_WRONLY, FILE_MODE);
    if (c->fd < 0 || own(t, c->fd, FILE_MODE) != FM_OK) {
        int e = errno;
        fm_exptree_abort(c);
        errno = e;
        return FM_ESYS;
    }
    if (fm_sha256_begin(&c->sha) != FM_OK) {
        fm_exptree_abort(c);
        errno = ENOMEM;
        return FM_ESYS;
    }
    return FM_OK;
}

fm_err fm_exptree_put_write(fm_exp_change *c, const void *buf, size_t n)
{
    const char *p = buf;

    if (fm_sha256_add(&c->sha, buf, n) != FM_OK)
        return FM_ESYS;
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return FM_ESYS;
        }
        p += w;
        n -= (size_t)w;
        c->bytes += (uint64_t)w;
    }
    return FM_OK;
}

/* A hidden name for c in its directory. */
static void hidden_name(fm_exp_change *c)
{
    unsigned char rnd[8];
    char hex[2 * sizeof(rnd) + 1];

    randombytes_buf(rnd, sizeof(rnd));
    (void)sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    (void)snprintf(c->hidden, sizeof(c->hidden), "%s%s", FM_BENEATH_RESERVED, hex);
}

/* Gives the unnamed file a (hidden) name: linkat, with /proc when AT_EMPTY_PATH needs a capability.
 */
static fm_err link_hidden(fm_exp_change *c)
{
    char proc[64];

    hidden_name(c);
    if (linkat(c->fd, "", c->dirfd, c->hidden, AT_EMPTY_PATH) == 0)
        return FM_OK;
    (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->fd);
    if (linkat(AT_FDCWD, proc, c->dirfd, c->hidden, AT_SYMLINK_FOLLOW) == 0)
        return FM_OK;
    return FM_ESYS;
}

/* What is at c's path now, under the lock: *missing directories of its way, or *exists and *st. */
static fm_err look(const fm_exptree *t, fm_exp_change *c, const fm_exp_cond *cond,
                   unsigned *missing, bool *exists, struct stat *st, char etag[FM_EXP_ETAG_LEN + 1],
                   const char **why)
{
    fm_err rc = open_parent(t, c, NULL, missing);

    *exists = false;
    etag[0] = '\0';
    if (rc == FM_ENOTFOUND) /* no file there, and the way will be made */
        return FM_OK;
    if (rc == FM_ECONFLICT) {
        *why = "not_directory";
        return FM_EINVAL;
    }
    if (rc == FM_OK &&
        (rc = fm_exptree_current(c->dirfd, c->leaf, cond, false, exists, st, etag)) == FM_EINVAL)
        *why = "not_regular";
    return rc;
}

/* The quotas with the upload in place of what is there (a new file: one entry, and missing dirs).
 */
static const char *over_quota(const fm_exp_usage *use, const fm_exp_limits *lim,
                              const fm_exp_change *c, bool exists, unsigned missing)
{
    uint64_t old = exists ? c->old_bytes : 0;

    if (use->bytes - (old <= use->bytes ? old : use->bytes) + c->bytes > lim->quota_bytes)
        return "quota_bytes";
    if (!exists && use->files + use->dirs + 1 + missing > lim->quota_files)
        return "quota_files";
    return NULL;
}

fm_err fm_exptree_put_commit(const fm_exptree *t, fm_exp_change *c, const fm_exp_cond *cond,
                             const fm_exp_limits *lim, const char **why)
{
    char old_etag[FM_EXP_ETAG_LEN + 1];
    struct stat st, now;
    fm_exp_walk w = {.sweep = true};
    unsigned missing = 0;
    bool exists;
    fm_err rc;
    int e;

    *why = NULL;
    if (fm_exptree_etag_hex(&c->sha, c->etag) != FM_OK || lock_tree(t) != FM_OK)
        return FM_ESYS;
    c->locked = true;
    close_fd(&c->dirfd);
    rc = look(t, c, cond, &missing, &exists, &st, old_etag, why);
    if (rc == FM_OK && !fm_exptree_preconditions_hold(cond, exists, old_etag))
        rc = FM_ECONFLICT;
    if (rc == FM_OK)
        rc = fm_exptree_walk(t, ".", &w);
    if (rc == FM_OK) {
        c->old_bytes = exists ? (uint64_t)st.st_size : 0;
        if ((*why = over_quota(&w.use, lim, c, exists, missing)) != NULL)
            rc = FM_EQUOTA;
    }
    /* Durable before it has a name: after a crash the path holds the old file or the whole new one.
     */
    if (rc == FM_OK && (fdatasync(c->fd) != 0 || fstat(c->fd, &now) != 0))
        rc = FM_ESYS;
    if (rc == FM_OK)
        fm_exptree_etag_note(c->fd, c->etag, &now);
    if (rc == FM_OK && c->dirfd < 0 && (rc = open_parent(t, c, &c->made, NULL)) != FM_OK) {
        *why = rc == FM_ECONFLICT ? "not_directory" : NULL;
        rc = rc == FM_ECONFLICT ? FM_EINVAL : FM_ESYS;
    }
    if (rc == FM_OK)
        rc = link_hidden(c);
    if (rc == FM_OK) {
        c->kind = exists ? FM_EXP_REPLACE : FM_EXP_NEW;
        if (renameat2(c->dirfd, c->hidden, c->dirfd, c->leaf,
                      exists ? RENAME_EXCHANGE : RENAME_NOREPLACE) != 0) {
            e = errno;
            (void)unlinkat(c->dirfd, c->hidden, 0);
            errno = e;
            /* A name appeared or vanished since it was looked at: only a shell user does that. */
            rc = e == EEXIST || e == ENOENT ? FM_ECONFLICT : FM_ESYS;
        }
    }
    if (rc == FM_OK) {
        if (!exists)
            c->hidden[0] = '\0';
        return FM_OK;
    }
    e = errno;
    prune(t, c->rel, c->made);
    c->made = 0;
    unlock_tree(t, c);
    errno = e;
    return rc;
}

fm_err fm_exptree_delete(const fm_exptree *t, const char *exp, const char *path, fm_exp_change *c)
{
    struct stat st;
    fm_err rc;
    int e;

    change_init(c);
    if (!set_rel(c, exp, path))
        return FM_EINVAL;
    /* Locked first: a delete that empties this way may be removing its directories. */
    if (lock_tree(t) != FM_OK)
        return FM_ESYS;
    c->locked = true;
    c->kind = FM_EXP_DELETE;
    rc = open_parent(t, c, NULL, NULL);
    if (rc == FM_ECONFLICT)
        rc = FM_ENOTFOUND;
    if (rc == FM_OK &&
        (fstatat(c->dirfd, c->leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !fm_beneath_regular(&st))) {
        rc = FM_ENOTFOUND;
    } else if (rc == FM_OK) {
        c->bytes = (uint64_t)st.st_size;
        hidden_name(c);
        /* Whatever is at the name now is only renamed, never followed. */
        if (renameat2(c->dirfd, c->leaf, c->dirfd, c->hidden, RENAME_NOREPLACE) != 0)
            rc = errno == ENOENT ? FM_ENOTFOUND : FM_ESYS;
    }
    if (rc == FM_OK)
        return FM_OK;
    e = errno;
    unlock_tree(t, c);
    fm_exptree_abort(c);
    errno = e;
    return rc;
}

void fm_exptree_settle(const fm_exptree *t, fm_exp_change *c)
{
    if (c->hidden[0] != '\0' && unlinkat(c->dirfd, c->hidden, 0) != 0)
        fm_log_warn("experiments: cannot remove a replaced file's old content: %s",
                    strerror(errno));
    if (c->kind == FM_EXP_DELETE)
        prune(t, c->rel, UINT_MAX);
    c->hidden[0] = '\0';
    unlock_tree(t, c);
    fm_exptree_abort(c);
}

void fm_exptree_undo(const fm_exptree *t, fm_exp_change *c)
{
    int rc = 0;

    if (c->kind == FM_EXP_NEW && (rc = unlinkat(c->dirfd, c->leaf, 0)) == 0)
        prune(t, c->rel, c->made);
    else if (c->kind == FM_EXP_REPLACE)
        rc = renameat2(c->dirfd, c->hidden, c->dirfd, c->leaf, RENAME_EXCHANGE) == 0
                 ? unlinkat(c->dirfd, c->hidden, 0)
                 : -1;
    else if (c->kind == FM_EXP_DELETE)
        rc = renameat2(c->dirfd, c->hidden, c->dirfd, c->leaf, RENAME_NOREPLACE);
    if (rc != 0)
        fm_log_error("experiments: could not undo a change whose audit record failed: %s",
                     strerror(errno));
    c->hidden[0] = '\0';
    unlock_tree(t, c);
    fm_exptree_abort(c);
}

void fm_exptree_abort(fm_exp_change *c)
{
    close_fd(&c->fd);
    close_fd(&c->dirfd);
    fm_sha256_drop(&c->sha);
}
