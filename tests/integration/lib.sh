# Integration test helpers: sourced by tests/integration/run.sh and each
# test_*.sh. Tests drive the stack from outside, as a user would: curl over
# HTTPS through nginx, redis-cli on Redis's socket, and the files in $VAR.
PASS=${PASS:-0}
FAIL=${FAIL:-0}
BASE="https://127.0.0.1:$FETCHML_HTTPS_PORT"
HTTP_BASE="http://127.0.0.1:$FETCHML_HTTP_PORT"
OUT=$(mktemp -d)
# The files each request leaves: response headers, body, status.
H=$OUT/headers B=$OUT/body

ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
not_ok() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    local d=$1
    shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# req METHOD PATH [curl args...]: sets STATUS, TRACE; body in $B, headers in $H.
req() {
    local m=$1 p=$2
    shift 2
    STATUS=$(curl -sk -X "$m" -D "$H" -o "$B" -w '%{http_code}' "$@" "$BASE$p") || STATUS=000
    TRACE=$(tr -d '\r' <"$H" | awk -F': ' 'tolower($1)=="x-request-id"{print $2}' | tail -1)
    printf '%s\n' "$TRACE" >>"$OUT/traces"
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
    *) k=$u ;;
    esac
    req "$@" -H "X-API-Key: $k"
}
status_is() { [ "$STATUS" = "$1" ]; }
header_has() { tr -d '\r' <"$H" | grep -Eqi "^$1"; }
json() { jq -er "$1" <"$B" 2>/dev/null; }
json_is() { [ "$(jq -r "$1" <"$B" 2>/dev/null)" = "$2" ]; }
error_body_is() { # error_body_is CODE: SPEC section 2 error shape with our trace id
    json_is .code "$1" && json .error >/dev/null && json_is .trace_id "$TRACE" && [ -n "$TRACE" ]
}
rcli() { # redis-cli on the stack's socket with the dev password
    REDISCLI_AUTH=$(sed -n 's/^REDIS_PASSWORD=//p' "$FETCHML_VAR/dev/redis.env") \
        redis-cli --no-auth-warning -s "$FETCHML_VAR/run/redis.sock" "$@"
}
hash_of() { printf '%s' "$1" | "$FETCHML_BUILD/fetchml-admin" hash; }

# write_config [IP_WHITELIST_YAML] [EXTRA_USERS_YAML]: a config for the test stack.
write_config() {
    local wl=${1:-'["127.0.0.1", "::1"]'} extra=${2:-}
    cat >"$FETCHML_VAR/dev/config.yaml.new" <<YAML
server:
  listen: "unix:$FETCHML_VAR/run/fcgi.sock"
  workers: 4
  socket_mode: "0660"
$( [ "$(id -u)" -eq 0 ] && echo '  socket_group: "www-data"')
auth:
  ip_whitelist: $wl
  api_keys:
    admin:
      hash: "$(hash_of "$FETCHML_ADMIN_KEY")"
      admin: true
      roles: ["admin"]
    researcher:
      hash: "$(hash_of "$FETCHML_RESEARCHER_KEY")"
      roles: ["researcher"]
    analyst:
      hash: "$(hash_of "$FETCHML_ANALYST_KEY")"
      roles: ["analyst"]
$extra
# Every test comes from 127.0.0.1 and many fail to authenticate on purpose: a loose guard.
rate_limit: { requests_per_minute: 120, burst: 30, auth_failures: { max: 1000, window_seconds: 60, block_seconds: 1 } }
redis:
  addr: "unix:$FETCHML_VAR/run/redis.sock"
  password_env: REDIS_PASSWORD
  timeout_ms: 200
logging:
  file: "$FETCHML_VAR/log/audit.log"
  api_file: "$FETCHML_VAR/log/api.log"
data:
  experiments_dir: "$FETCHML_VAR/experiments"
YAML
    mv "$FETCHML_VAR/dev/config.yaml.new" "$FETCHML_VAR/dev/config.yaml"
}

# reload_until CHECK...: reload, then wait (<= 5 s) until the check passes.
reload_until() {
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || return 1
    local i
    for i in $(seq 50); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
export -f rcli hash_of
