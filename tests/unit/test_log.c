/*
 * test_log.c - the operational log: line format, level filter, escaping,
 * redaction, truncation, reopen after rotation, stderr and write errors.
 */
#include "log.h"

#include "clock.h"

#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[64];
static char path[128];
static char rotated[160];
static char errpath[160];

static void setup(void)
{
    (void)snprintf(dir, sizeof dir, "/tmp/test_log.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    (void)snprintf(path, sizeof path, "%s/api.log", dir);
    (void)snprintf(rotated, sizeof rotated, "%s/api.log.1", dir);
    (void)snprintf(errpath, sizeof errpath, "%s/stderr", dir);
}

static void teardown(void)
{
    fm_log_close();
    (void)unlink(path);
    (void)unlink(rotated);
    (void)unlink(errpath);
    (void)rmdir(dir);
}

static char *slurp(const char *p)
{
    char *text = th_read_file(p);

    ck_assert_msg(text != NULL, "%s does not exist", p);
    return text;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;

    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

/*
 * Checks that line (NUL-terminated, may continue with more lines) is
 * "<ts> <level> [<pid>] <msg>\n" and returns the start of the next line.
 */
static const char *expect_line(const char *line, const char *level, const char *msg)
{
    char ts[25], want[8192];
    int64_t secs;
    size_t wl;

    ck_assert_uint_ge(strlen(line), 24);
    memcpy(ts, line, 24);
    ts[24] = '\0';
    ck_assert_msg(ts[19] == '.' && ts[23] == 'Z', "bad timestamp %s", ts);
    ck_assert_int_eq(fm_clock_parse_rfc3339(ts, &secs), 0);
    (void)snprintf(want, sizeof want, " %s [%ld] %s\n", level, (long)getpid(), msg);
    wl = strlen(want);
    ck_assert_msg(strncmp(line + 24, want, wl) == 0, "got \"%.200s\", want \"%s\"", line + 24,
                  want);
    return line + 24 + wl;
}

/* Checks that file holds exactly the lines given as (level, msg) pairs, ended by NULL. */
static void expect_file(const char *file, ...)
{
    char *text = slurp(file);
    const char *p = text, *level;
    va_list ap;

    va_start(ap, file);
    while ((level = va_arg(ap, const char *)) != NULL)
        p = expect_line(p, level, va_arg(ap, const char *));
    va_end(ap);
    ck_assert_str_eq(p, "");
    free(text);
}

START_TEST(test_format_and_levels)
{
    struct stat st;
    const char *p;
    char *text;

    ck_assert_int_eq(fm_log_open(path, FM_LOG_WARN, 0), FM_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    fm_log_debug("d %d", 1);
    fm_log_info("i %d", 2);
    fm_log_warn("w %d", 3);
    fm_log_error("e %s", "4");
    expect_file(path, "warn", "w 3", "error", "e 4", NULL);

    ck_assert_int_eq(fm_log_open(path, FM_LOG_DEBUG, 0), FM_OK);
    fm_log_debug("d");
    fm_log_info("i");
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 4);
    p = expect_line(strchr(strchr(text, '\n') + 1, '\n') + 1, "debug", "d");
    p = expect_line(p, "info", "i");
    free(text);

    /* Logging never disturbs the caller's errno. */
    errno = EACCES;
    fm_log_error("x");
    ck_assert_int_eq(errno, EACCES);
}
END_TEST

START_TEST(test_escaping)
{
    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);
    fm_log_info("user %s", "a\nb\r\tc\x01"
                           "d\x7f\x1b[0m \\n \xc3\xa9");
    fm_log_warn("login %s", "x\n2026-01-01T00:00:00.000Z error [1] forged");
    expect_file(path, "info", "user a\\nb\\r\\tc\\x01d\\x7f\\x1b[0m \\n \xc3\xa9", "warn",
                "login x\\n2026-01-01T00:00:00.000Z error [1] forged", NULL);
}
END_TEST

/*
 * Every class of character a reader may take for a line break or that
 * reorders text on screen, and bytes that are not UTF-8, leave as \xNN
 * escapes; plain UTF-8 stays. fm_log_sanitize is also the relay's filter.
 */
START_TEST(test_escaping_unicode)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\x0b\x0c\x1c\x1d\x1e"
         "b",
         "a\\x0b\\x0c\\x1c\\x1d\\x1e"
         "b\n"},
        {"\xc2\x80|\xc2\x85|\xc2\x9f", "\\xc2\\x80|\\xc2\\x85|\\xc2\\x9f\n"},
        {"\xe2\x80\xa8\xe2\x80\xa9", "\\xe2\\x80\\xa8\\xe2\\x80\\xa9\n"},
        {"\xe2\x80\xaa\xe2\x80\xae", "\\xe2\\x80\\xaa\\xe2\\x80\\xae\n"},
        {"\xe2\x81\xa6\xe2\x81\xa9", "\\xe2\\x81\\xa6\\xe2\\x81\\xa9\n"},
        {"\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "\\xe2\\x80\\x8e\\xe2\\x80\\x8f\\xd8\\x9c\n"},
        {"lone \x85 and \xe2\x80 cut", "lone \\x85 and \\xe2\\x80 cut\n"},
        {"caf\xc3\xa9 \xc2\xa0 \xe2\x80\xa7 \xf0\x9f\x98\x80",
         "caf\xc3\xa9 \xc2\xa0 \xe2\x80\xa7 \xf0\x9f\x98\x80\n"},
    };
    char out[256];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = fm_log_sanitize(cases[i].in, strlen(cases[i].in), out, sizeof out);
        ck_assert_msg(n == strlen(cases[i].want) && memcmp(out, cases[i].want, n) == 0,
                      "case %zu: got \"%.*s\"", i, (int)n, out);
    }
    /* A cut never splits an escape: 4 bytes of room take "a" and no half of \xc2\x85. */
    ck_assert_uint_eq(fm_log_sanitize("a\xc2\x85", 3, out, 6), 2);
    ck_assert(memcmp(out, "a\n", 2) == 0);
}
END_TEST

