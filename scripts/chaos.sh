#!/usr/bin/env bash
# Chaos run: mixed API load on loopback while faults hit the stack, then
# checks of what every client saw and of the audit trail.
#
#   FETCHML_BENCH_ONLY=chaos scripts/bench.sh    (builds, starts a private stack, runs this)
#
# scripts/bench.sh runs it last, as its part scripts/bench.d/90-chaos.sh, on
# the stack it started (FETCHML_VAR, FETCHML_HTTPS_PORT, FETCHML_BUILD, which
# bench.sh exports); it is not part of scripts/test.sh and nothing in it is a
# timing assertion. It replaces the stack's config.yaml for the run (three
# chaos users with limits a load does not trip, auth_failures.max 1000000,
# rate_limit.anonymous at its default, so the no-key traffic blocks 127.0.0.1
# and the chaos users go on as its known clients; rate_limit.on_redis_error:
# deny) and puts the old one back afterwards.
#
# Load: bench/chaos_client.py, FETCHML_CHAOS_CLIENTS (8) threads with kept-alive
# TLS connections, for FETCHML_CHAOS_SECONDS (60, 10..600) seconds: whoami,
# create/list/get/cancel/delete tasks, an analyst's forbidden create,
# unknown and malformed keys, no key, and a URI too long for nginx (its own
# 414). Every answer's status and headers are recorded.
# Faults, at fixed fractions of the run (the schedule below):
#   worker  kill -9 of one FastCGI worker (a child of the master in run/fcgi.pid)
#   restart Redis stopped (TERM), down for a second, started with the same redis.conf
#   hang    Redis stopped with kill -STOP, until "cont" (-CONT) 4 s later at 60 s
#           (the CONT is also in the EXIT trap: Redis is never left stopped)
#   reload  config.yaml changed (a user added or removed), scripts/run-local.sh reload
#   rotate  audit.log, api.log and nginx's logs moved aside as logrotate does
#           (x.log.N -> x.log.N+1, x.log -> x.log.1), then SIGUSR1 to the master and the relay
# FETCHML_CHAOS_SCHEDULE replaces the schedule: lines "PERCENT FAULT", in
# order, FAULT one of the above or "storm" (24 worker kills 0.3 s apart).
# Checks, printed as one summary line "chaos (S s): ..." and one detail line:
# every answer is 2xx, 4xx or 503 with Retry-After (anything else, a
# connection error included, is listed as a failure with its trace id);
# fetchml-admin audit-verify passes over the rotated files and the current one;
# and the audit lines written during the run are exactly the answers the
# application gave (matched by trace id: an answer with Cache-Control: no-store
# came from a worker, nginx's own refusals have none). Exit status 1 on any
# failure. FETCHML_CHAOS_KEEP=DIR keeps the answers (JSON lines), the run's
# audit lines, the fault log and api.log there for a closer look. Only
# 127.0.0.1 is used; every step has a time bound.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

VAR=${FETCHML_VAR:?FETCHML_VAR: the var dir of a running stack (run it through scripts/bench.sh)}
BUILD=${FETCHML_BUILD:?FETCHML_BUILD: the build tree of that stack}
HTTPS_PORT=${FETCHML_HTTPS_PORT:?FETCHML_HTTPS_PORT: the HTTPS port of that stack}
SECONDS_RUN=${FETCHML_CHAOS_SECONDS:-60}
CLIENTS=${FETCHML_CHAOS_CLIENTS:-8}
RUN=$VAR/run
LOG=$VAR/log
CFG=$VAR/dev/config.yaml
BASE="https://127.0.0.1:$HTTPS_PORT"

[[ $SECONDS_RUN =~ ^[0-9]+$ ]] && [ "$SECONDS_RUN" -ge 10 ] && [ "$SECONDS_RUN" -le 600 ] ||
    fm_die "FETCHML_CHAOS_SECONDS is 10..600 (got '$SECONDS_RUN')"
