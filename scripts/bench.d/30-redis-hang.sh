# Bench part: a hung Redis. Redis is stopped (SIGSTOP) and wrk drives GET
# /v1/whoami with 32 connections for the 10 s it stays stopped; each worker's
# circuit breaker should answer 503 at once after its first timeout
# (redis.timeout_ms, 200 ms in the dev config) instead of every request
# waiting for it. Then SIGCONT, and the time until a request is answered 200
# again (one curl per try, TLS handshake included). Redis is running again
# afterwards whatever happened.
#   redis hang (10 s, 32 clients): p50 X ms, p99 Y ms, N answers, statuses 503: A, 200: B[, other: C]
#   redis recovered in Z ms after CONT
# shellcheck disable=SC2034 # INVALID is bench.sh's: set when the numbers are not comparable
HANG_S=10
HANG_CONNS=32
cat >"$VAR/hang.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n200 = 0; n503 = 0; nother = 0 end
function response(status, headers, body)
    if status == 200 then n200 = n200 + 1
    elseif status == 503 then n503 = n503 + 1
    else nother = nother + 1 end
end
function done(summary, latency, requests)
    local a, b, c = 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("n200"); b = b + t:get("n503"); c = c + t:get("nother")
    end
    io.write(string.format("hang %.1f %.1f %d %d %d %d %d\n", latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, summary.requests, b, a, c,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
hang_pid=$(cat "$RUN/redis.pid")
fm_say "redis hang: SIGSTOP for ${HANG_S}s under wrk -c$HANG_CONNS"
kill -STOP "$hang_pid"
timeout $((HANG_S + 15)) wrk -t"$THREADS" -c"$HANG_CONNS" -H "X-API-Key: $KEY" -d"${HANG_S}s" \
    -s "$VAR/hang.lua" "$FULL_URL" >"$VAR/wrk-hang.txt" 2>&1 || true
hang_cont=${EPOCHREALTIME/./}
kill -CONT "$hang_pid"
hang_deadline=$((hang_cont + 5000000))
until [ "$(get "$FULL_URL")" = 200 ]; do
    [ "${EPOCHREALTIME/./}" -lt "$hang_deadline" ] || break
    sleep 0.01
done
hang_took=$(((${EPOCHREALTIME/./} - hang_cont) / 1000))
read -r _ hang_p50 hang_p99 hang_n hang_503 hang_200 hang_other hang_errors < <(grep '^hang ' "$VAR/wrk-hang.txt") || true
if [ -z "${hang_n:-}" ]; then
    cat "$VAR/wrk-hang.txt" >&2
    echo "redis hang (${HANG_S} s, $HANG_CONNS clients): not measured (wrk failed)"
    INVALID=1
else
    extra=""
    [ "$hang_other" -gt 0 ] && extra=", other: $hang_other"
    [ "$hang_errors" -gt 0 ] && extra="$extra, socket errors: $hang_errors"
    echo "redis hang (${HANG_S} s, $HANG_CONNS clients): p50 $hang_p50 ms, p99 $hang_p99 ms," \
        "$hang_n answers, statuses 503: $hang_503, 200: $hang_200$extra"
fi
if [ "$(get "$FULL_URL")" = 200 ]; then
    echo "redis recovered in $hang_took ms after CONT"
else
    echo "redis recovered: not within 5 s after CONT"
    INVALID=1
fi
