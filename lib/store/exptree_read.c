/*
 * exptree_read.c - reading one user's experiment files (exptree.h): the
 * lookup of a regular file, its ETag and the upload preconditions on it.
 *
 * Resolution: a request's experiment and path are checked as text
 * (fm_beneath_path_valid) and then looked up in one openat2 call from the
 * user's directory (fm_beneath_open), so the kernel refuses links and
 * escapes atomically with the lookup; whatever it finds is fstat'ed through
 * the descriptor it returned, never by name again.
 *
 * ETags: the SHA-256 of the content, cached in an extended attribute with
 * the size and mtime it was made for (exptree.h), recomputed by reading the
 * file when they no longer agree.
 */
#include "exptree_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define HASH_CHUNK 65536
#define REOPEN_TRIES 32 /* lookups of a file replaced or deleted while it is opened */
#define ETAG_XATTR "user.fetchml.etag"
/* "<64 hex> <size> <mtime s> <mtime ns>" */
#define ETAG_XATTR_MAX (FM_EXP_ETAG_LEN + 3 * 21 + 4)

/* ---- lookups ------------------------------------------------------------------------ */

bool fm_exptree_join(char buf[FM_BENEATH_PATH_MAX + 1], const char *exp, const char *path)
{
    int n;

    if (!fm_beneath_name_valid(exp, strlen(exp)))
        return false;
    if (path == NULL)
        n = snprintf(buf, FM_BENEATH_PATH_MAX + 1, "%s", exp);
    else
        n = snprintf(buf, FM_BENEATH_PATH_MAX + 1, "%s/%s", exp, path);
    return n > 0 && n <= FM_BENEATH_PATH_MAX && fm_beneath_path_valid(buf, NULL);
}

/*
 * Opens rel beneath dirfd for reading when it is a regular, singly linked
 * file. The first lookup is O_PATH, which opens nothing (a device or a FIFO
 * is only looked at); the real open is checked again through its own
 * descriptor, in case the entry was swapped in between. -1 with errno, and
 * *other set when something else is there.
 */
static int open_regular_once(int dirfd, const char *rel, struct stat *st, bool *other)
{
    int fd = fm_beneath_open(dirfd, rel, O_PATH, 0), e;

    *other = false;
    if (fd >= 0 && (fstat(fd, st) != 0 || !fm_beneath_regular(st)))
        goto other;
    if (fd >= 0) {
        (void)close(fd);
        fd = fm_beneath_open(dirfd, rel, O_RDONLY, 0);
    }
    if (fd < 0) {
        *other = errno == ELOOP || errno == EXDEV || errno == ENOTDIR;
        return -1;
    }
    if (fstat(fd, st) == 0 && fm_beneath_regular(st))
        return fd;
other:
    e = errno;
    (void)close(fd);
    *other = true;
    errno = e;
    return -1;
}

/* A regular file whose last name went between its lookup and its fstat. */
static bool unlinked(const struct stat *st)
{
    return S_ISREG(st->st_mode) && st->st_nlink == 0;
}

/*
 * open_regular_once, again while what it found was unlinked meanwhile: a
 * replace (RENAME_EXCHANGE, then the old content's hidden name removed) or a
 * delete raced the lookup. The name then holds the new file, or nothing
 * (ENOENT). A hard link is never taken for this: its count is 2 or more.
 */
static int open_regular(int dirfd, const char *rel, struct stat *st, bool *other)
{
    int fd = -1;

    for (int i = 0; i < REOPEN_TRIES; i++) {
        st->st_mode = 0;
        fd = open_regular_once(dirfd, rel, st, other);
        if (fd >= 0 || !*other || !unlinked(st))
            return fd;
    }
    errno = ENOENT;
    *other = false;
    return fd;
}

/* ---- ETags -------------------------------------------------------------------------- */

fm_err fm_exptree_etag_hex(fm_sha256_stream *sha, char out[FM_EXP_ETAG_LEN + 1])
{
    unsigned char digest[FM_SHA256_BYTES];

    if (fm_sha256_end(sha, digest) != FM_OK)
        return FM_ESYS;
    (void)sodium_bin2hex(out, FM_EXP_ETAG_LEN + 1, digest, sizeof(digest));
    return FM_OK;
}

void fm_exptree_etag_note(int fd, const char etag[FM_EXP_ETAG_LEN + 1], const struct stat *st)
{
    char v[ETAG_XATTR_MAX];
    int n = snprintf(v, sizeof(v), "%s %lld %lld %ld", etag, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);

    /* Only a cache: a file system without user xattrs makes reads hash the file. */
    if (n > 0 && (size_t)n < sizeof(v))
        (void)fsetxattr(fd, ETAG_XATTR, v, (size_t)n, 0);
}

