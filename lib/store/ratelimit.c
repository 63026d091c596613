/*
 * ratelimit.c - token bucket in Redis, with per-worker reservations.
 *
 * Algorithm (all inside one EVALSHA, so it is atomic across workers):
 *   now     = Redis TIME in microseconds
 *   tokens  = stored tokens, or burst for a new bucket
 *   held    = sum of the other workers' unexpired reservations (fields
 *             "w:<worker id>" = "<tokens kept>:<expiry us>"; expired ones and
 *             the caller's own are deleted: a worker only asks Redis once it
 *             holds nothing for this bucket)
 *   tokens  = min(burst - held, tokens + (now - ts) * rate)   refill since last visit
 *   if tokens >= 1:
 *       grant = clamp(floor(tokens / workers), 1, want)       never the whole bucket
 *       tokens -= grant; record "w:<id>" = grant - 1 until now + hold
 *   else retry_after = (1 - tokens) / rate                    time to the next token
 *   store {tokens, ts = now}, PEXPIRE = time to refill to burst (+1 s)
 * rate is tokens per microsecond = requests_per_minute / 60e6. Fractional
 * tokens are kept (as a string, to survive Lua's integer reply conversion),
 * so a slow steady client is never rounded into refusal.
 *
 * Why the cap at burst - held: a reservation moves tokens from Redis to a
 * worker. If the bucket went on refilling to burst while they sit there, a
 * client could spend burst + the held tokens in one instant. With the cap,
 * Redis tokens + tokens in workers <= burst at all times, which is exactly
 * the single-bucket guarantee. The cost is that spent reserved tokens still
 * count as held until their expiry, so a bucket that is nearly full while
 * reservations flow refills a little less than it could: under-admission,
 * only when the client is far from its limit.
 *
 * The worker keeps what it was granted in a small table keyed by bucket key
 * and rate, each entry expiring FM_RL_RESERVE_MS after the moment (the
 * caller's clock) before the script ran; Redis keeps the record a margin
 * longer, so the worker always stops spending before Redis stops counting.
 * How much it asks for follows its own demand (next_want), so that tokens
 * lost to expiry stay few when a client's requests are spread thin.
 */
#include "ratelimit.h"
#include "scripts.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Redis keeps a reservation recorded this much longer than the worker spends it. */
#define HOLD_MARGIN_MS 50
#define KEY_MAX 256

/*
 * allow-oom: a bucket is one small hash per user that expires, so the
 * limiter keeps deciding when Redis is over maxmemory (only new task records
 * are refused then, see tasks.c).
 */
fm_redis_script fm_ratelimit_bucket_script = {
    .source =
        "#!lua flags=allow-oom\n"
        "local rate = tonumber(ARGV[1]) / 60000000\n"
        "local burst = tonumber(ARGV[2])\n"
        "local want = tonumber(ARGV[3])\n"
        "local workers = tonumber(ARGV[4])\n"
        "local me = 'w:' .. ARGV[5]\n"
        "local hold = tonumber(ARGV[6])\n"
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        "local h = redis.call('HGETALL', KEYS[1])\n"
        "local tokens, ts, held = nil, nil, 0\n"
        "for i = 1, #h, 2 do\n"
        "  local f, v = h[i], h[i + 1]\n"
        "  if f == 'tokens' then tokens = tonumber(v)\n"
        "  elseif f == 'ts' then ts = tonumber(v)\n"
        "  else\n"
        "    local n, e = string.match(v, '^(%d+):(%d+)$')\n"
        "    if f == me or n == nil or tonumber(e) <= now then\n"
        "      redis.call('HDEL', KEYS[1], f)\n"
        "    else held = held + tonumber(n) end\n"
        "  end\n"
        "end\n"
        "if tokens == nil or ts == nil then tokens = burst; ts = now end\n"
        "if now > ts then\n"
        "  tokens = tokens + (now - ts) * rate\n"
        "  ts = now\n"
        "end\n"
        "if tokens > burst - held then tokens = burst - held end\n"
        "if tokens < 0 then tokens = 0 end\n"
        "local granted = 0\n"
        "local retry = 0\n"
        "if tokens >= 1 then\n"
        "  granted = math.min(want, math.floor(tokens / workers))\n"
        "  if granted < 1 then granted = 1 end\n"
        "  tokens = tokens - granted\n"
        "  if granted > 1 then\n"
        "    redis.call('HSET', KEYS[1], me, string.format('%d:%d', granted - 1, now + hold))\n"
        "  end\n"
        "else\n"
        "  retry = math.ceil((1 - tokens) / rate / 1000)\n"
        "end\n"
        "local full = math.ceil((burst - tokens) / rate / 1000)\n"
        "redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', "
        "string.format('%d', ts))\n"
        "redis.call('PEXPIRE', KEYS[1], full + 1000)\n"
        "return {granted, math.floor(tokens), retry, full}\n",
};

