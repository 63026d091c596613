#!/usr/bin/env bash
# Benchmark: what the fetchml-fcgi pipeline costs over a bare FastCGI responder
# behind the same nginx, on loopback.
#
#   scripts/bench.sh
#
# It builds a RelWithDebInfo tree (FETCHML_BUILD, default build-bench/) and the
# baseline responder bench/hello.c, starts a private stack with
# scripts/run-local.sh in a temporary var dir (removed at the end), serves the
# bench user with a bucket too large to throttle (1,000,000/minute, burst
# 1,000,000: the config maximum), and adds one nginx location,
# /__bench/hello, that passes to hello's socket. Then, with the same TLS
# server, FastCGI parameters, request headers, worker count and wrk settings:
#   hello  GET /__bench/hello   hello's workers: fixed 200 {"status":"ok"}
#   full   GET /v1/whoami       IP ACL, auth, rate limit (Redis), RBAC, handler, audit
#                               (the record sent to the audit logger process and acknowledged)
# They run interleaved: FETCHML_BENCH_ROUNDS rounds of hello then full, and hello once more
# (the machine's speed drifts between runs; each round is compared with the hello runs around
# it and the median ratio is reported). Each run is a warm-up, then a measured wrk run with
# --latency, during which
# the CPU time of every process group of the stack (from /proc) is sampled:
# it gives CPU microseconds per request for each (on a small machine where
# everything shares the CPUs, throughput is the inverse of their sum) and the
# share of process CPU taken by processes outside the stack (over 10%: a
# warning, the machine was not quiet and req/s are not comparable). Afterwards a fixed number of requests counts Redis
# commands per request (INFO commandstats, which includes commands run inside
# Lua scripts) and client round trips (MONITOR, which marks script-internal
# commands as "lua"), and bench/redact_bench times the redaction filter on
# generated log lines. Output, one result per line; the last is
# "ratio full/hello: X.XX" (requests per second, full over hello).
#
# Then the parts in scripts/bench.d/ run on the same stack: among them the job
# API against the same hello (15-jobs.sh: GET /v1/tasks/{id}, POST /v1/tasks, a
# worker's claim + complete, "ratio task/hello", "ratio post/hello", "ratio
# claim/hello", and a page of ?status= over 100 against 100,000 tasks of
# history, "ratio list_100k/list_100"), WebSockets (50-ws.sh: 2,000 sockets on /ws,
# publish-to-receive p50/p99 and nginx memory per socket, "ws: ..."), last the chaos run
# (90-chaos.sh, scripts/chaos.sh: 60 s of mixed load while Redis is restarted
# and hung, workers are killed, the config is reloaded and the logs rotated;
# every answer must be 2xx, 4xx or 503 with Retry-After and the audit trail
# must match the answers; its summary line starts with "chaos (").
#
# Environment (defaults): FETCHML_BENCH_HTTPS_PORT (9301), FETCHML_BENCH_HTTP_PORT
# (9300), FETCHML_BENCH_WORKERS (4), FETCHML_BENCH_CONNECTIONS (32),
# FETCHML_BENCH_DURATION (10, seconds, of each measured run), FETCHML_BENCH_ROUNDS (3), FETCHML_BUILD (build-bench/),
# FETCHML_BENCH_ONLY (unset: everything; NAME: set up the stack, then run only
# the part scripts/bench.d/NN-NAME.sh, e.g. FETCHML_BENCH_ONLY=chaos), and the
# chaos run's FETCHML_CHAOS_SECONDS (60), FETCHML_CHAOS_CLIENTS (8).
# Exit status 1 when a run saw errors or non-2xx answers (the numbers are then
# not comparable). Only 127.0.0.1 is used; every step has a time bound.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

HTTPS_PORT=${FETCHML_BENCH_HTTPS_PORT:-9301}
HTTP_PORT=${FETCHML_BENCH_HTTP_PORT:-9300}
WORKERS=${FETCHML_BENCH_WORKERS:-4}
CONNS=${FETCHML_BENCH_CONNECTIONS:-32}
DURATION=${FETCHML_BENCH_DURATION:-10}
BUILD=${FETCHML_BUILD:-$ROOT/build-bench}
ROUNDS=${FETCHML_BENCH_ROUNDS:-3}
ONLY=${FETCHML_BENCH_ONLY:-}
THREADS=2
WARMUP=2
COUNT_REQUESTS=1000
REDACT_MB=4
RATE_MAX=1000000 # the largest requests_per_minute and burst conf/README.md allows

