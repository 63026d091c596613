/*
 * limits.c - the rate_limit section: the default per-user token bucket, what
 * to do when Redis cannot answer, and the brute-force guard's policy
 * (auth_failures, anonymous). Users and roles may give their own bucket (bucket_table);
 * a field they leave out takes the default once the whole file is read.
 */
#include "sections.h"

#define RATE_MAX 1000000

/* The two fields of a bucket; the defaults apply to the global one only. */
#define BUCKET_ROWS(type, rpm, burst, rpm_def, burst_def)                                          \
    LD_INT_ROW("requests_per_minute", type, rpm, 1, RATE_MAX, rpm_def),                            \
        LD_INT_ROW("burst", type, burst, 1, RATE_MAX, burst_def)

/* 0 = not given: limits_complete_rate fills it in (defaults are never applied to this table). */
LD_TABLE(, bucket_table, BUCKET_ROWS(fm_rate, requests_per_minute, burst, 0, 0));

static const char *const on_error_names[] = {"deny", "allow"};

LD_TABLE(static, auth_failures_table,
         LD_INT_ROW("max", fm_config, rate_limit.auth_failures.max, 1, 1000000, 10),
         LD_INT_ROW("window_seconds", fm_config, rate_limit.auth_failures.window_seconds, 1, 86400,
                    300),
         LD_INT_ROW("block_seconds", fm_config, rate_limit.auth_failures.block_seconds, 1, 604800,
                    900),
         /* Keys that worked from an address keep working there while it is blocked; 0 = off. */
         LD_INT_ROW("known_days", fm_config, rate_limit.auth_failures.known_days, 0, 365, 30));

/* Requests without any credential, per address: counted and blocked like failures. */
LD_TABLE(static, anonymous_table,
         LD_INT_ROW("max", fm_config, rate_limit.auth_failures.anon_max, 1, 1000000, 300),
         LD_INT_ROW("window_seconds", fm_config, rate_limit.auth_failures.anon_window_seconds, 1,
                    86400, 60));

LD_TABLE(, limits_table,
         BUCKET_ROWS(fm_config, rate_limit.rate.requests_per_minute, rate_limit.rate.burst, 30, 10),
         /* deny (the default) answers 503 while Redis is down; allow lets requests through. */
         LD_ENUM_ROW("on_redis_error", fm_config, rate_limit.on_redis_error_allow, on_error_names,
                     "deny or allow", 0),
         LD_SECTION_ROW("auth_failures", auth_failures_table, NULL),
         LD_SECTION_ROW("anonymous", anonymous_table, NULL));

void limits_complete_rate(const fm_config *cfg, bool has_rate, fm_rate *rate)
{
    if (has_rate && rate->requests_per_minute == 0)
        rate->requests_per_minute = cfg->rate_limit.rate.requests_per_minute;
    if (has_rate && rate->burst == 0)
        rate->burst = cfg->rate_limit.rate.burst;
}
