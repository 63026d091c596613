# Integration test helpers, sourced by tests/integration/run.sh; each
# test_*.sh then runs in a subshell of it, so it has these and cannot change
# another file's names. Tests drive the stack from outside, as a user would:
# curl over HTTPS through nginx, redis-cli on Redis's socket, and the files in
# $FETCHML_VAR. wait_for (poll a condition) comes from scripts/lib/common.sh.
. "$ROOT/scripts/lib/common.sh"
PASS=${PASS:-0}
FAIL=${FAIL:-0}
BASE="https://127.0.0.1:$FETCHML_HTTPS_PORT"
HTTP_BASE="http://127.0.0.1:$FETCHML_HTTP_PORT"
OUT=$(mktemp -d)
# The files each request leaves: response headers, body, status.
H=$OUT/headers B=$OUT/body
# One line per check, "ok" or "FAIL": run.sh counts them, so the results of a
# test file that stops half-way are kept.
RESULTS=$OUT/results

# The front in use (run.sh's FETCHML_FRONT: nginx or apache) and its logs, as
# fetchml-logrelay writes them. nginx_only DESCRIPTION: true with nginx in
# front; with another, says that this nginx-only check is skipped.
FRONT=${FETCHML_FRONT:-nginx}
FRONT_ERROR_LOG=$FETCHML_VAR/log/$FRONT-error.log
FRONT_ACCESS_LOG=$FETCHML_VAR/log/$FRONT-access.log
nginx_only() {
    [ "$FRONT" = nginx ] && return 0
    printf '  skip %s: nginx only, %s in front\n' "$*" "$FRONT"
    return 1
}

ok() { PASS=$((PASS + 1)) && echo ok >>"$RESULTS" && printf '  ok   %s\n' "$*"; }
not_ok() { FAIL=$((FAIL + 1)) && echo FAIL >>"$RESULTS" && printf '  FAIL %s\n' "$*"; }
not() { ! "$@"; } # not COMMAND...: succeeds when COMMAND fails (check "..." not ...)

check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    local d=$1
    shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# req METHOD PATH [curl args...]: sets STATUS, TRACE; body in $B, headers in $H.
# Each answer is also kept in $CONTRACT for run.sh's contract check against
# docs/openapi.yaml (check_contract.py): N.r "METHOD PATH STATUS", N.h, N.b.
CONTRACT=$FETCHML_VAR/contract
mkdir -p "$CONTRACT"
req() {
    local m=$1 p=$2 n
    shift 2
    : >"$B" # curl writes no file for an empty body: no earlier body may stay in its place
    STATUS=$(curl -sk -X "$m" -D "$H" -o "$B" -w '%{http_code}' "$@" "$BASE$p") || STATUS=000
    TRACE=$(tr -d '\r' <"$H" | awk -F': ' 'tolower($1)=="x-request-id"{print $2}' | tail -1)
    printf '%s\n' "$TRACE" >>"$OUT/traces"
    n=$CONTRACT/${EPOCHREALTIME/./}.$BASHPID.$RANDOM
    cp "$H" "$n.h" 2>/dev/null && { cp "$B" "$n.b" 2>/dev/null || : >"$n.b"; } &&
        printf '%s %s %s\n' "$m" "${p// /%20}" "$STATUS" >"$n.r"
}
# For requests nginx refuses itself (malformed ones never reach the app, so
# only nginx's access log records them): drop the last trace from the audit check.
forget_trace() { sed -i '$d' "$OUT/traces"; }
as() { # as USER METHOD PATH [curl args...]
    local u=$1
    shift
    local k
    case $u in
    admin) k=$FETCHML_ADMIN_KEY ;;
    researcher) k=$FETCHML_RESEARCHER_KEY ;;
    analyst) k=$FETCHML_ANALYST_KEY ;;
    worker) k=$FETCHML_WORKER_KEY ;;
    *) k=$u ;;
    esac
    req "$@" -H "X-API-Key: $k"
}
status_is() { [ "$STATUS" = "$1" ]; }
error_is() { status_is "$1" && json_is .code "$2"; } # error_is STATUS CODE: that answer and error code
header_has() { tr -d '\r' <"$H" | grep -Eqi "^$1"; }
json() { jq -er "$1" <"$B" 2>/dev/null; }
json_is() { [ "$(jq -r "$1" <"$B" 2>/dev/null)" = "$2" ]; }
error_body_is() { # error_body_is CODE: the error body (README "Calling the API") with our trace id
    json_is .code "$1" && json .error >/dev/null && json_is .trace_id "$TRACE" && [ -n "$TRACE" ]
}
rcli() { # redis-cli on the stack's socket as the operator user "ops" (every right)
    REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$FETCHML_VAR/dev/redis-ops.env") \
        redis-cli --no-auth-warning --user ops -s "$FETCHML_VAR/run/redis.sock" "$@"
}
# acl_refusals USER: "REASON OBJECT" for each command, key or channel Redis refused USER
# (its ACL LOG; failed logins left out), newest first.
acl_refusals() {
    rcli ACL LOG 128 | awk -v u="$1" 'p == "reason" { r = $0 } p == "object" { o = $0 }
        p == "username" && $0 == u && r != "auth" { print r " " o } { p = $0 }'
}
hash_of() { printf '%s' "$1" | "$FETCHML_BUILD/fetchml-admin" hash; }
# fcgi_request SOCKET OUT [--as USER] [--body TEXT] [NAME=VALUE...]: one FastCGI
# request straight to a pool's socket (fcgi_request.py; the status on stdout,
# "closed" when refused). As root, from nginx's user (www-data), whom the
# stack's pool serves (server.allowed_peers), unless --as names another.
fcgi_request() {
    local sock=$1 out=$2 as=()
    shift 2
    [ "$(id -u)" -eq 0 ] && [ "${1:-}" != --as ] && as=(--as www-data)
    python3 "$ROOT/tests/integration/fcgi_request.py" "$sock" "$out" "${as[@]}" "$@"
}