for v in HTTPS_PORT HTTP_PORT WORKERS CONNS DURATION ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]{0,4}$ ]] || fm_die "$v must be a positive integer (got '${!v}')"
done
[[ $ONLY =~ ^[a-z0-9-]*$ ]] || fm_die "FETCHML_BENCH_ONLY is the NAME of a part scripts/bench.d/NN-NAME.sh"
if [ "$DURATION" -lt 4 ] || [ "$DURATION" -gt 60 ]; then
    fm_die "FETCHML_BENCH_DURATION is 4..60 seconds"
fi
[ "$ROUNDS" -le 9 ] || fm_die "FETCHML_BENCH_ROUNDS is 1..9"

FM_PACKAGES="$FM_PACKAGES wrk"
fm_install_deps
fm_say "build ($BUILD, RelWithDebInfo)"
fm_build "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
grep -q '^FM_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" &&
    fm_die "$BUILD is a sanitizer build; benchmark a plain one"
# Built by CMake (targets outside "all"), with the project's own flags.
cmake --build "$BUILD" --target bench_hello redact_bench -- --no-print-directory >/dev/null ||
    fm_die "cannot build bench/hello.c and bench/redact_bench.c"

VAR=$(mktemp -d /tmp/fetchml-bench.XXXXXX)
chmod 755 "$VAR"
RUN=$VAR/run
HELLO_PID=""
BG_PIDS=() # wrk and MONITOR, while they run in the background
export FETCHML_VAR=$VAR FETCHML_HTTPS_PORT=$HTTPS_PORT FETCHML_HTTP_PORT=$HTTP_PORT
export FETCHML_BUILD=$BUILD
# Room for the job parts' tasks (15-jobs.sh keeps some 250,000 at most); never evicted.
export FETCHML_REDIS_MAXMEMORY=${FETCHML_REDIS_MAXMEMORY:-2gb}

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ -n "$HELLO_PID" ]; then
        kill -TERM "$HELLO_PID" 2>/dev/null || true
        wait "$HELLO_PID" 2>/dev/null || true
    fi
    "$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1 || true
    rm -rf "$VAR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The baseline's location, picked up by the template's include (nginx/local/nginx.conf.in).
mkdir -p "$VAR/nginx/extra"
cat >"$VAR/nginx/extra/bench-hello.conf" <<NGINX
location = /__bench/hello {
    include $ROOT/nginx/snippets/fetchml-fastcgi.conf;
    fastcgi_pass unix:$RUN/hello.sock;
}
NGINX

fm_say "starting the stack on https://127.0.0.1:$HTTPS_PORT ($VAR)"
timeout 60 "$ROOT/scripts/run-local.sh" >"$VAR/run-local.out" 2>&1 || {
    cat "$VAR/run-local.out" >&2
    fm_die "the stack did not start"
}

# The bench user, alone, in the shipped dev config (conf/dev/config.yaml.in:
# logging.level info, audit on).
KEY=$(openssl rand -hex 32)
HASH=$(printf '%s' "$KEY" | "$BUILD/fetchml-admin" hash)
fm_dev_config "$VAR/dev/config.yaml" "$VAR" "" "" "" "" "server.workers=$WORKERS" \
    "auth.api_keys={ bench: { hash: \"$HASH\", roles: [\"researcher\"], rate_limit: { requests_per_minute: $RATE_MAX, burst: $RATE_MAX } } }" ||
    fm_die "cannot write the bench config"
timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || fm_die "reload with the bench config failed"

"$BUILD/bench_hello" "$RUN/hello.sock" "$WORKERS" 2>>"$VAR/log/hello.stderr" &
HELLO_PID=$!
wait_for 5 test -S "$RUN/hello.sock" || fm_die "hello did not open $RUN/hello.sock"
if [ "$(id -u)" -eq 0 ]; then
    # nginx's workers run as www-data, as for the pool's socket.
    chgrp www-data "$RUN/hello.sock" && chmod 660 "$RUN/hello.sock"
fi

BASE="https://127.0.0.1:$HTTPS_PORT"
HELLO_URL="$BASE/__bench/hello"
FULL_URL="$BASE/v1/whoami"
get() { curl -sk --max-time 5 -H "X-API-Key: $KEY" -o "$VAR/body" -w '%{http_code}' "$1" || true; }
full_ok() { [ "$(get "$FULL_URL")" = 200 ]; }
rcli() {
    REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$VAR/dev/redis-ops.env") \
        timeout 10 redis-cli --no-auth-warning --user ops -s "$RUN/redis.sock" "$@"
}
# The reload replaces workers gracefully; wait for the new snapshot.
wait_for 5 full_ok || fm_die "GET /v1/whoami as the bench user does not answer 200"
if [ "$(get "$HELLO_URL")" != 200 ] || [ "$(cat "$VAR/body")" != '{"status":"ok"}' ]; then
    fm_die "GET /__bench/hello does not answer 200 {\"status\":\"ok\"}"
