# Redis trouble (README "When Redis is in trouble"): a hung Redis (SIGSTOP)
# trips each worker's circuit breaker, so requests are refused 503 with
# Retry-After at once instead of each waiting redis.timeout_ms (200 ms in the
# test config); a probe closes it within a second of Redis answering again;
# after a Redis restart no request fails on a worker's dead connection.

rt_pidfile=$FETCHML_VAR/run/redis.pid
rt_up() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }
rt_start() { fm_redis_server "$FETCHML_VAR/dev/redis.conf" >/dev/null && wait_for 5 rt_up; }
# Whatever happens below, Redis is left running and answering for the files after this one.
rt_heal() {
    kill -CONT "$(cat "$rt_pidfile" 2>/dev/null)" 2>/dev/null
    rt_up || rt_start
}
trap rt_heal EXIT

rt_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
# rt_load SECONDS CLIENTS OUT: CLIENTS concurrent clients, each GET /v1/whoami
# as researcher every 20 ms for SECONDS; one line per answer in OUT:
# "status seconds retry-after", seconds from the end of the TLS handshake to
# the first byte of the answer (what the server took: curl's start-up and the
# handshake are what a busy machine slows down most).
rt_load() {
    local end=$(($(rt_ms) + $1 * 1000)) i
    for i in $(seq "$2"); do
        while [ "$(rt_ms)" -lt "$end" ]; do
            curl -sk -o /dev/null -H "X-API-Key: $FETCHML_RESEARCHER_KEY" --max-time 5 \
                -w '%{http_code} %{time_appconnect} %{time_starttransfer} %header{retry-after}\n' \
                "$BASE/v1/whoami" || echo "000 0 5 -"
            sleep 0.02
        done >"$3.$i" &
    done
    wait
    cat "$3".* | awk '{ printf "%s %.6f %s\n", $1, $3 - $2, $4 }' >"$3"
}
# rt_median OUT: the median time of rt_load's answers, in seconds.
rt_median() { awk '{ print $2 }' "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }'; }
# rt_serves: ten requests in a row are answered 200.
rt_serves() {
    local i
    for i in $(seq 10); do
        [ "$(curl -sk -o /dev/null -w '%{http_code}' -H "X-API-Key: $FETCHML_RESEARCHER_KEY" \
            "$BASE/v1/whoami")" = 200 ] || return 1
    done
}

# A bucket no test here can empty: only Redis decides the answers below.
rt_config() { # rt_config deny|allow
    write_config "rate_limit={ requests_per_minute: 1000000, burst: 1000000, on_redis_error: $1, auth_failures: { max: 1000, window_seconds: 60, block_seconds: 1 } }"
}
rt_config deny
check "the stack serves with a large bucket" reload_until rt_serves

# The same load with Redis answering gives the machine's own latency (a busy
# one adds a lot): the bounds below are above it. rt_below OUT LIMIT: the
# median of OUT is below the healthy median plus LIMIT seconds.
rt_load 1 8 "$OUT/rt_base"
rt_base=$(rt_median "$OUT/rt_base")
rt_below() { awk -v m="$(rt_median "$1")" -v b="$rt_base" -v l="$2" 'BEGIN { exit !(m < b + l) }'; }

# Hung: 8 clients for 3 s while Redis is stopped. First the tokens a worker
# reserved (FM_RL_RESERVE_MS, 250 ms) run out, or it could still admit some.
sleep 0.5
rt_pid=$(cat "$rt_pidfile")
kill -STOP "$rt_pid"
rt_load 3 8 "$OUT/rt_hang"
rt_cont_at=$(rt_ms)
kill -CONT "$rt_pid"
rt_n=$(wc -l <"$OUT/rt_hang")
rt_not503=$(awk '$1 != 503' "$OUT/rt_hang" | wc -l)
rt_noretry=$(awk '$1 == 503 && $3 !~ /^[1-9][0-9]*$/' "$OUT/rt_hang" | wc -l)
rt_max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$OUT/rt_hang")
rt_median=$(rt_median "$OUT/rt_hang")
rt_slow=$(awk -v b="$rt_base" '$2 >= b + 0.15' "$OUT/rt_hang" | wc -l)
check "Redis stopped: answers to 8 clients in 3 s (got $rt_n)" [ "$rt_n" -ge 24 ]
check "Redis stopped: every answer is 503 ($rt_not503 others)" [ "$rt_not503" -eq 0 ]
check "Redis stopped: every 503 has Retry-After ($rt_noretry without)" [ "$rt_noretry" -eq 0 ]
# Without the breaker every answer waits the 200 ms timeout; with it only each
# worker's first call does (and the requests queued behind those).
check "Redis stopped: answers are immediate, median ${rt_median} s (healthy $rt_base s, timeout 0.2 s)" \
    rt_below "$OUT/rt_hang" 0.1
check "Redis stopped: most answers do not wait for the timeout ($rt_slow of $rt_n did)" \
    [ "$rt_slow" -le $((rt_n / 2)) ]
check "Redis stopped: none takes much longer than the timeout (slowest ${rt_max} s)" \
    awk -v m="$rt_max" -v b="$rt_base" 'BEGIN { exit !(m < b + 0.6) }'
rt_ok() { [ "$(curl -sk -o /dev/null -w '%{http_code}' -H "X-API-Key: $FETCHML_RESEARCHER_KEY" \
    "$BASE/v1/whoami")" = 200 ]; }
check "Redis answering again: 200 within about a second of CONT" wait_for 3 rt_ok
rt_took=$(($(rt_ms) - rt_cont_at))
# About a second: the curl runs in between take their part on a busy machine.
check "... the first 200 came $rt_took ms after CONT" [ "$rt_took" -le 1500 ]
check "... and then every worker serves: ten 200s in a row" wait_for 1 rt_serves

# Hung under on_redis_error: allow: requests are admitted, and just as fast.
rt_config allow
check "reload with on_redis_error: allow" reload_until rt_serves
rt_pid=$(cat "$rt_pidfile")
kill -STOP "$rt_pid"
rt_load 2 8 "$OUT/rt_allow"
kill -CONT "$rt_pid"
rt_n=$(wc -l <"$OUT/rt_allow")
rt_not200=$(awk '$1 != 200' "$OUT/rt_allow" | wc -l)
rt_median=$(rt_median "$OUT/rt_allow")
check "Redis stopped, allow: every answer is 200 ($rt_not200 of $rt_n others)" [ "$rt_not200" -eq 0 ]
check "Redis stopped, allow: answers are immediate, median ${rt_median} s (healthy $rt_base s)" \
    rt_below "$OUT/rt_allow" 0.1
check "Redis answering again under allow" wait_for 3 rt_serves

# Restarted (under deny again, where a failed call is a 503): every worker
# holds a connection to the old server; the first requests after the restart
# must not fail on them. The AOF keeps the data across the restart (test_51 checks that).
rt_config deny
check "reload with on_redis_error: deny" reload_until rt_serves
rt_load 1 8 "$OUT/rt_warm"
check "before the restart: all 200" bash -c "! awk '\$1 != 200' '$OUT/rt_warm' | grep -q ."
rt_pid=$(cat "$rt_pidfile")
kill -TERM "$rt_pid"
rt_gone() { ! kill -0 "$rt_pid" 2>/dev/null; }
check "Redis stops" wait_for 5 rt_gone
check "Redis starts again with the same config" rt_start
rt_load 1 8 "$OUT/rt_restart"
rt_n=$(wc -l <"$OUT/rt_restart")
rt_bad=$(awk '$1 != 200 { print $1 }' "$OUT/rt_restart" | sort | uniq -c | tr '\n' ' ')
check "after a Redis restart the first requests all succeed ($rt_n answers; others: ${rt_bad:-none})" \
    [ -z "$rt_bad" ]

write_config
reload_until true
