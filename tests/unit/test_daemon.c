/*
 * test_daemon.c - the start-up pieces the programs share: options from a
 * table of rows (arguments, flags, hooks, required ones, -h, misuse), the
 * pid file (a live one refuses, a written one is removed), the signal set-up
 * (handled signals blocked outside the wait, an empty wait mask) and the
 * unix socket opener (group and mode set, a live socket refused).
 */
#include <check.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "daemon.h"
#include "redact.h"
#include "helpers.h"

static const char *arg_c, *arg_p;
static bool flag_t;
static int adds;

static bool add_o(const char *arg)
{
    adds++;
    return strcmp(arg, "bad") != 0;
}

static const fm_daemon_opt opts[] = {
    {.letter = 'c', .arg = &arg_c, .required = true},
    {.letter = 't', .flag = &flag_t},
    {.letter = 'o', .add = add_o},
    {.letter = 'p', .arg = &arg_p},
};

/* Parses argv (NULL-terminated) with opts; returns true to run, *status otherwise. */
static bool parse(int *status, char **argv)
{
    int argc = 0;

    while (argv[argc] != NULL)
        argc++;
    arg_c = arg_p = NULL;
    flag_t = false;
    adds = 0;
    optind = 0; /* glibc: a full getopt reset */
    opterr = 0;
    return fm_daemon_options(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), "usage\n", status);
}

START_TEST(options)
{
    char *ok[] = {"prog", "-c", "x.yaml", "-t", "-o", "a", "-o", "b", "-p", "pid", NULL};
    char *last_wins[] = {"prog", "-c", "1", "-c", "2", NULL};
    char *help[] = {"prog", "-h", NULL};
    char *unknown[] = {"prog", "-c", "x", "-z", NULL};
    char *missing[] = {"prog", "-t", NULL};
    char *stray[] = {"prog", "-c", "x", "extra", NULL};
    char *refused[] = {"prog", "-c", "x", "-o", "bad", NULL};
    char *no_arg[] = {"prog", "-c", NULL};
    int status = -1;

    ck_assert(parse(&status, ok));
    ck_assert_str_eq(arg_c, "x.yaml");
    ck_assert_str_eq(arg_p, "pid");
    ck_assert(flag_t);
    ck_assert_int_eq(adds, 2);
    ck_assert(parse(&status, last_wins));
    ck_assert_str_eq(arg_c, "2");
    ck_assert(!flag_t);
    ck_assert_ptr_null(arg_p);
    ck_assert(!parse(&status, help));
    ck_assert_int_eq(status, 0);
    ck_assert(!parse(&status, unknown));
    ck_assert_int_eq(status, 2);
    ck_assert(!parse(&status, missing));
    ck_assert_int_eq(status, 2);
    ck_assert(!parse(&status, stray));
    ck_assert_int_eq(status, 2);
    ck_assert(!parse(&status, refused));
    ck_assert_int_eq(status, 2);
    ck_assert(!parse(&status, no_arg));
    ck_assert_int_eq(status, 2);
}
END_TEST

START_TEST(pidfile)
{
    char dir[TH_PATH_MAX], path[TH_PATH_MAX], text[32];
    pid_t child;

    th_mkdtemp(dir, "pidfile");
    th_path(path, dir, "x.pid");
    ck_assert_int_eq(fm_daemon_pidfile_free(NULL), FM_OK);
    ck_assert_int_eq(fm_daemon_pidfile_free(path), FM_OK); /* missing */
    ck_assert_int_eq(fm_daemon_pidfile_write(path), FM_OK);
    ck_assert_int_eq(fm_daemon_pidfile_free(path), FM_OK); /* our own pid */
    fm_daemon_pidfile_remove();
    ck_assert_int_ne(access(path, F_OK), 0);
    fm_daemon_pidfile_remove(); /* nothing left to remove */

    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    (void)snprintf(text, sizeof(text), "%d\n", (int)child);
    th_write_file(path, text);
    ck_assert_int_eq(fm_daemon_pidfile_free(path), FM_ECONFLICT);
    ck_assert_int_eq(kill(child, SIGKILL), 0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    ck_assert_int_eq(fm_daemon_pidfile_free(path), FM_OK); /* stale */
    ck_assert_int_eq(fm_daemon_pidfile_write(NULL), FM_OK);
    th_rmtree(dir);
}
END_TEST

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
    got = sig;
}

