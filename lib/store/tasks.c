/*
 * tasks.c - task records, queue, leases and indexes in Redis (layout: tasks.h).
 *
 * Each transition is one Lua script made of PRELUDE and its own body. The
 * prelude's reindex(id, user, old) puts a task's entries in P queue,
 * P leases, P tasks, P status:<st> and the owner's two kinds of index
 * exactly where its hash says, given the status it had (old; nil for a task
 * not indexed yet), or takes them all away when the hash is gone: every
 * script only changes the hash and calls it. Knowing old, a transition
 * touches only the indexes of the two statuses involved. A script checks owner, holder and status
 * itself and answers {code, before, after[, id]}: before and after are the
 * hash as HGETALL gives it, before for the undo token, after for the answer,
 * so each change is one round trip.
 *
 * Claim pops P queue's lowest score (ZPOPMIN) and drops an id whose hash is
 * not queued (an entry left by an operator's edit); two claimers never get
 * one task because a script runs alone. An expired lease requeues the task
 * with the same hash fields priority and seq, hence the same score: its old
 * place.
 *
 * Listing is one read-only script per page (ZCARD, ZREVRANGE of the page,
 * HGETALL of each id): one round trip, which pipelined HGETALLs after a
 * ZREVRANGE would not give (two), and retried after a lost reply because
 * it only reads. The page stops before its rendered size would pass
 * max_bytes.
 */
#include "tasks.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "taskbody.h"

/*
 * The first line of a script: whether it may run while Redis is over
 * maxmemory (noeviction). Only a create adds a record; every other
 * transition changes, moves or removes what is there, so that when Redis is
 * full, new tasks are refused while workers can still finish theirs and
 * users can still cancel and delete (which frees memory).
 */
#define GROWS "#!lua\n"
#define SHRINKS "#!lua flags=allow-oom\n"

/*
 * ARGV[1] is the prefix P in every script (keys under it are computed here
 * from ids and the owner in the hash); KEYS[1], when given, the task's hash.
 * A transition's last two ARGV are its journal note, trace id and actor
 * (note_of): journal(id, event[, actor]) adds the change's member to
 * P journal and returns it, the last element of every answer.
 */
#define PRELUDE                                                                                    \
    "local P = ARGV[1]\n"                                                                          \
    "local STATUSES = {'queued', 'running', 'completed', 'failed', 'cancelled'}\n"                 \
    "local function num(x) return string.format('%.0f', x) end\n"                                  \
    "local function now_ms()\n"                                                                    \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"                                                                                        \
    "local function reindex(id, user, old)\n"                                                      \
    "  local f = redis.call('HMGET', P .. 'task:' .. id, 'status', 'priority', 'seq', "            \
    "'lease_ms')\n"                                                                                \
    "  local u = P .. 'user:' .. user .. ':'\n"                                                    \
    "  if old == 'queued' and f[1] ~= 'queued' then redis.call('ZREM', P .. 'queue', id) end\n"    \
    "  if old == 'running' and f[1] ~= 'running' then redis.call('ZREM', P .. 'leases', id) end\n" \
    "  if old and old ~= f[1] then\n"                                                              \
    "    redis.call('ZREM', P .. 'status:' .. old, id)\n"                                          \
    "    redis.call('ZREM', u .. 'status:' .. old, id)\n"                                          \
    "  end\n"                                                                                      \
    "  if not f[1] then\n"                                                                         \
    "    redis.call('ZREM', P .. 'tasks', id)\n"                                                   \
    "    redis.call('ZREM', u .. 'tasks', id)\n"                                                   \
    "    return\n"                                                                                 \
    "  end\n"                                                                                      \
    "  redis.call('HINCRBY', P .. 'task:' .. id, 'rev', 1)\n"                                      \
    "  if not old then\n"                                                                          \
    "    redis.call('ZADD', P .. 'tasks', f[3], id)\n"                                             \
    "    redis.call('ZADD', u .. 'tasks', f[3], id)\n"                                             \
    "  end\n"                                                                                      \
    "  if old ~= f[1] then\n"                                                                      \
    "    redis.call('ZADD', P .. 'status:' .. f[1], f[3], id)\n"                                   \
    "    redis.call('ZADD', u .. 'status:' .. f[1], f[3], id)\n"                                   \
    "  end\n"                                                                                      \
    "  if f[1] == 'queued' and old ~= 'queued' then\n"                                             \
    "    redis.call('ZADD', P .. 'queue', num((10 - tonumber(f[2])) * 1e12 + tonumber(f[3])), "    \
    "id)\n"                                                                                        \
    "  elseif f[1] == 'running' then\n"                                                            \
    "    redis.call('ZADD', P .. 'leases', f[4], id)\n"                                            \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function journal(id, ev, actor)\n"                                                      \
    "  local ms = now_ms()\n"                                                                      \
    "  local who = string.gsub(actor or ARGV[#ARGV], '[^!-~]', '_')\n"                             \
    "  if who == '' then who = '-' end\n"                                                          \
    "  local m = num(ms) .. ' ' .. id .. ' ' .. ev .. ' ' .. ARGV[#ARGV - 1] .. ' ' .. who\n"      \
    "  redis.call('ZADD', P .. 'journal', ms, m)\n"                                                \
    "  return m\n"                                                                                 \
    "end\n"                                                                                        \
    "local function hold(worker)\n"                                                                \
    "  local f = redis.call('HMGET', KEYS[1], 'status', 'worker_id', 'lease_ms', 'user', "         \
    "'cancel_requested')\n"                                                                        \
    "  if not f[1] then return nil, 'notfound' end\n"                                              \
    "  local now = now_ms()\n"                                                                     \
    "  if f[1] ~= 'running' or f[2] ~= worker or tonumber(f[3] or 0) < now then\n"                 \
    "    return nil, 'conflict'\n"                                                                 \
    "  end\n"                                                                                      \
    "  return f, now\n"                                                                            \
    "end\n"

