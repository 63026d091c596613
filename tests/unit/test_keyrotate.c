/*
 * test_keyrotate.c - lib/config/keyrotate.c: every shape a config gives keys
 * in (hash:, block and flow keys: lists, indentless lists, flow users,
 * quoted and plain scalars) rewritten with everything else byte for byte;
 * the grace variant keeps the old keys with expires; new keys found by their
 * hash after the rewrite; refusals and failures leave the file, its owner
 * and mode as they were, with no file left beside it.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "config.h"
#include "helpers.h"
#include "keyrotate.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define H4 "4444444444444444444444444444444444444444444444444444444444444444"
#define H5 "5555555555555555555555555555555555555555555555555555555555555555"
#define H6 "6666666666666666666666666666666666666666666666666666666666666666"
/* The new hashes the fixed callback gives the first, second... user rotated. */
#define NA "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define NB "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2"
#define NC "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3"
#define ND "a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4"
#define NE "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"

#define NOW 1764547200LL /* 2025-12-01T00:00:00Z */
#define DAY 86400LL

/* Every shape of auth.api_keys, with comments and other sections around them. */
#define HEAD                                                                                       \
    "# fetchml config: keep this comment\n"                                                        \
    "server:\n"                                                                                    \
    "  workers: 2   # two workers\n"                                                               \
    "auth:\n"                                                                                      \
    "  ip_whitelist: [\"127.0.0.1\"]\n"                                                            \
    "  api_keys:\n"                                                                                \
    "    # alice first\n"                                                                          \
    "    alice:\n"
#define ALICE_OLD "      hash: \"" H1 "\"  # laptop\n"
#define ALICE_ROLES "      roles: [\"researcher\"]\n"
#define BOB_OLD                                                                                    \
    "    bob:\n"                                                                                   \
    "      keys:\n"                                                                                \
    "        - hash: " H2 "\n"                                                                     \
    "          label: 'old \"phone\"'\n"                                                           \
    "        # a comment inside the list\n"                                                        \
    "        - {hash: \"" H3 "\", expires: 2020-01-01}\n"                                          \
    "      # after bob's keys\n"                                                                   \
    "      roles: [analyst]\n"
#define CAROL_OLD "    carol: {hash: '" H4 "', roles: [worker]}\n"
#define DAVE_OLD                                                                                   \
    "    dave:\n"                                                                                  \
    "      \"hash\": " H5 "\n"                                                                     \
    "      keys:\n"                                                                                \
    "      - hash: \"" H6 "\"\n"                                                                   \
    "        expires: \"2025-12-03T00:00:00Z\"\n"
#define ERIN_OLD "    erin: {keys: [{hash: \"" H_ERIN "\"}]}\n"
#define H_ERIN "7777777777777777777777777777777777777777777777777777777777777777"
#define TAIL "rate_limit: {burst: 5}   # the end\n"

#define CONFIG HEAD ALICE_OLD ALICE_ROLES BOB_OLD CAROL_OLD DAVE_OLD ERIN_OLD TAIL

static char dir[TH_PATH_MAX], path[TH_PATH_MAX];

static void setup(void)
{
    th_mkdtemp(dir, "keyrotate");
    th_path(path, dir, "config.yaml");
}

static void teardown(void)
{
    th_rmtree(dir);
}

/* fm_keyrotate_fn: the n-th user rotated gets 32 bytes of 0xa1 + n. */
struct fixed {
    int n;
    int fail_at; /* 1-based call that fails, 0 = none */
};

static fm_err fixed_hash(void *arg, const char *user, unsigned char hash[FM_KEY_HASH_BYTES])
{
    struct fixed *f = arg;

    (void)user;
    if (++f->n == f->fail_at)
        return FM_ESYS;
    memset(hash, 0xa1 + f->n - 1, FM_KEY_HASH_BYTES);
    return FM_OK;
}