/* The ETag of the open file fd (st: its fstat), from the cache or by reading it. */
static fm_err etag_of(int fd, const struct stat *st, bool note, char out[FM_EXP_ETAG_LEN + 1])
{
    char v[ETAG_XATTR_MAX + 1], want[ETAG_XATTR_MAX];
    fm_sha256_stream sha = {0};
    ssize_t n = fgetxattr(fd, ETAG_XATTR, v, sizeof(v) - 1);
    unsigned char *buf;
    off_t off = 0;

    if (n > FM_EXP_ETAG_LEN) {
        v[n] = '\0';
        (void)snprintf(want, sizeof(want), " %lld %lld %ld", (long long)st->st_size,
                       (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
        if (strcmp(v + FM_EXP_ETAG_LEN, want) == 0) {
            memcpy(out, v, FM_EXP_ETAG_LEN);
            out[FM_EXP_ETAG_LEN] = '\0';
            return FM_OK;
        }
    }
    if ((buf = malloc(HASH_CHUNK)) == NULL)
        return FM_ESYS;
    if (fm_sha256_begin(&sha) != FM_OK) {
        free(buf);
        return FM_ESYS;
    }
    for (;;) {
        ssize_t r = pread(fd, buf, HASH_CHUNK, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r > 0 && fm_sha256_add(&sha, buf, (size_t)r) != FM_OK)) {
            int e = errno;
            free(buf);
            fm_sha256_drop(&sha);
            errno = e;
            return FM_ESYS;
        }
        if (r == 0)
            break;
        off += r;
    }
    free(buf);
    if (fm_exptree_etag_hex(&sha, out) != FM_OK)
        return FM_ESYS;
    if (note)
        fm_exptree_etag_note(fd, out, st);
    return FM_OK;
}

/* Whether the header's list (RFC 9110 section 8.8.3: [W/]"opaque", comma separated) names etag. */
static bool etag_listed(const char *list, const char etag[FM_EXP_ETAG_LEN + 1], bool weak_ok)
{
    const char *p = list;

    for (;;) {
        bool weak = false;
        const char *end;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        if (p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (*p != '"' || (end = strchr(p + 1, '"')) == NULL)
            return false; /* malformed: matches nothing */
        if ((!weak || weak_ok) && (size_t)(end - p - 1) == FM_EXP_ETAG_LEN &&
            memcmp(p + 1, etag, FM_EXP_ETAG_LEN) == 0)
            return true;
        p = end + 1;
    }
}

static bool is_star(const char *h)
{
    while (*h == ' ' || *h == '\t')
        h++;
    return h[0] == '*' && strspn(h + 1, " \t") == strlen(h + 1);
}

/* ---- reading ------------------------------------------------------------------------ */

fm_err fm_exptree_read(const fm_exptree *t, const char *exp, const char *path, fm_exp_file *f)
{
    char rel[FM_BENEATH_PATH_MAX + 1];
    struct stat st;
    bool other;
    int e;

    f->fd = -1;
    if (!fm_exptree_join(rel, exp, path))
        return FM_EINVAL;
    f->fd = open_regular(t->fd, rel, &st, &other);
    if (f->fd < 0)
        return other || errno == ENOENT ? FM_ENOTFOUND : FM_ESYS;
    f->size = (uint64_t)st.st_size;
    if (etag_of(f->fd, &st, true, f->etag) != FM_OK) {
        e = errno;
        (void)close(f->fd);
        f->fd = -1;
        errno = e;
        return FM_ESYS;
    }
    return FM_OK;
}

/* ---- preconditions ------------------------------------------------------------------ */

fm_err fm_exptree_current(int dirfd, const char *rel, const fm_exp_cond *cond, bool note,
                          bool *exists, struct stat *st, char etag[FM_EXP_ETAG_LEN + 1])
{
    bool other;
    int fd = open_regular(dirfd, rel, st, &other);
    fm_err rc = FM_OK;

    *exists = false;
    etag[0] = '\0';
    if (fd < 0)
        return other ? FM_EINVAL : errno == ENOENT ? FM_OK : FM_ESYS;
    *exists = true;
    if ((cond->if_match != NULL && !is_star(cond->if_match)) ||
        (cond->if_none_match != NULL && !is_star(cond->if_none_match)))
        rc = etag_of(fd, st, note, etag);
    (void)close(fd);
    return rc;
}

/* RFC 9110 section 13.2.2's order: If-Match, then If-None-Match. */
bool fm_exptree_preconditions_hold(const fm_exp_cond *cond, bool exists, const char *etag)
{
    if (cond->if_match != NULL &&
        (!exists || (!is_star(cond->if_match) && !etag_listed(cond->if_match, etag, false))))
        return false;
    if (cond->if_none_match != NULL && exists &&
        (is_star(cond->if_none_match) || etag_listed(cond->if_none_match, etag, true)))
        return false;
    return true;
}

fm_err fm_exptree_put_check(const fm_exptree *t, const char *exp, const char *path,
                            const fm_exp_cond *cond)
{
    char rel[FM_BENEATH_PATH_MAX + 1], etag[FM_EXP_ETAG_LEN + 1];
    struct stat st;
    bool exists;
    fm_err rc;

    if (cond->if_match == NULL && cond->if_none_match == NULL)
        return FM_OK;
    if (!fm_exptree_join(rel, exp, path))
        return FM_EINVAL;
    rc = fm_exptree_current(t->fd, rel, cond, true, &exists, &st, etag);
    if (rc == FM_OK && !fm_exptree_preconditions_hold(cond, exists, etag))
        rc = FM_ECONFLICT;
    return rc;
}
