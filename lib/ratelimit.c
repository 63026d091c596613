/*
 * ratelimit.c - token bucket in Redis.
 *
 * Algorithm (all inside one EVALSHA, so it is atomic across workers):
 *   now     = Redis TIME in microseconds
 *   tokens  = stored tokens, or burst for a new bucket
 *   tokens  = min(burst, tokens + (now - ts) * rate)      refill since last visit
 *   if tokens >= 1: tokens -= 1, allowed                  take one
 *   else retry_after = (1 - tokens) / rate                 time to the next token
 *   store {tokens, ts = now}, PEXPIRE = time to refill to burst (+1 s)
 * rate is tokens per microsecond = requests_per_minute / 60e6. Fractional
 * tokens are kept (as a string, to survive Lua's integer reply conversion),
 * so a slow steady client is never rounded into refusal.
 */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

static fm_redis_script bucket_script = {
    .source = "local rate = tonumber(ARGV[1]) / 60000000\n"
              "local burst = tonumber(ARGV[2])\n"
              "local t = redis.call('TIME')\n"
              "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
              "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
              "local tokens = tonumber(b[1])\n"
              "local ts = tonumber(b[2])\n"
              "if tokens == nil or ts == nil then tokens = burst; ts = now end\n"
              "if now > ts then\n"
              "  tokens = math.min(burst, tokens + (now - ts) * rate)\n"
              "  ts = now\n"
              "end\n"
              "if tokens > burst then tokens = burst end\n"
              "local allowed = 0\n"
              "local retry = 0\n"
              "if tokens >= 1 then\n"
              "  tokens = tokens - 1\n"
              "  allowed = 1\n"
              "else\n"
              "  retry = math.ceil((1 - tokens) / rate / 1000)\n"
              "end\n"
              "local full = math.ceil((burst - tokens) / rate / 1000)\n"
              "redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', "
              "string.format('%d', ts))\n"
              "redis.call('PEXPIRE', KEYS[1], full + 1000)\n"
              "return {allowed, math.floor(tokens), retry, full}\n",
};

static uint32_t ms_to_s_ceil(long long ms)
{
    if (ms <= 0)
        return 0;
    return (uint32_t)((ms + 999) / 1000);
}

int fm_ratelimit_take(fm_redis *redis, const char *prefix, const char *user, const fm_rate *rate,
                      fm_rl_result *out)
{
    char key[256], rpm[16], burst[16];
    const char *argv[3] = {key, rpm, burst};
    redisReply *reply;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->limit = rate->requests_per_minute;
    out->burst = rate->burst;
    if (snprintf(key, sizeof(key), "%srl:%s", prefix, user) >= (int)sizeof(key))
        return -1;
    (void)snprintf(rpm, sizeof(rpm), "%u", (unsigned)rate->requests_per_minute);
    (void)snprintf(burst, sizeof(burst), "%u", (unsigned)rate->burst);
    reply = fm_redis_eval(redis, &bucket_script, 1, 3, argv);
    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4) {
        int ok = 1;
        for (size_t i = 0; i < 4; i++)
            ok &= reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer >= 0;
        if (ok) {
            out->allowed = reply->element[0]->integer == 1;
            out->remaining = (uint32_t)reply->element[1]->integer;
            out->retry_after_s = ms_to_s_ceil(reply->element[2]->integer);
            if (!out->allowed && out->retry_after_s < 1)
                out->retry_after_s = 1;
            out->reset_s = ms_to_s_ceil(reply->element[3]->integer);
            rc = 0;
        }
    }
    freeReplyObject(reply);
    return rc;
}

void fm_ratelimit_headers(const fm_rl_result *res, char *policy, char *state, size_t cap)
{
    (void)snprintf(policy, cap, "RateLimit-Policy: \"user\";q=%u;w=60", (unsigned)res->limit);
    (void)snprintf(state, cap, "RateLimit: \"user\";r=%u;t=%u", (unsigned)res->remaining,
                   (unsigned)res->reset_s);
}
