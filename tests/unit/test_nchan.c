/*
 * test_nchan.c - lib/base/nchan.c against a fake publisher on a unix socket
 * (a forked child that answers what the test says, keeps the last request it
 * got and counts connections): the request sent (method, channels, headers,
 * body), each answer's outcome (publish, delete, exists), the connection kept
 * between calls and ended when an answer says so, one retry when the server
 * closed an idle connection, a bad channel refused before any connection,
 * no server, a server that never answers (the deadline holds), and an answer
 * that is not HTTP. The publisher token: sent in its header on every request
 * when the handle has one (and no header without), nginx's 403 an error; a
 * token file read (its mode, its shape, its offset left alone, nothing of it
 * in the message) and made (both files new, 0600, nginx's verifier the
 * base64url MD5 of the token).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "helpers.h"
#include "nchan.h"

static char dir[TH_PATH_MAX], sock[TH_PATH_MAX], seen[TH_PATH_MAX];
static pid_t server = -1;
static fm_nchan *nc;

static void setup(void)
{
    th_mkdtemp(dir, "test_nchan");
    th_path(sock, dir, "nchan.sock");
    th_path(seen, dir, "request");
    nc = fm_nchan_open(sock, NULL);
    ck_assert_ptr_nonnull(nc);
}

static void teardown(void)
{
    if (server > 0) {
        (void)kill(server, SIGKILL);
        (void)waitpid(server, NULL, 0);
        server = -1;
    }
    fm_nchan_close(nc);
    nc = NULL;
    th_rmtree(dir);
}

/* Reads one request (head, and a body as long as its Content-Length) into buf; its length, 0 at
 * EOF. */
static size_t read_request(int c, char *buf, size_t cap)
{
    size_t have = 0;

    for (;;) {
        ssize_t r = read(c, buf + have, cap - 1 - have);
        char *end;
        if (r <= 0)
            return 0;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(buf, "Content-Length: ");
            size_t want = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
            if (have >= (size_t)(end + 4 - buf) + want)
                return have;
        }
    }
}

/*
 * A server that answers n requests in turn with answers[] (a NULL answer: it
 * never answers), all on one connection except that after answering the one
 * at close_after (-1: none) it closes that connection, as nginx does with an
 * idle one, and takes the rest on a new one; the connection is also closed
 * after the last answer. It stores the last request it read in seen, and
 * "<connections> <requests>" in seen.count.
 */
static void serve(const char *const *answers, size_t n, int close_after)
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
        char buf[8192], count_path[TH_PATH_MAX + 8];
        int conns = 0, reqs = 0, c = -1;
        FILE *f;

        (void)snprintf(count_path, sizeof(count_path), "%s.count", seen);
        for (size_t i = 0; i < n; i++) {
            size_t have;

            if (c < 0) {
                if ((c = accept(fd, NULL, NULL)) < 0)
                    _exit(1);
                conns++;
            }
            if ((have = read_request(c, buf, sizeof(buf))) == 0)
                _exit(1);
            reqs++;
            f = fopen(seen, "w");
            if (f != NULL) {
                (void)fwrite(buf, 1, have, f);
                (void)fclose(f);
            }
            f = fopen(count_path, "w");
            if (f != NULL) {
                (void)fprintf(f, "%d %d", conns, reqs);
                (void)fclose(f);
            }
            if (answers[i] == NULL)
                pause();
            if (write(c, answers[i], strlen(answers[i])) < 0)
                _exit(1);
            if ((int)i == close_after) {
                (void)close(c);
                c = -1;
            }
        }
        if (c >= 0)
            (void)close(c);
        _exit(0);
    }
    (void)close(fd);
}

/* A server that takes one connection, stores the request it got, then answers (NULL: never). */
static void serve_once(const char *answer)
{
    serve(&answer, 1, -1);
}

/* What serve counted: "<connections> <requests>". */
static char *served(void)
{
    char path[TH_PATH_MAX + 8];

    (void)snprintf(path, sizeof(path), "%s.count", seen);
    return th_read_file(path);
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
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 3, body, strlen(body), 2000, &status), FM_OK);
    ck_assert_int_eq(status, 201);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_nonnull(strstr(req, "POST /u.alice,all,queue HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_null(strstr(req, "Connection: close"));
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
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_OK);
    ck_assert_int_eq(status, 202);
    reap();
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 500 Internal Server Error\r\n\r\n");
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_ECONFLICT);
    ck_assert_int_eq(status, 500);
    reap();
}
END_TEST