START_TEST(signals)
{
    static const fm_daemon_signal sigs[] = {{SIGUSR1, on_usr1}, {SIGPIPE, SIG_IGN}};
    sigset_t now, waitmask;
    struct timespec ts = {5, 0};

    ck_assert_int_eq(fm_daemon_signals(sigs, 2, &waitmask), FM_OK);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, NULL, &now), 0);
    ck_assert(sigismember(&now, SIGUSR1));
    ck_assert(!sigismember(&now, SIGPIPE));
    ck_assert(!sigismember(&waitmask, SIGUSR1));
    /* Blocked until the wait: raised now, handled only inside pselect. */
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(got, 0);
    ck_assert_int_eq(pselect(0, NULL, NULL, NULL, &ts, &waitmask), -1);
    ck_assert_int_eq(errno, EINTR);
    ck_assert_int_eq(got, SIGUSR1);
    ck_assert_int_eq(raise(SIGPIPE), 0); /* ignored */
}
END_TEST

START_TEST(unix_socket)
{
    char dir[TH_PATH_MAX], path[TH_PATH_MAX];
    struct stat st;
    int fd, fd2 = -1;

    th_mkdtemp(dir, "usock");
    th_path(path, dir, "s.sock");
    ck_assert_int_eq(fm_daemon_unix_socket(path, SOCK_STREAM, NULL, 0640, "test", &fd), FM_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(listen(fd, 1), 0);
    /* A live socket is not taken over. */
    ck_assert_int_eq(fm_daemon_unix_socket(path, SOCK_STREAM, NULL, 0640, "test", &fd2), FM_ESYS);
    ck_assert_int_eq(fd2, -1);
    ck_assert_int_eq(close(fd), 0);
    /* A group that does not exist: refused, and nothing is left at the path. */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(fm_daemon_unix_socket(path, SOCK_DGRAM | SOCK_NONBLOCK, "no-such-group-fm",
                                           0660, "test", &fd2),
                     FM_ESYS);
    ck_assert_int_ne(access(path, F_OK), 0);
    th_rmtree(dir);
}
END_TEST

/* Every key of the config is registered by digest, with the Redis password; a new config replaces
 * them. */
START_TEST(secrets)
{
    th_config c;
    fm_config *cfg;
    static const char in[] = "/v1/tasks/" TH_KEY_ALICE "?q=" TH_KEY_BOB " pw r3dis-pw-for-test";
    char line[256];

    th_config_init(&c, "test_daemon");
    ck_assert_int_eq(setenv("TH_DAEMON_REDIS_PW", "r3dis-pw-for-test", 1), 0);
    th_config_set(&c, "redis", "  password_env: TH_DAEMON_REDIS_PW\n");
    cfg = th_config_load(&c);
    ck_assert_int_eq(fm_daemon_secrets(cfg), FM_OK);
    fm_config_free(cfg);
    (void)fm_redact(in, sizeof(in) - 1, line, sizeof(line));
    ck_assert_str_eq(line, "/v1/tasks/" FM_REDACTED "?q=" FM_REDACTED " pw " FM_REDACTED);

    th_config_set(&c, "auth", "  api_keys:\n    alice: { hash: \"%s\", roles: [researcher] }\n",
                  c.hash_alice);
    th_config_set(&c, "redis", "  timeout_ms: 500\n");
    cfg = th_config_load(&c);
    ck_assert_int_eq(fm_daemon_secrets(cfg), FM_OK);
    fm_config_free(cfg);
    (void)fm_redact(in, sizeof(in) - 1, line, sizeof(line));
    ck_assert_str_eq(line, "/v1/tasks/" FM_REDACTED "?q=" TH_KEY_BOB " pw r3dis-pw-for-test");
    fm_redact_clear_secrets();
    th_config_free(&c);
}
END_TEST

static Suite *daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");

    tcase_add_test(tc, options);
    tcase_add_test(tc, pidfile);
    tcase_add_test(tc, signals);
    tcase_add_test(tc, unix_socket);
    tcase_add_test(tc, secrets);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(daemon_suite)
