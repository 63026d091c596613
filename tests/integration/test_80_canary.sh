# Canary test for the redaction promise (README "Audit trail and logs"): plant distinct fake
# secrets everywhere a client can put them (credential headers, query strings,
# JSON bodies, URLs, paths, nginx's error lines) and the real Redis password,
# drive succeeding and failing requests, a Redis outage and a FastCGI outage,
# then search every file under var/log: none may hold a canary, a demo key or
# a demo key's SHA-256.
#
# The search only means something if the requests were logged: each canary
# request's trace_id must be in audit.log or nginx-access.log, and the lines
# that would have carried a canary (nginx's error lines with the request line,
# the audit record of a secret path) must be there with the marker instead.

# The canaries are set through printf -v (t80_canary), which shellcheck cannot follow.
# shellcheck disable=SC2154

t80_log=$FETCHML_VAR/log
t80_list=$OUT/t80-canaries
t80_traces=$OUT/t80-traces
t80_id=$(openssl rand -hex 4)
t80_rpw=$(sed -n 's/^REDIS_PASSWORD=//p' "$FETCHML_VAR/dev/redis.env")
: >"$t80_list"
: >"$t80_traces"

t80_b64url() { openssl rand -base64 "$1" | tr '+/' '-_' | tr -d '=\n'; }
# t80_canary NAME KIND: a fresh random value, recorded in the list to search for.
t80_canary() {
    local v
    case $2 in
    hex64) v=$(openssl rand -hex 32) ;;
    fetchml) v=fetchml_$(openssl rand -hex 36) ;; # fetchml-admin keygen's form
    ghp) v=ghp_$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 36) ;;
    jwt) v=eyJ$(t80_b64url 24).$(t80_b64url 36).$(t80_b64url 32) ;;
    word) v=Cn$(openssl rand -hex 10) ;;
    esac
    printf -v "$1" '%s' "$v"
    printf '%s\n' "$v" >>"$t80_list"
}
t80_sent() { printf '%s\n' "$TRACE" >>"$t80_traces"; }
# t80_req ...: as `req`, and the trace joins the list whose logging is checked.
t80_req() { req "$@"; t80_sent; }
t80_as() { as "$@"; t80_sent; }
t80_json='Content-Type: application/json'

t80_canary t80_key_hex hex64
t80_canary t80_key_fm fetchml
t80_canary t80_bearer_hex hex64
t80_canary t80_bearer_fm fetchml
t80_canary t80_basic word
t80_canary t80_cookie word
t80_canary t80_proxy word
t80_canary t80_q_pw word
t80_canary t80_q_token word
t80_canary t80_q_apikey word
t80_canary t80_q_ghp ghp
t80_canary t80_b_pw word
t80_canary t80_b_token word
t80_canary t80_b_secret word
t80_canary t80_b_esc word
t80_canary t80_b_urlpw word
t80_canary t80_b_ghp ghp
t80_canary t80_b_jwt jwt
t80_canary t80_b_bad_pw word
t80_canary t80_b_bad_token word
t80_canary t80_path_hex hex64
t80_canary t80_path_ghp ghp
t80_canary t80_jwt jwt
t80_canary t80_ghp_hdr ghp
t80_canary t80_413_path hex64
t80_canary t80_413_token word
t80_canary t80_nul_ghp ghp
t80_canary t80_out_pw word
t80_canary t80_out_key hex64
t80_canary t80_502_pw word
t80_canary t80_502_path hex64
t80_canary t80_relay_pw word
t80_canary t80_ws_proto fetchml
t80_canary t80_ws_key hex64
t80_canary t80_ws_q hex64
t80_canary t80_ws_qtok word
t80_canary t80_ws_502 hex64
t80_canary t80_uri_path hex64
t80_canary t80_uri_pw word
printf '%s\n' "$t80_rpw" >>"$t80_list"
# The SHA-256 of each key presented, and the demo keys with theirs.
for t80_k in "$t80_key_hex" "$t80_key_fm" "$t80_bearer_hex" "$t80_bearer_fm" "$t80_out_key" "$t80_rpw" \
    "$t80_ws_proto" "$t80_ws_key" "$t80_ws_q" \
    "$FETCHML_ADMIN_KEY" "$FETCHML_RESEARCHER_KEY" "$FETCHML_ANALYST_KEY" "$FETCHML_WORKER_KEY"; do
    # sha256sum, not fetchml-admin hash: that refuses keys the server would refuse too.
    printf '%s' "$t80_k" | sha256sum | cut -d' ' -f1 >>"$t80_list"
done
printf '%s\n' "$FETCHML_ADMIN_KEY" "$FETCHML_RESEARCHER_KEY" "$FETCHML_ANALYST_KEY" "$FETCHML_WORKER_KEY" >>"$t80_list"
check "$(wc -l <"$t80_list") canaries, all distinct, 8+ bytes each" \
    [ "$(sort -u "$t80_list" | awk 'length($0) >= 8' | wc -l)" -eq "$(wc -l <"$t80_list")" ]

