/*
 * test_auditwire.c - records sent to the audit logger: a sender's records
 * are written by the logger and acknowledged; what the logger refuses
 * (fields that are not a record's, a message that is not one, a record read
 * after its deadline); a logger that went away, and its successor on the
 * same listening socket.
 */
#include "audit.h"
#include "metrics.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static char dir[64], path[128];
static fm_audit_shared *shared;
static int lfd;
static fm_audit_endpoint ep;

static void setup(void)
{
    fm_metrics_attach(fm_metrics_create(1));
    (void)snprintf(dir, sizeof dir, "/tmp/test_auditwire.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    (void)snprintf(path, sizeof path, "%s/audit.log", dir);
    shared = fm_audit_shared_create(path);
    ck_assert_ptr_nonnull(shared);
    ck_assert_int_eq(fm_audit_endpoint_open(&lfd, &ep), FM_OK);
}

static void teardown(void)
{
    char cmd[128];

    (void)close(lfd);
    fm_audit_shared_free(shared);
    (void)snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/*
 * A logger in a child: accepts one connection and serves up to n messages
 * on it (n < 0: reads one and exits without answering), then exits.
 */
static pid_t logger(int n)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fm_audit *a = fm_audit_open(path, shared);
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int c = poll(&p, 1, 10000) == 1 ? accept(lfd, NULL, NULL) : -1;

        if (a == NULL || c < 0)
            _exit(2);
        if (n < 0) {
            char buf[FM_AUDIT_LINE_MAX];
            _exit(recv(c, buf, sizeof buf, 0) > 0 ? 0 : 3);
        }
        p.fd = c;
        for (int i = 0; i < n && poll(&p, 1, 10000) == 1; i++)
            if (fm_audit_serve(a, c) != FM_OK)
                break;
        fm_audit_close(a);
        _exit(0);
    }
    return pid;
}