/* KEYS: task. ARGV: P, id, user, priority, spec, max_open_tasks (0 = none). */
static fm_redis_script create_script = {
    .source = GROWS PRELUDE
    "local max_open = tonumber(ARGV[6])\n"
    "if max_open > 0 then\n"
    "  local u = P .. 'user:' .. ARGV[3] .. ':status:'\n"
    "  if redis.call('ZCARD', u .. 'queued') + redis.call('ZCARD', u .. 'running') >= max_open "
    "then\n"
    "    return {'quota'}\n"
    "  end\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('task id exists') end\n"
    "local seq = redis.call('INCR', P .. 'task_seq')\n"
    "redis.call('HSET', KEYS[1], 'spec', ARGV[5], 'user', ARGV[3], 'priority', ARGV[4], 'seq', "
    "seq, 'status', 'queued', 'attempts', '0')\n"
    "reindex(ARGV[2], ARGV[3], nil)\n"
    "return {'ok', {}, redis.call('HGETALL', KEYS[1]), ARGV[2], journal(ARGV[2], "
    "'task.created')}\n",
};

/* ARGV: P, worker_id, lease_seconds. Answers {'ok', before, after, id, member} or {'empty'}. */
static fm_redis_script claim_script = {
    .source = SHRINKS PRELUDE
    "while true do\n"
    "  local e = redis.call('ZPOPMIN', P .. 'queue')\n"
    "  if #e == 0 then return {'empty'} end\n"
    "  local k = P .. 'task:' .. e[1]\n"
    "  local f = redis.call('HMGET', k, 'status', 'user', 'attempts', 'started_ms')\n"
    "  if f[1] == 'queued' then\n"
    "    local before = redis.call('HGETALL', k)\n"
    "    local now = now_ms()\n"
    "    redis.call('HSET', k, 'status', 'running', 'worker_id', ARGV[2], 'attempts', "
    "num(tonumber(f[3] or 0) + 1), 'lease_ms', num(now + tonumber(ARGV[3]) * 1000))\n"
    "    if not f[4] then redis.call('HSET', k, 'started_ms', num(now)) end\n"
    "    reindex(e[1], f[2], 'queued')\n"
    "    return {'ok', before, redis.call('HGETALL', k), e[1], journal(e[1], 'task.started')}\n"
    "  end\n"
    "end\n",
};

/* KEYS: task. ARGV: P, id, worker_id, lease_seconds, progress ('' = keep), metrics ('' = keep). */
static fm_redis_script heartbeat_script = {
    .source = SHRINKS PRELUDE
    "local f, now = hold(ARGV[3])\n"
    "if not f then return {now} end\n"
    "local before = redis.call('HGETALL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'lease_ms', num(now + tonumber(ARGV[4]) * 1000))\n"
    "if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[5]) end\n"
    "if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'metrics', ARGV[6]) end\n"
    "reindex(ARGV[2], f[4], 'running')\n"
    "return {'ok', before, redis.call('HGETALL', KEYS[1]), ARGV[2], journal(ARGV[2], "
    "'task.progress')}\n",
};

/* KEYS: task. ARGV: P, id, worker_id, status, error ('' = none). */
static fm_redis_script complete_script = {
    .source =
        SHRINKS PRELUDE "local f, now = hold(ARGV[3])\n"
                        "if not f then return {now} end\n"
                        "if ARGV[4] == 'cancelled' and f[5] ~= '1' then return {'conflict'} end\n"
                        "local before = redis.call('HGETALL', KEYS[1])\n"
                        "redis.call('HSET', KEYS[1], 'status', ARGV[4], 'ended_ms', num(now))\n"
                        "redis.call('HDEL', KEYS[1], 'lease_ms')\n"
                        "if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end\n"
                        "reindex(ARGV[2], f[4], 'running')\n"
                        "return {'ok', before, redis.call('HGETALL', KEYS[1]), ARGV[2], "
                        "journal(ARGV[2], 'task.' .. ARGV[4])}\n",
};

/* The owner check of cancel and delete: ARGV[3] is the owner, '' for anyone's task. */
#define OWNED                                                                                      \
    "local f = redis.call('HMGET', KEYS[1], 'status', 'user')\n"                                   \
    "if not f[1] or (ARGV[3] ~= '' and f[2] ~= ARGV[3]) then return {'notfound'} end\n"            \
    "local before = redis.call('HGETALL', KEYS[1])\n"

/* KEYS: task. ARGV: P, id, owner. An ended task: {'conflict', {}, the task}. */
static fm_redis_script cancel_script = {
    .source =
        SHRINKS PRELUDE OWNED "local ev = 'task.cancelled'\n"
                              "if f[1] == 'queued' then\n"
                              "  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'ended_ms', "
                              "num(now_ms()))\n"
                              "elseif f[1] == 'running' then\n"
                              "  ev = 'task.cancel_requested'\n"
                              "  redis.call('HSET', KEYS[1], 'cancel_requested', '1')\n"
                              "else\n"
                              "  return {'conflict', {}, before}\n"
                              "end\n"
                              "reindex(ARGV[2], f[2], f[1])\n"
                              "return {'ok', before, redis.call('HGETALL', KEYS[1]), ARGV[2], "
                              "journal(ARGV[2], ev)}\n",
};

/* KEYS: task. ARGV: P, id, owner. */
static fm_redis_script delete_script = {
    .source = SHRINKS PRELUDE OWNED "if f[1] == 'running' then return {'conflict'} end\n"
                                    "redis.call('DEL', KEYS[1])\n"
                                    "reindex(ARGV[2], f[2], f[1])\n"
                                    "return {'ok', before, {}, ARGV[2], journal(ARGV[2], "
                                    "'task.deleted')}\n",
};

