/*
 * taskscripts.c - the Lua scripts of the task store (tasks.c runs them;
 * layout: tasks.h, docs/redis-layout.md).
 *
 * Each transition is one script made of PRELUDE and its own body. The
 * prelude's reindex(id, user, old[, known]) puts a task's entries in P queue,
 * P leases, P tasks, P status:<st> and the owner's two kinds of index
 * exactly where its hash says, given the status it had (old; nil for a task
 * not indexed yet), or takes them all away when the hash is gone: every
 * script only changes the hash and calls it (known: the hash's status,
 * priority, seq and lease_ms when the script has just written them, which
 * saves reading them back); it raises the hash's rev and returns it. A
 * script checks owner, holder and status itself and answers {code, before,
 * after, id, journal member}: before and after are the hash as HGETALL gives
 * it (create builds after from what it wrote), so each change is one round
 * trip.
 */
#include "taskscripts.h"

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
    "local function reindex(id, user, old, known)\n"                                               \
    "  local f = known or redis.call('HMGET', P .. 'task:' .. id, 'status', 'priority', 'seq', "   \
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
    "  local rev = redis.call('HINCRBY', P .. 'task:' .. id, 'rev', 1)\n"                          \
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
    "  return rev\n"                                                                               \
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
fm_redis_script fm_taskscript_create = {
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
    "local seq = tostring(redis.call('INCR', P .. 'task_seq'))\n"
    "local h = {'spec', ARGV[5], 'user', ARGV[3], 'priority', ARGV[4], 'seq', seq, 'status', "
    "'queued', 'attempts', '0'}\n"
    "redis.call('HSET', KEYS[1], unpack(h))\n"
    /* What was just written is known: no read back (the hash is h plus rev). */
    "h[#h + 1] = 'rev'\n"
    "h[#h + 1] = tostring(reindex(ARGV[2], ARGV[3], nil, {'queued', ARGV[4], seq, false}))\n"
    "return {'ok', {}, h, ARGV[2], journal(ARGV[2], 'task.created')}\n",
};

/* ARGV: P, worker_id, lease_seconds. Answers {'ok', before, after, id, member} or {'empty'}. */
fm_redis_script fm_taskscript_claim = {
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
fm_redis_script fm_taskscript_heartbeat = {
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
fm_redis_script fm_taskscript_complete = {
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
fm_redis_script fm_taskscript_cancel = {
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
fm_redis_script fm_taskscript_delete = {
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
fm_redis_script fm_taskscript_restore = {
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
fm_redis_script fm_taskscript_sweep = {
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
fm_redis_script fm_taskscript_unacked = {
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
fm_redis_script fm_taskscript_list = {
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