# A config whose limits these requests do not trip: every wrong key must reach
# the key check (the brute-force guard would refuse before it).
write_config 'rate_limit={ requests_per_minute: 100000, burst: 100000, auth_failures: { max: 100000, window_seconds: 60, block_seconds: 1 } }'
t80_limits() { as researcher GET /v1/whoami && json_is .rate_limit.requests_per_minute 100000; }
check "reload with limits the canary requests do not trip" reload_until t80_limits

# ---- credentials in headers: wrong keys, every form -----------------------------------
t80_as "$t80_key_hex" GET /v1/whoami
check "X-API-Key: <64 hex, unknown> -> 401" status_is 401
t80_as "$t80_key_fm" GET /v1/tasks
check "X-API-Key: fetchml_<...> -> 401" status_is 401
t80_req GET /v1/whoami -H "Authorization: Bearer $t80_bearer_hex"
check "Authorization: Bearer <64 hex> -> 401" status_is 401
t80_req GET /v1/tasks -H "Authorization: Bearer $t80_bearer_fm"
check "Authorization: Bearer fetchml_<...> -> 401" status_is 401
t80_req GET /v1/whoami -H "Authorization: Basic $t80_basic"
check "Authorization: Basic -> 401" status_is 401
t80_req GET /v1/whoami -H "Authorization: Bearer $t80_jwt"
check "Authorization: Bearer <JWT> -> 401" status_is 401
t80_req GET /v1/whoami -H "X-API-Key: $t80_key_hex" -H "Authorization: Bearer $t80_bearer_hex"
check "both credential headers at once -> 401" status_is 401
t80_as "$t80_rpw" GET /v1/whoami
check "X-API-Key: <the Redis password> -> 401" status_is 401
t80_as researcher GET /v1/whoami -H "Cookie: session=$t80_cookie" -H "Proxy-Authorization: Basic $t80_proxy" \
    -H "X-GitHub-Token: $t80_ghp_hdr"
check "a valid key with Cookie, Proxy-Authorization and a ghp_ header -> 200" status_is 200

# ---- query strings (refused: the app never takes keys from the query) --------------------
t80_as researcher GET "/v1/tasks?password=$t80_q_pw"
check "?password= -> 400" status_is 400
t80_as researcher GET "/v1/tasks?status=queued&token=$t80_q_token"
check "?token= -> 400" status_is 400
t80_req GET "/v1/whoami?api_key=$t80_q_apikey"
check "?api_key= without a header -> 401" status_is 401
t80_as researcher GET "/v1/tasks?q=$t80_q_ghp"
check "?q=<ghp_ token> -> 400" status_is 400

# ---- WebSocket /ws: keys as subprotocol, in headers, in the query; a socket opened -------
ws_req -H "Sec-WebSocket-Protocol: ws+meta.nchan, fetchml.bearer.$t80_ws_proto"
t80_sent
check "/ws with an unknown key as subprotocol -> 401" status_is 401
ws_req -H "X-API-Key: $t80_ws_key"
t80_sent
check "/ws with an unknown X-API-Key -> 401" status_is 401
WS_PATH="/ws?api_key=$t80_ws_q&token=$t80_ws_qtok" ws_req
t80_sent
check "/ws with keys in the query -> 401" status_is 401
WS_PATH="/ws?api_key=$FETCHML_ANALYST_KEY" ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
t80_sent
check "/ws with a valid key in the query (and one in the header) -> 400" status_is 400
if nginx_only "sockets opened on /ws (nchan)"; then
    ws_open --proto "$FETCHML_RESEARCHER_KEY"
    TRACE=$(jq -r '.headers["x-request-id"]' <<<"$WS")
    t80_sent
    check "/ws with the researcher's key as subprotocol -> 101" status_is 101
    ws_open --bearer "$FETCHML_ADMIN_KEY"
    TRACE=$(jq -r '.headers["x-request-id"]' <<<"$WS")
    t80_sent
    check "/ws with the admin's key as Bearer -> 101" status_is 101
fi

# ---- JSON bodies, URLs in bodies ------------------------------------------------------
t80_as researcher POST /v1/tasks -H "$t80_json" -d "{\"job_name\":\"t80-$t80_id\",\"args\":\"--db redis://:$t80_b_urlpw@db.internal:6379/0 --gh $t80_b_ghp --redis-password $t80_rpw\",\"metadata\":{\"password\":\"$t80_b_pw\",\"token\":\"$t80_b_token\",\"jwt\":\"$t80_b_jwt\",\"note\":\"login with secret: $t80_b_secret\",\"escaped\":\"{\\\"api_key\\\":\\\"$t80_b_esc\\\"}\"}}"
check "POST /v1/tasks with secrets in args and metadata -> 201" status_is 201
t80_task=$(json .id || true)
t80_as researcher GET "/v1/tasks/$t80_task"
check "... and the task is stored as sent (the canaries are the user's data)" \
    bash -c "[ $STATUS = 200 ] && grep -qF -- '$t80_b_pw' '$B'"