/* CONFIG rewritten in memory with fm_keyrotate_text; the caller frees it. */
static char *rewrite(const char *text, const char *user, int64_t grace, char err[512])
{
    struct fixed f = {0};
    fm_keyrotate_opts o = {user, NOW, grace, fixed_hash, &f};
    char lerr[FM_CONFIG_ERR_MAX];
    fm_config *cfg;
    char *out = NULL;
    size_t len = 0;
    fm_err rc;

    th_write_file(path, text);
    cfg = fm_config_load(path, lerr, sizeof(lerr));
    ck_assert_msg(cfg != NULL, "%s", lerr);
    rc = fm_keyrotate_text(cfg, "config.yaml", text, strlen(text), &o, &out, &len, err, 512);
    fm_config_free(cfg);
    if (rc != FM_OK) {
        ck_assert_ptr_null(out);
        return NULL;
    }
    ck_assert_uint_eq(len, strlen(out));
    return out;
}

START_TEST(all_grace_zero_only_the_key_ranges_change)
{
    static const char want[] =
        HEAD "      hash: \"" NA "\"  # laptop\n" ALICE_ROLES "    bob:\n"
             "      keys:\n"
             "        - hash: \"" NB "\"\n"
             "          label: \"rotated 2025-12-01\"\n"
             "      # after bob's keys\n"
             "      roles: [analyst]\n"
             "    carol: {hash: \"" NC "\", roles: [worker]}\n"
             "    dave:\n"
             "      \"hash\": \"" ND "\"\n"
             "      keys: []\n"
             "    erin: {keys: [{hash: \"" NE "\", label: \"rotated 2025-12-01\"}]}\n" TAIL;
    char err[512], lerr[FM_CONFIG_ERR_MAX];
    char *out = rewrite(CONFIG, NULL, 0, err);
    fm_config *cfg;

    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(out, want);
    /* The result loads, each user with the new key alone. */
    th_write_file(path, out);
    cfg = fm_config_load(path, lerr, sizeof(lerr));
    ck_assert_msg(cfg != NULL, "%s", lerr);
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        ck_assert_uint_eq(cfg->auth.users[i].nkeys, 1);
        ck_assert_int_eq(cfg->auth.users[i].keys[0].hash[0], 0xa1 + (int)i);
    }
    fm_config_free(cfg);
    free(out);
}
END_TEST

START_TEST(grace_keeps_old_keys_with_expires)
{
    static const char want[] =
        HEAD "      hash: \"" NA "\"  # laptop\n"
             "      keys:\n"
             "        - hash: \"" H1 "\"\n"
             "          expires: \"2025-12-08T00:00:00Z\"\n" ALICE_ROLES "    bob:\n"
             "      keys:\n"
             "        - hash: \"" NB "\"\n"
             "          label: \"rotated 2025-12-01\"\n"
             "        - hash: \"" H2 "\"\n"
             "          expires: \"2025-12-08T00:00:00Z\"\n"
             "          label: \"old \\\"phone\\\"\"\n"
             "      # after bob's keys\n"
             "      roles: [analyst]\n"
             "    carol: {hash: \"" NC "\", keys: [{hash: \"" H4
             "\", expires: \"2025-12-08T00:00:00Z\"}], roles: [worker]}\n"
             "    dave:\n"
             "      \"hash\": \"" ND "\"\n"
             "      keys:\n"
             "      - hash: \"" H5 "\"\n"
             "        expires: \"2025-12-08T00:00:00Z\"\n"
             "      - hash: \"" H6 "\"\n"
             "        expires: \"2025-12-03T00:00:00Z\"\n"
             "    erin: {keys: [{hash: \"" NE "\", label: \"rotated 2025-12-01\"}, {hash: \"" H_ERIN
             "\", expires: \"2025-12-08T00:00:00Z\"}]}\n" TAIL;
    char err[512];
    char *out = rewrite(CONFIG, NULL, 7 * DAY, err);

    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(out, want);
    free(out);
}
END_TEST

