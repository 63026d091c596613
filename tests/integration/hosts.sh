#!/usr/bin/env bash
# Two front-door hosts on one Redis deployment (SPEC 9; docs/several-hosts.md),
# on loopback: stacks A and B (each its own nginx, FastCGI pool, sweeper and
# event relay, started by scripts/run-local.sh with a var dir and ports of its
# own) share a Redis master, two replicas (min-replicas-to-write 1) and three
# sentinels; both configs name the sentinels, not a server. Checks:
#   - one user's requests alternating between the hosts are limited as on one
#     host: admitted <= burst + rate x elapsed, and at least the burst;
#   - an address the guard blocked on A is refused on B;
#   - a task queued on A is claimed through B, and its events reach a socket on A;
#   - failover under load: the master is killed while both hosts create
#     tasks; refusals are 503 with Retry-After and end within the failover's
#     duration + 2 s, no request takes longer than timeout_ms + 1 s, both hosts
#     then serve without a restart, and every task acknowledged is in Redis.
# It stops by itself (a watchdog ends it after FETCHML_HOSTS_DEADLINE s, 170 by
# default) and prints "N passed, N failed". Ports: FETCHML_HOSTS_BASE (9560):
# A https base+1 / http base, B base+3 / base+2, Redis base+10..12, sentinels
# base+15..17.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
export FETCHML_BUILD=${FETCHML_BUILD:-$ROOT/build}
PB=${FETCHML_HOSTS_BASE:-9560}
T=$(mktemp -d /tmp/fetchml-hosts.XXXXXX)
chmod 755 "$T"
REDIS_PORTS=($((PB + 10)) $((PB + 11)) $((PB + 12)))
SENTINEL_PORTS=($((PB + 15)) $((PB + 16)) $((PB + 17)))
MASTER_NAME=fm-hosts
TIMEOUT_MS=200

START=$EPOCHREALTIME
# phase NAME: a progress line with the seconds since the start.
phase() { awk -v a="$START" -v b="$EPOCHREALTIME" -v n="$*" 'BEGIN { printf "# %s (%.1f s)\n", n, b - a }'; }

# on A|B: the host the next requests (lib.sh's req/as) and run-local.sh calls go to.
on() {
    case $1 in
    A) export FETCHML_VAR=$T/a FETCHML_HTTPS_PORT=$((PB + 1)) FETCHML_HTTP_PORT=$PB ;;
    B) export FETCHML_VAR=$T/b FETCHML_HTTPS_PORT=$((PB + 3)) FETCHML_HTTP_PORT=$((PB + 2)) ;;
    esac
    BASE="https://127.0.0.1:$FETCHML_HTTPS_PORT"
}

