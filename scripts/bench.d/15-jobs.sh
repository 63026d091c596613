# Part of scripts/bench.sh (sourced; see the comment above its loop): the job API
# against the bare FastCGI hello, in bench.sh's interleaved rounds (hello, task, post,
# claim; FETCHML_BENCH_ROUNDS of them, then hello again; runs of 5 s; each ratio against
# the hello runs around its round, the median over the rounds reported), each with
# bench.sh's run (warm-up, measured wrk run, CPU per request) and count_redis (Redis work
# per request):
#   task   GET /v1/tasks/{id} of one of the bench user's tasks
#   post   POST /v1/tasks (a small task; the user's quota raised out of the way)
#   claim  a worker's cycle: POST /v1/worker/claim, then POST /v1/tasks/{id}/complete
#          of the task it got (wrk's Lua: each claimed id is completed by the next
#          request of that wrk thread); the queue is filled first so it never runs dry
# and prints "ratio task/hello", "ratio post/hello" and "ratio claim/hello" (requests
# per second over hello's; a cycle is two requests). Then the page cost of
# GET /v1/tasks?status=queued&limit=50 for a user with 100 tasks of history against
# one with 100,000 (the same 60 queued tasks, older than all of the ended ones),
# alternating wrk runs, medians of 3: "ratio list_100k/list_100" (time per page, large
# over small; flat is 1.00). The history is written straight into Redis in the task
# layout (docs/redis-layout.md) by a Lua script, cloning a task made through the API.
# A part whose route or layout this build lacks prints "skipped: <why>". Afterwards
# every task of the part's users is removed and the original config is put back.
# shellcheck shell=bash disable=SC2034 # INVALID, RPS_HELLO are bench.sh's
jb_cfg=$VAR/dev/config.yaml
jb_prefix=$(sed -n 's/^  key_prefix: "\(.*\)"$/\1/p' "$jb_cfg")
jb_secs=$((DURATION < 5 ? DURATION : 5))
jb_wrk=("${WRK[@]}")
jb_rate="rate_limit: { requests_per_minute: $RATE_MAX, burst: $RATE_MAX }"
jb_body='{"job_name":"bench-job","args":["--epochs","3"],"priority":5}'
jb_small=list_small # user names of one length: the two pages have the same size
jb_large=list_large
cp -p "$jb_cfg" "$VAR/dev/config.yaml.jobs-orig" # owner and mode: the dropped master reads it

# jb_user NAME ROLE: a key for a new bench user; sets JB_KEY and JB_USER (its flow YAML).
jb_user() {
    JB_KEY=$(openssl rand -hex 32)
    JB_USER="$1: { hash: \"$(printf '%s' "$JB_KEY" | "$BUILD/fetchml-admin" hash)\", roles: [\"$2\"], $jb_rate }"
}
jb_user benchworker worker
jb_wkey=$JB_KEY jb_wuser=$JB_USER
jb_user "$jb_small" researcher
jb_skey=$JB_KEY jb_suser=$JB_USER
jb_user "$jb_large" researcher
jb_lkey=$JB_KEY jb_luser=$JB_USER

# jb_reload OVERRIDE...: the original config with these overrides, reloaded; status 1 if refused.
jb_reload() {
    fm_config_apply "$@" <"$VAR/dev/config.yaml.jobs-orig" >"$jb_cfg.new" &&
        fm_pool_file "$jb_cfg.new" && mv "$jb_cfg.new" "$jb_cfg" &&
        timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 && wait_for 5 full_ok
}
jb_users="bench: { hash: \"$HASH\", roles: [\"researcher\"], $jb_rate }, $jb_suser, $jb_luser"
jb_claim_skip=""
if ! jb_reload "auth.api_keys={ $jb_users, $jb_wuser }" "limits={ max_open_tasks: 10000000 }"; then
    jb_claim_skip="this build has no worker role or no limits section (the config with them does not load)"
    jb_reload "auth.api_keys={ $jb_users }" || fm_die "reload with the job bench users failed"
fi

# jb_post KEY: creates a task as KEY's user; prints its id ("" on failure).
jb_post() {
    curl -sk --max-time 5 -H "X-API-Key: $1" -H 'Content-Type: application/json' -d "$jb_body" \
        "$BASE/v1/tasks" | sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p'
}

# The history, straight into Redis: n clones of the task TEMPLATE of USER in STATUS
# (queued, or completed by benchworker), newer than every task so far, ids
# <tag>-0000-4000-8000-<12 hex>. ARGV: P, user, status, n, tag, first number, template.
# shellcheck disable=SC2016 # Lua, not shell
jb_fill_lua='
local P, user, st, n, tag, first, tid = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]),
    ARGV[5], tonumber(ARGV[6]), ARGV[7]