START_TEST(test_redaction)
{
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char *text;

    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);
    fm_log_warn("authentication failed from %s: key %s", "10.0.0.7", key);
    fm_log_info("header Authorization: Bearer abc");
    fm_log_info("scheme Bearer abc123XYZ");
    fm_log_info("connect redis://:hunter2pw@127.0.0.1:6379");
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 4);
    ck_assert_ptr_null(strstr(text, key));
    ck_assert_ptr_null(strstr(text, "Bearer abc"));
    ck_assert_ptr_null(strstr(text, "hunter2pw"));
    ck_assert_ptr_nonnull(strstr(text, "authentication failed from 10.0.0.7: key [REDACTED]\n"));
    ck_assert_ptr_nonnull(strstr(text, "127.0.0.1:6379"));
    free(text);
}
END_TEST

START_TEST(test_truncation)
{
    size_t big = 20000;
    char *msg = malloc(big + 1), *text, *nl;
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    size_t pre;

    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);

    memset(msg, 'x', big);
    msg[big] = '\0';
    fm_log_info("%s", msg);
    text = slurp(path);
    ck_assert_uint_eq(strlen(text), FM_LOG_LINE_MAX);
    ck_assert_ptr_eq(strchr(text, '\n'), text + FM_LOG_LINE_MAX - 1);
    free(text);

    /* Escapes are never cut in half. */
    ck_assert_int_eq(truncate(path, 0), 0);
    memset(msg, '\x01', big);
    fm_log_info("%s", msg);
    text = slurp(path);
    nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_ptr_eq(nl + 1, text + strlen(text));
    pre = (size_t)(strstr(text, "\\x01") - text);
    ck_assert_uint_eq((size_t)(nl - text - (ptrdiff_t)pre) % 4, 0);
    ck_assert_uint_gt((size_t)(nl - text), FM_LOG_LINE_MAX - 5);
    free(text);

    /* A secret across the cut is dropped whole, not half shown. */
    ck_assert_int_eq(truncate(path, 0), 0);
    memset(msg, ' ', big);
    memcpy(msg + FM_LOG_LINE_MAX - 70, key, 64); /* across the line cut */
    fm_log_info("%s", msg);
    memset(msg, ' ', big);
    memcpy(msg + FM_LOG_LINE_MAX - 20, key, 64); /* across the redaction cut */
    fm_log_info("%s", msg);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 2);
    ck_assert_ptr_null(strstr(text, "0123456789abcdef"));
    ck_assert_ptr_nonnull(strstr(text, "[REDACTED]"));
    free(text);
    free(msg);
}
END_TEST