# prod_config OUT: conf/config-prod.yaml as this host can load it. Its server.user, fetchml,
# is made by the install (conf/systemd/fetchml.sysusers), which this host need not have had:
# the copy names nobody.
prod_config() { fm_config_apply 'server.user="nobody"' <"$ROOT/conf/config-prod.yaml" >"$1"; }

# The overrides every test config starts from (fm_config_apply's
# PATH=VALUE): every test comes from 127.0.0.1 and many fail to authenticate on
# purpose or without a key, so the brute-force guard is loose. rate_limit is one line, as it
# has always been in the test config: a test changes it whole.
TEST_CONFIG=('rate_limit={ requests_per_minute: 120, burst: 30, auth_failures: { max: 1000, window_seconds: 60, block_seconds: 1 }, anonymous: { max: 1000000, window_seconds: 1 } }')

# write_config [OVERRIDE...]: the test stack's config.yaml, from the template
# run-local.sh uses (conf/dev/config.yaml.in, fm_dev_config) with TEST_CONFIG
# and then the overrides, so that a test states only what differs:
#   PATH=VALUE    a setting, e.g. server.workers=2 or logging.file='"/x/a.log"'
#   PATH+=LINES   lines at the end of a block
#   ip_whitelist=YAML   short for auth.ip_whitelist=YAML
#   extra_users=LINES   short for auth.api_keys+=LINES (users, indented 4)
# The older positional form still works: write_config [IP_WHITELIST [EXTRA_USERS]].
write_config() {
    local o ov=() n=0
    for o in "$@"; do
        case $o in
        ip_whitelist=*) ov+=("auth.$o") ;;
        extra_users=*) ov+=("auth.api_keys+=${o#extra_users=}") ;;
        *)
            if [[ $o == *=* && ${o%%=*} =~ ^[A-Za-z_][A-Za-z0-9_.]*\+?$ ]]; then
                ov+=("$o")
            elif [ $((n++)) -eq 0 ]; then
                [ -z "$o" ] || ov+=("auth.ip_whitelist=$o")
            else
                ov+=("auth.api_keys+=$o")
            fi
            ;;
        esac
    done
    fm_dev_config "$FETCHML_VAR/dev/config.yaml" "$FETCHML_VAR" "$(hash_of "$FETCHML_ADMIN_KEY")" \
        "$(hash_of "$FETCHML_RESEARCHER_KEY")" "$(hash_of "$FETCHML_ANALYST_KEY")" \
        "$(hash_of "$FETCHML_WORKER_KEY")" "${TEST_CONFIG[@]}" "${ov[@]}"
}

