# Slow transfers of experiment files (SPEC section 10): clients that read a
# download slowly take at most data.concurrent_transfers workers, nginx keeps
# no temporary copy of what they have not read, other routes are served
# meanwhile, and a reader slower than data.min_transfer_bytes_per_second
# frees its worker once its 10 s of credit are spent; a download that ends
# short (cut off by the worker, or its connection closed: the client went
# away, or nginx's send_timeout passed) is told in api.log and in a second
# audit record with its trace id (result failure, the reason, the bytes
# sent). A client that trickles an upload's body gets 408 with the usual JSON
# error after about 10 s, and nothing is stored. The slow clients are
# slow_clients.py on loopback, bounded in count and time.

t43_k=t43-$(openssl rand -hex 12)
t43_dir=$FETCHML_VAR/experiments/e43
t43_config() { exp_user_config e43 "$t43_k" "$@"; } # t43_config [OVERRIDE...]
t43_big=/v1/experiments/slowdl/files/big.bin
# t43_slow HOLD KIND=COUNT: slow_clients.py as e43 on SLOW_PATH=$t43_path, its JSON on stdout.
t43_slow() {
    SLOW_KEY=$t43_k SLOW_PATH=$t43_path timeout $(($1 + 10)) \
        python3 "$ROOT/tests/integration/slow_clients.py" 127.0.0.1 "$FETCHML_HTTPS_PORT" 127.0.0.1 "$@"
}
t43_fast() { # 5 requests to another route, each answered within 1 s
    local i t
    for i in 1 2 3 4 5; do
        t=$(curl -sk -o /dev/null -w '%{time_total}' -H "X-API-Key: $t43_k" "$BASE/v1/whoami")
        awk -v t="$t" 'BEGIN { exit !(t < 1) }' || return 1
    done
}
t43_jq() { jq -e "$2" "$1" >/dev/null; } # t43_jq FILE EXPR
t43_get_big() { # a fast download of big.bin: its status in $STATUS, the body in $OUT/t43-down
    STATUS=$(curl -sk -o "$OUT/t43-down" -D "$H" -w '%{http_code}' -H "X-API-Key: $t43_k" "$BASE$t43_big")
}
t43_whole() { t43_get_big && [ "$STATUS" = 200 ] && cmp -s "$OUT/t43-big" "$OUT/t43-down"; }
# t43_short [REASON]: the second records of downloads of big.bin that ended short (200 sent,
# result failure; with REASON, only those), one JSON object a line.
t43_short() {
    jq -c --arg a "GET $t43_big" --arg r "${1:-}" \
        'select(.user == "e43" and .action == $a and .status == 200 and .result == "failure" and ($r == "" or .reason == $r))' \
        "$FETCHML_VAR/log/audit.log"
}
t43_nshort() { [ "$(t43_short "${2:-}" | wc -l)" -ge "$1" ]; } # t43_nshort N [REASON]
# t43_told RECORD: the download's first record named the whole file, its second one the bytes
# sent (fewer) and a reason of a short end, and api.log has a line about it with its trace id.
t43_told() {
    local id bytes
    id=$(jq -r .trace_id <<<"$1") bytes=$(jq -r .bytes <<<"$1")
    [ "$bytes" -lt 40000000 ] &&
        jq -e '.reason == "transfer_cut_off" or .reason == "connection_closed"' <<<"$1" >/dev/null &&
        jq -s -e --arg id "$id" '[.[] | select(.trace_id == $id)] | length == 2 and .[0].result == "success" and .[0].bytes == 40000000' \
            "$FETCHML_VAR/log/audit.log" >/dev/null &&
        grep -F "trace_id=$id" "$FETCHML_VAR/log/api.log" | grep -q "a download .* ($bytes of 40000000 bytes sent)"
}
t43_all_told() { # every short end so far is told (t43_told), and there are $1 of them
    local r n=0
    while read -r r; do
        t43_told "$r" || return 1
        n=$((n + 1))
    done < <(t43_short)
    [ "$n" = "$1" ]
}
# t43_nginx_temp: bytes of nginx's FastCGI temporary files, named or not (nginx unlinks the
# ones that buffer a response at once, so they are counted through its workers' descriptors).
t43_nginx_temp() {
    local p f n=0
    for p in $(pgrep -P "$(cat "$FETCHML_VAR/run/nginx.pid")"); do
        for f in /proc/"$p"/fd/*; do
            case $(readlink "$f" 2>/dev/null) in
            "$FETCHML_VAR/nginx/fastcgi/"*) n=$((n + $(stat -L -c %s "$f" 2>/dev/null || echo 0))) ;;
            esac
        done
    done
    for f in $(find "$FETCHML_VAR/nginx/fastcgi" -type f 2>/dev/null); do
        n=$((n + $(stat -c %s "$f")))
    done
    echo "$n"
}

check "reload with user e43, 4 workers, 2 of them for transfers" \
    t43_config server.workers=4 data.concurrent_transfers=2
head -c 40000000 /dev/urandom >"$OUT/t43-big"
curl -sk -o /dev/null -H "X-API-Key: $t43_k" -T "$OUT/t43-big" "$BASE$t43_big"

# ---- downloads -------------------------------------------------------------------------
t43_path=$t43_big
t43_slow 40 download=3 >"$OUT/t43-dl.json" 2>"$OUT/t43-dl.err" &
t43_dl=$!
sleep 4
t43_get_big
check "3 clients read a 40 MB file at 32 KiB/s on a pool that gives transfers 2 workers: a fourth download is 503 at once, with Retry-After (got $STATUS)" \
    bash -c "[ $STATUS = 503 ] && jq -e '.code == \"SERVICE_UNAVAILABLE\" and (.trace_id | length > 0)' '$OUT/t43-down' >/dev/null && tr -d '\r' <'$H' | grep -qi '^retry-after: 1$'"
check "... while other routes answer at once (5 requests under 1 s each)" t43_fast
t43_temp=$(t43_nginx_temp)
check "... and nginx keeps no temporary file of what the slow readers have not read (fastcgi_max_temp_file_size 0; $t43_temp bytes)" \
    [ "$t43_temp" = 0 ]
t43_t0=$SECONDS
check "readers slower than data.min_transfer_bytes_per_second lose their workers: within 35 s a download is 200 and whole" \
    wait_for 35 t43_whole
t43_took=$((SECONDS - t43_t0 + 4))
check "... once their 10 s of credit were spent, not before (${t43_took} s since the slow readers started)" \
    [ "$t43_took" -ge 9 ]
# The worker's deadline (10 s after its writes stopped moving: the kernel's TCP buffer toward
# the client takes megabytes ahead of it, so a reader at 32 KiB/s stops the worker at once)
# and nginx's send_timeout (10 s after that buffer, which wakes nginx only once a third of it
# is free, last took a write) end such a reader at about the same time, whichever comes first:
# the worker cuts it off (transfer_cut_off), or sees nginx close the connection
# (connection_closed). Both are told, each with its trace id.
check "both slow readers' downloads ended short, and each is told with its trace id in api.log and in a second audit record ($(t43_short | jq -r '"\(.reason) \(.bytes)"' | tr '\n' ' '))" \
    wait_for 30 t43_nshort 2
check "... (the first record named the whole file, the second the bytes sent)" t43_all_told 2
wait "$t43_dl"
check "the slow readers: two were answered 200, the third 503 ($(jq -c '.download.statuses' "$OUT/t43-dl.json" 2>/dev/null))" \
    t43_jq "$OUT/t43-dl.json" '.download.statuses == {"200": 2, "503": 1}'
# A client that goes away in the middle of a download: nginx closes the connection.
curl -sk -o /dev/null --limit-rate 300k --max-time 3 -H "X-API-Key: $t43_k" "$BASE$t43_big"
check "a client that leaves in the middle of a download: connection_closed, told with its trace id" \
    wait_for 10 t43_nshort 1 connection_closed
check "... (and so is every short end so far)" t43_all_told 3
# A reader that nginx keeps busy (2 MB/s, under a minimum of 64 MiB/s) is cut by the worker.
check "reload with data.min_transfer_bytes_per_second 64 MiB/s" \
    t43_config server.workers=4 data.concurrent_transfers=2 data.min_transfer_bytes_per_second=67108864
t43_n=$(t43_short transfer_cut_off | wc -l)
curl -sk -o /dev/null --limit-rate 2M --max-time 30 -H "X-API-Key: $t43_k" "$BASE$t43_big"
check "a steady reader slower than the minimum is cut off by the worker, told with its trace id" \
    wait_for 10 t43_nshort $((t43_n + 1)) transfer_cut_off
check "... (and so is every short end so far)" t43_all_told 4
# At 2 MiB/s against 64 MiB/s the credit runs out after 10 / (1 - 1/32) s.
t43_id=$(t43_short transfer_cut_off | tail -1 | jq -r .trace_id)
t43_cut=$(jq -s --arg id "$t43_id" '[.[] | select(.trace_id == $id) | .ts[0:19] + "Z" | fromdateiso8601] | .[1] - .[0]' \
    "$FETCHML_VAR/log/audit.log")
check "... once its 10 s of credit were spent, not before, nor much later (${t43_cut} s between its two records)" \
    test "$t43_cut" -ge 9 -a "$t43_cut" -le 13
check "reload back to the default minimum" t43_config server.workers=4 data.concurrent_transfers=2

# ---- uploads ----------------------------------------------------------------------------
t43_path=/v1/experiments/slowup/files/f
t43_slow 30 upload=2 >"$OUT/t43-up.json" 2>"$OUT/t43-up.err"
check "a body trickled at 1 byte/s: 408 REQUEST_TIMEOUT, the JSON error with a trace id ($(jq -c '.upload.statuses' "$OUT/t43-up.json" 2>/dev/null))" \
    bash -c "jq -e '.upload.statuses == {\"408\": 2}' '$OUT/t43-up.json' >/dev/null && jq -r '.upload.sample[\"408\"]' '$OUT/t43-up.json' | grep -q '\"code\":\"REQUEST_TIMEOUT\".*\"trace_id\":\"[0-9a-f]'"
check "... after the 10 s of credit, not hours (held $(jq -c '[.upload.min_held_s, .upload.max_held_s]' "$OUT/t43-up.json" 2>/dev/null) s)" \
    t43_jq "$OUT/t43-up.json" '.upload.min_held_s >= 9 and .upload.max_held_s <= 20'
check "... and nothing was stored: no file, no directory" test ! -e "$t43_dir/slowup"
# A body on another method of those routes is passed on unbuffered too, and read before the key
# is looked at: it is paced like an upload, and a refused one is not waited for long.
t43_path=/v1/experiments/slowup/files/f
t43_slow 30 getbody=2 >"$OUT/t43-get.json" 2>"$OUT/t43-get.err"
check "a GET with a bad key whose body trickles gets its 401 once the credit is spent, not hours later ($(jq -c '[.getbody.statuses, .getbody.max_held_s]' "$OUT/t43-get.json" 2>/dev/null))" \
    t43_jq "$OUT/t43-get.json" '.getbody.statuses == {"401": 2} and .getbody.max_held_s <= 20'
t43_config
rm -rf "$t43_dir" "$OUT/t43-big" "$OUT/t43-down"