START_TEST(one_user_leaves_the_others)
{
    static const char want[] = HEAD ALICE_OLD ALICE_ROLES BOB_OLD
        "    carol: {hash: \"" NA "\", roles: [worker]}\n" DAVE_OLD ERIN_OLD TAIL;
    char err[512];
    char *out = rewrite(CONFIG, "carol", 0, err);

    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(out, want);
    free(out);
    ck_assert_ptr_null(rewrite(CONFIG, "mallory", 0, err));
    ck_assert_str_eq(err, "config.yaml: no user \"mallory\" in auth.api_keys");
}
END_TEST

/* The other spelling, a flow auth section, a file without a final newline. */
START_TEST(apikeys_flow_sections_and_no_final_newline)
{
    char err[512];
    char *out = rewrite("auth: {apikeys: {zed: {hash: \"" H1 "\"}}}", NULL, DAY, err);

    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(out, "auth: {apikeys: {zed: {hash: \"" NA "\", keys: [{hash: \"" H1
                          "\", expires: \"2025-12-02T00:00:00Z\"}]}}}");
    free(out);
    out = rewrite("auth:\n  api_keys:\n    zed:\n      hash: " H1, NULL, DAY, err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(out, "auth:\n  api_keys:\n    zed:\n      hash: \"" NA "\"\n"
                          "      keys:\n"
                          "        - hash: \"" H1 "\"\n"
                          "          expires: \"2025-12-02T00:00:00Z\"");
    free(out);
}
END_TEST

START_TEST(refuses_what_it_cannot_rewrite)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"auth:\n  api_keys:\n    zed:\n      hash: \"${ZED_HASH}\"\n",
         "config.yaml:4:13: this hash comes from the environment"},
        {"auth:\n  api_keys:\n    zed:\n      keys:\n        - hash: \"" H1 "\"\n"
         "          label: \"${WHO}\"\n",
         "config.yaml:5:9: a value of these keys comes from the environment"},
        {"auth:\n  api_keys:\n    zed:\n      hash: |-\n        " H1 "\n",
         "config.yaml:4:13: a hash written as a block scalar"},
    };
    char err[512];

    (void)setenv("ZED_HASH", H2, 1);
    (void)setenv("WHO", "zed", 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_ptr_null(rewrite(cases[i].text, NULL, 0, err));
        ck_assert_msg(strncmp(err, cases[i].err, strlen(cases[i].err)) == 0, "case %zu: %s", i,
                      err);
        ck_assert_ptr_null(strstr(err, H2));
    }
}
END_TEST

/* The names in dir, as one string "a b c " (sorted), to see that nothing was left behind. */
static void list_dir(char *out, size_t outlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);

    ck_assert_int_ge(n, 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            (void)strncat(out, names[i]->d_name, outlen - strlen(out) - 1);
            (void)strncat(out, " ", outlen - strlen(out) - 1);
        }
        free(names[i]);
    }
    free(names);
}

/* fm_keyrotate_fn: real keys from fm_auth_key_generate, kept to look them up afterwards. */
struct real {
    char keys[8][FM_AUTH_KEY_GEN_LEN + 1];
    char users[8][FM_NAME_MAX];
    int n;
};

static fm_err real_key(void *arg, const char *user, unsigned char hash[FM_KEY_HASH_BYTES])
{
    struct real *r = arg;

    ck_assert_int_lt(r->n, 8);
    fm_auth_key_generate(r->keys[r->n]);
    (void)snprintf(r->users[r->n], FM_NAME_MAX, "%s", user);
    r->n++;
    return fm_auth_hash_key(r->keys[r->n - 1], strlen(r->keys[r->n - 1]), hash);
}

