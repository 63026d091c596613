/*
 * test_nchan.c - lib/base/nchan.c against a fake publisher on a unix socket
 * (a forked child that takes one connection, keeps the request it got and
 * answers what the test says): the request sent (method, channels, headers,
 * body), each answer's outcome (publish, delete, exists), a bad channel refused before any connection,
 * no server, a server that never answers (the deadline holds), and an answer
 * that is not HTTP.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "nchan.h"

static char dir[TH_PATH_MAX], sock[TH_PATH_MAX], seen[TH_PATH_MAX];
static pid_t server = -1;

static void setup(void)
{
    th_mkdtemp(dir, "test_nchan");
    th_path(sock, dir, "nchan.sock");
    th_path(seen, dir, "request");
}

static void teardown(void)
{
    if (server > 0) {
        (void)kill(server, SIGKILL);
        (void)waitpid(server, NULL, 0);
        server = -1;
    }
    th_rmtree(dir);
}

/* A server that accepts one connection, stores what it reads, then answers (NULL: never). */
static void serve_once(const char *answer)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_uint_lt(strlen(sock), sizeof(sa.sun_path));
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    server = fork();
    ck_assert_int_ge(server, 0);
    if (server == 0) {
        char buf[8192];
        size_t have = 0;
        int c = accept(fd, NULL, NULL);
        FILE *f;

        if (c < 0)
            _exit(1);
        /* Reads the head and a body as long as the test's (they are small). */
        for (;;) {
            ssize_t r = read(c, buf + have, sizeof(buf) - 1 - have);
            char *end;
            if (r <= 0)
                break;
            have += (size_t)r;
            buf[have] = '\0';
            end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                const char *cl = strstr(buf, "Content-Length: ");
                size_t want = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
                if (have >= (size_t)(end + 4 - buf) + want)
                    break;
            }
        }
        f = fopen(seen, "w");
        if (f != NULL) {
            (void)fwrite(buf, 1, have, f);
            (void)fclose(f);
        }
        if (answer == NULL)
            pause();
        if (write(c, answer, strlen(answer)) < 0)
            _exit(1);
        (void)close(c);
        _exit(0);
    }
    (void)close(fd);
}

static void reap(void)
{
    ck_assert_int_eq(waitpid(server, NULL, 0), server);
    server = -1;
}

START_TEST(publish_sends_the_channels_and_body)
{
    const char *ch[] = {"u.alice", "all", "queue"};
    const char body[] = "{\"type\":\"task.created\"}";
    char *req;
    int status;

    serve_once("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}");
    ck_assert_int_eq(fm_nchan_publish(sock, ch, 3, body, strlen(body), 2000, &status), FM_OK);
    ck_assert_int_eq(status, 201);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_nonnull(strstr(req, "POST /u.alice,all,queue HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nConnection: close\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Length: 23\r\n"));
    ck_assert_str_eq(strstr(req, "\r\n\r\n") + 4, body);
    free(req);
}
END_TEST

START_TEST(publish_answers)
{
    const char *ch[] = {"all"};
    int status;

    serve_once("HTTP/1.1 202 Accepted\r\n\r\n");
    ck_assert_int_eq(fm_nchan_publish(sock, ch, 1, "{}", 2, 2000, &status), FM_OK);
    ck_assert_int_eq(status, 202);
    reap();
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 500 Internal Server Error\r\n\r\n");
    ck_assert_int_eq(fm_nchan_publish(sock, ch, 1, "{}", 2, 2000, &status), FM_ECONFLICT);
    ck_assert_int_eq(status, 500);
    reap();
}
END_TEST

START_TEST(delete_deleted_or_unknown)
{
    char *req;
    int status;

    serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
    ck_assert_int_eq(fm_nchan_delete(sock, "c.0123abcd", 2000, &status), FM_OK);
    ck_assert_int_eq(status, 404);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_nonnull(strstr(req, "DELETE /c.0123abcd HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Length: 0\r\n"));
    free(req);
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.0 200 OK\r\n\r\n");
    ck_assert_int_eq(fm_nchan_delete(sock, "c.0123abcd", 2000, &status), FM_OK);
    ck_assert_int_eq(status, 200);
    reap();
}
END_TEST