/*
 * This process's reservation for one bucket, and how big the last one was.
 * A slot whose key is "" is unused.
 */
typedef struct local_slot {
    char key[KEY_MAX];
    fm_rate rate;        /* the rate it was reserved under */
    uint32_t tokens;     /* still spendable */
    uint32_t granted;    /* size of the last reservation */
    int64_t reserved_ms; /* when it was asked for (caller's monotonic clock) */
    uint32_t redis_left; /* whole tokens Redis had left after it */
    int64_t full_ms;     /* Redis's time-to-full after it */
    uint64_t used;       /* last use, for eviction; 0 = never */
} local_slot;

static struct {
    bool ready; /* cleared in a forked child: it starts empty rather than spend its parent's tokens
                 */
    char worker_id[33];
    uint64_t tick;
    local_slot slots[FM_RL_LOCAL_SLOTS];
} local;

/* Runs in the child of every fork(2) (pthread_atfork): no getpid(2) per request to notice one. */
static void local_forget(void)
{
    local.ready = false;
}

static void local_init(void)
{
    static bool registered;
    unsigned char rnd[16];

    if (local.ready)
        return;
    if (!registered)
        registered = pthread_atfork(NULL, NULL, local_forget) == 0;
    memset(&local, 0, sizeof(local));
    local.ready = registered; /* without the hook, nothing is kept from one call to the next */
    randombytes_buf(rnd, sizeof(rnd));
    (void)sodium_bin2hex(local.worker_id, sizeof(local.worker_id), rnd, sizeof(rnd));
}

static uint32_t ms_to_s_ceil(long long ms)
{
    if (ms <= 0)
        return 0;
    return (uint32_t)((ms + 999) / 1000);
}

/* Milliseconds in which the bucket refills n tokens. */
static long long refill_ms(uint32_t n, const fm_rate *rate)
{
    return (long long)n * 60000 / (long long)rate->requests_per_minute;
}

/*
 * The slot for key: its own, else the least recently used one made over to
 * it (tokens held there are lost, which is safe). A new rate starts afresh.
 */
static local_slot *local_slot_for(const char *key, const fm_rate *rate)
{
    local_slot *s = NULL, *victim = &local.slots[0];

    for (size_t i = 0; i < FM_RL_LOCAL_SLOTS && s == NULL; i++) {
        if (strcmp(local.slots[i].key, key) == 0)
            s = &local.slots[i];
        else if (local.slots[i].used < victim->used)
            victim = &local.slots[i];
    }
    if (s == NULL || s->rate.requests_per_minute != rate->requests_per_minute ||
        s->rate.burst != rate->burst) {
        if (s == NULL)
            s = victim;
        memset(s, 0, sizeof(*s));
        (void)snprintf(s->key, sizeof(s->key), "%s", key);
        s->rate = *rate;
    }
    s->used = ++local.tick;
    return s;
}

/*
 * How many tokens to ask for: grown only by demand, like a slow start. A
 * reservation spent before it expired, with the next request still inside
 * its lifetime, doubles the next; one that expired with tokens left halves
 * it; a quiet spell starts again at 1. So a client whose requests are spread
 * thin over the workers loses (almost) nothing to expiry, and a busy one
 * soon needs one EVALSHA per max requests.
 */