fi

WRK_BASE=(wrk -t"$THREADS" -c"$CONNS" -H "X-API-Key: $KEY")
WRK=("${WRK_BASE[@]}")
INVALID=""
BUSY_MACHINE=""

HZ=$(getconf CLK_TCK)

# group_ticks PID...: user + system clock ticks of these processes and their children.
group_ticks() {
    local pids
    pids="$* $(pgrep -d ' ' -P "$(IFS=,; echo "$*")" || true)"
    # One path per pid; cat, unlike awk, goes on past a process that is gone by now.
    # shellcheck disable=SC2002,SC2046,SC2086
    cat $(printf '/proc/%s/stat ' $pids) 2>/dev/null |
        # After the ")" that ends the command name: utime is the 12th field, stime the 13th.
        awk '{ sub(/.*\) /, ""); split($0, f, " "); t += f[12] + f[13] } END { print t + 0 }'
}

# sleep_until NS: sleep until the clock (date +%s%N) reads NS; at once if it is past.
sleep_until() {
    local left
    left=$((($1 - $(date +%s%N)) / 1000000))
    [ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
    return 0
}

# snapshot WRK_PID FILE: the machine's busy ticks, the time, and each stack process group's ticks.
snapshot() {
    local f
    {
        awk '/^cpu / { print "busy", $2 + $3 + $4; print "irq", $7 + $8; print "steal", $9 }' /proc/stat
        echo "time $(date +%s%N)"
        for f in "$RUN"/*.pid; do echo "$(basename "$f" .pid) $(group_ticks "$(cat "$f")")"; done
        echo "hello $(group_ticks "$HELLO_PID")"
        echo "wrk $(group_ticks "$1")"
    } >"$2"
}

# cpu_report NAME: CPU time per request of each process group between the two
# snapshots, plus interrupt time (loopback networking runs largely in softirq,
# which the kernel does not charge to a process), and the share of process CPU
# that went to processes outside the stack. Exit status 3 when that share is over 10%.
cpu_report() {
    awk -v hz="$HZ" -v rps="$RPS" -v name="$1" '
        NR == FNR { a[$1] = $2; next }
        { b[$1] = $2; order[++n] = $1 }
        END {
            per = 1e6 / hz / (rps * (b["time"] - a["time"]) / 1e9) # ticks -> us per request
            for (i = 1; i <= n; i++) {
                k = order[i]
                if (k == "busy" || k == "time" || k == "steal") continue
                d = b[k] - a[k]
                if (k != "irq") ours += d
                line = line sprintf(" %s %.1f,", k == "irq" ? "irq+softirq" : k, d * per)
                total += d * per
            }
            busy = b["busy"] - a["busy"]
            other = busy > 0 ? (busy - ours) / busy * 100 : 0
            if (other < 0) other = 0
            sub(/,$/, "", line)
            printf "%s cpu per request (us):%s = %.1f; other processes: %.0f%% of process CPU",
                name, line, total, other
            if (b["steal"] > a["steal"]) printf "; hypervisor steal %.1f", (b["steal"] - a["steal"]) * per
            printf "\n"
            if (other > 10) exit 3
        }' "$VAR/cpu-$1-a" "$VAR/cpu-$1-b"
}

# run NAME URL: warm-up, then the measured run; sets RPS (requests/s), P99
# (ms) and CPU_<NAME> (the cpu_report line), sampling CPU inside the run.
run() {
    local name=$1 url=$2 out=$VAR/wrk-$1.txt bad wpid start report rc=0 sampled=1
    fm_say "$name: ${WARMUP}s warm-up, then ${DURATION}s measured (wrk -t$THREADS -c$CONNS)"
    timeout $((WARMUP + 15)) "${WRK[@]}" -d"${WARMUP}s" "$url" >/dev/null ||
        fm_die "wrk failed (warm-up of $name)"
    start=$(date +%s%N)
    timeout $((DURATION + 15)) "${WRK[@]}" -d"${DURATION}s" --latency "$url" >"$out" &
    wpid=$!
    BG_PIDS=("$wpid")
    # CPU is sampled inside the run, a second away from wrk's ramp-up and ramp-down.
    sleep_until $((start + 1000000000))
    snapshot "$wpid" "$VAR/cpu-$name-a"
    sleep_until $((start + (DURATION - 1) * 1000000000))
    snapshot "$wpid" "$VAR/cpu-$name-b"
    pgrep -P "$wpid" >/dev/null || sampled="" # wrk had ended: the window is not the run's
    wait "$wpid" || fm_die "wrk failed ($name)"
    BG_PIDS=()
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    # wrk prints latencies with a unit: us, ms, s or m.
    P99=$(awk '$1 == "99%" {
        v = $2; u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : -1
        if (f > 0) printf "%.2f", v * f }' "$out")
    bad=$(grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$out" || true)
    if [ -n "$bad" ]; then
        fm_say "$name: $bad"
        INVALID=1
    fi
    if [ -z "$RPS" ] || [ -z "$P99" ]; then
        cat "$out" >&2
        fm_die "cannot parse wrk's output ($name)"
    fi
    if [ -n "$sampled" ]; then
        report=$(cpu_report "$name") || rc=$?
    else
        report="$name cpu per request: not measured (the machine was too busy to sample inside the run)"
        rc=3
    fi
    [ "$rc" -eq 3 ] && BUSY_MACHINE=1
    printf -v "CPU_$name" '%s' "$report"
}

# interleaved NAME...: FETCHML_BENCH_ROUNDS rounds of "hello, then each NAME", then hello once
# more, each a run (above). The speed of this machine drifts between runs (hello alone has moved
# by a factor of two from one minute to the next), so each NAME's round is compared with the
# mean of the hello runs just before and after it, and the median over the rounds is reported.
# The caller's function setup_run NAME sets URL and WRK for NAME (hello's are HELLO_URL and
# WRK_BASE). Sets, for each NAME: RATIO_<NAME> (the median ratio), RATIOS_<NAME> (each round's,
# space-separated), RPS_<NAME> and P99_<NAME> (of the round with the median ratio), and
# RPS_HELLO (the median of hello's runs).
interleaved() {
    local r name i hellos=() ratio best
    declare -A rps=() p99=()
    for ((r = 0; r < ROUNDS; r++)); do
        WRK=("${WRK_BASE[@]}")
        run hello "$HELLO_URL"
        hellos+=("$RPS")
        for name in "$@"; do
            setup_run "$name"
            run "$name" "$URL"
            rps[$name.$r]=$RPS p99[$name.$r]=$P99
        done
    done
    WRK=("${WRK_BASE[@]}")
    run hello "$HELLO_URL"
    hellos+=("$RPS")
    RPS_HELLO=$(printf '%s\n' "${hellos[@]}" | sort -n | sed -n "$(((${#hellos[@]} + 1) / 2))p")
    for name in "$@"; do
        local ratios=()
        for ((r = 0; r < ROUNDS; r++)); do
            ratios+=("$(awk -v x="${rps[$name.$r]}" -v a="${hellos[r]}" -v b="${hellos[r + 1]}" \
                'BEGIN { printf "%.2f", x / ((a + b) / 2) }')")
        done
        printf -v "RATIOS_$name" '%s' "${ratios[*]}"
        # The round whose ratio is the median (the lower middle one for an even count).
        best=$(for i in "${!ratios[@]}"; do echo "${ratios[i]} $i"; done | sort -n |
            sed -n "$(((ROUNDS + 1) / 2))p")
        ratio=${best% *} i=${best#* }
        printf -v "RATIO_$name" '%s' "$ratio"
        printf -v "RPS_$name" '%s' "${rps[$name.$i]}"
        printf -v "P99_$name" '%s' "${p99[$name.$i]}"
    done
}

# cmdstats: "command calls" per line, from INFO commandstats.
cmdstats() { rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p'; }

# count_redis N CMD...: the Redis work of the N requests that CMD makes (with
# the stack otherwise idle). Sets REDIS_CMDS ("cmd X.XX, ..." per request, from
# INFO commandstats, which includes commands run inside Lua scripts) and
# REDIS_TRIPS (client round trips per request, from MONITOR, which marks
# script-internal commands with "lua"; a fire-and-forget PUBLISH counts as one).
count_redis() {
    local n=$1 mon
    shift
    cmdstats >"$VAR/stats-before"
    # Not through rcli: $! must be timeout's pid, which passes the TERM on to redis-cli.
    REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$VAR/dev/redis-ops.env") \
        timeout 120 redis-cli --no-auth-warning --user ops -s "$RUN/redis.sock" MONITOR >"$VAR/monitor" 2>/dev/null &
    mon=$!
    BG_PIDS=("$mon")
    wait_for 5 grep -q '^OK' "$VAR/monitor" 2>/dev/null || true
    "$@" || true
    sleep 0.3 # let MONITOR print the last commands
    kill -TERM "$mon" 2>/dev/null || true
    wait "$mon" 2>/dev/null || true
    BG_PIDS=()
    cmdstats >"$VAR/stats-after"
    REDIS_CMDS=$(awk -v n="$n" '
        NR == FNR { before[$1] = $2; next }
        $1 != "info" && $1 != "auth" && $1 != "monitor" && $2 > before[$1] {
            printf "%s%s %.2f", sep, $1, ($2 - before[$1]) / n; sep = ", " }' \
        "$VAR/stats-before" "$VAR/stats-after")
    REDIS_TRIPS=$(awk -v n="$n" '/^[0-9]+\.[0-9]+ \[/ && !/ lua\] / { t++ }
        END { printf "%.2f", t / n }' "$VAR/monitor")
}

# Further measurements, one file each (scripts/bench.d/NN-name.sh, in order): each is
# sourced here with the stack still running (VAR, RUN, BASE, KEY, BUILD, WRK, rcli, get,
# wait_for, run, count_redis are theirs to use; RPS_HELLO is hello's req/s, unset with
# FETCHML_BENCH_ONLY), prints its result lines on stdout, leaves the stack as it found it,
# and sets INVALID=1 when its numbers are not comparable. With FETCHML_BENCH_ONLY=NAME
# only NN-NAME.sh runs, and nothing else is measured.
run_parts() {
    local part pattern=${ONLY:-*} # ONLY is [a-z0-9-]*: no glob characters of its own
    # shellcheck disable=SC2231 # the pattern's * must glob
    for part in "$ROOT"/scripts/bench.d/[0-9]*-$pattern.sh; do
        [ -e "$part" ] || { [ -z "$ONLY" ] || fm_die "no bench part scripts/bench.d/NN-$ONLY.sh"; continue; }
        fm_say "bench part $(basename "$part")"
        # shellcheck disable=SC1090
        . "$part"
    done
}
if [ -n "$ONLY" ]; then
    run_parts
    [ -z "$INVALID" ]
    exit
fi

# shellcheck disable=SC2034 # URL and WRK are read by interleaved
setup_run() { URL=$FULL_URL WRK=("${WRK_BASE[@]}"); }
interleaved full
P99_HELLO=$(awk '$1 == "99%" { print $2 }' "$VAR/wrk-hello.txt")

fm_say "counting Redis commands over $COUNT_REQUESTS requests"
for _ in $(seq "$COUNT_REQUESTS"); do printf 'url = "%s"\noutput = /dev/null\n' "$FULL_URL"; done \
    >"$VAR/curl-urls"
count_redis "$COUNT_REQUESTS" timeout 60 curl -sk --parallel --parallel-max 8 -H "X-API-Key: $KEY" \
    -w '%{http_code}\n' -K "$VAR/curl-urls" >"$VAR/codes" 2>/dev/null
n200=$(grep -c '^200$' "$VAR/codes" || true)
if [ "$n200" != "$COUNT_REQUESTS" ]; then
    fm_say "counting run: $n200 of $COUNT_REQUESTS answered 200"
    INVALID=1
fi

fm_say "redaction filter on ${REDACT_MB} MB of generated log lines"
redact=$(timeout 60 "$BUILD/redact_bench" "$REDACT_MB") || fm_die "redact_bench failed"

cpus=$(nproc)
echo "setup: wrk -t$THREADS -c$CONNS -d${DURATION}s (after a ${WARMUP}s warm-up), HTTPS keep-alive to nginx" \
    "on 127.0.0.1, $WORKERS FastCGI workers each, $cpus CPUs shared by everything"
echo "hello (bare libfcgi responder): $RPS_HELLO req/s (median of $((ROUNDS + 1)) runs), p99 $P99_HELLO (last run)"
# shellcheck disable=SC2154 # set by interleaved
echo "full (GET /v1/whoami, whole pipeline): $RPS_full req/s, p99 $P99_full ms (the median round); ratio to the hello runs around each round: $RATIOS_full"
echo "${CPU_hello:-}"
echo "${CPU_full:-}"
echo "redis commands per request (INFO commandstats, $COUNT_REQUESTS requests): ${REDIS_CMDS:-none}"
echo "redis round trips per request (MONITOR, script-internal commands excluded): $REDIS_TRIPS"
echo "$redact"
run_parts
if [ -n "$BUSY_MACHINE" ]; then
    echo "warning: processes outside the stack used more than 10% of the process CPU during a run (or it could not be sampled); the numbers are not reliable"
fi
# shellcheck disable=SC2154 # set by interleaved
echo "ratio full/hello: $RATIO_full"
[ -z "$INVALID" ]