START_TEST(file_rotated_atomically_with_owner_mode_and_backup)
{
    static const char *const old_hashes[] = {H1, H2, H3, H4, H5, H6, H_ERIN};
    struct real r = {0};
    fm_keyrotate_opts o = {NULL, NOW, 0, real_key, &r};
    fm_keyrotate_job *job = NULL;
    char err[FM_CONFIG_ERR_MAX], backup[FM_KEYROTATE_BACKUP_MAX], names[1024], want[1024];
    struct stat before, after, bst;
    fm_config *cfg;
    char *text;

    th_write_file(path, CONFIG);
    /* Another owner than the one rotating, where the test may give one (as root). */
    if (geteuid() == 0)
        ck_assert_int_eq(chown(path, 65534, 65534), 0);
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_OK);
    ck_assert_int_eq(r.n, 5);
    /* Prepared: the original is untouched until the commit. */
    text = th_read_file(path);
    ck_assert_str_eq(text, CONFIG);
    free(text);
    ck_assert_int_eq(fm_keyrotate_commit(job, backup, sizeof(backup), err, sizeof(err)), FM_OK);
    fm_keyrotate_free(job);

    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_uint_ne(after.st_ino, before.st_ino);
    ck_assert_uint_eq(after.st_mode, before.st_mode);
    ck_assert_uint_eq(after.st_uid, before.st_uid);
    ck_assert_uint_eq(after.st_gid, before.st_gid);
    ck_assert(geteuid() != 0 || after.st_uid == 65534);
    /* The backup is the old file itself. */
    ck_assert_int_eq(stat(backup, &bst), 0);
    ck_assert_uint_eq(bst.st_ino, before.st_ino);
    ck_assert_uint_eq(bst.st_mode, before.st_mode);
    text = th_read_file(backup);
    ck_assert_str_eq(text, CONFIG);
    free(text);
    (void)snprintf(want, sizeof(want), "config.yaml %s ", strrchr(backup, '/') + 1);
    list_dir(names, sizeof(names));
    ck_assert_str_eq(names, want);
    ck_assert_str_eq(strrchr(backup, '/'), "/config.yaml.bak-20251201T000000Z");

    /* Every old hash is gone, every new key is found by its hash, for its user. */
    text = th_read_file(path);
    for (size_t i = 0; i < sizeof(old_hashes) / sizeof(old_hashes[0]); i++)
        ck_assert_ptr_null(strstr(text, old_hashes[i]));
    ck_assert_ptr_nonnull(strstr(text, "# after bob's keys\n"));
    free(text);
    cfg = fm_config_load(path, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_int_eq(r.n, 5);
    for (int i = 0; i < r.n; i++) {
        unsigned char h[FM_KEY_HASH_BYTES];
        const fm_user *u;
        const fm_key *k;

        ck_assert_int_eq(fm_auth_hash_key(r.keys[i], strlen(r.keys[i]), h), FM_OK);
        ck_assert(fm_config_find_key(cfg, h, &u, &k));
        ck_assert_str_eq(u->name, r.users[i]);
        ck_assert_uint_eq(u->nkeys, 1);
    }
    fm_config_free(cfg);

    /* A second rotation in the same second keeps a second backup. */
    r.n = 0;
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_OK);
    ck_assert_int_eq(fm_keyrotate_commit(job, backup, sizeof(backup), err, sizeof(err)), FM_OK);
    fm_keyrotate_free(job);
    ck_assert_str_eq(strrchr(backup, '/'), "/config.yaml.bak-20251201T000000Z.1");
    ck_assert_uint_eq(stat(backup, &bst), 0);
    ck_assert_uint_eq(bst.st_ino, after.st_ino);
}
END_TEST

/* The file as it was: same bytes, inode, mode and time, and nothing beside it. */
static void assert_untouched(const char *text, const struct stat *before)
{
    struct stat st;
    char names[1024];
    char *now = th_read_file(path);

    ck_assert_str_eq(now, text);
    free(now);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_ino, before->st_ino);
    ck_assert_uint_eq(st.st_mode, before->st_mode);
    ck_assert_int_eq(st.st_mtim.tv_nsec, before->st_mtim.tv_nsec);
    list_dir(names, sizeof(names));
    ck_assert_str_eq(names, "config.yaml ");
}