# reload_until CHECK...: reload, then wait (<= 5 s) until the check passes.
reload_until() {
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || return 1
    wait_for 5 "$@"
}

# exp_user_config USER KEY [OVERRIDE...]: the experiment tests' config: USER with KEY and
# experiments:*, uploads unlimited in practice (data.uploads_per_minute=100000), and the
# overrides; reloads, and waits until USER's rate-limit burst (new at each call: the marker
# of the new config) says that the new config answers.
EXP_GEN=0
exp_user_config() {
    local u=$1 k=$2 rate
    shift 2
    EXP_GEN=$((EXP_GEN + 1))
    rate="rate_limit: { requests_per_minute: 1000000, burst: $((100000 + EXP_GEN)) }"
    write_config extra_users=$'    '"$u"$':\n      hash: "'"$(hash_of "$k")"$'"\n      permissions: { "experiments:*": true }\n      '"$rate" \
        data.uploads_per_minute=100000 "$@" &&
        reload_until exp_config_is "$k" $((100000 + EXP_GEN))
}
exp_config_is() { as "$1" GET /v1/whoami && json_is .rate_limit.burst "$2"; }

# relay_queue: how many datagrams fetchml-logrelay's socket queues before a
# sender that does not block (nginx) gets EAGAIN. The relay is stopped while
# probes fill its queue, then resumed; it drops them (they are not syslog messages).
relay_queue() {
    local p n
    p=$(cat "$FETCHML_VAR/run/logrelay.pid") && kill -STOP "$p" || return 1
    n=$(python3 - "$FETCHML_VAR/run/logrelay.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
# The receiver's queue, not this socket's send buffer, must be what stops us.
for opt in (32, socket.SO_SNDBUF):  # SO_SNDBUFFORCE (root), else SO_SNDBUF
    try:
        s.setsockopt(socket.SOL_SOCKET, opt, 1 << 22)
        break
    except OSError:
        pass
s.setblocking(False)
n = 0
try:
    while n < 100000:
        s.sendto(b"<14>queue_probe: x", sys.argv[1])
        n += 1
except BlockingIOError:
    pass
print(n)
PY
    )
    kill -CONT "$p"
    [ -n "$n" ] && echo "$n"
}
export -f rcli hash_of