/*
 * KEYS: task. ARGV: P, id, token ('' = remove the task a create made). The
 * token is "<rev>;" then netstrings ("<len>:<bytes>,") of the change's
 * journal member (removed with the change) and of field, value pairs (none
 * for a create: remove the task): the hash becomes exactly those, but only
 * while the task's rev is
 * still <rev>, the one the change being undone left (1 for a create, 0 for a
 * delete: gone). A task changed since (a worker claimed it, its owner
 * cancelled it) is left as it is: 'changed'. Every change raises rev (in
 * reindex), a restore too, so a rev is never seen twice.
 */
static fm_redis_script restore_script = {
    .source = SHRINKS PRELUDE
    "local s, want, member = ARGV[3], 1, nil\n"
    "if s ~= '' then\n"
    "  local semi = string.find(s, ';', 1, true)\n"
    "  want = semi and tonumber(string.sub(s, 1, semi - 1))\n"
    "  local c = want and string.find(s, ':', semi + 1, true)\n"
    "  local n = c and tonumber(string.sub(s, semi + 1, c - 1))\n"
    "  if not n or string.sub(s, c + n + 1, c + n + 1) ~= ',' then\n"
    "    return redis.error_reply('bad undo token')\n"
    "  end\n"
    "  member = string.sub(s, c + 1, c + n)\n"
    "  s = string.sub(s, c + n + 2)\n"
    "end\n"
    "local was = redis.call('HMGET', KEYS[1], 'user', 'status', 'rev')\n"
    "if ARGV[3] == '' and not was[1] then return 'ok' end\n"
    "if tonumber(was[3] or '0') ~= want then return 'changed' end\n"
    "if member then redis.call('ZREM', P .. 'journal', member) end\n"
    "if was[1] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  reindex(ARGV[2], was[1], was[2])\n"
    "end\n"
    "if s == '' then return 'ok' end\n"
    "local h, i, owner = {}, 1, nil\n"
    "while i <= #s do\n"
    "  local c = string.find(s, ':', i, true)\n"
    "  local n = c and tonumber(string.sub(s, i, c - 1))\n"
    "  if not n or string.sub(s, c + n + 1, c + n + 1) ~= ',' then\n"
    "    return redis.error_reply('bad undo token')\n"
    "  end\n"
    "  h[#h + 1] = string.sub(s, c + 1, c + n)\n"
    "  i = c + n + 2\n"
    "end\n"
    "local rev = want\n"
    "for j = 1, #h - 1, 2 do\n"
    "  if h[j] == 'user' then owner = h[j + 1] end\n"
    "  if h[j] == 'rev' then rev = math.max(rev, tonumber(h[j + 1]) or 0) end\n"
    "end\n"
    "if #h % 2 == 1 or not owner then return redis.error_reply('bad undo token') end\n"
    "redis.call('HSET', KEYS[1], unpack(h))\n"
    "redis.call('HSET', KEYS[1], 'rev', num(rev))\n"
    "reindex(ARGV[2], owner, nil)\n"
    "return 'ok'\n",
};

/*
 * ARGV: P, max, max_attempts, trace, actor. Answers {{event, before, after,
 * id, member}, ...}, one per expired lease (lease_ms before now), oldest
 * first; each member names the worker whose lease expired.
 */
static fm_redis_script sweep_script = {
    .source = SHRINKS PRELUDE
    "local now = now_ms()\n"
    "local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', '(' .. num(now), 'LIMIT', 0, "
    "tonumber(ARGV[2]))\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local k = P .. 'task:' .. id\n"
    "  local f = redis.call('HMGET', k, 'status', 'user', 'attempts', 'cancel_requested', "
    "'worker_id')\n"
    "  if f[1] ~= 'running' then\n"
    "    redis.call('ZREM', P .. 'leases', id)\n"
    "    if f[1] then reindex(id, f[2], f[1]) end\n"
    "  else\n"
    "    local before, ev = redis.call('HGETALL', k), 'task.failed'\n"
    "    if f[4] == '1' then\n"
    "      ev = 'task.cancelled'\n"
    "      redis.call('HSET', k, 'status', 'cancelled', 'ended_ms', num(now))\n"
    "      redis.call('HDEL', k, 'lease_ms')\n"
    "    elseif tonumber(f[3] or 0) < tonumber(ARGV[3]) then\n"
    "      ev = 'task.requeued'\n"
    "      redis.call('HSET', k, 'status', 'queued')\n"
    "      redis.call('HDEL', k, 'worker_id', 'lease_ms')\n"
    "    else\n"
    "      redis.call('HSET', k, 'status', 'failed', 'error', 'lease expired', 'ended_ms', "
    "num(now))\n"
    "      redis.call('HDEL', k, 'lease_ms')\n"
    "    end\n"
    "    reindex(id, f[2], 'running')\n"
    "    out[#out + 1] = {ev, before, redis.call('HGETALL', k), id, journal(id, ev, f[5] or '-')}\n"
    "  end\n"
    "end\n"
    "return out\n",
};

/*
 * ARGV: P, grace_ms, max. Answers {{member, hash}, ...}: the journal's members
 * older than grace_ms by Redis's clock, oldest first, each with its task's
 * hash now ({} when gone); reads only.
 */
static fm_redis_script unacked_script = {
    .source = "#!lua flags=no-writes\n"
              "local t = redis.call('TIME')\n"
              "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
              "local ms = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'journal', '-inf', "
              "string.format('%.0f', now - tonumber(ARGV[2])), 'LIMIT', 0, tonumber(ARGV[3]))\n"
              "local out = {}\n"
              "for i, m in ipairs(ms) do\n"
              "  local id, h = string.match(m, '^%d+ ([0-9a-f-]+) '), {}\n"
              "  if id then h = redis.pcall('HGETALL', ARGV[1] .. 'task:' .. id) end\n"
              "  if h.err then h = {} end\n"
              "  out[i] = {m, h}\n"
              "end\n"
              "return out\n",
    .idempotent = true,
};

