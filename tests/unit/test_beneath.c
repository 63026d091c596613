/*
 * test_beneath.c - client-chosen names and the kernel-checked lookup
 * (lib/base/beneath.c): the name and path rules case by case, and opens that
 * must stay beneath their directory whatever a user with shell access
 * planted there (symbolic links, hard links, FIFOs, "..", absolute paths).
 */
#include "beneath.h"
#include "helpers.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t len; /* 0: strlen */
    bool valid;
} names[] = {
    {"a", 0, true},
    {"model.pt", 0, true},
    {".hidden", 0, true},
    {"..x", 0, true},
    {"x..", 0, true},
    {"%2e%2e", 0, true}, /* nginx decoded the path once: this is the literal text */
    {"caf\xc3\xa9", 0, true},
    {"cafe\xcc\x81", 0, true}, /* NFD: another name than the NFC one, but valid */
    {"\xf0\x9f\x98\x80", 0, true},
    {"", 0, false},
    {".", 0, false},
    {"..", 0, false},
    {"a/b", 0, false},
    {"/", 0, false},
    {"a\0b", 3, false},
    {"a\nb", 0, false},
    {"a\rb", 0, false},
    {"a\tb", 0, false},
    {"\x1b[31m", 0, false},
    {"a\x7f", 0, false},
    {"a\xc2\x85", 0, false},        /* NEL, a C1 control */
    {"a\xe2\x80\xa8", 0, false},    /* U+2028 line separator */
    {"a\xe2\x80\xae", 0, false},    /* U+202E right-to-left override */
    {"\xc0\xaf", 0, false},         /* overlong '/' */
    {"\xc0\xae\xc0\xae", 0, false}, /* overlong ".." */
    {"\xe0\x80\xaf", 0, false},     /* overlong '/', three bytes */
    {"\xed\xa0\x80", 0, false},     /* a surrogate */
    {"\xf4\x90\x80\x80", 0, false}, /* past U+10FFFF */
    {"a\xc3", 0, false},            /* cut sequence */
    {"\xff", 0, false},
    {".fetchml-0123", 0, false}, /* the tree's own hidden names */
    {".fetchml-", 0, false},
    {".fetchml", 0, true},
};

START_TEST(name_rules)
{
    size_t len = names[_i].len ? names[_i].len : strlen(names[_i].name);

    ck_assert_msg(fm_beneath_name_valid(names[_i].name, len) == names[_i].valid,
                  "case %d: expected %s", _i, names[_i].valid ? "valid" : "invalid");
}
END_TEST

START_TEST(name_lengths)
{
    char buf[FM_BENEATH_NAME_MAX + 2];

    memset(buf, 'a', sizeof(buf));
    ck_assert(fm_beneath_name_valid(buf, FM_BENEATH_NAME_MAX));
    ck_assert(!fm_beneath_name_valid(buf, FM_BENEATH_NAME_MAX + 1));
}
END_TEST

static const struct {
    const char *path;
    bool valid;
    size_t depth;
} paths[] = {
    {"a", true, 1},         {"a/b/c.txt", true, 3},     {"runs/2026-12-01/metrics.json", true, 3},
    {"", false, 0},         {"/a", false, 0},           {"a/", false, 0},
    {"a//b", false, 0},     {"a/./b", false, 0},        {"a/../b", false, 0},
    {"../a", false, 0},     {"..", false, 0},           {"a/..", false, 0},
    {"a/\x01/b", false, 0}, {"a/.fetchml-x", false, 0},
};

START_TEST(path_rules)
{
    size_t depth = 0;

    ck_assert_msg(fm_beneath_path_valid(paths[_i].path, &depth) == paths[_i].valid, "case %d: %s",
                  _i, paths[_i].path);
    if (paths[_i].valid)
        ck_assert_uint_eq(depth, paths[_i].depth);
}
END_TEST

START_TEST(path_lengths)
{
    char buf[FM_BENEATH_PATH_MAX + 8];
    size_t n = 0;

    /* 1024 bytes of 4-byte names: valid; one more byte: not. */
    while (n + 4 <= FM_BENEATH_PATH_MAX) {
        memcpy(buf + n, "abc/", 4);
        n += 4;
    }
    buf[n - 1] = 'x';
    buf[n] = '\0';
    ck_assert_uint_eq(n, FM_BENEATH_PATH_MAX);
    ck_assert(!fm_beneath_path_valid(buf, NULL)); /* 256 names: deeper than FM_BENEATH_DEPTH_MAX */
    memset(buf, 'a', FM_BENEATH_PATH_MAX);
    for (size_t i = 200; i < FM_BENEATH_PATH_MAX; i += 200)
        buf[i] = '/';
    buf[FM_BENEATH_PATH_MAX] = '\0';
    ck_assert(fm_beneath_path_valid(buf, NULL));
    buf[FM_BENEATH_PATH_MAX] = 'a';
    buf[FM_BENEATH_PATH_MAX + 1] = '\0';
    ck_assert(!fm_beneath_path_valid(buf, NULL));
}
END_TEST

