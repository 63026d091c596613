/*
 * test_exptree.c - one user's experiment tree (lib/store/exptree.c, exptree_read.c): modes,
 * the write protocol (an upload is invisible until commit; settle keeps it,
 * undo restores what was there), preconditions, quotas, deletes, listings
 * that skip what a shell user planted, the cached ETag, the directories
 * (made at commit, removed when emptied, counted in quota_files) and reads
 * racing replaces.
 */
#include "exptree.h"
#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[TH_PATH_MAX];
static fm_exptree tree;
static const fm_exp_cond no_cond = {NULL, NULL};
static const fm_exp_limits roomy = {1u << 30, 1000};

static void setup(void)
{
    th_mkdtemp(root, "exptree");
    ck_assert_int_eq(fm_exptree_open(root, "alice", true, &tree), FM_OK);
}

static void teardown(void)
{
    fm_exptree_close(&tree);
    th_rmtree(root);
}

/* Uploads text to exp/path and settles it; returns the commit's result. */
static fm_err put(const char *exp, const char *path, const char *text, const fm_exp_cond *cond,
                  const fm_exp_limits *lim, char etag[FM_EXP_ETAG_LEN + 1])
{
    fm_exp_change c;
    const char *what;
    fm_err rc;

    ck_assert_int_eq(fm_exptree_put_begin(&tree, exp, path, &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_write(&c, text, strlen(text)), FM_OK);
    rc = fm_exptree_put_commit(&tree, &c, cond, lim, &what);
    if (rc == FM_OK) {
        if (etag != NULL)
            memcpy(etag, c.etag, FM_EXP_ETAG_LEN + 1);
        fm_exptree_settle(&tree, &c);
    } else {
        fm_exptree_abort(&c);
    }
    return rc;
}

static char *slurp(const char *rel)
{
    char p[TH_PATH_MAX];

    th_path(p, root, rel);
    return th_read_file(p);
}

static mode_t mode_of(const char *rel)
{
    char p[TH_PATH_MAX];
    struct stat st;

    th_path(p, root, rel);
    ck_assert_int_eq(lstat(p, &st), 0);
    return st.st_mode & 07777;
}

/* Entries of a directory other than . and .., hidden ones included. */
static int entries(const char *rel)
{
    char p[TH_PATH_MAX];
    struct dirent *de;
    int n = 0;
    DIR *d;

    th_path(p, root, rel);
    d = opendir(p);
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    (void)closedir(d);
    return n;
}

START_TEST(modes_whatever_the_umask)
{
    mode_t old = umask(0);
    char *text;

    ck_assert_int_eq(put("e", "a/b/f.txt", "x", &no_cond, &roomy, NULL), FM_OK);
    (void)umask(old);
    ck_assert_uint_eq(mode_of("alice"), 0700);
    ck_assert_uint_eq(mode_of("alice/e"), 0700);
    ck_assert_uint_eq(mode_of("alice/e/a/b"), 0700);
    ck_assert_uint_eq(mode_of("alice/e/a/b/f.txt"), 0600);
    text = slurp("alice/e/a/b/f.txt");
    ck_assert_str_eq(text, "x");
    free(text);
}
END_TEST

START_TEST(invisible_until_commit_and_undo)
{
    fm_exp_change c;
    const char *what;
    char *text;

    ck_assert_int_eq(put("e", "f", "old", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "f", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_write(&c, "new", 3), FM_OK);
    ck_assert_int_eq(entries("alice/e"), 1); /* the upload has no name yet */
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &roomy, &what), FM_OK);
    ck_assert_int_eq(c.kind, FM_EXP_REPLACE);
    text = slurp("alice/e/f");
    ck_assert_str_eq(text, "new");
    free(text);
    fm_exptree_undo(&tree, &c); /* the audit record failed: the old file is back */
    text = slurp("alice/e/f");
    ck_assert_str_eq(text, "old");
    free(text);
    ck_assert_int_eq(entries("alice/e"), 1);

    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "g", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &roomy, &what), FM_OK);
    ck_assert_int_eq(c.kind, FM_EXP_NEW);
    fm_exptree_undo(&tree, &c);
    ck_assert_int_eq(entries("alice/e"), 1);
}
END_TEST

