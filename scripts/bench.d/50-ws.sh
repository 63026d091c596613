# Bench part (sourced by scripts/bench.sh, see the comment above its loop):
# WebSockets on /ws. bench/ws_bench.py opens WS_SOCKETS (2,000) sockets on
# loopback with the bench key (TLS, nginx's auth_request into the pool,
# registered, subscribed to u.bench), nginx's memory is read before and with
# them open, then WS_MESSAGES events are PUBLISHed on Redis (the workers' own
# publish) and each socket's receive time is taken: the path events take, Redis
# -> fetchml-wsrelay -> nchan over its unix socket -> every socket, plus the one
# Python client taking each message off 2,000 TLS sockets on the same CPUs
# (FETCHML_BENCH_WS_SOCKETS=10 shows the path alone). Prints
#   ws: 2000 sockets, publish-to-receive p50 X ms p99 Y ms (N samples), nginx Z KiB per socket
# nginx's memory is the Pss of its worker processes (their private memory and
# their share of what they share, /proc/PID/smaps_rollup) plus the nchan
# shared memory they touch, which Pss counts; per socket is the growth over
# the sockets. Bounded: the client gives up after 240 s of handshakes and 10 s
# per message.
WS_SOCKETS=${FETCHML_BENCH_WS_SOCKETS:-2000}
WS_MESSAGES=${FETCHML_BENCH_WS_MESSAGES:-20}
ws_pss_kib() { # the Pss of nginx's worker processes, KiB
    local p sum=0 v
    for p in $(pgrep -P "$(cat "$RUN/nginx.pid")"); do
        v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
ws_pw=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$VAR/dev/redis-ops.env")
fm_say "ws: $WS_SOCKETS sockets, $WS_MESSAGES events"
ws_before=$(ws_pss_kib)
ws_fifo=$VAR/ws-bench.in
rm -f "$ws_fifo"
mkfifo "$ws_fifo"
(
    ulimit -n 16384
    REDISCLI_USER=ops REDISCLI_AUTH=$ws_pw timeout 600 /usr/bin/python3 "$ROOT/bench/ws_bench.py" \
        "wss://127.0.0.1:$HTTPS_PORT/ws" "$KEY" "$WS_SOCKETS" "$WS_MESSAGES" \
        "$RUN/redis.sock" fetchml:events \
        <"$ws_fifo" >"$VAR/ws-bench.out" 2>"$VAR/ws-bench.err"
) &
ws_pid=$!
exec 7>"$ws_fifo" # held open: the client reads its go-ahead from it
ws_opened() { grep -q '^open [0-9]* in' "$VAR/ws-bench.out" || ! kill -0 "$ws_pid" 2>/dev/null; }
wait_for 300 ws_opened || true
sleep 2 # nginx settles (the handshakes' buffers freed)
ws_with=$(ws_pss_kib)
echo go >&7
exec 7>&-
wait "$ws_pid" || INVALID=1
ws_open_line=$(grep '^open' "$VAR/ws-bench.out" || true)
ws_lat=$(grep '^latency_ms' "$VAR/ws-bench.out" || true)
if [[ $ws_open_line != "open $WS_SOCKETS in"* ]] || [[ $ws_lat != *" missing 0" ]]; then
    INVALID=1
    echo "ws: not measured (${ws_open_line:-no sockets} ${ws_lat}; $(tail -1 "$VAR/ws-bench.err" 2>/dev/null))"
else
    awk -v l="$ws_lat" -v n="$WS_SOCKETS" -v b="$ws_before" -v w="$ws_with" -v o="$ws_open_line" 'BEGIN {
        split(l, f, " ")
        printf "ws: %d sockets, publish-to-receive p50 %s ms p99 %s ms (%s samples), nginx %.1f KiB per socket\n", n, f[3], f[5], f[9], (w - b) / n
        printf "ws detail: %s; latency max %s ms; nginx workers Pss %d KiB before, %d KiB with the sockets\n", o, f[7], b, w
    }'
fi
rm -f "$ws_fifo"