START_TEST(test_reopen_after_rename)
{
    ck_assert_int_eq(fm_log_reopen(), FM_OK); /* nothing open yet: a no-op */
    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);
    fm_log_info("one");
    ck_assert_int_eq(rename(path, rotated), 0);
    fm_log_info("two");
    ck_assert_int_eq(fm_log_reopen(), FM_OK);
    fm_log_info("three");

    expect_file(rotated, "info", "one", "info", "two", NULL);
    expect_file(path, "info", "three", NULL);

    /* A failed open keeps the earlier target. */
    errno = 0;
    ck_assert_int_eq(fm_log_open("/nonexistent-dir/api.log", FM_LOG_ERROR, 0), FM_ESYS);
    ck_assert_int_eq(errno, ENOENT);
    fm_log_info("four");
    expect_file(path, "info", "three", "info", "four", NULL);

    /* A failed reopen (a directory now stands at the path) keeps the file in use. */
    ck_assert_int_eq(rename(path, rotated), 0);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    errno = 0;
    ck_assert_int_eq(fm_log_reopen(), FM_ESYS);
    ck_assert_int_eq(errno, EISDIR);
    fm_log_info("five");
    expect_file(rotated, "info", "three", "info", "four", "info", "five", NULL);
    ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

/*
 * What another account may put at the path of a log the master opens as
 * root: a symbolic link (to a file it could not write itself) is not
 * followed, nor created through; a FIFO does not block the start; neither
 * is taken, and the earlier target stays.
 */
START_TEST(test_open_refuses_links_and_fifos)
{
    char target[200], fifo[200];

    (void)snprintf(target, sizeof target, "%s/target", dir);
    (void)snprintf(fifo, sizeof fifo, "%s/fifo.log", dir);
    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);
    fm_log_info("one");
    ck_assert_int_eq(symlink(target, rotated), 0);
    errno = 0;
    ck_assert_int_eq(fm_log_open(rotated, FM_LOG_INFO, 0), FM_ESYS);
    ck_assert_int_eq(errno, ELOOP);
    ck_assert_int_eq(access(target, F_OK), -1); /* nothing was created through the link */
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    errno = 0;
    ck_assert_int_eq(fm_log_open(fifo, FM_LOG_INFO, 0), FM_ESYS); /* at once, no reader */
    ck_assert_int_eq(errno, ENXIO);
    fm_log_info("two");
    expect_file(path, "info", "one", "info", "two", NULL);
    ck_assert_int_eq(unlink(rotated), 0);
    ck_assert_int_eq(unlink(fifo), 0);
}
END_TEST

START_TEST(test_stderr)
{
    int saved = dup(STDERR_FILENO), fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    (void)close(fd);

    ck_assert_int_eq(fm_log_open(NULL, FM_LOG_INFO, 0), FM_OK);
    fm_log_info("stderr only");
    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 1), FM_OK);
    fm_log_info("both");
    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);
    fm_log_info("file only");
    fm_log_close();
    fm_log_info("after close");

    ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    (void)close(saved);
    expect_file(errpath, "info", "stderr only", "info", "both", "info", "after close", NULL);
    expect_file(path, "info", "both", "info", "file only", NULL);
}
END_TEST

START_TEST(test_lost_lines_reported)
{
    struct rlimit old, lim;

    ck_assert_int_eq(fm_log_open(path, FM_LOG_INFO, 0), FM_OK);
    fm_log_info("first");
    /* A file size limit makes the next writes fail with EFBIG. */
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
    lim = old;
    lim.rlim_cur = 10;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    fm_log_info("lost one");
    fm_log_info("lost two");
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    fm_log_info("back");

    expect_file(path, "info", "first", "info", "back", "warn",
                "log: 2 earlier lines could not be written", NULL);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format_and_levels);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_escaping_unicode);
    tcase_add_test(tc, test_redaction);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_reopen_after_rename);
    tcase_add_test(tc, test_stderr);
    tcase_add_test(tc, test_open_refuses_links_and_fifos);
    tcase_add_test(tc, test_lost_lines_reported);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(log_suite)