START_TEST(preconditions)
{
    char e1[FM_EXP_ETAG_LEN + 1], e2[FM_EXP_ETAG_LEN + 1], hdr[FM_EXP_ETAG_LEN + 8];
    fm_exp_cond star_none = {NULL, "*"}, star_match = {"*", NULL}, m = {hdr, NULL};

    ck_assert_int_eq(put("e", "f", "one", &star_match, &roomy, NULL), FM_ECONFLICT);
    ck_assert_int_eq(put("e", "f", "one", &star_none, &roomy, e1), FM_OK);
    ck_assert_int_eq(put("e", "f", "two", &star_none, &roomy, NULL), FM_ECONFLICT);
    (void)snprintf(hdr, sizeof(hdr), "W/\"%s\"", e1); /* If-Match compares strongly */
    ck_assert_int_eq(put("e", "f", "two", &m, &roomy, NULL), FM_ECONFLICT);
    (void)snprintf(hdr, sizeof(hdr), "\"x\", \"%s\"", e1);
    ck_assert_int_eq(put("e", "f", "two", &m, &roomy, e2), FM_OK);
    ck_assert_str_ne(e1, e2);
    ck_assert_int_eq(put("e", "f", "three", &m, &roomy, NULL), FM_ECONFLICT); /* e1 is gone */
    /* The same answers before the upload streams. */
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "f", &m), FM_ECONFLICT);
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "f", &star_none), FM_ECONFLICT);
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "f", &star_match), FM_OK);
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "new/g", &star_none), FM_OK);
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "new/g", &star_match), FM_ECONFLICT);
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "f/g", &star_none), FM_EINVAL);
    (void)snprintf(hdr, sizeof(hdr), "\"%s\"", e2);
    ck_assert_int_eq(fm_exptree_put_check(&tree, "e", "f", &m), FM_OK);
}
END_TEST

START_TEST(quotas)
{
    fm_exp_limits lim = {10, 3}; /* files and directories: e, a, b */
    const char *what;
    fm_exp_change c;

    ck_assert_int_eq(put("e", "a", "12345", &no_cond, &lim, NULL), FM_OK);
    ck_assert_int_eq(put("e", "b", "12345", &no_cond, &lim, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "c", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &lim, &what), FM_EQUOTA);
    ck_assert_str_eq(what, "quota_files");
    fm_exptree_abort(&c);
    ck_assert_int_eq(put("e", "a", "1234", &no_cond, &lim, NULL), FM_OK); /* 4 + 5 */
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "a", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_write(&c, "123456", 6), FM_OK); /* 6 + 5 > 10 */
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &lim, &what), FM_EQUOTA);
    ck_assert_str_eq(what, "quota_bytes");
    fm_exptree_abort(&c);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "b", &c), FM_OK);
    fm_exptree_settle(&tree, &c);
    ck_assert_int_eq(put("e", "c", "12345", &no_cond, &lim, NULL), FM_OK);
}
END_TEST

START_TEST(delete_and_undo)
{
    fm_exp_change c;
    char *text;

    ck_assert_int_eq(put("e", "d/f", "keep", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "d/f", &c), FM_OK);
    ck_assert_uint_eq(c.bytes, 4);
    fm_exptree_undo(&tree, &c);
    text = slurp("alice/e/d/f");
    ck_assert_str_eq(text, "keep");
    free(text);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "d/f", &c), FM_OK);
    fm_exptree_settle(&tree, &c);
    ck_assert_int_eq(entries("alice"), 0); /* e/d and e, emptied, are gone */
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "d/f", &c), FM_ENOTFOUND);
    ck_assert_int_eq(put("e", "d/g", "keep", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "d", &c), FM_ENOTFOUND); /* a directory */
}
END_TEST