/* KEYS: the index. ARGV: P, offset, limit. Answers {total, hash, hash, ...}; reads only. */
static fm_redis_script list_script = {
    .source = "#!lua flags=no-writes\n"
              "local total = redis.call('ZCARD', KEYS[1])\n"
              "local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[2], tonumber(ARGV[2]) + "
              "tonumber(ARGV[3]) - 1)\n"
              "local out = {total}\n"
              "for i, id in ipairs(ids) do\n"
              "  local h = redis.pcall('HGETALL', ARGV[1] .. 'task:' .. id)\n"
              "  if h.err then h = {} end\n" /* not a hash (an old string record): skipped */
              "  out[i + 1] = h\n"
              "end\n"
              "return out\n",
    .idempotent = true,
};

static const char *const statuses[] = {"queued", "running", "completed", "failed", "cancelled"};

bool fm_tasks_status_valid(const char *status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(status, statuses[i]) == 0)
            return true;
    return false;
}

static bool is_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char c = s[i];
        if (shape[i] == '-' ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/*
 * FM_OK when every key of task id (NULL: none) and of owner (NULL: none) fits
 * FM_REDIS_KEY_MAX; the task's key then in key. The longest ones:
 * "P user:<owner>:status:cancelled" and "P status:cancelled".
 */
static fm_err keys_fit(const char *prefix, const char *id, const char *owner,
                       char key[FM_REDIS_KEY_MAX])
{
    char k[FM_REDIS_KEY_MAX];

    if (fm_redis_key(k, "%sstatus:cancelled", prefix) != FM_OK ||
        (owner != NULL && fm_redis_key(k, "%suser:%s:status:cancelled", prefix, owner) != FM_OK))
        return FM_EINVAL;
    if (id == NULL)
        return FM_OK;
    return fm_redis_key(key, "%stask:%s", prefix, id);
}

/* ---- the hash as the API's task -------------------------------------------------- */

enum field {
    F_SPEC,
    F_USER,
    F_STATUS,
    F_ATTEMPTS,
    F_WORKER,
    F_LEASE,
    F_STARTED,
    F_ENDED,
    F_PROGRESS,
    F_METRICS,
    F_ERROR,
    F_CANCEL,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "spec",       "user",     "status",   "attempts", "worker_id", "lease_ms",
    "started_ms", "ended_ms", "progress", "metrics",  "error",     "cancel_requested"};

/* The values of a flat HGETALL reply by field (NULL: absent). False when it is not one. */
static bool fields_of(const redisReply *flat, const redisReply *v[F_COUNT])
{
    memset(v, 0, sizeof(*v) * F_COUNT);
    if (flat == NULL || flat->type != REDIS_REPLY_ARRAY || flat->elements % 2 != 0)
        return false;
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const redisReply *name = flat->element[i], *value = flat->element[i + 1];

        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            return false;
        for (size_t f = 0; f < F_COUNT; f++)
            if (strcmp(name->str, field_names[f]) == 0)
                v[f] = value;
    }
    return true;
}

static bool is(const redisReply *v, const char *s)
{
    return v != NULL && strcmp(v->str, s) == 0;
}