[[ $CLIENTS =~ ^[1-9][0-9]?$ ]] || fm_die "FETCHML_CHAOS_CLIENTS is 1..99 (got '$CLIENTS')"
[[ $("$ROOT/scripts/run-local.sh" status) == *"fcgi: running"* ]] || fm_die "the stack in $VAR is not running"

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
gone() { ! kill -0 "$1" 2>/dev/null; }
STOPPED_REDIS="" # the pid a hang stopped, until it is continued
LOAD_PID=""
WORK=$(mktemp -d /tmp/fetchml-chaos.XXXXXX) # after the checks above: the trap below removes it
cleanup() {
    [ -z "$STOPPED_REDIS" ] || kill -CONT "$STOPPED_REDIS" 2>/dev/null || true
    [ -z "$LOAD_PID" ] || kill -TERM "$LOAD_PID" 2>/dev/null || true
    if [ -f "$WORK/config.saved" ]; then
        cp "$WORK/config.saved" "$CFG"
        timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the chaos config: three users, limits a load does not trip -------------------
key() { openssl rand -hex 32; }
hash() { printf '%s' "$1" | "$BUILD/fetchml-admin" hash; }
CHAOS_KEY_ADMIN=$(key) CHAOS_KEY_RESEARCHER=$(key) CHAOS_KEY_ANALYST=$(key)
export CHAOS_KEY_ADMIN CHAOS_KEY_RESEARCHER CHAOS_KEY_ANALYST
BIG='rate_limit: { requests_per_minute: 1000000, burst: 1000000 }'
USERS="chaos_admin: { hash: \"$(hash "$CHAOS_KEY_ADMIN")\", admin: true, roles: [\"admin\"], $BIG },
    chaos_researcher: { hash: \"$(hash "$CHAOS_KEY_RESEARCHER")\", roles: [\"researcher\"], $BIG },
    chaos_analyst: { hash: \"$(hash "$CHAOS_KEY_ANALYST")\", roles: [\"analyst\"], $BIG }"
cp "$CFG" "$WORK/config.saved"
# chaos_config [EXTRA_USER]: the config of the run, with one more user for the reloads.
chaos_config() {
    local extra=""
    [ -z "${1:-}" ] || extra=", $1: { hash: \"$(hash "$(key)")\", roles: [\"analyst\"] }"
    fm_dev_config "$CFG" "$VAR" "" "" "" "" "server.workers=${FETCHML_BENCH_WORKERS:-4}" \
        "auth.api_keys={ $USERS$extra }" \
        'rate_limit={ requests_per_minute: 1000000, burst: 1000000, on_redis_error: deny, auth_failures: { max: 1000000, window_seconds: 60, block_seconds: 1 } }'
}
whoami_ok() {
    [ "$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $CHAOS_KEY_RESEARCHER" \
        "$BASE/v1/whoami")" = 200 ]
}
chaos_config || fm_die "cannot write the chaos config"
timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || fm_die "reload with the chaos config failed"
wait_for 10 whoami_ok || fm_die "the chaos users do not authenticate after the reload"

# ---- faults ---------------------------------------------------------------------
say() { printf '  %6.1f s  %s\n' "$(awk -v t0="$T0" -v t="${EPOCHREALTIME}" 'BEGIN { print t - t0 }')" "$*" >>"$WORK/faults"; }
rcli() {
    REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$VAR/dev/redis-ops.env") \
        timeout 5 redis-cli --no-auth-warning --user ops -s "$RUN/redis.sock" "$@"
}
redis_up() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }

fault_worker() {
    local w
    w=$(pgrep -x -P "$(pid_of fcgi)" fetchml-fcgi | shuf -n 1) || true
    [ -n "$w" ] || { say "worker: no worker found"; return 0; }
    kill -KILL "$w" 2>/dev/null || true
    say "worker: kill -9 $w"
}
# As scripts/run-local.sh stops and starts it: TERM, wait, redis-server with the same redis.conf.
fault_restart() {
    local p
    p=$(pid_of redis)
    kill -TERM "$p"
    wait_for 10 gone "$p" || kill -KILL "$p" 2>/dev/null || true
    say "restart: redis $p stopped"
    sleep 1
    fm_redis_server "$VAR/dev/redis.conf" || fm_die "redis-server did not start again"
    wait_for 5 redis_up || fm_die "redis does not answer after the restart"
    say "restart: redis $(pid_of redis) answers"
}
# A hang lasts until the schedule's "cont"; other faults may run meanwhile.
fault_hang() {
    STOPPED_REDIS=$(pid_of redis)
    kill -STOP "$STOPPED_REDIS"
    say "hang: kill -STOP redis $STOPPED_REDIS"
}
fault_cont() {
    kill -CONT "$STOPPED_REDIS"
    say "cont: kill -CONT redis $STOPPED_REDIS"
    STOPPED_REDIS=""
}
RELOADS=0
fault_reload() {
    RELOADS=$((RELOADS + 1))
    local extra=""
    [ $((RELOADS % 2)) -eq 0 ] || extra=chaos_extra
    chaos_config "$extra" || fm_die "cannot write the chaos config"
    if timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1; then
        say "reload: ${extra:+with }${extra:-without chaos_extra}"
    else
        say "reload: REFUSED"
        echo "reload refused" >>"$WORK/fault-errors"
    fi
}
# Not in the default schedule: 24 kills 0.3 s apart, each of a worker that may
# be the replacement of the last one (as an OOM killer would).
fault_storm() {
    local i w killed=""
    for ((i = 0; i < 24; i++)); do
        w=$(pgrep -x -P "$(pid_of fcgi)" fetchml-fcgi | shuf -n 1) || true
        [ -z "$w" ] || { kill -KILL "$w" 2>/dev/null && killed+=" $w"; } || true
        sleep 0.3
    done
    say "storm: kill -9$killed"
}
ROTATIONS=0
# rotated NAME: NAME's files, oldest first (NAME.log.N ... NAME.log.1, NAME.log).
rotated() {
    local i
    for ((i = ROTATIONS; i >= 1; i--)); do [ ! -e "$LOG/$1.log.$i" ] || echo "$LOG/$1.log.$i"; done
    [ ! -e "$LOG/$1.log" ] || echo "$LOG/$1.log"
}
fault_rotate() {
    local f i
    for f in audit api nginx-access nginx-error; do
        for ((i = ROTATIONS; i >= 1; i--)); do
            [ ! -e "$LOG/$f.log.$i" ] || mv "$LOG/$f.log.$i" "$LOG/$f.log.$((i + 1))"
        done
        [ ! -e "$LOG/$f.log" ] || mv "$LOG/$f.log" "$LOG/$f.log.1"
    done
    ROTATIONS=$((ROTATIONS + 1))
    kill -USR1 "$(pid_of fcgi)" "$(pid_of logrelay)"
    say "rotate: *.log.N -> *.log.N+1, *.log -> *.log.1, SIGUSR1 to the master and the relay"
}
# The schedule: percent of the run, fault. Each kind twice or more, apart; the
# second hang has a reload, a worker kill and a rotation inside it.
SCHEDULE=${FETCHML_CHAOS_SCHEDULE:-"5 worker
10 restart
18 reload
25 hang
32 cont
37 rotate
43 worker
48 restart
52 hang
55 reload
57 worker
59 rotate
61 cont
68 reload
74 worker
78 hang
85 cont
90 rotate"}
while read -r pct what; do
    [[ $pct =~ ^[0-9]{1,2}$ ]] && declare -F "fault_$what" >/dev/null ||
        fm_die "FETCHML_CHAOS_SCHEDULE: not 'PERCENT FAULT' (0..99, $(declare -F | sed -n 's/^declare -f fault_//p' | tr '\n' ' ')): $pct $what"
done <<<"$SCHEDULE"

# ---- the run ----------------------------------------------------------------------
# No earlier rotation may be in the way: the run's own go to .1, .2, ...
for f in audit api nginx-access nginx-error; do
    [ ! -e "$LOG/$f.log.1" ] || fm_die "$LOG/$f.log.1 exists; move it away first"
done
sleep 0.5 # the reload's last requests are written
AUDIT_BEFORE=$(wc -l <"$LOG/audit.log")
T0=$EPOCHREALTIME
timeout $((SECONDS_RUN + 60)) python3 "$ROOT/bench/chaos_client.py" load "$BASE" "$VAR/dev/tls.crt" \
    "$SECONDS_RUN" "$CLIENTS" "$WORK/answers.jsonl" &
LOAD_PID=$!
while read -r -u 3 pct what; do
    at=$(awk -v t0="$T0" -v p="$pct" -v s="$SECONDS_RUN" 'BEGIN { printf "%.3f", t0 + p * s / 100 }')
    left=$(awk -v a="$at" -v t="$EPOCHREALTIME" 'BEGIN { d = a - t; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$left"
    "fault_$what"
done 3<<<"$SCHEDULE"
[ -z "$STOPPED_REDIS" ] || fault_cont # a schedule that ends inside a hang
wait "$LOAD_PID" || fm_die "the load client failed"
LOAD_PID=""
sleep 0.5 # the last records are written

# ---- checks -----------------------------------------------------------------------
# The run's lines: those of the oldest file past AUDIT_BEFORE, then the newer files whole.
mapfile -t files < <(rotated audit)
{
    tail -n +$((AUDIT_BEFORE + 1)) "${files[0]}"
    [ ${#files[@]} -lt 2 ] || cat "${files[@]:1}"
} >"$WORK/audit-new.jsonl"
verified=no
"$BUILD/fetchml-admin" audit-verify "${files[@]}" >"$WORK/verify.out" 2>&1 && verified=yes
rc=0
python3 "$ROOT/bench/chaos_client.py" check "$SECONDS_RUN" "$WORK/answers.jsonl" "$WORK/audit-new.jsonl" \
    "$verified" || rc=1
echo "chaos faults (seconds into the run):"
cat "$WORK/faults"
if [ "$verified" = no ]; then
    echo "chaos audit-verify ${files[*]##*/}:"
    sed 's/^/  /' "$WORK/verify.out"
fi
[ ! -e "$WORK/fault-errors" ] || { echo "chaos: a fault could not be applied: $(cat "$WORK/fault-errors")"; rc=1; }
if [ -n "${FETCHML_CHAOS_KEEP:-}" ]; then
    mkdir -p "$FETCHML_CHAOS_KEEP" && cp "$WORK"/{answers.jsonl,audit-new.jsonl,faults,verify.out} "$FETCHML_CHAOS_KEEP"/ &&
        cp "$LOG/api.log"* "$FETCHML_CHAOS_KEEP"/ && echo "chaos: answers, audit lines, faults and api.log kept in $FETCHML_CHAOS_KEEP"
fi

# Leave one audit.log, as bench.sh's stack had it: the rotated pieces joined, in order.
for f in audit api nginx-access nginx-error; do
    mapfile -t pieces < <(rotated "$f")
    [ ${#pieces[@]} -gt 1 ] || continue
    cat "${pieces[@]}" >"$LOG/$f.log.joined"
    rm -f "${pieces[@]}"
    mv "$LOG/$f.log.joined" "$LOG/$f.log"
done
kill -USR1 "$(pid_of fcgi)" "$(pid_of logrelay)"
exit "$rc"
