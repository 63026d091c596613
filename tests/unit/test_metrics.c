/*
 * test_metrics.c - the shared counters: exact sums over forked processes
 * (each counting concurrently), a child that dies keeps its counts, pool slots
 * taken and freed, and the exposition: families once, escaped label values,
 * cumulative buckets ending in +Inf with _count equal to it. Also listenq:
 * the accept queue of a unix or TCP listening socket with connections waiting.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "listenq.h"
#include "metrics.h"

#define CHILDREN 4
#define PER_CHILD 20000

static fm_metrics *m;

static void setup(void)
{
    m = fm_metrics_create(3);
    ck_assert_ptr_nonnull(m);
    fm_metrics_attach(m);
}

static void teardown(void)
{
    fm_metrics_free(m);
    m = NULL;
}

static char *render(void)
{
    static const char *const routes[] = {"/a", "/b/{id}", "/a"}; /* GET and POST /a, say */
    fm_metrics_view v = {.routes = routes, .nroutes = 3, .version = "v\"1\\x\ny"};
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(fm_metrics_render(&v, &text, &len), FM_OK);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

START_TEST(sums_are_exact_over_processes)
{
    pid_t pids[CHILDREN];

    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] == 0) {
            for (int i = 0; i < PER_CHILD; i++) {
                fm_metrics_inc(FM_MET_GUARD_BLOCKS);
                fm_metrics_request(1, "POST", 201, 0.002);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ck_assert_int_eq(fm_metrics_get(FM_MET_GUARD_BLOCKS), CHILDREN * PER_CHILD);
    ck_assert_uint_eq(fm_metrics_request_count(1, "POST", 201), CHILDREN * PER_CHILD);
    ck_assert_uint_eq(fm_metrics_request_count(1, "GET", 201), 0);
}
END_TEST

START_TEST(a_killed_child_keeps_its_counts)
{
    pid_t pid = fork();
    int status;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fm_metrics_add(FM_MET_EVENTS_PUBLISHED, 7);
        (void)raise(SIGKILL);
        _exit(1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(fm_metrics_get(FM_MET_EVENTS_PUBLISHED), 7);
}
END_TEST

START_TEST(without_a_region_counting_is_off)
{
    static const char *const two[] = {"/a", "/b"};
    fm_metrics_view v = {.routes = two, .nroutes = 2};
    char *text;
    size_t len;

    ck_assert_int_eq(fm_metrics_render(&v, &text, &len), FM_EINVAL); /* not the region's table */
    fm_metrics_attach(NULL);
    fm_metrics_inc(FM_MET_RATE_LIMITED);
    fm_metrics_request(0, "GET", 200, 0.1);
    ck_assert_int_eq(fm_metrics_get(FM_MET_RATE_LIMITED), 0);
    fm_metrics_attach(m);
    ck_assert_int_eq(fm_metrics_get(FM_MET_RATE_LIMITED), 0);
    ck_assert_uint_eq(fm_metrics_request_count(0, "GET", 200), 0);
    ck_assert_ptr_null(fm_metrics_create(0));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(odd_methods_routes_and_statuses_stay_bounded)
{
    fm_metrics_request(99, "BREW", 999, -1);
    ck_assert_uint_eq(fm_metrics_request_count(3, "other", 500), 1);
    fm_metrics_request(0, NULL, 200, 0);
    ck_assert_uint_eq(fm_metrics_request_count(0, "FOO", 200), 1);
}
END_TEST

START_TEST(pool_slots_follow_workers)
{
    char *text;

    ck_assert(fm_metrics_worker_start(4242));
    fm_metrics_worker_busy(true);
    ck_assert(fm_metrics_worker_start(4343)); /* this process now owns the second slot */
    text = render();
    ck_assert_ptr_nonnull(strstr(text, "fetchml_pool_workers{state=\"busy\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "fetchml_pool_workers{state=\"idle\"} 1\n"));
    free(text);
    fm_metrics_worker_gone(4242); /* died busy: the master frees its slot */
    text = render();
    ck_assert_ptr_nonnull(strstr(text, "fetchml_pool_workers{state=\"busy\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "fetchml_pool_workers{state=\"idle\"} 1\n"));
    free(text);
}
END_TEST

/*
 * The pool's share for transfers: slots marked by begin count against max, in
 * any process of the pool; a refused begin leaves no mark; end and a reaped
 * worker's slot free the share; without a slot begin allows.
 */
START_TEST(transfers_share_of_the_pool)
{
    pid_t pid;
    int status;

    ck_assert(fm_metrics_transfer_begin(1)); /* no slot yet in this process: allowed */
    fm_metrics_transfer_end();
    ck_assert(fm_metrics_worker_start(5151));
    ck_assert(fm_metrics_transfer_begin(1)); /* this slot is the one transfer */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        bool ok = fm_metrics_worker_start(5252) && !fm_metrics_transfer_begin(1) &&
                  fm_metrics_transfer_begin(2);
        fm_metrics_transfer_end();
        _exit(ok ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fm_metrics_worker_gone(5252);
    ck_assert(fm_metrics_transfer_begin(1)); /* still the only one: the child's mark is gone */
    fm_metrics_transfer_end();
    /* A worker killed mid-transfer: its mark goes with its slot. */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (fm_metrics_worker_start(5353) && fm_metrics_transfer_begin(1))
            pause();
        _exit(1);
    }
    for (int i = 0; i < 200; i++) {
        if (!fm_metrics_transfer_begin(1)) /* the child holds the share */
            break;
        fm_metrics_transfer_end();
        usleep(10 * 1000);
    }
    ck_assert(!fm_metrics_transfer_begin(1));
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    fm_metrics_worker_gone(5353);
    ck_assert(fm_metrics_transfer_begin(1));
    fm_metrics_transfer_end();
}
END_TEST

/* The value of the line that starts with prefix, or -1. */
static double value_of(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);

    for (; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

START_TEST(exposition_is_well_formed)
{
    char *text;

    fm_metrics_request(0, "GET", 200, 0.0001);
    fm_metrics_request(0, "GET", 200, 0.003);
    fm_metrics_request(2, "GET", 404, 100); /* the pattern's other row: the same label */
    fm_metrics_redis_latency(0.02);
    fm_metrics_inc(FM_MET_AUTH_UNKNOWN_KEY);
    text = render();
    ck_assert_double_eq(
        value_of(text, "fetchml_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"}"),
        2);
    ck_assert_double_eq(
        value_of(text, "fetchml_http_requests_total{route=\"/a\",method=\"GET\",status=\"404\"}"),
        1);
    /* Cumulative: 1 at 0.5 ms, 2 from 5 ms on, 3 only at +Inf, which _count equals. */
    ck_assert_double_eq(
        value_of(text, "fetchml_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"}"),
        1);
    ck_assert_double_eq(
        value_of(text, "fetchml_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"}"),
        2);
    ck_assert_double_eq(
        value_of(text, "fetchml_http_request_duration_seconds_bucket{route=\"/a\",le=\"10\"}"), 2);
    ck_assert_double_eq(
        value_of(text, "fetchml_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"}"),
        3);
    ck_assert_double_eq(value_of(text, "fetchml_http_request_duration_seconds_count{route=\"/a\"}"),
                        3);
    ck_assert_double_eq(
        value_of(text,
                 "fetchml_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"}"),
        0);
    ck_assert_double_eq(value_of(text, "fetchml_redis_command_duration_seconds_count"), 1);
    ck_assert_double_eq(value_of(text, "fetchml_auth_failures_total{reason=\"unknown_key\"}"), 1);
    ck_assert_double_eq(value_of(text, "fetchml_config_last_reload_successful"), 1);
    /* A label value is escaped: backslash, quote and line feed. */
    ck_assert_ptr_nonnull(strstr(text, "fetchml_build_info{version=\"v\\\"1\\\\x\\ny\"} 1\n"));
    /* Each family is declared once, before its samples. */
    ck_assert_ptr_eq(strstr(text, "# TYPE fetchml_auth_failures_total counter"),
                     strstr(text, "# TYPE fetchml_auth_failures_total"));
    ck_assert_ptr_null(strstr(strstr(text, "# TYPE fetchml_auth_failures_total") + 1,
                              "# TYPE fetchml_auth_failures_total"));
    ck_assert_ptr_null(strstr(text, "fetchml_pool_listen_queue_length")); /* have_queue false */
    /* One route label per pattern: "/a" appears in one histogram only. */
    ck_assert_ptr_null(strstr(strstr(text, "_count{route=\"/a\"}") + 1, "_count{route=\"/a\"}"));
    free(text);
}
END_TEST

START_TEST(listen_queue_of_a_unix_socket)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[TH_PATH_MAX];
    int lfd, c[3];
    unsigned queued = 99, backlog = 0;

    th_mkdtemp(dir, "test_metrics");
    ck_assert_uint_lt(strlen(dir) + 2, sizeof(sa.sun_path));
    memcpy(sa.sun_path, dir, strlen(dir));
    memcpy(sa.sun_path + strlen(dir), "/s", 3);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(fm_listenq_read(lfd, &queued, &backlog), FM_EINVAL); /* not listening */
    ck_assert_int_eq(listen(lfd, 17), 0);
    ck_assert_int_eq(fm_listenq_read(lfd, &queued, &backlog), FM_OK);
    ck_assert_uint_eq(queued, 0);
    ck_assert_uint_eq(backlog, 17);
    for (int i = 0; i < 3; i++) {
        c[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(c[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
    ck_assert_int_eq(fm_listenq_read(lfd, &queued, &backlog), FM_OK);
    ck_assert_uint_eq(queued, 3);
    for (int i = 0; i < 3; i++)
        (void)close(c[i]);
    (void)close(lfd);
    ck_assert_int_eq(fm_listenq_read(0 + 1000, &queued, &backlog), FM_EINVAL); /* not open */
    th_rmtree(dir);
}
END_TEST

START_TEST(listen_queue_of_a_tcp_socket)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    unsigned queued = 99, backlog = 0;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), c[2];

    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    ck_assert_int_eq(listen(lfd, 9), 0);
    for (int i = 0; i < 2; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(c[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
    ck_assert_int_eq(fm_listenq_read(lfd, &queued, &backlog), FM_OK);
    ck_assert_uint_eq(queued, 2);
    ck_assert_uint_eq(backlog, 9);
    for (int i = 0; i < 2; i++)
        (void)close(c[i]);
    (void)close(lfd);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, sums_are_exact_over_processes);
    tcase_add_test(tc, a_killed_child_keeps_its_counts);
    tcase_add_test(tc, without_a_region_counting_is_off);
    tcase_add_test(tc, odd_methods_routes_and_statuses_stay_bounded);
    tcase_add_test(tc, pool_slots_follow_workers);
    tcase_add_test(tc, transfers_share_of_the_pool);
    tcase_add_test(tc, exposition_is_well_formed);
    tcase_add_test(tc, listen_queue_of_a_unix_socket);
    tcase_add_test(tc, listen_queue_of_a_tcp_socket);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(metrics_suite)
