# WebSocket revocation (SPEC 4.2): removing a key, or its expires passing,
# closes every socket opened with it within 2 s, refuses its reconnect and
# leaves other keys' sockets open and receiving; with nginx running 2 worker
# processes and over repeated open/revoke/reopen cycles (nchan 1.3.6 can lose
# deletions of multiplexed channels across workers: the relay repeats the
# close until nginx reports it).

t33_a=$(openssl rand -hex 32)
t33_b=$(openssl rand -hex 32)
t33_e=$(openssl rand -hex 32)
t33_json='Content-Type: application/json'
t33_audit=$FETCHML_VAR/log/audit.log
t33_user_a="    t33a:
      hash: \"$(hash_of "$t33_a")\"
      roles: [\"researcher\"]"
t33_user_b="    t33b:
      hash: \"$(hash_of "$t33_b")\"
      roles: [\"researcher\"]"
trap ws_stop_all EXIT

t33_nginx_workers=$(pgrep -P "$(cat "$FETCHML_VAR/run/nginx.pid")" | wc -l)
check "nginx runs 2 worker processes (found $t33_nginx_workers)" [ "$t33_nginx_workers" -ge 2 ]

write_config extra_users="$t33_user_a
$t33_user_b"
t33_both() { as "$t33_a" GET /v1/whoami && status_is 200 && as "$t33_b" GET /v1/whoami && status_is 200; }
check "reload with users t33a and t33b" reload_until t33_both

# t33_open ROUND: 4 sockets with key A (each way of sending it), 1 with B.
t33_open() {
    ws_listen "a$1-1" --key "$t33_a"
    ws_listen "a$1-2" --bearer "$t33_a"
    ws_listen "a$1-3" --proto "$t33_a"
    ws_listen "a$1-4" --key "$t33_a" --no-meta
    ws_listen "b$1" --key "$t33_b"
}
# t33_all_open ROUND: every socket of the round is open.
t33_all_open() { local s; for s in "a$1-1" "a$1-2" "a$1-3" "a$1-4" "b$1"; do ws_is_open "$s" || return 1; done; }
t33_a_closed() { local s; for s in "a$1-1" "a$1-2" "a$1-3" "a$1-4"; do ws_closed "$s" || return 1; done; }
# t33_close_s ROUND T0: the latest close of the round's A sockets, in seconds after T0.
t33_close_s() {
    cat "$OUT/ws-a$1-"{1,2,3,4}.out | jq -s --argjson t0 "$2" '[.[] | select(.closed) | .t] | max - $t0'
}
t33_a_gone() { as "$t33_a" GET /v1/whoami && status_is 401; }

t33_open 0
check "4 sockets with key A and 1 with key B are open" t33_all_open 0
as "$t33_a" POST /v1/tasks -H "$t33_json" -d '{"job_name":"t33-before"}'
t33_before=$(json .id || true)
check "A's sockets receive A's events" wait_for 2 ws_got a0-3 task.created "$t33_before"

write_config extra_users="$t33_user_b"
t33_t0=$EPOCHREALTIME
"$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
check "a reload removes key A" t33_a_gone
check "every socket opened with A closes" wait_for 3 t33_a_closed 0
t33_s=$(t33_close_s 0 "$t33_t0")
check "... within 2 s of the reload (${t33_s:0:5} s)" awk -v s="$t33_s" 'BEGIN { exit !(s != "" && s < 2) }'
check "... with close code 1001 (nchan deleted the control channel)" \
    bash -c "grep -h closed '$OUT'/ws-a0-*.out | jq -e -s 'all(.[]; .closed == 1001)' >/dev/null"
check "B's socket stays open" ws_is_open b0
as "$t33_b" POST /v1/tasks -H "$t33_json" -d '{"job_name":"t33-b"}'
t33_btask=$(json .id || true)
check "... and keeps receiving B's events" wait_for 2 ws_got b0 task.created "$t33_btask"
ws_open --key "$t33_a"
check "reconnecting with A is refused (401, no 101)" status_is 401
ws_open --proto "$t33_a"
check "... also as subprotocol (401)" status_is 401
t33_revoked_audit() { [ "$(grep -F '"action":"WS_CLOSE /ws"' "$t33_audit" | grep -F '"user":"t33a"' | grep -cF '"reason":"key_revoked channel=user')" -ge 4 ]; }
check "the 4 closes are audited with reason key_revoked" wait_for 3 t33_revoked_audit

# A registered socket of the revoked key that nginx does not hold (its client went away
# before subscribing, or nginx restarted): the relay's deletes find no channel, and after
# GONE_MS it ends the entry itself and audits the close.
t33_hostkey=$(rcli --scan --pattern 'fetchml:ws:*' | grep -v ':closing$' | head -1)
t33_kid=$(grep -F '"user":"t33a"' "$t33_audit" | jq -r 'select(.key_id) | .key_id' | tail -1)
t33_ghost=$(openssl rand -hex 16)
rcli HSET "$t33_hostkey" "$t33_ghost" "t33a $t33_kid user $(date +%s%3N)" >/dev/null
t33_ghost_gone() { [ "$(rcli HEXISTS "$t33_hostkey" "$t33_ghost")" = 0 ]; }
check "a registered socket of the revoked key that nginx does not hold is ended by the relay" \
    wait_for 6 t33_ghost_gone
t33_ghost_audit() { grep -F '"action":"WS_CLOSE /ws"' "$t33_audit" | grep -F '"trace_id":null' | grep -F '"user":"t33a"' | grep -qF '"reason":"key_revoked channel=user'; }
check "... and its close audited (key_revoked, no trace id: no request)" wait_for 2 t33_ghost_audit

# ---- repeated open / revoke / reopen ------------------------------------------------------
t33_cycles_ok=1
t33_worst=0
for t33_r in 1 2 3 4 5; do
    write_config extra_users="$t33_user_a
$t33_user_b"
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
    wait_for 5 t33_both || { t33_cycles_ok=0; echo "    round $t33_r: key A not back"; break; }
    t33_open "$t33_r"
    t33_all_open "$t33_r" || { t33_cycles_ok=0; echo "    round $t33_r: sockets did not open"; break; }
    write_config extra_users="$t33_user_b"
    t33_t0=$EPOCHREALTIME
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
    if ! wait_for 3 t33_a_closed "$t33_r"; then
        t33_cycles_ok=0
        echo "    round $t33_r: a socket of key A stayed open"
        break
    fi
    t33_s=$(t33_close_s "$t33_r" "$t33_t0")
    awk -v s="$t33_s" -v w="$t33_worst" 'BEGIN { exit !(s > w) }' && t33_worst=$t33_s
    awk -v s="$t33_s" 'BEGIN { exit !(s < 2) }' || { t33_cycles_ok=0; echo "    round $t33_r: closed after $t33_s s"; }
    ws_is_open b"$t33_r" || { t33_cycles_ok=0; echo "    round $t33_r: B's socket closed"; }
done
check "5 rounds of open 4 sockets with A / revoke A: each closed within 2 s (slowest ${t33_worst:0:5} s), B's stay open" \
    [ "$t33_cycles_ok" = 1 ]
t33_no_a_entry() { ! rcli --scan --pattern 'fetchml:ws:*' | grep -v ':closing$' | while read -r k; do rcli HVALS "$k"; done | grep -q '^t33a '; }
check "the registry keeps no entry of key A's sockets" wait_for 3 t33_no_a_entry
as "$t33_b" POST /v1/tasks -H "$t33_json" -d '{"job_name":"t33-b-end"}'
t33_btask=$(json .id || true)
check "B's first socket still receives events after all rounds" wait_for 2 ws_got b0 task.created "$t33_btask"
t33_a_silent() {
    local s
    for s in "$OUT"/ws-a[0-5]-*.out; do
        jq -s -e 'map(select(.closed)) | length == 1' "$s" >/dev/null || return 1
        jq -s -e '(map(.closed) | index(1001)) == length - 1' "$s" >/dev/null || return 1
    done
}
check "no socket of A received anything after its close" t33_a_silent

# ---- expiry without a reload ----------------------------------------------------------------
t33_exp=$(date -u -d '+5 seconds' +%Y-%m-%dT%H:%M:%SZ)
t33_exp_s=$(date -u -d "$t33_exp" +%s)
write_config extra_users="$t33_user_b
    t33e:
      keys: [{ hash: \"$(hash_of "$t33_e")\", expires: \"$t33_exp\" }]
      roles: [\"researcher\"]"
t33_e_ok() { as "$t33_e" GET /v1/whoami && status_is 200; }
check "reload with key E expiring at $t33_exp" reload_until t33_e_ok
ws_listen e1 --key "$t33_e" --seconds 30
ws_listen e2 --proto "$t33_e" --seconds 30
t33_e_open() { ws_is_open e1 && ws_is_open e2; }
check "2 sockets with key E are open" t33_e_open
t33_e_closed() { ws_closed e1 && ws_closed e2; }
check "they close when E expires" wait_for 10 t33_e_closed
t33_e_late=$(cat "$OUT/ws-e1.out" "$OUT/ws-e2.out" | jq -s --argjson x "$t33_exp_s" '[.[] | select(.closed) | .t] | max - $x')
check "... within 2 s of its expires (${t33_e_late:0:5} s after)" \
    awk -v s="$t33_e_late" 'BEGIN { exit !(s != "" && s >= 0 && s < 2) }'
ws_open --key "$t33_e"
check "reconnecting with the expired key is refused (401)" status_is 401
t33_expired_audit() { grep -F '"action":"WS_CLOSE /ws"' "$t33_audit" | grep -F '"user":"t33e"' | grep -qF '"reason":"key_expired channel=user'; }
check "the close is audited with reason key_expired" wait_for 3 t33_expired_audit
check "B's socket is still open" ws_is_open b0

ws_stop_all
write_config
t33_back() { as researcher GET /v1/whoami && status_is 200; }
check "reload with the default test config" reload_until t33_back