START_TEST(delete_deleted_or_unknown)
{
    char *req;
    int status;

    serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
    ck_assert_int_eq(fm_nchan_delete(nc, "c.0123abcd", 2000, &status), FM_OK);
    ck_assert_int_eq(status, 404);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_nonnull(strstr(req, "DELETE /c.0123abcd HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Length: 0\r\n"));
    free(req);
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.0 200 OK\r\n\r\n");
    ck_assert_int_eq(fm_nchan_delete(nc, "c.0123abcd", 2000, &status), FM_OK);
    ck_assert_int_eq(status, 200);
    reap();
}
END_TEST

START_TEST(exists_by_info)
{
    char *req;
    bool exists = false;
    int status;

    serve_once("HTTP/1.1 200 OK\r\n\r\n{\"messages\": 0, \"subscribers\": 0}");
    ck_assert_int_eq(fm_nchan_exists(nc, "c.0a", 2000, &exists, &status), FM_OK);
    ck_assert(exists);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_nonnull(strstr(req, "GET /c.0a HTTP/1.1\r\n"));
    free(req);
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
    ck_assert_int_eq(fm_nchan_exists(nc, "c.0a", 2000, &exists, &status), FM_OK);
    ck_assert(!exists);
    reap();
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 403 Forbidden\r\n\r\n");
    exists = true;
    ck_assert_int_eq(fm_nchan_exists(nc, "c.0a", 2000, &exists, &status), FM_ECONFLICT);
    ck_assert(!exists);
    ck_assert_int_eq(status, 403);
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
    ck_assert_int_eq(fm_nchan_publish(nc, comma, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(fm_nchan_publish(nc, slash, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(nc, empty, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(nc, too_long, 1, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(nc, ok, 0, "{}", 2, 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(nc, ok, FM_NCHAN_CHANNELS_MAX + 1, "{}", 2, 500, &status),
                     FM_EINVAL);
    ck_assert_int_eq(fm_nchan_delete(nc, "c.a,all", 500, &status), FM_EINVAL);
    ck_assert_int_eq(fm_nchan_publish(nc, ok, 1, "{}", 2, 0, &status), FM_EINVAL);
}
END_TEST

START_TEST(no_server_fails_at_once)
{
    const char *ch[] = {"all"};
    double t0 = th_now();
    int status = 7;

    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_ESYS);
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
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 300, &status), FM_ESYS);
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
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_ESYS);
    ck_assert_int_eq(errno, EPROTO);
    reap();
}
END_TEST

/* Answers with a Content-Length keep the connection: three exchanges, one connection. */
START_TEST(connection_kept_between_calls)
{
    static const char accepted[] = "HTTP/1.1 202 Accepted\r\nContent-Type: text/json\r\n"
                                   "Content-Length: 14\r\n\r\n{\"messages\":1}";
    const char *ch[] = {"all"};
    const char *answers[] = {
        accepted,
        "HTTP/1.1 404 Not Found\r\ncontent-length:  0\r\n\r\n",
        "HTTP/1.1 201 Created\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"};
    char *count;
    int status;

    serve(answers, 3, -1);
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_OK);
    ck_assert_int_eq(status, 202);
    ck_assert_int_eq(fm_nchan_delete(nc, "c.0a", 2000, &status), FM_OK);
    ck_assert_int_eq(status, 404);
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_OK);
    ck_assert_int_eq(status, 201);
    reap();
    count = served();
    ck_assert_str_eq(count, "1 3");
    free(count);
}
END_TEST

/* The server closed the kept connection while idle: the call is made once more, on a new one. */
START_TEST(idle_close_retried_once_on_a_new_connection)
{
    const char *ch[] = {"all"};
    const char *answers[] = {"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                             "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"};
    char *count, *req;
    int status;

    serve(answers, 2, 0);
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{\"n\":1}", 7, 2000, &status), FM_OK);
    usleep(100 * 1000); /* the server has closed the first connection */
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{\"n\":2}", 7, 2000, &status), FM_OK);
    ck_assert_int_eq(status, 202);
    reap();
    count = served();
    ck_assert_str_eq(count, "2 2"); /* the second request reached the server once */
    free(count);
    req = th_read_file(seen);
    ck_assert_str_eq(strstr(req, "\r\n\r\n") + 4, "{\"n\":2}");
    free(req);
}
END_TEST