static uint32_t next_want(const local_slot *s, int64_t now_ms, uint32_t max)
{
    int64_t age = now_ms - s->reserved_ms;
    uint32_t want;

    if (s->granted == 0 || age >= 2 * FM_RL_RESERVE_MS)
        want = 1;
    else if (s->tokens > 0)
        want = s->granted / 2;
    else if (age < FM_RL_RESERVE_MS)
        want = s->granted * 2;
    else
        want = s->granted;
    return want < 1 ? 1 : want > max ? max : want;
}

/* Spends one reserved token of s into out. */
static void local_spend(local_slot *s, fm_rl_result *out)
{
    s->tokens--;
    out->allowed = true;
    out->local = true;
    out->remaining = s->redis_left + s->tokens;
    out->reset_s = ms_to_s_ceil(s->full_ms - refill_ms(s->tokens, &s->rate));
}

/* Parses the script's {granted, remaining, retry_ms, full_ms}; -1 on any other shape. */
static int parse_reply(const redisReply *reply, long long v[4])
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER || reply->element[i]->integer < 0)
            return -1;
        v[i] = reply->element[i]->integer;
    }
    return 0;
}

fm_err fm_ratelimit_take(fm_redis *redis, const char *prefix, const char *user, const fm_rate *rate,
                         int workers, int64_t now_ms, fm_rl_result *out)
{
    char key[KEY_MAX], rpm[16], burst[16], want[16], nworkers[16], hold[16];
    const char *argv[7] = {key, rpm, burst, want, nworkers, local.worker_id, hold};
    redisReply *reply;
    local_slot *slot;
    long long v[4];
    uint32_t max, asked;
    fm_err rc = FM_EREDIS;

    memset(out, 0, sizeof(*out));
    out->limit = rate->requests_per_minute;
    out->burst = rate->burst;
    if (workers < 1)
        workers = 1;
    if (snprintf(key, sizeof(key), "%srl:%s", prefix, user) >= (int)sizeof(key))
        return FM_EINVAL;
    local_init();
    slot = local_slot_for(key, rate);
    if (slot->tokens > 0 && now_ms - slot->reserved_ms < FM_RL_RESERVE_MS) {
        local_spend(slot, out);
        return FM_OK;
    }

    max = rate->burst / (uint32_t)workers;
    if (max > FM_RL_RESERVE_MAX)
        max = FM_RL_RESERVE_MAX;
    asked = next_want(slot, now_ms, max < 1 ? 1 : max);
    (void)snprintf(rpm, sizeof(rpm), "%u", (unsigned)rate->requests_per_minute);
    (void)snprintf(burst, sizeof(burst), "%u", (unsigned)rate->burst);
    (void)snprintf(want, sizeof(want), "%u", (unsigned)asked);
    (void)snprintf(nworkers, sizeof(nworkers), "%d", workers);
    (void)snprintf(hold, sizeof(hold), "%d", (FM_RL_RESERVE_MS + HOLD_MARGIN_MS) * 1000);
    /* Whatever is left of the old reservation is dropped now; Redis forgets it too. */
    slot->tokens = 0;
    reply = fm_redis_eval(redis, &fm_ratelimit_bucket_script, 1, 7, argv);
    if (reply == NULL)
        return FM_EREDIS;
    if (parse_reply(reply, v) == 0 && v[0] <= (long long)asked) {
        if (v[0] >= 1) {
            slot->tokens = (uint32_t)v[0];
            slot->granted = (uint32_t)v[0];
            slot->reserved_ms = now_ms;
            slot->redis_left = (uint32_t)v[1];
            slot->full_ms = v[3];
            local_spend(slot, out);
            out->local = false;
        } else {
            out->remaining = (uint32_t)v[1];
            out->retry_after_s = ms_to_s_ceil(v[2]);
            if (out->retry_after_s < 1)
                out->retry_after_s = 1;
            out->reset_s = ms_to_s_ceil(v[3]);
        }
        rc = FM_OK;
    }
    freeReplyObject(reply);
    return rc;
}

void fm_ratelimit_headers(const fm_rl_result *res, fm_response *resp)
{
    (void)fm_response_header(resp, "RateLimit-Policy: \"user\";q=%u;w=60", (unsigned)res->limit);
    (void)fm_response_header(resp, "RateLimit: \"user\";r=%u;t=%u", (unsigned)res->remaining,
                             (unsigned)res->reset_s);
}
