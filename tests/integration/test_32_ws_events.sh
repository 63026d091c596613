# WebSocket /ws events (SPEC 4.2): a researcher's socket gets its own tasks'
# events within 100 ms of the change and nobody else's; an admin's gets all;
# a worker's gets the queued-task announcements; nothing a client sends picks
# the channel; a client that reconnects with its last event id (after an
# nginx reload closed its socket) gets what it missed.

t32_r2=$(openssl rand -hex 32)
t32_json='Content-Type: application/json'
write_config extra_users="    t32other:
      hash: \"$(hash_of "$t32_r2")\"
      roles: [\"researcher\"]"
t32_ready() { as "$t32_r2" GET /v1/whoami && status_is 200; }
check "reload with a second researcher" reload_until t32_ready
trap ws_stop_all EXIT
# The open-WebSockets gauge of GET /metrics (set by fetchml-wsrelay from the registry).
t32_open() {
    as admin GET /metrics >/dev/null 2>&1 || true
    awk '$1 == "fetchml_websockets_open" { v = $2 } END { print v + 0 }' "$B"
}
t32_open_is() { [ "$(t32_open)" = "$1" ]; }
t32_before=$(t32_open)

ws_listen r1 --key "$FETCHML_RESEARCHER_KEY"
check "the researcher's socket is open" ws_is_open r1
# Every way a client could try to name a channel: headers the pool answers
# with, nchan's own channel header, a path.
ws_listen r2 --key "$t32_r2" --header "X-FetchML-WS-Channel: u.researcher" \
    --header "X-FetchML-WS-Conn: 00000000000000000000000000000000" --header "X-Channel-Id: all" \
    --header "X-FetchML-WS-Kind: all"
check "another researcher's socket, sent with channel headers, is open" ws_is_open r2
ws_listen adm --bearer "$FETCHML_ADMIN_KEY"
check "the admin's socket is open" ws_is_open adm
ws_listen wrk --proto "$FETCHML_WORKER_KEY"
check "the worker's socket is open" ws_is_open wrk
check "fetchml_websockets_open counts the four sockets" wait_for 3 t32_open_is $((${t32_before:-0} + 4))
WS_PATH="/ws/u.researcher" ws_req -H "X-API-Key: $t32_r2"
check "/ws/<channel> is no WebSocket location (404)" status_is 404

# t32_new JSON: the researcher queues a task; T32_ID, T32_DONE (when the answer came, s).
t32_new() {
    as researcher POST /v1/tasks -H "$t32_json" -d "$1"
    T32_DONE=$EPOCHREALTIME
    T32_ID=$(json .id || true)
}
# t32_latency NAME TYPE ID: seconds from the answer to the event's arrival at NAME.
t32_latency() {
    jq -r --arg t "$2" --arg i "$3" 'select(.event.type == $t and .event.task.id == $i) | .t' \
        "$OUT/ws-$1.out" | head -1 | awk -v d="$T32_DONE" '{ printf "%.3f", $1 - d }'
}
t32_new '{"job_name":"t32-first","priority":10}'
t32_task=$T32_ID
check "the researcher queues a task -> 201" status_is 201
check "the researcher's socket gets task.created" wait_for 2 ws_got r1 task.created "$t32_task"
t32_ms=$(t32_latency r1 task.created "$t32_task")
check "... within 100 ms of the answer (${t32_ms} s)" awk -v l="$t32_ms" 'BEGIN { exit !(l != "" && l < 0.1) }'
check "the admin's socket gets it" wait_for 2 ws_got adm task.created "$t32_task"
check "the worker's socket gets the announcement" wait_for 2 ws_got wrk task.created "$t32_task"
check "... with the task as the API shows it (status queued, user researcher)" \
    ws_any wrk --arg i "$t32_task" '.event.task.id == $i and .event.task.status == "queued" and .event.task.user == "researcher"'
check "each message carries nchan's id (ws+meta.nchan)" \
    ws_any r1 --arg i "$t32_task" '.event.task.id == $i and (.id | type == "string")'

# The worker takes it (tasks other files left may come first), then ends it.
t32_claimed=""
for _ in $(seq 1 300); do
    as worker POST /v1/worker/claim
    status_is 200 || break
    [ "$(json .id)" = "$t32_task" ] && t32_claimed=1 && break
done
check "the worker claims the task" [ -n "$t32_claimed" ]
check "the researcher's socket gets task.started" wait_for 2 ws_got r1 task.started "$t32_task"
as worker POST "/v1/tasks/$t32_task/heartbeat" -H "$t32_json" -d '{"progress":50}'
check "... task.progress" wait_for 2 ws_got r1 task.progress "$t32_task"
as worker POST "/v1/tasks/$t32_task/complete" -H "$t32_json" -d '{"status":"completed"}'
T32_DONE=$EPOCHREALTIME
check "... task.completed" wait_for 2 ws_got r1 task.completed "$t32_task"
t32_ms=$(t32_latency r1 task.completed "$t32_task")
check "... within 100 ms of the answer (${t32_ms} s)" awk -v l="$t32_ms" 'BEGIN { exit !(l != "" && l < 0.1) }'
check "the admin's socket gets task.completed too" wait_for 2 ws_got adm task.completed "$t32_task"
t32_wrk_clean() { ! ws_any wrk '.event.type == "task.started" or .event.type == "task.completed"'; }
check "the worker's socket gets no task.started or task.completed (announcements only)" t32_wrk_clean

as "$t32_r2" POST /v1/tasks -H "$t32_json" -d '{"job_name":"t32-other"}'
t32_other=$(json .id || true)
check "the other researcher's socket gets its own task" wait_for 2 ws_got r2 task.created "$t32_other"
sleep 0.5
t32_none_of() { ! ws_any "$1" --arg u "$2" '.event.task.user == $u'; }
check "the other researcher's socket got none of the researcher's events" t32_none_of r2 researcher
check "the researcher's socket got none of the other's" t32_none_of r1 t32other

# ---- resuming after nginx closed the socket ---------------------------------------------
t32_last=$(jq -r 'select(.id) | .id' "$OUT/ws-r1.out" | tail -1)
check "the researcher's socket has a last event id" [ -n "$t32_last" ]
t32_old=$(pgrep -P "$(cat "$FETCHML_VAR/run/nginx.pid")" | tr '\n' ' ')
nginx -p "$FETCHML_VAR/nginx" -c "$FETCHML_VAR/nginx/nginx.conf" -e "$FETCHML_VAR/log/nginx-startup.log" -s reload 2>/dev/null
check "an nginx reload closes the socket" wait_for 10 ws_closed r1
# While the old workers hand their channels over, a publish can be lost (README).
t32_old_gone() { local p; for p in $t32_old; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
check "the old nginx workers are gone" wait_for 15 t32_old_gone
# nginx makes no close callback for the sockets a reload ends: the relay notices.
t32_gone_audit() { grep -F '"action":"WS_CLOSE /ws"' "$FETCHML_VAR/log/audit.log" | grep -F '"user":"researcher"' | grep -qE '"reason":"gone channel=user duration_ms=[0-9]+"'; }
check "the socket the reload closed gets its close record all the same (reason gone)" wait_for 15 t32_gone_audit
t32_new '{"job_name":"t32-missed-1"}'
t32_m1=$T32_ID
t32_new '{"job_name":"t32-missed-2"}'
t32_m2=$T32_ID
ws_listen r1b --key "$FETCHML_RESEARCHER_KEY" --last-id "$t32_last" --seconds 20
check "reconnecting with Last-Event-ID gets the first missed event" wait_for 3 ws_got r1b task.created "$t32_m1"
check "... and the second" wait_for 3 ws_got r1b task.created "$t32_m2"
t32_not_again() { ! ws_any r1b --arg i "$t32_task" '.event.task.id == $i'; }
check "... and nothing it had already (the first task's events)" t32_not_again
ws_listen r1c --key "$FETCHML_RESEARCHER_KEY" --seconds 20
sleep 0.5
check "a new socket without a last id starts with new events only" [ "$(ws_count r1c)" = 0 ]

ws_stop_all
check "fetchml_websockets_open goes back down when they close" wait_for 10 t32_open_is "${t32_before:-0}"
write_config
t32_back() { as researcher GET /v1/whoami && status_is 200; }
check "reload with the default test config" reload_until t32_back