/* Connection: close, HTTP/1.0, no length, a Transfer-Encoding: the next call connects again. */
START_TEST(connection_ends_when_the_answer_says_so)
{
    const char *ch[] = {"all"};
    const char *ends[] = {
        "HTTP/1.1 201 Created\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 201 Created\r\n\r\n",
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 201 Created\r\nContent-Length: 1x\r\n\r\n{}",
        "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n{}"};

    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        const char *answers[] = {ends[i], "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"};
        char *count;
        int status;

        /* A server that would keep both on one connection: the client must not. */
        serve(answers, 2, -1);
        ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_OK);
        ck_assert_int_eq(status, 201);
        ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 500, &status), FM_ESYS);
        (void)kill(server, SIGKILL);
        reap();
        count = served();
        ck_assert_msg(strcmp(count, "1 1") == 0, "answer %zu: served %s", i, count);
        free(count);
        ck_assert_int_eq(unlink(sock), 0);
    }
}
END_TEST

/* An answer whose body is longer than its Content-Length says, or a head over 4 KiB: EPROTO or
 * closed. */
START_TEST(oversized_head_refused)
{
    const char *ch[] = {"all"};
    char big[6000];
    int status;

    (void)snprintf(big, sizeof(big), "HTTP/1.1 201 Created\r\nX-Pad: %05000d\r\n\r\n", 0);
    serve_once(big);
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_ESYS);
    ck_assert_int_eq(errno, EPROTO);
    reap();
}
END_TEST

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

START_TEST(token_sent_with_every_request)
{
    const char *answers[] = {"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"};
    const char *ch[] = {"u.alice"};
    fm_nchan *t = fm_nchan_open(sock, TOKEN);
    char *req;
    int status;

    ck_assert_ptr_nonnull(t);
    serve(answers, 2, -1);
    ck_assert_int_eq(fm_nchan_publish(t, ch, 1, "{}", 2, 2000, &status), FM_OK);
    ck_assert_int_eq(fm_nchan_delete(t, "c.0a", 2000, &status), FM_OK);
    reap();
    req = th_read_file(seen); /* the last one: the DELETE */
    ck_assert_ptr_nonnull(strstr(req, "DELETE /c.0a HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\n" FM_NCHAN_TOKEN_HEADER ": " TOKEN "\r\n"));
    free(req);
    fm_nchan_close(t);
    /* Without a token, no such header. */
    ck_assert_int_eq(unlink(sock), 0);
    serve_once("HTTP/1.1 201 Created\r\n\r\n");
    ck_assert_int_eq(fm_nchan_publish(nc, ch, 1, "{}", 2, 2000, &status), FM_OK);
    reap();
    req = th_read_file(seen);
    ck_assert_ptr_null(strstr(req, FM_NCHAN_TOKEN_HEADER));
    free(req);
}
END_TEST

START_TEST(token_refused_is_an_error)
{
    const char *answers[] = {"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                             "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"};
    const char *ch[] = {"all"};
    fm_nchan *t = fm_nchan_open(sock, TOKEN);
    int status;

    ck_assert_ptr_nonnull(t);
    serve(answers, 2, -1);
    ck_assert_int_eq(fm_nchan_publish(t, ch, 1, "{}", 2, 2000, &status), FM_ECONFLICT);
    ck_assert_int_eq(status, 403);
    ck_assert_int_eq(fm_nchan_delete(t, "c.0a", 2000, &status), FM_ECONFLICT);
    ck_assert_int_eq(status, 403);
    reap();
    fm_nchan_close(t);
}
END_TEST

START_TEST(bad_tokens_refused_at_open)
{
    const char *bad[] = {"", "0123", TOKEN "0",
                         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        ck_assert_msg(fm_nchan_open(sock, bad[i]) == NULL, "token %zu accepted", i);
        ck_assert_int_eq(errno, EINVAL);
    }
}
END_TEST

/* Writes text to dir/name with mode; an open descriptor of it. */
static int token_file(const char *text, mode_t mode)
{
    char path[TH_PATH_MAX];
    int fd;

    th_path(path, dir, "token");
    (void)unlink(path);
    th_write_file(path, text);
    ck_assert_int_eq(chmod(path, mode), 0);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

START_TEST(token_file_read)
{
    const char *bad[] = {"", TOKEN "\n\n", TOKEN "0",
                         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
                         "secret-0123456789abcdef0123456789abcdef0123456789abcdef012345678\n"};
    char token[FM_NCHAN_TOKEN_SIZE], err[256];
    int fd;

    fd = token_file(TOKEN "\n", 0600);
    ck_assert_int_eq(lseek(fd, 7, SEEK_SET), 7);
    ck_assert_int_eq(fm_nchan_token_read(fd, token, err, sizeof(err)), FM_OK);
    ck_assert_str_eq(token, TOKEN);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 7); /* pread: a shared offset is left alone */
    (void)close(fd);
    fd = token_file(TOKEN, 0400);
    ck_assert_int_eq(fm_nchan_token_read(fd, token, err, sizeof(err)), FM_OK);
    ck_assert_str_eq(token, TOKEN);
    (void)close(fd);
    fd = token_file(TOKEN "\n", 0640);
    ck_assert_int_eq(fm_nchan_token_read(fd, token, err, sizeof(err)), FM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "only its owner may read"));
    ck_assert_str_eq(token, "");
    (void)close(fd);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = token_file(bad[i], 0600);
        ck_assert_msg(fm_nchan_token_read(fd, token, err, sizeof(err)) == FM_EPARSE,
                      "file %zu accepted", i);
        ck_assert_str_eq(token, "");
        ck_assert_ptr_null(strstr(err, "0123"));
        ck_assert_ptr_null(strstr(err, "secret"));
        (void)close(fd);
    }
    ck_assert_int_eq(fm_nchan_token_read(-1, token, err, sizeof(err)), FM_ESYS);
}
END_TEST