START_TEST(exists_by_info)
{
    char *req;
    bool exists = false;

    serve_once("HTTP/1.1 200 OK\r\n\r\n{\"messages\": 0, \"subscribers\": 0}");
    ck_assert_int_eq(fm_nchan_exists(sock, "c.0a", 2000, &exists), FM_OK);
    ck_assert(exists);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_nonnull(strstr(req, "GET /c.0a HTTP/1.1\r\n"));
    free(req);
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
    ck_assert_int_eq(fm_nchan_exists(sock, "c.0a", 2000, &exists), FM_OK);
    ck_assert(!exists);
    reap();
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 403 Forbidden\r\n\r\n");
    exists = true;
    ck_assert_int_eq(fm_nchan_exists(sock, "c.0a", 2000, &exists), FM_ECONFLICT);
    ck_assert(!exists);
    reap();
}
END_TEST

START_TEST(bad_channels_refused_before_connecting)
{
    const char *comma[] = {"u.a,all"}, *slash[] = {"u/../x"}, *empty[] = {""}, *ok[] = {"all"};
    char longer[FM_NCHAN_CHANNEL_MAX + 1];
    const char *too_long[] = {longer};
    int status = 7;

    memset(longer, 'a', FM_NCHAN_CHANNEL_MAX);
    longer[FM_NCHAN_CHANNEL_MAX] = '\0';
    ck_assert(!fm_nchan_channel_ok("u.a,all"));
    ck_assert(!fm_nchan_channel_ok("a b"));
    ck_assert(fm_nchan_channel_ok("u.alice-1_x"));
    /* No server: a refusal here is not a failed connection. */
    ck_assert_int_eq(fm_nchan_publish(sock, comma, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(fm_nchan_publish(sock, slash, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(sock, empty, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(sock, too_long, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(sock, ok, 0, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(sock, ok, FM_NCHAN_CHANNELS_MAX + 1, "{}", 2, 500, &status),
                     FM_EINVAL);
    ck_assert_int_eq(fm_nchan_delete(sock, "c.a,all", 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(sock, ok, 1, "{}", 2, 0, &status), FM_EINVAL);
}
END_TEST

START_TEST(no_server_fails_at_once)
{
    const char *ch[] = {"all"};
    double t0 = th_now();
    int status = 7;

    ck_assert_int_eq(fm_nchan_publish(sock, ch, 1, "{}", 2, 2000, &status), FM_ESYS);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(status, 0);
    ck_assert(th_now() - t0 < 0.5);
}
END_TEST

START_TEST(silent_server_bounded_by_the_deadline)
{
    const char *ch[] = {"all"};
    double t0;
    int status;

    serve_once(NULL);
    t0 = th_now();
    ck_assert_int_eq(fm_nchan_publish(sock, ch, 1, "{}", 2, 300, &status), FM_ESYS);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert(th_now() - t0 >= 0.29);
    ck_assert(th_now() - t0 < 1.5);
}
END_TEST

START_TEST(answer_that_is_not_http)
{
    const char *ch[] = {"all"};
    int status;

    serve_once("SSH-2.0-OpenSSH\r\n");
    ck_assert_int_eq(fm_nchan_publish(sock, ch, 1, "{}", 2, 2000, &status), FM_ESYS);
    ck_assert_int_eq(errno, EPROTO);
    reap();
}
END_TEST

static Suite *nchan_suite(void)
{
    Suite *s = suite_create("nchan");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, publish_sends_the_channels_and_body);
    tcase_add_test(tc, publish_answers);
    tcase_add_test(tc, delete_deleted_or_unknown);
    tcase_add_test(tc, exists_by_info);
    tcase_add_test(tc, bad_channels_refused_before_connecting);
    tcase_add_test(tc, no_server_fails_at_once);
    tcase_add_test(tc, silent_server_bounded_by_the_deadline);
    tcase_add_test(tc, answer_that_is_not_http);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(nchan_suite)
