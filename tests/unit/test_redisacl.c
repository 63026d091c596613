/*
 * test_redisacl.c - lib/store/redisacl.c: the rules name the prefix's keys
 * and channel, the commands lib/store sends and those its scripts call, and
 * EVALSHA of the scripts' digests as Redis computes them (SCRIPT LOAD on a
 * private server); Redis accepts the line as an ACL user's rules; bad
 * arguments and a small buffer are refused with "" left in the buffer.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "redisacl.h"
#include "scripts.h"
#include "taskscripts.h"

#define RULES_MAX 4096

/* Whether word (a whole space-separated word) is in rules. */
static bool has_word(const char *rules, const char *word)
{
    size_t len = strlen(word);

    for (const char *p = strstr(rules, word); p != NULL; p = strstr(p + 1, word))
        if ((p == rules || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return true;
    return false;
}

START_TEST(rules_name_prefix_commands_and_scripts)
{
    static const char *const want[] = {
        "resetkeys", "~pfx:*", "resetchannels", "&pfx:events", "-@all",        "+ping",
        "+hgetall",  "+zrem",  "+publish",      "+subscribe",  "+script|load", "+zadd",
        "+incr",     "+time",  "+hset",         "+zpopmin",
    };
    static const char *const never[] = {"+eval",   "+evalsha", "+@all",   "+keys", "+flushall",
                                        "+config", "+select",  "allkeys", "~*"};
    char rules[RULES_MAX];

    ck_assert_int_eq(fm_redisacl_rules("pfx:", 0, rules, sizeof(rules)), FM_OK);
    ck_assert_msg(strncmp(rules, "resetkeys ~pfx:* resetchannels &pfx:events -@all +", 50) == 0,
                  "%s", rules);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(has_word(rules, want[i]), "no %s in %s", want[i], rules);
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        ck_assert_msg(!has_word(rules, never[i]), "%s in %s", never[i], rules);
}
END_TEST

START_TEST(select_only_for_another_db)
{
    char rules[RULES_MAX];

    ck_assert_int_eq(fm_redisacl_rules("fetchml:", 7, rules, sizeof(rules)), FM_OK);
    ck_assert(has_word(rules, "+select|7"));
}
END_TEST

/* Each script's EVALSHA rule carries the digest Redis gives it. */
START_TEST(evalsha_of_each_script_as_redis_names_it)
{
    fm_redis_script *const scripts[] = {
        &fm_taskscript_create,   &fm_taskscript_claim,       &fm_taskscript_heartbeat,
        &fm_taskscript_complete, &fm_taskscript_cancel,      &fm_taskscript_delete,
        &fm_taskscript_restore,  &fm_taskscript_sweep,       &fm_taskscript_unacked,
        &fm_taskscript_list,     &fm_bruteforce_fail_script, &fm_ratelimit_bucket_script,
        &fm_wsconn_end_script,   &fm_wsconn_mark_script,
    };
    char rules[RULES_MAX], word[64];
    size_t n = 0;

    ck_assert_int_eq(fm_redisacl_rules("fetchml:", 0, rules, sizeof(rules)), FM_OK);
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts[i]->source};
        redisReply *reply = th_redis_cmd(th_r, 3, argv);

        ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
        (void)snprintf(word, sizeof(word), "+evalsha|%s", reply->str);
        freeReplyObject(reply);
        ck_assert_msg(has_word(rules, word), "script %zu: no %s", i, word);
    }
    for (const char *p = strstr(rules, "+evalsha|"); p != NULL; p = strstr(p + 1, "+evalsha|"))
        n++;
    ck_assert_uint_eq(n, sizeof(scripts) / sizeof(scripts[0]));
}
END_TEST

/* The line is valid ACL syntax for Redis 7: ACL SETUSER takes its words. */
START_TEST(redis_accepts_the_rules)
{
    char rules[RULES_MAX];
    const char *argv[96] = {"ACL", "SETUSER", "app", "on", ">pw"};
    int argc = 5;

    ck_assert_int_eq(fm_redisacl_rules("fetchml:", 3, rules, sizeof(rules)), FM_OK);
    for (char *save = NULL, *w = strtok_r(rules, " ", &save); w != NULL;
         w = strtok_r(NULL, " ", &save)) {
        ck_assert_int_lt(argc, 96);
        argv[argc++] = w;
    }
    freeReplyObject(th_redis_cmd(th_r, argc, argv));
}
END_TEST

START_TEST(bad_arguments_refused)
{
    char rules[RULES_MAX], small[64];

    memset(rules, 'x', sizeof(rules));
    ck_assert_int_eq(fm_redisacl_rules("a b:", 0, rules, sizeof(rules)), FM_EINVAL);
    ck_assert_str_eq(rules, "");
    ck_assert_int_eq(fm_redisacl_rules("", 0, rules, sizeof(rules)), FM_EINVAL);
    ck_assert_int_eq(fm_redisacl_rules(NULL, 0, rules, sizeof(rules)), FM_EINVAL);
    ck_assert_int_eq(fm_redisacl_rules("p*:", 0, rules, sizeof(rules)), FM_EINVAL);
    ck_assert_int_eq(fm_redisacl_rules("fetchml:", 16, rules, sizeof(rules)), FM_EINVAL);
    ck_assert_int_eq(fm_redisacl_rules("fetchml:", -1, rules, sizeof(rules)), FM_EINVAL);
    memset(small, 'x', sizeof(small));
    ck_assert_int_eq(fm_redisacl_rules("fetchml:", 0, small, sizeof(small)), FM_ETOOBIG);
    ck_assert_str_eq(small, "");
}
END_TEST

static Suite *redisacl_suite(void)
{
    Suite *s = suite_create("redisacl");
    TCase *tc = tcase_create("core");
    TCase *live = tcase_create("redis");

    tcase_add_test(tc, rules_name_prefix_commands_and_scripts);
    tcase_add_test(tc, select_only_for_another_db);
    tcase_add_test(tc, bad_arguments_refused);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(live, th_redis_setup, th_redis_teardown);
    tcase_set_timeout(live, 30);
    tcase_add_test(live, evalsha_of_each_script_as_redis_names_it);
    tcase_add_test(live, redis_accepts_the_rules);
    suite_add_tcase(s, live);
    return s;
}

TH_MAIN(redisacl_suite)