t80_as researcher POST /v1/tasks -H "$t80_json" -d "{\"job_name\":7,\"password\":\"$t80_b_bad_pw\"}"
check "a body with a wrong type and a password field -> 422" status_is 422
t80_as researcher POST /v1/tasks -H "$t80_json" -d "{\"job_name\":\"x\",\"token\":\"$t80_b_bad_token\""
check "a truncated JSON body with a token -> 400" status_is 400

# ---- secrets in paths -------------------------------------------------------------------
t80_as researcher GET "/v1/tasks/$t80_path_hex"
check "GET /v1/tasks/<64 hex> -> 404" status_is 404
t80_path_trace=$TRACE
t80_as researcher DELETE "/v1/tasks/$t80_path_ghp"
check "DELETE /v1/tasks/<ghp_ token> as a researcher (no jobs:delete) -> 403" status_is 403

# ---- the front's own error lines: the request line reaches $FRONT-error.log -------------
head -c 2000000 /dev/zero | tr '\0' 'a' >"$OUT/t80-big"
t80_req POST "/v1/t80ctl413$t80_id/$t80_413_path?token=$t80_413_token" -H "$t80_json" \
    -H "X-API-Key: $FETCHML_RESEARCHER_KEY" --data-binary @"$OUT/t80-big"
forget_trace # refused by the front: only its logs have it
check "a 2 MB body -> 413 from $FRONT" status_is 413
t80_req GET "/v1/tasks/%00$t80_nul_ghp" -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
forget_trace
# nginx answers 400, Apache 404 (it refuses %00 and %2F in a path so).
t80_nul_status=400
[ "$FRONT" = apache ] && t80_nul_status=404
check "a %00 in the path -> $t80_nul_status from $FRONT" status_is "$t80_nul_status"
# A path that climbs above /: Apache logs it with its query (AH10244), nginx too.
t80_req GET "/v1/tasks/../../../t80ctluri$t80_id/$t80_uri_path?password=$t80_uri_pw" --path-as-is \
    -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
forget_trace
check "a path above / -> 400 from $FRONT" status_is 400

# The relay on its own: a message in the syslog form logger(1) sends (with a
# hostname), holding a credential and a forged second line.
logger -u "$FETCHML_VAR/run/logrelay.sock" --rfc3164 -t nginx_error \
    "t80ctlrelay$t80_id password=$t80_relay_pw"$'\n''{"user":"admin"}'
t80_relayed() { grep -qF "t80ctlrelay$t80_id password=[REDACTED]\\n{\"user\":\"admin\"}" "$t80_log/nginx-error.log"; }
check "a message to the relay becomes one line: credential redacted, newline escaped" wait_for 3 t80_relayed

# ---- a Redis outage ---------------------------------------------------------------------
t80_redis_pid=$(cat "$FETCHML_VAR/run/redis.pid")
kill -TERM "$t80_redis_pid"
t80_gone() { ! kill -0 "$1" 2>/dev/null; }
check "Redis is down" wait_for 5 t80_gone "$t80_redis_pid"
t80_as researcher POST /v1/tasks -H "$t80_json" -d "{\"job_name\":\"t80-out\",\"metadata\":{\"password\":\"$t80_out_pw\",\"redis\":\"$t80_rpw\"}}"
check "POST /v1/tasks during the outage -> 503" status_is 503
t80_as "$t80_out_key" GET /v1/whoami
check "an unknown key during the outage -> 503 (before any key is checked)" status_is 503
t80_as researcher GET /health
check "GET /health during the outage -> 503" status_is 503
fm_redis_server "$FETCHML_VAR/dev/redis.conf" >/dev/null # as run-local.sh does (in the pool's group)
# Until it has read its AOF back, Redis answers LOADING.
t80_pong() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }
check "Redis is back (redis-server VAR/dev/redis.conf)" wait_for 10 t80_pong
t80_back() { t80_as researcher GET /health && status_is 200; }
check "the pool reconnects: /health -> 200" wait_for 3 t80_back