/* Adds item to t under name, or null when item is NULL. */
static bool add_item(cJSON *t, const char *name, cJSON *item)
{
    if (item == NULL && (item = cJSON_CreateNull()) == NULL)
        return false;
    if (!cJSON_AddItemToObject(t, name, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Moves member name of spec into t (null when spec lacks it). */
static bool move(cJSON *t, cJSON *spec, const char *name)
{
    return add_item(t, name, cJSON_DetachItemFromObjectCaseSensitive(spec, name));
}

static bool add_string(cJSON *t, const char *name, const redisReply *v)
{
    return (v != NULL ? cJSON_AddStringToObject(t, name, v->str)
                      : cJSON_AddNullToObject(t, name)) != NULL;
}

/* A Unix-ms field as RFC 3339 (null when absent or not a number). */
static bool add_time(cJSON *t, const char *name, const redisReply *v)
{
    char buf[FM_RFC3339_MAX], *end;
    long long ms;

    if (v == NULL)
        return cJSON_AddNullToObject(t, name) != NULL;
    errno = 0;
    ms = strtoll(v->str, &end, 10);
    if (errno != 0 || end == v->str || *end != '\0')
        return cJSON_AddNullToObject(t, name) != NULL;
    return cJSON_AddStringToObject(t, name, fm_clock_rfc3339_ms(buf, ms)) != NULL;
}

/* A number field; absent (or not a number): dflt, or null when dflt is NaN. */
static bool add_number(cJSON *t, const char *name, const redisReply *v, double dflt)
{
    char *end;
    double d = v != NULL ? strtod(v->str, &end) : dflt;

    if (v != NULL && (end == v->str || *end != '\0' || !isfinite(d)))
        d = dflt;
    return (isnan(d) ? cJSON_AddNullToObject(t, name) : cJSON_AddNumberToObject(t, name, d)) !=
           NULL;
}

/* JSON text (null when absent or not JSON). */
static bool add_json(cJSON *t, const char *name, const redisReply *v)
{
    return add_item(t, name, v != NULL ? cJSON_ParseWithLength(v->str, v->len) : NULL);
}

/*
 * The API's task (field order: tasks.h) from a flat HGETALL reply; NULL when
 * it is not a task (missing, no spec, spec not a JSON object) or on ENOMEM.
 */
static cJSON *compose(const redisReply *flat)
{
    const redisReply *v[F_COUNT];
    cJSON *spec, *t;
    bool ok;

    if (!fields_of(flat, v) || v[F_SPEC] == NULL)
        return NULL;
    spec = cJSON_ParseWithLength(v[F_SPEC]->str, v[F_SPEC]->len);
    if (!cJSON_IsObject(spec) || (t = cJSON_CreateObject()) == NULL) {
        cJSON_Delete(spec);
        return NULL;
    }
    ok = move(t, spec, "id") && move(t, spec, "job_name") && move(t, spec, "args") &&
         add_string(t, "status", v[F_STATUS]) && move(t, spec, "priority") &&
         move(t, spec, "user") && move(t, spec, "commit_id") && move(t, spec, "experiment") &&
         move(t, spec, "datasets") && move(t, spec, "metadata") && move(t, spec, "created_at") &&
         add_time(t, "started_at", v[F_STARTED]) && add_time(t, "ended_at", v[F_ENDED]) &&
         add_string(t, "worker_id", v[F_WORKER]) && add_string(t, "error", v[F_ERROR]) &&
         add_number(t, "attempts", v[F_ATTEMPTS], 0) &&
         add_time(t, "lease_expires_at", v[F_LEASE]) &&
         add_number(t, "progress", v[F_PROGRESS], NAN) && add_json(t, "metrics", v[F_METRICS]) &&
         cJSON_AddBoolToObject(t, "cancel_requested", is(v[F_CANCEL], "1")) != NULL;
    cJSON_Delete(spec);
    if (!ok) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* The value of field name in a flat HGETALL reply, or NULL. */
static const redisReply *field(const redisReply *flat, const char *name)
{
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(flat->element[i]->str, name) == 0 &&
            flat->element[i + 1]->type == REDIS_REPLY_STRING)
            return flat->element[i + 1];
    return NULL;
}

/* Appends netstring "<len>:<bytes>," of e to out (room checked by the caller). */
static size_t netstring(char *out, size_t used, size_t cap, const redisReply *e)
{
    used += (size_t)snprintf(out + used, cap - used, "%zu:", e->len);
    memcpy(out + used, e->str, e->len);
    used += e->len;
    out[used++] = ',';
    return used;
}

/*
 * The undo token of a change from the hash before it and after it (flat
 * HGETALL replies; before empty for a create, after empty for a delete) and
 * its journal member: "<rev after>;" and netstrings of member and of before's
 * elements (restore_script). Heap, or NULL.
 */
static char *token_of(const redisReply *flat, const redisReply *after, const redisReply *member)
{
    size_t cap = 24 + 22, used;
    const redisReply *rev;
    char *out;

    if (flat == NULL || flat->type != REDIS_REPLY_ARRAY || after == NULL ||
        after->type != REDIS_REPLY_ARRAY || (flat->elements == 0 && after->elements == 0) ||
        member == NULL || member->type != REDIS_REPLY_STRING || member->len == 0 ||
        member->len >= FM_TASKS_JOURNAL_MAX)
        return NULL;
    rev = field(after, "rev");
    if (after->elements > 0 && (rev == NULL || rev->len > 20))
        return NULL; /* every change leaves a rev (reindex) */
    cap += member->len;
    for (size_t i = 0; i < flat->elements; i++)
        cap += flat->element[i]->len + 22; /* 20 digits, ':' and ',' */
    if ((out = malloc(cap)) == NULL)
        return NULL;
    used = (size_t)snprintf(out, cap, "%s;", rev != NULL ? rev->str : "0");
    used = netstring(out, used, cap, member);
    for (size_t i = 0; i < flat->elements; i++)
        used = netstring(out, used, cap, flat->element[i]);
    out[used] = '\0';
    return out;
}

/* A note's word: printable ASCII but space ('_' instead), at most size - 1 bytes, "-" when none. */
static void note_word(char *out, size_t size, const char *in)
{
    size_t i = 0;

    for (; in != NULL && in[i] != '\0' && i + 1 < size; i++)
        out[i] = in[i] > ' ' && in[i] < 0x7f ? in[i] : '_';
    out[i] = '\0';
    if (i == 0)
        (void)snprintf(out, size, "-");
}

/* The journal note of a change: st's trace id and actor (or the given one). */
typedef struct note {
    char trace[FM_TASKS_TRACE_MAX];
    char actor[FM_WORKER_ID_MAX];
} note;

static note note_of(const fm_tasks_store *st, const char *actor)
{
    note n;

    note_word(n.trace, sizeof(n.trace), st->trace_id);
    note_word(n.actor, sizeof(n.actor), actor != NULL ? actor : st->actor);
    return n;
}

/* ---- transitions ----------------------------------------------------------------- */

static fm_err code_of(const redisReply *c)
{
    static const struct {
        const char *code;
        fm_err rc;
    } codes[] = {{"ok", FM_OK},
                 {"notfound", FM_ENOTFOUND},
                 {"empty", FM_ENOTFOUND},
                 {"conflict", FM_ECONFLICT},
                 {"quota", FM_EQUOTA}};

    if (c->type != REDIS_REPLY_STRING)
        return FM_EREDIS;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(c->str, codes[i].code) == 0)
            return codes[i].rc;
    return FM_EREDIS;
}

/*
 * Undoes a change the caller cannot report (out of memory after the script
 * ran): the token, or removal when token is NULL and remove is set.
 */
static void undo(const fm_tasks_store *st, const char *id, const char *token, bool remove)
{
    if ((token != NULL || remove) && fm_tasks_restore(st, id, token) != FM_OK)
        fm_log_error("could not undo the change to task %s after running out of memory", id);
}

/*
 * A transition's answer {code[, before, after[, id, member]]} into the
 * results: *task (when task is non-NULL) from after, for FM_OK and
 * FM_ECONFLICT when given; *before (when before is non-NULL; else the token
 * is dropped) the token of before and member. The reply is freed.
 */
static fm_err finish(const fm_tasks_store *st, redisReply *r, cJSON **task, char **before)
{
    fm_err rc = FM_EREDIS;
    const char *id;
    char *token;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        goto done;
    rc = code_of(r->element[0]);
    if (rc == FM_OK && (r->elements < 5 || r->element[3]->type != REDIS_REPLY_STRING ||
                        !is_uuid(r->element[3]->str)))
        rc = FM_EREDIS;
    if ((rc != FM_OK && rc != FM_ECONFLICT) || r->elements < 3)
        goto done;
    /* The task as changed; for a removal (after is empty), as it was. */
    if (task != NULL)
        *task = compose(r->element[2]->elements > 0 ? r->element[2] : r->element[1]);
    if (rc != FM_OK)
        goto done;
    id = r->element[3]->str;
    token = token_of(r->element[1], r->element[2], r->element[4]);
    if ((task != NULL && *task == NULL) || token == NULL) {
        /* Without a token the undo of a create (before is empty) removes the task. */
        undo(st, id, token, r->element[1]->elements == 0);
        if (task != NULL) {
            cJSON_Delete(*task);
            *task = NULL;
        }
        free(token);
        errno = ENOMEM;
        rc = FM_ESYS;
    } else if (before != NULL) {
        *before = token;
    } else {
        free(token);
    }
done:
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

fm_err fm_tasks_create(const fm_tasks_store *st, const char *user, const char *body,
                       size_t body_len, cJSON **task, char id_out[FM_TASKS_ID_SIZE], char **before,
                       char *err, size_t errlen)
{
    cJSON *spec = NULL;
    const char *id;
    char key[FM_REDIS_KEY_MAX], prio[16], max_open[24];
    char *json = NULL;
    redisReply *reply;
    fm_err rc;

    *task = NULL;
    if (before != NULL)
        *before = NULL;
    if ((rc = fm_taskbody_build(body, body_len, user, &spec, err, errlen)) != FM_OK)
        return rc;
    id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "id"));
    if (keys_fit(st->prefix, id, user, key) != FM_OK) {
        (void)snprintf(err, errlen, "key prefix or user name too long for a Redis key");
        rc = FM_EINVAL;
        goto done;
    }
    if ((json = cJSON_PrintUnformatted(spec)) == NULL) {
        errno = ENOMEM;
        rc = FM_ESYS;
        goto done;
    }
    if (st->max_task_bytes > 0 &&
        strlen(json) + strlen(user) + FM_TASKS_LIFECYCLE_BYTES > st->max_task_bytes) {
        (void)snprintf(err, errlen, "task record over %zu bytes (limits.max_task_bytes)",
                       st->max_task_bytes);
        rc = FM_ETOOBIG;
        goto done;
    }
    /* Both fit: priority is 1..10 (validated), a long at most 20 characters. */
    (void)snprintf(prio, sizeof(prio), "%d",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(spec, "priority")));
    (void)snprintf(max_open, sizeof(max_open), "%ld",
                   st->max_open_tasks > 0 ? st->max_open_tasks : 0);
    {
        note n = note_of(st, NULL);
        const char *argv[] = {key, st->prefix, id, user, prio, json, max_open, n.trace, n.actor};
        reply = fm_redis_eval(st->redis, &create_script, 1, 9, argv);
    }
    rc = finish(st, reply, task, before);
    if (rc == FM_OK)
        memcpy(id_out, id, FM_TASKS_ID_SIZE);
    else if (rc == FM_EQUOTA)
        (void)snprintf(err, errlen, "%ld queued or running tasks already (limits.max_open_tasks)",
                       st->max_open_tasks);
    else if (rc == FM_ECONFLICT || rc == FM_ENOTFOUND)
        rc = FM_EREDIS; /* not answers of create */
done:
    cJSON_free(json);
    cJSON_Delete(spec);
    return rc;
}