cleanup() {
    local h p f
    [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
    touch "$T/stop-load"
    [ "$(type -t ws_stop_all)" = function ] && ws_stop_all
    for h in A B; do (on "$h" && "$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1); done
    for f in "$T"/deploy/*.pid; do
        [ -f "$f" ] && p=$(cat "$f") && kill -KILL "$p" 2>/dev/null
    done
    if [ "${DONE:-0}" = 1 ] && ! grep -q '^FAIL$' "${RESULTS:-/nonexistent}" 2>/dev/null; then
        rm -rf "$T"
    else
        echo "hosts: logs kept in $T"
    fi
}
trap cleanup EXIT
trap 'echo "hosts: the watchdog stopped the run"; exit 1' TERM
(
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "${FETCHML_HOSTS_DEADLINE:-170}" &
    s=$!
    wait "$s" && kill -TERM $$ 2>/dev/null
) >/dev/null 2>&1 &
WATCHDOG=$!

# ---- stack A first: its first run makes the demo keys and the Redis password --------------
on A
if ! "$ROOT/scripts/run-local.sh" >"$T/a-start.out" 2>&1; then
    cat "$T/a-start.out"
    echo "hosts: stack A did not start"
    echo "0 passed, 1 failed"
    exit 1
fi
set -a
. "$T/a/dev/keys.env"
set +a
. "$ROOT/tests/integration/lib.sh"
PW=$(sed -n 's/^REDIS_PASSWORD=//p' "$T/a/dev/redis.env")
SPW=$(openssl rand -hex 24)
(umask 077 && printf 'SENTINEL_PASSWORD=%s\n' "$SPW" >"$T/sentinel.env")
# As root the pool gives up root before it reads the file again on reload: its own (0600).
# Only the file is the pool's: $T stays root's, as the audit logger demands of every directory
# above its trail ($T/a/log/audit.log).
if h_pool=$(fm_pool_user); then chown "$h_pool" "$T/sentinel.env"; fi

phase "stack A started"
# ---- the Redis deployment: master, two replicas, three sentinels --------------------------
D=$T/deploy
mkdir -p "$D"
start_redis() { # start_redis I [replicaof-port]
    local i=$1 port=${REDIS_PORTS[$1]} extra=()
    [ $# -gt 1 ] && extra=(--replicaof 127.0.0.1 "$2")
    mkdir -p "$D/r$i"
    redis-server --port "$port" --bind 127.0.0.1 --requirepass "$PW" --masterauth "$PW" \
        --min-replicas-to-write 1 --min-replicas-max-lag 10 --repl-diskless-sync-delay 0 \
        --save "" --appendonly no --daemonize yes --pidfile "$D/r$i.pid" \
        --logfile "$D/r$i.log" --dir "$D/r$i" "${extra[@]}" \
        --user fetchml on ">$PW" '~*' '&*' '+@all' # the configs' redis.username
}
start_sentinel() { # start_sentinel I
    local i=$1
    cat >"$D/s$i.conf" <<EOF
port ${SENTINEL_PORTS[$i]}
bind 127.0.0.1
daemonize yes
pidfile $D/s$i.pid
logfile $D/s$i.log
dir $D
requirepass $SPW
sentinel monitor $MASTER_NAME 127.0.0.1 ${REDIS_PORTS[0]} 2
sentinel auth-pass $MASTER_NAME $PW
sentinel down-after-milliseconds $MASTER_NAME 1000
sentinel failover-timeout $MASTER_NAME 5000
EOF
    chmod 600 "$D/s$i.conf"
    redis-server "$D/s$i.conf" --sentinel
}
scli() { REDISCLI_AUTH=$SPW redis-cli --no-auth-warning -p "${SENTINEL_PORTS[$1]}" "${@:2}"; }
master_port() { scli 0 SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | sed -n 2p; }
mcli() { REDISCLI_AUTH=$PW redis-cli --no-auth-warning -p "$(master_port)" "$@"; }
replicas_up() { [ "$(REDISCLI_AUTH=$PW redis-cli --no-auth-warning -p "${REDIS_PORTS[0]}" INFO replication | grep -c 'state=online')" = 2 ]; }
sentinel_ready() { # every sentinel knows both replicas and the two other sentinels
    local i
    for i in 0 1 2; do
        scli "$i" SENTINEL master "$MASTER_NAME" 2>/dev/null |
            awk 'p == "num-slaves" { s = $1 } p == "num-other-sentinels" { o = $1 } { p = $1 }
                 END { exit !(s == 2 && o == 2) }' || return 1
    done
}
start_redis 0
start_redis 1 "${REDIS_PORTS[0]}"
start_redis 2 "${REDIS_PORTS[0]}"
check "the master has its two replicas online" wait_for 15 replicas_up
for i in 0 1 2; do start_sentinel "$i"; done
check "three sentinels know the master, both replicas and each other" wait_for 20 sentinel_ready

phase "Redis deployment ready"
# ---- both hosts' configs: the same users, the sentinels instead of a server ---------------
H_KEY=$(openssl rand -hex 32)     # one user, limited at 120/min with a burst of 5
G_KEY=$(openssl rand -hex 32)     # a valid key never used from 127.0.0.1 before the block
W_KEY=$(openssl rand -hex 32)     # a worker, "whost"
HOSTS_CONFIG=(
    'rate_limit={ requests_per_minute: 60000, burst: 10000, auth_failures: { max: 5, window_seconds: 60, block_seconds: 5 }, anonymous: { max: 1000000, window_seconds: 1 } }'
    "redis.sentinels=[\"127.0.0.1:${SENTINEL_PORTS[0]}\", \"127.0.0.1:${SENTINEL_PORTS[1]}\", \"127.0.0.1:${SENTINEL_PORTS[2]}\"]"
    "redis.master_name=$MASTER_NAME"
    "redis.sentinel_password_file=\"$T/sentinel.env\""
    "redis.timeout_ms=$TIMEOUT_MS"
    'limits={ max_open_tasks: 100000 }'
    "extra_users=    hoster:
      hash: \"$(hash_of "$H_KEY")\"
      roles: [\"analyst\"]
      rate_limit: { requests_per_minute: 120, burst: 5 }
    guarded:
      hash: \"$(hash_of "$G_KEY")\"
      roles: [\"analyst\"]
    whost:
      hash: \"$(hash_of "$W_KEY")\"
      roles: [\"worker\"]"
)
host_serves() { as analyst GET /v1/whoami && status_is 200; }
on A
write_config "${HOSTS_CONFIG[@]}"
check "host A reloads onto the sentinels" reload_until host_serves
on B
mkdir -p "$T/b/dev"
chmod 700 "$T/b/dev"
cp -p "$T/a/dev/keys.env" "$T/a/dev/redis.env" "$T/a/dev/redis-secret.conf" "$T/a/dev/tls.crt" \
    "$T/a/dev/tls.key" "$T/b/dev/"
write_config "${HOSTS_CONFIG[@]}"
if "$ROOT/scripts/run-local.sh" >"$T/b-start.out" 2>&1; then ok "host B starts on the sentinels"; else
    not_ok "host B starts on the sentinels"
    cat "$T/b-start.out"
fi
check "host B serves the same users" host_serves
for h in A B; do
    on "$h"
    check "host $h's master logs that Redis comes from 3 sentinels" \
        grep -q "redis master \"$MASTER_NAME\" from 3 sentinels" "$FETCHML_VAR/log/fcgi.stderr"
done

phase "both hosts on the sentinels"
# ---- one user's bucket across hosts --------------------------------------------------------
# Requests alternate A, B, A, ...; the bucket (rate 2/s, burst 5) must count them as one.
admitted=0 refused=0 per_host_ok=(0 0) i=0
t0=$EPOCHREALTIME
for i in $(seq 0 29); do
    if [ $((i % 2)) -eq 0 ]; then on A; else on B; fi
    as "$H_KEY" GET /v1/whoami
    case $STATUS in
    200) admitted=$((admitted + 1)) per_host_ok[i % 2]=$((per_host_ok[i % 2] + 1)) ;;
    429) refused=$((refused + 1)) ;;
    esac
done
elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
bound=$(awk -v e="$elapsed" 'BEGIN { printf "%.2f", 5 + 2 * e }')
check "alternating hosts: $admitted admitted in ${elapsed} s <= burst + rate x elapsed = $bound" \
    awk -v n="$admitted" -v b="$bound" 'BEGIN { exit !(n <= b) }'
check "... and at least the burst (5); the rest refused 429 ($refused), none otherwise" \
    test "$admitted" -ge 5 -a $((admitted + refused)) -eq 30
check "... both hosts admitted some (A ${per_host_ok[0]}, B ${per_host_ok[1]})" \
    test "${per_host_ok[0]}" -gt 0 -a "${per_host_ok[1]}" -gt 0

# ---- the guard's block holds on the other host ---------------------------------------------
guard_clear() { mcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 fetchml:anon:127.0.0.1 >/dev/null; }
guard_clear
on A
codes=""
for n in 1 2 3 4 5; do
    as "$(printf '%064d' "$n")" GET /v1/whoami
    codes+="$STATUS "
done
check "5 bad keys on host A -> 401 each (got $codes)" [ "$codes" = "401 401 401 401 401 " ]
sleep 1.1 # the documented lag of a worker's clean verdict (bruteforce.h)
on B
as "$G_KEY" GET /v1/whoami
check "host B refuses the blocked address, even with a valid key -> 429" status_is 429
check "... with Retry-After" header_has 'Retry-After: [1-5]'
guard_clear
sleep 1.1 # a worker's cached verdict on the address lasts up to 1 s (bruteforce.h)

# ---- a task queued on A, claimed through B, its events on a socket on A -------------------
on A
ws_listen ha --key "$FETCHML_RESEARCHER_KEY"
check "a researcher's socket is open on host A" ws_is_open ha
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"hosts-1","priority":9}'
task=$(json .id || true)
check "the researcher queues a task on host A -> 201" status_is 201
on B
as "$W_KEY" POST /v1/worker/claim
check "a worker claims it through host B -> 200, that task, held by whost" \
    bash -c "[ $STATUS = 200 ] && jq -e '.id == \"$task\" and .worker_id == \"whost\"' '$B' >/dev/null"
check "the socket on A gets task.created (published by A)" wait_for 3 ws_got ha task.created "$task"
check "the socket on A gets task.started (published by B's worker, relayed by A)" \
    wait_for 3 ws_got ha task.started "$task"
as "$W_KEY" POST "/v1/tasks/$task/complete" -H 'Content-Type: application/json' -d '{"status":"completed"}'
check "the worker completes it through B -> 200" status_is 200
check "the socket on A gets task.completed" wait_for 3 ws_got ha task.completed "$task"
on A
as researcher GET "/v1/tasks/$task"
check "host A shows the task completed" bash -c "[ $STATUS = 200 ] && jq -e '.status == \"completed\"' '$B' >/dev/null"
ws_stop_all

phase "across-host checks done"
# ---- failover under load --------------------------------------------------------------------
# load N HOST: POST /v1/tasks in a loop until $T/stop-load; one line per request in
# $T/load-N: start (epoch s), status, time_total, Retry-After, id.
load() {
    local n=$1 port dir t out ra id
    on "$2"
    port=$FETCHML_HTTPS_PORT dir=$T/load-$n.d
    mkdir -p "$dir"
    while [ ! -e "$T/stop-load" ]; do
        t=$EPOCHREALTIME
        out=$(curl -sk -X POST --max-time 5 -D "$dir/h" -o "$dir/b" -w '%{http_code} %{time_total}' \
            -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H 'Content-Type: application/json' \
            -d '{"job_name":"hosts-load","priority":1}' "https://127.0.0.1:$port/v1/tasks") || out="000 5"
        ra=$(tr -d '\r' <"$dir/h" | awk -F': ' 'tolower($1) == "retry-after" { print $2 }' | head -1)
        id=$(jq -r '.id // "-"' <"$dir/b" 2>/dev/null || echo -)
        printf '%s %s %s %s\n' "$t" "$out" "${ra:--}" "${id:--}" >>"$T/load-$n"
    done
}
rm -f "$T/stop-load"
lpids=()
for n in 1 2 3 4; do
    if [ $((n % 2)) -eq 1 ]; then load "$n" A & else load "$n" B & fi
    lpids+=($!)
done
sleep 2
old=$(master_port)
kill_t=$EPOCHREALTIME
kill -KILL "$(cat "$D/r$(( old - REDIS_PORTS[0] )).pid")"
switched() { p=$(master_port); [ -n "$p" ] && [ "$p" != "$old" ]; }
if wait_for 30 switched; then
    switch_t=$EPOCHREALTIME
    ok "the sentinels promote a replica (port $p) $(awk -v a="$kill_t" -v b="$switch_t" 'BEGIN { printf "%.1f", b - a }') s after the kill"
else
    switch_t=$EPOCHREALTIME
    not_ok "the sentinels promote a replica within 30 s"
fi
sleep 4
touch "$T/stop-load"
wait "${lpids[@]}"
cat "$T"/load-? | sort -n >"$T/load"
total=$(wc -l <"$T/load")
acked_before=$(awk -v k="$kill_t" '$2 == 201 && $1 + $3 < k' "$T/load" | wc -l)
n503=$(awk '$2 == 503' "$T/load" | wc -l)
check "load: $total requests, $acked_before acknowledged before the kill, $n503 refused 503" \
    test "$total" -gt 0 -a "$acked_before" -gt 0
check "every answer is 201, or 503 with Retry-After" \
    awk '!($2 == 201 || ($2 == 503 && $4 ~ /^[0-9]+$/)) { bad = 1 } END { exit bad }' "$T/load"
slowest=$(awk '$3 > m { m = $3 } END { printf "%.3f", m }' "$T/load")
check "no request took longer than timeout_ms + 1 s (slowest ${slowest} s)" \
    awk -v m="$slowest" -v t="$TIMEOUT_MS" 'BEGIN { exit !(m <= t / 1000 + 1) }'
last503=$(awk '$2 == 503 { l = $1 + $3 } END { printf "%.3f", l }' "$T/load")
check "refusals end within the failover + 2 s (last $(awk -v a="$kill_t" -v l="$last503" 'BEGIN { printf "%.1f", (l > 0 ? l - a : 0) }') s after the kill)" \
    awk -v l="$last503" -v s="$switch_t" 'BEGIN { exit !(l <= s + 2) }'
for h in A B; do
    on "$h"
    as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"hosts-after","priority":2}'
    check "host $h serves after the failover without a restart -> 201" status_is 201
done
awk '$2 == 201 { print $5 }' "$T/load" >"$T/acked"
lost=0
while read -r id; do
    [ "$(mcli EXISTS "fetchml:task:$id")" = 1 ] || lost=$((lost + 1))
done <"$T/acked"
check "every acknowledged task ($(wc -l <"$T/acked")) is on the new master (lost: $lost)" [ "$lost" -eq 0 ]

phase "failover checks done"

# Both pools' and log relays' stderr must hold no sanitizer report (as run.sh checks).
for h in A B; do
    on "$h"
    "$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1
    no_sanitizer_reports "host $h"
done
DONE=1
summary hosts