/* ---- the lookup ---------------------------------------------------------------- */

static char root[TH_PATH_MAX], outside[TH_PATH_MAX];
static int tree_fd = -1;

static void plant(void)
{
    char p[TH_PATH_MAX], q[TH_PATH_MAX];

    th_mkdtemp(root, "beneath");
    th_path(outside, root, "outside");
    ck_assert_int_eq(mkdir(outside, 0700), 0);
    th_path(p, outside, "secret");
    th_write_file(p, "secret\n");
    th_path(p, root, "tree");
    ck_assert_int_eq(mkdir(p, 0700), 0);
    tree_fd = open(p, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(tree_fd, 0);
    ck_assert_int_eq(mkdirat(tree_fd, "exp", 0700), 0);
    th_path(q, p, "exp/ok");
    th_write_file(q, "ok\n");
    th_path(q, outside, "secret");
    ck_assert_int_eq(symlinkat(q, tree_fd, "exp/link_abs"), 0);
    ck_assert_int_eq(symlinkat("../../outside/secret", tree_fd, "exp/link_rel"), 0);
    ck_assert_int_eq(symlinkat("ok", tree_fd, "exp/link_inside"), 0);
    ck_assert_int_eq(symlinkat(outside, tree_fd, "exp/dirlink"), 0);
    ck_assert_int_eq(symlinkat("nowhere", tree_fd, "exp/dangling"), 0);
    ck_assert_int_eq(symlinkat("/proc/self/root/etc/passwd", tree_fd, "exp/proc"), 0);
    ck_assert_int_eq(linkat(AT_FDCWD, q, tree_fd, "exp/hard", 0), 0);
    ck_assert_int_eq(mkfifoat(tree_fd, "exp/fifo", 0600), 0);
}

static void unplant(void)
{
    if (tree_fd >= 0)
        (void)close(tree_fd);
    tree_fd = -1;
    th_rmtree(root);
}

START_TEST(opens_inside)
{
    struct stat st;
    int fd = fm_beneath_open(tree_fd, "exp/ok", O_RDONLY, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(fm_beneath_regular(&st));
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

static const struct {
    const char *path;
    int err;
} refused[] = {
    {"exp/link_abs", ELOOP},      {"exp/link_rel", ELOOP},
    {"exp/link_inside", ELOOP},   {"exp/dirlink/secret", ELOOP},
    {"exp/dangling", ELOOP},      {"exp/proc", ELOOP},
    {"../outside/secret", EXDEV}, {"exp/../../outside/secret", EXDEV},
    {"/etc/passwd", EXDEV},
};

START_TEST(refuses_escapes)
{
    int fd = fm_beneath_open(tree_fd, refused[_i].path, O_RDONLY, 0);

    ck_assert_msg(fd < 0 && errno == refused[_i].err, "%s: fd %d errno %d (%s)", refused[_i].path,
                  fd, errno, strerror(errno));
}
END_TEST

/* A creating open through a planted link is refused too: nothing appears outside. */
START_TEST(no_create_through_links)
{
    char p[TH_PATH_MAX];

    ck_assert_int_lt(fm_beneath_open(tree_fd, "exp/dirlink/new", O_WRONLY | O_CREAT, 0600), 0);
    ck_assert_int_lt(fm_beneath_open(tree_fd, "exp/dangling", O_WRONLY | O_CREAT, 0600), 0);
    th_path(p, root, "tree/exp/nowhere");
    ck_assert_int_ne(access(p, F_OK), 0);
    th_path(p, outside, "new");
    ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

/*
 * A hard link opens (it is a file of the tree by name) but is not "regular"
 * here; a FIFO with no writer opens at once (O_NONBLOCK) and is no regular file.
 */
static const char *const irregular[] = {"exp/hard", "exp/fifo"};

START_TEST(irregular_files)
{
    struct stat st;
    int fd = fm_beneath_open(tree_fd, irregular[_i], O_RDONLY, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(!fm_beneath_regular(&st));
    (void)close(fd);
}
END_TEST

static Suite *beneath_suite(void)
{
    Suite *s = suite_create("beneath");
    TCase *tc = tcase_create("names");
    TCase *open_tc = tcase_create("open");

    tcase_add_loop_test(tc, name_rules, 0, (int)(sizeof names / sizeof names[0]));
    tcase_add_test(tc, name_lengths);
    tcase_add_loop_test(tc, path_rules, 0, (int)(sizeof paths / sizeof paths[0]));
    tcase_add_test(tc, path_lengths);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(open_tc, plant, unplant);
    tcase_add_test(open_tc, opens_inside);
    tcase_add_loop_test(open_tc, refuses_escapes, 0, (int)(sizeof refused / sizeof refused[0]));
    tcase_add_test(open_tc, no_create_through_links);
    tcase_add_loop_test(open_tc, irregular_files, 0, (int)(sizeof irregular / sizeof irregular[0]));
    suite_add_tcase(s, open_tc);
    return s;
}

TH_MAIN(beneath_suite)