/* What a shell user plants is skipped by listings and quotas and never replaced. */
START_TEST(planted_entries)
{
    char p[TH_PATH_MAX], q[TH_PATH_MAX];
    fm_exp_usage use;
    fm_exp_file f;
    fm_exp_change c;
    size_t total;
    cJSON *list;

    ck_assert_int_eq(put("e", "real", "abc", &no_cond, &roomy, NULL), FM_OK);
    th_path(p, root, "alice/e/real");
    th_path(q, root, "alice/e/link");
    ck_assert_int_eq(symlink(p, q), 0);
    th_path(q, root, "alice/e/hard");
    ck_assert_int_eq(link(p, q), 0);
    th_path(q, root, "alice/e/fifo");
    ck_assert_int_eq(mkfifo(q, 0600), 0);
    th_path(q, root, "alice/e/.fetchml-leftover");
    th_write_file(q, "stale temporary file");
    ck_assert_int_eq(fm_exptree_files(&tree, "e", 0, 100, &list, &total), FM_OK);
    ck_assert_uint_eq(total, 0); /* "real" now has two links: not counted either */
    cJSON_Delete(list);
    ck_assert_int_eq(fm_exptree_read(&tree, "e", "real", &f), FM_ENOTFOUND);
    ck_assert_int_eq(unlink(q), 0);
    th_path(q, root, "alice/e/hard");
    ck_assert_int_eq(unlink(q), 0);
    th_path(q, root, "alice/e/.fetchml-leftover");
    th_write_file(q, "stale temporary file");
    ck_assert_int_eq(fm_exptree_usage(&tree, &use), FM_OK);
    ck_assert_uint_eq(use.files, 1);
    ck_assert_uint_eq(use.bytes, 3);
    ck_assert_int_eq(fm_exptree_read(&tree, "e", "link", &f), FM_ENOTFOUND);
    ck_assert_int_eq(fm_exptree_read(&tree, "e", "fifo", &f), FM_ENOTFOUND);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "link", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &roomy, &(const char *){NULL}),
                     FM_EINVAL);
    fm_exptree_abort(&c);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "fifo/x", &c), FM_ECONFLICT);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "link/x", &c), FM_ECONFLICT);
    /* A commit holds the lock: the leftover hidden name is swept. */
    ck_assert_int_eq(put("e", "another", "z", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_ne(access(q, F_OK), 0);
}
END_TEST

START_TEST(etag_cache)
{
    char etag[FM_EXP_ETAG_LEN + 1], p[TH_PATH_MAX];
    fm_exp_file f;

    ck_assert_int_eq(put("e", "f", "abc", &no_cond, &roomy, etag), FM_OK);
    /* SHA-256("abc") */
    ck_assert_str_eq(etag, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(fm_exptree_read(&tree, "e", "f", &f), FM_OK);
    ck_assert_str_eq(f.etag, etag);
    ck_assert_uint_eq(f.size, 3);
    (void)close(f.fd);
    /* Changed behind the tree's back: the cached digest no longer matches and is not used. */
    th_path(p, root, "alice/e/f");
    th_write_file(p, "abcd");
    ck_assert_int_eq(fm_exptree_read(&tree, "e", "f", &f), FM_OK);
    ck_assert_str_eq(f.etag, "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589");
    (void)close(f.fd);
}
END_TEST

START_TEST(experiments_listing)
{
    fm_exp_usage total;
    cJSON *list;

    ck_assert_int_eq(put("b", "x", "12", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(put("a", "y/z", "123", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_experiments(&tree, &list, &total), FM_OK);
    ck_assert_int_eq(cJSON_GetArraySize(list), 2);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "name")),
                     "a");
    ck_assert_uint_eq(total.bytes, 5);
    ck_assert_uint_eq(total.files, 2);
    ck_assert_uint_eq(total.dirs, 3); /* a, a/y, b */
    cJSON_Delete(list);
}
END_TEST

/* Started as root with experiments_dir owned by another user: what is made is that user's. */
START_TEST(ownership_follows_the_tree)
{
    char p[TH_PATH_MAX];
    fm_exptree t;
    struct stat st;

    if (geteuid() != 0)
        return; /* only root can give files away */
    th_path(p, root, "owned");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    ck_assert_int_eq(chown(p, 65534, 65534), 0);
    ck_assert_int_eq(fm_exptree_open(p, "carol", true, &t), FM_OK);
    fm_exptree_close(&tree);
    tree = t;
    ck_assert_int_eq(put("e", "d/f", "x", &no_cond, &roomy, NULL), FM_OK);
    th_path(p, root, "owned/carol/e/d/f");
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_uid, 65534);
    ck_assert_uint_eq(st.st_gid, 65534);
    th_path(p, root, "owned/carol/e/d");
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_uid, 65534);
    th_path(p, root, "owned/carol");
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_uid, 65534);
}
END_TEST

