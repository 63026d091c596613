/*
 * helpers.h - shared unit-test helpers, header-only because CMake builds each
 * tests/unit/test_*.c as its own executable.
 *
 * th_redis runs a private redis-server for one test: unix socket only (port
 * 0), a random password, no persistence, in its own temporary directory. The
 * server is started from a checked fixture, so it is a child of the forked
 * test process; PR_SET_PDEATHSIG kills it if that process dies on a failed
 * assertion before its teardown runs.
 */
#ifndef FM_TEST_HELPERS_H
#define FM_TEST_HELPERS_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define TH_PATH_MAX 256

/* ---- time ---------------------------------------------------------------------- */

static inline double th_now(void)
{
    struct timespec ts;

    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void th_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- files --------------------------------------------------------------------- */

/* The run's base directory, made by th_run_begin in the runner and inherited by each test. */
static char th_base[TH_PATH_MAX];

/* Creates a fresh directory <base>/<name>.XXXXXX (base: th_run_begin's, else /tmp) into dir. */
static inline void th_mkdtemp(char dir[TH_PATH_MAX], const char *name)
{
    ck_assert_int_lt(
        snprintf(dir, TH_PATH_MAX, "%s/%s.XXXXXX", th_base[0] ? th_base : "/tmp", name),
        TH_PATH_MAX);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline int th_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (no symlinks are followed). */
static inline void th_rmtree(const char *dir)
{
    if (dir[0] != '\0')
        (void)nftw(dir, th_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * th_run_begin - call in main before srunner_run_all. Check ends a failed test
 * with _exit, skipping its teardown, so everything a test leaves behind is
 * caught here instead: its files under one base directory, and its orphaned
 * redis-server (killed by PR_SET_PDEATHSIG) reparented to this process
 * (PR_SET_CHILD_SUBREAPER) rather than left a zombie. Returns 0 or -1.
 */
static inline int th_run_begin(const char *name)
{
    if (snprintf(th_base, sizeof(th_base), "/tmp/%s.XXXXXX", name) >= (int)sizeof(th_base) ||
        mkdtemp(th_base) == NULL) {
        th_base[0] = '\0';
        return -1;
    }
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

/* th_run_end - after srunner_run_all: reap orphans, remove the base directory. */
static inline void th_run_end(void)
{
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    th_rmtree(th_base);
    th_base[0] = '\0';
}

/* Joins dir and name into out (TH_PATH_MAX bytes). */
static inline void th_path(char out[TH_PATH_MAX], const char *dir, const char *name)
{
    ck_assert_int_lt(snprintf(out, TH_PATH_MAX, "%s/%s", dir, name), TH_PATH_MAX);
}

static inline void th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    size_t len = strlen(text);

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Reads a whole (small) file; the caller frees. NULL when it does not exist. */
static inline char *th_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap * 2 + 4096;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    ck_assert_int_eq(ferror(f), 0);
    ck_assert_int_eq(fclose(f), 0);
    buf[len] = '\0';
    return buf;
}

/* Number of '\n'-terminated lines in path (0 when it does not exist). */
static inline size_t th_count_lines(const char *path)
{
    char *text = th_read_file(path);
    size_t n = 0;

    if (text == NULL)
        return 0;
    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    free(text);
    return n;
}

/* Copies the last line of path (without its newline) into out; the caller frees. */
static inline char *th_last_line(const char *path)
{
    char *text = th_read_file(path);
    size_t len;
    char *start;

    ck_assert_ptr_nonnull(text);
    len = strlen(text);
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(text[len - 1], '\n');
    text[len - 1] = '\0';
    start = strrchr(text, '\n');
    start = start != NULL ? start + 1 : text;
    memmove(text, start, strlen(start) + 1);
    return text;
}

/* ---- runner -------------------------------------------------------------------- */

/*
 * TH_MAIN(suite_fn) - the main() of every Check suite: one base directory and
 * orphan reaping for the run (th_run_begin / th_run_end), the suite, exit
 * status 0 only when no test failed.
 */
#define TH_MAIN(suite_fn)                                                                          \
    int main(void)                                                                                 \
    {                                                                                              \
        SRunner *sr;                                                                               \
        int failed;                                                                                \
                                                                                                   \
        if (th_run_begin(#suite_fn) != 0)                                                          \
            return EXIT_FAILURE;                                                                   \
        sr = srunner_create(suite_fn());                                                           \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        failed = srunner_ntests_failed(sr);                                                        \
        srunner_free(sr);                                                                          \
        th_run_end();                                                                              \
        return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;                                          \
    }

/*
 * th_tcase - add to s a test case named name: the checked fixture setup and
 * teardown around each of its tests (both NULL: none), then the n tests of
 * tests (START_TEST names), in order. TH_TCASE(s, name, setup, teardown,
 * test...) counts them.
 */
static inline void th_tcase(Suite *s, const char *name, SFun setup, SFun teardown,
                            const TTest *const *tests, size_t n)
{
    TCase *tc = tcase_create(name);

    if (setup != NULL || teardown != NULL)
        tcase_add_checked_fixture(tc, setup, teardown);
    for (size_t i = 0; i < n; i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
}

#define TH_TCASE(s, name, setup, teardown, ...)                                                    \
    th_tcase((s), (name), (setup), (teardown), (const TTest *const[]){__VA_ARGS__},                \
             sizeof((const TTest *const[]){__VA_ARGS__}) / sizeof(const TTest *))

/* ---- hex ----------------------------------------------------------------------- */

/* True when s is exactly n characters of [0-9a-f]. */
static inline int th_is_lower_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* SHA-256 of key as 64 lowercase hex digits (the form config files hold). */
static inline void th_sha256_hex(const char *key, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];

    ck_assert_int_eq(crypto_hash_sha256(d, (const unsigned char *)key, strlen(key)), 0);
    ck_assert_ptr_nonnull(sodium_bin2hex(out, 65, d, sizeof(d)));
}

/* ---- Redis INFO ---------------------------------------------------------------- */

/* Calls of command name in the text of INFO commandstats (0 when never called). */
static inline long long th_cmdstat_calls(const char *info, const char *name)
{
    char needle[64];
    const char *at;

    ck_assert_int_lt(snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", name),
                     (int)sizeof(needle));
    at = strstr(info, needle);
    return at != NULL ? strtoll(at + strlen(needle), NULL, 10) : 0;
}

/* ---- private redis-server ------------------------------------------------------ */

typedef struct th_redis {
    char dir[TH_PATH_MAX];  /* private directory: socket, log */
    char sock[TH_PATH_MAX]; /* unix socket path */
    char addr[TH_PATH_MAX]; /* "unix:<sock>" for fm_redis_new */
    char password[33];      /* random, 32 hex */
    int databases;          /* 0 = redis-server's default (16) */
    pid_t pid;              /* 0 when not running */
} th_redis;

static inline int th_redis_can_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok;

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    (void)close(fd);
    return ok;
}

/* The server of this process, cleaned up at exit when a failed assertion skipped teardown. */
static th_redis *th_redis_live;

static inline void th_redis_kill(th_redis *r);
static inline void th_redis_stop(th_redis *r);

static inline void th_redis_atexit(void)
{
    if (th_redis_live != NULL && th_redis_live->dir[0] != '\0')
        th_redis_stop(th_redis_live);
}

/*
 * Starts redis-server on r->sock with r->password, reusing both when they are
 * already set (a restart). Fails the test when redis-server is not installed
 * or does not come up within 5 s.
 */
static inline void th_redis_start(th_redis *r)
{
    char dbs[16], logfile[TH_PATH_MAX];
    pid_t parent = getpid();
    double deadline;
    int status;

    ck_assert_int_ge(sodium_init(), 0);
    if (th_redis_live == NULL)
        ck_assert_int_eq(atexit(th_redis_atexit), 0);
    th_redis_live = r;
    if (r->dir[0] == '\0') {
        unsigned char rnd[16];

        th_mkdtemp(r->dir, "fm-redis");
        th_path(r->sock, r->dir, "r.sock");
        ck_assert_int_lt(snprintf(r->addr, sizeof(r->addr), "unix:%s", r->sock),
                         (int)sizeof(r->addr));
        randombytes_buf(rnd, sizeof(rnd));
        ck_assert_ptr_nonnull(sodium_bin2hex(r->password, sizeof(r->password), rnd, sizeof(rnd)));
    }
    th_path(logfile, r->dir, "redis.log");
    (void)snprintf(dbs, sizeof(dbs), "%d", r->databases > 0 ? r->databases : 16);
    (void)unlink(r->sock);

    r->pid = fork();
    ck_assert_int_ge(r->pid, 0);
    if (r->pid == 0) {
        const char *argv[] = {"redis-server",
                              "--port",
                              "0",
                              "--unixsocket",
                              r->sock,
                              "--unixsocketperm",
                              "700",
                              "--requirepass",
                              r->password,
                              "--save",
                              "",
                              "--appendonly",
                              "no",
                              "--daemonize",
                              "no",
                              "--dir",
                              r->dir,
                              "--logfile",
                              logfile,
                              "--databases",
                              dbs,
                              NULL};

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        (void)execvp(argv[0], (char *const *)argv);
        _exit(127);
    }

    deadline = th_now() + 5.0;
    while (!th_redis_can_connect(r->sock)) {
        pid_t w = waitpid(r->pid, &status, WNOHANG);

        ck_assert_int_ge(w, 0);
        if (w == r->pid) {
            r->pid = 0;
            ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 127),
                          "redis-server is not installed (apt-get install redis-server)");
            ck_abort_msg("redis-server exited at start (status %d); see %s", status, logfile);
        }
        ck_assert_msg(th_now() < deadline, "redis-server did not open %s within 5 s", r->sock);
        th_sleep_ms(10);
    }
}

/* Kills the server (SIGKILL, as a crash would) and reaps it; the directory stays. */
static inline void th_redis_kill(th_redis *r)
{
    int status;

    if (r->pid <= 0)
        return;
    (void)kill(r->pid, SIGCONT);
    (void)kill(r->pid, SIGKILL);
    (void)waitpid(r->pid, &status, 0);
    r->pid = 0;
}

/* Kills the server and removes its directory. */
static inline void th_redis_stop(th_redis *r)
{
    th_redis_kill(r);
    th_rmtree(r->dir);
    memset(r, 0, sizeof(*r));
}

/* ---- Redis over TCP with Sentinel: a master, a replica, sentinels ---------------- */

/*
 * th_sentinel_setup(set, n) starts, on loopback TCP ports the kernel picks,
 * a redis-server master, its replica (both requirepass/masterauth
 * set->password) and n (1..TH_SENTINELS) sentinels (requirepass
 * set->sentinel_password) monitoring the master as TH_MASTER_NAME with
 * quorum n/2 + 1 and down-after-milliseconds 500, and waits (at most 10 s)
 * until the replica is in sync and every sentinel knows the replica and the
 * other sentinels, so that a failover can start at once. set->sentinels[]
 * is the list to hand to fm_redis_opts. th_sentinel_kill_redis (SIGKILL) and
 * th_sentinel_stop_redis / th_sentinel_cont_redis (SIGSTOP / SIGCONT) act on
 * server i (0: started as the master); th_sentinel_master_port asks the first
 * live sentinel which port is the master now; th_sentinel_teardown kills
 * everything and removes the directory.
 */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdbool.h>

#define TH_SENTINELS 3
#define TH_MASTER_NAME "fmtest"

typedef struct th_sentinel_set {
    char dir[TH_PATH_MAX];
    char password[33], sentinel_password[33];
    int redis_port[2];
    pid_t redis_pid[2];
    int nsentinels;
    int sentinel_port[TH_SENTINELS];
    pid_t sentinel_pid[TH_SENTINELS];
    char sentinel_addr[TH_SENTINELS][32];
    const char *sentinels[TH_SENTINELS];
} th_sentinel_set;

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed). */
static inline int th_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    (void)close(fd);
    return ntohs(sin.sin_port);
}

static inline pid_t th_spawn(const char *const *argv)
{
    pid_t parent = getpid(), pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        (void)execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* One command on 127.0.0.1:port after AUTH password (NULL: none); NULL when it cannot be run. */
static inline redisReply *th_tcp_cmd(int port, const char *password, int argc, const char **argv)
{
    struct timeval tv = {0, 300000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *reply = NULL;

    if (c == NULL)
        return NULL;
    if (c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
        const char *auth[] = {"AUTH", password};

        reply = password != NULL ? redisCommandArgv(c, 2, auth, NULL) : NULL;
        if (password == NULL || (reply != NULL && reply->type != REDIS_REPLY_ERROR)) {
            if (reply != NULL)
                freeReplyObject(reply);
            reply = redisCommandArgv(c, argc, argv, NULL);
        } else if (reply != NULL) {
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    redisFree(c);
    return reply;
}

/* Whether the reply to argv on port contains needle (false when there is no reply). */
static inline bool th_tcp_has(int port, const char *password, int argc, const char **argv,
                              const char *needle)
{
    redisReply *r = th_tcp_cmd(port, password, argc, argv);
    bool has = false;

    if (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        has = strstr(r->str, needle) != NULL;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements && !has; i++)
            has = r->element[i]->type == REDIS_REPLY_STRING && strstr(r->element[i]->str, needle);
    if (r != NULL)
        freeReplyObject(r);
    return has;
}

static inline void th_sentinel_start_redis(th_sentinel_set *set, int i)
{
    char port[16], master[16], logfile[TH_PATH_MAX], name[32];
    const char *argv[40];
    int n = 0;

    (void)snprintf(port, sizeof(port), "%d", set->redis_port[i]);
    (void)snprintf(master, sizeof(master), "%d", set->redis_port[0]);
    (void)snprintf(name, sizeof(name), "redis%d.log", i);
    th_path(logfile, set->dir, name);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--unixsocket";
    argv[n++] = "";
    argv[n++] = "--requirepass";
    argv[n++] = set->password;
    argv[n++] = "--masterauth";
    argv[n++] = set->password;
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--repl-diskless-sync-delay";
    argv[n++] = "0";
    argv[n++] = "--dbfilename";
    argv[n++] = i == 0 ? "dump0.rdb" : "dump1.rdb";
    argv[n++] = "--dir";
    argv[n++] = set->dir;
    argv[n++] = "--logfile";
    argv[n++] = logfile;
    if (i != 0) {
        argv[n++] = "--replicaof";
        argv[n++] = "127.0.0.1";
        argv[n++] = master;
    }
    argv[n] = NULL;
    set->redis_pid[i] = th_spawn(argv);
}

static inline void th_sentinel_start_sentinel(th_sentinel_set *set, int i)
{
    char conf[TH_PATH_MAX], name[32];
    FILE *f;
    const char *argv[] = {"redis-server", conf, "--sentinel", NULL};

    (void)snprintf(name, sizeof(name), "sentinel%d.conf", i);
    th_path(conf, set->dir, name);
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s/sentinel%d.log\n"
            "requirepass %s\nsentinel monitor %s 127.0.0.1 %d %d\n"
            "sentinel auth-pass %s %s\nsentinel down-after-milliseconds %s 500\n"
            "sentinel failover-timeout %s 2000\n",
            set->sentinel_port[i], set->dir, set->dir, i, set->sentinel_password, TH_MASTER_NAME,
            set->redis_port[0], set->nsentinels / 2 + 1, TH_MASTER_NAME, set->password,
            TH_MASTER_NAME, TH_MASTER_NAME);
    ck_assert_int_eq(fclose(f), 0);
    set->sentinel_pid[i] = th_spawn(argv);
}

/* Waits up to seconds for cond (an expression) to hold; fails the test with what otherwise. */
#define TH_WAIT_FOR(seconds, cond, what)                                                           \
    do {                                                                                           \
        double th_deadline_ = th_now() + (seconds);                                                \
        while (!(cond)) {                                                                          \
            ck_assert_msg(th_now() < th_deadline_, "not within %g s: %s", (double)(seconds),    \
                          what);                                                                   \
            th_sleep_ms(50);                                                                       \
        }                                                                                          \
    } while (0)

static inline int th_sentinel_master_port(const th_sentinel_set *set)
{
    const char *q[] = {"SENTINEL", "get-master-addr-by-name", TH_MASTER_NAME};

    for (int i = 0; i < set->nsentinels; i++) {
        redisReply *r = set->sentinel_pid[i] > 0
                            ? th_tcp_cmd(set->sentinel_port[i], set->sentinel_password, 3, q)
                            : NULL;
        int port = -1;

        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
            port = atoi(r->element[1]->str);
        if (r != NULL)
            freeReplyObject(r);
        if (port > 0)
            return port;
    }
    return -1;
}

/* Whether sentinel i knows the replica and the other sentinels. */
static inline bool th_sentinel_ready(const th_sentinel_set *set, int i)
{
    const char *q[] = {"SENTINEL", "master", TH_MASTER_NAME};
    redisReply *r = th_tcp_cmd(set->sentinel_port[i], set->sentinel_password, 3, q);
    long long replicas = -1, others = -1;

    for (size_t k = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2) {
        if (strcmp(r->element[k]->str, "num-slaves") == 0)
            replicas = atoll(r->element[k + 1]->str);
        if (strcmp(r->element[k]->str, "num-other-sentinels") == 0)
            others = atoll(r->element[k + 1]->str);
    }
    if (r != NULL)
        freeReplyObject(r);
    return replicas == 1 && others == set->nsentinels - 1;
}

static inline void th_sentinel_setup(th_sentinel_set *set, int nsentinels)
{
    const char *info[] = {"INFO", "replication"};
    unsigned char rnd[32];

    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    ck_assert_int_ge(sodium_init(), 0);
    ck_assert(nsentinels >= 1 && nsentinels <= TH_SENTINELS);
    memset(set, 0, sizeof(*set));
    th_mkdtemp(set->dir, "fm-sentinel");
    randombytes_buf(rnd, sizeof(rnd));
    ck_assert_ptr_nonnull(sodium_bin2hex(set->password, sizeof(set->password), rnd, 16));
    ck_assert_ptr_nonnull(
        sodium_bin2hex(set->sentinel_password, sizeof(set->sentinel_password), rnd + 16, 16));
    set->nsentinels = nsentinels;
    for (int i = 0; i < 2; i++)
        set->redis_port[i] = th_free_port();
    th_sentinel_start_redis(set, 0);
    th_sentinel_start_redis(set, 1);
    TH_WAIT_FOR(10, th_tcp_has(set->redis_port[1], set->password, 2, info, "master_link_status:up"),
                "the replica in sync");
    for (int i = 0; i < nsentinels; i++) {
        set->sentinel_port[i] = th_free_port();
        (void)snprintf(set->sentinel_addr[i], sizeof(set->sentinel_addr[i]), "127.0.0.1:%d",
                       set->sentinel_port[i]);
        set->sentinels[i] = set->sentinel_addr[i];
        th_sentinel_start_sentinel(set, i);
    }
    for (int i = 0; i < nsentinels; i++)
        TH_WAIT_FOR(10, th_sentinel_ready(set, i), "a sentinel knowing the replica and its peers");
}

static inline void th_sentinel_signal(pid_t *pid, int sig)
{
    if (*pid <= 0)
        return;
    (void)kill(*pid, sig);
    if (sig == SIGKILL) {
        (void)kill(*pid, SIGCONT);
        (void)waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

static inline void th_sentinel_kill_redis(th_sentinel_set *set, int i)
{
    th_sentinel_signal(&set->redis_pid[i], SIGKILL);
}

static inline void th_sentinel_stop_redis(th_sentinel_set *set, int i)
{
    th_sentinel_signal(&set->redis_pid[i], SIGSTOP);
}

static inline void th_sentinel_cont_redis(th_sentinel_set *set, int i)
{
    th_sentinel_signal(&set->redis_pid[i], SIGCONT);
}

static inline void th_sentinel_teardown(th_sentinel_set *set)
{
    for (int i = 0; i < set->nsentinels; i++)
        th_sentinel_signal(&set->sentinel_pid[i], SIGKILL);
    for (int i = 0; i < 2; i++)
        th_sentinel_signal(&set->redis_pid[i], SIGKILL);
    if (set->dir[0] != '\0')
        th_rmtree(set->dir);
    memset(set, 0, sizeof(*set));
}

/* ---- Redis fixture: one private server and a connected handle ------------------- */

/*
 * For suites whose tests talk to Redis: register the pair as the checked
 * fixture, or call them first from the suite's own setup and last from its
 * teardown:
 *
 *     tcase_add_checked_fixture(tc, th_redis_setup, th_redis_teardown);
 *
 * th_redis_setup starts a private redis-server in th_srv (see th_redis_start)
 * and connects th_r to it (500 ms timeout); SIGPIPE is ignored so that a
 * killed server fails a call instead of the test process. th_redis_connect
 * opens another handle (for a forked child, a second worker); th_redis_cmd,
 * th_redis_int and th_redis_calls run a command on a handle and check it.
 */
#include "redisconn.h"

static th_redis th_srv;
static fm_redis *th_r;

static inline fm_redis *th_redis_connect(void)
{
    return fm_redis_new(th_srv.addr, NULL, th_srv.password, 0, 500);
}

static inline void th_redis_setup(void)
{
    ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    memset(&th_srv, 0, sizeof(th_srv));
    th_redis_start(&th_srv);
    th_r = th_redis_connect();
    ck_assert_ptr_nonnull(th_r);
}

static inline void th_redis_teardown(void)
{
    fm_redis_free(th_r);
    th_r = NULL;
    th_redis_stop(&th_srv);
}

/* Runs argv on c; fails the test on no reply or an error reply. The caller frees the reply. */
static inline redisReply *th_redis_cmd(fm_redis *c, int argc, const char **argv)
{
    redisReply *reply = fm_redis_argv(c, argc, argv, NULL);

    ck_assert_msg(reply != NULL, "%s: %s", argv[0], fm_redis_errstr(c));
    ck_assert_msg(reply->type != REDIS_REPLY_ERROR, "%s: %s", argv[0], reply->str);
    return reply;
}

/* Runs argv on c and returns its integer reply (which it must be). */
static inline long long th_redis_int(fm_redis *c, int argc, const char **argv)
{
    redisReply *reply = th_redis_cmd(c, argc, argv);
    long long v;

    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    v = reply->integer;
    freeReplyObject(reply);
    return v;
}

/* Calls of Redis command cmd on c's server so far ("evalsha", "pttl"), from INFO commandstats. */
static inline long long th_redis_calls(fm_redis *c, const char *cmd)
{
    const char *argv[] = {"INFO", "commandstats"};
    redisReply *reply = th_redis_cmd(c, 2, argv);
    long long n;

    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    n = th_cmdstat_calls(reply->str, cmd);
    freeReplyObject(reply);
    return n;
}

/*
 * th_redis_subscribe - a raw hiredis connection to server r, authenticated
 * and SUBSCRIBEd to channel, whose reads wait at most timeout_ms (the
 * caller frees it, redisFree). th_redis_message - the payload of the next
 * message on it (the caller frees it), or NULL when none came in time (the
 * connection is of no further use then).
 */
static inline redisContext *th_redis_subscribe(const th_redis *r, const char *channel,
                                               int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectUnixWithTimeout(r->sock, tv);
    redisReply *reply;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->err, 0);
    ck_assert_int_eq(redisSetTimeout(c, tv), REDIS_OK);
    reply = redisCommand(c, "AUTH %s", r->password);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    reply = redisCommand(c, "SUBSCRIBE %s", channel);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    freeReplyObject(reply);
    return c;
}

static inline char *th_redis_message(redisContext *c, const char *channel)
{
    void *got = NULL;
    redisReply *reply;
    char *payload;

    if (redisGetReply(c, &got) != REDIS_OK)
        return NULL;
    reply = got;
    ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(reply->elements, 3);
    ck_assert_str_eq(reply->element[0]->str, "message");
    ck_assert_str_eq(reply->element[1]->str, channel);
    payload = strdup(reply->element[2]->str);
    ck_assert_ptr_nonnull(payload);
    freeReplyObject(reply);
    return payload;
}

/* ---- config builder: a YAML config from per-section overrides -------------------- */

/*
 * th_config builds a configuration file section by section and loads it with
 * fm_config_load, the way the server does, as Redis's test suite starts a
 * server with `start_server {overrides {...}}`: a test states only the
 * sections it cares about.
 *
 *     th_config c;
 *     fm_config *cfg;
 *
 *     th_config_init(&c, "test_x");      // temp dir + the default sections below
 *     th_config_set(&c, "rate_limit",    // replaces (or adds) a whole section
 *                   "  requests_per_minute: %d\n  burst: 2\n", 60);
 *     th_config_add(&c, "auth",          // appends lines to a section
 *                   "  ip_whitelist: [\"127.0.0.1\"]\n");
 *     th_config_redis(&c);               // redis: the th_srv fixture's server
 *     cfg = th_config_load(&c);          // writes c.path (mode 0600), loads, must succeed
 *     ...
 *     fm_config_free(cfg);
 *     th_config_free(&c);                // removes the temp dir
 *
 * A section's text is its body: the lines under "<name>:", indented by two
 * spaces, each ending in a newline (printf format and arguments). Sections
 * are written in the order they were first set. th_config_load_err writes and
 * loads expecting a refusal and returns the message. th_config_text gives the
 * whole YAML, e.g. for a reload test that writes it elsewhere.
 *
 * The defaults are the smallest configuration for the tests of the request
 * path, with known keys:
 *
 *     auth:
 *       api_keys:
 *         alice: { hash: sha256(TH_KEY_ALICE), roles: [researcher] }
 *         bob: { hash: sha256(TH_KEY_BOB), roles: [analyst] }
 *     logging:
 *       file: <dir>/audit.log
 *       api_file: <dir>/api.log
 *     data:
 *       experiments_dir: <dir>/experiments
 *
 * Everything else (server, rate_limit, redis) takes the loader's defaults.
 * c.hash_alice and c.hash_bob hold the two hashes, as hex.
 */
#include <stdarg.h>
#include <sys/stat.h>

#include "config.h"

#define TH_KEY_ALICE "th-alice-key-0123456789abcdef"
#define TH_KEY_BOB "th-bob-key-0123456789abcdefgh"
#define TH_CONFIG_SECTIONS 16
#define TH_CONFIG_TEXT_MAX 16384

typedef struct th_config {
    char dir[TH_PATH_MAX];  /* temporary directory, removed by th_config_free */
    char path[TH_PATH_MAX]; /* <dir>/config.yaml */
    char hash_alice[65], hash_bob[65];
    struct {
        char name[32];
        char *body; /* owned; NULL: section not written */
    } sec[TH_CONFIG_SECTIONS];
    size_t nsec;
    char text[TH_CONFIG_TEXT_MAX]; /* the YAML last built */
} th_config;

static inline size_t th_config_slot(th_config *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nsec && strcmp(c->sec[i].name, name) != 0; i++)
        ;
    if (i == c->nsec) {
        ck_assert_uint_lt(c->nsec, TH_CONFIG_SECTIONS);
        ck_assert_uint_lt(strlen(name), sizeof(c->sec[i].name));
        (void)snprintf(c->sec[i].name, sizeof(c->sec[i].name), "%s", name);
        c->sec[i].body = NULL;
        c->nsec++;
    }
    return i;
}

/* Formats into a new string (the caller frees). */
__attribute__((format(printf, 1, 0))) static inline char *th_vformat(const char *fmt, va_list ap)
{
    va_list again;
    char *out;
    int n;

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    ck_assert_int_ge(n, 0);
    out = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(vsnprintf(out, (size_t)n + 1, fmt, ap), n);
    return out;
}

/* th_config_set - the body of section name becomes the formatted text ("" writes "name: {}"). */
__attribute__((format(printf, 3, 4))) static inline void
th_config_set(th_config *c, const char *name, const char *fmt, ...)
{
    size_t i = th_config_slot(c, name);
    va_list ap;

    free(c->sec[i].body);
    va_start(ap, fmt);
    c->sec[i].body = th_vformat(fmt, ap);
    va_end(ap);
}

/* th_config_add - appends the formatted lines to section name (adding the section). */
__attribute__((format(printf, 3, 4))) static inline void
th_config_add(th_config *c, const char *name, const char *fmt, ...)
{
    size_t i = th_config_slot(c, name);
    const char *old = c->sec[i].body != NULL ? c->sec[i].body : "";
    char *more, *both;
    va_list ap;

    va_start(ap, fmt);
    more = th_vformat(fmt, ap);
    va_end(ap);
    both = malloc(strlen(old) + strlen(more) + 1);
    ck_assert_ptr_nonnull(both);
    (void)snprintf(both, strlen(old) + strlen(more) + 1, "%s%s", old, more);
    free(more);
    free(c->sec[i].body);
    c->sec[i].body = both;
}

/* th_config_drop - leaves section name out of the file (the loader's defaults apply). */
static inline void th_config_drop(th_config *c, const char *name)
{
    size_t i = th_config_slot(c, name);

    free(c->sec[i].body);
    c->sec[i].body = NULL;
}

/* th_config_init - a temp dir named after name and the default sections. */
static inline void th_config_init(th_config *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_ge(sodium_init(), 0);
    th_mkdtemp(c->dir, name);
    th_path(c->path, c->dir, "config.yaml");
    th_sha256_hex(TH_KEY_ALICE, c->hash_alice);
    th_sha256_hex(TH_KEY_BOB, c->hash_bob);
    th_config_set(c, "auth",
                  "  api_keys:\n"
                  "    alice: { hash: \"%s\", roles: [researcher] }\n"
                  "    bob: { hash: \"%s\", roles: [analyst] }\n",
                  c->hash_alice, c->hash_bob);
    th_config_set(c, "logging", "  file: \"%s/audit.log\"\n  api_file: \"%s/api.log\"\n", c->dir,
                  c->dir);
    th_config_set(c, "data", "  experiments_dir: \"%s/experiments\"\n", c->dir);
}

/* th_config_redis - the redis section for the th_srv fixture (password via TH_REDIS_PASSWORD). */
static inline void th_config_redis(th_config *c)
{
    ck_assert_int_eq(setenv("TH_REDIS_PASSWORD", th_srv.password, 1), 0);
    th_config_set(c, "redis", "  addr: \"%s\"\n  password_env: TH_REDIS_PASSWORD\n", th_srv.addr);
}

/* th_config_text - the YAML of the sections as they stand (in c->text). */
static inline const char *th_config_text(th_config *c)
{
    size_t used = 0;

    c->text[0] = '\0';
    for (size_t i = 0; i < c->nsec; i++) {
        const char *body = c->sec[i].body;
        int n;

        if (body == NULL)
            continue;
        n = snprintf(c->text + used, sizeof(c->text) - used, "%s:%s\n%s", c->sec[i].name,
                     body[0] == '\0' ? " {}" : "", body);
        ck_assert_int_ge(n, 0);
        ck_assert_uint_lt((size_t)n, sizeof(c->text) - used);
        used += (size_t)n;
    }
    return c->text;
}

/* Writes c->path (mode 0600, so no warning) and loads it; NULL with the message in err. */
static inline fm_config *th_config_try(th_config *c, char err[FM_CONFIG_ERR_MAX])
{
    th_write_file(c->path, th_config_text(c));
    ck_assert_int_eq(chmod(c->path, 0600), 0);
    return fm_config_load(c->path, err, FM_CONFIG_ERR_MAX);
}

/* th_config_load - writes and loads; the load must succeed. Free with fm_config_free. */
static inline fm_config *th_config_load(th_config *c)
{
    char err[FM_CONFIG_ERR_MAX];
    fm_config *cfg = th_config_try(c, err);

    ck_assert_msg(cfg != NULL, "config: %s\n%s", err, c->text);
    return cfg;
}

/* th_config_load_err - writes and loads; the load must fail. Returns the message (in err). */
static inline const char *th_config_load_err(th_config *c, char err[FM_CONFIG_ERR_MAX])
{
    fm_config *cfg = th_config_try(c, err);

    ck_assert_msg(cfg == NULL, "config loaded but should not:\n%s", c->text);
    return err;
}

/* th_config_free - frees the sections and removes the temp dir. */
static inline void th_config_free(th_config *c)
{
    for (size_t i = 0; i < c->nsec; i++)
        free(c->sec[i].body);
    th_rmtree(c->dir);
    memset(c, 0, sizeof(*c));
}

#endif