# ---- a FastCGI outage: nginx logs the request line of each failed upstream connect -----
t80_fcgi_pid=$(cat "$FETCHML_VAR/run/fcgi.pid")
kill -TERM "$t80_fcgi_pid"
check "the pool is stopped" wait_for 15 t80_gone "$t80_fcgi_pid"
t80_req GET "/v1/t80ctl502$t80_id/$t80_502_path?password=$t80_502_pw" -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
forget_trace
check "a request with the pool down -> 503 from $FRONT" status_is 503
WS_PATH="/ws?t80ctlws$t80_id=1&api_key=$t80_ws_502" ws_req
forget_trace
check "a /ws handshake with a query key and the pool down -> 503 JSON from $FRONT" error_is 503 SERVICE_UNAVAILABLE
set -a
. "$FETCHML_VAR/dev/redis.env"
set +a
nohup "$FETCHML_BUILD/fetchml-fcgi" -c "$FETCHML_VAR/dev/config.yaml" -p "$FETCHML_VAR/run/fcgi.pid" \
    >>"$t80_log/fcgi.stderr" 2>&1 </dev/null &
unset REDIS_PASSWORD
t80_pool() { [ -S "$FETCHML_VAR/run/fcgi.sock" ] && as researcher GET /v1/whoami && status_is 200; }
check "the pool is restarted and serves" wait_for 10 t80_pool

# ---- the requests were logged: traces, and the lines that would have held canaries ------
t80_logged() { # every canary request's trace_id is in audit.log or the front's access log
    local t
    while read -r t; do
        [ -n "$t" ] || return 1
        grep -qF "\"trace_id\":\"$t\"" "$t80_log/audit.log" "$FRONT_ACCESS_LOG" || return 1
    done <"$t80_traces"
}
wait_for 3 t80_logged
check "each of the $(wc -l <"$t80_traces") canary requests reached audit.log or $FRONT-access.log" t80_logged
check "the audit record of GET /v1/tasks/<64 hex> keeps the path, key redacted" \
    grep -qF "\"trace_id\":\"$t80_path_trace\",\"user\":\"researcher\",\"key_id\":" "$t80_log/audit.log"
check "... as /v1/tasks/[REDACTED]" bash -c "grep -F '\"trace_id\":\"$t80_path_trace\"' '$t80_log/audit.log' | grep -qF '\"resource\":\"/v1/tasks/[REDACTED]\"'"
if [ "$FRONT" = apache ]; then
    # Apache logs no request line for a 413 of its own or a failed connect; it
    # logs the path of an invalid one.
    check "apache-error.log has the invalid path with its query, key and password redacted" \
        grep -qF "invalid URI path (/v1/tasks/../../../t80ctluri$t80_id/[REDACTED]?password=[REDACTED]" "$FRONT_ERROR_LOG"
else
    check "nginx-error.log has the 413's request line, path key and token redacted" \
        grep -qF "request: \"POST /v1/t80ctl413$t80_id/[REDACTED]?token=[REDACTED] HTTP/1.1\"" "$t80_log/nginx-error.log"
    check "nginx-error.log has the failed upstream connect's request line, redacted" \
        grep -qF "request: \"GET /v1/t80ctl502$t80_id/[REDACTED]?password=[REDACTED] HTTP/1.1\"" "$t80_log/nginx-error.log"
    check "nginx-error.log has the failed /ws auth subrequest's request line, key redacted" \
        grep -qF "request: \"GET /ws?t80ctlws$t80_id=1&api_key=[REDACTED] HTTP/1.1\"" "$t80_log/nginx-error.log"
fi
check "api.log has the failed authentications (from 127.0.0.1)" \
    grep -q "authentication failed: .*source=127.0.0.1" "$t80_log/api.log"

# ---- the search ---------------------------------------------------------------------------
t80_scan() { # t80_scan DIR: "FILE: CANARY#N" for each canary found under DIR
    local n=0 c f
    while read -r c; do
        n=$((n + 1))
        grep -rlaF -- "$c" "$1" | while read -r f; do echo "$f: canary #$n"; done
    done <"$t80_list"
}
mkdir -p "$OUT/t80-selftest"
printf 'x %s y\n' "$t80_b_token" >"$OUT/t80-selftest/planted.log"
t80_selftest() { [ -n "$(t80_scan "$OUT/t80-selftest")" ]; }
check "the search finds a planted canary (self-test)" t80_selftest
check "the search covers api, audit, $FRONT (access, error, startup), relay, Redis and fcgi logs" \
    bash -c "cd '$t80_log' && ls api.log audit.log $FRONT-access.log $FRONT-error.log $FRONT-startup.log logrelay.stderr redis.log fcgi.stderr >/dev/null"
t80_found=$(t80_scan "$t80_log")
check "no canary, Redis password, demo key or key hash in any file under var/log" [ -z "$t80_found" ]
[ -z "$t80_found" ] || sed 's/^/    /' <<<"$t80_found"

# Back to the default test config; clear the failure count of 127.0.0.1.
rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 >/dev/null
write_config
t80_default() { as researcher GET /v1/whoami && json_is .rate_limit.requests_per_minute 120; }
check "reload with the default test config" reload_until t80_default