local spec = redis.call("HGET", P .. "task:" .. tid, "spec")
local a, b = string.find(spec, tid, 1, true)
local t = redis.call("TIME")
local now = string.format("%.0f", tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local u = P .. "user:" .. user .. ":"
for i = first, first + n - 1 do
  local id = string.format("%s-0000-4000-8000-%012x", tag, i)
  local k = P .. "task:" .. id
  local seq = redis.call("INCR", P .. "task_seq")
  redis.call("HSET", k, "spec", string.sub(spec, 1, a - 1) .. id .. string.sub(spec, b + 1),
    "user", user, "priority", "5", "seq", seq, "status", st, "attempts", "0")
  if st == "queued" then
    redis.call("ZADD", P .. "queue", string.format("%.0f", 5 * 1e12 + seq), id)
  else
    redis.call("HSET", k, "attempts", "1", "worker_id", "benchworker", "started_ms", now,
      "ended_ms", now)
  end
  redis.call("ZADD", P .. "tasks", seq, id)
  redis.call("ZADD", u .. "tasks", seq, id)
  redis.call("ZADD", P .. "status:" .. st, seq, id)
  redis.call("ZADD", u .. "status:" .. st, seq, id)
end
return n'
jb_tag=$(openssl rand -hex 4)
jb_next=0
# jb_fill USER STATUS N TEMPLATE_ID: in batches, each one short script run.
jb_fill() {
    local left=$3 n
    while [ "$left" -gt 0 ]; do
        n=$((left < 10000 ? left : 10000))
        rcli EVAL "$jb_fill_lua" 0 "$jb_prefix" "$1" "$2" "$n" "$jb_tag" "$jb_next" "$4" >/dev/null ||
            return 1
        jb_next=$((jb_next + n))
        left=$((left - n))
    done
}

# Every task of USER goes, with its index entries (up to 10,000 per script run).
# shellcheck disable=SC2016 # Lua, not shell
jb_clean_lua='
local P, user = ARGV[1], ARGV[2]
local u = P .. "user:" .. user .. ":"
local ids = redis.call("ZRANGE", u .. "tasks", 0, 9999)
for _, id in ipairs(ids) do
  redis.call("DEL", P .. "task:" .. id)
  for _, z in ipairs({"tasks", "queue", "leases"}) do redis.call("ZREM", P .. z, id) end
  for _, s in ipairs({"queued", "running", "completed", "failed", "cancelled"}) do
    redis.call("ZREM", P .. "status:" .. s, id)
    redis.call("ZREM", u .. "status:" .. s, id)
  end
  redis.call("ZREM", u .. "tasks", id)
end
return #ids'
jb_clean() {
    local n=1
    while [ "${n:-0}" -gt 0 ]; do n=$(rcli EVAL "$jb_clean_lua" 0 "$jb_prefix" "$1") || return 1; done
}

# jb_urls FILE URL: COUNT_REQUESTS curl config lines for URL.
jb_urls() {
    for _ in $(seq "$COUNT_REQUESTS"); do printf 'url = "%s"\noutput = /dev/null\n' "$2"; done >"$1"
}

jb_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

jb_lines=()
jb_names=()

# ---- task: GET /v1/tasks/{id}; post: POST /v1/tasks ----
jb_id=$(jb_post "$KEY")
if [ -z "$jb_id" ]; then
    fm_say "jobs: POST /v1/tasks as the bench user gave no task"
    INVALID=1
else
    jb_names+=(task post)
    printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
        "'$jb_body'" >"$VAR/jobs-post.lua"
fi

# ---- claim: POST /v1/worker/claim + POST /v1/tasks/{id}/complete ----
[ -n "$jb_claim_skip" ] || [ -n "$jb_id" ] || jb_claim_skip="no task to clone for the queue"
if [ -z "$jb_claim_skip" ] &&
    [ "$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H "X-API-Key: $jb_wkey" \
        "$BASE/v1/worker/claim")" != 200 ]; then
    jb_claim_skip="POST /v1/worker/claim does not answer 200 with tasks queued"
fi
if [ -z "$jb_claim_skip" ]; then
    # At least 60,000 queued per round: more than a claim run of this length has ever taken.
    jb_want=$((60000 * ROUNDS))
    jb_queued=$(rcli ZCARD "${jb_prefix}queue")
    [ "${jb_queued:-0}" -ge "$jb_want" ] || jb_fill bench queued $((jb_want - ${jb_queued:-0})) "$jb_id" ||
        fm_die "cannot fill the queue for the claim run"
    cat >"$VAR/jobs-claim.lua" <<'LUA'
-- Each claimed task's id is completed by this thread's next request; a 204 is counted.
local ids = {}
empty = 0
local json = {} -- the command line's headers (the key) and the body's type
function init(args)
    for k, v in pairs(wrk.headers) do json[k] = v end
    json["Content-Type"] = "application/json"
end
function request()
    local id = table.remove(ids)
    if id then
        return wrk.format("POST", "/v1/tasks/" .. id .. "/complete", json, '{"status":"completed"}')
    end
    return wrk.format("POST", "/v1/worker/claim")
end
function response(status, headers, body)
    if status == 204 then
        empty = empty + 1
    elseif status == 200 and body:find('"status":"running"', 1, true) then
        table.insert(ids, body:match('"id":"([0-9a-f-]+)"'))
    end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done()
    local n = 0
    for _, t in ipairs(threads) do n = n + t:get("empty") end
    io.write(string.format("claims that found the queue empty: %d\n", n))
end
LUA
    jb_names+=(claim)
fi

# The runs: hello and the routes, interleaved (bench.sh's interleaved), each jb_secs long.
# shellcheck disable=SC2034 # URL and WRK are read by interleaved
setup_run() {
    case $1 in
    task) URL=$BASE/v1/tasks/$jb_id WRK=("${jb_wrk[@]}") ;;
    post) URL=$BASE/v1/tasks WRK=("${jb_wrk[@]}" -s "$VAR/jobs-post.lua") ;;
    claim) URL=$BASE/v1/worker/claim
        WRK=(wrk -t"$THREADS" -c"$CONNS" -H "X-API-Key: $jb_wkey" -s "$VAR/jobs-claim.lua") ;;
    esac
}
if [ ${#jb_names[@]} -gt 0 ]; then
    jb_duration=$DURATION
    DURATION=$jb_secs
    interleaved "${jb_names[@]}"
    DURATION=$jb_duration
fi
WRK=("${jb_wrk[@]}")
# jb_ratio_line NAME: "ratio NAME/hello: X.XX (the rounds' ratios)".
jb_ratio_line() {
    local r="RATIO_$1" rs="RATIOS_$1"
    echo "ratio $1/hello: ${!r} (median of $ROUNDS rounds: ${!rs}; hello ${RPS_HELLO} req/s, median)"
}
# jb_report NAME WHAT: the result lines of a run and its counting run.
jb_report() {
    local cpu="CPU_$1" rps="RPS_$1" p99="P99_$1"
    echo "$1 ($2): ${!rps} req/s, p99 ${!p99} ms (the median round); redis per request: ${REDIS_CMDS:-none}; round trips $REDIS_TRIPS"
    echo "${!cpu:-} (last round)"
}

if [ -n "$jb_id" ]; then
    jb_urls "$VAR/curl-jobs" "$BASE/v1/tasks/$jb_id"
    count_redis "$COUNT_REQUESTS" timeout 60 curl -sk --no-progress-meter --parallel --parallel-max 8 -H "X-API-Key: $KEY" \
        -K "$VAR/curl-jobs"
    jb_lines+=("$(jb_report task "GET /v1/tasks/{id}")" "$(jb_ratio_line task)")
    jb_urls "$VAR/curl-jobs" "$BASE/v1/tasks"
    count_redis "$COUNT_REQUESTS" timeout 60 curl -sk --no-progress-meter --parallel --parallel-max 8 -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' -d "$jb_body" -K "$VAR/curl-jobs"
    jb_lines+=("$(jb_report post "POST /v1/tasks")" "$(jb_ratio_line post)")
else
    jb_lines+=("ratio task/hello: skipped: POST /v1/tasks gave no task id" "ratio post/hello: skipped: POST /v1/tasks gave no task id")
fi
if [ -z "$jb_claim_skip" ]; then
    jb_empty=$(sed -n 's/^claims that found the queue empty: //p' "$VAR/wrk-claim.txt")
    if [ "${jb_empty:-0}" != 0 ]; then
        fm_say "claim: $jb_empty claims found the queue empty"
        INVALID=1
    fi
    # Counted over COUNT_REQUESTS / 2 cycles, one after the other.
    jb_cycles() {
        local i id
        for i in $(seq $((COUNT_REQUESTS / 2))); do
            id=$(curl -sk --max-time 5 -X POST -H "X-API-Key: $jb_wkey" "$BASE/v1/worker/claim" |
                sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p')
            curl -sk --max-time 5 -o /dev/null -H "X-API-Key: $jb_wkey" -H 'Content-Type: application/json' \
                -d '{"status":"completed"}' "$BASE/v1/tasks/$id/complete"
        done
    }
    count_redis $((COUNT_REQUESTS / 2 * 2)) jb_cycles
    jb_lines+=("$(jb_report claim "POST /v1/worker/claim + POST /v1/tasks/{id}/complete, $(jb_ratio "$RPS_claim" 2) cycles/s")"
        "$(jb_ratio_line claim)")
else
    jb_lines+=("ratio claim/hello: skipped: $jb_claim_skip")
fi

# ---- list: a page of ?status=queued, 100 against 100,000 tasks of history ----
jb_page="/v1/tasks?status=queued&limit=50"
jb_list_skip=""
jb_st=$(jb_post "$jb_skey") jb_lt=$(jb_post "$jb_lkey")
if [ -z "$jb_st" ] || [ -z "$jb_lt" ]; then
    jb_list_skip="POST /v1/tasks gave no task id"
elif [ "$(rcli ZCARD "${jb_prefix}user:$jb_small:status:queued")" != 1 ] ||
    [ -z "$(rcli HGET "${jb_prefix}task:$jb_st" spec)" ]; then
    jb_list_skip="this build's store keeps no per-status index (${jb_prefix}user:<u>:status:<st>) or no task spec"
fi
if [ -z "$jb_list_skip" ]; then
    fm_say "jobs: filling $jb_small with 100 tasks and $jb_large with 100,000 (60 queued each)"
    if ! { jb_fill "$jb_small" queued 59 "$jb_st" && jb_fill "$jb_small" completed 40 "$jb_st" &&
        jb_fill "$jb_large" queued 59 "$jb_lt" && jb_fill "$jb_large" completed 99940 "$jb_lt"; }; then
        fm_die "cannot fill the task history"
    fi
    for jb_k in "$jb_skey" "$jb_lkey"; do
        jb_n=$(curl -sk --max-time 5 -H "X-API-Key: $jb_k" "$BASE$jb_page" | grep -o '"id":"' | wc -l)
        if [ "$jb_n" != 50 ]; then
            fm_say "list: a page holds $jb_n tasks, not 50"
            INVALID=1
        fi
    done
    # jb_list KEY: one wrk run of the page; prints req/s.
    jb_list() {
        local out=$VAR/wrk-list.txt
        timeout $((jb_secs + 15)) wrk -t"$THREADS" -c"$CONNS" -H "X-API-Key: $1" -d"${jb_secs}s" \
            "$BASE$jb_page" >"$out" || true
        if grep -qE '^ *(Non-2xx or 3xx responses|Socket errors):' "$out"; then
            fm_say "list: $(grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$out")"
            INVALID=1
        fi
        awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out"
    }
    timeout $((WARMUP + 15)) wrk -t"$THREADS" -c"$CONNS" -H "X-API-Key: $jb_lkey" -d"${WARMUP}s" \
        "$BASE$jb_page" >/dev/null || true
    jb_s=() jb_l=()
    for _ in 1 2 3; do
        jb_s+=("$(jb_list "$jb_skey")")
        jb_l+=("$(jb_list "$jb_lkey")")
    done
    jb_med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
    jb_ms=$(jb_med "${jb_s[@]}") jb_ml=$(jb_med "${jb_l[@]}")
    jb_urls "$VAR/curl-jobs" "$BASE$jb_page"
    count_redis "$COUNT_REQUESTS" timeout 60 curl -sk --no-progress-meter --parallel --parallel-max 8 \
        -H "X-API-Key: $jb_lkey" -K "$VAR/curl-jobs"
    jb_lines+=("list (GET $jb_page, 50 of 60 queued): 100 tasks of history ${jb_ms:-?} req/s (${jb_s[*]}), 100,000 tasks ${jb_ml:-?} req/s (${jb_l[*]}), wrk -c$CONNS ${jb_secs}s each, alternating, medians of 3; redis per request (100,000): ${REDIS_CMDS:-none}; round trips $REDIS_TRIPS"
        "ratio list_100k/list_100: $(jb_ratio "${jb_ms:-0}" "${jb_ml:-1}")")
else
    jb_lines+=("ratio list_100k/list_100: skipped: $jb_list_skip")
fi

fm_say "jobs: removing the part's tasks, putting the config back"
for jb_u in bench "$jb_small" "$jb_large"; do
    jb_clean "$jb_u" || fm_die "cannot remove the tasks of $jb_u"
done
mv "$VAR/dev/config.yaml.jobs-orig" "$jb_cfg"
if ! timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || ! wait_for 5 full_ok; then
    fm_die "reload with the original bench config failed"
fi
printf '%s\n' "${jb_lines[@]}"