fm_err fm_tasks_get(const fm_tasks_store *st, const char *user, const char *id, cJSON **task)
{
    char key[FM_REDIS_KEY_MAX];
    const char *argv[2] = {"HGETALL", key};
    redisReply *reply;
    fm_err rc = FM_ENOTFOUND;

    *task = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (fm_redis_key(key, "%stask:%s", st->prefix, id) != FM_OK)
        return FM_EINVAL;
    reply = fm_redis_argv(st->redis, 2, argv, NULL);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "WRONGTYPE", 9) == 0) {
        rc = FM_ENOTFOUND; /* not a hash: not a task (see below) */
    } else if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        rc = FM_EREDIS;
    } else if (user == NULL || is(field(reply, "user"), user)) {
        /* A record that is not a task (an operator's edit) is treated as missing. */
        if ((*task = compose(reply)) != NULL)
            rc = FM_OK;
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

/*
 * Appends the page's tasks (reply elements 1..) to out while the rendered
 * array stays within max_bytes (0 = no limit). Returns how many index entries
 * were consumed (an entry whose record is gone counts, and is skipped), or
 * -1 on ENOMEM.
 */
static long fill_page(const redisReply *reply, size_t max_bytes, cJSON *out)
{
    size_t used = 2; /* "[]" */
    long n = 0;

    for (size_t i = 1; i < reply->elements; i++, n++) {
        cJSON *t = compose(reply->element[i]);

        if (t == NULL) {
            if (reply->element[i]->elements > 0 && field(reply->element[i], "spec") != NULL)
                return -1; /* a task, not composed: out of memory */
            continue;
        }
        if (max_bytes > 0) {
            char *text = cJSON_PrintUnformatted(t);
            size_t need = text != NULL ? used + strlen(text) + (cJSON_GetArraySize(out) > 0) : 0;

            cJSON_free(text);
            if (text == NULL || need > max_bytes) {
                cJSON_Delete(t);
                return text == NULL ? -1 : n;
            }
            used = need;
        }
        cJSON_AddItemToArray(out, t);
    }
    return n;
}

fm_err fm_tasks_list(const fm_tasks_store *st, const char *user, const char *status, long offset,
                     long limit, size_t max_bytes, cJSON **tasks, long *total, long *next_offset)
{
    char key[FM_REDIS_KEY_MAX], off[24], lim[24];
    redisReply *reply;
    cJSON *out;
    long n;
    fm_err rc = FM_EREDIS, k;

    *tasks = NULL;
    *total = 0;
    *next_offset = -1;
    if (offset < 0 || limit < 1 || limit > FM_TASKS_LIST_MAX ||
        (status != NULL && !fm_tasks_status_valid(status)))
        return FM_EINVAL;
    if (user != NULL)
        k = status != NULL ? fm_redis_key(key, "%suser:%s:status:%s", st->prefix, user, status)
                           : fm_redis_key(key, "%suser:%s:tasks", st->prefix, user);
    else
        k = status != NULL ? fm_redis_key(key, "%sstatus:%s", st->prefix, status)
                           : fm_redis_key(key, "%stasks", st->prefix);
    if (k != FM_OK || keys_fit(st->prefix, NULL, user, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(off, sizeof(off), "%ld", offset);
    (void)snprintf(lim, sizeof(lim), "%ld", limit);
    {
        const char *argv[] = {key, st->prefix, off, lim};
        reply = fm_redis_eval(st->redis, &list_script, 1, 4, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        goto done;
    rc = FM_ESYS;
    errno = ENOMEM;
    if ((out = cJSON_CreateArray()) == NULL)
        goto done;
    if ((n = fill_page(reply, max_bytes, out)) < 0) {
        cJSON_Delete(out);
        goto done;
    }
    *tasks = out;
    *total = (long)reply->element[0]->integer;
    *next_offset = offset + n < *total ? offset + n : -1;
    rc = FM_OK;
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

/* Cancel and delete: one script on KEYS task, ARGV P, id, owner ('' = anyone's). */
static fm_err owner_change(const fm_tasks_store *st, fm_redis_script *script, const char *user,
                           const char *id, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX];

    if (task != NULL)
        *task = NULL;
    *before = NULL;
    if (!is_uuid(id) || (user != NULL && user[0] == '\0'))
        return FM_ENOTFOUND;
    if (keys_fit(st->prefix, id, user, key) != FM_OK)
        return FM_EINVAL;
    note n = note_of(st, NULL);
    const char *argv[] = {key, st->prefix, id, user != NULL ? user : "", n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, script, 1, 6, argv), task, before);
}

fm_err fm_tasks_cancel(const fm_tasks_store *st, const char *user, const char *id, cJSON **task,
                       char **before)
{
    return owner_change(st, &cancel_script, user, id, task, before);
}

fm_err fm_tasks_delete(const fm_tasks_store *st, const char *user, const char *id, cJSON **task,
                       char **before)
{
    return owner_change(st, &delete_script, user, id, task, before);
}

static bool worker_ok(const char *worker_id)
{
    size_t n = strlen(worker_id);

    return n > 0 && n < FM_WORKER_ID_MAX;
}

fm_err fm_tasks_claim(const fm_tasks_store *st, const char *worker_id, cJSON **task, char **before)
{
    char lease[16];

    *task = NULL;
    *before = NULL;
    if (!worker_ok(worker_id) || st->lease_seconds < 1 ||
        keys_fit(st->prefix, NULL, NULL, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(lease, sizeof(lease), "%d", st->lease_seconds);
    note n = note_of(st, worker_id);
    const char *argv[] = {st->prefix, worker_id, lease, n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, &claim_script, 0, 5, argv), task, before);
}

fm_err fm_tasks_heartbeat(const fm_tasks_store *st, const char *worker_id, const char *id,
                          double progress, const char *metrics, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX], lease[16], prog[32] = "";

    *task = NULL;
    *before = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (!worker_ok(worker_id) || st->lease_seconds < 1 || progress > 100 ||
        (metrics != NULL && (metrics[0] == '\0' || strlen(metrics) > FM_TASKS_METRICS_MAX)) ||
        keys_fit(st->prefix, id, NULL, key) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(lease, sizeof(lease), "%d", st->lease_seconds);
    if (progress >= 0)
        (void)snprintf(prog, sizeof(prog), "%.17g", progress);
    note n = note_of(st, worker_id);
    const char *argv[] = {key,     st->prefix, id, worker_id, lease, prog, metrics ? metrics : "",
                          n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, &heartbeat_script, 1, 9, argv), task, before);
}

fm_err fm_tasks_complete(const fm_tasks_store *st, const char *worker_id, const char *id,
                         const char *status, const char *error, cJSON **task, char **before)
{
    char key[FM_REDIS_KEY_MAX];

    *task = NULL;
    *before = NULL;
    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (!worker_ok(worker_id) ||
        (strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0 &&
         strcmp(status, "cancelled") != 0) ||
        (error != NULL && (error[0] == '\0' || strlen(error) > FM_TASKS_ERROR_MAX)) ||
        keys_fit(st->prefix, id, NULL, key) != FM_OK)
        return FM_EINVAL;
    note n = note_of(st, worker_id);
    const char *argv[] = {key,     st->prefix, id, worker_id, status, error != NULL ? error : "",
                          n.trace, n.actor};
    return finish(st, fm_redis_eval(st->redis, &complete_script, 1, 8, argv), task, before);
}

/* Frees what out[0..n) hold. */
static void swept_free(fm_tasks_swept *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(out[i].task);
        free(out[i].before);
        out[i].task = NULL;
        out[i].before = NULL;
    }
}

/* A sweep answer {event, before, after, id, member} into *s; false if it is not one, or ENOMEM. */
static bool swept_of(const redisReply *e, fm_tasks_swept *s)
{
    static const char *const events[] = {"task.requeued", "task.failed", "task.cancelled"};
    const redisReply *w;

    memset(s, 0, sizeof(*s));
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 5 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[3]->type != REDIS_REPLY_STRING ||
        !is_uuid(e->element[3]->str))
        return false;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(e->element[0]->str, events[i]) == 0)
            s->event = events[i];
    memcpy(s->id, e->element[3]->str, FM_TASKS_ID_SIZE);
    if ((w = field(e->element[1], "worker_id")) != NULL)
        (void)snprintf(s->worker_id, sizeof(s->worker_id), "%s", w->str);
    s->task = compose(e->element[2]);
    s->before = token_of(e->element[1], e->element[2], e->element[4]);
    return s->event != NULL && s->task != NULL && s->before != NULL;
}

fm_err fm_tasks_sweep(const fm_tasks_store *st, size_t max, fm_tasks_swept *out, size_t *n)
{
    char maxs[24], attempts[16];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    *n = 0;
    if (max == 0 || st->max_attempts < 1 || keys_fit(st->prefix, NULL, NULL, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(maxs, sizeof(maxs), "%zu", max);
    (void)snprintf(attempts, sizeof(attempts), "%d", st->max_attempts);
    {
        note nt = note_of(st, NULL);
        const char *argv[] = {st->prefix, maxs, attempts, nt.trace, nt.actor};
        reply = fm_redis_eval(st->redis, &sweep_script, 0, 5, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements > max)
        goto done;
    rc = FM_OK;
    for (size_t i = 0; i < reply->elements; i++)
        if (!swept_of(reply->element[i], &out[i]))
            rc = FM_ESYS;
    if (rc == FM_OK) {
        *n = reply->elements;
        goto done;
    }
    /* Not all can be reported: undo those that can, so none goes unaudited. */
    for (size_t i = 0; i < reply->elements; i++)
        if (out[i].before != NULL)
            undo(st, out[i].id, out[i].before, false);
    swept_free(out, reply->elements);
    errno = ENOMEM;
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

fm_err fm_tasks_restore(const fm_tasks_store *st, const char *id, const char *before)
{
    char key[FM_REDIS_KEY_MAX];
    redisReply *reply;
    fm_err rc;

    if (!is_uuid(id))
        return FM_ENOTFOUND;
    if (keys_fit(st->prefix, id, NULL, key) != FM_OK || (before != NULL && before[0] == '\0'))
        return FM_EINVAL;
    {
        const char *argv[] = {key, st->prefix, id, before != NULL ? before : ""};
        reply = fm_redis_eval(st->redis, &restore_script, 1, 4, argv);
    }
    if (reply == NULL)
        return FM_EREDIS;
    if (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING)
        rc = strcmp(reply->str, "changed") == 0 ? FM_ECONFLICT : FM_OK;
    else if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "bad undo token") != NULL)
        rc = FM_EINVAL;
    else
        rc = FM_EREDIS;
    freeReplyObject(reply);
    return rc;
}

fm_err fm_tasks_forget(const fm_tasks_store *st, const char *member)
{
    char key[FM_REDIS_KEY_MAX];

    if (fm_redis_key(key, "%sjournal", st->prefix) != FM_OK)
        return FM_EINVAL;
    const char *argv[] = {"ZREM", key, member};
    return fm_redis_send(st->redis, 3, argv);
}

fm_err fm_tasks_settle(const fm_tasks_store *st, const char *token)
{
    char member[FM_TASKS_JOURNAL_MAX], *end;
    const char *semi, *m;
    unsigned long n;

    if (token == NULL)
        return FM_OK;
    /* "<rev>;<len>:<member>," (token_of) */
    if ((semi = strchr(token, ';')) == NULL)
        return FM_EINVAL;
    errno = 0;
    n = strtoul(semi + 1, &end, 10);
    if (errno != 0 || end == semi + 1 || *end != ':' || n == 0 || n >= sizeof(member) ||
        strnlen(end + 1, n + 1) < n + 1 || end[1 + n] != ',')
        return FM_EINVAL;
    m = end + 1;
    memcpy(member, m, n);
    member[n] = '\0';
    return fm_tasks_forget(st, member);
}

void fm_tasks_unacked_free(fm_tasks_pending *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(out[i].member);
        cJSON_Delete(out[i].task);
        out[i].member = NULL;
        out[i].task = NULL;
    }
}

/* Copies the next space-separated word of *s (at most size - 1 bytes) into out; false if none. */
static bool next_word(const char **s, char *out, size_t size)
{
    size_t n = strcspn(*s, " ");

    if (n == 0 || n >= size)
        return false;
    memcpy(out, *s, n);
    out[n] = '\0';
    *s += n + ((*s)[n] == ' ');
    return true;
}

/* Reads member "<ms> <id> <event> <trace_id> <actor>" (journal()) into u; false if not one. */
static bool unacked_of(const char *member, fm_tasks_pending *u)
{
    char ms[24];
    const char *s = member;

    return next_word(&s, ms, sizeof(ms)) && strspn(ms, "0123456789") == strlen(ms) &&
           next_word(&s, u->id, sizeof(u->id)) && is_uuid(u->id) &&
           next_word(&s, u->event, sizeof(u->event)) && strncmp(u->event, "task.", 5) == 0 &&
           next_word(&s, u->trace_id, sizeof(u->trace_id)) &&
           next_word(&s, u->actor, sizeof(u->actor)) && *s == '\0';
}

fm_err fm_tasks_unacked(const fm_tasks_store *st, long grace_ms, size_t max, fm_tasks_pending *out,
                        size_t *n)
{
    char graces[24], maxs[24];
    redisReply *reply;
    fm_err rc = FM_EREDIS;

    *n = 0;
    if (max == 0 || grace_ms < 0 || keys_fit(st->prefix, NULL, NULL, NULL) != FM_OK)
        return FM_EINVAL;
    (void)snprintf(graces, sizeof(graces), "%ld", grace_ms);
    (void)snprintf(maxs, sizeof(maxs), "%zu", max);
    {
        const char *argv[] = {st->prefix, graces, maxs};
        reply = fm_redis_eval(st->redis, &unacked_script, 0, 3, argv);
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements > max)
        goto done;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            goto done;
    }
    rc = FM_OK;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        fm_tasks_pending *u = &out[i];

        memset(u, 0, sizeof(*u));
        if ((u->member = strdup(e->element[0]->str)) == NULL)
            rc = FM_ESYS;
        u->valid = unacked_of(e->element[0]->str, u);
        if (!u->valid)
            u->id[0] = u->event[0] = u->trace_id[0] = u->actor[0] = '\0';
        else if (e->element[1]->elements > 0 && (u->task = compose(e->element[1])) == NULL &&
                 field(e->element[1], "spec") != NULL)
            rc = FM_ESYS; /* a task, not composed: out of memory */
    }
    if (rc == FM_OK) {
        *n = reply->elements;
    } else {
        fm_tasks_unacked_free(out, reply->elements);
        errno = ENOMEM;
    }
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}
