/*
 * exptree_walk.c - the walks of one user's experiment tree (exptree_walk.h)
 * and what is made of them: the listings and the usage (exptree.h).
 *
 * Walks read directories through descriptors opened beneath the user's
 * directory and look at entries with fstatat(AT_SYMLINK_NOFOLLOW): a symbolic
 * link, a special file, a hard link or a name no client could have chosen is
 * skipped, never followed. Directories are counted as well as files:
 * data.quota_files counts both (exptree.h).
 */
#include "exptree_walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static fm_err keep_item(fm_exp_walk *w, size_t plen, const char *name, const struct stat *st)
{
    fm_exp_item *it;

    if (w->use.files >= w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        fm_exp_item *n = realloc(w->items, cap * sizeof(*n));
        if (n == NULL)
            return FM_ESYS;
        w->items = n;
        w->cap = cap;
    }
    it = &w->items[w->use.files];
    if (asprintf(&it->path, "%.*s%s%s", (int)plen, w->path, plen ? "/" : "", name) < 0)
        return FM_ESYS;
    it->bytes = (uint64_t)st->st_size;
    it->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
    return FM_OK;
}

static fm_err walk_dir(fm_exp_walk *w, int fd, size_t plen, size_t depth);

static fm_err walk_entry(fm_exp_walk *w, int dirfd, size_t plen, size_t depth, const char *name)
{
    static const char reserved[] = FM_BENEATH_RESERVED;
    size_t n = strlen(name);
    struct stat st;
    fm_err rc;
    int sub;

    if (strncmp(name, reserved, sizeof(reserved) - 1) == 0) {
        if (w->sweep && unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            fm_log_warn("experiments: cannot remove a leftover temporary file: %s",
                        strerror(errno));
        return FM_OK;
    }
    if (!fm_beneath_name_valid(name, n) || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return FM_OK; /* a name no client can use, or gone meanwhile */
    if (fm_beneath_regular(&st)) {
        if (w->collect && (rc = keep_item(w, plen, name, &st)) != FM_OK)
            return rc;
        w->use.files++;
        w->use.bytes += (uint64_t)st.st_size;
        return FM_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return FM_OK;
    w->use.dirs++;
    if (depth + 1 >= FM_BENEATH_DEPTH_MAX || plen + 1 + n > FM_BENEATH_PATH_MAX)
        return FM_OK;
    sub = fm_beneath_open(dirfd, name, O_RDONLY | O_DIRECTORY, 0);
    if (sub < 0)
        return FM_OK; /* replaced by a link or removed since the fstatat */
    if (plen > 0)
        w->path[plen++] = '/';
    memcpy(w->path + plen, name, n + 1);
    return walk_dir(w, sub, plen + n, depth + 1);
}

/* Walks the directory fd (consumed) whose path is w->path[0 .. plen). */
static fm_err walk_dir(fm_exp_walk *w, int fd, size_t plen, size_t depth)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    fm_err rc = FM_OK;

    if (d == NULL) {
        (void)close(fd);
        return FM_ESYS;
    }
    errno = 0;
    while (rc == FM_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = walk_entry(w, dirfd(d), plen, depth, de->d_name);
        w->path[plen] = '\0';
        errno = 0;
    }
    if (rc == FM_OK && errno != 0)
        rc = FM_ESYS;
    (void)closedir(d);
    return rc;
}

fm_err fm_exptree_walk(const fm_exptree *t, const char *rel, fm_exp_walk *w)
{
    int fd = fm_beneath_open(t->fd, rel, O_RDONLY | O_DIRECTORY, 0);

    w->path[0] = '\0';
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV
                   ? FM_ENOTFOUND
                   : FM_ESYS;
    return walk_dir(w, fd, 0, 0);
}

void fm_exptree_walk_free(fm_exp_walk *w)
{
    for (size_t i = 0; i < w->use.files && w->items != NULL; i++)
        free(w->items[i].path);
    free(w->items);
    w->items = NULL;
}

fm_err fm_exptree_usage(const fm_exptree *t, fm_exp_usage *use)
{
    fm_exp_walk w = {0};
    fm_err rc = fm_exptree_walk(t, ".", &w);

    *use = w.use;
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

fm_err fm_exptree_experiments(const fm_exptree *t, cJSON **out, fm_exp_usage *total)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    fm_err rc = FM_OK;
    int fd = fm_beneath_open(t->fd, ".", O_RDONLY | O_DIRECTORY, 0);

    *out = NULL;
    *total = (fm_exp_usage){0};
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            (void)close(fd);
        return FM_ESYS;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (!fm_beneath_name_valid(de->d_name, strlen(de->d_name)) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            char **g = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*g));
            if (g == NULL) {
                rc = FM_ESYS;
                break;
            }
            names = g;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) {
            rc = FM_ESYS;
            break;
        }
        n++;
    }
    (void)closedir(d);
    if (rc == FM_OK && (*out = cJSON_CreateArray()) == NULL)
        rc = FM_ESYS;
    if (n > 0)
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n && rc == FM_OK; i++) {
        fm_exp_walk w = {0};
        cJSON *o;

        rc = fm_exptree_walk(t, names[i], &w);
        if (rc == FM_ENOTFOUND) { /* removed or replaced since it was listed */
            rc = FM_OK;
            continue;
        }
        if (rc != FM_OK)
            break;
        total->bytes += w.use.bytes;
        total->files += w.use.files;
        total->dirs += w.use.dirs + 1;
        if ((o = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(*out, o) ||
            cJSON_AddStringToObject(o, "name", names[i]) == NULL ||
            cJSON_AddNumberToObject(o, "files", (double)w.use.files) == NULL ||
            cJSON_AddNumberToObject(o, "bytes", (double)w.use.bytes) == NULL)
            rc = FM_ESYS;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc != FM_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const fm_exp_item *)a)->path, ((const fm_exp_item *)b)->path);
}

fm_err fm_exptree_files(const fm_exptree *t, const char *exp, size_t offset, size_t limit,
                        cJSON **out, size_t *total)
{
    fm_exp_walk w = {.collect = true};
    fm_err rc;

    *out = NULL;
    *total = 0;
    if (!fm_beneath_name_valid(exp, strlen(exp)))
        return FM_EINVAL;
    rc = fm_exptree_walk(t, exp, &w);
    if (rc == FM_OK && (*out = cJSON_CreateArray()) == NULL)
        rc = FM_ESYS;
    if (rc == FM_OK && w.use.files > 0)
        qsort(w.items, w.use.files, sizeof(*w.items), by_path);
    for (size_t i = offset; rc == FM_OK && i < w.use.files && i - offset < limit; i++) {
        char ts[FM_RFC3339_MAX];
        cJSON *o;

        if ((o = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(*out, o) ||
            cJSON_AddStringToObject(o, "path", w.items[i].path) == NULL ||
            cJSON_AddNumberToObject(o, "bytes", (double)w.items[i].bytes) == NULL ||
            cJSON_AddStringToObject(o, "modified_at",
                                    fm_clock_rfc3339_ms(ts, w.items[i].mtime_ms)) == NULL)
            rc = FM_ESYS;
    }
    *total = (size_t)w.use.files;
    fm_exptree_walk_free(&w);
    if (rc != FM_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}