START_TEST(token_made_with_nginx_check)
{
    char tpath[TH_PATH_MAX], npath[TH_PATH_MAX], err[512], token[FM_NCHAN_TOKEN_SIZE], want[64],
        line[128];
    unsigned char md5[16];
    unsigned int mdlen = 0;
    struct stat st;
    char *conf;
    int fd;

    th_path(tpath, dir, "publisher-token");
    th_path(npath, dir, "publisher-token.conf");
    ck_assert_int_eq(fm_nchan_token_new(tpath, npath, err, sizeof(err)), FM_OK);
    ck_assert_int_eq(stat(tpath, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(npath, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    fd = open(tpath, O_RDONLY | O_CLOEXEC);
    ck_assert_int_eq(fm_nchan_token_read(fd, token, err, sizeof(err)), FM_OK);
    (void)close(fd);
    ck_assert_int_eq(EVP_Digest(token, FM_NCHAN_TOKEN_LEN, md5, &mdlen, EVP_md5(), NULL), 1);
    (void)sodium_bin2base64(want, sizeof(want), md5, sizeof(md5),
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    (void)snprintf(line, sizeof(line), "\nsecure_link \"%s\";\n", want);
    conf = th_read_file(npath);
    ck_assert_msg(strstr(conf, line) != NULL, "%s", conf);
    ck_assert_ptr_null(strstr(conf, token));
    free(conf);
    /* Never over a file that exists; a failed second file leaves no first one. */
    ck_assert_int_eq(fm_nchan_token_new(tpath, npath, err, sizeof(err)), FM_ESYS);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(unlink(tpath), 0);
    ck_assert_int_eq(fm_nchan_token_new(tpath, npath, err, sizeof(err)), FM_ESYS);
    ck_assert_ptr_nonnull(strstr(err, npath));
    ck_assert_int_eq(access(tpath, F_OK), -1);
}
END_TEST

static Suite *nchan_suite(void)
{
    Suite *s = suite_create("nchan");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, publish_sends_the_channels_and_body);
    tcase_add_test(tc, connection_kept_between_calls);
    tcase_add_test(tc, idle_close_retried_once_on_a_new_connection);
    tcase_add_test(tc, connection_ends_when_the_answer_says_so);
    tcase_add_test(tc, oversized_head_refused);
    tcase_add_test(tc, publish_answers);
    tcase_add_test(tc, delete_deleted_or_unknown);
    tcase_add_test(tc, exists_by_info);
    tcase_add_test(tc, bad_channels_refused_before_connecting);
    tcase_add_test(tc, no_server_fails_at_once);
    tcase_add_test(tc, silent_server_bounded_by_the_deadline);
    tcase_add_test(tc, answer_that_is_not_http);
    tcase_add_test(tc, token_sent_with_every_request);
    tcase_add_test(tc, token_refused_is_an_error);
    tcase_add_test(tc, bad_tokens_refused_at_open);
    tcase_add_test(tc, token_file_read);
    tcase_add_test(tc, token_made_with_nginx_check);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(nchan_suite)
