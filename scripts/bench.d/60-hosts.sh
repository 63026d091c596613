# Part of scripts/bench.sh (sourced; see the comment above its loop): two front-door
# hosts against one, on this machine (docs/several-hosts.md). A second stack, host B (its
# own nginx, FastCGI pool of the same size, sweeper and event relay: scripts/run-local.sh
# in a var dir of its own, on FETCHML_BENCH_HTTPS_PORT + 2 and FETCHML_BENCH_HTTP_PORT + 2),
# serves the bench user from the benchmark stack's Redis (redis.addr: its socket; Sentinel
# only changes how a connection finds the master, not the work per request). Then, for
# GET /v1/whoami as the bench user, with the same wrk threads and connections in all:
#   hosts1  wrk on the benchmark stack alone (bench.sh's run: -t2, CONNS connections)
#   hosts2  two wrks at once, -t1 and CONNS/2 connections each, one per host, req/s summed
# in the order hosts1, hosts2, hosts1 (the first and last averaged: the machine drifts).
# Prints "hosts1: N req/s", "hosts2: N req/s (A n + B n)" and "ratio hosts2/hosts1: X.XX".
# Both hosts share this machine's CPUs: the ratio is what a second host's processes add
# here (close to 1.00 when one host already keeps the CPUs busy); across machines the
# shared part is Redis (see count_redis: a few commands per request).
# shellcheck shell=bash disable=SC2034 # INVALID is bench.sh's
hs_var=$(mktemp -d /tmp/fetchml-bench-b.XXXXXX)
chmod 755 "$hs_var"
hs_env=(FETCHML_VAR="$hs_var" FETCHML_HTTPS_PORT=$((HTTPS_PORT + 2))
    FETCHML_HTTP_PORT=$((HTTP_PORT + 2)))
hs_url="https://127.0.0.1:$((HTTPS_PORT + 2))/v1/whoami"
hs_stop() {
    env "${hs_env[@]}" "$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1 || true
    rm -rf "$hs_var"
}
mkdir -p "$hs_var/dev"
chmod 700 "$hs_var/dev"
# The same secrets (first_run keeps them) and the bench user, on the benchmark's Redis.
cp -p "$VAR/dev/keys.env" "$VAR/dev/redis.env" "$VAR/dev/redis-secret.conf" "$VAR/dev/tls.crt" \
    "$VAR/dev/tls.key" "$hs_var/dev/"
fm_dev_config "$hs_var/dev/config.yaml" "$hs_var" "" "" "" "" "server.workers=$WORKERS" \
    "auth.api_keys={ bench: { hash: \"$HASH\", roles: [\"researcher\"], rate_limit: { requests_per_minute: $RATE_MAX, burst: $RATE_MAX } } }" \
    "redis.addr=\"unix:$RUN/redis.sock\"" || fm_die "cannot write host B's config"
hs_ok() { [ "$(curl -sk --max-time 5 -H "X-API-Key: $KEY" -o /dev/null -w '%{http_code}' "$hs_url")" = 200 ]; }
if ! timeout 60 env "${hs_env[@]}" "$ROOT/scripts/run-local.sh" >"$hs_var/run-local.out" 2>&1 ||
    ! wait_for 5 hs_ok; then
    cat "$hs_var/run-local.out" >&2
    hs_stop
    fm_die "host B did not start or does not serve the bench user"
fi

# hs_two: both hosts at once (warm-up, then DURATION s); sets HS_A, HS_B (req/s).
hs_two() {
    local half=$((CONNS / 2 > 0 ? CONNS / 2 : 1)) w=() pa pb
    w=(wrk -t1 -c"$half" -H "X-API-Key: $KEY")
    fm_say "hosts2: ${WARMUP}s warm-up, then ${DURATION}s measured (two wrk -t1 -c$half, one per host)"
    timeout $((WARMUP + 15)) "${w[@]}" -d"${WARMUP}s" "$FULL_URL" >/dev/null &
    pa=$!
    timeout $((WARMUP + 15)) "${w[@]}" -d"${WARMUP}s" "$hs_url" >/dev/null || fm_die "wrk failed (hosts2 warm-up)"
    wait "$pa" || fm_die "wrk failed (hosts2 warm-up)"
    timeout $((DURATION + 15)) "${w[@]}" -d"${DURATION}s" "$FULL_URL" >"$VAR/wrk-hosts2-a.txt" &
    pa=$!
    timeout $((DURATION + 15)) "${w[@]}" -d"${DURATION}s" "$hs_url" >"$VAR/wrk-hosts2-b.txt" &
    pb=$!
    BG_PIDS=("$pa" "$pb")
    wait "$pa" && wait "$pb" || fm_die "wrk failed (hosts2)"
    BG_PIDS=()
    if grep -Eq '^ *(Non-2xx or 3xx responses|Socket errors):' "$VAR"/wrk-hosts2-?.txt; then
        fm_say "hosts2: $(grep -Eh '^ *(Non-2xx or 3xx responses|Socket errors):' "$VAR"/wrk-hosts2-?.txt | tr '\n' ' ')"
        INVALID=1
    fi
    HS_A=$(awk '/^Requests\/sec:/ { print $2 }' "$VAR/wrk-hosts2-a.txt")
    HS_B=$(awk '/^Requests\/sec:/ { print $2 }' "$VAR/wrk-hosts2-b.txt")
    [ -n "$HS_A" ] && [ -n "$HS_B" ] || fm_die "cannot parse wrk's output (hosts2)"
}
run hosts1 "$FULL_URL"
hs_one_a=$RPS
hs_two
run hosts1 "$FULL_URL"
hs_one=$(awk -v a="$hs_one_a" -v b="$RPS" 'BEGIN { printf "%.0f", (a + b) / 2 }')
hs_sum=$(awk -v a="$HS_A" -v b="$HS_B" 'BEGIN { printf "%.0f", a + b }')
echo "hosts1: $hs_one req/s (runs: $hs_one_a, $RPS)"
echo "hosts2: $hs_sum req/s (A $HS_A + B $HS_B)"
awk -v two="$hs_sum" -v one="$hs_one" 'BEGIN { printf "ratio hosts2/hosts1: %.2f\n", two / one }'
hs_stop