START_TEST(failures_leave_the_file_as_it_was)
{
    static const char bad[] = "auth:\n  api_keys:\n    zed:\n      hash: \"" H1 "\"\n"
                              "      roles: [nosuchrole]\n";
    static const char env[] = "auth:\n  api_keys:\n    zed:\n      hash: \"" H1 "\"\n"
                              "    amy:\n      hash: \"${AMY_HASH}\"\n";
    struct fixed f = {0, 2};
    fm_keyrotate_opts o = {NULL, NOW, 0, fixed_hash, &f};
    fm_keyrotate_job *job = (fm_keyrotate_job *)&f;
    char err[FM_CONFIG_ERR_MAX];
    struct stat before;

    /* A file that does not load: the loader's message. */
    th_write_file(path, bad);
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_EINVAL);
    ck_assert_ptr_null(job);
    ck_assert_msg(strstr(err, "config.yaml:5:15: user \"zed\" has unknown role") != NULL, "%s",
                  err);
    assert_untouched(bad, &before);

    /* A refusal after the first user was rotated in memory. */
    (void)setenv("AMY_HASH", H2, 1);
    th_write_file(path, env);
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_EINVAL);
    ck_assert_msg(strstr(err, "config.yaml:6:13: this hash comes from the environment") != NULL,
                  "%s", err);
    assert_untouched(env, &before);

    /* The caller's callback fails for the second user. */
    th_write_file(path, CONFIG);
    ck_assert_int_eq(stat(path, &before), 0);
    f.n = 0;
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_ESYS);
    assert_untouched(CONFIG, &before);

    /* Prepared, then changed by someone else before the commit: not overwritten. */
    f.n = 0;
    f.fail_at = 0;
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_OK);
    th_sleep_ms(5);
    th_write_file(path, CONFIG "# edited\n");
    ck_assert_int_eq(stat(path, &before), 0);
    {
        char backup[FM_KEYROTATE_BACKUP_MAX];

        ck_assert_int_eq(fm_keyrotate_commit(job, backup, sizeof(backup), err, sizeof(err)),
                         FM_ECONFLICT);
    }
    fm_keyrotate_free(job);
    ck_assert_ptr_nonnull(strstr(err, "was changed by someone else meanwhile"));
    assert_untouched(CONFIG "# edited\n", &before);
}
END_TEST

/* Prepared but never committed: fm_keyrotate_free removes the new file. */
START_TEST(free_without_commit_removes_the_new_file)
{
    struct fixed f = {0};
    fm_keyrotate_opts o = {"alice", NOW, 7 * DAY, fixed_hash, &f};
    fm_keyrotate_job *job;
    char err[FM_CONFIG_ERR_MAX], names[1024];
    struct stat before;

    th_write_file(path, CONFIG);
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(fm_keyrotate_prepare(path, &o, &job, err, sizeof(err)), FM_OK);
    ck_assert_int_eq(f.n, 1);
    list_dir(names, sizeof(names));
    ck_assert_ptr_nonnull(strstr(names, ".config.yaml.rotate-"));
    fm_keyrotate_free(job);
    assert_untouched(CONFIG, &before);
}
END_TEST

static Suite *keyrotate_suite(void)
{
    Suite *s = suite_create("keyrotate");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, all_grace_zero_only_the_key_ranges_change);
    tcase_add_test(tc, grace_keeps_old_keys_with_expires);
    tcase_add_test(tc, one_user_leaves_the_others);
    tcase_add_test(tc, apikeys_flow_sections_and_no_final_newline);
    tcase_add_test(tc, refuses_what_it_cannot_rewrite);
    tcase_add_test(tc, file_rotated_atomically_with_owner_mode_and_backup);
    tcase_add_test(tc, failures_leave_the_file_as_it_was);
    tcase_add_test(tc, free_without_commit_removes_the_new_file);
    suite_add_tcase(s, tc);
    return s;
}

TH_MAIN(keyrotate_suite)