static int lines_in(const char *p)
{
    FILE *f = fopen(p, "r");
    int n = 0, c;

    if (f == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    (void)fclose(f);
    return n;
}

static void reap(pid_t pid)
{
    int status;

    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

static const fm_audit_record rec = {.trace_id = "t1",
                                    .user = "alice",
                                    .action = "GET /x",
                                    .resource = "/x",
                                    .source_ip = "10.0.0.1",
                                    .status = 200};

START_TEST(test_records_acknowledged)
{
    pid_t pid = logger(3);
    fm_audit *a = fm_audit_connect(path, &ep);
    char cmd[256];

    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(fm_audit_ready(a), FM_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(fm_audit_write(a, &rec), FM_OK);
    ck_assert_int_eq(lines_in(path), 3); /* written before the answer */
    fm_audit_close(a);
    reap(pid);
    (void)snprintf(cmd, sizeof cmd, "grep -c '\"user\":\"alice\"' %s >/dev/null", path);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The largest record a sender makes (every field cut) passes the logger's check. */
START_TEST(test_largest_record)
{
    static char big[5000];
    pid_t pid = logger(1);
    fm_audit *a = fm_audit_connect(path, &ep);
    fm_audit_record r;
    char prev[65] = "", err[256], line[FM_AUDIT_LINE_MAX + 2];
    long long seq = 0;
    FILE *f;

    memset(big, '\x01', sizeof big - 1); /* escaped six-fold: cut in every field */
    r = (fm_audit_record){big, big, big, big, big,  big,        500,  big,
                          big, big, big, big, true, UINT64_MAX, false};
    ck_assert_int_eq(fm_audit_write(a, &r), FM_OK);
    reap(pid);
    ck_assert_ptr_nonnull(f = fopen(path, "r"));
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    (void)fclose(f);
    ck_assert_uint_gt(strlen(line), FM_AUDIT_LINE_MAX - 600);
    ck_assert_int_eq(fm_audit_verify_line(line, strlen(line), prev, &seq, err, sizeof err), FM_OK);
    fm_audit_close(a);
}
END_TEST

/* A sender's handle on the trail: no descriptor of it is the audit file. */
START_TEST(test_sender_holds_no_file)
{
    fm_audit *a = fm_audit_connect(path, &ep);
    struct stat file, st;
    char fdpath[64];

    ck_assert_ptr_nonnull(a);
    {
        fm_audit *w = fm_audit_open(path, shared); /* make the file exist */
        ck_assert_ptr_nonnull(w);
        fm_audit_close(w);
    }
    ck_assert_int_eq(stat(path, &file), 0);
    for (int fd = 0; fd < 1024; fd++) {
        (void)snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        if (stat(fdpath, &st) == 0)
            ck_assert(!(st.st_dev == file.st_dev && st.st_ino == file.st_ino));
    }
    fm_audit_close(a);
}
END_TEST

/* A whole record's fields as a sender makes them, with USER as the user's value. */
#define FIELDS_WITH_USER(user)                                                                     \
    "\"trace_id\":null,\"user\":" user ",\"key_id\":null,\"action\":\"GET /\",\"resource\":\"/\"," \
    "\"source_ip\":null,\"result\":\"success\",\"status\":200,\"reason\":null,\"prev_hash\":\""

START_TEST(test_fields_refused)
{
    static const char *const bad[] = {
        "\"trace_id\":null,\"user\":\"a\nb\",\"prev_hash\":\"",    /* a newline */
        "\"trace_id\":null,\"seq\":7,\"prev_hash\":\"",            /* a key the logger adds */
        "\"trace_id\":null,\"signature\":\"00\",\"prev_hash\":\"", /* a forged checkpoint */
        "\"trace_id\":null,\"prev_hash\":\"00\",\"user\":1,\"prev_hash\":\"", /* prev_hash twice */
        "\"trace_id\":null,\"user\":\"x,\"prev_hash\":\"",                    /* not JSON */
        "\"user\":null,\"prev_hash\":\"",  /* not a record's start */
        "\"trace_id\":null,\"user\":null", /* no prev_hash at its end */
    };
    static const char good[] = FIELDS_WITH_USER("\"a\"");
    fm_audit *a = fm_audit_open(path, shared);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(fm_audit_append(a, bad[i], strlen(bad[i])) == FM_EINVAL, "%s", bad[i]);
    ck_assert_int_eq(lines_in(path), 0);
    ck_assert_int_eq(fm_audit_append(a, good, strlen(good)), FM_OK);
    ck_assert_int_eq(lines_in(path), 1);
    fm_audit_close(a);
}
END_TEST

/*
 * What format_fields never makes and a taken-over sender could still send
 * (review s16-attack): bytes a reader may take for a line break or that
 * reorder the line on screen (U+2028, U+202E, C1 controls), bytes that are
 * not UTF-8, a key twice (cJSON reads the first, jq the last: two readers,
 * two users) and a value that is not a string, number or null.
 */
START_TEST(test_fields_refused_unicode)
{
    static const char *const bad[] = {
        FIELDS_WITH_USER("\"a\xe2\x80\xa8"
                         "b\""), /* U+2028 */
        FIELDS_WITH_USER("\"a\xe2\x80\xae"
                         "b\""), /* U+202E */
        FIELDS_WITH_USER("\"a\xc2\x9b"
                         "b\""),                                    /* C1 CSI */
        FIELDS_WITH_USER("\"a\xff\xfe\""),                          /* not UTF-8 */
        FIELDS_WITH_USER("\"bob\",\"user\":\"admin\""),             /* key twice */
        FIELDS_WITH_USER("{\"x\":1,\"hash\":\"00\"}"),              /* an object */
        FIELDS_WITH_USER("null,\"owner\":\"x\",\"task_id\":\"y\""), /* out of order */
        FIELDS_WITH_USER("null,\"ts\":\"2026\""),                   /* a key of the logger's */
        FIELDS_WITH_USER("null,\"extra\":1"),                       /* an unknown key */
        "\"trace_id\":null,\"user\":null,\"key_id\":null,\"action\":\"CHECKPOINT\","
        "\"resource\":\"audit\",\"source_ip\":null,\"result\":\"success\",\"status\":200,"
        "\"reason\":null,\"prev_hash\":\"", /* an unsigned checkpoint: only the logger writes one */
        "\"trace_id\":null,\"user\":null,\"key_id\":null,\"action\":\"GET /\",\"resource\":\"/\","
        "\"source_ip\":null,\"result\":\"maybe\",\"status\":200,\"reason\":null,\"prev_hash\":\"",
        "\"trace_id\":null,\"user\":null,\"key_id\":null,\"action\":\"GET /\",\"resource\":\"/\","
        "\"source_ip\":null,\"result\":\"success\",\"status\":\"200\",\"reason\":null,\"prev_"
        "hash\":\"",
        "\"trace_id\":null,\"user\":null,\"action\":\"GET /\",\"prev_hash\":\"", /* fields missing
                                                                                  */
    };
    /* The same with a plain user, and with every optional field: taken. */
    static const char *const good[] = {
        FIELDS_WITH_USER("\"a\xc3\xa9\""), /* UTF-8 that is safe stays raw */
        "\"trace_id\":\"t\",\"user\":\"a\",\"key_id\":\"k\",\"action\":\"GET "
        "/x\",\"resource\":\"/x\","
        "\"source_ip\":\"::1\",\"result\":\"failure\",\"status\":200,\"reason\":\"transfer_cut_"
        "off\","
        "\"task_id\":\"i\",\"worker\":\"w\",\"permission\":\"experiments:read\",\"owner\":\"o\","
        "\"bytes\":12,\"truncated\":[\"action\"],\"prev_hash\":\"",
    };
    fm_audit *a = fm_audit_open(path, shared);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(fm_audit_append(a, bad[i], strlen(bad[i])) == FM_EINVAL, "accepted: %s",
                      bad[i]);
    ck_assert_int_eq(lines_in(path), 0);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(fm_audit_append(a, good[i], strlen(good[i])) == FM_OK, "refused: %s",
                      good[i]);
    ck_assert_int_eq(lines_in(path), 2);
    fm_audit_close(a);
}
END_TEST

START_TEST(test_not_a_message)
{
    fm_audit *a = fm_audit_open(path, shared);
    int c = socket(AF_UNIX, SOCK_SEQPACKET, 0), s;
    char answer[8];

    ck_assert_int_eq(connect(c, (const struct sockaddr *)&ep.addr, ep.len), 0);
    ck_assert_int_ge(s = accept(lfd, NULL, NULL), 0);
    ck_assert_int_eq(send(c, "garbage", 7, 0), 7);
    ck_assert_int_eq(fm_audit_serve(a, s), FM_EPARSE);
    ck_assert_int_eq(recv(c, answer, sizeof answer, 0), 8); /* answered, then hung up on */
    ck_assert_int_eq(fm_audit_serve(a, s), FM_OK);          /* nothing waiting */
    (void)close(c);
    ck_assert_int_eq(fm_audit_serve(a, s), FM_ENOTFOUND);
    ck_assert_int_eq(lines_in(path), 0);
    (void)close(s);
    fm_audit_close(a);
}
END_TEST

/* A logger that stalls past the deadline: the sender fails closed, and the record is not written.
 */
START_TEST(test_deadline)
{
    pid_t pid = logger(2);
    fm_audit *a = fm_audit_connect(path, &ep);
    struct timespec t0, t1;

    ck_assert_int_eq(fm_audit_write(a, &rec), FM_OK);
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(fm_audit_write(a, &rec), FM_ESYS);
    ck_assert_int_eq(errno, ETIMEDOUT);
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_ge((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000,
                     FM_AUDIT_ACK_MS);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    reap(pid); /* it read the stale record and refused it, then saw the sender hang up */
    ck_assert_int_eq(lines_in(path), 1);
    fm_audit_close(a);
}
END_TEST

/* The logger dies after reading a record: the sender is told (it may have been written). */
START_TEST(test_logger_dies_after_reading)
{
    pid_t pid = logger(-1);
    fm_audit *a = fm_audit_connect(path, &ep);

    ck_assert_int_eq(fm_audit_write(a, &rec), FM_ESYS);
    ck_assert_int_eq(errno, EIO);
    reap(pid);
    fm_audit_close(a);
}
END_TEST

/* A logger replaced between two records: the second goes to its successor, sent once. */
START_TEST(test_logger_replaced)
{
    pid_t pid = logger(1);
    fm_audit *a = fm_audit_connect(path, &ep);

    ck_assert_int_eq(fm_audit_write(a, &rec), FM_OK);
    reap(pid); /* served one, exited: the connection's peer is gone */
    pid = logger(1);
    ck_assert_int_eq(fm_audit_write(a, &rec), FM_OK);
    reap(pid);
    ck_assert_int_eq(lines_in(path), 2);
    fm_audit_close(a);
}
END_TEST

static Suite *auditwire_suite(void)
{
    Suite *s = suite_create("auditwire");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_records_acknowledged);
    tcase_add_test(tc, test_largest_record);
    tcase_add_test(tc, test_sender_holds_no_file);
    tcase_add_test(tc, test_fields_refused);
    tcase_add_test(tc, test_fields_refused_unicode);
    tcase_add_test(tc, test_not_a_message);
    tcase_add_test(tc, test_deadline);
    tcase_add_test(tc, test_logger_dies_after_reading);
    tcase_add_test(tc, test_logger_replaced);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(auditwire_suite)