START_TEST(refuses_bad_names)
{
    fm_exptree other;
    fm_exp_change c;
    fm_exp_file f;

    ck_assert_int_eq(fm_exptree_open(root, "..", true, &other), FM_EINVAL);
    ck_assert_int_eq(fm_exptree_open(root, "bob", false, &other), FM_ENOTFOUND);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "..", "x", &c), FM_EINVAL);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "../x", &c), FM_EINVAL);
    ck_assert_int_eq(fm_exptree_read(&tree, "e", "a//b", &f), FM_EINVAL);
}
END_TEST

/* No directory appears for an upload that does not stand: aborted, refused or undone. */
START_TEST(failed_uploads_make_no_directory)
{
    fm_exp_limits tiny = {2, 1000};
    fm_exp_change c;
    const char *why;
    cJSON *list;
    fm_exp_usage total;

    ck_assert_int_eq(fm_exptree_put_begin(&tree, "new", "a/b/f", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_write(&c, "data", 4), FM_OK);
    ck_assert_int_eq(entries("alice"), 0); /* streaming: nothing has a name */
    fm_exptree_abort(&c);
    ck_assert_int_eq(entries("alice"), 0);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "new", "a/b/f", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_write(&c, "data", 4), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &tiny, &why), FM_EQUOTA);
    ck_assert_str_eq(why, "quota_bytes");
    fm_exptree_abort(&c);
    ck_assert_int_eq(entries("alice"), 0);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "new", "a/b/f", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &roomy, &why), FM_OK);
    ck_assert_uint_eq(c.made, 3);
    fm_exptree_undo(&tree, &c); /* the audit record failed */
    ck_assert_int_eq(entries("alice"), 0);
    ck_assert_int_eq(fm_exptree_experiments(&tree, &list, &total), FM_OK);
    ck_assert_int_eq(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    /* Undo removes only what its commit made. */
    ck_assert_int_eq(put("new", "a/keep", "k", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "new", "a/b/f", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &roomy, &why), FM_OK);
    ck_assert_uint_eq(c.made, 1);
    fm_exptree_undo(&tree, &c);
    ck_assert_int_eq(entries("alice/new/a"), 1);
}
END_TEST

/* A delete removes the directories it empties, and only those. */
START_TEST(deletes_remove_emptied_directories)
{
    char p[TH_PATH_MAX];
    fm_exp_change c;

    ck_assert_int_eq(put("e", "a/b/f", "1", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(put("e", "a/g", "2", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "a/b/f", &c), FM_OK);
    ck_assert_int_eq(entries("alice/e/a/b"), 1); /* the hidden name, until the change settles */
    fm_exptree_settle(&tree, &c);
    ck_assert_int_eq(entries("alice/e/a"), 1); /* b went, g stays */
    /* A directory holding something no client sees (a shell user's entry) stays. */
    ck_assert_int_eq(put("e", "s/f", "3", &no_cond, &roomy, NULL), FM_OK);
    th_path(p, root, "alice/e/s/planted");
    ck_assert_int_eq(symlink("/etc/passwd", p), 0);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "s/f", &c), FM_OK);
    fm_exptree_settle(&tree, &c);
    ck_assert_int_eq(entries("alice/e/s"), 1);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "a/g", &c), FM_OK);
    fm_exptree_settle(&tree, &c);
    ck_assert_int_eq(entries("alice/e"), 1); /* a went; s (emptied by hand) stays */
}
END_TEST

/* An upload whose directory a concurrent delete removed makes it again at its commit. */
START_TEST(upload_into_a_directory_a_delete_removes)
{
    fm_exp_change up, del;
    const char *why;
    char *text;

    ck_assert_int_eq(put("e", "d/old", "o", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "d/new", &up), FM_OK);
    ck_assert_int_eq(fm_exptree_put_write(&up, "n", 1), FM_OK);
    ck_assert_int_eq(fm_exptree_delete(&tree, "e", "d/old", &del), FM_OK);
    fm_exptree_settle(&tree, &del);
    ck_assert_int_eq(entries("alice"), 0);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &up, &no_cond, &roomy, &why), FM_OK);
    fm_exptree_settle(&tree, &up);
    text = slurp("alice/e/d/new");
    ck_assert_str_eq(text, "n");
    free(text);
}
END_TEST