# summary NAME: the checks' tally over $RESULTS ("NAME: N passed, N failed", then
# "N passed, N failed"); status 1 when one failed.
summary() {
    PASS=$(grep -c '^ok$' "$RESULTS" || true)
    FAIL=$(grep -c '^FAIL$' "$RESULTS" || true)
    echo
    echo "$1: $PASS passed, $FAIL failed"
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# no_sanitizer_reports [LABEL]: after the stack at $FETCHML_VAR stopped, its pool's and log
# relay's stderr hold no ASan/LSan/UBSan report (one check each; LABEL names the stack).
no_sanitizer_reports() {
    local f who=""
    [ $# -eq 0 ] || who="$1: "
    for f in fcgi.stderr logrelay.stderr; do
        if grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$FETCHML_VAR/log/$f"; then
            not_ok "sanitizer reports in $FETCHML_VAR/log/$f:"
            grep -E -A12 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$FETCHML_VAR/log/$f" | head -60
        else
            ok "${who}no sanitizer report in $f"
        fi
    done
}

# ---- WebSocket /ws (tests/integration/wsclient.py, python3-websockets) ----------------
# Debian's python3, which has python3-websockets (a python3 earlier on PATH may not).
WS_PY=/usr/bin/python3
WS_CLIENT=$ROOT/tests/integration/wsclient.py
# ws_req [curl args...]: GET /ws as a WebSocket handshake that nginx refuses before the
# upgrade (a 101 would leave curl waiting: --max-time); sets STATUS, TRACE as req.
ws_req() {
    req GET "${WS_PATH:-/ws}" --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$@"
}
# ws_open [wsclient options]: one handshake; sets WS (its JSON line) and STATUS.
ws_open() {
    WS=$("$WS_PY" "$WS_CLIENT" open "$@" 2>/dev/null || true)
    STATUS=$(jq -r .status <<<"$WS" 2>/dev/null || echo 000)
}
# ws_listen NAME [wsclient options]: a socket in the background, its messages in
# $OUT/ws-NAME.out (one JSON line each, then {"closed": code}); returns once it is
# open (or refused: $OUT/ws-NAME.ready says which). ws_stop_all ends them all.
ws_listen() {
    local n=$1
    shift
    rm -f "$OUT/ws-$n.ready" "$OUT/ws-$n.out"
    : >"$OUT/ws-$n.out"
    "$WS_PY" "$WS_CLIENT" listen --out "$OUT/ws-$n.out" --ready "$OUT/ws-$n.ready" "$@" \
        2>>"$OUT/ws-$n.err" &
    echo $! >>"$OUT/ws-pids"
    wait_for 10 test -s "$OUT/ws-$n.ready"
}
ws_is_open() { grep -q '^open' "$OUT/ws-$1.ready" 2>/dev/null && ! grep -q '"closed"' "$OUT/ws-$1.out"; }
ws_closed() { grep -q '"closed"' "$OUT/ws-$1.out"; }
# ws_got NAME TYPE TASK_ID: the socket received that event about that task.
ws_got() { ws_any "$1" --arg t "$2" --arg i "$3" '.event.type == $t and .event.task.id == $i'; }
# ws_any NAME [jq args...] COND: one of the socket's lines meets COND (jq -s: jq 1.6's -e
# looks only at the last input).
ws_any() {
    local n=$1
    shift
    jq -e -s "${@:1:$#-1}" "any(.[]; ${*: -1})" "$OUT/ws-$n.out" >/dev/null 2>&1
}
# ws_count NAME: events received.
ws_count() { jq -s '[.[] | select(.event)] | length' "$OUT/ws-$1.out"; }
ws_stop_all() {
    local p
    [ -f "$OUT/ws-pids" ] || return 0
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$OUT/ws-pids"
    : >"$OUT/ws-pids"
}

# The scraper of the monitoring tests: a user holding metrics:read only (as
# conf/README.md recommends for Prometheus), without a practical rate limit.
# write_config extra_users="$(metrics_user)" adds it.
PROM_KEY=prometheus-scrape-key-00000000000000000000
metrics_user() {
    printf '    prometheus:\n      hash: "%s"\n' "$(hash_of "$PROM_KEY")"
    printf '      permissions: { "metrics:read": true }\n'
    printf '      rate_limit: { requests_per_minute: 1000000, burst: 1000000 }\n'
}

# A real Prometheus (Debian's) for the monitoring tests, on loopback only, at
# FETCHML_TEST_PROMETHEUS_PORT (default 9595). prometheus_start CONFIG: start it
# on CONFIG with its data in $OUT, bounded by `timeout` (it stops by itself
# after PROMETHEUS_MAX_S even if nothing stops it), and wait until it is ready.
# prometheus_stop: stop it (run.sh's cleanup does too). prom_query EXPR: an
# instant query, the answer in $OUT/query.json; prom_targets: /api/v1/targets.
PROM_PORT=${FETCHML_TEST_PROMETHEUS_PORT:-9595}
PROM_BASE="http://127.0.0.1:$PROM_PORT"
PROMETHEUS_MAX_S=300
prometheus_start() {
    timeout "$PROMETHEUS_MAX_S" prometheus --config.file="$1" --storage.tsdb.path="$OUT/prometheus" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=1h \
        >"$OUT/prometheus.log" 2>&1 &
    echo $! >"$FETCHML_VAR/run/prometheus.pid"
    wait_for 30 curl -sf -o /dev/null "$PROM_BASE/-/ready"
}
prometheus_stop() {
    local p
    p=$(cat "$FETCHML_VAR/run/prometheus.pid" 2>/dev/null) || return 0
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    rm -f "$FETCHML_VAR/run/prometheus.pid"
}
prom_query() { curl -sf -o "$OUT/query.json" --data-urlencode "query=$1" "$PROM_BASE/api/v1/query"; }
prom_targets() { curl -sf "$PROM_BASE/api/v1/targets"; }