/* data.quota_files counts directories: a deep path is no free inode bomb. */
START_TEST(quota_files_counts_directories)
{
    fm_exp_limits lim = {1000, 4};
    fm_exp_usage use;
    const char *why;
    fm_exp_change c;

    ck_assert_int_eq(put("e", "a/b/f", "1", &no_cond, &lim, NULL), FM_OK); /* e, a, b, f */
    ck_assert_int_eq(fm_exptree_usage(&tree, &use), FM_OK);
    ck_assert_uint_eq(use.files, 1);
    ck_assert_uint_eq(use.dirs, 3);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "a/b/g", &c), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &lim, &why), FM_EQUOTA);
    ck_assert_str_eq(why, "quota_files");
    fm_exptree_abort(&c);
    ck_assert_int_eq(put("e", "a/b/f", "22", &no_cond, &lim, NULL), FM_OK); /* a replace */
    lim.quota_files = 5;
    ck_assert_int_eq(put("x", "f", "1", &no_cond, &lim, NULL), FM_EQUOTA); /* x and f: 6 */
    ck_assert_int_eq(put("e", "g", "1", &no_cond, &lim, NULL), FM_OK);
    ck_assert_int_eq(entries("alice"), 1); /* the refused upload left no x */
}
END_TEST

/* Two uploads race for a name that one needs as a file and the other as a directory. */
START_TEST(way_blocked_at_commit)
{
    fm_exp_change c;
    const char *why;

    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "a/f", &c), FM_OK);
    ck_assert_int_eq(put("e", "a", "now a file", &no_cond, &roomy, NULL), FM_OK);
    ck_assert_int_eq(fm_exptree_put_commit(&tree, &c, &no_cond, &roomy, &why), FM_EINVAL);
    ck_assert_str_eq(why, "not_directory");
    fm_exptree_abort(&c);
    ck_assert_int_eq(fm_exptree_put_begin(&tree, "e", "a/f", &c), FM_ECONFLICT);
}
END_TEST

/*
 * A reader never finds no file while another process replaces it: the old
 * content's last name goes (settle) between a reader's lookup and its check
 * often enough in 1.5 s of both looping.
 */
START_TEST(reads_during_replaces_always_find_the_file)
{
    double until = th_now() + 1.5;
    long reads = 0, missing = 0;
    fm_exp_file f;
    pid_t pid;
    int status;

    ck_assert_int_eq(put("e", "f", "0", &no_cond, &roomy, NULL), FM_OK);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fm_exptree mine;

        fm_exptree_close(&tree);
        if (fm_exptree_open(root, "alice", false, &mine) != FM_OK)
            _exit(2);
        tree = mine;
        while (th_now() < until)
            if (put("e", "f", "1", &no_cond, &roomy, NULL) != FM_OK)
                _exit(3);
        _exit(0);
    }
    while (th_now() < until) {
        fm_err rc = fm_exptree_read(&tree, "e", "f", &f);

        reads++;
        if (rc == FM_OK)
            (void)close(f.fd);
        else
            missing++;
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(status, 0);
    ck_assert_int_gt(reads, 100);
    ck_assert_int_eq(missing, 0);
}
END_TEST

static Suite *exptree_suite(void)
{
    Suite *s = suite_create("exptree");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, modes_whatever_the_umask);
    tcase_add_test(tc, invisible_until_commit_and_undo);
    tcase_add_test(tc, preconditions);
    tcase_add_test(tc, quotas);
    tcase_add_test(tc, delete_and_undo);
    tcase_add_test(tc, planted_entries);
    tcase_add_test(tc, etag_cache);
    tcase_add_test(tc, experiments_listing);
    tcase_add_test(tc, ownership_follows_the_tree);
    tcase_add_test(tc, refuses_bad_names);
    tcase_add_test(tc, failed_uploads_make_no_directory);
    tcase_add_test(tc, deletes_remove_emptied_directories);
    tcase_add_test(tc, upload_into_a_directory_a_delete_removes);
    tcase_add_test(tc, quota_files_counts_directories);
    tcase_add_test(tc, way_blocked_at_commit);
    tcase_add_test(tc, reads_during_replaces_always_find_the_file);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(exptree_suite)
